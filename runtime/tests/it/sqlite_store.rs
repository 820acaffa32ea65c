//! SQLite-only checks: concurrent writers, the timer worker on a manual clock.

use crate::common;

use chrono::Duration;
use common::*;
use leadflow_engine::Value;
use leadflow_runtime::backend::{Backend, Error};
use leadflow_runtime::clock::{Clock, ManualClock};
use leadflow_runtime::worker::{self, WorkerConfig};
use leadflow_runtime::SqliteBackend;
use std::collections::HashSet;
use std::sync::Arc;

async fn open(dir: &tempfile::TempDir) -> SqliteBackend {
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    SqliteBackend::open(&url, "acme", set()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_writers_on_one_record_serialize() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let r = b
        .create(create_req("counter", vec![], &agent("a1"), t0()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let b = b.clone();
        let id = r.id;
        tasks.push(tokio::spawn(async move {
            let a = agent("a1");
            let mut out = Vec::new();
            for _ in 0..5 {
                let rev = b.get(id).await.unwrap().unwrap().revision;
                let mut req = fire_req(
                    id,
                    "bump",
                    vec![("n".into(), Value::Int(rev + 1))],
                    &a,
                    t0(),
                );
                req.expected_revision = Some(rev);
                out.push(match b.fire(req).await {
                    Ok(r) => Ok(r.revision),
                    Err(Error::Conflict { .. }) => Err(()),
                    Err(e) => panic!("{e}"),
                });
            }
            out
        }));
    }
    let mut wins = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        for r in t.await.unwrap() {
            match r {
                Ok(rev) => wins.push(rev),
                Err(()) => conflicts += 1,
            }
        }
    }
    let unique: HashSet<i64> = wins.iter().copied().collect();
    assert_eq!(unique.len(), wins.len(), "one winner per revision");
    assert!(conflicts > 0);
    let rec = b.get(r.id).await.unwrap().unwrap();
    assert_eq!(rec.revision, 1 + wins.len() as i64);
    let h = b.history(r.id).await.unwrap();
    assert_eq!(h.len(), wins.len());
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e.new, serde_json::json!(i as i64 + 2), "no gaps in history");
    }
}

/// The worker follows a manual clock: nothing fires before the due instant,
/// everything fires once after it, and claims are released on shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_follows_a_manual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    for k in 0..20 {
        b.create(create_req(
            "tick",
            vec![("k".into(), Value::Int(k))],
            &agent("a1"),
            t0(),
        ))
        .await
        .unwrap();
    }
    let clock = Arc::new(ManualClock::new(t0()));
    let w = worker::spawn(
        b.clone(),
        clock.clone(),
        WorkerConfig {
            batch: 7,
            ..WorkerConfig::default()
        },
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        b.next_due().await.unwrap(),
        Some(t0() + Duration::minutes(1))
    );
    clock.advance(Duration::seconds(59));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        b.next_due().await.unwrap(),
        Some(t0() + Duration::minutes(1)),
        "not due yet"
    );
    clock.advance(Duration::seconds(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while b.next_due().await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let stats = w.shutdown().await;
    assert_eq!(stats.fired, 20);
    for id in 1..=20 {
        let r = b.get(id).await.unwrap().unwrap();
        assert_eq!(
            (r.state.as_str(), r.revision, r.updated_at),
            ("done", 2, clock.now())
        );
        assert_eq!(b.outbox(id).await.unwrap().len(), 1);
    }
    // Claims of a stopped worker are given back.
    let c = b
        .create(create_req("tick", vec![], &agent("a1"), clock.now()))
        .await
        .unwrap();
    let later = clock.now() + Duration::minutes(5);
    let items = b
        .claim("gone", later, later, later + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(b.release("gone").await.unwrap(), 1);
    assert_eq!(b.run_due(later).await.unwrap(), 1);
    assert_eq!(b.get(c.id).await.unwrap().unwrap().state, "done");
}

/// Idempotency keys are kept 24 hours: an older key is forgotten and purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_idempotency_keys_expire_after_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let a = agent("a1");
    let r = b
        .create(create_req("counter", vec![], &a, t0()))
        .await
        .unwrap();
    bump_with_key(&b, r.id, "k1", "first").await.unwrap();
    bump_with_key(&b, r.id, "k2", "first").await.unwrap();
    assert!(matches!(
        bump_with_key(&b, r.id, "k1", "second").await,
        Err(Error::IdempotencyMismatch)
    ));
    sqlx::query("UPDATE idempotency SET created_at = created_at - ?")
        .bind(Duration::hours(25).num_microseconds().unwrap())
        .execute(b.pool())
        .await
        .unwrap();
    // k1 is forgotten: another request with it runs, and k2 (expired) is
    // deleted by that keyed write.
    let again = bump_with_key(&b, r.id, "k1", "second").await.unwrap();
    assert_eq!(again.revision, r.revision + 3);
    assert_eq!(
        bump_with_key(&b, r.id, "k1", "second").await.unwrap(),
        again
    );
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency")
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(keys, 1, "the expired key was purged");
}

/// A timer armed 2 s ahead while the worker sleeps (its idle period is
/// 30 s) fires on time: the arming transaction wakes the worker in
/// process, which then sleeps until the new due instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_timer_armed_while_the_worker_sleeps_fires_on_time() {
    use chrono::Utc;
    use leadflow_runtime::clock::SystemClock;
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let w = worker::spawn(
        b.clone(),
        Arc::new(SystemClock),
        WorkerConfig {
            max_idle: Duration::seconds(30),
            ..WorkerConfig::default()
        },
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let due = Utc::now() + Duration::seconds(2);
    let r = b
        .create(create_req(
            "tick",
            vec![],
            &agent("a1"),
            due - Duration::minutes(1),
        ))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.get(r.id).await.unwrap().unwrap().state != "done" {
        assert!(std::time::Instant::now() < deadline, "not fired in 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let late = Utc::now() - due;
    assert!(
        late < Duration::seconds(1),
        "fired {late} after its due instant"
    );
    assert_eq!(b.wake().woken(), 1, "woken once, by the arming");
    assert_eq!(w.shutdown().await.fired, 1);
}
