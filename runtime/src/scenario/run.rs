//! The step runner: replays one scenario against a fresh backend on a
//! virtual clock. It stops at the first failing step (later steps build on
//! earlier ones) and reports every mismatch of that step.

use super::expect::{check, resolve};
use super::model::*;
use super::report::{Failure, ScenarioResult};
use crate::backend::{Backend, CreateRequest, Error, FireRequest, RecordId};
use crate::mem::MemBackend;
use crate::sql::query::queue::{pull_of, WorkQueue};
use crate::sql::query::Visibility;
use crate::AnyBackend;
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Calendar, Value, WorkflowSet};
use std::collections::HashMap;
use std::time::Instant;

/// A backend scenarios replay on: [`Backend`], plus create and fire for
/// steps that only need the outcome (the memory store then skips building
/// a [`crate::backend::StoredRecord`], fields as JSON, per step).
#[allow(async_fn_in_trait)]
pub trait Replay: crate::kpi::schedule::RunStore + WorkQueue {
    /// The workflow versions the store runs (a `pull` is built from the
    /// current ones, as the HTTP API builds it).
    fn versions(&self) -> &crate::apply::Versions;
    /// The tenant the store is bound to (`""` for the memory store).
    fn tenant(&self) -> &str;
    /// Create; only the new record's id.
    async fn create_id(&self, req: CreateRequest<'_>) -> Result<RecordId, Error> {
        self.create(req).await.map(|r| r.id)
    }
    /// Fire; only whether it succeeded.
    async fn fire_only(&self, req: FireRequest<'_>) -> Result<(), Error> {
        self.fire(req).await.map(drop)
    }
    /// Keep outbox payloads (to render messages an `expect` checks).
    async fn keep_payloads(&self) {}
}

impl Replay for MemBackend {
    fn versions(&self) -> &crate::apply::Versions {
        MemBackend::versions(self)
    }
    fn tenant(&self) -> &str {
        ""
    }
    async fn create_id(&self, req: CreateRequest<'_>) -> Result<RecordId, Error> {
        MemBackend::create_id(self, req).await
    }
    async fn fire_only(&self, req: FireRequest<'_>) -> Result<(), Error> {
        MemBackend::fire_only(self, req).await
    }
    async fn keep_payloads(&self) {
        MemBackend::keep_payloads(self).await
    }
}

impl Replay for AnyBackend {
    fn versions(&self) -> &crate::apply::Versions {
        AnyBackend::versions(self)
    }
    fn tenant(&self) -> &str {
        match self {
            AnyBackend::Mem(_) => "",
            AnyBackend::Sqlite(b) => b.tenant(),
            AnyBackend::Pg(b) => b.tenant(),
        }
    }
    async fn create_id(&self, req: CreateRequest<'_>) -> Result<RecordId, Error> {
        match self {
            AnyBackend::Mem(m) => m.create_id(req).await,
            other => other.create(req).await.map(|r| r.id),
        }
    }
    async fn fire_only(&self, req: FireRequest<'_>) -> Result<(), Error> {
        match self {
            AnyBackend::Mem(m) => m.fire_only(req).await,
            other => other.fire(req).await.map(drop),
        }
    }
    async fn keep_payloads(&self) {
        if let AnyBackend::Mem(m) = self {
            m.keep_payloads().await
        }
    }
}

/// Replay `sc` against `backend`, which must be fresh (empty) and serve the
/// workflows of `set`. Call [`Scenario::resolve`] first for S002 errors.
pub async fn run<B: Replay>(sc: &Scenario, set: &WorkflowSet, backend: &B) -> ScenarioResult {
    let started = Instant::now();
    let mut r = Runner {
        sc,
        set,
        b: backend,
        now: sc.start,
        names: HashMap::new(),
        current: None,
        fired: 0,
        system: Actor::system(),
        schedules: sc
            .steps
            .iter()
            .any(|s| s.expect.iter().any(|e| !e.report_runs.is_empty())),
    };
    let mut failures = Vec::new();
    let mut steps_run = 0;
    let renders = sc
        .steps
        .iter()
        .any(|s| s.expect.iter().any(|e| !e.messages.is_empty()));
    if renders {
        backend.keep_payloads().await;
    }
    match backend.set_actors(sc.actors.clone()).await {
        Err(e) => failures.push(Failure {
            step: 0,
            line: 1,
            message: format!("cannot set the actors: {e}"),
            code: Some(e.code().to_string()),
        }),
        Ok(()) => {
            // The schedules start with the scenario's clock.
            let workflows = crate::kpi::schedule::RunStore::workflows(backend);
            if let Err(e) = r.run_schedules(&workflows, sc.start).await {
                failures.push(Failure {
                    step: 0,
                    line: 1,
                    message: format!("cannot start the report schedules: {e}"),
                    code: Some(e.code().to_string()),
                });
            }
            for (i, step) in sc.steps.iter().enumerate() {
                steps_run = i + 1;
                let problems = r.step(step).await;
                if !problems.is_empty() {
                    failures.extend(problems.into_iter().map(|(message, code)| Failure {
                        step: i + 1,
                        line: step.line,
                        message,
                        code,
                    }));
                    break;
                }
            }
        }
    }
    ScenarioResult {
        path: sc.path.clone(),
        name: sc.name.clone(),
        passed: failures.is_empty(),
        steps: sc.steps.len(),
        steps_run,
        fired: r.fired,
        millis: started.elapsed().as_secs_f64() * 1000.0,
        error: None,
        failures,
    }
}

type Problems = Vec<(String, Option<String>)>;

struct Runner<'a, B> {
    sc: &'a Scenario,
    set: &'a WorkflowSet,
    b: &'a B,
    now: DateTime<Utc>,
    names: HashMap<String, RecordId>,
    /// The record an `expect` without `record` checks.
    current: Option<RecordId>,
    fired: usize,
    system: Actor,
    /// Whether the scenario checks scheduled report runs (`report_runs`):
    /// only then are they run (their messages are for no record, so no
    /// other expectation sees them, and a thousand-year `advance` would
    /// otherwise run every day's report).
    schedules: bool,
}

/// Whether a refusal is the one the step expects: its code, or a substring
/// of its message.
fn matches(expected: &str, e: &Error) -> bool {
    e.code() == expected || e.to_string().contains(expected)
}

fn refused(what: &str, e: &Error) -> (String, Option<String>) {
    let msg = match e {
        Error::Refused(r) => format!("{what} refused: {}: {}", r.code.as_str(), r.message),
        other => format!("{what} failed: {}: {other}", other.code()),
    };
    (msg, Some(e.code().to_string()))
}

impl<B: Replay> Runner<'_, B> {
    /// Move the clock to `target` as a daemon would live through it: at
    /// each instant a scheduled report is due, the timers due by then fire
    /// first and the report runs next (so it counts the records as they
    /// are at its instant), then the timers up to `target`. How many timers
    /// fired.
    async fn advance_clock(&self, target: DateTime<Utc>) -> Result<usize, Error> {
        if !self.schedules {
            return self.b.run_due(target).await;
        }
        let workflows = crate::kpi::schedule::RunStore::workflows(self.b);
        let mut slots: Vec<DateTime<Utc>> = workflows
            .iter()
            .flat_map(|wf| {
                let tz = wf.calendar.timezone();
                wf.reports
                    .iter()
                    .filter_map(|r| r.schedule)
                    .flat_map(move |s| s.due_between(self.now, target, tz))
                    .collect::<Vec<_>>()
            })
            .collect();
        slots.sort();
        slots.dedup();
        let mut fired = 0;
        for slot in slots {
            fired += self.b.run_due(slot).await?;
            self.run_schedules(&workflows, slot).await?;
        }
        fired += self.b.run_due(target).await?;
        Ok(fired)
    }

    /// The scheduled reports due by `now`, run as the daemon's scheduler
    /// runs them (claimed, stored, messages queued), all of them.
    async fn run_schedules(
        &self,
        workflows: &[std::sync::Arc<leadflow_engine::Workflow>],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if !self.schedules
            || !workflows
                .iter()
                .any(|w| w.reports.iter().any(|r| r.schedule.is_some()))
        {
            return Ok(());
        }
        let cfg = crate::kpi::schedule::TickConfig {
            owner: "scenario".into(),
            ..Default::default()
        };
        // A failed run is retried a minute later, so a tick that only
        // fails ends the loop.
        loop {
            let t =
                crate::kpi::schedule::tick(self.b, workflows, &self.sc.actors, &cfg, now).await?;
            if t.done.is_empty() && t.lost.is_empty() {
                return Ok(());
            }
        }
    }

    fn actor(&self, by: Option<&str>) -> &Actor {
        match by {
            Some("system") => &self.system,
            Some(id) => self
                .sc
                .actors
                .iter()
                .find(|a| a.id == id)
                .unwrap_or(&self.system),
            None => self.sc.actors.first().unwrap_or(&self.system),
        }
    }

    fn calendar(&self) -> Option<&Calendar> {
        let wf = self.sc.workflow.as_ref()?;
        self.set.get(&wf.value).map(|w| w.calendar.as_ref())
    }

    async fn step(&mut self, step: &Step) -> Problems {
        let mut out = Problems::new();
        if let Some(a) = step.advance {
            let target = match a {
                Advance::To(t) => t,
                Advance::By(d) => match d.fixed() {
                    Some(f) => match self.now.checked_add_signed(f) {
                        Some(t) => t,
                        None => {
                            out.push((
                                format!(
                                    "advancing from {} goes past the latest instant the clock can hold",
                                    self.now.to_rfc3339()
                                ),
                                None,
                            ));
                            return out;
                        }
                    },
                    None => match self.calendar() {
                        Some(c) => d.add_to(self.now, c),
                        None => d.add_to(self.now, &Calendar::always_open()),
                    },
                },
            };
            if target < self.now {
                out.push((
                    format!(
                        "advance_to {} is before the clock ({})",
                        target.to_rfc3339(),
                        self.now.to_rfc3339()
                    ),
                    None,
                ));
                return out;
            }
            // Without a create or fire, expect_error is about the timers.
            let expecting = step.expect_error.as_deref().filter(|_| {
                step.create.is_none()
                    && step.fire.is_none()
                    && step.pull.is_none()
                    && step.release.is_none()
            });
            match (self.advance_clock(target).await, expecting) {
                (Ok(n), None) => self.fired += n,
                (Ok(_), Some(x)) => {
                    out.push((
                        format!(
                            "expected running due timers to fail with {x}, but every timer ran"
                        ),
                        None,
                    ));
                    return out;
                }
                (Err(e), Some(x)) if matches(x, &e) => {}
                (Err(e), Some(x)) => {
                    let (m, code) = refused("running due timers", &e);
                    out.push((format!("expected {x}; {m}"), code));
                    return out;
                }
                (Err(e), None) => {
                    out.push(refused("running due timers", &e));
                    return out;
                }
            }
            self.now = target;
        }
        if let Some(a) = &step.alias {
            match resolve(self.b, &self.names, &a.record).await {
                Ok(id) => {
                    self.names.insert(a.name.clone(), id);
                    self.current = Some(id);
                }
                Err(m) => {
                    out.push((format!("alias {}: {m}", a.name), None));
                    return out;
                }
            }
        }
        let expect_error = step.expect_error.as_deref();
        if let Some(c) = &step.create {
            // With both create and fire in a step, expect_error is about fire.
            let expecting = expect_error.filter(|_| step.fire.is_none());
            let input: Vec<(String, Value)> = c
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::from_toml(v)))
                .collect();
            let req = CreateRequest {
                workflow: &c.workflow.value,
                input,
                actor: self.actor(c.by.as_deref()),
                now: self.now,
                idempotency_key: None,
            };
            if expecting.is_none() {
                match self.b.create_id(req).await {
                    Ok(id) => {
                        if let Some(n) = &c.name {
                            self.names.insert(n.clone(), id);
                        }
                        self.current = Some(id);
                    }
                    Err(e) => {
                        out.push(refused("create", &e));
                        return out;
                    }
                }
            } else {
                match (self.b.create(req).await, expecting) {
                    (Ok(rec), None) => {
                        if let Some(n) = &c.name {
                            self.names.insert(n.clone(), rec.id);
                        }
                        self.current = Some(rec.id);
                    }
                    (Ok(rec), Some(x)) => {
                        out.push((format!("expected create to be refused with {x}, but it created record {} in state \"{}\"", rec.id, rec.state), None));
                        return out;
                    }
                    (Err(e), Some(x)) if matches(x, &e) => {}
                    (Err(e), Some(x)) => {
                        let (m, code) = refused("create", &e);
                        out.push((format!("expected refusal {x}; {m}"), code));
                        return out;
                    }
                    (Err(e), None) => {
                        out.push(refused("create", &e));
                        return out;
                    }
                }
            }
        }
        if let Some(f) = &step.fire {
            let id = match resolve(self.b, &self.names, &f.record).await {
                Ok(id) => id,
                Err(m) => {
                    out.push((format!("fire {}: {m}", f.transition), None));
                    return out;
                }
            };
            self.current = Some(id);
            let before = match expect_error {
                Some(_) => Some(self.snapshot(id).await),
                None => None,
            };
            let input: Vec<(String, Value)> = f
                .input
                .iter()
                .map(|(k, v)| (k.clone(), Value::from_toml(v)))
                .collect();
            let req = FireRequest {
                record: id,
                transition: &f.transition,
                input,
                actor: self.actor(f.by.as_deref()),
                now: self.now,
                expected_revision: None,
                idempotency_key: None,
                visible: None,
                bulk: false,
            };
            let what = || format!("fire {} on {}", f.transition, f.record);
            if expect_error.is_none() {
                if let Err(e) = self.b.fire_only(req).await {
                    out.push(refused(&what(), &e));
                    return out;
                }
            } else {
                let what = what();
                match (self.b.fire(req).await, expect_error) {
                    (Ok(_), None) => {}
                    (Ok(rec), Some(x)) => {
                        out.push((format!("expected {what} to be refused with {x}, but it succeeded (state \"{}\")", rec.state), None));
                        return out;
                    }
                    (Err(e), Some(x)) if matches(x, &e) => {
                        let after = self.snapshot(id).await;
                        if before.as_ref() != Some(&after) {
                            out.push((
                                format!(
                                    "{what} was refused as expected ({}) but changed the record",
                                    e.code()
                                ),
                                None,
                            ));
                            return out;
                        }
                    }
                    (Err(e), Some(x)) => {
                        let (m, code) = refused(&what, &e);
                        out.push((format!("expected refusal {x}; {m}"), code));
                        return out;
                    }
                    (Err(e), None) => {
                        out.push(refused(&what, &e));
                        return out;
                    }
                }
            }
        }
        for (p, release) in [(&step.pull, false), (&step.release, true)] {
            let Some(p) = p else { continue };
            let what = format!(
                "{} {}/{} by {}",
                if release { "release" } else { "pull" },
                p.workflow.value,
                p.queue,
                p.by
            );
            let got = match release {
                false => self.pull(p).await,
                true => self.release(p).await,
            };
            match (got, expect_error) {
                (Ok(got), Some(x)) => {
                    let shown = got.map_or("nothing".to_string(), |(id, _)| self.label(id));
                    out.push((
                        format!("expected {what} to fail with {x}, but it gave {shown}"),
                        None,
                    ));
                    return out;
                }
                (Err((code, m)), Some(x)) if code == x || m.contains(x) => {}
                (Err((code, m)), x) => {
                    let m = format!("{what} failed: {code}: {m}");
                    let m = match x {
                        Some(x) => format!("expected {x}; {m}"),
                        None => m,
                    };
                    out.push((m, Some(code)));
                    return out;
                }
                (Ok(got), None) => {
                    if let Some(id) = got.map(|(id, _)| id) {
                        self.current = Some(id);
                    }
                    if let Some(want) = &step.expect_record {
                        let want_id = match want {
                            Some(r) => match resolve(self.b, &self.names, r).await {
                                Ok(id) => Some(id),
                                Err(m) => {
                                    out.push((format!("expect_record: {m}"), None));
                                    return out;
                                }
                            },
                            None => None,
                        };
                        let got_id = got.map(|(id, _)| id);
                        if got_id != want_id {
                            let show = |i: Option<RecordId>| {
                                i.map_or("nothing".to_string(), |i| self.label(i))
                            };
                            out.push((
                                format!(
                                    "expected {what} to give {}, but it gave {}",
                                    show(want_id),
                                    show(got_id)
                                ),
                                None,
                            ));
                            return out;
                        }
                    }
                    if let (Some(want), Some((_, again))) = (p.again, got) {
                        if want != again {
                            out.push((
                                format!(
                                    "expected {what} to give {} record, but it gave {}",
                                    if want { "the held" } else { "a newly held" },
                                    if again {
                                        "the record it already held"
                                    } else {
                                        "a record it did not hold"
                                    }
                                ),
                                None,
                            ));
                            return out;
                        }
                    }
                }
            }
        }
        for e in &step.expect {
            let id = match &e.record {
                Some(r) => match resolve(self.b, &self.names, r).await {
                    Ok(id) => id,
                    Err(m) => {
                        out.push((m, None));
                        continue;
                    }
                },
                None => match self.current {
                    Some(id) => id,
                    None => {
                        out.push((
                            "`expect` without `record`, and no record was named yet".to_string(),
                            None,
                        ));
                        continue;
                    }
                },
            };
            match check(
                self.b,
                self.set,
                &self.names,
                e,
                id,
                self.now,
                self.sc.templates.as_deref(),
            )
            .await
            {
                Ok(list) => out.extend(list.into_iter().map(|m| (m, None))),
                Err(m) => out.push((m, None)),
            }
        }
        out
    }

    /// A record as a failure shows it: its name(s) and id.
    fn label(&self, id: RecordId) -> String {
        let mut names: Vec<&str> = self
            .names
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.as_str())
            .collect();
        names.sort();
        match names.is_empty() {
            true => format!("record {id}"),
            false => format!("{} (record {id})", names.join("/")),
        }
    }

    /// The workflow and queue a `pull`/`release` names, if its puller may
    /// pull from it: the HTTP API's checks and codes.
    fn queue(
        &self,
        p: &Pull,
    ) -> Result<(std::sync::Arc<leadflow_engine::Workflow>, usize), (String, String)> {
        let not_found = || {
            (
                "E_QUEUE_NOT_FOUND".to_string(),
                format!("no queue `{}` in workflow `{}`", p.queue, p.workflow.value),
            )
        };
        let wf = self
            .b
            .versions()
            .current(&p.workflow.value)
            .map_err(|_| not_found())?;
        let i = wf
            .queues
            .iter()
            .position(|q| q.name == p.queue)
            .ok_or_else(not_found)?;
        let role = &self.actor(Some(&p.by)).role;
        if !wf.queues[i].allows(role) {
            return Err((
                "E_FORBIDDEN".to_string(),
                format!(
                    "role `{role}` may not pull from queue `{}` (its `by`)",
                    p.queue
                ),
            ));
        }
        Ok((wf, i))
    }

    /// A `pull`: the record given, and whether the puller already held it.
    async fn pull(&self, p: &Pull) -> Result<Option<(RecordId, bool)>, (String, String)> {
        let (wf, i) = self.queue(p)?;
        let q = &wf.queues[i];
        if q.open_at(&wf.calendar, self.now).is_err() {
            return Err((
                "E_QUEUE_CLOSED".to_string(),
                format!(
                    "queue `{}` serves only in its calling hours on the working days of calendar `{}`",
                    q.name,
                    wf.calendar.id()
                ),
            ));
        }
        let actor = self.actor(Some(&p.by));
        let versions = self.b.versions();
        let current = versions.all_current();
        // The scenario has no tenant config: no pools.
        let vis = Visibility::of(current.iter().map(|w| &**w), &self.sc.actors, actor, &[]);
        let (pull, _) = pull_of(
            self.b.tenant(),
            versions,
            &wf,
            q,
            &actor.id,
            Some(vis),
            self.now,
        )
        .map_err(|reason| {
            (
                "E_QUEUE_FILTER".to_string(),
                format!(
                    "queue `{}` of `{}` cannot be served: {reason}",
                    q.name, wf.id
                ),
            )
        })?;
        match self.b.next(&pull).await {
            Ok(Some(c)) => Ok(Some((c.record, c.again))),
            Ok(None) => Err((
                "E_QUEUE_EMPTY".to_string(),
                format!("queue `{}` has no record for `{}` now", q.name, actor.id),
            )),
            Err(e) => Err((e.code().to_string(), e.to_string())),
        }
    }

    /// A `release`: the record given back, if the puller held one.
    async fn release(&self, p: &Pull) -> Result<Option<(RecordId, bool)>, (String, String)> {
        let (wf, _) = self.queue(p)?;
        let actor = &self.actor(Some(&p.by)).id;
        match self.b.give_back(&wf.id, &p.queue, actor, self.now).await {
            Ok(r) => Ok(r.map(|id| (id, false))),
            Err(e) => Err((e.code().to_string(), e.to_string())),
        }
    }

    /// Everything a refused step must leave unchanged, as comparable text.
    async fn snapshot(&self, id: RecordId) -> String {
        let b = self.b;
        let parts = (
            b.get(id)
                .await
                .ok()
                .flatten()
                .map(|r| (r.state, r.revision, r.fields, r.assignee)),
            b.timers(id).await.ok(),
            b.outbox(id).await.ok().map(|o| o.len()),
            b.history(id).await.ok().map(|h| h.len()),
            b.events(id).await.ok().map(|e| e.len()),
            b.links(id).await.ok().map(|l| l.len()),
        );
        format!("{parts:?}")
    }
}
