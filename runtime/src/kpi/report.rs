//! Reports: counts (and amounts when charged) per group for a period, the
//! SQL a declared report becomes, the last complete period, CSV.

use super::memory::{aggregate, memory_facts, Selector};
use super::range::period_buckets;
use super::{show_sql, GroupKey, Query, QueryError, Range, Source};
use crate::backend::Error;
use chrono::{DateTime, Utc};
use leadflow_engine::measure::{period_of, Measure, Spec};
use leadflow_engine::model::{Kpi, Report};
use leadflow_engine::Workflow;
use serde::Serialize;
use utoipa::ToSchema;

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
