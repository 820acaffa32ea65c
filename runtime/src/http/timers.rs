//! Parked timer items (admin only): items that failed every attempt the
//! timer worker made (see `worker.rs`), with their last error, and a retry.

use super::auth::require_admin;
use super::error::{ApiError, Json, Path};
use super::state::{AppState, Caller};
use crate::any::AnyBackend;
use crate::backend::RecordId;
use crate::worker::{ParkedTimer, TimerQueue};
use axum::extract::State;
use axum::http::StatusCode;

/// The caller's tenant's parked timer items, oldest parking first.
#[utoipa::path(get, path = "/v1/timers/parked", tag = "timers", operation_id = "timers_parked_list",
    responses((status = 200, body = [ParkedTimer]), (status = 403, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn parked(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ParkedTimer>>, ApiError> {
    require_admin(&caller)?;
    Ok(Json(parked_of(&s.tenant(&caller).backend).await?))
}

/// Parked items of a store (memory stores have no timer worker: none).
pub async fn parked_of(b: &AnyBackend) -> Result<Vec<ParkedTimer>, crate::backend::Error> {
    b.parked().await
}

/// Give a parked item back to the timer worker: its attempts start again
/// and it fires at the worker's next pass (at once on PostgreSQL, within
/// the worker's idle period on SQLite).
#[utoipa::path(post, path = "/v1/timers/parked/{record}/{timer}/retry", tag = "timers", operation_id = "timers_parked_retry",
    params(("record" = i64, Path, description = "the record id"), ("timer" = String, Path, description = "the timer name")),
    responses((status = 204, description = "retried"), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(
    State(s): State<AppState>,
    caller: Caller,
    Path((record, timer)): Path<(RecordId, String)>,
) -> Result<StatusCode, ApiError> {
    require_admin(&caller)?;
    let done = s
        .tenant(&caller)
        .backend
        .retry_parked(record, &timer)
        .await?;
    if done {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
            "no such parked timer",
        ))
    }
}
