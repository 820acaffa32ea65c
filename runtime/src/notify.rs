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
    /// An actor the workflow's `reveal_to` names for the record (not its
    /// assignee): it sees `pii` fields as the assignee does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal: bool,
}

impl Addressee {
    fn viewer(&self) -> Viewer<'_> {
        match self.kind {
            Kind::Actor if self.reveal => Viewer::Revealed,
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
            reveal: false,
        }
    }

    fn address(a: &str) -> Addressee {
        Addressee {
            id: a.to_string(),
            kind: Kind::Address,
            address: Some(a.to_string()),
            language: None,
            name: None,
            reveal: false,
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
                    | Recipient::AssigneeManager
                    | Recipient::Area(_)
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
            Recipient::AssigneeManager => {
                if let Some(a) = rec.assignee.as_deref() {
                    for m in leadflow_engine::org::managers_above(dir, a) {
                        list.push(Addressee::actor(&m.id, dir));
                    }
                }
            }
            Recipient::Area(role) => {
                let area = wf.area_of(rec);
                let rel = leadflow_engine::org::Relation::Area(role.clone());
                for a in dir
                    .iter()
                    .filter(|a| rel.holds(dir, a, None, area.as_deref()))
                {
                    list.push(Addressee::actor(&a.id, dir));
                }
            }
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
                    reveal: false,
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
                    reveal: false,
                }),
            },
        }
    }
    let mut seen = std::collections::HashSet::new();
    list.retain(|a| seen.insert((a.kind == Kind::Actor, a.id.clone())));
    if !wf.reveal_to.is_empty() {
        let area = wf.area_of(rec);
        let assignee = rec.assignee.as_deref();
        for to in list.iter_mut().filter(|t| t.kind == Kind::Actor) {
            if assignee == Some(to.id.as_str()) {
                continue;
            }
            if let Some(a) = dir.iter().find(|a| a.id == to.id) {
                to.reveal = wf
                    .reveal_to
                    .iter()
                    .any(|r| r.holds(dir, a, assignee, area.as_deref()));
            }
        }
    }
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
    // The soonest timer the step armed (a proposal's lapse): the deadline a
    // message's action links expire at.
    let deadline = out.arm.iter().map(|a| a.due).min();
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
        "deadline": deadline.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}

/// The payload recipient `to` would get for a record given as JSON, in the
/// shape the HTTP API returns records (`id`, `state`, `assignee`,
/// `fields`, `revision`): for `leadflow render` and template tests. `to`:
/// `assignee`, `customer`, an actor id, or an e-mail address; the record's
/// fields pass through the same privacy rule as a real message's.
pub fn preview(
    wf: &Workflow,
    record: &serde_json::Value,
    template: &str,
    to: &str,
    dir: &[Actor],
    settings: &Settings,
) -> Result<serde_json::Value, String> {
    let state = record
        .get("state")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            wf.states
                .get(wf.initial)
                .map(|s| s.name.clone())
                .unwrap_or_default()
        });
    let Some(sid) = wf.state(&state) else {
        return Err(format!("workflow `{}` has no state `{state}`", wf.id));
    };
    let assignee = record.get("assignee").and_then(|a| a.as_str());
    let given = record.get("fields").and_then(|f| f.as_object());
    let mut fields: serde_json::Map<String, serde_json::Value> = wf
        .fields
        .iter()
        .map(|f| {
            let v = given
                .and_then(|g| g.get(&f.name))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            (f.name.clone(), v)
        })
        .collect();
    if let Some(g) = given {
        if let Some(k) = g.keys().find(|k| wf.field(k).is_none()) {
            return Err(format!("workflow `{}` has no field `{k}`", wf.id));
        }
    }
    let get = |f: Option<usize>| {
        f.and_then(|f| wf.fields.get(f))
            .and_then(|d| fields.get(&d.name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let mut addressee = match to {
        "customer" => {
            let c = &wf.customer;
            let name: Vec<String> = c.name.iter().filter_map(|&f| get(Some(f))).collect();
            Addressee {
                id: "customer".into(),
                kind: Kind::Customer,
                address: get(c.email),
                language: get(c.language).map(|l| l.to_ascii_lowercase()),
                name: (!name.is_empty()).then(|| name.join(" ")),
                reveal: false,
            }
        }
        "assignee" => match assignee {
            Some(a) => Addressee::actor(a, dir),
            None => return Err("the record has no assignee: give --to".into()),
        },
        a if a.contains('@') => Addressee::address(a),
        id => Addressee::actor(id, dir),
    };
    if addressee.language.is_none() {
        addressee.language.clone_from(&settings.language);
    }
    let redacted = privacy::redact(Some(wf), &state, assignee, addressee.viewer(), &mut fields);
    Ok(serde_json::json!({
        "record": record.get("id").and_then(|i| i.as_i64()).unwrap_or(1),
        "revision": record.get("revision").and_then(|i| i.as_i64()).unwrap_or(1),
        "workflow": wf.id,
        "state": state,
        "state_title": wf.states.get(sid).map(|s| s.title.as_str()),
        "template": template,
        "assignee": assignee,
        "recipient": addressee,
        "fields": fields,
        "redacted": redacted,
        "time_zone": wf.calendar.timezone().name(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_engine::{load, Ctx, Project, SourceFile};

    const WF: &str = r#"
[workflow]
id = "lead"
initial = "open"
[fields.area]
type = "string"
[fields.email]
type = "string"
pii = true
reveal_in = ["working"]
[fields.first_name]
type = "string"
[fields.lang]
type = "string"
[fields.owner]
type = "actor"
[fields.cc]
type = "string"
[customer]
email = "email"
name = ["first_name"]
language = "lang"
[states.open]
on_enter = [{ assign = "installer", filter = "actor.id == \"i-rm\"" }]
[states.working]
[states.done]
final = true
[transitions.take]
from = ["open"]
to = "working"
by = ["installer"]
do = [
  { assign = "installer", filter = "actor.id == \"i-rm2\"" },
  { notify = "moved", to = ["previous_assignee", "assignee", { role = "installer", where = "actor.zones.contains(lead.area)" }, "customer", "field:owner", "field:cc", "list:ops", "list:nope", "ops@example.com"] },
]
[transitions.close]
from = ["working"]
to = "done"
by = ["installer"]
"#;

    fn actor(id: &str, zone: &str, email: Option<&str>, lang: Option<&str>) -> Actor {
        Actor {
            id: id.into(),
            role: "installer".into(),
            zones: vec![zone.into()],
            email: email.map(str::to_string),
            language: lang.map(str::to_string),
            ..Actor::default()
        }
    }

    #[test]
    fn recipients_resolve_once_each_with_their_address_language_and_view() {
        let loaded = load(&Project {
            workflows: vec![SourceFile::new("workflows/lead.toml", WF)],
            ..Project::default()
        });
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let wf = loaded.set.get("lead").unwrap();
        let dir = vec![
            actor("i-rm", "RM", Some("rm@example.it"), None),
            actor("i-rm2", "RM", Some("rm2@example.it"), Some("en")),
            actor("i-mi", "MI", Some("mi@example.it"), None),
        ];
        let now = "2026-03-02T09:00:00Z".parse().unwrap();
        let ctx = Ctx {
            now,
            actor: &dir[0],
            directory: &dir,
        };
        let s = |v: &str| Value::Str(v.into());
        let input = vec![
            ("area".to_string(), s("RM")),
            ("email".to_string(), s("mario@example.it")),
            ("first_name".to_string(), s("Mario")),
            ("lang".to_string(), s("EN")),
            ("owner".to_string(), s("i-mi")),
            ("cc".to_string(), s("boss@example.it")),
        ];
        let created = leadflow_engine::create(wf, &input, ctx).unwrap();
        assert_eq!(created.record.assignee.as_deref(), Some("i-rm"));
        let out = leadflow_engine::fire(wf, &created.record, "take", &[], ctx).unwrap();
        let settings = Settings {
            language: Some("it".into()),
            lists: [(
                "ops".to_string(),
                vec!["a@example.it".to_string(), "ops@example.com".to_string()],
            )]
            .into(),
        };
        let got = resolve(wf, &out, &out.notifications[0], &dir, &settings, now);
        let ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
        // previous (i-rm), assignee (i-rm2), the role in RM (both: already
        // there, once each; not i-mi), customer, field actor i-mi, field
        // address, the list (ops@ only once), an unknown list.
        assert_eq!(
            ids,
            [
                "i-rm",
                "i-rm2",
                "customer",
                "i-mi",
                "boss@example.it",
                "a@example.it",
                "ops@example.com",
                "list:nope"
            ]
        );
        assert_eq!(got[0].address.as_deref(), Some("rm@example.it"));
        assert_eq!(
            got[0].language.as_deref(),
            Some("it"),
            "the tenant's default"
        );
        assert_eq!(got[1].language.as_deref(), Some("en"), "the actor's own");
        let c = &got[2];
        assert_eq!(
            (
                c.kind,
                c.address.as_deref(),
                c.language.as_deref(),
                c.name.as_deref()
            ),
            (
                Kind::Customer,
                Some("mario@example.it"),
                Some("en"),
                Some("Mario")
            )
        );
        assert_eq!(got[7].address, None);

        // Each payload shows what that recipient may see in `working`.
        let email = |a: &Addressee| {
            payload(7, 2, wf, &out, &out.notifications[0], a)["fields"]["email"].clone()
        };
        assert_eq!(
            email(&got[1]),
            "mario@example.it",
            "the assignee, in a reveal_in state"
        );
        assert!(
            email(&got[0]).is_null(),
            "the previous assignee is no longer assignee"
        );
        let p = payload(7, 2, wf, &out, &out.notifications[0], &got[0]);
        assert!(p["fields"].get("email").is_none());
        assert_eq!(p["redacted"], serde_json::json!(["email"]));
        assert_eq!(
            email(&got[2]),
            "mario@example.it",
            "the customer's own address"
        );
        assert!(
            payload(7, 2, wf, &out, &out.notifications[0], &got[4])["fields"]
                .get("email")
                .is_none(),
            "an address"
        );
        assert_eq!(p["fields"]["first_name"], "Mario", "not pii");
        assert_eq!(
            (p["revision"].as_i64(), p["record"].as_i64()),
            (Some(2), Some(7))
        );
    }
}
