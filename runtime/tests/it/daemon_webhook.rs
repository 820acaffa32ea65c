//! The daemon with a webhook sink in its config, against a real receiver (an
//! HTTP server on a local port): a transition's `notify` arrives as a signed
//! `message.queued` event whose body validates against the schema the
//! daemon publishes at `/openapi.json`; the first answer is a 500, and the
//! retry carries the same delivery id. The signature verifies with the
//! secret read from the environment, through the Rust helper and through
//! the Python and shell examples of docs/api.md, and fails for a tampered
//! body, a wrong secret and a time outside the tolerance. A missing
//! variable or a non-http URL stops the start with a stable code.
//!
//! One plain `#[test]`, alone in its binary: the environment variable is set
//! before any other thread exists.

use crate::common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, Utc};
use common::{LEAD, TASK};
use leadflow_runtime::config::{hash_key, Config};
use leadflow_runtime::http::{ServeOptions, Server, StartError};
use leadflow_runtime::webhook::{verify, VerifyError, TOLERANCE};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec-2f6a1c9e8b7d4035";

fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("workflows/lead.toml"), LEAD).unwrap();
    std::fs::write(dir.join("workflows/task.toml"), TASK).unwrap();
    std::fs::write(
        dir.join("templates/started.txt"),
        "Subject: Lead {{name}} started\nHello, lead {{name}} is {{state}} (note: {{note}}).\n",
    )
    .unwrap();
}

fn config(dir: &Path, sink: &str) -> Result<Config, leadflow_runtime::config::ConfigError> {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
database_url = "sqlite:{db}"

[tenants.acme]
root = "."
workflows = ["lead", "task"]
[tenants.acme.actors.a1]
role = "agent"
[[tenants.acme.keys]]
name = "admin"
sha256 = "{key}"
role = "agent"

[tenants.acme.sink]
kind = "webhook"
{sink}
"#,
        db = dir.join("lf.db").display(),
        key = hash_key("admin-key"),
    );
    Config::parse(&text, "leadflow.toml", dir)
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// Answers 500 to the first request and 200 to the others; keeps each
/// request's headers and raw body.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
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
    (format!("http://{addr}/events"), got)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header: {h:?}"))
        .to_str()
        .unwrap()
}

/// The first fenced block of `lang` in the `## Webhooks` section of docs/api.md.
fn docs_block(lang: &str) -> String {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let section = docs.split("\n## Webhooks\n").nth(1).expect("## Webhooks");
    let section = section.split("\n## ").next().unwrap();
    let start = section
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block"));
    let block = &section[start + lang.len() + 4..];
    block[..block.find("```").unwrap()].to_string()
}

/// Run the docs' Python `verify` on a delivery; its answer.
fn python_verify(dir: &Path, secret: &str, sig: &str, body: &[u8], shift: i64) -> bool {
    let script = dir.join("verify.py");
    std::fs::write(
        &script,
        format!(
            "{}\nimport sys, time\nbody = open(sys.argv[3], 'rb').read()\nprint(verify(sys.argv[1].encode(), sys.argv[2], body, time.time() + int(sys.argv[4])))\n",
            docs_block("python")
        ),
    )
    .unwrap();
    let file = dir.join("py-body.json");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([secret, sig])
        .arg(&file)
        .arg(shift.to_string())
        .output()
        .expect("python3 runs (the docs' example is tested with it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match String::from_utf8_lossy(&out.stdout).trim() {
        "True" => true,
        "False" => false,
        other => panic!("python printed {other}"),
    }
}

/// Run the docs' shell example (openssl) on a delivery; whether it printed
/// `verified`.
fn shell_verify(dir: &Path, secret: &str, sig: &str, body: &[u8]) -> bool {
    std::fs::write(dir.join("body.json"), body).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(docs_block("sh"))
        .current_dir(dir)
        .env("LEADFLOW_WEBHOOK_SECRET", secret)
        .env("SIG", sig)
        .output()
        .expect("sh runs");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

#[test]
fn daemon_with_a_webhook_sink_posts_signed_events_and_retries_with_the_same_id() {
    let var = format!("LEADFLOW_TEST_WEBHOOK_SECRET_{}", std::process::id());
    std::env::set_var(&var, SECRET);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let (url, got) = receiver().await;
        let opts = ServeOptions {
            timers: false,
            watch: false,
            ..ServeOptions::default()
        };

        // Not an http(s) URL: refused when the config is read.
        let e = config(
            dir.path(),
            &format!(
                "url = \"{}\"\nsecret_env = \"{var}\"",
                url.replace("http", "ftp")
            ),
        )
        .unwrap_err();
        assert_eq!(e.code(), "E_SINK_URL", "{e}");
        // The variable the config names is not set: no start, a stable code.
        let unset = config(
            dir.path(),
            &format!("url = \"{url}\"\nsecret_env = \"LEADFLOW_TEST_WEBHOOK_UNSET\""),
        )
        .unwrap();
        match Server::start(&unset, opts.clone()).await {
            Err(StartError::Config(e)) => {
                assert_eq!(e.code(), "E_SINK_CREDENTIALS", "{e}");
                assert!(e.to_string().contains("LEADFLOW_TEST_WEBHOOK_UNSET"), "{e}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("started without the webhook secret"),
        }
        assert!(
            !dir.path().join("lf.db").exists(),
            "refused before opening the store"
        );

        let cfg = config(
            dir.path(),
            &format!("url = \"{url}\"\nsecret_env = \"{var}\""),
        )
        .unwrap();
        let server = Server::start(&cfg, opts).await.expect("daemon starts");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{base}/v1/records"))
            .bearer_auth("admin-key")
            .json(&json!({"workflow": "lead", "fields": {"name": "Mario"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_i64().unwrap();
        let r = http
            .post(format!("{base}/v1/records/{id}/transitions/start"))
            .bearer_auth("admin-key")
            .json(&json!({"input": {"note": "called"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // One message per recipient (the assignee a1, the customer): the
        // first request is refused (500) and retried after the 5 s backoff.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while got.lock().unwrap().len() < 3 {
            assert!(std::time::Instant::now() < deadline, "no retry arrived");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut doc: Value = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        server.shutdown().await.unwrap();

        let got = got.lock().unwrap().clone();
        assert_eq!(
            got.len(),
            3,
            "two messages, the refused one again on the retry"
        );
        let first = &got[0];
        let delivery = header(&first.0, "leadflow-delivery");
        let again: Vec<_> = got[1..]
            .iter()
            .filter(|(h, _)| header(h, "leadflow-delivery") == delivery)
            .collect();
        assert_eq!(again.len(), 1, "the refused message came again, once");
        let (headers, body) = again[0];
        let other = got[1..]
            .iter()
            .find(|(h, _)| header(h, "leadflow-delivery") != delivery)
            .expect("the other recipient's message");
        let other: Value = serde_json::from_slice(&other.1).unwrap();
        assert!(uuid::Uuid::parse_str(delivery).is_ok(), "{delivery}");
        assert_eq!(first.1, body, "the same body on the retry");
        assert_eq!(header(headers, "leadflow-event"), "message.queued");
        assert_eq!(header(headers, "content-type"), "application/json");

        // The body is what the published schema says.
        let webhook = doc["webhooks"]["message.queued"]["post"].clone();
        let body_ref =
            webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone();
        assert_eq!(body_ref, "#/components/schemas/WebhookEvent");
        doc["$ref"] = body_ref;
        let schema = jsonschema::draft202012::new(&doc).unwrap();
        let event: Value = serde_json::from_slice(body).unwrap();
        let errors: Vec<String> = schema.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{event:#}");
        assert_eq!(event["type"], "message.queued");
        assert_eq!(event["delivery_id"], delivery);
        assert_eq!(event["tenant"], "acme");
        assert_eq!(event["record"], id);
        // One recipient per message: together, the assignee and the customer.
        let mut to = vec![event["recipients"].clone(), other["recipients"].clone()];
        to.sort_by_key(|v| v.to_string());
        assert_eq!(to, [json!(["a1"]), json!(["customer"])]);
        assert_eq!(event["subject"], "Lead Mario started");
        assert_eq!(event["payload"]["fields"]["note"], "called");
        // Every header the spec requires was sent.
        for p in webhook["parameters"].as_array().unwrap() {
            if p["required"] == true {
                header(headers, p["name"].as_str().unwrap());
            }
        }

        // The signature: the Rust helper, then the docs' examples.
        let sig = header(headers, "leadflow-signature");
        let now = Utc::now();
        let body = &body[..];
        assert_eq!(verify(SECRET, sig, body, now, TOLERANCE), Ok(()));
        let mut tampered = body.to_vec();
        let at = tampered.iter().position(|&b| b == b'M').unwrap(); // "Mario"
        tampered[at] = b'W';
        assert_eq!(
            verify(SECRET, sig, &tampered, now, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("not-the-secret", sig, body, now, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify(SECRET, sig, body, now + Duration::seconds(301), TOLERANCE),
            Err(VerifyError::OutsideTolerance { .. })
        ));
        // The first try, replayed now: its own signature is still valid
        // (within 5 min), so only the remembered delivery id stops it.
        assert_eq!(
            verify(
                SECRET,
                header(&first.0, "leadflow-signature"),
                &first.1,
                now,
                TOLERANCE
            ),
            Ok(())
        );

        let d = dir.path();
        assert!(
            python_verify(d, SECRET, sig, body, 0),
            "docs' Python: valid"
        );
        assert!(!python_verify(d, SECRET, sig, &tampered, 0), "tampered");
        assert!(
            !python_verify(d, "not-the-secret", sig, body, 0),
            "wrong secret"
        );
        assert!(!python_verify(d, SECRET, sig, body, 301), "replayed later");
        assert!(shell_verify(d, SECRET, sig, body), "docs' shell: valid");
        assert!(!shell_verify(d, SECRET, sig, &tampered), "tampered");
        assert!(
            !shell_verify(d, "not-the-secret", sig, body),
            "wrong secret"
        );
    });
}
