//! Checking one `expect` table against what the backend stored. Values are
//! compared typed: the expected TOML value and the stored JSON value are both
//! coerced with the field's type, so `2022-11-14T09:00:00+01:00` equals
//! `2022-11-14T08:00:00Z` and `1250.5` equals `"1250.50"`.

use super::model::*;
use crate::backend::{Backend, Event, EventKind, OutboxMessage, RecordId};
use leadflow_engine::value::parse_instant;
use leadflow_engine::{FieldType, Value, Workflow, WorkflowSet};
use std::collections::HashMap;

/// The record a reference names now: its base name, then each link in turn
/// (the latest link of that name, if a record has several).
pub(crate) async fn resolve<B: Backend>(
    b: &B,
    names: &HashMap<String, RecordId>,
    r: &RecordRef,
) -> Result<RecordId, String> {
    let mut id = *names
        .get(&r.name)
        .ok_or_else(|| format!("record `{}` is not named yet", r.name))?;
    for (i, l) in r.links.iter().enumerate() {
        let links = b.links(id).await.map_err(|e| e.to_string())?;
        id = links
            .iter()
            .rev()
            .find(|k| &k.name == l)
            .map(|k| k.to)
            .ok_or_else(|| {
                // The part of the reference followed so far.
                let path = std::iter::once(&r.name)
                    .chain(&r.links[..i])
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("/");
                let have: Vec<&str> = links.iter().map(|k| k.name.as_str()).collect();
                format!(
                    "record `{r}`: {path} has no link `{l}` (links: {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                )
            })?;
    }
    Ok(id)
}

/// Expected TOML value, typed by the field (`""` means empty).
fn expected(ty: Option<FieldType>, v: &toml::Value) -> Result<Value, String> {
    if matches!(v, toml::Value::String(s) if s.is_empty()) {
        return Ok(Value::Null);
    }
    let v = Value::from_toml(v);
    match ty {
        Some(t) => t.coerce(v),
        None => Ok(v),
    }
}

/// Stored JSON value, typed by the field.
fn actual(ty: Option<FieldType>, j: Option<&serde_json::Value>) -> Value {
    let v = j.map(Value::from_json).unwrap_or(Value::Null);
    match ty {
        Some(t) => t.coerce(v.clone()).unwrap_or(v),
        None => v,
    }
}

/// Equal as values: instants and numbers in any spelling, lists item by item
/// (list items are untyped, so strings that are instants compare as instants).
fn same(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        _ if a == b => true,
        (Null, x) | (x, Null) => x.is_empty(),
        (List(x), List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Str(x), Str(y)) => {
            matches!((parse_instant(x), parse_instant(y)), (Some(p), Some(q)) if p == q)
        }
        (Str(s), DateTime(t)) | (DateTime(t), Str(s)) => parse_instant(s) == Some(*t),
        (Int(_) | Str(_), Decimal(_)) => {
            FieldType::Decimal.coerce(a.clone()).is_ok_and(|x| x == *b)
        }
        (Decimal(_), Int(_) | Str(_)) => same(b, a),
        _ => false,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "empty".to_string(),
        other => other.to_json().to_string(),
    }
}

fn ty(wf: Option<&Workflow>, field: &str) -> Option<FieldType> {
    wf.and_then(|w| w.field(field).map(|i| w.fields[i].ty))
}

/// The organisation's expectations: who sees the record, who sees its
/// `pii` fields, as the HTTP API decides it for an actor-bound key.
fn check_org(
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

/// Every mismatch between `e` and record `id`, one message each.
pub(crate) async fn check<B: crate::kpi::schedule::RunStore>(
    b: &B,
    set: &WorkflowSet,
    names: &HashMap<String, RecordId>,
    e: &Expect,
    id: RecordId,
    now: chrono::DateTime<chrono::Utc>,
    templates: Option<&crate::templates::TemplateSet>,
) -> Result<Vec<String>, String> {
    let err = |e: crate::backend::Error| e.to_string();
    let rec = b
        .get(id)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("record {id} not found"))?;
    let wf = set.get(&rec.workflow).map(|w| w.as_ref());
    let mut out = Vec::new();
    if let Some(s) = &e.state {
        if &rec.state != s {
            out.push(format!("state: expected \"{s}\", got \"{}\"", rec.state));
        }
    }
    for (k, v) in &e.fields {
        let t = ty(wf, k);
        if wf.is_some() && t.is_none() {
            out.push(format!(
                "fields.{k}: workflow `{}` has no field `{k}`",
                rec.workflow
            ));
            continue;
        }
        let want = match expected(t, v) {
            Ok(w) => w,
            Err(m) => {
                out.push(format!(
                    "fields.{k}: the expected value does not fit the field: {m}"
                ));
                continue;
            }
        };
        let got = actual(t, rec.fields.get(k));
        if !same(&want, &got) {
            out.push(format!(
                "fields.{k}: expected {}, got {}",
                show(&want),
                show(&got)
            ));
        }
    }
    for k in &e.empty {
        let got = actual(ty(wf, k), rec.fields.get(k));
        if !got.is_empty() {
            out.push(format!("fields.{k}: expected empty, got {}", show(&got)));
        }
    }
    if let Some(a) = &e.assignee {
        let got = rec.assignee.as_deref().unwrap_or("");
        if got != a {
            out.push(format!("assignee: expected \"{a}\", got \"{got}\""));
        }
    }
    let needs_outbox = !(e.outbox.is_empty()
        && e.messages.is_empty()
        && e.no_outbox.is_empty()
        && e.outbox_count.is_empty()
        && e.outbox_to.is_empty()
        && e.outbox_not_to.is_empty());
    if needs_outbox {
        let outbox = b.outbox(id).await.map_err(err)?;
        let sent: Vec<&str> = outbox.iter().map(|m| m.template.as_str()).collect();
        let list = || {
            if sent.is_empty() {
                "nothing".to_string()
            } else {
                sent.join(", ")
            }
        };
        for t in &e.outbox {
            if !sent.contains(&t.as_str()) {
                out.push(format!(
                    "outbox: expected \"{t}\" to be sent, sent: {}",
                    list()
                ));
            }
        }
        for t in &e.no_outbox {
            if sent.contains(&t.as_str()) {
                out.push(format!("no_outbox: \"{t}\" was sent"));
            }
        }
        for (t, n) in &e.outbox_count {
            let got = notifications(&outbox, t).len();
            if got != *n {
                out.push(format!("outbox_count.{t}: expected {n}, got {got}"));
            }
        }
        for (t, to) in &e.outbox_to {
            match notifications(&outbox, t).last() {
                None => out.push(format!("outbox_to.{t}: \"{t}\" was not sent")),
                Some(group) => {
                    let got: Vec<&str> = group
                        .iter()
                        .flat_map(|m| m.recipients.iter())
                        .map(String::as_str)
                        .collect();
                    let missing = to.iter().any(|r| !got.contains(&r.as_str()));
                    if missing {
                        out.push(format!(
                            "outbox_to.{t}: expected recipients {to:?}, got {got:?}"
                        ));
                    }
                }
            }
        }
        for m in &e.messages {
            out.extend(check_messages(&outbox, m, templates));
        }
        for (t, not) in &e.outbox_not_to {
            for group in notifications(&outbox, t) {
                let got: Vec<&str> = group
                    .iter()
                    .flat_map(|m| m.recipients.iter())
                    .map(String::as_str)
                    .collect();
                let wrong: Vec<&str> = not
                    .iter()
                    .map(String::as_str)
                    .filter(|r| got.contains(r))
                    .collect();
                if !wrong.is_empty() {
                    out.push(format!("outbox_not_to.{t}: sent to {wrong:?}"));
                }
            }
        }
    }
    if !(e.seen_by.is_empty()
        && e.hidden_from.is_empty()
        && e.pii_seen_by.is_empty()
        && e.pii_hidden_from.is_empty())
    {
        let dir = b.actors().await.map_err(err)?;
        out.extend(check_org(wf, &dir, &rec, e));
    }
    if !(e.timers.is_empty() && e.no_timers.is_empty()) {
        let timers = b.timers(id).await.map_err(err)?;
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
    if !e.history.is_empty() {
        let history = b.history(id).await.map_err(err)?;
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
    if !e.events.is_empty() {
        let events = b.events(id).await.map_err(err)?;
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
    if !e.links.is_empty() {
        let links = b.links(id).await.map_err(err)?;
        for (name, want) in &e.links {
            let have: Vec<i64> = links
                .iter()
                .filter(|l| &l.name == name)
                .map(|l| l.to)
                .collect();
            match want {
                LinkExpect::Exists(x) if have.is_empty() == *x => out.push(format!(
                    "links.{name}: expected {}",
                    if *x { "a link" } else { "no link" }
                )),
                LinkExpect::To(r) => {
                    let target = resolve(b, names, r).await?;
                    if !have.contains(&target) {
                        out.push(format!("links.{name}: expected a link to {r} (record {target}), links to records {have:?}"));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(r) = e.revision {
        if rec.revision != r {
            out.push(format!("revision: expected {r}, got {}", rec.revision));
        }
    }
    if !(e.views.is_empty() && e.kpis.is_empty() && e.reports.is_empty()) {
        if let Some(wf) = wf {
            lists(b, wf, names, e, now, &mut out).await?;
        }
    }
    if !e.report_runs.is_empty() {
        if let Some(wf) = wf {
            runs(b, wf, e, &mut out).await?;
        }
    }
    Ok(out)
}

/// The runs of the workflow's scheduled reports so far, as `GET
/// /v1/reports/runs` lists them (oldest first here).
async fn runs<B: crate::kpi::schedule::RunStore>(
    b: &B,
    wf: &Workflow,
    e: &Expect,
    out: &mut Vec<String>,
) -> Result<(), String> {
    use crate::kpi::schedule::RunsQuery;
    for (name, want) in &e.report_runs {
        if !wf
            .reports
            .iter()
            .any(|r| r.name == *name && r.schedule.is_some())
        {
            out.push(format!(
                "report_runs.{name}: workflow `{}` has no scheduled report `{name}` (a report with `every`)",
                wf.id
            ));
            continue;
        }
        let q = RunsQuery {
            workflow: Some(wf.id.clone()),
            report: Some(name.clone()),
            before: None,
            limit: 10_000,
        };
        let mut got = b.list_runs(&q).await.map_err(|e| e.to_string())?;
        got.sort_by_key(|r| r.slot);
        let not_done: Vec<String> = got
            .iter()
            .filter(|r| r.status != "done")
            .map(|r| {
                format!(
                    "{} {}: {}",
                    r.slot.to_rfc3339(),
                    r.status,
                    r.error.clone().unwrap_or_default()
                )
            })
            .collect();
        if !not_done.is_empty() {
            out.push(format!(
                "report_runs.{name}: runs not done: {}",
                not_done.join("; ")
            ));
        }
        if let Some(n) = want.count {
            if got.len() != n {
                out.push(format!(
                    "report_runs.{name}: expected {n} run(s), got {}",
                    got.len()
                ));
            }
        }
        if let Some(periods) = &want.periods {
            let have: Vec<String> = got
                .iter()
                .map(|r| r.period.clone().unwrap_or_default())
                .collect();
            if &have != periods {
                out.push(format!(
                    "report_runs.{name}: expected periods {periods:?}, got {have:?}"
                ));
            }
        }
        if let Some(messages) = &want.messages {
            let have: Vec<i32> = got.iter().map(|r| r.messages).collect();
            if &have != messages {
                out.push(format!(
                    "report_runs.{name}: expected messages per run {messages:?}, got {have:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Views, KPIs and reports, computed by the engine over every record of
/// the workflow, as the runtime's list endpoints do.
async fn lists<B: crate::kpi::Source>(
    b: &B,
    wf: &Workflow,
    names: &HashMap<String, RecordId>,
    e: &Expect,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    use leadflow_engine::lists;
    let err = |e: crate::backend::Error| e.to_string();
    let filter = crate::backend::Filter {
        workflow: &wf.id,
        states: wf.states.iter().map(|s| s.name.as_str()).collect(),
        fields: Vec::new(),
        idle_since: None,
        include_final: true,
    };
    let mut records = Vec::new();
    for id in b.select(&filter).await.map_err(err)? {
        if let Some(r) = b.get(id).await.map_err(err)? {
            if let Some(rec) = leadflow_engine::Record::from_json(
                wf,
                &r.state,
                &r.fields,
                r.assignee.clone(),
                r.created_at,
                r.entered_at,
            ) {
                records.push((id, rec));
            }
        }
    }
    let label = |id: RecordId| {
        names
            .iter()
            .find(|(_, v)| **v == id)
            .map_or(format!("#{id}"), |(k, _)| k.clone())
    };
    for (view, want) in &e.views {
        let mut got = Vec::new();
        for (id, rec) in &records {
            if lists::in_view(wf, view, rec, now).map_err(|r| r.to_string())? {
                got.push(*id);
            }
        }
        let mut want_ids = Vec::new();
        for r in want {
            want_ids.push(resolve(b, names, r).await?);
        }
        got.sort();
        want_ids.sort();
        if got != want_ids {
            let show = |v: &[RecordId]| v.iter().map(|i| label(*i)).collect::<Vec<_>>().join(", ");
            out.push(format!(
                "views.{view}: expected [{}], got [{}]",
                show(&want_ids),
                show(&got)
            ));
        }
    }
    // KPIs and reports: the code path of GET /v1/kpis and /v1/reports.
    use crate::kpi::{self, GroupKey, Query, Range};
    let kerr = |e: kpi::QueryError| e.to_string();
    for (name, want) in &e.kpis {
        let k = kpi::find_kpi(wf, name).map_err(kerr)?;
        let range = match &want.period {
            Some(p) => Range::period(wf, p).map_err(kerr)?,
            None => Range::all(),
        };
        let group_by = match &want.group_by {
            Some(g) => GroupKey::parse_list(wf, g).map_err(kerr)?,
            None => Vec::new(),
        };
        let q = Query {
            wf,
            range,
            group_by,
            now,
        };
        let v = kpi::kpi(b, &q, k).await.map_err(kerr)?;
        if let Some((hits, population)) = want.total {
            if (v.total.hits, v.total.population) != (hits as i64, population as i64) {
                out.push(format!(
                    "kpis.{name}: expected {hits} of {population}, got {} of {}",
                    v.total.hits, v.total.population
                ));
            }
        }
        if let Some(rows) = &want.rows {
            let got: Vec<(Vec<String>, usize, usize)> = v
                .rows
                .iter()
                .map(|r| (r.group.clone(), r.hits as usize, r.population as usize))
                .collect();
            if &got != rows {
                out.push(format!(
                    "kpis.{name}: expected rows (group, hits, population) {rows:?}, got {got:?}"
                ));
            }
        }
    }
    for (name, want) in &e.reports {
        let r = kpi::find_report(wf, name).map_err(kerr)?;
        let range = match &want.period {
            Some(p) => Range::period(wf, p).map_err(kerr)?,
            None => Range::all(),
        };
        let v = kpi::report(b, wf, r, range, now).await.map_err(kerr)?;
        let got: Vec<(Vec<String>, usize, Option<f64>)> = v
            .rows
            .iter()
            .map(|l| (l.group.clone(), l.count as usize, l.amount))
            .collect();
        let same = got.len() == want.rows.len()
            && got
                .iter()
                .zip(&want.rows)
                .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && w.2.is_none_or(|a| g.2 == Some(a)));
        if !same {
            let show = |rows: &[(Vec<String>, usize, Option<f64>)]| {
                rows.iter()
                    .map(|(g, c, a)| match a {
                        Some(a) => format!("({g:?}, {c}, {a})"),
                        None => format!("({g:?}, {c})"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(format!(
                "reports.{name}{}: expected [{}], got [{}]",
                want.period
                    .as_deref()
                    .map(|p| format!(" for {p}"))
                    .unwrap_or_default(),
                show(&want.rows),
                show(&got)
            ));
        }
    }
    Ok(())
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

/// An `outbox` table: the last notification of its template, each message
/// (or the one to `to`) rendered and compared.
fn check_messages(
    outbox: &[OutboxMessage],
    m: &MessageExpect,
    templates: Option<&crate::templates::TemplateSet>,
) -> Vec<String> {
    let t = &m.template;
    let mut out = Vec::new();
    let Some(group) = notifications(outbox, t).pop() else {
        // `outbox` lists the template too: its absence is reported there.
        return out;
    };
    let got: Vec<&str> = group
        .iter()
        .flat_map(|g| g.recipients.iter())
        .map(String::as_str)
        .collect();
    for r in &m.recipients {
        if !got.contains(&r.as_str()) {
            out.push(format!(
                "outbox.{t}: expected a message to \"{r}\", sent to {got:?}"
            ));
        }
    }
    let chosen: Vec<&&OutboxMessage> = match &m.to {
        Some(to) => group.iter().filter(|g| g.recipients.contains(to)).collect(),
        None => group.iter().collect(),
    };
    if let Some(to) = &m.to {
        if chosen.is_empty() {
            out.push(format!(
                "outbox.{t}: expected a message to \"{to}\", sent to {got:?}"
            ));
            return out;
        }
    }
    let checks_text = !(m.subject_contains.is_empty()
        && m.body_contains.is_empty()
        && m.body_not_contains.is_empty()
        && m.language.is_none());
    if !checks_text {
        return out;
    }
    let Some(templates) = templates else {
        out.push(format!(
            "outbox.{t}: no templates loaded to render the message (the project's templates/)"
        ));
        return out;
    };
    for msg in chosen {
        let who = msg.recipients.join(", ");
        let Some(payload) = &msg.payload else {
            out.push(format!("outbox.{t}: the store kept no payload to render"));
            continue;
        };
        let r = match templates.render(t, payload, None) {
            Ok(r) => r,
            Err(e) => {
                out.push(format!("outbox.{t} to {who}: {e}"));
                continue;
            }
        };
        for want in &m.subject_contains {
            if !r.subject.contains(want.as_str()) {
                out.push(format!(
                    "outbox.{t} to {who}: subject {:?} does not contain {want:?}",
                    r.subject
                ));
            }
        }
        let body = match &r.html {
            Some(h) => format!("{}\n{h}", r.text),
            None => r.text.clone(),
        };
        for want in &m.body_contains {
            if !body.contains(want.as_str()) {
                out.push(format!(
                    "outbox.{t} to {who}: body does not contain {want:?}:\n{}",
                    r.text
                ));
            }
        }
        for bad in &m.body_not_contains {
            if body.contains(bad.as_str()) {
                out.push(format!("outbox.{t} to {who}: body contains {bad:?}"));
            }
        }
        if let Some(l) = &m.language {
            if &r.language != l {
                out.push(format!(
                    "outbox.{t} to {who}: rendered in {:?}, expected {l:?}",
                    r.language
                ));
            }
        }
    }
    out
}

/// The notifications of template `t` in a record's outbox, oldest first,
/// each as its messages: a `notify` writes one row per recipient, all in
/// one step, so a notification is a run of consecutive rows of `t` queued
/// by the same step (same revision and instant).
fn notifications<'a>(outbox: &'a [OutboxMessage], t: &str) -> Vec<Vec<&'a OutboxMessage>> {
    let mut groups: Vec<Vec<&OutboxMessage>> = Vec::new();
    let mut prev: Option<&OutboxMessage> = None;
    for m in outbox {
        if m.template == t {
            let same = prev.is_some_and(|p| {
                p.template == t && p.revision == m.revision && p.created_at == m.created_at
            });
            match groups.last_mut() {
                Some(g) if same => g.push(m),
                _ => groups.push(vec![m]),
            }
        }
        prev = Some(m);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_comparison() {
        let t = Some(FieldType::Datetime);
        let want = expected(t, &toml::Value::String("2022-11-14T09:00:00+01:00".into())).unwrap();
        assert!(same(
            &want,
            &actual(t, Some(&serde_json::json!("2022-11-14T08:00:00Z")))
        ));
        let d = Some(FieldType::Decimal);
        let want = expected(d, &toml::Value::Float(1250.5)).unwrap();
        assert!(same(&want, &actual(d, Some(&serde_json::json!("1250.50")))));
        assert!(same(
            &expected(Some(FieldType::Int), &toml::Value::String(String::new())).unwrap(),
            &Value::Null
        ));
        let l = Some(FieldType::List);
        let want = expected(
            l,
            &toml::Value::Array(vec![toml::Value::String(
                "2022-11-14T11:00:00+01:00".into(),
            )]),
        )
        .unwrap();
        assert!(same(
            &want,
            &actual(l, Some(&serde_json::json!(["2022-11-14T10:00:00Z"])))
        ));
        assert!(!same(&Value::Int(1), &Value::Int(2)));
    }

    #[tokio::test]
    async fn resolve_follows_links_and_names_the_missing_one() {
        use crate::backend::{Backend, CreateRequest, FireRequest};
        let loaded = leadflow_engine::load(&leadflow_engine::Project {
            workflows: vec![leadflow_engine::SourceFile::new(
                "workflows/w.toml",
                r#"
[workflow]
id = "w"
initial = "open"
[states.open]
[states.done]
final = true
[transitions.split]
from = ["open"]
by = ["agent"]
do = [{ spawn = "w", link = "parent", backlink = "kid" }]
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
"#,
            )],
            ..Default::default()
        });
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        let b = crate::MemBackend::new(std::sync::Arc::new(loaded.set));
        let agent = leadflow_engine::Actor {
            id: "a".into(),
            role: "agent".into(),
            ..Default::default()
        };
        let now = "2024-01-01T09:00:00Z".parse().unwrap();
        let a = b
            .create(CreateRequest {
                workflow: "w",
                input: Vec::new(),
                actor: &agent,
                now,
                idempotency_key: None,
            })
            .await
            .unwrap();
        b.fire(FireRequest {
            record: a.id,
            transition: "split",
            input: Vec::new(),
            actor: &agent,
            now,
            expected_revision: None,
            idempotency_key: None,
            visible: None,
            bulk: false,
        })
        .await
        .unwrap();
        let names: HashMap<String, RecordId> = [("A".to_string(), a.id)].into();
        let at = |s: &str| RecordRef::parse(s);
        assert_eq!(resolve(&b, &names, &at("A")).await, Ok(a.id));
        assert_eq!(resolve(&b, &names, &at("A/kid/parent")).await, Ok(a.id));
        assert_eq!(
            resolve(&b, &names, &at("A/kid/nope")).await,
            Err("record `A/kid/nope`: A/kid has no link `nope` (links: parent)".into())
        );
        assert_eq!(
            resolve(&b, &names, &at("A/x")).await,
            Err("record `A/x`: A has no link `x` (links: kid)".into())
        );
        assert_eq!(
            resolve(&b, &names, &at("B")).await,
            Err("record `B` is not named yet".into())
        );
    }
}
