//! Completion, hover, go to definition and rename.

use super::index::{self, Decl, Kind};
use super::{text, Server};
use leadflow_engine::Workflow;
use lsp_types::TextDocumentPositionParams;
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, Location, MarkupContent, MarkupKind,
    RenameParams, TextEdit, Url, WorkspaceEdit,
};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The workflow a file is about: the file itself, or the workflow a
/// scenario replays.
struct Subject {
    /// Workflow file, absolute.
    path: PathBuf,
    text: String,
    decls: Vec<Decl>,
    model: Option<Arc<Workflow>>,
}

/// Which kind of name a string value holds, from its key.
fn kind_of_key(key: &str, line: &str) -> Option<Kind> {
    Some(match key {
        "to" if line.contains("template") || line.contains("notify") => return None,
        "to" | "from" | "initial" | "state" | "states" | "in" | "reveal_in" | "in_states"
        | "not_in" => Kind::State,
        "fire" | "transition" | "transitions" | "then" | "allow" => Kind::Transition,
        "timer" | "timers" | "cancel" | "arm" => Kind::Timer,
        "require" | "input" | "inputs" | "columns" | "group_by" | "sort" | "field" | "fields"
        | "clear" | "set" => Kind::Field,
        "view" => Kind::View,
        _ => return None,
    })
}

const FIELD_TYPES: [&str; 11] = [
    "string", "text", "int", "decimal", "bool", "date", "datetime", "enum", "list", "actor", "link",
];
const RECIPIENTS: [&str; 3] = ["assignee", "previous_assignee", "customer"];

impl Server {
    fn subject(&self, path: &Path, text: &str) -> Option<Subject> {
        let wf_path = if text.contains("[workflow]") {
            path.to_path_buf()
        } else {
            let id = index::scenario_workflow(text)?;
            let f = self
                .project
                .workflows
                .iter()
                .find(|f| index::workflow_id(&f.text).as_deref() == Some(id.as_str()))?;
            self.abs(&f.path)
        };
        let wf_text = self.text(&wf_path)?;
        let rel = self.rel(&wf_path);
        Some(Subject {
            decls: index::declarations(&wf_text),
            model: self.good.get(&rel).cloned(),
            path: wf_path,
            text: wf_text,
        })
    }

    /// Every workflow model (for `lead.` in a rules module).
    fn models(&self) -> Vec<Arc<Workflow>> {
        self.good.values().cloned().collect()
    }

    fn rules_functions(&self) -> Vec<(PathBuf, String, usize, Range<usize>, String)> {
        let mut out = Vec::new();
        for f in &self.project.rules {
            for (name, arity, span) in index::functions(&f.text) {
                out.push((self.abs(&f.path), name, arity, span, f.text.clone()));
            }
        }
        out
    }

    fn roles(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.project.workflows {
            index::roles(&f.text, &mut out);
        }
        for (_, t) in &self.scenarios {
            index::roles(t, &mut out);
        }
        out
    }

    fn stems(&self, dir: &str) -> Vec<String> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let mut out: Vec<String> = std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.split('.').next().map(str::to_string)
            })
            .filter(|n| !n.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub(super) fn completion(&self, p: CompletionParams) -> Option<CompletionResponse> {
        let (path, src, at) = self.at(&p.text_document_position)?;
        let ctx = text::context(&src, at);
        let subject = self.subject(&path, &src);
        let line = text::prefix_before(&src, at);
        let is_rhai = path.extension().is_some_and(|e| e == "rhai");
        let expr = if is_rhai {
            Some(line)
        } else {
            ctx.string_prefix.as_deref()
        };
        let mut items = Vec::new();
        if let Some(e) = expr {
            if e.ends_with("lead.") || e.ends_with("input.") || ends_with_member(e) {
                let models = match subject.as_ref().and_then(|s| s.model.clone()) {
                    Some(m) => vec![m],
                    None => self.models(),
                };
                for m in models {
                    for f in &m.fields {
                        items.push(item(&f.name, CompletionItemKind::FIELD, field_detail(f)));
                    }
                }
                if subject.is_none() {
                    items.sort_by(|a, b| a.label.cmp(&b.label));
                    items.dedup_by(|a, b| a.label == b.label);
                }
                return Some(CompletionResponse::Array(items));
            }
            if e.ends_with("rules::") {
                for (_, name, arity, _, _) in self.rules_functions() {
                    items.push(item(
                        &name,
                        CompletionItemKind::FUNCTION,
                        format!("rules::{name} ({arity} arguments)"),
                    ));
                }
                return Some(CompletionResponse::Array(items));
            }
        }
        if let Some(key) = &ctx.string_key {
            let names = |kind: Kind| -> Vec<CompletionItem> {
                subject
                    .iter()
                    .flat_map(|s| s.decls.iter())
                    .filter(|d| d.kind == kind)
                    .map(|d| {
                        let detail = subject
                            .as_ref()
                            .and_then(|s| s.model.as_ref())
                            .map(|m| title_of(m, kind, &d.name))
                            .unwrap_or_default();
                        item(&d.name, completion_kind(kind), detail)
                    })
                    .collect()
            };
            match key.as_str() {
                "by" | "role" | "roles" => {
                    for r in self.roles() {
                        items.push(item(&r, CompletionItemKind::ENUM_MEMBER, "role".into()));
                    }
                }
                "to" if kind_of_key(key, line).is_none() => {
                    for r in RECIPIENTS.iter().map(|s| s.to_string()).chain(self.roles()) {
                        items.push(item(
                            &r,
                            CompletionItemKind::ENUM_MEMBER,
                            "recipient".into(),
                        ));
                    }
                }
                "calendar" => {
                    for c in self.stems("calendars").into_iter().chain(["always".into()]) {
                        items.push(item(&c, CompletionItemKind::MODULE, "calendar".into()));
                    }
                }
                "template" => {
                    for t in self.stems("templates") {
                        items.push(item(&t, CompletionItemKind::FILE, "template".into()));
                    }
                }
                "type" => {
                    for t in FIELD_TYPES {
                        items.push(item(
                            t,
                            CompletionItemKind::TYPE_PARAMETER,
                            "field type".into(),
                        ));
                    }
                }
                "workflow" => {
                    for f in &self.project.workflows {
                        if let Some(id) = index::workflow_id(&f.text) {
                            items.push(item(&id, CompletionItemKind::MODULE, f.path.clone()));
                        }
                    }
                }
                k => {
                    if let Some(kind) = kind_of_key(k, line) {
                        items = names(kind);
                    }
                }
            }
            return Some(CompletionResponse::Array(items));
        }
        if ctx.header {
            for section in self.schema_keys(None) {
                items.push(item(&section.0, CompletionItemKind::MODULE, section.1));
            }
            return Some(CompletionResponse::Array(items));
        }
        if ctx.key_position && !is_rhai {
            for (k, doc) in self.schema_keys(Some(&ctx.table)) {
                items.push(item(&k, CompletionItemKind::PROPERTY, doc));
            }
        }
        Some(CompletionResponse::Array(items))
    }

    /// The keys (and their doc comments) of the table `table` in a workflow
    /// file (`states.new` -> the keys of a state), or the top-level tables.
    fn schema_keys(&self, table: Option<&str>) -> Vec<(String, String)> {
        let root = &self.schema;
        let node = match table {
            None => Some(root),
            Some(t) => {
                let mut parts = t.split('.');
                let section = parts.next().unwrap_or("");
                let top = root.get("properties").and_then(|p| p.get(section));
                match (top, parts.next()) {
                    (Some(v), Some(_)) => {
                        let v = resolve(root, v);
                        v.get("additionalProperties").map(|a| resolve(root, a))
                    }
                    (Some(v), None) => Some(resolve(root, v)),
                    (None, _) => None,
                }
            }
        };
        let Some(props) = node
            .and_then(|n| n.get("properties"))
            .and_then(|p| p.as_object())
        else {
            return Vec::new();
        };
        props
            .iter()
            .map(|(k, v)| {
                let doc = resolve(root, v)
                    .get("description")
                    .or_else(|| v.get("description"))
                    .and_then(|d| d.as_str())
                    .unwrap_or_default()
                    .to_string();
                (k.clone(), doc)
            })
            .collect()
    }

    /// The name under the cursor and what it refers to.
    fn target(&self, path: &Path, src: &str, at: usize) -> Option<Target> {
        let (word, span) = text::word_at(src, at)?;
        let before = text::prefix_before(src, span.start);
        if before.ends_with("rules::") {
            return Some(Target::Function(word));
        }
        let subject = self.subject(path, src);
        let ctx = text::context(src, span.start);
        let line = before;
        let wanted = if before.ends_with("lead.") || before.ends_with("input.") {
            Some(Kind::Field)
        } else if let Some(k) = ctx.string_key.as_deref() {
            match k {
                "calendar" => return Some(Target::Calendar(word)),
                "workflow" => return Some(Target::Workflow(word)),
                "template" => return Some(Target::Template(word)),
                k => kind_of_key(k, line),
            }
        } else if ctx.header || line.trim_start().starts_with('[') {
            header_kind(line)
        } else {
            None
        };
        let subject = subject?;
        let decl = subject
            .decls
            .iter()
            .find(|d| d.name == word && wanted.is_none_or(|k| d.kind == k))?
            .clone();
        Some(Target::Decl(
            decl,
            subject.path,
            subject.text,
            subject.model,
        ))
    }

    /// The file, its text and the byte offset a request points at.
    fn at(&self, p: &TextDocumentPositionParams) -> Option<(PathBuf, String, usize)> {
        let path = p.text_document.uri.to_file_path().ok()?;
        let src = self.text(&path)?;
        let at = text::offset(&src, p.position);
        Some((path, src, at))
    }

    pub(super) fn hover(&self, p: HoverParams) -> Option<Hover> {
        let (path, src, at) = self.at(&p.text_document_position_params)?;
        let md = match self.target(&path, &src, at) {
            Some(Target::Decl(d, _, _, Some(m))) => describe(&m, d.kind, &d.name),
            Some(Target::Decl(d, _, _, None)) => format!("{} `{}`", d.kind.section(), d.name),
            Some(Target::Function(name)) => {
                let f = self.rules_functions().into_iter().find(|f| f.1 == name)?;
                format!("`rules::{}` ({} arguments), {}", f.1, f.2, self.rel(&f.0))
            }
            _ => {
                // A key: its documentation from the workflow schema.
                let ctx = text::context(&src, at);
                let (word, span) = text::word_at(&src, at)?;
                let after = src[span.end..].trim_start();
                if !after.starts_with('=') || after.starts_with("==") {
                    return None;
                }
                let _ = ctx;
                let table = text::context(&src, span.start).table;
                let (_, doc) = self
                    .schema_keys(Some(&table))
                    .into_iter()
                    .find(|(k, _)| *k == word)?;
                format!("`{word}`: {doc}")
            }
        };
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: md,
            }),
            range: None,
        })
    }

    pub(super) fn definition(&self, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let (path, src, at) = self.at(&p.text_document_position_params)?;
        let loc = |file: &Path, text: &str, span: Range<usize>| -> Option<Location> {
            Some(Location::new(
                Url::from_file_path(file).ok()?,
                text::range(text, &span),
            ))
        };
        let l = match self.target(&path, &src, at)? {
            Target::Decl(d, file, text, _) => loc(&file, &text, d.span)?,
            Target::Function(name) => {
                let (file, _, _, span, text) =
                    self.rules_functions().into_iter().find(|f| f.1 == name)?;
                loc(&file, &text, span)?
            }
            Target::Calendar(name) => {
                let f = self
                    .root
                    .as_ref()?
                    .join("calendars")
                    .join(format!("{name}.toml"));
                loc(&f, "", 0..0)?
            }
            Target::Template(name) => {
                let dir = self.root.as_ref()?.join("templates");
                let f = std::fs::read_dir(&dir)
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .and_then(|n| n.split('.').next())
                            == Some(name.as_str())
                    })?;
                loc(&f, "", 0..0)?
            }
            Target::Workflow(id) => {
                let f = self
                    .project
                    .workflows
                    .iter()
                    .find(|f| index::workflow_id(&f.text).as_deref() == Some(id.as_str()))?;
                loc(&self.abs(&f.path), "", 0..0)?
            }
        };
        Some(GotoDefinitionResponse::Scalar(l))
    }

    /// Rename a state or a field: its table headers, every quoted use and
    /// `lead.`/`input.` use in the workflow file, the rules modules it
    /// loads, and the scenarios that replay it.
    pub(super) fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>, String> {
        let new = p.new_name;
        let valid = new
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && new
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(format!(
                "`{new}` is not a valid name: lower-case letters, digits and `_`, starting with a letter"
            ));
        }
        let pos = p.text_document_position;
        let Some(path) = pos.text_document.uri.to_file_path().ok() else {
            return Ok(None);
        };
        let Some(src) = self.text(&path) else {
            return Ok(None);
        };
        let at = text::offset(&src, pos.position);
        let Some(Target::Decl(d, wf_path, wf_text, _)) = self.target(&path, &src, at) else {
            return Err("only a state or a field can be renamed here".into());
        };
        if !matches!(d.kind, Kind::State | Kind::Field) {
            return Err("only a state or a field can be renamed here".into());
        }
        if index::declarations(&wf_text)
            .iter()
            .any(|x| x.kind == d.kind && x.name == new)
        {
            return Err(format!(
                "a {} named `{new}` already exists",
                d.kind.section()
            ));
        }
        let mut changes: HashMap<Url, Vec<TextEdit>> = HashMap::new();
        let mut add = |file: &Path, text: &str, spans: Vec<Range<usize>>| {
            if spans.is_empty() {
                return;
            }
            if let Ok(uri) = Url::from_file_path(file) {
                let edits = changes.entry(uri).or_default();
                for s in spans {
                    let e = TextEdit::new(text::range(text, &s), new.clone());
                    if !edits.contains(&e) {
                        edits.push(e);
                    }
                }
            }
        };
        let uses = |text: &str, in_workflow: bool| -> Vec<Range<usize>> {
            let mut spans = Vec::new();
            if in_workflow {
                spans.extend(headers(text, d.kind, &d.name));
            }
            match d.kind {
                Kind::State => spans.extend(index::quoted(text, &d.name)),
                _ => {
                    spans.extend(index::after(text, "lead.", &d.name));
                    spans.extend(index::after(text, "input.", &d.name));
                    spans.extend(index::quoted(text, &d.name));
                    spans.extend(field_keys(text, &d.name));
                }
            }
            spans
        };
        add(&wf_path, &wf_text, uses(&wf_text, true));
        let wf_id = index::workflow_id(&wf_text);
        for f in &self.project.rules {
            if wf_text.contains(&format!("\"{}\"", f.path)) {
                let file = self.abs(&f.path);
                let t = self.text(&file).unwrap_or_else(|| f.text.clone());
                let spans = match d.kind {
                    Kind::State => index::quoted(&t, &d.name),
                    _ => index::after(&t, "lead.", &d.name),
                };
                add(&file, &t, spans);
            }
        }
        for (file, t) in &self.scenarios {
            if index::scenario_workflow(t).is_some() && index::scenario_workflow(t) == wf_id {
                let mut spans = index::quoted(t, &d.name);
                if d.kind == Kind::Field {
                    spans = field_keys(t, &d.name);
                }
                add(file, t, spans);
            }
        }
        Ok(Some(WorkspaceEdit::new(changes)))
    }
}

enum Target {
    Decl(Decl, PathBuf, String, Option<Arc<Workflow>>),
    Function(String),
    Calendar(String),
    Workflow(String),
    Template(String),
}

fn resolve<'a>(root: &'a serde_json::Value, v: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(r) = v.get("$ref").and_then(|r| r.as_str()) {
        let name = r.rsplit('/').next().unwrap_or("");
        for defs in ["$defs", "definitions"] {
            if let Some(d) = root.get(defs).and_then(|d| d.get(name)) {
                return resolve(root, d);
            }
        }
    }
    for alt in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = v.get(alt).and_then(|a| a.as_array()) {
            for x in list {
                let r = resolve(root, x);
                if r.get("properties").is_some() {
                    return r;
                }
            }
        }
    }
    v
}

fn ends_with_member(e: &str) -> bool {
    // `lead.ph`: completing a partly typed field name.
    let tail: String = e
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let rest = &e[..e.len() - tail.len()];
    !tail.is_empty() && (rest.ends_with("lead.") || rest.ends_with("input."))
}

fn header_kind(line: &str) -> Option<Kind> {
    let inner = line.trim_start().trim_start_matches('[');
    let section = inner.split('.').next()?;
    [
        Kind::State,
        Kind::Field,
        Kind::Transition,
        Kind::Timer,
        Kind::View,
        Kind::Kpi,
        Kind::Report,
    ]
    .into_iter()
    .find(|k| k.section() == section)
}

/// Spans of `name` in every `[section.name...]` header of its kind.
fn headers(text: &str, kind: Kind, name: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for (start, line) in index::lines(text) {
        let t = line.trim_start();
        if !t.starts_with('[') {
            continue;
        }
        let pat = format!("{}.{}", kind.section(), name);
        if let Some(i) = line.find(&pat) {
            let end = i + pat.len();
            let next = line[end..].chars().next();
            if matches!(next, Some('.') | Some(']')) {
                let s = start + i + kind.section().len() + 1;
                out.push(s..s + name.len());
            }
        }
    }
    out
}

/// `name = ` as a key inside a `fields = { ... }` inline table or a
/// `[...fields]` table (scenarios).
fn field_keys(text: &str, name: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut in_fields_table = false;
    for (start, line) in index::lines(text) {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_fields_table = t.trim_end().trim_end_matches(']').ends_with("fields");
            continue;
        }
        if !(in_fields_table || line.contains("fields")) {
            continue;
        }
        for s in index::after(line, "", name) {
            let rest = line[s.end..].trim_start();
            let prev = line[..s.start].trim_end().chars().next_back();
            let key_pos = matches!(prev, None | Some('{') | Some(','));
            if key_pos && rest.starts_with('=') && !rest.starts_with("==") {
                out.push(start + s.start..start + s.end);
            }
        }
    }
    out
}

fn item(label: &str, kind: CompletionItemKind, detail: String) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: (!detail.is_empty()).then_some(detail),
        ..Default::default()
    }
}

fn completion_kind(k: Kind) -> CompletionItemKind {
    match k {
        Kind::State => CompletionItemKind::ENUM_MEMBER,
        Kind::Field => CompletionItemKind::FIELD,
        Kind::Transition => CompletionItemKind::EVENT,
        Kind::Timer => CompletionItemKind::EVENT,
        _ => CompletionItemKind::VALUE,
    }
}

fn field_detail(f: &leadflow_engine::model::Field) -> String {
    format!("{}: {}", f.ty.name(), f.title)
}

fn title_of(m: &Workflow, kind: Kind, name: &str) -> String {
    // Indexed lookups: a completion lists every state of a 2,000-state
    // workflow, and a linear search per item made it quadratic.
    match kind {
        Kind::State => m.state(name).map(|i| m.states[i].title.clone()),
        Kind::Field => m.field(name).map(|i| field_detail(&m.fields[i])),
        Kind::Transition => m.transition(name).map(|i| m.transitions[i].title.clone()),
        Kind::Timer => m.timer(name).map(|i| m.timers[i].title.clone()),
        _ => None,
    }
    .unwrap_or_default()
}

/// Markdown for a hover on a declared name.
fn describe(m: &Workflow, kind: Kind, name: &str) -> String {
    match kind {
        Kind::State => {
            let Some(id) = m.state(name) else {
                return format!("state `{name}`");
            };
            let s = &m.states[id];
            let out: Vec<String> = m
                .transitions
                .iter()
                .filter(|t| t.from.get(id).copied().unwrap_or(false))
                .map(|t| match t.to {
                    Some(to) => format!("`{}` → `{}`", t.name, m.state_name(to)),
                    None => format!("`{}` (stays)", t.name),
                })
                .collect();
            let into: Vec<String> = m
                .transitions
                .iter()
                .filter(|t| t.to == Some(id))
                .map(|t| format!("`{}`", t.name))
                .collect();
            format!(
                "**state `{}`**{} — {}\n\ntransitions out: {}\n\nentered by: {}",
                s.name,
                if s.is_final { " (final)" } else { "" },
                s.title,
                if out.is_empty() {
                    "none".into()
                } else {
                    out.join(", ")
                },
                if into.is_empty() {
                    "none (initial only)".into()
                } else {
                    into.join(", ")
                },
            )
        }
        Kind::Field => match m.fields.iter().find(|f| f.name == name) {
            Some(f) => {
                let mut s = format!("**field `{}`**: `{}` — {}", f.name, f.ty.name(), f.title);
                if f.required {
                    s.push_str("\n\nrequired");
                }
                if f.pii {
                    let states: Vec<&str> = f.reveal_in.iter().map(|s| m.state_name(*s)).collect();
                    s.push_str(&format!(
                        "\n\npersonal data (pii), shown to non-admins in: {}",
                        if states.is_empty() {
                            "no state".into()
                        } else {
                            states.join(", ")
                        }
                    ));
                }
                if !f.values.is_empty() {
                    s.push_str(&format!("\n\nvalues: {}", f.values.join(", ")));
                }
                s
            }
            None => format!("field `{name}`"),
        },
        Kind::Transition => match m.transitions.iter().find(|t| t.name == name) {
            Some(t) => {
                let from: Vec<&str> = m
                    .states
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| t.from.get(*i).copied().unwrap_or(false))
                    .map(|(_, s)| s.name.as_str())
                    .collect();
                let mut s = format!(
                    "**transition `{}`** — {}\n\nfrom {} to {}",
                    t.name,
                    t.title,
                    from.join(", "),
                    t.to.map_or("(the same state)", |to| m.state_name(to))
                );
                if !t.by.is_empty() {
                    s.push_str(&format!("\n\nby: {}", t.by.join(", ")));
                }
                if let Some(g) = &t.guard_source {
                    s.push_str(&format!("\n\nguard: `{g}`"));
                }
                s
            }
            None => format!("transition `{name}`"),
        },
        k => format!("{} `{name}` — {}", k.section(), title_of(m, k, name)),
    }
}
