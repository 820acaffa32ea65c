//! One function per command.

mod bulk;
mod calendar;
mod check;
mod fmt;
mod graph;
mod init;
mod kpi;
mod render;
mod serve;
mod test;
mod why;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let color = cli.color;
    match cli.command {
        Command::Check {
            paths,
            root,
            format,
            deny_warnings,
        } => check::run(paths, root, format, deny_warnings, color.stdout()),
        Command::Graph { file, format, root } => graph::run(file, format, root, color.stderr()),
        Command::Schema => {
            crate::outln!("{}", schema_json())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { code } => explain(&code),
        Command::Calendar {
            name,
            from,
            add,
            holidays,
            root,
        } => calendar::run(&name, from, add, holidays, root),
        Command::Test {
            paths,
            filter,
            format,
            database_url,
            generate,
        } => test::run(test::Args {
            paths,
            filter,
            format,
            database_url,
            generate,
        }),
        Command::Serve {
            config,
            listen,
            database_url,
            log_format,
        } => serve::run(serve::Args {
            config,
            listen,
            database_url,
            json_logs: log_format == crate::cli::Format::Json,
            color: color.stdout(),
        }),
        Command::Kpi {
            config,
            database_url,
            tenant,
            workflow,
            names,
            period,
            from,
            to,
            group_by,
            show_sql,
            format,
        } => kpi::kpi(kpi::KpiArgs {
            store: kpi::StoreArgs {
                config,
                database_url,
                tenant,
            },
            workflow,
            names,
            period,
            from,
            to,
            group_by,
            show_sql,
            json: format == crate::cli::Format::Json,
        }),
        Command::Report {
            config,
            database_url,
            tenant,
            workflow,
            name,
            period,
            show_sql,
            format,
        } => kpi::report(kpi::ReportArgs {
            store: kpi::StoreArgs {
                config,
                database_url,
                tenant,
            },
            workflow,
            name,
            period,
            show_sql,
            format,
        }),
        Command::Import {
            config,
            database_url,
            tenant,
            workflow,
            file,
            format,
            map,
            dedup,
            on_duplicate,
            update_with,
            key,
            report,
            batch,
            country,
        } => bulk::import(bulk::ImportArgs {
            store: kpi::StoreArgs {
                config,
                database_url,
                tenant,
            },
            workflow,
            file,
            format,
            map,
            dedup,
            on_duplicate,
            update_with,
            key,
            report,
            batch,
            country,
        }),
        Command::Export {
            config,
            database_url,
            tenant,
            workflow,
            filter,
            format,
            actor,
            output,
        } => bulk::export(bulk::ExportArgs {
            store: kpi::StoreArgs {
                config,
                database_url,
                tenant,
            },
            workflow,
            filter,
            format,
            actor,
            output,
        }),
        Command::Bulk {
            config,
            database_url,
            tenant,
            workflow,
            transition,
            reassign_to,
            input,
            ids,
            filter,
            dry_run,
            batch,
            actor,
            role,
        } => bulk::bulk_run(bulk::BulkArgs {
            store: kpi::StoreArgs {
                config,
                database_url,
                tenant,
            },
            workflow,
            transition,
            reassign_to,
            input,
            ids,
            filter,
            dry_run,
            batch,
            actor,
            role,
        }),
        Command::Completions { shell } => completions(shell),
        Command::Lsp => crate::lsp::run(),
        Command::Why {
            record_json,
            transition,
            actor,
            role,
            input,
            at,
            root,
            format,
        } => why::run(why::Args {
            record_json,
            transition,
            actor,
            role,
            input,
            at,
            root,
            format,
        }),
        Command::Render {
            template,
            record_json,
            lang,
            to,
            html,
            root,
        } => render::run(render::Args {
            template,
            record_json,
            lang,
            to,
            html,
            root,
        }),
        Command::Init { dir } => init::run(&dir),
        Command::Fmt { paths, check } => fmt::run(paths, check),
        Command::Db {
            action: crate::cli::DbCommand::Migrate { database_url },
        } => serve::db_migrate(&database_url),
        Command::Db {
            action: crate::cli::DbCommand::Distribute { database_url },
        } => serve::db_distribute(&database_url),
        Command::Migrate {
            config,
            database_url,
            tenant,
            workflow,
            from,
            to,
            map,
            dry_run,
            timers,
        } => serve::migrate(serve::MigrateArgs {
            config,
            database_url,
            tenant,
            workflow,
            from,
            to,
            map,
            dry_run,
            timers,
        }),
    }
}

/// A completion script for `shell`, generated from the clap definitions
/// (so it never drifts from the commands).
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::cli::Cli::command(),
        "leadflow",
        &mut script,
    );
    crate::out::stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

/// The schema as committed in docs/workflow.schema.json.
pub fn schema_json() -> String {
    serde_json::to_string_pretty(&leadflow_engine::workflow_schema()).unwrap_or_default()
}

fn explain(code: &str) -> anyhow::Result<ExitCode> {
    if let Some(e) = leadflow_engine::diag::explain(code) {
        crate::outln!(
            "{}: {}\n\nhelp: {}\n\nExamples of the broken input and the fix: docs/diagnostics.md#{}",
            e.code,
            e.title,
            e.hint,
            e.code.to_lowercase()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(c) = leadflow_runtime::http::codes::lookup(&code.to_ascii_uppercase()) {
        crate::outln!(
            "{}: HTTP {} {}\n\n{}\n\nSee: docs/api.md#errors (a running daemon serves it at GET /errors/{})",
            c.code,
            c.status,
            c.title,
            c.description,
            c.code
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(c) = crate::codes::find(code) {
        crate::outln!(
            "{}: {}\n\nhelp: {}\n\nSee: {}",
            c.code,
            c.title,
            c.hint,
            c.see
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::errln!(
        "unknown code `{code}`; codes look like E004, W001, E_GUARD, S001 or E_CONFLICT (see docs/diagnostics.md)"
    );
    Ok(ExitCode::from(2))
}
