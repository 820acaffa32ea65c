//! `Authorization: Bearer <key>` -> [`Caller`]. Keys are never logged.

use super::error::ApiError;
use super::state::{AppState, Caller};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = key_of(state, &parts.headers)?;
        tracing::Span::current().record("caller", caller.key.as_str());
        Ok(caller)
    }
}

/// The caller of a valid `Authorization: Bearer <key>`: 401 `E_UNAUTHORIZED`
/// without one (challenge `Bearer realm="leadflow"`) or with a wrong one,
/// `E_KEY_EXPIRED` for an expired key (both `error="invalid_token"`).
pub fn key_of(state: &AppState, headers: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
    let key = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    state.authenticate(key, state.now())
}

/// The token of `Authorization: Bearer <token>`, if there is a non-empty one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Only admin keys pass.
pub fn require_admin(c: &Caller) -> Result<(), ApiError> {
    if c.admin {
        Ok(())
    } else {
        Err(ApiError::admin_only())
    }
}
