//! Statements of one transition's transaction (the `Tx` seam of
//! `apply.rs`) that read the same on both dialects. What is written
//! differently (PostgreSQL buffers its writes and sends them as one
//! statement; SQLite writes each at once) stays in the dialect's store.

use super::conn::{Cells, Conn, P};
use super::{with_loads, Row};
use crate::apply::{SpawnPayload, Taken};
use crate::backend::{Error, RecordId, StoredRecord, IDEMPOTENCY_RETENTION};
use chrono::{DateTime, Utc};
use leadflow_engine::Actor;
use std::sync::Arc;

/// How many of the record's latest events (at most `limit`) are timer
/// firings at `at`, newest first until the first that is not.
pub(crate) async fn timer_streak(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
    at: DateTime<Utc>,
    limit: usize,
) -> Result<usize, Error> {
    let rows = c
        .rows(
            "SELECT kind = 'timer' AND at = $1 FROM events WHERE tenant_id = $2 AND record_id = $3 ORDER BY revision DESC LIMIT $4",
            &[
                P::Time(at),
                P::Text(tenant),
                P::Int(id),
                P::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        )
        .await?;
    let mut n = 0;
    for r in &rows {
        if !r.boolean(0)? {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// The request fingerprint and stored response of an unexpired key.
pub(crate) async fn idem_get(
    c: &mut impl Conn,
    tenant: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, StoredRecord)>, Error> {
    let row = c
        .row(
            "SELECT request, response FROM idempotency WHERE tenant_id = $1 AND key = $2 AND created_at > $3",
            &[
                P::Text(tenant),
                P::Text(key),
                P::Time(now - IDEMPOTENCY_RETENTION),
            ],
        )
        .await?;
    row.map(|r| Ok((r.text(0)?, r.json(1)?))).transpose()
}

/// A record row's `workflow, version, state, fields, assignee, revision,
/// created_at, entered_at`, from column `offset` on.
pub(crate) fn record_row(r: &impl Cells, offset: usize) -> Result<Row, Error> {
    Ok(Row {
        workflow: r.text(offset)?,
        version: r.text(offset + 1)?,
        state: r.text(offset + 2)?,
        fields: r.json(offset + 3)?,
        assignee: r.opt_text(offset + 4)?,
        revision: r.int(offset + 5)?,
        created_at: r.time(offset + 6)?,
        entered_at: r.time(offset + 7)?,
    })
}

/// The record's row for a transition; `lock` is the dialect's locking
/// clause (`FOR UPDATE` on PostgreSQL; SQLite's one writer already holds
/// the database).
pub(crate) async fn read_for_update(
    c: &mut impl Conn,
    sql: &str,
    tenant: &str,
    id: RecordId,
) -> Result<Option<Row>, Error> {
    let row = c.row(sql, &[P::Text(tenant), P::Int(id)]).await?;
    row.map(|r| record_row(&r, 0)).transpose()
}

/// The tenant's actors (no loads: recipients need none).
pub(crate) async fn actors(c: &mut impl Conn, tenant: &str) -> Result<Arc<Vec<Actor>>, Error> {
    let rows = c
        .rows(
            "SELECT data FROM actors WHERE tenant_id = $1 ORDER BY id",
            &[P::Text(tenant)],
        )
        .await?;
    let actors = rows.iter().map(|r| r.json(0)).collect::<Result<_, _>>()?;
    Ok(Arc::new(actors))
}

/// The tenant's actors with their loads (open assigned records, kept by
/// triggers on `records`).
pub(crate) async fn directory(c: &mut impl Conn, tenant: &str) -> Result<Arc<Vec<Actor>>, Error> {
    let rows = c
        .rows(
            "SELECT a.data, l.open_records FROM actors a
             LEFT JOIN actor_loads l ON l.tenant_id = a.tenant_id AND l.actor = a.id
             WHERE a.tenant_id = $1 ORDER BY a.id",
            &[P::Text(tenant)],
        )
        .await?;
    let actors = rows
        .iter()
        .map(|r| Ok((r.json::<Actor>(0)?, r.opt_int(1)?.unwrap_or(0))))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(with_loads(actors))
}

pub(crate) async fn link(
    c: &mut impl Conn,
    tenant: &str,
    from: RecordId,
    name: &str,
    to: RecordId,
) -> Result<(), Error> {
    c.exec(
        "INSERT INTO links (tenant_id, from_id, name, to_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[P::Text(tenant), P::Int(from), P::Text(name), P::Int(to)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn linked(
    c: &mut impl Conn,
    tenant: &str,
    from: RecordId,
    name: &str,
) -> Result<Vec<RecordId>, Error> {
    let rows = c
        .rows(
            "SELECT to_id FROM links WHERE tenant_id = $1 AND from_id = $2 AND name = $3 ORDER BY to_id",
            &[P::Text(tenant), P::Int(from), P::Text(name)],
        )
        .await?;
    rows.iter().map(|r| r.int(0)).collect()
}

/// Mark `(record, timer, seq)` fired at `now` if it is still that arming
/// and not fired: exactly once per arming. What it carried, or `None`.
pub(crate) async fn take(
    c: &mut impl Conn,
    tenant: &str,
    record: RecordId,
    timer: &str,
    seq: i64,
    now: DateTime<Utc>,
) -> Result<Option<Taken>, Error> {
    let row = c
        .row(
            "UPDATE timers SET fired_at = $1, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = $2 AND record_id = $3 AND timer = $4 AND seq = $5 AND fired_at IS NULL RETURNING payload",
            &[
                P::Time(now),
                P::Text(tenant),
                P::Int(record),
                P::Text(timer),
                P::Int(seq),
            ],
        )
        .await?;
    row.map(|r| {
        Ok(match r.opt_json::<SpawnPayload>(0)? {
            None => Taken::Timer,
            Some(p) => Taken::Spawn(p),
        })
    })
    .transpose()
}
