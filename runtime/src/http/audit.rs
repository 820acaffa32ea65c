//! Audit of admin actions: a middleware that records every request by an
//! admin key that changes something (any method but GET, HEAD, OPTIONS;
//! refused ones too, with their status), and `GET /v1/audit` to read the
//! tenant's entries back (admin keys only, keyset pages).

use super::auth::require_admin;
use super::error::{ApiError, Query};
use super::state::{AppState, Caller};
use crate::audit::{self, AuditEntry};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

/// A created record's id is read from the response body, at most this long.
const BODY_LIMIT: usize = 1 << 20;

/// Record the request after it ran, if an admin key made it and it may
/// have changed something. The change is committed by then: an audit write
/// that fails is logged (`leadflow_audit_failures_total`), the answer stays.
pub async fn record(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let caller = super::auth::key_of(&s, req.headers())
        .ok()
        .filter(|c| c.admin);
    let Some(caller) = caller else {
        return next.run(req).await;
    };
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    let (resp, record) = match record_in_path(&path) {
        Some(id) => (resp, Some(id)),
        None if status == StatusCode::CREATED && path == "/v1/records" => created_id(resp).await,
        None => (resp, None),
    };
    let entry = AuditEntry {
        id: 0,
        at: s.now(),
        key: caller.key.clone(),
        method,
        path,
        status: status.as_u16(),
        record,
    };
    let t = s.tenant(&caller);
    if let Err(e) = audit::append(&t.backend, &t.id, &entry).await {
        metrics::counter!("leadflow_audit_failures_total").increment(1);
        tracing::error!(tenant = %t.id, key = %entry.key, path = %entry.path, error = %e, "audit: entry not written");
    }
    resp
}

/// `/v1/records/{id}/...` -> id.
fn record_in_path(path: &str) -> Option<i64> {
    path.strip_prefix("/v1/records/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// The `id` of a created record, read from the answer (rebuilt unchanged).
async fn created_id(resp: Response) -> (Response, Option<i64>) {
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => {
            let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_i64()));
            (Response::from_parts(parts, bytes.into()), id)
        }
        Err(_) => (Response::from_parts(parts, axum::body::Body::empty()), None),
    }
}

/// The largest `limit` of `GET /v1/audit`.
pub const MAX_LIMIT: i64 = 500;
/// Its default `limit`.
pub const DEFAULT_LIMIT: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// The `next` of the previous page.
    after: Option<i64>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
}

/// A page of audit entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Whether another page follows (then `next` is set).
    pub has_more: bool,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// The tenant's audit of admin actions, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "audit_list",
    params(AuditParams),
    responses((status = 200, body = AuditPage, description = "a page of entries, oldest first"),
              (status = 400, body = super::error::ErrorBody, description = "E_BAD_REQUEST: `limit` outside 1..=500, a parameter that is not an integer, an unknown parameter"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: not an admin key")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    require_admin(&caller)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: 1..={MAX_LIMIT}")));
    }
    let t = s.tenant(&caller);
    let mut entries = audit::page(&t.backend, &t.id, p.after.unwrap_or(0), limit + 1).await?;
    let has_more = entries.len() as i64 > limit;
    let next = if has_more {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        entries,
        has_more,
        next,
    }))
}
