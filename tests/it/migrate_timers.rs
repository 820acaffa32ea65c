//! `leadflow migrate --timers keep|recompute` on a fresh SQLite file and a
//! fresh PostgreSQL database: moving ASLM leads to a version whose 60-day
//! lost-sale timer became 45 days and whose 3-day nudge is gone recomputes
//! the first from when it was armed and cancels the second; `--dry-run`
//! reports both per record and changes nothing; `--timers keep` leaves them.

use crate::http_support;

use http_support::{config_text, copy_project, Daemon, Db, Kind};
use serde_json::Value;
use std::path::Path;

const NUDGE: &str = "\n[timers.nudge]\nin = [\"assigned\"]\nafter = \"3d\"\ndo = [{ set = \"notes\", expr = \"\\\"nudged\\\"\" }]\n";

fn version(dir: &Path) -> String {
    let cfg = leadflow_runtime::config::Config::load(&dir.join("leadflow.toml")).unwrap();
    let (set, _) = leadflow_runtime::http::state::load_workflows(&cfg.tenants["aslm"]).unwrap();
    set.get("aslm").unwrap().hash.clone()
}

fn timers(r: &Value) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    r["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["timer"].as_str().unwrap().to_string(),
                t["due"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

async fn changed_timers_are_recomputed_and_dropped_ones_cancelled(kind: Kind) {
    let proj = tempfile::tempdir().unwrap();
    copy_project(proj.path());
    let file = proj.path().join("workflows/aslm.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{original}{NUDGE}")).unwrap();
    std::fs::write(proj.path().join("leadflow.toml"), config_text(proj.path())).unwrap();
    let v1 = version(proj.path());
    let d = Daemon::start_with(Db::new(kind), proj.path(), false).await;
    let id = d.aslm_lead("admin", "Timers").await.id();
    let before = timers(&d.get(&format!("/v1/records/{id}"), "admin").await.body);
    let due = |list: &[(String, chrono::DateTime<chrono::Utc>)], n: &str| {
        list.iter().find(|(t, _)| t == n).map(|(_, d)| *d)
    };
    let lost = due(&before, "lost_after_assignment").expect("armed");
    assert!(due(&before, "nudge").is_some(), "{before:?}");
    let db = d.stop().await;

    // v2: 45 days instead of 60, no nudge.
    std::fs::write(
        &file,
        original.replace("after = \"60d\"", "after = \"45d\""),
    )
    .unwrap();
    let v2 = version(proj.path());
    assert_ne!(v1, v2);
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(["migrate", "--config"])
            .arg(proj.path().join("leadflow.toml"))
            .args([
                "--database-url",
                &db.url,
                "--tenant",
                "aslm",
                "--workflow",
                "aslm",
            ])
            .args(["--from", &v1, "--to", &v2])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let want_lost = lost - chrono::Duration::days(15);
    let out = run(&["--dry-run"]);
    assert!(
        out.contains(&format!(
            "record {id}: timer `lost_after_assignment` due {} -> {} (would be recomputed)",
            lost.to_rfc3339(),
            want_lost.to_rfc3339()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("record {id}: timer `nudge` due "))
            && out.contains("would be cancelled: the target version has no timer `nudge`"),
        "{out}"
    );
    let out = run(&["--dry-run", "--timers", "keep"]);
    assert!(out.contains("kept (--timers keep)"), "{out}");

    // Nothing changed yet.
    let d = Daemon::start_with(db, proj.path(), false).await;
    let r = d.get(&format!("/v1/records/{id}"), "admin").await.body;
    assert_eq!(r["version"], v1.as_str());
    assert_eq!(timers(&r), before);
    let db = d.stop().await;

    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .args(["migrate", "--config"])
            .arg(proj.path().join("leadflow.toml"))
            .args([
                "--database-url",
                &db.url,
                "--tenant",
                "aslm",
                "--workflow",
                "aslm",
            ])
            .args(["--from", &v1, "--to", &v2])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&[]);
    assert!(
        out.contains("(was recomputed)") && out.contains("is cancelled"),
        "{out}"
    );
    let d = Daemon::start_with(db, proj.path(), false).await;
    let r = d.get(&format!("/v1/records/{id}"), "admin").await.body;
    assert_eq!(r["version"], v2.as_str(), "{r}");
    assert_eq!(
        timers(&r),
        vec![("lost_after_assignment".to_string(), want_lost)],
        "{r}"
    );
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_timers_are_recomputed_and_dropped_ones_cancelled_on_sqlite() {
    changed_timers_are_recomputed_and_dropped_ones_cancelled(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_timers_are_recomputed_and_dropped_ones_cancelled_on_postgres() {
    changed_timers_are_recomputed_and_dropped_ones_cancelled(Kind::Pg).await;
}
