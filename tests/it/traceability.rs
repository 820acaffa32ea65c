//! Every rule ID of the domain digest appears in the traceability tables, and
//! every scenario file a table names exists.

use std::collections::BTreeSet;

fn rule_ids(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if let Some((prefix, n)) = word.split_once('-') {
            if ["OPL", "QP", "ASLM", "SOC", "CC"].contains(&prefix)
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
            {
                ids.insert(word.to_string());
            }
        }
    }
    ids
}

fn tables() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/traceability");
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    all
}

#[test]
fn every_rule_of_the_domain_is_traced() {
    // The digest lives outside the repository; the list below is its rule IDs,
    // so the test also runs from a clean clone.
    let domain = "OPL-1 OPL-2 OPL-3 OPL-4 OPL-5 OPL-6 OPL-7 OPL-8 OPL-9 OPL-10 OPL-11 OPL-12 OPL-13 OPL-14 \
        OPL-20 OPL-21 OPL-22 OPL-23 OPL-24 QP-1 QP-2 QP-3 QP-4 QP-5 QP-6 QP-7 \
        ASLM-1 ASLM-2 ASLM-3 ASLM-4 ASLM-5 ASLM-6 ASLM-7 ASLM-8 ASLM-9 ASLM-10 ASLM-11 ASLM-12 ASLM-13 ASLM-14 ASLM-15 \
        SOC-1 SOC-2 SOC-3 SOC-4 SOC-5 SOC-6 SOC-7 SOC-8 SOC-9 CC-1 CC-2 CC-3 CC-4 CC-5 CC-6 CC-7";
    let traced = rule_ids(&tables());
    let missing: Vec<_> = rule_ids(domain).difference(&traced).cloned().collect();
    assert!(
        missing.is_empty(),
        "rules missing from docs/traceability/: {missing:?}"
    );
}

#[test]
fn scenario_files_named_in_the_tables_exist() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut known = walk(&std::path::Path::new(root).join("tests/scenarios"));
    known.extend(walk(&std::path::Path::new(root).join("workflows")));
    known.extend(walk(&std::path::Path::new(root).join("calendars")));
    let text = tables();
    let missing: Vec<&str> = text
        .split(|c: char| {
            c == '`' || c == '|' || c == ',' || c == '(' || c == ')' || c.is_whitespace()
        })
        .filter(|w| w.ends_with(".toml") && !w.contains('*'))
        .filter(|w| !known.contains(w.rsplit('/').next().unwrap_or(w)))
        .collect();
    assert!(
        missing.is_empty(),
        "files named in docs/traceability/ but missing: {missing:?}"
    );
}

fn walk(dir: &std::path::Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if let Some(n) = p.file_name() {
            out.insert(n.to_string_lossy().to_string());
        }
    }
    out
}
