//! Who may see which field of a record: the one rule behind every path that
//! shows record data to someone, the HTTP API (`http/records.rs`, views)
//! and the messages of the outbox (`notify.rs`, one payload per recipient).
//!
//! A field that is not `pii` is visible to anyone who may see the record.
//! A `pii` field is visible to:
//! - an admin (an API key without an actor): always;
//! - an actor: only when it is the record's assignee, or the workflow's
//!   `reveal_to` names it for the record (`crate::org`: a role, the
//!   assignee's manager, the area's `<role>`), AND the record is in one of
//!   the field's `reveal_in` states;
//! - the customer (the person the record is about, a message recipient
//!   only): the fields of the workflow's `[customer]` mapping, their own
//!   contact data;
//! - anyone else (an address from a field, a list or a literal, an actor
//!   reached through a role who is not the assignee): never.

use leadflow_engine::model::{Field, StateId};
use leadflow_engine::Workflow;

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer<'a> {
    /// An admin key: sees everything.
    Admin,
    /// An actor (an actor-bound key, or a message to an actor).
    Actor(&'a str),
    /// An actor the workflow's `reveal_to` names for this record (the
    /// assignee's manager, the area's sales rep, ...): sees a `pii` field
    /// as the assignee does, in the field's `reveal_in` states.
    Revealed,
    /// The person the record is about (messages to `customer`).
    Customer,
    /// Anyone else: an address that is no actor of the directory.
    Other,
}

/// Whether `viewer` may see `field` of a record of `wf` in `state` (None:
/// a state the version does not know) assigned to `assignee`.
pub fn may_see(
    wf: &Workflow,
    field: &Field,
    state: Option<StateId>,
    assignee: Option<&str>,
    viewer: Viewer<'_>,
) -> bool {
    if !field.pii {
        return true;
    }
    match viewer {
        Viewer::Admin => true,
        Viewer::Actor(id) => {
            assignee == Some(id) && state.is_some_and(|s| field.reveal_in.contains(&s))
        }
        Viewer::Revealed => state.is_some_and(|s| field.reveal_in.contains(&s)),
        Viewer::Customer => wf.customer_sees(&field.name),
        Viewer::Other => false,
    }
}

/// Remove from `fields` (a record's fields by name) what `viewer` may not
/// see; return the names removed, in the workflow's field order. Without
/// the workflow version (not loaded) nothing is shown to a non-admin
/// rather than risk personal data.
pub fn redact(
    wf: Option<&Workflow>,
    state: &str,
    assignee: Option<&str>,
    viewer: Viewer<'_>,
    fields: &mut serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    if viewer == Viewer::Admin {
        return Vec::new();
    }
    let Some(wf) = wf else {
        let all: Vec<String> = fields.keys().cloned().collect();
        fields.clear();
        return all;
    };
    let state = wf.state(state);
    let mut redacted = Vec::new();
    for f in &wf.fields {
        if !may_see(wf, f, state, assignee, viewer) {
            fields.remove(&f.name);
            redacted.push(f.name.clone());
        }
    }
    redacted
}
