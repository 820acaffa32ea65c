//! Running many scenario files: find each one's project (loaded once per
//! root), build a fresh backend per scenario, replay, collect results in file
//! order. Scenarios are independent, so they run on several threads, each
//! with its own single-threaded tokio runtime (backend futures need not be
//! `Send`).

use super::files::{project_root, Projects};
use super::{parse, run, ScenarioError, ScenarioResult};
use crate::mem::MemBackend;
use crate::AnyBackend;
use leadflow_engine::WorkflowSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Builds a fresh, empty backend for one scenario.
pub trait Factory: Sync {
    type B: super::run::Replay;
    fn make(&self, set: Arc<WorkflowSet>) -> impl Future<Output = Result<Self::B, String>>;
    /// How many scenarios may run at once.
    fn jobs(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The in-memory store: the default for `leadflow test`.
pub struct Mem;

impl Factory for Mem {
    type B = MemBackend;
    async fn make(&self, set: Arc<WorkflowSet>) -> Result<MemBackend, String> {
        Ok(MemBackend::new(set))
    }
}

/// A SQL store (or any URL [`crate::open`] takes). Each scenario runs as a
/// tenant of its own, so state is fresh without dropping anything; they run
/// one at a time (SQLite has one writer).
pub struct Url {
    url: String,
    run: String,
    next: AtomicUsize,
}

impl Url {
    pub fn new(url: impl Into<String>) -> Url {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Url {
            url: url.into(),
            run: format!("{:x}-{}", nanos, std::process::id()),
            next: AtomicUsize::new(0),
        }
    }
}

impl Factory for Url {
    type B = AnyBackend;
    async fn make(&self, set: Arc<WorkflowSet>) -> Result<AnyBackend, String> {
        let tenant = format!(
            "scenario-{}-{}",
            self.run,
            self.next.fetch_add(1, Ordering::SeqCst)
        );
        crate::open(&self.url, &tenant, set)
            .await
            .map_err(|e| e.to_string())
    }
    fn jobs(&self) -> usize {
        1
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run only scenarios whose path or name contains this.
    pub filter: Option<String>,
}

/// Run every scenario file in `files` (see [`super::files::find_scenarios`]).
/// Filtered-out files give no result.
pub fn run_files<F: Factory>(
    files: &[PathBuf],
    opts: &Options,
    factory: &F,
) -> Vec<ScenarioResult> {
    let projects = Projects::default();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, ScenarioResult)>> = Mutex::new(Vec::new());
    let jobs = factory.jobs().clamp(1, files.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if let Some(f) = files.get(i) {
                            let path = f.display().to_string();
                            r.push((
                                i,
                                ScenarioResult::broken(
                                    &path,
                                    whole(&path, "S005", format!("no async runtime: {e}")),
                                ),
                            ));
                        }
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(file) = files.get(i) else { break };
                    if let Some(r) = rt.block_on(one(file, opts, &projects, factory)) {
                        results
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((i, r));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn whole(path: &str, code: &'static str, message: String) -> ScenarioError {
    ScenarioError {
        code,
        file: path.to_string(),
        line: 1,
        column: 1,
        message,
    }
}

/// One scenario file, start to end. None if filtered out.
async fn one<F: Factory>(
    file: &PathBuf,
    opts: &Options,
    projects: &Projects,
    factory: &F,
) -> Option<ScenarioResult> {
    let path = file.display().to_string();
    let matches = |name: &str| {
        opts.filter
            .as_ref()
            .is_none_or(|f| path.contains(f.as_str()) || name.contains(f.as_str()))
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return matches("").then(|| {
                ScenarioResult::broken(&path, whole(&path, "S001", format!("cannot read: {e}")))
            })
        }
    };
    let sc = match parse(&path, &text) {
        Ok(sc) => sc,
        Err(e) => return matches("").then(|| ScenarioResult::broken(&path, e)),
    };
    if !matches(&sc.name) {
        return None;
    }
    let broken = |e: ScenarioError| {
        let mut r = ScenarioResult::broken(&path, e);
        r.name = sc.name.clone();
        r.steps = sc.steps.len();
        Some(r)
    };
    let Some(root) = project_root(file, sc.project.as_deref()) else {
        let msg = match &sc.project {
            Some(p) => format!("`project = \"{p}\"`: no workflows/ directory there"),
            None => {
                "no project: no ancestor directory of the scenario holds workflows/".to_string()
            }
        };
        return broken(whole(&path, "S005", msg));
    };
    let loaded = projects.load(&root);
    let loaded = match loaded.as_ref() {
        Ok(l) => l,
        Err(m) => return broken(whole(&path, "S005", m.clone())),
    };
    if let Err(e) = sc.resolve(&loaded.set, &loaded.broken) {
        return broken(e);
    }
    let backend = match factory.make(loaded.set.clone()).await {
        Ok(b) => b,
        Err(m) => {
            return broken(whole(
                &path,
                "S005",
                format!("cannot open the backend: {m}"),
            ))
        }
    };
    let mut sc = sc;
    sc.templates = Some(loaded.templates.clone());
    Some(run(&sc, &loaded.set, &backend).await)
}
