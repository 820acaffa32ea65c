//! Every refusal code and every effect, on a small workflow built for it.

use crate::eval::*;
use crate::{load, Project, SourceFile, Value};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

const WF: &str = r#"
[workflow]
id = "t"
initial = "new"
rules = ["rules/t.rhai"]

[fields.name]
type = "string"
required = true
[fields.code]
type = "string"
pattern = "[A-Z]{3}"
[fields.kind]
type = "enum"
values = ["a", "b"]
[fields.day]
type = "date"
[fields.amount]
type = "decimal"
[fields.note]
type = "text"
[fields.count]
type = "int"
default = 0
[fields.tags]
type = "list"
[fields.excluded]
type = "list"
[fields.visit_at]
type = "datetime"
[fields.closed_at]
type = "datetime"

[states.new]
on_enter = [{ assign = "agent", score = "rules::score(actor)", exclude = "excluded" }]
[states.working]
[states.done]
final = true

[transitions.start]
from = ["new"]
to = "working"
by = ["agent"]
input = ["code", "kind", "day", "amount", "note"]
require = ["note"]
guard = "rules::ok(lead)"
do = [
  { set = "count", expr = "lead.count + 1" },
  { append = "tags", value = "started" },
  { notify = "welcome", to = ["customer", "assignee"] },
  { notify = "big", when = "lead.amount != () && lead.amount > 1000" },
]

[transitions.plan]
from = ["working"]
by = ["agent"]
input = ["visit_at"]
require = ["visit_at"]

[transitions.replan]
from = ["working"]
by = ["agent"]
input = ["visit_at"]
rearm = true

[transitions.hand_back]
from = ["working"]
to = "new"
by = ["agent"]
do = [{ append = "excluded", expr = "lead.assignee" }, { release = true }]

[transitions.finish]
from = ["working"]
to = "done"
by = ["agent", "system"]
do = [
  { set = "closed_at", expr = "now" },
  { clear = ["note", "tags"] },
  { spawn = "t", at = "now + days(30)", map = { name = "name", note = '"follow-up of " + lead.name' }, link = "origin", backlink = "follow_up" },
]

[transitions.escalate]
from = ["working"]
by = ["agent"]
do = [{ assign = "supervisor", required = true }]

[transitions.expire]
from = ["new", "working"]
to = "done"
by = ["system"]

[timers.sla]
in = ["new", "working"]
after = "2d"
fire = "expire"

[timers.visit_reminder]
in = ["working"]
at = "if lead.visit_at == () { () } else { lead.visit_at - hours(24) }"
do = [{ notify = "reminder" }]
"#;

const RULES: &str = r#"
fn ok(lead) {
    if lead.note == "nope" { throw "note says nope"; }
    if lead.note == "loop" { loop { } }
    lead.note != "false"
}
fn score(actor) { actor.attributes.rating }
"#;

fn wf() -> Arc<crate::Workflow> {
    let p = Project {
        workflows: vec![SourceFile::new("workflows/t.toml", WF)],
        rules: vec![SourceFile::new("rules/t.rhai", RULES)],
        calendars: vec![],
    };
    let l = load(&p);
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    l.set.get("t").unwrap().clone()
}

fn t0() -> DateTime<Utc> {
    "2026-11-16T09:00:00Z".parse().unwrap()
}

fn agent(id: &str, rating: i64) -> Actor {
    let mut a = Actor {
        id: id.into(),
        role: "agent".into(),
        ..Actor::default()
    };
    a.attributes.insert("rating".into(), Value::Int(rating));
    a
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn input(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

struct Fx {
    wf: Arc<crate::Workflow>,
    dir: Vec<Actor>,
    me: Actor,
}

impl Fx {
    fn new() -> Fx {
        Fx {
            wf: wf(),
            dir: vec![agent("ann", 5), agent("bob", 9), agent("cid", 1)],
            me: agent("bob", 9),
        }
    }
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            now: t0(),
            actor: &self.me,
            directory: &self.dir,
        }
    }
    fn created(&self) -> Outcome {
        create(&self.wf, &input(&[("name", s("Mario"))]), self.ctx()).unwrap()
    }
    fn working(&self) -> Record {
        let r = self.created().record;
        fire(
            &self.wf,
            &r,
            "start",
            &input(&[("note", s("hi"))]),
            self.ctx(),
        )
        .unwrap()
        .record
    }
    fn refuse(&self, rec: &Record, t: &str, inp: &[(&str, Value)]) -> Refusal {
        fire(&self.wf, rec, t, &input(inp), self.ctx()).unwrap_err()
    }
}

#[test]
fn create_applies_defaults_assigns_and_arms() {
    let fx = Fx::new();
    let o = fx.created();
    assert_eq!(o.to_state, "new");
    assert_eq!(o.record.get(&fx.wf, "count"), Some(&Value::Int(0)));
    assert_eq!(
        o.record.assignee.as_deref(),
        Some("bob"),
        "highest score wins"
    );
    assert_eq!(o.assignee, Some((None, Some("bob".into()))));
    assert_eq!(
        o.arm,
        vec![TimerArm {
            timer: "sla".into(),
            due: t0() + Duration::days(2)
        }]
    );
    assert!(o
        .changes
        .iter()
        .any(|c| c.field == "name" && c.new == s("Mario")));
}

#[test]
fn create_refuses_missing_required_and_unknown_fields() {
    let fx = Fx::new();
    let r = create(&fx.wf, &[], fx.ctx()).unwrap_err();
    assert_eq!((r.code, r.field.as_deref()), (Code::Required, Some("name")));
    let r = create(
        &fx.wf,
        &input(&[("name", s("x")), ("nope", s("y"))]),
        fx.ctx(),
    )
    .unwrap_err();
    assert_eq!(r.code, Code::Input);
}

#[test]
fn unknown_transition() {
    let fx = Fx::new();
    assert_eq!(
        fx.refuse(&fx.created().record, "teleport", &[]).code,
        Code::UnknownTransition
    );
}

#[test]
fn not_enabled_names_what_is() {
    let fx = Fx::new();
    let r = fx.refuse(&fx.created().record, "finish", &[]);
    assert_eq!(r.code, Code::NotEnabled);
    assert!(r.message.contains("enabled here: start"), "{}", r.message);
}

#[test]
fn final_state_accepts_nothing() {
    let fx = Fx::new();
    let done = fire(&fx.wf, &fx.working(), "finish", &[], fx.ctx())
        .unwrap()
        .record;
    assert_eq!(fx.refuse(&done, "finish", &[]).code, Code::Final);
    assert_eq!(fx.refuse(&done, "start", &[]).code, Code::Final);
}

#[test]
fn forbidden_role() {
    let mut fx = Fx::new();
    let rec = fx.created().record;
    fx.me = Actor {
        id: "v".into(),
        role: "viewer".into(),
        ..Actor::default()
    };
    let r = fx.refuse(&rec, "start", &[("note", s("x"))]);
    assert_eq!(r.code, Code::Forbidden);
    assert!(r.message.contains("allowed: agent"));
}

#[test]
fn input_outside_the_transition_list() {
    let fx = Fx::new();
    let rec = fx.created().record;
    let r = fx.refuse(&rec, "start", &[("note", s("x")), ("name", s("Luigi"))]);
    assert_eq!((r.code, r.field.as_deref()), (Code::Input, Some("name")));
    assert_eq!(
        fx.refuse(&rec, "start", &[("ghost", s("x"))]).code,
        Code::Input
    );
}

#[test]
fn type_errors_for_pattern_enum_date_decimal() {
    let fx = Fx::new();
    let rec = fx.created().record;
    for (field, bad) in [
        ("code", s("abc")),
        ("kind", s("c")),
        ("day", s("2026-02-30")),
        ("amount", s("12,5")),
    ] {
        let r = fx.refuse(&rec, "start", &[("note", s("x")), (field, bad)]);
        assert_eq!(
            (r.code, r.field.as_deref()),
            (Code::Type, Some(field)),
            "{}",
            r.message
        );
    }
    let ok = fire(
        &fx.wf,
        &rec,
        "start",
        &input(&[
            ("note", s("x")),
            ("code", s("ABC")),
            ("amount", s("1250.50")),
        ]),
        fx.ctx(),
    )
    .unwrap();
    assert_eq!(ok.record.get(&fx.wf, "code"), Some(&s("ABC")));
}

#[test]
fn required_after_input() {
    let fx = Fx::new();
    let r = fx.refuse(&fx.created().record, "start", &[("note", s("  "))]);
    assert_eq!((r.code, r.field.as_deref()), (Code::Required, Some("note")));
}

#[test]
fn guard_false_or_throw() {
    let fx = Fx::new();
    let rec = fx.created().record;
    let r = fx.refuse(&rec, "start", &[("note", s("nope"))]);
    assert_eq!(
        (r.code, r.message.as_str()),
        (Code::Guard, "note says nope")
    );
    assert_eq!(
        fx.refuse(&rec, "start", &[("note", s("false"))]).code,
        Code::Guard
    );
}

#[test]
fn endless_guard_is_a_quick_script_refusal() {
    let fx = Fx::new();
    let started = std::time::Instant::now();
    let r = fx.refuse(&fx.created().record, "start", &[("note", s("loop"))]);
    assert_eq!(r.code, Code::Script);
    assert!(started.elapsed() < std::time::Duration::from_millis(250));
}

#[test]
fn effects_set_append_notify_when() {
    let fx = Fx::new();
    let rec = fx.created().record;
    let o = fire(
        &fx.wf,
        &rec,
        "start",
        &input(&[("note", s("x")), ("amount", s("999"))]),
        fx.ctx(),
    )
    .unwrap();
    assert_eq!(o.record.get(&fx.wf, "count"), Some(&Value::Int(1)));
    assert_eq!(
        o.record.get(&fx.wf, "tags"),
        Some(&Value::List(vec![s("started")]))
    );
    let templates: Vec<&str> = o
        .notifications
        .iter()
        .map(|n| n.template.as_str())
        .collect();
    assert_eq!(templates, ["welcome"], "`big` only when amount > 1000");
    assert_eq!(
        o.notifications[0].to,
        [
            crate::model::Recipient::Customer,
            crate::model::Recipient::Assignee
        ]
    );
    let o = fire(
        &fx.wf,
        &rec,
        "start",
        &input(&[("note", s("x")), ("amount", s("1500"))]),
        fx.ctx(),
    )
    .unwrap();
    assert_eq!(o.notifications.len(), 2);
    let change = o.changes.iter().find(|c| c.field == "count").unwrap();
    assert_eq!((&change.old, &change.new), (&Value::Int(0), &Value::Int(1)));
}

#[test]
fn timers_kept_between_states_of_their_set_and_cancelled_on_leaving() {
    let fx = Fx::new();
    let o = fire(
        &fx.wf,
        &fx.created().record,
        "start",
        &input(&[("note", s("x"))]),
        fx.ctx(),
    )
    .unwrap();
    assert!(
        o.arm.iter().all(|a| a.timer != "sla"),
        "sla stays armed from `new`"
    );
    assert!(o.cancel.is_empty());
    let o = fire(&fx.wf, &o.record, "finish", &[], fx.ctx()).unwrap();
    assert_eq!(o.cancel, ["sla", "visit_reminder"]);
}

#[test]
fn self_transition_does_not_rearm_unless_told() {
    let fx = Fx::new();
    let rec = fx.working();
    let visit = t0() + Duration::days(5);
    let o = fire(
        &fx.wf,
        &rec,
        "plan",
        &input(&[("visit_at", Value::DateTime(visit))]),
        fx.ctx(),
    )
    .unwrap();
    assert!(
        o.arm.is_empty(),
        "plan is a self-transition without rearm: {:?}",
        o.arm
    );
    let o = fire(
        &fx.wf,
        &o.record,
        "replan",
        &input(&[("visit_at", Value::DateTime(visit + Duration::days(1)))]),
        fx.ctx(),
    )
    .unwrap();
    let reminder = o.arm.iter().find(|a| a.timer == "visit_reminder").unwrap();
    assert_eq!(
        reminder.due,
        visit + Duration::days(1) - Duration::hours(24)
    );
}

#[test]
fn timer_fires_its_transition_as_system() {
    let fx = Fx::new();
    let rec = fx.working();
    let o = fire_timer(&fx.wf, &rec, "sla", t0() + Duration::days(2), &fx.dir).unwrap();
    assert_eq!(
        (o.to_state.as_str(), o.timer.as_deref()),
        ("done", Some("sla"))
    );
    let done = o.record;
    assert_eq!(
        fire_timer(&fx.wf, &done, "sla", t0(), &fx.dir)
            .unwrap_err()
            .code,
        Code::NotEnabled
    );
    assert_eq!(
        fire_timer(&fx.wf, &done, "nope", t0(), &fx.dir)
            .unwrap_err()
            .code,
        Code::UnknownTimer
    );
}

#[test]
fn timer_with_effects_stays_in_state() {
    let fx = Fx::new();
    let rec = fx.working();
    let o = fire(
        &fx.wf,
        &rec,
        "replan",
        &input(&[("visit_at", Value::DateTime(t0() + Duration::days(3)))]),
        fx.ctx(),
    )
    .unwrap();
    let o = fire_timer(
        &fx.wf,
        &o.record,
        "visit_reminder",
        t0() + Duration::days(2),
        &fx.dir,
    )
    .unwrap();
    assert_eq!(o.to_state, "working");
    assert_eq!(o.notifications[0].template, "reminder");
}

#[test]
fn clear_and_spawn_later_with_mapping() {
    let fx = Fx::new();
    let o = fire(&fx.wf, &fx.working(), "finish", &[], fx.ctx()).unwrap();
    assert_eq!(o.record.get(&fx.wf, "note"), Some(&Value::Null));
    assert_eq!(o.record.get(&fx.wf, "tags"), Some(&Value::Null));
    let sp = &o.spawns[0];
    assert_eq!(
        (sp.workflow.as_str(), sp.due),
        ("t", Some(t0() + Duration::days(30)))
    );
    assert_eq!(
        sp.fields,
        vec![
            ("name".to_string(), s("Mario")),
            ("note".to_string(), s("follow-up of Mario"))
        ]
    );
    assert_eq!(
        (sp.link.as_str(), sp.backlink.as_str()),
        ("origin", "follow_up")
    );
}

#[test]
fn assign_skips_unavailable_excluded_and_full_actors() {
    let mut fx = Fx::new();
    // bob (best score) is on holiday; cid is full; ann gets it.
    fx.dir[1].unavailable.push(Period {
        from: t0() - Duration::days(1),
        until: t0() + Duration::days(1),
    });
    fx.dir[2].capacity = Some(1);
    fx.dir[2].load = 1;
    assert_eq!(fx.created().record.assignee.as_deref(), Some("ann"));
    // Back from holiday: bob again. Hand back excludes him, and release + re-entry picks the next.
    fx.dir[1].unavailable.clear();
    let rec = fx.working();
    assert_eq!(rec.assignee.as_deref(), Some("bob"));
    let o = fire(&fx.wf, &rec, "hand_back", &[], fx.ctx()).unwrap();
    assert_eq!(
        o.record.assignee.as_deref(),
        Some("ann"),
        "bob is excluded by history, cid is full"
    );
    assert_eq!(
        o.assignments.last().map(|a| a.actor.clone()),
        Some(Some("ann".into()))
    );
}

#[test]
fn no_candidate_leaves_the_record_unassigned() {
    let mut fx = Fx::new();
    fx.dir.clear();
    let o = fx.created();
    assert_eq!(o.record.assignee, None);
    assert_eq!(o.assignments[0].actor, None);
}

#[test]
fn required_assignment_refuses_when_nobody_is_available() {
    let fx = Fx::new();
    let r = fx.refuse(&fx.working(), "escalate", &[]);
    assert_eq!(r.code, Code::NoCandidate);
    assert!(r.message.contains("supervisor"));
}

/// A workflow whose transitions change fields, the assignee and the state,
/// then are refused: an owned record must come back exactly as it was.
const UNDO_WF: &str = r#"
[workflow]
id = "u"
initial = "open"

[fields.n]
type = "int"
default = 0
[fields.note]
type = "text"
[fields.code]
type = "string"
pattern = "[A-Z]{3}"
[fields.tags]
type = "list"
[fields.when]
type = "datetime"
[fields.count]
type = "int"

[states.open]
on_enter = [{ assign = "agent" }]
[states.next]
on_enter = [{ set = "n", expr = "lead.n + 10" }, { assign = "boss", required = true }]
[states.done]
final = true

[transitions.go]
from = ["open"]
to = "next"
by = ["agent"]
input = ["note", "code"]
do = [
  { set = "n", expr = "lead.n + 1" },
  { append = "tags", value = "tried" },
  { clear = ["code"] },
  { set = "when", expr = "now" },
  { release = true },
  { notify = "x", to = ["assignee"] },
]

[transitions.check]
from = ["open"]
by = ["agent"]
input = ["note", "code"]
guard = "lead.note != \"bad\""

[transitions.bad_effect]
from = ["open"]
by = ["agent"]
do = [
  { append = "tags", value = "x" },
  { set = "n", expr = "lead.n + 1" },
  { set = "count", expr = "\"not a number\"" },
]

[transitions.close]
from = ["open", "next"]
to = "done"
by = ["agent"]

[timers.poke]
in = ["open"]
after = "1d"
do = [{ append = "tags", value = "poked" }, { set = "count", expr = "\"nope\"" }]
"#;

#[test]
fn owned_refusals_give_the_record_back_exactly() {
    let l = load(&Project {
        workflows: vec![SourceFile::new("workflows/u.toml", UNDO_WF)],
        ..Project::default()
    });
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    let wf = l.set.get("u").unwrap().clone();
    let me = agent("ann", 1);
    let dir = vec![me.clone()];
    let ctx = Ctx {
        now: t0(),
        actor: &me,
        directory: &dir,
    };
    let rec = create(
        &wf,
        &input(&[
            ("note", s("kept")),
            ("code", s("ABC")),
            ("tags", Value::List(vec![s("a")])),
        ]),
        ctx,
    )
    .unwrap()
    .record;
    assert_eq!(rec.assignee.as_deref(), Some("ann"));
    let later = Ctx {
        now: t0() + Duration::hours(5),
        ..ctx
    };
    let same = |back: &Record| {
        assert_eq!(back, &rec);
        assert_eq!(format!("{back:?}"), format!("{rec:?}"));
    };
    let owned = |t: &str, inp: &[(&str, Value)]| {
        let r = fire_owned(&wf, rec.clone(), t, &input(inp), later).unwrap_err();
        // The borrowed API refuses the same way.
        assert_eq!(
            fire(&wf, &rec, t, &input(inp), later).unwrap_err(),
            r.refusal
        );
        same(&r.record);
        r.refusal.code
    };
    // Input written, then the guard refuses.
    assert_eq!(owned("check", &[("note", s("bad"))]), Code::Guard);
    // The first input written, the second has the wrong type.
    assert_eq!(
        owned("check", &[("note", s("new")), ("code", s("abc"))]),
        Code::Type
    );
    // Effects set, append, clear, release the assignee; the state and
    // entered_at change; on_enter sets again, then a required assignment
    // finds nobody.
    assert_eq!(owned("go", &[("note", s("changed"))]), Code::NoCandidate);
    // An effect fails after two others changed the record.
    assert_eq!(owned("bad_effect", &[]), Code::Script);
    // Refusals before any evaluation.
    assert_eq!(owned("nope", &[]), Code::UnknownTransition);
    assert_eq!(owned("go", &[("count", Value::Int(1))]), Code::Input);
    // A timer whose effects fail half-way.
    let r = fire_timer_owned(&wf, rec.clone(), "poke", t0() + Duration::days(1), &dir).unwrap_err();
    assert_eq!(r.refusal.code, Code::Script);
    same(&r.record);
    let r = fire_timer_owned(&wf, rec.clone(), "nope", t0(), &dir).unwrap_err();
    assert_eq!(r.refusal.code, Code::UnknownTimer);
    same(&r.record);

    // Success: the owned call gives what the borrowed one gives, and
    // `revert` gives the record back (a caller failing after the engine).
    let boss = Actor {
        id: "zed".into(),
        role: "boss".into(),
        ..Actor::default()
    };
    let dir2 = vec![me.clone(), boss];
    let ctx2 = Ctx {
        directory: &dir2,
        ..later
    };
    let inp = input(&[("note", s("changed")), ("code", s("XYZ"))]);
    let out = fire_owned(&wf, rec.clone(), "go", &inp, ctx2).unwrap();
    assert_eq!(out, fire(&wf, &rec, "go", &inp, ctx2).unwrap());
    assert_eq!(out.record.assignee.as_deref(), Some("zed"));
    assert_eq!(out.record.get(&wf, "n"), Some(&Value::Int(11)));
    assert_eq!(
        out.changes
            .iter()
            .map(|c| c.field.as_str())
            .collect::<Vec<_>>(),
        ["n", "note", "code", "tags", "when"],
        "changed fields in field order, `code` written then cleared"
    );
    assert_eq!(out.assignee, Some((Some("ann".into()), Some("zed".into()))));
    same(&out.revert(&wf));
}

// ---------------------------------------------------------------------------
// Arithmetic at the edges of chrono's range: refusals, never a panic.

const ARITH: &str = r#"
[workflow]
id = "a"
initial = "open"

[fields.day]
type = "date"
[fields.when]
type = "datetime"
[fields.n]
type = "int"
[fields.out]
type = "datetime"

[states.open]
[states.waiting]
[states.done]
final = true

[transitions.shift]
from = ["open"]
by = ["agent"]
input = ["n"]
do = [{ set = "out", expr = "lead.when + days(lead.n)" }]

[transitions.work]
from = ["open"]
by = ["agent"]
input = ["n"]
guard = "add_working_hours(lead.when, lead.n) > lead.when"

[transitions.wait]
from = ["open"]
to = "waiting"
by = ["agent"]
input = ["when"]

[transitions.back]
from = ["waiting"]
to = "open"
by = ["agent", "system"]

[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]

[timers.due]
in = ["open"]
at = "if lead.day == () { () } else { lead.day + days(1) }"
do = [{ notify = "due" }]

[timers.later]
in = ["waiting"]
after = "60d"
since = "when"
fire = "back"
"#;

fn arith() -> Arc<crate::Workflow> {
    let p = Project {
        workflows: vec![SourceFile::new("workflows/a.toml", ARITH)],
        ..Project::default()
    };
    let l = load(&p);
    assert!(!l.has_errors(), "{:#?}", l.diagnostics);
    l.set.get("a").unwrap().clone()
}

/// The issue's request: a date at chrono's last day is refused as input
/// (E_TYPE naming the field and the value) before any timer adds to it.
#[test]
fn a_date_beyond_year_9999_is_a_type_refusal() {
    let wf = arith();
    let me = agent("bob", 1);
    let ctx = Ctx {
        now: t0(),
        actor: &me,
        directory: &[],
    };
    let r = create(&wf, &input(&[("day", s("+262142-12-31"))]), ctx).unwrap_err();
    assert_eq!((r.code, r.field.as_deref()), (Code::Type, Some("day")));
    assert!(r.message.contains("+262142-12-31"), "{}", r.message);
    // The last day a record may hold: its timer lands in year 10000, which
    // is refused as the script's doing, with the timer and the value named.
    let r = create(&wf, &input(&[("day", s("9999-12-31"))]), ctx).unwrap_err();
    assert_eq!(r.code, Code::Script, "{}", r.message);
    assert!(
        r.message.contains("`due`") && r.message.contains("10000-01-01"),
        "{}",
        r.message
    );
    let ok = create(&wf, &input(&[("day", s("9999-12-30"))]), ctx).unwrap();
    assert_eq!(ok.arm.len(), 1);
}

/// A record stored before the range check (its date at chrono's very last
/// day): a timer that re-arms `lead.day + days(1)` is refused with E_SCRIPT
/// naming the operation; before, the timer worker panicked.
#[test]
fn timer_instant_overflow_is_a_script_refusal() {
    let wf = arith();
    let me = agent("bob", 1);
    let ctx = Ctx {
        now: t0(),
        actor: &me,
        directory: &[],
    };
    let mut rec = create(&wf, &[], ctx).unwrap().record;
    rec.fields[wf.field("day").unwrap()] = Value::Date(chrono::NaiveDate::MAX);
    let waiting = fire(
        &wf,
        &rec,
        "wait",
        &input(&[("when", s("2026-01-01T00:00:00Z"))]),
        ctx,
    )
    .unwrap()
    .record;
    for r in [
        fire_timer(&wf, &waiting, "later", t0() + Duration::days(90), &[]).unwrap_err(),
        fire(&wf, &waiting, "back", &[], ctx).unwrap_err(),
    ] {
        assert_eq!(r.code, Code::Script, "{}", r.message);
        assert!(
            r.message
                .contains("+262142-12-31 + days(1) is out of range"),
            "{}",
            r.message
        );
    }
    // `after` anchored on a field: the due instant out of years 0000-9999
    // is the field's fault (E_TYPE naming it).
    let r = fire(
        &wf,
        &rec,
        "wait",
        &input(&[("when", s("9999-12-01T00:00:00Z"))]),
        ctx,
    )
    .unwrap_err();
    assert_eq!((r.code, r.field.as_deref()), (Code::Type, Some("when")));
    assert!(r.message.contains("60d after 9999-12-01"), "{}", r.message);
}

/// `days(n)` beyond a duration's range and `datetime + duration` beyond
/// chrono's: E_SCRIPT naming the operation, on the native fast path and in
/// Rhai alike (the fast path hands such values to Rhai).
#[test]
fn script_date_arithmetic_overflow_is_a_script_refusal() {
    let wf = arith();
    let me = agent("bob", 1);
    let ctx = Ctx {
        now: t0(),
        actor: &me,
        directory: &[],
    };
    let rec = create(&wf, &input(&[("when", s("2026-01-01T00:00:00Z"))]), ctx)
        .unwrap()
        .record;
    for (n, culprit) in [
        (1_000_000_000_000, "days(1000000000000) is out of range"),
        (
            100_000_000,
            "2026-01-01T00:00:00Z + days(100000000) is out of range",
        ),
        (-100_000_000, "is out of range"),
    ] {
        let r = fire(&wf, &rec, "shift", &input(&[("n", Value::Int(n))]), ctx).unwrap_err();
        assert_eq!(r.code, Code::Script, "{n}: {}", r.message);
        assert!(r.message.contains(culprit), "{n}: {}", r.message);
    }
    let ok = fire(&wf, &rec, "shift", &input(&[("n", Value::Int(3))]), ctx).unwrap();
    assert_eq!(
        ok.record.get(&wf, "out"),
        Some(&Value::DateTime("2026-01-04T00:00:00Z".parse().unwrap()))
    );
    // Working hours: an amount whose minutes overflow i64, or an end
    // beyond chrono's range (from a record stored before the range check).
    let mut late = rec.clone();
    late.fields[wf.field("when").unwrap()] =
        Value::DateTime(DateTime::<Utc>::MAX_UTC - Duration::hours(1));
    for (rec, n) in [(&rec, i64::MAX), (&late, 48)] {
        let r = fire(&wf, rec, "work", &input(&[("n", Value::Int(n))]), ctx).unwrap_err();
        assert_eq!(r.code, Code::Script, "{n}: {}", r.message);
        assert!(r.message.contains("add_working_hours("), "{}", r.message);
    }
}

/// A default or literal `set` value beyond years 0000-9999 is caught at
/// load (E019), before any record holds it.
#[test]
fn literal_dates_out_of_range_are_load_errors() {
    for extra in [
        "[fields.far]\ntype = \"date\"\ndefault = \"+262142-12-31\"\n",
        "[transitions.far]\nfrom = [\"open\"]\nby = [\"agent\"]\ndo = [{ set = \"day\", value = \"+10000-01-01\" }]\n",
    ] {
        let p = Project {
            workflows: vec![SourceFile::new(
                "workflows/a.toml",
                format!("{ARITH}{extra}"),
            )],
            ..Project::default()
        };
        let l = load(&p);
        let d = l.diagnostics.iter().find(|d| d.code == "E019");
        assert!(
            d.is_some_and(|d| d.message.contains("years 0000 to 9999")),
            "{extra}: {:#?}",
            l.diagnostics
        );
    }
}
