//! A claimed timer batch in which firing one item cancels or re-arms another
//! item of the same batch (PostgreSQL: `PgBackend::fire_batch`, one
//! transaction with prefetched locks and takes; SQLite: the worker's
//! default batch path, one transaction per item). The cancelled item must
//! not fire; the re-armed one must fire once, at its new due instant only,
//! even when that instant is already past when the batch runs.
//!
//! Also: a poison item (one that fails, or panics, every time it is fired)
//! is retried with backoff, parked after its last attempt and never holds
//! back the items behind it, on both SQL stores; the worker itself is
//! supervised (a panic restarts it, and shutdown reports it).

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use leadflow_engine::{load, Project, SourceFile, WorkflowSet};
use leadflow_runtime::apply::{DueItem, Ran};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::backend::{Error, RecordId};
use leadflow_runtime::clock::SystemClock;
use leadflow_runtime::worker::{self, Failed, ParkedTimer, Retry, TimerQueue, WorkerConfig};
use leadflow_runtime::{PgBackend, SqliteBackend};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Timer `a` (1m) moves the record out of the only state timer `b` (2m) is
/// armed in: firing `a` cancels `b`.
const CANCEL: &str = r#"
[workflow]
id = "cancel"
initial = "open"
[fields.log]
type = "list"
[states.open]
[states.moved]
[states.rung]
[states.done]
final = true
[transitions.move]
from = ["open"]
to = "moved"
by = ["system"]
do = [{ append = "log", value = "a" }]
[transitions.ring]
from = ["open", "moved"]
to = "rung"
by = ["system"]
do = [{ append = "log", value = "b" }]
[transitions.finish]
from = ["open", "moved", "rung"]
to = "done"
by = ["agent"]
[timers.a]
in = ["open"]
after = "1m"
fire = "move"
[timers.b]
in = ["open"]
after = "2m"
fire = "ring"
"#;

/// Timer `c` (1m) moves the record to a state where timer `d` (2m) is also
/// armed, and re-arms `d`: `d` is then due 2m after `c` fired.
const REARM: &str = r#"
[workflow]
id = "rearm"
initial = "open"
[fields.log]
type = "list"
[states.open]
[states.poked]
[states.rung]
[states.done]
final = true
[transitions.poke]
from = ["open"]
to = "poked"
by = ["system"]
rearm = ["d"]
do = [{ append = "log", value = "c" }]
[transitions.ding]
from = ["open", "poked"]
to = "rung"
by = ["system"]
do = [{ append = "log", value = "d" }]
[transitions.finish]
from = ["open", "poked", "rung"]
to = "done"
by = ["agent"]
[timers.c]
in = ["open"]
after = "1m"
fire = "poke"
[timers.d]
in = ["open", "poked"]
after = "2m"
fire = "ding"
"#;

fn workflows() -> Arc<WorkflowSet> {
    let l = load(&Project {
        workflows: vec![
            SourceFile::new("workflows/cancel.toml", CANCEL),
            SourceFile::new("workflows/rearm.toml", REARM),
        ],
        ..Project::default()
    });
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    Arc::new(l.set)
}

fn min(m: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(m)
}

/// Claim everything due by `now` (virtual time) and fire it as one batch.
async fn batch<Q: TimerQueue>(q: &Q, now: DateTime<Utc>) -> (usize, (u64, u64)) {
    let wall = Utc::now();
    let items = q
        .claim("batch-test", now, wall, wall + Duration::seconds(60), 100)
        .await
        .unwrap();
    if items.is_empty() {
        return (0, (0, 0));
    }
    (items.len(), q.fire_batch(&items).await.unwrap())
}

/// Every firing of `transition` in the record's history, by instant.
async fn fired_at<B: Backend>(b: &B, id: i64, transition: &str) -> Vec<DateTime<Utc>> {
    let mut at: Vec<DateTime<Utc>> = b
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.transition == transition && h.field == "log")
        .map(|h| h.at)
        .collect();
    at.dedup();
    at
}

/// `late`: the batch runs after the re-armed instant (3m) has passed, so
/// the new arming is due at once; else it runs at 2m30s, before it.
async fn cancel_and_rearm_inside_one_batch<Q: TimerQueue + Backend>(q: &Q, late: bool) {
    let a = agent("a1");
    let cancel = q
        .create(create_req("cancel", vec![], &a, t0()))
        .await
        .unwrap();
    let rearm = q
        .create(create_req("rearm", vec![], &a, t0()))
        .await
        .unwrap();
    let now = if late {
        min(3) + Duration::seconds(30)
    } else {
        min(2) + Duration::seconds(30)
    };

    // One batch with all four items: a (1m), c (1m), b (2m), d (2m).
    let (claimed, (fired, discarded)) = batch(q, now).await;
    assert_eq!(claimed, 4);
    assert_eq!(
        (fired, discarded),
        (2, 2),
        "a and c fire; b (cancelled by a) and the old arming of d (re-armed by c) are dropped"
    );
    // b is gone; d is armed again, due 2m after c fired.
    assert!(q.timers(cancel.id).await.unwrap().is_empty());
    let t = q.timers(rearm.id).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].timer.as_str(), t[0].due), ("d", min(3)));

    // The new arming fires on the next claim that reaches 3m, once.
    let (claimed, counts) = batch(
        q,
        if late {
            now
        } else {
            min(3) - Duration::seconds(1)
        },
    )
    .await;
    if late {
        assert_eq!((claimed, counts), (1, (1, 0)));
    } else {
        assert_eq!(claimed, 0, "not before its new due instant");
        assert_eq!(batch(q, min(3)).await, (1, (1, 0)));
    }
    assert_eq!(batch(q, min(60)).await, (0, (0, 0)), "nothing fires twice");
    assert_eq!(q.run_due(min(60)).await.unwrap(), 0);

    let c = q.get(cancel.id).await.unwrap().unwrap();
    assert_eq!((c.state.as_str(), c.revision), ("moved", 2));
    assert_eq!(c.fields["log"], serde_json::json!(["a"]));
    assert_eq!(fired_at(q, cancel.id, "move").await, [min(1)]);
    assert!(fired_at(q, cancel.id, "ring").await.is_empty());

    let r = q.get(rearm.id).await.unwrap().unwrap();
    assert_eq!((r.state.as_str(), r.revision), ("rung", 3));
    assert_eq!(r.fields["log"], serde_json::json!(["c", "d"]));
    assert_eq!(fired_at(q, rearm.id, "poke").await, [min(1)]);
    assert_eq!(
        fired_at(q, rearm.id, "ding").await,
        [min(3)],
        "d fired once, at its new due instant (the old one was 2m)"
    );
}

#[tokio::test]
async fn pg_batch_items_cancelled_or_rearmed_by_the_batch_fire_correctly() {
    let db = PgDb::new().await;
    for (tenant, late) in [("early", false), ("late", true)] {
        let b = PgBackend::open(&db.url, tenant, workflows()).await.unwrap();
        cancel_and_rearm_inside_one_batch(&b, late).await;
        b.pool().close().await;
    }
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_batch_items_cancelled_or_rearmed_by_the_batch_fire_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("batch.db").display());
    for (tenant, late) in [("early", false), ("late", true)] {
        let b = SqliteBackend::open(&url, tenant, workflows())
            .await
            .unwrap();
        cancel_and_rearm_inside_one_batch(&b, late).await;
        b.pool().close().await;
        b.read_pool().close().await;
    }
}

/// Makes `fire_item` (and `fire_batch`, for a batch holding it) panic for
/// one record, and `claim` panic once if asked: faults injected around a
/// real store, which does everything else.
#[derive(Clone)]
struct Faulty<Q> {
    inner: Q,
    panic_record: Option<RecordId>,
    panic_claim_once: Arc<AtomicBool>,
}

impl<Q: TimerQueue> TimerQueue for Faulty<Q> {
    const BATCHES: bool = Q::BATCHES;
    async fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueItem>, Error> {
        let items = self
            .inner
            .claim(owner, due_by, wall, lease_until, limit)
            .await?;
        if !items.is_empty() && self.panic_claim_once.swap(false, Ordering::SeqCst) {
            panic!("injected: claim panicked holding {} items", items.len());
        }
        Ok(items)
    }
    async fn fire_item(&self, item: &DueItem) -> Result<Ran, Error> {
        if Some(item.record) == self.panic_record {
            panic!("injected: record {} panics", item.record);
        }
        self.inner.fire_item(item).await
    }
    async fn fire_batch(&self, items: &[DueItem]) -> Result<(u64, u64), Error> {
        if items.iter().any(|i| Some(i.record) == self.panic_record) {
            panic!(
                "injected: a batch with record {:?} panics",
                self.panic_record
            );
        }
        self.inner.fire_batch(items).await
    }
    async fn release(&self, owner: &str) -> Result<u64, Error> {
        self.inner.release(owner).await
    }
    async fn fail(
        &self,
        item: &DueItem,
        error: &str,
        now: DateTime<Utc>,
        retry: &Retry,
    ) -> Result<Option<Failed>, Error> {
        self.inner.fail(item, error, now, retry).await
    }
    async fn parked(&self) -> Result<Vec<ParkedTimer>, Error> {
        self.inner.parked().await
    }
    async fn retry_parked(&self, record: RecordId, timer: &str) -> Result<bool, Error> {
        self.inner.retry_parked(record, timer).await
    }
    fn tenant(&self) -> &str {
        self.inner.tenant()
    }
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        self.inner.next_due_at().await
    }
    async fn wakeups(&self) -> leadflow_runtime::wake::Wakeups {
        self.inner.wakeups().await
    }
}

fn faulty<Q>(inner: Q, panic_record: Option<RecordId>, panic_claim_once: bool) -> Faulty<Q> {
    Faulty {
        inner,
        panic_record,
        panic_claim_once: Arc::new(AtomicBool::new(panic_claim_once)),
    }
}

fn fast_retry(owner: &str) -> WorkerConfig {
    WorkerConfig {
        owner: owner.into(),
        busy_poll: Duration::milliseconds(20),
        max_idle: Duration::milliseconds(200),
        retry: Retry {
            max_attempts: 3,
            base: Duration::milliseconds(50),
            cap: Duration::milliseconds(200),
        },
        restart: leadflow_runtime::background::Restart {
            min: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        ..WorkerConfig::default()
    }
}

/// `n` tick records whose alarms are already due, the first one earliest.
async fn due_ticks<B: Backend>(b: &B, n: i64) -> Vec<RecordId> {
    let start = Utc::now() - Duration::minutes(5);
    let mut ids = Vec::new();
    for k in 0..n {
        let r = b
            .create(create_req(
                "tick",
                vec![],
                &agent("a1"),
                start + Duration::seconds(k),
            ))
            .await
            .unwrap();
        ids.push(r.id);
    }
    ids
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn done<B: Backend>(b: &B, ids: &[RecordId]) -> bool {
    for id in ids {
        if b.get(*id).await.unwrap().unwrap().state != "done" {
            return false;
        }
    }
    true
}

/// The first record's version is made unloadable (`poison`), so its alarm
/// fails every time; the records due after it fire anyway, the poison
/// item is parked after 3 attempts with its error, a restarted worker
/// leaves it alone, and once repaired an operator's retry fires it.
async fn poison_item_is_parked_and_never_blocks<Q, F, Fut>(q: &Q, poison: F)
where
    Q: TimerQueue + Backend,
    F: Fn(RecordId, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let ids = due_ticks(q, 6).await;
    let version = q.get(ids[0]).await.unwrap().unwrap().version;
    poison(ids[0], "0000dead".into()).await;

    let w = worker::spawn(q.clone(), Arc::new(SystemClock), fast_retry("poisoned"));
    wait_until("the others fire and the poison item is parked", || async {
        done(q, &ids[1..]).await && q.parked().await.unwrap().len() == 1
    })
    .await;
    let stats = w.shutdown().await;
    assert_eq!(
        (stats.fired, stats.parked, stats.errors, stats.panics),
        (5, 1, 3, 0)
    );
    let p = &q.parked().await.unwrap()[0];
    assert_eq!(
        (p.record, p.timer.as_str(), p.attempts),
        (ids[0], "alarm", 3)
    );
    let err = p.last_error.as_deref().unwrap();
    assert!(
        err.contains("0000dead") && err.contains("not loaded"),
        "{err}"
    );
    assert_eq!(
        q.next_due().await.unwrap(),
        None,
        "a parked item is not due: the worker does not spin on it"
    );

    // A restart does not pick the parked item up again.
    let w = worker::spawn(q.clone(), Arc::new(SystemClock), fast_retry("restarted"));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(w.shutdown().await, worker::WorkerStats::default());
    assert_eq!(q.get(ids[0]).await.unwrap().unwrap().state, "waiting");

    // Repaired and retried by an operator: it fires once, and is gone.
    poison(ids[0], version).await;
    assert!(q.retry_parked(ids[0], "alarm").await.unwrap());
    assert!(
        !q.retry_parked(ids[0], "alarm").await.unwrap(),
        "not parked any more"
    );
    let w = worker::spawn(q.clone(), Arc::new(SystemClock), fast_retry("after-retry"));
    wait_until("the retried item fires", || done(q, &ids[..1])).await;
    assert_eq!(w.shutdown().await.fired, 1);
    assert!(q.parked().await.unwrap().is_empty());
}

/// A record whose item panics when fired (alone or in a batch): the panic
/// concerns that item only; it is parked with the panic as its error.
async fn panicking_item_is_parked<Q: TimerQueue + Backend>(q: &Q) {
    let ids = due_ticks(q, 6).await;
    let f = faulty(q.clone(), Some(ids[2]), false);
    let w = worker::spawn(f, Arc::new(SystemClock), fast_retry("panicky"));
    wait_until(
        "the others fire and the panicking item is parked",
        || async {
            let others: Vec<RecordId> = ids.iter().copied().filter(|i| *i != ids[2]).collect();
            done(q, &others).await && q.parked().await.unwrap().len() == 1
        },
    )
    .await;
    let h = w.health().status();
    assert_eq!(
        (h.state, h.panics),
        ("running", 3),
        "item panics are counted, but they are no restart loop"
    );
    let stats = w.shutdown().await;
    assert_eq!((stats.fired, stats.parked, stats.panics), (5, 1, 3));
    let p = &q.parked().await.unwrap()[0];
    assert_eq!(p.record, ids[2]);
    assert!(
        p.last_error
            .as_deref()
            .unwrap()
            .starts_with("panic: injected"),
        "{p:?}"
    );
}

/// The worker panics while holding claims: it is restarted, gives the
/// claims back at once (not after the 30 s lease), the items fire, and
/// shutdown reports the panic.
async fn panicking_worker_restarts<Q: TimerQueue + Backend>(q: &Q) {
    let ids = due_ticks(q, 4).await;
    let f = faulty(q.clone(), None, true);
    let w = worker::spawn(f, Arc::new(SystemClock), fast_retry("crashy"));
    wait_until("every item fires after the restart", || done(q, &ids)).await;
    let health = w.health();
    let stats = w.shutdown().await;
    assert_eq!((stats.fired, stats.panics), (4, 1));
    let h = health.status();
    assert_eq!(h.state, "stopped");
    assert!(h.last_panic.unwrap().contains("claim panicked"));
}

async fn poison_pg(b: &PgBackend, id: RecordId, version: String) {
    // Row-level security: only inside a transaction that sets the tenant.
    let mut tx = b.tx().await.unwrap();
    sqlx::query("UPDATE records SET version = $1 WHERE id = $2")
        .bind(version)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn poison_sqlite(b: &SqliteBackend, id: RecordId, version: String) {
    sqlx::query("UPDATE records SET version = ? WHERE id = ?")
        .bind(version)
        .bind(id)
        .execute(b.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_poison_and_panicking_timer_items_are_parked_and_the_worker_survives() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "poison", set()).await.unwrap();
    poison_item_is_parked_and_never_blocks(&b, |id, v| poison_pg(&b, id, v)).await;
    let b = PgBackend::open(&db.url, "panics", set()).await.unwrap();
    panicking_item_is_parked(&b).await;
    let b = PgBackend::open(&db.url, "crash", set()).await.unwrap();
    panicking_worker_restarts(&b).await;
    b.pool().close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_poison_and_panicking_timer_items_are_parked_and_the_worker_survives() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("poison.db").display());
    let b = SqliteBackend::open(&url, "poison", set()).await.unwrap();
    poison_item_is_parked_and_never_blocks(&b, |id, v| poison_sqlite(&b, id, v)).await;
    let b = SqliteBackend::open(&url, "panics", set()).await.unwrap();
    panicking_item_is_parked(&b).await;
    let b = SqliteBackend::open(&url, "crash", set()).await.unwrap();
    panicking_worker_restarts(&b).await;
}

#[test]
fn retry_backoff_doubles_is_capped_and_parks_at_the_last_attempt() {
    let r = Retry {
        max_attempts: 5,
        base: Duration::seconds(1),
        cap: Duration::seconds(5),
    };
    let now = t0();
    let delays: Vec<Option<i64>> = (1..=5)
        .map(|a| {
            r.after(a, now)
                .next_attempt
                .map(|n| (n - now).num_seconds())
        })
        .collect();
    assert_eq!(delays, [Some(1), Some(2), Some(4), Some(5), None]);
    assert!(r.after(5, now).parked && !r.after(4, now).parked);
    assert!(r.after(u32::MAX, now).parked);
    let huge = Retry {
        max_attempts: u32::MAX,
        base: Duration::days(365 * 1000),
        cap: Duration::MAX,
    };
    assert!(
        huge.after(40, now).next_attempt.is_some(),
        "no overflow panic"
    );
}
