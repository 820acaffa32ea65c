//! `leadflow why`: why can't this record take this transition now? A dry run
//! of the engine ([`leadflow_engine::why_not`]) on a record saved as JSON
//! (what `GET /v1/records/{id}` answers), against the project on disk.

use crate::cli::Format;
use crate::{project, render};
use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Utc};
use leadflow_engine::why::ClauseResult;
use leadflow_engine::{Actor, Ctx, Record, Value};
use std::path::PathBuf;
use std::process::ExitCode;

pub struct Args {
    pub record_json: PathBuf,
    pub transition: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub input: Option<String>,
    pub at: Option<String>,
    pub root: Option<PathBuf>,
    pub format: Format,
}

/// The parts of a record JSON `why` reads.
#[derive(serde::Deserialize)]
struct RecordJson {
    workflow: String,
    state: String,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    id: Option<i64>,
    created_at: Option<DateTime<Utc>>,
    entered_at: Option<DateTime<Utc>>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.record_json)
        .with_context(|| format!("cannot read {}", a.record_json.display()))?;
    let r: RecordJson = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a record as GET /v1/records/{{id}} answers it (workflow, state, fields, ...)",
            a.record_json.display()
        )
    })?;
    let now = match &a.at {
        None => Utc::now(),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| anyhow!("--at {s}: not an RFC 3339 instant ({e})"))?,
    };
    let root = match a.root {
        Some(r) => r,
        None => project::root_here()?,
    };
    let mut project = project::read(&[root.join("workflows")], Some(&root))?;
    project
        .workflows
        .iter_mut()
        .for_each(|f| f.path = f.path.replace('\\', "/"));
    let loaded = leadflow_engine::load(&project);
    let Some(wf) = loaded.set.get(&r.workflow) else {
        let broken: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .cloned()
            .collect();
        if !broken.is_empty() {
            crate::out::stderr(&render::human(&project, &broken, false));
        }
        bail!(
            "workflow `{}` is not loaded from {} (unknown, or it has errors: `leadflow check`)",
            r.workflow,
            root.join("workflows").display()
        );
    };
    let created = r.created_at.unwrap_or(now);
    let Some(rec) = Record::from_json(
        wf,
        &r.state,
        &r.fields,
        r.assignee.clone(),
        created,
        r.entered_at.unwrap_or(created),
    ) else {
        bail!("workflow `{}` has no state `{}`", r.workflow, r.state);
    };
    let input: Vec<(String, Value)> = match &a.input {
        None => Vec::new(),
        Some(s) => {
            let v: serde_json::Value = serde_json::from_str(s)
                .map_err(|e| anyhow!("--input is not a JSON object: {e}"))?;
            let m = v
                .as_object()
                .ok_or_else(|| anyhow!("--input is not a JSON object"))?;
            m.iter()
                .map(|(k, v)| (k.clone(), Value::from_json(v)))
                .collect()
        }
    };
    // Without --role: the first role allowed to fire it, so the answer is
    // about everything but the role.
    let role = a.role.clone().unwrap_or_else(|| {
        wf.transition(&a.transition)
            .and_then(|t| wf.transitions[t].by.first().cloned())
            .unwrap_or_default()
    });
    let actor = Actor {
        id: a.actor.clone().unwrap_or_else(|| "cli".into()),
        role,
        ..Actor::default()
    };
    let ctx = Ctx {
        now,
        actor: &actor,
        directory: &[],
    };
    let w = leadflow_engine::why_not(wf, &rec, &a.transition, &input, ctx);
    match a.format {
        Format::Json => crate::outln!("{}", serde_json::to_string_pretty(&w)?)?,
        Format::Human => {
            let record =
                r.id.map_or_else(String::new, |id| format!(" of record {id}"));
            crate::outln!(
                "`{}`{record} in state `{}`, as {} (role {}): {}",
                w.transition,
                w.state,
                actor.id,
                actor.role,
                if w.allowed { "allowed" } else { "refused" }
            )?;
            for x in &w.reasons {
                crate::outln!("  {:<20} {}", x.code, x.message)?;
            }
            if !w.guard.is_empty() {
                crate::outln!("guard:")?;
                for c in &w.guard {
                    let mark = match c.result {
                        ClauseResult::Passed => "true ",
                        ClauseResult::Failed => "false",
                        ClauseResult::Threw => "threw",
                        ClauseResult::Error => "error",
                    };
                    crate::outln!("  {mark}  {}", c.source)?;
                    if let Some(m) = &c.message {
                        crate::outln!("         {m}")?;
                    }
                    for (k, v) in &c.reads {
                        crate::outln!("         lead.{k} = {v}")?;
                    }
                }
            }
        }
    }
    Ok(if w.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
