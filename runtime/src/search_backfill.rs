//! The search backfill task: after a publish changes a workflow's searched
//! fields, the words of its records are computed again here, in the
//! background, one short transaction per batch ([`crate::sql::query`]'s
//! `backfill_search_batch`). A publish therefore returns at once even on
//! millions of records; searches leave the records not done yet out (their
//! words are the previous version's). One task per tenant and daemon,
//! supervised like the timer workers; two daemons on one PostgreSQL
//! database share the batches (`FOR UPDATE SKIP LOCKED`), and a restart
//! resumes where the last committed batch ended.

use crate::any::AnyBackend;
use crate::background::{supervise, Health, Restart};
use crate::sql::query::{RecordQuery, BACKFILL_BATCH};
use std::sync::Arc;
use std::time::Duration;

/// How the backfill task runs.
#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// Ids per batch (one transaction each).
    pub batch: i64,
    /// Pause between looks for work when there is none.
    pub idle: Duration,
    pub restart: Restart,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        BackfillConfig {
            batch: BACKFILL_BATCH,
            idle: Duration::from_secs(2),
            restart: Restart::default(),
        }
    }
}

/// A running backfill task.
pub struct BackfillHandle {
    stop: tokio::sync::watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    health: Arc<Health>,
}

impl BackfillHandle {
    /// Stop after the batch in flight (it commits or rolls back whole).
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.join.await {
            tracing::error!("search backfill task died: {e}");
        }
    }

    /// The task's liveness (for `/readyz`).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }
}

/// Start the backfill task of one tenant's store. A store error is logged
/// and retried after `cfg.idle`; a panic restarts the task with backoff.
pub fn spawn(b: AnyBackend, tenant: &str, cfg: BackfillConfig) -> BackfillHandle {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let health = Health::new("search_backfill", tenant, &cfg.restart);
    let stop_rx = rx.clone();
    let tenant = tenant.to_string();
    let join = tokio::spawn(supervise(
        health.clone(),
        cfg.restart.clone(),
        rx,
        move |_| {
            let (b, cfg, mut rx, tenant) =
                (b.clone(), cfg.clone(), stop_rx.clone(), tenant.clone());
            async move {
                // The index is checked at start (a daemon killed while
                // building it left it invalid) and after each backfill.
                let mut check_index = true;
                while !*rx.borrow() {
                    let worked = match b.backfill_search_batch(cfg.batch).await {
                        Ok(Some(done)) => {
                            if done.done >= done.upto {
                                tracing::info!(%tenant, workflow = %done.workflow,
                                    "full-text search words computed again");
                            }
                            check_index = true;
                            true
                        }
                        Ok(None) => false,
                        Err(e) => {
                            tracing::error!(%tenant, "search backfill: {e}");
                            false
                        }
                    };
                    if worked {
                        // Yield between batches: writers get the tables.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    if check_index {
                        match b.ensure_search_index().await {
                            Ok(()) => check_index = false,
                            Err(e) => tracing::error!(%tenant, "search index: {e}"),
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(cfg.idle) => {}
                        _ = rx.wait_for(|s| *s) => {}
                    }
                }
            }
        },
    ));
    BackfillHandle { stop, join, health }
}
