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
