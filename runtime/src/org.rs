//! The organisation as the runtime applies it: who may see a stored record
//! and its `pii` fields through a workflow's `visible_to` and `reveal_to`
//! (roles, `assignee.manager`, `area.<role>`; the relations are the
//! engine's, `leadflow_engine::org`). The HTTP API (record, list, history,
//! notifications), the outbox and the scenario harness share these.

use leadflow_engine::org::Relation;
use leadflow_engine::{Actor, Workflow};

/// A record's area (`[workflow] area`) from its stored fields: a string
/// only, as the SQL of the list and history queries compares it.
pub fn area(wf: &Workflow, fields: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let f = wf.fields.get(wf.area?)?;
    fields.get(&f.name)?.as_str().map(str::to_string)
}

fn any(
    rels: &[Relation],
    wf: &Workflow,
    directory: &[Actor],
    actor: &Actor,
    assignee: Option<&str>,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    if rels.is_empty() {
        return false;
    }
    let area = area(wf, fields);
    rels.iter()
        .any(|r| r.holds(directory, actor, assignee, area.as_deref()))
}

/// Whether `actor` sees the record through the workflow's `visible_to` or
/// `reveal_to` (its own records and the pools are the caller's business).
pub fn sees(
    wf: &Workflow,
    directory: &[Actor],
    actor: &Actor,
    assignee: Option<&str>,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    any(&wf.visible_to, wf, directory, actor, assignee, fields)
        || any(&wf.reveal_to, wf, directory, actor, assignee, fields)
}

/// Whether `actor` sees the record's `pii` fields as its assignee does
/// (`reveal_to`).
pub fn reveals(
    wf: &Workflow,
    directory: &[Actor],
    actor: &Actor,
    assignee: Option<&str>,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    any(&wf.reveal_to, wf, directory, actor, assignee, fields)
}

/// The SQL pieces of a caller's organisational visibility: per workflow,
/// whether the caller sees all its records (a role), the records assigned
/// to the people it manages, or the records of its areas.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reach {
    /// Workflows whose every record the caller sees (a role it has).
    pub all: Vec<String>,
    /// Workflows whose records assigned to `reports` it sees.
    pub managed: Vec<String>,
    /// Everyone the caller manages, directly or below.
    pub reports: Vec<String>,
    /// (workflow, area field): records whose area is one of `zones`.
    pub areas: Vec<(String, String)>,
    /// The caller's zones (the areas it is responsible for).
    pub zones: Vec<String>,
}

impl Reach {
    /// What `actor` reaches in the workflows `wfs` (their current versions).
    pub fn of<'a>(
        wfs: impl IntoIterator<Item = &'a Workflow>,
        directory: &[Actor],
        actor: &Actor,
    ) -> Reach {
        let mut out = Reach {
            zones: actor.zones.clone(),
            ..Reach::default()
        };
        let mut reports: Option<Vec<String>> = None;
        for wf in wfs {
            let rels = || wf.visible_to.iter().chain(&wf.reveal_to);
            if rels().any(|r| matches!(r, Relation::Role(x) if *x == actor.role)) {
                out.all.push(wf.id.clone());
                continue;
            }
            if rels().any(|r| matches!(r, Relation::AssigneeManager)) {
                let rs = reports
                    .get_or_insert_with(|| leadflow_engine::org::reports_of(directory, &actor.id));
                if !rs.is_empty() {
                    out.managed.push(wf.id.clone());
                }
            }
            if !actor.zones.is_empty()
                && rels().any(|r| matches!(r, Relation::Area(x) if *x == actor.role))
            {
                if let Some(f) = wf.area.and_then(|f| wf.fields.get(f)) {
                    out.areas.push((wf.id.clone(), f.name.clone()));
                }
            }
        }
        out.reports = reports.unwrap_or_default();
        out
    }
}
