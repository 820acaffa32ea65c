//! Reading records and what hangs off them (history, events, outbox rows,
//! links), written once for both dialects.

use super::conn::{Cells, Conn, P};
use super::{event_kind, join_events, FieldRow};
use crate::backend::{Error, Event, HistoryEntry, Link, OutboxMessage, RecordId, StoredRecord};
use chrono::{DateTime, Utc};

/// The columns [`stored_record`] reads, in order.
pub(crate) const RECORD_COLUMNS: &str =
    "id, workflow, version, state, fields, assignee, revision, created_at, entered_at, updated_at";

/// A row of [`RECORD_COLUMNS`].
pub(crate) fn stored_record(r: &impl Cells) -> Result<StoredRecord, Error> {
    Ok(StoredRecord {
        id: r.int(0)?,
        workflow: r.text(1)?,
        version: r.text(2)?,
        state: r.text(3)?,
        fields: r.json(4)?,
        assignee: r.opt_text(5)?,
        revision: r.int(6)?,
        created_at: r.time(7)?,
        entered_at: r.time(8)?,
        updated_at: r.time(9)?,
    })
}

pub(crate) async fn get(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
) -> Result<Option<StoredRecord>, Error> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!("SELECT {RECORD_COLUMNS} FROM records WHERE tenant_id = $1 AND id = $2")
    });
    let row = c.row(sql, &[P::Text(tenant), P::Int(id)]).await?;
    row.map(|r| stored_record(&r)).transpose()
}

pub(crate) async fn history(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
) -> Result<Vec<HistoryEntry>, Error> {
    let rows = c
        .rows(
            "SELECT at, actor, transition, field, old, new FROM history WHERE tenant_id = $1 AND record_id = $2 ORDER BY revision, ord",
            &[P::Text(tenant), P::Int(id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryEntry {
                at: r.time(0)?,
                actor: r.text(1)?,
                transition: r.text(2)?,
                field: r.text(3)?,
                old: r.json(4)?,
                new: r.json(5)?,
            })
        })
        .collect()
}

/// A record's events, oldest first, each with its field changes (see
/// [`join_events`]). Both reads run on `c`: PostgreSQL passes a
/// transaction, SQLite a read connection (WAL: one snapshot per statement,
/// rows committed between the two are left out by revision).
pub(crate) async fn events(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
) -> Result<Vec<Event>, Error> {
    let key = [P::Text(tenant), P::Int(id)];
    // From the record, so that its workflow is known without events.
    let rows = c
        .rows(
            "SELECT r.workflow, r.revision, e.revision, e.workflow, e.at, e.kind, e.actor, e.transition, e.from_state, e.to_state, e.assignee, e.input
             FROM records r LEFT JOIN events e ON e.tenant_id = r.tenant_id AND e.record_id = r.id
             WHERE r.tenant_id = $1 AND r.id = $2 ORDER BY e.revision",
            &key,
        )
        .await?;
    let fields = c
        .rows(
            "SELECT revision, at, actor, transition, field, old, new FROM history WHERE tenant_id = $1 AND record_id = $2 ORDER BY revision, ord",
            &key,
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let (workflow, upto) = (first.text(0)?, first.int(1)?);
    let mut events = Vec::new();
    for r in &rows {
        // A record without events joins one row of NULLs.
        let Some(revision) = r.opt_int(2)? else {
            continue;
        };
        let (Some(wf), Some(at), Some(kind), Some(actor)) = (
            r.opt_text(3)?,
            r.opt_time(4)?,
            r.opt_text(5)?,
            r.opt_text(6)?,
        ) else {
            continue;
        };
        events.push(Event {
            record: id,
            revision,
            workflow: wf,
            at,
            kind: event_kind(&kind)?,
            actor,
            transition: r.opt_text(7)?,
            from: r.opt_text(8)?,
            to: r.opt_text(9)?,
            assignee: r.opt_text(10)?,
            input: r.opt_json(11)?,
            changes: Vec::new(),
        });
    }
    let fields = fields
        .iter()
        .map(|r| {
            Ok(FieldRow {
                revision: r.int(0)?,
                at: r.time(1)?,
                actor: r.text(2)?,
                label: r.text(3)?,
                field: r.text(4)?,
                old: r.json(5)?,
                new: r.json(6)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(join_events(id, &workflow, upto, events, fields))
}

pub(crate) async fn outbox(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
) -> Result<Vec<OutboxMessage>, Error> {
    // `->>` with a label reads the same on PostgreSQL and SQLite (3.38+).
    let rows = c
        .rows(
            "SELECT id, template, recipients, COALESCE(CAST(payload->>'revision' AS bigint), 0), created_at, delivered_at,
                attempts, last_error, failed_at, note, payload
             FROM outbox WHERE tenant_id = $1 AND record_id = $2 ORDER BY id",
            &[P::Text(tenant), P::Int(id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxMessage {
                id: r.int(0)?,
                record: id,
                template: r.text(1)?,
                recipients: r.json(2)?,
                revision: r.int(3)?,
                created_at: r.time(4)?,
                delivered_at: r.opt_time(5)?,
                attempts: r.int32(6)?,
                last_error: r.opt_text(7)?,
                failed_at: r.opt_time(8)?,
                note: r.opt_text(9)?,
                payload: Some(r.json(10)?),
            })
        })
        .collect()
}

pub(crate) async fn links(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
) -> Result<Vec<Link>, Error> {
    let rows = c
        .rows(
            "SELECT name, to_id FROM links WHERE tenant_id = $1 AND from_id = $2 ORDER BY name, to_id",
            &[P::Text(tenant), P::Int(id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Link {
                from: id,
                name: r.text(0)?,
                to: r.int(1)?,
            })
        })
        .collect()
}

/// Record a workflow version (and its source text, when known).
pub(crate) async fn register_version(
    c: &mut impl Conn,
    tenant: &str,
    workflow: &str,
    hash: &str,
    source: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    c.exec(
        "INSERT INTO workflow_versions (tenant_id, workflow, hash, source, loaded_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, workflow, hash) DO UPDATE SET source = COALESCE(excluded.source, workflow_versions.source)",
        &[
            P::Text(tenant),
            P::Text(workflow),
            P::Text(hash),
            P::OptText(source),
            P::Time(now),
        ],
    )
    .await?;
    Ok(())
}
