//! Reading a project from disk: workflow files, rules modules, calendars.
//! The engine receives their text; it never touches the file system.

use anyhow::{Context, Result};
use leadflow_engine::{Project, SourceFile};
use std::path::{Path, PathBuf};

/// Read workflow files from `paths` (files, or directories searched
/// recursively for `*.toml`), with every `rules/**/*.rhai` and
/// `calendars/*.toml` under `root`.
pub fn read(paths: &[PathBuf], root: &Path) -> Result<Project> {
    let mut project = Project::default();
    for p in paths {
        if p.is_dir() {
            for f in walk(p, "toml")? {
                project.workflows.push(read_file(&f, None)?);
            }
        } else {
            project.workflows.push(
                read_file(p, None)
                    .with_context(|| format!("cannot read workflow file {}", p.display()))?,
            );
        }
    }
    let rules = root.join("rules");
    if rules.is_dir() {
        for f in walk(&rules, "rhai")? {
            project.rules.push(read_file(&f, Some(root))?);
        }
    }
    let cals = root.join("calendars");
    if cals.is_dir() {
        for f in walk(&cals, "toml")? {
            project.calendars.push(read_file(&f, Some(root))?);
        }
    }
    Ok(project)
}

/// The project root for `paths`: the nearest ancestor of the first path
/// holding `workflows/`, `rules/` or `calendars/`, else the current directory.
pub fn find_root(paths: &[PathBuf]) -> PathBuf {
    let start = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    let start = std::fs::canonicalize(&start).unwrap_or(start);
    let mut dir = if start.is_dir() {
        Some(start.as_path())
    } else {
        start.parent()
    };
    while let Some(d) = dir {
        if ["rules", "calendars"].iter().any(|s| d.join(s).is_dir()) {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    PathBuf::from(".")
}

fn read_file(path: &Path, root: Option<&Path>) -> Result<SourceFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let shown = match root {
        Some(r) => path.strip_prefix(r).unwrap_or(path),
        None => path,
    };
    Ok(SourceFile::new(
        shown.to_string_lossy().replace('\\', "/"),
        text,
    ))
}

/// Files with extension `ext` under `dir`, sorted (stable output).
pub fn walk(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
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
