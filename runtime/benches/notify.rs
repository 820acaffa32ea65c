//! Notifications end to end, as a plain binary (harness = false), on a
//! SQLite file in the temp directory. Usage:
//!
//! ```text
//! [LEADFLOW_BENCH_PG=postgres://postgres@127.0.0.1:5432/postgres] \
//!   cargo bench -p leadflow-runtime --bench notify -- [messages=10000] [transitions=5000] [rounds=4]
//! ```
//!
//! 1. Transitions/s with notifications off and on: the same transition on
//!    records with the same fields, once in a workflow without `notify`,
//!    once in one whose step queues a
//!    message (one outbox row with its redacted payload, written in the
//!    transition's transaction). Fired alternately in
//!    chunks of 250, `rounds` runs; the time over all runs and the
//!    median run are compared.
//! 2. `messages` notifications queued, then rendered (MiniJinja) and
//!    delivered by the outbox dispatcher to an SMTP receiver on a local
//!    port, one SMTP session per message: messages/s from the first claim
//!    to the last delivery.

use chrono::{DateTime, Utc};
use leadflow_engine::{load, Actor, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::{Backend, CreateRequest, FireRequest};
use leadflow_runtime::outbox::{self, DispatchConfig, Sink, SmtpConfig, SmtpTls, Templates};
use leadflow_runtime::pg::PgOptions;
use leadflow_runtime::templates::{Source, TemplateSet};
use leadflow_runtime::{PgBackend, SqliteBackend};
use sqlx::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const QUIET: &str = r#"
[workflow]
id = "quiet"
initial = "open"
[fields.name]
type = "string"
[fields.phone]
type = "string"
pii = true
[fields.n]
type = "int"
default = 0
[states.open]
[states.closed]
final = true
[transitions.touch]
from = ["open"]
by = ["agent"]
do = [{ set = "n", expr = "lead.n + 1" }]
[transitions.close]
from = ["open"]
to = "closed"
by = ["agent"]
"#;

const LOUD: &str = r#"
[workflow]
id = "loud"
initial = "open"
[fields.name]
type = "string"
[fields.phone]
type = "string"
pii = true
[fields.n]
type = "int"
default = 0
[states.open]
[states.closed]
final = true
[transitions.touch]
from = ["open"]
by = ["agent"]
do = [{ set = "n", expr = "lead.n + 1" }, { notify = "touched", to = "ops@example.com" }]
[transitions.close]
from = ["open"]
to = "closed"
by = ["agent"]
"#;

const TEMPLATE: &str = "Subject: Lead {{ lead.name }} touched ({{ lead.n }})\nHello,\n\nlead {{ record }} ({{ lead.name }}) was touched {{ lead.n }} times; it is {{ state }}.\n{% if lead.phone is defined %}Phone: {{ lead.phone }}\n{% endif %}\nleadflow\n";

fn set() -> Arc<WorkflowSet> {
    let project = Project {
        workflows: vec![
            SourceFile::new("workflows/quiet.toml", QUIET),
            SourceFile::new("workflows/loud.toml", LOUD),
        ],
        ..Project::default()
    };
    let loaded = load(&project);
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn agent() -> Actor {
    Actor {
        id: "a1".into(),
        role: "agent".into(),
        ..Actor::default()
    }
}

async fn records<B: Backend>(b: &B, wf: &str, n: u64) -> Vec<i64> {
    let a = agent();
    let mut ids = Vec::new();
    for i in 0..n {
        let r = b
            .create(CreateRequest {
                workflow: wf,
                input: vec![
                    ("name".into(), Value::Str(format!("Lead {i}"))),
                    ("phone".into(), Value::Str("+39 02 1234567".into())),
                ]
                .into_iter()
                .collect(),
                actor: &a,
                now: now(),
                idempotency_key: None,
            })
            .await
            .expect("create");
        ids.push(r.id);
    }
    ids
}

/// Fire `touch` once on each record: the seconds it took.
async fn touch<B: Backend>(b: &B, ids: &[i64]) -> f64 {
    let a = agent();
    let start = Instant::now();
    for &id in ids {
        b.fire(FireRequest {
            record: id,
            transition: "touch",
            input: vec![],
            actor: &a,
            now: now(),
            expected_revision: None,
            idempotency_key: None,
            visible: None,
            bulk: false,
        })
        .await
        .expect("fire");
    }
    start.elapsed().as_secs_f64()
}

/// Fire `touch` once on each record from `clients` concurrent tasks (a
/// daemon's concurrent requests, which group commit batches): seconds.
async fn touch_concurrent(b: &PgBackend, ids: &[i64], clients: usize) -> f64 {
    let start = Instant::now();
    let mut hs = Vec::new();
    for part in ids.chunks(ids.len().div_ceil(clients).max(1)) {
        let (b, part) = (b.clone(), part.to_vec());
        hs.push(tokio::spawn(async move { touch(&b, &part).await }));
    }
    for h in hs {
        h.await.expect("client");
    }
    start.elapsed().as_secs_f64()
}

/// Records fired per chunk, off and on alternating, so that the disk's
/// and the machine's drift (checkpoints, other load) hits both alike.
const CHUNK: usize = 250;

/// A minimal SMTP receiver on a local port: accepts every message and
/// counts it.
async fn smtp_receiver() -> (u16, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                if w.write_all(b"220 localhost ESMTP bench\r\n").await.is_err() {
                    return;
                }
                let (mut line, mut data) = (String::new(), false);
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let reply: &[u8] = if data {
                        if line != ".\r\n" {
                            continue;
                        }
                        data = false;
                        c.fetch_add(1, Ordering::Relaxed);
                        b"250 queued\r\n"
                    } else {
                        let cmd = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match cmd.as_str() {
                            "EHLO" | "HELO" => b"250 localhost\r\n",
                            "DATA" => {
                                data = true;
                                b"354 go on\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        }
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, count)
}

/// Print the runs of one store: transitions/s off and on, and how far on
/// is below off per run, over all runs and in the median run.
fn report(store: &str, transitions: u64, chunk: usize, off: &[f64], on: &[f64]) {
    let total = |v: &[f64]| v.iter().map(|r| transitions as f64 / r).sum::<f64>();
    let list = |v: &[f64], p: usize| {
        v.iter()
            .map(|x| format!("{x:.p$}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let mut below: Vec<f64> = off
        .iter()
        .zip(on)
        .map(|(f, n)| 100.0 * (1.0 - n / f))
        .collect();
    let per_run = list(&below, 1);
    below.sort_by(f64::total_cmp);
    println!(
        "transitions/s on {store}, {transitions} per run in chunks of {chunk} alternating, {} runs: notifications off {}, on {}; on below off per run: {per_run}%; over all runs {:.1}% below (median run {:.1}%)",
        off.len(),
        list(off, 0),
        list(on, 0),
        100.0 * (1.0 - total(off) / total(on)),
        below[below.len() / 2],
    );
}

/// The same comparison on PostgreSQL (a scratch database on the server
/// `admin` names, dropped after), with 16 concurrent clients so that group
/// commit batches transitions as it does in the daemon.
async fn pg_runs(admin: &str, transitions: u64, rounds: usize) {
    const CLIENTS: usize = 16;
    let name = format!("lf_bench_notify_{}", std::process::id());
    let mut c = sqlx::PgConnection::connect(admin).await.expect("admin");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .expect("create database");
    let (server, _) = admin
        .rsplit_once('/')
        .expect("LEADFLOW_BENCH_PG: a URL ending in /<database>");
    let url = format!("{server}/{name}");
    let opts = PgOptions {
        max_connections: CLIENTS as u32 + 2,
        ..PgOptions::default()
    };
    let b = PgBackend::open_with(&url, "bench", set(), opts)
        .await
        .expect("open");
    let quiet = records(&b, "quiet", transitions).await;
    let loud = records(&b, "loud", transitions).await;
    // What autovacuum does within a minute of such a load (as the store
    // bench does): unanalyzed, the foreign-key checks may scan the tenant.
    let mut owner = sqlx::PgConnection::connect(&url).await.expect("owner");
    sqlx::query("ANALYZE")
        .execute(&mut owner)
        .await
        .expect("analyze");
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (mut t_off, mut t_on) = (0.0, 0.0);
        for (q, l) in quiet.chunks(CHUNK * 4).zip(loud.chunks(CHUNK * 4)) {
            t_off += touch_concurrent(&b, q, CLIENTS).await;
            t_on += touch_concurrent(&b, l, CLIENTS).await;
        }
        off.push(transitions as f64 / t_off);
        on.push(transitions as f64 / t_on);
    }
    report(
        &format!("PostgreSQL, {CLIENTS} clients, group commit"),
        transitions,
        CHUNK * 4,
        &off,
        &on,
    );
    drop(b);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await;
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let messages = args.first().copied().unwrap_or(10_000);
    let transitions = args.get(1).copied().unwrap_or(5_000);
    let rounds = args.get(2).copied().unwrap_or(4).max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!("leadflow-notify-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        let b = SqliteBackend::open(&url, "bench", set()).await.expect("open");

        // 1. Transitions with notifications off and on.
        let quiet = records(&b, "quiet", transitions).await;
        let loud = records(&b, "loud", transitions).await;
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (mut t_off, mut t_on) = (0.0, 0.0);
            for (q, l) in quiet.chunks(CHUNK).zip(loud.chunks(CHUNK)) {
                t_off += touch(&b, q).await;
                t_on += touch(&b, l).await;
            }
            off.push(transitions as f64 / t_off);
            on.push(transitions as f64 / t_on);
        }
        report("SQLite, one client", transitions, CHUNK, &off, &on);
        if let Ok(admin) = std::env::var("LEADFLOW_BENCH_PG") {
            pg_runs(&admin, transitions, rounds).await;
        }

        // 2. The queue the runs above left (2 x transitions rows), topped up
        // to `messages`, delivered end to end.
        let queued = rounds as u64 * transitions;
        if messages > queued {
            let more = records(&b, "loud", messages - queued).await;
            touch(&b, &more).await;
        }
        let (port, received) = smtp_receiver().await;
        let sink = Sink::smtp(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "leadflow <noreply@example.com>".into(),
            reply_to: None,
            max_per_second: None,
            addresses: Default::default(),
        })
        .expect("sink");
        let templates = Templates::fixed(TemplateSet::new(
            vec![Source {
                path: "templates/touched.txt".into(),
                text: TEMPLATE.into(),
            }],
            None,
        ));
        let cfg = DispatchConfig {
            batch: 500,
            ..DispatchConfig::default()
        };
        let total = queued.max(messages);
        let start = Instant::now();
        let mut delivered = 0;
        while delivered < total {
            let s = outbox::dispatch_once(&b, &sink, &templates, &cfg, now())
                .await
                .expect("dispatch");
            assert_eq!(s.failed, 0, "a message failed");
            if s.delivered == 0 {
                break;
            }
            delivered += s.delivered;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{delivered} messages rendered and delivered to a local SMTP receiver in {secs:.2} s: {:.0} messages/s end to end (receiver counted {})",
            delivered as f64 / secs,
            received.load(Ordering::Relaxed)
        );
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
