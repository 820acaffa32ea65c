//! History and audit: PII redaction of events (shared with
//! `GET /v1/records/{id}/history`) and the tenant-wide audit query
//! `GET /v1/history`, keyset-paged in (at, record, revision) order with a
//! sealed cursor bound to the tenant, the API key and the filters (as
//! `list.rs` seals its cursors).
//!
//! Who sees what: admin keys see every event of the tenant. An actor-bound
//! key sees the events of the records it may see *now* (its own records
//! and the pools it may claim from, the rule of `GET /v1/records`), in one
//! SQL query, so a page is never short because of hidden rows; a record
//! that left it (given to another dealer) takes its whole past with it.
//! PII in inputs and changes is redacted per record as in the record view.

use super::error::{ApiError, ErrorBody, Json, Query};
use super::list::{cursor_key, open_cursor, seal_cursor, MAX_VALUE};
use super::records::{version_of, view, ChangeView, EventView};
use super::state::{AppState, Caller, Tenant};
use crate::any::AnyBackend;
use crate::backend::{Change, Event, EventKind, StoredRecord};
use crate::config::PoolConfig;
use crate::sql::{db, event_kind, instant, json_err, micros};
use axum::extract::State;
use chrono::{DateTime, Utc};
use leadflow_engine::{FieldType, Workflow};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// What a hidden value reads as.
const REDACTED: &str = "[redacted]";

/// The fields of one record whose values a caller may not see: the PII
/// fields `RecordView` leaves out for it (by the record's current state and
/// assignee), or every field when the record's version is not loaded.
pub struct Hidden {
    all: bool,
    names: Vec<String>,
    /// The `datetime` fields, whose values are shown at the API's one
    /// precision (`schema::normalize_value`).
    datetimes: Vec<String>,
}

impl Hidden {
    pub fn of(caller: &Caller, wf: Option<&Workflow>, r: &StoredRecord) -> Hidden {
        let datetimes = wf
            .map(|wf| {
                wf.fields
                    .iter()
                    .filter(|f| f.ty == FieldType::Datetime)
                    .map(|f| f.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if caller.admin {
            return Hidden {
                all: false,
                names: Vec::new(),
                datetimes,
            };
        }
        match wf {
            Some(_) => Hidden {
                all: false,
                names: view(caller, wf, r.clone()).redacted,
                datetimes,
            },
            None => Hidden {
                all: true,
                names: Vec::new(),
                datetimes,
            },
        }
    }

    /// A shown value at the API's precision.
    fn shown(&self, field: &str, mut v: serde_json::Value) -> serde_json::Value {
        if self.datetimes.iter().any(|d| d == field) {
            super::schema::normalize_value(FieldType::Datetime, &mut v);
        }
        v
    }

    fn hides(&self, field: &str) -> bool {
        self.all || self.names.iter().any(|n| n == field)
    }

    /// The event as the caller may see it: hidden input values left out,
    /// hidden changes kept with both values `"[redacted]"` (even an empty
    /// one: whether the field was empty is not shown either), every hidden
    /// name listed in `redacted`.
    pub fn view(&self, e: Event) -> EventView {
        let mut redacted: Vec<String> = Vec::new();
        let mut note = |f: &str| {
            if !redacted.iter().any(|r| r == f) {
                redacted.push(f.to_string());
            }
        };
        let input = e.input.map(|input| {
            input
                .into_iter()
                .filter(|(k, _)| {
                    let hide = self.hides(k);
                    if hide {
                        note(k);
                    }
                    !hide
                })
                .map(|(k, v)| {
                    let v = self.shown(&k, v);
                    (k, v)
                })
                .collect()
        });
        let changes = e
            .changes
            .into_iter()
            .map(|Change { field, old, new }| {
                if self.hides(&field) {
                    note(&field);
                    ChangeView {
                        field,
                        old: REDACTED.into(),
                        new: REDACTED.into(),
                    }
                } else {
                    let (old, new) = (self.shown(&field, old), self.shown(&field, new));
                    ChangeView { field, old, new }
                }
            })
            .collect();
        EventView {
            record: e.record,
            workflow: e.workflow,
            revision: e.revision,
            at: e.at,
            actor: e.actor,
            kind: e.kind,
            transition: e.transition,
            from: e.from,
            to: e.to,
            assignee: e.assignee,
            input,
            changes,
            redacted,
        }
    }
}

/// The most events one page holds.
pub const MAX_LIMIT: usize = 500;

/// The filters of an audit query (what its cursor is bound to).
#[derive(Debug, Default, Serialize)]
struct Filters {
    since: Option<i64>,
    until: Option<i64>,
    actor: Option<String>,
    transition: Option<String>,
    workflow: Option<String>,
    kind: Option<EventKind>,
}

struct Params {
    f: Filters,
    limit: usize,
    cursor: Option<String>,
}

/// Keyset position: the last event of the previous page.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key {
    at: i64,
    record: i64,
    revision: i64,
}

fn instant_param(name: &str, v: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| micros(t.with_timezone(&Utc)))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name}: an RFC 3339 instant, e.g. 2025-01-01T00:00:00Z or 2025-01-01T00:00:00+01:00"
            ))
        })
}

fn parse(q: BTreeMap<String, String>) -> Result<Params, ApiError> {
    let mut p = Params {
        f: Filters::default(),
        limit: 100,
        cursor: None,
    };
    for (k, v) in q {
        if v.len() > MAX_VALUE || v.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "a parameter value is at most {MAX_VALUE} bytes, without NUL"
            )));
        }
        match k.as_str() {
            "since" => p.f.since = Some(instant_param("since", &v)?),
            "until" => p.f.until = Some(instant_param("until", &v)?),
            "actor" => p.f.actor = Some(v),
            "transition" => p.f.transition = Some(v),
            "workflow" => p.f.workflow = Some(v),
            "kind" => {
                p.f.kind = Some(EventKind::parse(&v).ok_or_else(|| {
                    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                    ApiError::bad_request(format!("kind: one of {}", kinds.join(", ")))
                })?)
            }
            "limit" => {
                p.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("limit must be 1..={MAX_LIMIT}"))
                    })?
            }
            "after" => p.cursor = Some(v),
            _ => return Err(ApiError::bad_request(
                "unknown parameter (since, until, actor, transition, workflow, kind, limit, after)",
            )),
        }
    }
    Ok(p)
}

/// What a cursor is bound to: this endpoint, who asked, the filters.
fn binding(tenant: &str, caller: &Caller, f: &Filters) -> Vec<u8> {
    serde_json::to_vec(&("history", tenant, &caller.key, f)).unwrap_or_default()
}

fn open_key(aad: &[u8], cursor: &str) -> Result<Key, ApiError> {
    let (k, revision) = open_cursor(cursor_key()?, aad, cursor)?;
    let pair: Option<(i64, i64)> = serde_json::from_value(k).ok();
    let (at, record) =
        pair.ok_or_else(|| ApiError::bad_request("after: not a `next` cursor of this query"))?;
    Ok(Key {
        at,
        record,
        revision,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Pg,
    Sqlite,
}

enum Arg {
    Text(String),
    Int(i64),
    Instant(i64),
}

/// A query under construction: text and its arguments, placeholders in
/// the dialect's syntax.
struct Sql {
    d: Dialect,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        match self.d {
            Dialect::Pg => format!("${}", self.args.len()),
            Dialect::Sqlite => format!("?{}", self.args.len()),
        }
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::Text(s.to_string()))
    }

    fn list(&mut self, items: &[String]) -> String {
        let ph: Vec<String> = items.iter().map(|s| self.text(s)).collect();
        format!("({})", ph.join(", "))
    }

    /// A string field of the joined record, NULL when the value is not a
    /// JSON string: zone visibility matches strings only, as
    /// `Tenant::visible` does (a number 5 must not match the zone "5").
    fn field_string(&mut self, name: &str) -> String {
        match self.d {
            Dialect::Pg => {
                let k = self.text(name);
                format!("(CASE WHEN jsonb_typeof(r.fields -> {k}) = 'string' THEN r.fields ->> {k} END)")
            }
            Dialect::Sqlite => {
                let k = self.text(&format!("$.\"{}\"", name.replace('"', "")));
                format!("(CASE WHEN json_type(r.fields, {k}) = 'text' THEN r.fields ->> {k} END)")
            }
        }
    }
}

/// The records an actor-bound caller may see now (`Tenant::visible`), as
/// a condition on the joined record `r`.
fn visible_sql(
    s: &mut Sql,
    caller: &Caller,
    pools: &[PoolConfig],
    reach: &crate::org::Reach,
) -> String {
    let mut vis = vec![format!("r.assignee = {}", s.text(&caller.actor.id))];
    if !caller.actor.zones.is_empty() {
        for pool in pools {
            let w = s.text(&pool.workflow);
            let st = s.list(&pool.states);
            let z = s.field_string(&pool.zone_field);
            let zones = s.list(&caller.actor.zones);
            if pool.followed_by(&caller.actor) {
                vis.push(format!("(r.workflow = {w} AND {z} IN {zones})"));
            } else {
                vis.push(format!(
                    "(r.assignee IS NULL AND r.workflow = {w} AND r.state IN {st} AND {z} IN {zones})"
                ));
            }
        }
    }
    // The organisation, as `GET /v1/records` (`list.rs`).
    if !reach.all.is_empty() {
        vis.push(format!("r.workflow IN {}", s.list(&reach.all)));
    }
    if !reach.managed.is_empty() && !reach.reports.is_empty() {
        let w = s.list(&reach.managed);
        let who = s.list(&reach.reports);
        vis.push(format!("(r.workflow IN {w} AND r.assignee IN {who})"));
    }
    for (wf, field) in &reach.areas {
        let w = s.text(wf);
        let z = s.field_string(field);
        let zones = s.list(&reach.zones);
        vis.push(format!("(r.workflow = {w} AND {z} IN {zones})"));
    }
    format!("({})", vis.join(" OR "))
}

#[allow(clippy::too_many_arguments)]
fn build(
    d: Dialect,
    tenant: &str,
    caller: &Caller,
    pools: &[PoolConfig],
    reach: &crate::org::Reach,
    f: &Filters,
    after: Option<Key>,
    limit: usize,
) -> (String, Vec<Arg>) {
    let mut s = Sql {
        d,
        args: Vec::new(),
    };
    let mut wh = vec![format!("e.tenant_id = {}", s.text(tenant))];
    if let Some(t) = f.since {
        wh.push(format!("e.at >= {}", s.arg(Arg::Instant(t))));
    }
    if let Some(t) = f.until {
        wh.push(format!("e.at < {}", s.arg(Arg::Instant(t))));
    }
    for (col, v) in [
        ("actor", &f.actor),
        ("transition", &f.transition),
        ("workflow", &f.workflow),
    ] {
        if let Some(v) = v {
            wh.push(format!("e.{col} = {}", s.text(v)));
        }
    }
    if let Some(k) = f.kind {
        wh.push(format!("e.kind = {}", s.text(k.as_str())));
    }
    if !caller.admin {
        wh.push(visible_sql(&mut s, caller, pools, reach));
    }
    if let Some(k) = after {
        let at = s.arg(Arg::Instant(k.at));
        let rec = s.arg(Arg::Int(k.record));
        let rev = s.arg(Arg::Int(k.revision));
        wh.push(format!(
            "(e.at, e.record_id, e.revision) > ({at}, {rec}, {rev})"
        ));
    }
    let text = format!(
        "SELECT e.record_id, e.revision, e.workflow, e.at, e.kind, e.actor, e.transition, e.from_state, e.to_state, e.assignee, e.input,
                r.workflow AS r_workflow, r.version AS r_version, r.state AS r_state, r.fields AS r_fields,
                r.assignee AS r_assignee, r.revision AS r_revision, r.created_at AS r_created_at,
                r.entered_at AS r_entered_at, r.updated_at AS r_updated_at
         FROM events e JOIN records r ON r.tenant_id = e.tenant_id AND r.id = e.record_id
         WHERE {} ORDER BY e.at, e.record_id, e.revision LIMIT {}",
        wh.join(" AND "),
        limit + 1
    );
    (text, s.args)
}

/// A row of the audit query: the event, then its record as it is now.
#[derive(sqlx::FromRow)]
struct Row<Instant, Jsonish> {
    record_id: i64,
    revision: i64,
    workflow: String,
    at: Instant,
    kind: String,
    actor: String,
    transition: Option<String>,
    from_state: Option<String>,
    to_state: Option<String>,
    assignee: Option<String>,
    input: Option<Jsonish>,
    r_workflow: String,
    r_version: String,
    r_state: String,
    r_fields: Jsonish,
    r_assignee: Option<String>,
    r_revision: i64,
    r_created_at: Instant,
    r_entered_at: Instant,
    r_updated_at: Instant,
}

type JsonMap = serde_json::Map<String, serde_json::Value>;
type PgRow = Row<DateTime<Utc>, sqlx::types::Json<JsonMap>>;
type LiteRow = Row<i64, String>;

impl<I, J> Row<I, J> {
    /// The event (without its changes) and the record, with instants and
    /// JSON as each dialect reads them.
    fn split(
        self,
        at: impl Fn(I) -> DateTime<Utc>,
        json: impl Fn(J) -> Result<JsonMap, crate::backend::Error>,
    ) -> Result<(Event, StoredRecord), crate::backend::Error> {
        let event = Event {
            record: self.record_id,
            revision: self.revision,
            workflow: self.workflow,
            at: at(self.at),
            kind: event_kind(&self.kind)?,
            actor: self.actor,
            transition: self.transition,
            from: self.from_state,
            to: self.to_state,
            assignee: self.assignee,
            input: self.input.map(&json).transpose()?,
            changes: Vec::new(),
        };
        let record = StoredRecord {
            id: self.record_id,
            workflow: self.r_workflow,
            version: self.r_version,
            state: self.r_state,
            fields: json(self.r_fields)?,
            assignee: self.r_assignee,
            revision: self.r_revision,
            created_at: at(self.r_created_at),
            entered_at: at(self.r_entered_at),
            updated_at: at(self.r_updated_at),
        };
        Ok((event, record))
    }
}

/// One page of events (changes not yet attached) with their records as
/// they are now.
async fn fetch(
    t: &Tenant,
    caller: &Caller,
    f: &Filters,
    after: Option<Key>,
    limit: usize,
) -> Result<Vec<(Event, StoredRecord)>, ApiError> {
    let reach = crate::org::Reach::of(
        t.backend.versions().all_current().iter().map(|w| &**w),
        &caller.directory,
        &caller.actor,
    );
    match &t.backend {
        AnyBackend::Pg(pg) => {
            let (text, args) = build(
                Dialect::Pg,
                &t.id,
                caller,
                t.pools(),
                &reach,
                f,
                after,
                limit,
            );
            let mut q = sqlx::query_as::<_, PgRow>(&text);
            for a in args {
                q = match a {
                    Arg::Text(v) => q.bind(v),
                    Arg::Int(i) => q.bind(i),
                    Arg::Instant(us) => q.bind(instant(us)),
                };
            }
            let mut tx = pg.tx().await?;
            let rows = q.fetch_all(&mut *tx).await.map_err(db)?;
            let keys: Vec<(i64, i64)> = rows.iter().map(|r| (r.record_id, r.revision)).collect();
            let changes = pg_changes(&mut tx, &t.id, &keys).await?;
            tx.commit().await.map_err(db)?;
            attach(rows, changes, |r| r.split(|t| t, |j| Ok(j.0)))
        }
        AnyBackend::Sqlite(lite) => {
            let (text, args) = build(
                Dialect::Sqlite,
                &t.id,
                caller,
                t.pools(),
                &reach,
                f,
                after,
                limit,
            );
            let mut q = sqlx::query_as::<_, LiteRow>(&text);
            for a in args {
                q = match a {
                    Arg::Text(v) => q.bind(v),
                    Arg::Int(i) | Arg::Instant(i) => q.bind(i),
                };
            }
            let mut conn = lite.read_pool().begin().await.map_err(db)?;
            let rows = q.fetch_all(&mut *conn).await.map_err(db)?;
            let keys: Vec<(i64, i64)> = rows.iter().map(|r| (r.record_id, r.revision)).collect();
            let changes = lite_changes(&mut conn, &t.id, &keys).await?;
            conn.commit().await.map_err(db)?;
            attach(rows, changes, |r| {
                r.split(instant, |j| serde_json::from_str(&j).map_err(json_err))
            })
        }
        AnyBackend::Mem(_) => Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "E_UNSUPPORTED",
            "the audit query needs a SQL store (sqlite: or postgres://)",
        )),
    }
}

type Changes = HashMap<(i64, i64), Vec<Change>>;

/// Each row's event with its changes, and its record.
fn attach<R>(
    rows: Vec<R>,
    mut changes: Changes,
    split: impl Fn(R) -> Result<(Event, StoredRecord), crate::backend::Error>,
) -> Result<Vec<(Event, StoredRecord)>, ApiError> {
    rows.into_iter()
        .map(|r| {
            let (mut e, rec) = split(r)?;
            e.changes = changes.remove(&(e.record, e.revision)).unwrap_or_default();
            Ok((e, rec))
        })
        .collect()
}

/// The field changes of the events `keys` (record, revision).
async fn pg_changes(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant: &str,
    keys: &[(i64, i64)],
) -> Result<Changes, crate::backend::Error> {
    if keys.is_empty() {
        return Ok(Changes::new());
    }
    let records: Vec<i64> = keys.iter().map(|k| k.0).collect();
    let revisions: Vec<i64> = keys.iter().map(|k| k.1).collect();
    let rows: Vec<(i64, i64, String, serde_json::Value, serde_json::Value)> = sqlx::query_as(
        "SELECT h.record_id, h.revision, h.field, h.old, h.new
         FROM history h JOIN UNNEST($2::bigint[], $3::bigint[]) AS k(record_id, revision)
              ON h.record_id = k.record_id AND h.revision = k.revision
         WHERE h.tenant_id = $1 AND h.record_id = ANY($2)
         ORDER BY h.record_id, h.revision, h.ord",
    )
    .bind(tenant)
    .bind(&records)
    .bind(&revisions)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let mut out = Changes::new();
    for (record, revision, field, old, new) in rows {
        out.entry((record, revision))
            .or_default()
            .push(Change { field, old, new });
    }
    Ok(out)
}

async fn lite_changes(
    conn: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    tenant: &str,
    keys: &[(i64, i64)],
) -> Result<Changes, crate::backend::Error> {
    if keys.is_empty() {
        return Ok(Changes::new());
    }
    let keys_json = serde_json::to_string(keys).map_err(json_err)?;
    let rows: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT h.record_id, h.revision, h.field, h.old, h.new
         FROM history h JOIN (SELECT json_extract(value, '$[0]') AS record_id, json_extract(value, '$[1]') AS revision
                              FROM json_each(?2)) k
              ON h.record_id = k.record_id AND h.revision = k.revision
         WHERE h.tenant_id = ?1
         ORDER BY h.record_id, h.revision, h.ord",
    )
    .bind(tenant)
    .bind(keys_json)
    .fetch_all(&mut **conn)
    .await
    .map_err(db)?;
    let mut out = Changes::new();
    for (record, revision, field, old, new) in rows {
        out.entry((record, revision)).or_default().push(Change {
            field,
            old: serde_json::from_str(&old).map_err(json_err)?,
            new: serde_json::from_str(&new).map_err(json_err)?,
        });
    }
    Ok(out)
}

/// One page of the audit query.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    pub events: Vec<EventView>,
    /// Whether more events follow this page.
    pub has_more: bool,
    /// Pass as `after` for the next page (same filters, same key); absent
    /// on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The tenant's events, oldest first (by instant, then record and
/// revision), with their field changes. Admin keys see every event; an
/// actor-bound key sees the events of the records it may see now, PII
/// redacted as in `GET /v1/records/{id}/history`.
#[utoipa::path(get, path = "/v1/history", tag = "history", operation_id = "history_list",
    params(("since" = Option<String>, Query, description = "RFC 3339 instant: events at or after it"),
           ("until" = Option<String>, Query, description = "RFC 3339 instant: events before it"),
           ("actor" = Option<String>, Query, description = "an actor id, `timer:<name>`, `system` or `migrate`"),
           ("transition" = Option<String>, Query),
           ("workflow" = Option<String>, Query),
           ("kind" = Option<String>, Query, description = "create, spawn, transition, bulk, timer, migrate or legacy"),
           ("limit" = Option<usize>, Query, description = "1..=500, default 100"),
           ("after" = Option<String>, Query, description = "the `next` of the previous page: opaque, valid only with the same filters and the same API key (and, without LEADFLOW_CURSOR_SECRET, until the daemon restarts)")),
    responses((status = 200, body = HistoryPage),
              (status = 400, body = ErrorBody, description = "E_BAD_REQUEST: unknown parameter, an instant that is not RFC 3339, an unknown kind, a limit out of range, a cursor altered or from another query"),
              (status = 501, body = ErrorBody, description = "E_UNSUPPORTED: the memory store")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<HistoryPage>, ApiError> {
    let t = s.tenant(&caller);
    let p = parse(q)?;
    let aad = binding(&t.id, &caller, &p.f);
    let after = match &p.cursor {
        Some(c) => Some(open_key(&aad, c)?),
        None => None,
    };
    let mut rows = fetch(t, &caller, &p.f, after, p.limit).await?;
    let has_more = rows.len() > p.limit;
    rows.truncate(p.limit);
    let next = match rows.last().filter(|_| has_more) {
        Some((e, _)) => Some(seal_cursor(
            cursor_key()?,
            &aad,
            &serde_json::json!([micros(e.at), e.record]),
            e.revision,
        )?),
        None => None,
    };
    // One redaction rule per record of the page.
    let mut hidden: HashMap<i64, Hidden> = HashMap::new();
    let events = rows
        .into_iter()
        .map(|(e, r)| {
            let h = hidden.entry(r.id).or_insert_with(|| {
                let wf = version_of(t, &r);
                Hidden::of(&caller, wf.as_deref(), &r)
            });
            h.view(e)
        })
        .collect();
    Ok(Json(HistoryPage {
        events,
        has_more,
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_checked() {
        let p = parse(q(&[
            ("since", "2025-01-01T01:00:00+01:00"),
            ("kind", "timer"),
            ("limit", "7"),
        ]))
        .unwrap();
        assert_eq!(p.f.since, Some(1_735_689_600_000_000));
        assert_eq!(p.f.kind, Some(EventKind::Timer));
        assert_eq!(p.limit, 7);
        for bad in [
            q(&[("since", "yesterday")]),
            q(&[("until", "2025-01-01")]),
            q(&[("kind", "party")]),
            q(&[("limit", "0")]),
            q(&[("limit", "501")]),
            q(&[("sort", "at")]),
            q(&[("actor", "a\0b")]),
        ] {
            let e = parse(bad).err().unwrap();
            assert_eq!(e.body.code, "E_BAD_REQUEST");
        }
    }

    #[test]
    fn hidden_values_are_redacted_and_listed() {
        let h = Hidden {
            all: false,
            names: vec!["phone".into()],
            datetimes: Vec::new(),
        };
        let mut input = serde_json::Map::new();
        input.insert("phone".into(), "+39 06 1234567".into());
        input.insert("note".into(), "call back".into());
        let e = Event {
            record: 1,
            revision: 2,
            workflow: "lead".into(),
            at: Utc::now(),
            kind: EventKind::Transition,
            actor: "a1".into(),
            transition: Some("edit".into()),
            from: Some("new".into()),
            to: Some("new".into()),
            assignee: Some("a1".into()),
            input: Some(input),
            changes: vec![
                Change {
                    field: "phone".into(),
                    old: serde_json::Value::Null,
                    new: "+39 06 1234567".into(),
                },
                Change {
                    field: "note".into(),
                    old: serde_json::Value::Null,
                    new: "call back".into(),
                },
            ],
        };
        let v = h.view(e);
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains("1234567"), "{json}");
        assert_eq!(v.redacted, ["phone"]);
        assert_eq!(v.input.unwrap().keys().collect::<Vec<_>>(), ["note"]);
        let hidden = serde_json::json!(REDACTED);
        assert_eq!((&v.changes[0].old, &v.changes[0].new), (&hidden, &hidden));
        assert_eq!(v.changes[1].new, "call back");
    }
}
