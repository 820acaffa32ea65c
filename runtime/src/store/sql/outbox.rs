//! The outbox dispatcher's bookkeeping, written once for both dialects.
//! Claiming differs (PostgreSQL skips locked rows) and stays per dialect.

use super::conn::{Conn, P};
use crate::backend::Error;
use chrono::{DateTime, Utc};

/// How an attempt that did not deliver a message is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Try again at `next_attempt`.
    Retry { next_attempt: DateTime<Utc> },
    /// Give up (dead letter): never claimed again.
    Dead { at: DateTime<Utc> },
}

pub(crate) async fn delivered(
    c: &mut impl Conn,
    tenant: &str,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    c.exec(
        "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE tenant_id = $2 AND id = $3",
        &[P::Time(at), P::Text(tenant), P::Int(id)],
    )
    .await?;
    Ok(())
}

/// One more failed attempt, with its error: retried later or dead.
pub(crate) async fn mark(
    c: &mut impl Conn,
    tenant: &str,
    id: i64,
    mark: Mark,
    error: &str,
) -> Result<(), Error> {
    let (next_attempt, failed_at) = match mark {
        Mark::Retry { next_attempt } => (Some(next_attempt), None),
        Mark::Dead { at } => (None, Some(at)),
    };
    c.exec(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt = COALESCE($1, next_attempt), failed_at = COALESCE($2, failed_at), last_error = $3
         WHERE tenant_id = $4 AND id = $5",
        &[
            P::OptTime(next_attempt),
            P::OptTime(failed_at),
            P::Text(error),
            P::Text(tenant),
            P::Int(id),
        ],
    )
    .await?;
    Ok(())
}

/// A note on a message (the language it fell back to).
pub(crate) async fn noted(
    c: &mut impl Conn,
    tenant: &str,
    id: i64,
    note: &str,
) -> Result<(), Error> {
    c.exec(
        "UPDATE outbox SET note = $1 WHERE tenant_id = $2 AND id = $3",
        &[P::Text(note), P::Text(tenant), P::Int(id)],
    )
    .await?;
    Ok(())
}
