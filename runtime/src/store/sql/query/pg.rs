//! [`RecordQuery`] on PostgreSQL: pages and counts in a tenant transaction
//! (row-level security applies), field indexes built `CONCURRENTLY` on a
//! connection of the login role (the pool's sessions are `leadflow_app`,
//! which owns no table).

use super::{count as count_sql, select, Arg, Count, Cursor, Dialect, Hit, IndexSpec, Query};
use super::{search_changed, Backfill, RecordQuery, SearchField, Sql};
use crate::backend::{Error, StoredRecord};
use crate::pg::PgBackend;
use crate::sql::db;
use sqlx::postgres::PgArguments;
use sqlx::Postgres;

type PgRow = (
    i64,
    String,
    String,
    String,
    sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    Option<String>,
    i64,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    i32,
    Option<String>,
);

fn bind<'q, O>(
    mut q: sqlx::query::QueryAs<'q, Postgres, O, PgArguments>,
    args: &'q [Arg],
) -> sqlx::query::QueryAs<'q, Postgres, O, PgArguments> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::Int(i) => q.bind(i),
            Arg::Float(f) => q.bind(f),
        };
    }
    q
}

/// The planner's row estimate for `s` (EXPLAIN, nothing read).
async fn estimate(tx: &mut sqlx::Transaction<'static, Postgres>, s: &Sql) -> Result<i64, Error> {
    let text = format!("EXPLAIN (FORMAT JSON) {}", s.text);
    let q = sqlx::query_as::<_, (sqlx::types::Json<serde_json::Value>,)>(&text);
    let (plan,) = bind(q, &s.args).fetch_one(&mut **tx).await.map_err(db)?;
    Ok(plan.0[0]["Plan"]["Plan Rows"].as_f64().unwrap_or_default() as i64)
}

impl RecordQuery for PgBackend {
    async fn query(&self, q: &Query) -> Result<Vec<Hit>, Error> {
        let s = select(Dialect::Pg, q);
        let mut tx = self.tx().await?;
        let rows = bind(sqlx::query_as::<_, PgRow>(&s.text), &s.args)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|r| Hit {
                cursor: Cursor {
                    seg: r.10.clamp(0, 1) as u8,
                    key: r
                        .11
                        .map_or(serde_json::Value::Null, serde_json::Value::String),
                    id: r.0,
                },
                record: StoredRecord {
                    id: r.0,
                    workflow: r.1,
                    version: r.2,
                    state: r.3,
                    fields: r.4 .0,
                    assignee: r.5,
                    revision: r.6,
                    created_at: r.7,
                    entered_at: r.8,
                    updated_at: r.9,
                },
            })
            .collect())
    }

    async fn count(&self, q: &Query, bound: i64) -> Result<Count, Error> {
        let s = count_sql(Dialect::Pg, q, None);
        let mut tx = self.tx().await?;
        // The planner's estimate of the rows matched: over the bound, the
        // estimate is the answer; under it, the exact count, unless it
        // takes longer than a list page should.
        let inner = {
            let mut i = count_sql(Dialect::Pg, q, None);
            i.text = i.text.replacen("SELECT count(*)", "SELECT 1", 1);
            i
        };
        let est = estimate(&mut tx, &inner).await?;
        if est > bound {
            tx.commit().await.map_err(db)?;
            return Ok(Count {
                value: est,
                estimated: true,
            });
        }
        sqlx::query("SET LOCAL statement_timeout = 1000")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let exact = bind(sqlx::query_as::<_, (i64,)>(&s.text), &s.args)
            .fetch_one(&mut *tx)
            .await;
        match exact {
            Ok((n,)) => {
                tx.commit().await.map_err(db)?;
                Ok(Count {
                    value: n,
                    estimated: false,
                })
            }
            // 57014: canceled by the statement timeout.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57014") => Ok(Count {
                value: est,
                estimated: true,
            }),
            Err(e) => Err(db(e)),
        }
    }

    async fn sync_indexes(&self, wanted: &[IndexSpec]) -> Result<Vec<String>, Error> {
        // The login role (owner or superuser) builds indexes; the pool's
        // sessions are `leadflow_app`. `CONCURRENTLY` runs outside a
        // transaction and never blocks writes.
        let conn = builder(self.url()).await?;
        let tenant = self.tenant();
        let names: Vec<String> = wanted.iter().map(|w| w.name.clone()).collect();
        sqlx::query("DELETE FROM query_indexes WHERE tenant_id = $1 AND NOT (name = ANY($2))")
            .bind(tenant)
            .bind(&names)
            .execute(&conn)
            .await
            .map_err(db)?;
        for w in wanted {
            sqlx::query(
                "INSERT INTO query_indexes (tenant_id, name, field, kind) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, name) DO NOTHING",
            )
            .bind(tenant)
            .bind(&w.name)
            .bind(&w.field)
            .bind(w.kind().name())
            .execute(&conn)
            .await
            .map_err(db)?;
        }
        let have: Vec<(String, bool)> = sqlx::query_as(
            "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'records'::regclass AND c.relname LIKE 'lf\\_q\\_%'",
        )
        .fetch_all(&conn)
        .await
        .map_err(db)?;
        let mut created = Vec::new();
        for w in wanted {
            match have.iter().find(|(n, _)| *n == w.name) {
                Some((_, true)) => continue,
                // A build that was interrupted leaves an invalid index.
                Some((_, false)) => {
                    sqlx::raw_sql(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", w.name))
                        .execute(&conn)
                        .await
                        .map_err(db)?;
                }
                None => {}
            }
            sqlx::raw_sql(&w.create_sql(Dialect::Pg))
                .execute(&conn)
                .await
                .map_err(db)?;
            created.push(w.name.clone());
        }
        // Indexes no tenant of the database wants any more (two reads: on
        // Citus the catalog is local and `query_indexes` distributed, and
        // a join of the two is refused).
        let wanted_anywhere: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT name FROM query_indexes")
                .fetch_all(&conn)
                .await
                .map_err(db)?;
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'records'::regclass AND c.relname LIKE 'lf\\_q\\_%'",
        )
        .fetch_all(&conn)
        .await
        .map_err(db)?;
        let unused = existing
            .into_iter()
            .filter(|n| !wanted_anywhere.contains(n));
        for name in unused {
            sqlx::raw_sql(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                .execute(&conn)
                .await
                .map_err(db)?;
        }
        conn.close().await;
        Ok(created)
    }

    async fn sync_search(&self, wanted: &[SearchField]) -> Result<Vec<String>, Error> {
        let tenant = self.tenant();
        let mut tx = self.tx().await?;
        let have: Vec<(String, String, bool)> =
            sqlx::query_as("SELECT workflow, field, pii FROM search_fields WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        let have: Vec<SearchField> = have
            .into_iter()
            .map(|(workflow, field, pii)| SearchField {
                workflow,
                field,
                pii,
            })
            .collect();
        let changed = search_changed(&have, wanted);
        if !changed.is_empty() {
            sqlx::query("DELETE FROM search_fields WHERE tenant_id = $1")
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            for f in wanted {
                sqlx::query(
                    "INSERT INTO search_fields (tenant_id, workflow, field, pii) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant)
                .bind(&f.workflow)
                .bind(&f.field)
                .bind(f.pii)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
        }
        // The records of a changed workflow get their words again in the
        // background (`backfill_search`); records written from now on get
        // theirs from the trigger (the fields above commit with this row).
        super::backfill::mark(&mut *tx, tenant, &changed).await?;
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn backfill_search_batch(&self, batch: i64) -> Result<Option<Backfill>, Error> {
        let mut tx = self.tx().await?;
        let done = super::backfill::batch(
            &mut *tx,
            self.tenant(),
            batch,
            " FOR UPDATE SKIP LOCKED",
            &[
                "UPDATE records SET search_doc = leadflow_search_doc(tenant_id, workflow, fields)
               WHERE tenant_id = $1 AND workflow = $2 AND id > $3 AND id <= $4",
            ],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(done)
    }

    async fn ensure_search_index(&self) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        let any: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM search_fields WHERE tenant_id = $1)")
                .bind(self.tenant())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        if any {
            search_index(self.url()).await?;
        }
        Ok(())
    }
}

/// The index builder's one connection (the login role), holding the
/// database's builder lock (a session advisory lock) until it is closed: tenants of one database
/// publish independently, and a second builder would see the first one's
/// `CREATE INDEX CONCURRENTLY` in progress as an invalid index and drop it
/// (seen on Citus: deadlocks and "could not open relation").
async fn builder(url: &str) -> Result<sqlx::PgPool, Error> {
    /// The advisory lock key of index builds ("leadflow index builder").
    const BUILDER_LOCK: i64 = 0x6c66_6978_6275_696c;
    let conn = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(db)?;
    // Tried, not waited for in one statement: a statement waiting for the
    // lock is a transaction, and the other builder's `CREATE INDEX
    // CONCURRENTLY` waits for every running transaction to end (deadlock).
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(BUILDER_LOCK)
            .fetch_one(&conn)
            .await
            .map_err(db)?;
        if got {
            return Ok(conn);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The GIN index of the search documents, built `CONCURRENTLY` by the login
/// role (as the field indexes) when missing or left invalid by an
/// interrupted build. Partial: records of workflows that search nothing
/// have no document and no entry.
async fn search_index(url: &str) -> Result<(), Error> {
    let conn = builder(url).await?;
    let valid: Option<bool> = sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = 'records'::regclass AND c.relname = 'lf_search'",
    )
    .fetch_optional(&conn)
    .await
    .map_err(db)?;
    if valid == Some(false) {
        sqlx::raw_sql("DROP INDEX CONCURRENTLY IF EXISTS lf_search")
            .execute(&conn)
            .await
            .map_err(db)?;
    }
    if valid != Some(true) {
        sqlx::raw_sql(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS lf_search ON records USING gin (search_doc) WHERE search_doc IS NOT NULL",
        )
        .execute(&conn)
        .await
        .map_err(db)?;
    }
    conn.close().await;
    Ok(())
}
