//! The due queue's statements, written once for both dialects: failed
//! attempts, parked items, releasing claims, the next due instant, a
//! record's armed timers. Claiming differs (PostgreSQL skips locked rows)
//! and stays in the dialect's store.

use super::conn::{Cells, Conn, P};
use crate::apply::DueItem;
use crate::backend::{ArmedTimer, Error, RecordId};
use crate::worker::{Failed, ParkedTimer, Retry};
use chrono::{DateTime, Utc};

/// Record a failed attempt at `item` (still the same arming, not fired),
/// in the caller's transaction: the claim is given back, the next attempt
/// waits `retry.after(attempts)`, and the item is parked once it failed
/// `retry.max_attempts` times. `None`: the item changed meanwhile.
pub(crate) async fn fail(
    c: &mut impl Conn,
    tenant: &str,
    item: &DueItem,
    error: &str,
    now: DateTime<Utc>,
    retry: &Retry,
) -> Result<Option<Failed>, Error> {
    let key = [
        P::Text(tenant),
        P::Int(item.record),
        P::Text(&item.timer),
        P::Int(item.seq),
    ];
    let params = [P::Text(error), key[0], key[1], key[2], key[3]];
    let Some(row) = c
        .row(
            "UPDATE timers SET attempts = attempts + 1, last_error = $1, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = $2 AND record_id = $3 AND timer = $4 AND seq = $5 AND fired_at IS NULL RETURNING attempts",
            &params,
        )
        .await?
    else {
        return Ok(None);
    };
    let attempts = row.int32(0)?;
    let f = retry.after(attempts.max(0) as u32, now);
    let params = [
        P::OptTime(f.next_attempt),
        P::OptTime(f.parked.then_some(now)),
        key[0],
        key[1],
        key[2],
        key[3],
    ];
    c.exec(
        "UPDATE timers SET next_attempt_at = $1, parked_at = $2
         WHERE tenant_id = $3 AND record_id = $4 AND timer = $5 AND seq = $6",
        &params,
    )
    .await?;
    Ok(Some(f))
}

/// The tenant's parked items, oldest parking first.
pub(crate) async fn parked(c: &mut impl Conn, tenant: &str) -> Result<Vec<ParkedTimer>, Error> {
    let rows = c
        .rows(
            "SELECT record_id, timer, due, attempts, last_error, parked_at FROM timers
             WHERE tenant_id = $1 AND fired_at IS NULL AND parked_at IS NOT NULL ORDER BY parked_at, record_id, timer",
            &[P::Text(tenant)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ParkedTimer {
                record: r.int(0)?,
                timer: r.text(1)?,
                due: r.time(2)?,
                attempts: r.int32(3)?.max(0),
                last_error: r.opt_text(4)?,
                parked_at: r.time(5)?,
            })
        })
        .collect()
}

/// Give a parked item back to the workers (attempts start again). `false`:
/// no such parked item. The caller wakes the workers.
pub(crate) async fn unpark(
    c: &mut impl Conn,
    tenant: &str,
    record: RecordId,
    timer: &str,
) -> Result<bool, Error> {
    let n = c
        .exec(
            "UPDATE timers SET parked_at = NULL, next_attempt_at = NULL, attempts = 0
             WHERE tenant_id = $1 AND record_id = $2 AND timer = $3 AND fired_at IS NULL AND parked_at IS NOT NULL",
            &[P::Text(tenant), P::Int(record), P::Text(timer)],
        )
        .await?;
    Ok(n > 0)
}

/// Give back the unfired claims of `owner` (on shutdown).
pub(crate) async fn release(c: &mut impl Conn, tenant: &str, owner: &str) -> Result<u64, Error> {
    c.exec(
        "UPDATE timers SET claim_owner = NULL, lease_until = NULL WHERE tenant_id = $1 AND claim_owner = $2 AND fired_at IS NULL",
        &[P::Text(tenant), P::Text(owner)],
    )
    .await
}

/// The earliest instant something is due: an armed timer's due instant,
/// or a retrying item's next attempt (always after its due instant);
/// parked items wait for an operator.
pub(crate) async fn next_due(
    c: &mut impl Conn,
    tenant: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    let row = c
        .row(
            "SELECT MIN(at) FROM (
               SELECT MIN(due) AS at FROM timers WHERE tenant_id = $1 AND fired_at IS NULL AND next_attempt_at IS NULL AND parked_at IS NULL
               UNION ALL
               SELECT MIN(next_attempt_at) FROM timers WHERE tenant_id = $1 AND fired_at IS NULL AND next_attempt_at IS NOT NULL) n",
            &[P::Text(tenant)],
        )
        .await?;
    match row {
        Some(r) => r.opt_time(0),
        None => Ok(None),
    }
}

/// The first item due by `now` that no live lease holds (`wall`: the
/// wall clock leases are compared with), for `run_due`. Not locked: running
/// it locks the record first and then the timer row, as a transition does.
pub(crate) async fn first_due(
    c: &mut impl Conn,
    tenant: &str,
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
) -> Result<Option<DueItem>, Error> {
    let row = c
        .row(
            "SELECT record_id, timer, due, seq FROM timers WHERE tenant_id = $1 AND fired_at IS NULL AND parked_at IS NULL AND due <= $2
             AND (lease_until IS NULL OR lease_until < $3) ORDER BY due, seq LIMIT 1",
            &[P::Text(tenant), P::Time(now), P::Time(wall)],
        )
        .await?;
    row.map(|r| due_item(&r)).transpose()
}

/// A `record_id, timer, due, seq` row.
pub(crate) fn due_item(r: &impl Cells) -> Result<DueItem, Error> {
    Ok(DueItem {
        record: r.int(0)?,
        timer: r.text(1)?,
        due: r.time(2)?,
        seq: r.int(3)?,
    })
}

/// A record's armed (unfired) timers, earliest first.
pub(crate) async fn armed(
    c: &mut impl Conn,
    tenant: &str,
    id: RecordId,
) -> Result<Vec<ArmedTimer>, Error> {
    let rows = c
        .rows(
            "SELECT timer, due FROM timers WHERE tenant_id = $1 AND record_id = $2 AND fired_at IS NULL ORDER BY due, timer",
            &[P::Text(tenant), P::Int(id)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ArmedTimer {
                record: id,
                timer: r.text(0)?,
                due: r.time(1)?,
            })
        })
        .collect()
}
