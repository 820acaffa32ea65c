//! Graph checks on a resolved workflow (petgraph): reachability from the
//! initial state, a path to a final state from every state, a final state at
//! all, zero-delay timer cycles; and spawn cycles across workflows.

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
    timer_cycles(wf, file, diags);
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

/// Whether a timer fires at the instant it is armed: `after` is zero (any
/// unit) and not measured from a field.
fn fires_at_once(t: &crate::model::Timer) -> bool {
    matches!(
        t.due,
        crate::model::Due::After {
            amount: 0,
            since: None,
            ..
        }
    )
}

/// Zero-delay timer cycles (E028): a timer due at once that fires an
/// unguarded transition leading (through more such timers) to a state where
/// it is armed again fires forever at one instant. Nodes are (state, timer)
/// pairs: the timer just armed in the state; an edge follows its firing to
/// the zero-delay timers the firing arms (the firing timer itself when it is
/// armed in the target, a timer not armed in the source, or one re-armed by
/// the transition's `rearm`).
pub fn timer_cycles(wf: &Workflow, file: &SourceFile, diags: &mut Vec<Diagnostic>) {
    use crate::model::Rearm;
    use petgraph::algo::tarjan_scc;
    use std::collections::HashMap;
    let mut g: DiGraph<(usize, usize), ()> = DiGraph::new();
    let mut nodes = HashMap::new();
    for (s, state) in wf.states.iter().enumerate() {
        if state.is_final {
            continue;
        }
        for (i, t) in wf.timers.iter().enumerate() {
            if t.armed_in(s) && fires_at_once(t) {
                nodes.insert((s, i), g.add_node((s, i)));
            }
        }
    }
    for (&(s, i), &from) in &nodes {
        let TimerAction::Fire(ti) = wf.timers[i].action else {
            continue;
        };
        let tr = &wf.transitions[ti];
        if tr.guard.is_some() || !tr.enabled_from(s) {
            continue;
        }
        let to = tr.to.unwrap_or(s);
        for (u, next) in wf.timers.iter().enumerate() {
            let Some(&target) = nodes.get(&(to, u)) else {
                continue;
            };
            let rearmed = match &tr.rearm {
                Rearm::None => false,
                Rearm::All => true,
                Rearm::Some(ids) => ids.contains(&u),
            };
            if u == i || !next.armed_in(s) || rearmed {
                g.add_edge(from, target, ());
            }
        }
    }
    for scc in tarjan_scc(&g) {
        let cyclic = scc.len() > 1 || scc.iter().any(|&n| g.contains_edge(n, n));
        if !cyclic {
            continue;
        }
        let mut members: Vec<(usize, usize)> = scc.iter().map(|&n| g[n]).collect();
        members.sort_by_key(|&(s, i)| (wf.timers[i].span.start, s));
        let (_, first) = members[0];
        let chain: Vec<String> = members
            .iter()
            .map(|&(s, i)| {
                let t = &wf.timers[i];
                let fired = match t.action {
                    TimerAction::Fire(ti) => wf.transitions[ti].name.as_str(),
                    TimerAction::Effects(_) => "",
                };
                format!("`{}` in `{}` fires `{fired}`", t.name, wf.states[s].name)
            })
            .collect();
        diags.push(Diagnostic::new(
            "E028",
            file,
            wf.timers[first].span.clone(),
            format!(
                "zero-delay timer cycle: {}, which arms it again at the same instant, forever",
                chain.join("; ")
            ),
        ));
    }
}
