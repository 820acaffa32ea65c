//! A KPI's answer: its rows and total, computed by the store's SQL, by SQL
//! and the calendar, or in memory.

use super::memory::{aggregate, memory_facts, Selector};
use super::range::period_buckets;
use super::{find_kpi, Agg, GroupKey, Query, QueryError, Range, Source};
use chrono::{DateTime, Utc};
use leadflow_engine::measure::{Interval, Measure, PeriodKind, Spec};
use leadflow_engine::model::Kpi;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Duration figures of an SLA KPI.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Durations {
    /// Records with both instants.
    pub count: i64,
    /// Their mean duration in seconds (calendar time), absent without any.
    pub avg_seconds: Option<f64>,
}

/// A funnel step: how many records of the population reached the state.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Step {
    pub state: String,
    pub count: i64,
}

/// A KPI's figures for one group (or the total).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiRow {
    /// One value per `group_by` key (empty for the total).
    pub group: Vec<String>,
    pub population: i64,
    pub hits: i64,
    /// hits / population; absent for an empty population.
    pub ratio: Option<f64>,
    /// ratio >= target; absent without a target or a ratio.
    pub met: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durations: Option<Durations>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// One KPI's answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiResult {
    pub name: String,
    pub title: String,
    /// ratio, sla, funnel, or rhai (the older script form).
    pub kind: String,
    /// `sql` (the store aggregated), `sql+calendar` (the store selected
    /// per-record instants, the calendar counted working time), or
    /// `memory` (records loaded, Rhai evaluated: the older form).
    pub computed: String,
    pub target: Option<f64>,
    /// The instant placing a record in the range.
    pub anchor: String,
    pub group_by: Vec<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub rows: Vec<KpiRow>,
    pub total: KpiRow,
}

/// The range a KPI covers: the query's, else its `window` back from now.
pub(super) fn kpi_range(kpi: &Kpi, q: &Query<'_>) -> Range {
    if !q.range.is_all() {
        return q.range.clone();
    }
    match kpi.window.and_then(|w| w.fixed()) {
        Some(d) => Range {
            from: Some(q.now - d),
            to: None,
            label: None,
        },
        None => Range::all(),
    }
}

pub async fn kpi<S: Source>(b: &S, q: &Query<'_>, kpi: &Kpi) -> Result<KpiResult, QueryError> {
    let range = kpi_range(kpi, q);
    let periods = period_buckets(q, &range)?;
    let (kind, computed, aggs) = kpi_aggs(b, q, kpi, &range, periods.as_ref()).await?;
    let steps: Vec<String> = match &kpi.spec {
        Some(Spec {
            measure: Measure::Funnel(s),
            ..
        }) => s.clone(),
        _ => Vec::new(),
    };
    let sla = matches!(
        &kpi.spec,
        Some(Spec {
            measure: Measure::Sla { .. },
            ..
        })
    );
    let row = |group: Vec<String>, a: &Agg| {
        let ratio = (a.population > 0).then(|| a.hits as f64 / a.population as f64);
        KpiRow {
            group,
            population: a.population,
            hits: a.hits,
            ratio,
            met: ratio.zip(kpi.target).map(|(r, t)| r >= t),
            durations: sla.then(|| Durations {
                count: a.timed,
                avg_seconds: (a.timed > 0).then(|| a.timed_ms as f64 / a.timed as f64 / 1000.0),
            }),
            steps: steps
                .iter()
                .zip(a.steps.iter().chain(std::iter::repeat(&0)))
                .map(|(s, c)| Step {
                    state: s.clone(),
                    count: *c,
                })
                .collect(),
        }
    };
    let mut total = Agg {
        steps: vec![0; steps.len()],
        ..Agg::default()
    };
    for a in aggs.values() {
        total.population += a.population;
        total.hits += a.hits;
        total.timed += a.timed;
        total.timed_ms += a.timed_ms;
        for (t, s) in total.steps.iter_mut().zip(&a.steps) {
            *t += s;
        }
    }
    let rows = if q.group_by.is_empty() {
        Vec::new()
    } else {
        aggs.iter().map(|(g, a)| row(g.clone(), a)).collect()
    };
    Ok(KpiResult {
        name: kpi.name.clone(),
        title: kpi.title.clone(),
        kind: kind.into(),
        computed: computed.into(),
        target: kpi.target,
        anchor: kpi.anchor.text(),
        group_by: q.group_by.iter().map(GroupKey::name).collect(),
        from: range.from,
        to: range.to,
        rows,
        total: row(Vec::new(), &total),
    })
}

/// The kind of a KPI, where it was computed, and its counts per group.
async fn kpi_aggs<S: Source>(
    b: &S,
    q: &Query<'_>,
    kpi: &Kpi,
    range: &Range,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
) -> Result<(&'static str, &'static str, BTreeMap<Vec<String>, Agg>), QueryError> {
    Ok(match &kpi.spec {
        Some(spec) => {
            let kind = match spec.measure {
                Measure::Ratio(_) => "ratio",
                Measure::Sla { .. } => "sla",
                Measure::Funnel(_) => "funnel",
                Measure::Count => "count",
            };
            let calendar = spec.needs_calendar();
            let aggs = match (b.sql(), calendar) {
                (Some(store), false) => {
                    store
                        .aggregate(q, spec, &kpi.anchor, range, periods)
                        .await?
                }
                (Some(store), true) => {
                    let facts = store.facts(q, spec, &kpi.anchor, range, periods).await?;
                    aggregate(q.wf, spec, facts)
                }
                (None, _) => {
                    let facts =
                        memory_facts(b, q, range, periods, &kpi.anchor, Selector::Spec(spec))
                            .await?;
                    aggregate(q.wf, spec, facts)
                }
            };
            let computed = match (b.sql(), calendar) {
                (None, _) => "memory",
                (Some(_), false) => "sql",
                (Some(_), true) => "sql+calendar",
            };
            (kind, computed, aggs)
        }
        None => {
            let facts = memory_facts(b, q, range, periods, &kpi.anchor, Selector::Kpi(kpi)).await?;
            let ratio = Spec {
                of: Default::default(),
                measure: Measure::Ratio(Default::default()),
            };
            ("rhai", "memory", aggregate(q.wf, &ratio, facts))
        }
    })
}

/// Every KPI of the workflow (or the named ones).
pub async fn kpis<S: Source>(
    b: &S,
    q: &Query<'_>,
    names: &[String],
) -> Result<Vec<KpiResult>, QueryError> {
    let mut out = Vec::new();
    let chosen: Vec<&Kpi> = if names.is_empty() {
        q.wf.kpis.iter().collect()
    } else {
        names
            .iter()
            .map(|n| find_kpi(q.wf, n))
            .collect::<Result<_, _>>()?
    };
    for k in chosen {
        out.push(kpi(b, q, k).await?);
    }
    Ok(out)
}
