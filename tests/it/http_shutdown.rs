//! Graceful shutdown under load: the `leadflow serve` process gets SIGTERM
//! while 16 clients create records; every request it answered 201 is in the
//! database, every record in the database was answered, and the process
//! exits 0 after finishing what it accepted. With a slow client holding a
//! request open, SIGTERM still ends the process within `shutdown_grace`.

use crate::http_support;

use http_support::{config_text, repo, Daemon, Db, Kind};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Start `leadflow serve` on a free port with `server` as its `[server]`
/// section; returns once it is ready.
async fn spawn(db: &Db, dir: &std::path::Path, server: &str) -> (std::process::Child, String) {
    let cfg = dir.join("leadflow.toml");
    let mut text = config_text(&repo());
    if !server.is_empty() {
        text.push_str(&format!("\n[server]\n{server}\n"));
    }
    std::fs::write(&cfg, text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
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
    (child, base)
}

fn sigterm(child: &std::process::Child) {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_slow_client_exits_within_the_grace() {
    use tokio::io::AsyncWriteExt;
    let db = Db::new(Kind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn(
        &db,
        dir.path(),
        "shutdown_grace = 1\nbody_timeout = 120\nheader_timeout = 120",
    )
    .await;
    // A request whose body never comes, and a connection whose headers
    // never end.
    let addr = base.trim_start_matches("http://").to_string();
    let mut body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    body.write_all(b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut head = tokio::net::TcpStream::connect(&addr).await.unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = std::time::Instant::now();
    sigterm(&child);
    let mut status = None;
    while start.elapsed() < Duration::from_secs(15) {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(status) = status else {
        let _ = child.kill();
        panic!("the daemon still runs 15 s after SIGTERM with shutdown_grace = 1");
    };
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(status.success(), "daemon exit: {status:?}");
    drop((body, head));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_no_accepted_request() {
    let db = Db::new(Kind::Pg);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn(&db, dir.path(), "").await;
    let http = reqwest::Client::new();

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
    sigterm(&child);
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
