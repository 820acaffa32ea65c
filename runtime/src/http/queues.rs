//! `GET /v1/queues`, `POST /v1/queues/{workflow}/{queue}/next`, `DELETE
//! /v1/queues/{workflow}/{queue}/lease`: the workflows' `[queues]` served
//! to operators (issue 13). A pull gives the caller the first record of the
//! queue's order that it may see (the visibility of `GET /v1/records`) and
//! nobody holds, and holds it for the caller for the queue's `lease`
//! (`store/sql/query/queue.rs`); the record is shown as `GET
//! /v1/records/{id}` shows it to the caller, PII per the reveal rules.
//! Queue names are per workflow, as views' are: the path names both.

use super::error::{ApiError, ErrorBody, Json, Path};
use super::list::{refuse_pii_names, visibility};
use super::records::{full_view, RecordView};
use super::state::{AppState, Caller, Tenant};
use crate::backend::Backend;
use crate::sql::query::queue::{pull_of, Pull, WorkQueue};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use leadflow_engine::queue::{OrderKey, Queue};
use leadflow_engine::Workflow;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A queue the caller may pull from.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueInfo {
    pub workflow: String,
    pub name: String,
    pub title: String,
    /// States served (empty: every non-final state).
    pub states: Vec<String>,
    /// Its filter as written (Rhai), if any.
    pub filter: Option<String>,
    /// Its order as written: `due:<field>`, `<field>`, `-<field>`.
    pub order: Vec<String>,
    /// `"09:00-20:00"` on the calendar's working days, if limited.
    pub calling_hours: Option<String>,
    /// The workflow's calendar (its time zone and working days).
    pub calendar: String,
    /// Serving now (inside the calling hours).
    pub open: bool,
    /// `{"field": "call_attempts", "max": 5}`: records that reached `max`
    /// are not served.
    #[schema(value_type = Option<Object>)]
    pub max_attempts: Option<serde_json::Value>,
    /// How long a pulled record stays the caller's, in seconds.
    pub lease_seconds: i64,
    /// Where to pull (`POST`).
    pub href: String,
}

/// The queues of the tenant's workflows the caller may pull from.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    pub items: Vec<QueueInfo>,
}

/// A pulled record: the record as `GET /v1/records/{id}` shows it to the
/// caller, and until when it is the caller's.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pulled {
    #[serde(flatten)]
    pub record: RecordView,
    /// Nobody else is given the record before this instant, unless a
    /// transition fired on it or the caller gave it back first.
    #[serde(serialize_with = "super::schema::ts")]
    pub lease_expires_at: DateTime<Utc>,
    /// True: the caller already held it (a repeated pull, same record).
    pub again: bool,
}

/// What `DELETE .../lease` gave back.
#[derive(Debug, Serialize, ToSchema)]
pub struct Released {
    /// The record given back (`null`: the caller held none in the queue).
    pub released: Option<i64>,
}

fn order_text(k: &OrderKey) -> String {
    match k {
        OrderKey::Due(n) => format!("due:{n}"),
        OrderKey::By { name, desc: true } => format!("-{name}"),
        OrderKey::By { name, desc: false } => name.clone(),
    }
}

fn window_text(q: &Queue) -> Option<String> {
    q.calling_hours.map(|w| {
        let end = w
            .end
            .map_or("24:00".to_string(), |e| e.format("%H:%M").to_string());
        format!("{}-{end}", w.start.format("%H:%M"))
    })
}

fn info(wf: &Workflow, q: &Queue, now: DateTime<Utc>) -> QueueInfo {
    QueueInfo {
        workflow: wf.id.clone(),
        name: q.name.clone(),
        title: q.title.clone(),
        states: q
            .states
            .iter()
            .map(|s| wf.state_name(*s).to_string())
            .collect(),
        filter: q.filter_source.clone(),
        order: q.order.iter().map(order_text).collect(),
        calling_hours: window_text(q),
        calendar: wf.calendar.id().to_string(),
        open: q.open_at(&wf.calendar, now).is_ok(),
        max_attempts: q
            .max_attempts
            .as_ref()
            .map(|m| serde_json::json!({"field": m.field, "max": m.max})),
        lease_seconds: q.lease.num_seconds(),
        href: format!("/v1/queues/{}/{}/next", wf.id, q.name),
    }
}

fn may_pull(caller: &Caller, q: &Queue) -> bool {
    caller.admin || q.allows(&caller.actor.role)
}

/// The queues the caller may pull from, per workflow, in file order.
#[utoipa::path(get, path = "/v1/queues", tag = "queues", operation_id = "queues_list",
    responses((status = 200, body = QueueList, description = "the queues of the tenant's current workflows whose `by` admits the caller's role")),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<QueueList>, ApiError> {
    let t = s.tenant(&caller);
    let now = s.now();
    let mut wfs = t.backend.versions().all_current();
    wfs.sort_by(|a, b| a.id.cmp(&b.id));
    let items = wfs
        .iter()
        .flat_map(|wf| wf.queues.iter().map(move |q| (wf, q)))
        .filter(|(_, q)| may_pull(&caller, q))
        .map(|(wf, q)| info(wf, q, now))
        .collect();
    Ok(Json(QueueList { items }))
}

/// The workflow and queue a path names, if the caller may pull from it.
fn find(
    t: &Tenant,
    caller: &Caller,
    workflow: &str,
    name: &str,
) -> Result<(Arc<Workflow>, usize), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "E_QUEUE_NOT_FOUND",
            format!("no queue `{name}` in workflow `{workflow}`"),
        )
    };
    let wf = t
        .backend
        .versions()
        .current(workflow)
        .map_err(|_| not_found())?;
    let i = wf
        .queues
        .iter()
        .position(|q| q.name == name)
        .ok_or_else(not_found)?;
    if !may_pull(caller, &wf.queues[i]) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "E_FORBIDDEN",
            format!(
                "role `{}` may not pull from queue `{name}` (its `by`)",
                caller.actor.role
            ),
        ));
    }
    Ok((wf, i))
}

/// The store's pull for `caller` at `now` (`queue::pull_of`, shared with
/// the scenario harness).
fn pull(
    t: &Tenant,
    wf: &Workflow,
    q: &Queue,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<Pull, ApiError> {
    let versions = t.backend.versions();
    let (p, names) = pull_of(
        &t.id,
        versions,
        wf,
        q,
        &caller.actor.id,
        visibility(t, caller, t.pools()),
        now,
    )
    .map_err(|reason| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "E_QUEUE_FILTER",
            format!(
                "queue `{}` of `{}` cannot be served: {reason} (leadflow check: W082)",
                q.name, wf.id
            ),
        )
    })?;
    // An order or a selection on a `pii` field would tell what the records
    // hide, as a view's would.
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    refuse_pii_names(caller, versions, Some(&wf.id), &names)?;
    Ok(p)
}

/// Pull the next record of a queue and hold it.
///
/// The record the caller holds in this queue if any (a repeated pull is
/// idempotent: same record, same lease), else the first record of the
/// queue's order that the caller may see and nobody holds, now held by the
/// caller until `lease_expires_at`. A transition fired on the record, the
/// lease's end or `DELETE .../lease` releases it. Two concurrent pulls never
/// get the same record.
#[utoipa::path(post, path = "/v1/queues/{workflow}/{queue}/next", tag = "queues", operation_id = "queues_next",
    params(("workflow" = String, Path, description = "workflow id", example = "cc_lead"),
           ("queue" = String, Path, description = "queue name", example = "chiamate")),
    responses((status = 200, body = Pulled, description = "the record, as `GET /v1/records/{id}` shows it to the caller, and the end of the lease"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: the caller's role is not in the queue's `by`, or an actor-bound key and the queue orders or filters on a `pii` field"),
              (status = 404, body = ErrorBody, description = "E_QUEUE_NOT_FOUND: no such workflow or queue; E_QUEUE_EMPTY: nothing to serve now; E_QUEUE_CLOSED: outside the calling hours"),
              (status = 422, body = ErrorBody, description = "E_QUEUE_FILTER: the queue's filter is not one the store can run (leadflow check warns: W082)")),
    security(("bearer" = [])))]
pub async fn next(
    State(s): State<AppState>,
    caller: Caller,
    Path((workflow, name)): Path<(String, String)>,
) -> Result<Json<Pulled>, ApiError> {
    let t = s.tenant(&caller);
    let (wf, i) = find(t, &caller, &workflow, &name)?;
    let q = &wf.queues[i];
    let now = s.now();
    if q.open_at(&wf.calendar, now).is_err() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "E_QUEUE_CLOSED",
            format!(
                "queue `{name}` serves {} on the working days of calendar `{}`: nothing now",
                window_text(q).unwrap_or_default(),
                wf.calendar.id()
            ),
        ));
    }
    let p = pull(t, &wf, q, &caller, now)?;
    let empty = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "E_QUEUE_EMPTY",
            format!("queue `{name}` has no record for you now"),
        )
    };
    let claim = t.backend.next(&p).await?.ok_or_else(empty)?;
    let record = match t.backend.get(claim.record).await? {
        Some(r) if t.visible(&caller, &r) => r,
        // The store's visibility and the record's disagree: never show it.
        _ => {
            t.backend
                .give_back(&p.workflow, &p.queue, &p.actor, now)
                .await?;
            return Err(empty());
        }
    };
    metrics::counter!("leadflow_queue_pulls_total", "tenant" => t.id.clone(), "queue" => name.clone()).increment(1);
    Ok(Json(Pulled {
        record: full_view(t, &caller, record).await?,
        lease_expires_at: claim.expires_at,
        again: claim.again,
    }))
}

/// Give back the record the caller holds in a queue (the next pull, by
/// anyone, may get it).
#[utoipa::path(delete, path = "/v1/queues/{workflow}/{queue}/lease", tag = "queues", operation_id = "queues_release",
    params(("workflow" = String, Path, description = "workflow id", example = "cc_lead"),
           ("queue" = String, Path, description = "queue name", example = "chiamate")),
    responses((status = 200, body = Released, description = "what was given back (`released: null`: nothing was held)"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: the caller's role is not in the queue's `by`"),
              (status = 404, body = ErrorBody, description = "E_QUEUE_NOT_FOUND: no such workflow or queue")),
    security(("bearer" = [])))]
pub async fn release(
    State(s): State<AppState>,
    caller: Caller,
    Path((workflow, name)): Path<(String, String)>,
) -> Result<Json<Released>, ApiError> {
    let t = s.tenant(&caller);
    let (wf, _) = find(t, &caller, &workflow, &name)?;
    let released = t
        .backend
        .give_back(&wf.id, &name, &caller.actor.id, s.now())
        .await?;
    Ok(Json(Released { released }))
}
