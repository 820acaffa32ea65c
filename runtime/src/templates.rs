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

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use minijinja::value::{Serde, Value};
use minijinja::{Environment, Error as JError, ErrorKind, UndefinedBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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

/// Every template of a project, compiled.
pub struct TemplateSet {
    env: Environment<'static>,
    /// `<workflow>/<id>` or `<id>` -> language -> parts.
    index: BTreeMap<String, BTreeMap<String, Parts>>,
    /// Files that did not compile: path -> error (`file:line: message`).
    broken: BTreeMap<String, String>,
    sources: BTreeMap<String, String>,
    default_language: Option<String>,
    /// SHA-256 (hex) of every file, path and text: the set's version.
    hash: String,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("templates", &self.index.keys().collect::<Vec<_>>())
            .field("broken", &self.broken)
            .finish()
    }
}

impl Default for TemplateSet {
    fn default() -> Self {
        TemplateSet::new(Vec::new(), None)
    }
}

impl TemplateSet {
    /// Compile `sources`; a file that does not compile is kept as broken
    /// (rendering it fails with the syntax error, `leadflow check` reports it).
    pub fn new(sources: Vec<Source>, default_language: Option<String>) -> TemplateSet {
        let mut env = environment();
        let mut index: BTreeMap<String, BTreeMap<String, Parts>> = BTreeMap::new();
        let mut broken = BTreeMap::new();
        let mut texts = BTreeMap::new();
        for s in sources {
            let Some(n) = parse_name(&s.path) else {
                continue;
            };
            let path = if s.path.starts_with("templates/") || s.path.contains("/templates/") {
                s.path.clone()
            } else {
                format!("templates/{}", s.path)
            };
            if let Err(e) = env.add_template_owned(path.clone(), s.text.clone()) {
                broken.insert(path.clone(), describe(&e, &s.text).0);
            }
            texts.insert(path.clone(), s.text);
            let key = match &n.workflow {
                Some(w) => format!("{w}/{}", n.id),
                None => n.id.clone(),
            };
            let parts = index.entry(key).or_default().entry(n.lang).or_default();
            if n.html {
                parts.html = Some(path);
            } else {
                parts.text = Some(path);
            }
        }
        let hash = version_hash(&texts);
        TemplateSet {
            env,
            index,
            broken,
            sources: texts,
            default_language: default_language.map(|l| l.to_ascii_lowercase()),
            hash,
        }
    }

    /// The set's version: the SHA-256 (hex) of its files (paths and texts,
    /// length-prefixed), whatever order they were read in.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The files of the set, as [`Source`]s (to store a version).
    pub fn source_list(&self) -> Vec<Source> {
        self.sources
            .iter()
            .map(|(path, text)| Source {
                path: path.clone(),
                text: text.clone(),
            })
            .collect()
    }

    /// The same templates where a missing value prints as nothing
    /// (`leadflow check` renders sample payloads with it, to find what
    /// else fails: unknown filters and functions, wrong types).
    pub fn lenient(mut self) -> TemplateSet {
        self.env
            .set_undefined_behavior(UndefinedBehavior::Chainable);
        self
    }

    /// Read every template under `dir` (absent: none).
    pub fn load(dir: &Path, default_language: Option<String>) -> Result<TemplateSet, String> {
        Ok(TemplateSet::new(read_dir(dir)?, default_language))
    }

    /// The files of the set: path -> text.
    pub fn sources(&self) -> &BTreeMap<String, String> {
        &self.sources
    }

    /// Files that failed to compile, with their errors.
    pub fn broken(&self) -> &BTreeMap<String, String> {
        &self.broken
    }

    /// Template keys (`<id>` or `<workflow>/<id>`) and their languages.
    pub fn templates(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.index
            .iter()
            .map(|(k, l)| (k.as_str(), l.keys().map(String::as_str).collect()))
    }

    /// Whether `workflow` has a template `id` (its own or shared).
    pub fn has(&self, workflow: &str, id: &str) -> bool {
        self.index.contains_key(&format!("{workflow}/{id}")) || self.index.contains_key(id)
    }

    /// The environment (for checks: compiled templates, filters).
    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    /// The languages of `id` for `workflow` and the paths of each part.
    pub fn files(&self, workflow: &str, id: &str) -> Vec<(String, Option<String>, Option<String>)> {
        let own = self.index.get(&format!("{workflow}/{id}"));
        let shared = self.index.get(id);
        let mut out = Vec::new();
        for langs in [own, shared].into_iter().flatten() {
            for (l, p) in langs {
                out.push((l.clone(), p.text.clone(), p.html.clone()));
            }
        }
        out
    }

    /// Choose the language for `wanted`: see the module doc. Returns the
    /// parts, the language and the note of a fallback.
    fn choose(
        &self,
        workflow: &str,
        id: &str,
        wanted: Option<&str>,
    ) -> Option<(&Parts, String, Option<String>)> {
        let langs = self
            .index
            .get(&format!("{workflow}/{id}"))
            .or_else(|| self.index.get(id))?;
        let wanted = wanted.map(str::to_ascii_lowercase);
        let mut order: Vec<String> = Vec::new();
        if let Some(w) = &wanted {
            order.push(w.clone());
            if let Some((base, _)) = w.split_once('-') {
                order.push(base.to_string());
            }
        }
        order.extend(self.default_language.clone());
        order.push(String::new());
        order.push("en".into());
        order.extend(langs.keys().cloned());
        for l in &order {
            if let Some(p) = langs.get(l) {
                if p.text.is_none() {
                    continue;
                }
                let exact = match &wanted {
                    Some(w) => l == w || w.split_once('-').is_some_and(|(b, _)| b == l),
                    None => self.default_language.as_deref().is_none_or(|d| d == l) || l.is_empty(),
                };
                let note = match (&wanted, exact) {
                    (_, true) => None,
                    (Some(w), false) => Some(format!(
                        "no `{w}` version of template `{id}`: rendered in `{}`",
                        if l.is_empty() {
                            "the language-less file"
                        } else {
                            l
                        }
                    )),
                    (None, false) => Some(format!(
                        "no language for the recipient: template `{id}` rendered in `{}`",
                        if l.is_empty() {
                            "the language-less file"
                        } else {
                            l
                        }
                    )),
                };
                return Some((p, l.clone(), note));
            }
        }
        None
    }

    /// Render template `id` for the outbox payload `payload` (the row of
    /// one recipient), in the recipient's language or the fallback.
    pub fn render(
        &self,
        id: &str,
        payload: &serde_json::Value,
        lang: Option<&str>,
    ) -> Result<Rendered, RenderError> {
        self.render_linked(id, payload, lang, None)
    }

    /// [`TemplateSet::render`] with `action_url(...)` defined when `links`
    /// is given (the daemon's dispatcher).
    pub fn render_linked(
        &self,
        id: &str,
        payload: &serde_json::Value,
        lang: Option<&str>,
        links: Option<&LinkContext>,
    ) -> Result<Rendered, RenderError> {
        let workflow = payload
            .get("workflow")
            .and_then(|w| w.as_str())
            .unwrap_or("");
        let wanted = lang.map(str::to_string).or_else(|| {
            payload
                .get("recipient")
                .and_then(|r| r.get("language"))
                .and_then(|l| l.as_str())
                .map(str::to_string)
        });
        let Some((parts, language, note)) = self.choose(workflow, id, wanted.as_deref()) else {
            return Err(RenderError {
                code: MISSING_CODE,
                message: format!(
                    "no template `{id}` (templates/{id}.<lang>.txt or templates/{workflow}/{id}.<lang>.txt)"
                ),
                variable: None,
            });
        };
        let mut ctx = context_map(payload, &language);
        if let Some(l) = links {
            ctx.insert("action_url".into(), l.function(payload));
        }
        let ctx = Value::from(ctx);
        let text_name = parts.text.as_deref().unwrap_or_default();
        let text = self.render_one(text_name, &ctx)?;
        let html = match &parts.html {
            Some(h) => Some(self.render_one(h, &ctx)?),
            None => None,
        };
        let (subject, text) = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("Subject:") => (
                first["Subject:".len()..].trim().to_string(),
                rest.trim_start_matches('\n').to_string(),
            ),
            _ if text.starts_with("Subject:") => {
                (text["Subject:".len()..].trim().to_string(), String::new())
            }
            _ => (id.to_string(), text),
        };
        Ok(Rendered {
            subject,
            text,
            html,
            language,
            note,
        })
    }

    /// Render one file of the set (a text or HTML part) for `payload`.
    pub fn render_file(
        &self,
        path: &str,
        payload: &serde_json::Value,
        lang: &str,
    ) -> Result<String, RenderError> {
        self.render_one(path, &context(payload, lang))
    }

    fn render_one(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        if let Some(e) = self.broken.get(name) {
            return Err(RenderError {
                code: MISSING_CODE,
                message: format!("template does not compile: {e}"),
                variable: None,
            });
        }
        let t = self.env.get_template(name).map_err(|e| RenderError {
            code: MISSING_CODE,
            message: e.to_string(),
            variable: None,
        })?;
        t.render(ctx).map_err(|e| {
            let source = self.sources.get(name).map(String::as_str).unwrap_or("");
            let (message, variable) = describe(&e, source);
            RenderError {
                code: RENDER_CODE,
                message,
                variable,
            }
        })
    }
}

fn version_hash(files: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (path, text) in files {
        for part in [path, text] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// `file:line:col: what` and the failing expression of a MiniJinja error.
fn describe(e: &JError, source: &str) -> (String, Option<String>) {
    let name = e.name().unwrap_or("template");
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    let (line, col, variable) = match e.range() {
        Some(r)
            if r.end <= source.len()
                && source.is_char_boundary(r.start)
                && source.is_char_boundary(r.end) =>
        {
            let before = &source[..r.start];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let v = source[r.clone()].trim().to_string();
            (line, col, (!v.is_empty()).then_some(v))
        }
        _ => (e.line().unwrap_or(1), 1, None),
    };
    let what = match (&variable, e.kind()) {
        (Some(v), ErrorKind::UndefinedError) => {
            format!("`{v}` is not defined or not visible to this recipient ({detail})")
        }
        (Some(v), _) => format!("{detail} (in `{v}`)"),
        (None, _) => detail,
    };
    (format!("{name}:{line}:{col}: {what}"), variable)
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

/// What the directory held when last read: (name, modified, length).
type Stamp = Vec<(String, Option<std::time::SystemTime>, u64)>;

/// What `action_url("<transition>")` needs besides the payload: the
/// daemon's link key, the tenant, and when the message was queued (the
/// start of its links' `max_age_days`).
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub key: Arc<crate::links::LinkKey>,
    pub tenant: String,
    pub queued: DateTime<Utc>,
}

impl LinkContext {
    /// The `action_url` function for one recipient's payload: a signed link
    /// for its record, revision and actor, expiring at the payload's
    /// `deadline` (the timer the step armed) or after `max_age_days`. A
    /// recipient that is no actor (the customer, an address) cannot act:
    /// calling it then is a render error.
    fn function(&self, payload: &serde_json::Value) -> Value {
        let record = payload.get("record").and_then(|v| v.as_i64());
        let revision = payload.get("revision").and_then(|v| v.as_i64());
        let recipient = payload.get("recipient");
        let actor = recipient
            .filter(|r| r.get("kind").and_then(|k| k.as_str()) == Some("actor"))
            .and_then(|r| r.get("id"))
            .and_then(|i| i.as_str())
            .map(str::to_string);
        let deadline = payload
            .get("deadline")
            .and_then(|d| d.as_str())
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc));
        let (key, tenant) = (self.key.clone(), self.tenant.clone());
        let expires = key.expiry(self.queued, deadline);
        Value::from_function(move |transition: &str| -> Result<String, JError> {
            let (Some(record), Some(revision)) = (record, revision) else {
                return Err(JError::new(
                    ErrorKind::InvalidOperation,
                    "action_url: the message has no record",
                ));
            };
            let Some(actor) = &actor else {
                return Err(JError::new(
                    ErrorKind::InvalidOperation,
                    "action_url: only an actor of the directory can act through a link, not this recipient",
                ));
            };
            if transition.is_empty() {
                return Err(JError::new(
                    ErrorKind::InvalidOperation,
                    "action_url: name a transition",
                ));
            }
            Ok(key.url(&crate::links::Claims {
                tenant: tenant.clone(),
                record,
                revision,
                transition: transition.to_string(),
                actor: actor.clone(),
                expires,
            }))
        })
    }
}

/// The templates a dispatcher renders with: the project's `templates/`
/// directory, re-read when its files change ([`Templates::refresh`]).
#[derive(Debug)]
pub struct Templates {
    dir: PathBuf,
    /// The daemon's link key and the tenant: `action_url` is defined.
    links: Option<(Arc<crate::links::LinkKey>, String)>,
    default_language: Option<String>,
    current: RwLock<(Stamp, Arc<TemplateSet>)>,
    /// Versions in force earlier in this process, or loaded from the store
    /// for messages queued under them (the newest last, at most
    /// [`KEPT_VERSIONS`]).
    older: std::sync::Mutex<Vec<Arc<TemplateSet>>>,
    /// The version last stored and stamped on new messages.
    published: std::sync::Mutex<Option<String>>,
    /// The files' stamp of an edit refused because a file no longer
    /// compiled: not read again until the files change.
    refused: std::sync::Mutex<Stamp>,
}

/// Template versions a dispatcher keeps in memory besides the current one.
pub const KEPT_VERSIONS: usize = 16;

impl Templates {
    pub fn new(dir: impl Into<PathBuf>) -> Templates {
        Templates::with_language(dir, None)
    }

    /// With the tenant's default language.
    pub fn with_language(dir: impl Into<PathBuf>, default_language: Option<String>) -> Templates {
        let t = Templates {
            dir: dir.into(),
            links: None,
            default_language,
            current: RwLock::new((Vec::new(), Arc::new(TemplateSet::default()))),
            older: Default::default(),
            published: Default::default(),
            refused: Default::default(),
        };
        t.refresh();
        t
    }

    /// A fixed set (tests, benches, the scenario harness).
    pub fn fixed(set: TemplateSet) -> Templates {
        Templates {
            dir: PathBuf::new(),
            links: None,
            default_language: set.default_language.clone(),
            current: RwLock::new((Vec::new(), Arc::new(set))),
            older: Default::default(),
            published: Default::default(),
            refused: Default::default(),
        }
    }

    fn stamp(&self) -> Stamp {
        let mut out = Vec::new();
        let walk = |d: &Path,
                    prefix: &str,
                    recurse: bool,
                    out: &mut Vec<_>,
                    dirs: &mut Vec<(PathBuf, String)>| {
            if let Ok(es) = std::fs::read_dir(d) {
                for e in es.flatten() {
                    let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                    let meta = e.metadata().ok();
                    if meta.as_ref().is_some_and(|m| m.is_dir()) {
                        if recurse {
                            dirs.push((e.path(), format!("{name}/")));
                        }
                        continue;
                    }
                    out.push((
                        name,
                        meta.as_ref().and_then(|m| m.modified().ok()),
                        meta.map_or(0, |m| m.len()),
                    ));
                }
            }
        };
        let mut dirs = Vec::new();
        walk(&self.dir, "", true, &mut out, &mut dirs);
        for (d, prefix) in std::mem::take(&mut dirs) {
            walk(&d, &prefix, false, &mut out, &mut Vec::new());
        }
        out.sort();
        out
    }

    /// Re-read the directory if a file changed since the last read.
    pub fn refresh(&self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        let stamp = self.stamp();
        {
            let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
            if cur.0 == stamp && !stamp.is_empty() {
                return;
            }
        }
        if !stamp.is_empty() && *self.refused.lock().unwrap_or_else(|e| e.into_inner()) == stamp {
            return;
        }
        match TemplateSet::load(&self.dir, self.default_language.clone()) {
            Ok(set) => {
                let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
                // An edit that breaks a template is not taken: the last
                // good set keeps rendering until the files compile again
                // (as a broken workflow edit keeps the last good version).
                let newly_broken: Vec<&str> = set
                    .broken()
                    .iter()
                    .filter(|(k, e)| cur.1.broken().get(*k) != Some(*e))
                    .map(|(k, _)| k.as_str())
                    .collect();
                if !newly_broken.is_empty() && !cur.0.is_empty() {
                    tracing::warn!(
                        files = ?newly_broken,
                        "templates not reloaded: an edited template does not compile; the last good templates keep rendering (`leadflow check` shows where)"
                    );
                    *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
                    return;
                }
                if cur.1.hash() != set.hash() && !cur.0.is_empty() {
                    // Messages queued under it still render with it.
                    self.keep(cur.1.clone());
                }
                *cur = (stamp, Arc::new(set));
            }
            Err(e) => tracing::warn!("templates not reloaded: {e}"),
        }
    }

    fn keep(&self, set: Arc<TemplateSet>) {
        let mut older = self.older.lock().unwrap_or_else(|e| e.into_inner());
        older.retain(|s| s.hash() != set.hash());
        older.push(set);
        let over = older.len().saturating_sub(KEPT_VERSIONS);
        older.drain(..over);
    }

    /// The set of version `hash`, if this process has it (current or kept).
    pub fn version(&self, hash: &str) -> Option<Arc<TemplateSet>> {
        let cur = self.set();
        if cur.hash() == hash {
            return Some(cur);
        }
        let older = self.older.lock().unwrap_or_else(|e| e.into_inner());
        older.iter().find(|s| s.hash() == hash).cloned()
    }

    /// Keep a version read back from the store.
    pub fn add_version(&self, sources: Vec<Source>) -> Arc<TemplateSet> {
        let set = Arc::new(TemplateSet::new(sources, self.default_language.clone()));
        self.keep(set.clone());
        set
    }

    /// The current set when it is not yet the published version.
    pub fn unpublished(&self) -> Option<Arc<TemplateSet>> {
        let cur = self.set();
        let published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        (published.as_deref() != Some(cur.hash())).then_some(cur)
    }

    /// Record that `hash` is stored and stamped on new messages.
    pub fn mark_published(&self, hash: &str) {
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash.to_string());
    }

    /// Messages rendered with `action_url` for `tenant`'s recipients.
    pub fn with_links(mut self, key: Arc<crate::links::LinkKey>, tenant: &str) -> Templates {
        self.links = Some((key, tenant.to_string()));
        self
    }

    /// Render an outbox row's message queued at `queued` with the set in
    /// force (and its action links, when the daemon makes them).
    pub fn render(
        &self,
        id: &str,
        payload: &serde_json::Value,
        queued: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let links = self.links.as_ref().map(|(key, tenant)| LinkContext {
            key: key.clone(),
            tenant: tenant.clone(),
            queued,
        });
        // The version the message was queued under, when this process has
        // it (the dispatcher loads it from the store first); else the
        // current one.
        let set = payload
            .get("templates")
            .and_then(|h| h.as_str())
            .and_then(|h| self.version(h))
            .unwrap_or_else(|| self.set());
        set.render_linked(id, payload, None, links.as_ref())
    }

    /// The set in force.
    pub fn set(&self) -> Arc<TemplateSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

/// The rendering context of a payload.
fn context(payload: &serde_json::Value, lang: &str) -> Value {
    Value::from(context_map(payload, lang))
}

fn context_map(payload: &serde_json::Value, lang: &str) -> BTreeMap<String, Value> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(o) = payload.as_object() {
        for (k, v) in o {
            let key = if k == "fields" { "lead" } else { k.as_str() };
            map.insert(key.to_string(), Value::from(Serde(v)));
        }
    }
    map.insert("lang".into(), Value::from(lang));
    // Fields also by bare name (`{{ town }}`), unless the name is taken.
    if let Some(f) = payload.get("fields").and_then(|f| f.as_object()) {
        for (k, v) in f {
            if !map.contains_key(k) && !FILTERS.contains(&k.as_str()) {
                map.insert(k.clone(), Value::from(Serde(v)));
            }
        }
    }
    map
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Ok(());
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("date", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::Date)
    });
    env.add_filter("datetime", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::DateTime)
    });
    env.add_filter("time", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::Time)
    });
    env.add_filter("longdate", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::Long)
    });
    env.add_filter("money", money);
    env.add_filter("list", list);
    env.add_filter("label", |v: Value| Ok::<_, JError>(label(&v.to_string())));
    env
}

/// The filters and functions templates may use (`leadflow check`).
pub const FILTERS: &[&str] = &[
    "date", "datetime", "time", "longdate", "money", "list", "label",
];

#[derive(Clone, Copy)]
enum When {
    Date,
    DateTime,
    Time,
    Long,
}

fn ctx_str(s: &minijinja::State, name: &str) -> String {
    s.lookup(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn missing(what: &str) -> JError {
    JError::new(
        ErrorKind::InvalidOperation,
        format!("{what}: the value is missing (use `{{% if ... %}}` for an optional field)"),
    )
}

fn fmt_when(s: &minijinja::State, v: Value, w: When) -> Result<String, JError> {
    if v.is_none() || v.is_undefined() {
        return Err(missing("date"));
    }
    let text = v.to_string();
    let lang = ctx_str(s, "lang");
    let zone: chrono_tz::Tz = ctx_str(s, "time_zone").parse().unwrap_or(chrono_tz::UTC);
    let (date, clock) = if let Ok(t) = text.parse::<DateTime<Utc>>() {
        let local = t.with_timezone(&zone);
        (local.date_naive(), Some((local.hour(), local.minute())))
    } else if let Ok(d) = text.parse::<NaiveDate>() {
        (d, None)
    } else {
        return Err(JError::new(
            ErrorKind::InvalidOperation,
            format!("`{text}` is not a date or a date-time"),
        ));
    };
    let day = match lang.split('-').next().unwrap_or("") {
        "it" => format!("{:02}/{:02}/{}", date.day(), date.month(), date.year()),
        "ro" | "de" => format!("{:02}.{:02}.{}", date.day(), date.month(), date.year()),
        _ => format!(
            "{} {} {}",
            date.day(),
            &month(&lang, date.month())[..3],
            date.year()
        ),
    };
    let hm = clock.map(|(h, m)| format!("{h:02}:{m:02}"));
    Ok(match w {
        When::Date => day,
        When::Time => hm.unwrap_or_default(),
        When::DateTime => match hm {
            Some(hm) => match lang.split('-').next().unwrap_or("") {
                "it" => format!("{day} ore {hm}"),
                "ro" => format!("{day}, ora {hm}"),
                _ => format!("{day}, {hm}"),
            },
            None => day,
        },
        When::Long => {
            let wd = weekday(&lang, date.weekday().num_days_from_monday() as usize);
            let long = match lang.split('-').next().unwrap_or("") {
                "en" | "" => format!(
                    "{wd} {} {} {}",
                    date.day(),
                    month(&lang, date.month()),
                    date.year()
                ),
                "ro" => format!(
                    "{wd}, {} {} {}",
                    date.day(),
                    month(&lang, date.month()),
                    date.year()
                ),
                _ => format!(
                    "{wd} {} {} {}",
                    date.day(),
                    month(&lang, date.month()),
                    date.year()
                ),
            };
            match (hm, lang.split('-').next().unwrap_or("")) {
                (Some(hm), "it") => format!("{long} alle {hm}"),
                (Some(hm), "ro") => format!("{long}, ora {hm}"),
                (Some(hm), _) => format!("{long} at {hm}"),
                (None, _) => long,
            }
        }
    })
}

fn month(lang: &str, m: u32) -> &'static str {
    const IT: [&str; 12] = [
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ];
    const RO: [&str; 12] = [
        "ianuarie",
        "februarie",
        "martie",
        "aprilie",
        "mai",
        "iunie",
        "iulie",
        "august",
        "septembrie",
        "octombrie",
        "noiembrie",
        "decembrie",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let i = (m.clamp(1, 12) - 1) as usize;
    match lang.split('-').next().unwrap_or("") {
        "it" => IT[i],
        "ro" => RO[i],
        _ => EN[i],
    }
}

fn weekday(lang: &str, d: usize) -> &'static str {
    const IT: [&str; 7] = [
        "lunedì",
        "martedì",
        "mercoledì",
        "giovedì",
        "venerdì",
        "sabato",
        "domenica",
    ];
    const RO: [&str; 7] = [
        "luni",
        "marți",
        "miercuri",
        "joi",
        "vineri",
        "sâmbătă",
        "duminică",
    ];
    const EN: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let d = d.min(6);
    match lang.split('-').next().unwrap_or("") {
        "it" => IT[d],
        "ro" => RO[d],
        _ => EN[d],
    }
}

/// `1234.5 | money` -> `1.234,50 €` (it), `1.234,50 EUR`... `money("RON")`.
fn money(s: &minijinja::State, v: Value, currency: Option<String>) -> Result<String, JError> {
    if v.is_none() || v.is_undefined() {
        return Err(missing("money"));
    }
    let text = v.to_string();
    let amount: rust_decimal_free::Amount = text.parse().map_err(|_| {
        JError::new(
            ErrorKind::InvalidOperation,
            format!("`{text}` is not an amount"),
        )
    })?;
    let lang = ctx_str(s, "lang");
    let base = lang.split('-').next().unwrap_or("");
    let (thousands, decimal) = match base {
        "it" | "ro" | "de" | "es" | "fr" => ('.', ','),
        _ => (',', '.'),
    };
    let num = amount.format(thousands, decimal);
    let cur = currency.unwrap_or_else(|| {
        if base == "ro" {
            "RON".into()
        } else {
            "EUR".into()
        }
    });
    Ok(match (base, cur.as_str()) {
        ("it", "EUR") => format!("{num} €"),
        ("ro", "RON") => format!("{num} lei"),
        ("en" | "", "EUR") => format!("€{num}"),
        (_, c) => format!("{num} {c}"),
    })
}

/// Amounts with two decimals, without floating point surprises.
mod rust_decimal_free {
    pub struct Amount {
        negative: bool,
        cents: u128,
    }

    impl std::str::FromStr for Amount {
        type Err = ();
        fn from_str(s: &str) -> Result<Amount, ()> {
            let s = s.trim();
            let (negative, s) = match s.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, s),
            };
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            if int.is_empty()
                || !int.chars().all(|c| c.is_ascii_digit())
                || !frac.chars().all(|c| c.is_ascii_digit())
            {
                return Err(());
            }
            let whole: u128 = int.parse().map_err(|_| ())?;
            let mut f: Vec<u32> = frac.chars().filter_map(|c| c.to_digit(10)).collect();
            f.resize(3, 0);
            let mut cents = whole * 100 + u128::from(f[0] * 10 + f[1]);
            if f[2] >= 5 {
                cents += 1;
            }
            Ok(Amount { negative, cents })
        }
    }

    impl Amount {
        pub fn format(&self, thousands: char, decimal: char) -> String {
            let whole = (self.cents / 100).to_string();
            let mut grouped = String::new();
            for (i, c) in whole.chars().enumerate() {
                if i > 0 && (whole.len() - i).is_multiple_of(3) {
                    grouped.push(thousands);
                }
                grouped.push(c);
            }
            let sign = if self.negative && self.cents > 0 {
                "-"
            } else {
                ""
            };
            format!("{sign}{grouped}{decimal}{:02}", self.cents % 100)
        }
    }
}

/// A list field as text: `a, b, c` (items through `label`).
fn list(v: Value) -> Result<String, JError> {
    if v.is_none() || v.is_undefined() {
        return Ok(String::new());
    }
    match v.try_iter() {
        Ok(it) if v.as_str().is_none() => Ok(it
            .map(|x| label(&x.to_string()))
            .collect::<Vec<_>>()
            .join(", ")),
        _ => Ok(label(&v.to_string())),
    }
}

/// An enum value or code for reading: `roller_shutters` -> `roller shutters`.
fn label(s: &str) -> String {
    s.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(files: &[(&str, &str)], default: Option<&str>) -> TemplateSet {
        TemplateSet::new(
            files
                .iter()
                .map(|(p, t)| Source {
                    path: p.to_string(),
                    text: t.to_string(),
                })
                .collect(),
            default.map(str::to_string),
        )
    }

    fn payload(lang: Option<&str>) -> serde_json::Value {
        json!({
            "record": 7, "workflow": "wf", "state": "open", "template": "hello",
            "recipient": { "id": "a", "kind": "actor", "language": lang },
            "fields": { "name": "Mario <b>", "at": "2026-03-02T09:30:00Z", "price": "1234.5", "apps": ["roller_shutters", "awnings"], "empty": null },
            "time_zone": "Europe/Rome",
        })
    }

    #[test]
    fn names_split_into_workflow_id_language_and_part() {
        let n = parse_name("templates/aslm/appointment_reminder.en.html").unwrap();
        assert_eq!(
            (
                n.workflow.as_deref(),
                n.id.as_str(),
                n.lang.as_str(),
                n.html
            ),
            (Some("aslm"), "appointment_reminder", "en", true)
        );
        let n = parse_name("templates/proposal.txt").unwrap();
        assert_eq!((n.id.as_str(), n.lang.as_str()), ("proposal", ""));
        assert!(parse_name("templates/readme.md").is_none());
    }

    #[test]
    fn renders_in_the_recipients_language_with_filters_and_escaping() {
        let s = set(
            &[
                ("templates/hello.it.txt", "Subject: Ciao {{ lead.name }}\n{{ lead.at | datetime }} {{ lead.price | money }} {{ lead.apps | list }}{{ lead.empty }}\n"),
                ("templates/hello.it.html", "<p>{{ lead.name }}</p>"),
                ("templates/hello.en.txt", "Subject: Hi\n{{ lead.at | longdate }} {{ lead.price | money }}\n"),
            ],
            Some("it"),
        );
        let r = s.render("hello", &payload(Some("it")), None).unwrap();
        assert_eq!(r.subject, "Ciao Mario <b>");
        assert_eq!(
            r.text,
            "02/03/2026 ore 10:30 1.234,50 € roller shutters, awnings\n"
        );
        assert_eq!(r.html.as_deref(), Some("<p>Mario &lt;b&gt;</p>"));
        assert_eq!(r.note, None);
        let r = s.render("hello", &payload(Some("en")), None).unwrap();
        assert_eq!(r.text, "Monday 2 March 2026 at 10:30 €1,234.50\n");
        // Unknown language: the tenant's default, recorded.
        let r = s.render("hello", &payload(Some("de")), None).unwrap();
        assert_eq!(r.language, "it");
        assert!(r.note.unwrap().contains("no `de` version"));
    }

    #[test]
    fn a_missing_value_fails_with_the_variable_never_half_rendered() {
        let s = set(
            &[(
                "templates/hello.txt",
                "Subject: x\nline\n{{ lead.phone }}\n",
            )],
            None,
        );
        let e = s.render("hello", &payload(None), None).unwrap_err();
        assert_eq!(e.code, RENDER_CODE);
        assert_eq!(e.variable.as_deref(), Some("lead.phone"));
        assert!(
            e.message.starts_with("templates/hello.txt:3:"),
            "{}",
            e.message
        );
        let e = s.render("nope", &payload(None), None).unwrap_err();
        assert_eq!(e.code, MISSING_CODE);
        assert!(!e.permanent());
    }

    #[test]
    fn a_workflow_folder_wins_over_the_shared_template() {
        let s = set(
            &[
                ("templates/hello.en.txt", "Subject: shared\n"),
                ("templates/wf/hello.en.txt", "Subject: own\n"),
            ],
            None,
        );
        assert_eq!(
            s.render("hello", &payload(Some("en")), None)
                .unwrap()
                .subject,
            "own"
        );
    }
}
