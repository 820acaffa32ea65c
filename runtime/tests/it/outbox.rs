//! The outbox dispatcher against real receivers: an HTTP server and an SMTP
//! server, both on ephemeral local ports inside the test.

use crate::common;

use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, Utc};
use common::*;
use leadflow_runtime::backend::Backend;
use leadflow_runtime::outbox::{
    self, DispatchConfig, Sink, SmtpConfig, SmtpTls, Templates, WebhookConfig,
};
use leadflow_runtime::webhook::{self, VerifyError, TOLERANCE};
use leadflow_runtime::{PgBackend, SqliteBackend};
use std::sync::{Arc, Mutex};
use utoipa::OpenApi;

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

/// A lead that wrote one `started` message to its assignee (row 1) and
/// one to the customer (row 2; the workflow has no customer address).
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

/// The published JSON Schema of a webhook body (`WebhookEvent` in the
/// OpenAPI document), as a validator.
fn event_schema() -> jsonschema::Validator {
    let mut doc = serde_json::to_value(leadflow_runtime::http::openapi::ApiDoc::openapi()).unwrap();
    doc["$ref"] = serde_json::json!("#/components/schemas/WebhookEvent");
    jsonschema::draft202012::new(&doc).unwrap()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header: {h:?}"))
        .to_str()
        .unwrap()
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
        (1, 1),
        "the receiver refused the first try (row 1), took the second (row 2)"
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
    assert_eq!(got.len(), 3);
    let (headers, body) = &got[2];
    let sig = header(headers, "leadflow-signature");
    let real_now = Utc::now();
    assert_eq!(
        webhook::verify("s3cret", sig, body.as_bytes(), real_now, TOLERANCE),
        Ok(())
    );
    assert_eq!(
        webhook::verify("s3cret", sig, b"{}", real_now, TOLERANCE),
        Err(VerifyError::Mismatch),
        "a tampered body"
    );
    assert_eq!(
        webhook::verify("wrong", sig, body.as_bytes(), real_now, TOLERANCE),
        Err(VerifyError::Mismatch),
        "a wrong secret"
    );
    assert!(
        matches!(
            webhook::verify(
                "s3cret",
                sig,
                body.as_bytes(),
                real_now + Duration::minutes(6),
                TOLERANCE
            ),
            Err(VerifyError::OutsideTolerance { .. })
        ),
        "replayed 6 minutes later"
    );
    assert!(
        headers.get("x-leadflow-signature").is_none(),
        "legacy header off by default"
    );
    assert_eq!(header(headers, "leadflow-event"), "message.queued");
    assert_eq!(header(headers, "content-type"), "application/json");
    // The retry carries the delivery id of the refused first try.
    let delivery = header(headers, "leadflow-delivery");
    assert_eq!(header(&got[0].0, "leadflow-delivery"), delivery);
    assert_eq!(got[0].1, got[2].1, "the same body on the retry");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let errors: Vec<String> = event_schema()
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{json:#}");
    assert_eq!(json["type"], "message.queued");
    assert_eq!(json["delivery_id"], delivery);
    assert_eq!(json["tenant"], "acme");
    assert_eq!(
        (json["id"].as_i64(), json["record"].as_i64()),
        (Some(1), Some(id))
    );
    assert_eq!(json["payload"]["fields"]["name"], "Mario");
    assert_eq!(json["payload"]["state"], "working");
    let created: chrono::DateTime<Utc> = json["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(created, t0(), "when the transition queued it");
    assert_eq!(json["subject"], "Lead Mario started");
    assert_eq!(
        json["body"],
        "Hello Mario, the lead is working (note: called).\n"
    );
    assert_eq!(json["recipients"], serde_json::json!(["a1"]));
    assert_eq!(json["payload"]["recipient"]["kind"], "actor");
    assert_eq!(json["template"], "started");
    // One row per recipient: the customer's message is a delivery of its own.
    let other: serde_json::Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(other["recipients"], serde_json::json!(["customer"]));
    assert_eq!(other["id"].as_i64(), Some(2));
    assert_ne!(header(&got[1].0, "leadflow-delivery"), delivery);
}

/// During a rotation both secrets sign; `legacy_signature` adds the old
/// header; a redirect is a failed attempt, not followed with the signed body.
#[tokio::test]
async fn outbox_webhook_rotation_legacy_header_and_no_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    started(&b).await;
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new()
        .route(
            "/moved",
            axum::routing::post(|| async {
                (StatusCode::TEMPORARY_REDIRECT, [("location", "/hook")])
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let g = g.clone();
                async move {
                    g.lock().unwrap().push((headers, body));
                    StatusCode::NO_CONTENT
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let tpl = templates(&dir);
    let cfg = DispatchConfig::default();
    let now = Utc::now();

    let moved = Sink::webhook(format!("http://{addr}/moved"), "new").unwrap();
    let s = outbox::dispatch_once(&b, &moved, &tpl, &cfg, now)
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed), (0, 2));
    assert!(
        got.lock().unwrap().is_empty(),
        "the redirect was not followed"
    );
    let err = outbox::sqlite_row_state(&b, 1).await.unwrap().2.unwrap();
    assert!(err.contains("307"), "{err}");

    let sink = Sink::webhook_with(WebhookConfig {
        url: format!("http://{addr}/hook"),
        secrets: vec!["new".into(), "old".into()],
        legacy_signature: true,
        max_per_second: None,
    })
    .unwrap();
    let s = outbox::dispatch_once(&b, &sink, &tpl, &cfg, now + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed), (2, 0), "204 is a success");
    let got = got.lock().unwrap();
    let (headers, body) = &got[0];
    let sig = header(headers, "leadflow-signature");
    assert_eq!(sig.matches(",v1=").count(), 2, "{sig}");
    for secret in ["new", "old"] {
        assert_eq!(
            webhook::verify(secret, sig, body.as_bytes(), Utc::now(), TOLERANCE),
            Ok(()),
            "{secret}"
        );
    }
    assert_eq!(
        header(headers, "x-leadflow-signature"),
        webhook::legacy_signature("new", body.as_bytes())
    );
    assert!(header(headers, "user-agent").starts_with("leadflow-webhooks/"));
}

#[test]
fn a_webhook_needs_an_http_url_and_a_secret() {
    for url in [
        "ftp://x/hook",
        "localhost:8080/hook",
        "http://",
        "file:///etc/passwd",
        "",
    ] {
        let e = Sink::webhook(url, "s")
            .err()
            .unwrap_or_else(|| panic!("{url} accepted"));
        assert!(e.to_string().contains("http"), "{url}: {e}");
    }
    assert!(Sink::webhook("https://crm.example.com/hook", "").is_err());
    assert!(Sink::webhook("https://crm.example.com/hook", "s").is_ok());
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
        reply_to: None,
        max_per_second: None,
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
        (1, 1),
        "{:?}",
        outbox::sqlite_row_state(&b, 1).await
    );
    let err = outbox::sqlite_row_state(&b, 2).await.unwrap().2.unwrap();
    assert!(
        err.contains("E_SINK_ADDRESS") && err.contains("customer"),
        "the customer has no address: {err}"
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
    assert_eq!(stats.delivered, 2, "to the assignee and to the customer");
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
    async fn dead(
        &self,
        id: i64,
        at: chrono::DateTime<Utc>,
        error: &str,
    ) -> Result<(), leadflow_runtime::backend::Error> {
        self.0.dead(id, at, error).await
    }
    async fn noted(&self, id: i64, note: &str) -> Result<(), leadflow_runtime::backend::Error> {
        self.0.noted(id, note).await
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
    assert_eq!((stats.delivered, stats.panics), (2, 1));
}

/// One row per recipient: a receiver refusing one recipient's message
/// retries that message alone; the other recipient's is delivered once and
/// never sent again.
#[tokio::test]
async fn one_recipient_failing_does_not_resend_to_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    started(&b).await;
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let refuse = body.contains(r#""recipients":["customer"]"#);
                g.lock().unwrap().push((headers, body));
                if refuse {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let sink = Sink::webhook(format!("http://{addr}/hook"), "k").unwrap();
    let (tpl, cfg, now) = (templates(&dir), DispatchConfig::default(), Utc::now());
    for (after, expect) in [(0, (1, 1)), (6, (0, 1)), (30, (0, 1))] {
        let s = outbox::dispatch_once(&b, &sink, &tpl, &cfg, now + Duration::seconds(after))
            .await
            .unwrap();
        assert_eq!((s.delivered, s.failed), expect, "pass at +{after}s");
    }
    let bodies: Vec<String> = got.lock().unwrap().iter().map(|(_, b)| b.clone()).collect();
    let to = |who: &str| {
        bodies
            .iter()
            .filter(|b| b.contains(&format!(r#""recipients":["{who}"]"#)))
            .count()
    };
    assert_eq!((to("a1"), to("customer")), (1, 3));
    let (attempts, delivered, _) = outbox::sqlite_row_state(&b, 1).await.unwrap();
    assert_eq!((attempts, delivered.is_some()), (1, true));
    let (attempts, delivered, err) = outbox::sqlite_row_state(&b, 2).await.unwrap();
    assert_eq!((attempts, delivered), (3, None));
    assert!(err.unwrap().contains("503"));
}

/// A template that cannot render for a message's payload (a variable that
/// is not there) fails the message at once, with the error and the
/// variable: never sent half-rendered, never retried.
#[tokio::test]
async fn outbox_render_failure_is_a_dead_letter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    let id = started(&b).await;
    let t = dir.path().join("templates");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(
        t.join("started.txt"),
        "Subject: Lead {{ lead.name }}\nline two\nCall {{ lead.phone_number }}\n",
    )
    .unwrap();
    let (port, got) = common::smtp::server().await;
    let sink = Sink::smtp(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "leadflow <noreply@example.com>".into(),
        reply_to: None,
        max_per_second: None,
        addresses: [("a1".to_string(), "dealer.a1@example.com".to_string())].into(),
    })
    .unwrap();
    let cfg = DispatchConfig::default();
    let now = Utc::now();
    let s = outbox::dispatch_once(&b, &sink, &Templates::new(&t), &cfg, now)
        .await
        .unwrap();
    assert_eq!((s.delivered, s.failed, s.dead), (0, 2, 2));
    assert!(got.lock().unwrap().is_empty(), "nothing was sent");
    let rows = b.outbox(id).await.unwrap();
    for r in &rows {
        let err = r.last_error.as_deref().unwrap();
        assert!(
            err.starts_with("E_TEMPLATE_RENDER: templates/started.txt:3:")
                && err.contains("`lead.phone_number`"),
            "{err}"
        );
        assert!(r.failed_at.is_some() && r.delivered_at.is_none());
        assert_eq!(r.attempts, 1);
    }
    // Never claimed again, even long after.
    let s = outbox::dispatch_once(
        &b,
        &sink,
        &Templates::new(&t),
        &cfg,
        now + Duration::days(2),
    )
    .await
    .unwrap();
    assert_eq!((s.delivered, s.failed), (0, 0));
}

/// A recipient without a usable address fails its row with
/// `E_SINK_ADDRESS` (no retry) while the other recipient of the same
/// notify gets its message; a template only in another language is
/// rendered in it, and the fallback is recorded on the row.
#[tokio::test]
async fn outbox_one_recipient_fails_the_other_is_delivered_and_the_fallback_noted() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite(&dir).await;
    let id = started(&b).await;
    let t = dir.path().join("templates");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(
        t.join("started.it.txt"),
        "Subject: Lead {{ lead.name }} avviata\nCiao {{ lead.name }}.\n",
    )
    .unwrap();
    let (port, got) = common::smtp::server().await;
    let sink = Sink::smtp(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "leadflow <noreply@example.com>".into(),
        reply_to: Some("Leads <leads@example.com>".into()),
        max_per_second: Some(100),
        addresses: [("a1".to_string(), "dealer.a1@example.com".to_string())].into(),
    })
    .unwrap();
    let templates = Templates::with_language(&t, Some("de".into()));
    let s = outbox::dispatch_once(
        &b,
        &sink,
        &templates,
        &DispatchConfig::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!((s.delivered, s.dead), (1, 1));
    let rows = b.outbox(id).await.unwrap();
    let a1 = rows.iter().find(|r| r.recipients == ["a1"]).unwrap();
    assert!(
        a1.delivered_at.is_some() && a1.last_error.is_none(),
        "{a1:?}"
    );
    assert!(
        a1.note.as_deref().unwrap().contains("rendered in `it`"),
        "{a1:?}"
    );
    let c = rows.iter().find(|r| r.recipients == ["customer"]).unwrap();
    assert!(
        c.last_error
            .as_deref()
            .unwrap()
            .starts_with("E_SINK_ADDRESS"),
        "{c:?}"
    );
    assert!(c.failed_at.is_some() && c.delivered_at.is_none());
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("Reply-To: Leads <leads@example.com>"),
        "{}",
        got[0]
    );
    assert!(got[0].contains("Ciao Mario."), "{}", got[0]);
}

/// Template versions: a message renders with the templates in force when
/// it was queued, after the files changed and after a restart (the version
/// read back from the store), and new messages take the new version.
#[tokio::test]
async fn a_message_renders_with_the_template_version_it_was_queued_under() {
    let dir = tempfile::tempdir().unwrap();
    let tdir = dir.path().join("templates");
    std::fs::create_dir_all(&tdir).unwrap();
    let write = |subject: &str| {
        std::fs::write(
            tdir.join("started.txt"),
            format!("Subject: {subject} {{{{name}}}}\nHello {{{{name}}}}.\n"),
        )
        .unwrap();
    };
    let (port, got) = common::smtp::server().await;
    let sink = Sink::smtp(SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "leadflow <noreply@example.com>".into(),
        reply_to: None,
        max_per_second: None,
        addresses: [("a1".to_string(), "dealer.a1@example.com".to_string())].into(),
    })
    .unwrap();
    let cfg = DispatchConfig::default();
    let subjects = |got: &common::smtp::Mails| -> Vec<String> {
        got.lock()
            .unwrap()
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
            })
            .collect()
    };

    // First process: version 1 is published before any message is queued.
    write("V1");
    let b = sqlite(&dir).await;
    let t = Templates::new(&tdir);
    outbox::dispatch_once(&b, &sink, &t, &cfg, Utc::now())
        .await
        .unwrap();
    let v1 = b.versions().templates_version().expect("v1 stamped");
    started(&b).await;
    // The files change before the message goes out: it keeps version 1.
    write("Version 2");
    outbox::dispatch_once(&b, &sink, &t, &cfg, Utc::now())
        .await
        .unwrap();
    assert_eq!(subjects(&got), ["V1 Mario"]);
    let v2 = b.versions().templates_version().unwrap();
    assert_ne!(v1, v2, "the change published version 2");
    // Queued now: version 2.
    started(&b).await;
    // Version 3 on disk, then a "restart": a new store handle and a new
    // dispatcher that never saw version 2.
    write("Third");
    drop(t);
    drop(b);
    let b = sqlite(&dir).await;
    let t = Templates::new(&tdir);
    outbox::dispatch_once(&b, &sink, &t, &cfg, Utc::now())
        .await
        .unwrap();
    assert_eq!(subjects(&got), ["V1 Mario", "Version 2 Mario"]);
    // And a message queued after the restart: version 3.
    started(&b).await;
    outbox::dispatch_once(&b, &sink, &t, &cfg, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        subjects(&got),
        ["V1 Mario", "Version 2 Mario", "Third Mario"]
    );
    // A version that is not stored: the current templates, noted.
    let pool = b.pool();
    sqlx::query("DELETE FROM template_versions")
        .execute(pool)
        .await
        .unwrap();
    let b2 = sqlite(&dir).await;
    let t2 = Templates::new(&tdir);
    b2.versions().set_templates("0000");
    started(&b2).await;
    t2.mark_published(t2.set().hash());
    let rows = outbox::dispatch_once(&b2, &sink, &t2, &cfg, Utc::now())
        .await
        .unwrap();
    assert_eq!(rows.delivered, 1);
    assert_eq!(subjects(&got).last().unwrap(), "Third Mario");
    let msgs = b2.outbox(4).await.unwrap();
    let note = msgs.iter().find_map(|m| m.note.clone()).unwrap_or_default();
    assert!(note.contains("is not stored"), "{msgs:?}");
}

/// A webhook sink's `max_per_second`: a bulk of events reaches the receiver
/// at that rate (after a first burst of that many), every one delivered;
/// without it the same bulk goes at once.
#[tokio::test]
async fn a_webhook_sink_is_held_to_its_max_per_second() {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push((headers, body));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let cfg = DispatchConfig::default();
    for (limit, bounds) in [(Some(2), (1.4, 10.0)), (None, (0.0, 1.0))] {
        got.lock().unwrap().clear();
        let dir = tempfile::tempdir().unwrap();
        let b = sqlite(&dir).await;
        for _ in 0..3 {
            started(&b).await; // two events each (assignee, customer)
        }
        let sink = Sink::webhook_with(WebhookConfig {
            url: format!("http://{addr}/hook"),
            secrets: vec!["s".into()],
            legacy_signature: false,
            max_per_second: limit,
        })
        .unwrap();
        let t0 = std::time::Instant::now();
        let s = outbox::dispatch_once(&b, &sink, &templates(&dir), &cfg, Utc::now())
            .await
            .unwrap();
        let took = t0.elapsed().as_secs_f64();
        assert_eq!((s.delivered, s.failed), (6, 0), "{limit:?}");
        assert_eq!(got.lock().unwrap().len(), 6);
        // 2 a second: 2 at once, then 4 more 0.5 s apart.
        assert!(
            took >= bounds.0 && took < bounds.1,
            "max_per_second {limit:?}: 6 events took {took:.2} s"
        );
    }
    let bad = leadflow_runtime::config::Config::parse(
        "[tenants.t]\nroot = \".\"\n[tenants.t.sink]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/h\"\nsecret_env = \"X\"\nmax_per_second = 0\n",
        "leadflow.toml",
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert_eq!(bad.code(), "E_SINK_RATE", "{bad}");
}
