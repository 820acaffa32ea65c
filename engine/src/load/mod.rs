//! Stage two of loading: raw model -> resolved model, collecting every
//! diagnostic on the way (a run reports all findings, not just the first).
//!
//! This module is long because it is a table of checks, one per key of the
//! workflow format, in the order the format documents them. Its files:
//!
//! - `mod.rs`: the public items ([`Project`], [`WorkflowSet`], [`Loaded`],
//!   [`load`], [`VIEW_COLUMNS`], [`content_hash`]), loading one file, the
//!   calendars, the `Resolver` and its core (`err`, `did_you_mean`), the
//!   tables of names and the edit distance behind "did you mean" hints;
//! - `checks.rs`: the checks across workflows, once every file is resolved:
//!   spawn targets and their mapped fields, `fire_linked` transitions,
//!   unconditional spawn cycles (E029);
//! - `workflow.rs`: `Resolver::workflow` and its steps: calendar, rules
//!   modules, roles, states, the final assembly;
//! - `fields.rs`: `[fields.<name>]` and `[workflow] area`;
//! - `transitions.rs`: transitions (`rearm` included) and timers;
//! - `views.rs`: views and reports;
//! - `kpi.rs`: KPIs and the declared measures (`where`, moments, groupings);
//! - `names.rs`: state and field names (`state`, `states`, `states_spec`,
//!   `mark_state`, `field`, `fields`);
//! - `queue.rs`: `[queues.<name>]` (order, calling hours, attempts, lease);
//! - `scripts.rs`: compiling scripts, mapping script positions to the file,
//!   the diagnostics of script findings;
//! - `recipients.rs`: `[customer]`, `notify` recipients, relations and the
//!   checks of roles;
//! - `effects.rs`: effects (`set`, `append`, `clear`, `notify`, `assign`,
//!   `release`, `spawn`, `fire_linked`);
//! - `tests.rs`: unit tests.

mod checks;
mod effects;
mod fields;
mod kpi;
mod names;
mod queue;
mod recipients;
mod scripts;
#[cfg(test)]
mod tests;
mod transitions;
mod views;
mod workflow;

use crate::calendar::Calendar;
use crate::diag::{Diagnostic, SourceFile};
use crate::model::*;
use crate::raw::RawFile;
use crate::value::FieldType;
use checks::{FireLinkedCheck, SpawnCheck};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// Calendars by file stem: the calendar and its text (for the content hash),
/// or `Err` for a calendar file that does not parse (already reported).
type Calendars = HashMap<String, Result<(Arc<Calendar>, String), ()>>;

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
        let Some(done) = load_file(project, fi, file, &calendars, &mut ids, &mut diags) else {
            continue;
        };
        spawns.push((fi, done.spawns, done.fire_linked));
        if let Some((wf, id_span)) = done.clean {
            loaded.push((wf, fi, id_span));
        }
    }
    // Spawns cross workflows: check targets once every workflow is known.
    let bad_files = checks::across(project, spawns, &loaded, &ids, &mut diags);
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

/// One workflow file that resolved: what to check across workflows, and the
/// workflow itself with the span of its id when the file has no errors.
struct FileDone {
    spawns: Vec<SpawnCheck>,
    fire_linked: Vec<FireLinkedCheck>,
    clean: Option<(Workflow, Range<usize>)>,
}

/// Parse (E001), check the id is unique (E002), resolve and, when the file
/// has no errors, check the graph of one workflow file. `None`: the file
/// leaves nothing to check across workflows.
fn load_file(
    project: &Project,
    fi: usize,
    file: &SourceFile,
    calendars: &Calendars,
    ids: &mut HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) -> Option<FileDone> {
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
            return None;
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
        return None;
    }
    ids.insert(id, fi);
    let before = diags.len();
    let mut r = Resolver {
        file,
        diags: &mut *diags,
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
    let wf = r.workflow(raw, calendars)?;
    let spawn_checks = std::mem::take(&mut r.spawns);
    let fire_checks = std::mem::take(&mut r.fire_linked);
    let clean = !diags[before..].iter().any(Diagnostic::is_error);
    // A file with errors has an incomplete graph (an unknown `to`
    // becomes a self-loop, a broken timer loses its edge): checking
    // it would report states as stuck or unreachable that are not.
    if clean {
        crate::check::graph(&wf, file, diags);
    }
    Some(FileDone {
        spawns: spawn_checks,
        fire_linked: fire_checks,
        clean: clean.then_some((wf, id_span)),
    })
}

fn load_calendars(project: &Project, diags: &mut Vec<Diagnostic>) -> Calendars {
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
