//! Evaluation: create a record, fire a transition, fire a due timer. Pure and
//! deterministic: time and the actor directory come in as values, and the
//! result is an [`Outcome`] (what should happen) that the caller commits.

use crate::model::*;
use crate::script::{self, Eval, Lead, LeadData, Vars};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// A record as the engine sees it: its state and typed fields (indexed by the
/// workflow's field ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub state: StateId,
    pub fields: Vec<Value>,
    pub assignee: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the record entered its current state.
    pub entered_at: DateTime<Utc>,
}

impl Record {
    pub fn get<'a>(&'a self, wf: &Workflow, field: &str) -> Option<&'a Value> {
        wf.field(field).map(|i| &self.fields[i])
    }

    /// Fields by name, as JSON (what the store persists).
    pub fn fields_json(&self, wf: &Workflow) -> serde_json::Map<String, serde_json::Value> {
        wf.fields
            .iter()
            .zip(&self.fields)
            .filter(|(_, v)| !matches!(v, Value::Null))
            .map(|(f, v)| (f.name.clone(), v.to_json()))
            .collect()
    }

    /// Rebuild a record from persisted parts. Unknown fields are ignored and
    /// values that no longer fit their type are dropped (a workflow edit must
    /// never make a stored record unreadable).
    pub fn from_json(
        wf: &Workflow,
        state: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
        assignee: Option<String>,
        created_at: DateTime<Utc>,
        entered_at: DateTime<Utc>,
    ) -> Option<Record> {
        let state = wf.state(state)?;
        let mut values = vec![Value::Null; wf.fields.len()];
        for (i, f) in wf.fields.iter().enumerate() {
            if let Some(j) = fields.get(&f.name) {
                values[i] = f.ty.coerce(Value::from_json(j)).unwrap_or(Value::Null);
            }
        }
        Some(Record {
            state,
            fields: values,
            assignee,
            created_at,
            entered_at,
        })
    }
}

/// A period during which an actor receives nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Someone who fires transitions or receives assignments: a partner, dealer,
/// operator, agent, or the system itself (timers).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: String,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Open records currently assigned (computed by the caller).
    #[serde(default)]
    pub load: u32,
    #[serde(default)]
    pub unavailable: Vec<Period>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// Where messages to the actor go (`notify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The language of messages to the actor (`it`, `en`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The team the actor works in (`crate::org`): the actors whose
    /// `manages` lists it are its managers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The actor's own manager, by id (besides its team's managers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports_to: Option<String>,
    /// The teams the actor manages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manages: Vec<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            id: "system".into(),
            role: "system".into(),
            ..Actor::default()
        }
    }

    /// The system actor, shared: timers fire as it without building one.
    pub fn system_shared() -> &'static Actor {
        static SYSTEM: LazyLock<Actor> = LazyLock::new(Actor::system);
        &SYSTEM
    }

    pub fn available_at(&self, now: DateTime<Utc>) -> bool {
        !self
            .unavailable
            .iter()
            .any(|p| p.from <= now && now < p.until)
            && self.capacity.is_none_or(|c| self.load < c)
    }
}

/// What a transition is evaluated against besides the record.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub actor: &'a Actor,
    /// Candidates for `assign` effects.
    pub directory: &'a [Actor],
}

/// Why a request was refused. Codes are stable: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Code {
    #[serde(rename = "E_UNKNOWN_TRANSITION")]
    UnknownTransition,
    #[serde(rename = "E_UNKNOWN_TIMER")]
    UnknownTimer,
    #[serde(rename = "E_NOT_ENABLED")]
    NotEnabled,
    #[serde(rename = "E_FINAL")]
    Final,
    #[serde(rename = "E_FORBIDDEN")]
    Forbidden,
    #[serde(rename = "E_INPUT")]
    Input,
    #[serde(rename = "E_TYPE")]
    Type,
    #[serde(rename = "E_REQUIRED")]
    Required,
    #[serde(rename = "E_GUARD")]
    Guard,
    #[serde(rename = "E_SCRIPT")]
    Script,
    #[serde(rename = "E_NO_CANDIDATE")]
    NoCandidate,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::UnknownTransition => "E_UNKNOWN_TRANSITION",
            Code::UnknownTimer => "E_UNKNOWN_TIMER",
            Code::NotEnabled => "E_NOT_ENABLED",
            Code::Final => "E_FINAL",
            Code::Forbidden => "E_FORBIDDEN",
            Code::Input => "E_INPUT",
            Code::Type => "E_TYPE",
            Code::Required => "E_REQUIRED",
            Code::Guard => "E_GUARD",
            Code::Script => "E_SCRIPT",
            Code::NoCandidate => "E_NO_CANDIDATE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    /// The field concerned, for E_INPUT, E_TYPE and E_REQUIRED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Refusal {
    fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            field: None,
        }
    }
    fn on(code: Code, field: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
    /// Whether history keeps this change (`track = true`, the default).
    pub tracked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerArm {
    pub timer: String,
    pub due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub template: String,
    /// Recipients as the workflow names them; the runtime resolves them.
    pub to: Vec<Recipient>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpawnRequest {
    pub workflow: String,
    /// None: create now.
    pub due: Option<DateTime<Utc>>,
    pub fields: Vec<(String, Value)>,
    /// Link name on the new record pointing back to this one.
    pub link: String,
    /// Link name on this record pointing to the new one.
    pub backlink: String,
}

/// A transition to fire, as `system`, on every record linked from this one
/// under `via`, once this record's changes are written (`fire_linked`).
/// Linked records where it is not enabled, or that refuse it, stay as they
/// are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cascade {
    pub via: String,
    pub transition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub role: String,
    /// None: no available candidate.
    pub actor: Option<String>,
}

/// What a create, transition or timer should do. The caller commits it as a
/// whole or not at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The transition fired (None for a creation or a timer running effects).
    pub transition: Option<String>,
    /// The timer that fired, if a timer caused this.
    pub timer: Option<String>,
    /// None on creation.
    pub from_state: Option<String>,
    pub to_state: String,
    #[serde(skip)]
    pub record: Record,
    pub changes: Vec<FieldChange>,
    /// (old, new) if the assignee changed.
    pub assignee: Option<(Option<String>, Option<String>)>,
    pub arm: Vec<TimerArm>,
    pub cancel: Vec<String>,
    pub notifications: Vec<Notification>,
    pub spawns: Vec<SpawnRequest>,
    pub assignments: Vec<Assignment>,
    /// `fire_linked` effects that ran, in order.
    pub cascades: Vec<Cascade>,
    /// State and `entered_at` before a transition or timer (None on
    /// creation): with `changes` and `assignee`, what [`Outcome::revert`]
    /// needs to give an owned record back unchanged.
    #[serde(skip)]
    before: Option<(StateId, DateTime<Utc>)>,
}

impl Outcome {
    /// The record as it was passed to [`fire_owned`] or [`fire_timer_owned`],
    /// for a caller that must give it back unchanged after all (a spawn it
    /// causes is refused, a write fails). Every changed field, the assignee,
    /// the state and `entered_at` get their old values back. On the outcome
    /// of a creation this is the record with every field empty.
    pub fn revert(self, wf: &Workflow) -> Record {
        let mut rec = self.record;
        for c in self.changes {
            if let Some(i) = wf.field(&c.field) {
                rec.fields[i] = c.old;
            }
        }
        if let Some((old, _)) = self.assignee {
            rec.assignee = old;
        }
        if let Some((state, entered_at)) = self.before {
            rec.state = state;
            rec.entered_at = entered_at;
        }
        rec
    }
}

/// A refusal of a call that took the record by value ([`fire_owned`],
/// [`fire_timer_owned`]), with the record given back exactly as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub refusal: Refusal,
    pub record: Record,
}

/// Loosely typed input: field name -> value.
pub type Input = [(String, Value)];

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

fn transition_id(wf: &Workflow, transition: &str) -> Result<TransitionId, Refusal> {
    wf.transition(transition).ok_or_else(|| {
        Refusal::new(
            Code::UnknownTransition,
            format!("workflow `{}` has no transition `{transition}`", wf.id),
        )
    })
}

/// The timer by name, if it is armed in `state`.
fn timer_id(wf: &Workflow, state: StateId, timer: &str) -> Result<TimerId, Refusal> {
    let id = wf.timer(timer).ok_or_else(|| {
        Refusal::new(
            Code::UnknownTimer,
            format!("workflow `{}` has no timer `{timer}`", wf.id),
        )
    })?;
    if !wf.timers[id].armed_in(state) || wf.states[state].is_final {
        return Err(Refusal::new(
            Code::NotEnabled,
            format!(
                "timer `{timer}` is not armed in state `{}`",
                wf.state_name(state)
            ),
        ));
    }
    Ok(id)
}

/// The refusals that need no evaluation: a final state, a transition not
/// enabled in this state, a role (or relation) that may not fire it.
fn may_fire(
    wf: &Workflow,
    rec: &Record,
    ti: TransitionId,
    actor: &Actor,
    directory: &[Actor],
) -> Result<(), Refusal> {
    let from = rec.state;
    let t = &wf.transitions[ti];
    if wf.states[from].is_final {
        return Err(Refusal::new(
            Code::Final,
            format!(
                "the record is in final state `{}` and accepts no change",
                wf.state_name(from)
            ),
        ));
    }
    if !t.enabled_from(from) {
        let enabled: Vec<&str> = wf.enabled_in(from).map(|t| t.name.as_str()).collect();
        return Err(Refusal::new(
            Code::NotEnabled,
            format!(
                "`{}` cannot be fired in state `{}`; enabled here: {}",
                t.name,
                wf.state_name(from),
                enabled.join(", ")
            ),
        ));
    }
    if !t.allows(wf, rec, actor, directory) {
        return Err(Refusal::new(
            Code::Forbidden,
            format!(
                "role `{}` may not fire `{}` (allowed: {})",
                actor.role,
                t.name,
                t.by.join(", ")
            ),
        ));
    }
    Ok(())
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

/// The record being worked on while effects run. It is changed in place:
/// each field's old value is kept as it is first overwritten, which gives
/// the changes at the end, and the record back exactly on a refusal, without
/// copying the record up front.
struct Work<'a> {
    wf: &'a Workflow,
    rec: Record,
    ctx: Ctx<'a>,
    /// None on creation: every field starts empty, nothing to restore.
    undo: Option<Undo>,
    notifications: Vec<Notification>,
    spawns: Vec<SpawnRequest>,
    assignments: Vec<Assignment>,
    cascades: Vec<Cascade>,
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
    fn new(wf: &'a Workflow, rec: Record, ctx: Ctx<'a>, restorable: bool) -> Self {
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
    fn keep(&mut self, f: FieldId, old: impl FnOnce(&Record) -> Value) {
        if let Some(u) = &mut self.undo {
            if !u.fields.iter().any(|(g, _)| *g == f) {
                u.fields.push((f, old(&self.rec)));
            }
        }
    }

    fn set(&mut self, f: FieldId, v: Value) {
        let old = std::mem::replace(&mut self.rec.fields[f], v);
        self.keep(f, |_| old);
    }

    fn set_assignee(&mut self, a: Option<String>) {
        let old = std::mem::replace(&mut self.rec.assignee, a);
        if let Some(u) = &mut self.undo {
            u.assignee.get_or_insert(old);
        }
    }

    /// The record exactly as it was before (a refusal).
    fn restore(mut self) -> Record {
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
    fn transition(
        &mut self,
        ti: TransitionId,
        input: &Input,
        firing: Option<TimerId>,
    ) -> Result<(Vec<TimerArm>, Vec<String>), Refusal> {
        let wf = self.wf;
        let t = &wf.transitions[ti];
        let from = self.rec.state;
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
        for &f in &t.require {
            if self.rec.fields[f].is_empty() {
                return Err(Refusal::on(
                    Code::Required,
                    &wf.fields[f].name,
                    format!("`{}` is required to {}", wf.fields[f].name, t.title),
                ));
            }
        }
        if let Some(g) = t.guard {
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
        }
        self.run(&t.effects)?;
        let to = t.to.unwrap_or(from);
        if to != from {
            self.rec.state = to;
            self.rec.entered_at = self.ctx.now;
            self.run(&wf.states[to].on_enter)?;
        }
        let mut arm = Vec::new();
        let mut cancel = Vec::new();
        for (i, tm) in wf.timers.iter().enumerate() {
            let was = tm.armed_in(from) && firing != Some(i) && !wf.states[from].is_final;
            let is = tm.armed_in(to) && !wf.states[to].is_final;
            let rearm = match &t.rearm {
                Rearm::None => false,
                Rearm::All => true,
                Rearm::Some(ids) => ids.contains(&i),
            };
            if was && !is {
                cancel.push(tm.name.clone());
            } else if is && (!was || rearm) {
                match self.due(tm)? {
                    Some(due) => arm.push(TimerArm {
                        timer: tm.name.clone(),
                        due,
                    }),
                    None if was => cancel.push(tm.name.clone()),
                    None => {}
                }
            }
        }
        Ok((arm, cancel))
    }
    /// Evaluate a script against the record as it is now. The fields move
    /// into the script's view and back, so no copy is made.
    fn eval_with(
        &mut self,
        id: script::ScriptId,
        input: Option<rhai::Map>,
        actor: Option<&Actor>,
    ) -> Result<rhai::Dynamic, Refusal> {
        if let Some(node) = self.wf.scripts.native(id) {
            match node.run(&self.env(actor)) {
                Some(Ok(v)) => return Ok(v),
                Some(Err(m)) => return Err(Refusal::new(Code::Guard, m)),
                None => {}
            }
        }
        self.rhai(id, input, actor)
    }

    /// What a native expression reads: the record as it is now.
    fn env<'e>(&'e self, actor: Option<&'e Actor>) -> crate::native::Env<'e> {
        crate::native::Env {
            fields: &self.rec.fields,
            state: &self.wf.states[self.rec.state].name,
            assignee: self.rec.assignee.as_deref(),
            created_at: self.rec.created_at,
            entered_at: self.rec.entered_at,
            now: self.ctx.now,
            actor,
        }
    }

    /// Evaluate a script in Rhai.
    fn rhai(
        &mut self,
        id: script::ScriptId,
        input: Option<rhai::Map>,
        actor: Option<&Actor>,
    ) -> Result<rhai::Dynamic, Refusal> {
        let actor = actor.map(|a| script::ActorView(Arc::new(a.clone())));
        let data = Arc::new(LeadData {
            names: self.wf.field_index.clone(),
            fields: std::mem::take(&mut self.rec.fields),
            state: self.wf.states[self.rec.state].name.clone(),
            assignee: self.rec.assignee.clone(),
            created_at: self.rec.created_at,
            entered_at: self.rec.entered_at,
        });
        let r = self.wf.scripts.eval(
            id,
            Vars {
                lead: Lead(data.clone()),
                now: self.ctx.now,
                input,
                actor,
            },
        );
        self.rec.fields = Arc::try_unwrap(data)
            .map(|d| d.fields)
            .unwrap_or_else(|d| d.fields.clone());
        match r {
            Eval::Value(v) => Ok(v),
            Eval::Thrown(m) => Err(Refusal::new(Code::Guard, m)),
            Eval::Failed(m) => Err(Refusal::new(Code::Script, m)),
        }
    }

    fn eval(
        &mut self,
        id: script::ScriptId,
        input: Option<rhai::Map>,
        with_actor: bool,
    ) -> Result<rhai::Dynamic, Refusal> {
        let actor = (with_actor && self.wf.scripts.uses(id).actor).then_some(self.ctx.actor);
        self.eval_with(id, input, actor)
    }

    /// Evaluate a script to a field value (`set`, timer and spawn instants):
    /// what `from_dynamic` of [`Work::eval`] gives, without a `Dynamic` on
    /// the fast path.
    fn eval_value(&mut self, id: script::ScriptId, with_actor: bool) -> Result<Value, Refusal> {
        let actor = (with_actor && self.wf.scripts.uses(id).actor).then_some(self.ctx.actor);
        if let Some(node) = self.wf.scripts.native(id) {
            match node.run_value(&self.env(actor)) {
                Some(Ok(v)) => return v.map_err(|m| Refusal::new(Code::Script, m)),
                Some(Err(m)) => return Err(Refusal::new(Code::Guard, m)),
                None => {}
            }
        }
        let d = self.rhai(id, None, actor)?;
        script::from_dynamic(&d).map_err(|m| Refusal::new(Code::Script, m))
    }

    fn value(&mut self, e: &Expr) -> Result<Value, Refusal> {
        match e {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Field(f) => Ok(self.rec.fields[*f].clone()),
            Expr::Script(id) => self.eval_value(*id, true),
        }
    }

    fn run(&mut self, effects: &[Effect]) -> Result<(), Refusal> {
        for e in effects {
            self.effect(e)?;
        }
        Ok(())
    }

    fn effect(&mut self, e: &Effect) -> Result<(), Refusal> {
        {
            match e {
                Effect::When { cond, then } => {
                    let d = self.eval(*cond, None, true)?;
                    match d.as_bool() {
                        Ok(true) => self.effect(then)?,
                        Ok(false) => {}
                        Err(t) => {
                            return Err(Refusal::new(
                                Code::Script,
                                format!("effect condition returned {t} instead of true or false"),
                            ))
                        }
                    }
                }
                Effect::Set { field, value } => {
                    let v = self.value(value)?;
                    let v = validate(&self.wf.fields[*field], v).map_err(|r| {
                        Refusal::new(Code::Script, format!("effect: {}", r.message))
                    })?;
                    self.set(*field, v);
                }
                Effect::Append { field, value } => {
                    let v = self.value(value)?;
                    self.keep(*field, |rec| rec.fields[*field].clone());
                    match &mut self.rec.fields[*field] {
                        Value::List(l) => l.push(v),
                        slot => *slot = Value::List(vec![v]),
                    }
                }
                Effect::Clear { fields } => {
                    for f in fields {
                        self.set(*f, Value::Null);
                    }
                }
                Effect::Notify { template, to } => self.notifications.push(Notification {
                    template: template.clone(),
                    to: to.clone(),
                }),
                Effect::Release => self.set_assignee(None),
                Effect::Assign {
                    role,
                    score,
                    filter,
                    exclude,
                    required,
                } => {
                    let chosen = self.assign(role, *score, *filter, *exclude)?;
                    if chosen.is_none() && *required {
                        return Err(Refusal::new(
                            Code::NoCandidate,
                            format!("no available `{role}` can take this record"),
                        ));
                    }
                    self.set_assignee(chosen.clone());
                    self.assignments.push(Assignment {
                        role: role.clone(),
                        actor: chosen,
                    });
                }
                Effect::Spawn(s) => {
                    let due = match s.at {
                        None => None,
                        Some(id) => match self.eval_value(id, false)? {
                            v @ (Value::DateTime(_) | Value::Date(_)) => {
                                crate::value::check_range(&v).map_err(|_| {
                                    Refusal::new(
                                        Code::Script,
                                        format!(
                                            "spawn of `{}`: `at` gave {}, {OUT_OF_YEARS}",
                                            s.workflow,
                                            shown(&v)
                                        ),
                                    )
                                })?;
                                match v {
                                    Value::Date(d) => Some(date_start(self.wf, d)),
                                    v => v.as_datetime(),
                                }
                            }
                            Value::Null => None,
                            other => {
                                return Err(Refusal::new(
                                    Code::Script,
                                    format!(
                                        "spawn `at` gave {} instead of a datetime",
                                        other.to_json()
                                    ),
                                ))
                            }
                        },
                    };
                    let mut fields = Vec::new();
                    for (target, src) in &s.map {
                        let v = self.value(src)?;
                        if !matches!(v, Value::Null) {
                            fields.push((target.clone(), v));
                        }
                    }
                    self.spawns.push(SpawnRequest {
                        workflow: s.workflow.clone(),
                        due,
                        fields,
                        link: s.link.clone(),
                        backlink: s.backlink.clone(),
                    });
                }
                Effect::FireLinked { transition, via } => self.cascades.push(Cascade {
                    via: via.clone(),
                    transition: transition.clone(),
                }),
            }
        }
        Ok(())
    }

    /// Pick the best available candidate: highest score, then least loaded,
    /// then smallest id (deterministic).
    fn assign(
        &mut self,
        role: &str,
        score: Option<script::ScriptId>,
        filter: Option<script::ScriptId>,
        exclude: Option<FieldId>,
    ) -> Result<Option<String>, Refusal> {
        let excluded: Vec<String> = match exclude.map(|f| &self.rec.fields[f]) {
            Some(Value::List(l)) => l.iter().map(|v| v.to_string()).collect(),
            _ => Vec::new(),
        };
        let now = self.ctx.now;
        let mut best: Option<(f64, u32, &Actor)> = None;
        for a in self.ctx.directory {
            if a.role != role || !a.available_at(now) || excluded.iter().any(|x| x == &a.id) {
                continue;
            }
            if let Some(f) = filter {
                if !self.eval_with(f, None, Some(a))?.as_bool().unwrap_or(false) {
                    continue;
                }
            }
            let s = match score {
                None => 0.0,
                Some(id) => {
                    let d = self.eval_with(id, None, Some(a))?;
                    d.as_float()
                        .or_else(|_| d.as_int().map(|i| i as f64))
                        .map_err(|t| {
                            Refusal::new(
                                Code::Script,
                                format!("assign score returned {t} instead of a number"),
                            )
                        })?
                }
            };
            let better = match &best {
                None => true,
                Some((bs, bl, ba)) => {
                    s > *bs || (s == *bs && (a.load < *bl || (a.load == *bl && a.id < ba.id)))
                }
            };
            if better {
                best = Some((s, a.load, a));
            }
        }
        Ok(best.map(|(_, _, a)| a.id.clone()))
    }

    fn due(&mut self, tm: &Timer) -> Result<Option<DateTime<Utc>>, Refusal> {
        match &tm.due {
            Due::After {
                amount,
                unit,
                since,
            } => {
                let anchor = match since.map(|f| &self.rec.fields[f]) {
                    Some(Value::DateTime(t)) => *t,
                    Some(Value::Date(d)) => date_start(self.wf, *d),
                    _ => self.ctx.now,
                };
                let span = crate::duration::Span {
                    amount: *amount,
                    unit: *unit,
                };
                let due = span.checked_add_to(anchor, &self.wf.calendar);
                match due.map(Value::DateTime) {
                    Some(v) if crate::value::check_range(&v).is_ok() => Ok(v.as_datetime()),
                    _ => {
                        let what = format!(
                            "timer `{}`: {}{} after {} is {OUT_OF_YEARS}",
                            tm.name,
                            amount,
                            span.unit_suffix(),
                            shown(&Value::DateTime(anchor))
                        );
                        Err(match since {
                            Some(f) => {
                                let name = &self.wf.fields[*f].name;
                                Refusal::on(Code::Type, name, format!("{name}: {what}"))
                            }
                            None => Refusal::new(Code::Script, what),
                        })
                    }
                }
            }
            Due::At(id) => match self.eval_value(*id, false)? {
                v @ (Value::DateTime(_) | Value::Date(_)) => {
                    crate::value::check_range(&v).map_err(|_| {
                        Refusal::new(
                            Code::Script,
                            format!(
                                "timer `{}`: `at` gave {}, {OUT_OF_YEARS}",
                                tm.name,
                                shown(&v)
                            ),
                        )
                    })?;
                    Ok(match v {
                        Value::Date(d) => Some(date_start(self.wf, d)),
                        v => v.as_datetime(),
                    })
                }
                Value::Null => Ok(None),
                other => Err(Refusal::new(
                    Code::Script,
                    format!(
                        "timer `{}`: `at` gave {} instead of a datetime",
                        tm.name,
                        other.to_json()
                    ),
                )),
            },
        }
    }

    fn finish(
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

/// Why a due instant is refused (see [`crate::value::YEARS`]).
const OUT_OF_YEARS: &str = "outside the supported range of dates (years 0000 to 9999)";

/// A date or instant as its JSON text, without quotes.
fn shown(v: &Value) -> String {
    match v.to_json() {
        serde_json::Value::String(s) => s,
        j => j.to_string(),
    }
}

/// Midnight of a date in the workflow's calendar time zone.
fn date_start(wf: &Workflow, d: chrono::NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let tz = wf.calendar.timezone();
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}",
            self.from_state.as_deref().unwrap_or("(new)"),
            self.to_state
        )
    }
}
