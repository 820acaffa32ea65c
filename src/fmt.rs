//! The canonical layout of a workflow file (`leadflow fmt`), on toml_edit's
//! syntax tree so comments and the author's values stay as written.
//!
//! - Tables in the order of docs/workflow-format.md: `[workflow]`,
//!   `[fields.*]`, `[customer]`, `[states.*]`, `[transitions.*]`, `[timers.*]`,
//!   `[views.*]`, `[kpis.*]`, `[reports.*]`; within one kind, the author's
//!   order (it is the order of a portal's columns and of the graph).
//!   Unknown tables follow, as written.
//! - Keys of a table in the documented order ([`KEY_ORDER`]); unknown keys
//!   after them, as written. A comment above a key or a table moves with it.
//! - `key = value` with one space around `=`, no indentation before a key
//!   of a table, no trailing spaces, at most one blank line in a row, a
//!   blank line before the first table of each kind, one newline at the
//!   end. Values (strings, arrays, inline effect tables) are kept verbatim.
//!
//! Formatting is idempotent, and the formatted file is the same TOML data.

use toml_edit::{DocumentMut, Item, Key, Table};

/// Top-level tables, in order.
pub const TOP_ORDER: [&str; 10] = [
    "workflow",
    "fields",
    "customer",
    "states",
    "transitions",
    "timers",
    "views",
    "queues",
    "kpis",
    "reports",
];

/// The keys of each kind of table, in order.
pub const KEY_ORDER: [(&str, &[&str]); 10] = [
    (
        "workflow",
        &[
            "id",
            "title",
            "description",
            "record",
            "initial",
            "calendar",
            "rules",
            "roles",
            "area",
            "visible_to",
            "reveal_to",
        ],
    ),
    (
        "fields",
        &[
            "title",
            "type",
            "pattern",
            "values",
            "required",
            "default",
            "pii",
            "reveal_in",
            "track",
        ],
    ),
    ("customer", &["email", "name", "language", "reveal"]),
    ("states", &["title", "final", "on_enter"]),
    (
        "transitions",
        &[
            "title", "from", "to", "by", "input", "require", "guard", "rearm", "do",
        ],
    ),
    (
        "timers",
        &["title", "in", "after", "since", "at", "fire", "do"],
    ),
    ("views", &["title", "states", "filter", "columns", "sort"]),
    (
        "queues",
        &[
            "title",
            "states",
            "filter",
            "order",
            "by",
            "calling_hours",
            "max_attempts",
            "lease",
        ],
    ),
    (
        "kpis",
        &[
            "title", "anchor", "window", "of", "where", "hit", "hits", "start", "stop", "within",
            "funnel", "target", "group_by",
        ],
    ),
    (
        "reports",
        &[
            "title", "every", "period", "anchor", "filter", "where", "group_by", "charge",
            "currency", "notify",
        ],
    ),
];

/// The canonical text of a workflow file, or the TOML parse error.
pub fn format(text: &str) -> Result<String, toml_edit::TomlError> {
    let mut doc: DocumentMut = text.parse()?;
    let root = doc.as_table_mut();
    // Every table, in its current order: (position, kind, name).
    let mut tables: Vec<(isize, usize, Vec<String>)> = Vec::new();
    for (kind_key, item) in root.iter() {
        let Some(t) = item.as_table() else { continue };
        let kind = kind_rank(kind_key);
        collect(t, kind, &mut vec![kind_key.to_string()], &mut tables);
    }
    // The comments at the top of the file, up to the last blank line before
    // the first table, stay at the top whichever table comes first now.
    let mut head = String::new();
    if let Some((_, _, path)) = tables.iter().min_by_key(|(pos, _, _)| *pos) {
        if let Some(t) = table_at(root, path) {
            let prefix = decor_text(t.decor().prefix());
            if let Some(i) = prefix.rfind("\n\n") {
                head = prefix[..i + 1].to_string();
                t.decor_mut().set_prefix(prefix[i + 2..].to_string());
            }
        }
    }
    tables.sort_by_key(|(pos, kind, _)| (*kind, *pos));
    let mut first_of_kind = None;
    for (i, (_, kind, path)) in tables.iter().enumerate() {
        let Some(t) = table_at(root, path) else {
            continue;
        };
        let pos = isize::try_from(i).unwrap_or(isize::MAX);
        t.set_position(Some(pos));
        if let Some(order) = key_order(path) {
            t.sort_values_by(|a, _, b, _| rank(order, a).cmp(&rank(order, b)));
        }
        tidy_keys(t);
        let starts_kind = first_of_kind != Some(*kind);
        first_of_kind = Some(*kind);
        let prefix = decor_text(t.decor().prefix());
        let prefix = if i == 0 {
            let own = prefix.trim_start_matches(['\n', '\r', ' ', '\t']);
            if head.trim().is_empty() {
                own.to_string()
            } else {
                format!("{head}\n{own}")
            }
        } else {
            tidy_prefix(&prefix, starts_kind)
        };
        t.decor_mut().set_prefix(prefix);
    }
    // Keys before the first table (not part of the format; kept in place).
    tidy_keys(root);
    Ok(tidy_text(&doc.to_string()))
}

/// Rank of a top-level table kind (unknown kinds last).
fn kind_rank(name: &str) -> usize {
    TOP_ORDER
        .iter()
        .position(|k| *k == name)
        .unwrap_or(TOP_ORDER.len())
}

/// The table and its sub-tables (those with a header or implicit ones).
fn collect(
    t: &Table,
    kind: usize,
    path: &mut Vec<String>,
    out: &mut Vec<(isize, usize, Vec<String>)>,
) {
    // `[fields]` is usually implicit: only its sub-tables have headers.
    let header_less = t.is_implicit() && t.iter().all(|(_, v)| v.is_table());
    if !t.is_dotted() && !header_less {
        out.push((t.position().unwrap_or(isize::MAX), kind, path.clone()));
    }
    for (k, v) in t.iter() {
        if let Some(sub) = v.as_table() {
            if !sub.is_dotted() {
                path.push(k.to_string());
                collect(sub, kind, path, out);
                path.pop();
            }
        }
    }
}

fn table_at<'a>(root: &'a mut Table, path: &[String]) -> Option<&'a mut Table> {
    let mut t = root;
    for p in path {
        t = t.get_mut(p)?.as_table_mut()?;
    }
    Some(t)
}

/// The documented key order of the table at `path`: `[workflow]`, or one
/// element of a kind (`[states.new]`).
fn key_order(path: &[String]) -> Option<&'static [&'static str]> {
    let kind = match path {
        [k] if k == "workflow" || k == "customer" => k,
        [k, _] if k != "workflow" && k != "customer" => k,
        _ => return None,
    };
    KEY_ORDER
        .iter()
        .find(|(k, _)| k == kind)
        .map(|(_, order)| *order)
}

fn rank(order: &[&str], key: &Key) -> usize {
    order
        .iter()
        .position(|k| *k == key.get())
        .unwrap_or(order.len())
}

/// `key = value` with one space around `=` and no indentation.
fn tidy_keys(t: &mut Table) {
    for (mut key, item) in t.iter_mut() {
        let Item::Value(v) = item else { continue };
        let decor = key.leaf_decor_mut();
        let prefix = decor_text(decor.prefix());
        let trimmed = prefix.trim_end_matches([' ', '\t']);
        decor.set_prefix(trimmed.to_string());
        decor.set_suffix(" ");
        v.decor_mut().set_prefix(" ");
    }
}

fn decor_text(raw: Option<&toml_edit::RawString>) -> String {
    raw.and_then(|r| r.as_str()).unwrap_or("").to_string()
}

/// The text before a table header: its comments, after one blank line if
/// the table starts a new kind or had one.
fn tidy_prefix(prefix: &str, new_kind: bool) -> String {
    let body = prefix.trim_start_matches(['\n', '\r', ' ', '\t']);
    let had_blank = prefix.len() != body.len() && prefix.contains('\n');
    if new_kind || had_blank {
        format!("\n{body}")
    } else {
        body.to_string()
    }
}

/// No trailing spaces, at most one blank line in a row, one final newline.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        format(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tables_and_keys_take_the_documented_order_and_comments_move_with_them() {
        let messy = "# head comment\n\n[states.done]\nfinal = true\n# the title\ntitle = \"Done\"\n[workflow]\ninitial  =   \"open\"\nid = \"x\"   # trailing\n[states.open]\n\n\n\n[transitions.finish]\n  to = \"done\"\nfrom = [\"open\"]\n";
        let want = "# head comment\n\n[workflow]\nid = \"x\"   # trailing\ninitial = \"open\"\n\n[states.done]\n# the title\ntitle = \"Done\"\nfinal = true\n[states.open]\n\n[transitions.finish]\nfrom = [\"open\"]\nto = \"done\"\n";
        assert_eq!(fmt(messy), want);
        assert_eq!(fmt(want), want, "idempotent");
    }
}
