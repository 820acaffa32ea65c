//! Scenario replay benchmark: a generated ASLM scenario (default 100,000
//! leads, 10 timer firings each, over a simulated year) replayed on the
//! in-memory store. Figures go to docs/benchmarks.md ("Scenario replay").
//!
//! Run: cargo run --release -p leadflow-runtime --example replay -- [LEADS]

use leadflow_runtime::scenario::files::read_project;
use leadflow_runtime::scenario::generate::Plan;
use leadflow_runtime::scenario::run;
use leadflow_runtime::MemBackend;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let leads: usize = std::env::args()
        .nth(1)
        .map(|s| s.replace('_', "").parse())
        .transpose()?
        .unwrap_or(100_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let loaded = leadflow_engine::load(&read_project(&root)?);
    let set = Arc::new(loaded.set);
    let t = Instant::now();
    let plan = Plan::new(leads);
    let sc = plan.scenario(&root.display().to_string());
    let generated = t.elapsed();
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let backend = MemBackend::new(set.clone());
    let t = Instant::now();
    let result = rt.block_on(run(&sc, &set, &backend));
    let replay = t.elapsed();
    println!(
        "{} leads, {} steps, {} timer firings (expected {}): generated in {:.2?}, replayed in {:.2?} ({:.0} steps+firings/s){}",
        leads,
        result.steps,
        result.fired,
        plan.expected_firings(),
        generated,
        replay,
        (result.steps + result.fired) as f64 / replay.as_secs_f64(),
        if result.passed { "" } else { " FAILED" }
    );
    for f in &result.failures {
        println!("  {f}");
    }
    if !result.passed || result.fired != plan.expected_firings() {
        std::process::exit(1);
    }
    Ok(())
}
