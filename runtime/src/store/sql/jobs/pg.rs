//! [`Jobs`] on PostgreSQL.

use super::{json, JobEnd, JobRow, Jobs, NewJob};
use crate::backend::Error;
use crate::pg::PgBackend;
use crate::sql::db;
use chrono::{DateTime, Utc};
use sqlx::Row;

const COLS: &str = "id, kind, workflow, import_key, state, created_by, params::text, progress::text, report::text, error::text, created_at, updated_at, finished_at";

impl Jobs for PgBackend {
    async fn job_create(&self, j: NewJob<'_>) -> Result<Option<i64>, Error> {
        let mut tx = self.tx().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO bulk_jobs (tenant_id, kind, workflow, import_key, state, created_by, params, progress, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'running', $5, CAST($6 AS jsonb), CAST($7 AS jsonb), $8, $8)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(self.tenant())
        .bind(j.kind)
        .bind(j.workflow)
        .bind(j.import_key)
        .bind(j.created_by)
        .bind(j.params.to_string())
        .bind(j.progress.to_string())
        .bind(j.now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn job_get(&self, id: i64) -> Result<Option<JobRow>, Error> {
        let mut tx = self.tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLS} FROM bulk_jobs WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(self.tenant())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let opt = |i: usize| -> Result<Option<serde_json::Value>, Error> {
            r.try_get::<Option<String>, _>(i)
                .map_err(db)?
                .map(|t| json(&t))
                .transpose()
        };
        Ok(Some(JobRow {
            id: r.try_get(0).map_err(db)?,
            kind: r.try_get(1).map_err(db)?,
            workflow: r.try_get(2).map_err(db)?,
            import_key: r.try_get(3).map_err(db)?,
            state: r.try_get(4).map_err(db)?,
            created_by: r.try_get(5).map_err(db)?,
            params: json(&r.try_get::<String, _>(6).map_err(db)?)?,
            progress: json(&r.try_get::<String, _>(7).map_err(db)?)?,
            report: opt(8)?,
            error: opt(9)?,
            created_at: r.try_get(10).map_err(db)?,
            updated_at: r.try_get(11).map_err(db)?,
            finished_at: r.try_get(12).map_err(db)?,
        }))
    }

    async fn job_running(&self, key: &str) -> Result<Option<i64>, Error> {
        let mut tx = self.tx().await?;
        let id = sqlx::query_scalar(
            "SELECT id FROM bulk_jobs WHERE tenant_id = $1 AND import_key = $2 AND state = 'running'",
        )
        .bind(self.tenant())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn job_progress(
        &self,
        id: i64,
        progress: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "UPDATE bulk_jobs SET progress = CAST($3 AS jsonb), updated_at = $4
             WHERE tenant_id = $1 AND id = $2 AND state = 'running'",
        )
        .bind(self.tenant())
        .bind(id)
        .bind(progress.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn job_finish(&self, id: i64, e: JobEnd<'_>) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "UPDATE bulk_jobs SET state = $3, progress = CAST($4 AS jsonb), report = CAST($5 AS jsonb),
                 error = CAST($6 AS jsonb), updated_at = $7, finished_at = $7
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(self.tenant())
        .bind(id)
        .bind(e.state)
        .bind(e.progress.to_string())
        .bind(e.report.map(|r| r.to_string()))
        .bind(e.error.map(|r| r.to_string()))
        .bind(e.now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn job_reject_chunk(&self, id: i64, seq: i64, data: &str) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO bulk_job_rejects (tenant_id, job_id, seq, data) VALUES ($1, $2, $3, $4)",
        )
        .bind(self.tenant())
        .bind(id)
        .bind(seq as i32)
        .bind(data)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn job_rejects(&self, id: i64, seq: i64) -> Result<Option<String>, Error> {
        let mut tx = self.tx().await?;
        let data = sqlx::query_scalar(
            "SELECT data FROM bulk_job_rejects WHERE tenant_id = $1 AND job_id = $2 AND seq = $3",
        )
        .bind(self.tenant())
        .bind(id)
        .bind(seq as i32)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(data)
    }

    async fn jobs_interrupt_stale(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "UPDATE bulk_jobs SET state = 'interrupted', finished_at = updated_at
             WHERE tenant_id = $1 AND state = 'running' AND updated_at < $2",
        )
        .bind(self.tenant())
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}
