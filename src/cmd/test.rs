//! `leadflow test`: replay scenario files on a virtual clock.

use crate::cli::Format;
use leadflow_runtime::scenario::files::find_scenarios;
use leadflow_runtime::scenario::suite::{run_files, Mem, Options};
use leadflow_runtime::scenario::{generate, Summary};
use std::path::PathBuf;
use std::process::ExitCode;

pub struct Args {
    pub paths: Vec<PathBuf>,
    pub filter: Option<String>,
    pub format: Format,
    pub database_url: Option<String>,
    pub generate: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(leads) = args.generate {
        let root = std::env::current_dir()?;
        print!(
            "{}",
            generate::toml(&generate::Plan::new(leads), &root.display().to_string())
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(url) = &args.database_url {
        anyhow::bail!(
            "--database-url {}: replay through a SQL store is not available in this build yet; run without it to use the in-memory store",
            redact(url)
        );
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("tests/scenarios")]
    } else {
        args.paths
    };
    let files = find_scenarios(&paths)?;
    let results = run_files(
        &files,
        &Options {
            filter: args.filter,
        },
        &Mem,
    );
    let summary = Summary::of(&results);
    match args.format {
        Format::Human => {
            for r in &results {
                println!("{}", r.human());
            }
            println!("{summary}");
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
