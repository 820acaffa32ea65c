//! Every scenario under tests/scenarios/ replays green on the in-memory
//! store (`leadflow test` runs the same suite). Format: docs/scenarios.md.

use leadflow_runtime::scenario::files::find_scenarios;
use leadflow_runtime::scenario::suite::{run_files, Mem, Options};
use leadflow_runtime::scenario::Summary;
use std::path::PathBuf;

#[test]
fn every_scenario_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let files = find_scenarios(&[dir]).expect("tests/scenarios is readable");
    assert!(!files.is_empty(), "no scenario under tests/scenarios");
    let results = run_files(&files, &Options::default(), &Mem);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.human())
        .collect();
    assert!(
        failed.is_empty(),
        "{}\n{}",
        failed.join("\n"),
        Summary::of(&results)
    );
}

fn replay_through(url: &str) {
    use leadflow_runtime::scenario::suite::Url;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let files = find_scenarios(&[dir]).expect("tests/scenarios is readable");
    let results = run_files(&files, &Options::default(), &Url::new(url));
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.human())
        .collect();
    assert!(
        failed.is_empty(),
        "through {url}:\n{}\n{}",
        failed.join("\n"),
        Summary::of(&results)
    );
}

/// The same suite through a real SQLite file: same results as in memory.
#[test]
fn every_scenario_passes_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("leadflow-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("scenarios.db");
    replay_through(&format!("sqlite:{}", db.display()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same suite through the real PostgreSQL at 127.0.0.1:5432, in a
/// database of its own (created here, dropped at the end).
#[test]
fn every_scenario_passes_on_postgres() {
    let name = format!("leadflow_scenarios_{}", std::process::id());
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    let psql = |sql: &str| {
        let ok = std::process::Command::new("psql")
            .args([admin, "-qc", sql])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "psql failed: {sql} (is PostgreSQL running on 127.0.0.1:5432?)"
        );
    };
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name}"));
    replay_through(&format!("postgres://postgres@127.0.0.1:5432/{name}"));
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
