//! The broken-workflow corpus in `tests/check/` (its README explains the
//! layout): every case is checked by the built `leadflow` binary, exactly as
//! a user runs it, and the output is compared with the golden `<case>.out`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test check` rewrites the goldens; review
//! the diff before committing it.

use leadflow_engine::diag::CODES;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

const CORPUS: &str = "tests/check";

/// One case: the workflow paths and the project root given to `leadflow check`.
struct Case {
    name: String,
    paths: Vec<String>,
    root: String,
}

impl Case {
    fn golden(&self) -> PathBuf {
        manifest_dir()
            .join(CORPUS)
            .join(format!("{}.out", self.name))
    }

    /// Run `leadflow check` on this case with extra arguments.
    fn check(&self, extra: &[&str]) -> Run {
        let mut args = vec!["check".to_string()];
        args.extend(self.paths.iter().cloned());
        args.extend(["--root".to_string(), self.root.clone()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        leadflow(&args)
    }
}

struct Run {
    stdout: String,
    code: i32,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the binary from the package root, so that the paths it prints are
/// the relative ones of the goldens on every machine.
fn leadflow(args: &[String]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .expect("the leadflow binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "leadflow {args:?} wrote to stderr:\n{stderr}"
    );
    Run {
        stdout: String::from_utf8(out.stdout).expect("UTF-8 output"),
        code: out.status.code().expect("exited normally"),
    }
}

/// A `*.toml` file in the corpus is a one-file case checked with the corpus
/// itself as root (no rules, no calendars); a directory holding `workflows/`
/// is a project checked with the directory as root.
fn cases() -> Vec<Case> {
    let dir = manifest_dir().join(CORPUS);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/check exists")
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for p in entries {
        let name = file_name(&p);
        if p.is_dir() && p.join("workflows").is_dir() {
            out.push(Case {
                paths: vec![format!("{CORPUS}/{name}/workflows")],
                root: format!("{CORPUS}/{name}"),
                name,
            });
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(Case {
                name: name.trim_end_matches(".toml").to_string(),
                paths: vec![format!("{CORPUS}/{name}")],
                root: CORPUS.to_string(),
            });
        }
    }
    assert!(
        out.len() > 20,
        "the corpus went missing: {} cases",
        out.len()
    );
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name")
        .to_string()
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let n = e.len().max(a.len());
    (0..n)
        .find(|&i| e.get(i) != a.get(i))
        .map(|i| {
            format!(
                "line {}:\n  expected: {:?}\n  actual:   {:?}",
                i + 1,
                e.get(i).copied().unwrap_or("<end>"),
                a.get(i).copied().unwrap_or("<end>")
            )
        })
        .unwrap_or_else(|| "only trailing whitespace differs".to_string())
}

#[test]
fn every_case_renders_as_its_golden() {
    let mut failures = Vec::new();
    for case in cases() {
        let actual = case.check(&[]).stdout;
        let golden = case.golden();
        if updating() {
            std::fs::write(&golden, &actual).expect("golden is writable");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: output differs from {}\n{}",
                case.name,
                golden.display(),
                first_difference(&expected, &actual)
            )),
            Err(_) => failures.push(format!("{}: no golden {}", case.name, golden.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the new output is right: UPDATE_GOLDEN=1 cargo test --test check",
        failures.join("\n\n")
    );
}

/// A new diagnostic code cannot land without a case that shows it.
#[test]
fn every_check_code_has_a_case() {
    let dir = manifest_dir().join(CORPUS);
    // The fresh outputs, not the goldens: they may be being rewritten.
    let outputs: String = cases().iter().map(|c| c.check(&[]).stdout).collect();
    let missing: Vec<&str> = CODES
        .iter()
        .map(|e| e.code)
        .filter(|c| c.starts_with("E0") || c.starts_with("W0"))
        .filter(|c| !outputs.contains(&format!("[{c}]")))
        .collect();
    assert!(
        missing.is_empty(),
        "no case in {} shows {missing:?}: add one named after the code, e.g. {}_what_is_wrong.toml",
        dir.display(),
        missing[0].to_lowercase()
    );
}

/// The checker reports every finding, not just the first.
#[test]
fn one_case_reports_several_codes() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "multiple_findings")
        .expect("the multiple_findings case");
    let out = case.check(&[]).stdout;
    let codes: std::collections::BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.split_once('[')?.1.split_once(']'))
        .map(|(code, _)| code)
        .collect();
    assert!(codes.len() >= 5, "only {codes:?}");
    assert!(codes.iter().any(|c| c.starts_with('W')), "{codes:?}");
}

/// `--format json` carries, for every finding, what the human output shows.
#[test]
fn json_output_matches_the_human_output() {
    for case in cases() {
        let human = case.check(&[]);
        let json = case.check(&["--format", "json"]);
        assert_eq!(human.code, json.code, "{}: exit code by format", case.name);
        let doc: Json = serde_json::from_str(&json.stdout)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", case.name, json.stdout));
        let diags = doc["diagnostics"].as_array().expect("diagnostics array");
        let headers = human
            .stdout
            .lines()
            .filter(|l| l.starts_with("error[") || l.starts_with("warning["))
            .count();
        assert_eq!(diags.len(), headers, "{}: count of findings", case.name);
        let errors = diags.iter().filter(|d| d["severity"] == "error").count();
        assert_eq!(doc["errors"], errors, "{}", case.name);
        assert_eq!(doc["warnings"], diags.len() - errors, "{}", case.name);
        assert_eq!(doc["files"].as_u64().map(|n| n > 0), Some(true));
        for d in diags {
            let code = d["code"].as_str().expect("code");
            assert!(
                leadflow_engine::diag::explain(code).is_some(),
                "{}: {code} is not in CODES",
                case.name
            );
            let file = d["file"].as_str().expect("file");
            let line = d["line"].as_u64().expect("line");
            let column = d["column"].as_u64().expect("column");
            assert!(line >= 1 && column >= 1, "{}: {d}", case.name);
            assert!(
                !d["hint"].as_str().expect("hint").is_empty(),
                "{}: {code} without a hint",
                case.name
            );
            assert!(!d["message"].as_str().expect("message").is_empty());
            let header = format!("[{code}]: {}", d["message"].as_str().unwrap_or(""));
            assert!(human.stdout.contains(&header), "{}: {header}", case.name);
            let location = format!("┌─ {file}:{line}:{column}");
            assert!(
                human.stdout.contains(&location),
                "{}: {location} is not in the human output:\n{}",
                case.name,
                human.stdout
            );
        }
    }
}

#[test]
fn exit_codes() {
    for case in cases() {
        let run = case.check(&[]);
        let doc: Json =
            serde_json::from_str(&case.check(&["--format", "json"]).stdout).expect("JSON");
        let (errors, warnings) = (doc["errors"].as_u64(), doc["warnings"].as_u64());
        let expected = i32::from(errors != Some(0));
        assert_eq!(run.code, expected, "{}: exit code", case.name);
        let strict = case.check(&["--deny-warnings"]);
        let expected = i32::from(errors != Some(0) || warnings != Some(0));
        assert_eq!(strict.code, expected, "{}: --deny-warnings", case.name);
    }
    // A warning alone passes, unless warnings are denied.
    let warned = cases()
        .into_iter()
        .find(|c| c.name.starts_with("w001"))
        .expect("a W001 case");
    assert_eq!(warned.check(&[]).code, 0);
    assert_eq!(warned.check(&["--deny-warnings"]).code, 1);
    // A clean project passes, even with warnings denied.
    let clean = cases()
        .into_iter()
        .find(|c| c.name == "ok_clean")
        .expect("the ok_clean case");
    let run = clean.check(&["--deny-warnings"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("0 error(s), 0 warning(s)"));
}

/// `leadflow explain CODE` links to `docs/diagnostics.md#code`.
#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(manifest_dir().join("docs/diagnostics.md"))
        .expect("docs/diagnostics.md exists");
    let headings: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let missing: Vec<&str> = CODES
        .iter()
        .map(|e| e.code)
        .filter(|c| !headings.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/diagnostics.md has no `## CODE` heading for {missing:?}"
    );
}

/// Every key of the JSON Schema (what editors complete) is documented, as
/// `` `key` `` or, for the top-level tables, `` `[key]` ``.
#[test]
fn every_workflow_key_is_documented() {
    let doc = std::fs::read_to_string(manifest_dir().join("docs/workflow-format.md"))
        .expect("docs/workflow-format.md exists");
    let mut keys = std::collections::BTreeSet::new();
    collect_keys(&leadflow_engine::workflow_schema(), &mut keys);
    assert!(
        keys.contains("rearm") && keys.contains("backlink"),
        "{keys:?}"
    );
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")) && !doc.contains(&format!("`[{k}]`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/workflow-format.md does not mention {missing:?}"
    );
}

fn collect_keys(schema: &Json, keys: &mut std::collections::BTreeSet<String>) {
    match schema {
        Json::Object(m) => {
            if let Some(Json::Object(props)) = m.get("properties") {
                keys.extend(props.keys().cloned());
            }
            m.values().for_each(|v| collect_keys(v, keys));
        }
        Json::Array(a) => a.iter().for_each(|v| collect_keys(v, keys)),
        _ => {}
    }
}
