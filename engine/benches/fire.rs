//! Throughput of `fire`, one core, in two configurations:
//!
//! 1. `xstate-equivalent`: the machine of the team's XState v5 anchor bench
//!    (`bench.mjs`: three guarded steps, a 2e9 ms timer) as a workflow (benches/xstate_equivalent.toml): create, log contact attempt,
//!    set appointment, close with sale, each step guarded by a Rhai expression.
//!    This is the like-for-like comparison with XState v5.
//! 2. `aslm`: the real workflows/aslm.toml: 45 fields, history of every change,
//!    timers armed and cancelled, dealer assignment, guards calling rule
//!    functions in rules/aslm.rhai.
//!
//! Run: cargo bench -p leadflow-engine --bench fire   (LIFECYCLES=n to change the size)
//! scripts/bench-xstate.sh runs XState in the same session and prints the ratio.

use chrono::{DateTime, Duration, Utc};
use leadflow_engine::{create, fire, load, Actor, Ctx, Project, SourceFile, Value, Workflow};
use std::time::Instant;

fn read(p: &str) -> SourceFile {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    SourceFile::new(p, std::fs::read_to_string(format!("{root}/{p}")).expect(p))
}

fn workflow(project: Project, id: &str) -> std::sync::Arc<Workflow> {
    let loaded = load(&project);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.set.get(id).expect("workflow").clone()
}

type Step = (&'static str, Vec<(String, Value)>);

/// Best-of-3 transitions per second for `n` lifecycles of create + steps.
fn measure(
    wf: &Workflow,
    create_input: &[(String, Value)],
    steps: &[Step],
    directory: &[Actor],
    actor: &Actor,
    n: u32,
) -> f64 {
    let t0: DateTime<Utc> = "2022-11-14T09:00:00+01:00".parse().expect("instant");
    let last = steps.last().map(|s| s.0).unwrap_or_default();
    let lifecycle = |i: u32| {
        let ctx = Ctx {
            now: t0 + Duration::seconds(i64::from(i % 3600)),
            actor,
            directory,
        };
        let mut r = create(wf, create_input, ctx).expect("create").record;
        for (t, input) in steps {
            let o = fire(wf, &r, t, input, ctx).unwrap_or_else(|e| panic!("{t}: {e}"));
            r = o.record;
        }
        std::hint::black_box(&r);
        assert!(wf.states[r.state].is_final, "{last} ends in a final state");
    };
    for i in 0..n / 10 {
        lifecycle(i);
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for i in 0..n {
            lifecycle(i);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    f64::from(n) * steps.len() as f64 / best
}

fn main() {
    let n: u32 = std::env::var("LIFECYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dealer = Actor {
        id: "dealer-rm".into(),
        role: "dealer".into(),
        zones: vec!["RM".into()],
        ..Actor::default()
    };
    let vin = || vec![("vin".to_string(), Value::Str("ZAMGJ45A390012345".into()))];

    let equivalent = workflow(
        Project {
            workflows: vec![read("engine/benches/xstate_equivalent.toml")],
            ..Project::default()
        },
        "aslm_xstate",
    );
    let steps: Vec<Step> = vec![
        ("log_contact", vec![]),
        ("set_appointment", vec![]),
        ("close_sale", vin()),
    ];
    let tps = measure(&equivalent, &[], &steps, &[], &dealer, n);
    println!("xstate-equivalent: {tps:.0} transitions/s ({n} lifecycles of create + 3 guarded transitions, best of 3)");

    let aslm = workflow(
        Project {
            workflows: vec![read("workflows/aslm.toml")],
            rules: vec![read("rules/aslm.rhai")],
            calendars: vec![read("calendars/it.toml")],
        },
        "aslm",
    );
    let directory = vec![
        Actor {
            id: "dealer-mi".into(),
            role: "dealer".into(),
            zones: vec!["MI".into()],
            ..Actor::default()
        },
        dealer.clone(),
    ];
    let t0: DateTime<Utc> = "2022-11-14T09:00:00+01:00".parse().expect("instant");
    let create_input = vec![
        ("first_name".to_string(), Value::Str("Mario".into())),
        ("province".to_string(), Value::Str("RM".into())),
    ];
    let steps: Vec<Step> = vec![
        ("log_contact_attempt", vec![]),
        (
            "make_appointment",
            vec![(
                "appointment_at".to_string(),
                Value::DateTime(t0 + Duration::days(3)),
            )],
        ),
        ("close_sale", vin()),
    ];
    let tps = measure(&aslm, &create_input, &steps, &directory, &dealer, n / 2);
    println!(
        "aslm (workflows/aslm.toml): {tps:.0} transitions/s ({} lifecycles, best of 3)",
        n / 2
    );
}
