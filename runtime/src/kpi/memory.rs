//! The per-record paths: the memory store's facts (and the older Rhai
//! forms), and counting facts per group (an SLA in working time by the
//! workflow's calendar).

use super::{bad, millis, Agg, Fact, GroupKey, Query, QueryError, Range, Source};
use crate::backend::Filter;
use chrono::{DateTime, Utc};
use leadflow_engine::duration::Unit;
use leadflow_engine::measure::{json_text, Interval, Measure, Moment, PeriodKind, Spec};
use leadflow_engine::model::{Kpi, Report};
use leadflow_engine::{Record, Workflow};
use std::collections::BTreeMap;

/// Which records count, on the per-record path.
pub(super) enum Selector<'a> {
    Spec(&'a Spec),
    /// The Rhai `of`/`hit` of a KPI.
    Kpi(&'a Kpi),
    /// The Rhai `filter` of a report.
    Report(&'a Report),
}

/// A record's instant for `m`, in milliseconds.
fn moment_of(
    m: &Moment,
    created: DateTime<Utc>,
    fields: &serde_json::Map<String, serde_json::Value>,
    events: &[crate::backend::Event],
) -> Option<i64> {
    match m {
        Moment::Created => Some(millis(created)),
        Moment::Field(f) => fields
            .get(f)
            .and_then(|v| v.as_str())
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| millis(t.with_timezone(&Utc))),
        Moment::Transition(t) => events
            .iter()
            .filter(|e| e.transition.as_deref() == Some(t.as_str()))
            .map(|e| millis(e.at))
            .min(),
        Moment::Entered(s) => events
            .iter()
            .filter(|e| e.to.as_deref() == Some(s.as_str()))
            .map(|e| millis(e.at))
            .min(),
    }
}

/// The memory path: load every record of the workflow with its events and
/// keep the population's facts (the semantics `sql.rs` computes).
pub(super) async fn memory_facts<S: Source>(
    b: &S,
    q: &Query<'_>,
    range: &Range,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
    anchor: &Moment,
    sel: Selector<'_>,
) -> Result<Vec<Fact>, QueryError> {
    let wf = q.wf;
    let filter = Filter::whole_workflow(wf);
    let mut out = Vec::new();
    for id in b.select(&filter).await? {
        let Some(r) = b.get(id).await? else { continue };
        if r.workflow != wf.id {
            continue;
        }
        let events = b.events(id).await?;
        let at = moment_of(anchor, r.created_at, &r.fields, &events);
        if !range.contains(at) {
            continue;
        }
        let ever = |s: &str| events.iter().any(|e| e.to.as_deref() == Some(s));
        let mut fact = Fact {
            group: Vec::new(),
            t0: None,
            t1: None,
            hit: false,
            steps: Vec::new(),
        };
        match sel {
            Selector::Spec(spec) => {
                if !spec.of.test(&r.state, &r.fields, &ever) {
                    continue;
                }
                match &spec.measure {
                    Measure::Ratio(h) => fact.hit = h.test(&r.state, &r.fields, &ever),
                    Measure::Sla { start, stop, .. } => {
                        fact.t0 = moment_of(start, r.created_at, &r.fields, &events);
                        fact.t1 = moment_of(stop, r.created_at, &r.fields, &events);
                        if fact.t0.is_none() {
                            continue;
                        }
                    }
                    Measure::Funnel(steps) => {
                        fact.steps = steps.iter().map(|s| *s == r.state || ever(s)).collect()
                    }
                    Measure::Count => {}
                }
            }
            Selector::Kpi(k) => {
                let Some(rec) = engine_record(wf, &r) else {
                    continue;
                };
                let v = leadflow_engine::lists::kpi(wf, &k.name, std::iter::once(&rec), q.now)
                    .map_err(|e| bad(e.to_string()))?;
                if v.population == 0 {
                    continue;
                }
                fact.hit = v.hits > 0;
            }
            Selector::Report(rep) => {
                let Some(rec) = engine_record(wf, &r) else {
                    continue;
                };
                let rows =
                    leadflow_engine::lists::report(wf, &rep.name, std::iter::once(&rec), q.now)
                        .map_err(|e| bad(e.to_string()))?;
                if rows.is_empty() {
                    continue;
                }
            }
        }
        let group = group_of(q, periods, &r, at);
        if group.len() != q.group_by.len() {
            continue;
        }
        fact.group = group;
        out.push(fact);
    }
    Ok(out)
}

/// The record's group, one value per `group_by` key; shorter when a period
/// key has no bucket for it (the record is then left out).
fn group_of(
    q: &Query<'_>,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
    r: &crate::backend::StoredRecord,
    at: Option<i64>,
) -> Vec<String> {
    let mut group = Vec::new();
    for g in &q.group_by {
        group.push(match g {
            GroupKey::Assignee => r.assignee.clone().unwrap_or_default(),
            GroupKey::State => r.state.clone(),
            GroupKey::Field(f) => json_text(r.fields.get(f)).unwrap_or_default(),
            GroupKey::Period(_) => {
                let Some((_, bs)) = periods else { continue };
                let Some(t) = at else { continue };
                match bs.iter().find(|i| t >= millis(i.from) && t < millis(i.to)) {
                    Some(i) => i.label.clone(),
                    None => break,
                }
            }
        });
    }
    group
}

fn engine_record(wf: &Workflow, r: &crate::backend::StoredRecord) -> Option<Record> {
    Record::from_json(
        wf,
        &r.state,
        &r.fields,
        r.assignee.clone(),
        r.created_at,
        r.entered_at,
    )
}

/// Facts counted per group: hits by the measure (an SLA in working time
/// by the workflow's calendar).
pub(crate) fn aggregate(
    wf: &Workflow,
    spec: &Spec,
    facts: Vec<Fact>,
) -> BTreeMap<Vec<String>, Agg> {
    let within_ms = spec.within_ms();
    let mut out: BTreeMap<Vec<String>, Agg> = BTreeMap::new();
    for f in facts {
        let a = out.entry(f.group).or_default();
        a.population += 1;
        let hit = match &spec.measure {
            Measure::Ratio(_) => f.hit,
            Measure::Count => false,
            Measure::Funnel(_) => f.steps.last().copied().unwrap_or(false),
            Measure::Sla { within, .. } => match (f.t0, f.t1) {
                (Some(t0), Some(t1)) => match (within, within_ms) {
                    (None, _) => true,
                    (Some(_), Some(ms)) => t1 - t0 <= ms,
                    (Some(span), None) => {
                        let start = DateTime::<Utc>::from_timestamp_millis(t0).unwrap_or_default();
                        let due = match span.unit {
                            Unit::WorkingHours | Unit::WorkingDays => {
                                span.add_to(start, &wf.calendar)
                            }
                            _ => start,
                        };
                        t1 <= millis(due)
                    }
                },
                _ => false,
            },
        };
        if let (Some(t0), Some(t1)) = (f.t0, f.t1) {
            a.timed += 1;
            a.timed_ms += t1 - t0;
        }
        a.hits += i64::from(hit);
        if a.steps.len() < f.steps.len() {
            a.steps.resize(f.steps.len(), 0);
        }
        for (s, reached) in a.steps.iter_mut().zip(&f.steps) {
            *s += i64::from(*reached);
        }
    }
    if let Measure::Funnel(steps) = &spec.measure {
        for a in out.values_mut() {
            a.steps.resize(steps.len(), 0);
        }
    }
    out
}
