//! Group commit: transitions requested concurrently share one database
//! transaction, so many of them cost one commit (one WAL flush) and a few
//! round trips instead of each paying its own.
//!
//! A store that uses it starts a few writer tasks, each with its own queue;
//! a record always goes to the same writer (id modulo the writers), so
//! batches never wait for each other's row locks. A caller queues its
//! request and waits for its own answer; a free writer takes every request
//! queued for it at that moment (up to a limit) and runs them as one batch. Nothing
//! waits for a batch to fill: a request arriving at an idle store runs alone
//! at once, and batches grow only while the writers are busy, which is when
//! sharing a commit pays. Each answer is sent after the batch committed, so
//! a success is as durable as with one transaction per request.
//!
//! A panic while a batch runs is caught: that batch's requests answer a
//! storage error (counted in `leadflow_task_panics_total{task="group_writer"}`)
//! and the writer goes on with the next batch.
//!
//! How a batch runs is the store's business (`pg.rs`): one transaction that
//! locks the batch's records in id order, fires each request as it would
//! alone (refusals and conflicts only concern their own request, since the
//! engine decides before anything is written), then commits; if anything
//! else fails before the commit, the batch is rolled back and each request
//! runs on its own.

use crate::apply::{self, Tx, Versions};
use crate::backend::{
    Error, FireRequest, Idempotency, IdempotencyOwned, RecordId, StoredRecord, Visible,
};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use leadflow_engine::{Actor, Value};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most requests one batch takes.
pub const MAX_GROUP: usize = 64;

/// A [`FireRequest`] that owns its parts, so it can wait in the queue.
#[derive(Debug, Clone)]
pub struct OwnedFire {
    pub record: RecordId,
    pub transition: String,
    pub input: Vec<(String, Value)>,
    pub actor: Actor,
    pub now: DateTime<Utc>,
    pub expected_revision: Option<i64>,
    pub idempotency_key: Option<IdempotencyOwned>,
    pub visible: Option<Visible>,
    pub bulk: bool,
}

impl OwnedFire {
    pub fn new(req: &FireRequest<'_>) -> OwnedFire {
        OwnedFire {
            record: req.record,
            transition: req.transition.to_string(),
            input: req.input.clone(),
            actor: req.actor.clone(),
            now: req.now,
            expected_revision: req.expected_revision,
            idempotency_key: req.idempotency_key.map(Idempotency::owned),
            visible: req.visible.clone(),
            bulk: req.bulk,
        }
    }

    pub fn request(&self) -> FireRequest<'_> {
        FireRequest {
            record: self.record,
            transition: &self.transition,
            input: self.input.clone(),
            actor: &self.actor,
            now: self.now,
            expected_revision: self.expected_revision,
            idempotency_key: self.idempotency_key.as_ref().map(|k| k.borrow()),
            visible: self.visible.clone(),
            bulk: self.bulk,
        }
    }
}

pub(crate) type Answer = Result<StoredRecord, Error>;
type Job = (OwnedFire, oneshot::Sender<Answer>);

/// Runs one batch; answers in the order of the requests.
pub type RunBatch =
    Arc<dyn Fn(Vec<OwnedFire>) -> Pin<Box<dyn Future<Output = Vec<Answer>> + Send>> + Send + Sync>;

/// The queue and its writers. Dropping it stops the writers once the queue
/// is empty.
pub struct Group {
    /// One queue per writer; a record always goes to the same one.
    queues: Vec<mpsc::UnboundedSender<Job>>,
    stats: Arc<Stats>,
}

/// Counters since start: batches run and requests they carried.
#[derive(Debug, Default)]
struct Stats {
    batches: AtomicU64,
    requests: AtomicU64,
}

impl Group {
    /// Start `writers` writer tasks on the current tokio runtime; `None`
    /// outside a runtime (the store then runs each request on its own).
    pub fn start(writers: usize, max_batch: usize, run: RunBatch) -> Option<Group> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let stats = Arc::new(Stats::default());
        let mut queues = Vec::new();
        for _ in 0..writers.max(1) {
            let (queue, rx) = mpsc::unbounded_channel();
            queues.push(queue);
            rt.spawn(writer(rx, run.clone(), max_batch.max(1), stats.clone()));
        }
        Some(Group { queues, stats })
    }

    /// (batches, requests) run so far: requests / batches is the mean
    /// number of transitions that shared a commit.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.requests.load(Ordering::Relaxed),
        )
    }

    /// Queue `req` and wait for its answer. `None` if the writers are gone
    /// (their runtime shut down) before taking it: the caller runs it itself.
    pub async fn fire(&self, req: &FireRequest<'_>) -> Option<Answer> {
        let (tx, rx) = oneshot::channel();
        // Requests for one record always meet in the same writer, so two
        // batches never wait for each other's row locks, and requests for
        // one record run in the order they were queued.
        let w = req.record.unsigned_abs() as usize % self.queues.len();
        self.queues[w].send((OwnedFire::new(req), tx)).ok()?;
        Some(rx.await.unwrap_or_else(|_| {
            Err(Error::Storage(crate::error::StoreError::new(
                crate::error::StoreErrorKind::Unavailable,
                "the transition writer stopped before answering (shutdown)",
            )))
        }))
    }
}

/// What a store provides to run batches.
pub(crate) trait Batched {
    /// The batch in one transaction. `Err`: rolled back before the commit
    /// (nothing happened).
    async fn try_group(&self, jobs: &[OwnedFire]) -> Result<Vec<Answer>, Error>;
    /// One request in its own transaction.
    async fn fire_alone(&self, req: &FireRequest<'_>) -> Answer;
}

/// Run a batch: one transaction for all, or, if it fails before its commit,
/// each request on its own.
pub(crate) async fn run<B: Batched>(store: &B, jobs: Vec<OwnedFire>) -> Vec<Answer> {
    if jobs.len() > 1 {
        match store.try_group(&jobs).await {
            Ok(answers) => return answers,
            Err(e) => tracing::debug!("transition batch rolled back, firing one by one: {e}"),
        }
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for j in &jobs {
        answers.push(store.fire_alone(&j.request()).await);
    }
    answers
}

/// Fire every request of a batch inside the store's open transaction `tx`.
/// `Ok`: each request's answer (refusals, conflicts and unknown records
/// concern only their own request: they are decided before anything of it
/// is written). `Err`: something else failed; the caller rolls the whole
/// transaction back and runs each request on its own.
pub(crate) async fn fire_in<T: Tx>(
    tx: &mut T,
    versions: &Versions,
    jobs: &[OwnedFire],
) -> Result<Vec<Answer>, Error> {
    let mut answers = Vec::with_capacity(jobs.len());
    for j in jobs {
        match apply::fire(tx, versions, &j.request()).await {
            Ok(r) => answers.push(Ok(r)),
            Err(
                e @ (Error::Refused(_)
                | Error::Conflict { .. }
                | Error::NotFound(_)
                | Error::UnknownWorkflow(_)),
            ) => answers.push(Err(e)),
            Err(e) => return Err(e),
        }
    }
    Ok(answers)
}

/// The answers of a batch whose commit failed: whether it took effect is
/// unknown, so every request that would have changed something gets the
/// storage error (as a lone request would) and none is retried.
pub(crate) fn commit_failed(answers: Vec<Answer>, e: &Error) -> Vec<Answer> {
    let err = match e {
        Error::Storage(s) => s.clone(),
        other => crate::error::StoreError::other(other.to_string()),
    };
    answers
        .into_iter()
        .map(|a| a.and_then(|_| Err(Error::Storage(err.clone()))))
        .collect()
}

async fn writer(
    mut rx: mpsc::UnboundedReceiver<Job>,
    run: RunBatch,
    max_batch: usize,
    stats: Arc<Stats>,
) {
    loop {
        let mut jobs = Vec::new();
        match rx.recv().await {
            Some(j) => jobs.push(j),
            None => return,
        }
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (reqs, replies): (Vec<OwnedFire>, Vec<_>) = jobs.into_iter().unzip();
        let n = reqs.len();
        metrics::histogram!("leadflow_group_commit_batch_size").record(n as f64);
        let records: Vec<RecordId> = reqs.iter().map(|r| r.record).collect();
        // A panic fails this batch's requests only; the writer keeps
        // serving (each request's transaction rolled back when dropped).
        let answers = match AssertUnwindSafe(run(reqs)).catch_unwind().await {
            Ok(answers) => answers,
            Err(p) => {
                let msg = crate::background::panic_message(&*p);
                metrics::counter!("leadflow_task_panics_total", "task" => "group_writer")
                    .increment(1);
                tracing::error!(
                    ?records,
                    "transition batch panicked, its requests fail: {msg}"
                );
                (0..n)
                    .map(|_| {
                        Err(Error::storage(
                            "internal error while running the transition",
                        ))
                    })
                    .collect()
            }
        };
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.requests.fetch_add(n as u64, Ordering::Relaxed);
        debug_assert_eq!(answers.len(), n);
        for (a, reply) in answers.into_iter().zip(replies) {
            // The caller may have gone (client disconnected): the
            // transition committed anyway, as it would have alone.
            let _ = reply.send(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: RecordId) -> StoredRecord {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        StoredRecord {
            id,
            workflow: "w".into(),
            version: "v".into(),
            state: "s".into(),
            fields: Default::default(),
            assignee: None,
            revision: 1,
            created_at: at,
            entered_at: at,
            updated_at: at,
        }
    }

    /// A batch that panics fails its own requests; the writer lives on and
    /// answers the next request.
    #[tokio::test]
    async fn a_panicking_batch_fails_its_requests_and_the_writer_keeps_running() {
        let run: RunBatch = Arc::new(|jobs: Vec<OwnedFire>| {
            Box::pin(async move {
                if jobs.iter().any(|j| j.record == 13) {
                    panic!("injected: record 13");
                }
                jobs.iter().map(|j| Ok(record(j.record))).collect()
            })
        });
        let g = Group::start(1, MAX_GROUP, run).unwrap();
        let actor = Actor::system();
        let req = |id| FireRequest {
            record: id,
            transition: "t",
            input: Vec::new(),
            actor: &actor,
            now: DateTime::<Utc>::UNIX_EPOCH,
            expected_revision: None,
            idempotency_key: None,
            visible: None,
            bulk: false,
        };
        let bad = g.fire(&req(13)).await.unwrap();
        assert!(matches!(bad, Err(Error::Storage(m)) if m.to_string().contains("internal error")));
        let good = g.fire(&req(14)).await.unwrap().unwrap();
        assert_eq!(good.id, 14);
        assert_eq!(g.stats(), (2, 2));
    }
}
