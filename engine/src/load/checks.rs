//! Checks across workflows, once every file of the project is resolved:
//! spawn targets and the fields they map into (E006, E004, E013),
//! `fire_linked` transitions (E005) and unconditional spawn cycles (E029).

use super::Project;
use crate::diag::{refine, Diagnostic, SourceFile};
use crate::model::Workflow;
use crate::value::FieldType;
use std::collections::HashMap;
use std::ops::Range;

/// Spawns and `fire_linked`s of the files that resolved, as (file index,
/// spawns, fire_linked), checked against the workflows that loaded; then
/// the spawn cycles. Returns the files found in error here, not to be loaded.
pub(super) fn across(
    project: &Project,
    spawns: Vec<(usize, Vec<SpawnCheck>, Vec<FireLinkedCheck>)>,
    loaded: &[(Workflow, usize, Range<usize>)],
    ids: &HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<usize> {
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
            check_spawn(file, &c, &by_id, ids, diags);
            if diags[n..].iter().any(Diagnostic::is_error) {
                bad_files.push(fi);
            }
        }
        for c in fire_checks {
            let n = diags.len();
            check_fire_linked(file, &c, &by_id, diags);
            if diags[n..].iter().any(Diagnostic::is_error) {
                bad_files.push(fi);
            }
        }
    }
    spawn_cycles(project, &spawns_on_create, ids, diags, &mut bad_files);
    bad_files
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
pub(super) struct FireLinkedCheck {
    pub(super) transition: String,
    pub(super) span: Range<usize>,
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
pub(super) struct SpawnCheck {
    pub(super) workflow: String,
    pub(super) span: Range<usize>,
    /// Target field, source type (None: a script, checked at run time), span.
    pub(super) map: Vec<(String, Option<FieldType>)>,
    /// Unconditional and immediate, on entering the initial state: every
    /// creation of a record of this workflow spawns it.
    pub(super) on_create: bool,
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
