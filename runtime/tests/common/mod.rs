//! Shared test fixtures: small inline workflows, the conformance suite that
//! every backend must pass unchanged, and fresh PostgreSQL databases.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use leadflow_engine::{load, Actor, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::*;
use std::sync::Arc;

pub mod conformance;
pub mod pgtest;
pub mod smtp;

pub const LEAD: &str = r#"
[workflow]
id = "lead"
initial = "new"
[fields.name]
type = "string"
[fields.n]
type = "int"
[fields.note]
type = "text"
[fields.scratch]
type = "text"
track = false
[fields.again_at]
type = "datetime"
[fields.recontacted]
type = "bool"
[fields.log]
type = "list"

[states.new]
on_enter = [{ assign = "agent" }]
[states.working]
[states.won]
final = true
[states.lost]
final = true
[states.later]
final = true

[transitions.bump]
from = ["new", "working"]
by = ["agent"]
input = ["n", "scratch"]

[transitions.start]
from = ["new"]
to = "working"
by = ["agent"]
input = ["note"]
require = ["note"]
do = [{ notify = "started", to = ["assignee", "customer"] }]

[transitions.win]
from = ["working"]
to = "won"
by = ["agent"]
do = [{ spawn = "task", map = { title = "name" }, link = "lead", backlink = "tasks" }]

[transitions.contact_again]
from = ["new", "working"]
to = "later"
by = ["agent"]
input = ["again_at"]
require = ["again_at"]
do = [{ spawn = "lead", at = "lead.again_at", map = { name = "name", recontacted = "true" }, link = "master", backlink = "recontact" }]

[transitions.nudge]
from = ["working"]
by = ["system"]
do = [{ append = "log", value = "nudge" }]

[transitions.expire]
from = ["new", "working"]
to = "lost"
by = ["system"]

[transitions.close]
from = ["new", "working"]
to = "lost"
by = ["agent"]

[timers.reminder]
in = ["new"]
after = "1h"
do = [{ notify = "reminder", to = ["assignee"] }]

[timers.nudger]
in = ["working"]
after = "1h"
fire = "nudge"

[timers.expiry]
in = ["new", "working"]
after = "2d"
fire = "expire"
"#;

pub const TASK: &str = r#"
[workflow]
id = "task"
initial = "open"
[fields.title]
type = "string"
[states.open]
[states.done]
final = true
[transitions.done]
from = ["open"]
to = "done"
by = ["agent"]
"#;

/// A counter workflow without timers, for concurrency and throughput tests.
pub const COUNTER: &str = r#"
[workflow]
id = "counter"
initial = "open"
[fields.n]
type = "int"
[states.open]
[states.closed]
final = true
[transitions.bump]
from = ["open"]
by = ["agent"]
input = ["n"]
[transitions.close]
from = ["open"]
to = "closed"
by = ["agent", "system"]
"#;

/// A project that, once started, goes to one crew member and spawns three
/// jobs in the same step, each assigned to a crew member (siblings).
pub const CREW_PROJECT: &str = r#"
[workflow]
id = "crew_project"
initial = "draft"
[states.draft]
[states.open]
on_enter = [
  { assign = "crew" },
  { spawn = "crew_job", link = "project", backlink = "job_a" },
  { spawn = "crew_job", link = "project", backlink = "job_b" },
  { spawn = "crew_job", link = "project", backlink = "job_c" },
]
[states.done]
final = true
[transitions.start]
from = ["draft"]
to = "open"
by = ["agent"]
[transitions.finish]
from = ["open"]
to = "done"
by = ["crew"]
"#;

pub const CREW_JOB: &str = r#"
[workflow]
id = "crew_job"
initial = "open"
[states.open]
on_enter = [{ assign = "crew" }]
[states.done]
final = true
[transitions.done]
from = ["open"]
to = "done"
by = ["crew"]
"#;

/// Assigns nothing itself; on creation it spawns two jobs that do.
pub const CREW_BATCH: &str = r#"
[workflow]
id = "crew_batch"
initial = "open"
[states.open]
on_enter = [
  { spawn = "crew_job", link = "batch", backlink = "first" },
  { spawn = "crew_job", link = "batch", backlink = "second" },
]
[states.done]
final = true
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
"#;

/// A workflow whose only timer fires once, for timer-worker tests.
pub const TICK: &str = r#"
[workflow]
id = "tick"
initial = "waiting"
[fields.k]
type = "int"
[states.waiting]
[states.done]
final = true
[transitions.ring]
from = ["waiting"]
to = "done"
by = ["system"]
do = [{ notify = "rang", to = ["customer"] }]
[timers.alarm]
in = ["waiting"]
after = "1m"
fire = "ring"
"#;

pub fn set() -> Arc<WorkflowSet> {
    let project = Project {
        workflows: vec![
            SourceFile::new("workflows/lead.toml", LEAD),
            SourceFile::new("workflows/task.toml", TASK),
            SourceFile::new("workflows/counter.toml", COUNTER),
            SourceFile::new("workflows/tick.toml", TICK),
            SourceFile::new("workflows/crew_project.toml", CREW_PROJECT),
            SourceFile::new("workflows/crew_job.toml", CREW_JOB),
            SourceFile::new("workflows/crew_batch.toml", CREW_BATCH),
        ],
        ..Project::default()
    };
    let loaded = load(&project);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

pub fn t0() -> DateTime<Utc> {
    "2024-01-01T09:00:00Z".parse().unwrap()
}

pub fn at(hours: i64) -> DateTime<Utc> {
    t0() + Duration::hours(hours)
}

pub fn agent(id: &str) -> Actor {
    Actor {
        id: id.into(),
        role: "agent".into(),
        ..Actor::default()
    }
}

pub fn s(v: &str) -> Value {
    Value::Str(v.into())
}

pub fn fire_req<'a>(
    record: RecordId,
    transition: &'a str,
    input: Vec<(String, Value)>,
    actor: &'a Actor,
    now: DateTime<Utc>,
) -> FireRequest<'a> {
    FireRequest {
        record,
        transition,
        input,
        actor,
        now,
        expected_revision: None,
        idempotency_key: None,
        visible: None,
        bulk: false,
    }
}

pub fn create_req<'a>(
    workflow: &'a str,
    input: Vec<(String, Value)>,
    actor: &'a Actor,
    now: DateTime<Utc>,
) -> CreateRequest<'a> {
    CreateRequest {
        workflow,
        input,
        actor,
        now,
        idempotency_key: None,
    }
}

/// PostgreSQL at 127.0.0.1:5432 (or LEADFLOW_TEST_PG): a fresh database per
/// test, dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub name: String,
    pub url: String,
    admin: String,
}

pub fn pg_admin_url() -> String {
    pgtest::admin_url()
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl PgDb {
    /// A fresh database (on every node of a Citus cluster, see `pgtest.rs`).
    pub async fn new() -> PgDb {
        let name = unique("lf_test");
        let url = tokio::task::spawn_blocking({
            let name = name.clone();
            move || pgtest::create_db(&name)
        })
        .await
        .unwrap();
        PgDb {
            url,
            name,
            admin: pg_admin_url(),
        }
    }

    pub async fn drop_db(self) {
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || pgtest::drop_db(&name))
            .await
            .unwrap();
    }
}

/// Fire `bump` (n = 1) on `id` with an idempotency key and request fingerprint.
pub async fn bump_with_key<B: Backend>(
    b: &B,
    id: i64,
    key: &str,
    request: &str,
) -> Result<StoredRecord, Error> {
    let a = agent("a1");
    let mut req = fire_req(id, "bump", vec![("n".into(), Value::Int(1))], &a, t0());
    req.idempotency_key = Some(Idempotency { key, request });
    b.fire(req).await
}
