//! The API contract as integrating teams meet it: the document served at
//! `/openapi.json` by a running daemon passes `openapi-spec-validator`, and
//! a client generated from it by `openapi-python-client` runs a real flow
//! against the daemon (`tests/openapi/flow.py`): create, fire with
//! If-Match, a 412 and a 422 read as typed problem documents, a filtered
//! list paged with a cursor, history.
//!
//! The tools run in a Python virtualenv this test creates with pinned
//! versions (`PINS`) under `~/.cache/leadflow-tests/` (or
//! `$LEADFLOW_TEST_CACHE`), built once and reused while the pins stay the
//! same. It needs `python3` with `venv` and access to PyPI on its first run.

use crate::http_support;

use http_support::{Daemon, Kind};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The generator and validator versions the contract is checked with.
const PINS: &[&str] = &[
    "openapi-spec-validator==0.9.0",
    "openapi-python-client==0.29.1",
    "python-dateutil==2.9.0.post0",
];

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LEADFLOW_TEST_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache").join("leadflow-tests")
}

/// The venv with `PINS`, created on first use. A venv cannot be moved (its
/// scripts name their interpreter by path), so it is built in place and
/// marked complete last: a directory without the mark (an interrupted
/// install) is built again.
fn venv() -> PathBuf {
    static VENV: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut slot = VENV.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = slot.as_ref() {
        return v.clone();
    }
    let tag: u64 = PINS
        .iter()
        .flat_map(|p| p.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let dir = cache_dir().join(format!("openapi-{tag:016x}"));
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(cache_dir()).unwrap();
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir));
        run(Command::new(dir.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(PINS));
        std::fs::write(&done, PINS.join("\n")).unwrap();
    }
    *slot = Some(dir.clone());
    dir
}

/// Run a command to completion; its output is shown when it fails.
fn run(c: &mut Command) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{c:?} failed:\n{text}");
    text
}

async fn spec_of(d: &Daemon, dir: &Path) -> PathBuf {
    let doc = d
        .http
        .get(format!("{}/openapi.json", d.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = dir.join("openapi.json");
    std::fs::write(&path, doc).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn served_document_is_valid_openapi() {
    let d = Daemon::start(Kind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_of(&d, dir.path()).await;
    let v = venv();
    let out = run(Command::new(v.join("bin/openapi-spec-validator")).arg(&spec));
    assert!(out.contains("OK"), "{out}");
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_python_client_runs_a_flow() {
    let d = Daemon::start(Kind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_of(&d, dir.path()).await;
    let v = venv();
    let client = dir.path().join("client");
    run(Command::new(v.join("bin/openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(&client));
    let flow = http_support::repo().join("tests/openapi/flow.py");
    let out = run(Command::new(v.join("bin/python"))
        .arg(&flow)
        .env("PYTHONPATH", dir.path())
        .env("CLIENT_PACKAGE", "client")
        .env("LEADFLOW_URL", &d.base)
        .env("ADMIN_KEY", "admin-key")
        .env("DEALER_KEY", "dealer-rm-key"));
    assert!(out.contains("FLOW OK"), "{out}");
    let _ = d.stop().await;
}
