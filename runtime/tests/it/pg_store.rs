//! PostgreSQL-only guarantees: concurrent writers, row-level security,
//! several timer workers, crash recovery, LISTEN/NOTIFY wake-up.

use crate::common;

use chrono::{Duration, Utc};
use common::*;
use leadflow_engine::Value;
use leadflow_runtime::backend::{Backend, Error, Idempotency};
use leadflow_runtime::clock::SystemClock;
use leadflow_runtime::worker::{self, WorkerConfig};
use leadflow_runtime::PgBackend;
use std::collections::HashSet;
use std::sync::Arc;

/// 32 tasks fire conflicting transitions on one record: exactly one wins per
/// revision, the others get a conflict, and history has no gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_concurrent_writers_on_one_record_serialize() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let a = agent("a1");
    let r = b
        .create(create_req("counter", vec![], &a, t0()))
        .await
        .unwrap();
    let results = contend(b.clone(), r.id).await;
    check_contention(&b, r.id, results).await;
    b.pool().close().await;
    db.drop_db().await;
}

/// The same contention with three group-commit writers (the default is
/// one): requests for several records run in concurrent batches, each
/// record still serializes (one winner per revision, no history gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_several_group_writers_serialize_each_record() {
    let db = PgDb::new().await;
    let opts = leadflow_runtime::pg::PgOptions {
        writers: 3,
        ..Default::default()
    };
    let b = PgBackend::open_with(&db.url, "acme", set(), opts)
        .await
        .unwrap();
    let a = agent("a1");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = b
            .create(create_req("counter", vec![], &a, t0()))
            .await
            .unwrap();
        ids.push(r.id);
    }
    let runs: Vec<_> = ids
        .iter()
        .map(|&id| tokio::spawn(contend(b.clone(), id)))
        .collect();
    for (id, run) in ids.iter().zip(runs) {
        check_contention(&b, *id, run.await.unwrap()).await;
    }
    let (batches, requests) = b.group_stats().expect("group commit on");
    assert!(
        requests > batches,
        "some batches were shared: {batches} batches, {requests} requests"
    );
    b.pool().close().await;
    db.drop_db().await;
}

/// Concurrent requests with one idempotency key: the transition fires once
/// and every request gets the first request's result (none gets an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_concurrent_requests_with_one_idempotency_key_fire_once() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let a = agent("a1");
    let r = b
        .create(create_req("counter", vec![], &a, t0()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let a = agent("a1");
            let mut req = fire_req(r.id, "bump", vec![("n".into(), Value::Int(7))], &a, t0());
            req.idempotency_key = Some(Idempotency {
                key: "form-submit-42",
                request: "bump-7",
            });
            b.fire(req)
                .await
                .map(|s| s.revision)
                .map_err(|e| e.to_string())
        }));
    }
    let mut revisions = HashSet::new();
    for t in tasks {
        revisions.insert(
            t.await
                .unwrap()
                .expect("every request gets the stored result"),
        );
    }
    assert_eq!(revisions.len(), 1, "all see one result: {revisions:?}");
    assert_eq!(
        b.get(r.id).await.unwrap().unwrap().revision,
        r.revision + 1,
        "fired once"
    );
    b.pool().close().await;
    db.drop_db().await;
}

/// Each task reads the revision and fires `bump` with it as the expected one.
async fn contend(b: PgBackend, id: i64) -> Vec<Result<i64, String>> {
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let b = b.clone();
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
                    Err(Error::Conflict { .. }) => Err("conflict".to_string()),
                    Err(e) => Err(e.to_string()),
                });
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

async fn check_contention(b: &PgBackend, id: i64, results: Vec<Result<i64, String>>) {
    let wins: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    let others: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        others.iter().all(|e| *e == "conflict"),
        "only conflicts may fail: {others:?}"
    );
    let unique: HashSet<i64> = wins.iter().copied().collect();
    assert_eq!(unique.len(), wins.len(), "one winner per revision");
    assert!(
        !wins.is_empty() && !others.is_empty(),
        "{} wins, {} conflicts",
        wins.len(),
        others.len()
    );
    let rec = b.get(id).await.unwrap().unwrap();
    assert_eq!(rec.revision, 1 + wins.len() as i64);
    let h = b.history(id).await.unwrap();
    assert_eq!(h.len(), wins.len());
    for (i, e) in h.iter().enumerate() {
        let n = i as i64 + 2;
        let old = if i == 0 {
            serde_json::Value::Null
        } else {
            serde_json::json!(n - 1)
        };
        assert_eq!(
            (&e.old, &e.new),
            (&old, &serde_json::json!(n)),
            "history row {i}"
        );
    }
}

#[tokio::test]
async fn pg_row_level_security_isolates_tenants() {
    let db = PgDb::new().await;
    let a = PgBackend::open(&db.url, "tenant_a", set()).await.unwrap();
    let b = PgBackend::open(&db.url, "tenant_b", set()).await.unwrap();
    let who = agent("a1");
    let ra = a
        .create(create_req(
            "lead",
            vec![("name".into(), s("A"))],
            &who,
            t0(),
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        b.create(create_req(
            "lead",
            vec![("name".into(), s("B"))],
            &who,
            t0(),
        ))
        .await
        .unwrap();
    }
    b.set_actors(vec![agent("b1")]).await.unwrap();
    // The two tenants share nothing but the database: each handle sets its
    // tenant per transaction. No tenant filter in these queries: RLS alone
    // hides tenant B.
    let mut ta = a.tx().await.unwrap();
    for table in [
        "records",
        "history",
        "timers",
        "actors",
        "workflow_versions",
        "tenants",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *ta)
            .await
            .unwrap();
        let expected = match table {
            "records" | "tenants" => 1,
            "history" => 1,
            "timers" => 2,
            "actors" => 0,
            // One version per workflow of the fixture set.
            _ => common::set().workflows.len() as i64,
        };
        assert_eq!(n, expected, "{table} as seen by tenant A");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE tenant_id = 'tenant_b'")
        .fetch_one(&mut *ta)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The app role is not a superuser (superusers bypass RLS).
    let sup: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut *ta)
            .await
            .unwrap();
    assert!(!sup);
    // Writes into another tenant are refused by the policy.
    let w = sqlx::query("INSERT INTO actors (tenant_id, id, data) VALUES ('tenant_b', 'x', '{}')")
        .execute(&mut *ta)
        .await;
    assert!(w.is_err(), "RLS must refuse a write into tenant B");
    drop(ta);
    // A session of the shared pool without a transaction's tenant sees nothing.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "no tenant set: no rows");
    let mut tb = b.tx().await.unwrap();
    let rb_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM records")
        .fetch_all(&mut *tb)
        .await
        .unwrap();
    drop(tb);
    assert_eq!(rb_ids.len(), 3);
    assert!(a.get(rb_ids[0]).await.unwrap().is_none());
    assert!(b.get(ra.id).await.unwrap().is_none());
    a.pool().close().await;
    b.pool().close().await;
    db.drop_db().await;
}

/// Create `n` tick records at `at` (their alarm is due one minute later).
async fn seed_ticks(b: &PgBackend, n: usize, at: chrono::DateTime<Utc>) {
    let per = n.div_ceil(8);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let a = agent("a1");
            for k in (w * per)..((w + 1) * per).min(n) {
                b.create(create_req(
                    "tick",
                    vec![("k".into(), Value::Int(k as i64))],
                    &a,
                    at,
                ))
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn count(b: &PgBackend, sql: &str) -> i64 {
    let mut tx = b.tx().await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap()
}

async fn wait_fired(b: &PgBackend, n: i64, secs: i64) {
    let deadline = Utc::now() + Duration::seconds(secs);
    while count(b, "SELECT count(*) FROM timers WHERE fired_at IS NOT NULL").await < n {
        assert!(Utc::now() < deadline, "timers not fired in {secs}s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_two_workers_fire_each_timer_exactly_once() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    seed_ticks(&b, 10_000, t0()).await;
    assert_eq!(
        count(&b, "SELECT count(*) FROM timers WHERE fired_at IS NULL").await,
        10_000
    );
    let clock = Arc::new(SystemClock);
    let cfg = |name: &str| WorkerConfig {
        owner: name.into(),
        batch: 200,
        ..WorkerConfig::default()
    };
    let w1 = worker::spawn(b.clone(), clock.clone(), cfg("w1"));
    let w2 = worker::spawn(b.clone(), clock.clone(), cfg("w2"));
    wait_fired(&b, 10_000, 120).await;
    let (s1, s2) = (w1.shutdown().await, w2.shutdown().await);
    assert_eq!(s1.fired + s2.fired, 10_000, "{s1:?} {s2:?}");
    assert!(
        s1.fired > 0 && s2.fired > 0,
        "both workers took part: {s1:?} {s2:?}"
    );
    assert_eq!(s1.errors + s2.errors, 0);
    // Exactly once: one outbox message and one revision step per record.
    assert_eq!(count(&b, "SELECT count(*) FROM outbox").await, 10_000);
    assert_eq!(
        count(&b, "SELECT count(DISTINCT record_id) FROM outbox").await,
        10_000
    );
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM records WHERE state = 'done' AND revision = 2"
        )
        .await,
        10_000
    );
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM timers WHERE claim_owner IS NOT NULL"
        )
        .await,
        0
    );
    b.pool().close().await;
    db.drop_db().await;
}

/// Run inside a child process by `pg_crashed_claims_are_fired_once_after_the_lease`:
/// claim every due timer, start firing one, and die before committing.
#[tokio::test]
async fn crash_child() {
    let Ok(url) = std::env::var("LEADFLOW_CRASH_URL") else {
        return;
    };
    let opts = leadflow_runtime::pg::PgOptions {
        max_connections: 2,
        writers: 0,
        migrate: false,
    };
    let b = PgBackend::open_with(&url, "acme", set(), opts)
        .await
        .unwrap();
    let now = Utc::now();
    let items = b
        .claim("doomed", now, now, now + Duration::seconds(3), 1000)
        .await
        .unwrap();
    assert!(!items.is_empty());
    let mut tx = b.tx().await.unwrap();
    sqlx::query("SELECT id FROM records WHERE id = $1 FOR UPDATE")
        .bind(items[0].record)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE records SET state = 'done' WHERE id = $1")
        .bind(items[0].record)
        .execute(&mut *tx)
        .await
        .unwrap();
    std::process::exit(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_crashed_claims_are_fired_once_after_the_lease() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    seed_ticks(&b, 50, t0()).await;
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args([
            "pg_store::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LEADFLOW_CRASH_URL", &db.url)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3), "the child must die mid-transaction");
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM timers WHERE claim_owner = 'doomed' AND fired_at IS NULL"
        )
        .await,
        50
    );
    assert_eq!(
        count(&b, "SELECT count(*) FROM records WHERE state = 'done'").await,
        0,
        "the dead transaction left nothing"
    );
    let started = Utc::now();
    let cfg = WorkerConfig {
        owner: "rescuer".into(),
        busy_poll: Duration::milliseconds(100),
        ..WorkerConfig::default()
    };
    let w = worker::spawn(b.clone(), Arc::new(SystemClock), cfg);
    wait_fired(&b, 50, 30).await;
    let stats = w.shutdown().await;
    assert!(
        Utc::now() - started >= Duration::seconds(1),
        "fired only after the lease expired"
    );
    assert_eq!(stats.fired, 50);
    assert_eq!(count(&b, "SELECT count(*) FROM outbox").await, 50);
    assert_eq!(
        count(
            &b,
            "SELECT count(*) FROM records WHERE state = 'done' AND revision = 2"
        )
        .await,
        50
    );
    b.pool().close().await;
    db.drop_db().await;
}

/// A sleeping worker (nothing due for its whole idle period) wakes on the
/// NOTIFY of an arming transaction and fires the new timer on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_worker_wakes_on_notify() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let cfg = WorkerConfig {
        owner: "sleeper".into(),
        max_idle: Duration::seconds(60),
        ..WorkerConfig::default()
    };
    let w = worker::spawn(b.clone(), Arc::new(SystemClock), cfg);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Created 59.5 s ago in its own time: the alarm is due in half a second.
    let at = Utc::now() - Duration::milliseconds(59_500);
    let r = b
        .create(create_req("tick", vec![], &agent("a1"), at))
        .await
        .unwrap();
    wait_fired(&b, 1, 10).await;
    assert_eq!(b.get(r.id).await.unwrap().unwrap().state, "done");
    assert_eq!(w.shutdown().await.fired, 1);
    b.pool().close().await;
    db.drop_db().await;
}

/// Idempotency keys are kept 24 hours: an older key is forgotten and purged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_idempotency_keys_expire_after_a_day() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
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
    // Row-level security: only inside a transaction that sets the tenant.
    let mut tx = b.tx().await.unwrap();
    sqlx::query("UPDATE idempotency SET created_at = created_at - interval '25 hours'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // k1 is forgotten: another request with it runs, and k2 (expired) is
    // deleted by that keyed write.
    let again = bump_with_key(&b, r.id, "k1", "second").await.unwrap();
    assert_eq!(again.revision, r.revision + 3);
    assert_eq!(
        bump_with_key(&b, r.id, "k1", "second").await.unwrap(),
        again
    );
    let mut tx = b.tx().await.unwrap();
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(keys, 1, "the expired key was purged");
    db.drop_db().await;
}

/// Two tenants on one database, each with a sleeping worker: the daemon
/// holds one LISTEN connection for both, and arming a timer in one tenant
/// wakes that tenant's worker only (the NOTIFY names its tenant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_one_listen_connection_wakes_only_the_arming_tenant() {
    use leadflow_runtime::worker::TimerQueue;
    use sqlx::Connection;
    let db = PgDb::new().await;
    let a = PgBackend::open(&db.url, "tenant_a", set()).await.unwrap();
    let b = PgBackend::open(&db.url, "tenant_b", set()).await.unwrap();
    let cfg = |owner: &str| WorkerConfig {
        owner: owner.into(),
        max_idle: Duration::seconds(60),
        ..WorkerConfig::default()
    };
    let wa = worker::spawn(a.clone(), Arc::new(SystemClock), cfg("wa"));
    let wb = worker::spawn(b.clone(), Arc::new(SystemClock), cfg("wb"));
    // The same tenant wake-ups the workers sleep on (shared per tenant).
    let (sub_a, sub_b) = (a.wakeups().await, b.wakeups().await);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (a0, b0) = (sub_a.wake.woken(), sub_b.wake.woken());

    let at = Utc::now() - Duration::milliseconds(59_500);
    let r = a
        .create(create_req("tick", vec![], &agent("a1"), at))
        .await
        .unwrap();
    wait_fired(&a, 1, 10).await;
    assert_eq!(a.get(r.id).await.unwrap().unwrap().state, "done");
    assert!(sub_a.wake.woken() > a0, "tenant A's worker was woken");
    assert_eq!(sub_b.wake.woken(), b0, "tenant B's worker slept on");

    let mut su = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let listens: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(listens, 1, "one LISTEN connection for both tenants");
    su.close().await.unwrap();

    assert_eq!(wa.shutdown().await.fired, 1);
    assert_eq!(wb.shutdown().await.fired, 0);
    drop((sub_a, sub_b));
    a.pool().close().await;
    b.pool().close().await;
    db.drop_db().await;
}

/// Requests cancelled at every point of their transaction (a client that
/// hangs up) leave no connection inside a transaction: a begin cut off
/// after the server ran `BEGIN` used to leave the session open in a
/// transaction sqlx did not count, handed out again by the pool (the next
/// `BEGIN` drew `there is already a transaction in progress`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cancelled_requests_leave_no_open_transaction() {
    use sqlx::Connection;
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let a = agent("a1");
    let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    for round in 0..60u64 {
        // 16 requests at once, all cut off at the same instant: some
        // before their begin, some inside it, some mid-statement.
        let cut = std::time::Duration::from_micros(50 + (round * 97) % 4000);
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let b = b.clone();
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(cut, b.create(create_req("counter", vec![], &a, t0())))
                        .await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Whatever was cancelled has been rolled back once its connection
        // is back in the pool. The rollback runs on the pool's own task, so
        // on a loaded machine it may take a moment: wait up to 2 s (a leaked
        // transaction stays open for good).
        let mut open = 0i64;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            open = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'",
            )
            .bind(&db.name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            if open == 0 {
                break;
            }
        }
        assert_eq!(
            open, 0,
            "round {round}: connections left idle in a transaction"
        );
    }
    // And the store still works.
    b.create(create_req("counter", vec![], &a, t0()))
        .await
        .unwrap();
    b.pool().close().await;
    db.drop_db().await;
}

/// Tenants of one daemon on one database share one pool: six tenants under
/// concurrent creates hold no more than `max_connections` connections
/// (each tenant used to open a pool of its own, 20 connections each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_tenants_share_one_bounded_pool() {
    use leadflow_runtime::any::Stores;
    use sqlx::Connection;
    let db = PgDb::new().await;
    let opts = leadflow_runtime::pg::PgOptions {
        max_connections: 3,
        ..Default::default()
    };
    let mut stores = Stores::new(opts);
    let mut tenants = Vec::new();
    for i in 0..6 {
        tenants.push(Arc::new(
            stores.open(&db.url, &format!("t{i}"), set()).await.unwrap(),
        ));
    }
    let mut tasks = Vec::new();
    for t in &tenants {
        for _ in 0..4 {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    t.create(create_req("counter", vec![], &agent("a1"), t0()))
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut admin = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db.name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(n <= 3, "{n} connections for 6 tenants, pool of 3");
    for t in &tenants {
        let leadflow_runtime::AnyBackend::Pg(p) = &**t else {
            unreachable!()
        };
        let all = leadflow_runtime::backend::Filter {
            workflow: "counter",
            states: vec![],
            fields: vec![],
            idle_since: None,
            include_final: true,
        };
        assert_eq!(
            p.select(&all).await.unwrap().len(),
            20,
            "each tenant sees its own"
        );
    }
    if let leadflow_runtime::AnyBackend::Pg(p) = &*tenants[0] {
        p.pool().close().await;
    }
    db.drop_db().await;
}

/// The production set-up of docs/security.md, in a fresh database: a
/// schema owner (not superuser) migrates, the daemon logs in as a member of
/// leadflow_app. That login cannot escape row-level security: no stronger
/// role to reset or set to, RLS forced on every table, nothing without a
/// tenant, nothing of tenant B inside tenant A's transaction, and no write
/// to the migration ledger. Roles are cluster-wide: unique names, dropped.
#[tokio::test]
async fn pg_app_role_cannot_escape_row_level_security() {
    use sqlx::{Connection, Executor};
    let admin_url = pg_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let owner = unique("lf_owner");
    let app = unique("lf_app");
    let name = unique("lf_roles");
    let behind = unique("lf_behind");
    admin
        .execute("DO $$ BEGIN CREATE ROLE leadflow_app NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
        .await
        .unwrap();
    for sql in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB IN ROLE leadflow_app"),
        format!("CREATE DATABASE {name} OWNER {owner}"),
        format!("CREATE DATABASE {behind} OWNER {owner}"),
    ] {
        admin.execute(sql.as_str()).await.unwrap();
    }
    let base = admin_url.rsplit_once('/').unwrap().0.to_string();
    let with_user =
        |user: &str, db: &str| base.replacen("postgres@", &format!("{user}@"), 1) + "/" + db;
    let owner_url = with_user(&owner, &name);
    let app_url = with_user(&app, &name);

    // The app role refuses to start on a schema that was never migrated.
    let refused = PgBackend::open(&with_user(&app, &behind), "tenant_a", set()).await;
    let msg = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("leadflow db migrate"), "{msg}");

    let applied = leadflow_runtime::pg_roles::migrate(&owner_url)
        .await
        .unwrap();
    assert_eq!(applied, leadflow_runtime::pg_roles::expected_versions());
    let a = PgBackend::open(&app_url, "tenant_a", set()).await.unwrap();
    let b = PgBackend::open(&app_url, "tenant_b", set()).await.unwrap();
    let who = agent("a1");
    for t in [&a, &b] {
        t.create(create_req(
            "lead",
            vec![("name".into(), s("x"))],
            &who,
            t0(),
        ))
        .await
        .unwrap();
        t.set_actors(vec![agent("b1")]).await.unwrap();
    }

    let mut c = sqlx::PgConnection::connect(&app_url).await.unwrap();
    let super_or_bypass: bool = sqlx::query_scalar(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(!super_or_bypass);
    // No stronger role to go back or over to.
    c.execute("RESET ROLE").await.unwrap();
    for sql in [
        "SET ROLE postgres".to_string(),
        format!("SET ROLE {owner}"),
        "SET SESSION AUTHORIZATION postgres".to_string(),
        "ALTER TABLE records NO FORCE ROW LEVEL SECURITY".to_string(),
        "ALTER TABLE records DISABLE ROW LEVEL SECURITY".to_string(),
        "DROP POLICY tenant_isolation ON records".to_string(),
    ] {
        assert!(
            c.execute(sql.as_str()).await.is_err(),
            "{sql} must be refused"
        );
    }
    // Row security cannot be switched off for this role: reads fail instead.
    c.execute("SET row_security = off").await.unwrap();
    assert!(c.execute("SELECT count(*) FROM records").await.is_err());
    c.execute("RESET row_security").await.unwrap();
    // The ledger is read-only for the app role.
    for sql in [
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99999, 'x', true, '\\x00', 0)",
        "UPDATE _sqlx_migrations SET success = false",
        "DELETE FROM _sqlx_migrations",
        "TRUNCATE _sqlx_migrations",
        // The audit of admin actions is append-only for the daemon.
        "UPDATE admin_audit SET status = 200",
        "DELETE FROM admin_audit",
        // So are the records' events (docs/store.md, "Events").
        "UPDATE events SET actor = 'someone else'",
        "DELETE FROM events",
    ] {
        assert!(c.execute(sql).await.is_err(), "{sql} must be refused");
    }
    // Every table but the ledger has RLS enabled and forced.
    let loose: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
           AND relname <> '_sqlx_migrations' AND NOT (relrowsecurity AND relforcerowsecurity)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(loose.is_empty(), "tables without forced RLS: {loose:?}");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
           AND relname <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    // Without a tenant: nothing, on every table.
    for t in &tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 0, "{t} without a tenant");
    }
    // Inside tenant A's transaction: none of tenant B's rows, on every table
    // (and tenant A's own rows are there).
    let mut tx = a.tx().await.unwrap();
    let mut seen_a = 0;
    for t in &tables {
        let col = if t == "tenants" { "id" } else { "tenant_id" };
        let (mine, theirs): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*) FILTER (WHERE {col} = 'tenant_a'), count(*) FILTER (WHERE {col} <> 'tenant_a') FROM {t}"
        ))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(theirs, 0, "{t}: tenant B's rows seen by tenant A");
        seen_a += mine;
    }
    assert!(seen_a > 0);
    drop(tx);
    // The rows are really there (as the superuser sees them).
    let mut su = sqlx::PgConnection::connect(&format!("{base}/{name}"))
        .await
        .unwrap();
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(all, 2);
    // A superuser login is reported as no boundary.
    let login = leadflow_runtime::pg_roles::prepare(&format!("{base}/{name}"), false)
        .await
        .unwrap();
    assert!(!login.is_bounded());
    let login = leadflow_runtime::pg_roles::prepare(&app_url, false)
        .await
        .unwrap();
    assert!(login.is_bounded());

    drop(su);
    drop(c);
    a.pool().close().await;
    b.pool().close().await;
    for sql in [
        format!("DROP DATABASE {name} WITH (FORCE)"),
        format!("DROP DATABASE {behind} WITH (FORCE)"),
        format!("DROP ROLE {app}"),
        format!("DROP ROLE {owner}"),
    ] {
        admin.execute(sql.as_str()).await.unwrap();
    }
}

/// Used action links and stored template versions on PostgreSQL: a link is
/// used once, per tenant (row-level security: another tenant neither sees
/// the mark nor the templates), and a stored version reads back whole.
#[tokio::test]
async fn pg_used_links_and_template_versions_are_per_tenant() {
    use leadflow_runtime::outbox::OutboxQueue;
    use leadflow_runtime::templates::Source;
    let db = PgDb::new().await;
    let a = PgBackend::open(&db.url, "tenant_a", set()).await.unwrap();
    let b = PgBackend::open(&db.url, "tenant_b", set()).await.unwrap();
    assert!(!a.link_used("abc").await.unwrap());
    assert!(a.use_link("abc", 1, t0()).await.unwrap(), "first use");
    assert!(
        !a.use_link("abc", 1, t0()).await.unwrap(),
        "second use refused"
    );
    assert!(a.link_used("abc").await.unwrap());
    assert!(!b.link_used("abc").await.unwrap(), "tenant B sees no mark");
    assert!(b.use_link("abc", 1, t0()).await.unwrap());

    let files = vec![Source {
        path: "templates/started.it.txt".into(),
        text: "Subject: Ciao {{ name }}\nè partita.\n".into(),
    }];
    a.save_templates("h1", files.clone()).await.unwrap();
    a.save_templates("h1", files.clone()).await.unwrap(); // once per content
    assert_eq!(a.load_templates("h1").await.unwrap(), Some(files));
    assert_eq!(b.load_templates("h1").await.unwrap(), None);
    assert_eq!(a.load_templates("h2").await.unwrap(), None);
    db.drop_db().await;
}
