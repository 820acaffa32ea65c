//! The `Jobs` capability: the rows behind `POST /v1/imports` and `POST
//! /v1/bulk` (migration `bulk_jobs`), so that a job's state, counts and
//! report outlive the task that runs it and the daemon that started it.
//!
//! A running job writes its counts at least every [`HEARTBEAT`]; one not
//! heard of for [`STALE`] died with its daemon and is marked `interrupted`
//! when jobs are next read or posted (an import re-posted with the same key
//! then resumes where it stopped: its committed lines are marked in
//! `import_rows`). At most one job runs under an import key at a time (a
//! partial unique index): [`Jobs::job_create`] answers `None` for a
//! second one.
//!
//! JSON columns travel as text (`CAST(.. AS jsonb)` on PostgreSQL); the
//! only dialect difference is how instants are stored.

mod pg;
mod sqlite;

use crate::backend::Error;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How often a running job writes its counts (also its heartbeat).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A running job not heard of for this long is `interrupted`.
pub const STALE: Duration = Duration::from_secs(30);

/// A job to record, `running` from now.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// `import` or `bulk`.
    pub kind: &'a str,
    pub workflow: &'a str,
    pub import_key: Option<&'a str>,
    /// The API key's name.
    pub created_by: &'a str,
    pub params: &'a serde_json::Value,
    pub progress: &'a serde_json::Value,
    pub now: DateTime<Utc>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub workflow: String,
    pub import_key: Option<String>,
    /// `running`, `done`, `failed` or `interrupted`.
    pub state: String,
    pub created_by: String,
    pub params: serde_json::Value,
    pub progress: serde_json::Value,
    pub report: Option<serde_json::Value>,
    pub error: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobEnd<'a> {
    /// `done` or `failed`.
    pub state: &'a str,
    pub progress: &'a serde_json::Value,
    pub report: Option<&'a serde_json::Value>,
    pub error: Option<&'a serde_json::Value>,
    pub now: DateTime<Utc>,
}

/// What the bulk job endpoints need from a store.
#[allow(async_fn_in_trait)]
pub trait Jobs {
    /// Record a running job; `None` when a job with the same import key
    /// is running.
    async fn job_create(&self, job: NewJob<'_>) -> Result<Option<i64>, Error>;
    async fn job_get(&self, id: i64) -> Result<Option<JobRow>, Error>;
    /// The id of the job running under `key`, if any.
    async fn job_running(&self, key: &str) -> Result<Option<i64>, Error>;
    /// New counts of a running job (and its heartbeat).
    async fn job_progress(
        &self,
        id: i64,
        progress: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;
    async fn job_finish(&self, id: i64, end: JobEnd<'_>) -> Result<(), Error>;
    /// Append a chunk of an import's reject report.
    async fn job_reject_chunk(&self, id: i64, seq: i64, data: &str) -> Result<(), Error>;
    /// The chunk `seq` of a job's reject report, if there is one.
    async fn job_rejects(&self, id: i64, seq: i64) -> Result<Option<String>, Error>;
    /// Mark running jobs not heard of since `before` as interrupted.
    async fn jobs_interrupt_stale(&self, before: DateTime<Utc>) -> Result<u64, Error>;
}

/// Parse a JSON column read as text.
fn json(text: &str) -> Result<serde_json::Value, Error> {
    serde_json::from_str(text).map_err(crate::sql::json_err)
}

/// Call the SQL store's own implementation; the memory store has none.
macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {
        match $self {
            crate::AnyBackend::Pg($b) => $call.await,
            crate::AnyBackend::Sqlite($b) => $call.await,
            crate::AnyBackend::Mem(_) => Err(super::import::unsupported()),
        }
    };
}

impl Jobs for crate::AnyBackend {
    async fn job_create(&self, job: NewJob<'_>) -> Result<Option<i64>, Error> {
        dispatch!(self, b => b.job_create(job))
    }
    async fn job_get(&self, id: i64) -> Result<Option<JobRow>, Error> {
        dispatch!(self, b => b.job_get(id))
    }
    async fn job_running(&self, key: &str) -> Result<Option<i64>, Error> {
        dispatch!(self, b => b.job_running(key))
    }
    async fn job_progress(
        &self,
        id: i64,
        progress: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        dispatch!(self, b => b.job_progress(id, progress, now))
    }
    async fn job_finish(&self, id: i64, end: JobEnd<'_>) -> Result<(), Error> {
        dispatch!(self, b => b.job_finish(id, end))
    }
    async fn job_reject_chunk(&self, id: i64, seq: i64, data: &str) -> Result<(), Error> {
        dispatch!(self, b => b.job_reject_chunk(id, seq, data))
    }
    async fn job_rejects(&self, id: i64, seq: i64) -> Result<Option<String>, Error> {
        dispatch!(self, b => b.job_rejects(id, seq))
    }
    async fn jobs_interrupt_stale(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        dispatch!(self, b => b.jobs_interrupt_stale(before))
    }
}
