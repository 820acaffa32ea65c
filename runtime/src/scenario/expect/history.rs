//! `timers`, `no_timers`, `history` and `events`: what the record's
//! timers, field history and event log say.

use super::values::{actual, expected, same, ty};
use crate::backend::{ArmedTimer, Event, EventKind, HistoryEntry};
use crate::scenario::model::*;
use leadflow_engine::Workflow;

/// `timers` and `no_timers` against the record's armed timers.
pub(super) fn check_timers(timers: &[ArmedTimer], e: &Expect, out: &mut Vec<String>) {
    let armed = |name: &str| timers.iter().find(|t| t.timer == name);
    let list = || {
        let v: Vec<String> = timers
            .iter()
            .map(|t| format!("{} at {}", t.timer, t.due.to_rfc3339()))
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    for (name, want) in &e.timers {
        match (want, armed(name)) {
            (TimerExpect::Armed, None) => {
                out.push(format!("timers.{name}: expected armed, armed: {}", list()))
            }
            (TimerExpect::NotArmed, Some(t)) => out.push(format!(
                "timers.{name}: expected not armed, due at {}",
                t.due.to_rfc3339()
            )),
            (TimerExpect::At(at), None) => out.push(format!(
                "timers.{name}: expected due at {}, not armed (armed: {})",
                at.to_rfc3339(),
                list()
            )),
            (TimerExpect::At(at), Some(t)) if t.due != *at => out.push(format!(
                "timers.{name}: expected due at {}, got {}",
                at.to_rfc3339(),
                t.due.to_rfc3339()
            )),
            _ => {}
        }
    }
    for name in &e.no_timers {
        if let Some(t) = armed(name) {
            out.push(format!(
                "no_timers: `{name}` is armed, due at {}",
                t.due.to_rfc3339()
            ));
        }
    }
}

/// `history` against the record's field history.
pub(super) fn check_history(
    wf: Option<&Workflow>,
    history: &[HistoryEntry],
    e: &Expect,
    out: &mut Vec<String>,
) {
    for h in &e.history {
        let t = h.field.as_deref().and_then(|f| ty(wf, f));
        let value_ok = |want: &Option<toml::Value>, got: &serde_json::Value| match want {
            None => true,
            Some(w) => expected(t, w).is_ok_and(|w| same(&w, &actual(t, Some(got)))),
        };
        let hit = history.iter().any(|r| {
            h.field.as_ref().is_none_or(|f| &r.field == f)
                && h.actor.as_ref().is_none_or(|a| &r.actor == a)
                && h.transition.as_ref().is_none_or(|x| &r.transition == x)
                && value_ok(&h.old, &r.old)
                && value_ok(&h.new, &r.new)
        });
        if !hit {
            let want = describe_history(h);
            let near: Vec<String> = history
                .iter()
                .filter(|r| h.field.as_ref().is_none_or(|f| &r.field == f))
                .map(|r| {
                    format!(
                        "{{ field = {}, old = {}, new = {}, actor = {}, transition = {} }}",
                        r.field, r.old, r.new, r.actor, r.transition
                    )
                })
                .collect();
            out.push(format!(
                "history: no entry matches {want}; {}",
                if near.is_empty() {
                    "no entry for that field".to_string()
                } else {
                    format!("entries: {}", near.join("; "))
                }
            ));
        }
    }
}

/// `events` against the record's event log.
pub(super) fn check_events(events: &[Event], e: &Expect, out: &mut Vec<String>) {
    for want in &e.events {
        if let Some(k) = want
            .kind
            .as_deref()
            .filter(|k| EventKind::parse(k).is_none())
        {
            let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            out.push(format!(
                "events: unknown kind `{k}` (one of {})",
                kinds.join(", ")
            ));
            continue;
        }
        if !events.iter().any(|ev| event_matches(want, ev)) {
            let have: Vec<String> = events.iter().map(describe_event).collect();
            out.push(format!(
                "events: no event matches {}; events: {}",
                describe_event_expect(want),
                have.join("; ")
            ));
        }
    }
}

/// `""` expects none.
fn same_opt(want: &Option<String>, got: &Option<String>) -> bool {
    match want.as_deref() {
        None => true,
        Some("") => got.is_none(),
        Some(w) => got.as_deref() == Some(w),
    }
}

fn event_matches(want: &EventExpect, ev: &Event) -> bool {
    want.kind.as_deref().is_none_or(|k| ev.kind.as_str() == k)
        && want.actor.as_ref().is_none_or(|a| &ev.actor == a)
        && same_opt(&want.transition, &ev.transition)
        && same_opt(&want.from, &ev.from)
        && same_opt(&want.to, &ev.to)
        && want.revision.is_none_or(|r| ev.revision == r)
        && want.changes.as_ref().is_none_or(|c| {
            let mut w: Vec<&str> = c.iter().map(String::as_str).collect();
            let mut g: Vec<&str> = ev.changes.iter().map(|c| c.field.as_str()).collect();
            w.sort_unstable();
            g.sort_unstable();
            w == g
        })
}

fn describe_event(ev: &Event) -> String {
    let opt = |v: &Option<String>| v.as_deref().unwrap_or("").to_string();
    let changes: Vec<&str> = ev.changes.iter().map(|c| c.field.as_str()).collect();
    format!(
        "{{ kind = {}, actor = {}, transition = {:?}, from = {:?}, to = {:?}, revision = {}, changes = {:?} }}",
        ev.kind.as_str(),
        ev.actor,
        opt(&ev.transition),
        opt(&ev.from),
        opt(&ev.to),
        ev.revision,
        changes
    )
}

fn describe_event_expect(e: &EventExpect) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("kind", &e.kind),
        ("actor", &e.actor),
        ("transition", &e.transition),
        ("from", &e.from),
        ("to", &e.to),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k} = {v:?}"));
        }
    }
    if let Some(r) = e.revision {
        parts.push(format!("revision = {r}"));
    }
    if let Some(c) = &e.changes {
        parts.push(format!("changes = {c:?}"));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn describe_history(h: &HistoryExpect) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &h.field {
        parts.push(format!("field = {f}"));
    }
    if let Some(v) = &h.old {
        parts.push(format!("old = {v}"));
    }
    if let Some(v) = &h.new {
        parts.push(format!("new = {v}"));
    }
    if let Some(a) = &h.actor {
        parts.push(format!("actor = {a}"));
    }
    if let Some(t) = &h.transition {
        parts.push(format!("transition = {t}"));
    }
    format!("{{ {} }}", parts.join(", "))
}
