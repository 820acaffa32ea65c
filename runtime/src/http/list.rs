//! `GET /v1/records`: typed filters (workflow, states, assignee, the
//! instant columns, any field: `field.<name>=[op:]value`, or the older
//! `filter=name:[op:]value`), sort by any field or column, keyset
//! pagination, `count=true`. The SQL lives in the store
//! (`store/sql/query/`, the `RecordQuery` capability); this module reads
//! and checks the parameters against the workflows' field types: a name no
//! loaded version of the workflow(s) in scope declares, an operator its
//! type does not take, a value that does not parse, are 400 naming the
//! parameter. The caller's visibility (own records, pools) is part of the
//! query, so pages are never short because of hidden rows.
//!
//! Keyset: the cursor is the last row's (arm, sort key, id) as the store
//! returned it, so the next page binds exactly what was compared. Missing
//! values sort first ascending, last descending.
//!
//! The cursor is sealed (ChaCha20-Poly1305): it shows no value, cannot be
//! forged or altered, and is bound by its associated data to the tenant, the
//! API key and the query (filters and sort; not `limit`). Anything else is
//! 400. The key derives from `LEADFLOW_CURSOR_SECRET` when it is set (the
//! same on every daemon behind one address); otherwise it is drawn at
//! random at start, and a restart or another daemon refuses the cursor
//! (the client starts again from the first page).
//!
//! Actor-bound keys may not filter or sort on a field that is `pii` in the
//! workflow (403 `E_FORBIDDEN`): whether they see it depends on each record,
//! and a filter or an order would reveal what the record hides.

use super::error::{ApiError, Json, Query};
use super::records::{version_of, view, RecordView};
use super::state::{AppState, Caller};
use crate::any::AnyBackend;
use crate::sql::query::{
    Column, Cond, Cursor, Filter, Key, Kind, Lit, Op, Query as RQuery, RecordQuery, Search,
    Visibility,
};
use axum::extract::State;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use utoipa::ToSchema;

const COLUMNS: [&str; 8] = [
    "id",
    "workflow",
    "state",
    "assignee",
    "revision",
    "created_at",
    "entered_at",
    "updated_at",
];
/// The largest `limit`.
pub const MAX_LIMIT: usize = 500;
/// The `limit` when none is given.
pub const DEFAULT_LIMIT: usize = 50;
/// At most this many field filters (`filter=` and `field.<name>=` together).
pub const MAX_FILTERS: usize = 20;
/// At most this many states (`state=a&state=b`, `state=a,b`, together).
pub const MAX_STATES: usize = 64;
/// The longest field name (in `field.<name>` and `sort`), in bytes.
pub const MAX_NAME: usize = 128;
/// The longest parameter value, in bytes (a cursor is well under it).
pub const MAX_VALUE: usize = 1024;

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<RecordView>,
    /// Whether another page follows (then `next` is set).
    pub has_more: bool,
    /// Pass as `after` for the next page (with the same filters and sort);
    /// null on the last page.
    pub next: Option<String>,
    /// With `count=true`: how many records match (all pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub count: Option<crate::sql::query::Count>,
}

/// The query of `GET /v1/records` as the OpenAPI document declares it
/// ([`parse`] reads it), with the bounds of the constants above.
pub struct ListQuery;

impl utoipa::IntoParams for ListQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn, ParameterStyle};
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
        use utoipa::openapi::Required;
        let text = |max: usize| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(max))
        };
        let param = |name: &str, description: &str, schema: Schema, example: serde_json::Value| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                // No example cursor: a made-up one is refused (400).
                .example((!example.is_null()).then_some(example))
        };
        let list = |items: ObjectBuilder, max: usize| {
            Schema::Array(
                ArrayBuilder::new()
                    .items(items)
                    .max_items(Some(max))
                    .build(),
            )
        };
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT as f64))
            .default(Some(serde_json::json!(DEFAULT_LIMIT)))
            .build();
        vec![
            param(
                "workflow",
                "Only records of this workflow (filter and sort field names are then checked against its versions).",
                text(MAX_VALUE).build().into(),
                serde_json::json!("aslm"),
            )
            .build(),
            param(
                "state",
                &format!("Only records in one of these states: `state=a&state=b` (the comma form `state=a,b` is accepted too); at most {MAX_STATES} states."),
                list(text(MAX_VALUE).min_length(Some(1)), MAX_STATES),
                serde_json::json!(["assigned", "appointment_set"]),
            )
            .style(Some(ParameterStyle::Form))
            .explode(Some(true))
            .build(),
            param(
                "assignee",
                "Only records assigned to this actor id; or `op:value` as for a string field (`assignee=empty`: unassigned, `assignee=in:a,b`).",
                text(MAX_VALUE).build().into(),
                serde_json::json!("dealer-rm"),
            )
            .build(),
            param(
                "filter",
                &format!("A field condition, `name:value` or `name:op:value` (split at the first `:`), repeated for several fields, all of which must hold: `filter=province:in:MI,TO&filter=attempts:0`. Typed by the field: `eq` (the default), `ne`, `in:a,b`; `lt`/`lte`/`gt`/`gte` on int, decimal, date, datetime (a date `YYYY-MM-DD` is midnight UTC for a datetime); `prefix` and case-insensitive `contains` on strings; `empty`, `not_empty` on every type. The name must be a field of a loaded version of the workflow in scope (`workflow`, else any workflow of the tenant); an unknown name, an operator the type does not take or a value that does not parse is 400 naming the parameter. At most {MAX_FILTERS} filters. (`field.<name>=[op:]value` is the same: docs/api.md.)"),
                list(text(MAX_VALUE).pattern(Some("^[^:]+:")), MAX_FILTERS),
                serde_json::json!(["province:in:RM,MI"]),
            )
            .style(Some(ParameterStyle::Form))
            .explode(Some(true))
            .build(),
            param(
                "q",
                &format!("Full-text search: records whose searched fields (`search` in the workflow; by default its string and text fields) have, for every word, a word starting with it (`ross mar` finds \"Rossi Mario\"), ignoring case and accents; words are letters and digits, anything else separates them, at most {} words; a value with digits is also one word without its spaces and `+-.()/` (`3906123` finds \"+39 06 1234567\"). `pii` fields are searched for admin keys only. Combines with every filter, `sort`, `count` and `after`.", crate::sql::query::Search::MAX_WORDS),
                text(MAX_VALUE).min_length(Some(1)).build().into(),
                serde_json::json!("ross mar"),
            )
            .build(),
            param(
                "sort",
                &format!("A column ({}) or a field name (known as for `filter`); `-` first: descending. Missing values sort first ascending, last descending; ties by id. Default `id`.", COLUMNS.join(", ")),
                text(MAX_NAME + 1).min_length(Some(1)).build().into(),
                serde_json::json!("-created_at"),
            )
            .build(),
            param(
                "limit",
                &format!("Page size, 1 to {MAX_LIMIT}."),
                limit.into(),
                serde_json::json!(20),
            )
            .build(),
            param(
                "after",
                "The `next` of the previous page: opaque, valid only with the same filters and sort (not `limit`) and the same API key, on a daemon with the same cursor key (`LEADFLOW_CURSOR_SECRET`); otherwise 400.",
                text(MAX_VALUE).build().into(),
                serde_json::Value::Null,
            )
            .build(),
            param(
                "count",
                &format!("`true`: the page also carries `count`, the number of records matching (all pages): exact when it reads at most {COUNT_BOUND} rows (and on PostgreSQL within 300 ms), else an estimate with `estimated: true`."),
                ObjectBuilder::new().schema_type(Type::Boolean).build().into(),
                serde_json::json!(true),
            )
            .build(),
            param(
                "format",
                "`json` (default: a page), or `csv` / `ndjson`: every matching row streamed (keyset inside; with `workflow`; not with `after` or `count`), columns `_id`, `_state`, `_assignee`, `_created_at`, `_updated_at`, `_redacted`, then the workflow's fields, PII redacted as for this caller (docs/import.md, Export over HTTP).",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["json", "csv", "ndjson"]))
                    .build()
                    .into(),
                serde_json::json!("csv"),
            )
            .build(),
            param(
                "created_at",
                "Creation instant condition, `op:value` with `eq`, `lt`, `lte`, `gt`, `gte` (RFC 3339, or YYYY-MM-DD for midnight UTC); twice for a range. `entered_at` (entered its state) and `updated_at` take the same.",
                text(MAX_VALUE).build().into(),
                serde_json::json!("gte:2026-01-01"),
            )
            .build(),
            param(
                "entered_at",
                "As `created_at`, on the instant the record entered its state.",
                text(MAX_VALUE).build().into(),
                serde_json::json!("lt:2026-12-01T00:00:00Z"),
            )
            .build(),
            param(
                "updated_at",
                "As `created_at`, on the instant of the record's last change.",
                text(MAX_VALUE).build().into(),
                serde_json::json!("gte:2026-01-01"),
            )
            .build(),
        ]
    }
}

pub(super) struct Params {
    pub workflow: Option<String>,
    pub states: Vec<String>,
    /// `assignee=` as written (an actor id, or `op:value`).
    pub assignee: Option<String>,
    /// Field conditions as written: (name, `value` or `op:value`).
    pub fields: Vec<(String, String)>,
    /// Column conditions as written (`created_at=gte:2026-01-01`).
    pub columns: Vec<(String, String)>,
    /// `q=` as written (full-text search).
    pub q: Option<String>,
    /// `None`: not given (`id`, or a view's own sort).
    pub sort: Option<String>,
    pub desc: bool,
    pub limit: usize,
    pub count: bool,
    /// The `after` cursor as sent; opened by [`open_cursor`].
    pub cursor: Option<String>,
}

/// A field name as given in `filter`, `field.<name>` or `sort`.
fn field_name(param: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "{param}: a field name is 1 to {MAX_NAME} bytes"
        )));
    }
    if name.chars().any(|c| c.is_control() || c == '"') {
        return Err(ApiError::bad_request(format!(
            "{param}: a field name cannot contain control characters or `\"`"
        )));
    }
    Ok(())
}

/// A field filter (`param` as written, for messages).
fn add_filter(p: &mut Params, param: &str, name: &str, value: String) -> Result<(), ApiError> {
    field_name(param, name)?;
    if p.fields.len() == MAX_FILTERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_FILTERS} field filters (filter= and field.<name>= together)"
        )));
    }
    p.fields.push((name.to_string(), value));
    Ok(())
}

/// A parameter that may be given once.
fn once(given: &mut Vec<&'static str>, name: &'static str) -> Result<(), ApiError> {
    if given.contains(&name) {
        return Err(ApiError::bad_request(format!(
            "`{name}` is given twice (it takes one value)"
        )));
    }
    given.push(name);
    Ok(())
}

/// The query in order (repeated names are kept: `state`, `filter`).
pub(super) fn parse(q: Vec<(String, String)>) -> Result<Params, ApiError> {
    let mut p = Params {
        workflow: None,
        states: Vec::new(),
        assignee: None,
        fields: Vec::new(),
        columns: Vec::new(),
        q: None,
        sort: None,
        desc: false,
        limit: DEFAULT_LIMIT,
        count: false,
        cursor: None,
    };
    let mut given = Vec::new();
    for (k, v) in q {
        // Short names first: an unknown or overlong name is not echoed whole.
        if k.len() > MAX_NAME + "field.".len() || k.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "parameter names are at most {} bytes, without control characters",
                MAX_NAME + "field.".len()
            )));
        }
        if v.len() > MAX_VALUE {
            return Err(ApiError::bad_request(format!(
                "`{k}`: a parameter value is at most {MAX_VALUE} bytes"
            )));
        }
        if v.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "`{k}`: a parameter value cannot contain a NUL character"
            )));
        }
        match k.as_str() {
            "workflow" => {
                once(&mut given, "workflow")?;
                p.workflow = Some(v)
            }
            "state" => {
                p.states.extend(v.split(',').filter(|s| !s.is_empty()).map(String::from));
                if p.states.len() > MAX_STATES {
                    return Err(ApiError::bad_request(format!("state: at most {MAX_STATES} states")));
                }
            }
            "assignee" => {
                once(&mut given, "assignee")?;
                p.assignee = Some(v)
            }
            "filter" => match v.split_once(':') {
                Some((name, value)) => add_filter(&mut p, "filter", name, value.to_string())?,
                None => {
                    return Err(ApiError::bad_request(
                        "filter: write `name:value`, e.g. filter=province:RM",
                    ))
                }
            },
            "q" => {
                once(&mut given, "q")?;
                p.q = Some(v)
            }
            "sort" => {
                once(&mut given, "sort")?;
                let (desc, name) = match v.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, v.trim_start_matches('+')),
                };
                if name.is_empty() {
                    return Err(ApiError::bad_request("sort: give a field or column name, `-` first for descending"));
                }
                field_name("sort", name)?;
                p.sort = Some(name.to_string());
                p.desc = desc;
            }
            "limit" => {
                once(&mut given, "limit")?;
                p.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| ApiError::bad_request(format!("limit must be 1..={MAX_LIMIT}")))?
            }
            "after" => {
                once(&mut given, "after")?;
                p.cursor = Some(v)
            }
            "count" => {
                once(&mut given, "count")?;
                p.count = match v.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::bad_request("count: true or false")),
                }
            }
            c @ ("created_at" | "entered_at" | "updated_at") => {
                if p.columns.iter().filter(|(n, _)| n == c).count() == 2 {
                    return Err(ApiError::bad_request(format!(
                        "`{c}` is given more than twice (a range takes two: gte:..&{c}=lt:..)"
                    )));
                }
                p.columns.push((c.to_string(), v))
            }
            other => match other.strip_prefix("field.") {
                Some(f) if !f.is_empty() => add_filter(&mut p, other, f, v)?,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter `{other}` (workflow, state, assignee, created_at, entered_at, updated_at, filter, field.<name>, q, sort, limit, after, count)"
                    )))
                }
            },
        }
    }
    // One query however its parameters are ordered or spelled: the cursor
    // binds this form.
    p.states.sort();
    p.states.dedup();
    p.fields.sort();
    p.columns.sort();
    Ok(p)
}

/// Actor-bound callers may not filter or sort on a field that is `pii` in
/// the workflow listed (any workflow of the tenant if none is named), in
/// any loaded version: whether they see it depends on each record.
pub(super) fn refuse_pii(
    caller: &Caller,
    versions: &crate::apply::Versions,
    p: &Params,
) -> Result<(), ApiError> {
    let sort = p.sort.as_deref().filter(|s| !COLUMNS.contains(s));
    let names: Vec<&str> = p
        .fields
        .iter()
        .map(|(f, _)| f.as_str())
        .chain(sort)
        .collect();
    refuse_pii_names(caller, versions, p.workflow.as_deref(), &names)
}

/// [`refuse_pii`] for names however they were given.
pub(super) fn refuse_pii_names(
    caller: &Caller,
    versions: &crate::apply::Versions,
    workflow: Option<&str>,
    names: &[&str],
) -> Result<(), ApiError> {
    if caller.admin {
        return Ok(());
    }
    let wfs = versions.all();
    for name in names {
        let pii = wfs.iter().find(|wf| {
            workflow.is_none_or(|w| w == wf.id)
                && wf.fields.iter().any(|f| f.pii && f.name == *name)
        });
        if let Some(wf) = pii {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "E_FORBIDDEN",
                format!(
                    "`{name}` is a PII field of workflow `{}`: only admin keys may filter or sort on it",
                    wf.id
                ),
            ));
        }
    }
    Ok(())
}

/// The environment variable holding the secret cursor keys derive from, so
/// that several daemons behind one address accept each other's cursors.
pub const CURSOR_SECRET_ENV: &str = "LEADFLOW_CURSOR_SECRET";

/// The daemon's cursor key: derived from [`CURSOR_SECRET_ENV`] if it is set,
/// else drawn at random when the first cursor is sealed or opened.
pub(super) fn cursor_key() -> Result<&'static LessSafeKey, ApiError> {
    static KEY: std::sync::OnceLock<Option<LessSafeKey>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| derive_key(std::env::var(CURSOR_SECRET_ENV).ok().as_deref()))
        .as_ref()
        .ok_or_else(|| {
            tracing::error!("no random source for the cursor key");
            ApiError::internal()
        })
}

fn derive_key(secret: Option<&str>) -> Option<LessSafeKey> {
    use hmac::{Hmac, Mac};
    let mut k = [0u8; 32];
    match secret.filter(|s| !s.is_empty()) {
        Some(secret) => {
            // HMAC as a key-derivation function: the secret never serves
            // as a key itself, and this key serves nothing else.
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
            mac.update(b"leadflow list cursor v1");
            k.copy_from_slice(&mac.finalize().into_bytes());
        }
        None => SystemRandom::new().fill(&mut k).ok()?,
    }
    UnboundKey::new(&CHACHA20_POLY1305, &k)
        .ok()
        .map(LessSafeKey::new)
}

/// What a cursor is bound to: who asked, and the query but for `limit`.
pub(super) fn binding(tenant: &str, caller: &Caller, p: &Params) -> Vec<u8> {
    serde_json::to_vec(&(
        tenant,
        &caller.key,
        &p.workflow,
        &p.states,
        &p.assignee,
        &p.fields,
        &p.columns,
        &p.q,
        &p.sort,
        p.desc,
    ))
    .unwrap_or_default()
}

pub(super) fn seal_cursor(
    k: &LessSafeKey,
    aad: &[u8],
    key: &serde_json::Value,
    id: i64,
) -> Result<String, ApiError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ApiError::internal())?;
    let mut data = serde_json::to_vec(&(key, id)).map_err(|_| ApiError::internal())?;
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut data,
    )
    .map_err(|_| ApiError::internal())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
}

pub(super) fn open_cursor(
    k: &LessSafeKey,
    aad: &[u8],
    cursor: &str,
) -> Result<(serde_json::Value, i64), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "after: not a `next` cursor of this query (a cursor is valid with the same filters and sort and the same API key, on a daemon with the same cursor key; start again from the first page)",
        )
    };
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad())?;
    if bytes.len() < NONCE_LEN {
        return Err(bad());
    }
    let mut data = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| bad())?;
    let plain = k
        .open_in_place(nonce, Aad::from(aad), &mut data)
        .map_err(|_| bad())?;
    serde_json::from_slice(plain).map_err(|_| bad())
}

/// A 400 naming the parameter and the field it is about.
fn bad_param(param: &str, field: &str, msg: impl std::fmt::Display) -> ApiError {
    let mut e = ApiError::bad_request(format!("{param}: {msg}"));
    e.body.field = Some(field.to_string());
    e
}

/// The kind a field compares as, across the loaded versions of the
/// workflows in scope (declared by some, else 400; one kind, else 400).
fn field_kind(
    versions: &crate::apply::Versions,
    workflow: Option<&str>,
    param: &str,
    name: &str,
) -> Result<Kind, ApiError> {
    let mut kinds: Vec<(Kind, String)> = Vec::new();
    for wf in versions.all() {
        if workflow.is_some_and(|w| w != wf.id) {
            continue;
        }
        if let Some(f) = wf.field(name) {
            let k = Kind::of(wf.fields[f].ty);
            if !kinds.iter().any(|(x, _)| *x == k) {
                kinds.push((k, wf.id.clone()));
            }
        }
    }
    match kinds.as_slice() {
        [] => {
            let scope = match workflow {
                Some(w) => format!("workflow `{w}`"),
                None => "any workflow of the tenant".to_string(),
            };
            Err(bad_param(
                param,
                name,
                format!("unknown field `{name}` (no loaded version of {scope} declares it)"),
            ))
        }
        [(k, _)] => Ok(*k),
        many => Err(bad_param(
            param,
            name,
            format!(
                "field `{name}` has different types in workflows {}: name one with `workflow=`",
                many.iter()
                    .map(|(k, w)| format!("`{w}` ({})", k.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

const OPERATORS: [&str; 9] = [
    "eq", "ne", "in", "lt", "lte", "gt", "gte", "prefix", "contains",
];

/// `value`, `op:value`, `empty` or `not_empty` for a key of `kind`.
pub(super) fn parse_op(param: &str, name: &str, kind: Kind, spec: &str) -> Result<Op, ApiError> {
    let supported = |op: &str| -> Result<(), ApiError> {
        match kind.ops().contains(&op) {
            true => Ok(()),
            false => Err(bad_param(
                param,
                name,
                format!(
                    "operator `{op}` does not apply to a {} value (it takes {})",
                    kind.name(),
                    kind.ops().join(", ")
                ),
            )),
        }
    };
    let lit = |v: &str| Lit::parse(kind, v).map_err(|m| bad_param(param, name, m));
    match spec {
        "empty" => return supported("empty").map(|_| Op::Empty),
        "not_empty" => return supported("not_empty").map(|_| Op::NotEmpty),
        _ => {}
    }
    let (op, value) = match spec.split_once(':') {
        Some((op, v))
            if !op.is_empty() && op.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            if !OPERATORS.contains(&op) {
                return Err(bad_param(
                    param,
                    name,
                    format!(
                        "unknown operator `{op}` ({}, empty, not_empty; write eq:<value> for a value that holds `:`)",
                        OPERATORS.join(", ")
                    ),
                ));
            }
            (op, v)
        }
        _ => ("eq", spec),
    };
    supported(op)?;
    Ok(match op {
        "eq" => Op::In(vec![lit(value)?]),
        "ne" => Op::Ne(lit(value)?),
        "in" => {
            let vs: Vec<Lit> = value.split(',').map(lit).collect::<Result<_, _>>()?;
            if vs.len() > MAX_STATES {
                return Err(bad_param(
                    param,
                    name,
                    format!("in: at most {MAX_STATES} values"),
                ));
            }
            Op::In(vs)
        }
        "lt" => Op::Lt(lit(value)?),
        "lte" => Op::Lte(lit(value)?),
        "gt" => Op::Gt(lit(value)?),
        "gte" => Op::Gte(lit(value)?),
        "prefix" | "contains" if value.is_empty() => {
            return Err(bad_param(
                param,
                name,
                format!("{op}: give a non-empty string"),
            ))
        }
        "prefix" => Op::Prefix(value.to_string()),
        _ => Op::Contains(value.to_string()),
    })
}

/// The caller's conditions, typed (`field.<name>`/`filter`, `assignee`,
/// the instant columns).
pub(super) fn typed_filters(
    versions: &crate::apply::Versions,
    workflow: Option<&str>,
    assignee: Option<&str>,
    fields: &[(String, String)],
    columns: &[(String, String)],
) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    for (name, spec) in fields {
        let param = format!("field.{name}");
        let kind = field_kind(versions, workflow, &param, name)?;
        let op = parse_op(&param, name, kind, spec)?;
        out.push(Filter::Cond(Cond {
            key: Key::Field {
                name: name.clone(),
                kind,
            },
            op,
        }));
    }
    if let Some(a) = assignee {
        let op = parse_op("assignee", "assignee", Kind::Text, a)?;
        out.push(Filter::Cond(Cond {
            key: Key::Column(Column::Assignee),
            op,
        }));
    }
    for (name, spec) in columns {
        let Some(c) = Column::parse(name) else {
            continue;
        };
        let op = parse_op(name, name, c.kind(), spec)?;
        out.push(Filter::Cond(Cond {
            key: Key::Column(c),
            op,
        }));
    }
    Ok(out)
}

/// The full-text search of `q=` for `caller`: `pii` fields only for admin
/// keys (an actor sees a record's personal data only where it is revealed
/// to it, and a match on a hidden value would tell what the value holds).
pub(super) fn search(caller: &Caller, q: Option<&str>) -> Result<Option<Search>, ApiError> {
    let Some(q) = q else {
        return Ok(None);
    };
    match Search::parse(q, caller.admin) {
        Ok(Some(s)) => Ok(Some(s)),
        Ok(None) => Err(ApiError::bad_request(
            "q: give at least one word (letters or digits)",
        )),
        Err(e) => Err(ApiError::bad_request(format!("q: {e}"))),
    }
}

/// The sort key a `sort` name stands for.
pub(super) fn sort_key(
    versions: &crate::apply::Versions,
    workflow: Option<&str>,
    name: &str,
) -> Result<Key, ApiError> {
    if let Some(c) = Column::parse(name) {
        return Ok(Key::Column(c));
    }
    let kind = field_kind(versions, workflow, "sort", name)?;
    if kind == Kind::List {
        return Err(bad_param(
            "sort",
            name,
            format!("`{name}` is a list: lists do not sort"),
        ));
    }
    Ok(Key::Field {
        name: name.to_string(),
        kind,
    })
}

pub(super) use crate::sql::query::only_open;

/// What an actor-bound caller may see (`None` for an admin key): its own
/// records, the pools of its zones, and what the organisation gives it
/// (`visible_to`, the people it manages, its areas).
pub(super) fn visibility(
    t: &super::state::Tenant,
    caller: &Caller,
    pools: &[crate::config::PoolConfig],
) -> Option<Visibility> {
    let wfs = t.backend.versions().all_current();
    (!caller.admin).then(|| {
        Visibility::of(
            wfs.iter().map(|w| &**w),
            &caller.directory,
            &caller.actor,
            pools,
        )
    })
}

/// Counts read at most this many rows exactly; past it the count is the
/// planner's estimate (PostgreSQL) or this bound (SQLite), flagged.
pub const COUNT_BOUND: i64 = 200_000;

/// Run `q` (its cursor opened from `after` under `aad`) and shape the page
/// for `caller`: rows redacted as `/v1/records/{id}` would show them.
pub(super) async fn page(
    t: &super::state::Tenant,
    caller: &Caller,
    mut q: RQuery,
    after: Option<&str>,
    aad: &[u8],
    with_count: bool,
) -> Result<Page, ApiError> {
    if matches!(t.backend, AnyBackend::Mem(_)) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "E_UNSUPPORTED",
            "listing needs a SQL store (sqlite: or postgres://)",
        ));
    }
    let count = match with_count {
        true => Some(t.backend.count(&q, COUNT_BOUND).await?),
        false => None,
    };
    if let Some(c) = after {
        let (k, id) = open_cursor(cursor_key()?, aad, c)?;
        let (seg, key): (u8, serde_json::Value) = serde_json::from_value(k)
            .map_err(|_| ApiError::bad_request("after: not a `next` cursor of this query"))?;
        q.after = Some(Cursor { seg, key, id });
    }
    let limit = q.limit;
    let mut rows = t.backend.query(&q).await?;
    let has_more = rows.len() > limit;
    let next = if has_more {
        rows.truncate(limit);
        match rows.last() {
            Some(h) => Some(seal_cursor(
                cursor_key()?,
                aad,
                &serde_json::json!([h.cursor.seg, h.cursor.key]),
                h.cursor.id,
            )?),
            None => None,
        }
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|h| {
            let wf = version_of(t, &h.record);
            view(caller, wf.as_deref(), h.record)
        })
        .collect();
    Ok(Page {
        items,
        has_more,
        next,
        count,
    })
}

/// List the records the caller may see.
///
/// Filtered (`workflow`, `state`, `assignee`, the instant columns, typed
/// field conditions `field.<name>=[op:]value`, full-text search `q`),
/// sorted (`sort`) and paged by
/// keyset (`limit`, `after`); `count=true` adds the number of matches.
/// `format=csv` or `format=ndjson` (with `workflow`) streams every
/// matching row instead, as `leadflow export` writes them.
/// Unknown parameters, operators a type does not take, values that do not
/// parse, and filter or sort names that no loaded version of the
/// workflow(s) in scope declares, are 400.
#[utoipa::path(get, path = "/v1/records", tag = "records", operation_id = "records_list",
    params(ListQuery),
    responses((status = 200, body = Page, description = "a page of records, in the order asked; with `format=csv` (text/csv) or `format=ndjson` (application/x-ndjson), every matching row, streamed: `_id,_state,_assignee,_created_at,_updated_at,_redacted`, then the workflow's fields, redacted as the caller sees them"),
              (status = 400, body = super::error::ErrorBody, description = "E_BAD_REQUEST: an unknown parameter, or one that takes one value given twice; an unknown filter or sort field (`field` names it), an operator its type does not take, a value that does not parse as its type; more than 20 filters or 64 states; a field name over 128 bytes or with control characters or `\"`; a value over 1024 bytes or with NUL; `limit` outside 1..=500; a cursor altered or from another query; `q` without a word or with more than 16"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: an actor-bound key filtering or sorting on a `pii` field")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(mut q): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let t = s.tenant(&caller);
    let format = super::export::take_format(&mut q)?;
    let p = parse(q)?;
    let versions = t.backend.versions();
    let wf = p.workflow.as_deref();
    refuse_pii(&caller, versions, &p)?;
    let filters = typed_filters(versions, wf, p.assignee.as_deref(), &p.fields, &p.columns)?;
    let sort = sort_key(versions, wf, p.sort.as_deref().unwrap_or("id"))?;
    let aad = binding(&t.id, &caller, &p);
    let query = RQuery {
        tenant: t.id.clone(),
        workflow: p.workflow.clone(),
        open_only: only_open(versions, wf, &p.states),
        states: p.states.clone(),
        filters,
        search: search(&caller, p.q.as_deref())?,
        visible_to: visibility(t, &caller, t.pools()),
        sort,
        desc: p.desc,
        limit: p.limit,
        after: None,
    };
    if let Some(format) = format {
        super::export::refuse_paging(p.cursor.is_some(), p.count)?;
        let wf = match &p.workflow {
            Some(w) => versions.current(w)?,
            None => return Err(ApiError::bad_request(
                "an export (format=csv or ndjson) names its `workflow`: the columns are its fields",
            )),
        };
        let cols = super::export::Columns::Records(wf);
        return Ok(super::export::stream(
            t.clone(),
            caller,
            query,
            cols,
            format,
        ));
    }
    page(t, &caller, query, p.cursor.as_deref(), &aad, p.count)
        .await
        .map(|p| Json(p).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_open_only_under_their_key_and_binding() {
        let v = serde_json::json!("034114065515");
        let a = derive_key(Some("shared secret")).unwrap();
        let b = derive_key(Some("shared secret")).unwrap();
        let c = seal_cursor(&a, b"query", &v, 7).unwrap();
        assert!(!c.contains("0341"));
        // Another daemon with the same secret opens it.
        assert_eq!(open_cursor(&b, b"query", &c).unwrap(), (v.clone(), 7));
        // Another query, another secret, random keys: refused.
        assert!(open_cursor(&b, b"other query", &c).is_err());
        let other = derive_key(Some("another secret")).unwrap();
        assert!(open_cursor(&other, b"query", &c).is_err());
        let (r1, r2) = (derive_key(None).unwrap(), derive_key(Some("")).unwrap());
        let c = seal_cursor(&r1, b"query", &v, 7).unwrap();
        assert!(open_cursor(&r1, b"query", &c).is_ok());
        assert!(open_cursor(&r2, b"query", &c).is_err());
        for junk in ["", "AAAA", "not base64!", &c[..c.len() - 2]] {
            let e = open_cursor(&r1, b"query", junk).unwrap_err();
            assert_eq!(e.body.code, "E_BAD_REQUEST");
        }
    }
}
