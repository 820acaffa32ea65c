//! What a file declares, read from its text: the `[states.x]`,
//! `[fields.x]`, `[transitions.x]`, `[timers.x]` tables of a workflow file
//! with the span of each name, a workflow's id, a scenario's workflow,
//! the `fn`s of a rules module and the roles named anywhere. Read from the
//! text (not the loaded model) so that completion, definition and rename
//! keep working while the file being edited does not load.

use std::collections::HashSet;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    State,
    Field,
    Transition,
    Timer,
    View,
    Kpi,
    Report,
}

impl Kind {
    pub fn section(self) -> &'static str {
        match self {
            Kind::State => "states",
            Kind::Field => "fields",
            Kind::Transition => "transitions",
            Kind::Timer => "timers",
            Kind::View => "views",
            Kind::Kpi => "kpis",
            Kind::Report => "reports",
        }
    }
    fn from_section(s: &str) -> Option<Kind> {
        Some(match s {
            "states" => Kind::State,
            "fields" => Kind::Field,
            "transitions" => Kind::Transition,
            "timers" => Kind::Timer,
            "views" => Kind::View,
            "kpis" => Kind::Kpi,
            "reports" => Kind::Report,
            _ => return None,
        })
    }
}

/// A name declared by a table header, with the span of the name.
#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    pub kind: Kind,
    pub name: String,
    pub span: Range<usize>,
}

/// The lines of `text` (with their newline) and the byte offset of each.
pub fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0, |at, line| {
        let start = *at;
        *at += line.len();
        Some((start, line))
    })
}

/// Every `[section.name]` (or `[section.name.sub]`, `[[section.name.x]]`)
/// header of a workflow file, first occurrence of each name.
pub fn declarations(text: &str) -> Vec<Decl> {
    let mut out: Vec<Decl> = Vec::new();
    // First declaration wins; a set, not a search of `out`, keeps a
    // 4,000-declaration file linear (the search made every completion
    // quadratic).
    let mut seen: HashSet<(Kind, &str)> = HashSet::new();
    for (start, line) in lines(text) {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let inner = trimmed.trim_start_matches('[');
        if inner.len() == trimmed.len() {
            continue;
        }
        let skip = indent + (trimmed.len() - inner.len());
        let Some(close) = inner.find(']') else {
            continue;
        };
        let mut parts = inner[..close].splitn(3, '.');
        let (Some(section), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(kind) = Kind::from_section(section.trim()) else {
            continue;
        };
        let lead = name.len() - name.trim_start().len();
        let name_q = name.trim();
        let name = name_q.trim_matches('"');
        if name.is_empty() || !seen.insert((kind, name)) {
            continue;
        }
        let name_start =
            start + skip + section.len() + 1 + lead + usize::from(name_q.starts_with('"'));
        out.push(Decl {
            kind,
            name: name.to_string(),
            span: name_start..name_start + name.len(),
        });
    }
    out
}

/// The value of a top-level or `[table]` key `key = "value"` (first one).
pub fn string_value(text: &str, table: Option<&str>, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            current = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        let in_table = match table {
            Some(t) => current == t,
            None => current.is_empty(),
        };
        if !in_table {
            continue;
        }
        let Some(rest) = l.strip_prefix(key) else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let v = rest.trim().strip_prefix('"')?;
        return v.find('"').map(|e| v[..e].to_string());
    }
    None
}

/// The id of a workflow file (`[workflow] id = "..."`).
pub fn workflow_id(text: &str) -> Option<String> {
    string_value(text, Some("workflow"), "id")
}

/// The workflow a scenario file replays (`workflow = "..."` at the top).
pub fn scenario_workflow(text: &str) -> Option<String> {
    string_value(text, None, "workflow")
}

/// The functions a rules module defines: name, parameter count, span of
/// the name.
pub fn functions(text: &str) -> Vec<(String, usize, Range<usize>)> {
    let mut out = Vec::new();
    for (start, line) in lines(text) {
        let t = line.trim_start();
        let t = t.strip_prefix("private ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let params = rest
            .find('(')
            .and_then(|o| rest[o + 1..].find(')').map(|c| &rest[o + 1..o + 1 + c]))
            .map_or(0, |p| p.split(',').filter(|a| !a.trim().is_empty()).count());
        let Some(rel) = line.find(&format!("{name}(")).or_else(|| line.find(&name)) else {
            continue;
        };
        out.push((name.clone(), params, start + rel..start + rel + name.len()));
    }
    out
}

/// Role names used in a file: the strings of `by = [...]` and `role = "..."`.
pub fn roles(text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let l = line.trim();
        for key in ["by", "role", "roles"] {
            let Some(rest) = l.strip_prefix(key) else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix('=') else {
                continue;
            };
            for (i, part) in rest.split('"').enumerate() {
                // `assignee.manager`, `area.<role>`: relations, not roles.
                if i % 2 == 1
                    && !part.is_empty()
                    && !part.contains('.')
                    && !out.iter().any(|r| r == part)
                {
                    out.push(part.to_string());
                }
            }
        }
    }
    out.sort();
}

/// Spans of every occurrence of `name` as a whole quoted string
/// (`"name"`, also `\"name\"` inside an expression string).
pub fn quoted(text: &str, name: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for pat in [format!("\"{name}\""), format!("\\\"{name}\\\"")] {
        let inner_off = if pat.starts_with('\\') { 2 } else { 1 };
        let mut from = 0;
        while let Some(i) = text[from..].find(&pat) {
            let s = from + i + inner_off;
            if !out.contains(&(s..s + name.len())) {
                out.push(s..s + name.len());
            }
            from = from + i + pat.len();
        }
    }
    out.sort_by_key(|r| r.start);
    out
}

/// Spans of `name` after `prefix` as a whole word: `lead.name`.
pub fn after(text: &str, prefix: &str, name: &str) -> Vec<Range<usize>> {
    let pat = format!("{prefix}{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(&pat) {
        let s = from + i;
        let end = s + pat.len();
        let before_ok = s == 0
            || !text[..s]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let after_ok = !text[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if before_ok && after_ok {
            out.push(s + prefix.len()..end);
        }
        from = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WF: &str = "[workflow]\nid = \"demo\"\n\n[fields.phone]\ntype = \"string\"\n[states.new]\n[states.\"won\"]\n[states.new.on_enter]\n[transitions.win]\nfrom = [\"new\"]\nto = \"won\"\nguard = \"lead.phone != \\\"\\\" && lead.phones == 1\"\n";

    #[test]
    fn headers_declare_names_with_their_spans() {
        let d = declarations(WF);
        let names: Vec<(Kind, &str)> = d.iter().map(|d| (d.kind, d.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (Kind::Field, "phone"),
                (Kind::State, "new"),
                (Kind::State, "won"),
                (Kind::Transition, "win")
            ]
        );
        for x in &d {
            assert_eq!(&WF[x.span.clone()], x.name);
        }
        assert_eq!(workflow_id(WF).as_deref(), Some("demo"));
    }

    #[test]
    fn occurrences() {
        // `[states."won"]` and `to = "won"`.
        assert_eq!(quoted(WF, "won").len(), 2);
        assert_eq!(after(WF, "lead.", "phone").len(), 1);
        let f = functions("fn a(x, y) { 1 }\nprivate fn b() { }\n");
        assert_eq!((f[0].0.as_str(), f[0].1), ("a", 2));
        assert_eq!((f[1].0.as_str(), f[1].1), ("b", 0));
    }
}
