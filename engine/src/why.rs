//! "Why not?": a dry run of a transition that explains every reason it is
//! refused now, instead of the first one [`crate::fire`] stops at: the
//! record's state, the caller's role, each input and required field, and
//! each top-level `&&` clause of the guard evaluated on its own, with the
//! values of the fields it reads. Pure, like the rest of the engine.

use crate::eval::{validate, Actor, Ctx, Input, Record};
use crate::model::Workflow;
use crate::script::{self, ActorView, Eval, Lead, LeadData, Vars};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The answer to "why can't I fire this transition now?".
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WhyNot {
    pub transition: String,
    /// The record's current state.
    pub state: String,
    /// Whether firing now, as this actor with this input, would succeed.
    pub allowed: bool,
    /// Every reason it is refused (empty when allowed), each with the
    /// refusal code firing it would answer.
    pub reasons: Vec<Reason>,
    /// The guard's top-level `&&` clauses, each evaluated on its own (empty
    /// without a guard; one clause when the guard is not a conjunction).
    pub guard: Vec<Clause>,
}

/// One reason a transition is refused.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Reason {
    /// The refusal code (`E_NOT_ENABLED`, `E_FORBIDDEN`, `E_REQUIRED`,
    /// `E_GUARD`, ...).
    pub code: &'static str,
    pub message: String,
    /// The field concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What one clause of the guard gave.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClauseResult {
    /// The clause is true.
    Passed,
    /// The clause is false.
    Failed,
    /// The clause threw a message (a rules function refusing).
    Threw,
    /// The clause failed to run (a script error, a non-boolean value).
    Error,
}

/// One top-level clause of a guard.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Clause {
    /// The clause's source text.
    pub source: String,
    pub result: ClauseResult,
    /// The thrown message or the error (absent when it passed or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The record's fields (and `state`, `assignee`, ...) the clause reads,
    /// with their values as JSON (input applied); null when empty.
    pub reads: BTreeMap<String, serde_json::Value>,
}

/// Explain whether `transition` can be fired now on `rec`, as `ctx.actor`,
/// with `input`; list every reason it cannot.
pub fn why_not(wf: &Workflow, rec: &Record, transition: &str, input: &Input, ctx: Ctx) -> WhyNot {
    let state = wf.state_name(rec.state).to_string();
    let mut out = WhyNot {
        transition: transition.to_string(),
        state: state.clone(),
        allowed: false,
        reasons: Vec::new(),
        guard: Vec::new(),
    };
    let reason = |code: &'static str, message: String, field: Option<&str>| Reason {
        code,
        message,
        field: field.map(str::to_string),
    };
    let Some(ti) = wf.transition(transition) else {
        let names: Vec<&str> = wf.transitions.iter().map(|t| t.name.as_str()).collect();
        out.reasons.push(reason(
            "E_UNKNOWN_TRANSITION",
            format!(
                "workflow `{}` has no transition `{transition}` (transitions: {})",
                wf.id,
                names.join(", ")
            ),
            None,
        ));
        return out;
    };
    let t = &wf.transitions[ti];
    if wf.states[rec.state].is_final {
        out.reasons.push(reason(
            "E_FINAL",
            format!("the record is in final state `{state}` and accepts no change"),
            None,
        ));
    } else if !t.enabled_from(rec.state) {
        let from: Vec<&str> = (0..wf.states.len())
            .filter(|&s| t.enabled_from(s))
            .map(|s| wf.state_name(s))
            .collect();
        out.reasons.push(reason(
            "E_NOT_ENABLED",
            format!(
                "`{}` cannot be fired in state `{state}`; it can from: {}",
                t.name,
                from.join(", ")
            ),
            None,
        ));
    }
    if !t.allows(wf, rec, ctx.actor, ctx.directory) {
        out.reasons.push(reason(
            "E_FORBIDDEN",
            format!(
                "role `{}` may not fire `{}` (allowed: {})",
                ctx.actor.role,
                t.name,
                t.by.join(", ")
            ),
            None,
        ));
    }
    // Input and requirements, on a copy with the valid input applied.
    let mut after = rec.clone();
    for (k, v) in input {
        match wf.field(k) {
            Some(f) if t.input.contains(&f) => match validate(&wf.fields[f], v.clone()) {
                Ok(v) => after.fields[f] = v,
                Err(r) => out.reasons.push(reason("E_TYPE", r.message, Some(k))),
            },
            _ => out.reasons.push(reason(
                "E_INPUT",
                format!("`{}` does not accept `{k}`", t.name),
                Some(k),
            )),
        }
    }
    for &f in &t.require {
        if after.fields[f].is_empty() {
            let name = &wf.fields[f].name;
            let how = if t.input.contains(&f) {
                "give it as input"
            } else {
                "another transition must set it first"
            };
            out.reasons.push(reason(
                "E_REQUIRED",
                format!("`{name}` is required to {} and is empty: {how}", t.title),
                Some(name),
            ));
        }
    }
    if let Some(src) = &t.guard_source {
        out.guard = clauses(wf, &after, src, input, ctx);
        for c in &out.guard {
            let (code, message) = match c.result {
                ClauseResult::Passed => continue,
                ClauseResult::Failed => {
                    ("E_GUARD", format!("guard clause `{}` is false", c.source))
                }
                ClauseResult::Threw => (
                    "E_GUARD",
                    c.message.clone().unwrap_or_else(|| c.source.clone()),
                ),
                ClauseResult::Error => (
                    "E_SCRIPT",
                    format!(
                        "guard clause `{}` failed: {}",
                        c.source,
                        c.message.as_deref().unwrap_or("")
                    ),
                ),
            };
            out.reasons.push(reason(code, message, None));
        }
    }
    if out.reasons.is_empty() {
        // Everything above passed: what firing itself says (an effect that
        // fails, an `assign` finding nobody).
        if let Err(r) = crate::eval::fire(wf, rec, transition, input, ctx) {
            out.reasons.push(Reason {
                code: r.code.as_str(),
                message: r.message,
                field: r.field,
            });
        }
    }
    out.allowed = out.reasons.is_empty();
    out
}

/// Evaluate each top-level `&&` clause of `src` on its own.
fn clauses(wf: &Workflow, rec: &Record, src: &str, input: &Input, ctx: Ctx) -> Vec<Clause> {
    split_and(src)
        .into_iter()
        .map(|clause| {
            let reads = wf
                .scripts
                .lead_reads(&clause)
                .into_iter()
                .map(|name| {
                    let v = read(wf, rec, &name);
                    (name, v)
                })
                .collect();
            let (result, message) = match wf.scripts.eval_source(&clause, vars(wf, rec, input, ctx))
            {
                Eval::Value(v) => match v.as_bool() {
                    Ok(true) => (ClauseResult::Passed, None),
                    Ok(false) => (ClauseResult::Failed, None),
                    Err(ty) => (
                        ClauseResult::Error,
                        Some(format!("returned {ty} instead of true or false")),
                    ),
                },
                Eval::Thrown(m) => (ClauseResult::Threw, Some(m)),
                Eval::Failed(m) => (ClauseResult::Error, Some(m)),
            };
            Clause {
                source: clause,
                result,
                message,
                reads,
            }
        })
        .collect()
}

/// A property of `lead` as JSON: a field, or one of the built-ins.
fn read(wf: &Workflow, rec: &Record, name: &str) -> serde_json::Value {
    if let Some(f) = wf.field(name) {
        return rec.fields[f].to_json();
    }
    match name {
        "state" => wf.state_name(rec.state).into(),
        "assignee" => rec.assignee.clone().into(),
        "created_at" => crate::value::Value::DateTime(rec.created_at).to_json(),
        "entered_at" => crate::value::Value::DateTime(rec.entered_at).to_json(),
        _ => serde_json::Value::Null,
    }
}

fn vars(wf: &Workflow, rec: &Record, input: &Input, ctx: Ctx) -> Vars {
    let mut map = rhai::Map::new();
    for (k, v) in input {
        map.insert(k.as_str().into(), script::to_dynamic(v));
    }
    let actor: &Actor = ctx.actor;
    Vars {
        lead: Lead(Arc::new(LeadData {
            names: wf.field_index.clone(),
            fields: rec.fields.clone(),
            state: wf.state_name(rec.state).to_string(),
            assignee: rec.assignee.clone(),
            created_at: rec.created_at,
            entered_at: rec.entered_at,
        })),
        now: ctx.now,
        input: Some(map),
        actor: Some(ActorView(Arc::new(actor.clone()))),
    }
}

/// The top-level `&&` clauses of an expression, trimmed. A source with a
/// top-level `||` or `;` (or that is not one expression) is one clause:
/// splitting it would change its meaning.
pub fn split_and(src: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).map(|&(_, c)| c);
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ';' if depth == 0 => return vec![src.trim().to_string()],
            '|' if depth == 0 && next == Some('|') => return vec![src.trim().to_string()],
            '/' if next == Some('/') || next == Some('*') => return vec![src.trim().to_string()],
            '&' if depth == 0 && next == Some('&') => {
                parts.push(src[start..at].trim().to_string());
                start = at + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(src[start..].trim().to_string());
    if parts.iter().any(String::is_empty) {
        return vec![src.trim().to_string()];
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, Project, SourceFile, Value};

    const WF: &str = r#"
[workflow]
id = "w"
initial = "open"
roles = ["agent", "boss"]
[fields.attempts]
type = "int"
default = 0
[fields.notes]
type = "text"
[fields.phone]
type = "string"
pii = true
reveal_in = ["open"]
[states.open]
[states.done]
final = true
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
input = ["notes"]
require = ["notes"]
guard = "lead.attempts >= 1 && lead.phone != () && lead.state == \"open\""
"#;

    fn workflow() -> Arc<Workflow> {
        let loaded = load(&Project {
            workflows: vec![SourceFile::new("workflows/w.toml", WF)],
            ..Project::default()
        });
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.set.get("w").cloned().unwrap()
    }

    #[test]
    fn every_reason_and_each_clause_with_its_values() {
        let wf = workflow();
        let now = crate::value::parse_instant("2026-01-05T09:00:00Z").unwrap();
        let boss = Actor {
            id: "b".into(),
            role: "boss".into(),
            ..Actor::default()
        };
        let ctx = Ctx {
            now,
            actor: &boss,
            directory: &[],
        };
        let rec = crate::create(&wf, &[], ctx).unwrap().record;
        let w = why_not(&wf, &rec, "close", &[], ctx);
        assert!(!w.allowed);
        let codes: Vec<&str> = w.reasons.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            ["E_FORBIDDEN", "E_REQUIRED", "E_GUARD", "E_GUARD"],
            "{w:#?}"
        );
        assert_eq!(w.guard.len(), 3);
        assert_eq!(w.guard[0].source, "lead.attempts >= 1");
        assert_eq!(w.guard[0].result, ClauseResult::Failed);
        assert_eq!(w.guard[0].reads["attempts"], serde_json::json!(0));
        assert_eq!(w.guard[1].result, ClauseResult::Failed);
        assert_eq!(w.guard[2].result, ClauseResult::Passed);
        assert_eq!(w.guard[2].reads["state"], serde_json::json!("open"));
        // As the right role, with the input and the fields set: allowed,
        // and what `fire` says agrees.
        let agent = Actor {
            role: "agent".into(),
            ..boss.clone()
        };
        let ctx = Ctx {
            now,
            actor: &agent,
            directory: &[],
        };
        let mut rec = rec;
        rec.fields[0] = Value::Int(2);
        rec.fields[2] = Value::Str("555".into());
        let input = [("notes".to_string(), Value::Str("ok".into()))];
        let w = why_not(&wf, &rec, "close", &input, ctx);
        assert!(w.allowed, "{w:#?}");
        assert!(crate::fire(&wf, &rec, "close", &input, ctx).is_ok());
        let w = why_not(&wf, &rec, "nope", &[], ctx);
        assert_eq!(w.reasons[0].code, "E_UNKNOWN_TRANSITION");
    }

    #[test]
    fn splits_only_top_level_conjunctions() {
        assert_eq!(
            split_and("lead.a > 1 && (lead.b || lead.c) && f(\"&&\", [1 && 2])"),
            vec!["lead.a > 1", "(lead.b || lead.c)", "f(\"&&\", [1 && 2])"]
        );
        assert_eq!(split_and("a && b || c"), vec!["a && b || c"]);
        assert_eq!(
            split_and("let x = 1; x > 0 && y"),
            vec!["let x = 1; x > 0 && y"]
        );
        assert_eq!(split_and(" rules::ok(lead) "), vec!["rules::ok(lead)"]);
    }
}
