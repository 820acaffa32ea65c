//! Record endpoints: create, get (ETag), fire (If-Match), actions, history,
//! links. Every read goes through the caller's visibility and PII redaction.

use super::error::{object, ApiError, ErrorBody, Json, JsonObject, Path};
use super::state::{AppState, Caller, Tenant};
use crate::backend::{Backend, CreateRequest, FireRequest, Idempotency, StoredRecord, Visible};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use leadflow_engine::{Code, Ctx, Record, Value, Workflow};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A record as a caller sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordView {
    pub id: i64,
    pub workflow: String,
    /// Content hash of the workflow version the record runs on.
    pub version: String,
    pub state: String,
    /// Field values by name; PII fields hidden from this caller are left out.
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// PII fields left out of `fields` for this caller.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
    pub assignee: Option<String>,
    /// Send it back as `If-Match` (also the `ETag` header).
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub entered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// PII redaction: admins see everything; anyone else sees a `pii` field
/// only when the record is in one of the field's `reveal_in` states AND the
/// caller is the record's assignee ([`crate::privacy`], the rule messages
/// follow too).
pub fn view(caller: &Caller, wf: Option<&Workflow>, r: StoredRecord) -> RecordView {
    let mut fields = r.fields;
    let viewer = match caller.admin {
        true => crate::privacy::Viewer::Admin,
        false => crate::privacy::Viewer::Actor(&caller.actor.id),
    };
    let redacted = crate::privacy::redact(wf, &r.state, r.assignee.as_deref(), viewer, &mut fields);
    RecordView {
        id: r.id,
        workflow: r.workflow,
        version: r.version,
        state: r.state,
        fields,
        redacted,
        assignee: r.assignee,
        revision: r.revision,
        created_at: r.created_at,
        entered_at: r.entered_at,
        updated_at: r.updated_at,
    }
}

pub fn version_of(t: &Tenant, r: &StoredRecord) -> Option<Arc<Workflow>> {
    t.backend.versions().version(&r.workflow, &r.version).ok()
}

fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn with_etag(status: StatusCode, v: RecordView) -> Response {
    let tag = etag(v.revision);
    let location = HeaderValue::from_str(&format!("/v1/records/{}", v.id)).ok();
    let mut resp = (status, Json(v)).into_response();
    resp.headers_mut().insert(header::ETAG, tag);
    if let (StatusCode::CREATED, Some(l)) = (status, location) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

/// A record the caller may see, or 404 (never telling whether it exists).
pub async fn visible_record(
    t: &Tenant,
    caller: &Caller,
    id: i64,
) -> Result<StoredRecord, ApiError> {
    match t.backend.get(id).await? {
        Some(r) if t.visible(caller, &r) => Ok(r),
        _ => Err(ApiError::not_found()),
    }
}

fn input(map: serde_json::Map<String, serde_json::Value>) -> Vec<(String, Value)> {
    map.into_iter()
        .map(|(k, v)| (k, Value::from_json(&v)))
        .collect()
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("header {name} is not text"))),
    }
}

/// `If-Match: "3"` (or `3`, `W/"3"`); `*` means any revision.
fn if_match(h: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = header_str(h, "if-match")? else {
        return Ok(None);
    };
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    v.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            ApiError::bad_request("If-Match must be a revision as sent in ETag, e.g. \"3\"")
        })
}

/// The longest `Idempotency-Key` accepted (visible ASCII only).
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An `Idempotency-Key` as stored: scoped to the API key that sent it (key
/// names are unique per tenant; the tenant is the store's), and bound to
/// the request by a SHA-256 of method, path and body (the parsed body,
/// re-serialised with sorted keys, so spacing and key order do not count).
/// The same key with another request answers 422 `E_IDEMPOTENCY_MISMATCH`.
struct IdemKey {
    key: String,
    request: String,
}

impl IdemKey {
    fn get(&self) -> Idempotency<'_> {
        Idempotency {
            key: &self.key,
            request: &self.request,
        }
    }
}

fn idempotency(
    h: &HeaderMap,
    caller: &Caller,
    method: &str,
    path: &str,
    body: impl FnOnce() -> String,
) -> Result<Option<IdemKey>, ApiError> {
    use sha2::{Digest, Sha256};
    let Some(k) = header_str(h, "idempotency-key")? else {
        return Ok(None);
    };
    let visible = k.bytes().all(|b| b.is_ascii_graphic());
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY || !visible {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (no spaces)"
        )));
    }
    let mut hash = Sha256::new();
    for part in [method, path, &body()] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    Ok(Some(IdemKey {
        key: format!("{}\u{1f}{k}", caller.key),
        request: hex::encode(hash.finalize()),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Workflow id, e.g. `aslm`.
    pub workflow: String,
    /// Initial field values by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Create a record on the current version of a workflow.
#[utoipa::path(post, path = "/v1/records", tag = "records", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters, kept 24 hours per API key: the same request again returns the first result; another request with it is 422 E_IDEMPOTENCY_MISMATCH")),
    responses((status = 201, body = RecordView, description = "created; ETag is the revision"),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST (also an Idempotency-Key that is empty, over 255 characters or not visible ASCII)"),
              (status = 401, body = ErrorBody, description = "E_UNAUTHORIZED, E_KEY_EXPIRED"),
              (status = 404, body = ErrorBody, description = "E_UNKNOWN_WORKFLOW"),
              (status = 422, body = ErrorBody, description = "E_REQUIRED, E_TYPE, E_INPUT, E_GUARD, ...; E_IDEMPOTENCY_MISMATCH: the Idempotency-Key was used with another method, path or body, nothing done")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonObject(body): JsonObject<CreateBody>,
) -> Result<Response, ApiError> {
    let t = s.tenant(&caller);
    let key = idempotency(&headers, &caller, "POST", "/v1/records", || {
        serde_json::json!({"workflow": &body.workflow, "fields": &body.fields}).to_string()
    })?;
    let r = t
        .backend
        .create(CreateRequest {
            workflow: &body.workflow,
            input: input(body.fields),
            actor: &caller.actor,
            now: Utc::now(),
            idempotency_key: key.as_ref().map(IdemKey::get),
        })
        .await?;
    metrics::counter!("leadflow_records_created_total", "tenant" => t.id.clone(), "workflow" => r.workflow.clone()).increment(1);
    let wf = version_of(t, &r);
    let mut v = view(&caller, wf.as_deref(), r.clone());
    if !t.visible(&caller, &r) {
        // Created, but routed to someone else: the caller learns the id only.
        v.fields.clear();
        v.redacted.clear();
        v.assignee = None;
    }
    Ok(with_etag(StatusCode::CREATED, v))
}

/// A record, with its revision as ETag.
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records",
    params(("id" = i64, Path)),
    responses((status = 200, body = RecordView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let wf = version_of(t, &r);
    Ok(with_etag(StatusCode::OK, view(&caller, wf.as_deref(), r)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireBody {
    /// Values for the transition's `input` fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: serde_json::Map<String, serde_json::Value>,
}

/// Fire a transition as the caller's actor.
#[utoipa::path(post, path = "/v1/records/{id}/transitions/{transition}", tag = "records",
    request_body = FireBody,
    params(("id" = i64, Path), ("transition" = String, Path),
           ("If-Match" = Option<String>, Header, description = "expected revision; 409 E_CONFLICT if stale"),
           ("Idempotency-Key" = Option<String>, Header, description = "as for POST /v1/records: bound to this record, transition and body")),
    responses((status = 200, body = RecordView),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST (also a bad Idempotency-Key or If-Match)"),
              (status = 401, body = ErrorBody, description = "E_UNAUTHORIZED, E_KEY_EXPIRED"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: role not in `by`"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "E_CONFLICT"),
              (status = 422, body = ErrorBody, description = "E_GUARD, E_REQUIRED, E_NOT_ENABLED, E_FINAL, ...; E_IDEMPOTENCY_MISMATCH: the Idempotency-Key was used with another request, nothing done")),
    security(("bearer" = [])))]
pub async fn fire(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, transition)): Path<(i64, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let t = s.tenant(&caller);
    let expected = if_match(&headers)?;
    // Visibility is tested by the store on the locked record, inside the
    // transition's transaction (no separate read).
    let visible = (!caller.admin).then(|| {
        let (t, caller) = (t.clone(), caller.clone());
        Visible(Arc::new(move |r: &StoredRecord| t.visible(&caller, r)))
    });
    // An empty body is an empty input (buttons without fields).
    let body: FireBody = if body.iter().all(u8::is_ascii_whitespace) {
        FireBody::default()
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        object(v)?
    };
    let key = idempotency(
        &headers,
        &caller,
        "POST",
        &format!("/v1/records/{id}/transitions/{transition}"),
        || serde_json::to_string(&body.input).unwrap_or_default(),
    )?;
    let r = t
        .backend
        .fire(FireRequest {
            record: id,
            transition: &transition,
            input: input(body.input),
            actor: &caller.actor,
            now: Utc::now(),
            expected_revision: expected,
            idempotency_key: key.as_ref().map(IdemKey::get),
            visible,
        })
        .await?;
    metrics::counter!("leadflow_transitions_total", "tenant" => t.id.clone(), "workflow" => r.workflow.clone(), "transition" => transition).increment(1);
    let wf = version_of(t, &r);
    let mut v = view(&caller, wf.as_deref(), r.clone());
    if !t.visible(&caller, &r) {
        // Fired away from the caller (e.g. given back to the pool).
        v.fields.clear();
        v.assignee = None;
    }
    Ok(with_etag(StatusCode::OK, v))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InputField {
    pub name: String,
    pub title: String,
    /// string | text | int | decimal | bool | date | datetime | enum | list | actor | link
    #[serde(rename = "type")]
    pub ty: String,
    /// Must be non-empty once the input is applied.
    pub required: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A transition the caller may fire now (an action button).
#[derive(Debug, Serialize, ToSchema)]
pub struct Action {
    pub transition: String,
    pub title: String,
    /// Target state; absent: stays in the same state.
    pub to: Option<String>,
    pub input: Vec<InputField>,
}

/// The transitions the caller may fire now: enabled in the record's state,
/// allowed to the caller's role, and whose guard passes (checked by a dry
/// run; a dry run refused only for missing input still lists it).
#[utoipa::path(get, path = "/v1/records/{id}/actions", tag = "records",
    params(("id" = i64, Path)),
    responses((status = 200, body = [Action]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn actions(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Action>>, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let Some(wf) = version_of(t, &r) else {
        return Ok(Json(Vec::new()));
    };
    let Some(rec) = Record::from_json(
        &wf,
        &r.state,
        &r.fields,
        r.assignee.clone(),
        r.created_at,
        r.entered_at,
    ) else {
        return Ok(Json(Vec::new()));
    };
    let dir = t.directory();
    let ctx = Ctx {
        now: Utc::now(),
        actor: &caller.actor,
        directory: &dir,
    };
    let mut out = Vec::new();
    for tr in wf.enabled_in(rec.state) {
        if !tr.allows_role(&caller.actor.role) {
            continue;
        }
        let listed = match leadflow_engine::fire(&wf, &rec, &tr.name, &[], ctx) {
            Ok(_) => true,
            Err(e) => matches!(
                e.code,
                Code::Required | Code::Input | Code::Type | Code::NoCandidate
            ),
        };
        if !listed {
            continue;
        }
        out.push(Action {
            transition: tr.name.clone(),
            title: tr.title.clone(),
            to: tr.to.map(|s| wf.state_name(s).to_string()),
            input: tr
                .input
                .iter()
                .map(|&f| {
                    let f = &wf.fields[f];
                    InputField {
                        name: f.name.clone(),
                        title: f.title.clone(),
                        ty: f.ty.name().to_string(),
                        required: tr.require.iter().any(|&x| wf.fields[x].name == f.name),
                        values: f.values.clone(),
                    }
                })
                .collect(),
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub transition: String,
    pub field: String,
    /// The value before: null, a string, a number, a boolean or a list.
    #[schema(value_type = Value)]
    pub old: serde_json::Value,
    /// The value after (as `old`).
    #[schema(value_type = Value)]
    pub new: serde_json::Value,
}

/// Field-level history (PII values redacted as in the record).
#[utoipa::path(get, path = "/v1/records/{id}/history", tag = "records",
    params(("id" = i64, Path)),
    responses((status = 200, body = [HistoryView]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<HistoryView>>, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let wf = version_of(t, &r);
    let hidden = view(&caller, wf.as_deref(), r).redacted;
    let rows = t.backend.history(id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|h| {
                let hide = hidden.contains(&h.field);
                let mask = |v: serde_json::Value| {
                    if hide && !v.is_null() {
                        serde_json::Value::String("[redacted]".into())
                    } else {
                        v
                    }
                };
                HistoryView {
                    at: h.at,
                    actor: h.actor,
                    transition: h.transition,
                    old: mask(h.old),
                    new: mask(h.new),
                    field: h.field,
                }
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub name: String,
    pub to: i64,
}

/// Links from this record (spawned and spawning records).
#[utoipa::path(get, path = "/v1/records/{id}/links", tag = "records",
    params(("id" = i64, Path)),
    responses((status = 200, body = [LinkView]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn links(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<LinkView>>, ApiError> {
    let t = s.tenant(&caller);
    visible_record(t, &caller, id).await?;
    let rows = t.backend.links(id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|l| LinkView {
                name: l.name,
                to: l.to,
            })
            .collect(),
    ))
}
