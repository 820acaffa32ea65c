//! Graceful shutdown under load: the `leadflow serve` process gets SIGTERM
//! while 16 clients create records; every request it answered 201 is in the
//! database, every record in the database was answered, and the process
//! exits 0 after finishing what it accepted.

mod http_support;

use http_support::{config_text, repo, Daemon, Db, Kind};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_no_accepted_request() {
    let db = Db::new(Kind::Pg);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("leadflow.toml");
    std::fs::write(&cfg, config_text(&repo())).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &db.url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "daemon did not become ready");

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let bad_status = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..16 {
        let (http, base, stop, ok, bad) = (
            http.clone(),
            base.clone(),
            stop.clone(),
            ok.clone(),
            bad_status.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let r = http
                    .post(format!("{base}/v1/records"))
                    .bearer_auth("admin-key")
                    .json(&json!({"workflow": "aslm", "fields": {"first_name": format!("c{c}-{n}"), "province": "RM"}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                    // Refused connection: the daemon stopped accepting.
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(status.success(), "daemon exit: {status:?}");
    assert_eq!(
        bad_status.load(Ordering::SeqCst),
        0,
        "no 5xx or other error while draining"
    );
    let answered = ok.load(Ordering::SeqCst);
    assert!(answered > 20, "load ran ({answered} requests)");

    // Count what the database holds with a fresh daemon on it.
    let d = Daemon::start_with(db, &repo(), false).await;
    let mut stored = 0;
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(c) => format!("/v1/records?limit=500&after={c}"),
            None => "/v1/records?limit=500".to_string(),
        };
        let r = d.get(&url, "admin").await;
        stored += r.body["items"].as_array().unwrap().len();
        match r.body["next"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        stored, answered,
        "every answered create is stored, nothing else"
    );
    let _ = d.stop().await;
}
