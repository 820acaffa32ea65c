//! The timer worker: a tokio task that claims due timers in batches (with a
//! lease, so a crashed worker's claims come back) and fires each as a system
//! transition in its own transaction. Several workers may share a database:
//! claims skip rows another worker holds, and firing is exactly once per
//! arming whatever happens to leases (see `pg::PgBackend::fire_item`).
//!
//! An item that fails when fired (an error, or a panic: caught per item)
//! concerns only itself: it is recorded on its row (attempts, last error),
//! retried with backoff ([`Retry`]) and parked after the last attempt; the
//! items behind it fire. The worker itself runs supervised
//! (`background.rs`): a panic restarts it after its claims are given back.
//!
//! Between batches it sleeps until the next due instant, at most
//! `max_idle`; a timer armed earlier than that wakes it (`wake.rs`: on
//! SQLite in process, on PostgreSQL through one LISTEN connection per
//! database that wakes only the tenant a NOTIFY names).

use crate::apply::{DueItem, Ran};
use crate::backend::{Backend, Error, RecordId};
use crate::background::{panic_message, supervise, Health, Restart};
use crate::clock::Clock;
use crate::pg::{PgBackend, TIMER_CHANNEL};
use crate::sqlite::SqliteBackend;
use crate::wake::{Wake, Wakeups};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde::Serialize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

pub use crate::store::api::TimerQueue;

/// The methods both SQL stores implement as inherent methods of the same
/// name; the trait forwards to them.
macro_rules! forward_timer_queue {
    ($store:ty) => {
        async fn claim(
            &self,
            owner: &str,
            due_by: DateTime<Utc>,
            wall: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            limit: i64,
        ) -> Result<Vec<DueItem>, Error> {
            <$store>::claim(self, owner, due_by, wall, lease_until, limit).await
        }
        async fn fire_item(&self, item: &DueItem) -> Result<Ran, Error> {
            <$store>::fire_item(self, item).await
        }
        async fn release(&self, owner: &str) -> Result<u64, Error> {
            <$store>::release(self, owner).await
        }
        async fn fail(
            &self,
            item: &DueItem,
            error: &str,
            now: DateTime<Utc>,
            retry: &Retry,
        ) -> Result<Option<Failed>, Error> {
            <$store>::fail(self, item, error, now, retry).await
        }
        async fn parked(&self) -> Result<Vec<ParkedTimer>, Error> {
            <$store>::parked(self).await
        }
        async fn retry_parked(&self, record: RecordId, timer: &str) -> Result<bool, Error> {
            <$store>::retry_parked(self, record, timer).await
        }
        fn tenant(&self) -> &str {
            <$store>::tenant(self)
        }
        async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
            self.next_due().await
        }
    };
}

impl TimerQueue for PgBackend {
    const BATCHES: bool = true;
    forward_timer_queue!(PgBackend);
    async fn fire_batch(&self, items: &[DueItem]) -> Result<(u64, u64), Error> {
        PgBackend::fire_batch(self, items).await
    }
    async fn wakeups(&self) -> Wakeups {
        crate::wake::pg_subscribe(self.url(), TIMER_CHANNEL, self.tenant())
    }
}

impl TimerQueue for SqliteBackend {
    forward_timer_queue!(SqliteBackend);
    async fn wakeups(&self) -> Wakeups {
        Wakeups::local(self.wake().clone())
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Claim owner name; unique per worker.
    pub owner: String,
    pub batch: i64,
    /// How long a claim holds before another worker may take it over.
    pub lease: chrono::Duration,
    /// Longest sleep without looking at the queue (catches far timers that
    /// were armed without a NOTIFY).
    pub max_idle: chrono::Duration,
    /// Sleep when due items exist but are all claimed by others.
    pub busy_poll: chrono::Duration,
    /// What happens to an item that fails when fired.
    pub retry: Retry,
    /// What happens when the worker itself panics.
    pub restart: Restart,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: crate::sql::owner_id(),
            batch: 100,
            lease: chrono::Duration::seconds(30),
            max_idle: chrono::Duration::seconds(30),
            busy_poll: chrono::Duration::milliseconds(200),
            retry: Retry::default(),
            restart: Restart::default(),
        }
    }
}

/// Retries of a timer item that failed (an error or a panic while firing
/// it): the n-th failure waits `base * 2^(n-1)`, at most `cap`; the
/// `max_attempts`-th failure parks the item until an operator retries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub max_attempts: u32,
    pub base: chrono::Duration,
    pub cap: chrono::Duration,
}

impl Default for Retry {
    /// Eight attempts over about two minutes (1 s, 2 s, ... 64 s), so a
    /// short database hiccup does not park items; a real poison item is
    /// parked soon enough not to cost anything.
    fn default() -> Self {
        Retry {
            max_attempts: 8,
            base: chrono::Duration::seconds(1),
            cap: chrono::Duration::minutes(5),
        }
    }
}

impl Retry {
    /// What `attempts` failures so far (this one included) lead to.
    pub fn after(&self, attempts: u32, now: DateTime<Utc>) -> Failed {
        if attempts >= self.max_attempts.max(1) {
            return Failed {
                attempts,
                parked: true,
                next_attempt: None,
            };
        }
        let doublings = attempts.saturating_sub(1).min(30);
        let delay = self
            .base
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        Failed {
            attempts,
            parked: false,
            next_attempt: Some(now.checked_add_signed(delay).unwrap_or(now)),
        }
    }
}

/// A recorded failure of a timer item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub attempts: u32,
    /// No further automatic attempt.
    pub parked: bool,
    pub next_attempt: Option<DateTime<Utc>>,
}

/// A timer item that failed `max_attempts` times and waits for an operator
/// (`GET /v1/timers/parked`, `POST /v1/timers/parked/{record}/{timer}/retry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ParkedTimer {
    #[schema(value_type = i64)]
    pub record: RecordId,
    pub timer: String,
    #[serde(serialize_with = "crate::http::schema::ts")]
    pub due: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::http::schema::ts")]
    pub parked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub fired: u64,
    pub discarded: u64,
    /// Failed claims, queue reads and items (each failed item counts).
    pub errors: u64,
    /// Items parked after their last attempt.
    pub parked: u64,
    /// Panics of the worker itself or of an item it fired.
    pub panics: u64,
}

/// Counters kept outside the task, so a panic does not lose them.
#[derive(Debug, Default)]
struct Counters {
    fired: AtomicU64,
    discarded: AtomicU64,
    errors: AtomicU64,
    parked: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// A running worker. Dropping it without [`WorkerHandle::shutdown`] leaves
/// its claims to expire with their lease.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
    counters: Arc<Counters>,
    health: Arc<Health>,
}

impl WorkerHandle {
    /// Stop after the item in flight, release unfired claims, return
    /// counts, panics included (a worker that panicked was restarted; one
    /// whose task died is reported with one more panic).
    pub async fn shutdown(self) -> WorkerStats {
        self.stop.send_replace(true);
        let mut panics = 0;
        if let Err(e) = self.join.await {
            tracing::error!(tenant = %self.health.status().tenant, "timer worker task died: {e}");
            panics = 1;
        }
        let c = &self.counters;
        WorkerStats {
            fired: c.fired.load(Ordering::Relaxed),
            discarded: c.discarded.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            parked: c.parked.load(Ordering::Relaxed),
            panics: self.health.panics() + panics,
        }
    }

    /// The worker's liveness (for `/readyz`).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }
}

/// Start a worker on the current tokio runtime, supervised: a panic of the
/// worker is caught, counted and logged, its claims are given back and it
/// starts again after a backoff.
pub fn spawn<Q: TimerQueue, C: Clock>(queue: Q, clock: Arc<C>, cfg: WorkerConfig) -> WorkerHandle {
    let (stop, rx) = watch::channel(false);
    let health = Health::new("timer_worker", queue.tenant(), &cfg.restart);
    let counters = Arc::new(Counters::default());
    let (h, c, policy) = (health.clone(), counters.clone(), cfg.restart.clone());
    let stop_rx = rx.clone();
    let join = tokio::spawn(supervise(health.clone(), policy, rx, move |restarts| {
        run(
            queue.clone(),
            clock.clone(),
            cfg.clone(),
            stop_rx.clone(),
            c.clone(),
            h.clone(),
            restarts,
        )
    }));
    WorkerHandle {
        stop,
        join,
        counters,
        health,
    }
}

async fn run<Q: TimerQueue, C: Clock>(
    q: Q,
    clock: Arc<C>,
    cfg: WorkerConfig,
    mut stop: watch::Receiver<bool>,
    stats: Arc<Counters>,
    health: Arc<Health>,
    restarts: u32,
) {
    if restarts > 0 {
        // The claims of the run that panicked: give them back now rather
        // than after their lease.
        if let Err(e) = q.release(&cfg.owner).await {
            tracing::warn!(tenant = q.tenant(), "timer worker: releasing claims after a panic failed (they expire with the lease): {e}");
        }
    }
    let wakeups = q.wakeups().await;
    let wake = &wakeups.wake;
    while !*stop.borrow() {
        let now = clock.now();
        let items = match q
            .claim(&cfg.owner, now, now, now + cfg.lease, cfg.batch)
            .await
        {
            Ok(items) => items,
            Err(e) => {
                Counters::add(&stats.errors, 1);
                tracing::error!(tenant = q.tenant(), "timer worker: claim failed: {e}");
                pause(&*clock, now + chrono::Duration::seconds(1), &mut stop, wake).await;
                continue;
            }
        };
        let full = items.len() as i64 >= cfg.batch;
        if !items.is_empty() {
            fire_claimed(&q, &*clock, &cfg, &items, &stats, &health).await;
        }
        if full || *stop.borrow() {
            continue;
        }
        // Armed since the last look but maybe not committed when the queue
        // is read below: wake for it anyway.
        let armed = wake.take_armed();
        let mut until = match q.next_due_at().await {
            Ok(Some(next)) if next <= now => now + cfg.busy_poll,
            Ok(Some(next)) => next.min(now + cfg.max_idle),
            Ok(None) => now + cfg.max_idle,
            Err(e) => {
                Counters::add(&stats.errors, 1);
                tracing::error!(tenant = q.tenant(), "timer worker: {e}");
                now + chrono::Duration::seconds(1)
            }
        };
        if let Some(a) = armed {
            until = until.min(a);
        }
        pause(&*clock, until, &mut stop, wake).await;
    }
    if let Err(e) = q.release(&cfg.owner).await {
        tracing::warn!(
            tenant = q.tenant(),
            "timer worker: releasing claims failed (they expire with the lease): {e}"
        );
    }
}

/// Fire claimed items so that one failing item (an error or a panic)
/// concerns only itself: a store that batches tries the whole batch in one
/// transaction first; if that fails, each item runs alone, and an item
/// that fails is recorded for a retry (or parked).
async fn fire_claimed<Q: TimerQueue, C: Clock>(
    q: &Q,
    clock: &C,
    cfg: &WorkerConfig,
    items: &[DueItem],
    stats: &Counters,
    health: &Health,
) {
    if q.batches() && items.len() > 1 {
        match AssertUnwindSafe(q.fire_batch(items)).catch_unwind().await {
            Ok(Ok((fired, discarded))) => {
                Counters::add(&stats.fired, fired);
                Counters::add(&stats.discarded, discarded);
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    tenant = q.tenant(),
                    "timer batch rolled back, firing one by one: {e}"
                )
            }
            Err(p) => tracing::warn!(
                tenant = q.tenant(),
                "timer batch panicked, firing one by one: {}",
                panic_message(&*p)
            ),
        }
    }
    for item in items {
        let error = match AssertUnwindSafe(q.fire_item(item)).catch_unwind().await {
            Ok(Ok(Ran::Fired)) => {
                Counters::add(&stats.fired, 1);
                continue;
            }
            Ok(Ok(Ran::Discarded)) => {
                Counters::add(&stats.discarded, 1);
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(p) => {
                let msg = format!("panic: {}", panic_message(&*p));
                health.item_panicked("timer_item", &msg);
                msg
            }
        };
        Counters::add(&stats.errors, 1);
        metrics::counter!("leadflow_timer_failures_total", "tenant" => q.tenant().to_string())
            .increment(1);
        match q.fail(item, &error, clock.now(), &cfg.retry).await {
            Ok(Some(f)) if f.parked => {
                Counters::add(&stats.parked, 1);
                tracing::error!(tenant = q.tenant(), record = item.record, timer = %item.timer, attempts = f.attempts,
                    "timer item parked after its last attempt (retry: POST /v1/timers/parked/{}/{}/retry): {error}", item.record, item.timer);
            }
            Ok(Some(f)) => {
                tracing::warn!(tenant = q.tenant(), record = item.record, timer = %item.timer, attempts = f.attempts,
                    next_attempt = ?f.next_attempt, "timer item failed, retried later: {error}");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(tenant = q.tenant(), record = item.record, timer = %item.timer,
                "timer item failed ({error}) and recording the failure failed too (retried after the lease): {e}")
            }
        }
    }
}

/// Sleep until `until` (earlier if a timer is armed before it), a
/// shutdown, or a wake-up.
async fn pause<C: Clock>(
    clock: &C,
    until: DateTime<Utc>,
    stop: &mut watch::Receiver<bool>,
    wake: &Wake,
) {
    let until = wake.sleep_until(until);
    tokio::select! {
        _ = clock.sleep_until(until) => {}
        _ = stop.wait_for(|s| *s) => {}
        _ = wake.notified() => {}
    }
    wake.awake();
}
