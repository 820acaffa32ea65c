//! Checking one `expect` table against what the backend stored. Values are
//! compared typed: the expected TOML value and the stored JSON value are both
//! coerced with the field's type, so `2022-11-14T09:00:00+01:00` equals
//! `2022-11-14T08:00:00Z` and `1250.5` equals `"1250.50"`.

//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`check`] (one `expect` table), [`resolve`], state, fields, assignee, links |
//! | `values.rs` | typed comparison of expected and stored values |
//! | `outbox.rs` | the outbox expectations and message rendering |
//! | `org.rs` | who sees the record and its `pii` fields |
//! | `history.rs` | timers, field history, events |
//! | `lists.rs` | views, KPIs, reports and scheduled report runs |

mod history;
mod lists;
mod org;
mod outbox;
mod values;

use super::model::*;
use crate::backend::{Backend, Link, RecordId, StoredRecord};
use history::{check_events, check_history, check_timers};
use leadflow_engine::{Workflow, WorkflowSet};
use lists::{lists, runs};
use org::check_org;
use outbox::check_outbox;
use std::collections::HashMap;
use values::{actual, expected, same, show, ty};

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
    check_record(wf, &rec, e, &mut out);
    let needs_outbox = !(e.outbox.is_empty()
        && e.messages.is_empty()
        && e.no_outbox.is_empty()
        && e.outbox_count.is_empty()
        && e.outbox_to.is_empty()
        && e.outbox_not_to.is_empty());
    if needs_outbox {
        let outbox = b.outbox(id).await.map_err(err)?;
        check_outbox(&outbox, e, templates, &mut out);
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
        check_timers(&timers, e, &mut out);
    }
    if !e.history.is_empty() {
        let history = b.history(id).await.map_err(err)?;
        check_history(wf, &history, e, &mut out);
    }
    if !e.events.is_empty() {
        let events = b.events(id).await.map_err(err)?;
        check_events(&events, e, &mut out);
    }
    if !e.links.is_empty() {
        let links = b.links(id).await.map_err(err)?;
        check_links(b, names, &links, e, &mut out).await?;
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

/// `state`, `fields`, `empty` and `assignee` against the stored record.
fn check_record(wf: Option<&Workflow>, rec: &StoredRecord, e: &Expect, out: &mut Vec<String>) {
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
}

/// `links` against the record's links; a record reference is resolved first.
async fn check_links<B: Backend>(
    b: &B,
    names: &HashMap<String, RecordId>,
    links: &[Link],
    e: &Expect,
    out: &mut Vec<String>,
) -> Result<(), String> {
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
    Ok(())
}

#[cfg(test)]
mod tests;
