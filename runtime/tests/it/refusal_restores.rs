//! A transition refused after the engine ran (an immediate spawn it causes
//! is refused) leaves the record exactly as it was, on every backend. The
//! memory store lends its record to the engine, which changes it in place,
//! so this is the path where the record has to be given back reverted.

use crate::common;

use common::{agent, at, create_req, fire_req, s, t0};
use leadflow_engine::{load, Project, SourceFile, WorkflowSet};
use leadflow_runtime::backend::*;
use leadflow_runtime::mem::MemBackend;
use std::sync::Arc;

const PARENT: &str = r#"
[workflow]
id = "p"
initial = "open"
[fields.name]
type = "string"
[fields.n]
type = "int"
default = 0
[fields.tags]
type = "list"

[states.open]
on_enter = [{ assign = "agent" }]
[states.next]
[states.done]
final = true

[transitions.go]
from = ["open"]
to = "next"
by = ["agent", "system"]
input = ["name"]
do = [
  { set = "n", expr = "lead.n + 1" },
  { append = "tags", value = "x" },
  { release = true },
  { spawn = "child", map = { title = "name" }, link = "parent", backlink = "kids" },
]
[transitions.finish]
from = ["open", "next"]
to = "done"
by = ["agent"]

[timers.auto]
in = ["open"]
after = "1h"
fire = "go"
"#;

const CHILD: &str = r#"
[workflow]
id = "child"
initial = "open"
[fields.title]
type = "string"
required = true
[states.open]
[states.done]
final = true
[transitions.done]
from = ["open"]
to = "done"
by = ["agent"]
"#;

fn set() -> Arc<WorkflowSet> {
    let loaded = load(&Project {
        workflows: vec![
            SourceFile::new("workflows/p.toml", PARENT),
            SourceFile::new("workflows/child.toml", CHILD),
        ],
        ..Project::default()
    });
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

/// Everything a refusal must leave unchanged.
async fn snapshot<B: Backend>(b: &B, id: RecordId) -> String {
    format!(
        "{:?}",
        (
            b.get(id).await.unwrap(),
            b.history(id).await.unwrap().len(),
            b.timers(id).await.unwrap(),
            b.outbox(id).await.unwrap().len(),
            b.links(id).await.unwrap(),
        )
    )
}

async fn run<B: Backend>(b: &B) {
    let a1 = agent("a1");
    b.set_actors(vec![a1.clone()]).await.unwrap();
    let rec = b
        .create(create_req("p", vec![("tags".into(), s("a"))], &a1, t0()))
        .await
        .unwrap();
    assert_eq!(rec.assignee.as_deref(), Some("a1"));
    let before = snapshot(b, rec.id).await;

    // The input, three effects and the state change are made, then the
    // child's required title is missing: all of it is refused.
    let r = b
        .fire(fire_req(
            rec.id,
            "go",
            vec![("name".into(), s("  "))],
            &a1,
            t0(),
        ))
        .await;
    assert_eq!(r.unwrap_err().code(), "E_REQUIRED");
    assert_eq!(snapshot(b, rec.id).await, before);

    // The same transition fired by the timer: discarded, record unchanged.
    let history = b.history(rec.id).await.unwrap();
    assert_eq!(b.run_due(at(2)).await.unwrap(), 0);
    assert_eq!(b.get(rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(b.history(rec.id).await.unwrap(), history);

    // With a title the transition goes through.
    let done = b
        .fire(fire_req(
            rec.id,
            "go",
            vec![("name".into(), s("Ann"))],
            &a1,
            at(2),
        ))
        .await
        .unwrap();
    assert_eq!(
        (done.state.as_str(), done.revision, done.assignee.as_deref()),
        ("next", 2, None)
    );
    assert_eq!(done.fields.get("n"), Some(&serde_json::json!(1)));
    assert_eq!(b.links(rec.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn refused_spawn_restores_mem() {
    run(&MemBackend::new(set())).await;
}

#[tokio::test]
async fn refused_spawn_restores_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let b = leadflow_runtime::SqliteBackend::open(&url, "acme", set())
        .await
        .unwrap();
    run(&b).await;
}

#[tokio::test]
async fn refused_spawn_restores_pg() {
    let db = common::PgDb::new().await;
    let b = leadflow_runtime::PgBackend::open(&db.url, "acme", set())
        .await
        .unwrap();
    run(&b).await;
    b.pool().close().await;
    db.drop_db().await;
}
