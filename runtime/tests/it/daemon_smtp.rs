//! The daemon with an SMTP sink in its config: a transition's `notify`
//! arrives as an e-mail at a real SMTP receiver on a local port, the
//! password read from the environment variable the config names; a missing
//! variable stops the start with a stable code. A real SQLite file.
//!
//! One plain `#[test]`, alone in its binary: the environment variable is set
//! before any other thread exists.

use crate::common;

use common::{LEAD, TASK};
use leadflow_runtime::config::{hash_key, Config};
use leadflow_runtime::http::{ServeOptions, Server, StartError};
use serde_json::json;
use std::path::Path;

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

fn config(dir: &Path, port: u16, password_env: &str) -> Result<Config, String> {
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
kind = "smtp"
host = "127.0.0.1"
port = {port}
tls = "none"
from = "Leads <noreply@example.com>"
username = "leadflow"
password_env = "{password_env}"
[tenants.acme.sink.addresses]
a1 = "agent.a1@example.com"
"#,
        db = dir.join("lf.db").display(),
        key = hash_key("admin-key"),
    );
    Config::parse(&text, "leadflow.toml", dir).map_err(|e| e.to_string())
}

#[test]
fn daemon_with_an_smtp_sink_mails_a_transition() {
    let var = format!("LEADFLOW_TEST_SMTP_PASSWORD_{}", std::process::id());
    std::env::set_var(&var, "s3cret");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let (port, got) = common::smtp::server().await;
        let opts = ServeOptions {
            timers: false,
            watch: false,
            ..ServeOptions::default()
        };

        // The variable the config names is not set: no start, a stable code.
        let unset = config(dir.path(), port, "LEADFLOW_TEST_SMTP_UNSET").unwrap();
        match Server::start(&unset, opts.clone()).await {
            Err(StartError::Config(e)) => {
                assert_eq!(e.code(), "E_SINK_CREDENTIALS", "{e}");
                assert!(e.to_string().contains("LEADFLOW_TEST_SMTP_UNSET"), "{e}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("started without the SMTP password"),
        }
        assert!(
            !dir.path().join("lf.db").exists(),
            "refused before opening the store"
        );

        let cfg = config(dir.path(), port, &var).unwrap();
        let server = Server::start(&cfg, opts).await.expect("daemon starts");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::new();
        let created: serde_json::Value = http
            .post(format!("{base}/v1/records"))
            .bearer_auth("admin-key")
            .json(&json!({"workflow": "lead", "fields": {"name": "Mario"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(created["assignee"], "a1", "{created}");
        let id = created["id"].as_i64().unwrap();
        let r = http
            .post(format!("{base}/v1/records/{id}/transitions/start"))
            .bearer_auth("admin-key")
            .json(&json!({"input": {"note": "called"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while got.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no mail arrived");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        server.shutdown().await.unwrap();
        let mails = got.lock().unwrap();
        assert_eq!(mails.len(), 1, "{mails:?}");
        let m = &mails[0];
        assert!(m.contains("AUTH leadflow s3cret"), "{m}");
        // `customer` has no `email` field in this workflow: only the assignee.
        assert!(m.contains("RCPT <agent.a1@example.com>"), "{m}");
        assert!(m.contains("From: Leads <noreply@example.com>"), "{m}");
        assert!(m.contains("Subject: Lead Mario started"), "{m}");
        assert!(
            m.contains("Hello, lead Mario is working (note: called)."),
            "{m}"
        );
    });
}
