//! Scripts written in the workflow file: compiled against the workflow's
//! fields, their findings turned into diagnostics at file positions.

use super::{Names, Resolver};
use crate::diag::{Diagnostic, SourceFile};
use crate::script::{ScriptError, ScriptId, ScriptProblem, Scripts};
use std::ops::Range;
use toml::Spanned;

impl Resolver<'_> {
    /// Compile a script written as a TOML string; map script positions to
    /// file positions.
    pub(super) fn script(
        &mut self,
        s: &Spanned<String>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<ScriptId> {
        self.script_at(s.get_ref(), s.span(), names, scripts)
    }

    pub(super) fn script_at(
        &mut self,
        src: &str,
        span: Range<usize>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<ScriptId> {
        match scripts.compile_typed(src, &names.fields, &names.field_types) {
            Ok((id, problems)) => {
                for p in problems {
                    let (line, column) = p.position();
                    let at = self.script_pos(&span, line, column);
                    if let Some(d) = self.problem(&p, self.file, at, Some(names)) {
                        self.diags.push(d);
                    }
                }
                Some(id)
            }
            Err(ScriptError {
                message,
                line,
                column,
            }) => {
                let at = self.script_pos(&span, line, column);
                self.err(
                    "E008",
                    at..at + 1,
                    format!("script does not compile: {message}"),
                );
                None
            }
        }
    }

    /// The diagnostic of a script finding at byte `at` of `file` (a workflow
    /// file, or a rules module when `names` is None).
    pub(super) fn problem(
        &self,
        p: &ScriptProblem,
        file: &SourceFile,
        at: usize,
        names: Option<&Names>,
    ) -> Option<Diagnostic> {
        // A namespaced call's position is its name's: start at the namespace.
        let at = match p {
            ScriptProblem::UnknownFunction { name, .. } | ScriptProblem::Arity { name, .. } => {
                match name.rsplit_once("::") {
                    Some((ns, _)) => {
                        let prefix = format!("{ns}::");
                        at.checked_sub(prefix.len())
                            .filter(|&s| file.text.get(s..at) == Some(prefix.as_str()))
                            .unwrap_or(at)
                    }
                    None => at,
                }
            }
            _ => at,
        };
        let d = match p {
            ScriptProblem::UnknownFunction { name, .. }
                if self.rules_incomplete && name.starts_with("rules::") =>
            {
                return None
            }
            ScriptProblem::UnknownFunction { name, .. } => Diagnostic::new(
                "E007",
                file,
                at..at + name.len(),
                format!("unknown function `{name}`"),
            ),
            ScriptProblem::UnknownField { name, .. } => {
                let hint = match names {
                    Some(n) => Self::did_you_mean(name, n.fields.keys()),
                    None => "declare the field in the workflow".to_string(),
                };
                Diagnostic::new(
                    "E023",
                    file,
                    at..at + name.len(),
                    format!("`lead.{name}`: the workflow has no field `{name}`"),
                )
                .hint(hint)
            }
            ScriptProblem::Arity {
                name,
                takes,
                given,
                ..
            } => {
                let args = |n: usize| format!("{n} argument{}", if n == 1 { "" } else { "s" });
                let takes_text = takes
                    .iter()
                    .map(|n| args(*n))
                    .collect::<Vec<_>>()
                    .join(" or ");
                Diagnostic::new(
                    "E025",
                    file,
                    at..at + name.len(),
                    format!(
                        "`{name}` takes {takes_text} but is called with {}",
                        args(*given)
                    ),
                )
            }
            ScriptProblem::Type { op, message, .. } => {
                let d = Diagnostic::new("E030", file, at..at + op.len(), message.clone());
                if matches!(op.as_str(), "+" | "-" | "*" | "/" | "%") {
                    d.hint("add or subtract durations: `now + days(1)`, `lead.due_at - hours(2)`; `a - b` of two datetimes is a duration (`.in_days`)")
                } else {
                    d
                }
            }
            ScriptProblem::UnitMethod { name, .. } => Diagnostic::new(
                "E027",
                file,
                at..at + name.len(),
                format!(
                    "`{name}` changes its value in place and returns `()`: its result here is always `()`"
                ),
            )
            .hint(format!(
                "call it on a copy as a statement of its own, then use the copy: `let s = x; s.{name}(); s == \"\"`"
            )),
        };
        Some(d)
    }

    /// File offset of 1-based (line, column) inside a TOML string at `span`.
    fn script_pos(&self, span: &Range<usize>, line: usize, column: usize) -> usize {
        let text = &self.file.text;
        let raw = text.get(span.clone()).unwrap_or("");
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        let mut base = span.start + quote;
        if quote == 3 && text.get(base..).is_some_and(|s| s.starts_with('\n')) {
            base += 1;
        }
        let mut off = base;
        for _ in 1..line {
            match text.get(off..).and_then(|s| s.find('\n')) {
                Some(i) => off += i + 1,
                None => break,
            }
        }
        let rest = text.get(off..).unwrap_or("");
        (off + rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(0, |(i, _)| i))
        .min(span.end.max(span.start))
    }
}
