//! Finding scenario files and the project each one runs against, and reading
//! that project (workflows, rules, calendars) for the engine, which does no IO.

use leadflow_engine::{Project, SourceFile, WorkflowSet};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Scenario files under `paths` (files as given, directories searched
/// recursively for `*.toml`), sorted. A directory named `workflows`, `rules`
/// or `calendars` is skipped: a scenario folder may hold its own project.
pub fn find_scenarios(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d)? {
                    let path = e?.path();
                    if path.is_dir() {
                        let skip = path.file_name().is_some_and(|n| {
                            ["workflows", "rules", "calendars"].iter().any(|s| n == *s)
                        });
                        if !skip {
                            stack.push(path);
                        }
                    } else if path.extension().is_some_and(|x| x == "toml") {
                        out.push(path);
                    }
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file or directory", p.display()),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The project root of a scenario: `project = "dir"` relative to the file if
/// given, else the nearest ancestor holding a `workflows/` directory.
pub fn project_root(scenario: &Path, project: Option<&str>) -> Option<PathBuf> {
    // A bare file name (`happy_path.toml`) has the empty path as parent.
    let dir = scenario
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Some(p) = project {
        let root = dir.join(p);
        return root.join("workflows").is_dir().then_some(root);
    }
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors()
        .find(|d| d.join("workflows").is_dir())
        .map(Path::to_path_buf)
}

/// Read `workflows/**/*.toml`, `rules/**/*.rhai` and `calendars/*.toml` of a
/// project root, with paths relative to the root.
pub fn read_project(root: &Path) -> io::Result<Project> {
    let mut project = Project::default();
    for (dir, ext, list) in [
        ("workflows", "toml", &mut project.workflows),
        ("rules", "rhai", &mut project.rules),
        ("calendars", "toml", &mut project.calendars),
    ] {
        let d = root.join(dir);
        if d.is_dir() {
            for f in walk(&d, ext)? {
                let text = std::fs::read_to_string(&f)?;
                let shown = f
                    .strip_prefix(root)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .replace('\\', "/");
                list.push(SourceFile::new(shown, text));
            }
        }
    }
    Ok(project)
}

fn walk(dir: &Path, ext: &str) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A loaded project: the workflows that load, and the files that did not.
#[derive(Debug)]
pub struct LoadedProject {
    pub root: PathBuf,
    pub set: Arc<WorkflowSet>,
    /// Workflow files with errors (left out of `set`).
    pub broken: Vec<String>,
    /// The project's message templates (`templates/`).
    pub templates: Arc<crate::templates::TemplateSet>,
}

/// Loads each project root once, however many scenarios share it.
#[derive(Default)]
pub struct Projects {
    cache: Mutex<HashMap<PathBuf, Arc<Result<LoadedProject, String>>>>,
}

impl Projects {
    pub fn load(&self, root: &Path) -> Arc<Result<LoadedProject, String>> {
        let key = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(match read_project(&key) {
                    Err(e) => Err(format!("cannot read project {}: {e}", key.display())),
                    Ok(project) => {
                        let loaded = leadflow_engine::load(&project);
                        let mut broken: Vec<String> = loaded
                            .diagnostics
                            .iter()
                            .filter(|d| d.is_error())
                            .map(|d| d.file.clone())
                            .collect();
                        broken.dedup();
                        let templates =
                            crate::templates::TemplateSet::load(&key.join("templates"), None)
                                .unwrap_or_default();
                        Ok(LoadedProject {
                            root: key,
                            set: Arc::new(loaded.set),
                            broken,
                            templates: Arc::new(templates),
                        })
                    }
                })
            })
            .clone()
    }
}
