//! Load-and-check time of a generated workflow of 2,000 states and 10,000
//! transitions (target: under 1 s), every graph check included.
//!
//! Run: cargo bench -p leadflow-engine --bench check

use leadflow_engine::{load, Project, SourceFile};
use std::fmt::Write;
use std::time::Instant;

/// A ring of states with chords: everything reachable, everything reaches
/// the final state, 5 transitions out of each state.
fn generate(states: usize, per_state: usize) -> String {
    let mut s = String::from(
        "[workflow]\nid = \"big\"\ninitial = \"s0\"\n\n[fields.n]\ntype = \"int\"\ndefault = 0\n\n",
    );
    for i in 0..states {
        let _ = writeln!(s, "[states.s{i}]");
    }
    let _ = writeln!(s, "[states.end]\nfinal = true\n");
    let mut k = 0;
    for i in 0..states {
        for j in 0..per_state {
            let to = if j == 0 && i % 100 == 99 {
                "end".to_string()
            } else {
                format!("s{}", (i + 1 + j * 7) % states)
            };
            let _ = writeln!(s, "[transitions.t{k}]\nfrom = [\"s{i}\"]\nto = \"{to}\"\nby = [\"agent\"]\nguard = \"lead.n < {j} + 10\"\n");
            k += 1;
        }
    }
    s
}

fn main() {
    let text = generate(2000, 5);
    let project = Project {
        workflows: vec![SourceFile::new("workflows/big.toml", text)],
        ..Project::default()
    };
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let loaded = load(&project);
        best = best.min(start.elapsed().as_secs_f64());
        assert!(
            loaded.diagnostics.is_empty(),
            "{:?}",
            &loaded.diagnostics[..3.min(loaded.diagnostics.len())]
        );
        let wf = loaded.set.get("big").expect("loaded");
        assert_eq!((wf.states.len(), wf.transitions.len()), (2001, 10_000));
    }
    println!(
        "check of 2,001 states / 10,000 guarded transitions: {:.0} ms (best of 5)",
        best * 1000.0
    );
}
