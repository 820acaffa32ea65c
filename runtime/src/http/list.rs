//! `GET /v1/records`: filters (workflow, states, assignee, any field:
//! `filter=name:value`, or the alias `field.<name>=value`), sort by any
//! field or column, keyset pagination. Filter and sort field names must be
//! declared by a loaded version of the workflow(s) in scope (else 400), as
//! unknown parameters are refused. One SQL query per page in
//! either dialect; the caller's visibility (own records, pools) is part of
//! the WHERE clause, so pages are never short because of hidden rows.
//!
//! Keyset: the cursor is the last row's (sort key, id), read back from the
//! database as JSON so the next page binds exactly what was compared.
//! Missing values sort first ascending, last descending.
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
use crate::backend::StoredRecord;
use crate::sql::{db, instant, json_err};
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
                "Only records assigned to this actor id.",
                text(MAX_VALUE).build().into(),
                serde_json::json!("dealer-rm"),
            )
            .build(),
            param(
                "filter",
                &format!("Field equality, `name:value` (split at the first `:`), repeated for several fields, all of which must hold: `filter=province:RM&filter=attempts:0`. The value matches the field's JSON value as a string, or as the number or boolean it spells; a date-time also matches the same instant written otherwise. The name must be a field of a loaded version of the workflow in scope (`workflow`, else any workflow of the tenant): an unknown name is 400. At most {MAX_FILTERS} filters. (`field.<name>=value` is accepted as an alias: docs/api.md.)"),
                list(text(MAX_VALUE).pattern(Some("^[^:]+:")), MAX_FILTERS),
                serde_json::json!(["province:RM"]),
            )
            .style(Some(ParameterStyle::Form))
            .explode(Some(true))
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
        ]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Pg,
    Sqlite,
}

#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
    Float(f64),
    Json(serde_json::Value),
}

struct Sql {
    d: Dialect,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        match self.d {
            Dialect::Pg => match self.args.last() {
                Some(Arg::Json(_)) => format!("${}::jsonb", self.args.len()),
                _ => format!("${}", self.args.len()),
            },
            Dialect::Sqlite => format!("?{}", self.args.len()),
        }
    }
    /// A field's value as comparable JSON (PG jsonb) or SQL value (SQLite).
    fn field_key(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => format!("(fields -> {})", self.arg(Arg::Text(name.into()))),
            Dialect::Sqlite => format!("(fields ->> {})", self.arg(Arg::Text(json_path(name)))),
        }
    }
    /// A field's value when it is a JSON string, else NULL: zone
    /// visibility matches strings only, as `Tenant::visible` does (a
    /// number 5 must not match the zone "5").
    fn field_string(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => {
                let k = self.arg(Arg::Text(name.into()));
                format!(
                    "(CASE WHEN jsonb_typeof(fields -> {k}) = 'string' THEN fields ->> {k} END)"
                )
            }
            Dialect::Sqlite => {
                let k = self.arg(Arg::Text(json_path(name)));
                format!("(CASE WHEN json_type(fields, {k}) = 'text' THEN fields ->> {k} END)")
            }
        }
    }
    /// A field's value as JSON for equality with a JSON literal.
    fn field_json(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => format!("(fields -> {})", self.arg(Arg::Text(name.into()))),
            Dialect::Sqlite => format!("(fields -> {})", self.arg(Arg::Text(json_path(name)))),
        }
    }
    fn json_literal(&mut self, v: serde_json::Value) -> String {
        match self.d {
            Dialect::Pg => self.arg(Arg::Json(v)),
            // `->` yields minified JSON text in SQLite.
            Dialect::Sqlite => self.arg(Arg::Text(v.to_string())),
        }
    }
    /// Bind a sort-key value read back from a cursor.
    fn key_value(&mut self, v: &serde_json::Value) -> String {
        match self.d {
            Dialect::Pg => self.arg(Arg::Json(v.clone())),
            Dialect::Sqlite => {
                let a = match v {
                    serde_json::Value::Number(n) => match n.as_i64() {
                        Some(i) => Arg::Int(i),
                        None => Arg::Float(n.as_f64().unwrap_or_default()),
                    },
                    serde_json::Value::String(s) => Arg::Text(s.clone()),
                    serde_json::Value::Bool(b) => Arg::Int(i64::from(*b)),
                    other => Arg::Text(other.to_string()),
                };
                self.arg(a)
            }
        }
    }
    fn in_list(&mut self, items: &[String]) -> String {
        let ph: Vec<String> = items
            .iter()
            .map(|s| self.arg(Arg::Text(s.clone())))
            .collect();
        format!("({})", ph.join(", "))
    }
}

fn json_path(name: &str) -> String {
    format!("$.\"{}\"", name.replace('"', ""))
}

struct Params {
    workflow: Option<String>,
    states: Vec<String>,
    assignee: Option<String>,
    fields: Vec<(String, String)>,
    sort: String,
    desc: bool,
    limit: usize,
    /// The `after` cursor as sent; opened by [`open_cursor`].
    cursor: Option<String>,
    after: Option<(serde_json::Value, i64)>,
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
fn parse(q: Vec<(String, String)>) -> Result<Params, ApiError> {
    let mut p = Params {
        workflow: None,
        states: Vec::new(),
        assignee: None,
        fields: Vec::new(),
        sort: "id".into(),
        desc: false,
        limit: DEFAULT_LIMIT,
        cursor: None,
        after: None,
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
                p.sort = name.to_string();
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
            other => match other.strip_prefix("field.") {
                Some(f) if !f.is_empty() => add_filter(&mut p, other, f, v)?,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter `{other}` (workflow, state, assignee, filter, sort, limit, after)"
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
    Ok(p)
}

/// Filter and sort field names must be declared by some loaded version of
/// the workflow in scope (`workflow`, else any workflow of the tenant):
/// 400 naming the field, rather than an empty page or an arbitrary order.
fn refuse_unknown(versions: &crate::apply::Versions, p: &Params) -> Result<(), ApiError> {
    let wfs: Vec<_> = versions
        .all()
        .into_iter()
        .filter(|wf| p.workflow.as_ref().is_none_or(|w| *w == wf.id))
        .collect();
    let sort = (!COLUMNS.contains(&p.sort.as_str())).then_some(("sort", p.sort.as_str()));
    let names = p.fields.iter().map(|(f, _)| ("filter", f.as_str()));
    for (param, name) in names.chain(sort) {
        if wfs.iter().any(|wf| wf.field(name).is_some()) {
            continue;
        }
        let scope = match &p.workflow {
            Some(w) => format!("workflow `{w}`"),
            None => "any workflow of the tenant".to_string(),
        };
        let mut e = ApiError::bad_request(format!(
            "{param}: unknown field `{name}` (no loaded version of {scope} declares it)"
        ));
        e.body.field = Some(name.to_string());
        return Err(e);
    }
    Ok(())
}

/// Actor-bound callers may not filter or sort on a field that is `pii` in
/// the workflow listed (any workflow of the tenant if none is named), in
/// any loaded version: whether they see it depends on each record.
fn refuse_pii(
    caller: &Caller,
    versions: &crate::apply::Versions,
    p: &Params,
) -> Result<(), ApiError> {
    if caller.admin {
        return Ok(());
    }
    let sort = (!COLUMNS.contains(&p.sort.as_str())).then_some(p.sort.as_str());
    let names = p.fields.iter().map(|(f, _)| f.as_str()).chain(sort);
    let wfs = versions.all();
    for name in names {
        let pii = wfs.iter().find(|wf| {
            p.workflow.as_ref().is_none_or(|w| *w == wf.id)
                && wf.fields.iter().any(|f| f.pii && f.name == name)
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
fn binding(tenant: &str, caller: &Caller, p: &Params) -> Vec<u8> {
    serde_json::to_vec(&(
        tenant,
        &caller.key,
        &p.workflow,
        &p.states,
        &p.assignee,
        &p.fields,
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

/// The JSON values a query-string value may stand for: the string itself,
/// and the number or boolean it spells.
fn candidates(v: &str) -> Vec<serde_json::Value> {
    let mut out = vec![serde_json::Value::String(v.to_string())];
    if let Ok(j @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) =
        serde_json::from_str::<serde_json::Value>(v)
    {
        out.push(j);
    }
    // An instant matches as the engine stores it, however it is written
    // (the API answers microseconds, the store may hold fewer digits).
    if let Some(t) = leadflow_engine::value::parse_instant(v) {
        let stored = leadflow_engine::Value::DateTime(t).to_json();
        if !out.contains(&stored) {
            out.push(stored);
        }
    }
    out
}

fn build(
    d: Dialect,
    tenant: &str,
    caller: &Caller,
    pools: &[crate::config::PoolConfig],
    reach: &crate::org::Reach,
    p: &Params,
) -> Sql {
    let mut s = Sql {
        d,
        text: String::new(),
        args: Vec::new(),
    };
    let key = if COLUMNS.contains(&p.sort.as_str()) {
        match d {
            Dialect::Pg => format!("to_jsonb({})", p.sort),
            Dialect::Sqlite => p.sort.clone(),
        }
    } else {
        s.field_key(&p.sort)
    };
    let mut wh = vec![format!("tenant_id = {}", s.arg(Arg::Text(tenant.into())))];
    if let Some(w) = &p.workflow {
        wh.push(format!("workflow = {}", s.arg(Arg::Text(w.clone()))));
    }
    if !p.states.is_empty() {
        wh.push(format!("state IN {}", s.in_list(&p.states)));
    }
    if let Some(a) = &p.assignee {
        wh.push(format!("assignee = {}", s.arg(Arg::Text(a.clone()))));
    }
    for (f, v) in &p.fields {
        let alts: Vec<String> = candidates(v)
            .into_iter()
            .map(|c| {
                let k = s.field_json(f);
                let l = s.json_literal(c);
                format!("{k} = {l}")
            })
            .collect();
        wh.push(format!("({})", alts.join(" OR ")));
    }
    if !caller.admin {
        let mut vis = vec![format!(
            "assignee = {}",
            s.arg(Arg::Text(caller.actor.id.clone()))
        )];
        if !caller.actor.zones.is_empty() {
            for pool in pools {
                let w = s.arg(Arg::Text(pool.workflow.clone()));
                let st = s.in_list(&pool.states);
                let z = s.field_string(&pool.zone_field);
                let zones = s.in_list(&caller.actor.zones);
                if pool.followed_by(&caller.actor) {
                    vis.push(format!("(workflow = {w} AND {z} IN {zones})"));
                } else {
                    vis.push(format!(
                        "(assignee IS NULL AND workflow = {w} AND state IN {st} AND {z} IN {zones})"
                    ));
                }
            }
        }
        // The organisation (`visible_to`, `reveal_to`): every record of a
        // workflow naming the caller's role, the records of the people it
        // manages, the records of its areas.
        if !reach.all.is_empty() {
            vis.push(format!("workflow IN {}", s.in_list(&reach.all)));
        }
        if !reach.managed.is_empty() && !reach.reports.is_empty() {
            let w = s.in_list(&reach.managed);
            let who = s.in_list(&reach.reports);
            vis.push(format!("(workflow IN {w} AND assignee IN {who})"));
        }
        for (wf, field) in &reach.areas {
            let w = s.arg(Arg::Text(wf.clone()));
            let z = s.field_string(field);
            let zones = s.in_list(&reach.zones);
            vis.push(format!("(workflow = {w} AND {z} IN {zones})"));
        }
        wh.push(format!("({})", vis.join(" OR ")));
    }
    if let Some((v, id)) = &p.after {
        let idp = s.arg(Arg::Int(*id));
        let cond = match (v.is_null(), p.desc) {
            (true, false) => format!("(({key} IS NULL AND id > {idp}) OR {key} IS NOT NULL)"),
            (true, true) => format!("({key} IS NULL AND id < {idp})"),
            (false, false) => {
                let vp = s.key_value(v);
                format!("({key} > {vp} OR ({key} = {vp} AND id > {idp}))")
            }
            (false, true) => {
                let vp = s.key_value(v);
                format!("({key} < {vp} OR ({key} = {vp} AND id < {idp}) OR {key} IS NULL)")
            }
        };
        wh.push(cond);
    }
    let order = if p.desc {
        format!("{key} DESC NULLS LAST, id DESC")
    } else {
        format!("{key} ASC NULLS FIRST, id ASC")
    };
    let key_out = match d {
        Dialect::Pg => key.clone(),
        Dialect::Sqlite => format!("json_quote({key})"),
    };
    s.text = format!(
        "SELECT id, workflow, version, state, fields, assignee, revision, created_at, entered_at, updated_at, {key_out} AS k
         FROM records WHERE {} ORDER BY {order} LIMIT {}",
        wh.join(" AND "),
        p.limit + 1
    );
    s
}

type PgRow = (
    i64,
    String,
    String,
    String,
    sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    Option<String>,
    i64,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    Option<serde_json::Value>,
);
type LiteRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    String,
);

async fn fetch(
    b: &AnyBackend,
    tenant: &str,
    caller: &Caller,
    pools: &[crate::config::PoolConfig],
    reach: &crate::org::Reach,
    p: &Params,
) -> Result<Vec<(StoredRecord, serde_json::Value)>, ApiError> {
    let storage = |e: crate::backend::Error| ApiError::from(e);
    match b {
        AnyBackend::Pg(pg) => {
            let s = build(Dialect::Pg, tenant, caller, pools, reach, p);
            let mut q = sqlx::query_as::<_, PgRow>(&s.text);
            for a in &s.args {
                q = match a {
                    Arg::Text(v) => q.bind(v),
                    Arg::Int(i) => q.bind(i),
                    Arg::Float(f) => q.bind(f),
                    Arg::Json(j) => q.bind(sqlx::types::Json(j)),
                };
            }
            let mut tx = pg.tx().await?;
            let rows = q.fetch_all(&mut *tx).await.map_err(|e| storage(db(e)))?;
            tx.commit().await.map_err(|e| storage(db(e)))?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    (
                        StoredRecord {
                            id: r.0,
                            workflow: r.1,
                            version: r.2,
                            state: r.3,
                            fields: r.4 .0,
                            assignee: r.5,
                            revision: r.6,
                            created_at: r.7,
                            entered_at: r.8,
                            updated_at: r.9,
                        },
                        r.10.unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect())
        }
        AnyBackend::Sqlite(lite) => {
            let s = build(Dialect::Sqlite, tenant, caller, pools, reach, p);
            let mut q = sqlx::query_as::<_, LiteRow>(&s.text);
            for a in &s.args {
                q = match a {
                    Arg::Text(v) => q.bind(v),
                    Arg::Int(i) => q.bind(i),
                    Arg::Float(f) => q.bind(f),
                    Arg::Json(j) => q.bind(j.to_string()),
                };
            }
            let rows = q
                .fetch_all(lite.read_pool())
                .await
                .map_err(|e| storage(db(e)))?;
            rows.into_iter()
                .map(|r| {
                    Ok((
                        StoredRecord {
                            id: r.0,
                            workflow: r.1,
                            version: r.2,
                            state: r.3,
                            fields: serde_json::from_str(&r.4).map_err(|e| storage(json_err(e)))?,
                            assignee: r.5,
                            revision: r.6,
                            created_at: instant(r.7),
                            entered_at: instant(r.8),
                            updated_at: instant(r.9),
                        },
                        serde_json::from_str(&r.10).unwrap_or(serde_json::Value::Null),
                    ))
                })
                .collect()
        }
        AnyBackend::Mem(_) => Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "E_UNSUPPORTED",
            "listing needs a SQL store (sqlite: or postgres://)",
        )),
    }
}

/// List the records the caller may see.
///
/// Filtered (`workflow`, `state`, `assignee`, `filter`), sorted (`sort`)
/// and paged by keyset (`limit`, `after`). Unknown parameters, and filter
/// or sort names that no loaded version of the workflow(s) in scope
/// declares, are 400.
#[utoipa::path(get, path = "/v1/records", tag = "records", operation_id = "records_list",
    params(ListQuery),
    responses((status = 200, body = Page, description = "a page of records, in the order asked"),
              (status = 400, body = super::error::ErrorBody, description = "E_BAD_REQUEST: an unknown parameter, or one that takes one value given twice; an unknown filter or sort field (`field` names it); more than 20 filters or 64 states; a field name over 128 bytes or with control characters or `\"`; a value over 1024 bytes or with NUL; `limit` outside 1..=500; a cursor altered or from another query"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: an actor-bound key filtering or sorting on a `pii` field")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Page>, ApiError> {
    let t = s.tenant(&caller);
    let mut p = parse(q)?;
    refuse_unknown(t.backend.versions(), &p)?;
    refuse_pii(&caller, t.backend.versions(), &p)?;
    let aad = binding(&t.id, &caller, &p);
    if let Some(c) = &p.cursor {
        p.after = Some(open_cursor(cursor_key()?, &aad, c)?);
    }
    let reach = crate::org::Reach::of(
        t.backend.versions().all_current().iter().map(|w| &**w),
        &caller.directory,
        &caller.actor,
    );
    let mut rows = fetch(&t.backend, &t.id, &caller, t.pools(), &reach, &p).await?;
    let has_more = rows.len() > p.limit;
    let next = if has_more {
        rows.truncate(p.limit);
        match rows.last() {
            Some((r, k)) => Some(seal_cursor(cursor_key()?, &aad, k, r.id)?),
            None => None,
        }
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|(r, _)| {
            let wf = version_of(t, &r);
            view(&caller, wf.as_deref(), r)
        })
        .collect();
    Ok(Json(Page {
        items,
        has_more,
        next,
    }))
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
