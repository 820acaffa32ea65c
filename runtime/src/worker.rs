//! The timer worker: a tokio task that claims due timers in batches (with a
//! lease, so a crashed worker's claims come back) and fires each as a system
//! transition in its own transaction. Several workers may share a database:
//! claims skip rows another worker holds, and firing is exactly once per
//! arming whatever happens to leases (see `pg::PgBackend::fire_item`).
//!
//! Between batches it sleeps until the next due instant, at most
//! `max_idle`; on PostgreSQL a NOTIFY from an arming transaction wakes it
//! early.

use crate::apply::{DueItem, Ran};
use crate::backend::{Backend, Error};
use crate::clock::Clock;
use crate::pg::{PgBackend, TIMER_CHANNEL};
use crate::sqlite::SqliteBackend;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A store whose due queue workers can claim from.
pub trait TimerQueue: Clone + Send + Sync + 'static {
    fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<DueItem>, Error>> + Send;
    fn fire_item(&self, item: &DueItem) -> impl Future<Output = Result<Ran, Error>> + Send;
    /// Fire several claimed items; returns (fired, discarded). Stores may
    /// commit them together; each item is still all-or-nothing.
    fn fire_batch(
        &self,
        items: &[DueItem],
    ) -> impl Future<Output = Result<(u64, u64), Error>> + Send {
        async move {
            let mut counts = (0, 0);
            for item in items {
                match self.fire_item(item).await? {
                    Ran::Fired => counts.0 += 1,
                    Ran::Discarded => counts.1 += 1,
                }
            }
            Ok(counts)
        }
    }
    fn release(&self, owner: &str) -> impl Future<Output = Result<u64, Error>> + Send;
    fn next_due_at(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>, Error>> + Send;
    /// A listener woken when a timer is armed to be due soon, if the store has one.
    fn listener(&self) -> impl Future<Output = Option<PgListener>> + Send;
}

impl TimerQueue for PgBackend {
    async fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueItem>, Error> {
        PgBackend::claim(self, owner, due_by, wall, lease_until, limit).await
    }
    async fn fire_item(&self, item: &DueItem) -> Result<Ran, Error> {
        PgBackend::fire_item(self, item).await
    }
    async fn fire_batch(&self, items: &[DueItem]) -> Result<(u64, u64), Error> {
        PgBackend::fire_batch(self, items).await
    }
    async fn release(&self, owner: &str) -> Result<u64, Error> {
        PgBackend::release(self, owner).await
    }
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.next_due().await
    }
    async fn listener(&self) -> Option<PgListener> {
        let mut l = match PgListener::connect_with(self.pool()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("timer worker: no LISTEN connection, polling instead: {e}");
                return None;
            }
        };
        match l.listen(TIMER_CHANNEL).await {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::warn!("timer worker: LISTEN failed, polling instead: {e}");
                None
            }
        }
    }
}

impl TimerQueue for SqliteBackend {
    async fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueItem>, Error> {
        SqliteBackend::claim(self, owner, due_by, wall, lease_until, limit).await
    }
    async fn fire_item(&self, item: &DueItem) -> Result<Ran, Error> {
        SqliteBackend::fire_item(self, item).await
    }
    async fn release(&self, owner: &str) -> Result<u64, Error> {
        SqliteBackend::release(self, owner).await
    }
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.next_due().await
    }
    async fn listener(&self) -> Option<PgListener> {
        None
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
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            owner: crate::sql::owner_id(),
            batch: 100,
            lease: chrono::Duration::seconds(30),
            max_idle: chrono::Duration::seconds(30),
            busy_poll: chrono::Duration::milliseconds(200),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub fired: u64,
    pub discarded: u64,
    pub errors: u64,
}

/// A running worker. Dropping it without [`WorkerHandle::shutdown`] leaves
/// its claims to expire with their lease.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    join: JoinHandle<WorkerStats>,
}

impl WorkerHandle {
    /// Stop after the item in flight, release unfired claims, return counts.
    pub async fn shutdown(self) -> WorkerStats {
        self.stop.send_replace(true);
        self.join.await.unwrap_or_default()
    }
}

/// Start a worker on the current tokio runtime.
pub fn spawn<Q: TimerQueue, C: Clock>(queue: Q, clock: Arc<C>, cfg: WorkerConfig) -> WorkerHandle {
    let (stop, rx) = watch::channel(false);
    let join = tokio::spawn(run(queue, clock, cfg, rx));
    WorkerHandle { stop, join }
}

async fn run<Q: TimerQueue, C: Clock>(
    q: Q,
    clock: Arc<C>,
    cfg: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut listener = q.listener().await;
    while !*stop.borrow() {
        let now = clock.now();
        let items = match q
            .claim(&cfg.owner, now, now, now + cfg.lease, cfg.batch)
            .await
        {
            Ok(items) => items,
            Err(e) => {
                stats.errors += 1;
                tracing::error!("timer worker: claim failed: {e}");
                pause(
                    &*clock,
                    now + chrono::Duration::seconds(1),
                    &mut stop,
                    &mut listener,
                )
                .await;
                continue;
            }
        };
        let full = items.len() as i64 >= cfg.batch;
        if !items.is_empty() {
            match q.fire_batch(&items).await {
                Ok((fired, discarded)) => {
                    stats.fired += fired;
                    stats.discarded += discarded;
                }
                Err(e) => {
                    stats.errors += 1;
                    tracing::error!("timer worker: firing failed, retried after the lease: {e}");
                }
            }
        }
        if full || *stop.borrow() {
            continue;
        }
        let wake = match q.next_due_at().await {
            Ok(Some(next)) if next <= now => now + cfg.busy_poll,
            Ok(Some(next)) => next.min(now + cfg.max_idle),
            Ok(None) => now + cfg.max_idle,
            Err(e) => {
                stats.errors += 1;
                tracing::error!("timer worker: {e}");
                now + chrono::Duration::seconds(1)
            }
        };
        pause(&*clock, wake, &mut stop, &mut listener).await;
    }
    if let Err(e) = q.release(&cfg.owner).await {
        tracing::warn!("timer worker: releasing claims failed (they expire with the lease): {e}");
    }
    stats
}

/// Sleep until `until`, a shutdown, or a notification.
async fn pause<C: Clock>(
    clock: &C,
    until: DateTime<Utc>,
    stop: &mut watch::Receiver<bool>,
    listener: &mut Option<PgListener>,
) {
    let notified = async {
        match listener {
            Some(l) => {
                if l.recv().await.is_err() {
                    // The listener reconnects on its own; avoid a hot loop meanwhile.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = clock.sleep_until(until) => {}
        _ = stop.wait_for(|s| *s) => {}
        _ = notified => {}
    }
}
