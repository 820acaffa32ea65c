//! `leadflow fmt [--check] [PATHS]`: workflow files in canonical layout
//! (src/fmt.rs).

use crate::project;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: Vec<PathBuf>, check: bool) -> Result<ExitCode> {
    let paths = if paths.is_empty() {
        vec![project::shown(&project::root_here()?.join("workflows"))]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in &paths {
        if p.is_dir() {
            files.extend(project::walk(p, "toml")?);
        } else {
            files.push(p.clone());
        }
    }
    let (mut changed, mut broken) = (0, 0);
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        let formatted = match crate::fmt::format(&text) {
            Ok(t) => t,
            Err(e) => {
                crate::errln!(
                    "{}: not valid TOML, left as it is (`leadflow check` shows where):\n{e}",
                    f.display()
                );
                broken += 1;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        changed += 1;
        if check {
            crate::outln!("{}", f.display())?;
        } else {
            std::fs::write(f, formatted)
                .with_context(|| format!("cannot write {}", f.display()))?;
            crate::outln!("formatted {}", f.display())?;
        }
    }
    if check && changed > 0 {
        crate::errln!("{changed} file(s) would be reformatted; run `leadflow fmt`");
    }
    Ok(if broken > 0 {
        ExitCode::from(2)
    } else if check && changed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
