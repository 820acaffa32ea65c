//! SQLite side of the shared-statement seam: instants are microseconds
//! since the epoch (`INTEGER`), JSON is text.

use crate::backend::Error;
use crate::sql::conn::{Cells, Conn, P};
use crate::sql::{db, instant, json_err, micros};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};

fn bind<'q>(sql: &'q str, params: &'q [P<'q>]) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    params.iter().fold(sqlx::query(sql), |q, p| match *p {
        P::Int(v) => q.bind(v),
        P::Text(v) => q.bind(v),
        P::OptText(v) => q.bind(v),
        P::Time(v) => q.bind(micros(v)),
        P::OptTime(v) => q.bind(v.map(micros)),
    })
}

impl Conn for SqliteConnection {
    type Row = SqliteRow;

    async fn exec<'a>(&'a mut self, sql: &'a str, params: &'a [P<'a>]) -> Result<u64, Error> {
        let r = bind(sql, params).execute(self).await.map_err(db)?;
        Ok(r.rows_affected())
    }

    async fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> Result<Vec<SqliteRow>, Error> {
        bind(sql, params).fetch_all(self).await.map_err(db)
    }

    async fn row<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> Result<Option<SqliteRow>, Error> {
        bind(sql, params).fetch_optional(self).await.map_err(db)
    }
}

impl Cells for SqliteRow {
    fn int(&self, i: usize) -> Result<i64, Error> {
        self.try_get(i).map_err(db)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Error> {
        self.try_get(i).map_err(db)
    }
    fn int32(&self, i: usize) -> Result<i32, Error> {
        let v: i64 = self.try_get(i).map_err(db)?;
        Ok(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }
    fn text(&self, i: usize) -> Result<String, Error> {
        self.try_get(i).map_err(db)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, Error> {
        self.try_get(i).map_err(db)
    }
    fn boolean(&self, i: usize) -> Result<bool, Error> {
        self.try_get(i).map_err(db)
    }
    fn time(&self, i: usize) -> Result<DateTime<Utc>, Error> {
        self.try_get(i).map(instant).map_err(db)
    }
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, Error> {
        let v: Option<i64> = self.try_get(i).map_err(db)?;
        Ok(v.map(instant))
    }
    fn json<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        let s: String = self.try_get(i).map_err(db)?;
        serde_json::from_str(&s).map_err(json_err)
    }
    fn opt_json<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error> {
        let s: Option<String> = self.try_get(i).map_err(db)?;
        s.map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(json_err)
    }
}
