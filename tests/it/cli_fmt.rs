//! `leadflow fmt`: the shipped workflows are in canonical layout; any
//! reordering of their tables and keys, indentation and spacing formats
//! back to them byte for byte (property test); comments are kept; --check
//! exit codes.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use toml_edit::DocumentMut;

fn shipped() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10);
    out
}

fn leadflow_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run leadflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Comment lines (trimmed), sorted: a multiset to compare.
fn comments(text: &str) -> Vec<String> {
    let mut c: Vec<String> = text
        .lines()
        .filter_map(|l| l.find('#').map(|i| l[i..].trim().to_string()))
        .collect();
    c.sort();
    c
}

/// `text` with its tables interleaved at random (`draws`), each kind's
/// tables keeping their relative order; every table's keys in the order of
/// `key_seed`; keys indented and `=` padded.
fn scramble(text: &str, draws: &[u32], key_seed: u64) -> String {
    let mut doc: DocumentMut = text.parse().unwrap();
    let mut paths = Vec::new();
    for (k, item) in doc.as_table().iter() {
        let t = item.as_table().unwrap();
        if !t.is_implicit() {
            paths.push(vec![k.to_string()]);
        }
        for (sub, v) in t.iter() {
            if v.is_table() {
                paths.push(vec![k.to_string(), sub.to_string()]);
            }
        }
    }
    // A random merge of the kinds: each kind takes its draws in order.
    let mut position = vec![0u64; paths.len()];
    let kinds: std::collections::BTreeSet<&String> = paths.iter().map(|p| &p[0]).collect();
    for kind in kinds {
        let members: Vec<usize> = (0..paths.len()).filter(|&i| &paths[i][0] == kind).collect();
        let mut picks: Vec<u64> = members
            .iter()
            .map(|&i| u64::from(draws[i % draws.len()]) * 4096 + i as u64)
            .collect();
        picks.sort();
        for (m, p) in members.iter().zip(picks) {
            position[*m] = p;
        }
    }
    for (i, path) in paths.iter().enumerate() {
        let mut t = doc.as_table_mut();
        for p in path {
            t = t.get_mut(p).unwrap().as_table_mut().unwrap();
        }
        t.set_position(Some(position[i] as isize));
        let salt = |k: &str| {
            k.bytes()
                .fold(key_seed, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        };
        t.sort_values_by(|a, _, b, _| salt(a.get()).cmp(&salt(b.get())));
        for (mut key, item) in t.iter_mut() {
            if item.is_value() {
                let d = key.leaf_decor_mut();
                let prefix = d
                    .prefix()
                    .and_then(|r| r.as_str())
                    .unwrap_or("")
                    .to_string();
                d.set_prefix(format!("{prefix}  "));
                d.set_suffix("   ");
            }
        }
    }
    doc.to_string()
}

#[test]
fn shipped_workflows_are_formatted() {
    for (path, text) in shipped() {
        let formatted = leadflow::fmt::format(&text).unwrap();
        assert_eq!(
            formatted,
            text,
            "{} is not in canonical layout",
            path.display()
        );
    }
    let (code, out, err) = leadflow_in(Path::new(env!("CARGO_MANIFEST_DIR")), &["fmt", "--check"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_scramble_formats_back_to_the_shipped_file(
        file in 0usize..64,
        draws in proptest::collection::vec(0u32..1000, 64),
        key_seed in any::<u64>(),
    ) {
        let files = shipped();
        let (path, text) = &files[file % files.len()];
        let messy = scramble(text, &draws, key_seed);
        prop_assert!(
            messy.parse::<toml::Table>().unwrap() == text.parse::<toml::Table>().unwrap(),
            "the scramble kept the data"
        );
        prop_assert_ne!(&messy, text);
        let once = leadflow::fmt::format(&messy).unwrap();
        prop_assert_eq!(&once, text, "{} did not format back", path.display());
    }
}

#[test]
fn fmt_keeps_comments_and_check_reports_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("workflows")).unwrap();
    let messy = r#"# A file header.

# Done is final.
[states.done]
final = true   # no way out
[workflow]
  initial = "open"   # where records start
# the id
id = "tiny"
[states.open]
[transitions.finish]
  to   =  "done"
by = [
  "agent",   # a person
  # "robot",
]
from = ["open"]
# end of file
"#;
    let file = dir.path().join("workflows/tiny.toml");
    std::fs::write(&file, messy).unwrap();
    let (code, out, err) = leadflow_in(dir.path(), &["fmt", "--check"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.trim(), "workflows/tiny.toml");
    assert!(err.contains("1 file(s) would be reformatted"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        messy,
        "--check writes nothing"
    );
    let (code, out, err) = leadflow_in(dir.path(), &["fmt"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("formatted workflows/tiny.toml"), "{out}");
    let formatted = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        formatted,
        r#"# A file header.

[workflow]
# the id
id = "tiny"
initial = "open"   # where records start

# Done is final.
[states.done]
final = true   # no way out
[states.open]

[transitions.finish]
from = ["open"]
to = "done"
by = [
  "agent",   # a person
  # "robot",
]
# end of file
"#
    );
    assert_eq!(comments(&formatted), comments(messy));
    let (code, out, _) = leadflow_in(dir.path(), &["fmt", "--check"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = leadflow_in(dir.path(), &["check"]);
    assert_eq!(code, 0, "{err}");
    // Not TOML: reported, left alone, exit 2.
    std::fs::write(dir.path().join("workflows/bad.toml"), "[states\n").unwrap();
    let (code, _, err) = leadflow_in(dir.path(), &["fmt", "--check"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml: not valid TOML"), "{err}");
}
