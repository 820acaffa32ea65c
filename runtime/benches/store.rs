//! Store throughput, as a plain binary (harness = false). Usage:
//!
//! ```text
//! cargo bench -p leadflow-runtime --bench store -- mem [records=100000] [beats=10]
//! cargo bench -p leadflow-runtime --bench store -- sqlite [transitions=5000] [writers=1]
//! cargo bench -p leadflow-runtime --bench store -- pg-transitions [writers=16] [seconds=20] [group-writers=4, 0: no group commit]
//! cargo bench -p leadflow-runtime --bench store -- pg-timers [timers=100000] [workers=2]
//! ```
//! PostgreSQL: LEADFLOW_BENCH_PG (default postgres://postgres@127.0.0.1:5432/postgres);
//! a scratch database is created and dropped. A Citus coordinator: also
//! LEADFLOW_BENCH_CITUS_WORKERS=127.0.0.1:9701,127.0.0.1:9702 (the scratch
//! database is made on every node and the store distributes its schema).

use chrono::{DateTime, Duration, Utc};
use leadflow_engine::{load, Actor, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::{Backend, CreateRequest, FireRequest};
use leadflow_runtime::clock::SystemClock;
use leadflow_runtime::worker::{self, WorkerConfig};
use leadflow_runtime::{MemBackend, PgBackend, SqliteBackend};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Instant;

/// `touch` is shaped like the pgbench baseline: lock, update fields, one
/// history row, re-arm a 60-day timer. `pulse` re-arms itself every hour.
const BENCH: &str = r#"
[workflow]
id = "bench"
initial = "open"
[fields.n]
type = "int"
default = 0
[states.open]
[states.closed]
final = true
[transitions.touch]
from = ["open"]
by = ["agent"]
input = ["n"]
rearm = ["lost"]
[transitions.expire]
from = ["open"]
to = "closed"
by = ["system"]
[transitions.beat]
from = ["open"]
by = ["system"]
do = [{ set = "n", expr = "lead.n + 1" }]
[timers.lost]
in = ["open"]
after = "60d"
fire = "expire"
"#;

const PULSE: &str = r#"
[workflow]
id = "pulse"
initial = "on"
[fields.n]
type = "int"
default = 0
[states.on]
[states.off]
final = true
[transitions.beat]
from = ["on"]
by = ["system"]
do = [{ set = "n", expr = "lead.n + 1" }]
[transitions.stop]
from = ["on"]
to = "off"
by = ["agent"]
[timers.beat]
in = ["on"]
after = "1h"
fire = "beat"
"#;

const TICK: &str = r#"
[workflow]
id = "tick"
initial = "waiting"
[states.waiting]
[states.done]
final = true
[transitions.ring]
from = ["waiting"]
to = "done"
by = ["system"]
[timers.alarm]
in = ["waiting"]
after = "1m"
fire = "ring"
"#;

fn set() -> Arc<WorkflowSet> {
    let project = Project {
        workflows: vec![
            SourceFile::new("workflows/bench.toml", BENCH),
            SourceFile::new("workflows/pulse.toml", PULSE),
            SourceFile::new("workflows/tick.toml", TICK),
        ],
        ..Project::default()
    };
    let loaded = load(&project);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

fn t0() -> DateTime<Utc> {
    "2024-01-01T09:00:00Z".parse().unwrap_or_default()
}

fn agent() -> Actor {
    Actor {
        id: "a1".into(),
        role: "agent".into(),
        ..Actor::default()
    }
}

fn arg(args: &[String], i: usize, default: u64) -> u64 {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn create<'a>(wf: &'a str, a: &'a Actor, now: DateTime<Utc>) -> CreateRequest<'a> {
    CreateRequest {
        workflow: wf,
        input: vec![],
        actor: a,
        now,
        idempotency_key: None,
    }
}

async fn mem(records: u64, beats: u64) {
    let b = MemBackend::new(set());
    let a = agent();
    let start = Instant::now();
    for _ in 0..records {
        b.create(create("pulse", &a, t0())).await.unwrap();
    }
    let created = start.elapsed();
    let start = Instant::now();
    let fired = b
        .run_due(t0() + Duration::hours(beats as i64))
        .await
        .unwrap();
    let el = start.elapsed();
    println!(
        "mem: {records} records created in {:.2}s; {fired} timer firings in {:.2}s ({:.0} firings/s); total {:.2}s",
        created.as_secs_f64(),
        el.as_secs_f64(),
        fired as f64 / el.as_secs_f64(),
        (created + el).as_secs_f64()
    );
}

async fn sqlite(n: u64, writers: u64) {
    let dir = std::env::temp_dir().join(format!("leadflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let b = SqliteBackend::open(&url, "bench", set()).await.unwrap();
    let a = agent();
    let ids: Vec<i64> = {
        let mut v = Vec::new();
        for _ in 0..1000 {
            v.push(b.create(create("bench", &a, t0())).await.unwrap().id);
        }
        v
    };
    let ids = Arc::new(ids);
    let start = Instant::now();
    let mut hs = Vec::new();
    for w in 0..writers {
        let (b, ids) = (b.clone(), ids.clone());
        hs.push(tokio::spawn(async move {
            let a = agent();
            let mut i = w;
            while i < n {
                b.fire(FireRequest {
                    record: ids[(i % 1000) as usize],
                    transition: "touch",
                    input: vec![("n".into(), Value::Int(i as i64))],
                    actor: &a,
                    now: t0(),
                    expected_revision: None,
                    idempotency_key: None,
                    visible: None,
                    bulk: false,
                })
                .await
                .unwrap();
                i += writers;
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    let el = start.elapsed();
    let (batches, reqs) = b.group_stats().unwrap_or((0, 0));
    println!(
        "sqlite: {n} durable transitions by {writers} concurrent writer(s) in {:.2}s = {:.0} transitions/s (synchronous=FULL, WAL; {:.1} per commit)",
        el.as_secs_f64(),
        n as f64 / el.as_secs_f64(),
        reqs as f64 / batches.max(1) as f64
    );
    let _ = std::fs::remove_dir_all(dir);
}

struct Scratch {
    admin: String,
    name: String,
    url: String,
}

async fn scratch() -> Scratch {
    let admin = std::env::var("LEADFLOW_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("lf_bench_{}", std::process::id());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    // Diagnosis: LEADFLOW_BENCH_EXPLAIN=<ms> logs the plans (with actual
    // times) of the scratch database's statements slower than that to the
    // server log, through auto_explain.
    if let Ok(ms) = std::env::var("LEADFLOW_BENCH_EXPLAIN") {
        for set in [
            "session_preload_libraries = 'auto_explain'".to_string(),
            format!(
                "auto_explain.log_min_duration = {}",
                ms.parse::<u32>().unwrap_or(20)
            ),
            "auto_explain.log_analyze = on".to_string(),
        ] {
            sqlx::query(&format!("ALTER DATABASE {name} SET {set}"))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin.clone());
    let url = format!("{base}/{name}");
    // A Citus cluster (scripts/citus-cluster.sh): the database on every
    // worker too, with the extension, and the nodes registered in the
    // coordinator's copy; the store then distributes its schema.
    let workers = citus_workers();
    if !workers.is_empty() {
        for w in &workers {
            let server = format!("postgres://postgres@{w}");
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            run_sql(&format!("{server}/postgres"), &drop).await;
            run_sql(
                &format!("{server}/postgres"),
                &format!("CREATE DATABASE {name}"),
            )
            .await;
            run_sql(&format!("{server}/{name}"), "CREATE EXTENSION citus").await;
        }
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let host_port = base
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or("127.0.0.1:5432");
        let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
        let mut setup =
            format!("CREATE EXTENSION citus; SELECT citus_set_coordinator_host('{host}', {port});");
        for w in &workers {
            let (h, p) = w.rsplit_once(':').unwrap_or((w, "5432"));
            setup.push_str(&format!(" SELECT citus_add_node('{h}', {p});"));
        }
        sqlx::raw_sql(&setup).execute(&mut c).await.unwrap();
    }
    Scratch { url, admin, name }
}

/// `LEADFLOW_BENCH_CITUS_WORKERS=host:port,host:port`: the admin URL is a
/// Citus coordinator with these workers.
fn citus_workers() -> Vec<String> {
    std::env::var("LEADFLOW_BENCH_CITUS_WORKERS")
        .unwrap_or_default()
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(|w| w.trim().to_string())
        .collect()
}

async fn drop_scratch(s: Scratch) {
    let mut c = sqlx::PgConnection::connect(&s.admin).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", s.name))
        .execute(&mut c)
        .await
        .unwrap();
    for w in citus_workers() {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", s.name);
        run_sql(&format!("postgres://postgres@{w}/postgres"), &drop).await;
    }
}

/// One statement on a fresh connection to `url`.
async fn run_sql(url: &str, sql: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
}

async fn seed(b: &PgBackend, wf: &'static str, n: u64, tasks: u64) -> Vec<i64> {
    let mut hs = Vec::new();
    for w in 0..tasks {
        let b = b.clone();
        hs.push(tokio::spawn(async move {
            let a = agent();
            let mut ids = Vec::new();
            for _ in (0..n).filter(|i| i % tasks == w) {
                ids.push(b.create(create(wf, &a, t0())).await.unwrap().id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for h in hs {
        ids.extend(h.await.unwrap());
    }
    ids
}

async fn pg_transitions(writers: u64, seconds: u64, group: u64) {
    let s = scratch().await;
    let opts = leadflow_runtime::pg::PgOptions {
        max_connections: writers as u32 + 2,
        writers: group as usize,
        migrate: true,
    };
    let b = PgBackend::open_with(&s.url, "bench", set(), opts)
        .await
        .unwrap();
    let ids = Arc::new(seed(&b, "bench", 20_000, writers).await);
    // What autovacuum does within a minute of such a load (as in
    // pg-timers). Without statistics the generic plan of the foreign-key
    // checks (history, events, timers -> records) may pick
    // `records_state (tenant_id, state, id)` over the primary key and read
    // the whole tenant per check: 0.4 ms each at 20,000 records.
    if std::env::var("LEADFLOW_BENCH_NO_ANALYZE").is_err() {
        let mut admin = sqlx::PgConnection::connect(&s.url).await.unwrap();
        sqlx::query("ANALYZE").execute(&mut admin).await.unwrap();
    }
    let stop = Instant::now() + std::time::Duration::from_secs(seconds);
    let start = Instant::now();
    let mut hs = Vec::new();
    for w in 0..writers {
        let b = b.clone();
        let ids = ids.clone();
        hs.push(tokio::spawn(async move {
            let a = agent();
            let mut n = 0u64;
            let mut lat = Vec::new();
            let mut i = w as usize;
            while Instant::now() < stop {
                let id = ids[i % ids.len()];
                i += writers as usize;
                let t = Instant::now();
                b.fire(FireRequest {
                    record: id,
                    transition: "touch",
                    input: vec![("n".into(), Value::Int(n as i64))],
                    actor: &a,
                    now: t0(),
                    expected_revision: None,
                    idempotency_key: None,
                    visible: None,
                    bulk: false,
                })
                .await
                .unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                n += 1;
            }
            (n, lat)
        }));
    }
    let (mut total, mut lat) = (0, Vec::new());
    for h in hs {
        let (n, l) = h.await.unwrap();
        total += n;
        lat.extend(l);
    }
    let el = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let mode = if group == 0 {
        "one transaction each".to_string()
    } else {
        format!("group commit, {group} batch writers")
    };
    let cluster = match citus_workers().len() {
        0 => String::new(),
        n => format!(" (Citus, coordinator + {n} workers)"),
    };
    println!("pg-transitions{cluster}: {writers} writers, distinct records, {mode}: {total} transitions in {el:.1}s = {:.0} transitions/s, latency p50 {:.1} ms, p99 {:.1} ms", total as f64 / el, pct(0.5), pct(0.99));
    b.pool().close().await;
    drop_scratch(s).await;
}

async fn pg_timers(n: u64, workers: u64) {
    let s = scratch().await;
    let opts = leadflow_runtime::pg::PgOptions {
        max_connections: 20,
        ..Default::default()
    };
    let b = PgBackend::open_with(&s.url, "bench", set(), opts)
        .await
        .unwrap();
    let seeded = Instant::now();
    seed(&b, "tick", n, 16).await;
    // What autovacuum does within a minute of such a load; without
    // statistics the planner thinks the tenant has a handful of rows.
    // (As the table owner: the pool's role may not analyze.)
    let mut admin = sqlx::PgConnection::connect(&s.url).await.unwrap();
    sqlx::query("ANALYZE records, timers")
        .execute(&mut admin)
        .await
        .unwrap();
    println!(
        "pg-timers: seeded {n} records with a due timer in {:.1}s",
        seeded.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let clock = Arc::new(SystemClock);
    let hs: Vec<_> = (0..workers)
        .map(|w| {
            worker::spawn(
                b.clone(),
                clock.clone(),
                WorkerConfig {
                    owner: format!("bench-{w}"),
                    batch: 500,
                    ..WorkerConfig::default()
                },
            )
        })
        .collect();
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM timers WHERE fired_at IS NULL")
            .fetch_one(b.pool())
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let el = start.elapsed().as_secs_f64();
    let mut fired = 0;
    for h in hs {
        fired += h.shutdown().await.fired;
    }
    println!(
        "pg-timers: {fired} due timers fired by {workers} workers in {el:.1}s = {:.0} timers/s",
        fired as f64 / el
    );
    b.pool().close().await;
    drop_scratch(s).await;
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mode = args.first().map(String::as_str).unwrap_or("mem");
    rt.block_on(async {
        match mode {
            "mem" => mem(arg(&args, 1, 100_000), arg(&args, 2, 10)).await,
            "sqlite" => sqlite(arg(&args, 1, 5000), arg(&args, 2, 1)).await,
            "pg-transitions" => {
                pg_transitions(arg(&args, 1, 16), arg(&args, 2, 20), arg(&args, 3, 4)).await
            }
            "pg-timers" => pg_timers(arg(&args, 1, 100_000), arg(&args, 2, 2)).await,
            other => eprintln!("unknown mode `{other}`: mem | sqlite | pg-transitions | pg-timers"),
        }
    });
}
