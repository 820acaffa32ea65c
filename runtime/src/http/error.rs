//! The one error type of the HTTP API, answered as an RFC 9457 problem
//! document (`application/problem+json`): `type` (`/errors/<code>`, whose
//! `GET` describes the code), `title`, `status`, `detail`, `instance` (the
//! request path), and the members `code` (stable, from the catalogue in
//! `codes.rs`), `field`, `request_id` and, on a revision conflict,
//! `current_revision`. Storage errors are logged and answered with a
//! generic detail: database text never reaches a client.

use super::codes;
use crate::backend::Error;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use utoipa::ToSchema;

/// `Retry-After` of a 503: a PostgreSQL restart or a failover takes seconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `WWW-Authenticate` of a 401 to a request without a key.
pub const CHALLENGE: &str = "Bearer realm=\"leadflow\"";
/// `WWW-Authenticate` of a 401 to a request whose key is wrong or expired
/// (RFC 6750 `invalid_token`).
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"leadflow\", error=\"invalid_token\"";

/// An error response (RFC 9457 problem details).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "/errors/E_CONFLICT", "title": "Revision conflict", "status": 412,
    "detail": "revision conflict: If-Match \"1\", the record is at revision 2; read it again and retry with If-Match \"2\"",
    "instance": "/v1/records/42/transitions/qualify", "code": "E_CONFLICT",
    "request_id": "0b5c7a4e-2f4e-4f7e-9d55-4f1b1b1c2a3d", "current_revision": 2,
    "message": "revision conflict: If-Match \"1\", the record is at revision 2; read it again and retry with If-Match \"2\""}))]
pub struct Problem {
    /// A URI reference per code (`/errors/<code>`, relative to the daemon):
    /// `GET` it for the code's documentation.
    #[serde(rename = "type")]
    #[schema(format = "uri-reference")]
    pub kind: String,
    /// Short, fixed per code.
    pub title: String,
    /// The HTTP status of the response.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong with this request, for people.
    pub detail: String,
    /// The request path (without the query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri-reference")]
    pub instance: Option<String>,
    /// Stable: clients match on it.
    #[schema(value_type = codes::ErrorCode)]
    pub code: String,
    /// The body field concerned, when known (E_INPUT, E_TYPE, E_REQUIRED,
    /// E_BAD_REQUEST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's id (also the `x-request-id` header): it finds the
    /// server's log lines.
    pub request_id: String,
    /// On E_CONFLICT: the record's revision now (also its `ETag` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<i64>,
    /// Deprecated: the same text as `detail`, kept for one release for
    /// clients of the former `{code, message}` body.
    #[schema(deprecated)]
    pub message: String,
}

/// The parts of an error that a handler sets; answered as a [`Problem`]
/// (also the name handler annotations use for it: its schema is
/// `Problem`'s).
#[derive(Debug, Clone, Default)]
pub struct ErrorBody {
    /// Stable code, one of [`codes::CODES`].
    pub code: String,
    /// The problem's `detail`.
    pub message: String,
    /// The field concerned (E_INPUT, E_TYPE, E_REQUIRED, E_BAD_REQUEST).
    pub field: Option<String>,
    /// On E_CONFLICT: the record's current revision.
    pub current_revision: Option<i64>,
}

impl utoipa::PartialSchema for ErrorBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <Problem as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for ErrorBody {
    fn name() -> Cow<'static, str> {
        <Problem as ToSchema>::name()
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Problem as ToSchema>::schemas(schemas)
    }
}

tokio::task_local! {
    /// The id of the request being answered (set by the router's layers).
    pub static REQUEST_ID: String;
    /// The path of the request being answered (a problem's `instance`).
    pub static REQUEST_PATH: String;
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Headers of the answer besides the problem's (`ETag` of a conflict,
    /// `WWW-Authenticate` of a 401); boxed, as few errors have any.
    pub headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
                ..ErrorBody::default()
            },
            headers: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "E_BAD_REQUEST", message)
    }
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "E_NOT_FOUND", "no such record")
    }
    /// 401 to a request without a key (`WWW-Authenticate` without error).
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E_UNAUTHORIZED",
            "missing or invalid API key (Authorization: Bearer <key>)",
        )
    }
    /// 401 to a request whose key is no key of any tenant
    /// (`error="invalid_token"`).
    pub fn invalid_key() -> ApiError {
        ApiError::unauthorized().challenge(CHALLENGE_INVALID)
    }
    /// 401 `E_KEY_EXPIRED`.
    pub fn key_expired(at: chrono::DateTime<chrono::Utc>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E_KEY_EXPIRED",
            format!(
                "this API key expired at {}; use the key that replaces it",
                at.to_rfc3339()
            ),
        )
        .challenge("Bearer realm=\"leadflow\", error=\"invalid_token\", error_description=\"the API key expired\"")
    }
    /// Set the `WWW-Authenticate` of a 401.
    pub fn challenge(self, value: &'static str) -> ApiError {
        self.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(value))
    }
    /// Add a header to the answer.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers
            .get_or_insert_with(Default::default)
            .insert(name, value);
        self
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
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E_INTERNAL",
            "internal error (see the server log for this request id)",
        )
    }
    /// 412 `E_CONFLICT`: `If-Match` named `expected`, the record is at
    /// `actual` (a member and the `ETag` header).
    pub fn conflict(expected: i64, actual: i64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "E_CONFLICT",
            format!("revision conflict: If-Match \"{expected}\", the record is at revision {actual}; read it again and retry with If-Match \"{actual}\""),
        );
        e.body.current_revision = Some(actual);
        match HeaderValue::from_str(&format!("\"{actual}\"")) {
            Ok(tag) => e.with_header(header::ETAG, tag),
            Err(_) => e,
        }
    }

    /// 400 `E_BAD_REQUEST` about one field of the body.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::bad_request(message);
        e.body.field = Some(field.into());
        e
    }

    /// The problem document of this error, for the request being answered
    /// (its id and path are read from [`REQUEST_ID`] and [`REQUEST_PATH`]).
    pub fn problem(&self) -> Problem {
        let b = &self.body;
        let title = match codes::lookup(&b.code) {
            Some(c) => c.title.to_string(),
            None => self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
        };
        // Outside a request (none in the router) a fresh id, still unique.
        let request_id = REQUEST_ID
            .try_with(String::clone)
            .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string());
        Problem {
            kind: codes::type_uri(&b.code),
            title,
            status: self.status.as_u16(),
            detail: b.message.clone(),
            instance: REQUEST_PATH.try_with(String::clone).ok(),
            code: b.code.clone(),
            field: b.field.clone(),
            request_id,
            current_revision: b.current_revision,
            message: b.message.clone(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::Refused(r) => {
                let code = r.code.as_str();
                let status = codes::lookup(code)
                    .and_then(|c| StatusCode::from_u16(c.status).ok())
                    .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                crate::http::ops::refusal(code);
                let mut e = ApiError::new(status, code, r.message);
                e.body.field = r.field;
                e
            }
            Error::Conflict { expected, actual } => {
                crate::http::ops::refusal("E_CONFLICT");
                ApiError::conflict(expected, actual)
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
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is transient here: an outage, a busy pool, overload.
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(CHALLENGE),
            );
        }
        for (name, value) in self.headers.iter().flat_map(|h| h.iter()) {
            h.insert(name, value.clone());
        }
        resp
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

/// `axum::Json` whose rejections are `E_BAD_REQUEST` problems.
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

/// Query string extractor whose rejections are problems.
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

/// Path extractor whose rejections are problems.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::IdempotencyOwned;
    use crate::error::{StoreError, StoreErrorKind};
    use leadflow_engine::Refusal;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Marks text from below the HTTP layer, which must not reach a client.
    const DB_TEXT: &str = "relation db_internal";

    fn backend_error() -> impl Strategy<Value = Error> {
        let text = ".{0,40}";
        let engine = proptest::sample::select(codes::engine_codes());
        let kind = proptest::sample::select(vec![
            StoreErrorKind::Unavailable,
            StoreErrorKind::Busy,
            StoreErrorKind::Serialization,
            StoreErrorKind::Data,
            StoreErrorKind::Setup,
            StoreErrorKind::Other,
        ]);
        prop_oneof![
            (engine, text, proptest::option::of("[a-z_]{1,12}")).prop_map(
                |(code, message, field)| Error::Refused(Refusal {
                    code,
                    message,
                    field
                })
            ),
            (any::<i64>(), any::<i64>())
                .prop_map(|(expected, actual)| Error::Conflict { expected, actual }),
            any::<i64>().prop_map(Error::NotFound),
            text.prop_map(Error::UnknownWorkflow),
            (kind, text)
                .prop_map(|(k, m)| Error::Storage(StoreError::new(k, format!("{DB_TEXT} {m}")))),
            any::<usize>().prop_map(|limit| Error::SpawnLimit { limit }),
            (text, "[0-9a-f]{8}").prop_map(|(w, hash)| Error::VersionNotLoaded {
                workflow: format!("{DB_TEXT} {w}"),
                hash
            }),
            (text, text).prop_map(|(key, request)| Error::IdempotencyRace(IdempotencyOwned {
                key,
                request
            })),
            Just(()).prop_map(|_| Error::IdempotencyMismatch),
        ]
    }

    fn constructed() -> impl Strategy<Value = ApiError> {
        let text = ".{0,40}";
        let catalogue = proptest::sample::select(codes::CODES.to_vec());
        prop_oneof![
            backend_error().prop_map(ApiError::from),
            text.prop_map(ApiError::bad_request),
            ("[a-z.\\[\\]0-9]{1,20}", text).prop_map(|(f, m)| ApiError::bad_field(f, m)),
            Just(ApiError::not_found()),
            Just(ApiError::unauthorized()),
            Just(ApiError::invalid_key()),
            (0i64..4_000_000_000).prop_map(|s| ApiError::key_expired(
                chrono::DateTime::from_timestamp(s, 0).unwrap_or_default()
            )),
            Just(ApiError::admin_only()),
            Just(ApiError::unavailable()),
            Just(ApiError::internal()),
            (any::<i64>(), any::<i64>()).prop_map(|(e, a)| ApiError::conflict(e, a)),
            (catalogue, text).prop_map(|(c, m)| ApiError::new(
                StatusCode::from_u16(c.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                c.code,
                m
            )),
        ]
    }

    /// The `ErrorCode` enum of the OpenAPI document.
    fn spec_codes() -> BTreeSet<String> {
        let doc = serde_json::to_value(super::super::openapi::ApiDoc::openapi()).unwrap();
        doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("ErrorCode is an enum")
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }
    use utoipa::OpenApi;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every error the API builds answers a problem document: the
        /// media type, the members, a status equal to the response's and
        /// to the catalogue's, a `code` of the catalogue and of the spec's
        /// enum, the headers its status needs, and no storage text.
        #[test]
        fn every_error_is_a_problem_document_with_a_catalogued_code(
            e in constructed(),
            scoped in any::<bool>(),
            id in "[a-zA-Z0-9-]{1,36}",
            path in "/[a-z0-9/]{0,30}",
        ) {
            let spec = spec_codes();
            let code = e.body.code.clone();
            let revision = e.body.current_revision;
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (status, headers, bytes) = rt.block_on(async {
                let resp = if scoped {
                    REQUEST_ID
                        .scope(id.clone(), REQUEST_PATH.scope(path.clone(), async { e.into_response() }))
                        .await
                } else {
                    e.into_response()
                };
                let (parts, body) = resp.into_parts();
                (parts.status, parts.headers, axum::body::to_bytes(body, 1 << 20).await.unwrap())
            });
            prop_assert_eq!(&headers[header::CONTENT_TYPE], PROBLEM_JSON);
            let p: Problem = serde_json::from_slice(&bytes).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for member in ["type", "title", "status", "detail", "code", "request_id"] {
                prop_assert!(v.get(member).is_some(), "{} missing: {}", member, v);
            }
            prop_assert_eq!(p.status, status.as_u16());
            let info = codes::lookup(&p.code);
            prop_assert!(info.is_some(), "{} is not in the catalogue", p.code);
            let info = info.unwrap();
            prop_assert!(spec.contains(&p.code), "{} is not in the spec's enum", p.code);
            prop_assert_eq!(info.status, p.status, "{}", p.code);
            prop_assert_eq!(info.title, p.title.as_str());
            prop_assert_eq!(p.kind, format!("/errors/{}", p.code));
            prop_assert_eq!(&p.code, &code);
            prop_assert_eq!(&p.message, &p.detail);
            prop_assert!(!p.request_id.is_empty());
            if scoped {
                prop_assert_eq!(&p.request_id, &id);
                prop_assert_eq!(p.instance.as_deref(), Some(path.as_str()));
            }
            if p.status == 401 {
                let c = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
                prop_assert!(c.starts_with(CHALLENGE), "{}", c);
            }
            if p.status == 503 {
                prop_assert_eq!(&headers[header::RETRY_AFTER], RETRY_AFTER_SECS);
            }
            prop_assert_eq!(p.current_revision, revision);
            if let Some(r) = revision {
                prop_assert_eq!(p.status, 412);
                let tag = format!("\"{r}\"");
                prop_assert_eq!(headers[header::ETAG].to_str().unwrap(), tag.as_str());
            }
            prop_assert!(!p.detail.contains(DB_TEXT), "{}", p.detail);
        }
    }

    #[test]
    fn a_conflict_is_412_with_the_current_revision_as_member_and_etag() {
        let e = ApiError::from(Error::Conflict {
            expected: 1,
            actual: 7,
        });
        assert_eq!(e.status, StatusCode::PRECONDITION_FAILED);
        let p = e.problem();
        assert_eq!(p.code, "E_CONFLICT");
        assert_eq!(p.current_revision, Some(7));
        assert_eq!(
            serde_json::to_value(&p).unwrap()["current_revision"],
            serde_json::json!(7)
        );
        assert_eq!(e.into_response().headers()[header::ETAG], "\"7\"");
    }

    #[test]
    fn a_401_says_whether_the_key_sent_was_wrong() {
        let none = ApiError::unauthorized().into_response();
        assert_eq!(none.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
        let wrong = ApiError::invalid_key().into_response();
        assert_eq!(wrong.headers()[header::WWW_AUTHENTICATE], CHALLENGE_INVALID);
        let expired = ApiError::key_expired(chrono::Utc::now()).into_response();
        let c = expired.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(c.starts_with(CHALLENGE_INVALID), "{c}");
    }
}
