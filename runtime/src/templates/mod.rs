//! Message templates (docs/notifications.md#templates): the files of a
//! project's `templates/` directory rendered with MiniJinja.
//!
//! Layout: `templates/<id>.<lang>.txt` (text part; a first line
//! `Subject: ...` gives the subject) and optionally `templates/<id>.<lang>.html`
//! (HTML part, auto-escaped); `templates/<workflow>/<id>.<lang>.txt` is used
//! for that workflow before the shared one; `<id>.txt` without a language
//! is the last resort. Language order: the recipient's (payload
//! `recipient.language`: the customer's field, the actor's `language`), the
//! tenant's default, the language-less file, `en`, then the first language
//! the template has. Any step past the first is recorded as a note.
//!
//! Context: `lead` (the fields the recipient may see, `none` when empty;
//! each also by its bare name when no other variable has it),
//! `record`, `revision`, `workflow`, `state`, `state_title`, `assignee`,
//! `recipient` (`id`, `kind`, `address`, `language`, `name`), `redacted`,
//! `time_zone`, `lang`. Filters: `date`, `datetime`, `time`, `longdate`
//! (in the workflow's calendar zone and the message's language), `money`,
//! `list`, `label`. Printing a value that is not there is an error: a
//! message is never sent half-rendered.

mod filters;
mod live;
mod set;
#[cfg(test)]
mod tests;

pub use filters::FILTERS;
pub use live::{LinkContext, Templates, KEPT_VERSIONS};
pub use set::TemplateSet;

use std::path::{Path, PathBuf};

/// The code of a template that fails to render (permanent).
pub const RENDER_CODE: &str = "E_TEMPLATE_RENDER";
/// The code of a message whose template does not exist (retried: the
/// template may be deployed in the meantime).
pub const MISSING_CODE: &str = "E_TEMPLATE_MISSING";

/// One template file: its path relative to the project (`templates/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub text: String,
}

/// A template file's name split: `[<workflow>/]<id>[.<lang>].<txt|html>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub workflow: Option<String>,
    pub id: String,
    /// Empty: the language-less file.
    pub lang: String,
    pub html: bool,
}

/// Split a path under `templates/` (the prefix optional); `None` for a file
/// that is no template (another extension).
pub fn parse_name(path: &str) -> Option<FileName> {
    let rel = match path.rfind("templates/") {
        Some(i) if i == 0 || path[..i].ends_with('/') => &path[i + "templates/".len()..],
        _ => path,
    };
    let (workflow, file) = match rel.rsplit_once('/') {
        Some((dir, file)) if !dir.contains('/') => (Some(dir.to_string()), file),
        Some(_) => return None,
        None => (None, rel),
    };
    let (stem, html) = if let Some(s) = file.strip_suffix(".txt") {
        (s, false)
    } else if let Some(s) = file.strip_suffix(".html") {
        (s, true)
    } else {
        return None;
    };
    let (id, lang) = match stem.rsplit_once('.') {
        Some((id, lang)) if is_lang(lang) => (id, lang.to_ascii_lowercase()),
        _ => (stem, String::new()),
    };
    (!id.is_empty()).then(|| FileName {
        workflow,
        id: id.to_string(),
        lang,
        html,
    })
}

/// `it`, `en`, `pt-br`: a language tag as file names carry it.
pub fn is_lang(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The parts of one template in one language: names in the environment.
#[derive(Debug, Clone, Default)]
struct Parts {
    text: Option<String>,
    html: Option<String>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The language rendered (empty: the language-less file).
    pub language: String,
    /// Why that language and not the recipient's, when it differs.
    pub note: Option<String>,
}

/// Why a message could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    /// [`RENDER_CODE`] (permanent: the payload will not change) or
    /// [`MISSING_CODE`] (retried).
    pub code: &'static str,
    pub message: String,
    /// The variable or expression that failed, when known.
    pub variable: Option<String>,
}

impl RenderError {
    /// Whether retrying cannot help.
    pub fn permanent(&self) -> bool {
        self.code == RENDER_CODE
    }
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Every `.txt`/`.html` file under `dir` (one level of workflow folders),
/// as [`Source`]s with `templates/...` paths, sorted.
pub fn read_dir(dir: &Path) -> Result<Vec<Source>, String> {
    read_dir_as(dir, "templates")
}

/// [`read_dir`] with paths under `prefix` (a path ending in `templates`,
/// as a command shows it).
pub fn read_dir_as(dir: &Path, prefix: &str) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("templates {}: {e}", dir.display())),
    };
    let mut paths: Vec<(PathBuf, String)> = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if let Ok(sub) = std::fs::read_dir(&p) {
                for f in sub.flatten() {
                    let fname = f.file_name().to_string_lossy().to_string();
                    paths.push((f.path(), format!("{prefix}/{name}/{fname}")));
                }
            }
        } else {
            paths.push((p, format!("{prefix}/{name}")));
        }
    }
    paths.sort_by(|a, b| a.1.cmp(&b.1));
    for (p, rel) in paths {
        if parse_name(&rel).is_none() {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).map_err(|e| format!("template {}: {e}", p.display()))?;
        out.push(Source { path: rel, text });
    }
    Ok(out)
}
