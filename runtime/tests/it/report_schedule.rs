//! Scheduled reports (`every`; docs/kpis.md, "Schedules"): each scheduled
//! instant runs once per tenant, across two daemons on one PostgreSQL
//! database and across a daemon dying mid-run; a gap of two periods gives
//! both runs, oldest first; a failed run is recorded with its error and
//! retried at the next tick; a run's result is the report of the period
//! that ended, and its `notify` queues one outbox message per assignee with
//! that assignee's lines only. On PostgreSQL, SQLite and memory.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use leadflow_engine::{load, Actor, Project, SourceFile, Workflow, WorkflowSet};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::kpi::schedule::{tick, RunStore, RunsQuery, TickConfig};
use leadflow_runtime::mem::MemBackend;
use leadflow_runtime::{PgBackend, SqliteBackend};
use std::sync::Arc;

/// Deals in Rome: a sale is billed in the quarter it was won; open deals
/// are reminded to their assignee every quarter.
const DEAL: &str = r#"
[workflow]
id = "deal"
initial = "open"
calendar = "rome"
[states.open]
on_enter = [{ assign = "agent" }]
[states.won]
final = true
[transitions.win]
from = ["open"]
to = "won"
by = ["agent"]

[reports.sales]
every = "quarter"
anchor = "transition:win"
where = { state = ["won"] }
group_by = ["assignee"]
charge = 50.0
currency = "EUR"

[reports.open_reminder]
every = "quarter"
period = "all"
where = { state = ["open"] }
group_by = ["assignee"]
notify = "close_open"
"#;

const ROME: &str = r#"
[calendar]
timezone = "Europe/Rome"
[hours]
mon = ["09:00-18:00"]
"#;

fn workflows() -> Arc<WorkflowSet> {
    let project = Project {
        workflows: vec![SourceFile::new("workflows/deal.toml", DEAL)],
        calendars: vec![SourceFile::new("calendars/rome.toml", ROME)],
        ..Project::default()
    };
    let loaded = load(&project);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

fn current<B: RunStoreExt>(b: &B) -> Vec<Arc<Workflow>> {
    b.current()
}

/// The current workflows of a store (each store type has its own handle).
trait RunStoreExt {
    fn current(&self) -> Vec<Arc<Workflow>>;
}
impl RunStoreExt for PgBackend {
    fn current(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
}
impl RunStoreExt for SqliteBackend {
    fn current(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
}
impl RunStoreExt for MemBackend {
    fn current(&self) -> Vec<Arc<Workflow>> {
        self.versions().all_current()
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn owner(name: &str) -> TickConfig {
    TickConfig {
        owner: name.into(),
        ..TickConfig::default()
    }
}

fn seller() -> Actor {
    Actor {
        email: Some("a1@example.com".into()),
        ..agent("a1")
    }
}

/// Two deals created in February 2025 (Rome), one won on the last evening
/// of the first quarter (31 March 23:30 local, 21:30 UTC): billed in Q1,
/// not in Q2. The other stays open.
async fn seed<B: Backend>(b: &B) {
    b.set_actors(vec![seller()]).await.unwrap();
    let a = seller();
    let feb = utc("2025-02-10T09:00:00Z");
    let won = b.create(create_req("deal", vec![], &a, feb)).await.unwrap();
    b.create(create_req("deal", vec![], &a, feb)).await.unwrap();
    b.fire(fire_req(
        won.id,
        "win",
        vec![],
        &a,
        utc("2025-03-31T21:30:00Z"),
    ))
    .await
    .unwrap();
}

const Q1_END: &str = "2025-03-31T22:00:00Z";
const Q2_END: &str = "2025-06-30T22:00:00Z";

/// The store saw the schedules in February; the daemons were down until
/// July: both quarter ends are due, oldest first.
async fn catch_up<B: RunStore + RunStoreExt>(b: &B) {
    seed(b).await;
    let wfs = current(b);
    let dir = vec![seller()];
    let first = tick(b, &wfs, &dir, &owner("d1"), utc("2025-02-10T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        first.enqueued, 0,
        "nothing is due before the first quarter ends"
    );

    let t = tick(b, &wfs, &dir, &owner("d1"), utc("2025-07-02T08:00:00Z"))
        .await
        .unwrap();
    assert_eq!(t.enqueued, 4, "two quarters for each of two reports");
    assert_eq!(t.done.len(), 4, "{t:?}");
    assert!(t.failed.is_empty() && t.lost.is_empty());

    let sales = b
        .list_runs(&RunsQuery {
            workflow: Some("deal".into()),
            report: Some("sales".into()),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    // Newest first; both done once.
    let slots: Vec<DateTime<Utc>> = sales.iter().map(|r| r.slot).collect();
    assert_eq!(slots, [utc(Q2_END), utc(Q1_END)]);
    assert!(sales.iter().all(|r| r.status == "done" && r.attempts == 1));
    assert!(
        sales.iter().all(|r| r.result.is_none()),
        "lists carry no results"
    );
    // Oldest first: the Q1 run ran (got its id and finished) before Q2.
    let q1 = b.get_run(sales[1].id).await.unwrap().unwrap();
    let q2 = b.get_run(sales[0].id).await.unwrap().unwrap();
    assert!(t.done.iter().position(|&i| i == q1.id) < t.done.iter().position(|&i| i == q2.id));
    assert_eq!(q1.period.as_deref(), Some("2025-Q1"));
    assert_eq!(q2.period.as_deref(), Some("2025-Q2"));
    let r1 = q1.result.unwrap();
    assert_eq!(r1["total_count"], 1, "{r1}");
    assert_eq!(r1["total_amount"], 50.0);
    assert_eq!(r1["rows"][0]["group"], serde_json::json!(["a1"]));
    let r2 = q2.result.unwrap();
    assert_eq!(
        r2["total_count"], 0,
        "the Q1 sale is not billed again in Q2: {r2}"
    );

    // The reminder: one message per run to a1, with a1's open deal.
    let reminders = b
        .list_runs(&RunsQuery {
            report: Some("open_reminder".into()),
            limit: 10,
            ..RunsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(reminders.len(), 2);
    assert!(reminders
        .iter()
        .all(|r| r.messages == 1 && r.period.is_none()));

    // Nothing more is due until the next quarter ends.
    let again = tick(b, &wfs, &dir, &owner("d2"), utc("2025-07-20T08:00:00Z"))
        .await
        .unwrap();
    assert_eq!((again.enqueued, again.done.len()), (0, 0));
}

#[tokio::test]
async fn memory_catches_up_two_quarters_oldest_first() {
    let b = MemBackend::new(workflows());
    catch_up(&b).await;
    let m = b.runs().lock().unwrap().messages(4);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].recipient, "a1");
    assert_eq!(m[0].payload["report"]["count"], 1);
    assert_eq!(m[0].payload["recipient"]["address"], "a1@example.com");
}

#[tokio::test]
async fn sqlite_catches_up_two_quarters_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("runs.db").display());
    let b = SqliteBackend::open(&url, "t", workflows()).await.unwrap();
    catch_up(&b).await;
    // The reminder's messages are in the outbox, for the dispatcher.
    let rows: Vec<(Option<i64>, i64, String, String)> = sqlx::query_as(
        "SELECT record_id, report_run_id, recipients, payload FROM outbox WHERE report_run_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(b.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.0.is_none() && r.2 == r#"["a1"]"#));
    let p: serde_json::Value = serde_json::from_str(&rows[0].3).unwrap();
    assert_eq!(p["template"], "close_open");
    assert_eq!(p["report"]["lines"][0]["count"], 1);
}

#[tokio::test]
async fn postgres_catches_up_two_quarters_oldest_first() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "t", workflows()).await.unwrap();
    catch_up(&b).await;
    drop(b);
    db.drop_db().await;
}

/// Two daemons on one database tick at the same instants, concurrently:
/// every scheduled instant runs once, and its messages are queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_daemons_run_each_instant_once() {
    let db = PgDb::new().await;
    let a = PgBackend::open(&db.url, "t", workflows()).await.unwrap();
    let b = PgBackend::open(&db.url, "t", workflows()).await.unwrap();
    seed(&a).await;
    let wfs = current(&a);
    let dir = vec![seller()];
    let (x, y) = (owner("daemon-a"), owner("daemon-b"));
    tick(&a, &wfs, &dir, &x, utc("2025-02-10T10:00:00Z"))
        .await
        .unwrap();
    let mut done = Vec::new();
    let mut lost = 0;
    // Both daemons, many ticks each, at the same instants, over a year.
    for now in [
        "2025-07-02T08:00:00Z",
        "2025-07-02T08:00:00Z",
        "2025-10-01T08:00:00Z",
        "2026-01-05T08:00:00Z",
    ] {
        let now = utc(now);
        let (ra, rb) = tokio::join!(tick(&a, &wfs, &dir, &x, now), tick(&b, &wfs, &dir, &y, now));
        for r in [ra.unwrap(), rb.unwrap()] {
            assert!(r.failed.is_empty(), "{r:?}");
            lost += r.lost.len();
            done.extend(r.done);
        }
    }
    done.sort();
    let unique: std::collections::BTreeSet<i64> = done.iter().copied().collect();
    assert_eq!(done.len(), unique.len(), "no run done twice: {done:?}");
    assert_eq!(lost, 0);
    // Four quarter ends (Q1..Q4 2025) × two reports, each once.
    let runs = a
        .list_runs(&RunsQuery {
            limit: 100,
            ..RunsQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 8, "{runs:#?}");
    assert_eq!(unique.len(), 8);
    assert!(runs.iter().all(|r| r.status == "done" && r.attempts == 1));
    let messages: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE tenant_id = 't' AND report_run_id IS NOT NULL",
    )
    .fetch_one(&sqlx::PgPool::connect(&db.url).await.unwrap())
    .await
    .unwrap();
    assert_eq!(messages, 4, "one reminder per quarter, once");
    drop((a, b));
    db.drop_db().await;
}

/// A daemon claims the due runs and dies (kill -9: its claim is committed,
/// nothing else). The other daemon does not run them while the lease
/// holds, runs them once it ended; the first daemon, back, cannot finish
/// them a second time.
async fn died_mid_run<B: RunStore + RunStoreExt>(a: &B, b: &B, outbox_count: impl AsyncCount) {
    seed(a).await;
    let wfs = current(a);
    let dir = vec![seller()];
    tick(a, &wfs, &dir, &owner("dead"), utc("2025-02-10T10:00:00Z"))
        .await
        .unwrap();
    // Enqueue without running (batch 0), then the claim of the dying daemon.
    let none = TickConfig {
        batch: 0,
        ..owner("dead")
    };
    let now = utc("2025-04-01T08:00:00Z");
    assert_eq!(tick(a, &wfs, &dir, &none, now).await.unwrap().enqueued, 2);
    let claimed = a
        .claim_runs("dead", now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    let live = owner("live");
    let during = tick(b, &wfs, &dir, &live, now + Duration::minutes(2))
        .await
        .unwrap();
    assert!(
        during.done.is_empty(),
        "leased to the dead daemon: {during:?}"
    );
    let after = tick(b, &wfs, &dir, &live, now + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(after.done.len(), 2, "{after:?}");

    // The dead daemon's late finish writes nothing.
    let late = a
        .finish_run(
            claimed[0].id,
            "dead",
            now + Duration::minutes(7),
            None,
            &serde_json::json!({}),
            &[],
        )
        .await
        .unwrap();
    assert!(!late);
    let run = a.get_run(claimed[0].id).await.unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.attempts), ("done", 1));
    assert_eq!(outbox_count.count().await, 1, "the reminder is queued once");
}

trait AsyncCount {
    fn count(&self) -> impl std::future::Future<Output = i64>;
}
struct PgCount(String);
impl AsyncCount for PgCount {
    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE report_run_id IS NOT NULL")
            .fetch_one(&sqlx::PgPool::connect(&self.0).await.unwrap())
            .await
            .unwrap()
    }
}
struct LiteCount(sqlx::SqlitePool);
impl AsyncCount for LiteCount {
    async fn count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE report_run_id IS NOT NULL")
            .fetch_one(&self.0)
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_run_of_a_dead_daemon_runs_once_after_its_lease() {
    let db = PgDb::new().await;
    let a = PgBackend::open(&db.url, "t", workflows()).await.unwrap();
    let b = PgBackend::open(&db.url, "t", workflows()).await.unwrap();
    died_mid_run(&a, &b, PgCount(db.url.clone())).await;
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_a_run_of_a_dead_daemon_runs_once_after_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("runs.db").display());
    let a = SqliteBackend::open(&url, "t", workflows()).await.unwrap();
    let b = SqliteBackend::open(&url, "t", workflows()).await.unwrap();
    let pool = a.pool().clone();
    died_mid_run(&a, &b, LiteCount(pool)).await;
}

/// A run that fails (its report was removed by a reload before it ran) is
/// recorded with its error and attempts, tried again at the next tick after
/// `retry_after`, and done once the report is back.
async fn failure_is_recorded_and_retried<B: RunStore + RunStoreExt>(b: &B) {
    seed(b).await;
    let wfs = current(b);
    let dir = vec![seller()];
    let cfg = owner("d");
    tick(b, &wfs, &dir, &cfg, utc("2025-02-10T10:00:00Z"))
        .await
        .unwrap();
    let now = utc("2025-04-01T08:00:00Z");
    let enqueue_only = TickConfig {
        batch: 0,
        ..cfg.clone()
    };
    tick(b, &wfs, &dir, &enqueue_only, now).await.unwrap();
    // The workflows without the deal workflow: both runs fail.
    let t = tick(b, &[], &dir, &cfg, now).await.unwrap();
    assert_eq!(t.failed.len(), 2, "{t:?}");
    assert!(
        t.failed[0]
            .1
            .starts_with("E_REPORT_RUN: workflow `deal` is no longer served"),
        "{t:?}"
    );
    let run = b.get_run(t.failed[0].0).await.unwrap().unwrap();
    assert_eq!(run.status, "failed");
    assert_eq!(run.attempts, 1);
    assert!(run.error.as_deref().unwrap().contains("no longer served"));
    assert_eq!(run.next_attempt, now + cfg.retry_after);
    // Not before its retry time; then done, the error cleared.
    let early = tick(b, &wfs, &dir, &cfg, now + Duration::seconds(30))
        .await
        .unwrap();
    assert!(early.done.is_empty() && early.failed.is_empty());
    let later = tick(b, &wfs, &dir, &cfg, now + Duration::seconds(61))
        .await
        .unwrap();
    assert_eq!(later.done.len(), 2, "{later:?}");
    let run = b.get_run(t.failed[0].0).await.unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.attempts, run.error),
        ("done", 2, None)
    );
}

#[tokio::test]
async fn memory_failure_is_recorded_and_retried() {
    failure_is_recorded_and_retried(&MemBackend::new(workflows())).await;
}

#[tokio::test]
async fn sqlite_failure_is_recorded_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("runs.db").display());
    let b = SqliteBackend::open(&url, "t", workflows()).await.unwrap();
    failure_is_recorded_and_retried(&b).await;
}

#[tokio::test]
async fn postgres_failure_is_recorded_and_retried() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "t", workflows()).await.unwrap();
    failure_is_recorded_and_retried(&b).await;
    drop(b);
    db.drop_db().await;
}
