//! Storage failures, typed: what went wrong below the executor, with the
//! database error kept as the source (for the log), and the one question a
//! caller must answer: retry later, or give up?
//!
//! The HTTP layer answers [`StoreErrorKind::Unavailable`] and
//! [`StoreErrorKind::Busy`] (and serialization aborts) with `503
//! E_UNAVAILABLE` and `Retry-After`; everything else is `500 E_INTERNAL`.

use std::sync::Arc;

/// What kind of storage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The database cannot be reached or went away: connection refused or
    /// reset, server shutting down or starting, too many clients.
    Unavailable,
    /// No connection free within the pool's acquire timeout, a lock not
    /// available, SQLite busy or locked.
    Busy,
    /// The database aborted the transaction to keep it consistent
    /// (serialization failure, deadlock); running it again is safe.
    Serialization,
    /// Stored data the store cannot read back (JSON, a state the workflow
    /// does not have).
    Data,
    /// Setting the store up failed: an unsupported URL, migrations.
    Setup,
    /// Anything else.
    Other,
}

/// A storage failure. Cheap to clone: a batch whose commit failed gives the
/// same error to each of its requests.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A failure of the store's own logic (no database error behind it).
    pub fn other(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Other, message)
    }

    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The same request may succeed if sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::Unavailable | StoreErrorKind::Busy | StoreErrorKind::Serialization
        )
    }

    /// The database is down or unreachable (not a fault of the request).
    pub fn is_unavailable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }

    /// `message: source` kept, with a context prefix.
    pub fn context(mut self, what: &str) -> StoreError {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        let kind = classify(&e);
        StoreError {
            kind,
            message: e.to_string(),
            source: Some(Arc::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> StoreError {
        StoreError {
            kind: StoreErrorKind::Setup,
            message: format!("migrations: {e}"),
            source: Some(Arc::new(e)),
        }
    }
}

fn classify(e: &sqlx::Error) -> StoreErrorKind {
    use sqlx::Error as E;
    match e {
        E::PoolTimedOut => StoreErrorKind::Busy,
        E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => StoreErrorKind::Unavailable,
        E::Database(db) => db.code().map_or(StoreErrorKind::Other, |c| by_code(&c)),
        _ => StoreErrorKind::Other,
    }
}

/// SQLSTATE (PostgreSQL) or result code (SQLite, as sqlx reports it).
fn by_code(code: &str) -> StoreErrorKind {
    match code {
        // PostgreSQL: serialization_failure, deadlock_detected.
        "40001" | "40P01" => StoreErrorKind::Serialization,
        // lock_not_available, query_canceled (statement timeout).
        "55P03" | "57014" => StoreErrorKind::Busy,
        // admin_shutdown, crash_shutdown, cannot_connect_now,
        // too_many_connections, connection exceptions (class 08).
        "57P01" | "57P02" | "57P03" | "53300" => StoreErrorKind::Unavailable,
        c if c.starts_with("08") => StoreErrorKind::Unavailable,
        // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        c if c
            .parse::<u32>()
            .is_ok_and(|n| n & 0xff == 5 || n & 0xff == 6) =>
        {
            StoreErrorKind::Busy
        }
        _ => StoreErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify_as_operators_expect() {
        assert_eq!(by_code("40001"), StoreErrorKind::Serialization);
        assert_eq!(by_code("40P01"), StoreErrorKind::Serialization);
        assert_eq!(by_code("57P01"), StoreErrorKind::Unavailable);
        assert_eq!(by_code("08006"), StoreErrorKind::Unavailable);
        assert_eq!(by_code("53300"), StoreErrorKind::Unavailable);
        assert_eq!(by_code("5"), StoreErrorKind::Busy);
        assert_eq!(by_code("517"), StoreErrorKind::Busy);
        assert_eq!(by_code("262"), StoreErrorKind::Busy);
        assert_eq!(by_code("23505"), StoreErrorKind::Other);
        assert_eq!(by_code("19"), StoreErrorKind::Other);
    }

    #[test]
    fn pool_and_io_failures_are_retryable() {
        let e = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(e.is_retryable() && !e.is_unavailable());
        let e = StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(e.is_retryable() && e.is_unavailable());
        assert!(std::error::Error::source(&e).is_some());
        assert!(!StoreError::other("x").is_retryable());
    }
}
