//! Evaluation: create a record, fire a transition, fire a due timer. Pure and
//! deterministic: time and the actor directory come in as values, and the
//! result is an [`Outcome`] (what should happen) that the caller commits.

mod checks;
mod effects;
mod outcome;
mod record;
mod scripts;
#[cfg(test)]
mod tests;
mod timers;
mod work;

pub use outcome::{
    Assignment, Cascade, Code, FieldChange, Input, Notification, Outcome, Refusal, Refused,
    SpawnRequest, TimerArm,
};
pub use record::{Actor, Ctx, Period, Record};

use checks::{may_fire, timer_id, transition_id};
use work::Work;

use crate::model::*;
use crate::script;
use crate::value::Value;
use chrono::{DateTime, Utc};

/// Check a value against a field: type, range of dates, pattern, enum values.
pub fn validate(f: &Field, v: Value) -> Result<Value, Refusal> {
    let v =
        f.ty.coerce(v)
            .and_then(|v| crate::value::check_range(&v).map(|()| v))
            .map_err(|m| Refusal::on(Code::Type, &f.name, format!("{}: {m}", f.name)))?;
    if let (Some(p), Value::Str(s)) = (&f.pattern, &v) {
        if !p.is_match(s) {
            let pat = p.as_str().trim_start_matches("^(?:").trim_end_matches(")$");
            return Err(Refusal::on(
                Code::Type,
                &f.name,
                format!("{}: \"{s}\" does not match the pattern {pat}", f.name),
            ));
        }
    }
    if let (false, Value::Str(s)) = (f.values.is_empty(), &v) {
        if !f.values.iter().any(|x| x == s) {
            return Err(Refusal::on(
                Code::Type,
                &f.name,
                format!("{}: \"{s}\" is not one of {}", f.name, f.values.join(", ")),
            ));
        }
    }
    Ok(v)
}

/// Create a record: initial state, defaults, input, `on_enter` effects of the
/// initial state, its timers armed.
pub fn create(wf: &Workflow, input: &Input, ctx: Ctx) -> Result<Outcome, Refusal> {
    let mut fields: Vec<Value> = wf
        .fields
        .iter()
        .map(|f| f.default.clone().unwrap_or(Value::Null))
        .collect();
    for (k, v) in input {
        let fid = wf.field(k).ok_or_else(|| {
            Refusal::on(
                Code::Input,
                k,
                format!("workflow `{}` has no field `{k}`", wf.id),
            )
        })?;
        fields[fid] = validate(&wf.fields[fid], v.clone())?;
    }
    if let Some(f) = wf
        .fields
        .iter()
        .zip(&fields)
        .find(|(f, v)| f.required && v.is_empty())
    {
        return Err(Refusal::on(
            Code::Required,
            &f.0.name,
            format!("`{}` is required to create a {}", f.0.name, wf.record),
        ));
    }
    let rec = Record {
        state: wf.initial,
        fields,
        assignee: None,
        created_at: ctx.now,
        entered_at: ctx.now,
    };
    let mut w = Work::new(wf, rec, ctx, false);
    w.run(&wf.states[wf.initial].on_enter)?;
    let mut arm = Vec::new();
    for t in &wf.timers {
        if t.armed_in(wf.initial) {
            if let Some(due) = w.due(t)? {
                arm.push(TimerArm {
                    timer: t.name.clone(),
                    due,
                });
            }
        }
    }
    Ok(w.finish(None, None, None, arm, Vec::new()))
}

/// Fire a transition on a record. The record is copied; callers that own it
/// use [`fire_owned`] instead.
pub fn fire(
    wf: &Workflow,
    rec: &Record,
    transition: &str,
    input: &Input,
    ctx: Ctx,
) -> Result<Outcome, Refusal> {
    // Checked before the copy: refusals that need no evaluation stay cheap
    // (the HTTP actions list fires every transition as a dry run).
    let ti = transition_id(wf, transition)?;
    may_fire(wf, rec, ti, ctx.actor, ctx.directory)?;
    run_transition(Work::new(wf, rec.clone(), ctx, true), ti, input, None).map_err(|r| r.refusal)
}

/// [`fire`] on a record the caller owns: no copy is made. The record moves
/// into [`Outcome::record`], or comes back exactly as it was with the
/// refusal ([`Outcome::revert`] gives it back if the caller fails later).
pub fn fire_owned(
    wf: &Workflow,
    rec: Record,
    transition: &str,
    input: &Input,
    ctx: Ctx,
) -> Result<Outcome, Box<Refused>> {
    let checked = transition_id(wf, transition)
        .and_then(|ti| may_fire(wf, &rec, ti, ctx.actor, ctx.directory).map(|()| ti));
    match checked {
        Ok(ti) => run_transition(Work::new(wf, rec, ctx, true), ti, input, None),
        Err(refusal) => Err(Box::new(Refused {
            refusal,
            record: rec,
        })),
    }
}

/// Move a record to another actor (a bulk reassignment: an absent
/// operator's leads to a colleague). State, fields and timers stay; the
/// outcome is the step `reassign` with the assignee change, which the store
/// writes like a transition (history, actor loads). Refused for a record in
/// a final state (`E_FINAL`) and for an actor that is not in
/// `ctx.directory` (`E_INPUT`, field `to`).
pub fn reassign_owned(
    wf: &Workflow,
    rec: Record,
    to: &str,
    ctx: Ctx,
) -> Result<Outcome, Box<Refused>> {
    let refused = |refusal: Refusal, record: Record| Err(Box::new(Refused { refusal, record }));
    if wf.states[rec.state].is_final {
        let msg = format!(
            "the record is in final state `{}` and accepts no change",
            wf.state_name(rec.state)
        );
        return refused(Refusal::new(Code::Final, msg), rec);
    }
    if !ctx.directory.iter().any(|a| a.id == to) {
        let mut r = Refusal::new(Code::Input, format!("no actor `{to}` in the directory"));
        r.field = Some("to".into());
        return refused(r, rec);
    }
    let from = rec.state;
    let mut w = Work::new(wf, rec, ctx, true);
    w.set_assignee(Some(to.to_string()));
    Ok(w.finish(Some("reassign"), None, Some(from), Vec::new(), Vec::new()))
}

/// Fire a due timer. A timer whose record has left the timer's states is
/// refused with E_NOT_ENABLED: the caller discards it. The record is copied;
/// callers that own it use [`fire_timer_owned`] instead.
pub fn fire_timer(
    wf: &Workflow,
    rec: &Record,
    timer: &str,
    now: DateTime<Utc>,
    directory: &[Actor],
) -> Result<Outcome, Refusal> {
    let id = timer_id(wf, rec.state, timer)?;
    if let TimerAction::Fire(ti) = wf.timers[id].action {
        may_fire(wf, rec, ti, Actor::system_shared(), directory)?;
    }
    run_timer(wf, rec.clone(), id, now, directory).map_err(|r| r.refusal)
}

/// [`fire_timer`] on a record the caller owns: no copy is made, as in
/// [`fire_owned`].
pub fn fire_timer_owned(
    wf: &Workflow,
    rec: Record,
    timer: &str,
    now: DateTime<Utc>,
    directory: &[Actor],
) -> Result<Outcome, Box<Refused>> {
    let checked = timer_id(wf, rec.state, timer).and_then(|id| match wf.timers[id].action {
        TimerAction::Fire(ti) => {
            may_fire(wf, &rec, ti, Actor::system_shared(), directory).map(|()| id)
        }
        TimerAction::Effects(_) => Ok(id),
    });
    match checked {
        Ok(id) => run_timer(wf, rec, id, now, directory),
        Err(refusal) => Err(Box::new(Refused {
            refusal,
            record: rec,
        })),
    }
}

/// Evaluate one of the workflow's scripts against a record (views, KPIs,
/// reports).
pub(crate) fn eval_script(
    wf: &Workflow,
    rec: &Record,
    id: script::ScriptId,
    ctx: Ctx,
) -> Result<rhai::Dynamic, Refusal> {
    let mut w = Work::new(wf, rec.clone(), ctx, false);
    w.eval(id, None, false)
}

/// When timer `timer` would be due on `rec` had it been armed at
/// `armed_at` (`None`: an `at` that gives nothing, so not armed). Scripts
/// see `now = armed_at`. For `leadflow migrate --timers recompute`.
pub fn timer_due(
    wf: &Workflow,
    rec: &Record,
    timer: &str,
    armed_at: DateTime<Utc>,
    directory: &[Actor],
) -> Result<Option<DateTime<Utc>>, Refusal> {
    let id = wf.timer(timer).ok_or_else(|| {
        Refusal::new(
            Code::UnknownTimer,
            format!("workflow `{}` has no timer `{timer}`", wf.id),
        )
    })?;
    let ctx = Ctx {
        now: armed_at,
        actor: Actor::system_shared(),
        directory,
    };
    let mut w = Work::new(wf, rec.clone(), ctx, true);
    w.due(&wf.timers[id])
}

/// Run a due timer that [`timer_id`] (and [`may_fire`] for a transition)
/// accepted.
fn run_timer(
    wf: &Workflow,
    rec: Record,
    id: TimerId,
    now: DateTime<Utc>,
    directory: &[Actor],
) -> Result<Outcome, Box<Refused>> {
    let tm = &wf.timers[id];
    let ctx = Ctx {
        now,
        actor: Actor::system_shared(),
        directory,
    };
    match &tm.action {
        TimerAction::Fire(ti) => run_transition(Work::new(wf, rec, ctx, true), *ti, &[], Some(id)),
        TimerAction::Effects(effects) => {
            let mut w = Work::new(wf, rec, ctx, true);
            match w.run(effects) {
                Ok(()) => {
                    let from = w.rec.state;
                    let mut out =
                        w.finish(None, Some(&tm.name), Some(from), Vec::new(), Vec::new());
                    out.timer = Some(tm.name.clone());
                    Ok(out)
                }
                Err(refusal) => Err(Box::new(Refused {
                    refusal,
                    record: w.restore(),
                })),
            }
        }
    }
}

/// Run a transition that [`may_fire`] accepted; on a refusal the record
/// comes back as it was.
fn run_transition(
    mut w: Work,
    ti: TransitionId,
    input: &Input,
    firing: Option<TimerId>,
) -> Result<Outcome, Box<Refused>> {
    let wf = w.wf;
    let from = w.rec.state;
    match w.transition(ti, input, firing) {
        Ok((arm, cancel)) => {
            let mut out = w.finish(
                Some(&wf.transitions[ti].name),
                None,
                Some(from),
                arm,
                cancel,
            );
            out.timer = firing.map(|i| wf.timers[i].name.clone());
            Ok(out)
        }
        Err(refusal) => Err(Box::new(Refused {
            refusal,
            record: w.restore(),
        })),
    }
}

/// Whether `actor` passes the `where` condition of a role recipient
/// ([`Recipient::Role`]), evaluated over the record as it is after the step
/// (`lead`) and the candidate (`actor`), at `now`. Pure: the runtime calls
/// it for each actor of the role in its directory.
pub fn recipient_matches(
    wf: &Workflow,
    rec: &Record,
    filter: crate::script::ScriptId,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, Refusal> {
    let ctx = Ctx {
        now,
        actor: Actor::system_shared(),
        directory: &[],
    };
    let mut w = Work::new(wf, rec.clone(), ctx, false);
    let v = w.eval_with(filter, None, Some(actor))?;
    v.as_bool().map_err(|t| {
        Refusal::new(
            Code::Script,
            format!("recipient `where` returned {t} instead of true or false"),
        )
    })
}
