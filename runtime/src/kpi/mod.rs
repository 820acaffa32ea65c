//! KPIs and reports served: `GET /v1/kpis/{workflow}`,
//! `GET /v1/reports/{workflow}/{name}`, `leadflow kpi`, `leadflow report`
//! and the scenario harness's `kpis`/`reports` expectations all come here
//! (docs/kpis.md).
//!
//! A declared KPI or report (`where`, `hits`, `start`/`stop`/`within`,
//! `funnel`) is computed by the SQL stores in one aggregate query
//! (`sql.rs`): no record is loaded. The memory store computes the same
//! semantics record by record ([`facts`]), and the conformance tests hold
//! the three equal. Two things are not SQL: an SLA in working time (`wh`,
//! `wd`) needs the workflow's calendar, so SQL returns one row per record
//! of the population (group, start, stop) and the calendar decides here;
//! and the older Rhai form (`of`/`hit`, a report's `filter`) loads the
//! records and runs the scripts (`"computed": "memory"` in the answer).
//!
//! | file | what it is for |
//! | --- | --- |
//! | `mod.rs` | queries and answers, ranges and groupings, the memory evaluation, dispatch |
//! | `sql.rs` | the aggregate query for PostgreSQL and SQLite |
//! | `schedule.rs` | scheduled runs (`every`): enqueue, claim, run, record; the memory store's runs |
//! | `schedule_sql.rs` | the runs in PostgreSQL and SQLite |

pub mod schedule;
mod schedule_sql;
mod sql;

pub use sql::show as show_sql;

use crate::any::AnyBackend;
use crate::backend::{Backend, Error, Filter};
use crate::mem::MemBackend;
use chrono::{DateTime, Utc};
use leadflow_engine::duration::Unit;
use leadflow_engine::measure::{
    buckets, json_text, parse_period, period_of, Interval, Measure, Moment, PeriodKind, Spec,
    PERIOD_FORMS,
};
use leadflow_engine::model::{Kpi, Report};
use leadflow_engine::{Record, Workflow};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A request that cannot be answered as asked (HTTP 400, CLI exit 2).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Store(#[from] Error),
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::Bad(msg.into())
}

/// What the store computes on: SQL (PostgreSQL, SQLite) or records in
/// memory. The scenario harness and the daemon call the same functions.
pub trait Source: Backend {
    fn sql(&self) -> Option<sql::SqlStore<'_>>;
}

impl Source for MemBackend {
    fn sql(&self) -> Option<sql::SqlStore<'_>> {
        None
    }
}

impl Source for crate::sqlite::SqliteBackend {
    fn sql(&self) -> Option<sql::SqlStore<'_>> {
        Some(sql::SqlStore::Sqlite(self))
    }
}

impl Source for crate::pg::PgBackend {
    fn sql(&self) -> Option<sql::SqlStore<'_>> {
        Some(sql::SqlStore::Pg(self))
    }
}

impl Source for AnyBackend {
    fn sql(&self) -> Option<sql::SqlStore<'_>> {
        match self {
            AnyBackend::Mem(_) => None,
            AnyBackend::Sqlite(s) => Some(sql::SqlStore::Sqlite(s)),
            AnyBackend::Pg(p) => Some(sql::SqlStore::Pg(p)),
        }
    }
}

/// The instants a query covers: `[from, to)`, either end open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The period's name when one was asked (`2025-Q1`).
    pub label: Option<String>,
}

impl Range {
    pub fn all() -> Range {
        Range::default()
    }

    /// A period name in the workflow calendar's zone ([`PERIOD_FORMS`]).
    pub fn period(wf: &Workflow, s: &str) -> Result<Range, QueryError> {
        let i = parse_period(s, wf.calendar.timezone()).map_err(QueryError::Bad)?;
        Ok(Range::of(i))
    }

    fn of(i: Interval) -> Range {
        Range {
            from: Some(i.from),
            to: Some(i.to),
            label: Some(i.label),
        }
    }

    /// `from`/`to` as given on a query: a day (`2025-01-01`, local midnight
    /// in the calendar's zone; `to` a day includes that day) or an RFC 3339
    /// instant (`to` excluded).
    pub fn between(
        wf: &Workflow,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Range, QueryError> {
        let tz = wf.calendar.timezone();
        let parse = |s: &str, end: bool| -> Result<DateTime<Utc>, QueryError> {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                bad(format!(
                    "`{s}` is neither a day (2025-01-31) nor an RFC 3339 instant (2025-01-31T09:00:00+01:00)"
                ))
            })?;
            let d = if end { d.succ_opt().unwrap_or(d) } else { d };
            Ok(leadflow_engine::measure::day_start(d, tz))
        };
        let r = Range {
            from: from.map(|s| parse(s, false)).transpose()?,
            to: to.map(|s| parse(s, true)).transpose()?,
            label: None,
        };
        if let (Some(a), Some(b)) = (r.from, r.to) {
            if b <= a {
                return Err(bad("`to` must be after `from`"));
            }
        }
        Ok(r)
    }

    fn is_all(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    fn contains(&self, ms: Option<i64>) -> bool {
        if self.is_all() {
            return true;
        }
        let Some(t) = ms else { return false };
        self.from.is_none_or(|f| t >= millis(f)) && self.to.is_none_or(|e| t < millis(e))
    }
}

/// What a row is grouped by.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupKey {
    Assignee,
    State,
    Field(String),
    Period(PeriodKind),
}

impl GroupKey {
    /// `assignee`, `state`, `day`..`year`, or a single-valued field.
    pub fn parse(wf: &Workflow, s: &str) -> Result<GroupKey, QueryError> {
        let s = s.trim();
        if s == "assignee" {
            return Ok(GroupKey::Assignee);
        }
        if s == "state" {
            return Ok(GroupKey::State);
        }
        if let Some(k) = PeriodKind::parse(s) {
            return Ok(GroupKey::Period(k));
        }
        match wf.field(s).map(|f| &wf.fields[f]) {
            Some(f) if f.ty != leadflow_engine::FieldType::List => Ok(GroupKey::Field(s.to_string())),
            Some(_) => Err(bad(format!("cannot group by `{s}`: it is a list field"))),
            None => Err(bad(format!(
                "unknown group_by `{s}`: use assignee, state, day, week, month, quarter, year or a field of workflow `{}`",
                wf.id
            ))),
        }
    }

    /// A comma-separated list.
    pub fn parse_list(wf: &Workflow, s: &str) -> Result<Vec<GroupKey>, QueryError> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| GroupKey::parse(wf, p))
            .collect()
    }

    pub fn name(&self) -> String {
        match self {
            GroupKey::Assignee => "assignee".into(),
            GroupKey::State => "state".into(),
            GroupKey::Field(f) => f.clone(),
            GroupKey::Period(k) => k.as_str().into(),
        }
    }
}

/// Counts of one group, as the stores compute them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Agg {
    pub population: i64,
    pub hits: i64,
    /// Records with both instants of a duration, and the sum of their
    /// durations in milliseconds.
    pub timed: i64,
    pub timed_ms: i64,
    pub steps: Vec<i64>,
}

/// One record of a population, for the per-record paths (memory, working
/// time): its group and what the measure reads.
pub(crate) struct Fact {
    pub group: Vec<String>,
    pub t0: Option<i64>,
    pub t1: Option<i64>,
    pub hit: bool,
    pub steps: Vec<bool>,
}

/// Milliseconds since the epoch, rounded to the nearest (as SQLite reads
/// instants; PostgreSQL and the memory store round the same way).
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    (t.timestamp_micros() + 500).div_euclid(1000)
}

/// What a KPI query asks.
pub struct Query<'a> {
    pub wf: &'a Workflow,
    pub range: Range,
    pub group_by: Vec<GroupKey>,
    pub now: DateTime<Utc>,
}

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

/// The group_by a KPI uses when the query gives none.
pub fn default_groups(wf: &Workflow, kpi: &Kpi) -> Result<Vec<GroupKey>, QueryError> {
    kpi.group_by
        .iter()
        .map(|g| GroupKey::parse(wf, g))
        .collect()
}

pub fn find_kpi<'w>(wf: &'w Workflow, name: &str) -> Result<&'w Kpi, QueryError> {
    wf.kpis.iter().find(|k| k.name == name).ok_or_else(|| {
        let known: Vec<&str> = wf.kpis.iter().map(|k| k.name.as_str()).collect();
        bad(format!(
            "unknown kpi `{name}` in workflow `{}` (known: {})",
            wf.id,
            known.join(", ")
        ))
    })
}

pub fn find_report<'w>(wf: &'w Workflow, name: &str) -> Result<&'w Report, QueryError> {
    wf.reports.iter().find(|r| r.name == name).ok_or_else(|| {
        let known: Vec<&str> = wf.reports.iter().map(|r| r.name.as_str()).collect();
        bad(format!(
            "unknown report `{name}` in workflow `{}` (known: {})",
            wf.id,
            known.join(", ")
        ))
    })
}

/// The buckets of every period grouping of `q`, in order of `group_by`.
fn period_buckets(
    q: &Query<'_>,
    range: &Range,
) -> Result<Option<(PeriodKind, Vec<Interval>)>, QueryError> {
    let kinds: Vec<PeriodKind> = q
        .group_by
        .iter()
        .filter_map(|g| match g {
            GroupKey::Period(k) => Some(*k),
            _ => None,
        })
        .collect();
    match kinds.as_slice() {
        [] => Ok(None),
        [k] => {
            let (Some(from), Some(to)) = (range.from, range.to.or(Some(q.now))) else {
                return Err(bad(format!(
                    "group_by={} needs a range: give period= or from= (and to=)",
                    k.as_str()
                )));
            };
            let b = buckets(*k, from, to, q.wf.calendar.timezone()).map_err(QueryError::Bad)?;
            Ok(Some((*k, b)))
        }
        _ => Err(bad(
            "group by one period (day, week, month, quarter or year) at most",
        )),
    }
}

/// The range a KPI covers: the query's, else its `window` back from now.
fn kpi_range(kpi: &Kpi, q: &Query<'_>) -> Range {
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

/// Compute one KPI.
pub async fn kpi<S: Source>(b: &S, q: &Query<'_>, kpi: &Kpi) -> Result<KpiResult, QueryError> {
    let range = kpi_range(kpi, q);
    let periods = period_buckets(q, &range)?;
    let (kind, computed, aggs) = match &kpi.spec {
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
                        .aggregate(q, spec, &kpi.anchor, &range, periods.as_ref())
                        .await?
                }
                (Some(store), true) => {
                    let facts = store
                        .facts(q, spec, &kpi.anchor, &range, periods.as_ref())
                        .await?;
                    aggregate(q.wf, spec, facts)
                }
                (None, _) => {
                    let facts = memory_facts(
                        b,
                        q,
                        &range,
                        periods.as_ref(),
                        &kpi.anchor,
                        Selector::Spec(spec),
                    )
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
            let facts = memory_facts(
                b,
                q,
                &range,
                periods.as_ref(),
                &kpi.anchor,
                Selector::Kpi(kpi),
            )
            .await?;
            let ratio = Spec {
                of: Default::default(),
                measure: Measure::Ratio(Default::default()),
            };
            ("rhai", "memory", aggregate(q.wf, &ratio, facts))
        }
    };
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

/// One row of a report: a group, its count and amount.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct ReportLine {
    pub group: Vec<String>,
    pub count: i64,
    /// count × the report's `charge` (billing), absent without a charge.
    pub amount: Option<f64>,
}

/// A report for one period.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct ReportResult {
    pub workflow: String,
    pub name: String,
    pub title: String,
    /// The period's name (`2025-Q1`), absent for the whole history.
    pub period: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The instant placing a record in the period.
    pub anchor: String,
    /// `sql` or `memory` (a Rhai `filter`).
    pub computed: String,
    pub group_by: Vec<String>,
    pub charge: Option<f64>,
    pub currency: Option<String>,
    pub rows: Vec<ReportLine>,
    pub total_count: i64,
    pub total_amount: Option<f64>,
}

/// Compute a report over `range` (a period, or everything).
pub async fn report<S: Source>(
    b: &S,
    wf: &Workflow,
    r: &Report,
    range: Range,
    now: DateTime<Utc>,
) -> Result<ReportResult, QueryError> {
    let group_by = r
        .group_by
        .iter()
        .map(|g| GroupKey::parse(wf, g))
        .collect::<Result<Vec<_>, _>>()?;
    let q = Query {
        wf,
        range: range.clone(),
        group_by,
        now,
    };
    let periods = period_buckets(&q, &range)?;
    let count = Spec {
        of: Default::default(),
        measure: Measure::Count,
    };
    let (computed, aggs) = match (&r.spec, r.filter, b.sql()) {
        (Some(spec), _, Some(store)) => (
            "sql",
            store
                .aggregate(&q, spec, &r.anchor, &range, periods.as_ref())
                .await?,
        ),
        (None, None, Some(store)) => (
            "sql",
            store
                .aggregate(&q, &count, &r.anchor, &range, periods.as_ref())
                .await?,
        ),
        (Some(spec), _, None) => {
            let f = memory_facts(
                b,
                &q,
                &range,
                periods.as_ref(),
                &r.anchor,
                Selector::Spec(spec),
            )
            .await?;
            ("memory", aggregate(wf, spec, f))
        }
        (None, None, None) => {
            let f = memory_facts(
                b,
                &q,
                &range,
                periods.as_ref(),
                &r.anchor,
                Selector::Spec(&count),
            )
            .await?;
            ("memory", aggregate(wf, &count, f))
        }
        (None, Some(_), _) => {
            let f = memory_facts(
                b,
                &q,
                &range,
                periods.as_ref(),
                &r.anchor,
                Selector::Report(r),
            )
            .await?;
            ("memory", aggregate(wf, &count, f))
        }
    };
    let amount = |n: i64| r.charge.map(|c| c * n as f64);
    let rows: Vec<ReportLine> = aggs
        .into_iter()
        .map(|(group, a)| ReportLine {
            group,
            count: a.population,
            amount: amount(a.population),
        })
        .collect();
    let total_count = rows.iter().map(|l| l.count).sum();
    Ok(ReportResult {
        workflow: wf.id.clone(),
        name: r.name.clone(),
        title: r.title.clone(),
        period: range.label.clone(),
        from: range.from,
        to: range.to,
        anchor: r.anchor.text(),
        computed: computed.into(),
        group_by: r.group_by.clone(),
        charge: r.charge,
        currency: r.currency.clone(),
        rows,
        total_count,
        total_amount: amount(total_count),
    })
}

/// The statement a declared report becomes (as [`show_sql`] for a KPI):
/// `None` for a Rhai `filter`.
pub fn show_report_sql(
    postgres: bool,
    wf: &Workflow,
    r: &Report,
    range: Range,
) -> Result<Option<String>, QueryError> {
    if r.filter.is_some() {
        return Ok(None);
    }
    let group_by = r
        .group_by
        .iter()
        .map(|g| GroupKey::parse(wf, g))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = r.spec.clone().unwrap_or(Spec {
        of: Default::default(),
        measure: Measure::Count,
    });
    let as_kpi = Kpi {
        name: r.name.clone(),
        title: r.title.clone(),
        of: None,
        hit: None,
        spec: Some(spec),
        target: None,
        anchor: r.anchor.clone(),
        window: None,
        group_by: r.group_by.clone(),
    };
    let q = Query {
        wf,
        range,
        group_by,
        now: chrono::Utc::now(),
    };
    show_sql(postgres, &q, &as_kpi)
}

/// The report's last complete period before `now` (what a scheduled run
/// covers), when it declares one.
pub fn last_period(wf: &Workflow, r: &Report, now: DateTime<Utc>) -> Option<Range> {
    let k = r.period?;
    let tz = wf.calendar.timezone();
    let current = period_of(k, now, tz);
    let prev = period_of(k, current.from - chrono::Duration::seconds(1), tz);
    Some(Range::of(prev))
}

/// A report as CSV: the group_by columns, count, and amount when charged.
pub fn report_csv(r: &ReportResult) -> Result<String, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = r.group_by.clone();
    header.push("count".into());
    if r.charge.is_some() {
        header.push("amount".into());
    }
    let csv_err = |e: csv::Error| QueryError::Store(Error::storage(format!("csv: {e}")));
    w.write_record(&header).map_err(csv_err)?;
    for l in &r.rows {
        let mut rec = l.group.clone();
        rec.push(l.count.to_string());
        if let Some(a) = l.amount {
            rec.push(format!("{a:.2}"));
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| QueryError::Store(Error::storage(format!("csv: {e}"))))?;
    String::from_utf8(bytes).map_err(|e| QueryError::Store(Error::storage(format!("csv: {e}"))))
}

/// Which records count, on the per-record path.
enum Selector<'a> {
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
async fn memory_facts<S: Source>(
    b: &S,
    q: &Query<'_>,
    range: &Range,
    periods: Option<&(PeriodKind, Vec<Interval>)>,
    anchor: &Moment,
    sel: Selector<'_>,
) -> Result<Vec<Fact>, QueryError> {
    let wf = q.wf;
    let filter = Filter {
        workflow: &wf.id,
        states: wf.states.iter().map(|s| s.name.as_str()).collect(),
        fields: Vec::new(),
        idle_since: None,
        include_final: true,
    };
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
        if group.len() != q.group_by.len() {
            continue;
        }
        fact.group = group;
        out.push(fact);
    }
    Ok(out)
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

/// The accepted forms of a period, for error messages.
pub fn period_forms() -> &'static str {
    PERIOD_FORMS
}
