//! The reject report: every line an import refused, with its line number,
//! column, code and message, followed by the line itself, so the user can
//! fix the values in place and import the report again (columns whose name
//! starts with `_` are ignored by the import). CSV input gives a CSV
//! report with the input's header; NDJSON input an NDJSON report.

use super::source::{Format, Raw};
use std::io::Write;

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    /// The column (CSV header or JSON key) at fault; empty for the line as
    /// a whole.
    pub column: String,
    /// `E_TYPE`, `E_REQUIRED`, `E_PATTERN`, `E_IMPORT_DUPLICATE`, ...
    pub code: String,
    pub message: String,
}

/// Writes the report as lines are refused.
pub struct Report<W: Write> {
    out: Out<W>,
    header_written: bool,
}

enum Out<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Ndjson(W),
}

impl<W: Write> Report<W> {
    pub fn new(format: Format, out: W) -> Report<W> {
        let out = match format {
            Format::Csv => Out::Csv(Box::new(
                csv::WriterBuilder::new().flexible(true).from_writer(out),
            )),
            Format::Ndjson => Out::Ndjson(out),
        };
        Report {
            out,
            header_written: false,
        }
    }

    /// Append `r` with its line as read; `columns` is the input's header.
    pub fn write(&mut self, columns: &[String], r: &Reject, raw: &Raw) -> std::io::Result<()> {
        match &mut self.out {
            Out::Csv(w) => {
                if !self.header_written {
                    self.header_written = true;
                    let mut h: Vec<&str> = vec!["_line", "_column", "_code", "_message"];
                    h.extend(columns.iter().map(String::as_str));
                    w.write_record(&h)?;
                }
                let line = r.line.to_string();
                let mut rec: Vec<&str> = vec![&line, &r.column, &r.code, &r.message];
                match raw {
                    // A short line is padded to the header, so the report
                    // imports again once its values are fixed.
                    Raw::Csv(cells) => {
                        rec.extend(cells.iter().map(String::as_str));
                        rec.extend((cells.len()..columns.len()).map(|_| ""));
                    }
                    Raw::Text(t) => rec.push(t),
                    Raw::Json(_) => {}
                }
                w.write_record(&rec)?;
            }
            Out::Ndjson(w) => {
                let mut o = serde_json::Map::new();
                o.insert("_line".into(), r.line.into());
                o.insert("_column".into(), r.column.clone().into());
                o.insert("_code".into(), r.code.clone().into());
                o.insert("_message".into(), r.message.clone().into());
                match raw {
                    Raw::Json(m) => o.extend(m.iter().map(|(k, v)| (k.clone(), v.clone()))),
                    Raw::Text(t) => {
                        o.insert("_raw".into(), t.clone().into());
                    }
                    Raw::Csv(_) => {}
                }
                let text = serde_json::Value::Object(o).to_string();
                w.write_all(text.as_bytes())?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> std::io::Result<W> {
        match self.out {
            Out::Csv(w) => w
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string())),
            Out::Ndjson(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }
}
