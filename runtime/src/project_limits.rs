//! Size limits of a tenant's project (`[tenants.<id>.limits]`), checked on
//! the files' text before the engine loads them, so that an oversize edit
//! is refused (code `E060`, located at what is over) without costing the
//! daemon the time and memory of loading it. The last good versions keep
//! serving.

use leadflow_engine::{Diagnostic, Project, SourceFile};
use serde::Deserialize;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// The code of every finding here.
pub const CODE: &str = "E060";

/// At most this many `E060` findings per file: one is enough to act on.
const PER_FILE: usize = 5;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectLimits {
    /// Largest workflow, rules or calendar file, in bytes.
    pub max_file_bytes: usize,
    /// States of one workflow.
    pub max_states: usize,
    /// Transitions of one workflow.
    pub max_transitions: usize,
    /// Largest rules module (`rules/*.rhai`), in bytes.
    pub max_script_bytes: usize,
    /// Longest text value of a workflow file (a title, a description, an
    /// inline script), in characters.
    pub max_text_chars: usize,
}

impl Default for ProjectLimits {
    fn default() -> Self {
        ProjectLimits {
            max_file_bytes: 1024 * 1024,
            max_states: 2_000,
            max_transitions: 10_000,
            max_script_bytes: 64 * 1024,
            max_text_chars: 10_000,
        }
    }
}

/// Every limit the project is over.
pub fn check(p: &Project, l: &ProjectLimits) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for f in p.workflows.iter().chain(&p.rules).chain(&p.calendars) {
        if f.text.len() > l.max_file_bytes {
            out.push(over(
                f,
                0..0,
                format!(
                    "the file is {} bytes, over the limit of {} (`max_file_bytes`)",
                    f.text.len(),
                    l.max_file_bytes
                ),
            ));
        }
    }
    for f in &p.rules {
        if f.text.len() > l.max_script_bytes && f.text.len() <= l.max_file_bytes {
            out.push(over(
                f,
                0..0,
                format!(
                    "the rules module is {} bytes, over the limit of {} (`max_script_bytes`)",
                    f.text.len(),
                    l.max_script_bytes
                ),
            ));
        }
    }
    for f in p
        .workflows
        .iter()
        .filter(|f| f.text.len() <= l.max_file_bytes)
    {
        workflow(f, l, &mut out);
    }
    out
}

fn over(f: &SourceFile, span: Range<usize>, message: String) -> Diagnostic {
    Diagnostic::new(CODE, f, span, message)
}

fn workflow(f: &SourceFile, l: &ProjectLimits, out: &mut Vec<Diagnostic>) {
    // A file that is not TOML is the engine's to report (E001).
    let Ok(doc) = DeTable::parse(&f.text) else {
        return;
    };
    let before = out.len();
    for (table, max, key) in [
        ("states", l.max_states, "max_states"),
        ("transitions", l.max_transitions, "max_transitions"),
    ] {
        let Some((_, v)) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table) else {
            continue;
        };
        let DeValue::Table(t) = v.get_ref() else {
            continue;
        };
        if t.len() > max {
            // Point at the first one over the limit, in file order.
            let mut spans: Vec<Range<usize>> = t.keys().map(|k| k.span()).collect();
            spans.sort_by_key(|s| s.start);
            out.push(over(
                f,
                spans[max].clone(),
                format!(
                    "the workflow has {} {table}, over the limit of {max} (`{key}`)",
                    t.len()
                ),
            ));
        }
    }
    let mut texts = Vec::new();
    long_texts(doc.get_ref(), l.max_text_chars, &mut texts);
    texts.sort_by_key(|(s, _)| s.start);
    for (span, chars) in texts {
        if out.len() - before >= PER_FILE {
            break;
        }
        out.push(over(
            f,
            span,
            format!(
                "a text of {chars} characters, over the limit of {} (`max_text_chars`)",
                l.max_text_chars
            ),
        ));
    }
}

fn long_texts(t: &DeTable<'_>, max: usize, out: &mut Vec<(Range<usize>, usize)>) {
    for v in t.values() {
        long_value(v, max, out);
    }
}

fn long_value(v: &toml::Spanned<DeValue<'_>>, max: usize, out: &mut Vec<(Range<usize>, usize)>) {
    match v.get_ref() {
        // Bytes bound characters from above: count only the long ones.
        DeValue::String(s) if s.len() > max => {
            let chars = s.chars().count();
            if chars > max {
                out.push((v.span(), chars));
            }
        }
        DeValue::Array(items) => {
            for x in items {
                long_value(x, max, out);
            }
        }
        DeValue::Table(t) => long_texts(t, max, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> Project {
        Project {
            workflows: vec![SourceFile::new("workflows/w.toml", text)],
            ..Project::default()
        }
    }

    #[test]
    fn a_project_within_the_limits_passes() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../workflows/aslm.toml"
        ))
        .unwrap();
        assert!(check(&project(&text), &ProjectLimits::default()).is_empty());
    }

    #[test]
    fn states_transitions_texts_and_files_over_the_limits_are_located() {
        let mut text = String::from("[workflow]\nid = \"w\"\ntitle = \"");
        text.push_str(&"t".repeat(30));
        text.push_str("\"\n");
        for i in 0..4 {
            text.push_str(&format!("[states.s{i}]\n"));
        }
        text.push_str("[transitions.a]\nfrom = [\"s0\"]\n");
        let l = ProjectLimits {
            max_states: 3,
            max_transitions: 1,
            max_text_chars: 20,
            ..ProjectLimits::default()
        };
        let d = check(&project(&text), &l);
        let msgs: Vec<String> = d
            .iter()
            .map(|d| format!("{}:{} {} {}", d.line, d.column, d.code, d.message))
            .collect();
        assert_eq!(
            msgs,
            [
                "7:9 E060 the workflow has 4 states, over the limit of 3 (`max_states`)",
                "3:9 E060 a text of 30 characters, over the limit of 20 (`max_text_chars`)",
            ],
            "{d:#?}"
        );
        let small = ProjectLimits {
            max_file_bytes: 10,
            ..ProjectLimits::default()
        };
        let d = check(&project(&text), &small);
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("`max_file_bytes`"), "{d:?}");
        assert!(d[0].is_error());
    }
}
