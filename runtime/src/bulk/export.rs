//! `leadflow export`: a workflow's records as CSV or NDJSON, streaming,
//! each record shown exactly as a given viewer would see it (visibility
//! and `pii` redaction of `privacy.rs`, the rule of every other path).
//!
//! Columns: `_id`, `_state`, `_assignee`, `_created_at`, `_updated_at`,
//! `_redacted` (the fields left out for this viewer, `;`-separated), then
//! every field of the workflow in declaration order, as the import reads
//! them back (dates ISO, decimals with `.`, lists `;`-separated): an export
//! imports into another tenant as the same records.

use super::source::Format;
use crate::apply::Versions;
use crate::backend::{Error, StoredRecord};
use crate::privacy;
use crate::store::sql::import::Import;
use leadflow_engine::Workflow;
use std::io::Write;

/// Which records: every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any of these states (empty: any).
    pub states: Vec<String>,
    /// Only records assigned to this actor (`-`: unassigned ones).
    pub assignee: Option<String>,
    /// Field equalities on the exported text of the field.
    pub fields: Vec<(String, String)>,
    /// Leave out records in final states.
    pub open_only: bool,
}

impl Filter {
    /// `state=a,b`, `assignee=x`, `open=true`, `<field>=v` or
    /// `field.<field>=v`.
    pub fn parse(wf: &Workflow, items: &[String]) -> Result<Filter, String> {
        let mut f = Filter::default();
        for item in items {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("--filter {item}: write name=value"))?;
            match k {
                "state" => {
                    for s in v.split(',') {
                        if wf.state(s).is_none() {
                            return Err(format!(
                                "--filter {item}: workflow `{}` has no state `{s}`",
                                wf.id
                            ));
                        }
                        f.states.push(s.to_string());
                    }
                }
                "assignee" => f.assignee = Some(v.to_string()),
                "open" => f.open_only = v == "true",
                _ => {
                    let name = k.strip_prefix("field.").unwrap_or(k);
                    if wf.field(name).is_none() {
                        return Err(format!(
                            "--filter {item}: workflow `{}` has no field `{name}`",
                            wf.id
                        ));
                    }
                    f.fields.push((name.to_string(), v.to_string()));
                }
            }
        }
        Ok(f)
    }

    pub(crate) fn matches(&self, wf: Option<&Workflow>, r: &StoredRecord) -> bool {
        (self.states.is_empty() || self.states.contains(&r.state))
            && match self.assignee.as_deref() {
                None => true,
                Some("-") => r.assignee.is_none(),
                Some(a) => r.assignee.as_deref() == Some(a),
            }
            && (!self.open_only
                || wf.is_some_and(|wf| wf.state(&r.state).is_some_and(|s| !wf.states[s].is_final)))
            && self
                .fields
                .iter()
                .all(|(k, v)| cell(r.fields.get(k).unwrap_or(&serde_json::Value::Null)) == *v)
    }
}

/// Who the export is for.
pub struct ViewerSpec<'a> {
    /// `None`: an admin (sees everything).
    pub actor: Option<&'a leadflow_engine::Actor>,
    /// The tenant's pools (an actor also sees the pools it may claim from).
    pub pools: &'a [crate::config::PoolConfig],
    /// The tenant's directory (who manages whom, areas: `crate::org`).
    pub directory: std::sync::Arc<Vec<leadflow_engine::Actor>>,
}

impl ViewerSpec<'_> {
    /// The caller an API key of this viewer would be: the one visibility
    /// and redaction rule of the HTTP API applies to the export.
    fn caller(&self, tenant: &str) -> crate::http::state::Caller {
        crate::http::state::Caller {
            tenant: tenant.to_string(),
            key: "export".into(),
            admin: self.actor.is_none(),
            actor: self
                .actor
                .cloned()
                .unwrap_or_else(leadflow_engine::Actor::system),
            directory: self.directory.clone(),
        }
    }
}

/// The text of a stored field value in a cell.
pub fn cell(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => String::new(),
        J::String(s) => s.clone(),
        J::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

const META: [&str; 6] = [
    "_id",
    "_state",
    "_assignee",
    "_created_at",
    "_updated_at",
    "_redacted",
];

/// Export the records of `wf` that `filter` selects and `viewer` may see
/// to `out`; returns how many were written.
pub async fn export<S: Import, W: Write + Send>(
    store: &S,
    versions: &Versions,
    wf: &Workflow,
    filter: &Filter,
    viewer: &ViewerSpec<'_>,
    format: Format,
    out: W,
) -> Result<u64, Error> {
    let io = |e: std::io::Error| Error::storage(format!("writing the export: {e}"));
    let (mut w, mut nd) = match format {
        Format::Csv => (
            Some(csv::WriterBuilder::new().flexible(true).from_writer(out)),
            None,
        ),
        Format::Ndjson => (None, Some(out)),
    };
    if let Some(w) = &mut w {
        let mut h: Vec<&str> = META.to_vec();
        h.extend(wf.fields.iter().map(|f| f.name.as_str()));
        w.write_record(&h).map_err(|e| io(e.into()))?;
    }
    let mut n = 0u64;
    let caller = viewer.caller("");
    store
        .export_scan(&wf.id, &mut |mut r: StoredRecord| {
            let version = versions.version(&r.workflow, &r.version).ok();
            if !filter.matches(version.as_deref(), &r)
                || !crate::http::state::visible_to(viewer.pools, versions, &caller, &r)
            {
                return Ok(());
            }
            let who = caller.viewer(version.as_deref(), &r);
            let redacted = privacy::redact(
                version.as_deref(),
                &r.state,
                r.assignee.as_deref(),
                who,
                &mut r.fields,
            );
            n += 1;
            match (&mut w, &mut nd) {
                (Some(w), _) => {
                    let mut rec = vec![
                        r.id.to_string(),
                        r.state.clone(),
                        r.assignee.clone().unwrap_or_default(),
                        r.created_at
                            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                        r.updated_at
                            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                        redacted.join(";"),
                    ];
                    rec.extend(
                        wf.fields
                            .iter()
                            .map(|f| r.fields.get(&f.name).map(cell).unwrap_or_default()),
                    );
                    w.write_record(&rec).map_err(|e| io(e.into()))
                }
                (None, Some(inner)) => {
                    let mut o = serde_json::Map::new();
                    o.insert("_id".into(), r.id.into());
                    o.insert("_state".into(), r.state.clone().into());
                    o.insert("_assignee".into(), r.assignee.clone().into());
                    o.insert(
                        "_created_at".into(),
                        serde_json::to_value(r.created_at).unwrap_or_default(),
                    );
                    o.insert(
                        "_updated_at".into(),
                        serde_json::to_value(r.updated_at).unwrap_or_default(),
                    );
                    o.insert("_redacted".into(), redacted.into());
                    for f in &wf.fields {
                        if let Some(v) = r.fields.remove(&f.name) {
                            o.insert(f.name.clone(), v);
                        }
                    }
                    serde_json::to_writer(&mut *inner, &serde_json::Value::Object(o))
                        .map_err(|e| io(e.into()))?;
                    inner.write_all(b"\n").map_err(io)
                }
                (None, None) => Ok(()),
            }
        })
        .await?;
    if let Some(w) = &mut w {
        w.flush().map_err(io)?;
    }
    if let Some(nd) = &mut nd {
        nd.flush().map_err(io)?;
    }
    Ok(n)
}
