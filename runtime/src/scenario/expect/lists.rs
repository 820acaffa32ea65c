//! `views`, `kpis` and `reports` (computed by the engine over every record
//! of the workflow) and `report_runs`.

use super::resolve;
use crate::backend::RecordId;
use crate::scenario::model::*;
use leadflow_engine::Workflow;
use std::collections::HashMap;

/// The runs of the workflow's scheduled reports so far, as `GET
/// /v1/reports/runs` lists them (oldest first here).
pub(super) async fn runs<B: crate::kpi::schedule::RunStore>(
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
pub(super) async fn lists<B: crate::kpi::Source>(
    b: &B,
    wf: &Workflow,
    names: &HashMap<String, RecordId>,
    e: &Expect,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let records = records(b, wf).await?;
    views(b, wf, names, e, now, &records, out).await?;
    // KPIs and reports: the code path of GET /v1/kpis and /v1/reports.
    kpis(b, wf, e, now, out).await?;
    reports(b, wf, e, now, out).await
}

/// Every record of the workflow, final ones included, as the engine sees it.
async fn records<B: crate::kpi::Source>(
    b: &B,
    wf: &Workflow,
) -> Result<Vec<(RecordId, leadflow_engine::Record)>, String> {
    let err = |e: crate::backend::Error| e.to_string();
    let filter = crate::backend::Filter::whole_workflow(wf);
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
    Ok(records)
}

/// `views`: which records each view lists.
async fn views<B: crate::kpi::Source>(
    b: &B,
    wf: &Workflow,
    names: &HashMap<String, RecordId>,
    e: &Expect,
    now: chrono::DateTime<chrono::Utc>,
    records: &[(RecordId, leadflow_engine::Record)],
    out: &mut Vec<String>,
) -> Result<(), String> {
    use leadflow_engine::lists;
    let label = |id: RecordId| {
        names
            .iter()
            .find(|(_, v)| **v == id)
            .map_or(format!("#{id}"), |(k, _)| k.clone())
    };
    for (view, want) in &e.views {
        let mut got = Vec::new();
        for (id, rec) in records {
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
    Ok(())
}

/// The range an expectation's `period` names (all time without one).
fn range_of(wf: &Workflow, period: Option<&str>) -> Result<crate::kpi::Range, String> {
    match period {
        Some(p) => crate::kpi::Range::period(wf, p).map_err(|e| e.to_string()),
        None => Ok(crate::kpi::Range::all()),
    }
}

/// `kpis`: totals and rows as `GET /v1/kpis` computes them.
async fn kpis<B: crate::kpi::Source>(
    b: &B,
    wf: &Workflow,
    e: &Expect,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    use crate::kpi::{self, GroupKey, Query};
    let kerr = |e: kpi::QueryError| e.to_string();
    for (name, want) in &e.kpis {
        let k = kpi::find_kpi(wf, name).map_err(kerr)?;
        let range = range_of(wf, want.period.as_deref())?;
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
    Ok(())
}

/// `reports`: rows as `GET /v1/reports` computes them.
async fn reports<B: crate::kpi::Source>(
    b: &B,
    wf: &Workflow,
    e: &Expect,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    use crate::kpi;
    let kerr = |e: kpi::QueryError| e.to_string();
    for (name, want) in &e.reports {
        let r = kpi::find_report(wf, name).map_err(kerr)?;
        let range = range_of(wf, want.period.as_deref())?;
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
