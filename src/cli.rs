//! Command-line interface definition (clap).

use crate::color::ColorMode;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "leadflow",
    version,
    about = "A workflow and rules engine for lead lifecycles, driven by config files"
)]
pub struct Cli {
    /// When to colour output: auto (only on a terminal, not with NO_COLOR set), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub color: ColorMode,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load and check workflow files; report every finding.
    Check {
        /// Workflow files or directories (default: workflows/).
        paths: Vec<PathBuf>,
        /// Project root holding rules/ and calendars/ (default: found from the paths).
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Draw a workflow's state graph.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormat,
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print the JSON Schema of the workflow file format (for editors).
    Schema,
    /// Explain a diagnostic or refusal code (E004, W001, E_GUARD, ...).
    Explain { code: String },
    /// Business-calendar arithmetic: when does an SLA fall due?
    Calendar {
        /// Calendar name (calendars/<name>.toml).
        name: String,
        /// Start instant, RFC 3339 (e.g. 2026-11-20T17:30:00+01:00).
        #[arg(long)]
        from: Option<String>,
        /// Duration to add: 24wh, 2wd, 60d, 90m.
        #[arg(long)]
        add: Option<String>,
        /// List the closed days (holidays) of a year.
        #[arg(long)]
        holidays: Option<i32>,
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Replay scenario files on a virtual clock (docs/scenarios.md).
    Test {
        /// Scenario files or directories (default: tests/scenarios/).
        paths: Vec<PathBuf>,
        /// Run only scenarios whose path or name contains this.
        #[arg(long)]
        filter: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Replay through a SQL store (postgres:// or sqlite:) instead of memory.
        #[arg(long)]
        database_url: Option<String>,
        /// Print a generated ASLM scenario with this many leads (benchmarks).
        #[arg(long, hide = true)]
        generate: Option<usize>,
    },
    /// Run the multi-tenant HTTP daemon (API, timer worker, outbox, hot reload).
    Serve {
        /// The daemon's config (examples/leadflow.toml shows every key).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `listen` (host:port).
        #[arg(long)]
        listen: Option<String>,
        /// Override `database_url` (default: sqlite:leadflow.db).
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        log_format: Format,
    },
    /// Database administration (docs/security.md).
    Db {
        #[command(subcommand)]
        action: DbCommand,
    },
    /// Move a workflow's records from one version to another (checked).
    Migrate {
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        workflow: String,
        /// Version (content hash) the records are on.
        #[arg(long)]
        from: String,
        /// Version to move them to: the one currently on disk.
        #[arg(long)]
        to: String,
        /// State renames, old=new,...; other states keep their name.
        #[arg(long)]
        map: Option<String>,
        /// Check and report, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create or update the PostgreSQL schema, as its owner. The daemon then
    /// runs as a login role in `leadflow_app` and only checks the schema.
    Migrate {
        /// URL of the schema owner (not the daemon's login).
        #[arg(long)]
        database_url: String,
    },
}
