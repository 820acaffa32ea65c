//! Rendering diagnostics for humans (source line and caret, rustc-style)
//! and for tools (JSON).

use codespan_reporting::diagnostic::{Diagnostic as Cs, Label, Severity as CsSev};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};
use leadflow_engine::{Diagnostic, Project, Severity};
use std::collections::HashMap;

/// Render every diagnostic with its source line; in ANSI colours if `color`.
pub fn human(project: &Project, diags: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    let mut ids = HashMap::new();
    for f in project
        .workflows
        .iter()
        .chain(&project.rules)
        .chain(&project.calendars)
    {
        ids.entry(f.path.clone())
            .or_insert_with(|| files.add(f.path.clone(), f.text.clone()));
    }
    let config = Config::default();
    let mut out = String::new();
    for d in diags {
        let sev = match d.severity {
            Severity::Error => CsSev::Error,
            Severity::Warning => CsSev::Warning,
        };
        let mut cs = Cs::new(sev).with_code(d.code).with_message(&d.message);
        if let Some(&id) = ids.get(&d.file) {
            let len = files.get(id).map(|f| f.source().len()).unwrap_or(0);
            let start = d.span.start.min(len);
            let end = d.span.end.clamp(start, len);
            cs = cs.with_labels(vec![Label::primary(id, start..end)]);
        }
        if !d.hint.is_empty() {
            cs = cs.with_notes(vec![format!("help: {}", d.hint)]);
        }
        match emit(&config, &files, &cs, color) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push_str(&format!(
                "{}:{}:{}: {}[{}]: {}\n",
                d.file,
                d.line,
                d.column,
                sev_word(d.severity),
                d.code,
                d.message
            )),
        }
    }
    out
}

fn emit(
    config: &Config,
    files: &SimpleFiles<String, String>,
    cs: &Cs<usize>,
    color: bool,
) -> Result<String, codespan_reporting::files::Error> {
    if !color {
        return term::emit_into_string(config, files, cs);
    }
    let mut buf = term::termcolor::Buffer::ansi();
    term::emit_to_write_style(&mut buf, config, files, cs)?;
    Ok(String::from_utf8_lossy(buf.as_slice()).into_owned())
}

fn sev_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

pub fn summary(workflows: usize, diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    format!("checked {workflows} workflow file(s): {errors} error(s), {warnings} warning(s)")
}
