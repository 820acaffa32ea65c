//! Notifications end to end, as a plain binary (harness = false), on a
//! SQLite file in the temp directory. Usage:
//!
//! ```text
//! cargo bench -p leadflow-runtime --bench notify -- [messages=10000] [transitions=5000]
//! ```
//!
//! 1. Transitions/s with notifications off and on: the same transition,
//!    once in a workflow without `notify`, once in one whose step queues a
//!    message (one outbox row with its redacted payload, written in the
//!    transition's transaction). Run alternately, twice each.
//! 2. `messages` notifications queued, then rendered (MiniJinja) and
//!    delivered by the outbox dispatcher to an SMTP receiver on a local
//!    port, one SMTP session per message: messages/s from the first claim
//!    to the last delivery.

use chrono::{DateTime, Utc};
use leadflow_engine::{load, Actor, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::{Backend, CreateRequest, FireRequest};
use leadflow_runtime::outbox::{self, DispatchConfig, Sink, SmtpConfig, SmtpTls, Templates};
use leadflow_runtime::templates::{Source, TemplateSet};
use leadflow_runtime::SqliteBackend;
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

async fn records(b: &SqliteBackend, wf: &str, n: u64) -> Vec<i64> {
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
                .filter(|(k, _)| wf == "loud" || k != "phone")
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

/// Fire `touch` once on each record: transitions/s.
async fn touch(b: &SqliteBackend, ids: &[i64]) -> f64 {
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
    ids.len() as f64 / start.elapsed().as_secs_f64()
}

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

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let messages = args.first().copied().unwrap_or(10_000);
    let transitions = args.get(1).copied().unwrap_or(5_000);
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
        let mut off = Vec::new();
        let mut on = Vec::new();
        for _ in 0..2 {
            off.push(touch(&b, &quiet).await);
            on.push(touch(&b, &loud).await);
        }
        let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "transitions/s on SQLite, {transitions} per run: notifications off {:.0} / {:.0}, on {:.0} / {:.0} (best on is {:.1}% below best off)",
            off[0],
            off[1],
            on[0],
            on[1],
            100.0 * (1.0 - best(&on) / best(&off))
        );

        // 2. The queue the runs above left (2 x transitions rows), topped up
        // to `messages`, delivered end to end.
        let queued = 2 * transitions;
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
