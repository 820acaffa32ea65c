//! The one error type of the HTTP API: a status and a JSON body
//! `{ "code": "...", "message": "..." }` with a stable code. Storage errors
//! are logged and answered with a generic message: database text never
//! reaches a client.

use crate::backend::Error;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadflow_engine::Code;
use serde::Serialize;
use utoipa::ToSchema;

/// `Retry-After` of a 503: a PostgreSQL restart or a failover takes seconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code: E_GUARD, E_REQUIRED, E_CONFLICT, E_NOT_FOUND, E_BAD_REQUEST,
    /// E_IDEMPOTENCY_MISMATCH, E_KEY_EXPIRED, ...
    pub code: String,
    pub message: String,
    /// The field concerned (E_INPUT, E_TYPE, E_REQUIRED, E_BAD_REQUEST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id (`x-request-id`) of an `E_INTERNAL` answer, to find
    /// its log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

tokio::task_local! {
    /// The id of the request being answered (set by the router's layers).
    pub static REQUEST_ID: String;
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
                field: None,
                request_id: None,
            },
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "E_BAD_REQUEST", message)
    }
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "E_NOT_FOUND", "no such record")
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E_UNAUTHORIZED",
            "missing or invalid API key (Authorization: Bearer <key>)",
        )
    }
    pub fn admin_only() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "E_FORBIDDEN",
            "this endpoint needs an admin key",
        )
    }
    /// The store is down, restarting or saturated: the request may succeed
    /// if sent again (answered with `Retry-After`).
    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "E_UNAVAILABLE",
            "the database is unavailable or busy; retry after the delay in Retry-After",
        )
    }
    pub fn internal() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E_INTERNAL",
            "internal error (see the server log for this request id)",
        );
        e.body.request_id = REQUEST_ID.try_with(String::clone).ok();
        e
    }

    /// 400 `E_BAD_REQUEST` about one field of the body.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::bad_request(message);
        e.body.field = Some(field.into());
        e
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Refused(r) => {
                let status = match r.code {
                    Code::Forbidden => StatusCode::FORBIDDEN,
                    Code::UnknownTransition | Code::UnknownTimer => StatusCode::NOT_FOUND,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                crate::http::ops::refusal(r.code.as_str());
                ApiError {
                    status,
                    body: ErrorBody {
                        code: r.code.as_str().to_string(),
                        message: r.message,
                        field: r.field,
                        request_id: None,
                    },
                }
            }
            Error::Conflict { expected, actual } => {
                crate::http::ops::refusal("E_CONFLICT");
                ApiError::new(
                    StatusCode::CONFLICT,
                    "E_CONFLICT",
                    format!("revision conflict: If-Match {expected}, the record is at {actual}"),
                )
            }
            Error::NotFound(_) => ApiError::not_found(),
            Error::IdempotencyMismatch => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "E_IDEMPOTENCY_MISMATCH",
                "this Idempotency-Key was used with a different request (method, path or body): nothing was done; use a new key for a new request",
            ),
            Error::UnknownWorkflow(w) => ApiError::new(
                StatusCode::NOT_FOUND,
                "E_UNKNOWN_WORKFLOW",
                format!("unknown workflow `{w}`"),
            ),
            Error::SpawnLimit { limit } => {
                crate::http::ops::refusal("E_SPAWN_LIMIT");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "E_SPAWN_LIMIT",
                    format!(
                        "the transition would spawn more than {limit} records; nothing was changed"
                    ),
                )
            }
            Error::Storage(s) if s.is_retryable() => {
                tracing::warn!(error = %s, kind = ?s.kind(), "store unavailable, answered 503");
                ApiError::unavailable()
            }
            other => {
                tracing::error!(error = %other, "request failed");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is transient here: an outage, a busy pool, overload.
            return (
                self.status,
                [(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS)],
                axum::Json(self.body),
            )
                .into_response();
        }
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        // serde's messages name the field and the expected type; they carry
        // no server internals.
        let message = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a JSON body (Content-Type: application/json)".to_string()
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "E_TOO_LARGE",
                    other.body_text(),
                )
            }
            other => other.body_text(),
        };
        ApiError::bad_request(message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

/// `axum::Json` whose rejections are JSON `E_BAD_REQUEST` errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(v))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON object body (`[]` or `"x"` are refused, not read as a struct)
/// whose strings, names included, hold no NUL character: PostgreSQL
/// cannot store one, and no field needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonObject<T>(pub T);

impl<S, T> FromRequest<S> for JsonObject<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<serde_json::Value>::from_request(req, state).await?;
        object(v).map(JsonObject)
    }
}

/// [`JsonObject`]'s checks on a parsed body.
pub fn object<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object, e.g. {\"input\": {...}}",
        ));
    }
    if let Some(field) = nul_at(&v, "") {
        return Err(ApiError::bad_field(
            field.clone(),
            format!("`{field}`: text must not contain the NUL character (\\u0000)"),
        ));
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

/// The path (`fields.name`, `input.tags[2]`) of the first string or
/// object key holding a NUL character.
fn nul_at(v: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value as J;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        J::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "(body)".into()
        } else {
            path.to_string()
        }),
        J::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_at(x, &format!("{path}[{i}]"))),
        J::Object(m) => m.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                Some(join(&k.replace('\0', "\\u0000")))
            } else {
                nul_at(x, &join(k))
            }
        }),
        _ => None,
    }
}

/// Query string extractor with JSON errors.
#[derive(Debug, Clone, Default)]
pub struct Query<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// Path extractor with JSON errors.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(v) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}
