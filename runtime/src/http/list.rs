//! `GET /v1/records`: filters (workflow, state, assignee, any field), sort
//! by any field or column, keyset pagination. One SQL query per page in
//! either dialect; the caller's visibility (own records, pools) is part of
//! the WHERE clause, so pages are never short because of hidden rows.
//!
//! Keyset: the cursor is the last row's (sort key, id), base64url JSON. The
//! sort key is read back from the database as JSON so the next page binds
//! exactly what was compared. Missing values sort first ascending, last
//! descending.

use super::error::{ApiError, Json, Query};
use super::records::{version_of, view, RecordView};
use super::state::{AppState, Caller};
use crate::any::AnyBackend;
use crate::backend::StoredRecord;
use crate::sql::{db, instant, json_err};
use axum::extract::State;
use base64::Engine as _;
use serde::Serialize;
use std::collections::BTreeMap;
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
const MAX_LIMIT: usize = 500;

#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<RecordView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
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
    /// A field's value as text (for zone matching).
    fn field_text(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => format!("(fields ->> {})", self.arg(Arg::Text(name.into()))),
            Dialect::Sqlite => format!("(fields ->> {})", self.arg(Arg::Text(json_path(name)))),
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
    after: Option<(serde_json::Value, i64)>,
}

fn parse(q: BTreeMap<String, String>) -> Result<Params, ApiError> {
    let mut p = Params {
        workflow: None,
        states: Vec::new(),
        assignee: None,
        fields: Vec::new(),
        sort: "id".into(),
        desc: false,
        limit: 50,
        after: None,
    };
    for (k, v) in q {
        match k.as_str() {
            "workflow" => p.workflow = Some(v),
            "state" => p.states = v.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
            "assignee" => p.assignee = Some(v),
            "sort" => {
                let (desc, name) = match v.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, v.trim_start_matches('+')),
                };
                if name.is_empty() {
                    return Err(ApiError::bad_request("sort: give a field or column name, `-` first for descending"));
                }
                p.sort = name.to_string();
                p.desc = desc;
            }
            "limit" => {
                p.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| ApiError::bad_request(format!("limit must be 1..={MAX_LIMIT}")))?
            }
            "after" => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(v.as_bytes())
                    .map_err(|_| ApiError::bad_request("after: not a cursor returned as `next`"))?;
                let c: (serde_json::Value, i64) = serde_json::from_slice(&bytes)
                    .map_err(|_| ApiError::bad_request("after: not a cursor returned as `next`"))?;
                p.after = Some(c);
            }
            other => match other.strip_prefix("field.") {
                Some(f) if !f.is_empty() => p.fields.push((f.to_string(), v)),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter `{other}` (workflow, state, assignee, field.<name>, sort, limit, after)"
                    )))
                }
            },
        }
    }
    Ok(p)
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
    out
}

fn build(
    d: Dialect,
    tenant: &str,
    caller: &Caller,
    pools: &[crate::config::PoolConfig],
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
                let z = s.field_text(&pool.zone_field);
                let zones = s.in_list(&caller.actor.zones);
                vis.push(format!(
                    "(assignee IS NULL AND workflow = {w} AND state IN {st} AND {z} IN {zones})"
                ));
            }
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
    p: &Params,
) -> Result<Vec<(StoredRecord, serde_json::Value)>, ApiError> {
    let storage = |e: crate::backend::Error| ApiError::from(e);
    match b {
        AnyBackend::Pg(pg) => {
            let s = build(Dialect::Pg, tenant, caller, pools, p);
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
            let s = build(Dialect::Sqlite, tenant, caller, pools, p);
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
#[utoipa::path(get, path = "/v1/records", tag = "records",
    params(("workflow" = Option<String>, Query), ("state" = Option<String>, Query, description = "comma-separated states"),
           ("assignee" = Option<String>, Query), ("field.<name>" = Option<String>, Query, description = "field equality, e.g. field.province=RM"),
           ("sort" = Option<String>, Query, description = "a column (id, created_at, updated_at, entered_at, state, assignee, workflow, revision) or a field; `-` first: descending"),
           ("limit" = Option<usize>, Query, description = "1..=500, default 50"), ("after" = Option<String>, Query, description = "the `next` cursor of the previous page")),
    responses((status = 200, body = Page), (status = 400, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Page>, ApiError> {
    let t = s.tenant(&caller);
    let p = parse(q)?;
    let mut rows = fetch(&t.backend, &t.id, &caller, t.pools(), &p).await?;
    let next = if rows.len() > p.limit {
        rows.truncate(p.limit);
        rows.last().map(|(r, k)| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&(k, r.id)).unwrap_or_default())
        })
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
    Ok(Json(Page { items, next }))
}
