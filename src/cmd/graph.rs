use crate::cli::GraphFormat;
use crate::{project, render};
use anyhow::bail;
use leadflow_engine::Project;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(
    file: PathBuf,
    format: GraphFormat,
    root: Option<PathBuf>,
    color: bool,
) -> anyhow::Result<ExitCode> {
    let root = root.or_else(|| project::root_above(&file));
    let mut project = Project::default();
    // A file in its project's workflows/ is loaded with its siblings, so
    // spawns into them resolve; any other file is loaded alone.
    let siblings = root
        .as_deref()
        .map(|r| r.join("workflows"))
        .filter(|w| same_file(w, file.parent().unwrap_or(Path::new(""))));
    if let Some(dir) = siblings {
        for f in project::walk(&dir, "toml")? {
            if !same_file(&f, &file) {
                project.workflows.push(project::read_file(&f, None)?);
            }
        }
    }
    let target = file.to_string_lossy().replace('\\', "/");
    project.workflows.push(
        project::read_file(&file, None)
            .map_err(|e| anyhow::anyhow!("cannot read workflow file {}: {e:#}", file.display()))?,
    );
    if let Some(r) = &root {
        project::read_support(&mut project, r)?;
    }
    let loaded = leadflow_engine::load(&project);
    let Some(wf) = loaded.set.workflows.values().find(|w| w.file == target) else {
        project.workflows.retain(|f| f.path == target);
        crate::out::stderr(&render::human(&project, &loaded.diagnostics, color));
        bail!("{target} does not load cleanly; run `leadflow check {target}`");
    };
    let out = match format {
        GraphFormat::Mermaid => leadflow_engine::graph::mermaid(wf),
        GraphFormat::Dot => leadflow_engine::graph::dot(wf),
    };
    crate::out!("{out}")?;
    Ok(ExitCode::SUCCESS)
}

fn canonical(p: &Path) -> Option<PathBuf> {
    let p = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    std::fs::canonicalize(p).ok()
}

/// Both paths name the same existing file or directory.
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}
