//! PostgreSQL side of the shared-statement seam: `timestamptz` and `jsonb`
//! travel as themselves.

use crate::backend::Error;
use crate::sql::conn::{Cells, Conn, P};
use crate::sql::db;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Postgres, Row};

fn bind<'q>(sql: &'q str, params: &'q [P<'q>]) -> Query<'q, Postgres, PgArguments> {
    params.iter().fold(sqlx::query(sql), |q, p| match *p {
        P::Int(v) => q.bind(v),
        P::Text(v) => q.bind(v),
        P::OptText(v) => q.bind(v),
        P::Time(v) => q.bind(v),
        P::OptTime(v) => q.bind(v),
    })
}

impl Conn for PgConnection {
    type Row = PgRow;

    async fn exec<'a>(&'a mut self, sql: &'a str, params: &'a [P<'a>]) -> Result<u64, Error> {
        let r = bind(sql, params).execute(self).await.map_err(db)?;
        Ok(r.rows_affected())
    }

    async fn rows<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> Result<Vec<PgRow>, Error> {
        bind(sql, params).fetch_all(self).await.map_err(db)
    }

    async fn row<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [P<'a>],
    ) -> Result<Option<PgRow>, Error> {
        bind(sql, params).fetch_optional(self).await.map_err(db)
    }
}

impl Cells for PgRow {
    fn int(&self, i: usize) -> Result<i64, Error> {
        self.try_get(i).map_err(db)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Error> {
        self.try_get(i).map_err(db)
    }
    fn int32(&self, i: usize) -> Result<i32, Error> {
        self.try_get(i).map_err(db)
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
        self.try_get(i).map_err(db)
    }
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, Error> {
        self.try_get(i).map_err(db)
    }
    fn json<T: DeserializeOwned>(&self, i: usize) -> Result<T, Error> {
        let v: Json<T> = self.try_get(i).map_err(db)?;
        Ok(v.0)
    }
    fn opt_json<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error> {
        let v: Option<Json<T>> = self.try_get(i).map_err(db)?;
        Ok(v.map(|v| v.0))
    }
}
