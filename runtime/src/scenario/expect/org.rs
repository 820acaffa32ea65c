//! `seen_by`, `hidden_from`, `pii_seen_by`, `pii_hidden_from`.

use crate::scenario::model::*;
use leadflow_engine::Workflow;

/// The organisation's expectations: who sees the record, who sees its
/// `pii` fields, as the HTTP API decides it for an actor-bound key.
pub(super) fn check_org(
    wf: Option<&Workflow>,
    dir: &[leadflow_engine::Actor],
    rec: &crate::backend::StoredRecord,
    e: &Expect,
) -> Vec<String> {
    use crate::privacy::{may_see, Viewer};
    let mut out = Vec::new();
    let assignee = rec.assignee.as_deref();
    let find = |id: &str| dir.iter().find(|a| a.id == id);
    let sees = |a: &leadflow_engine::Actor| {
        assignee == Some(a.id.as_str())
            || wf.is_some_and(|wf| crate::org::sees(wf, dir, a, assignee, &rec.fields))
    };
    for (list, want, key) in [
        (&e.seen_by, true, "seen_by"),
        (&e.hidden_from, false, "hidden_from"),
    ] {
        for id in list {
            match find(id) {
                None => out.push(format!("{key}: no actor `{id}` in the directory")),
                Some(a) if sees(a) != want => out.push(format!(
                    "{key}: `{id}` {} the record",
                    if want { "does not see" } else { "sees" }
                )),
                Some(_) => {}
            }
        }
    }
    let Some(wf) = wf else {
        if !(e.pii_seen_by.is_empty() && e.pii_hidden_from.is_empty()) {
            out.push(format!("pii: workflow `{}` is not loaded", rec.workflow));
        }
        return out;
    };
    let state = wf.state(&rec.state);
    let pii: Vec<&leadflow_engine::model::Field> = wf.fields.iter().filter(|f| f.pii).collect();
    let revealed: Vec<&&leadflow_engine::model::Field> = pii
        .iter()
        .filter(|f| state.is_some_and(|s| f.reveal_in.contains(&s)))
        .collect();
    for (list, want, key) in [
        (&e.pii_seen_by, true, "pii_seen_by"),
        (&e.pii_hidden_from, false, "pii_hidden_from"),
    ] {
        for id in list {
            let Some(a) = find(id) else {
                out.push(format!("{key}: no actor `{id}` in the directory"));
                continue;
            };
            let viewer = if assignee == Some(a.id.as_str()) {
                Viewer::Actor(&a.id)
            } else if sees(a) && crate::org::reveals(wf, dir, a, assignee, &rec.fields) {
                Viewer::Revealed
            } else {
                Viewer::Other
            };
            if want && revealed.is_empty() {
                out.push(format!(
                    "{key}: no pii field is revealed in state `{}`",
                    rec.state
                ));
                continue;
            }
            let checked = if want {
                &revealed
            } else {
                &pii.iter().collect()
            };
            for f in checked.iter() {
                if may_see(wf, f, state, assignee, viewer) != want {
                    out.push(format!(
                        "{key}: `{id}` {} pii field `{}`",
                        if want { "does not see" } else { "sees" },
                        f.name
                    ));
                }
            }
        }
    }
    out
}
