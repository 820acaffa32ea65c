//! Hot reload: a valid edit publishes a new version without restart, a
//! broken edit keeps the last good one serving, records keep their version
//! (across restarts too); then `leadflow migrate` moves the old records,
//! refusing unknown states.

use crate::http_support;

use http_support::{config_text, copy_project, Daemon, Db, Kind};
use serde_json::json;
use std::time::Duration;

async fn wait_for(
    d: &Daemon,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..100 {
        let w = d.get("/v1/workflows", "admin").await.body;
        if f(&w) {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn current(w: &serde_json::Value) -> String {
    w["workflows"][0]["current"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_publish_versions_and_broken_edits_keep_the_last_good_one() {
    let proj = tempfile::tempdir().unwrap();
    copy_project(proj.path());
    let file = proj.path().join("workflows/aslm.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let db = Db::new(Kind::Sqlite);
    let d = Daemon::start_with(db, proj.path(), true).await;
    let v1 = current(&d.get("/v1/workflows", "admin").await.body);
    let old = d.aslm_lead("admin", "Before").await;
    assert_eq!(old.body["version"], v1.as_str());

    // A valid edit: a new title.
    std::fs::write(
        &file,
        original.replace("[workflow]\n", "[workflow]\n# edited\n"),
    )
    .unwrap();
    let w = wait_for(&d, "a new version", |w| current(w) != v1).await;
    let v2 = current(&w);
    assert_eq!(w["ok"], true);
    assert_eq!(w["workflows"][0]["versions"].as_array().unwrap().len(), 2);
    let new = d.aslm_lead("admin", "After").await;
    assert_eq!(new.body["version"], v2.as_str());
    // The old record stays on its version and still runs on it.
    let r = d
        .post(
            &format!("/v1/records/{}/transitions/log_contact_attempt", old.id()),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"], v1.as_str());

    // A broken edit: an unknown state. The last good version keeps serving.
    std::fs::write(
        &file,
        original.replace("initial = \"assigned\"", "initial = \"nowhere\""),
    )
    .unwrap();
    let w = wait_for(&d, "the broken status", |w| w["ok"] == false).await;
    assert_eq!(current(&w), v2);
    let diags = w["diagnostics"].as_array().unwrap();
    assert!(
        diags
            .iter()
            .any(|x| x["severity"] == "error" && x["file"] == "workflows/aslm.toml"),
        "{w}"
    );
    let r = d.aslm_lead("admin", "Still").await;
    assert_eq!(r.body["version"], v2.as_str());

    // Fixed again: back to a clean status (same content as v2).
    std::fs::write(
        &file,
        original.replace("[workflow]\n", "[workflow]\n# edited\n"),
    )
    .unwrap();
    let w = wait_for(&d, "a clean status", |w| w["ok"] == true).await;
    assert_eq!(current(&w), v2);

    // Migrate the first record from v1 to v2 (the daemon's config on disk).
    let cfg = proj.path().join("leadflow.toml");
    std::fs::write(&cfg, http_support::config_text(proj.path())).unwrap();
    let url = d.db.url.clone();
    let migrate = |extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"));
        c.args(["migrate", "--config"]).arg(&cfg).args([
            "--database-url",
            &url,
            "--tenant",
            "aslm",
            "--workflow",
            "aslm",
            "--from",
            &v1,
            "--to",
            &v2,
        ]);
        c.args(extra);
        c.output().unwrap()
    };
    let out = migrate(&["--map", "assigned=nowhere"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a state"),
        "{out:?}"
    );
    let out = migrate(&["--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("would move 1 records"),
        "{out:?}"
    );
    let out = migrate(&[]);
    assert!(out.status.success(), "{out:?}");
    let r = d.get(&format!("/v1/records/{}", old.id()), "admin").await;
    assert_eq!(r.body["version"], v2.as_str());
    assert_eq!(r.body["state"], "assigned");
    let h = d
        .get(&format!("/v1/records/{}/history", old.id()), "admin")
        .await;
    let moved = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "migrate")
        .unwrap_or_else(|| panic!("no migrate event in {}", h.body));
    assert_eq!(
        (&moved["actor"], &moved["from"], &moved["to"]),
        (&json!("migrate"), &json!("assigned"), &json!("assigned"))
    );
    assert_eq!(moved["changes"][0]["field"], "version");
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edit_over_the_size_limits_is_refused_and_the_old_version_serves() {
    let proj = tempfile::tempdir().unwrap();
    copy_project(proj.path());
    let file = proj.path().join("workflows/aslm.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let text = format!(
        "{}\n[tenants.aslm.limits]\nmax_states = 20\n",
        config_text(proj.path())
    );
    let cfg = leadflow_runtime::config::Config::parse(&text, "t.toml", std::path::Path::new("/"))
        .unwrap();
    let d = Daemon::start_config(Db::new(Kind::Sqlite), cfg, true).await;
    let v1 = current(&d.get("/v1/workflows", "admin").await.body);

    // 30 more states (final, so the workflow would otherwise be valid).
    let mut big = original.clone();
    for i in 0..30 {
        big.push_str(&format!(
            "\n[states.extra_{i}]\ntitle = \"Extra {i}\"\nfinal = true\n"
        ));
    }
    std::fs::write(&file, &big).unwrap();
    let w = wait_for(&d, "the refusal", |w| w["ok"] == false).await;
    assert_eq!(current(&w), v1, "the last good version stays current");
    let diags = w["diagnostics"].as_array().unwrap();
    let e = diags
        .iter()
        .find(|x| x["code"] == "E060")
        .unwrap_or_else(|| panic!("no E060 in {w}"));
    assert_eq!(e["file"], "workflows/aslm.toml");
    assert_eq!(e["severity"], "error");
    assert!(e["message"].as_str().unwrap().contains("max_states"), "{e}");
    let line = e["line"].as_u64().unwrap() as usize;
    assert_eq!(
        big.lines().nth(line - 1),
        Some("[states.extra_13]"),
        "points at the 21st state (aslm has 7 of its own)"
    );
    let r = d.aslm_lead("admin", "Still served").await;
    assert_eq!(r.body["version"], v1.as_str());
    let _ = d.stop().await;
}

fn versions(w: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = w["workflows"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["hash"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<&String>) -> Vec<String> {
    v.sort();
    v.into_iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_no_record_runs_on_are_unloaded_and_come_back_on_demand() {
    let proj = tempfile::tempdir().unwrap();
    copy_project(proj.path());
    let file = proj.path().join("workflows/aslm.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let edit = |n: u32| {
        std::fs::write(
            &file,
            original.replace("[workflow]\n", &format!("[workflow]\n# edit {n}\n")),
        )
        .unwrap()
    };
    let d = Daemon::start_with(Db::new(Kind::Sqlite), proj.path(), true).await;
    let v1 = current(&d.get("/v1/workflows", "admin").await.body);
    edit(2);
    let v2 = current(&wait_for(&d, "v2", |w| current(w) != v1).await);
    let on_v2 = d.aslm_lead("admin", "On v2").await;
    edit(3);
    let v3 = current(&wait_for(&d, "v3", |w| current(w) != v2).await);
    // v1 (no record, superseded before this reload) is unloaded.
    let w = d.get("/v1/workflows", "admin").await.body;
    assert_eq!(versions(&w), sorted(vec![&v2, &v3]), "{w}");
    edit(4);
    let v4 = current(&wait_for(&d, "v4", |w| current(w) != v3).await);
    // v2 has a record: it stays; v3 waits for the next reload.
    let w = d.get("/v1/workflows", "admin").await.body;
    assert_eq!(versions(&w), sorted(vec![&v2, &v3, &v4]), "{w}");
    let db = d.stop().await;

    // After a restart only the versions records run on are loaded.
    let d = Daemon::start_with(db, proj.path(), false).await;
    let w = d.get("/v1/workflows", "admin").await.body;
    assert_eq!(versions(&w), sorted(vec![&v2, &v4]), "{w}");
    // A record moved to the unloaded v3 (by `leadflow migrate` on v3's
    // files; this daemon does not watch) loads it from its snapshot.
    edit(3);
    let cfg = proj.path().join("leadflow.toml");
    std::fs::write(&cfg, http_support::config_text(proj.path())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["migrate", "--config"])
        .arg(&cfg)
        .args([
            "--database-url",
            &d.db.url,
            "--tenant",
            "aslm",
            "--workflow",
            "aslm",
            "--from",
            &v2,
            "--to",
            &v3,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = d
        .post(
            &format!("/v1/records/{}/transitions/log_contact_attempt", on_v2.id()),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"], v3.as_str());
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_refuses_states_missing_from_the_target() {
    let proj = tempfile::tempdir().unwrap();
    copy_project(proj.path());
    let file = proj.path().join("workflows/aslm.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let d = Daemon::start_with(Db::new(Kind::Pg), proj.path(), false).await;
    let v1 = current(&d.get("/v1/workflows", "admin").await.body);
    let old = d.aslm_lead("admin", "Before").await;
    d.post(
        &format!("/v1/records/{}/transitions/log_contact_attempt", old.id()),
        "dealer-rm",
        json!({}),
    )
    .await;
    // v2 renames the state the record is in.
    let renamed = original
        .replace("[states.assigned]", "[states.with_dealer]")
        .replace("\"assigned\"", "\"with_dealer\"");
    std::fs::write(&file, renamed).unwrap();
    let cfg = proj.path().join("leadflow.toml");
    std::fs::write(&cfg, http_support::config_text(proj.path())).unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["check"])
        .arg(&file)
        .arg("--root")
        .arg(proj.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "renamed workflow must be valid: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let loaded = leadflow_runtime::config::Config::load(&cfg).unwrap();
    let (set, _) = leadflow_runtime::http::state::load_workflows(&loaded.tenants["aslm"]).unwrap();
    let v2 = set.get("aslm").unwrap().hash.clone();
    let url = d.db.url.clone();
    let run = |map: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"));
        c.args(["migrate", "--config"]).arg(&cfg).args([
            "--database-url",
            &url,
            "--tenant",
            "aslm",
            "--workflow",
            "aslm",
            "--from",
            &v1,
            "--to",
            &v2,
        ]);
        if let Some(m) = map {
            c.args(["--map", m]);
        }
        c.output().unwrap()
    };
    let out = run(None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("state `assigned` (1 records)"), "{err}");
    assert_eq!(
        d.get(&format!("/v1/records/{}", old.id()), "admin")
            .await
            .body["version"],
        v1.as_str()
    );
    let out = run(Some("assigned=with_dealer"));
    assert!(out.status.success(), "{out:?}");
    let db = d.stop().await;
    // A daemon started on the new files runs the migrated record.
    let d2 = Daemon::start_with(db, proj.path(), false).await;
    let r = d2.get(&format!("/v1/records/{}", old.id()), "admin").await;
    assert_eq!(
        (r.body["version"].as_str(), r.body["state"].as_str()),
        (Some(v2.as_str()), Some("with_dealer"))
    );
    let r = d2
        .post(
            &format!("/v1/records/{}/transitions/log_contact_attempt", old.id()),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["fields"]["attempts"], 2);
    let _ = d2.stop().await;
}

/// Versions survive restarts: the version loaded at start and the one a hot
/// reload published (an edit of the rules module only) are both rebuilt
/// from their stored project snapshots when the daemon starts again on
/// edited files, list on `/v1/workflows`, and run their records.
async fn versions_survive_restarts(kind: Kind) {
    let proj = tempfile::tempdir().unwrap();
    copy_project(proj.path());
    let rules = proj.path().join("rules/aslm.rhai");
    let file = proj.path().join("workflows/aslm.toml");
    let d = Daemon::start_with(Db::new(kind), proj.path(), true).await;
    let v1 = current(&d.get("/v1/workflows", "admin").await.body);
    let a = d.aslm_lead("admin", "One").await;

    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, format!("{text}\n// edited: version 2\n")).unwrap();
    let w = wait_for(&d, "version 2", |w| current(w) != v1).await;
    let v2 = current(&w);
    let b = d.aslm_lead("admin", "Two").await;
    assert_eq!(b.body["version"], v2.as_str());
    let db = d.stop().await;

    // Edited while the daemon is down: version 3 on disk.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("[workflow]\n", "[workflow]\n# version 3\n"),
    )
    .unwrap();
    let d = Daemon::start_with(db, proj.path(), false).await;
    let w = d.get("/v1/workflows", "admin").await.body;
    let v3 = current(&w);
    assert!(v3 != v1 && v3 != v2, "{w}");
    let mut listed: Vec<&str> = w["workflows"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["hash"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut all = vec![v1.as_str(), v2.as_str(), v3.as_str()];
    all.sort();
    assert_eq!(listed, all, "{w}");
    for (rec, v) in [(&a, &v1), (&b, &v2)] {
        let r = d
            .post(
                &format!("/v1/records/{}/transitions/log_contact_attempt", rec.id()),
                "dealer-rm",
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["version"], v.as_str());
        assert_eq!(r.body["fields"]["attempts"], 1);
    }
    let c = d.aslm_lead("admin", "Three").await;
    assert_eq!(c.body["version"], v3.as_str());
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_versions_survive_restarts() {
    versions_survive_restarts(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_versions_survive_restarts() {
    versions_survive_restarts(Kind::Pg).await;
}
