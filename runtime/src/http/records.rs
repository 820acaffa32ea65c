//! Record endpoints: create, get (ETag, If-None-Match), fire (If-Match), actions, history,
//! links. Every read goes through the caller's visibility and PII redaction.

use super::error::{object, ApiError, ErrorBody, Json, JsonObject, Path, Query};
use super::schema::{check_values, FieldValue};
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
    /// Field values by name; unset fields, and PII fields hidden from this
    /// caller, are left out (`GET /v1/workflows/{id}/schema` types them).
    #[schema(value_type = BTreeMap<String, FieldValue>)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// PII fields left out of `fields` for this caller (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub redacted: Vec<String>,
    /// The actor the record is assigned to; null: unassigned.
    pub assignee: Option<String>,
    /// Send it back as `If-Match` (also the `ETag` header).
    pub revision: i64,
    #[serde(serialize_with = "super::schema::ts")]
    pub created_at: DateTime<Utc>,
    /// When the record entered its current state.
    #[serde(serialize_with = "super::schema::ts")]
    pub entered_at: DateTime<Utc>,
    #[serde(serialize_with = "super::schema::ts")]
    pub updated_at: DateTime<Utc>,
    /// `GET /v1/records/{id}` only: the timers armed on the record, soonest
    /// first, with their due instants (the SLA a UI counts down).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub timers: Option<Vec<TimerView>>,
}

/// A timer armed on a record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimerView {
    /// The timer's name in the workflow (`[timers.<name>]`).
    pub timer: String,
    /// Its title (the name when the workflow gives none).
    pub title: String,
    /// When it fires, unless the record leaves the timer's states first.
    #[serde(serialize_with = "super::schema::ts")]
    pub due: DateTime<Utc>,
}

/// PII redaction: admins see everything; anyone else sees a `pii` field
/// only when the record is in one of the field's `reveal_in` states AND the
/// caller is the record's assignee ([`crate::privacy`], the rule messages
/// follow too).
pub fn view(caller: &Caller, wf: Option<&Workflow>, r: StoredRecord) -> RecordView {
    let viewer = caller.viewer(wf, &r);
    let mut fields = r.fields;
    let redacted = crate::privacy::redact(wf, &r.state, r.assignee.as_deref(), viewer, &mut fields);
    if let Some(wf) = wf {
        super::schema::normalize_fields(wf, &mut fields);
    }
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
        timers: None,
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

/// The entity tags of a conditional header (its lines joined, RFC 9110
/// lists), each as its opaque value (`W/"3"` and `"3"` give `3`; a bare
/// `3` is taken too); `None` when absent, `Some(["*"])` for `*`.
fn entity_tags(h: &HeaderMap, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    let mut tags = Vec::new();
    let mut present = false;
    for v in h.get_all(name) {
        present = true;
        let v = v
            .to_str()
            .map_err(|_| ApiError::bad_request(format!("header {name} is not text")))?;
        for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let t = t.strip_prefix("W/").unwrap_or(t);
            tags.push(t.trim_matches('"').to_string());
        }
    }
    Ok(present.then_some(tags))
}

/// What `If-Match` asks of a fire.
enum IfMatch {
    /// Absent, or `*`: any revision (the record must exist).
    Any,
    /// One revision (`"3"`, or leniently `3`, `W/"3"`).
    Revision(i64),
    /// One of several revisions (`"3", "4"`).
    OneOf(Vec<i64>),
}

fn if_match(h: &HeaderMap) -> Result<IfMatch, ApiError> {
    let Some(tags) = entity_tags(h, "if-match")? else {
        return Ok(IfMatch::Any);
    };
    if tags.iter().any(|t| t == "*") {
        return Ok(IfMatch::Any);
    }
    let mut revs: Vec<i64> = tags
        .iter()
        .map(|t| t.parse())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            ApiError::bad_request("If-Match must be a revision as sent in ETag, e.g. \"3\"")
        })?;
    revs.sort_unstable();
    revs.dedup();
    Ok(match revs.as_slice() {
        [] => {
            return Err(ApiError::bad_request(
                "If-Match must be a revision as sent in ETag, e.g. \"3\"",
            ))
        }
        [r] => IfMatch::Revision(*r),
        _ => IfMatch::OneOf(revs),
    })
}

/// `If-None-Match` (weak comparison, RFC 9110): whether a record at
/// `revision` matches, so a GET answers 304.
fn if_none_match(h: &HeaderMap, revision: i64) -> Result<bool, ApiError> {
    let current = revision.to_string();
    Ok(entity_tags(h, "if-none-match")?
        .is_some_and(|tags| tags.iter().any(|t| t == "*" || *t == current)))
}

/// 304 Not Modified: the `ETag`, no body.
fn not_modified(revision: i64) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    resp.headers_mut().insert(header::ETAG, etag(revision));
    resp
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
    /// Initial field values by name (any declared field; see
    /// `GET /v1/workflows/{id}/schema`, `create`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, FieldValue>)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Create a record on the current version of a workflow.
#[utoipa::path(post, path = "/v1/records", tag = "records", operation_id = "records_create", request_body = CreateBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible ASCII characters, kept 24 hours per API key: the same request again returns the first result; another request with it is 422 E_IDEMPOTENCY_MISMATCH")),
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
    check_values(&body.fields)?;
    let key = idempotency(&headers, &caller, "POST", "/v1/records", || {
        serde_json::json!({"workflow": &body.workflow, "fields": &body.fields}).to_string()
    })?;
    let r = t
        .backend
        .create(CreateRequest {
            workflow: &body.workflow,
            input: input(body.fields),
            actor: &caller.actor,
            now: s.now(),
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

/// A record, with its revision as ETag; 304 when `If-None-Match` names it.
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records", operation_id = "records_get",
    params(("id" = i64, Path, description = "the record id"),
           ("If-None-Match" = Option<String>, Header, description = "ETags seen before (`\"3\"`, a list `\"2\", \"3\"`, weak `W/\"3\"`, or `*`): 304 without a body when the record is at one of them")),
    responses((status = 200, body = RecordView), (status = 304, description = "not modified: the record is at a revision `If-None-Match` named; no body", headers(("ETag" = String, description = "the current revision, quoted"))),
              (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = s.tenant(&caller);
    // Visibility first: a record the caller cannot see is 404 whatever
    // the condition, so a 304 never tells that it exists.
    let r = visible_record(t, &caller, id).await?;
    if if_none_match(&headers, r.revision)? {
        return Ok(not_modified(r.revision));
    }
    let v = full_view(t, &caller, r).await?;
    Ok(with_etag(StatusCode::OK, v))
}

/// A record as `GET /v1/records/{id}` shows it to `caller` (redacted, with
/// its armed timers); the caller may see it.
pub async fn full_view(
    t: &Tenant,
    caller: &Caller,
    r: StoredRecord,
) -> Result<RecordView, ApiError> {
    let wf = version_of(t, &r);
    let mut timers = t.backend.timers(r.id).await?;
    timers.sort_by(|a, b| (a.due, &a.timer).cmp(&(b.due, &b.timer)));
    let timers = timers
        .into_iter()
        .map(|a| TimerView {
            title: wf
                .as_deref()
                .and_then(|w| w.timers.iter().find(|x| x.name == a.timer))
                .map_or_else(|| a.timer.clone(), |x| x.title.clone()),
            timer: a.timer,
            due: a.due,
        })
        .collect();
    let mut v = view(caller, wf.as_deref(), r);
    v.timers = Some(timers);
    Ok(v)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireBody {
    /// Values for the transition's `input` fields (see
    /// `GET /v1/workflows/{id}/schema`, `transitions.<name>.input`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, FieldValue>)]
    pub input: serde_json::Map<String, serde_json::Value>,
}

/// Fire a transition as the caller's actor.
#[utoipa::path(post, path = "/v1/records/{id}/transitions/{transition}", tag = "records", operation_id = "records_fire",
    request_body(content = FireBody, description = "optional (the OpenAPI document marks it so): no body, or a blank one, is an empty input"),
    params(("id" = i64, Path, description = "the record id"), ("transition" = String, Path, description = "the transition name (`GET /v1/records/{id}/actions` lists those the caller may fire now)"),
           ("If-Match" = Option<String>, Header, pattern = "^\\s*(\\*|(W/)?\"?-?[0-9]+\"?(\\s*,\\s*(W/)?\"?-?[0-9]+\"?)*)\\s*$", description = "the revision the caller saw, as in ETag (`\"3\"`; a list `\"3\", \"4\"`; `*`: any): 412 E_CONFLICT when the record is at another"),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "as for POST /v1/records: bound to this record, transition and body")),
    responses((status = 200, body = RecordView),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST (also a bad Idempotency-Key or If-Match)"),
              (status = 401, body = ErrorBody, description = "E_UNAUTHORIZED, E_KEY_EXPIRED"),
              (status = 403, body = ErrorBody, description = "E_FORBIDDEN: role not in `by`"),
              (status = 404, body = ErrorBody), (status = 412, body = ErrorBody, description = "E_CONFLICT: the record is not at the If-Match revision; nothing done; `current_revision` and ETag give its revision now", headers(("ETag" = String, description = "the current revision, quoted"))),
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
    let expected = match if_match(&headers)? {
        IfMatch::Any => None,
        IfMatch::Revision(r) => Some(r),
        // The store compares one revision, on the locked record: expect
        // the listed one the record is at now, if any (else the first,
        // which fails). A change in between answers 412, as it should.
        IfMatch::OneOf(revs) => {
            let now = t.backend.get(id).await?.map(|r| r.revision);
            now.filter(|r| revs.contains(r)).or(revs.first().copied())
        }
    };
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
    check_values(&body.input)?;
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
            now: s.now(),
            expected_revision: expected,
            idempotency_key: key.as_ref().map(IdemKey::get),
            visible,
            bulk: false,
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
    /// With `include_disabled=true` only: whether the caller may fire it now
    /// (as without the parameter: a transition refused only for missing
    /// input is enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub enabled: Option<bool>,
    /// With `include_disabled=true` only: every reason firing it now (with
    /// no input) is refused, as `GET /v1/records/{id}/transitions/{name}/check`
    /// gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub reasons: Option<Vec<ReasonView>>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionsParams {
    /// Also list the transitions the caller cannot fire now, each with
    /// `enabled: false` and its `reasons`.
    #[serde(default)]
    pub include_disabled: bool,
}

/// One reason a transition is refused now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReasonView {
    /// The refusal code firing it would answer (`E_NOT_ENABLED`,
    /// `E_FORBIDDEN`, `E_REQUIRED`, `E_GUARD`, `E_SCRIPT`, ...).
    pub code: String,
    pub message: String,
    /// The field concerned (`E_REQUIRED`, `E_INPUT`, `E_TYPE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub field: Option<String>,
}

/// One top-level `&&` clause of a guard, evaluated on its own.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClauseView {
    /// The clause's source text.
    pub source: String,
    /// `passed`, `failed`, `threw` (a rules function refusing with a
    /// message) or `error` (a script error).
    pub result: String,
    /// The thrown message or the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub message: Option<String>,
    /// The record's fields the clause reads (`lead.<field>`, also
    /// `state`, `assignee`, ...) with their values; a PII field the caller
    /// may not see is `"[redacted]"`.
    #[schema(value_type = BTreeMap<String, FieldValue>)]
    pub reads: serde_json::Map<String, serde_json::Value>,
}

/// Why a transition can or cannot be fired now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransitionCheck {
    pub transition: String,
    /// The record's current state.
    pub state: String,
    /// Whether firing it now, as the caller with no input, would succeed.
    pub allowed: bool,
    /// Every reason it is refused (empty when allowed).
    pub reasons: Vec<ReasonView>,
    /// The guard's top-level `&&` clauses, each evaluated on its own
    /// (empty without a guard).
    pub guard: Vec<ClauseView>,
}

/// The engine's dry run of `transition` on `rec`, as the caller, with PII
/// the caller may not see redacted from the values shown.
fn why_not(
    caller: &Caller,
    wf: &Workflow,
    r: &StoredRecord,
    rec: &Record,
    transition: &str,
    ctx: Ctx,
) -> TransitionCheck {
    let w = leadflow_engine::why_not(wf, rec, transition, &[], ctx);
    let viewer = caller.viewer(Some(wf), r);
    let guard = w
        .guard
        .into_iter()
        .map(|c| {
            let mut reads: serde_json::Map<String, serde_json::Value> =
                c.reads.into_iter().collect();
            let hidden = crate::privacy::redact(
                Some(wf),
                &r.state,
                r.assignee.as_deref(),
                viewer,
                &mut reads.clone(),
            );
            for h in hidden {
                if let Some(v) = reads.get_mut(&h) {
                    *v = serde_json::Value::String("[redacted]".into());
                }
            }
            ClauseView {
                source: c.source,
                result: serde_json::to_value(c.result)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                message: c.message,
                reads,
            }
        })
        .collect();
    TransitionCheck {
        transition: w.transition,
        state: w.state,
        allowed: w.allowed,
        reasons: w.reasons.into_iter().map(reason_view).collect(),
        guard,
    }
}

fn reason_view(r: leadflow_engine::why::Reason) -> ReasonView {
    ReasonView {
        code: r.code.to_string(),
        message: r.message,
        field: r.field,
    }
}

/// The record as the engine needs it; None when its version is not loaded.
fn engine_record(t: &Tenant, r: &StoredRecord) -> Option<(Arc<Workflow>, Record)> {
    let wf = version_of(t, r)?;
    let rec = Record::from_json(
        &wf,
        &r.state,
        &r.fields,
        r.assignee.clone(),
        r.created_at,
        r.entered_at,
    )?;
    Some((wf, rec))
}

/// Why not? A dry run of a transition as the caller, with no input, that
/// changes nothing and explains every reason it is refused now: the
/// record's state, the caller's role, each required field still empty
/// (the missing input), and each top-level `&&` clause of the guard with
/// its result and the values of the fields it reads.
#[utoipa::path(get, path = "/v1/records/{id}/transitions/{transition}/check", tag = "records", operation_id = "records_check",
    params(("id" = i64, Path, description = "the record id"), ("transition" = String, Path, description = "the transition name")),
    responses((status = 200, body = TransitionCheck, description = "the dry run's answer (also for a transition the workflow does not have: `E_UNKNOWN_TRANSITION` among the reasons)"),
              (status = 404, body = ErrorBody, description = "E_NOT_FOUND: no such record visible to the caller (or its workflow version is not loaded)")),
    security(("bearer" = [])))]
pub async fn check(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, transition)): Path<(i64, String)>,
) -> Result<Json<TransitionCheck>, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let Some((wf, rec)) = engine_record(t, &r) else {
        return Err(ApiError::not_found());
    };
    let dir = t.directory();
    let ctx = Ctx {
        now: s.now(),
        actor: &caller.actor,
        directory: &dir,
    };
    Ok(Json(why_not(&caller, &wf, &r, &rec, &transition, ctx)))
}

/// The transitions the caller may fire now: enabled in the record's state,
/// allowed to the caller's role, and whose guard passes (checked by a dry
/// run; a dry run refused only for missing input still lists it). With
/// `include_disabled=true`, every transition of the workflow, each with
/// `enabled` and the `reasons` it is refused now.
#[utoipa::path(get, path = "/v1/records/{id}/actions", tag = "records", operation_id = "records_actions",
    params(("id" = i64, Path, description = "the record id"), ActionsParams),
    responses((status = 200, body = [Action]), (status = 400, body = ErrorBody, description = "E_BAD_REQUEST: an unknown query parameter or a bad value"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn actions(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(p): Query<ActionsParams>,
) -> Result<Json<Vec<Action>>, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let Some((wf, rec)) = engine_record(t, &r) else {
        return Ok(Json(Vec::new()));
    };
    let dir = t.directory();
    let ctx = Ctx {
        now: s.now(),
        actor: &caller.actor,
        directory: &dir,
    };
    let mut out = Vec::new();
    for tr in &wf.transitions {
        let enabled = tr.enabled_from(rec.state)
            && !wf.states[rec.state].is_final
            && tr.allows(&wf, &rec, &caller.actor, &dir)
            && match leadflow_engine::fire(&wf, &rec, &tr.name, &[], ctx) {
                Ok(_) => true,
                Err(e) => matches!(
                    e.code,
                    Code::Required | Code::Input | Code::Type | Code::NoCandidate
                ),
            };
        if !enabled && !p.include_disabled {
            continue;
        }
        let reasons = p
            .include_disabled
            .then(|| why_not(&caller, &wf, &r, &rec, &tr.name, ctx).reasons);
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
            enabled: p.include_disabled.then_some(enabled),
            reasons,
        });
    }
    Ok(Json(out))
}

/// One field change of an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    pub field: String,
    /// The value before: null, a string, a number, a boolean or a list;
    /// `"[redacted]"` for a PII field the caller may not see.
    #[schema(value_type = FieldValue)]
    pub old: serde_json::Value,
    /// The value after (as `old`).
    #[schema(value_type = FieldValue)]
    pub new: serde_json::Value,
}

/// One committed change of a record (docs/api.md, "History and audit").
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub record: i64,
    pub workflow: String,
    /// The record's revision after the event (1: its creation).
    pub revision: i64,
    #[serde(serialize_with = "super::schema::ts")]
    pub at: DateTime<Utc>,
    /// The actor id; `timer:<name>` for a timer firing (and what it
    /// spawns); `system` for scheduled spawns and system bulk operations;
    /// `migrate` for `leadflow migrate`.
    pub actor: String,
    pub kind: crate::backend::EventKind,
    /// The transition fired (a timer's too); null for a creation, a
    /// timer's effects, a move. A legacy event (written before events
    /// existed) carries the label its field rows had: a transition,
    /// `create`, `timer:<name>` or `migrate`.
    pub transition: Option<String>,
    /// The state before; null for a creation and a legacy event.
    pub from: Option<String>,
    /// The state after; null for a legacy event.
    pub to: Option<String>,
    /// The record's assignee after the event (null on a legacy event).
    pub assignee: Option<String>,
    /// The input given (field -> value); PII fields the caller may not see
    /// are left out (listed in `redacted`). Null without input.
    #[schema(value_type = Option<BTreeMap<String, FieldValue>>)]
    pub input: Option<serde_json::Map<String, serde_json::Value>>,
    /// Tracked field changes, in field order.
    pub changes: Vec<ChangeView>,
    /// PII fields of this event (input or changes) whose values are hidden
    /// from the caller, as `RecordView.redacted`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

/// The record's events, oldest first, each with its field changes. PII is
/// redacted by the record's current state and assignee, as in the record:
/// a hidden field's input value is left out and its change keeps its row
/// with `old` and `new` both `"[redacted]"`.
#[utoipa::path(get, path = "/v1/records/{id}/history", tag = "records", operation_id = "records_history",
    params(("id" = i64, Path, description = "the record id")),
    responses((status = 200, body = [EventView]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let wf = version_of(t, &r);
    let hidden = super::history::Hidden::of(&caller, wf.as_deref(), &r);
    let events = t.backend.events(id).await?;
    Ok(Json(events.into_iter().map(|e| hidden.view(e)).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub name: String,
    pub to: i64,
}

/// Links from this record (spawned and spawning records).
#[utoipa::path(get, path = "/v1/records/{id}/links", tag = "records", operation_id = "records_links",
    params(("id" = i64, Path, description = "the record id")),
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
