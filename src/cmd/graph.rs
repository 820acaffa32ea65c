use crate::cli::GraphFormat;
use crate::{project, render};
use anyhow::bail;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(file: PathBuf, format: GraphFormat, root: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let paths = vec![file];
    let root = root.unwrap_or_else(|| project::find_root(&paths));
    // Load the whole directory so spawns into sibling workflows resolve.
    let dir = paths[0]
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut project = project::read(&[dir], &root)?;
    let target = paths[0].to_string_lossy().replace('\\', "/");
    let loaded = leadflow_engine::load(&project);
    let Some(wf) = loaded
        .set
        .workflows
        .values()
        .find(|w| same_file(&w.file, &target))
    else {
        project.workflows.retain(|f| same_file(&f.path, &target));
        crate::out::stderr(&render::human(&project, &loaded.diagnostics));
        bail!("{target} does not load cleanly; run `leadflow check {target}`");
    };
    let out = match format {
        GraphFormat::Mermaid => leadflow_engine::graph::mermaid(wf),
        GraphFormat::Dot => leadflow_engine::graph::dot(wf),
    };
    crate::out!("{out}")?;
    Ok(ExitCode::SUCCESS)
}

fn same_file(a: &str, b: &str) -> bool {
    a.trim_start_matches("./") == b.trim_start_matches("./")
}
