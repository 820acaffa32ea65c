//! [`TemplateSet`]: every template of a project compiled, the choice of
//! language, rendering a message and describing a failure.

use super::filters::{context, context_map, environment};
use super::{
    parse_name, read_dir, LinkContext, Parts, RenderError, Rendered, Source, MISSING_CODE,
    RENDER_CODE,
};
use minijinja::value::Value;
use minijinja::{Environment, Error as JError, ErrorKind, UndefinedBehavior};
use std::collections::BTreeMap;
use std::path::Path;

/// Every template of a project, compiled.
pub struct TemplateSet {
    env: Environment<'static>,
    /// `<workflow>/<id>` or `<id>` -> language -> parts.
    index: BTreeMap<String, BTreeMap<String, Parts>>,
    /// Files that did not compile: path -> error (`file:line: message`).
    broken: BTreeMap<String, String>,
    sources: BTreeMap<String, String>,
    pub(super) default_language: Option<String>,
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
