//! `leadflow check` over the views (docs/diagnostics.md#w080): a view whose
//! filter or sort reads a field that is not `indexed = true` (W080: its
//! list scans the workflow's records), a view whose filter the store cannot
//! run as a query (W081: `GET /v1/views/{workflow}/{view}` answers
//! `E_VIEW_FILTER`), and KPIs or reports anchored on a datetime field that is
//! not indexed (W090: their period reads every record).

use crate::sql::query::view::{fields_of, translate};
use leadflow_engine::{Diagnostic, SourceFile, WorkflowSet};

/// Where `key` of view `view` is written (else the view's header, else the
/// file's start).
fn at(text: &str, view: &str, key: &str) -> std::ops::Range<usize> {
    let header = format!("[views.{view}]");
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

/// Where `[<section>.<name>]`'s `anchor` is written (else its header).
fn anchor_at(text: &str, section: &str, name: &str) -> std::ops::Range<usize> {
    let header = format!("[{section}.{name}]");
    let Some(start) = text.find(&header) else {
        return 0..0;
    };
    let body = &text[start..];
    let end = body[header.len()..]
        .find("\n[")
        .map_or(body.len(), |e| e + header.len());
    match body[..end].find("anchor") {
        Some(i) => {
            let line = body[i..end].lines().next().unwrap_or("");
            start + i..start + i + line.trim_end().len()
        }
        None => start..start + header.len(),
    }
}

/// KPIs and reports anchored on a datetime field that is not `indexed =
/// true` (W090): their query over a period reads every record of the
/// workflow instead of the period's.
fn anchors(set: &WorkflowSet, files: &[SourceFile], out: &mut Vec<Diagnostic>) {
    use leadflow_engine::measure::Moment;
    for wf in set.workflows.values() {
        let Some(f) = files.iter().find(|f| f.path == wf.file) else {
            continue;
        };
        let kpis = wf.kpis.iter().filter(|k| k.spec.is_some());
        let declared = kpis.map(|k| ("kpis", "KPI", &k.name, &k.anchor)).chain(
            wf.reports
                .iter()
                .map(|r| ("reports", "report", &r.name, &r.anchor)),
        );
        for (section, what, name, anchor) in declared {
            let Moment::Field(field) = anchor else {
                continue;
            };
            let Some(id) = wf.field(field) else { continue };
            let fd = &wf.fields[id];
            if fd.indexed || fd.ty != leadflow_engine::FieldType::Datetime {
                continue;
            }
            out.push(Diagnostic::new(
                "W090",
                f,
                anchor_at(&f.text, section, name),
                format!(
                    "{what} `{name}` is anchored on field `{field}`, which is not indexed: its query over a period reads every record of the workflow"
                ),
            ));
        }
    }
}

/// The view findings of the loaded workflows.
pub fn check(set: &WorkflowSet, files: &[SourceFile]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    anchors(set, files, &mut out);
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
