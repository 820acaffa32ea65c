//! Server limits (`[server]` in leadflow.toml) as a client meets them: slow
//! headers and slow bodies are cut off, connections over the bound get a
//! quick 503 JSON answer, shutdown keeps to its grace period with a slow
//! client connected, bodies are bounded the same way on every endpoint,
//! odd bodies are 400 (never 500), and a panicking handler is a JSON 500
//! that leaves the daemon serving. A property test sends random JSON to
//! create and fire through the router and never gets a 5xx.

use crate::http_support;

use http_support::{config_text, repo, Daemon, Db, Kind};
use leadflow_runtime::config::Config;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(server: &str) -> Config {
    let text = format!("{}\n[server]\n{server}\n", config_text(&repo()));
    Config::parse(&text, "test.toml", Path::new("/")).unwrap()
}

async fn daemon(kind: Kind, server: &str) -> Daemon {
    Daemon::start_config(Db::new(kind), config(server), false).await
}

fn addr(d: &Daemon) -> std::net::SocketAddr {
    d.server.as_ref().unwrap().addr
}

/// Everything the server sends until it closes the connection (or 10 s).
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_are_cut_off_after_the_header_timeout() {
    let d = daemon(Kind::Sqlite, "header_timeout = 0.5").await;
    let mut s = TcpStream::connect(addr(&d)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let _ = read_all(&mut s).await;
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "closed after {took:?}, not after the 0.5 s header timeout"
    );
    // An idle keep-alive connection is closed the same way.
    let mut idle = TcpStream::connect(addr(&d)).await.unwrap();
    let start = Instant::now();
    let _ = read_all(&mut idle).await;
    assert!(start.elapsed() < Duration::from_secs(3));
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_answered_408_json() {
    let d = daemon(Kind::Sqlite, "body_timeout = 0.5").await;
    let mut s = TcpStream::connect(addr(&d)).await.unwrap();
    s.write_all(
        b"POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-key\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"workflow\"",
    )
    .await
    .unwrap();
    let start = Instant::now();
    let answer = read_all(&mut s).await;
    assert!(start.elapsed() < Duration::from_secs(3), "{answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"E_TIMEOUT\""), "{answer}");
    assert!(
        answer.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(answer.contains("\"instance\":\"/v1/records\""), "{answer}");
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_connections_a_client_gets_503_json_and_capacity_comes_back() {
    let d = daemon(Kind::Sqlite, "max_connections = 2\nheader_timeout = 30").await;
    let a = TcpStream::connect(addr(&d)).await.unwrap();
    let b = TcpStream::connect(addr(&d)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let r = d.get("/healthz", "admin").await;
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.code(), "E_OVERLOADED");
    assert_eq!(r.header("retry-after"), "1");
    // A problem document, though written before the router runs.
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.body["type"], "/errors/E_OVERLOADED");
    assert_eq!(r.body["status"], 503);
    assert_eq!(r.body["instance"], "/healthz");
    assert!(!r.header("x-request-id").is_empty());
    assert_eq!(r.body["request_id"], r.header("x-request-id"));
    drop((a, b));
    let mut served = false;
    for _ in 0..40 {
        let r = d.get("/healthz", "admin").await;
        if r.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a real request is served once capacity frees");
    let _ = d.stop().await;
}

/// A body on the API is read only for a valid key: a stranger announcing a
/// large body is answered 401 at once, without the daemon waiting for (and
/// holding) the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_without_a_valid_key_is_refused_before_it_is_read() {
    let d = daemon(Kind::Sqlite, "").await;
    for auth in ["", "Authorization: Bearer not-a-key\r\n"] {
        let mut s = TcpStream::connect(addr(&d)).await.unwrap();
        let head = format!(
            "POST /v1/records HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("answered without the body")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(text.contains("E_UNAUTHORIZED"), "{text}");
    }
    let _ = d.stop().await;
}

/// A flood of clients that never finish their headers cannot starve real
/// requests: at the limit, a connection idle for a second (no request in
/// progress) is closed to make room, and the newcomer is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_make_room_for_real_requests_at_the_limit() {
    let d = daemon(Kind::Sqlite, "max_connections = 2\nheader_timeout = 30").await;
    let mut a = TcpStream::connect(addr(&d)).await.unwrap();
    a.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // `b` comes later, so `a` is the one idle the longest.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = TcpStream::connect(addr(&d)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for _ in 0..3 {
        let start = Instant::now();
        let r = d.get("/healthz", "admin").await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
    // The partial-header client was closed to make room.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), a.read(&mut buf))
        .await
        .expect("the idle connection was closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    drop(b);
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_to_its_grace_with_a_slow_client_connected() {
    let d = daemon(
        Kind::Sqlite,
        "shutdown_grace = 1\nbody_timeout = 60\nheader_timeout = 60",
    )
    .await;
    // A request in flight whose body never comes.
    let mut s = TcpStream::connect(addr(&d)).await.unwrap();
    s.write_all(b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(10), d.stop())
        .await
        .expect("shutdown returns");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_and_checked_the_same_on_create_and_fire() {
    for kind in [Kind::Sqlite, Kind::Pg] {
        let d = daemon(kind, "").await;
        let lead = d.aslm_lead("admin", "Rossi").await;
        let fire = format!("/v1/records/{}/transitions/log_contact_attempt", lead.id());
        let big = "x".repeat(10 * 1024 * 1024);

        let r = d
            .post(
                "/v1/records",
                "admin",
                json!({"workflow": "aslm", "fields": {"first_name": big}}),
            )
            .await;
        assert_eq!((r.status, r.code()), (413, "E_TOO_LARGE"), "{kind:?} {r:?}");
        assert_eq!(r.header("content-type"), "application/problem+json");
        assert_eq!(r.body["instance"], "/v1/records", "{r:?}");
        let r = d
            .post(&fire, "admin", json!({"input": {"note": big}}))
            .await;
        assert_eq!((r.status, r.code()), (413, "E_TOO_LARGE"), "{kind:?} {r:?}");

        // A JSON array is no body of fields.
        let r = d.post(&fire, "admin", json!([])).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
        let r = d.post("/v1/records", "admin", json!(["aslm"])).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");

        // NUL in a value or a name is refused, naming the field.
        let r = d
            .post(
                "/v1/records",
                "admin",
                json!({"workflow": "aslm", "fields": {"first_name": "Ma\u{0}rio", "province": "RM"}}),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "E_BAD_REQUEST"),
            "{kind:?} {r:?}"
        );
        assert_eq!(r.body["field"], "fields.first_name", "{r:?}");
        let r = d
            .post(&fire, "admin", json!({"input": {"no\u{0}te": "x"}}))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "E_BAD_REQUEST"),
            "{kind:?} {r:?}"
        );
        let r = d
            .post("/v1/records", "admin", json!({"workflow": "as\u{0}lm"}))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "E_BAD_REQUEST"),
            "{kind:?} {r:?}"
        );
        assert_eq!(r.body["field"], "workflow");
        // The record is untouched and still served.
        let r = d.post(&fire, "dealer-rm", json!({})).await;
        assert_eq!(r.status, 200, "{r:?}");
        let _ = d.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_json_500_and_the_daemon_keeps_serving() {
    use axum::routing::get;
    let db = Db::new(Kind::Sqlite);
    let mut cfg = config("");
    cfg.database_url = Some(db.url.clone());
    // /metrics answers only the metrics token (docs/security.md).
    std::env::set_var("LF_TEST_LIMITS_METRICS_TOKEN", "scrape-limits");
    cfg.metrics_token_env = Some("LF_TEST_LIMITS_METRICS_TOKEN".into());
    leadflow_runtime::http::ops::recorder();
    let state = leadflow_runtime::http::AppState::open(&cfg).await.unwrap();
    let boom = axum::Router::new().route(
        "/test/boom",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            "never"
        }),
    );
    let router = leadflow_runtime::http::app_with(state, boom);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(leadflow_runtime::http::serve::serve(
        listener,
        router,
        cfg.server.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    let http = reqwest::Client::new();
    let r = http.get(format!("{base}/test/boom")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "E_INTERNAL", "{body}");
    assert_eq!(body["instance"], "/test/boom", "{body}");
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m = http
        .get(format!("{base}/metrics"))
        .bearer_auth("scrape-limits")
        .send()
        .await
        .unwrap();
    let m = m.text().await.unwrap();
    assert!(m.contains("leadflow_http_panics_total 1"), "{m}");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
}

/// JSON values of every kind, with the names create and fire know.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::from("aslm")),
        Just(Value::from("RM")),
        Just(Value::from("2026-01-01")),
        Just(Value::from("a\u{0}b")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("workflow".to_string()),
            Just("fields".to_string()),
            Just("input".to_string()),
            Just("first_name".to_string()),
            Just("province".to_string()),
            Just("note".to_string()),
            Just("model".to_string()),
            "\\PC{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (json_value(), json_value()).prop_map(|(w, f)| json!({"workflow": w, "fields": f})),
        json_value().prop_map(|f| json!({"workflow": "aslm", "fields": f})),
        json_value().prop_map(|i| json!({"input": i})),
    ]
}

#[test]
fn random_json_to_create_and_fire_never_answers_5xx() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = config("");
    cfg.database_url = Some("mem:".into());
    let (app, lead) = rt.block_on(async {
        let state = leadflow_runtime::http::AppState::open(&cfg).await.unwrap();
        let app = leadflow_runtime::http::app(state);
        let r = app
            .clone()
            .oneshot(
                Request::post("/v1/records")
                    .header("authorization", "Bearer admin-key")
                    .header("content-type", "application/json")
                    .body(Body::from(
                        json!({"workflow": "aslm", "fields": {"first_name": "A", "province": "RM"}})
                            .to_string(),
                    ))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        (app, v["id"].as_i64().unwrap())
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let transitions = ["log_contact_attempt", "close_won", "claim", "nope"];
    runner
        .run(
            &(body(), 0..transitions.len(), any::<bool>()),
            |(b, t, create)| {
                let path = if create {
                    "/v1/records".to_string()
                } else {
                    format!("/v1/records/{lead}/transitions/{}", transitions[t])
                };
                let status = rt.block_on(async {
                    app.clone()
                        .oneshot(
                            Request::post(&path)
                                .header("authorization", "Bearer admin-key")
                                .header("content-type", "application/json")
                                .body(Body::from(b.to_string()))
                                .unwrap(),
                        )
                        .await
                        .unwrap()
                        .status()
                });
                prop_assert!(!status.is_server_error(), "{path} {b} answered {status}");
                Ok(())
            },
        )
        .unwrap();
}
