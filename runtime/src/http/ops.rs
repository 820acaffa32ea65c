//! Operations: /healthz (the process answers), /readyz (every tenant's
//! database answers, migrations were applied when it opened, and the
//! background tasks are alive), /metrics
//! (Prometheus text), and the request-latency middleware.
//!
//! Anonymous callers learn only "ready" or "not ready": tenant names and
//! counts are for the metrics token (`metrics_token_env`) or, on /readyz,
//! an admin key about its own tenant (docs/security.md).

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::any::AnyBackend;
use crate::backend::Backend;
use crate::background::TaskStatus;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Instant;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide metrics recorder (once; later calls reuse it).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("leadflow_http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Count a refusal by its stable code.
pub fn refusal(code: &str) {
    metrics::counter!("leadflow_refusals_total", "code" => code.to_string()).increment(1);
}

/// Records `leadflow_http_request_duration_seconds{method, path, status}`
/// (path is the route template, so ids do not explode the label space).
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    metrics::histogram!("leadflow_http_request_duration_seconds",
        "method" => method, "path" => path, "status" => resp.status().as_u16().to_string())
    .record(start.elapsed().as_secs_f64());
    resp
}

/// `GET /healthz`'s body.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`'s body: `status` when ready, `code` and `message` when
/// not; `tasks` and `parked_timers` for an admin key only.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` (200).
    #[schema(required = false)]
    pub status: Option<String>,
    /// `E_NOT_READY` (503).
    #[schema(required = false)]
    pub code: Option<String>,
    /// Why not ready (503).
    #[schema(required = false)]
    pub message: Option<String>,
    /// The caller's tenant's background tasks (admin key only).
    #[schema(required = false)]
    pub tasks: Option<Vec<crate::background::TaskStatus>>,
    /// The caller's tenant's parked timer items (admin key only).
    #[schema(required = false)]
    pub parked_timers: Option<u64>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "ops_healthz",
    responses((status = 200, body = Health, description = "alive")))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: every tenant's database answers (its migrations were applied
/// when the daemon opened it) and every background task (timer worker,
/// outbox dispatcher) is alive and not panicking in a loop; 503 while
/// starting or shutting down. Anonymous callers get a generic body; an
/// admin key also gets its tenant's tasks (`tasks`: state, panics, last
/// panic) and its count of parked timer items (`parked_timers`).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "ops_readyz", security(()),
    responses((status = 200, body = Readiness, description = "ready"),
              (status = 503, body = ErrorBody, description = "E_NOT_READY: starting, shutting down, a database unreachable or a background task dead (for an admin key, with the members `tasks` and `parked_timers`)")))]
pub async fn readyz(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !s.ready.load(Ordering::SeqCst) {
        return not_ready("shutting down or starting");
    }
    let who = Access::of(&s, &headers);
    for t in s.tenants.values() {
        if let Err(e) = t.backend.next_due().await {
            tracing::warn!(tenant = %t.id, error = %e, "readiness: database check failed");
            return not_ready(&if who.sees(&t.id) {
                format!("tenant {}: database unreachable", t.id)
            } else {
                "a database is unreachable".to_string()
            });
        }
    }
    let tasks = s.tasks.statuses();
    let failing: Vec<&TaskStatus> = tasks.iter().filter(|t| !t.ok()).collect();
    for t in &failing {
        tracing::warn!(task = t.task, tenant = %t.tenant, state = t.state, "readiness: background task not running");
    }
    let (status, mut body) = if failing.is_empty() {
        (StatusCode::OK, serde_json::json!({ "status": "ready" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            not_ready_problem("a background task is dead or restarting in a loop"),
        )
    };
    if let Some(c) = admin_caller(&s, &headers) {
        let mine: Vec<&TaskStatus> = tasks.iter().filter(|t| t.tenant == c.tenant).collect();
        body["tasks"] = serde_json::json!(mine);
        let t = s.tenant(&c);
        if let Ok(p) = super::timers::parked_of(&t.backend).await {
            body["parked_timers"] = serde_json::json!(p.len());
        }
    }
    let mut resp = (status, axum::Json(body)).into_response();
    if status != StatusCode::OK {
        problem_headers(&mut resp);
    }
    resp
}

/// The caller, if the request carries a valid admin key (optional here:
/// readiness answers anonymous probes too).
fn admin_caller(s: &AppState, headers: &HeaderMap) -> Option<super::state::Caller> {
    super::auth::key_of(s, headers).ok().filter(|c| c.admin)
}

/// Who asks /readyz or /metrics.
enum Access {
    Anonymous,
    /// The metrics token: every tenant.
    Token,
    /// An admin key: its tenant.
    Admin(String),
}

impl Access {
    fn of(s: &AppState, headers: &HeaderMap) -> Access {
        let Some(token) = super::auth::bearer(headers) else {
            return Access::Anonymous;
        };
        if s.is_metrics_token(token) {
            return Access::Token;
        }
        match s.authenticate(token, s.now()) {
            Ok(c) if c.admin => Access::Admin(c.tenant),
            _ => Access::Anonymous,
        }
    }

    fn sees(&self, tenant: &str) -> bool {
        match self {
            Access::Anonymous => false,
            Access::Token => true,
            Access::Admin(t) => t == tenant,
        }
    }
}

/// The 503 `E_NOT_READY` problem document (an admin's answer adds the
/// members `tasks` and `parked_timers`).
fn not_ready_problem(why: &str) -> serde_json::Value {
    let e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "E_NOT_READY", why);
    serde_json::to_value(e.problem()).unwrap_or_default()
}

fn problem_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(super::error::PROBLEM_JSON),
    );
    h.insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(super::error::RETRY_AFTER_SECS),
    );
}

fn not_ready(why: &str) -> Response {
    let mut resp = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(not_ready_problem(why)),
    )
        .into_response();
    problem_headers(&mut resp);
    resp
}

/// Prometheus text: transitions and refusals by code, timer lag, parked
/// timer items, outbox backlog (sampled now), timer item failures, panics
/// of background tasks by task, request latency histogram. Behind the
/// metrics token (docs/security.md).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "ops_metrics",
    security(("bearer" = [])),
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text format (version 0.0.4)"),
              (status = 401, body = ErrorBody, description = "missing or wrong metrics token"),
              (status = 403, body = ErrorBody, description = "metrics off: no `metrics_token_env` configured")))]
pub async fn metrics_text(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if s.metrics_token.is_none() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "E_METRICS_DISABLED",
            "metrics are off: set metrics_token_env in leadflow.toml and scrape with Authorization: Bearer <token> (docs/security.md)",
        )
        .into_response();
    }
    if !matches!(Access::of(&s, &headers), Access::Token) {
        let e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E_UNAUTHORIZED",
            "missing or invalid metrics token (Authorization: Bearer <token>)",
        );
        return match super::auth::bearer(&headers) {
            Some(_) => e.challenge(super::error::CHALLENGE_INVALID),
            None => e,
        }
        .into_response();
    }
    let now = s.now();
    for t in s.tenants.values() {
        if let Ok(next) = t.backend.next_due().await {
            let lag = next
                .map(|d| (now - d).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            metrics::gauge!("leadflow_timer_lag_seconds", "tenant" => t.id.clone()).set(lag);
        }
        if let Ok(p) = super::timers::parked_of(&t.backend).await {
            metrics::gauge!("leadflow_timers_parked", "tenant" => t.id.clone()).set(p.len() as f64);
        }
        if let Some(n) = outbox_backlog(&t.backend, &t.id).await {
            metrics::gauge!("leadflow_outbox_backlog", "tenant" => t.id.clone()).set(n as f64);
        }
    }
    let body = recorder().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn outbox_backlog(b: &AnyBackend, tenant: &str) -> Option<i64> {
    const SQL_PG: &str =
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND delivered_at IS NULL AND failed_at IS NULL";
    const SQL_LITE: &str =
        "SELECT count(*) FROM outbox WHERE tenant_id = ? AND delivered_at IS NULL AND failed_at IS NULL";
    match b {
        AnyBackend::Pg(pg) => {
            let mut tx = pg.tx().await.ok()?;
            let n = sqlx::query_scalar(SQL_PG)
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await
                .ok()?;
            tx.commit().await.ok()?;
            Some(n)
        }
        AnyBackend::Sqlite(l) => sqlx::query_scalar(SQL_LITE)
            .bind(tenant)
            .fetch_one(l.read_pool())
            .await
            .ok(),
        AnyBackend::Mem(_) => None,
    }
}
