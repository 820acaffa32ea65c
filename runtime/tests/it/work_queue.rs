//! `WorkQueue` (issue 13) on a fresh PostgreSQL database and a fresh
//! SQLite file: the order (due callbacks, then priority, then the oldest),
//! `max_attempts` and final states left out, a repeated pull giving the
//! same record, a transition or the lease's end releasing it, a record
//! given back, a puller never given a record it may not see, and 20
//! concurrent pullers never given the same record.

use crate::common::*;
use leadflow_engine::{load, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::sql::query::queue::{Claim, OrderBy, Pull, WorkQueue};
use leadflow_runtime::sql::query::{Column, Cond, Filter, Key, Kind, Lit, Op, Query, Visibility};
use leadflow_runtime::AnyBackend;
use std::collections::BTreeSet;
use std::sync::Arc;

const CALLS: &str = r#"
[workflow]
id = "calls"
initial = "new"
[fields.name]
type = "string"
[fields.callback_at]
type = "datetime"
indexed = true
[fields.priority]
type = "int"
[fields.attempts]
type = "int"

[states.new]
[states.open]
[states.done]
final = true

[transitions.log_call]
from = ["new", "open"]
to = "open"
by = ["agent"]
[transitions.finish]
from = ["new", "open"]
to = "done"
by = ["agent"]

[queues.next]
order = ["due:callback_at", "-priority", "created_at"]
max_attempts = { field = "attempts", max = 3 }
lease = "5m"
"#;

fn set() -> Arc<WorkflowSet> {
    let loaded = load(&Project {
        workflows: vec![SourceFile::new("workflows/calls.toml", CALLS)],
        ..Project::default()
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

fn num(name: &str) -> Key {
    Key::Field {
        name: name.into(),
        kind: Kind::Num,
    }
}

/// The pull the HTTP layer builds for the queue above.
fn pull(actor: &str, now: chrono::DateTime<chrono::Utc>, vis: Option<Visibility>) -> Pull {
    let attempts = Filter::Any(vec![
        Filter::Cond(Cond {
            key: num("attempts"),
            op: Op::Empty,
        }),
        Filter::Cond(Cond {
            key: num("attempts"),
            op: Op::Lt(Lit::Num("3".into(), 3.0)),
        }),
    ]);
    Pull {
        workflow: "calls".into(),
        queue: "next".into(),
        actor: actor.into(),
        now,
        lease_until: now + chrono::Duration::minutes(5),
        select: Query {
            tenant: "acme".into(),
            workflow: Some("calls".into()),
            states: Vec::new(),
            open_only: true,
            filters: vec![attempts],
            search: None,
            visible_to: vis,
            sort: Key::Column(Column::Id),
            desc: false,
            limit: 1,
            after: None,
        },
        order: vec![
            OrderBy::Due(Key::Field {
                name: "callback_at".into(),
                kind: Kind::DateTime,
            }),
            OrderBy::By(num("priority"), true),
            OrderBy::By(Key::Column(Column::Created), false),
        ],
    }
}

async fn create(b: &AnyBackend, fields: Vec<(&str, Value)>, hours: i64) -> i64 {
    let a = agent("admin");
    let input = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    b.create(create_req("calls", input, &a, at(hours)))
        .await
        .unwrap()
        .id
}

async fn next(b: &AnyBackend, p: &Pull) -> Option<Claim> {
    b.next(p).await.unwrap()
}

async fn served(b: &AnyBackend, actor: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    next(b, &pull(actor, now, None)).await.map(|c| c.record)
}

async fn order_leases_and_release(b: &AnyBackend) {
    let now = at(10);
    let when = |h: i64| Value::DateTime(at(h));
    let old = create(b, vec![("name", s("old")), ("priority", Value::Int(1))], 0).await;
    let due = create(b, vec![("name", s("due")), ("callback_at", when(9))], 1).await;
    let later = create(
        b,
        vec![
            ("name", s("later")),
            ("callback_at", when(11)),
            ("priority", Value::Int(9)),
        ],
        2,
    )
    .await;
    let high = create(b, vec![("name", s("high")), ("priority", Value::Int(5))], 3).await;
    let older_due = create(
        b,
        vec![("name", s("older_due")), ("callback_at", when(8))],
        4,
    )
    .await;
    let tired = create(
        b,
        vec![
            ("name", s("tired")),
            ("attempts", Value::Int(3)),
            ("priority", Value::Int(9)),
        ],
        5,
    )
    .await;
    let closed = create(
        b,
        vec![("name", s("closed")), ("priority", Value::Int(9))],
        6,
    )
    .await;
    b.fire(fire_req(closed, "finish", vec![], &agent("admin"), at(7)))
        .await
        .unwrap();

    // Due callbacks first (earliest first), then priority descending, then
    // the oldest; never a record over max_attempts, never a final one.
    let mut got = Vec::new();
    for i in 0..6 {
        got.push(served(b, &format!("op{i}"), now).await);
    }
    assert_eq!(
        got,
        [
            Some(older_due),
            Some(due),
            Some(later),
            Some(high),
            Some(old),
            None
        ]
    );
    assert!(!got.contains(&Some(tired)));

    // The same puller asking again gets the record it holds.
    let again = next(b, &pull("op1", now, None)).await.unwrap();
    assert_eq!((again.record, again.again), (due, true));
    assert_eq!(again.expires_at, now + chrono::Duration::minutes(5));

    // A transition fired on the record releases it: the next puller may
    // get it (it is still due), its old holder holds nothing.
    b.fire(fire_req(due, "log_call", vec![], &agent("op1"), at(10)))
        .await
        .unwrap();
    assert_eq!(served(b, "op9", now).await, Some(due));
    assert_eq!(
        served(b, "op1", now).await,
        None,
        "op1's lease ended with the transition; nothing else is free"
    );

    // Given back: the next pull may get it.
    assert_eq!(
        b.give_back("calls", "next", "op2", now).await.unwrap(),
        Some(later)
    );
    assert_eq!(
        b.give_back("calls", "next", "op2", now).await.unwrap(),
        None
    );
    assert_eq!(served(b, "op10", now).await, Some(later));

    // One second before the leases end, every record is still held.
    let before = now + chrono::Duration::seconds(299);
    assert_eq!(served(b, "op13", before).await, None);
    // After their end every record is free again, in order.
    let after = now + chrono::Duration::minutes(6);
    assert_eq!(served(b, "op11", after).await, Some(older_due));
    assert_eq!(served(b, "op12", after).await, Some(due));
}

/// A puller whose visibility covers nothing is never given a record, however
/// many are free; a visibility that covers the workflow gets one.
async fn visibility_is_a_hard_rule(b: &AnyBackend) {
    let now = at(100);
    let mine = Visibility {
        actor: "stranger".into(),
        zones: Vec::new(),
        pools: Vec::new(),
        all: Vec::new(),
        managed: Vec::new(),
        reports: Vec::new(),
        areas: Vec::new(),
        area_zones: Vec::new(),
    };
    assert_eq!(
        next(b, &pull("stranger", now, Some(mine.clone()))).await,
        None
    );
    let all = Visibility {
        all: vec!["calls".into()],
        ..mine
    };
    assert!(next(b, &pull("stranger", now, Some(all))).await.is_some());
}

/// 20 pullers at once, each pull a new puller: every record is served
/// exactly once while the leases hold, then nothing.
async fn concurrent_pullers_never_share(b: Arc<AnyBackend>, records: usize) {
    let now = at(1000);
    let mut made = BTreeSet::new();
    for i in 0..records {
        made.insert(create(&b, vec![("name", s(&format!("c{i}")))], 900).await);
    }
    let mut tasks = Vec::new();
    for t in 0..20 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for n in 0.. {
                match served(&b, &format!("t{t}-{n}"), now).await {
                    Some(id) => got.push(id),
                    None => break,
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a record was served twice");
    // Every record made here was served (and the earlier open ones, whose
    // leases ended).
    assert!(
        unique.is_superset(&made),
        "{} of {} served",
        unique.len(),
        made.len()
    );
}

async fn suite(b: Arc<AnyBackend>, records: usize) {
    order_leases_and_release(&b).await;
    visibility_is_a_hard_rule(&b).await;
    concurrent_pullers_never_share(b, records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_work_queue() {
    let db = PgDb::new().await;
    let set = set();
    let b = Arc::new(
        leadflow_runtime::open(&db.url, "acme", set.clone())
            .await
            .unwrap(),
    );
    suite(b.clone(), 200).await;
    if let AnyBackend::Pg(pg) = &*b {
        pg.pool().close().await;
    }
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_work_queue() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("q.db").display());
    let b = Arc::new(leadflow_runtime::open(&url, "acme", set()).await.unwrap());
    suite(b, 100).await;
}
