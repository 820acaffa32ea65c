//! The messages of `notify` effects, as the executor writes them to the
//! outbox: each recipient the workflow names is resolved against the
//! record, the actor directory and the tenant's settings, and gets a row of
//! its own, whose payload holds only what that recipient may see
//! ([`crate::privacy`], the rule of the HTTP API). A failure for one
//! address is then that row's alone, and no row keeps personal data beyond
//! what its recipient may see.
//!
//! Recipients (docs/notifications.md):
//! - `assignee`, `previous_assignee` (when the step changed the assignee),
//!   `actor:<id>`: one actor of the directory;
//! - a role, `role:<role>`, `{ role, where }`: every actor of the role in the
//!   directory, narrowed by the `where` condition (evaluated by the engine);
//! - `customer`: the person the record is about (`[customer]` mapping);
//! - `field:<f>`: the actor (actor field) or address (string field) it holds;
//! - `list:<name>`: each address of the tenant's list; an e-mail address.
//!
//! One recipient reached twice (the assignee is also of the role) gets one
//! message.

use crate::privacy::{self, Viewer};
use chrono::{DateTime, Utc};
use leadflow_engine::eval::{recipient_matches, Notification, Outcome};
use leadflow_engine::model::Recipient;
use leadflow_engine::{Actor, Value, Workflow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A tenant's notification settings (`[tenants.<id>.notifications]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The language of messages whose recipient has none (`it`, `en`, ...).
    #[serde(default)]
    pub language: Option<String>,
    /// Named address lists, for `to = "list:<name>"`.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
}

/// What kind of recipient a row is for: it decides what the row may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An actor of the directory: sees what the API shows that actor.
    Actor,
    /// The person the record is about: non-personal fields and their own
    /// data (the `[customer]` mapping).
    Customer,
    /// Any other address: no personal data.
    Address,
}

/// One resolved recipient: the `recipient` of a row's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Addressee {
    /// How the row names its recipient: the actor id, `customer`, or the
    /// address (`list:<name>` for an unknown list).
    pub id: String,
    pub kind: Kind,
    /// Where to send it, when known (the actor's or customer's e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The language to write in: the recipient's own, else the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// A name to greet (the customer's name fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Addressee {
    fn viewer(&self) -> Viewer<'_> {
        match self.kind {
            Kind::Actor => Viewer::Actor(&self.id),
            Kind::Customer => Viewer::Customer,
            Kind::Address => Viewer::Other,
        }
    }

    fn actor(id: &str, dir: &[Actor]) -> Addressee {
        let a = dir.iter().find(|a| a.id == id);
        Addressee {
            id: id.to_string(),
            kind: Kind::Actor,
            address: a.and_then(|a| a.email.clone()),
            language: a.and_then(|a| a.language.clone()),
            name: None,
        }
    }

    fn address(a: &str) -> Addressee {
        Addressee {
            id: a.to_string(),
            kind: Kind::Address,
            address: Some(a.to_string()),
            language: None,
            name: None,
        }
    }
}

/// Whether resolving `n` reads the actor directory (actors' addresses,
/// languages, roles).
pub fn needs_directory(n: &[Notification]) -> bool {
    n.iter().any(|n| {
        n.to.iter().any(|r| {
            matches!(
                r,
                Recipient::Assignee
                    | Recipient::PreviousAssignee
                    | Recipient::Role { .. }
                    | Recipient::Actor(_)
                    | Recipient::Field(_)
            )
        })
    })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Str(s) if s.trim().is_empty() => None,
        Value::Str(s) => Some(s.trim().to_string()),
        other => Some(other.to_string()),
    }
}

/// The recipients of `n`, resolved for the record after the step `out`, in
/// the order the workflow names them, each once.
pub fn resolve(
    wf: &Workflow,
    out: &Outcome,
    n: &Notification,
    dir: &[Actor],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<Addressee> {
    let rec = &out.record;
    let mut list: Vec<Addressee> = Vec::new();
    for r in &n.to {
        match r {
            Recipient::Assignee => {
                list.extend(rec.assignee.as_deref().map(|a| Addressee::actor(a, dir)))
            }
            Recipient::PreviousAssignee => {
                if let Some((Some(old), _)) = &out.assignee {
                    list.push(Addressee::actor(old, dir));
                }
            }
            Recipient::Actor(id) => list.push(Addressee::actor(id, dir)),
            Recipient::Role { role, filter } => {
                for a in dir.iter().filter(|a| &a.role == role) {
                    let pass = match filter {
                        None => true,
                        Some(f) => match recipient_matches(wf, rec, *f, a, now) {
                            Ok(b) => b,
                            Err(e) => {
                                tracing::warn!(workflow = %wf.id, template = %n.template, actor = %a.id, code = e.code.as_str(), "recipient `where` failed, actor skipped: {}", e.message);
                                false
                            }
                        },
                    };
                    if pass {
                        list.push(Addressee::actor(&a.id, dir));
                    }
                }
            }
            Recipient::Customer => {
                let c = &wf.customer;
                let get = |f: Option<usize>| f.and_then(|f| rec.fields.get(f)).and_then(text);
                let name: Vec<String> = c.name.iter().filter_map(|&f| get(Some(f))).collect();
                list.push(Addressee {
                    id: "customer".into(),
                    kind: Kind::Customer,
                    address: get(c.email),
                    language: get(c.language).map(|l| l.to_ascii_lowercase()),
                    name: (!name.is_empty()).then(|| name.join(" ")),
                });
            }
            Recipient::Field(f) => {
                let is_actor = wf
                    .fields
                    .get(*f)
                    .is_some_and(|d| d.ty == leadflow_engine::FieldType::Actor);
                if let Some(v) = rec.fields.get(*f).and_then(text) {
                    list.push(if is_actor {
                        Addressee::actor(&v, dir)
                    } else {
                        Addressee::address(&v)
                    });
                }
            }
            Recipient::Address(a) => list.push(Addressee::address(a)),
            Recipient::List(name) => match settings.lists.get(name) {
                Some(addrs) => list.extend(addrs.iter().map(|a| Addressee::address(a))),
                None => list.push(Addressee {
                    id: format!("list:{name}"),
                    kind: Kind::Address,
                    address: None,
                    language: None,
                    name: None,
                }),
            },
        }
    }
    let mut seen = std::collections::HashSet::new();
    list.retain(|a| seen.insert((a.kind == Kind::Actor, a.id.clone())));
    for a in &mut list {
        if a.language.is_none() {
            a.language.clone_from(&settings.language);
        }
    }
    list
}

/// The payload of the row for one recipient: the record's fields that
/// recipient may see now (empty ones as `null`, so a template can tell an
/// empty value from one it may not show), the names of the others in
/// `redacted`, and what a template needs besides.
pub fn payload(
    id: crate::backend::RecordId,
    revision: i64,
    wf: &Workflow,
    out: &Outcome,
    n: &Notification,
    to: &Addressee,
) -> serde_json::Value {
    let rec = &out.record;
    let mut fields: serde_json::Map<String, serde_json::Value> = wf
        .fields
        .iter()
        .zip(&rec.fields)
        .map(|(f, v)| (f.name.clone(), v.to_json()))
        .collect();
    let redacted = privacy::redact(
        Some(wf),
        &out.to_state,
        rec.assignee.as_deref(),
        to.viewer(),
        &mut fields,
    );
    let state = wf.states.get(rec.state);
    serde_json::json!({
        "record": id,
        "revision": revision,
        "workflow": wf.id,
        "state": out.to_state,
        "state_title": state.map(|s| s.title.as_str()),
        "template": n.template,
        "assignee": rec.assignee,
        "recipient": to,
        "fields": fields,
        "redacted": redacted,
        "time_zone": wf.calendar.timezone().name(),
    })
}
