//! `leadflow serve`: the multi-tenant HTTP daemon, and `leadflow migrate`.
//! Glue only: the daemon lives in `leadflow_runtime::http`.

use anyhow::{bail, Context, Result};
use leadflow_runtime::config::Config;
use leadflow_runtime::http::{ServeOptions, Server};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub struct Args {
    pub config: PathBuf,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub json_logs: bool,
    /// ANSI colours in the logs (written to stdout).
    pub color: bool,
}

pub(crate) fn load_config(path: &Path) -> Result<Config> {
    if !path.exists() {
        bail!(
            "no config at {} (try --config examples/leadflow.toml)",
            path.display()
        );
    }
    Ok(Config::load(path)?)
}

fn init_logs(json: bool, color: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // tracing's formatter colours by default, even into a file.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color && !json);
    let _ = if json {
        b.json().try_init()
    } else {
        b.try_init()
    };
}

pub fn run(a: Args) -> Result<ExitCode> {
    init_logs(a.json_logs, a.color);
    let mut config = load_config(&a.config)?;
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(u) = a.database_url {
        config.database_url = Some(u);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let server = Server::start(&config, ServeOptions::default()).await?;
        server.run_until(shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// `leadflow db migrate`: apply the PostgreSQL migrations as the owner.
pub fn db_migrate(url: &str) -> Result<ExitCode> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!(
            "`leadflow db migrate` is for PostgreSQL URLs; SQLite stores migrate when they open"
        );
    }
    let rt = tokio::runtime::Runtime::new()?;
    let applied = rt.block_on(leadflow_runtime::pg_roles::migrate(url))?;
    crate::outln!(
        "schema at migration {} ({} applied)",
        applied.last().copied().unwrap_or_default(),
        applied.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `leadflow db distribute`: migrate, then distribute every table of an
/// existing database that is not distributed yet over its Citus cluster.
pub fn db_distribute(url: &str) -> Result<ExitCode> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("`leadflow db distribute` is for the PostgreSQL URL of a Citus coordinator");
    }
    let rt = tokio::runtime::Runtime::new()?;
    let tables = rt.block_on(leadflow_runtime::pg_roles::distribute(url))?;
    if tables.is_empty() {
        crate::outln!("every table is already distributed")?;
    } else {
        crate::outln!(
            "distributed {} tables by tenant: {}",
            tables.len(),
            tables.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub struct MigrateArgs {
    pub config: PathBuf,
    pub database_url: Option<String>,
    pub tenant: String,
    pub workflow: String,
    pub from: String,
    pub to: String,
    pub map: Option<String>,
    pub dry_run: bool,
    /// `keep` or `recompute`.
    pub timers: String,
}

pub fn migrate(a: MigrateArgs) -> Result<ExitCode> {
    let mut config = load_config(&a.config)?;
    if let Some(u) = a.database_url {
        config.database_url = Some(u);
    }
    let tc = config
        .tenants
        .get(&a.tenant)
        .with_context(|| format!("no tenant `{}` in {}", a.tenant, a.config.display()))?;
    let map = leadflow_runtime::migrate::parse_map(a.map.as_deref().unwrap_or(""))
        .map_err(|e| anyhow::anyhow!("--map {e}"))?;
    let (set, _, snapshot) =
        leadflow_runtime::http::state::load_project(tc).map_err(|(d, e)| {
            anyhow::anyhow!(
                "the workflow files have errors ({}); run `leadflow check`",
                e.unwrap_or_else(|| format!("{} findings", d.len()))
            )
        })?;
    let wf = set
        .get(&a.workflow)
        .with_context(|| format!("tenant `{}` has no workflow `{}`", a.tenant, a.workflow))?
        .clone();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let set = std::sync::Arc::new(set);
        let b = leadflow_runtime::open(config.database_url(), &a.tenant, set.clone()).await?;
        // The target version must be rebuildable after a restart, even if
        // no daemon has loaded these files yet.
        if !a.dry_run {
            b.register_snapshot(&snapshot, &set).await?;
        }
        let mode: leadflow_runtime::migrate::TimerMode = a
            .timers
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--timers {e}"))?;
        let report = leadflow_runtime::migrate::migrate(
            &b,
            &a.tenant,
            &wf,
            &leadflow_runtime::migrate::Plan {
                from: &a.from,
                to: &a.to,
                map: &map,
                dry_run: a.dry_run,
                timers: mode,
            },
            chrono::Utc::now(),
        )
        .await?;
        let moved = report.moved;
        let total: u64 = moved.iter().map(|m| m.records).sum();
        for m in &moved {
            crate::outln!("{} -> {}: {} records", m.from_state, m.to_state, m.records)?;
        }
        use leadflow_runtime::migrate::TimerAction;
        let (will, did) = if a.dry_run {
            ("would be", "would be")
        } else {
            ("is", "was")
        };
        for c in &report.timers {
            let due = c.due.to_rfc3339();
            let what = match &c.action {
                TimerAction::Recomputed(Some(t)) => {
                    format!("due {due} -> {} ({did} recomputed)", t.to_rfc3339())
                }
                TimerAction::Recomputed(None) => {
                    format!("due {due}: {will} cancelled (its `at` gives nothing now)")
                }
                TimerAction::Cancelled => format!("due {due}: {will} cancelled"),
                TimerAction::Kept => format!("due {due}: kept (--timers keep)"),
            };
            crate::outln!(
                "record {}: timer `{}` {what}: {}",
                c.record,
                c.timer,
                c.reason
            )?;
        }
        let verb = if a.dry_run { "would move" } else { "moved" };
        crate::outln!(
            "{verb} {total} records of `{}` from {} to {}",
            a.workflow,
            a.from,
            a.to
        )?;
        Ok(ExitCode::SUCCESS)
    })
}
