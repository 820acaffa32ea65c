//! `leadflow check` over the views (docs/diagnostics.md#w080): a view whose
//! filter or sort reads a field that is not `indexed = true` (W080: its
//! list scans the workflow's records), a view whose filter the store cannot
//! run as a query (W081: `GET /v1/views/{workflow}/{view}` answers
//! `E_VIEW_FILTER`), and a queue whose filter the store cannot run (W082:
//! `POST /v1/queues/{workflow}/{queue}/next` answers `E_QUEUE_FILTER`).

use crate::sql::query::view::{fields_of, translate};
use leadflow_engine::{Diagnostic, SourceFile, WorkflowSet};

/// Where `key` of view `view` is written (else the view's header, else the
/// file's start).
fn at(text: &str, view: &str, key: &str) -> std::ops::Range<usize> {
    at_in(text, "views", view, key)
}

/// [`at`] in any kind of table (`queues`).
fn at_in(text: &str, section: &str, view: &str, key: &str) -> std::ops::Range<usize> {
    let header = format!("[{section}.{view}]");
    let Some(start) = text.find(&header) else {
        return 0..0;
    };
    let body = &text[start + header.len()..];
    let end = body.find("\n[").unwrap_or(body.len());
    let section = &body[..end];
    let mut offset = 0;
    for line in section.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            let pos = start + header.len() + offset + (line.len() - t.len());
            return pos..pos + line.trim_end().len() - (line.len() - t.len());
        }
        offset += line.len();
    }
    start..start + header.len()
}

/// The view findings of the loaded workflows.
pub fn check(set: &WorkflowSet, files: &[SourceFile]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let now = chrono::DateTime::UNIX_EPOCH;
    for wf in set.workflows.values() {
        let Some(f) = files.iter().find(|f| f.path == wf.file) else {
            continue;
        };
        for v in &wf.views {
            let mut read: Vec<(String, &str)> = Vec::new();
            if let Some(src) = &v.filter_source {
                match translate(wf, src, now, "actor") {
                    Ok(filter) => read.extend(fields_of(&filter).into_iter().map(|n| (n, "filter"))),
                    Err(reason) => out.push(Diagnostic::new(
                        "W081",
                        f,
                        at(&f.text, &v.name, "filter"),
                        format!(
                            "view `{}`: {reason}; the store cannot run it, so GET /v1/views/{}/{} answers E_VIEW_FILTER",
                            v.name, wf.id, v.name
                        ),
                    )),
                }
            }
            if let Some(s) = &v.sort {
                let name = s.trim_start_matches('-');
                if wf.field(name).is_some() {
                    read.push((name.to_string(), "sort"));
                }
            }
            for (name, key) in read {
                let Some(id) = wf.field(&name) else { continue };
                let field = &wf.fields[id];
                if field.indexed || field.ty == leadflow_engine::FieldType::List {
                    continue;
                }
                out.push(Diagnostic::new(
                    "W080",
                    f,
                    at(&f.text, &v.name, key),
                    format!(
                        "view `{}` {} field `{name}`, which is not indexed: its list reads every record of the workflow",
                        v.name,
                        if key == "sort" { "sorts by" } else { "filters on" }
                    ),
                ));
            }
        }
        for q in &wf.queues {
            let Some(src) = &q.filter_source else {
                continue;
            };
            if let Err(reason) = translate(wf, src, now, "actor") {
                out.push(Diagnostic::new(
                    "W082",
                    f,
                    at_in(&f.text, "queues", &q.name, "filter"),
                    format!(
                        "queue `{}`: {reason}; the store cannot run it, so POST /v1/queues/{}/{}/next answers E_QUEUE_FILTER",
                        q.name, wf.id, q.name
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_point_at_the_key_of_the_view() {
        let text = "[views.a]\ntitle = \"A\"\nsort = \"x\"\n\n[views.b]\nfilter = \"lead.y == 1\"\nsort = \"-x\"\n";
        let r = super::at(text, "b", "sort");
        assert_eq!(&text[r], "sort = \"-x\"");
        let r = super::at(text, "a", "filter");
        assert_eq!(&text[r], "[views.a]");
        assert_eq!(super::at(text, "c", "sort"), 0..0);
    }
}
