//! `leadflow render`: a message template rendered for a record given as
//! JSON, as one recipient would receive it (docs/notifications.md#preview).

use crate::project;
use anyhow::{bail, Context};
use leadflow_runtime::notify::{self, Settings};
use leadflow_runtime::templates::TemplateSet;
use std::path::PathBuf;
use std::process::ExitCode;

pub struct Args {
    pub template: String,
    pub record_json: PathBuf,
    pub lang: Option<String>,
    pub to: String,
    pub html: bool,
    pub root: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let root = match a.root {
        Some(r) => r,
        None => project::root_here()?,
    };
    let text = std::fs::read_to_string(&a.record_json)
        .with_context(|| format!("cannot read {}", a.record_json.display()))?;
    let record: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", a.record_json.display()))?;
    let Some(workflow) = record.get("workflow").and_then(|w| w.as_str()) else {
        bail!(
            "{}: the record has no \"workflow\" (the API's record shape: workflow, state, assignee, fields)",
            a.record_json.display()
        );
    };
    let project = project::read(&[root.join("workflows")], Some(&root))?;
    let loaded = leadflow_engine::load(&project);
    let Some(wf) = loaded.set.get(workflow) else {
        bail!(
            "workflow `{workflow}` is not loaded from {} (`leadflow check` says why)",
            root.display()
        );
    };
    let templates = TemplateSet::load(&root.join("templates"), None).map_err(anyhow::Error::msg)?;
    let payload = notify::preview(wf, &record, &a.template, &a.to, &[], &Settings::default())
        .map_err(anyhow::Error::msg)?;
    match templates.render(&a.template, &payload, a.lang.as_deref()) {
        Ok(r) => {
            crate::outln!("Subject: {}", r.subject)?;
            crate::outln!(
                "Language: {}",
                if r.language.is_empty() {
                    "-"
                } else {
                    &r.language
                }
            )?;
            if let Some(n) = &r.note {
                crate::outln!("Note: {n}")?;
            }
            let redacted = payload["redacted"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            if !redacted.is_empty() {
                crate::outln!("Hidden from this recipient: {redacted}")?;
            }
            crate::outln!()?;
            crate::out!("{}", r.text)?;
            if let (true, Some(h)) = (a.html, &r.html) {
                crate::outln!("\n--- html ---")?;
                crate::out!("{h}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            crate::out::stderr(&format!("error[{}]: {}\n", e.code, e.message));
            Ok(ExitCode::from(1))
        }
    }
}
