//! Diagrams of a workflow: Mermaid (renders in GitHub and most docs tools)
//! and Graphviz dot. Transitions are labelled edges, timers dashed edges,
//! final states double-bordered.

use crate::model::{Due, TimerAction, Workflow};
use std::fmt::Write;

fn timer_label(wf: &Workflow, t: &crate::model::Timer) -> String {
    let when = match &t.due {
        Due::After {
            amount,
            unit,
            since,
        } => {
            let u = match unit {
                crate::duration::Unit::Minutes => "m",
                crate::duration::Unit::Hours => "h",
                crate::duration::Unit::Days => "d",
                crate::duration::Unit::Weeks => "w",
                crate::duration::Unit::WorkingHours => "wh",
                crate::duration::Unit::WorkingDays => "wd",
            };
            match since {
                Some(f) => format!("{amount}{u} since {}", wf.fields[*f].name),
                None => format!("{amount}{u}"),
            }
        }
        Due::At(_) => "at".to_string(),
    };
    format!("⏱ {} ({when})", t.name)
}

/// Edges: (from, to, label, dashed).
fn edges(wf: &Workflow) -> Vec<(usize, usize, String, bool)> {
    let mut out = Vec::new();
    for t in &wf.transitions {
        for (s, &on) in t.from.iter().enumerate() {
            if on {
                out.push((s, t.to.unwrap_or(s), t.name.clone(), false));
            }
        }
    }
    for tm in &wf.timers {
        for (s, &on) in tm.in_states.iter().enumerate() {
            if !on || wf.states[s].is_final {
                continue;
            }
            let to = match &tm.action {
                TimerAction::Fire(ti) if wf.transitions[*ti].enabled_from(s) => {
                    wf.transitions[*ti].to.unwrap_or(s)
                }
                TimerAction::Fire(_) => continue,
                TimerAction::Effects(_) => s,
            };
            out.push((s, to, timer_label(wf, tm), true));
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('"', "'")
}

/// A Mermaid flowchart: transitions are solid labelled edges, timers dashed
/// (`-.->`), final states double circles, the start a small filled circle.
pub fn mermaid(wf: &Workflow) -> String {
    let mut o = String::new();
    let title = if wf.title.is_empty() {
        &wf.id
    } else {
        &wf.title
    };
    let _ = writeln!(o, "---\ntitle: {}\n---\nflowchart LR", esc(title));
    // Node ids are prefixed: a state called `end` would be a Mermaid keyword.
    let _ = writeln!(o, "    start(( )) --> s_{}", wf.state_name(wf.initial));
    for s in &wf.states {
        if s.is_final {
            let _ = writeln!(o, "    s_{}(((\"{}\")))", s.name, esc(&s.title));
        } else {
            let _ = writeln!(o, "    s_{}(\"{}\")", s.name, esc(&s.title));
        }
    }
    for (a, b, label, dashed) in edges(wf) {
        let (a, b, label) = (wf.state_name(a), wf.state_name(b), esc(&label));
        if dashed {
            let _ = writeln!(o, "    s_{a} -. \"{label}\" .-> s_{b}");
        } else {
            let _ = writeln!(o, "    s_{a} -- \"{label}\" --> s_{b}");
        }
    }
    o
}

pub fn dot(wf: &Workflow) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box, style=rounded];",
        esc(&wf.id)
    );
    let _ = writeln!(
        o,
        "    __start [shape=point];\n    __start -> \"{}\";",
        wf.state_name(wf.initial)
    );
    for s in &wf.states {
        let shape = if s.is_final { ", peripheries=2" } else { "" };
        let _ = writeln!(
            o,
            "    \"{}\" [label=\"{}\"{shape}];",
            s.name,
            esc(&s.title)
        );
    }
    for (a, b, label, dashed) in edges(wf) {
        let style = if dashed { ", style=dashed" } else { "" };
        let _ = writeln!(
            o,
            "    \"{}\" -> \"{}\" [label=\"{}\"{style}];",
            wf.state_name(a),
            wf.state_name(b),
            esc(&label)
        );
    }
    o.push_str("}\n");
    o
}
