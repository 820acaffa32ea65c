//! The `Import` capability (issue 17, sections 3 and 4): what bulk import,
//! export and bulk operations need from a store, and nothing else.
//!
//! Every line of an import or record of a bulk operation goes through the
//! executor (`apply.rs`) exactly as a `POST /v1/records` or a transition
//! does: initial state, required fields, patterns, `on_enter` effects,
//! assignment with actor loads, timers, history. What bulk adds is the
//! batching: many lines share one transaction (group commit: one commit,
//! one WAL flush for a batch), each line all-or-nothing inside it, since the
//! engine decides a line before anything of it is written. If a batch fails
//! for another reason (a storage error) it is rolled back and its lines run
//! one transaction each, so one bad line never takes its batch with it.
//!
//! A line that created or updated a record is marked in `import_rows` in the
//! same transaction: a re-run of the import with the same key skips it, so
//! a killed import resumes and nothing is created twice.
//!
//! The statements are written once for both dialects (`$n` placeholders,
//! `->>` on the stored JSON: PostgreSQL `jsonb` and SQLite 3.38+ alike);
//! the only dialect code is how a batch's marks are inserted (`pg.rs`:
//! one statement over arrays; `sqlite.rs`: one prepared insert per line).

mod pg;
mod sqlite;

use crate::apply::{self, Tx, Versions};
use crate::backend::{CreateRequest, Error, FireRequest, RecordId, StoredRecord};

use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Value};
use std::collections::HashSet;

/// What one line of a bulk job asks for.
#[derive(Debug, Clone)]
pub enum OpKind {
    /// Create a record of the job's workflow from these fields.
    Create { input: Vec<(String, Value)> },
    /// Fire `transition` on `record` with `input` (a duplicate updated
    /// through the workflow's edit transition, or a bulk operation).
    Fire {
        record: RecordId,
        transition: String,
        input: Vec<(String, Value)>,
    },
    /// Move `record` to actor `to` (a bulk reassignment).
    Reassign { record: RecordId, to: String },
}

/// One line of a bulk job: its number in the source (the mark's key) and
/// what it asks for.
#[derive(Debug, Clone)]
pub struct Op {
    pub line: i64,
    pub kind: OpKind,
}

/// What a line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Created(RecordId),
    Fired(RecordId),
}

impl Done {
    pub fn record(self) -> RecordId {
        match self {
            Done::Created(id) | Done::Fired(id) => id,
        }
    }

    fn outcome(self) -> &'static str {
        match self {
            Done::Created(_) => "created",
            Done::Fired(_) => "updated",
        }
    }
}

/// A batch of lines for [`Import::import_batch`].
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    /// The import key the lines are marked under (`None`: no marks, a bulk
    /// operation or an import without a key).
    pub key: Option<&'a str>,
    pub workflow: &'a str,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    pub ops: &'a [Op],
    /// Run every line, then roll back instead of committing: the answers
    /// are what a real run would answer, nothing is written.
    pub dry_run: bool,
    /// A record that fails it is "not found" (an actor-bound caller's
    /// visibility, see [`crate::backend::Visible`]).
    pub visible: Option<crate::backend::Visible>,
}

/// One line's answer: what it did, or why it was refused (refusals,
/// conflicts, unknown records: the line's own business; the batch went on).
pub type LineResult = Result<Done, Error>;

/// The capability a store offers for bulk work.
#[allow(async_fn_in_trait)]
pub trait Import {
    /// The lines of import `key` committed so far.
    async fn import_done(&self, key: &str) -> Result<HashSet<i64>, Error>;

    /// Call `each` with the id and the text of `fields` of every record of
    /// `workflow`, in id order, streaming (the dedup index of an import).
    async fn import_scan(
        &self,
        workflow: &str,
        fields: &[String],
        each: &mut (dyn FnMut(RecordId, Vec<Option<String>>) + Send),
    ) -> Result<(), Error>;

    /// Run `batch`, all lines in one transaction when possible; answers in
    /// line order. `Err`: a storage error on a line run alone (the batch
    /// stops there; the lines before it are committed and marked).
    async fn import_batch(&self, batch: Batch<'_>) -> Result<Vec<LineResult>, Error>;

    /// Call `each` with every record of `workflow` (id order, streaming),
    /// final ones included: `export`.
    async fn export_scan(
        &self,
        workflow: &str,
        each: &mut (dyn FnMut(StoredRecord) -> Result<(), Error> + Send),
    ) -> Result<(), Error>;
}

/// `SELECT` of a workflow's records' dedup fields; `{cols}` is one
/// `CAST(fields ->> $n AS TEXT)` per field, from `$3`.
pub(crate) fn scan_sql(fields: usize) -> String {
    let cols: Vec<String> = (0..fields)
        .map(|i| format!(", CAST(fields ->> ${} AS TEXT)", i + 3))
        .collect();
    format!(
        "SELECT id{} FROM records WHERE tenant_id = $1 AND workflow = $2 ORDER BY id",
        cols.concat()
    )
}

pub(crate) const DONE_SQL: &str =
    "SELECT line FROM import_rows WHERE tenant_id = $1 AND import_key = $2";

/// Whether an error concerns only its own line (decided before anything
/// of it was written), so the batch goes on.
fn own(e: &Error) -> bool {
    matches!(
        e,
        Error::Refused(_)
            | Error::Conflict { .. }
            | Error::NotFound(_)
            | Error::UnknownWorkflow(_)
            | Error::SpawnLimit { .. }
    )
}

/// Run one line inside the open transaction `tx`.
pub(crate) async fn run_op<T: Tx>(
    tx: &mut T,
    v: &Versions,
    b: &Batch<'_>,
    op: &Op,
) -> Result<LineResult, Error> {
    let r = match &op.kind {
        OpKind::Create { input } => {
            let req = CreateRequest {
                workflow: b.workflow,
                input: input.clone(),
                actor: b.actor,
                now: b.now,
                idempotency_key: None,
            };
            apply::create_id(tx, v, &req).await.map(Done::Created)
        }
        OpKind::Fire {
            record,
            transition,
            input,
        } => {
            let req = FireRequest {
                record: *record,
                transition,
                input: input.clone(),
                actor: b.actor,
                now: b.now,
                expected_revision: None,
                idempotency_key: None,
                visible: b.visible.clone(),
                bulk: true,
            };
            apply::fire_only(tx, v, &req)
                .await
                .map(|()| Done::Fired(*record))
        }
        OpKind::Reassign { record, to } => {
            let req = FireRequest {
                record: *record,
                transition: "reassign",
                input: Vec::new(),
                actor: b.actor,
                now: b.now,
                expected_revision: None,
                idempotency_key: None,
                visible: b.visible.clone(),
                bulk: true,
            };
            apply::reassign(tx, &req, to)
                .await
                .map(|()| Done::Fired(*record))
        }
    };
    match r {
        Ok(d) => Ok(Ok(d)),
        Err(e) if own(&e) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

/// Every line of `b` inside `tx`; `Err` on the first error that is not a
/// line's own (the caller rolls back).
pub(crate) async fn run_all<T: Tx>(
    tx: &mut T,
    v: &Versions,
    b: &Batch<'_>,
) -> Result<Vec<LineResult>, Error> {
    let mut out = Vec::with_capacity(b.ops.len());
    for op in b.ops {
        out.push(run_op(tx, v, b, op).await?);
    }
    Ok(out)
}

/// The marks of a batch's successful lines: (line, record, outcome).
pub(crate) fn marks(ops: &[Op], results: &[LineResult]) -> Vec<(i64, RecordId, &'static str)> {
    ops.iter()
        .zip(results)
        .filter_map(|(op, r)| r.as_ref().ok().map(|d| (op.line, d.record(), d.outcome())))
        .collect()
}

impl Import for crate::AnyBackend {
    async fn import_done(&self, key: &str) -> Result<HashSet<i64>, Error> {
        match self {
            crate::AnyBackend::Pg(b) => b.import_done(key).await,
            crate::AnyBackend::Sqlite(b) => b.import_done(key).await,
            crate::AnyBackend::Mem(_) => Err(unsupported()),
        }
    }

    async fn import_scan(
        &self,
        workflow: &str,
        fields: &[String],
        each: &mut (dyn FnMut(RecordId, Vec<Option<String>>) + Send),
    ) -> Result<(), Error> {
        match self {
            crate::AnyBackend::Pg(b) => b.import_scan(workflow, fields, each).await,
            crate::AnyBackend::Sqlite(b) => b.import_scan(workflow, fields, each).await,
            crate::AnyBackend::Mem(_) => Err(unsupported()),
        }
    }

    async fn import_batch(&self, batch: Batch<'_>) -> Result<Vec<LineResult>, Error> {
        match self {
            crate::AnyBackend::Pg(b) => b.import_batch(batch).await,
            crate::AnyBackend::Sqlite(b) => b.import_batch(batch).await,
            crate::AnyBackend::Mem(_) => Err(unsupported()),
        }
    }

    async fn export_scan(
        &self,
        workflow: &str,
        each: &mut (dyn FnMut(StoredRecord) -> Result<(), Error> + Send),
    ) -> Result<(), Error> {
        match self {
            crate::AnyBackend::Pg(b) => b.export_scan(workflow, each).await,
            crate::AnyBackend::Sqlite(b) => b.export_scan(workflow, each).await,
            crate::AnyBackend::Mem(_) => Err(unsupported()),
        }
    }
}

/// Bulk work needs a SQL store (the memory store replays scenarios only).
pub(crate) fn unsupported() -> Error {
    Error::Storage(crate::error::StoreError::new(
        crate::error::StoreErrorKind::Setup,
        "bulk import, export and bulk operations need a PostgreSQL or SQLite store",
    ))
}
