//! Views, KPIs and reports over a set of records: pure functions the
//! runtime (list endpoints, report jobs) and the scenario harness share.

use crate::eval::{Actor, Code, Ctx, Record, Refusal};
use crate::model::Workflow;
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::Serialize;

fn unknown(kind: &str, wf: &Workflow, name: &str) -> Refusal {
    Refusal {
        code: Code::Input,
        message: format!("workflow `{}` has no {kind} `{name}`", wf.id),
        field: None,
    }
}

fn test(
    wf: &Workflow,
    script: Option<usize>,
    rec: &Record,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    let Some(id) = script else { return Ok(true) };
    let system = Actor::system();
    let ctx = Ctx {
        now,
        actor: &system,
        directory: &[],
    };
    let v = crate::eval::eval_script(wf, rec, id, ctx)?;
    v.as_bool().map_err(|t| Refusal {
        code: Code::Script,
        message: format!("a list filter returned {t} instead of true or false"),
        field: None,
    })
}

/// Whether `rec` appears in view `view`.
pub fn in_view(
    wf: &Workflow,
    view: &str,
    rec: &Record,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    let v = wf
        .views
        .iter()
        .find(|v| v.name == view)
        .ok_or_else(|| unknown("view", wf, view))?;
    if !v.states.is_empty() && !v.states.contains(&rec.state) {
        return Ok(false);
    }
    test(wf, v.filter, rec, now)
}

/// Whether `rec` passes the filter of work queue `queue` for the puller
/// `actor` (`actor.id` in the filter is the puller, as the SQL stores read
/// it). States, `max_attempts` and leases are the store's business.
pub fn in_queue(
    wf: &Workflow,
    queue: &str,
    rec: &Record,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    let q = wf
        .queues
        .iter()
        .find(|q| q.name == queue)
        .ok_or_else(|| unknown("queue", wf, queue))?;
    let Some(id) = q.filter else { return Ok(true) };
    let ctx = Ctx {
        now,
        actor,
        directory: &[],
    };
    let v = crate::eval::eval_script(wf, rec, id, ctx)?;
    v.as_bool().map_err(|t| Refusal {
        code: Code::Script,
        message: format!("a queue filter returned {t} instead of true or false"),
        field: None,
    })
}

/// A KPI's value: `hits` of `population` records.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KpiValue {
    pub hits: usize,
    pub population: usize,
    pub target: Option<f64>,
}

impl KpiValue {
    /// The share, or None for an empty population.
    pub fn ratio(&self) -> Option<f64> {
        (self.population > 0).then(|| self.hits as f64 / self.population as f64)
    }
    pub fn met(&self) -> Option<bool> {
        Some(self.ratio()? >= self.target?)
    }
}

pub fn kpi<'a>(
    wf: &Workflow,
    name: &str,
    records: impl IntoIterator<Item = &'a Record>,
    now: DateTime<Utc>,
) -> Result<KpiValue, Refusal> {
    let k = wf
        .kpis
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| unknown("kpi", wf, name))?;
    let mut v = KpiValue {
        hits: 0,
        population: 0,
        target: k.target,
    };
    let Some(hit) = k.hit else {
        return Err(Refusal {
            code: Code::Input,
            message: format!(
                "kpi `{name}` is declared for the store (where/hits/start/funnel): compute it with the runtime's kpi module"
            ),
            field: None,
        });
    };
    for r in records {
        if test(wf, k.of, r, now)? {
            v.population += 1;
            if test(wf, Some(hit), r, now)? {
                v.hits += 1;
            }
        }
    }
    Ok(v)
}

/// One row of a report: the group's values, its count and charge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    pub group: Vec<String>,
    pub count: usize,
    pub charge: Option<f64>,
}

/// Counts of the selected records grouped by the report's `group_by`
/// columns (a field, `state` or `assignee`), sorted by group.
pub fn report<'a>(
    wf: &Workflow,
    name: &str,
    records: impl IntoIterator<Item = &'a Record>,
    now: DateTime<Utc>,
) -> Result<Vec<ReportRow>, Refusal> {
    let r = wf
        .reports
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| unknown("report", wf, name))?;
    let mut rows: std::collections::BTreeMap<Vec<String>, usize> = Default::default();
    for rec in records {
        if !test(wf, r.filter, rec, now)? {
            continue;
        }
        let group = r
            .group_by
            .iter()
            .map(|g| match g.as_str() {
                "state" => wf.state_name(rec.state).to_string(),
                "assignee" => rec.assignee.clone().unwrap_or_default(),
                f => rec
                    .get(wf, f)
                    .map(Value::to_string)
                    .filter(|s| s != "null")
                    .unwrap_or_default(),
            })
            .collect();
        *rows.entry(group).or_default() += 1;
    }
    Ok(rows
        .into_iter()
        .map(|(group, count)| ReportRow {
            group,
            count,
            charge: r.charge.map(|c| c * count as f64),
        })
        .collect())
}
