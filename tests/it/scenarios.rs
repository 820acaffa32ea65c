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

/// The same suite through a real PostgreSQL (`LEADFLOW_TEST_PG`, default
/// 127.0.0.1:5432; a Citus cluster too), in a database of its own
/// (created here, dropped at the end).
#[test]
fn every_scenario_passes_on_postgres() {
    let name = format!("leadflow_scenarios_{}", std::process::id());
    let url = crate::pgtest::create_db(&name);
    replay_through(&url);
    crate::pgtest::drop_db(&name);
}

/// Every shipped scenario file, read once: (path, text).
fn shipped_scenarios() -> &'static Vec<(String, String)> {
    static FILES: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
        find_scenarios(&[dir])
            .expect("tests/scenarios is readable")
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                (p.display().to_string(), text)
            })
            .collect()
    })
}

/// A duration no clock can advance by is a parse error (S001) naming it;
/// before, the file parsed and replaying it panicked in `Span::fixed`.
#[test]
fn a_huge_advance_is_a_parse_error() {
    let text = "name = \"x\"\nworkflow = \"aslm\"\nstart = \"2026-01-01T00:00:00Z\"\n[[step]]\nadvance = \"999999999999d\"\n";
    let e = leadflow_runtime::scenario::parse("x.toml", text).unwrap_err();
    assert_eq!((e.code, e.line), ("S001", 5), "{}", e.message);
    assert!(e.message.contains("999999999999d"), "{}", e.message);
}

/// Advances that add up past the last instant chrono can hold end the
/// scenario with a message (each is at most 1000 years, so it takes 263).
#[test]
fn advancing_past_the_clock_range_is_a_failure_not_a_panic() {
    let dir = project_copy();
    let mut text =
        String::from("name = \"far\"\nworkflow = \"aslm\"\nstart = \"2026-01-01T00:00:00Z\"\n");
    for _ in 0..300 {
        text.push_str("[[step]]\nadvance = \"52000w\"\n");
    }
    let file = dir.path().join("tests/scenarios/far.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    let results = run_files(&[file], &Options::default(), &Mem);
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed);
    assert!(
        results[0].human().contains("goes past the latest instant"),
        "{}",
        results[0].human()
    );
}

/// A copy of the shipped project (workflows, rules, calendars) in a
/// temporary directory, for a tenant that changes one of its files.
fn project_copy() -> tempfile::TempDir {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for sub in ["workflows", "rules", "calendars"] {
        let to = dir.path().join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// SOC-9 (issue 13, correction 7): N, the idle days after which the
/// SocrateCloud process closes an opportunity (with its tickets and
/// completed offers), is a tenant setting: each tenant's project has its
/// own `rules/soc_settings.rhai`. A tenant with N = 45 keeps an idle
/// opportunity open on day 44 and closes it, with its ticket, on day 45.
#[test]
fn idle_days_are_a_tenant_setting() {
    let dir = project_copy();
    let settings = dir.path().join("rules/soc_settings.rhai");
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(text.contains("    30\n"), "{text}");
    std::fs::write(&settings, text.replace("    30\n", "    45\n")).unwrap();
    let scenario = r#"
name = "SOC-9 a tenant closes idle opportunities after 45 days"
workflow = "soc_opportunity"
start = "2024-03-04T09:00:00+02:00"
[actors.sales-ion]
role = "sales"
[[step]]
create = { as = "O1", by = "sales-ion", fields = { opp_no = "OP-45", sales_rep = "sales-ion" } }
expect = { timers = { idle_close = "2024-04-18T07:00:00Z" } }
[[step]]
fire = { record = "O1", transition = "open_ticket", by = "sales-ion", input = { ticket_subject = "Întrebare" } }
[[step]]
alias = { as = "T1", record = "O1/ticket" }
expect = { record = "T1", timers = { idle_close = "2024-04-18T07:00:00Z" } }
[[step]]
advance = "44d"
expect = { record = "O1", state = "new" }
[[step]]
advance = "1d"
expect = [{ record = "O1", state = "closed", fields = { closed_by_process = true } }, { record = "T1", state = "closed" }]
"#;
    let file = dir.path().join("tests/scenarios/idle45.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, scenario).unwrap();
    let results = run_files(&[file], &Options::default(), &Mem);
    assert_eq!(results.len(), 1);
    assert!(results[0].passed, "{}", results[0].human());
}

mod mutated {
    use proptest::prelude::*;

    /// A byte replaced, a line dropped, duplicated or swapped, a fragment
    /// inserted, the text cut short.
    #[derive(Debug, Clone)]
    enum Edit {
        Byte(usize, u8),
        Line(usize, u8),
        Insert(usize, &'static str),
        Truncate(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let fragment = prop::sample::select(vec![
            "\n",
            "\"",
            "]",
            "[",
            "=",
            "{",
            "}",
            ",",
            "#",
            "\u{e8}",
            "[[step]]\n",
            "999999999999d",
            "-1",
            "9223372036854775807",
            "+262142-12-31",
            "advance = \"999999999999d\"\n",
            "advance_to = \"+262142-12-31T00:00:00Z\"\n",
            "record = \"NOPE\"",
            "by = \"nobody\"",
            "expect = { state = 1 }\n",
        ]);
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Byte(i, b)),
            (any::<usize>(), 0_u8..3).prop_map(|(i, k)| Edit::Line(i, k)),
            (any::<usize>(), fragment).prop_map(|(i, f)| Edit::Insert(i, f)),
            any::<usize>().prop_map(Edit::Truncate),
        ]
    }

    fn mutate(text: &str, edits: &[Edit]) -> String {
        let mut b = text.as_bytes().to_vec();
        for e in edits {
            match *e {
                Edit::Byte(i, x) if !b.is_empty() => {
                    let i = i % b.len();
                    b[i] = x;
                }
                Edit::Insert(i, f) => {
                    let i = i % (b.len() + 1);
                    b.splice(i..i, f.bytes());
                }
                Edit::Truncate(i) => b.truncate(i % (b.len() + 1)),
                Edit::Line(i, k) => {
                    let mut l: Vec<Vec<u8>> =
                        b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
                    let i = i % l.len();
                    match k {
                        0 => {
                            l.remove(i);
                        }
                        1 => {
                            let x = l[i].clone();
                            l.insert(i, x);
                        }
                        _ if i + 1 < l.len() => l.swap(i, i + 1),
                        _ => {}
                    }
                    b = l.join(&b'\n');
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    fn cases(default: u32) -> ProptestConfig {
        ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default),
        )
    }

    proptest! {
        #![proptest_config(cases(256))]

        /// A mutated shipped scenario parses or is refused with a code and
        /// a position inside the file: never a panic.
        #[test]
        fn scenario_parser_never_panics_on_mutated_files(
            pick in any::<prop::sample::Index>(),
            edits in prop::collection::vec(edit(), 1..6),
        ) {
            let (path, text) = pick.get(super::shipped_scenarios());
            let text = mutate(text, &edits);
            if let Err(e) = leadflow_runtime::scenario::parse(path, &text) {
                prop_assert!(e.code.starts_with('S'), "{:?}", e);
                prop_assert!(e.line >= 1 && e.column >= 1, "{:?}", e);
            }
        }
    }
}
