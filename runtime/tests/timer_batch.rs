//! A claimed timer batch in which firing one item cancels or re-arms another
//! item of the same batch (PostgreSQL: `PgBackend::fire_batch`, one
//! transaction with prefetched locks and takes; SQLite: the worker's
//! default batch path, one transaction per item). The cancelled item must
//! not fire; the re-armed one must fire once, at its new due instant only,
//! even when that instant is already past when the batch runs.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use leadflow_engine::{load, Project, SourceFile, WorkflowSet};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::worker::TimerQueue;
use leadflow_runtime::{PgBackend, SqliteBackend};
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
