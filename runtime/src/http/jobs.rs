//! Bulk jobs over HTTP (`POST /v1/imports`, `POST /v1/bulk`): the tasks
//! that run them and the job document both `GET`s answer.
//!
//! Jobs run as tokio tasks of the daemon's [`Runner`], one `bulk_jobs`
//! task in `/readyz` per daemon: a job that panics is failed (counted
//! there, `leadflow_task_panics_total{task="bulk_job"}`) and the others go
//! on; on shutdown every running job stops at once (its open batch rolls
//! back) and is marked `interrupted` (an import re-posted with the same key
//! resumes). What a job did is in the store (`store/sql/jobs`), so a
//! restarted daemon shows it.

use super::error::ApiError;
use super::state::{AppState, Caller, Tenant};
use crate::background::{panic_message, Health, Restart};
use crate::sql::jobs::{JobEnd, JobRow, Jobs, STALE};
use futures_util::FutureExt;
use serde::Serialize;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinSet;
use utoipa::ToSchema;

/// The daemon's running jobs.
pub struct Runner {
    health: Arc<Health>,
    stop: watch::Sender<bool>,
    set: Mutex<JoinSet<()>>,
}

impl Runner {
    pub fn new(tasks: &crate::background::Tasks) -> Runner {
        let health = Health::new("bulk_jobs", "*", &Restart::default());
        tasks.add(health.clone());
        Runner {
            health,
            stop: watch::channel(false).0,
            set: Mutex::new(JoinSet::new()),
        }
    }

    /// A receiver that turns true when the daemon stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Run `job` (job `id` of tenant `t`) in the background. A panic fails
    /// the job; `job` itself watches [`Runner::stopping`].
    pub fn spawn<F>(&self, t: Arc<Tenant>, id: i64, job: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let health = self.health.clone();
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        // Reap the jobs that ended.
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            if let Err(p) = AssertUnwindSafe(job).catch_unwind().await {
                let msg = panic_message(&*p);
                health.item_panicked("bulk_job", &msg);
                tracing::error!(tenant = %t.id, job = id, "bulk job panicked: {msg}");
                let err = serde_json::json!({"code": "E_INTERNAL", "message": "the job failed (see the daemon's log)"});
                let end = JobEnd {
                    state: "failed",
                    progress: &serde_json::json!({}),
                    report: None,
                    error: Some(&err),
                    now: chrono::Utc::now(),
                };
                if let Err(e) = t.backend.job_finish(id, end).await {
                    tracing::error!(tenant = %t.id, job = id, error = %e, "bulk job: state not written");
                }
            }
        });
    }

    /// Stop every running job and wait for them to end.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let mut set = std::mem::take(&mut *self.set.lock().unwrap_or_else(|e| e.into_inner()));
        while set.join_next().await.is_some() {}
        self.health.stopped();
    }
}

/// A job as `GET /v1/imports/{id}` and `GET /v1/bulk/{id}` show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    /// `import` or `bulk`.
    pub kind: String,
    pub workflow: String,
    /// `running`, `done`, `failed` (`error` says why) or `interrupted`
    /// (its daemon stopped or died; an import re-posted with the same key
    /// resumes where it stopped).
    pub state: String,
    /// The import key (imports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The request's parameters.
    #[schema(value_type = BTreeMap<String, serde_json::Value>)]
    pub params: serde_json::Value,
    /// Counts so far. Imports: `lines` read, `imported`, `updated`,
    /// `skipped`, `rejected`, `already` (committed by an earlier run with
    /// the key), `bytes`. Bulk: `selected`, `fired`, `refused`.
    #[schema(value_type = BTreeMap<String, serde_json::Value>)]
    pub progress: serde_json::Value,
    /// When done: imports `{"summary", "ignored_columns"}`; bulk
    /// operations the per-record report (`records`: id, outcome
    /// `fired`/`would_fire`/`refused`, code, message).
    #[schema(value_type = Option<BTreeMap<String, serde_json::Value>>)]
    pub report: Option<serde_json::Value>,
    /// When failed: `{"code", "message"}`.
    #[schema(value_type = Option<BTreeMap<String, serde_json::Value>>)]
    pub error: Option<serde_json::Value>,
    /// The API key (its name) that posted it.
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// This document's path.
    pub href: String,
    /// Imports: the path of the reject report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_href: Option<String>,
}

impl JobView {
    pub fn of(j: JobRow) -> JobView {
        let base = match j.kind.as_str() {
            "import" => "/v1/imports",
            _ => "/v1/bulk",
        };
        JobView {
            href: format!("{base}/{}", j.id),
            rejected_href: (j.kind == "import").then(|| format!("{base}/{}/rejected", j.id)),
            id: j.id,
            kind: j.kind,
            workflow: j.workflow,
            state: j.state,
            key: j.import_key,
            params: j.params,
            progress: j.progress,
            report: j.report,
            error: j.error,
            created_by: j.created_by,
            created_at: j.created_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
        }
    }
}

/// 404 for a job that is not there or not the caller's.
pub fn job_not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "E_JOB_NOT_FOUND",
        "no such job (or not one of this API key's)",
    )
}

/// Job `id` of `kind` as the caller may read it: admin keys read every
/// job of the tenant, other keys only the ones they posted.
pub async fn visible_job(
    s: &AppState,
    t: &Tenant,
    caller: &Caller,
    kind: &str,
    id: i64,
) -> Result<JobRow, ApiError> {
    // A read writes nothing (on SQLite it would wait for the job's own
    // writes): a job not heard of for `STALE` is shown interrupted.
    match t.backend.job_get(id).await? {
        Some(mut j) if j.kind == kind && (caller.admin || j.created_by == caller.key) => {
            if j.state == "running" && j.updated_at < s.now() - stale() {
                j.state = "interrupted".into();
            }
            Ok(j)
        }
        _ => Err(job_not_found()),
    }
}

pub fn stale() -> chrono::Duration {
    chrono::Duration::from_std(STALE).unwrap_or_else(|_| chrono::Duration::seconds(30))
}

/// 202 with the job's document and its `Location`.
pub fn accepted(j: JobRow) -> axum::response::Response {
    use axum::response::IntoResponse;
    let v = JobView::of(j);
    let loc = axum::http::HeaderValue::from_str(&v.href).ok();
    let mut resp = (axum::http::StatusCode::ACCEPTED, axum::Json(v)).into_response();
    if let Some(l) = loc {
        resp.headers_mut().insert(axum::http::header::LOCATION, l);
    }
    resp
}

/// A task that runs `f` every [`HEARTBEAT`] beside a job: a job's counts
/// are written from their own task, never while the job's future is
/// suspended inside a transaction (on SQLite that future holds the one
/// write connection the counts would wait for).
pub struct Beat {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Beat {
    pub fn start<F, Fut>(mut f: F) -> Beat
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::sql::jobs::HEARTBEAT);
            loop {
                tokio::select! {
                    _ = tick.tick() => f().await,
                    _ = rx.changed() => return,
                }
            }
        });
        Beat { stop, task }
    }

    /// Stop it, after the write in progress if any.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}
