//! KPIs and reports served: `GET /v1/kpis/{workflow}`,
//! `GET /v1/reports/{workflow}/{name}`, `leadflow kpi`, `leadflow report`
//! and the scenario harness's `kpis`/`reports` expectations all come here
//! (docs/kpis.md).
//!
//! A declared KPI or report (`where`, `hits`, `start`/`stop`/`within`,
//! `funnel`) is computed by the SQL stores in one aggregate query
//! (`sql.rs`): no record is loaded. The memory store computes the same
//! semantics record by record ([`memory::memory_facts`]), and the conformance tests hold
//! the three equal. Two things are not SQL: an SLA in working time (`wh`,
//! `wd`) needs the workflow's calendar, so SQL returns one row per record
//! of the population (group, start, stop) and the calendar decides here;
//! and the older Rhai form (`of`/`hit`, a report's `filter`) loads the
//! records and runs the scripts (`"computed": "memory"` in the answer).
//!
//! | file | what it is for |
//! | --- | --- |
//! | `mod.rs` | errors, the `Source` dispatch, a query, counts and facts, finding a KPI or report |
//! | `range.rs` | ranges, groupings, period buckets |
//! | `answer.rs` | a KPI's answer: [`kpi`], [`kpis`] |
//! | `report.rs` | a report's answer: [`report`], its SQL, last period, CSV |
//! | `memory.rs` | the per-record paths (memory store, Rhai forms) and counting facts per group |
//! | `sql.rs` | the aggregate query for PostgreSQL and SQLite |
//! | `schedule.rs` | scheduled runs (`every`): enqueue, claim, run, record; the memory store's runs |
//! | `schedule_sql.rs` | the runs in PostgreSQL and SQLite |

mod answer;
mod memory;
mod range;
mod report;
pub mod schedule;
mod schedule_sql;
mod sql;

pub use answer::{kpi, kpis, Durations, KpiResult, KpiRow, Step};
pub use range::{GroupKey, Range};
pub use report::{last_period, report, report_csv, show_report_sql, ReportLine, ReportResult};
pub use sql::show as show_sql;

use crate::any::AnyBackend;
use crate::backend::{Backend, Error};
use crate::mem::MemBackend;
use answer::kpi_range;
use chrono::{DateTime, Utc};
use leadflow_engine::measure::PERIOD_FORMS;
use leadflow_engine::model::{Kpi, Report};
use leadflow_engine::Workflow;
use range::period_buckets;

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

/// The accepted forms of a period, for error messages.
pub fn period_forms() -> &'static str {
    PERIOD_FORMS
}
