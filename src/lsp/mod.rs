//! `leadflow lsp`: a language server on stdio (JSON-RPC, `lsp-server`) for
//! workflow files, rules modules, calendars and scenarios.
//!
//! Diagnostics come from the same `leadflow_engine::load` as `leadflow
//! check` (same codes, same spans), over the project on disk with the
//! editor's unsaved buffers laid on top, after every change. Scenario files
//! are parsed and resolved as `leadflow test` does (S0xx codes).
//! Completion, hover, definition and rename read names from the text of
//! the files (`index.rs`), so they keep working while a file is broken,
//! and take types and titles from the last version of a workflow that
//! loaded. Editor set-up: docs/editors.md.

mod features;
mod index;
mod text;

use anyhow::Result;
use leadflow_engine::{Project, SourceFile, Workflow};
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{
    notification, request, CompletionOptions, Diagnostic, DiagnosticSeverity, InitializeParams,
    NumberOrString, OneOf, PublishDiagnosticsParams, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Url,
};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Run the server on stdin/stdout until the client says `exit`.
pub fn run() -> Result<ExitCode> {
    let (conn, io) = Connection::stdio();
    let caps = serde_json::to_value(capabilities())?;
    let params = conn.initialize(caps)?;
    let params: InitializeParams = serde_json::from_value(params)?;
    let mut server = Server::new(root_of(&params));
    server.main_loop(&conn)?;
    drop(conn);
    io.join()?;
    Ok(ExitCode::SUCCESS)
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "\"".into(), "[".into(), ":".into()]),
            ..Default::default()
        }),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Left(true)),
        ..Default::default()
    }
}

#[allow(deprecated)] // root_uri/root_path: what older clients still send
fn root_of(p: &InitializeParams) -> Option<PathBuf> {
    let uri = p
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .map(|f| f.uri.clone())
        .or_else(|| p.root_uri.clone())?;
    let dir = uri.to_file_path().ok()?;
    if crate::project::is_root(&dir) {
        Some(dir)
    } else {
        crate::project::root_above(&dir)
    }
}

/// The server's view of the project.
pub struct Server {
    root: Option<PathBuf>,
    /// Unsaved editor buffers by absolute path.
    open: HashMap<PathBuf, String>,
    /// The project as last analysed: paths relative to the root.
    project: Project,
    /// Scenario files (open or on disk) and their text.
    scenarios: Vec<(PathBuf, String)>,
    /// Message templates (`templates/`, open buffers first).
    templates: Vec<SourceFile>,
    /// The last load of the project.
    last: Option<leadflow_engine::Loaded>,
    /// Last version of each workflow file (by relative path) that loaded.
    good: HashMap<String, Arc<Workflow>>,
    /// Files that have diagnostics on the client now.
    published: BTreeSet<PathBuf>,
    schema: serde_json::Value,
}

impl Server {
    pub fn new(root: Option<PathBuf>) -> Self {
        Server {
            root,
            open: HashMap::new(),
            project: Project::default(),
            scenarios: Vec::new(),
            templates: Vec::new(),
            last: None,
            good: HashMap::new(),
            published: BTreeSet::new(),
            schema: serde_json::to_value(leadflow_engine::workflow_schema()).unwrap_or_default(),
        }
    }

    fn main_loop(&mut self, conn: &Connection) -> Result<()> {
        for msg in &conn.receiver {
            match msg {
                Message::Request(req) => {
                    if conn.handle_shutdown(&req)? {
                        return Ok(());
                    }
                    let resp = self.request(req);
                    conn.sender.send(Message::Response(resp))?;
                }
                Message::Notification(n) => {
                    if let Some(files) = self.notification(n) {
                        for p in self.diagnostics(&files) {
                            conn.sender.send(Message::Notification(Notification::new(
                                notification::PublishDiagnostics::METHOD.to_string(),
                                p,
                            )))?;
                        }
                    }
                }
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    /// A document notification; returns the files to publish diagnostics
    /// for when the project changed.
    fn notification(&mut self, n: Notification) -> Option<Vec<PathBuf>> {
        let path_of = |uri: &Url| uri.to_file_path().ok();
        match n.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                let path = path_of(&p.text_document.uri)?;
                if self.root.is_none() {
                    self.root = path.parent().and_then(crate::project::root_above);
                }
                self.open.insert(path, p.text_document.text);
            }
            notification::DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                let path = path_of(&p.text_document.uri)?;
                // Full sync: the last change is the whole text.
                let text = p.content_changes.into_iter().last()?.text;
                self.open.insert(path, text);
            }
            notification::DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                self.open.remove(&path_of(&p.text_document.uri)?);
            }
            notification::DidSaveTextDocument::METHOD => {}
            _ => return None,
        }
        Some(self.analyse())
    }

    /// The text of a file: the editor's buffer, else the disk.
    fn text(&self, path: &Path) -> Option<String> {
        self.open
            .get(path)
            .cloned()
            .or_else(|| std::fs::read_to_string(path).ok())
    }

    fn rel(&self, path: &Path) -> String {
        let shown = match &self.root {
            Some(r) => path.strip_prefix(r).unwrap_or(path),
            None => path,
        };
        shown.to_string_lossy().replace('\\', "/")
    }

    fn abs(&self, rel: &str) -> PathBuf {
        match &self.root {
            Some(r) => r.join(rel),
            None => PathBuf::from(rel),
        }
    }

    /// Read the project (disk + buffers) and load it; returns every file
    /// that may need a diagnostics update.
    pub fn analyse(&mut self) -> Vec<PathBuf> {
        let mut project = Project::default();
        let mut scenarios = Vec::new();
        let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
        if let Some(root) = self.root.clone() {
            for (dir, ext) in [
                ("workflows", "toml"),
                ("rules", "rhai"),
                ("calendars", "toml"),
            ] {
                for f in crate::project::walk(&root.join(dir), ext).unwrap_or_default() {
                    if let Some(text) = self.text(&f) {
                        let sf = SourceFile::new(self.rel(&f), text);
                        match dir {
                            "workflows" => project.workflows.push(sf),
                            "rules" => project.rules.push(sf),
                            _ => project.calendars.push(sf),
                        }
                        seen.insert(f);
                    }
                }
            }
            for dir in ["tests/scenarios", "scenarios"] {
                for f in crate::project::walk(&root.join(dir), "toml").unwrap_or_default() {
                    if let Some(text) = self.text(&f) {
                        seen.insert(f.clone());
                        scenarios.push((f, text));
                    }
                }
            }
        }
        // Open files outside the usual folders: a workflow or a scenario.
        for (path, text) in &self.open {
            if seen.contains(path) {
                continue;
            }
            match path.extension().and_then(|e| e.to_str()) {
                Some("toml") if text.contains("[[step]]") => {
                    scenarios.push((path.clone(), text.clone()))
                }
                Some("toml") if text.contains("[workflow]") => project
                    .workflows
                    .push(SourceFile::new(self.rel(path), text.clone())),
                Some("rhai") => project
                    .rules
                    .push(SourceFile::new(self.rel(path), text.clone())),
                _ => {}
            }
        }
        let mut loaded = leadflow_engine::load(&project);
        self.templates = self.read_templates();
        if !self.templates.is_empty() {
            let sources: Vec<_> = self
                .templates
                .iter()
                .map(|f| leadflow_runtime::templates::Source {
                    path: f.path.clone(),
                    text: f.text.clone(),
                })
                .collect();
            loaded
                .diagnostics
                .extend(leadflow_runtime::template_check::check(
                    &loaded.set,
                    &project.workflows,
                    &sources,
                ));
        }
        for wf in loaded.set.workflows.values() {
            self.good.insert(wf.file.clone(), wf.clone());
        }
        self.last = Some(loaded);
        self.project = project;
        self.scenarios = scenarios;
        let mut files: BTreeSet<PathBuf> = self.published.clone();
        files.extend(self.open.keys().cloned());
        if let Some(l) = &self.last {
            files.extend(l.diagnostics.iter().map(|d| self.abs(&d.file)));
        }
        files.extend(self.scenarios.iter().map(|(p, _)| p.clone()));
        files.into_iter().collect()
    }
}

/// Diagnostics, as the client receives them.
impl Server {
    fn source(&self, rel: &str) -> Option<&SourceFile> {
        let p = &self.project;
        p.workflows
            .iter()
            .chain(&p.rules)
            .chain(&p.calendars)
            .chain(&self.templates)
            .find(|f| f.path == rel)
    }

    /// The project's message templates as `leadflow check` reads them
    /// (`templates/[<workflow>/]<id>[.<lang>].<txt|html>`), an open
    /// editor buffer in place of the file on disk.
    fn read_templates(&self) -> Vec<SourceFile> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let dir = root.join("templates");
        let Ok(sources) = leadflow_runtime::templates::read_dir_as(&dir, "templates") else {
            return Vec::new();
        };
        sources
            .into_iter()
            .map(|s| {
                let text = self.open.get(&self.abs(&s.path)).cloned().unwrap_or(s.text);
                SourceFile::new(s.path, text)
            })
            .collect()
    }

    /// The diagnostics of `files` (an empty list clears a file).
    pub fn diagnostics(&mut self, files: &[PathBuf]) -> Vec<PublishDiagnosticsParams> {
        let mut by_file: HashMap<PathBuf, Vec<Diagnostic>> = HashMap::new();
        if let Some(l) = &self.last {
            for d in &l.diagnostics {
                let Some(sf) = self.source(&d.file) else {
                    continue;
                };
                let mut message = d.message.clone();
                if !d.hint.is_empty() {
                    message.push_str("\nhelp: ");
                    message.push_str(&d.hint);
                }
                by_file
                    .entry(self.abs(&d.file))
                    .or_default()
                    .push(Diagnostic {
                        range: text::range(&sf.text, &d.span),
                        severity: Some(if d.is_error() {
                            DiagnosticSeverity::ERROR
                        } else {
                            DiagnosticSeverity::WARNING
                        }),
                        code: Some(NumberOrString::String(d.code.to_string())),
                        source: Some("leadflow".into()),
                        message,
                        ..Default::default()
                    });
            }
        }
        let set = self.last.as_ref().map(|l| &l.set);
        for (path, src) in &self.scenarios {
            let name = path.to_string_lossy();
            let err = match leadflow_runtime::scenario::parse(&name, src) {
                Ok(s) => match set {
                    Some(set) => s.resolve(set, &[]).err(),
                    None => None,
                },
                Err(e) => Some(e),
            };
            if let Some(e) = err {
                let sf = SourceFile::new(name.to_string(), src.clone());
                let start = sf.offset_of(e.line, e.column);
                let end = text::word_at(src, start).map_or(start, |(_, r)| r.end.max(start));
                by_file.entry(path.clone()).or_default().push(Diagnostic {
                    range: text::range(src, &(start..end)),
                    severity: Some(DiagnosticSeverity::ERROR),
                    code: Some(NumberOrString::String(e.code.to_string())),
                    source: Some("leadflow".into()),
                    message: e.message,
                    ..Default::default()
                });
            }
        }
        let mut out = Vec::new();
        for f in files {
            let diags = by_file.remove(f).unwrap_or_default();
            if diags.is_empty() && !self.published.contains(f) && !self.open.contains_key(f) {
                continue;
            }
            if diags.is_empty() {
                self.published.remove(f);
            } else {
                self.published.insert(f.clone());
            }
            if let Ok(uri) = Url::from_file_path(f) {
                out.push(PublishDiagnosticsParams::new(uri, diags, None));
            }
        }
        out
    }
}

impl Server {
    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            request::Completion::METHOD => serde_json::from_value(req.params)
                .map(|p| serde_json::to_value(self.completion(p)))
                .map_err(|e| e.to_string()),
            request::HoverRequest::METHOD => serde_json::from_value(req.params)
                .map(|p| serde_json::to_value(self.hover(p)))
                .map_err(|e| e.to_string()),
            request::GotoDefinition::METHOD => serde_json::from_value(req.params)
                .map(|p| serde_json::to_value(self.definition(p)))
                .map_err(|e| e.to_string()),
            request::Rename::METHOD => match serde_json::from_value(req.params) {
                Ok(p) => match self.rename(p) {
                    Ok(edit) => Ok(serde_json::to_value(edit)),
                    Err(e) => {
                        return Response::new_err(
                            id,
                            lsp_server::ErrorCode::InvalidParams as i32,
                            e,
                        )
                    }
                },
                Err(e) => Err(e.to_string()),
            },
            _ => {
                return Response::new_err(
                    id,
                    lsp_server::ErrorCode::MethodNotFound as i32,
                    format!("unsupported request {}", req.method),
                )
            }
        };
        match result {
            Ok(Ok(v)) => Response::new_ok(id, v),
            Ok(Err(e)) => Response::new_err(
                id,
                lsp_server::ErrorCode::InternalError as i32,
                e.to_string(),
            ),
            Err(e) => Response::new_err(id, lsp_server::ErrorCode::InvalidParams as i32, e),
        }
    }
}
