//! Helpers shared by the SQL stores.

pub mod query;

use crate::apply::{Current, Versions};
use crate::backend::{Change, Error, Event, EventKind, RecordId};
use crate::error::{StoreError, StoreErrorKind};
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Record};
use std::sync::Arc;

/// Storage errors keep the database's text for logs; the HTTP layer maps
/// `E_STORAGE` to a generic message.
pub(crate) fn db(e: sqlx::Error) -> Error {
    Error::Storage(e.into())
}

pub(crate) fn json_err(e: serde_json::Error) -> Error {
    Error::Storage(StoreError::new(
        StoreErrorKind::Data,
        format!("stored JSON: {e}"),
    ))
}

/// The parts of a record row, as read from any SQL store.
pub(crate) struct Row {
    pub workflow: String,
    pub version: String,
    pub state: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub assignee: Option<String>,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub entered_at: DateTime<Utc>,
}

impl Row {
    /// The engine view of a stored record, on the version it runs on.
    pub fn current(self, v: &Versions) -> Result<Current, Error> {
        let wf = v.version(&self.workflow, &self.version)?;
        let record = Record::from_json(
            &wf,
            &self.state,
            &self.fields,
            self.assignee,
            self.created_at,
            self.entered_at,
        )
        .ok_or_else(|| {
            Error::Storage(StoreError::new(
                StoreErrorKind::Data,
                format!(
                    "state `{}` is not in workflow `{}`",
                    self.state, self.workflow
                ),
            ))
        })?;
        Ok(Current {
            wf,
            record,
            revision: self.revision,
        })
    }
}

/// Actors with `load` set from their count of open assigned records
/// (`actor_loads`), clamped to `u32`.
pub(crate) fn with_loads(actors: impl IntoIterator<Item = (Actor, i64)>) -> Arc<Vec<Actor>> {
    Arc::new(
        actors
            .into_iter()
            .map(|(a, load)| Actor {
                load: load.clamp(0, i64::from(u32::MAX)) as u32,
                ..a
            })
            .collect(),
    )
}

/// A name for this process in timer claims: host, pid and a counter.
pub fn owner_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A stored event kind (the schema's CHECK allows only known ones).
pub(crate) fn event_kind(kind: &str) -> Result<EventKind, Error> {
    EventKind::parse(kind).ok_or_else(|| {
        Error::Storage(StoreError::new(
            StoreErrorKind::Data,
            format!("unknown event kind `{kind}`"),
        ))
    })
}

/// A `history` row as the event readers take it.
pub(crate) struct FieldRow {
    pub revision: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// The transition label the row was written with.
    pub label: String,
    pub field: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// A record's events (read without their changes, in revision order, in
/// one statement with the record's workflow and `revision`) and its field
/// rows (in revision, ord order, read after): each event gets the rows of
/// its revision. Rows past `revision` were committed between the two
/// reads and are left out with their event. Rows of a revision without an
/// event (written by a daemon older than the events table, during a
/// rolling upgrade) read as a legacy event, as the migration made of the
/// rows before it.
pub(crate) fn join_events(
    record: RecordId,
    workflow: &str,
    revision: i64,
    events: Vec<Event>,
    rows: Vec<FieldRow>,
) -> Vec<Event> {
    let mut by_rev: std::collections::BTreeMap<i64, Event> =
        events.into_iter().map(|e| (e.revision, e)).collect();
    for r in rows.into_iter().filter(|r| r.revision <= revision) {
        let e = by_rev.entry(r.revision).or_insert_with(|| Event {
            record,
            revision: r.revision,
            workflow: workflow.to_string(),
            at: r.at,
            kind: EventKind::Legacy,
            actor: r.actor,
            transition: Some(r.label),
            from: None,
            to: None,
            assignee: None,
            input: None,
            changes: Vec::new(),
        });
        e.changes.push(Change {
            field: r.field,
            old: r.old,
            new: r.new,
        });
    }
    by_rev.into_values().collect()
}

pub(crate) mod conn;
pub mod outbox;
pub(crate) mod records;
pub(crate) mod timers;
pub(crate) mod tx;

/// PostgreSQL's side of the shared statements.
pub(crate) mod pg {
    pub(crate) mod buffer;
    pub(crate) mod conn;
}

/// SQLite's side of the shared statements.
pub(crate) mod sqlite {
    pub(crate) mod conn;
}
/// Bulk import, export and bulk operations (issue 17): the `Import` capability.
pub mod import;
/// The rows of bulk jobs over HTTP (imports, bulk operations): the `Jobs` capability.
pub mod jobs;
