//! Command-line interface definition (clap). Every argument has a help
//! line and every command an example (`after_help`); a test checks both.

use crate::color::ColorMode;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `0.1.0 (abc1234)`: the crate version and the commit it was built from
/// (build.rs; `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LEADFLOW_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "leadflow",
    version = VERSION,
    about = "A workflow and rules engine for lead lifecycles, driven by config files",
    after_help = "Examples:\n  leadflow check                      # the project around the current directory\n  leadflow test                       # replay its scenarios\n  leadflow serve --config leadflow.toml\n\nA project is found upward from the current directory (or from the path given):\nthe nearest directory holding workflows/, rules/ or calendars/."
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
    /// Text for people.
    Human,
    /// JSON for tools.
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum BulkFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnDuplicate {
    /// Leave the line out (counted as skipped).
    Skip,
    /// Fire --update-with on the record it duplicates.
    Update,
    /// Refuse the line (E_IMPORT_DUPLICATE in the report).
    Error,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Text for people.
    Human,
    /// JSON for tools.
    Json,
    /// CSV for spreadsheets.
    Csv,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart (renders on GitHub and in docs/graphs/).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load and check workflow files; report every finding.
    #[command(
        after_help = "Examples:\n  leadflow check\n  leadflow check workflows/aslm.toml --format json\n  leadflow check --deny-warnings\n\nExit codes: 0 clean (warnings allowed), 1 findings, 2 the command failed."
    )]
    Check {
        /// Workflow files or directories (default: the project's workflows/).
        paths: Vec<PathBuf>,
        /// Project root holding rules/ and calendars/ (default: found upward from the paths).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Output: human (source line and caret) or json.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Fail (exit 1) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Draw a workflow's state graph.
    #[command(
        after_help = "Examples:\n  leadflow graph workflows/aslm.toml\n  leadflow graph workflows/aslm.toml --format dot | dot -Tsvg > aslm.svg"
    )]
    Graph {
        /// The workflow file to draw.
        file: PathBuf,
        /// Output: mermaid or dot.
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormat,
        /// Project root holding rules/ and calendars/ (default: found upward from the file).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print the JSON Schema of the workflow file format (for editors).
    #[command(after_help = "Example:\n  leadflow schema > docs/workflow.schema.json")]
    Schema,
    /// Explain a diagnostic, refusal, scenario or API error code.
    #[command(
        after_help = "Examples:\n  leadflow explain E004\n  leadflow explain E_GUARD\n  leadflow explain S005"
    )]
    Explain {
        /// The code, in any case: E004, W001, E_GUARD, S001, E_CONFLICT, ...
        code: String,
    },
    /// Business-calendar arithmetic: when does an SLA fall due?
    #[command(
        after_help = "Examples:\n  leadflow calendar it --from 2026-11-20T17:30:00+01:00 --add 24wh\n  leadflow calendar it --holidays 2026\n  leadflow calendar always --from 2026-11-21T10:00:00Z --add 2wh   # built in"
    )]
    Calendar {
        /// Calendar name: calendars/<name>.toml of the project, or the built-in `always`.
        name: String,
        /// Start instant, RFC 3339 (e.g. 2026-11-20T17:30:00+01:00).
        #[arg(long)]
        from: Option<String>,
        /// Duration to add: 24wh, 2wd, 60d, 90m.
        #[arg(long)]
        add: Option<String>,
        /// List the closed days (holidays) of a year.
        #[arg(long, value_name = "YEAR")]
        holidays: Option<i32>,
        /// Project root holding calendars/ (default: found upward from the current directory).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Replay scenario files on a virtual clock (docs/scenarios.md).
    #[command(
        after_help = "Examples:\n  leadflow test\n  leadflow test tests/scenarios/aslm --filter assignment\n  leadflow test --database-url sqlite:/tmp/replay.db"
    )]
    Test {
        /// Scenario files or directories (default: the project's tests/scenarios/).
        paths: Vec<PathBuf>,
        /// Run only scenarios whose path or name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Output: human (one line per scenario) or json.
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
    #[command(
        after_help = "Examples:\n  leadflow serve --config examples/leadflow.toml\n  leadflow serve --config leadflow.toml --listen 0.0.0.0:8080 --log-format json\n\nLogs go to standard output."
    )]
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
        /// Log lines: human or json.
        #[arg(long, value_enum, default_value = "human")]
        log_format: Format,
    },
    /// Database administration (docs/security.md).
    #[command(
        after_help = "Example:\n  leadflow db migrate --database-url postgres://owner@127.0.0.1/leadflow"
    )]
    Db {
        #[command(subcommand)]
        action: DbCommand,
    },
    /// Move a workflow's records from one version to another (checked).
    #[command(
        after_help = "Example:\n  leadflow migrate --tenant aslm --workflow aslm --from 3f2a... --to 9c1b... --map contacted=attempted --dry-run\n\nVersions (content hashes) are listed by GET /v1/workflows. Armed timers whose definition changed are recomputed\nfrom when they were armed, dropped ones cancelled (--timers keep: left as they are); --dry-run lists them per record."
    )]
    Migrate {
        /// The daemon's config (the tenant's project and database).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `database_url`.
        #[arg(long)]
        database_url: Option<String>,
        /// The tenant whose records move.
        #[arg(long)]
        tenant: String,
        /// The workflow id whose records move.
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
        /// Check and report (each record's timer changes too), change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Armed timers the target version defines differently or drops:
        /// `recompute` them from when they were armed (or cancel them), or
        /// `keep` them as they are.
        #[arg(long, default_value = "recompute", value_parser = ["keep", "recompute"])]
        timers: String,
    },
    /// Create a new project: a workflow, its rules, a calendar, scenarios and a daemon config.
    #[command(
        after_help = "Examples:\n  leadflow init my-leads && cd my-leads && leadflow check && leadflow test\n  leadflow init            # in the current directory, if it is empty\n\nThe admin API key is printed once; leadflow.toml keeps only its SHA-256."
    )]
    Init {
        /// The project directory: new, or empty (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Rewrite workflow files in canonical layout (key order, spacing), keeping comments.
    #[command(
        after_help = "Examples:\n  leadflow fmt                        # the project's workflows/\n  leadflow fmt --check                # CI: exit 1 and list the files that would change\n  leadflow fmt workflows/aslm.toml\n\nOrder: [workflow], [fields.*], [states.*], [transitions.*], [timers.*], [views.*], [kpis.*],\n[reports.*]; keys as in docs/workflow-format.md. Values and comments are kept as written."
    )]
    Fmt {
        /// Workflow files or directories (default: the project's workflows/).
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that are not formatted and exit 1 if any.
        #[arg(long)]
        check: bool,
    },
    /// Why not? Explain every reason a transition is refused now on a record.
    #[command(
        after_help = "Examples:\n  curl -s -H \"Authorization: Bearer $KEY\" http://127.0.0.1:8080/v1/records/42 > lead.json\n  leadflow why --record-json lead.json close_sale --actor dealer-rm --role dealer\n  leadflow why --record-json lead.json close_sale --input '{\"vin\": \"ZAM...\"}' --format json\n\nExit codes: 0 the transition would be accepted, 1 refused (every reason listed), 2 the command failed."
    )]
    Why {
        /// The record as JSON, as `GET /v1/records/{id}` answers it (workflow, state, fields, assignee, ...).
        #[arg(long, value_name = "FILE")]
        record_json: PathBuf,
        /// The transition to explain.
        transition: String,
        /// The actor id firing it (default: cli).
        #[arg(long)]
        actor: Option<String>,
        /// The actor's role (default: the first role in the transition's `by`).
        #[arg(long)]
        role: Option<String>,
        /// The input the transition would get, as a JSON object (`{"notes": "..."}`).
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// The instant to check at, RFC 3339 (default: now).
        #[arg(long, value_name = "INSTANT")]
        at: Option<String>,
        /// Project root holding workflows/, rules/ and calendars/ (default: found upward from the current directory).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Output: human or json.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Compute a workflow's KPIs in the store (docs/kpis.md), as GET /v1/kpis does.
    #[command(
        after_help = "Examples:\n  leadflow kpi --tenant aslm aslm --period 2025-Q1 --group-by assignee\n  leadflow kpi --tenant aslm aslm sla1 sla2 --from 2025-01-01 --to 2025-03-31 --format json\n  leadflow kpi --tenant cc cc_lead conversion_by_zone --period 2025 --group-by zone,month\n\nPeriods: 2025-Q1, 2025-03, 2025-W10, 2025-03-04, 2025, 2025-01-01..2025-03-31 (the workflow calendar's zone)."
    )]
    Kpi {
        /// The daemon's config (the tenant's project and database).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `database_url`.
        #[arg(long)]
        database_url: Option<String>,
        /// The tenant whose records count.
        #[arg(long)]
        tenant: String,
        /// The workflow id.
        workflow: String,
        /// KPI names (default: every KPI of the workflow).
        names: Vec<String>,
        /// A period: 2025-Q1, 2025-03, 2025-W10, 2025-03-04, 2025 or 2025-01-01..2025-03-31.
        #[arg(long)]
        period: Option<String>,
        /// Start: a day (2025-01-01) or an RFC 3339 instant.
        #[arg(long)]
        from: Option<String>,
        /// End: a day (included) or an RFC 3339 instant (excluded).
        #[arg(long)]
        to: Option<String>,
        /// Group by: assignee, state, a field, day, week, month, quarter, year (comma-separated).
        #[arg(long)]
        group_by: Option<String>,
        /// Print the SQL each KPI becomes (postgres or sqlite) instead of computing it.
        #[arg(long, value_name = "DIALECT")]
        show_sql: Option<String>,
        /// Output: human or json.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Compute a report for a period in the store, as GET /v1/reports does.
    #[command(
        after_help = "Examples:\n  leadflow report --tenant oplead oplead_project billing --period 2025-Q1\n  leadflow report --tenant oplead oplead_project billing --period 2025-Q1 --format csv > billing.csv\n  leadflow report --tenant socrate soc_lead leads_weekly --period 2025-W10"
    )]
    Report {
        /// The daemon's config (the tenant's project and database).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `database_url`.
        #[arg(long)]
        database_url: Option<String>,
        /// The tenant whose records count.
        #[arg(long)]
        tenant: String,
        /// The workflow id.
        workflow: String,
        /// The report name.
        name: String,
        /// A period: 2025-Q1, 2025-03, 2025-W10, 2025-03-04, 2025 or 2025-01-01..2025-03-31 (default: the whole history).
        #[arg(long)]
        period: Option<String>,
        /// Print the SQL the report becomes (postgres or sqlite) instead of computing it.
        #[arg(long, value_name = "DIALECT")]
        show_sql: Option<String>,
        /// Output: human, json or csv.
        #[arg(long, value_enum, default_value = "human")]
        format: TableFormat,
    },
    /// Import records from a CSV (header row) or NDJSON file, each as a real create (docs/import.md).
    #[command(
        after_help = "Examples:\n  leadflow import --config leadflow.toml --tenant callcenter --workflow cc_lead leads.csv --dedup phone,email\n  leadflow import --tenant callcenter --workflow cc_lead leads.csv --map Telefono=phone,Provincia=province\n  leadflow import --tenant callcenter --workflow cc_lead leads.csv --dedup phone --on-duplicate update --update-with edit_inline\n  gunzip -c leads.csv.gz | leadflow import --tenant callcenter --workflow cc_lead --key leads-2026-03 -\n\nRefused lines go to <file>.rejects.csv (line, column, code, message, then the line): fix them there and\nimport that file. Running the same file again imports only what is missing (the import key is the\nfile's SHA-256 unless --key is given). Exit code 1 when lines were rejected."
    )]
    Import {
        /// The daemon's config (the tenant's project and database).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `database_url`.
        #[arg(long)]
        database_url: Option<String>,
        /// The tenant the records belong to.
        #[arg(long)]
        tenant: String,
        /// The workflow of the records.
        #[arg(long)]
        workflow: String,
        /// The input file; `-` reads standard input.
        file: PathBuf,
        /// Input format (default: from the file name, CSV for stdin).
        #[arg(long, value_enum)]
        format: Option<BulkFormat>,
        /// Map a column to a field: `--map Telefono=phone` (repeatable or comma-separated).
        #[arg(long, value_name = "COLUMN=FIELD")]
        map: Vec<String>,
        /// Fields whose normalised values identify a record (phones by digits with country prefix, text lower-case).
        #[arg(long, value_name = "FIELDS")]
        dedup: Option<String>,
        /// What to do with a duplicate line.
        #[arg(long, value_enum, default_value = "skip")]
        on_duplicate: OnDuplicate,
        /// The transition `--on-duplicate update` fires (its input fields are updated).
        #[arg(long, value_name = "TRANSITION")]
        update_with: Option<String>,
        /// Import key: lines committed under it are not imported again (default: the file's SHA-256).
        #[arg(long)]
        key: Option<String>,
        /// Where refused lines go (default: <file>.rejects.csv beside the input).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Lines per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Country prefix of phones written without one.
        #[arg(long, default_value = "39")]
        country: String,
    },
    /// Export records as CSV or NDJSON, as an admin or a given actor would see them.
    #[command(
        after_help = "Examples:\n  leadflow export --config leadflow.toml --tenant callcenter --workflow cc_lead > leads.csv\n  leadflow export --tenant callcenter --workflow cc_lead --filter state=new,in_progress --filter zone=centro --format ndjson\n  leadflow export --tenant qpartner --workflow qpartner --actor inst-a -o mine.csv   # what inst-a may see\n\nFilters: state=a,b  assignee=ID (- for unassigned)  open=true  <field>=value."
    )]
    Export {
        /// The daemon's config (the tenant's project and database).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `database_url`.
        #[arg(long)]
        database_url: Option<String>,
        /// The tenant whose records are exported.
        #[arg(long)]
        tenant: String,
        /// The workflow of the records.
        #[arg(long)]
        workflow: String,
        /// A condition (repeatable): state=a,b, assignee=ID, open=true, <field>=value.
        #[arg(long)]
        filter: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: BulkFormat,
        /// Export as this actor sees the records (visibility, pii redaction); default: admin.
        #[arg(long)]
        actor: Option<String>,
        /// Output file (default: standard output).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Fire one transition over a list of records or every open record a filter selects (docs/import.md).
    #[command(
        after_help = "Examples:\n  leadflow bulk --config leadflow.toml --tenant callcenter --workflow cc_lead --transition close_not_interested \\\n      --input '{\"close_reason\":\"other\"}' --filter state=new --filter zone=isole --dry-run\n  leadflow bulk --tenant callcenter --workflow cc_lead --transition mark_invalid --ids 17,18,42 --input '{\"close_reason\":\"wrong_number\"}'\n\nPrints id,outcome,code,message per record (outcome fired, would_fire or refused) and the totals on stderr.\n--dry-run runs the same batches and rolls them back: its report is what the real run does."
    )]
    Bulk {
        /// The daemon's config (the tenant's project and database).
        #[arg(long, default_value = "leadflow.toml")]
        config: PathBuf,
        /// Override `database_url`.
        #[arg(long)]
        database_url: Option<String>,
        /// The tenant of the records.
        #[arg(long)]
        tenant: String,
        /// The workflow of the records.
        #[arg(long)]
        workflow: String,
        /// The transition to fire on each record.
        #[arg(
            long,
            required_unless_present = "reassign_to",
            conflicts_with = "reassign_to"
        )]
        transition: Option<String>,
        /// Move each record to this actor instead (history and actor loads follow; state, fields and timers stay).
        #[arg(long, value_name = "ACTOR")]
        reassign_to: Option<String>,
        /// The transition's input, a JSON object.
        #[arg(long)]
        input: Option<String>,
        /// Record ids, comma-separated (instead of --filter).
        #[arg(long)]
        ids: Option<String>,
        /// A condition (repeatable): state=a,b, assignee=ID (- for none), <field>=value. Open records only.
        #[arg(long)]
        filter: Vec<String>,
        /// Report what would happen per record; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Records per transaction.
        #[arg(long, default_value_t = 200)]
        batch: usize,
        /// Fire as this actor of the directory.
        #[arg(long)]
        actor: Option<String>,
        /// Fire as `bulk` with this role (default: the first role the transition's `by` allows).
        #[arg(long)]
        role: Option<String>,
    },
    /// Render a message template for a record, as its recipient would get it.
    #[command(
        after_help = "Examples:\n  leadflow render proposal --record-json lead.json              # to the record's assignee\n  leadflow render appointment_confirmation --record-json l.json --to customer --lang en\n  curl -H \"Authorization: Bearer $KEY\" $URL/v1/records/42 > lead.json   # a record as the API returns it\n\nThe record JSON has `workflow`, `state`, `assignee` and `fields` (the API's record shape);\nthe fields pass through the privacy rule for the recipient. Templates: <root>/templates/."
    )]
    Render {
        /// The template id, as a notify names it (e.g. proposal).
        template: String,
        /// A record as JSON: {"workflow": ..., "state": ..., "assignee": ..., "fields": {...}}.
        #[arg(long, value_name = "FILE")]
        record_json: PathBuf,
        /// The language to render in (default: the recipient's, then the template's fallback).
        #[arg(long)]
        lang: Option<String>,
        /// The recipient: assignee (default), customer, an actor id or an e-mail address.
        #[arg(long, default_value = "assignee")]
        to: String,
        /// Also print the HTML part, if the template has one.
        #[arg(long)]
        html: bool,
        /// Project root holding workflows/ and templates/ (default: found upward from the current directory).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  leadflow completions bash > ~/.local/share/bash-completion/completions/leadflow\n  leadflow completions zsh > ~/.zfunc/_leadflow      # with fpath+=(~/.zfunc) before compinit\n  leadflow completions fish > ~/.config/fish/completions/leadflow.fish"
    )]
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run the language server on stdin/stdout (for editors; docs/editors.md).
    #[command(
        after_help = "Example: Helix, in languages.toml:\n  [language-server.leadflow]\n  command = \"leadflow\"\n  args = [\"lsp\"]\n\nDiagnostics as you type (the codes of `leadflow check`), completion, hover,\ngo to definition and rename of states and fields. Set-up for VS Code,\nNeovim and Helix: docs/editors.md."
    )]
    Lsp,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create or update the PostgreSQL schema, as its owner. The daemon then
    /// runs as a login role in `leadflow_app` and only checks the schema.
    #[command(
        after_help = "Example:\n  leadflow db migrate --database-url postgres://owner@127.0.0.1/leadflow"
    )]
    Migrate {
        /// URL of the schema owner (not the daemon's login).
        #[arg(long)]
        database_url: String,
    },
    /// Distribute an existing database over its Citus cluster (after
    /// `CREATE EXTENSION citus` and the workers were added): every table not
    /// distributed yet moves to the shards by tenant. Stop the daemons
    /// first; it is one transaction, so run it again after a failure.
    #[command(
        after_help = "Example:\n  leadflow db distribute --database-url postgres://owner@coordinator/leadflow"
    )]
    Distribute {
        /// URL of the schema owner on the Citus coordinator.
        #[arg(long)]
        database_url: String,
    },
}
