//! `leadflow test`: replay scenario files on a virtual clock.

use crate::cli::Format;
use leadflow_runtime::scenario::files::find_scenarios;
use leadflow_runtime::scenario::suite::{run_files, Mem, Options, Url};
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
        crate::out!(
            "{}",
            generate::toml(&generate::Plan::new(leads), &root.display().to_string())
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let paths = if args.paths.is_empty() {
        // No path: the scenarios of the project around the current directory.
        let root = crate::project::root_here()?;
        vec![crate::project::shown(&root.join("tests").join("scenarios"))]
    } else {
        args.paths
    };
    let files = find_scenarios(&paths)?;
    let opts = Options {
        filter: args.filter,
    };
    let results = match &args.database_url {
        None => run_files(&files, &opts, &Mem),
        Some(url) => run_files(&files, &opts, &Url::new(url)),
    };
    let summary = Summary::of(&results);
    match args.format {
        Format::Human => {
            for r in &results {
                crate::outln!("{}", r.human())?;
            }
            crate::outln!("{summary}")?;
        }
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&results)?)?,
    }
    Ok(if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
