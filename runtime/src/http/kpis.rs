//! `GET /v1/kpis/{workflow}` and `GET /v1/reports/{workflow}/{name}`:
//! KPIs and reports computed by the store (`crate::kpi`, docs/kpis.md).
//!
//! Admin keys only: KPIs and reports aggregate over every record of the
//! tenant (every dealer, every Expert), which an actor-bound key may not
//! see (the visibility rule of `GET /v1/records`).

use super::auth::require_admin;
use super::error::{ApiError, ErrorBody, Json, Query};
use super::list::{cursor_key, open_cursor, seal_cursor};
use super::state::{AppState, Caller};
use crate::kpi::schedule::{ReportRun, RunStore, RunsQuery};
use crate::kpi::{self, GroupKey, KpiResult, QueryError, Range, ReportResult};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        match e {
            QueryError::Bad(m) => ApiError::bad_request(m),
            QueryError::Store(e) => e.into(),
        }
    }
}

fn only(q: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match q.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "unknown parameter `{k}` (known: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The range of a query: `period`, or `from`/`to`, or none.
fn range(wf: &leadflow_engine::Workflow, q: &BTreeMap<String, String>) -> Result<Range, ApiError> {
    let (from, to) = (q.get("from"), q.get("to"));
    match q.get("period") {
        Some(_) if from.is_some() || to.is_some() => Err(ApiError::bad_request(
            "give either `period` or `from`/`to`, not both",
        )),
        Some(p) => Ok(Range::period(wf, p)?),
        None => Ok(Range::between(
            wf,
            from.map(String::as_str),
            to.map(String::as_str),
        )?),
    }
}

/// Every KPI of a workflow (or those named in `kpi`).
#[derive(Debug, Serialize, ToSchema)]
pub struct KpisPage {
    pub workflow: String,
    /// The calendar's time zone periods and days are read in.
    pub time_zone: String,
    pub kpis: Vec<KpiResult>,
}

/// A workflow's KPIs, computed by the store: declared KPIs in one SQL
/// query each (`computed: sql`), working-time SLAs with the calendar
/// (`sql+calendar`), older Rhai KPIs over loaded records (`memory`).
#[utoipa::path(get, path = "/v1/kpis/{workflow}", tag = "kpis", operation_id = "kpis_get",
    params(("workflow" = String, Path),
           ("kpi" = Option<String>, Query, description = "comma-separated KPI names (default: every KPI of the workflow)"),
           ("period" = Option<String>, Query, description = "2025-Q1, 2025-03, 2025-W10, 2025-03-04, 2025 or 2025-01-01..2025-03-31, in the workflow calendar's zone"),
           ("from" = Option<String>, Query, description = "a day (2025-01-01, from its start) or an RFC 3339 instant"),
           ("to" = Option<String>, Query, description = "a day (included) or an RFC 3339 instant (excluded)"),
           ("group_by" = Option<String>, Query, description = "comma-separated: assignee, state, a field, or day, week, month, quarter, year (default: the KPI's own group_by)")),
    responses((status = 200, body = KpisPage),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST: unknown parameter, KPI, group_by or period; a period or day that does not parse (the message lists the forms)"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: an actor-bound key"),
              (status = 404, body = ErrorBody, description = "E_UNKNOWN_WORKFLOW")),
    security(("bearer" = [])))]
pub async fn kpis(
    State(s): State<AppState>,
    caller: Caller,
    Path(workflow): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<KpisPage>, ApiError> {
    require_admin(&caller)?;
    only(&q, &["kpi", "period", "from", "to", "group_by"])?;
    let t = s.tenant(&caller);
    let wf = t.backend.versions().current(&workflow)?;
    let range = range(&wf, &q)?;
    let names: Vec<String> = q
        .get("kpi")
        .map(|k| {
            k.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let asked = q
        .get("group_by")
        .map(|g| GroupKey::parse_list(&wf, g))
        .transpose()?;
    let chosen: Vec<&leadflow_engine::model::Kpi> = if names.is_empty() {
        wf.kpis.iter().collect()
    } else {
        names
            .iter()
            .map(|n| kpi::find_kpi(&wf, n))
            .collect::<Result<_, _>>()?
    };
    let now = Utc::now();
    let mut out = Vec::new();
    for k in chosen {
        let group_by = match &asked {
            Some(g) => g.clone(),
            None => kpi::default_groups(&wf, k)?,
        };
        let query = kpi::Query {
            wf: &wf,
            range: range.clone(),
            group_by,
            now,
        };
        out.push(kpi::kpi(&t.backend, &query, k).await?);
    }
    Ok(Json(KpisPage {
        workflow: wf.id.clone(),
        time_zone: wf.calendar.timezone().name().to_string(),
        kpis: out,
    }))
}

/// A report for one period, as JSON or CSV (`format=csv` or
/// `Accept: text/csv`): one line per group with its count and, for a
/// billing report, its amount (count × `charge`).
#[utoipa::path(get, path = "/v1/reports/{workflow}/{name}", tag = "reports", operation_id = "reports_get",
    params(("workflow" = String, Path), ("name" = String, Path),
           ("period" = Option<String>, Query, description = "2025-Q1, 2025-03, 2025-W10, 2025-03-04, 2025 or 2025-01-01..2025-03-31 (default: the whole history)"),
           ("from" = Option<String>, Query, description = "instead of period: a day or an RFC 3339 instant"),
           ("to" = Option<String>, Query, description = "instead of period: a day (included) or an RFC 3339 instant (excluded)"),
           ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "the report: JSON, or CSV (format=csv or Accept: text/csv)",
               content((ReportResult = "application/json"), (String = "text/csv"))),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST: unknown parameter, report or format; a period that does not parse (the message lists the forms)"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: an actor-bound key"),
              (status = 404, body = ErrorBody, description = "E_UNKNOWN_WORKFLOW")),
    security(("bearer" = [])))]
pub async fn report(
    State(s): State<AppState>,
    caller: Caller,
    Path((workflow, name)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    only(&q, &["period", "from", "to", "format"])?;
    let csv = match q.get("format").map(String::as_str) {
        Some("csv") => true,
        Some("json") => false,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "unknown format `{f}`: use json or csv"
            )))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    let t = s.tenant(&caller);
    let wf = t.backend.versions().current(&workflow)?;
    let r = kpi::find_report(&wf, &name)?;
    let range = range(&wf, &q)?;
    let out = kpi::report(&t.backend, &wf, r, range, Utc::now()).await?;
    if csv {
        let body = kpi::report_csv(&out)?;
        let file = format!(
            "attachment; filename=\"{}-{}{}.csv\"",
            wf.id,
            r.name,
            out.period
                .as_deref()
                .map(|p| format!("-{p}"))
                .unwrap_or_default()
        );
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, file),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(out).into_response())
}

/// One page of scheduled report runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportRunsPage {
    /// Newest first, without their results.
    pub runs: Vec<ReportRun>,
    /// Whether more runs follow this page.
    pub has_more: bool,
    /// Pass as `after` for the next page (same filters, same key); absent
    /// on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn runs_binding(
    tenant: &str,
    caller: &Caller,
    wf: Option<&String>,
    report: Option<&String>,
) -> Vec<u8> {
    serde_json::to_vec(&("report_runs", tenant, &caller.key, wf, report)).unwrap_or_default()
}

/// The runs of scheduled reports (`every`), newest first: when each ran
/// (or is due), its status, attempts, last error, the period it covered and
/// how many messages it queued. Admin keys only.
#[utoipa::path(get, path = "/v1/reports/runs", tag = "reports", operation_id = "reports_runs_list",
    params(("workflow" = Option<String>, Query, description = "only this workflow's runs"),
           ("report" = Option<String>, Query, description = "only this report's runs"),
           ("limit" = Option<i64>, Query, description = "1..=500, default 50"),
           ("after" = Option<String>, Query, description = "the `next` of the previous page: opaque, valid only with the same filters and the same API key")),
    responses((status = 200, body = ReportRunsPage),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST: unknown parameter, a limit out of range, a cursor altered or from another query"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: an actor-bound key")),
    security(("bearer" = [])))]
pub async fn report_runs(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<ReportRunsPage>, ApiError> {
    require_admin(&caller)?;
    only(&q, &["workflow", "report", "limit", "after"])?;
    let limit: i64 = match q.get("limit") {
        None => 50,
        Some(l) => match l.parse() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => return Err(ApiError::bad_request(format!("limit `{l}`: give 1 to 500"))),
        },
    };
    let t = s.tenant(&caller);
    let aad = runs_binding(&t.id, &caller, q.get("workflow"), q.get("report"));
    let before = match q.get("after") {
        Some(c) => Some(open_cursor(cursor_key()?, &aad, c)?.1),
        None => None,
    };
    let mut runs = t
        .backend
        .list_runs(&RunsQuery {
            workflow: q.get("workflow").cloned(),
            report: q.get("report").cloned(),
            before,
            limit: limit + 1,
        })
        .await?;
    let has_more = runs.len() as i64 > limit;
    runs.truncate(limit as usize);
    let next = match runs.last().filter(|_| has_more) {
        Some(r) => Some(seal_cursor(
            cursor_key()?,
            &aad,
            &serde_json::Value::Null,
            r.id,
        )?),
        None => None,
    };
    Ok(Json(ReportRunsPage {
        runs,
        has_more,
        next,
    }))
}

/// One run of a scheduled report with its stored result (the report as
/// `GET /v1/reports/{workflow}/{name}` answered it when the run ran), as
/// JSON, or the result as CSV (`format=csv` or `Accept: text/csv`).
#[utoipa::path(get, path = "/v1/reports/runs/{id}", tag = "reports", operation_id = "reports_runs_get",
    params(("id" = i64, Path), ("format" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "the run with its `result` (JSON), or the result as CSV",
               content((ReportRun = "application/json"),
                       (String = "text/csv"))),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST: unknown parameter or format, an id that is not a number"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: an actor-bound key"),
              (status = 404, body = ErrorBody, description = "E_REPORT_RUN_NOT_FOUND"),
              (status = 409, body = ErrorBody, description = "E_REPORT_RUN_NOT_READY: CSV asked of a run without a result")),
    security(("bearer" = [])))]
pub async fn report_run(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    only(&q, &["format"])?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("run id `{id}` is not a number")))?;
    let csv = match q.get("format").map(String::as_str) {
        Some("csv") => true,
        Some("json") => false,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "unknown format `{f}`: use json or csv"
            )))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    let t = s.tenant(&caller);
    let run = t.backend.get_run(id).await?.ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "E_REPORT_RUN_NOT_FOUND",
            format!("no report run {id}"),
        )
    })?;
    if !csv {
        return Ok(Json(run).into_response());
    }
    let result: Option<ReportResult> = run
        .result
        .as_ref()
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let Some(result) = result else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "E_REPORT_RUN_NOT_READY",
            format!("report run {id} is {} and has no result yet", run.status),
        ));
    };
    let body = kpi::report_csv(&result)?;
    let file = format!(
        "attachment; filename=\"{}-{}{}.csv\"",
        run.workflow,
        run.report,
        run.period
            .as_deref()
            .map(|p| format!("-{p}"))
            .unwrap_or_default()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response())
}
