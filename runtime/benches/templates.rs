//! Template rendering throughput on one core, as a plain binary (harness =
//! false): the shipped templates, payloads built as the outbox builds them
//! (privacy rule applied). Usage:
//!
//! ```text
//! cargo bench -p leadflow-runtime --bench templates -- [renders=200000]
//! ```

use leadflow_engine::{load, Project, SourceFile};
use leadflow_runtime::notify::{preview, Settings};
use leadflow_runtime::templates::TemplateSet;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |p: &str| std::fs::read_to_string(repo.join(p)).expect(p);
    let project = Project {
        workflows: ["oplead_project", "oplead_survey", "aslm", "qpartner"]
            .iter()
            .map(|w| {
                let p = format!("workflows/{w}.toml");
                SourceFile::new(p.clone(), read(&p))
            })
            .collect(),
        rules: [
            "rules/oplead.rhai",
            "rules/aslm.rhai",
            "rules/qpartner.rhai",
        ]
        .iter()
        .filter(|p| repo.join(p).exists())
        .map(|p| SourceFile::new(*p, read(p)))
        .collect(),
        calendars: std::fs::read_dir(repo.join("calendars"))
            .expect("calendars/")
            .flatten()
            .map(|e| {
                let p = format!("calendars/{}", e.file_name().to_string_lossy());
                SourceFile::new(p.clone(), read(&p))
            })
            .collect(),
    };
    let loaded = load(&project);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let set = TemplateSet::load(&repo.join("templates"), None).expect("templates/");
    let cases = [
        ("oplead_project", "proposal", "assignee", "proposed"),
        (
            "aslm",
            "appointment_confirmation",
            "customer",
            "appointment_set",
        ),
        ("qpartner", "lead_available", "inst-1", "available"),
    ];
    println!("renders/s on one core ({n} renders each, text + HTML parts when present)");
    for (wf_id, template, to, state) in cases {
        let wf = loaded.set.get(wf_id).expect("workflow");
        let mut rec: serde_json::Value =
            serde_json::from_str(&read(&format!("tests/templates/records/{wf_id}.json")))
                .expect("record JSON");
        rec["state"] = serde_json::json!(state);
        let payload = preview(wf, &rec, template, to, &[], &Settings::default()).expect("payload");
        let mut bytes = 0usize;
        let t = Instant::now();
        for _ in 0..n {
            let r = set.render(template, &payload, None).expect("renders");
            bytes += r.text.len() + r.html.as_ref().map_or(0, String::len);
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{wf_id}/{template:<26} {:>9.0} renders/s  ({:.1} µs each, {} bytes avg)",
            n as f64 / secs,
            secs * 1e6 / n as f64,
            bytes / n
        );
    }
}
