//! Reading an import's lines, streaming: CSV with a header row (the `csv`
//! crate, one record buffer reused) or NDJSON (one JSON object a line).
//! Either way a line becomes cells (column number, text); NDJSON numbers
//! and booleans are written as text and parsed by field type like CSV cells,
//! lists are joined with `;`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The two input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// NDJSON for `.ndjson`/`.jsonl`/`.json` names, CSV otherwise.
    pub fn from_name(name: &str) -> Format {
        let n = name.to_lowercase();
        if n.ends_with(".ndjson") || n.ends_with(".jsonl") || n.ends_with(".json") {
            Format::Ndjson
        } else {
            Format::Csv
        }
    }
}

/// One line of the input.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in the file (a CSV record spanning lines: its
    /// first line).
    pub number: u64,
    /// Non-empty cells: (column number, text).
    pub cells: Vec<(usize, String)>,
    /// The line as read, for the reject report: CSV cells in header order,
    /// or the NDJSON object.
    pub raw: Raw,
}

#[derive(Debug, Clone)]
pub enum Raw {
    Csv(Vec<String>),
    Json(serde_json::Map<String, serde_json::Value>),
    /// A line that could not be read at all (its text, lossy).
    Text(String),
}

/// A line that cannot be read: bad UTF-8, bad JSON, a CSV record of the
/// wrong length.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub number: u64,
    pub message: String,
    pub raw: Raw,
}

/// Counts the bytes read (progress and ETA).
pub struct Counting<R> {
    inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R> Counting<R> {
    pub fn new(inner: R) -> (Counting<R>, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            Counting {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

/// A reader of lines.
pub enum Source<R: Read> {
    Csv {
        reader: csv::Reader<R>,
        headers: Vec<String>,
        record: csv::StringRecord,
    },
    Ndjson {
        reader: BufReader<R>,
        columns: Vec<String>,
        index: HashMap<String, usize>,
        number: u64,
        buf: Vec<u8>,
    },
}

/// Why the input cannot be read at all (no header row, an I/O error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl<R: Read> Source<R> {
    pub fn open(format: Format, input: R) -> Result<Source<R>, SourceError> {
        match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .trim(csv::Trim::Headers)
                    .from_reader(input);
                let headers: Vec<String> = reader
                    .headers()
                    .map_err(|e| SourceError(format!("the header row cannot be read: {e}")))?
                    .iter()
                    .map(|h| h.trim_start_matches('\u{feff}').to_string())
                    .collect();
                if headers.iter().all(|h| h.is_empty()) {
                    return Err(SourceError("the file has no header row".into()));
                }
                Ok(Source::Csv {
                    reader,
                    headers,
                    record: csv::StringRecord::new(),
                })
            }
            Format::Ndjson => Ok(Source::Ndjson {
                reader: BufReader::with_capacity(1 << 16, input),
                columns: Vec::new(),
                index: HashMap::new(),
                number: 0,
                buf: Vec::new(),
            }),
        }
    }

    /// Column names so far (CSV: the header row; NDJSON: keys in order of
    /// first appearance).
    pub fn columns(&self) -> &[String] {
        match self {
            Source::Csv { headers, .. } => headers,
            Source::Ndjson { columns, .. } => columns,
        }
    }

    /// The next line; `None` at the end. An I/O error ends the input.
    pub fn next_line(&mut self) -> Option<Result<Result<Line, Unreadable>, SourceError>> {
        match self {
            Source::Csv {
                reader,
                headers,
                record,
            } => match reader.read_record(record) {
                Ok(false) => None,
                Ok(true) => {
                    let number = record.position().map_or(0, |p| p.line());
                    let raw: Vec<String> = record.iter().map(str::to_string).collect();
                    if record.len() != headers.len() {
                        return Some(Ok(Err(Unreadable {
                            number,
                            message: format!(
                                "{} cells where the header has {} columns",
                                record.len(),
                                headers.len()
                            ),
                            raw: Raw::Csv(raw),
                        })));
                    }
                    let cells = raw
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| !c.trim().is_empty())
                        .map(|(i, c)| (i, c.clone()))
                        .collect();
                    Some(Ok(Ok(Line {
                        number,
                        cells,
                        raw: Raw::Csv(raw),
                    })))
                }
                Err(e) => match e.kind() {
                    csv::ErrorKind::Utf8 { pos, .. } => {
                        let number = pos.as_ref().map_or(0, |p| p.line());
                        Some(Ok(Err(Unreadable {
                            number,
                            message: "the line is not valid UTF-8".into(),
                            raw: Raw::Csv(Vec::new()),
                        })))
                    }
                    _ => Some(Err(SourceError(format!("reading the CSV input: {e}")))),
                },
            },
            Source::Ndjson {
                reader,
                columns,
                index,
                number,
                buf,
            } => loop {
                buf.clear();
                match reader.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) => return Some(Err(SourceError(format!("reading the input: {e}")))),
                }
                *number += 1;
                let text = String::from_utf8_lossy(buf);
                if text.trim().is_empty() {
                    continue;
                }
                let obj = match serde_json::from_slice::<serde_json::Value>(buf) {
                    Ok(serde_json::Value::Object(o)) => o,
                    Ok(_) => {
                        return Some(Ok(Err(Unreadable {
                            number: *number,
                            message: "the line is not a JSON object".into(),
                            raw: Raw::Text(text.trim_end().to_string()),
                        })))
                    }
                    Err(e) => {
                        return Some(Ok(Err(Unreadable {
                            number: *number,
                            message: format!("the line is not JSON: {e}"),
                            raw: Raw::Text(text.trim_end().to_string()),
                        })))
                    }
                };
                let mut cells = Vec::with_capacity(obj.len());
                for (k, v) in &obj {
                    let i = *index.entry(k.clone()).or_insert_with(|| {
                        columns.push(k.clone());
                        columns.len() - 1
                    });
                    if let Some(t) = cell_text(v) {
                        cells.push((i, t));
                    }
                }
                return Some(Ok(Ok(Line {
                    number: *number,
                    cells,
                    raw: Raw::Json(obj),
                })));
            },
        }
    }
}

/// The text of a JSON value as a cell; `None` for null and "".
fn cell_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    let t = match v {
        J::Null => return None,
        J::String(s) => s.clone(),
        J::Array(a) => a.iter().filter_map(cell_text).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    };
    (!t.trim().is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: Format, text: &str) -> Vec<Result<Line, Unreadable>> {
        let mut s = Source::open(format, text.as_bytes()).unwrap();
        std::iter::from_fn(|| s.next_line().map(|r| r.unwrap())).collect()
    }

    #[test]
    fn csv_lines_keep_their_numbers_and_cells() {
        let lines = all(Format::Csv, "a,b\n1,\"x\ny\"\n,3\n4\n");
        let ok: Vec<_> = lines.iter().filter_map(|l| l.as_ref().ok()).collect();
        assert_eq!(ok[0].number, 2);
        assert_eq!(ok[0].cells, vec![(0, "1".into()), (1, "x\ny".into())]);
        assert_eq!(ok[1].number, 4);
        assert_eq!(ok[1].cells, vec![(1, "3".into())]);
        let bad = lines[2].as_ref().unwrap_err();
        assert_eq!(bad.number, 5);
        assert!(bad.message.contains("1 cells"), "{}", bad.message);
    }

    #[test]
    fn ndjson_lines_become_cells() {
        let lines = all(
            Format::Ndjson,
            "{\"a\":1,\"b\":true}\n\n{\"b\":\"x\",\"c\":[\"p\",\"q\"]}\nnot json\n[1]\n",
        );
        let l1 = lines[0].as_ref().unwrap();
        assert_eq!(l1.cells, vec![(0, "1".into()), (1, "true".into())]);
        let l3 = lines[1].as_ref().unwrap();
        assert_eq!(l3.number, 3);
        assert_eq!(l3.cells, vec![(1, "x".into()), (2, "p;q".into())]);
        assert_eq!(lines[2].as_ref().unwrap_err().number, 4);
        assert!(lines[3].as_ref().unwrap_err().message.contains("object"));
    }
}
