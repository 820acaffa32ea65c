//! [`Import`] on PostgreSQL.

use super::{marks, run_all, scan_sql, Batch, Import, LineResult, DONE_SQL};
use crate::backend::{Error, RecordId, StoredRecord};
use crate::pg::PgBackend;
use crate::sql::db;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::types::Json;
use sqlx::Row;
use std::collections::HashSet;

type Fields = serde_json::Map<String, serde_json::Value>;

/// The marks of a batch in one statement over arrays.
const MARK_SQL: &str = "INSERT INTO import_rows (tenant_id, import_key, line, record_id, outcome)
     SELECT $1, $2, u.line, u.record_id, u.outcome FROM UNNEST($3::bigint[], $4::bigint[], $5::text[]) AS u(line, record_id, outcome)";

/// [`MARK_SQL`] for `n` marks as a `VALUES` list (Citus).
pub(super) fn citus_mark_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = 3 + 3 * i;
            format!("($1, $2, ${p}, ${}, ${})", p + 1, p + 2)
        })
        .collect();
    format!(
        "INSERT INTO import_rows (tenant_id, import_key, line, record_id, outcome) VALUES {}",
        rows.join(", ")
    )
}

impl PgBackend {
    /// `ops` in one transaction with their marks; `Err` if it could not
    /// commit (rolled back: nothing of it happened).
    async fn import_together(&self, b: &Batch<'_>) -> Result<Vec<LineResult>, Error> {
        let mut tx = self.begin().await?;
        let results = run_all(&mut tx, self.versions(), b).await?;
        if b.dry_run {
            // Dropped: rolled back.
            return Ok(results);
        }
        if let Some(key) = b.key {
            let m = marks(b.ops, &results);
            if !m.is_empty() {
                if self.is_citus() {
                    // Citus runs `INSERT ... SELECT FROM UNNEST` as a COPY
                    // into the shard, which row-level security refuses; a
                    // multi-row VALUES insert of one tenant is routed.
                    // At most 10,000 rows (30,002 parameters) a statement.
                    for part in m.chunks(10_000) {
                        let sql = citus_mark_sql(part.len());
                        let mut q = sqlx::query(&sql).bind(self.tenant()).bind(key);
                        for (line, id, outcome) in part {
                            q = q.bind(*line).bind(*id).bind(*outcome);
                        }
                        q.execute(&mut *tx.tx).await.map_err(db)?;
                    }
                } else {
                    let lines: Vec<i64> = m.iter().map(|x| x.0).collect();
                    let ids: Vec<i64> = m.iter().map(|x| x.1).collect();
                    let outcomes: Vec<&str> = m.iter().map(|x| x.2).collect();
                    sqlx::query(MARK_SQL)
                        .bind(self.tenant())
                        .bind(key)
                        .bind(lines)
                        .bind(ids)
                        .bind(outcomes)
                        .execute(&mut *tx.tx)
                        .await
                        .map_err(db)?;
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }
}

impl Import for PgBackend {
    async fn import_done(&self, key: &str) -> Result<HashSet<i64>, Error> {
        let mut tx = self.tx().await?;
        let lines: Vec<i64> = sqlx::query_scalar(DONE_SQL)
            .bind(self.tenant())
            .bind(key)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(lines.into_iter().collect())
    }

    async fn import_scan(
        &self,
        workflow: &str,
        fields: &[String],
        each: &mut (dyn FnMut(RecordId, Vec<Option<String>>) + Send),
    ) -> Result<(), Error> {
        let sql = scan_sql(fields.len());
        let mut tx = self.tx().await?;
        {
            let mut q = sqlx::query(&sql).bind(self.tenant()).bind(workflow);
            for f in fields {
                q = q.bind(f);
            }
            let mut rows = q.fetch(&mut *tx);
            while let Some(r) = rows.try_next().await.map_err(db)? {
                let id: i64 = r.try_get(0).map_err(db)?;
                let vals = (0..fields.len())
                    .map(|i| r.try_get::<Option<String>, _>(i + 1))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db)?;
                each(id, vals);
            }
        }
        tx.commit().await.map_err(db)
    }

    async fn import_batch(&self, b: Batch<'_>) -> Result<Vec<LineResult>, Error> {
        if b.ops.len() > 1 {
            match self.import_together(&b).await {
                Ok(r) => return Ok(r),
                Err(e) => tracing::debug!("import batch rolled back, line by line: {e}"),
            }
        }
        let mut out = Vec::with_capacity(b.ops.len());
        for op in b.ops {
            let one = Batch {
                ops: std::slice::from_ref(op),
                ..b.clone()
            };
            let mut r = self.import_together(&one).await?;
            out.push(r.pop().unwrap_or_else(|| Err(Error::storage("no answer"))));
        }
        Ok(out)
    }

    async fn export_scan(
        &self,
        workflow: &str,
        each: &mut (dyn FnMut(StoredRecord) -> Result<(), Error> + Send),
    ) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        {
            let mut rows = sqlx::query(
                "SELECT id, workflow, version, state, fields, assignee, revision, created_at, entered_at, updated_at
                 FROM records WHERE tenant_id = $1 AND workflow = $2 ORDER BY id",
            )
            .bind(self.tenant())
            .bind(workflow)
            .fetch(&mut *tx);
            while let Some(r) = rows.try_next().await.map_err(db)? {
                let fields: Json<Fields> = r.try_get(4).map_err(db)?;
                each(StoredRecord {
                    id: r.try_get(0).map_err(db)?,
                    workflow: r.try_get(1).map_err(db)?,
                    version: r.try_get(2).map_err(db)?,
                    state: r.try_get(3).map_err(db)?,
                    fields: fields.0,
                    assignee: r.try_get(5).map_err(db)?,
                    revision: r.try_get(6).map_err(db)?,
                    created_at: r.try_get::<DateTime<Utc>, _>(7).map_err(db)?,
                    entered_at: r.try_get::<DateTime<Utc>, _>(8).map_err(db)?,
                    updated_at: r.try_get::<DateTime<Utc>, _>(9).map_err(db)?,
                })?;
            }
        }
        tx.commit().await.map_err(db)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn citus_marks_are_numbered_after_tenant_and_key() {
        assert_eq!(
            super::citus_mark_sql(2),
            "INSERT INTO import_rows (tenant_id, import_key, line, record_id, outcome) VALUES ($1, $2, $3, $4, $5), ($1, $2, $6, $7, $8)"
        );
    }
}
