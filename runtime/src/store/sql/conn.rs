//! The seam between statements written once (`stmt.rs`, `reads.rs`,
//! `timers.rs`, `tx.rs`) and the two SQL dialects.
//!
//! Both drivers take `$n` placeholders (sqlx's SQLite driver maps `$n` to
//! argument n), so a statement that differs only by dialect is one string.
//! What does differ is how values travel: PostgreSQL has `timestamptz` and
//! `jsonb`, SQLite stores instants as microseconds since the epoch and JSON
//! as text. Shared code binds [`P`] values and reads columns through
//! [`Cells`]; each dialect turns them into its own types in one place
//! (`pg/conn.rs`, `sqlite/conn.rs`).

use crate::backend::Error;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use std::future::Future;

/// One statement parameter, as shared code sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum P<'a> {
    Int(i64),
    Text(&'a str),
    OptText(Option<&'a str>),
    /// `timestamptz` on PostgreSQL, microseconds on SQLite.
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
}

/// The columns of one result row, by position, decoded the same way on
/// both dialects.
pub(crate) trait Cells {
    fn int(&self, i: usize) -> Result<i64, Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Error>;
    /// A PostgreSQL `int` column (SQLite has one integer type).
    fn int32(&self, i: usize) -> Result<i32, Error>;
    fn text(&self, i: usize) -> Result<String, Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Error>;
    fn boolean(&self, i: usize) -> Result<bool, Error>;
    fn time(&self, i: usize) -> Result<DateTime<Utc>, Error>;
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, Error>;
    fn json<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error>;
    fn opt_json<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error>;
}

/// A connection (or a transaction's connection) that runs shared
/// statements. Futures are `Send` so that the timer worker and the HTTP
/// handlers can hold them across awaits.
pub(crate) trait Conn: Send {
    type Row: Cells + Send;

    /// Run a statement; the number of rows it changed.
    fn exec<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a;

    /// Every row a statement returns.
    fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, Error>> + Send + 'a;

    /// The first row, if any.
    fn row<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> impl Future<Output = Result<Option<Self::Row>, Error>> + Send + 'a;
}
