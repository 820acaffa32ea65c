//! Graph checks on a resolved workflow (petgraph): reachability from the
//! initial state, a path to a final state from every state, a final state at all.

use crate::diag::{Diagnostic, SourceFile};
use crate::model::{TimerAction, Workflow};
use petgraph::graph::DiGraph;
use petgraph::visit::{Bfs, Reversed};

/// The state graph: one node per state, one edge per way out (a transition,
/// or a timer firing one).
pub fn state_graph(wf: &Workflow) -> DiGraph<usize, String> {
    let mut g = DiGraph::with_capacity(wf.states.len(), wf.transitions.len());
    let nodes: Vec<_> = (0..wf.states.len()).map(|i| g.add_node(i)).collect();
    for t in &wf.transitions {
        for (s, &on) in t.from.iter().enumerate() {
            if on {
                g.add_edge(nodes[s], nodes[t.to.unwrap_or(s)], t.name.clone());
            }
        }
    }
    for timer in &wf.timers {
        if let TimerAction::Fire(ti) = timer.action {
            let t = &wf.transitions[ti];
            for (s, &on) in timer.in_states.iter().enumerate() {
                if on && t.enabled_from(s) {
                    g.add_edge(
                        nodes[s],
                        nodes[t.to.unwrap_or(s)],
                        format!("timer {}", timer.name),
                    );
                }
            }
        }
    }
    g
}

pub fn graph(wf: &Workflow, file: &SourceFile, diags: &mut Vec<Diagnostic>) {
    let g = state_graph(wf);
    let n = wf.states.len();
    if n == 0 {
        return;
    }
    let mut reachable = vec![false; n];
    let mut bfs = Bfs::new(&g, petgraph::graph::NodeIndex::new(wf.initial));
    while let Some(x) = bfs.next(&g) {
        reachable[x.index()] = true;
    }
    for (i, s) in wf.states.iter().enumerate() {
        if !reachable[i] {
            diags.push(Diagnostic::new(
                "W001",
                file,
                s.span.clone(),
                format!(
                    "state `{}` cannot be reached from `{}`",
                    s.name,
                    wf.state_name(wf.initial)
                ),
            ));
        }
    }
    let finals: Vec<usize> = (0..n).filter(|&i| wf.states[i].is_final).collect();
    if finals.is_empty() {
        let span = wf.states[wf.initial].span.clone();
        diags.push(Diagnostic::new(
            "E021",
            file,
            span,
            format!(
                "workflow `{}` has no final state: records could never be closed",
                wf.id
            ),
        ));
        return;
    }
    let mut reaches_final = vec![false; n];
    let rev = Reversed(&g);
    for f in finals {
        let mut bfs = Bfs::new(rev, petgraph::graph::NodeIndex::new(f));
        while let Some(x) = bfs.next(rev) {
            reaches_final[x.index()] = true;
        }
    }
    for (i, s) in wf.states.iter().enumerate() {
        if !reaches_final[i] && reachable[i] {
            diags.push(Diagnostic::new(
                "E020",
                file,
                s.span.clone(),
                format!(
                    "state `{}` has no path to a final state: records entering it are stuck",
                    s.name
                ),
            ));
        }
    }
}
