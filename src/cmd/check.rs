use crate::cli::Format;
use crate::{project, render};
use leadflow_runtime::project_limits::{self, ProjectLimits};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(
    paths: Vec<PathBuf>,
    root: Option<PathBuf>,
    format: Format,
    deny_warnings: bool,
    color: bool,
) -> anyhow::Result<ExitCode> {
    let (paths, root) = if paths.is_empty() {
        // No path: the workflows of the project around the current directory.
        let root = match root {
            Some(r) => r,
            None => project::root_here()?,
        };
        (vec![project::shown(&root.join("workflows"))], Some(root))
    } else {
        let root = root.or_else(|| project::find_root(&paths));
        (paths, root)
    };
    let project = project::read(&paths, root.as_deref())?;
    // The daemon's default size limits (E060), checked as it checks them:
    // on the text, before loading, so a file it would refuse fails here too.
    let over = project_limits::check(&project, &ProjectLimits::default());
    let mut shown = project.clone();
    let (diags, has_errors) = if over.is_empty() {
        let loaded = leadflow_engine::load(&project);
        let mut diags = loaded.diagnostics;
        // Views: indexes and filters the store can run (W080, W081).
        diags.extend(leadflow_runtime::view_check::check(
            &loaded.set,
            &project.workflows,
        ));
        // Message templates, when the project has a templates/ directory.
        if let Some(dir) = root
            .as_ref()
            .map(|r| r.join("templates"))
            .filter(|d| d.is_dir())
        {
            let prefix = project::shown(&dir).display().to_string();
            let sources = leadflow_runtime::templates::read_dir_as(&dir, &prefix)
                .map_err(anyhow::Error::msg)?;
            diags.extend(leadflow_runtime::template_check::check(
                &loaded.set,
                &project.workflows,
                &sources,
            ));
            shown.rules.extend(
                sources
                    .into_iter()
                    .map(|s| leadflow_engine::SourceFile::new(s.path, s.text)),
            );
        }
        let errors = diags.iter().any(|d| d.is_error());
        (diags, errors)
    } else {
        (over, true)
    };
    let diags = &diags;
    match format {
        Format::Human => {
            crate::out!("{}", render::human(&shown, diags, color))?;
            crate::outln!("{}", render::summary(project.workflows.len(), diags))?;
        }
        Format::Json => {
            let out = serde_json::json!({
                "files": project.workflows.len(),
                "errors": diags.iter().filter(|d| d.is_error()).count(),
                "warnings": diags.iter().filter(|d| !d.is_error()).count(),
                "diagnostics": diags,
            });
            crate::outln!("{}", serde_json::to_string_pretty(&out)?)?;
        }
    }
    let fail = has_errors || (deny_warnings && !diags.is_empty());
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
