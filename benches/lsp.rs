//! Latency of `leadflow lsp` on a 2,000-state workflow, as an editor sees
//! it: time from a `didChange` to the `publishDiagnostics` it causes, and
//! of a completion request at `to = "`. Targets (issue 14): diagnostics
//! within 150 ms of an edit, completion within 20 ms.
//!
//!     cargo bench --bench lsp
//!
//! Figures: docs/benchmarks.md ("Language server").

#[path = "../tests/lsp_support/mod.rs"]
mod lsp_support;

use lsp_support::Client;
use std::time::{Duration, Instant};

const STATES: usize = 2000;

fn workflow(title: &str) -> String {
    let mut s = format!(
        "[workflow]\nid = \"big\"\ntitle = \"{title}\"\nrecord = \"lead\"\ninitial = \"s0\"\nroles = [\"agent\"]\n\n[fields.n]\ntitle = \"N\"\ntype = \"int\"\n[fields.zone]\ntitle = \"Zone\"\ntype = \"string\"\n\n"
    );
    for i in 0..STATES {
        s.push_str(&format!("[states.s{i}]\ntitle = \"State {i}\"\n"));
        if i == STATES - 1 {
            s.push_str("final = true\n");
        }
    }
    for i in 0..STATES - 1 {
        s.push_str(&format!(
            "\n[transitions.t{i}]\ntitle = \"Step {i}\"\nfrom = [\"s{i}\"]\nto = \"s{}\"\nby = [\"agent\"]\nguard = \"lead.n > {i} && lead.zone != \\\"\\\"\"\n",
            i + 1
        ));
    }
    s
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("leadflow-lsp-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    let file = dir.join("workflows/big.toml");
    let text = workflow("Big");
    std::fs::write(&file, &text).unwrap();
    let mut c = Client::start(env!("CARGO_BIN_EXE_leadflow"), &dir);
    c.open(&file, &text);
    let first = c.diagnostics_for(&file);
    assert!(
        first.is_empty(),
        "the generated workflow is clean: {first:?}"
    );

    let mut diag = Vec::new();
    for v in 0..30 {
        // Alternate a clean edit and one with an error, as typing does.
        let t = if v % 2 == 0 {
            workflow(&format!("Big {v}"))
        } else {
            workflow("Big").replacen("to = \"s7\"", "to = \"s7x\"", 1)
        };
        let t0 = Instant::now();
        c.change(&file, v + 2, &t);
        let d = c.diagnostics_for(&file);
        diag.push(t0.elapsed());
        assert_eq!(d.len(), (v % 2) as usize, "{d:?}");
    }
    let line = text[..text.find("to = \"s1000\"").unwrap()]
        .matches('\n')
        .count();
    let mut compl = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let r = c.at("textDocument/completion", &file, line, 6);
        compl.push(t0.elapsed());
        assert_eq!(r.as_array().map(Vec::len), Some(STATES));
    }
    c.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "lsp, {STATES}-state workflow ({} KB): diagnostics after an edit p50 {:?} p95 {:?} max {:?} (30 edits); completion at `to = \"` p50 {:?} p95 {:?} (50 requests, {STATES} items); load average {}",
        text.len() / 1024,
        percentile(&mut diag, 0.5),
        percentile(&mut diag, 0.95),
        percentile(&mut diag, 1.0),
        percentile(&mut compl, 0.5),
        percentile(&mut compl, 0.95),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
