//! Scheduled report runs in PostgreSQL and SQLite (`report_schedules`,
//! `report_runs`; migrations 0012 / 0010). The semantics are in
//! `schedule.rs`; a claim is exclusive by `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL and by SQLite's single writer, and a finish writes only while
//! the claim is still the caller's.

use super::schedule::{Claimed, ReportRun, RunMessage, RunStore, RunsQuery};
use crate::backend::Error;
use crate::pg::PgBackend;
use crate::sql::{db, instant, micros};
use crate::sqlite::SqliteBackend;
use chrono::{DateTime, Utc};
use leadflow_engine::Workflow;
use std::sync::Arc;

type PgRun = (
    i64,
    String,
    String,
    DateTime<Utc>,
    String,
    i32,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    i32,
    Option<serde_json::Value>,
);

fn pg_run(r: PgRun) -> ReportRun {
    ReportRun {
        id: r.0,
        workflow: r.1,
        report: r.2,
        slot: r.3,
        status: r.4,
        attempts: r.5,
        next_attempt: r.6,
        started_at: r.7,
        finished_at: r.8,
        error: r.9,
        period: r.10,
        messages: r.11,
        result: r.12,
    }
}

const RUN_COLUMNS: &str = "id, workflow, report, slot, status, attempts, next_attempt, started_at, finished_at, error, period, messages";

impl RunStore for PgBackend {
    fn workflows(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
    async fn schedule_since(
        &self,
        workflow: &str,
        report: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Error> {
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO report_schedules (tenant_id, workflow, report, since) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let since: DateTime<Utc> = sqlx::query_scalar(
            "SELECT since FROM report_schedules WHERE tenant_id = $1 AND workflow = $2 AND report = $3",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(since)
    }

    async fn last_slot(
        &self,
        workflow: &str,
        report: &str,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let mut tx = self.tx().await?;
        let last: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT max(slot) FROM report_runs WHERE tenant_id = $1 AND workflow = $2 AND report = $3",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(last)
    }

    async fn enqueue_runs(
        &self,
        workflow: &str,
        report: &str,
        slots: &[DateTime<Utc>],
    ) -> Result<u64, Error> {
        let mut tx = self.tx().await?;
        let n = sqlx::query(
            "INSERT INTO report_runs (tenant_id, workflow, report, slot, next_attempt)
             SELECT $1, $2, $3, s, s FROM UNNEST($4::timestamptz[]) AS s ORDER BY s
             ON CONFLICT (tenant_id, workflow, report, slot) DO NOTHING",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .bind(slots)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn claim_runs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Claimed>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<(i64, String, String, DateTime<Utc>, i32)> = sqlx::query_as(
            "UPDATE report_runs r SET claim_owner = $1, lease_until = $2, started_at = $3
             FROM (SELECT tenant_id, id FROM report_runs
                   WHERE tenant_id = $4 AND status <> 'done' AND next_attempt <= $3
                     AND (lease_until IS NULL OR lease_until < $3)
                   ORDER BY slot, id LIMIT $5 FOR UPDATE SKIP LOCKED) c
             WHERE r.tenant_id = $4 AND r.tenant_id = c.tenant_id AND r.id = c.id
             RETURNING r.id, r.workflow, r.report, r.slot, r.attempts",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(self.tenant())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut out: Vec<Claimed> = rows
            .into_iter()
            .map(|(id, workflow, report, slot, attempts)| Claimed {
                id,
                workflow,
                report,
                slot,
                attempts,
            })
            .collect();
        out.sort_by_key(|c| (c.slot, c.id));
        Ok(out)
    }

    async fn finish_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        period: Option<&str>,
        result: &serde_json::Value,
        messages: &[RunMessage],
    ) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        let mine: Option<i64> = sqlx::query_scalar(
            "UPDATE report_runs SET status = 'done', attempts = attempts + 1, finished_at = $1, period = $2,
                    result = $3, messages = $4, error = NULL, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = $5 AND id = $6 AND claim_owner = $7 AND status <> 'done' RETURNING id",
        )
        .bind(now)
        .bind(period)
        .bind(result)
        .bind(messages.len() as i32)
        .bind(self.tenant())
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if mine.is_none() {
            return Ok(false);
        }
        for m in messages {
            sqlx::query(
                "INSERT INTO outbox (tenant_id, id, record_id, report_run_id, template, recipients, payload, created_at, next_attempt)
                 VALUES ($1, nextval('outbox_ids'), NULL, $2, $3, $4, $5, $6, $6)",
            )
            .bind(self.tenant())
            .bind(id)
            .bind(&m.template)
            .bind(sqlx::types::Json(vec![m.recipient.clone()]))
            .bind(&m.payload)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn fail_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
        next_attempt: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        let mine: Option<i64> = sqlx::query_scalar(
            "UPDATE report_runs SET status = 'failed', attempts = attempts + 1, finished_at = $1, error = $2,
                    next_attempt = $3, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = $4 AND id = $5 AND claim_owner = $6 AND status <> 'done' RETURNING id",
        )
        .bind(now)
        .bind(error)
        .bind(next_attempt)
        .bind(self.tenant())
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(mine.is_some())
    }

    async fn list_runs(&self, q: &RunsQuery) -> Result<Vec<ReportRun>, Error> {
        let mut tx = self.tx().await?;
        let sql = format!(
            "SELECT {RUN_COLUMNS}, NULL::jsonb FROM report_runs
             WHERE tenant_id = $1 AND ($2::text IS NULL OR workflow = $2) AND ($3::text IS NULL OR report = $3)
               AND ($4::bigint IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<PgRun> = sqlx::query_as(&sql)
            .bind(self.tenant())
            .bind(q.workflow.as_deref())
            .bind(q.report.as_deref())
            .bind(q.before)
            .bind(q.limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().map(pg_run).collect())
    }

    async fn get_run(&self, id: i64) -> Result<Option<ReportRun>, Error> {
        let mut tx = self.tx().await?;
        let sql = format!(
            "SELECT {RUN_COLUMNS}, result FROM report_runs WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<PgRun> = sqlx::query_as(&sql)
            .bind(self.tenant())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row.map(pg_run))
    }
}

type LiteRun = (
    i64,
    String,
    String,
    i64,
    String,
    i32,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i32,
    Option<String>,
);

fn lite_run(r: LiteRun) -> Result<ReportRun, Error> {
    let result = match r.12 {
        Some(t) => Some(serde_json::from_str(&t).map_err(crate::sql::json_err)?),
        None => None,
    };
    Ok(ReportRun {
        id: r.0,
        workflow: r.1,
        report: r.2,
        slot: instant(r.3),
        status: r.4,
        attempts: r.5,
        next_attempt: instant(r.6),
        started_at: r.7.map(instant),
        finished_at: r.8.map(instant),
        error: r.9,
        period: r.10,
        messages: r.11,
        result,
    })
}

impl RunStore for SqliteBackend {
    fn workflows(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
    async fn schedule_since(
        &self,
        workflow: &str,
        report: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Error> {
        sqlx::query(
            "INSERT INTO report_schedules (tenant_id, workflow, report, since) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .bind(micros(now))
        .execute(self.pool())
        .await
        .map_err(db)?;
        let since: i64 = sqlx::query_scalar(
            "SELECT since FROM report_schedules WHERE tenant_id = ? AND workflow = ? AND report = ?",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .fetch_one(self.pool())
        .await
        .map_err(db)?;
        Ok(instant(since))
    }

    async fn last_slot(
        &self,
        workflow: &str,
        report: &str,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT max(slot) FROM report_runs WHERE tenant_id = ? AND workflow = ? AND report = ?",
        )
        .bind(self.tenant())
        .bind(workflow)
        .bind(report)
        .fetch_one(self.pool())
        .await
        .map_err(db)?;
        Ok(last.map(instant))
    }

    async fn enqueue_runs(
        &self,
        workflow: &str,
        report: &str,
        slots: &[DateTime<Utc>],
    ) -> Result<u64, Error> {
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        let mut n = 0;
        for s in slots {
            n += sqlx::query(
                "INSERT INTO report_runs (tenant_id, workflow, report, slot, next_attempt) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, workflow, report, slot) DO NOTHING",
            )
            .bind(self.tenant())
            .bind(workflow)
            .bind(report)
            .bind(micros(*s))
            .bind(micros(*s))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn claim_runs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Claimed>, Error> {
        let rows: Vec<(i64, String, String, i64, i32)> = sqlx::query_as(
            "UPDATE report_runs SET claim_owner = ?, lease_until = ?, started_at = ?
             WHERE id IN (SELECT id FROM report_runs
                          WHERE tenant_id = ? AND status <> 'done' AND next_attempt <= ?
                            AND (lease_until IS NULL OR lease_until < ?)
                          ORDER BY slot, id LIMIT ?)
             RETURNING id, workflow, report, slot, attempts",
        )
        .bind(owner)
        .bind(micros(lease_until))
        .bind(micros(now))
        .bind(self.tenant())
        .bind(micros(now))
        .bind(micros(now))
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(db)?;
        let mut out: Vec<Claimed> = rows
            .into_iter()
            .map(|(id, workflow, report, slot, attempts)| Claimed {
                id,
                workflow,
                report,
                slot: instant(slot),
                attempts,
            })
            .collect();
        out.sort_by_key(|c| (c.slot, c.id));
        Ok(out)
    }

    async fn finish_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        period: Option<&str>,
        result: &serde_json::Value,
        messages: &[RunMessage],
    ) -> Result<bool, Error> {
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        let mine: Option<i64> = sqlx::query_scalar(
            "UPDATE report_runs SET status = 'done', attempts = attempts + 1, finished_at = ?, period = ?,
                    result = ?, messages = ?, error = NULL, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = ? AND id = ? AND claim_owner = ? AND status <> 'done' RETURNING id",
        )
        .bind(micros(now))
        .bind(period)
        .bind(result.to_string())
        .bind(messages.len() as i32)
        .bind(self.tenant())
        .bind(id)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        if mine.is_none() {
            return Ok(false);
        }
        for m in messages {
            sqlx::query(
                "INSERT INTO outbox (tenant_id, id, record_id, report_run_id, template, recipients, payload, created_at, next_attempt)
                 SELECT ?1, coalesce(max(id), 0) + 1, NULL, ?2, ?3, ?4, ?5, ?6, ?6 FROM outbox WHERE tenant_id = ?1",
            )
            .bind(self.tenant())
            .bind(id)
            .bind(&m.template)
            .bind(serde_json::to_string(&[&m.recipient]).map_err(crate::sql::json_err)?)
            .bind(m.payload.to_string())
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn fail_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
        next_attempt: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mine: Option<i64> = sqlx::query_scalar(
            "UPDATE report_runs SET status = 'failed', attempts = attempts + 1, finished_at = ?, error = ?,
                    next_attempt = ?, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = ? AND id = ? AND claim_owner = ? AND status <> 'done' RETURNING id",
        )
        .bind(micros(now))
        .bind(error)
        .bind(micros(next_attempt))
        .bind(self.tenant())
        .bind(id)
        .bind(owner)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        Ok(mine.is_some())
    }

    async fn list_runs(&self, q: &RunsQuery) -> Result<Vec<ReportRun>, Error> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}, NULL FROM report_runs
             WHERE tenant_id = ?1 AND (?2 IS NULL OR workflow = ?2) AND (?3 IS NULL OR report = ?3)
               AND (?4 IS NULL OR id < ?4)
             ORDER BY id DESC LIMIT ?5"
        );
        let rows: Vec<LiteRun> = sqlx::query_as(&sql)
            .bind(self.tenant())
            .bind(q.workflow.as_deref())
            .bind(q.report.as_deref())
            .bind(q.before)
            .bind(q.limit)
            .fetch_all(self.read_pool())
            .await
            .map_err(db)?;
        rows.into_iter().map(lite_run).collect()
    }

    async fn get_run(&self, id: i64) -> Result<Option<ReportRun>, Error> {
        let sql =
            format!("SELECT {RUN_COLUMNS}, result FROM report_runs WHERE tenant_id = ? AND id = ?");
        let row: Option<LiteRun> = sqlx::query_as(&sql)
            .bind(self.tenant())
            .bind(id)
            .fetch_optional(self.read_pool())
            .await
            .map_err(db)?;
        row.map(lite_run).transpose()
    }
}
