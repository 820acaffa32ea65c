//! [`Import`] on SQLite.

use super::{marks, run_all, scan_sql, Batch, Import, LineResult, DONE_SQL};
use crate::backend::{Error, RecordId, StoredRecord};
use crate::sql::{db, instant, json_err};
use crate::sqlite::SqliteBackend;
use futures_util::TryStreamExt;
use sqlx::Row;
use std::collections::HashSet;

/// One mark; SQLite runs a prepared insert per line as fast as a batch.
const MARK_SQL: &str =
    "INSERT INTO import_rows (tenant_id, import_key, line, record_id, outcome) VALUES ($1, $2, $3, $4, $5)";

impl SqliteBackend {
    async fn import_together(&self, b: &Batch<'_>) -> Result<Vec<LineResult>, Error> {
        let mut tx = self.begin().await?;
        let results = run_all(&mut tx, self.versions(), b).await?;
        if b.dry_run {
            // Dropped: rolled back.
            return Ok(results);
        }
        if let Some(key) = b.key {
            for (line, id, outcome) in marks(b.ops, &results) {
                sqlx::query(MARK_SQL)
                    .bind(self.tenant())
                    .bind(key)
                    .bind(line)
                    .bind(id)
                    .bind(outcome)
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(db)?;
            }
        }
        tx.tx.commit().await.map_err(db)?;
        Ok(results)
    }
}

impl Import for SqliteBackend {
    async fn import_done(&self, key: &str) -> Result<HashSet<i64>, Error> {
        let lines: Vec<i64> = sqlx::query_scalar(DONE_SQL)
            .bind(self.tenant())
            .bind(key)
            .fetch_all(self.read_pool())
            .await
            .map_err(db)?;
        Ok(lines.into_iter().collect())
    }

    async fn import_scan(
        &self,
        workflow: &str,
        fields: &[String],
        each: &mut (dyn FnMut(RecordId, Vec<Option<String>>) + Send),
    ) -> Result<(), Error> {
        let sql = scan_sql(fields.len());
        let mut q = sqlx::query(&sql).bind(self.tenant()).bind(workflow);
        for f in fields {
            q = q.bind(f);
        }
        let mut rows = q.fetch(self.read_pool());
        while let Some(r) = rows.try_next().await.map_err(db)? {
            let id: i64 = r.try_get(0).map_err(db)?;
            let vals = (0..fields.len())
                .map(|i| r.try_get::<Option<String>, _>(i + 1))
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            each(id, vals);
        }
        Ok(())
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
        let mut rows = sqlx::query(
            "SELECT id, workflow, version, state, fields, assignee, revision, created_at, entered_at, updated_at
             FROM records WHERE tenant_id = $1 AND workflow = $2 ORDER BY id",
        )
        .bind(self.tenant())
        .bind(workflow)
        .fetch(self.read_pool());
        while let Some(r) = rows.try_next().await.map_err(db)? {
            let fields: String = r.try_get(4).map_err(db)?;
            each(StoredRecord {
                id: r.try_get(0).map_err(db)?,
                workflow: r.try_get(1).map_err(db)?,
                version: r.try_get(2).map_err(db)?,
                state: r.try_get(3).map_err(db)?,
                fields: serde_json::from_str(&fields).map_err(json_err)?,
                assignee: r.try_get(5).map_err(db)?,
                revision: r.try_get(6).map_err(db)?,
                created_at: instant(r.try_get(7).map_err(db)?),
                entered_at: instant(r.try_get(8).map_err(db)?),
                updated_at: instant(r.try_get(9).map_err(db)?),
            })?;
        }
        Ok(())
    }
}
