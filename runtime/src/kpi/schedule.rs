//! Scheduled reports (`every`, docs/kpis.md "Schedules"): each report with
//! a schedule runs once per scheduled instant and tenant, across every
//! daemon on the database and across restarts.
//!
//! A tick ([`tick`]) does three things:
//!
//! 1. **Enqueue.** For each scheduled report of the current workflows, the
//!    instants due since the later of the schedule's first sighting
//!    (`report_schedules.since`) and its newest recorded run become rows of
//!    `report_runs`, one per instant (the unique key makes two daemons
//!    enqueueing at once agree). A gap of two periods gives two rows.
//! 2. **Claim.** Pending and failed runs whose retry time has come and
//!    whose lease (if any) ended are claimed for this daemon until
//!    `lease_until`, oldest instant first (PostgreSQL `FOR UPDATE SKIP
//!    LOCKED`; SQLite one writer; memory a lock).
//! 3. **Run.** The report is computed as `GET /v1/reports` computes it,
//!    over the period that ended at the instant (`period`), or the whole
//!    history without one. Its result, and with `notify` one outbox message
//!    per assignee line, commit together with `status = done`, only while
//!    the claim is still this daemon's. An error is recorded on the run
//!    (`status = failed`, `error`, `attempts`) and retried at the next tick.
//!
//! A daemon killed mid-run commits nothing: its lease ends and the run is
//! claimed again. The result is computed at the time of the run (a
//! catch-up run counts the records as they are when it runs).

use super::{last_period, report, QueryError, Range, ReportResult, Source};
use crate::any::AnyBackend;
use crate::backend::Error;
use crate::mem::MemBackend;
use chrono::{DateTime, Duration, Utc};
use leadflow_engine::model::Report;
use leadflow_engine::{Actor, Workflow};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// One run of a scheduled report, as stored and served
/// (`GET /v1/reports/runs`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReportRun {
    pub id: i64,
    pub workflow: String,
    pub report: String,
    /// The scheduled instant the run is for.
    pub slot: DateTime<Utc>,
    /// `pending` (not run yet, or running), `done`, `failed` (retried).
    pub status: String,
    pub attempts: i32,
    /// When a pending or failed run is tried next.
    pub next_attempt: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The last failure (`E_REPORT_RUN: ...`).
    pub error: Option<String>,
    /// The period covered (`2025-Q1`); absent for the whole history.
    pub period: Option<String>,
    /// Messages queued in the outbox by the run (`notify`).
    pub messages: i32,
    /// The report's result (`GET /v1/reports/runs/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ReportResult>)]
    pub result: Option<serde_json::Value>,
}

/// A run claimed by this daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub workflow: String,
    pub report: String,
    pub slot: DateTime<Utc>,
    pub attempts: i32,
}

/// A message a run queues: one recipient, its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMessage {
    pub template: String,
    pub recipient: String,
    pub payload: serde_json::Value,
}

/// Filters of the runs list.
#[derive(Debug, Clone, Default)]
pub struct RunsQuery {
    pub workflow: Option<String>,
    pub report: Option<String>,
    /// Runs with a smaller id than this (keyset, newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

/// What a store keeps of scheduled runs.
pub trait RunStore: Source {
    /// The workflows in force (their reports and schedules).
    fn workflows(&self) -> Vec<Arc<Workflow>>;
    /// When the store first saw this scheduled report (recorded as `now`
    /// the first time).
    fn schedule_since(
        &self,
        workflow: &str,
        report: &str,
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<DateTime<Utc>, Error>> + Send;
    /// The newest recorded instant of the report's runs.
    fn last_slot(
        &self,
        workflow: &str,
        report: &str,
    ) -> impl std::future::Future<Output = Result<Option<DateTime<Utc>>, Error>> + Send;
    /// Record runs for these instants (those already recorded are kept);
    /// how many were new.
    fn enqueue_runs(
        &self,
        workflow: &str,
        report: &str,
        slots: &[DateTime<Utc>],
    ) -> impl std::future::Future<Output = Result<u64, Error>> + Send;
    /// Claim up to `limit` runs due by `now` for `owner` until `lease_until`.
    fn claim_runs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> impl std::future::Future<Output = Result<Vec<Claimed>, Error>> + Send;
    /// Store a run's result and queue its messages, atomically, if `owner`
    /// still holds the claim; `false` if it lost it (nothing written).
    fn finish_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        period: Option<&str>,
        result: &serde_json::Value,
        messages: &[RunMessage],
    ) -> impl std::future::Future<Output = Result<bool, Error>> + Send;
    /// Record a failed attempt, retried at `next_attempt`.
    fn fail_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
        next_attempt: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<bool, Error>> + Send;
    /// Runs, newest first (without results).
    fn list_runs(
        &self,
        q: &RunsQuery,
    ) -> impl std::future::Future<Output = Result<Vec<ReportRun>, Error>> + Send;
    /// One run with its result.
    fn get_run(
        &self,
        id: i64,
    ) -> impl std::future::Future<Output = Result<Option<ReportRun>, Error>> + Send;
}

/// The memory store's runs (scenarios, tests).
#[derive(Debug, Default)]
pub struct MemRuns {
    since: BTreeMap<(String, String), DateTime<Utc>>,
    runs: Vec<MemRun>,
}

#[derive(Debug, Clone)]
struct MemRun {
    run: ReportRun,
    claim_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    /// The messages the run queued (the memory store has no dispatcher).
    sent: Vec<RunMessage>,
}

impl MemRuns {
    /// The messages queued by run `id`.
    pub fn messages(&self, id: i64) -> Vec<RunMessage> {
        self.runs
            .iter()
            .find(|r| r.run.id == id)
            .map(|r| r.sent.clone())
            .unwrap_or_default()
    }
}

fn lock(m: &std::sync::Mutex<MemRuns>) -> std::sync::MutexGuard<'_, MemRuns> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RunStore for MemBackend {
    fn workflows(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
    async fn schedule_since(
        &self,
        workflow: &str,
        report: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Error> {
        let mut m = lock(self.runs());
        Ok(*m
            .since
            .entry((workflow.to_string(), report.to_string()))
            .or_insert(now))
    }
    async fn last_slot(
        &self,
        workflow: &str,
        report: &str,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let m = lock(self.runs());
        Ok(m.runs
            .iter()
            .filter(|r| r.run.workflow == workflow && r.run.report == report)
            .map(|r| r.run.slot)
            .max())
    }
    async fn enqueue_runs(
        &self,
        workflow: &str,
        report: &str,
        slots: &[DateTime<Utc>],
    ) -> Result<u64, Error> {
        let mut m = lock(self.runs());
        let mut n = 0;
        for &slot in slots {
            let known = m.runs.iter().any(|r| {
                r.run.workflow == workflow && r.run.report == report && r.run.slot == slot
            });
            if known {
                continue;
            }
            let id = m.runs.len() as i64 + 1;
            m.runs.push(MemRun {
                run: ReportRun {
                    id,
                    workflow: workflow.to_string(),
                    report: report.to_string(),
                    slot,
                    status: "pending".into(),
                    attempts: 0,
                    next_attempt: slot,
                    started_at: None,
                    finished_at: None,
                    error: None,
                    period: None,
                    messages: 0,
                    result: None,
                },
                claim_owner: None,
                lease_until: None,
                sent: Vec::new(),
            });
            n += 1;
        }
        Ok(n)
    }
    async fn claim_runs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Claimed>, Error> {
        let mut m = lock(self.runs());
        let mut due: Vec<&mut MemRun> = m
            .runs
            .iter_mut()
            .filter(|r| {
                r.run.status != "done"
                    && r.run.next_attempt <= now
                    && r.lease_until.is_none_or(|l| l < now)
            })
            .collect();
        due.sort_by_key(|r| (r.run.slot, r.run.id));
        Ok(due
            .into_iter()
            .take(limit.max(0) as usize)
            .map(|r| {
                r.claim_owner = Some(owner.to_string());
                r.lease_until = Some(lease_until);
                r.run.started_at = Some(now);
                Claimed {
                    id: r.run.id,
                    workflow: r.run.workflow.clone(),
                    report: r.run.report.clone(),
                    slot: r.run.slot,
                    attempts: r.run.attempts,
                }
            })
            .collect())
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
        let mut m = lock(self.runs());
        let Some(r) = m.runs.iter_mut().find(|r| {
            r.run.id == id && r.claim_owner.as_deref() == Some(owner) && r.run.status != "done"
        }) else {
            return Ok(false);
        };
        r.run.status = "done".into();
        r.run.attempts += 1;
        r.run.finished_at = Some(now);
        r.run.period = period.map(str::to_string);
        r.run.result = Some(result.clone());
        r.run.messages = messages.len() as i32;
        r.run.error = None;
        r.claim_owner = None;
        r.lease_until = None;
        r.sent = messages.to_vec();
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
        let mut m = lock(self.runs());
        let Some(r) = m.runs.iter_mut().find(|r| {
            r.run.id == id && r.claim_owner.as_deref() == Some(owner) && r.run.status != "done"
        }) else {
            return Ok(false);
        };
        r.run.status = "failed".into();
        r.run.attempts += 1;
        r.run.finished_at = Some(now);
        r.run.error = Some(error.to_string());
        r.run.next_attempt = next_attempt;
        r.claim_owner = None;
        r.lease_until = None;
        Ok(true)
    }
    async fn list_runs(&self, q: &RunsQuery) -> Result<Vec<ReportRun>, Error> {
        let m = lock(self.runs());
        let mut out: Vec<ReportRun> = m
            .runs
            .iter()
            .rev()
            .filter(|r| q.workflow.as_deref().is_none_or(|w| r.run.workflow == w))
            .filter(|r| q.report.as_deref().is_none_or(|x| r.run.report == x))
            .filter(|r| q.before.is_none_or(|b| r.run.id < b))
            .take(q.limit.max(0) as usize)
            .map(|r| r.run.clone())
            .collect();
        for r in &mut out {
            r.result = None;
        }
        Ok(out)
    }
    async fn get_run(&self, id: i64) -> Result<Option<ReportRun>, Error> {
        let m = lock(self.runs());
        Ok(m.runs
            .iter()
            .find(|r| r.run.id == id)
            .map(|r| r.run.clone()))
    }
}

macro_rules! any_dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Mem($b) => $e,
            AnyBackend::Sqlite($b) => $e,
            AnyBackend::Pg($b) => $e,
        }
    };
}

impl RunStore for AnyBackend {
    fn workflows(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
    async fn schedule_since(
        &self,
        workflow: &str,
        report: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, Error> {
        any_dispatch!(self, b => b.schedule_since(workflow, report, now).await)
    }
    async fn last_slot(
        &self,
        workflow: &str,
        report: &str,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        any_dispatch!(self, b => b.last_slot(workflow, report).await)
    }
    async fn enqueue_runs(
        &self,
        workflow: &str,
        report: &str,
        slots: &[DateTime<Utc>],
    ) -> Result<u64, Error> {
        any_dispatch!(self, b => b.enqueue_runs(workflow, report, slots).await)
    }
    async fn claim_runs(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Claimed>, Error> {
        any_dispatch!(self, b => b.claim_runs(owner, now, lease_until, limit).await)
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
        any_dispatch!(self, b => b.finish_run(id, owner, now, period, result, messages).await)
    }
    async fn fail_run(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        error: &str,
        next_attempt: DateTime<Utc>,
    ) -> Result<bool, Error> {
        any_dispatch!(self, b => b.fail_run(id, owner, now, error, next_attempt).await)
    }
    async fn list_runs(&self, q: &RunsQuery) -> Result<Vec<ReportRun>, Error> {
        any_dispatch!(self, b => b.list_runs(q).await)
    }
    async fn get_run(&self, id: i64) -> Result<Option<ReportRun>, Error> {
        any_dispatch!(self, b => b.get_run(id).await)
    }
}

/// How a scheduler ticks.
#[derive(Debug, Clone)]
pub struct TickConfig {
    /// This daemon's claim owner id.
    pub owner: String,
    /// How long a claim hides a run from other daemons.
    pub lease: Duration,
    /// A failed run is tried again this long after its failure (the next
    /// tick of a daemon polling this often).
    pub retry_after: Duration,
    /// Runs claimed per tick.
    pub batch: i64,
}

impl Default for TickConfig {
    fn default() -> Self {
        TickConfig {
            owner: crate::sql::owner_id(),
            lease: Duration::minutes(5),
            retry_after: Duration::seconds(60),
            batch: 16,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tick {
    pub enqueued: u64,
    pub done: Vec<i64>,
    pub failed: Vec<(i64, String)>,
    /// Runs whose claim was lost before they finished (another daemon took
    /// them over after the lease ended): nothing written.
    pub lost: Vec<i64>,
}

/// Enqueue the due runs of every scheduled report, then claim and run up
/// to `cfg.batch` of them, oldest first.
pub async fn tick<S: RunStore>(
    b: &S,
    workflows: &[Arc<Workflow>],
    directory: &[Actor],
    cfg: &TickConfig,
    now: DateTime<Utc>,
) -> Result<Tick, Error> {
    let mut t = Tick::default();
    for wf in workflows {
        let tz = wf.calendar.timezone();
        for r in &wf.reports {
            let Some(s) = r.schedule else { continue };
            let since = b.schedule_since(&wf.id, &r.name, now).await?;
            let after = match b.last_slot(&wf.id, &r.name).await? {
                Some(last) => last.max(since),
                None => since,
            };
            let slots = s.due_between(after, now, tz);
            if !slots.is_empty() {
                t.enqueued += b.enqueue_runs(&wf.id, &r.name, &slots).await?;
            }
        }
    }
    let claimed = b
        .claim_runs(&cfg.owner, now, now + cfg.lease, cfg.batch)
        .await?;
    for c in claimed {
        match run_one(b, workflows, directory, &c).await {
            Ok((period, result, messages)) => {
                if b.finish_run(c.id, &cfg.owner, now, period.as_deref(), &result, &messages)
                    .await?
                {
                    t.done.push(c.id);
                } else {
                    t.lost.push(c.id);
                }
            }
            Err(e) => {
                let msg = format!("E_REPORT_RUN: {e}");
                tracing::warn!(run = c.id, workflow = %c.workflow, report = %c.report, error = %msg, "scheduled report failed; retried next tick");
                if b.fail_run(c.id, &cfg.owner, now, &msg, now + cfg.retry_after)
                    .await?
                {
                    t.failed.push((c.id, msg));
                } else {
                    t.lost.push(c.id);
                }
            }
        }
    }
    Ok(t)
}

type Ran = (Option<String>, serde_json::Value, Vec<RunMessage>);

async fn run_one<S: Source>(
    b: &S,
    workflows: &[Arc<Workflow>],
    directory: &[Actor],
    c: &Claimed,
) -> Result<Ran, QueryError> {
    let wf = workflows
        .iter()
        .find(|w| w.id == c.workflow)
        .ok_or_else(|| QueryError::Bad(format!("workflow `{}` is no longer served", c.workflow)))?;
    let r = wf
        .reports
        .iter()
        .find(|r| r.name == c.report)
        .ok_or_else(|| {
            QueryError::Bad(format!(
                "report `{}` is no longer declared in workflow `{}`",
                c.report, c.workflow
            ))
        })?;
    let range = last_period(wf, r, c.slot).unwrap_or_else(Range::all);
    let result = report(b, wf, r, range, c.slot).await?;
    let messages = messages(wf, r, &result, c.id, directory);
    let json = serde_json::to_value(&result)
        .map_err(|e| QueryError::Store(Error::storage(format!("report result: {e}"))))?;
    Ok((result.period.clone(), json, messages))
}

/// The messages of a run: with `notify`, one per assignee line of the
/// result, showing that assignee's lines only (an Expert sees his own
/// open leads, not his colleagues').
pub fn messages(
    wf: &Workflow,
    r: &Report,
    result: &ReportResult,
    run: i64,
    directory: &[Actor],
) -> Vec<RunMessage> {
    let Some(template) = &r.notify else {
        return Vec::new();
    };
    let Some(col) = r.group_by.iter().position(|g| g == "assignee") else {
        return Vec::new();
    };
    let mut by: BTreeMap<&str, Vec<&super::ReportLine>> = BTreeMap::new();
    for l in &result.rows {
        if let Some(a) = l.group.get(col).filter(|a| !a.is_empty()) {
            by.entry(a.as_str()).or_default().push(l);
        }
    }
    by.into_iter()
        .map(|(who, lines)| {
            let actor = directory.iter().find(|a| a.id == who);
            let count: i64 = lines.iter().map(|l| l.count).sum();
            let amount = r.charge.map(|c| c * count as f64);
            let payload = serde_json::json!({
                "record": 0,
                "revision": 0,
                "workflow": wf.id,
                "state": "",
                "template": template,
                "assignee": who,
                "recipient": {
                    "id": who,
                    "kind": "actor",
                    "address": actor.and_then(|a| a.email.clone()),
                    "language": actor.and_then(|a| a.language.clone()),
                },
                "fields": {},
                "redacted": [],
                "time_zone": wf.calendar.timezone().name(),
                "report": {
                    "run": run,
                    "link": format!("/v1/reports/runs/{run}"),
                    "name": result.name,
                    "title": result.title,
                    "period": result.period,
                    "from": result.from,
                    "to": result.to,
                    "group_by": result.group_by,
                    "lines": lines,
                    "count": count,
                    "amount": amount,
                    "currency": result.currency,
                },
            });
            RunMessage {
                template: template.clone(),
                recipient: who.to_string(),
                payload,
            }
        })
        .collect()
}

/// How the scheduler task runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub tick: TickConfig,
    /// Pause between ticks.
    pub every: std::time::Duration,
    pub restart: crate::background::Restart,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: TickConfig::default(),
            every: std::time::Duration::from_secs(30),
            restart: crate::background::Restart::default(),
        }
    }
}

/// A running scheduler (one per tenant and daemon).
pub struct SchedulerHandle {
    stop: tokio::sync::watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    health: Arc<crate::background::Health>,
}

impl SchedulerHandle {
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.join.await {
            tracing::error!("report scheduler task died: {e}");
        }
    }

    /// The scheduler's liveness (for `/readyz`).
    pub fn health(&self) -> Arc<crate::background::Health> {
        self.health.clone()
    }
}

macro_rules! spawner {
    ($name:ident, $ty:ty) => {
        /// Run [`tick`] every `cfg.every` under the background supervisor until
        /// shut down: a store error is logged and the next tick tries again; a
        /// panic restarts the task with backoff.
        pub fn $name<C>(
            b: $ty,
            tenant: &str,
            clock: Arc<C>,
            cfg: SchedulerConfig,
        ) -> SchedulerHandle
        where
            C: crate::clock::Clock,
        {
            let (stop, rx) = tokio::sync::watch::channel(false);
            let health = crate::background::Health::new("report_scheduler", tenant, &cfg.restart);
            let stop_rx = rx.clone();
            let policy = cfg.restart.clone();
            let tenant = tenant.to_string();
            let join = tokio::spawn(crate::background::supervise(
                health.clone(),
                policy,
                rx,
                move |_| {
                    let (b, clock, cfg, mut rx, tenant) = (
                        b.clone(),
                        clock.clone(),
                        cfg.clone(),
                        stop_rx.clone(),
                        tenant.clone(),
                    );
                    async move {
                        while !*rx.borrow() {
                            let now = clock.now();
                            let workflows = b.workflows();
                            let directory = match crate::backend::Backend::actors(&b).await {
                                Ok(d) => d,
                                Err(e) => {
                                    tracing::error!(%tenant, "report scheduler: {e}");
                                    Vec::new()
                                }
                            };
                            match tick(&b, &workflows, &directory, &cfg.tick, now).await {
                                Ok(t) if !t.done.is_empty() || !t.failed.is_empty() => {
                                    tracing::info!(%tenant, enqueued = t.enqueued, done = t.done.len(),
                                        failed = t.failed.len(), "scheduled reports ran");
                                }
                                Ok(_) => {}
                                Err(e) => tracing::error!(%tenant, "report scheduler: {e}"),
                            }
                            let next = now
                                + Duration::from_std(cfg.every).unwrap_or_else(|_| Duration::seconds(30));
                            tokio::select! {
                                _ = clock.sleep_until(next) => {}
                                _ = rx.wait_for(|s| *s) => {}
                            }
                        }
                    }
                },
            ));
            SchedulerHandle { stop, join, health }
        }
    };
}

spawner!(spawn_pg, crate::pg::PgBackend);
spawner!(spawn_sqlite, crate::sqlite::SqliteBackend);
