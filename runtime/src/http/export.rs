//! `GET /v1/records?format=csv|ndjson` and `GET
//! /v1/views/{workflow}/{view}?format=csv|ndjson`: every matching row,
//! streamed (issue 17, section 3). The query is the one the JSON pages
//! run, walked by keyset [`PAGE`] rows at a time (each page one store
//! query, written out before the next is read: memory stays flat), with the
//! caller's visibility in the query and each row redacted by the same
//! `records::view` as `GET /v1/records/{id}`.
//!
//! Columns: for records, those of `leadflow export` (`_id`, `_state`,
//! `_assignee`, `_created_at`, `_updated_at`, `_redacted`, then every field
//! of the workflow), so the file imports into another tenant as the same
//! records; for a view, the view's own columns.

use super::error::ApiError;
use super::records::{version_of, view, RecordView};
use super::state::{Caller, Tenant};
use crate::bulk::export::cell;
use crate::sql::query::{Query as RQuery, RecordQuery};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use leadflow_engine::Workflow;
use std::sync::Arc;

/// Rows per store query of an export (and of a bulk operation's selection).
pub const PAGE: usize = 500;

/// The serialisations of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

/// Take `format` out of the query: `None` for JSON pages (`format=json`
/// or none), else the export format; anything else is 400.
pub fn take_format(q: &mut Vec<(String, String)>) -> Result<Option<Format>, ApiError> {
    let mut out = None;
    let mut seen = false;
    let mut err = None;
    q.retain(|(k, v)| {
        if k != "format" {
            return true;
        }
        if seen {
            err = Some(ApiError::bad_request(
                "`format` is given twice (it takes one value)",
            ));
        }
        seen = true;
        match v.as_str() {
            "json" => out = None,
            "csv" => out = Some(Format::Csv),
            "ndjson" => out = Some(Format::Ndjson),
            _ => {
                err = Some(ApiError::bad_request(
                    "format: json (pages, the default), csv or ndjson (every row, streamed)",
                ))
            }
        }
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// An export streams every row from the first: no cursor, no count.
pub fn refuse_paging(after: bool, count: bool) -> Result<(), ApiError> {
    if after || count {
        return Err(ApiError::bad_request(
            "`after` and `count` page JSON answers: an export (format=csv or ndjson) streams every row",
        ));
    }
    Ok(())
}

/// What the rows are written as.
pub enum Columns {
    /// A workflow's records, as `leadflow export` writes them.
    Records(Arc<Workflow>),
    /// A view's columns.
    View(Vec<String>),
}

const META: [&str; 6] = [
    "_id",
    "_state",
    "_assignee",
    "_created_at",
    "_updated_at",
    "_redacted",
];

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl Columns {
    fn header(&self) -> Vec<String> {
        match self {
            Columns::Records(wf) => META
                .iter()
                .map(|s| s.to_string())
                .chain(wf.fields.iter().map(|f| f.name.clone()))
                .collect(),
            Columns::View(cols) => cols.clone(),
        }
    }

    /// One row as (column, value) pairs.
    fn row(
        &self,
        v: &RecordView,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(String, serde_json::Value)> {
        use serde_json::Value as J;
        let field = |name: &str| v.fields.get(name).cloned().unwrap_or(J::Null);
        match self {
            Columns::Records(wf) => {
                let mut out = vec![
                    ("_id".to_string(), J::from(v.id)),
                    ("_state".to_string(), J::from(v.state.clone())),
                    (
                        "_assignee".to_string(),
                        v.assignee.clone().map_or(J::Null, J::from),
                    ),
                    ("_created_at".to_string(), J::from(ts(v.created_at))),
                    ("_updated_at".to_string(), J::from(ts(v.updated_at))),
                    ("_redacted".to_string(), J::from(v.redacted.clone())),
                ];
                out.extend(wf.fields.iter().map(|f| (f.name.clone(), field(&f.name))));
                out
            }
            Columns::View(cols) => cols
                .iter()
                .map(|c| {
                    let value = match c.as_str() {
                        "id" => J::from(v.id),
                        "state" => J::from(v.state.clone()),
                        "assignee" => v.assignee.clone().map_or(J::Null, J::from),
                        "created_at" => J::from(ts(v.created_at)),
                        "updated_at" => J::from(ts(v.updated_at)),
                        "entered_at" => J::from(ts(v.entered_at)),
                        "age_days" => J::from((now - v.created_at).num_days()),
                        name => field(name),
                    };
                    (c.clone(), value)
                })
                .collect(),
        }
    }
}

/// Render `rows` (and the header first, for CSV, if `header`).
fn render(
    cols: &Columns,
    fmt: Format,
    rows: &[RecordView],
    header: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>, std::io::Error> {
    match fmt {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .from_writer(Vec::new());
            if header {
                w.write_record(cols.header())?;
            }
            for v in rows {
                let cells: Vec<String> = cols
                    .row(v, now)
                    .iter()
                    .map(|(k, val)| match (k.as_str(), val) {
                        ("_redacted", serde_json::Value::Array(a)) => a
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(";"),
                        _ => cell(val),
                    })
                    .collect();
                w.write_record(&cells)?;
            }
            w.into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
        Format::Ndjson => {
            let mut out = Vec::new();
            for v in rows {
                let o: serde_json::Map<String, serde_json::Value> = cols
                    .row(v, now)
                    .into_iter()
                    .filter(|(_, val)| !val.is_null())
                    .collect();
                serde_json::to_writer(&mut out, &o)?;
                out.push(b'\n');
            }
            Ok(out)
        }
    }
}

/// One page of `q` after `after`: the hits and whether more follow.
pub async fn next_page(
    t: &Tenant,
    q: &mut RQuery,
) -> Result<(Vec<crate::sql::query::Hit>, bool), crate::backend::Error> {
    q.limit = PAGE;
    let mut rows = t.backend.query(q).await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    if let Some(h) = rows.last() {
        q.after = Some(h.cursor.clone());
    }
    Ok((rows, more))
}

/// Stream every row of `q` for `caller`.
pub fn stream(t: Arc<Tenant>, caller: Caller, q: RQuery, cols: Columns, fmt: Format) -> Response {
    let now = chrono::Utc::now();
    let cols = Arc::new(cols);
    // (query, header written, done)
    let state = (q, false, false);
    let body = futures_util::stream::unfold(state, move |(mut q, started, done)| {
        let (t, caller, cols) = (t.clone(), caller.clone(), cols.clone());
        async move {
            if done {
                return None;
            }
            let (hits, more) = match next_page(&t, &mut q).await {
                Ok(p) => p,
                Err(e) => {
                    // The status is sent: the body is cut short instead.
                    tracing::error!(tenant = %t.id, error = %e, "export: a page failed");
                    return Some((
                        Err(std::io::Error::other("export stopped")),
                        (q, true, true),
                    ));
                }
            };
            let rows: Vec<RecordView> = hits
                .into_iter()
                .map(|h| {
                    let wf = version_of(&t, &h.record);
                    view(&caller, wf.as_deref(), h.record)
                })
                .collect();
            let chunk = render(&cols, fmt, &rows, !started, now).map(Bytes::from);
            Some((chunk, (q, true, !more)))
        }
    });
    let ct = match fmt {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
    };
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}
