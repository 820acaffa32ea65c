//! `leadflow import` and `leadflow export`: glue over
//! `leadflow_runtime::bulk` (docs/import.md). Opens the tenant's store as
//! the daemon would (its config actors upserted into the directory, so
//! assignment sees the same operators), shows progress on a terminal.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leadflow_runtime::bulk::{self, export, Format, OnDuplicate, Options};
use leadflow_runtime::Backend;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub use super::kpi::StoreArgs;

pub struct ImportArgs {
    pub store: StoreArgs,
    pub workflow: String,
    pub file: PathBuf,
    pub format: Option<crate::cli::BulkFormat>,
    pub map: Vec<String>,
    pub dedup: Option<String>,
    pub on_duplicate: crate::cli::OnDuplicate,
    pub update_with: Option<String>,
    pub key: Option<String>,
    pub report: Option<PathBuf>,
    pub batch: usize,
    pub country: String,
}

pub struct ExportArgs {
    pub store: StoreArgs,
    pub workflow: String,
    pub filter: Vec<String>,
    pub format: crate::cli::BulkFormat,
    pub actor: Option<String>,
    pub output: Option<PathBuf>,
}

/// The tenant's config, store (directory synced) and current workflow.
async fn open(
    a: &StoreArgs,
    id: &str,
) -> Result<(
    leadflow_runtime::AnyBackend,
    Arc<leadflow_engine::Workflow>,
    leadflow_runtime::config::TenantConfig,
)> {
    let mut config = super::serve::load_config(&a.config)?;
    if let Some(u) = &a.database_url {
        config.database_url = Some(u.clone());
    }
    let tc = config
        .tenants
        .get(&a.tenant)
        .with_context(|| format!("no tenant `{}` in {}", a.tenant, a.config.display()))?
        .clone();
    let (set, _, snap) = leadflow_runtime::http::state::load_project(&tc).map_err(|(d, e)| {
        anyhow::anyhow!(
            "the workflow files have errors ({}); run `leadflow check`",
            e.unwrap_or_else(|| format!("{} findings", d.len()))
        )
    })?;
    let wf = set
        .get(id)
        .with_context(|| format!("tenant `{}` has no workflow `{id}`", a.tenant))?
        .clone();
    let set = Arc::new(set);
    let b = leadflow_runtime::open(config.database_url(), &a.tenant, set.clone()).await?;
    b.register_snapshot(&snap, &set).await?;
    b.versions().set_notify(tc.notification_settings());
    leadflow_runtime::directory::sync(&b, tc.directory()).await?;
    Ok((b, wf, tc))
}

fn format_of(f: crate::cli::BulkFormat) -> Format {
    match f {
        crate::cli::BulkFormat::Csv => Format::Csv,
        crate::cli::BulkFormat::Ndjson => Format::Ndjson,
    }
}

/// The default import key of a file: its SHA-256, so the same content
/// resumes under the same key wherever it lies.
fn file_key(path: &PathBuf) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

pub fn import(a: ImportArgs) -> Result<ExitCode> {
    let stdin = a.file.as_os_str() == "-";
    let format = a.format.map(format_of).unwrap_or_else(|| {
        if stdin {
            Format::Csv
        } else {
            Format::from_name(&a.file.to_string_lossy())
        }
    });
    let mut map = Vec::new();
    for m in a.map.iter().flat_map(|m| m.split(',')) {
        let (col, field) = m
            .split_once('=')
            .with_context(|| format!("--map {m}: write column=field"))?;
        map.push((col.trim().to_string(), field.trim().to_string()));
    }
    let key = match (&a.key, stdin) {
        (Some(k), _) => Some(k.clone()),
        (None, false) => Some(file_key(&a.file)?),
        (None, true) => None,
    };
    let report_path = a.report.clone().unwrap_or_else(|| {
        let ext = if format == Format::Csv {
            "csv"
        } else {
            "ndjson"
        };
        if stdin {
            PathBuf::from(format!("rejects.{ext}"))
        } else {
            let stem = a
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            a.file.with_file_name(format!("{stem}.rejects.{ext}"))
        }
    });
    let size = if stdin {
        0
    } else {
        std::fs::metadata(&a.file).map(|m| m.len()).unwrap_or(0)
    };
    let input: Box<dyn Read + Send> = if stdin {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&a.file)
                .with_context(|| format!("cannot open {}", a.file.display()))?,
        )
    };
    let report = std::fs::File::create(&report_path)
        .with_context(|| format!("cannot write the reject report {}", report_path.display()))?;
    let report = std::io::BufWriter::new(report);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (b, wf, _) = open(&a.store, &a.workflow).await?;
        let mut opts = Options::new(format);
        opts.map = map;
        opts.dedup = a
            .dedup
            .iter()
            .flat_map(|d| d.split(','))
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .collect();
        opts.on_duplicate = match a.on_duplicate {
            crate::cli::OnDuplicate::Skip => OnDuplicate::Skip,
            crate::cli::OnDuplicate::Update => OnDuplicate::Update,
            crate::cli::OnDuplicate::Error => OnDuplicate::Error,
        };
        opts.update_transition = a.update_with.clone();
        opts.key = key.clone();
        opts.batch = a.batch.max(1);
        opts.country = a.country.clone();
        let bar = progress_bar(size);
        let started = std::time::Instant::now();
        let mut on_progress = |s: &bulk::Summary| {
            if let Some(bar) = &bar {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                bar.set_position(s.bytes);
                bar.set_message(format!(
                    "{} lines, {:.0} rows/s",
                    s.lines,
                    s.lines as f64 / secs
                ));
            }
        };
        let now = || chrono::Utc::now();
        let result = bulk::import(&b, wf, &opts, input, report, &now, &mut on_progress).await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let (sum, ignored) = result.map_err(|e| {
            anyhow::anyhow!(
                "{e}\nthe lines committed so far stay; run the same command again to resume"
            )
        })?;
        if !ignored.is_empty() {
            eprintln!(
                "ignored columns (no field of that name; use --map column=field): {}",
                ignored.join(", ")
            );
        }
        if sum.already > 0 {
            eprintln!(
                "{} lines were imported by an earlier run with this import key",
                sum.already
            );
        }
        if sum.rejected > 0 {
            eprintln!(
                "rejected lines: {} (fix them there and import that file)",
                report_path.display()
            );
        } else {
            let _ = std::fs::remove_file(&report_path);
        }
        if key.is_none() {
            eprintln!("no --key given for stdin: a re-run cannot tell which lines were imported");
        }
        crate::outln!("{sum}")?;
        Ok(if sum.rejected > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// A progress bar on stderr when it is a terminal; `None` otherwise.
fn progress_bar(size: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    let style = if size > 0 {
        ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} ETA {eta}")
    } else {
        ProgressStyle::with_template("{spinner} {msg}")
    };
    if let Ok(s) = style {
        bar.set_style(s);
    }
    Some(bar)
}

pub fn export(a: ExportArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (b, wf, tc) = open(&a.store, &a.workflow).await?;
        let filter = export::Filter::parse(&wf, &a.filter).map_err(anyhow::Error::msg)?;
        let actor = match &a.actor {
            None => None,
            Some(id) => Some(
                b.actors()
                    .await?
                    .into_iter()
                    .find(|x| &x.id == id)
                    .with_context(|| {
                        format!(
                            "--actor {id}: tenant `{}` has no such actor",
                            a.store.tenant
                        )
                    })?,
            ),
        };
        let viewer = export::ViewerSpec {
            actor: actor.as_ref(),
            pools: &tc.pools,
            directory: std::sync::Arc::new(b.actors().await?),
        };
        let out: Box<dyn std::io::Write + Send> = match &a.output {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(p)
                    .with_context(|| format!("cannot write {}", p.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout())),
        };
        let n = export::export(
            &b,
            b.versions(),
            &wf,
            &filter,
            &viewer,
            format_of(a.format),
            out,
        )
        .await?;
        eprintln!("exported {n}");
        Ok(ExitCode::SUCCESS)
    })
}

pub struct BulkArgs {
    pub store: StoreArgs,
    pub workflow: String,
    pub transition: Option<String>,
    pub reassign_to: Option<String>,
    pub input: Option<String>,
    pub ids: Option<String>,
    pub filter: Vec<String>,
    pub dry_run: bool,
    pub batch: usize,
    pub actor: Option<String>,
    pub role: Option<String>,
}

/// `leadflow bulk`: one transition over a list of records or a filter;
/// the per-record report as CSV on stdout, the totals on stderr.
pub fn bulk_run(a: BulkArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (b, wf, _) = open(&a.store, &a.workflow).await?;
        let action = match (&a.transition, &a.reassign_to) {
            (Some(t), None) => {
                if wf.transition(t).is_none() {
                    anyhow::bail!("workflow `{}` has no transition `{t}`", wf.id);
                }
                bulk::ops::Action::Transition(t.clone())
            }
            (None, Some(to)) => bulk::ops::Action::Reassign(to.clone()),
            _ => anyhow::bail!("give either --transition or --reassign-to, not both"),
        };
        let input = match &a.input {
            None => Vec::new(),
            Some(text) => {
                let v: serde_json::Value = serde_json::from_str(text)
                    .context("--input: a JSON object such as '{\"close_reason\":\"other\"}'")?;
                let serde_json::Value::Object(m) = v else {
                    anyhow::bail!(
                        "--input: a JSON object such as '{{\"close_reason\":\"other\"}}'"
                    );
                };
                m.iter()
                    .map(|(k, v)| (k.clone(), leadflow_engine::Value::from_json(v)))
                    .collect()
            }
        };
        let ids = match &a.ids {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<i64>()
                            .with_context(|| format!("--ids: `{s}` is not a record id"))
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        if ids.is_some() && !a.filter.is_empty() {
            anyhow::bail!("give either --ids or --filter, not both");
        }
        let filter = export::Filter::parse(&wf, &a.filter).map_err(anyhow::Error::msg)?;
        let req = bulk::ops::BulkRequest {
            action,
            input,
            ids,
            filter,
            dry_run: a.dry_run,
            batch: a.batch.max(1),
        };
        // Fired as an actor of the directory, or as `bulk` with a role
        // (default: the first the transition's `by` allows).
        let supervisor = match (&a.actor, &a.role) {
            (Some(id), _) => b
                .actors()
                .await?
                .into_iter()
                .find(|x| &x.id == id)
                .with_context(|| {
                    format!(
                        "--actor {id}: tenant `{}` has no such actor",
                        a.store.tenant
                    )
                })?,
            (None, role) => leadflow_engine::Actor {
                id: "bulk".into(),
                role: role.clone().unwrap_or_else(|| {
                    a.transition
                        .as_deref()
                        .and_then(|t| wf.transition(t))
                        .and_then(|t| wf.transitions[t].by.first().cloned())
                        .unwrap_or_else(|| "system".into())
                }),
                ..leadflow_engine::Actor::default()
            },
        };
        let now = chrono::Utc::now;
        let report = bulk::ops::run(&b, b.versions(), &wf, &req, &supervisor, None, &now).await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["id", "outcome", "code", "message"])?;
        for r in &report.records {
            w.write_record([
                r.id.to_string().as_str(),
                r.outcome,
                r.code.as_deref().unwrap_or(""),
                r.message.as_deref().unwrap_or(""),
            ])?;
        }
        let text = String::from_utf8(w.into_inner()?)?;
        crate::out!("{text}")?;
        let verb = if a.dry_run { "would fire" } else { "fired" };
        eprintln!("{verb} {}, refused {}", report.fired, report.refused);
        Ok(ExitCode::SUCCESS)
    })
}
