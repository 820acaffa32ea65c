//! Group commit (`runtime/src/group.rs`), on PostgreSQL and on a real
//! SQLite file: transitions requested concurrently share one transaction,
//! yet each request gets the answer it would have got alone, and a request
//! that breaks its batch does not take the others down with it.
//!
//! To make a batch deterministic, an outside transaction holds a lock (on
//! PostgreSQL the row of one record, on SQLite the database's write lock):
//! the store's only writer blocks on it with the first request while the
//! others queue up; releasing it lets them run as one batch.

use crate::common;

use common::*;
use leadflow_engine::Value;
use leadflow_runtime::backend::{Backend, Error, StoredRecord};
use leadflow_runtime::pg::PgOptions;
use leadflow_runtime::{AnyBackend, PgBackend, SqliteBackend};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::sync::Arc;
use std::time::Duration;

async fn open(db: &PgDb) -> PgBackend {
    let opts = PgOptions {
        writers: 1,
        ..PgOptions::default()
    };
    PgBackend::open_with(&db.url, "acme", set(), opts)
        .await
        .unwrap()
}

async fn open_sqlite(dir: &tempfile::TempDir) -> (SqliteBackend, String) {
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    (SqliteBackend::open(&url, "acme", set()).await.unwrap(), url)
}

async fn counters(b: &impl Backend, n: usize) -> Vec<i64> {
    let a = agent("a1");
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            b.create(create_req("counter", vec![], &a, t0()))
                .await
                .unwrap()
                .id,
        );
    }
    ids
}

/// A lock held from outside the store until released.
enum Held {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Hold the row lock of record `id`.
async fn hold_pg(db: &PgDb, id: i64) -> Held {
    let mut c = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut c).await.unwrap();
    // The tenant too: on Citus a row lock needs the distribution column.
    sqlx::query("SELECT 1 FROM records WHERE tenant_id = 'acme' AND id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut c)
        .await
        .unwrap();
    Held::Pg(c)
}

/// Hold the SQLite file's write lock.
async fn hold_sqlite(url: &str) -> Held {
    let mut c = SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut c)
        .await
        .unwrap();
    Held::Sqlite(c)
}

async fn release(h: Held) {
    match h {
        Held::Pg(mut c) => drop(sqlx::query("COMMIT").execute(&mut c).await.unwrap()),
        Held::Sqlite(mut c) => drop(sqlx::query("COMMIT").execute(&mut c).await.unwrap()),
    }
}

type Answer = Result<StoredRecord, Error>;

/// What each kind of request answers, with the writer blocked while they
/// queue (so the queued ones run as one batch).
async fn batch_of(
    b: &Arc<AnyBackend>,
    lock: Held,
    blocker: i64,
    reqs: Vec<(i64, &'static str, Option<i64>, i64)>,
) -> Vec<Answer> {
    let first = {
        let b = b.clone();
        tokio::spawn(async move {
            let a = agent("a1");
            b.fire(fire_req(blocker, "bump", vec![], &a, t0())).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tasks = Vec::new();
    for (id, transition, expected, n) in reqs {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let a = agent("a1");
            let mut req = fire_req(id, transition, vec![("n".into(), Value::Int(n))], &a, t0());
            req.expected_revision = expected;
            b.fire(req).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    release(lock).await;
    first.await.unwrap().expect("the blocked request succeeds");
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

/// Successes, refusals, conflicts and unknown records in one batch: each
/// request gets its own answer; only the successes changed anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_group_commit_answers_each_request_as_if_alone() {
    let db = PgDb::new().await;
    let b = open(&db).await;
    let ids = counters(&b, 7).await;
    let lock = hold_pg(&db, ids[0]).await;
    let any = Arc::new(AnyBackend::Pg(b.clone()));
    each_as_if_alone(&any, lock, &ids, || b.group_stats().unwrap()).await;
    b.pool().close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_answers_each_request_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (b, url) = open_sqlite(&dir).await;
    let ids = counters(&b, 7).await;
    let lock = hold_sqlite(&url).await;
    let any = Arc::new(AnyBackend::Sqlite(b.clone()));
    each_as_if_alone(&any, lock, &ids, || b.group_stats().unwrap()).await;
}

async fn each_as_if_alone(
    b: &Arc<AnyBackend>,
    lock: Held,
    ids: &[i64],
    stats: impl Fn() -> (u64, u64),
) {
    let (blocker, rest) = (ids[0], &ids[1..]);
    let mut reqs = Vec::new();
    for (i, id) in rest.iter().enumerate() {
        match i % 3 {
            0 if i == 0 => reqs.push((*id, "bump", None, 10)),
            0 => reqs.push((*id, "bump", Some(1), 10 + i as i64)),
            1 => reqs.push((*id, "no_such_transition", None, 0)),
            _ => reqs.push((*id, "bump", Some(5), 0)),
        }
    }
    // The same record twice in one batch: one after the other (in queue
    // order, whichever came first), revisions 2 and 3.
    reqs.push((rest[0], "bump", None, 99));
    reqs.push((999_999, "bump", None, 0));
    let before = stats();
    let answers = batch_of(b, lock, blocker, reqs.clone()).await;
    let after = stats();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (2, 1 + reqs.len() as u64),
        "the blocked request alone, then every queued one in one batch"
    );
    let mut twice = Vec::new();
    for ((id, transition, expected, n), answer) in reqs.iter().zip(answers) {
        match (transition, expected, answer) {
            (&"bump", None, Ok(r)) if *id == rest[0] => twice.push(r.revision),
            (&"bump", Some(1), Ok(r)) => {
                assert_eq!((r.id, r.revision), (*id, 2));
                assert_eq!(r.fields["n"], serde_json::json!(n));
            }
            (&"no_such_transition", None, Err(Error::Refused(_))) => {}
            (&"bump", Some(5), Err(Error::Conflict { expected, actual })) => {
                assert_eq!((expected, actual), (5, 1))
            }
            (&"bump", None, Err(Error::NotFound(999_999))) => {}
            (t, e, other) => panic!("{id} {t} {e:?}: unexpected {other:?}"),
        }
    }
    twice.sort();
    assert_eq!(twice, [2, 3]);
    // Only the successes were written: revision and history.
    for (i, id) in rest.iter().enumerate() {
        let r = b.get(*id).await.unwrap().unwrap();
        let want = match i {
            0 => 3,
            _ if i % 3 == 0 => 2,
            _ => 1,
        };
        assert_eq!(r.revision, want, "record {id}");
        let bumps = b
            .history(*id)
            .await
            .unwrap()
            .iter()
            .filter(|h| h.transition == "bump")
            .count();
        assert_eq!(bumps as i64, want - 1, "history of {id}");
    }
}

/// A record the store cannot run (its workflow version is not loaded) fails
/// its batch before the commit: the batch is rolled back and every request
/// runs on its own, so only that one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_group_commit_a_broken_request_does_not_fail_its_batch() {
    let db = PgDb::new().await;
    let b = open(&db).await;
    let ids = counters(&b, 6).await;
    let broken = ids[3];
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE records SET version = 'not-a-version' WHERE id = $1")
        .bind(broken)
        .execute(&mut admin)
        .await
        .unwrap();
    let reqs: Vec<_> = ids[1..].iter().map(|id| (*id, "bump", None, 7)).collect();
    let before = b.group_stats().unwrap();
    let lock = hold_pg(&db, ids[0]).await;
    let any = Arc::new(AnyBackend::Pg(b.clone()));
    let answers = batch_of(&any, lock, ids[0], reqs.clone()).await;
    let after = b.group_stats().unwrap();
    assert_eq!(after.0 - before.0, 2, "one batch for the queued requests");
    for ((id, ..), answer) in reqs.iter().zip(answers) {
        if *id == broken {
            let e = answer.expect_err("the broken record fails");
            assert!(
                matches!(&e, Error::VersionNotLoaded { .. })
                    && e.to_string().contains("not loaded"),
                "{e}"
            );
        } else {
            assert_eq!(answer.expect("the others succeed").revision, 2);
            assert_eq!(b.get(*id).await.unwrap().unwrap().revision, 2);
        }
    }
    b.pool().close().await;
    db.drop_db().await;
}
