//! [`RecordQuery`] on SQLite: pages and counts on the read pool (they never
//! wait for the writer), field indexes on the write connection.

use super::{count as count_sql, select, Arg, Count, Cursor, Dialect, Hit, IndexSpec, Query};
use super::{search_changed, Backfill, Kind, RecordQuery, SearchField};
use crate::backend::{Error, StoredRecord};
use crate::sql::{db, instant, json_err};
use crate::sqlite::SqliteBackend;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, ValueRef};

fn bind<'q>(
    mut q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::Int(i) => q.bind(i),
            Arg::Float(f) => q.bind(f),
        };
    }
    q
}

/// The sort key as stored in a cursor: exactly the SQL value (an integer,
/// a float, a text), so that binding it back compares equal.
fn key_of(r: &SqliteRow, kind: Kind) -> Result<serde_json::Value, sqlx::Error> {
    let raw = r.try_get_raw("k")?;
    if raw.is_null() {
        return Ok(serde_json::Value::Null);
    }
    Ok(match kind {
        Kind::Text | Kind::Date | Kind::List => serde_json::Value::String(r.try_get("k")?),
        Kind::Num => match r.try_get::<i64, _>("k") {
            Ok(i) if raw.type_info().to_string() == "INTEGER" => serde_json::Value::from(i),
            _ => serde_json::Number::from_f64(r.try_get::<f64, _>("k")?)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        },
        Kind::Bool | Kind::DateTime => serde_json::Value::from(r.try_get::<i64, _>("k")?),
    })
}

fn record(r: &SqliteRow) -> Result<StoredRecord, Error> {
    let fields: String = r.try_get("fields").map_err(db)?;
    Ok(StoredRecord {
        id: r.try_get("id").map_err(db)?,
        workflow: r.try_get("workflow").map_err(db)?,
        version: r.try_get("version").map_err(db)?,
        state: r.try_get("state").map_err(db)?,
        fields: serde_json::from_str(&fields).map_err(json_err)?,
        assignee: r.try_get("assignee").map_err(db)?,
        revision: r.try_get("revision").map_err(db)?,
        created_at: instant(r.try_get("created_at").map_err(db)?),
        entered_at: instant(r.try_get("entered_at").map_err(db)?),
        updated_at: instant(r.try_get("updated_at").map_err(db)?),
    })
}

impl RecordQuery for SqliteBackend {
    async fn query(&self, q: &Query) -> Result<Vec<Hit>, Error> {
        let s = select(Dialect::Sqlite, q);
        let rows = bind(sqlx::query(&s.text), &s.args)
            .fetch_all(self.read_pool())
            .await
            .map_err(db)?;
        let kind = q.sort.kind();
        rows.iter()
            .map(|r| {
                let seg: i64 = r.try_get("seg").map_err(db)?;
                let record = record(r)?;
                Ok(Hit {
                    cursor: Cursor {
                        seg: seg.clamp(0, 1) as u8,
                        key: key_of(r, kind).map_err(db)?,
                        id: record.id,
                    },
                    record,
                })
            })
            .collect()
    }

    async fn count(&self, q: &Query, bound: i64) -> Result<Count, Error> {
        // No planner estimate here: count at most `bound + 1` rows, and say
        // when the count stopped there.
        let s = count_sql(Dialect::Sqlite, q, Some(bound));
        let n: i64 = bind(sqlx::query(&s.text), &s.args)
            .fetch_one(self.read_pool())
            .await
            .and_then(|r| r.try_get(0))
            .map_err(db)?;
        Ok(Count {
            value: n.min(bound),
            estimated: n > bound,
        })
    }

    async fn sync_indexes(&self, wanted: &[IndexSpec]) -> Result<Vec<String>, Error> {
        let pool = self.pool();
        let tenant = self.tenant();
        let names = serde_json::to_string(&wanted.iter().map(|w| &w.name).collect::<Vec<_>>())
            .map_err(json_err)?;
        sqlx::query(
            "DELETE FROM query_indexes WHERE tenant_id = ?1 AND name NOT IN (SELECT value FROM json_each(?2))",
        )
        .bind(tenant)
        .bind(&names)
        .execute(pool)
        .await
        .map_err(db)?;
        for w in wanted {
            sqlx::query(
                "INSERT INTO query_indexes (tenant_id, name, field, kind) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, name) DO NOTHING",
            )
            .bind(tenant)
            .bind(&w.name)
            .bind(&w.field)
            .bind(w.kind().name())
            .execute(pool)
            .await
            .map_err(db)?;
        }
        let have: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' AND name LIKE 'lf\\_q\\_%' ESCAPE '\\'",
        )
        .fetch_all(pool)
        .await
        .map_err(db)?;
        let mut created = Vec::new();
        for w in wanted {
            if have.iter().any(|(n,)| *n == w.name) {
                continue;
            }
            sqlx::query(&w.create_sql(Dialect::Sqlite))
                .execute(pool)
                .await
                .map_err(db)?;
            created.push(w.name.clone());
        }
        for (name,) in have {
            let used: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM query_indexes WHERE name = ?1 LIMIT 1")
                    .bind(&name)
                    .fetch_optional(pool)
                    .await
                    .map_err(db)?;
            if used.is_none() {
                sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
                    .execute(pool)
                    .await
                    .map_err(db)?;
            }
        }
        Ok(created)
    }

    async fn sync_search(&self, wanted: &[SearchField]) -> Result<Vec<String>, Error> {
        let pool = self.pool();
        let tenant = self.tenant();
        let have: Vec<(String, String, bool)> =
            sqlx::query_as("SELECT workflow, field, pii FROM search_fields WHERE tenant_id = ?1")
                .bind(tenant)
                .fetch_all(pool)
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
        if changed.is_empty() {
            return Ok(changed);
        }
        // The fields, and a backfill row per changed workflow: its records
        // get their words again in the background (`backfill_search`), a
        // batch per write transaction; records written from now on get
        // theirs from the triggers.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        sqlx::query("DELETE FROM search_fields WHERE tenant_id = ?1")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for f in wanted {
            sqlx::query(
                "INSERT INTO search_fields (tenant_id, workflow, field, pii) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(tenant)
            .bind(&f.workflow)
            .bind(&f.field)
            .bind(f.pii)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        super::backfill::mark(&mut *tx, tenant, &changed).await?;
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn backfill_search_batch(&self, batch: i64) -> Result<Option<Backfill>, Error> {
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        let done = super::backfill::batch(
            &mut *tx,
            self.tenant(),
            batch,
            "",
            &[
                "DELETE FROM search_docs WHERE tenant_id = $1 AND id IN
                 (SELECT id FROM records WHERE tenant_id = $1 AND workflow = $2 AND id > $3 AND id <= $4)",
                "INSERT INTO search_docs (tenant_id, id, pub, pii)
                 SELECT tenant_id, id, pub, pii FROM search_doc_of
                 WHERE tenant_id = $1 AND workflow = $2 AND id > $3 AND id <= $4
                   AND (pub IS NOT NULL OR pii IS NOT NULL)",
            ],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(done)
    }

    async fn ensure_search_index(&self) -> Result<(), Error> {
        // The FTS5 table is the index; its triggers keep it.
        Ok(())
    }
}
