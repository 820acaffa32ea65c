//! Workflow versions survive a restart on the SQL stores: a record created
//! on version 1 keeps firing transitions and timers on version 1 (its rules
//! module and calendar included) after the store is reopened with edited
//! files, while new records get version 2. Real SQLite files and real
//! PostgreSQL databases.

use crate::common;

use chrono::{DateTime, Utc};
use common::*;
use leadflow_engine::{load, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::{Backend, Error};
use leadflow_runtime::snapshot::Snapshot;
use leadflow_runtime::AnyBackend;
use std::sync::Arc;

const LEAD: &str = r#"
[workflow]
id = "lead"
initial = "new"
calendar = "office"
rules = ["rules/lead.rhai"]

[fields.n]
type = "int"
[fields.log]
type = "list"

[states.new]
[states.waiting]
[states.won]
final = true

[transitions.bump]
from = ["new"]
by = ["agent"]
input = ["n"]

[transitions.hold]
from = ["new"]
to = "waiting"
by = ["agent"]

[transitions.resume]
from = ["waiting"]
to = "new"
by = ["system"]
do = [{ append = "log", value = "resumed v1" }]

[transitions.win]
from = ["new"]
to = "won"
by = ["agent"]
guard = "rules::can_win(lead)"
do = [{ spawn = "task", map = { n = "n" }, link = "lead", backlink = "tasks" }]

[timers.wake]
in = ["waiting"]
after = "4wh"
fire = "resume"
"#;

const TASK: &str = r#"
[workflow]
id = "task"
initial = "open"
[fields.n]
type = "int"
[states.open]
[states.done]
final = true
[transitions.done]
from = ["open"]
to = "done"
by = ["agent"]
"#;

const RULES_V1: &str = r#"
fn can_win(lead) {
    if lead.n < 2 { throw "n must be at least 2"; }
    true
}
"#;

const CALENDAR_V1: &str = r#"
[calendar]
title = "Office"
timezone = "UTC"
[hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]
sat = []
sun = []
"#;

/// Version 1, or version 2: the workflow file, its rules module and its
/// calendar all edited (the task workflow is unchanged).
fn project(v2: bool) -> Project {
    let (lead, rules, cal) = if v2 {
        (
            LEAD.replace("resumed v1", "resumed v2"),
            RULES_V1
                .replace("n < 2", "n < 5")
                .replace("at least 2", "at least 5"),
            CALENDAR_V1.replace("09:00-17:00", "09:00-11:00"),
        )
    } else {
        (LEAD.into(), RULES_V1.into(), CALENDAR_V1.into())
    };
    Project {
        workflows: vec![
            SourceFile::new("workflows/lead.toml", lead),
            SourceFile::new("workflows/task.toml", TASK),
        ],
        rules: vec![SourceFile::new("rules/lead.rhai", rules)],
        calendars: vec![SourceFile::new("calendars/office.toml", cal)],
    }
}

fn loaded(p: &Project) -> Arc<WorkflowSet> {
    let l = load(p);
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    Arc::new(l.set)
}

/// Open the store on a project, as the daemon does: open (which rebuilds
/// the older versions), then store the snapshot of the files.
async fn open_on(url: &str, tenant: &str, p: &Project) -> AnyBackend {
    let set = loaded(p);
    let b = leadflow_runtime::open(url, tenant, set.clone())
        .await
        .unwrap();
    b.register_snapshot(&Snapshot::of(p), &set).await.unwrap();
    b
}

async fn close(b: AnyBackend) {
    match b {
        AnyBackend::Pg(p) => p.pool().close().await,
        AnyBackend::Sqlite(s) => {
            s.pool().close().await;
            s.read_pool().close().await;
        }
        AnyBackend::Mem(_) => {}
    }
}

/// Monday 2024-01-01 09:00 UTC (no holidays in the test calendar).
fn mon(h: u32) -> DateTime<Utc> {
    t0() + chrono::Duration::hours(i64::from(h) - 9)
}

async fn fire(
    b: &AnyBackend,
    id: i64,
    t: &str,
    input: Vec<(String, Value)>,
    now: DateTime<Utc>,
) -> Result<leadflow_runtime::backend::StoredRecord, Error> {
    b.fire(fire_req(id, t, input, &agent("a1"), now)).await
}

fn lead_hash(p: &Project) -> String {
    loaded(p).get("lead").unwrap().hash.clone()
}

async fn snapshot_rows(b: &AnyBackend) -> i64 {
    match b {
        AnyBackend::Pg(p) => sqlx::query_scalar("SELECT count(*) FROM project_snapshots")
            .fetch_one(&mut *p.tx().await.unwrap())
            .await
            .unwrap(),
        AnyBackend::Sqlite(s) => sqlx::query_scalar("SELECT count(*) FROM project_snapshots")
            .fetch_one(s.pool())
            .await
            .unwrap(),
        AnyBackend::Mem(_) => 0,
    }
}

/// Edit the rules module inside the stored snapshot of version 1, as a
/// careless hand in the database would: the content no longer matches its
/// hash, so the store must refuse to rebuild from it.
async fn tamper(b: &AnyBackend, snapshot: &str) {
    let n = match b {
        AnyBackend::Pg(p) => {
            let mut tx = p.tx().await.unwrap();
            let n = sqlx::query(
                "UPDATE project_snapshots SET files = jsonb_set(files, '{rules,0,text}', '\"fn can_win(lead) { true }\"') WHERE hash = $1",
            )
            .bind(snapshot)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
            tx.commit().await.unwrap();
            n
        }
        AnyBackend::Sqlite(s) => sqlx::query(
            "UPDATE project_snapshots SET files = json_set(files, '$.rules[0].text', 'fn can_win(lead) { true }') WHERE hash = ?",
        )
        .bind(snapshot)
        .execute(s.pool())
        .await
        .unwrap()
        .rows_affected(),
        AnyBackend::Mem(_) => 0,
    };
    assert_eq!(n, 1);
}

async fn older_versions_survive_a_restart(url: &str) {
    let (p1, p2) = (project(false), project(true));
    let (h1, h2) = (lead_hash(&p1), lead_hash(&p2));
    assert_ne!(h1, h2);
    let a = agent("a1");

    // Version 1: two records, then the store closes.
    let b = open_on(url, "acme", &p1).await;
    let r1 = b
        .create(create_req("lead", vec![], &a, mon(9)))
        .await
        .unwrap();
    let r1b = b
        .create(create_req("lead", vec![], &a, mon(9)))
        .await
        .unwrap();
    assert_eq!(r1.version, h1);
    close(b).await;

    // Reopened on version 2 (files edited while it was down).
    let b = open_on(url, "acme", &p2).await;
    let mut known: Vec<String> = b
        .versions()
        .all()
        .iter()
        .filter(|w| w.id == "lead")
        .map(|w| w.hash.clone())
        .collect();
    known.sort();
    let mut both = vec![h1.clone(), h2.clone()];
    both.sort();
    assert_eq!(known, both, "both versions of `lead` are runnable");
    assert_eq!(b.versions().current("lead").unwrap().hash, h2);
    let r2 = b
        .create(create_req("lead", vec![], &a, mon(9)))
        .await
        .unwrap();
    assert_eq!(r2.version, h2, "new records get version 2");

    // Transitions and timers of the old record run on version 1: its
    // calendar (8 working hours a day) puts the 4wh timer at 13:00 the
    // same day; version 2's calendar (2 a day) at 11:00 the next day.
    for id in [r1.id, r2.id] {
        fire(&b, id, "bump", vec![("n".into(), Value::Int(3))], mon(9))
            .await
            .unwrap();
        let r = fire(&b, id, "hold", vec![], mon(9)).await.unwrap();
        assert_eq!(r.state, "waiting");
    }
    assert_eq!(b.timers(r1.id).await.unwrap()[0].due, mon(13));
    assert_eq!(
        b.timers(r2.id).await.unwrap()[0].due,
        mon(11) + chrono::Duration::days(1)
    );
    assert_eq!(b.run_due(mon(13)).await.unwrap(), 1);
    let r = b.get(r1.id).await.unwrap().unwrap();
    assert_eq!((r.state.as_str(), r.version.as_str()), ("new", h1.as_str()));
    assert_eq!(r.fields["log"], serde_json::json!(["resumed v1"]));
    assert_eq!(b.get(r2.id).await.unwrap().unwrap().state, "waiting");
    assert_eq!(
        b.run_due(mon(11) + chrono::Duration::days(1))
            .await
            .unwrap(),
        1
    );
    let r = b.get(r2.id).await.unwrap().unwrap();
    assert_eq!(r.fields["log"], serde_json::json!(["resumed v2"]));

    // The old record's guard is version 1's rules module (n >= 2); the new
    // record's is version 2's (n >= 5).
    let won = fire(&b, r1.id, "win", vec![], mon(14)).await.unwrap();
    assert_eq!(
        (won.state.as_str(), won.version.as_str()),
        ("won", h1.as_str())
    );
    let links = b.links(r1.id).await.unwrap();
    assert_eq!(links.len(), 1, "the spawn of version 1 ran: {links:?}");
    match fire(
        &b,
        r2.id,
        "win",
        vec![],
        mon(14) + chrono::Duration::days(1),
    )
    .await
    {
        Err(Error::Refused(r)) => assert!(r.message.contains("at least 5"), "{r:?}"),
        other => panic!("version 2's guard must refuse: {other:?}"),
    }
    let r = fire(
        &b,
        r1b.id,
        "bump",
        vec![("n".into(), Value::Int(1))],
        mon(15),
    )
    .await
    .unwrap();
    assert_eq!(r.version, h1);
    // One snapshot per content: reopening on the same files adds none.
    assert_eq!(snapshot_rows(&b).await, 2);
    close(b).await;
    let b = open_on(url, "acme", &p2).await;
    assert_eq!(snapshot_rows(&b).await, 2);
    assert_eq!(
        b.versions().all().iter().filter(|w| w.id == "lead").count(),
        2
    );

    // A snapshot that no longer matches its hash is not used: the store
    // opens and serves version 2; the record on version 1 gets the clear
    // "not loaded" error instead of running on something else.
    tamper(&b, Snapshot::of(&p1).hash()).await;
    close(b).await;
    let b = open_on(url, "acme", &p2).await;
    assert_eq!(
        b.versions().all().iter().filter(|w| w.id == "lead").count(),
        1
    );
    match fire(
        &b,
        r1b.id,
        "bump",
        vec![("n".into(), Value::Int(2))],
        mon(16),
    )
    .await
    {
        Err(e @ Error::VersionNotLoaded { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&format!("version {h1} is not loaded")), "{m}")
        }
        other => panic!("expected the not-loaded error: {other:?}"),
    }
    fire(
        &b,
        r2.id,
        "bump",
        vec![("n".into(), Value::Int(9))],
        mon(16),
    )
    .await
    .unwrap();
    close(b).await;
}

/// Versions registered without a snapshot (a store opened by a tool that
/// had no files, or before snapshots existed) and snapshots that no longer
/// load are skipped with a log line, never a failed open.
async fn unloadable_snapshots_are_skipped(url: &str) {
    let p1 = project(false);
    let set1 = loaded(&p1);
    let b = leadflow_runtime::open(url, "beta", set1.clone())
        .await
        .unwrap();
    let r = b
        .create(create_req("lead", vec![], &agent("a1"), mon(9)))
        .await
        .unwrap();
    // The versions of set1 point at a snapshot whose rules module is gone.
    let mut broken = p1.clone();
    broken.rules.clear();
    b.register_snapshot(&Snapshot::of(&broken), &set1)
        .await
        .unwrap();
    close(b).await;
    let b = open_on(url, "beta", &project(true)).await;
    assert_eq!(
        b.versions().all().iter().filter(|w| w.id == "lead").count(),
        1
    );
    let e = fire(&b, r.id, "bump", vec![], mon(10)).await.unwrap_err();
    assert!(e.to_string().contains("is not loaded"), "{e}");
    close(b).await;
}

#[tokio::test]
async fn sqlite_older_versions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("versions.db").display());
    older_versions_survive_a_restart(&url).await;
    unloadable_snapshots_are_skipped(&url).await;
}

#[tokio::test]
async fn pg_older_versions_survive_a_restart() {
    let db = PgDb::new().await;
    older_versions_survive_a_restart(&db.url).await;
    unloadable_snapshots_are_skipped(&db.url).await;
    // Snapshots are per tenant, behind row-level security like every table.
    let other = open_on(&db.url, "other", &project(false)).await;
    assert_eq!(snapshot_rows(&other).await, 1);
    close(other).await;
    db.drop_db().await;
}

/// Two processes on one database (two daemons): one publishes version 2
/// (hot reload) and creates a record on it; the other, started on version
/// 1 and never reloaded, still runs that record: it loads the version from
/// its snapshot the first time it meets it.
async fn a_version_published_elsewhere_is_loaded_when_met(url: &str) {
    let (p1, p2) = (project(false), project(true));
    let a = open_on(url, "acme", &p1).await;
    let b = open_on(url, "acme", &p1).await;
    a.publish(&loaded(&p2), &Snapshot::of(&p2)).await.unwrap();
    let r = a
        .create(create_req(
            "lead",
            vec![("n".into(), Value::Int(4))],
            &agent("a1"),
            mon(10),
        ))
        .await
        .unwrap();
    assert_eq!(r.version, lead_hash(&p2));
    assert!(!b.versions().knows("lead", &lead_hash(&p2)));
    // Version 2's rule (n must be at least 5) applies, not version 1's.
    let refused = fire(&b, r.id, "win", vec![], mon(11)).await.unwrap_err();
    assert!(refused.to_string().contains("at least 5"), "{refused}");
    let bumped = fire(&b, r.id, "bump", vec![("n".into(), Value::Int(6))], mon(11))
        .await
        .unwrap();
    assert_eq!(bumped.version, lead_hash(&p2));
    assert!(b.versions().knows("lead", &lead_hash(&p2)));
    // New records on b stay on b's current version until b reloads.
    let on_b = b
        .create(create_req("lead", vec![], &agent("a1"), mon(12)))
        .await
        .unwrap();
    assert_eq!(on_b.version, lead_hash(&p1));
    close(a).await;
    close(b).await;
}

#[tokio::test]
async fn sqlite_a_version_published_elsewhere_is_loaded_when_met() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("versions.db").display());
    a_version_published_elsewhere_is_loaded_when_met(&url).await;
}

#[tokio::test]
async fn pg_a_version_published_elsewhere_is_loaded_when_met() {
    let db = PgDb::new().await;
    a_version_published_elsewhere_is_loaded_when_met(&db.url).await;
    db.drop_db().await;
}
