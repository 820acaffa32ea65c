//! Reading a project from disk: workflow files, rules modules, calendars.
//! The engine receives their text; it never touches the file system.
//!
//! A project root is a directory holding `workflows/`, `rules/` or
//! `calendars/` (the layout a tenant's `root` has in the daemon's config).
//! Commands look for it upward: from the path they are given, else from the
//! current directory, so `cd workflows && leadflow check` works. A daemon
//! config (`leadflow.toml`) does not mark a root: one config may serve
//! several projects.

use anyhow::{bail, Context, Result};
use leadflow_engine::{Project, SourceFile};
use std::path::{Component, Path, PathBuf};

/// The subdirectories that make a directory a project root.
pub const MARKERS: [&str; 3] = ["workflows", "rules", "calendars"];

/// Read workflow files from `paths` (files, or directories searched
/// recursively for `*.toml`), with every `rules/**/*.rhai` and
/// `calendars/*.toml` under `root` (none without a root).
pub fn read(paths: &[PathBuf], root: Option<&Path>) -> Result<Project> {
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
    if let Some(root) = root {
        read_support(&mut project, root)?;
    }
    Ok(project)
}

/// Add the rules modules and calendars of `root` to `project`.
pub fn read_support(project: &mut Project, root: &Path) -> Result<()> {
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
    Ok(())
}

/// True if `dir` is a project root.
pub fn is_root(dir: &Path) -> bool {
    MARKERS.iter().any(|m| dir.join(m).is_dir())
}

/// The nearest project root at or above `start` (a file's directory, or a
/// directory). A bare file name (`solaria.toml`) starts in the current
/// directory.
pub fn root_above(start: &Path) -> Option<PathBuf> {
    let start = if start.as_os_str().is_empty() {
        Path::new(".")
    } else {
        start
    };
    let abs = std::fs::canonicalize(start).ok()?;
    let dir = if abs.is_dir() {
        abs.as_path()
    } else {
        abs.parent()?
    };
    dir.ancestors().find(|d| is_root(d)).map(Path::to_path_buf)
}

/// The project root for `paths` (found from the first one), or for the
/// current directory when no path is given.
pub fn find_root(paths: &[PathBuf]) -> Option<PathBuf> {
    root_above(paths.first().map_or(Path::new("."), |p| p.as_path()))
}

/// The root of the project around the current directory, or an error that
/// says what a project is.
pub fn root_here() -> Result<PathBuf> {
    match root_above(Path::new(".")) {
        Some(r) => Ok(r),
        None => bail!(
            "no project here: neither the current directory nor any above it holds \
             workflows/, rules/ or calendars/ (give a path, or create a project with `leadflow init`)"
        ),
    }
}

/// `path` as the user would type it from the current directory: relative
/// when it is below the current directory or at most two levels up, else
/// absolute. For messages and diagnostics only.
pub fn shown(path: &Path) -> PathBuf {
    let (Ok(cwd), Ok(abs)) = (
        std::env::current_dir().and_then(std::fs::canonicalize),
        std::fs::canonicalize(path),
    ) else {
        return path.to_path_buf();
    };
    let mut a = abs.components().peekable();
    let mut b = cwd.components().peekable();
    while a.peek().is_some() && a.peek() == b.peek() {
        a.next();
        b.next();
    }
    let ups = b.count();
    if ups > 2 {
        return abs;
    }
    let mut out = PathBuf::new();
    for _ in 0..ups {
        out.push(Component::ParentDir);
    }
    out.extend(a);
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// Read one file; its path is shown relative to `root` if given, else as
/// given.
pub fn read_file(path: &Path, root: Option<&Path>) -> Result<SourceFile> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_found_from_a_file_a_directory_or_below() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = std::fs::canonicalize(t.path()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(root.join("workflows/deep")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("workflows/a.toml"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            root_above(&root.join("workflows/a.toml")),
            Some(root.clone())
        );
        assert_eq!(root_above(&root.join("workflows/deep")), Some(root.clone()));
        assert_eq!(root_above(&root), Some(root.clone()));
        assert!(root_above(&root.join("missing.toml")).is_none());
    }
}
