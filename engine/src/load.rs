//! Stage two of loading: raw model -> resolved model, collecting every
//! diagnostic on the way (a run reports all findings, not just the first).
//!
//! This file is long because it is a table of checks, one per key of the
//! workflow format, in the order the format documents them.

use crate::calendar::Calendar;
use crate::diag::{refine, Diagnostic, SourceFile};
use crate::duration::Span as Dur;
use crate::model::*;
use crate::raw::{RawCustomer, RawEffect, RawFile, RawRecipient};
use crate::script::{ScriptError, ScriptId, ScriptProblem, Scripts};
use crate::value::{FieldType, Value};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// Everything a set of workflows is loaded from, already read by the caller
/// (the engine does no IO). Paths are relative to the project root, e.g.
/// `workflows/aslm.toml`, `rules/aslm.rhai`, `calendars/it.toml`.
#[derive(Debug, Default, Clone)]
pub struct Project {
    pub workflows: Vec<SourceFile>,
    pub rules: Vec<SourceFile>,
    pub calendars: Vec<SourceFile>,
}

/// Loaded workflows by id.
#[derive(Debug, Default)]
pub struct WorkflowSet {
    pub workflows: BTreeMap<String, Arc<Workflow>>,
}

impl WorkflowSet {
    pub fn get(&self, id: &str) -> Option<&Arc<Workflow>> {
        self.workflows.get(id)
    }
}

/// The result of loading: the workflows that loaded, and every finding.
#[derive(Debug)]
pub struct Loaded {
    pub set: WorkflowSet,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Load and check a project. Workflows with errors are left out of the set.
pub fn load(project: &Project) -> Loaded {
    let mut diags = Vec::new();
    let calendars = load_calendars(project, &mut diags);
    let mut spawns = Vec::new();
    let mut loaded: Vec<(Workflow, usize, Range<usize>)> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (fi, file) in project.workflows.iter().enumerate() {
        let raw: RawFile = match toml::from_str(&file.text) {
            Ok(r) => r,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                diags.push(Diagnostic::new(
                    "E001",
                    file,
                    span,
                    e.message().trim().to_string(),
                ));
                continue;
            }
        };
        let id_span = raw.workflow.id.span();
        let id = raw.workflow.id.get_ref().clone();
        if let Some(&prev) = ids.get(&id) {
            diags.push(
                Diagnostic::new(
                    "E002",
                    file,
                    id_span.clone(),
                    format!(
                        "workflow id `{id}` is already used by {}",
                        project.workflows[prev].path
                    ),
                )
                .hint("give each workflow a unique id"),
            );
            continue;
        }
        ids.insert(id, fi);
        let before = diags.len();
        let mut r = Resolver {
            file,
            diags: &mut diags,
            project,
            spawns: Vec::new(),
            fire_linked: Vec::new(),
            rules_incomplete: false,
            roles: Vec::new(),
            customer_email: false,
            in_initial: false,
            declared_roles: None,
            role_uses: Vec::new(),
            area: None,
        };
        if let Some(wf) = r.workflow(raw, &calendars) {
            let spawn_checks = std::mem::take(&mut r.spawns);
            let fire_checks = std::mem::take(&mut r.fire_linked);
            let clean = !diags[before..].iter().any(Diagnostic::is_error);
            // A file with errors has an incomplete graph (an unknown `to`
            // becomes a self-loop, a broken timer loses its edge): checking
            // it would report states as stuck or unreachable that are not.
            if clean {
                crate::check::graph(&wf, file, &mut diags);
            }
            spawns.push((fi, spawn_checks, fire_checks));
            if clean {
                loaded.push((wf, fi, id_span));
            }
        }
    }
    // Spawns cross workflows: check targets once every workflow is known.
    let by_id: HashMap<&str, &Workflow> =
        loaded.iter().map(|(w, _, _)| (w.id.as_str(), w)).collect();
    let mut bad_files = Vec::new();
    let mut spawns_on_create = Vec::new();
    for (fi, checks, fire_checks) in spawns {
        let file = &project.workflows[fi];
        for c in checks {
            if c.on_create {
                spawns_on_create.push((fi, c.workflow.clone(), c.span.clone()));
            }
            let n = diags.len();
            check_spawn(file, &c, &by_id, &ids, &mut diags);
            if diags[n..].iter().any(Diagnostic::is_error) {
                bad_files.push(fi);
            }
        }
        for c in fire_checks {
            let n = diags.len();
            check_fire_linked(file, &c, &by_id, &mut diags);
            if diags[n..].iter().any(Diagnostic::is_error) {
                bad_files.push(fi);
            }
        }
    }
    spawn_cycles(project, &spawns_on_create, &ids, &mut diags, &mut bad_files);
    let mut set = WorkflowSet::default();
    for (wf, fi, _) in loaded {
        if !bad_files.contains(&fi) {
            set.workflows.insert(wf.id.clone(), Arc::new(wf));
        }
    }
    diags.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code))
    });
    // A rules module shared by several workflows is compiled for each: report
    // its errors once.
    diags.dedup_by(|a, b| {
        (&a.file, &a.span, a.code, &a.message) == (&b.file, &b.span, b.code, &b.message)
    });
    Loaded {
        set,
        diagnostics: diags,
    }
}

fn load_calendars(
    project: &Project,
    diags: &mut Vec<Diagnostic>,
) -> HashMap<String, Result<(Arc<Calendar>, String), ()>> {
    let mut out = HashMap::new();
    for f in &project.calendars {
        let stem = f
            .path
            .rsplit('/')
            .next()
            .unwrap_or(&f.path)
            .trim_end_matches(".toml")
            .to_string();
        match Calendar::parse(&stem, &f.text) {
            Ok(c) => {
                out.insert(stem, Ok((Arc::new(c), f.text.clone())));
            }
            Err(e) => {
                diags.push(Diagnostic::new(
                    e.code(),
                    f,
                    e.span().unwrap_or(0..0),
                    e.to_string(),
                ));
                out.insert(stem, Err(()));
            }
        }
    }
    out
}

/// Unconditional spawn cycles (E029): workflow `a` spawns `b` whenever a
/// record of `a` is created (an unconditional, immediate spawn in the
/// initial state's `on_enter`), `b` spawns `a` (or `a` spawns itself): every
/// creation starts an endless cascade. Each spawn on such a cycle is
/// reported where it is written, and its file is not loaded.
fn spawn_cycles(
    project: &Project,
    edges: &[(usize, String, Range<usize>)],
    ids: &HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
    bad_files: &mut Vec<usize>,
) {
    use petgraph::algo::tarjan_scc;
    use petgraph::graph::DiGraph;
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let mut node = HashMap::new();
    let mut file_of = HashMap::new();
    for (id, &fi) in ids {
        file_of.insert(fi, id.as_str());
    }
    let mut idx =
        |g: &mut DiGraph<usize, ()>, fi: usize| *node.entry(fi).or_insert_with(|| g.add_node(fi));
    let mut resolved = Vec::new();
    for (fi, target, span) in edges {
        let Some(&ti) = ids.get(target) else { continue };
        let (a, b) = (idx(&mut g, *fi), idx(&mut g, ti));
        g.add_edge(a, b, ());
        resolved.push((*fi, ti, span.clone()));
    }
    let mut scc_of = HashMap::new();
    for (k, scc) in tarjan_scc(&g).into_iter().enumerate() {
        let cyclic = scc.len() > 1 || scc.iter().any(|&n| g.contains_edge(n, n));
        if cyclic {
            let mut members: Vec<&str> = scc
                .iter()
                .filter_map(|&n| file_of.get(&g[n]).copied())
                .collect();
            members.sort_unstable();
            for &n in &scc {
                scc_of.insert(g[n], (k, members.clone()));
            }
        }
    }
    for (fi, ti, span) in resolved {
        let (Some((a, members)), Some((b, _))) = (scc_of.get(&fi), scc_of.get(&ti)) else {
            continue;
        };
        if a != b {
            continue;
        }
        let file = &project.workflows[fi];
        let me = file_of.get(&fi).copied().unwrap_or("");
        let target = file_of.get(&ti).copied().unwrap_or("");
        let cycle = if members.len() == 1 {
            format!("`{me}` spawns itself")
        } else {
            format!(
                "workflows {} spawn each other",
                members
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        diags.push(Diagnostic::new(
            "E029",
            file,
            refine(&file.text, &span, target),
            format!(
                "every new `{me}` record spawns a `{target}` record, unconditionally: {cycle}, so one creation never ends"
            ),
        ));
        if !bad_files.contains(&fi) {
            bad_files.push(fi);
        }
    }
}

/// A `fire_linked` transition to check once all workflows are loaded: some
/// workflow must have a transition of that name that `system` may fire.
struct FireLinkedCheck {
    transition: String,
    span: Range<usize>,
}

fn check_fire_linked(
    file: &SourceFile,
    c: &FireLinkedCheck,
    by_id: &HashMap<&str, &Workflow>,
    diags: &mut Vec<Diagnostic>,
) {
    let fired = by_id.values().any(|w| {
        w.transition(&c.transition)
            .is_some_and(|t| w.transitions[t].allows_role("system"))
    });
    if !fired {
        diags.push(
            Diagnostic::new(
                "E005",
                file,
                refine(&file.text, &c.span, &c.transition),
                format!(
                    "`fire_linked` names `{}`, which no workflow has as a transition `system` may fire",
                    c.transition
                ),
            )
            .hint("add by = [\"system\"] to that transition in the linked workflow"),
        );
    }
}

/// A spawn to check once all workflows are loaded.
struct SpawnCheck {
    workflow: String,
    span: Range<usize>,
    /// Target field, source type (None: a script, checked at run time), span.
    map: Vec<(String, Option<FieldType>)>,
    /// Unconditional and immediate, on entering the initial state: every
    /// creation of a record of this workflow spawns it.
    on_create: bool,
}

fn check_spawn(
    file: &SourceFile,
    c: &SpawnCheck,
    by_id: &HashMap<&str, &Workflow>,
    ids: &HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(target) = by_id.get(c.workflow.as_str()) else {
        if !ids.contains_key(&c.workflow) {
            let mut known: Vec<&str> = ids.keys().map(String::as_str).collect();
            known.sort();
            diags.push(
                Diagnostic::new(
                    "E006",
                    file,
                    refine(&file.text, &c.span, &c.workflow),
                    format!("spawn of unknown workflow `{}`", c.workflow),
                )
                .hint(format!("known workflows: {}", known.join(", "))),
            );
        }
        return;
    };
    for (field, src_ty) in &c.map {
        let span = refine(&file.text, &c.span, field);
        match target.field(field) {
            None => diags.push(Diagnostic::new(
                "E004",
                file,
                span,
                format!(
                    "workflow `{}` has no field `{field}` to map into",
                    target.id
                ),
            )),
            Some(fid) => {
                let to = target.fields[fid].ty;
                if let Some(from) = src_ty {
                    if !to.accepts(*from) {
                        diags.push(Diagnostic::new(
                            "E013",
                            file,
                            span,
                            format!(
                                "`{field}` of `{}` is {} but the mapped value is {}",
                                target.id,
                                to.name(),
                                from.name()
                            ),
                        ));
                    }
                }
            }
        }
    }
}

struct Resolver<'a> {
    file: &'a SourceFile,
    diags: &'a mut Vec<Diagnostic>,
    project: &'a Project,
    spawns: Vec<SpawnCheck>,
    fire_linked: Vec<FireLinkedCheck>,
    /// A rules module is missing or does not compile: calls to `rules::`
    /// functions cannot be checked (they would all look unknown).
    rules_incomplete: bool,
    /// Roles the workflow names in `by` and `assign`: what a bare name in a
    /// `notify`'s `to` may be.
    roles: Vec<String>,
    /// Whether `customer` has an e-mail field.
    customer_email: bool,
    /// Resolving the `on_enter` of the initial state.
    in_initial: bool,
    /// Roles declared by `[workflow] roles`, if the workflow declares them.
    declared_roles: Option<Vec<String>>,
    /// Every place a role is named: (role, span), for the checks of roles.
    role_uses: Vec<(String, Range<usize>)>,
    /// `[workflow] area`, resolved: what `area.<role>` relations compare.
    area: Option<FieldId>,
}

/// Entries of a spanned-key map in file order.
fn in_file_order<T>(m: BTreeMap<Spanned<String>, T>) -> Vec<(String, Range<usize>, T)> {
    let mut v: Vec<_> = m
        .into_iter()
        .map(|(k, t)| (k.get_ref().clone(), k.span(), t))
        .collect();
    v.sort_by_key(|(_, s, _)| s.start);
    v
}

/// Tables that hold names, while resolving one workflow.
struct Names {
    states: HashMap<String, StateId>,
    finals: Vec<bool>,
    fields: Arc<HashMap<String, FieldId>>,
    field_types: Vec<FieldType>,
}

impl Resolver<'_> {
    fn err(&mut self, code: &'static str, span: Range<usize>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(code, self.file, span, msg));
    }

    fn did_you_mean<'k>(name: &str, known: impl Iterator<Item = &'k String>) -> String {
        let mut known: Vec<&String> = known.collect();
        known.sort();
        // The closest name wins (ties: the first in alphabetical order).
        let close = known
            .iter()
            .map(|k| (strsim(name, k), k))
            .filter(|(d, _)| *d <= 2)
            .min_by_key(|(d, _)| *d);
        match close {
            Some((_, k)) => format!("did you mean `{k}`?"),
            None if known.is_empty() => "known: none".to_string(),
            None => format!(
                "known: {}",
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn workflow(
        &mut self,
        raw: RawFile,
        calendars: &HashMap<String, Result<(Arc<Calendar>, String), ()>>,
    ) -> Option<Workflow> {
        let mut hash_input = self.file.text.clone();
        // Calendar.
        let calendar = match &raw.workflow.calendar {
            None => Arc::new(Calendar::always_open()),
            Some(c) => match calendars.get(c.get_ref()) {
                Some(Ok((cal, text))) => {
                    hash_input.push_str(text);
                    cal.clone()
                }
                Some(Err(())) => Arc::new(Calendar::always_open()),
                None => {
                    let hint = Self::did_you_mean(c.get_ref(), calendars.keys());
                    self.diags.push(
                        Diagnostic::new(
                            "E010",
                            self.file,
                            c.span(),
                            format!("unknown calendar `{}`", c.get_ref()),
                        )
                        .hint(format!("add calendars/{}.toml; {hint}", c.get_ref())),
                    );
                    Arc::new(Calendar::always_open())
                }
            },
        };
        // Rules modules.
        let mut rules = Vec::new();
        for r in &raw.workflow.rules {
            match self.project.rules.iter().find(|f| &f.path == r.get_ref()) {
                Some(f) => {
                    hash_input.push_str(&f.text);
                    rules.push((f.path.as_str(), f.text.as_str()));
                }
                None => {
                    self.rules_incomplete = true;
                    let known: Vec<String> =
                        self.project.rules.iter().map(|f| f.path.clone()).collect();
                    let hint = Self::did_you_mean(r.get_ref(), known.iter());
                    self.diags.push(
                        Diagnostic::new(
                            "E009",
                            self.file,
                            r.span(),
                            format!("rules module `{}` not found", r.get_ref()),
                        )
                        .hint(hint),
                    );
                }
            }
        }
        let mut scripts = match Scripts::new(calendar.clone(), &rules) {
            Ok(s) => s,
            Err((path, e)) => {
                self.rules_incomplete = true;
                if let Some(f) = self.project.rules.iter().find(|f| f.path == path) {
                    let off = f.offset_of(e.line, e.column);
                    self.diags.push(Diagnostic::new(
                        "E008",
                        f,
                        off..off + 1,
                        format!("rules module does not compile: {}", e.message),
                    ));
                }
                Scripts::new(calendar.clone(), &[]).ok()?
            }
        };
        for (path, p) in scripts.module_problems() {
            let Some(f) = self.project.rules.iter().find(|f| &f.path == path) else {
                continue;
            };
            let (line, column) = p.position();
            let at = f.offset_of(line, column);
            if let Some(d) = self.problem(p, f, at, None) {
                self.diags.push(d);
            }
        }

        // States.
        let states_raw = in_file_order(raw.states);
        let mut state_index = HashMap::new();
        for (i, (name, _, _)) in states_raw.iter().enumerate() {
            state_index.insert(name.clone(), i);
        }
        let finals: Vec<bool> = states_raw.iter().map(|(_, _, s)| s.is_final).collect();
        // Fields.
        let fields_raw = in_file_order(raw.fields);
        let field_index: Arc<HashMap<String, FieldId>> = Arc::new(
            fields_raw
                .iter()
                .enumerate()
                .map(|(i, (n, _, _))| (n.clone(), i))
                .collect(),
        );
        let names = Names {
            states: state_index.clone(),
            finals: finals.clone(),
            fields: field_index.clone(),
            field_types: fields_raw.iter().map(|(_, _, f)| *f.ty.get_ref()).collect(),
        };
        let mut fields = Vec::new();
        for (name, span, f) in fields_raw {
            let ty = *f.ty.get_ref();
            let pattern = f.pattern.as_ref().and_then(|p| {
                match regex::Regex::new(&format!("^(?:{})$", p.get_ref())) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let msg = e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        self.err(
                            "E014",
                            p.span(),
                            format!("pattern of `{name}` is not a valid regular expression: {msg}"),
                        );
                        None
                    }
                }
            });
            if ty == FieldType::Enum && f.values.is_empty() {
                self.err(
                    "E015",
                    f.ty.span(),
                    format!("enum field `{name}` has no `values`"),
                );
            }
            if ty != FieldType::Enum && !f.values.is_empty() {
                self.err(
                    "E015",
                    f.values[0].span(),
                    format!("`values` given to `{name}`, which is a {} field", ty.name()),
                );
            }
            let values: Vec<String> = f.values.iter().map(|v| v.get_ref().clone()).collect();
            let default = f.default.as_ref().and_then(|d| {
                match ty
                    .coerce(Value::from_toml(d))
                    .and_then(|v| crate::value::check_range(&v).map(|()| v))
                {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.err("E019", span.clone(), format!("default of `{name}`: {e}"));
                        None
                    }
                }
            });
            let reveal_in = self.states(&f.reveal_in, &names, false);
            if f.pii && f.reveal_in.is_empty() {
                self.err(
                    "W003",
                    span.clone(),
                    format!("pii field `{name}` is never revealed to an assigned actor"),
                );
            }
            let searchable = matches!(ty, FieldType::String | FieldType::Text | FieldType::Enum);
            if f.search == Some(true) && !searchable {
                self.err(
                    "E080",
                    span.clone(),
                    format!(
                        "`search = true` on `{name}`, which is a {} field: only string, text and enum fields are searched",
                        ty.name()
                    ),
                );
            }
            let search = f
                .search
                .unwrap_or(matches!(ty, FieldType::String | FieldType::Text))
                && searchable;
            fields.push(Field {
                title: f.title.unwrap_or_else(|| name.clone()),
                name,
                ty,
                pattern,
                values,
                required: f.required,
                default,
                pii: f.pii,
                reveal_in,
                track: f.track,
                indexed: f.indexed,
                search,
            });
        }
        let customer = self.customer(raw.customer.as_ref(), &names);
        self.area = raw.workflow.area.as_ref().and_then(|a| {
            let f = self.field(a, &names)?;
            if !matches!(
                names.field_types[f],
                FieldType::String | FieldType::Enum | FieldType::Text
            ) {
                self.err(
                    "E037",
                    a.span(),
                    format!(
                        "`[workflow] area` must name a string or enum field; `{}` is {}",
                        a.get_ref(),
                        names.field_types[f].name()
                    ),
                );
                return None;
            }
            Some(f)
        });
        let visible_to = self.relations(&raw.workflow.visible_to, raw.workflow.area.is_some());
        let reveal_to = self.relations(&raw.workflow.reveal_to, raw.workflow.area.is_some());
        self.customer_email = customer.email.is_some();
        self.declared_roles = raw
            .workflow
            .roles
            .as_ref()
            .map(|r| r.iter().map(|x| x.get_ref().clone()).collect());
        self.roles = match &self.declared_roles {
            Some(d) => d.clone(),
            None => known_roles(&raw.transitions, &raw.timers, &states_raw),
        };

        let initial = self.state(&raw.workflow.initial, &names).unwrap_or(0);
        if states_raw.is_empty() {
            self.err(
                "E003",
                raw.workflow.initial.span(),
                "the workflow declares no states",
            );
            return None;
        }

        let mut states = Vec::new();
        for (name, span, s) in states_raw {
            self.in_initial = states.len() == initial;
            let on_enter = self.effects(&s.on_enter, &names, &mut scripts);
            self.in_initial = false;
            states.push(State {
                title: s.title.unwrap_or_else(|| name.clone()),
                name,
                is_final: s.is_final,
                on_enter,
                span,
            });
        }

        // Transitions.
        let transitions_raw = in_file_order(raw.transitions);
        let transition_index: HashMap<String, TransitionId> = transitions_raw
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| (n.clone(), i))
            .collect();
        let timer_names: HashMap<String, TimerId> = {
            let mut v: Vec<(&Spanned<String>, ())> = raw.timers.keys().map(|k| (k, ())).collect();
            v.sort_by_key(|(k, _)| k.span().start);
            v.iter()
                .enumerate()
                .map(|(i, (k, _))| (k.get_ref().clone(), i))
                .collect()
        };
        let mut transitions = Vec::new();
        let has_area = raw.workflow.area.is_some();
        for (name, span, t) in transitions_raw {
            let mut by_relations = Vec::new();
            for b in &t.by {
                if crate::org::Relation::is_relation(b.get_ref()) {
                    by_relations.extend(self.relations(std::slice::from_ref(b), has_area));
                } else if b.get_ref() != "system" && b.get_ref() != "*" {
                    let at = refine(&self.file.text, &b.span(), b.get_ref());
                    self.role_uses.push((b.get_ref().clone(), at));
                }
            }
            let from = self.states_spec(&t.from, &names, Some(&name));
            let to = t.to.as_ref().and_then(|s| self.state(s, &names));
            if t.by.is_empty() {
                self.err(
                    "W002",
                    span.clone(),
                    format!("transition `{name}` has no `by`: nobody can fire it"),
                );
            }
            let input = self.fields(&t.input, &names);
            let require = self.fields(&t.require, &names);
            let guard = t
                .guard
                .as_ref()
                .and_then(|g| self.script(g, &names, &mut scripts));
            let effects = self.effects(&t.effects, &names, &mut scripts);
            let rearm = match &t.rearm {
                None => Rearm::None,
                Some(v) => match v.get_ref() {
                    toml::Value::Boolean(true) => Rearm::All,
                    toml::Value::Boolean(false) => Rearm::None,
                    toml::Value::Array(items) => {
                        let mut ids = Vec::new();
                        for it in items {
                            let n = it.as_str().unwrap_or("");
                            match timer_names.get(n) {
                                Some(&i) => ids.push(i),
                                None => self.err(
                                    "E022",
                                    refine(&self.file.text, &v.span(), n),
                                    format!("`rearm` names unknown timer `{n}`"),
                                ),
                            }
                        }
                        Rearm::Some(ids)
                    }
                    _ => {
                        self.err(
                            "E001",
                            v.span(),
                            "`rearm` must be true or a list of timer names",
                        );
                        Rearm::None
                    }
                },
            };
            transitions.push(Transition {
                title: t.title.unwrap_or_else(|| name.clone()),
                name,
                from,
                to,
                by: t.by.iter().map(|b| b.get_ref().clone()).collect(),
                by_relations,
                input,
                require,
                guard,
                guard_source: t.guard.as_ref().map(|g| g.get_ref().clone()),
                effects,
                rearm,
                span,
            });
        }

        // Timers.
        let mut timers = Vec::new();
        for (name, span, t) in in_file_order(raw.timers) {
            let in_states = self.states_spec(&t.in_states, &names, None);
            let due = match (&t.after, &t.at) {
                (Some(a), None) => {
                    match Dur::parse(a.get_ref()) {
                        Ok(d) => {
                            let since = t.since.as_ref().and_then(|s| {
                            let f = self.field(s, &names)?;
                            if !matches!(names.field_types[f], FieldType::Datetime | FieldType::Date) {
                                self.err("E019", s.span(), format!("`since` must name a date or datetime field; `{}` is {}", s.get_ref(), names.field_types[f].name()));
                            }
                            Some(f)
                        });
                            Some(Due::After {
                                amount: d.amount,
                                unit: d.unit,
                                since,
                            })
                        }
                        Err(e) => {
                            self.err("E016", a.span(), e);
                            None
                        }
                    }
                }
                (None, Some(at)) => self.script(at, &names, &mut scripts).map(Due::At),
                _ => {
                    self.err(
                        "E017",
                        span.clone(),
                        format!("timer `{name}` needs exactly one of `after` and `at`"),
                    );
                    None
                }
            };
            let action = match (&t.fire, t.effects.is_empty()) {
                (Some(f), true) => match transition_index.get(f.get_ref()) {
                    Some(&ti) => {
                        let tr = &transitions[ti];
                        for (s, armed) in in_states.iter().enumerate() {
                            if *armed && !tr.enabled_from(s) && !names.finals[s] {
                                self.diags.push(
                                    Diagnostic::new("E012", self.file, f.span(), format!("timer `{name}` fires `{}`, which is not enabled in state `{}`", tr.name, states[s].name))
                                        .hint(format!("add \"{}\" to the `from` of transition `{}`", states[s].name, tr.name)),
                                );
                            }
                        }
                        if !tr.allows_role("system") {
                            self.diags.push(
                                Diagnostic::new("E012", self.file, f.span(), format!("timer `{name}` fires `{}`, whose `by` does not include \"system\"", tr.name))
                                    .hint(format!("add \"system\" to the `by` of transition `{}`", tr.name)),
                            );
                        }
                        Some(TimerAction::Fire(ti))
                    }
                    None => {
                        let hint = Self::did_you_mean(f.get_ref(), transition_index.keys());
                        self.diags.push(
                            Diagnostic::new(
                                "E005",
                                self.file,
                                f.span(),
                                format!(
                                    "timer `{name}` fires unknown transition `{}`",
                                    f.get_ref()
                                ),
                            )
                            .hint(hint),
                        );
                        None
                    }
                },
                (None, false) => Some(TimerAction::Effects(self.effects(
                    &t.effects,
                    &names,
                    &mut scripts,
                ))),
                _ => {
                    self.err(
                        "E017",
                        span.clone(),
                        format!("timer `{name}` needs exactly one of `fire` and `do`"),
                    );
                    None
                }
            };
            if let (Some(due), Some(action)) = (due, action) {
                let due_text = match (&t.after, &t.at) {
                    (Some(a), _) => format!(
                        "after {}{}",
                        a.get_ref().trim(),
                        t.since
                            .as_ref()
                            .map(|s| format!(" since {}", s.get_ref()))
                            .unwrap_or_default()
                    ),
                    (None, Some(at)) => format!("at {}", at.get_ref().trim()),
                    (None, None) => String::new(),
                };
                timers.push(Timer {
                    title: t.title.unwrap_or_else(|| name.clone()),
                    name,
                    in_states,
                    due,
                    due_text,
                    action,
                    span,
                });
            }
        }
        let timer_index = timers
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();

        // Views, KPIs, reports.
        let mut views = Vec::new();
        for (name, _, v) in in_file_order(raw.views) {
            let states = self.states(&v.states, &names, true);
            let filter = v
                .filter
                .as_ref()
                .and_then(|f| self.script(f, &names, &mut scripts));
            let mut columns = Vec::new();
            for c in v.columns.iter().chain(v.sort.iter()) {
                let col = c.get_ref().trim_start_matches('-');
                if !names.fields.contains_key(col) && !VIEW_COLUMNS.contains(&col) {
                    let hint = Self::did_you_mean(col, names.fields.keys());
                    self.diags.push(
                        Diagnostic::new(
                            "E004",
                            self.file,
                            c.span(),
                            format!("view `{name}` shows unknown column `{col}`"),
                        )
                        .hint(hint),
                    );
                }
            }
            for c in &v.columns {
                columns.push(c.get_ref().clone());
            }
            views.push(View {
                title: v.title.unwrap_or_else(|| name.clone()),
                name,
                states,
                filter,
                filter_source: v.filter.map(|f| f.into_inner()),
                columns,
                sort: v.sort.map(|s| s.into_inner()),
            });
        }
        let mut queues = Vec::new();
        for (name, _, q) in in_file_order(raw.queues) {
            queues.push(self.queue(name, q, &names, &mut scripts));
        }
        let mut kpis = Vec::new();
        for (name, span, k) in in_file_order(raw.kpis) {
            if let Some(kpi) = self.kpi(name, span, k, &names, &transition_index, &mut scripts) {
                kpis.push(kpi);
            }
        }
        let mut reports = Vec::new();
        for (name, _, r) in in_file_order(raw.reports) {
            let filter = r
                .filter
                .as_ref()
                .and_then(|f| self.script(f, &names, &mut scripts));
            for g in &r.group_by {
                if !names.fields.contains_key(g.get_ref())
                    && !VIEW_COLUMNS.contains(&g.get_ref().as_str())
                {
                    self.err(
                        "E004",
                        g.span(),
                        format!("report `{name}` groups by unknown field `{}`", g.get_ref()),
                    );
                }
            }
            let ctx = format!("report `{name}`");
            let spec = r.where_.as_ref().map(|w| crate::measure::Spec {
                of: self.measure_where(&ctx, w, &names),
                measure: crate::measure::Measure::Count,
            });
            if let (Some(w), Some(_)) = (&r.where_, &r.filter) {
                self.err(
                    "E031",
                    w.span(),
                    format!("{ctx} has both a Rhai `filter` and a `where`: keep one"),
                );
            }
            let anchor = r
                .anchor
                .as_ref()
                .map(|a| self.moment(&ctx, a, &names, &transition_index))
                .unwrap_or(crate::measure::Moment::Created);
            let schedule = match &r.every {
                Some(e) => match crate::schedule::Schedule::parse(e.get_ref()) {
                    Ok(s) => Some(s),
                    Err(m) => {
                        self.err("E032", e.span(), format!("{ctx}: {m}"));
                        None
                    }
                },
                None => None,
            };
            if let (Some(_), Some(e)) = (&r.notify, &r.every) {
                if !r.group_by.iter().any(|g| g.get_ref() == "assignee") {
                    self.err(
                        "W006",
                        e.span(),
                        format!("{ctx} runs `every = \"{}\"` with `notify`, but is not grouped by assignee: its message reaches nobody", e.get_ref()),
                    );
                }
            }
            let period = match &r.period {
                // The whole history, whatever `every` says.
                Some(p) if p.get_ref() == "all" => None,
                Some(p) => {
                    let k = crate::measure::PeriodKind::parse(p.get_ref());
                    if k.is_none() {
                        self.err(
                            "E031",
                            p.span(),
                            format!("{ctx} has unknown period `{}`: use day, week, month, quarter, year or all", p.get_ref()),
                        );
                    }
                    k
                }
                None => schedule.and_then(|s| s.period()),
            };
            reports.push(Report {
                title: r.title.unwrap_or_else(|| name.clone()),
                name,
                every: r.every.map(|e| e.into_inner()),
                schedule,
                filter,
                spec,
                group_by: r.group_by.into_iter().map(|g| g.into_inner()).collect(),
                charge: r.charge,
                currency: r.currency,
                notify: r.notify,
                period,
                anchor,
            });
        }

        self.check_roles();
        Some(Workflow {
            id: raw.workflow.id.into_inner(),
            title: raw.workflow.title.unwrap_or_default(),
            record: raw.workflow.record.unwrap_or_else(|| "lead".into()),
            file: self.file.path.clone(),
            hash: content_hash(&hash_input),
            initial,
            states,
            fields,
            transitions,
            timers,
            views,
            queues,
            kpis,
            reports,
            calendar,
            customer,
            area: self.area,
            visible_to,
            reveal_to,
            scripts,
            state_index,
            field_index,
            transition_index,
            timer_index,
        })
    }

    /// A KPI: the Rhai form (`of`/`hit`) or the declared one; the two
    /// forms do not mix.
    #[allow(clippy::too_many_arguments)]
    fn kpi(
        &mut self,
        name: String,
        span: Range<usize>,
        k: crate::raw::RawKpi,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
        scripts: &mut Scripts,
    ) -> Option<Kpi> {
        use crate::measure::{Measure, Moment, Spec};
        let ctx = format!("kpi `{name}`");
        let declared = k.where_.is_some()
            || k.hits.is_some()
            || k.start.is_some()
            || k.stop.is_some()
            || k.within.is_some()
            || !k.funnel.is_empty();
        let anchor = k
            .anchor
            .as_ref()
            .map(|a| self.moment(&ctx, a, names, transitions))
            .unwrap_or(Moment::Created);
        let window = k
            .window
            .as_ref()
            .and_then(|w| match Dur::parse(w.get_ref()) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err("E016", w.span(), format!("{ctx}: window {e}"));
                    None
                }
            });
        let mut group_by = Vec::new();
        for g in &k.group_by {
            self.group_key(&ctx, g, names);
            group_by.push(g.get_ref().clone());
        }
        let (of, hit, spec) = if declared {
            if let Some(r) = k.of.as_ref().or(k.hit.as_ref()) {
                self.err(
                    "E031",
                    r.span(),
                    format!("{ctx} mixes Rhai `of`/`hit` with declared keys (where, hits, start, stop, within, funnel): keep one form"),
                );
            }
            let of = k
                .where_
                .as_ref()
                .map(|w| self.measure_where(&ctx, w, names))
                .unwrap_or_default();
            let kinds = usize::from(k.hits.is_some())
                + usize::from(k.start.is_some() || k.stop.is_some() || k.within.is_some())
                + usize::from(!k.funnel.is_empty());
            if kinds > 1 {
                self.err(
                    "E031",
                    span.clone(),
                    format!("{ctx} declares more than one measure: give one of `hits`, `start`/`stop` (with `within`) or `funnel`"),
                );
            }
            let measure = if let Some(h) = &k.hits {
                Measure::Ratio(self.measure_where(&ctx, h, names))
            } else if !k.funnel.is_empty() {
                for st in &k.funnel {
                    self.measure_state(&ctx, st, names);
                }
                Measure::Funnel(k.funnel.iter().map(|s| s.get_ref().clone()).collect())
            } else {
                match (&k.start, &k.stop) {
                    (Some(a), Some(b)) => {
                        let within =
                            k.within
                                .as_ref()
                                .and_then(|w| match Dur::parse(w.get_ref()) {
                                    Ok(d) => Some(d),
                                    Err(e) => {
                                        self.err("E016", w.span(), format!("{ctx}: within {e}"));
                                        None
                                    }
                                });
                        Measure::Sla {
                            start: self.moment(&ctx, a, names, transitions),
                            stop: self.moment(&ctx, b, names, transitions),
                            within,
                        }
                    }
                    _ => {
                        let at = k
                            .start
                            .as_ref()
                            .or(k.stop.as_ref())
                            .or(k.within.as_ref())
                            .map_or(span.clone(), |s| s.span());
                        self.err(
                            "E031",
                            at,
                            format!("{ctx} measures a duration: give both `start` and `stop`"),
                        );
                        Measure::Count
                    }
                }
            };
            (None, None, Some(Spec { of, measure }))
        } else {
            let Some(h) = &k.hit else {
                self.err(
                    "E031",
                    span,
                    format!("{ctx} measures nothing: give `hits`, `start`/`stop` with `within`, `funnel`, or a Rhai `hit`"),
                );
                return None;
            };
            let of = k.of.as_ref().and_then(|f| self.script(f, names, scripts));
            let hit = self.script(h, names, scripts)?;
            (of, Some(hit), None)
        };
        Some(Kpi {
            title: k.title.unwrap_or_else(|| name.clone()),
            name,
            of,
            hit,
            spec,
            target: k.target,
            anchor,
            window,
            group_by,
        })
    }

    /// A KPI's grouping: `assignee`, `state`, a period, or a field.
    fn group_key(&mut self, ctx: &str, g: &Spanned<String>, names: &Names) {
        let key = g.get_ref().as_str();
        if ["assignee", "state"].contains(&key) || crate::measure::PeriodKind::parse(key).is_some()
        {
            return;
        }
        match names.fields.get(key) {
            Some(&f) if names.field_types[f] == FieldType::List => self.err(
                "E031",
                g.span(),
                format!("{ctx} groups by `{key}`, a list field: group by a single-valued field"),
            ),
            Some(_) => {}
            None => {
                let hint = Self::did_you_mean(key, names.fields.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E031",
                        self.file,
                        g.span(),
                        format!("{ctx} groups by unknown `{key}`: use assignee, state, day, week, month, quarter, year or a field"),
                    )
                    .hint(hint),
                );
            }
        }
    }

    fn measure_state(&mut self, ctx: &str, s: &Spanned<String>, names: &Names) {
        if !names.states.contains_key(s.get_ref()) {
            let hint = Self::did_you_mean(s.get_ref(), names.states.keys());
            self.diags.push(
                Diagnostic::new(
                    "E031",
                    self.file,
                    s.span(),
                    format!("{ctx} names unknown state `{}`", s.get_ref()),
                )
                .hint(hint),
            );
        }
    }

    /// A field a measure reads, checked against `ok` types (empty: any).
    fn measure_field(
        &mut self,
        ctx: &str,
        f: &Spanned<String>,
        names: &Names,
        ok: &[FieldType],
    ) -> Option<FieldType> {
        match names.fields.get(f.get_ref()) {
            Some(&id) => {
                let ty = names.field_types[id];
                if !ok.is_empty() && !ok.contains(&ty) {
                    let want: Vec<&str> = ok.iter().map(|t| t.name()).collect();
                    self.err(
                        "E031",
                        f.span(),
                        format!(
                            "{ctx} reads `{}` as {}, but it is {}",
                            f.get_ref(),
                            want.join(" or "),
                            ty.name()
                        ),
                    );
                    return None;
                }
                Some(ty)
            }
            None => {
                let hint = Self::did_you_mean(f.get_ref(), names.fields.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E031",
                        self.file,
                        f.span(),
                        format!("{ctx} names unknown field `{}`", f.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    /// `created`, a datetime field, `transition:<name>` or `entered:<state>`.
    fn moment(
        &mut self,
        ctx: &str,
        s: &Spanned<String>,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
    ) -> crate::measure::Moment {
        use crate::measure::Moment;
        let m = Moment::parse(s.get_ref());
        match &m {
            Moment::Created => {}
            Moment::Field(_) => {
                self.measure_field(ctx, s, names, &[FieldType::Datetime]);
            }
            Moment::Transition(t) => {
                if !transitions.contains_key(t) {
                    let hint = Self::did_you_mean(t, transitions.keys());
                    self.diags.push(
                        Diagnostic::new(
                            "E031",
                            self.file,
                            s.span(),
                            format!("{ctx} names unknown transition `{t}`"),
                        )
                        .hint(hint),
                    );
                }
            }
            Moment::Entered(st) => {
                let st = Spanned::new(s.span(), st.clone());
                self.measure_state(ctx, &st, names);
            }
        }
        m
    }

    /// A declared condition table: names checked, values typed as their
    /// fields store them.
    fn measure_where(
        &mut self,
        ctx: &str,
        w: &Spanned<crate::raw::RawWhere>,
        names: &Names,
    ) -> crate::measure::Where {
        use crate::measure::{json_text, Where};
        let raw = w.get_ref();
        let mut out = Where::default();
        for (list, into) in [
            (&raw.state, &mut out.states),
            (&raw.reached, &mut out.reached),
        ] {
            for st in list {
                self.measure_state(ctx, st, names);
                into.push(st.get_ref().clone());
            }
        }
        for (list, into) in [(&raw.set, &mut out.set), (&raw.unset, &mut out.unset)] {
            for f in list {
                self.measure_field(ctx, f, names, &[]);
                into.push(f.get_ref().clone());
            }
        }
        for (f, v) in &raw.equals {
            let Some(ty) = self.measure_field(ctx, f, names, &[]) else {
                continue;
            };
            let items: Vec<&toml::Value> = match v.get_ref() {
                toml::Value::Array(a) if ty != FieldType::List => a.iter().collect(),
                one => vec![one],
            };
            let mut texts = Vec::new();
            for item in items {
                match ty.coerce(Value::from_toml(item)) {
                    Ok(val) => texts.extend(json_text(Some(&val.to_json()))),
                    Err(e) => self.err(
                        "E019",
                        v.span(),
                        format!("{ctx}: `{}` cannot equal {item}: {e}", f.get_ref()),
                    ),
                }
            }
            out.equals.push((f.get_ref().clone(), texts));
        }
        for (map, into) in [(&raw.above, &mut out.above), (&raw.below, &mut out.below)] {
            for (f, v) in map {
                if self
                    .measure_field(ctx, f, names, &[FieldType::Int, FieldType::Decimal])
                    .is_none()
                {
                    continue;
                }
                match FieldType::Decimal.coerce(Value::from_toml(v.get_ref())) {
                    Ok(Value::Decimal(d)) => into.push((f.get_ref().clone(), d)),
                    _ => self.err(
                        "E019",
                        v.span(),
                        format!(
                            "{ctx}: `{}` compares with a number, not {}",
                            f.get_ref(),
                            v.get_ref()
                        ),
                    ),
                }
            }
        }
        out
    }

    fn state(&mut self, s: &Spanned<String>, names: &Names) -> Option<StateId> {
        match names.states.get(s.get_ref()) {
            Some(&i) => Some(i),
            None => {
                let hint = Self::did_you_mean(s.get_ref(), names.states.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E003",
                        self.file,
                        s.span(),
                        format!("unknown state `{}`", s.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    fn states(&mut self, list: &[Spanned<String>], names: &Names, _views: bool) -> Vec<StateId> {
        list.iter().filter_map(|s| self.state(s, names)).collect()
    }

    /// `from`/`in`: "*" (every non-final state) or a list of state names.
    fn states_spec(
        &mut self,
        v: &Spanned<toml::Value>,
        names: &Names,
        transition: Option<&str>,
    ) -> Vec<bool> {
        let n = names.finals.len();
        let mut bits = vec![false; n];
        match v.get_ref() {
            toml::Value::String(s) if s == "*" => {
                for (i, f) in names.finals.iter().enumerate() {
                    bits[i] = !f;
                }
            }
            toml::Value::String(s) => self.mark_state(s, v, names, transition, &mut bits),
            toml::Value::Array(items) => {
                for it in items {
                    match it.as_str() {
                        Some(s) => self.mark_state(s, v, names, transition, &mut bits),
                        None => self.err("E001", v.span(), "expected a list of state names"),
                    }
                }
            }
            _ => self.err("E001", v.span(), "expected \"*\" or a list of state names"),
        }
        bits
    }

    fn mark_state(
        &mut self,
        s: &str,
        v: &Spanned<toml::Value>,
        names: &Names,
        transition: Option<&str>,
        bits: &mut [bool],
    ) {
        let span = refine(&self.file.text, &v.span(), s);
        match names.states.get(s) {
            Some(&i) => {
                if let (Some(t), true) = (transition, names.finals[i]) {
                    self.diags.push(
                        Diagnostic::new(
                            "E011",
                            self.file,
                            span,
                            format!("transition `{t}` leaves final state `{s}`"),
                        )
                        .hint(format!(
                            "remove \"{s}\" from `from`, or drop `final = true` from state `{s}`"
                        )),
                    );
                }
                bits[i] = true;
            }
            None => {
                let hint = Self::did_you_mean(s, names.states.keys());
                self.diags.push(
                    Diagnostic::new("E003", self.file, span, format!("unknown state `{s}`"))
                        .hint(hint),
                );
            }
        }
    }

    fn field(&mut self, s: &Spanned<String>, names: &Names) -> Option<FieldId> {
        match names.fields.get(s.get_ref()) {
            Some(&i) => Some(i),
            None => {
                let hint = Self::did_you_mean(s.get_ref(), names.fields.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E004",
                        self.file,
                        s.span(),
                        format!("unknown field `{}`", s.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    fn fields(&mut self, list: &[Spanned<String>], names: &Names) -> Vec<FieldId> {
        list.iter().filter_map(|s| self.field(s, names)).collect()
    }

    /// Compile a script written as a TOML string; map script positions to
    /// file positions.
    /// A `[queues.<name>]`: order keys (E038), calling hours (E039),
    /// `max_attempts` (E040) and `lease` (E041) checked; roles as `by`'s.
    fn queue(
        &mut self,
        name: String,
        q: crate::raw::RawQueue,
        names: &Names,
        scripts: &mut Scripts,
    ) -> crate::queue::Queue {
        use crate::queue::{MaxAttempts, OrderKey, Window, ORDER_COLUMNS};
        let states = self.states(&q.states, names, true);
        let filter = q
            .filter
            .as_ref()
            .and_then(|f| self.script(f, names, scripts));
        let mut order = Vec::new();
        for o in &q.order {
            let Some(key) = OrderKey::parse(o.get_ref()) else {
                self.err(
                    "E038",
                    o.span(),
                    format!("queue `{name}` has an empty order key `{}`", o.get_ref()),
                );
                continue;
            };
            let field = names.fields.get(key.name()).map(|f| names.field_types[*f]);
            let problem = match (&key, field) {
                (OrderKey::Due(_), Some(FieldType::Datetime | FieldType::Date)) => None,
                (OrderKey::Due(n), Some(t)) => Some(format!(
                    "needs a datetime or date field; `{n}` is {}",
                    t.name()
                )),
                (OrderKey::By { .. }, Some(FieldType::List)) => {
                    Some("names a list field, which has no order".to_string())
                }
                (OrderKey::By { name: n, .. }, None) if ORDER_COLUMNS.contains(&n.as_str()) => None,
                (_, Some(_)) => None,
                (_, None) => Some(format!(
                    "names no field or column ({})",
                    Self::did_you_mean(key.name(), names.fields.keys())
                )),
            };
            match problem {
                Some(p) => self.err(
                    "E038",
                    o.span(),
                    format!("queue `{name}`: order key `{}` {p}", o.get_ref()),
                ),
                None => order.push(key),
            }
        }
        let calling_hours = q.calling_hours.as_ref().and_then(|c| {
            Window::parse(c.get_ref())
                .map_err(|m| {
                    self.err(
                        "E039",
                        c.span(),
                        format!("queue `{name}`: calling_hours {m}"),
                    )
                })
                .ok()
        });
        let max_attempts = q.max_attempts.as_ref().and_then(|m| {
            let raw = m.get_ref();
            let ty = names.fields.get(&raw.field).map(|f| names.field_types[*f]);
            let problem = match ty {
                _ if raw.max < 1 => Some(format!("`max = {}` must be at least 1", raw.max)),
                Some(FieldType::Int) => None,
                Some(t) => Some(format!("`{}` is {}, not an int field", raw.field, t.name())),
                None => Some(format!("unknown field `{}`", raw.field)),
            };
            match problem {
                Some(p) => {
                    self.err(
                        "E040",
                        m.span(),
                        format!("queue `{name}`: max_attempts {p}"),
                    );
                    None
                }
                None => Some(MaxAttempts {
                    field: raw.field.clone(),
                    max: raw.max,
                }),
            }
        });
        let default = chrono::Duration::minutes(crate::queue::DEFAULT_LEASE_MINUTES);
        let lease = match &q.lease {
            None => default,
            Some(l) => {
                let fixed = crate::duration::Span::parse(l.get_ref())
                    .map_err(|m| m.to_string())
                    .and_then(|s| {
                        s.fixed()
                            .filter(|d| {
                                matches!(
                                    s.unit,
                                    crate::duration::Unit::Minutes | crate::duration::Unit::Hours
                                ) && *d > chrono::Duration::zero()
                                    && *d <= chrono::Duration::hours(24)
                            })
                            .ok_or_else(|| {
                                format!(
                                    "`{}` is not between 1m and 24h (minutes or hours)",
                                    l.get_ref()
                                )
                            })
                    });
                match fixed {
                    Ok(d) => d,
                    Err(m) => {
                        self.err("E041", l.span(), format!("queue `{name}`: lease {m}"));
                        default
                    }
                }
            }
        };
        for r in &q.by {
            self.role_uses.push((r.get_ref().clone(), r.span()));
        }
        crate::queue::Queue {
            title: q.title.unwrap_or_else(|| name.clone()),
            name,
            states,
            filter,
            filter_source: q.filter.map(|f| f.into_inner()),
            order,
            by: q.by.into_iter().map(|r| r.into_inner()).collect(),
            calling_hours,
            max_attempts,
            lease,
        }
    }

    fn script(
        &mut self,
        s: &Spanned<String>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<ScriptId> {
        self.script_at(s.get_ref(), s.span(), names, scripts)
    }

    fn script_at(
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
    fn problem(
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

    /// The `[customer]` mapping: fields that exist, of a fitting type.
    fn customer(&mut self, raw: Option<&RawCustomer>, names: &Names) -> Customer {
        let Some(raw) = raw else {
            // Without the table: the field `email`, if any (older projects).
            let email =
                names.fields.get("email").copied().filter(|&f| {
                    matches!(names.field_types[f], FieldType::String | FieldType::Text)
                });
            return Customer {
                email,
                ..Customer::default()
            };
        };
        let one = |this: &mut Self, s: &Spanned<String>, what: &str| {
            let f = this.field(s, names)?;
            let ty = names.field_types[f];
            if !matches!(ty, FieldType::String | FieldType::Text | FieldType::Enum) {
                this.err(
                    "E019",
                    s.span(),
                    format!(
                        "`[customer] {what}` needs a string field; `{}` is {}",
                        s.get_ref(),
                        ty.name()
                    ),
                );
                return None;
            }
            Some(f)
        };
        Customer {
            email: raw.email.as_ref().and_then(|s| one(self, s, "email")),
            name: raw
                .name
                .iter()
                .filter_map(|s| one(self, s, "name"))
                .collect(),
            language: raw.language.as_ref().and_then(|s| one(self, s, "language")),
            reveal: raw
                .reveal
                .iter()
                .filter_map(|s| self.field(s, names))
                .collect(),
        }
    }

    /// One recipient of a `notify` (see [`RawEffect::to`]); E024 for a form
    /// or a role this workflow cannot have.
    fn recipient(
        &mut self,
        r: &RawRecipient,
        span: &Range<usize>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Recipient> {
        let name = match r {
            RawRecipient::Role(x) => {
                let filter = x.filter.as_ref().and_then(|w| {
                    let at = refine(&self.file.text, span, w);
                    self.script_at(w, at.start.saturating_sub(1)..at.end + 1, names, scripts)
                });
                if x.role.is_empty() {
                    self.err("E024", span.clone(), "`role` of a recipient is empty");
                    return None;
                }
                self.role_uses
                    .push((x.role.clone(), refine(&self.file.text, span, &x.role)));
                return Some(Recipient::Role {
                    role: x.role.clone(),
                    filter,
                });
            }
            RawRecipient::Name(n) => n.as_str(),
        };
        let at = refine(&self.file.text, span, name);
        let bad = |this: &mut Self, msg: String, hint: String| {
            this.diags
                .push(Diagnostic::new("E024", this.file, at.clone(), msg).hint(hint));
            None
        };
        match name {
            "assignee" => return Some(Recipient::Assignee),
            "previous_assignee" => return Some(Recipient::PreviousAssignee),
            "assignee.manager" => return Some(Recipient::AssigneeManager),
            "customer" => {
                if !self.customer_email {
                    self.diags.push(
                        Diagnostic::new(
                            "W004",
                            self.file,
                            at,
                            "`customer` has no e-mail address in this workflow: no message will reach it",
                        )
                        .hint("map the field holding it: [customer] email = \"email\""),
                    );
                }
                return Some(Recipient::Customer);
            }
            _ => {}
        }
        if name.contains('@') {
            let ok = name.split_once('@').is_some_and(|(u, d)| {
                !u.is_empty() && d.contains('.') && !name.chars().any(char::is_whitespace)
            });
            if !ok {
                return bad(
                    self,
                    format!("`{name}` is not an e-mail address"),
                    "write an address such as ops@example.com".into(),
                );
            }
            return Some(Recipient::Address(name.to_string()));
        }
        if crate::org::Relation::is_relation(name) {
            use crate::org::Relation;
            return match Relation::parse(name) {
                Ok(Relation::Area(role)) if self.area.is_some() => {
                    self.role_uses.push((role.clone(), at.clone()));
                    Some(Recipient::Area(role))
                }
                Ok(Relation::Area(_)) => {
                    self.diags.push(
                        Diagnostic::new(
                            "E037",
                            self.file,
                            at.clone(),
                            format!("`{name}` needs the record's area, and the workflow declares no `[workflow] area`"),
                        )
                        .hint("name the field holding the area: [workflow] area = \"zone\""),
                    );
                    None
                }
                Ok(_) => None,
                Err(msg) => {
                    self.diags.push(Diagnostic::new("E036", self.file, at.clone(), msg).hint(
                        "relations: `assignee.manager` (the assignee's managers), `area.<role>` (the actors of the role responsible for the record's area)",
                    ));
                    None
                }
            };
        }
        if let Some((kind, rest)) = name.split_once(':') {
            if rest.is_empty() {
                return bad(
                    self,
                    format!("recipient `{name}` names nothing after `{kind}:`"),
                    format!("write `{kind}:<name>`"),
                );
            }
            if kind == "role" {
                self.role_uses.push((rest.to_string(), at.clone()));
            }
            return match kind {
                "role" => Some(Recipient::Role {
                    role: rest.to_string(),
                    filter: None,
                }),
                "actor" => Some(Recipient::Actor(rest.to_string())),
                "list" => Some(Recipient::List(rest.to_string())),
                "field" => match names.fields.get(rest) {
                    None => {
                        let hint = Self::did_you_mean(rest, names.fields.keys());
                        bad(self, format!("recipient `{name}`: the workflow has no field `{rest}`"), hint)
                    }
                    Some(&f) => match names.field_types[f] {
                        FieldType::String | FieldType::Text | FieldType::Actor => {
                            Some(Recipient::Field(f))
                        }
                        ty => bad(
                            self,
                            format!(
                                "recipient `{name}`: `{rest}` is {}, not an address or an actor",
                                ty.name()
                            ),
                            "name a string field holding an e-mail address, or an actor field".into(),
                        ),
                    },
                },
                _ => bad(
                    self,
                    format!("unknown recipient form `{kind}:`"),
                    "recipient forms: assignee, previous_assignee, customer, a role, role:<role>, actor:<id>, field:<field>, list:<name>, an e-mail address".into(),
                ),
            };
        }
        if self.roles.iter().any(|r| r == name) {
            return Some(Recipient::Role {
                role: name.to_string(),
                filter: None,
            });
        }
        let known: Vec<String> = ["assignee", "previous_assignee", "customer"]
            .iter()
            .map(|s| s.to_string())
            .chain(self.roles.iter().cloned())
            .collect();
        let close = Self::did_you_mean(name, known.iter());
        let hint = if close.starts_with("did you mean") {
            close
        } else {
            format!(
                "roles of this workflow: {}; a role that only receives messages is written `role:{name}`, an actor `actor:{name}`",
                if self.roles.is_empty() { "none".to_string() } else { self.roles.join(", ") }
            )
        };
        let why = if self.declared_roles.is_some() {
            "`[workflow] roles` does not declare this role"
        } else {
            "no transition's `by` nor any `assign` names this role"
        };
        bad(self, format!("unknown recipient `{name}`: {why}"), hint)
    }

    /// Relations as written in `by`, `visible_to`, `reveal_to` (roles,
    /// `assignee.manager`, `area.<role>`): E036 for a dotted name that is
    /// none, E037 for `area.<role>` without `[workflow] area`; roles are
    /// checked with the others (E026).
    fn relations(&mut self, list: &[Spanned<String>], has_area: bool) -> Vec<crate::org::Relation> {
        use crate::org::Relation;
        let mut out = Vec::new();
        for item in list {
            let at = refine(&self.file.text, &item.span(), item.get_ref());
            match Relation::parse(item.get_ref()) {
                Err(msg) => self.diags.push(
                    Diagnostic::new("E036", self.file, at, msg).hint(
                        "relations: a role, `assignee.manager` (the assignee's managers), `area.<role>` (the actors of the role responsible for the record's area)",
                    ),
                ),
                Ok(rel) => {
                    if let Relation::Area(_) = rel {
                        if !has_area {
                            self.diags.push(
                                Diagnostic::new(
                                    "E037",
                                    self.file,
                                    at.clone(),
                                    format!("`{}` needs the record's area, and the workflow declares no `[workflow] area`", item.get_ref()),
                                )
                                .hint("name the field holding the area: [workflow] area = \"zone\""),
                            );
                        }
                    }
                    if let Some(role) = rel.role() {
                        if role != "system" && role != "*" {
                            self.role_uses.push((role.to_string(), at));
                        }
                    }
                    out.push(rel);
                }
            }
        }
        out
    }

    /// Roles named where the workflow declares none of them (E026), or,
    /// without `[workflow] roles`, a role named less often than a role of
    /// nearly the same spelling (W005: a typo such as `salse` leaves records
    /// unassigned and transitions unfireable at run time).
    fn check_roles(&mut self) {
        let uses = std::mem::take(&mut self.role_uses);
        if let Some(declared) = self.declared_roles.clone() {
            for (role, span) in uses {
                if !declared.contains(&role) {
                    let hint = Self::did_you_mean(&role, declared.iter());
                    self.diags.push(
                        Diagnostic::new(
                            "E026",
                            self.file,
                            span,
                            format!(
                                "unknown role `{role}`: `[workflow] roles` does not declare it"
                            ),
                        )
                        .hint(format!("{hint} (or add \"{role}\" to `[workflow] roles`)")),
                    );
                }
            }
            return;
        }
        let mut count: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (i, (role, _)) in uses.iter().enumerate() {
            count.entry(role.as_str()).or_insert((0, i)).0 += 1;
        }
        for (&a, &(na, first_a)) in &count {
            let near = count.iter().find(|(&b, &(nb, first_b))| {
                b != a
                    && a.chars().count().min(b.chars().count()) >= 4
                    && strsim(a, b) <= 2
                    && (na < nb || (na == nb && first_a > first_b))
            });
            if let Some((b, (nb, _))) = near {
                let (role, span) = &uses[first_a];
                self.diags.push(
                    Diagnostic::new(
                        "W005",
                        self.file,
                        span.clone(),
                        format!(
                            "role `{role}` is named {} and looks like `{b}` (named {}): a typo?",
                            times(na),
                            times(*nb)
                        ),
                    )
                    .hint(
                        "fix the spelling; declare the roles with `[workflow] roles = [...]` to have every role checked",
                    ),
                );
            }
        }
    }

    fn effects(
        &mut self,
        list: &[Spanned<RawEffect>],
        names: &Names,
        scripts: &mut Scripts,
    ) -> Vec<Effect> {
        list.iter()
            .filter_map(|e| self.effect(e, names, scripts))
            .collect()
    }

    fn effect(
        &mut self,
        e: &Spanned<RawEffect>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Effect> {
        let n = self.spawns.len();
        let inner = self.effect_action(e, names, scripts)?;
        if e.get_ref().when.is_some() {
            for c in &mut self.spawns[n..] {
                c.on_create = false;
            }
        }
        match &e.get_ref().when {
            None => Some(inner),
            Some(w) => {
                let s = refine(&self.file.text, &e.span(), w);
                let cond =
                    self.script_at(w, s.start.saturating_sub(1)..s.end + 1, names, scripts)?;
                Some(Effect::When {
                    cond,
                    then: Box::new(inner),
                })
            }
        }
    }

    fn effect_action(
        &mut self,
        e: &Spanned<RawEffect>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Effect> {
        let span = e.span();
        let r = e.get_ref();
        let actions = [
            r.set.is_some(),
            r.append.is_some(),
            r.clear.is_some(),
            r.notify.is_some(),
            r.assign.is_some(),
            r.release.is_some(),
            r.spawn.is_some(),
            r.fire_linked.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            self.err(
                "E018",
                span,
                "an effect needs exactly one of set, append, clear, notify, assign, release, spawn, fire_linked",
            );
            return None;
        }
        let field_named = |this: &mut Self, name: &str| -> Option<FieldId> {
            let s = Spanned::new(refine(&this.file.text, &span, name), name.to_string());
            this.field(&s, names)
        };
        if let Some(f) = r.set.as_ref().or(r.append.as_ref()) {
            let field = field_named(self, f)?;
            let is_set = r.set.is_some();
            let ty = names.field_types[field];
            if !is_set && ty != FieldType::List {
                self.err(
                    "E019",
                    span.clone(),
                    format!("`append` needs a list field; `{f}` is {}", ty.name()),
                );
            }
            let value = match (&r.value, &r.expr) {
                (Some(v), None) => {
                    let v = Value::from_toml(v);
                    let coerced = if is_set { ty.coerce(v) } else { Ok(v) }
                        .and_then(|v| crate::value::check_range(&v).map(|()| v));
                    match coerced {
                        Ok(v) => Expr::Literal(v),
                        Err(m) => {
                            self.err("E019", span, format!("value for `{f}`: {m}"));
                            return None;
                        }
                    }
                }
                (None, Some(x)) => {
                    let at = refine(&self.file.text, &span, x);
                    Expr::Script(self.script_at(
                        x,
                        at.start.saturating_sub(1)..at.end + 1,
                        names,
                        scripts,
                    )?)
                }
                _ => {
                    self.err(
                        "E018",
                        span,
                        format!(
                            "`{}` needs exactly one of `value` (a literal) and `expr` (Rhai)",
                            if is_set { "set" } else { "append" }
                        ),
                    );
                    return None;
                }
            };
            return Some(if is_set {
                Effect::Set { field, value }
            } else {
                Effect::Append { field, value }
            });
        }
        if let Some(c) = &r.clear {
            let fields = c
                .to_vec()
                .iter()
                .filter_map(|f| field_named(self, f))
                .collect();
            return Some(Effect::Clear { fields });
        }
        if let Some(t) = &r.notify {
            let to = match &r.to {
                None => vec![Recipient::Assignee],
                Some(list) => list
                    .to_vec()
                    .iter()
                    .filter_map(|x| self.recipient(x, &span, names, scripts))
                    .collect(),
            };
            return Some(Effect::Notify {
                template: t.clone(),
                to,
            });
        }
        if let Some(role) = &r.assign {
            self.role_uses
                .push((role.clone(), refine(&self.file.text, &span, role)));
            let mut compile = |this: &mut Self, x: &Option<String>| {
                x.as_ref().and_then(|x| {
                    let at = refine(&this.file.text, &span, x);
                    this.script_at(x, at.start.saturating_sub(1)..at.end + 1, names, scripts)
                })
            };
            let score = compile(self, &r.score);
            let filter = compile(self, &r.filter);
            let exclude = r.exclude.as_ref().and_then(|x| {
                let f = field_named(self, x)?;
                if names.field_types[f] != FieldType::List {
                    self.err(
                        "E019",
                        refine(&self.file.text, &span, x),
                        format!(
                            "`exclude` needs a list field; `{x}` is {}",
                            names.field_types[f].name()
                        ),
                    );
                }
                Some(f)
            });
            return Some(Effect::Assign {
                role: role.clone(),
                score,
                filter,
                exclude,
                required: r.required,
            });
        }
        if r.release.is_some() {
            return Some(Effect::Release);
        }
        if let Some(transition) = &r.fire_linked {
            let via = match &r.via {
                Some(v) if !v.trim().is_empty() => v.clone(),
                _ => {
                    self.err(
                        "E018",
                        span,
                        "`fire_linked` needs `via`: the link name on this record (e.g. via = \"offer\")",
                    );
                    return None;
                }
            };
            self.fire_linked.push(FireLinkedCheck {
                transition: transition.clone(),
                span,
            });
            return Some(Effect::FireLinked {
                transition: transition.clone(),
                via,
            });
        }
        let workflow = r.spawn.clone().unwrap_or_default();
        let at = r.at.as_ref().and_then(|x| {
            let s = refine(&self.file.text, &span, x);
            self.script_at(x, s.start.saturating_sub(1)..s.end + 1, names, scripts)
        });
        let mut map = Vec::new();
        let mut check_map = Vec::new();
        for (target, source) in &r.map {
            if let Some(&f) = names.fields.get(source) {
                map.push((target.clone(), Expr::Field(f)));
                check_map.push((target.clone(), Some(names.field_types[f])));
            } else {
                let s = refine(&self.file.text, &span, source);
                let id =
                    self.script_at(source, s.start.saturating_sub(1)..s.end + 1, names, scripts)?;
                map.push((target.clone(), Expr::Script(id)));
                check_map.push((target.clone(), None));
            }
        }
        self.spawns.push(SpawnCheck {
            workflow: workflow.clone(),
            span,
            map: check_map,
            on_create: self.in_initial && r.at.is_none(),
        });
        Some(Effect::Spawn(SpawnSpec {
            workflow,
            at,
            map,
            link: r.link.clone().unwrap_or_else(|| "origin".into()),
            backlink: r.backlink.clone().unwrap_or_else(|| "spawned".into()),
        }))
    }
}

fn times(n: usize) -> String {
    match n {
        1 => "once".to_string(),
        2 => "twice".to_string(),
        n => format!("{n} times"),
    }
}

/// Roles a workflow names: in `by` (not `system` or `*`) and in `assign`.
fn known_roles(
    transitions: &BTreeMap<Spanned<String>, crate::raw::RawTransition>,
    timers: &BTreeMap<Spanned<String>, crate::raw::RawTimer>,
    states: &[(String, Range<usize>, crate::raw::RawState)],
) -> Vec<String> {
    fn assigns(list: &[Spanned<RawEffect>], out: &mut Vec<String>) {
        out.extend(list.iter().filter_map(|e| e.get_ref().assign.clone()));
    }
    let mut out = Vec::new();
    for (_, _, s) in states {
        assigns(&s.on_enter, &mut out);
    }
    for t in transitions.values() {
        out.extend(
            t.by.iter()
                .filter_map(|b| match crate::org::Relation::parse(b.get_ref()) {
                    Ok(r) => r.role().map(str::to_string),
                    Err(_) => None,
                })
                .filter(|b| b != "system" && b != "*"),
        );
        assigns(&t.effects, &mut out);
    }
    for t in timers.values() {
        assigns(&t.effects, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Columns every view may show besides fields.
pub const VIEW_COLUMNS: &[&str] = &[
    "id",
    "state",
    "assignee",
    "created_at",
    "updated_at",
    "entered_at",
    "age_days",
];

/// Edit distance, for "did you mean" hints: Levenshtein plus the swap of two
/// adjacent characters as one edit (`opne` is one edit from `open`).
fn strsim(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// FNV-1a, 64 bit, as hex: a stable content identifier for versions (not a
/// security boundary).
pub fn content_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::strsim;

    #[test]
    fn edit_distance_counts_a_swap_as_one_edit() {
        assert_eq!(strsim("open", "open"), 0);
        assert_eq!(strsim("opne", "open"), 1);
        assert_eq!(strsim("opne", "done"), 2);
        assert_eq!(strsim("mark_lots", "mark_lost"), 1);
        assert_eq!(strsim("", "abc"), 3);
    }
}
