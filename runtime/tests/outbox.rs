//! The outbox dispatcher against real receivers: an HTTP server and an SMTP
//! server, both on ephemeral local ports inside the test.

mod common;

use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, Utc};
use common::*;
use leadflow_runtime::backend::Backend;
use leadflow_runtime::outbox::{self, DispatchConfig, Sink, SmtpConfig, SmtpTls, Templates};
use leadflow_runtime::{PgBackend, SqliteBackend};
use std::sync::{Arc, Mutex};

fn templates(dir: &tempfile::TempDir) -> Templates {
    let t = dir.path().join("templates");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(
        t.join("started.txt"),
        "Subject: Lead {{name}} started\nHello {{name}}, the lead is {{state}} (note: {{note}}).\n",
    )
    .unwrap();
    Templates::new(t)
}

async fn sqlite(dir: &tempfile::TempDir) -> SqliteBackend {
    SqliteBackend::open(
        &format!("sqlite://{}", dir.path().join("s.db").display()),
        "acme",
        set(),
    )
    .await
    .unwrap()
}

/// A lead that wrote one `started` message (to its assignee and the customer).
async fn started<B: Backend>(b: &B) -> i64 {
    b.set_actors(vec![agent("a1")]).await.unwrap();
    let l = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("Mario"))],
            &agent("a1"),
            t0(),
        ))
        .await
        .unwrap();
    b.fire(fire_req(
        l.id,
        "start",
        vec![("note".into(), s("called"))],
        &agent("a1"),
        t0(),
    ))
    .await
    .unwrap();
    l.id
}

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// An HTTP receiver that refuses the first request and accepts the others.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let mut list = g.lock().unwrap();
                list.push((headers, body));
                if list.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn outbox_webhook_retries_with_backoff_then_delivers_signed() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    let id = started(&b).await;
    let (url, got) = receiver().await;
    let sink = Sink::webhook(url, "s3cret").unwrap();
    let tpl = templates(&dir);
    let cfg = DispatchConfig::default();
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let s = outbox::dispatch_once(&b, &sink, &tpl, &cfg, now)
        .await
        .unwrap();
    assert_eq!(
        (s.delivered, s.failed),
        (0, 1),
        "the receiver refused the first try"
    );
    let (attempts, delivered, err) = outbox::sqlite_row_state(&b, 1).await.unwrap();
    assert_eq!((attempts, delivered), (1, None));
    assert!(err.unwrap().contains("500"));
    // Backoff: not retried before 5 s.
    let s = outbox::dispatch_once(&b, &sink, &tpl, &cfg, now + Duration::seconds(4))
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed), (0, 0));
    let s = outbox::dispatch_once(&b, &sink, &tpl, &cfg, now + Duration::seconds(6))
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed), (1, 0));
    let (attempts, delivered, err) = outbox::sqlite_row_state(&b, 1).await.unwrap();
    assert_eq!(
        (attempts, delivered, err),
        (2, Some(now + Duration::seconds(6)), None)
    );
    assert!(b.outbox(id).await.unwrap()[0].delivered_at.is_some());
    // Delivered messages are not sent again.
    let s = outbox::dispatch_once(&b, &sink, &tpl, &cfg, now + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed), (0, 0));

    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2);
    let (headers, body) = &got[1];
    let sig = headers
        .get("x-leadflow-signature")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(sig, outbox::signature("s3cret", body.as_bytes()));
    assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["subject"], "Lead Mario started");
    assert_eq!(
        json["body"],
        "Hello Mario, the lead is working (note: called).\n"
    );
    assert_eq!(json["recipients"], serde_json::json!(["a1", "customer"]));
    assert_eq!(json["template"], "started");
}

#[test]
fn backoff_doubles_and_is_capped() {
    let cfg = DispatchConfig {
        backoff: Duration::seconds(5),
        max_backoff: Duration::minutes(1),
        ..DispatchConfig::default()
    };
    let now = t0();
    let delays: Vec<i64> = (1..=6)
        .map(|a| (cfg.next_attempt(now, a) - now).num_seconds())
        .collect();
    assert_eq!(delays, vec![5, 10, 20, 40, 60, 60]);
    assert_eq!(cfg.next_attempt(now, i32::MAX) - now, Duration::minutes(1));
}

#[tokio::test]
async fn outbox_missing_template_is_recorded_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    b.set_actors(vec![agent("a1")]).await.unwrap();
    b.create(create_req(
        "lead",
        vec![("name".into(), s("Mario"))],
        &agent("a1"),
        t0(),
    ))
    .await
    .unwrap();
    assert_eq!(
        b.run_due(at(1)).await.unwrap(),
        1,
        "the reminder wrote a message"
    );
    let cfg = DispatchConfig {
        max_attempts: 2,
        ..DispatchConfig::default()
    };
    let now = Utc::now();
    let s = outbox::dispatch_once(&b, &Sink::Log, &templates(&dir), &cfg, now)
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed), (0, 1));
    let (attempts, delivered, err) = outbox::sqlite_row_state(&b, 1).await.unwrap();
    assert_eq!((attempts, delivered), (1, None));
    assert!(err.unwrap().contains("template `reminder`"));
    outbox::dispatch_once(
        &b,
        &Sink::Log,
        &templates(&dir),
        &cfg,
        now + Duration::hours(1),
    )
    .await
    .unwrap();
    // Given up after max_attempts: no further tries.
    let s = outbox::dispatch_once(
        &b,
        &Sink::Log,
        &templates(&dir),
        &cfg,
        now + Duration::days(1),
    )
    .await
    .unwrap();
    assert_eq!((s.delivered, s.failed), (0, 0));
    assert_eq!(outbox::sqlite_row_state(&b, 1).await.unwrap().0, 2);
}

#[tokio::test]
async fn outbox_smtp_delivers_to_a_real_smtp_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    started(&b).await;
    let (port, got) = common::smtp::server().await;
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "leadflow <noreply@example.com>".into(),
        addresses: [("a1".to_string(), "dealer.a1@example.com".to_string())].into(),
    };
    let sink = Sink::smtp(config).unwrap();
    let s = outbox::dispatch_once(
        &b,
        &sink,
        &templates(&dir),
        &DispatchConfig::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        (s.delivered, s.failed),
        (1, 0),
        "{:?}",
        outbox::sqlite_row_state(&b, 1).await
    );
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("RCPT <dealer.a1@example.com>"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("Subject: Lead Mario started"), "{}", got[0]);
    assert!(
        got[0].contains("Hello Mario, the lead is working"),
        "{}",
        got[0]
    );
}

#[tokio::test]
async fn outbox_pg_dispatcher_delivers_and_records_failures() {
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = started(&b).await;
    assert_eq!(
        b.run_due(at(1)).await.unwrap(),
        1,
        "l1 is working: its nudger fired, no message"
    );
    let l2 = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("Luigi"))],
            &agent("a1"),
            t0(),
        ))
        .await
        .unwrap();
    assert_eq!(b.run_due(at(1)).await.unwrap(), 1);
    let (url, got) = receiver().await;
    got.lock()
        .unwrap()
        .push((HeaderMap::new(), "warm-up".into()));
    let sink = Sink::webhook(url, "k").unwrap();
    let clock = Arc::new(leadflow_runtime::clock::ManualClock::new(Utc::now()));
    let cfg = DispatchConfig {
        idle: Duration::milliseconds(50),
        ..DispatchConfig::default()
    };
    let h = outbox::spawn(b.clone(), sink, templates(&dir), cfg, clock.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.outbox(id).await.unwrap()[0].delivered_at.is_none() {
        assert!(std::time::Instant::now() < deadline, "not delivered");
        clock.advance(Duration::milliseconds(50));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stats = h.shutdown().await;
    assert_eq!(stats.delivered, 1);
    assert!(stats.failed >= 1, "the reminder has no template");
    assert!(b.outbox(l2.id).await.unwrap()[0].delivered_at.is_none());
    let err: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM outbox WHERE record_id = $1")
            .bind(l2.id)
            .fetch_one(&mut *b.tx().await.unwrap())
            .await
            .unwrap();
    assert!(err.unwrap().contains("template `reminder`"));
    b.pool().close().await;
    db.drop_db().await;
}

/// Panics once when claiming, then behaves: a real store underneath.
#[derive(Clone)]
struct PanicsOnce(SqliteBackend, Arc<std::sync::atomic::AtomicBool>);

impl outbox::OutboxQueue for PanicsOnce {
    async fn claim_outbox(
        &self,
        now: chrono::DateTime<Utc>,
        lease_until: chrono::DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> Result<Vec<outbox::Pending>, leadflow_runtime::backend::Error> {
        if self.1.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("injected: the dispatcher panics");
        }
        self.0
            .claim_outbox(now, lease_until, max_attempts, limit)
            .await
    }
    async fn delivered(
        &self,
        id: i64,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), leadflow_runtime::backend::Error> {
        self.0.delivered(id, at).await
    }
    async fn failed(
        &self,
        id: i64,
        next_attempt: chrono::DateTime<Utc>,
        error: &str,
    ) -> Result<(), leadflow_runtime::backend::Error> {
        self.0.failed(id, next_attempt, error).await
    }
    fn tenant(&self) -> &str {
        self.0.tenant()
    }
}

/// A dispatcher that panics is restarted (supervised) and delivers what
/// is pending; shutdown reports the panic instead of hiding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_dispatcher_panic_is_restarted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    let id = started(&b).await;
    let q = PanicsOnce(b.clone(), Arc::new(true.into()));
    let cfg = DispatchConfig {
        idle: Duration::milliseconds(50),
        restart: leadflow_runtime::background::Restart {
            min: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        ..DispatchConfig::default()
    };
    let clock = Arc::new(leadflow_runtime::clock::SystemClock);
    let h = outbox::spawn(q, Sink::Log, templates(&dir), cfg, clock);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.outbox(id).await.unwrap()[0].delivered_at.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.health().status().last_panic.as_deref(),
        Some("injected: the dispatcher panics")
    );
    let stats = h.shutdown().await;
    assert_eq!((stats.delivered, stats.panics), (1, 1));
}
