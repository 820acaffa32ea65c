//! The record being worked on while a step runs: in-place changes with an
//! undo log, the transition's steps (input, requirements, guard, effects,
//! state change, timers) and the [`Outcome`] at the end.

use super::*;
use crate::model::*;
use crate::script;
use crate::value::Value;
use chrono::{DateTime, Utc};

/// The record being worked on while effects run. It is changed in place:
/// each field's old value is kept as it is first overwritten, which gives
/// the changes at the end, and the record back exactly on a refusal, without
/// copying the record up front.
pub(super) struct Work<'a> {
    pub(super) wf: &'a Workflow,
    pub(super) rec: Record,
    pub(super) ctx: Ctx<'a>,
    /// None on creation: every field starts empty, nothing to restore.
    undo: Option<Undo>,
    pub(super) notifications: Vec<Notification>,
    pub(super) spawns: Vec<SpawnRequest>,
    pub(super) assignments: Vec<Assignment>,
    pub(super) cascades: Vec<Cascade>,
}

/// What the record was before the transition, as far as it was changed.
struct Undo {
    state: StateId,
    entered_at: DateTime<Utc>,
    /// The assignee before its first write.
    assignee: Option<Option<String>>,
    /// Each written field's value before its first write.
    fields: Vec<(FieldId, Value)>,
}

impl<'a> Work<'a> {
    /// `restorable`: keep what is needed to diff and restore (a transition);
    /// false for a creation, whose changes are taken against empty fields.
    pub(super) fn new(wf: &'a Workflow, rec: Record, ctx: Ctx<'a>, restorable: bool) -> Self {
        let undo = restorable.then(|| Undo {
            state: rec.state,
            entered_at: rec.entered_at,
            assignee: None,
            fields: Vec::new(),
        });
        Work {
            wf,
            rec,
            ctx,
            undo,
            notifications: Vec::new(),
            spawns: Vec::new(),
            cascades: Vec::new(),
            assignments: Vec::new(),
        }
    }

    /// Remember a field's old value if this is its first write.
    pub(super) fn keep(&mut self, f: FieldId, old: impl FnOnce(&Record) -> Value) {
        if let Some(u) = &mut self.undo {
            if !u.fields.iter().any(|(g, _)| *g == f) {
                u.fields.push((f, old(&self.rec)));
            }
        }
    }

    pub(super) fn set(&mut self, f: FieldId, v: Value) {
        let old = std::mem::replace(&mut self.rec.fields[f], v);
        self.keep(f, |_| old);
    }

    pub(super) fn set_assignee(&mut self, a: Option<String>) {
        let old = std::mem::replace(&mut self.rec.assignee, a);
        if let Some(u) = &mut self.undo {
            u.assignee.get_or_insert(old);
        }
    }

    /// The record exactly as it was before (a refusal).
    pub(super) fn restore(mut self) -> Record {
        if let Some(u) = self.undo.take() {
            for (f, v) in u.fields {
                self.rec.fields[f] = v;
            }
            if let Some(a) = u.assignee {
                self.rec.assignee = a;
            }
            self.rec.state = u.state;
            self.rec.entered_at = u.entered_at;
        }
        self.rec
    }

    /// Input, requirements, guard, effects, state change, timers. Returns
    /// the timers to arm and to cancel.
    pub(super) fn transition(
        &mut self,
        ti: TransitionId,
        input: &Input,
        firing: Option<TimerId>,
    ) -> Result<(Vec<TimerArm>, Vec<String>), Refusal> {
        let wf = self.wf;
        let t = &wf.transitions[ti];
        let from = self.rec.state;
        self.take_input(t, input)?;
        self.check_required(t)?;
        if let Some(g) = t.guard {
            self.check_guard(t, g, input)?;
        }
        self.run(&t.effects)?;
        let to = t.to.unwrap_or(from);
        if to != from {
            self.rec.state = to;
            self.rec.entered_at = self.ctx.now;
            self.run(&wf.states[to].on_enter)?;
        }
        self.timer_changes(t, from, to, firing)
    }

    /// Write the transition's input, each value checked against its field;
    /// a field the transition does not accept is refused (`E_INPUT`).
    fn take_input(&mut self, t: &Transition, input: &Input) -> Result<(), Refusal> {
        let wf = self.wf;
        for (k, v) in input {
            let fid = match wf.field(k) {
                Some(f) if t.input.contains(&f) => f,
                _ => {
                    let allowed: Vec<&str> = t
                        .input
                        .iter()
                        .map(|&f| wf.fields[f].name.as_str())
                        .collect();
                    return Err(Refusal::on(
                        Code::Input,
                        k,
                        format!(
                            "`{}` does not accept `{k}` (accepted: {})",
                            t.name,
                            allowed.join(", ")
                        ),
                    ));
                }
            };
            self.set(fid, validate(&wf.fields[fid], v.clone())?);
        }
        Ok(())
    }

    /// Every field the transition requires has a value (`E_REQUIRED`).
    fn check_required(&self, t: &Transition) -> Result<(), Refusal> {
        let wf = self.wf;
        for &f in &t.require {
            if self.rec.fields[f].is_empty() {
                return Err(Refusal::on(
                    Code::Required,
                    &wf.fields[f].name,
                    format!("`{}` is required to {}", wf.fields[f].name, t.title),
                ));
            }
        }
        Ok(())
    }

    /// The guard gives true, or the transition is refused: false is
    /// `E_GUARD`, anything else `E_SCRIPT`.
    fn check_guard(
        &mut self,
        t: &Transition,
        g: script::ScriptId,
        input: &Input,
    ) -> Result<(), Refusal> {
        let wf = self.wf;
        let map = wf.scripts.uses(g).input.then(|| {
            let mut map = rhai::Map::new();
            for (k, v) in input {
                map.insert(k.as_str().into(), script::to_dynamic(v));
            }
            map
        });
        match self.eval(g, map, true)? {
            v if v.as_bool() == Ok(true) => {}
            v if v.as_bool() == Ok(false) => {
                return Err(Refusal::new(
                    Code::Guard,
                    format!(
                        "guard of `{}` refused: {}",
                        t.name,
                        t.guard_source.as_deref().unwrap_or("")
                    ),
                ))
            }
            v => {
                return Err(Refusal::new(
                    Code::Script,
                    format!(
                        "guard of `{}` returned {} instead of true or false",
                        t.name,
                        v.type_name()
                    ),
                ))
            }
        }
        Ok(())
    }

    pub(super) fn finish(
        self,
        transition: Option<&str>,
        timer: Option<&str>,
        from: Option<StateId>,
        arm: Vec<TimerArm>,
        cancel: Vec<String>,
    ) -> Outcome {
        let wf = self.wf;
        let rec = self.rec;
        let change = |i: FieldId, old: Value| FieldChange {
            field: wf.fields[i].name.clone(),
            old,
            new: rec.fields[i].clone(),
            tracked: wf.fields[i].track,
        };
        let (changes, assignee, before) = match self.undo {
            // A creation: every field against empty.
            None => (
                (0..rec.fields.len())
                    .filter(|&i| rec.fields[i] != Value::Null)
                    .map(|i| change(i, Value::Null))
                    .collect(),
                rec.assignee.clone().map(|a| (None, Some(a))),
                None,
            ),
            Some(mut u) => {
                // Field order, as a full diff would list them.
                u.fields.sort_unstable_by_key(|(f, _)| *f);
                let changes = u
                    .fields
                    .into_iter()
                    .filter(|(i, old)| *old != rec.fields[*i])
                    .map(|(i, old)| change(i, old))
                    .collect();
                let assignee = match u.assignee {
                    Some(old) if old != rec.assignee => Some((old, rec.assignee.clone())),
                    _ => None,
                };
                (changes, assignee, Some((u.state, u.entered_at)))
            }
        };
        Outcome {
            transition: transition.map(str::to_string),
            timer: timer.map(str::to_string),
            from_state: from.map(|s| wf.states[s].name.clone()),
            to_state: wf.states[rec.state].name.clone(),
            record: rec,
            changes,
            assignee,
            arm,
            cancel,
            notifications: self.notifications,
            spawns: self.spawns,
            assignments: self.assignments,
            cascades: self.cascades,
            before,
        }
    }
}
