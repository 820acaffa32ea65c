//! `POST /v1/bulk` and `GET /v1/bulk/{id}`: `leadflow bulk` over HTTP
//! (issue 17, section 4), run as a background job (`jobs.rs`).
//!
//! The records: `ids`, or every *open* record `filter` selects (the
//! parameters of `GET /v1/records`, as a JSON object), walked by keyset
//! with the caller's visibility in the query; then `bulk::ops` fires the
//! transition (or reassigns) in batches that share a transaction, each
//! record all-or-nothing, as the caller, with the caller's visibility
//! checked again on each locked record: a record the caller cannot see is
//! neither touched nor told apart from one that does not exist
//! (`E_NOT_FOUND` for an id; never selected by a filter). A dry run runs
//! the same batches and rolls each back: its report is the real run's.
//!
//! Transitions: any key, each record fired as `POST
//! /v1/records/{id}/transitions/{name}` would (the transition's `by`
//! applies). Reassignment (`reassign: {to}`): admin keys only.

use super::error::{ApiError, JsonObject, Path};
use super::export::next_page;
use super::jobs::{accepted, stale, visible_job, Beat, JobView};
use super::list::{only_open, parse, refuse_pii, search, sort_key, typed_filters, visibility};
use super::state::{AppState, Caller, Tenant};
use crate::bulk::ops::{run_with, Action, BulkReport, BulkRequest};
use crate::sql::jobs::{JobEnd, Jobs, NewJob};
use crate::sql::query::Query as RQuery;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The most records one bulk operation may name in `ids`.
pub const MAX_IDS: usize = 100_000;
/// Records per transaction.
const BATCH: usize = 200;

/// Where a reassignment moves the records.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reassign {
    /// An actor of the tenant's directory.
    #[schema(example = "op-bianchi")]
    pub to: String,
}

/// A bulk operation: one of `transition` or `reassign`, over one of `ids`
/// or `filter`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"workflow": "cc_lead", "transition": "close_not_interested",
    "filter": {"state": "new", "field.zone": "isole"}, "input": {"close_reason": "other"}, "dry_run": true}))]
pub struct BulkBody {
    pub workflow: String,
    /// The transition to fire on each record.
    pub transition: Option<String>,
    /// Move each record to another actor instead (admin keys).
    pub reassign: Option<Reassign>,
    /// The parameters of `GET /v1/records` (`state`, `assignee`,
    /// `field.<name>`, `filter`, `created_at`, ...; a list for a repeated
    /// one): every open record they select that the caller may see.
    #[schema(value_type = Option<BTreeMap<String, serde_json::Value>>)]
    pub filter: Option<serde_json::Map<String, serde_json::Value>>,
    /// Records by id (at most 100,000).
    pub ids: Option<Vec<i64>>,
    /// The transition's input.
    #[schema(value_type = Option<BTreeMap<String, serde_json::Value>>)]
    pub input: Option<serde_json::Map<String, serde_json::Value>>,
    /// Report what would happen per record; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The filter object as the query pairs of `GET /v1/records`.
fn pairs(
    filter: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(String, String)>, ApiError> {
    use serde_json::Value as J;
    let mut out = Vec::new();
    for (k, v) in filter {
        if matches!(
            k.as_str(),
            "workflow" | "sort" | "limit" | "after" | "count" | "format"
        ) {
            return Err(ApiError::bad_field(
                format!("filter.{k}"),
                format!("filter: `{k}` is not a filter (the body names the workflow; a bulk operation takes every record selected, in id order)"),
            ));
        }
        let one = |v: &J| match v {
            J::String(s) => Ok(s.clone()),
            J::Number(n) => Ok(n.to_string()),
            J::Bool(b) => Ok(b.to_string()),
            _ => Err(ApiError::bad_field(
                format!("filter.{k}"),
                format!("filter.{k}: a string, a number, or a list of them"),
            )),
        };
        match v {
            J::Array(items) => {
                for i in items {
                    out.push((k.clone(), one(i)?));
                }
            }
            other => out.push((k.clone(), one(other)?)),
        }
    }
    Ok(out)
}

/// The store query of a filter: `GET /v1/records`'s, open records only.
fn query_of(
    t: &Tenant,
    caller: &Caller,
    workflow: &str,
    filter: &serde_json::Map<String, serde_json::Value>,
) -> Result<RQuery, ApiError> {
    let mut p = parse(pairs(filter)?)?;
    p.workflow = Some(workflow.to_string());
    let versions = t.backend.versions();
    refuse_pii(caller, versions, &p)?;
    let wf = Some(workflow);
    let filters = typed_filters(versions, wf, p.assignee.as_deref(), &p.fields, &p.columns)?;
    Ok(RQuery {
        tenant: t.id.clone(),
        workflow: Some(workflow.to_string()),
        open_only: true,
        states: p.states.clone(),
        filters,
        search: search(caller, p.q.as_deref())?,
        visible_to: visibility(t, caller, t.pools()),
        sort: sort_key(versions, wf, "id")?,
        desc: false,
        limit: super::export::PAGE,
        after: None,
    })
    .map(|mut q| {
        // Every state named is open: the open-record indexes serve.
        q.open_only = q.open_only || only_open(versions, wf, &q.states);
        q
    })
}

/// Start a bulk operation.
///
/// Answers 202 with the job at once; `GET /v1/bulk/{id}` shows its
/// progress and, when done, the per-record report (`fired`, `would_fire`
/// for a dry run, or `refused` with the code).
#[utoipa::path(post, path = "/v1/bulk", tag = "bulk", operation_id = "bulk_create",
    request_body = BulkBody,
    responses((status = 202, body = JobView, description = "the bulk job, running; `Location` is its path"),
              (status = 400, body = super::error::ErrorBody, description = "E_BAD_REQUEST: neither or both of `transition` and `reassign`, of `ids` and `filter`; over 100,000 ids; a filter `GET /v1/records` would refuse"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: `reassign` by a key that is not an admin key; an actor-bound key filtering on a `pii` field"),
              (status = 404, body = super::error::ErrorBody, description = "E_UNKNOWN_WORKFLOW, E_UNKNOWN_TRANSITION")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject<BulkBody>,
) -> Result<Response, ApiError> {
    let t = s.tenant(&caller).clone();
    let wf = t.backend.versions().current(&body.workflow)?;
    let action = match (&body.transition, &body.reassign) {
        (Some(tr), None) => {
            if wf.transition(tr).is_none() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "E_UNKNOWN_TRANSITION",
                    format!("workflow `{}` has no transition `{tr}`", wf.id),
                ));
            }
            Action::Transition(tr.clone())
        }
        (None, Some(r)) => {
            super::auth::require_admin(&caller)?;
            if body.input.as_ref().is_some_and(|i| !i.is_empty()) {
                return Err(ApiError::bad_field(
                    "input",
                    "a reassignment takes no input",
                ));
            }
            Action::Reassign(r.to.clone())
        }
        _ => {
            return Err(ApiError::bad_request(
                "give one of `transition` and `reassign`",
            ))
        }
    };
    let selection = match (&body.ids, &body.filter) {
        (Some(ids), None) if ids.len() <= MAX_IDS => Selection::Ids(ids.clone()),
        (Some(_), None) => {
            return Err(ApiError::bad_field("ids", format!("at most {MAX_IDS} ids")))
        }
        (None, Some(f)) => Selection::Filter(Box::new(query_of(&t, &caller, &wf.id, f)?)),
        _ => return Err(ApiError::bad_request("give one of `ids` and `filter`")),
    };
    let input: Vec<(String, leadflow_engine::Value)> = body
        .input
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), leadflow_engine::Value::from_json(v)))
        .collect();
    let params = serde_json::json!({
        "workflow": wf.id,
        "transition": body.transition,
        "reassign": body.reassign.as_ref().map(|r| serde_json::json!({"to": r.to})),
        "filter": body.filter,
        "ids": body.ids.as_ref().map(Vec::len),
        "input": body.input,
        "dry_run": body.dry_run,
    });
    t.backend.jobs_interrupt_stale(s.now() - stale()).await?;
    let progress = serde_json::json!({"selected": 0, "fired": 0, "refused": 0});
    let id = t
        .backend
        .job_create(NewJob {
            kind: "bulk",
            workflow: &wf.id,
            import_key: None,
            created_by: &caller.key,
            params: &params,
            progress: &progress,
            now: s.now(),
        })
        .await?
        .ok_or_else(ApiError::internal)?;
    let req = BulkRequest {
        action,
        input,
        ids: None,
        filter: Default::default(),
        dry_run: body.dry_run,
        batch: BATCH,
    };
    let job = run(t.clone(), id, wf, req, selection, caller, s.jobs.stopping());
    s.jobs.spawn(t.clone(), id, job);
    let row = t
        .backend
        .job_get(id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(accepted(row))
}

/// Which records.
enum Selection {
    Ids(Vec<i64>),
    Filter(Box<RQuery>),
}

/// The ids a filter selects, in id order (keyset pages).
async fn select(t: &Tenant, mut q: RQuery) -> Result<Vec<i64>, crate::backend::Error> {
    let mut ids = Vec::new();
    loop {
        let (hits, more) = next_page(t, &mut q).await?;
        ids.extend(hits.iter().map(|h| h.record.id));
        if !more {
            return Ok(ids);
        }
    }
}

/// Select the records and run the operation, saving the counts every
/// second (a [`Beat`]); `None` when the daemon stops first.
async fn work(
    t: &Arc<Tenant>,
    id: i64,
    wf: &leadflow_engine::Workflow,
    req: &mut BulkRequest,
    selection: Selection,
    caller: &Caller,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<(BulkReport, usize)>, crate::backend::Error> {
    let ids = match selection {
        Selection::Ids(ids) => ids,
        Selection::Filter(q) => select(t, *q).await?,
    };
    let selected = ids.len();
    req.ids = Some(ids);
    let (ptx, prx) = tokio::sync::watch::channel((0u64, 0u64));
    let mut progress = move |r: &BulkReport| {
        ptx.send_replace((r.fired, r.refused));
    };
    // The caller's visibility, checked again on each locked record.
    let (vis_t, vis_caller) = (t.clone(), caller.clone());
    let visible = (!caller.admin).then(|| {
        crate::backend::Visible(Arc::new(move |r: &crate::backend::StoredRecord| {
            vis_t.visible(&vis_caller, r)
        }))
    });
    let clock = chrono::Utc::now;
    let backend = t.backend.clone();
    let req: &BulkRequest = req;
    let mut fut = Box::pin(run_with(
        &backend,
        backend.versions(),
        wf,
        req,
        &caller.actor,
        visible,
        &clock,
        &mut progress,
    ));
    let beat = {
        let t = t.clone();
        Beat::start(move || {
            let t = t.clone();
            let (fired, refused) = *prx.borrow();
            async move {
                let p =
                    serde_json::json!({"selected": selected, "fired": fired, "refused": refused});
                if let Err(e) = t.backend.job_progress(id, &p, chrono::Utc::now()).await {
                    tracing::warn!(tenant = %t.id, job = id, error = %e, "bulk: progress not written");
                }
            }
        })
    };
    // (The guard `wait_for` answers is not Send: dropped in here.)
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let out = tokio::select! {
        r = &mut fut => r.map(|r| Some((r, selected))),
        _ = stopped => Ok(None),
    };
    drop(fut);
    beat.stop().await;
    out
}

/// The bulk job: select, run, record the report.
async fn run(
    t: Arc<Tenant>,
    id: i64,
    wf: Arc<leadflow_engine::Workflow>,
    mut req: BulkRequest,
    selection: Selection,
    caller: Caller,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let outcome = work(&t, id, &wf, &mut req, selection, &caller, &mut stop).await;
    let (state, progress, report, error) = match outcome {
        Ok(Some((r, selected))) => (
            "done",
            serde_json::json!({"selected": selected, "fired": r.fired, "refused": r.refused}),
            serde_json::to_value(&r).ok(),
            None,
        ),
        Ok(None) => ("interrupted", serde_json::json!({}), None, None),
        Err(e) => {
            tracing::error!(tenant = %t.id, job = id, error = %e, "bulk operation stopped");
            (
                "failed",
                serde_json::json!({}),
                None,
                Some(
                    serde_json::json!({"code": "E_UNAVAILABLE", "message": "a database error stopped the operation; the batches committed so far stay"}),
                ),
            )
        }
    };
    let end = JobEnd {
        state,
        progress: &progress,
        report: report.as_ref(),
        error: error.as_ref(),
        now: chrono::Utc::now(),
    };
    if let Err(e) = t.backend.job_finish(id, end).await {
        tracing::error!(tenant = %t.id, job = id, error = %e, "bulk: final state not written");
    }
}

/// A bulk job: its state, counts and, when done, the per-record report.
#[utoipa::path(get, path = "/v1/bulk/{id}", tag = "bulk", operation_id = "bulk_get",
    params(("id" = i64, Path, description = "the job id", example = 1)),
    responses((status = 200, body = JobView, description = "the job (admin keys read every job of the tenant, other keys the ones they posted)"),
              (status = 404, body = super::error::ErrorBody, description = "E_JOB_NOT_FOUND")),
    security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<JobView>, ApiError> {
    let t = s.tenant(&caller);
    let j = visible_job(&s, t, &caller, "bulk", id).await?;
    Ok(axum::Json(JobView::of(j)))
}
