//! The executor shared by every store: it calls the engine and turns the
//! [`Outcome`] into row changes (record, history, timers, outbox, spawns,
//! links) through the small [`Tx`] interface that each store implements on
//! top of one database transaction (or one locked in-memory state).
//!
//! Order inside one transition: read and lock the record, check the expected
//! revision, call the engine for the record and for every immediate spawn it
//! causes (all pure, so nothing is written if any of them is refused), then
//! write. A store therefore only needs rollback for storage errors.

use crate::backend::{
    CreateRequest, Error, EventKind, FireRequest, HistoryEntry, Idempotency, RecordId, StoredRecord,
};
use chrono::{DateTime, Utc};
use leadflow_engine::eval::{Cascade, Outcome, SpawnRequest};
use leadflow_engine::model::{Effect, TimerAction};
use leadflow_engine::{Actor, Code, Ctx, Record, Value, Workflow, WorkflowSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The workflows a store can run: the current version of each workflow (for
/// new records) and every version it knows by content hash (a record stays
/// on the version it was created with). Shared by every clone of a backend
/// and updated in place by [`Versions::publish`] (hot reload), so lookups
/// return owned `Arc`s.
#[derive(Debug, Default)]
pub struct Versions {
    inner: std::sync::RwLock<VersionMaps>,
    /// Unknown version hashes last looked up in the database, and when.
    looked_up: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// The tenant's notification settings (default language, address
    /// lists), read when messages are queued.
    notify: std::sync::RwLock<Arc<crate::notify::Settings>>,
    /// The version of the tenant's templates new messages are queued under
    /// (set by the outbox dispatcher once it stored it).
    templates: std::sync::RwLock<Option<Arc<str>>>,
}

#[derive(Debug, Default)]
struct VersionMaps {
    current: BTreeMap<String, Arc<Workflow>>,
    by_hash: HashMap<String, Arc<Workflow>>,
    /// Hashes of workflows with an `assign` or `spawn` effect: only those
    /// need the actor directory (with loads) computed before creating a
    /// record (a spawned child may assign).
    assigns: HashMap<String, bool>,
}

impl VersionMaps {
    fn add(&mut self, wf: Arc<Workflow>) {
        self.assigns.insert(wf.hash.clone(), has_assign(&wf));
        self.by_hash.insert(wf.hash.clone(), wf);
    }
}

impl Versions {
    pub fn new(set: &WorkflowSet) -> Versions {
        let v = Versions::default();
        v.publish(set);
        v
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VersionMaps> {
        // A poisoned lock only means a panic elsewhere; the maps stay valid.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Make an older version runnable for the records created with it.
    pub fn add(&self, wf: Arc<Workflow>) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(wf);
    }

    /// Make `set` the current versions (for new records); every version
    /// seen before stays runnable for the records created with it.
    pub fn publish(&self, set: &WorkflowSet) {
        let mut m = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for wf in set.workflows.values() {
            m.add(wf.clone());
            m.current.insert(wf.id.clone(), wf.clone());
        }
    }

    /// Forget older versions (never a current one) that no record runs on,
    /// to give their memory back; a record met on one later (created
    /// elsewhere, or moved there) loads it again from its snapshot.
    pub fn unload(&self, hashes: &[String]) -> usize {
        let mut m = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut looked_up = self.looked_up.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for h in hashes {
            if m.current.values().any(|w| w.hash == *h) {
                continue;
            }
            if m.by_hash.remove(h).is_some() {
                m.assigns.remove(h);
                looked_up.remove(h);
                n += 1;
            }
        }
        n
    }

    pub fn current(&self, id: &str) -> Result<Arc<Workflow>, Error> {
        self.read()
            .current
            .get(id)
            .cloned()
            .ok_or_else(|| Error::UnknownWorkflow(id.to_string()))
    }

    pub fn all_current(&self) -> Vec<Arc<Workflow>> {
        self.read().current.values().cloned().collect()
    }

    /// Every version known, current or not.
    pub fn all(&self) -> Vec<Arc<Workflow>> {
        self.read().by_hash.values().cloned().collect()
    }

    /// The exact version a record runs on.
    pub fn version(&self, workflow: &str, hash: &str) -> Result<Arc<Workflow>, Error> {
        let m = self.read();
        match m.by_hash.get(hash) {
            Some(wf) if wf.id == workflow => Ok(wf.clone()),
            _ if m.current.contains_key(workflow) => Err(Error::VersionNotLoaded {
                workflow: workflow.to_string(),
                hash: hash.to_string(),
            }),
            _ => Err(Error::UnknownWorkflow(workflow.to_string())),
        }
    }

    /// Whether `hash` is a known version of `workflow`.
    pub fn knows(&self, workflow: &str, hash: &str) -> bool {
        self.read()
            .by_hash
            .get(hash)
            .is_some_and(|wf| wf.id == workflow)
    }

    /// Whether an unknown version may be looked up in the database now: at
    /// most once a minute per hash.
    pub(crate) fn may_look_up(&self, hash: &str) -> bool {
        let mut m = self.looked_up.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        match m.get(hash) {
            Some(t) if now.duration_since(*t) < std::time::Duration::from_secs(60) => false,
            _ => {
                m.insert(hash.to_string(), now);
                true
            }
        }
    }

    /// Set the tenant's notification settings (the daemon, from its config).
    pub fn set_notify(&self, settings: crate::notify::Settings) {
        *self.notify.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// Stamp new messages with template version `hash` (stored first).
    pub fn set_templates(&self, hash: &str) {
        *self.templates.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(hash));
    }

    /// The template version new messages are queued under, once known.
    pub fn templates_version(&self) -> Option<Arc<str>> {
        self.templates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The tenant's notification settings.
    pub fn notify_settings(&self) -> Arc<crate::notify::Settings> {
        self.notify
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn needs_directory(&self, wf: &Workflow) -> bool {
        self.read().assigns.get(&wf.hash).copied().unwrap_or(true)
    }
}

fn has_assign(wf: &Workflow) -> bool {
    wf.uses_directory()
        || wf.states.iter().any(|s| reads_directory(&s.on_enter))
        || wf.transitions.iter().any(|t| reads_directory(&t.effects))
        || wf
            .timers
            .iter()
            .any(|t| matches!(&t.action, TimerAction::Effects(e) if reads_directory(e)))
}

/// A spawn waiting for its due instant, stored in the timer queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpawnPayload {
    pub workflow: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub link: String,
    pub backlink: String,
}

impl SpawnPayload {
    fn from_request(s: &SpawnRequest) -> SpawnPayload {
        SpawnPayload {
            workflow: s.workflow.clone(),
            fields: s
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
            link: s.link.clone(),
            backlink: s.backlink.clone(),
        }
    }
}

/// One entry of the due queue: a timer arming or a scheduled spawn. `seq`
/// identifies the arming: a re-armed or cancelled timer no longer matches it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueItem {
    pub record: RecordId,
    pub timer: String,
    pub due: DateTime<Utc>,
    pub seq: i64,
}

/// What a due item turned out to be when taken.
#[derive(Debug)]
pub enum Taken {
    Timer,
    Spawn(SpawnPayload),
}

/// One step being written (a create, a transition, a timer firing, a
/// spawn): what its event row says besides the [`Outcome`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step<'a> {
    pub kind: EventKind,
    /// The engine's actor id (`system` for timers): field rows keep it.
    pub actor: &'a str,
    /// The timer that caused the step: the event's actor is `timer:<name>`.
    pub timer: Option<&'a str>,
    /// The caller's input (a transition's or a create's); empty otherwise.
    pub input: &'a [(String, Value)],
    pub now: DateTime<Utc>,
}

impl<'a> Step<'a> {
    /// The event's actor: `timer:<name>` for a timer's step, else the actor.
    pub fn by(&self) -> std::borrow::Cow<'a, str> {
        match self.timer {
            Some(t) => format!("timer:{t}").into(),
            None => self.actor.into(),
        }
    }

    /// The same step for a record it spawns now.
    fn spawned(&self) -> Step<'a> {
        Step {
            kind: EventKind::Spawn,
            input: &[],
            ..*self
        }
    }
}

/// An event row as the SQL stores write it (field changes go beside it as
/// history rows of the same record and revision).
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub workflow: String,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub actor: String,
    pub transition: Option<String>,
    pub from: Option<String>,
    pub to: String,
    pub assignee: Option<String>,
    /// A JSON object, `None` without input.
    pub input: Option<serde_json::Value>,
}

impl NewEvent {
    fn of(wf: &Workflow, out: &Outcome, step: &Step<'_>) -> NewEvent {
        NewEvent {
            workflow: wf.id.clone(),
            at: step.now,
            kind: step.kind,
            actor: step.by().into_owned(),
            transition: out.transition.clone(),
            from: out.from_state.clone(),
            to: out.to_state.clone(),
            assignee: out.record.assignee.clone(),
            input: input_json(step.input),
        }
    }
}

/// A step's input as a JSON object, `None` if empty.
pub(crate) fn input_json(input: &[(String, Value)]) -> Option<serde_json::Value> {
    (!input.is_empty()).then(|| {
        serde_json::Value::Object(
            input
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    })
}

/// A locked record, as the engine needs it.
pub struct Current {
    pub wf: Arc<Workflow>,
    pub record: Record,
    pub revision: i64,
}

/// What the executor needs from a store, inside one transaction.
pub(crate) trait Tx {
    /// The request fingerprint and response stored for an idempotency key
    /// still within [`crate::backend::IDEMPOTENCY_RETENTION`].
    async fn idem_get(&mut self, key: &str) -> Result<Option<(String, StoredRecord)>, Error>;
    /// Store a response; `false` if the key is already taken (a concurrent
    /// first request won: the caller rolls back and returns its response).
    /// A key past the retention is replaced.
    async fn idem_put(&mut self, key: Idempotency<'_>, rec: &StoredRecord) -> Result<bool, Error>;
    /// Read a record and lock it until the end of the transaction.
    async fn lock(&mut self, id: RecordId) -> Result<Option<Current>, Error>;
    /// The actor directory with `load` = open records assigned to each.
    async fn directory(&mut self) -> Result<Arc<Vec<Actor>>, Error>;
    async fn insert(
        &mut self,
        wf: &Arc<Workflow>,
        rec: Record,
        now: DateTime<Utc>,
    ) -> Result<RecordId, Error>;
    async fn update(
        &mut self,
        id: RecordId,
        wf: &Arc<Workflow>,
        rec: Record,
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;
    /// Write one step's event row and its field changes (history rows of
    /// the same record and revision).
    async fn event(
        &mut self,
        id: RecordId,
        revision: i64,
        event: NewEvent,
        rows: Vec<HistoryEntry>,
    ) -> Result<(), Error>;
    /// Arm (insert or replace) a timer or a scheduled spawn with a new seq.
    async fn arm(
        &mut self,
        id: RecordId,
        timer: &str,
        due: DateTime<Utc>,
        revision: i64,
        spawn: Option<SpawnPayload>,
    ) -> Result<(), Error>;
    async fn cancel(&mut self, id: RecordId, timer: &str) -> Result<(), Error>;
    async fn outbox(
        &mut self,
        id: RecordId,
        template: &str,
        recipients: Vec<String>,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;
    async fn link(&mut self, from: RecordId, name: &str, to: RecordId) -> Result<(), Error>;
    /// The records `from` links to under `name`, in id order (`fire_linked`).
    async fn linked(&mut self, from: RecordId, name: &str) -> Result<Vec<RecordId>, Error>;
    /// Mark a due item fired if it is still the current arming; `None` if it
    /// is stale (cancelled, re-armed or already fired).
    async fn take(&mut self, item: &DueItem, now: DateTime<Utc>) -> Result<Option<Taken>, Error>;
    /// How many of the record's newest events, without a gap, are timer
    /// firings at `at` (counting stops at `limit`): the length of a chain
    /// of timers arming each other at one instant.
    async fn timer_streak(
        &mut self,
        id: RecordId,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, Error>;
    /// Whether outbox payloads are kept (the memory store drops them, so
    /// building them would be wasted work on the replay hot path).
    fn keeps_payloads(&self) -> bool {
        true
    }
    /// Write the event of `out` (one step of record `id`, now at
    /// `revision`) with its tracked field changes. Stores with a compact
    /// representation override it to skip building [`NewEvent`] and
    /// [`HistoryEntry`] rows (strings and JSON) on the hot path.
    async fn event_of(
        &mut self,
        id: RecordId,
        revision: i64,
        wf: &Workflow,
        out: &Outcome,
        step: &Step<'_>,
    ) -> Result<(), Error> {
        let rows = history_rows(out, step.actor, step.now);
        self.event(id, revision, NewEvent::of(wf, out, step), rows)
            .await
    }
    /// Queue the message of a notification for one resolved recipient (one
    /// outbox row per recipient), written by the step that made the record
    /// `revision` (the payload carries it too).
    async fn notify(
        &mut self,
        id: RecordId,
        template: &str,
        to: &crate::notify::Addressee,
        _revision: i64,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.outbox(id, template, vec![to.id.clone()], payload, now)
            .await
    }
    /// The actor directory as message recipients need it (roles, addresses,
    /// languages; loads are not needed).
    async fn actors(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        self.directory().await
    }
    /// Give back the record a [`Tx::lock`] returned when the transaction
    /// did not [`Tx::update`] it (a refusal, a stale timer). Stores that
    /// lend the record out of their own state instead of copying it put it
    /// back here; the others have nothing to do.
    fn release(&mut self, _id: RecordId, _record: Record) {}
}

/// The history label of an outcome: the transition, `timer:<name>` for a
/// timer running effects, `create` on creation.
pub fn label(out: &Outcome) -> std::borrow::Cow<'_, str> {
    match (&out.transition, &out.timer) {
        (Some(t), _) => t.as_str().into(),
        (None, Some(t)) => format!("timer:{t}").into(),
        (None, None) => "create".into(),
    }
}

pub fn stored(
    id: RecordId,
    wf: &Workflow,
    rec: &Record,
    revision: i64,
    updated_at: DateTime<Utc>,
) -> StoredRecord {
    StoredRecord {
        id,
        workflow: wf.id.clone(),
        version: wf.hash.clone(),
        state: wf.state_name(rec.state).to_string(),
        fields: rec.fields_json(wf),
        assignee: rec.assignee.clone(),
        revision,
        created_at: rec.created_at,
        entered_at: rec.entered_at,
        updated_at,
    }
}

/// Whether the record's state is final (a record there counts for no load).
pub fn is_final(wf: &Workflow, rec: &Record) -> bool {
    wf.states.get(rec.state).is_some_and(|s| s.is_final)
}

/// A child created by an immediate spawn, computed before anything is written.
struct Child {
    /// Index into the list of created records (0 = the record itself).
    parent: usize,
    link: String,
    backlink: String,
    wf: Arc<Workflow>,
    out: Outcome,
}

/// Records one transition may spawn, its spawns' own spawns included:
/// bounded so that a spawn cycle cannot loop forever.
pub const SPAWN_LIMIT: usize = 64;

/// At most this many timer firings of one record at one instant, each
/// arming the next (a zero-delay timer cycle the checker could not prove,
/// E028): the next one fails with `E_TIMER_LOOP` instead of looping forever.
pub const TIMER_LOOP_LIMIT: usize = 100;

/// The actor this record adds load to, if any: its assignee while open.
pub fn open_assignee<'a>(wf: &Workflow, rec: &'a Record) -> Option<&'a str> {
    match is_final(wf, rec) {
        true => None,
        false => rec.assignee.as_deref(),
    }
}

/// The directory as the next assignment of one step sees it: the loads read
/// before the step plus every assignment the step has made so far (the
/// record itself, then each spawned child in order), so that siblings
/// spawned together spread over actors and respect `capacity`. Cloned only
/// when the step spawns something.
struct StepLoads<'a> {
    base: &'a [Actor],
    moved: Option<Vec<Actor>>,
}

impl<'a> StepLoads<'a> {
    fn new(base: &'a [Actor]) -> Self {
        StepLoads { base, moved: None }
    }

    fn directory(&self) -> &[Actor] {
        self.moved.as_deref().unwrap_or(self.base)
    }

    /// An open record moved from `before` to `after` (None: no load).
    fn moved(&mut self, before: Option<&str>, after: Option<&str>) {
        if before == after {
            return;
        }
        let dir = self.moved.get_or_insert_with(|| self.base.to_vec());
        for a in dir.iter_mut() {
            if Some(a.id.as_str()) == before {
                a.load = a.load.saturating_sub(1);
            }
            if Some(a.id.as_str()) == after {
                a.load = a.load.saturating_add(1);
            }
        }
    }
}

/// The engine outcome of every immediate spawn of `out` (the record of `wf`
/// whose open assignee was `before` the step), and of theirs, depth first.
fn children(
    v: &Versions,
    wf: &Workflow,
    out: &Outcome,
    before: Option<&str>,
    ctx: Ctx,
) -> Result<Vec<Child>, Error> {
    let mut list = Vec::new();
    let mut spawns = out.spawns.iter().filter(|s| s.due.is_none()).peekable();
    if spawns.peek().is_none() {
        return Ok(list);
    }
    let mut loads = StepLoads::new(ctx.directory);
    loads.moved(before, open_assignee(wf, &out.record));
    for s in spawns {
        spawn_child(&mut list, 0, s.clone(), v, ctx, &mut loads)?;
    }
    Ok(list)
}

fn spawn_child(
    list: &mut Vec<Child>,
    parent: usize,
    s: SpawnRequest,
    v: &Versions,
    ctx: Ctx,
    loads: &mut StepLoads,
) -> Result<(), Error> {
    if list.len() >= SPAWN_LIMIT {
        return Err(Error::SpawnLimit { limit: SPAWN_LIMIT });
    }
    let wf = v.current(&s.workflow)?;
    let out = leadflow_engine::create(
        &wf,
        &s.fields,
        Ctx {
            directory: loads.directory(),
            ..ctx
        },
    )?;
    loads.moved(None, open_assignee(&wf, &out.record));
    let grand: Vec<SpawnRequest> = out
        .spawns
        .iter()
        .filter(|s| s.due.is_none())
        .cloned()
        .collect();
    list.push(Child {
        parent,
        link: s.link,
        backlink: s.backlink,
        wf,
        out,
    });
    // Index of this child in the list of written ids (0 is the root).
    let me = list.len();
    for g in grand {
        spawn_child(list, me, g, v, ctx, loads)?;
    }
    Ok(())
}

fn history_rows(out: &Outcome, actor: &str, now: DateTime<Utc>) -> Vec<HistoryEntry> {
    let transition = label(out).into_owned();
    out.changes
        .iter()
        .filter(|c| c.tracked)
        .map(|c| HistoryEntry {
            at: now,
            actor: actor.to_string(),
            transition: transition.clone(),
            field: c.field.clone(),
            old: c.old.to_json(),
            new: c.new.to_json(),
        })
        .collect()
}

/// Write everything an outcome says, except the record row itself, for a
/// record now at `revision`.
#[allow(clippy::too_many_arguments)]
async fn write_effects<T: Tx>(
    tx: &mut T,
    v: &Versions,
    id: RecordId,
    wf: &Workflow,
    out: &Outcome,
    revision: i64,
    step: &Step<'_>,
) -> Result<(), Error> {
    let now = step.now;
    tx.event_of(id, revision, wf, out, step).await?;
    for c in &out.cancel {
        tx.cancel(id, c).await?;
    }
    for a in &out.arm {
        tx.arm(id, &a.timer, a.due, revision, None).await?;
    }
    for (i, s) in out.spawns.iter().enumerate() {
        if let Some(due) = s.due {
            tx.arm(
                id,
                &format!("spawn:{revision}.{i}"),
                due,
                revision,
                Some(SpawnPayload::from_request(s)),
            )
            .await?;
        }
    }
    if !out.notifications.is_empty() {
        // One row per resolved recipient, each payload redacted for it.
        let dir = match crate::notify::needs_directory(&out.notifications) {
            true => tx.actors().await?,
            false => Arc::default(),
        };
        let settings = v.notify_settings();
        let templates = v.templates_version();
        for n in &out.notifications {
            for to in crate::notify::resolve(wf, out, n, &dir, &settings, now) {
                let payload = match tx.keeps_payloads() {
                    true => {
                        let mut p = crate::notify::payload(id, revision, wf, out, n, &to);
                        if let (Some(h), Some(o)) = (&templates, p.as_object_mut()) {
                            o.insert("templates".into(), serde_json::Value::from(&**h));
                        }
                        p
                    }
                    false => serde_json::Value::Null,
                };
                tx.notify(id, &n.template, &to, revision, payload, now)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Write the immediate children of the record `root` and link them.
async fn write_children<T: Tx>(
    tx: &mut T,
    v: &Versions,
    root: RecordId,
    kids: Vec<Child>,
    step: &Step<'_>,
) -> Result<(), Error> {
    let mut ids = vec![root];
    let step = step.spawned();
    for k in kids {
        let parent = ids[k.parent];
        let id = tx.insert(&k.wf, k.out.record.clone(), step.now).await?;
        write_effects(tx, v, id, &k.wf, &k.out, 1, &step).await?;
        tx.link(id, &k.link, parent).await?;
        tx.link(parent, &k.backlink, id).await?;
        ids.push(id);
    }
    Ok(())
}

/// Whether effects may read the actor directory: an `assign`, or a spawn
/// (the child's creation may assign).
fn reads_directory(effects: &[Effect]) -> bool {
    effects.iter().any(|e| match e {
        Effect::Assign { .. } | Effect::Spawn(_) => true,
        Effect::When { then, .. } => reads_directory(std::slice::from_ref(then)),
        _ => false,
    })
}

/// Whether firing `transition` from `from` may read the directory: its
/// effects, or the `on_enter` effects of the state it enters. The directory
/// (actors with their loads, a query over the tenant's open records on the
/// SQL stores) is only fetched then; an unknown transition is refused by
/// the engine without it.
fn fire_reads_directory(wf: &Workflow, transition: &str, from: usize) -> bool {
    let Some(t) = wf.transition(transition).map(|i| &wf.transitions[i]) else {
        return false;
    };
    reads_directory(&t.effects)
        || t.to
            .filter(|to| *to != from)
            .is_some_and(|to| reads_directory(&wf.states[to].on_enter))
}

/// [`fire_reads_directory`] for a timer: its effects, or the transition it fires.
fn timer_reads_directory(wf: &Workflow, timer: &str, from: usize) -> bool {
    match wf.timer(timer).map(|i| &wf.timers[i].action) {
        Some(TimerAction::Effects(e)) => reads_directory(e),
        Some(TimerAction::Fire(t)) => fire_reads_directory(wf, &wf.transitions[*t].name, from),
        None => false,
    }
}

/// The actor directory (with loads) if `needed`, else an empty one: the SQL
/// stores compute it with a query over the tenant's open records.
async fn directory_if<T: Tx>(tx: &mut T, needed: bool) -> Result<Arc<Vec<Actor>>, Error> {
    if needed {
        tx.directory().await
    } else {
        Ok(Arc::default())
    }
}

/// Create a record (and whatever it spawns now). Returns the stored record.
pub(crate) async fn create<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &CreateRequest<'_>,
) -> Result<StoredRecord, Error> {
    let (_, result) = create_as(tx, v, req, true).await?;
    result.ok_or_else(|| Error::storage("create produced no result"))
}

/// [`create`] for callers that only need the new record's id (scenario
/// replay on the memory store): no [`StoredRecord`] (fields as JSON) is
/// built unless an idempotency key has to store it.
pub(crate) async fn create_id<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &CreateRequest<'_>,
) -> Result<RecordId, Error> {
    Ok(create_as(tx, v, req, false).await?.0)
}

async fn create_as<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &CreateRequest<'_>,
    want: bool,
) -> Result<(RecordId, Option<StoredRecord>), Error> {
    if let Some(r) = replay(tx, req.idempotency_key).await? {
        return Ok((r.id, Some(r)));
    }
    let wf = v.current(req.workflow)?;
    let dir = directory_if(tx, v.needs_directory(&wf)).await?;
    let ctx = Ctx {
        now: req.now,
        actor: req.actor,
        directory: &dir,
    };
    let out = leadflow_engine::create(&wf, &req.input, ctx)?;
    let kids = children(v, &wf, &out, None, ctx)?;
    let id = tx.insert(&wf, out.record.clone(), req.now).await?;
    let result =
        (want || req.idempotency_key.is_some()).then(|| stored(id, &wf, &out.record, 1, req.now));
    let step = Step {
        kind: EventKind::Create,
        actor: &req.actor.id,
        timer: None,
        input: &req.input,
        now: req.now,
    };
    write_effects(tx, v, id, &wf, &out, 1, &step).await?;
    write_children(tx, v, id, kids, &step).await?;
    Ok((id, finish_idem(tx, req.idempotency_key, result).await?))
}

/// The first result for a key seen before with the same request; a key
/// seen with another request refuses this one.
pub(crate) async fn replay<T: Tx>(
    tx: &mut T,
    key: Option<Idempotency<'_>>,
) -> Result<Option<StoredRecord>, Error> {
    let Some(k) = key else {
        return Ok(None);
    };
    match tx.idem_get(k.key).await? {
        None => Ok(None),
        // An empty fingerprint: stored before requests were fingerprinted.
        Some((request, r)) if request == k.request || request.is_empty() => Ok(Some(r)),
        Some(_) => Err(Error::IdempotencyMismatch),
    }
}

async fn finish_idem<T: Tx>(
    tx: &mut T,
    key: Option<Idempotency<'_>>,
    result: Option<StoredRecord>,
) -> Result<Option<StoredRecord>, Error> {
    if let (Some(k), Some(r)) = (key, &result) {
        if !tx.idem_put(k, r).await? {
            return Err(Error::IdempotencyRace(k.owned()));
        }
    }
    Ok(result)
}

/// Fire a transition on a record.
pub(crate) async fn fire<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &FireRequest<'_>,
) -> Result<StoredRecord, Error> {
    fire_as(tx, v, req, true)
        .await?
        .ok_or_else(|| Error::storage("fire produced no result"))
}

/// [`fire`] for callers that only need to know it succeeded (scenario
/// replay on the memory store): no [`StoredRecord`] is built unless an
/// idempotency key has to store it.
pub(crate) async fn fire_only<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &FireRequest<'_>,
) -> Result<(), Error> {
    fire_as(tx, v, req, false).await.map(drop)
}

async fn fire_as<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &FireRequest<'_>,
    want: bool,
) -> Result<Option<StoredRecord>, Error> {
    let (result, cascades) = fire_step(tx, v, req, want).await?;
    run_cascades(tx, v, req.record, cascades, req.now).await?;
    Ok(result)
}

/// How many levels of `fire_linked` one step may cause: a linked record's
/// own `fire_linked` runs too, up to this depth, so a cycle of links ends.
const MAX_CASCADE_DEPTH: usize = 4;

/// Run the `fire_linked` effects of a step of record `from`, once it is
/// written: fire each transition, as `system`, on every record linked under
/// its `via`, in the same transaction. A linked record that refuses it (not
/// enabled in its state, final, a guard) is left as it is; any other error
/// fails the whole step.
async fn run_cascades<T: Tx>(
    tx: &mut T,
    v: &Versions,
    from: RecordId,
    cascades: Vec<Cascade>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let mut queue: std::collections::VecDeque<(RecordId, Cascade, usize)> =
        cascades.into_iter().map(|c| (from, c, 1)).collect();
    let system = Actor::system_shared();
    while let Some((id, c, depth)) = queue.pop_front() {
        for linked in tx.linked(id, &c.via).await? {
            let req = FireRequest {
                record: linked,
                transition: &c.transition,
                input: Vec::new(),
                actor: system,
                now,
                expected_revision: None,
                idempotency_key: None,
                visible: None,
                bulk: false,
            };
            match fire_step(tx, v, &req, false).await {
                Ok((_, more)) if depth < MAX_CASCADE_DEPTH => {
                    queue.extend(more.into_iter().map(|m| (linked, m, depth + 1)));
                }
                Ok(_) | Err(Error::Refused(_)) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// One transition of one record, written; its `fire_linked` effects are
/// returned for the caller to run once the record is written.
async fn fire_step<T: Tx>(
    tx: &mut T,
    v: &Versions,
    req: &FireRequest<'_>,
    want: bool,
) -> Result<(Option<StoredRecord>, Vec<Cascade>), Error> {
    if let Some(r) = replay(tx, req.idempotency_key).await? {
        return Ok((Some(r), Vec::new()));
    }
    let cur = tx
        .lock(req.record)
        .await?
        .ok_or(Error::NotFound(req.record))?;
    // The engine takes the locked record by value (no copy): every path
    // gives it back, to `update` changed or to `release` as it was.
    let Current {
        wf,
        record,
        revision,
    } = cur;
    if let Some(v) = &req.visible {
        if !(v.0)(&stored(req.record, &wf, &record, revision, req.now)) {
            tx.release(req.record, record);
            return Err(Error::NotFound(req.record));
        }
    }
    if let Some(expected) = req.expected_revision.filter(|&e| e != revision) {
        tx.release(req.record, record);
        return Err(Error::Conflict {
            expected,
            actual: revision,
        });
    }
    let needed = fire_reads_directory(&wf, req.transition, record.state);
    let dir = match directory_if(tx, needed).await {
        Ok(dir) => dir,
        Err(e) => {
            tx.release(req.record, record);
            return Err(e);
        }
    };
    let ctx = Ctx {
        now: req.now,
        actor: req.actor,
        directory: &dir,
    };
    // Only a step that reads the directory assigns (or spawns what may).
    let before = needed
        .then(|| open_assignee(&wf, &record).map(str::to_string))
        .flatten();
    let mut out = match leadflow_engine::fire_owned(&wf, record, req.transition, &req.input, ctx) {
        Ok(out) => out,
        Err(r) => {
            tx.release(req.record, r.record);
            return Err(r.refusal.into());
        }
    };
    let cascades = std::mem::take(&mut out.cascades);
    let revision = revision + 1;
    let step = Step {
        kind: match req.bulk {
            true => EventKind::Bulk,
            false => EventKind::Transition,
        },
        actor: &req.actor.id,
        timer: None,
        input: &req.input,
        now: req.now,
    };
    let written = async {
        let kids = children(v, &wf, &out, before.as_deref(), ctx)?;
        let result = (want || req.idempotency_key.is_some())
            .then(|| stored(req.record, &wf, &out.record, revision, req.now));
        write_effects(tx, v, req.record, &wf, &out, revision, &step).await?;
        write_children(tx, v, req.record, kids, &step).await?;
        Ok(result)
    }
    .await;
    match written {
        Ok(result) => {
            tx.update(req.record, &wf, out.record, revision, req.now)
                .await?;
            let result = finish_idem(tx, req.idempotency_key, result).await?;
            Ok((result, cascades))
        }
        Err(e) => {
            tx.release(req.record, out.revert(&wf));
            Err(e)
        }
    }
}

/// What running one due item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// A timer fired, or a scheduled spawn created its record.
    Fired,
    /// Stale or no longer enabled: dropped without effect.
    Discarded,
}

/// Run one due item with time = its due instant. The earliest instant armed
/// by it is reported through `armed` so callers can keep strict due order.
pub(crate) async fn run_item<T: Tx>(
    tx: &mut T,
    v: &Versions,
    item: &DueItem,
) -> Result<Ran, Error> {
    let Some(cur) = tx.lock(item.record).await? else {
        return Ok(Ran::Discarded);
    };
    run_locked(tx, v, item, cur).await
}

/// Every path gives the locked record back: to `update` changed, or to
/// `release` as it was (the engine takes it by value, no copy).
async fn run_locked<T: Tx>(
    tx: &mut T,
    v: &Versions,
    item: &DueItem,
    cur: Current,
) -> Result<Ran, Error> {
    let now = item.due;
    let taken = match tx.take(item, now).await {
        Ok(Some(taken)) => taken,
        other => {
            tx.release(item.record, cur.record);
            return other.map(|_| Ran::Discarded);
        }
    };
    let system = Actor::system_shared();
    match taken {
        Taken::Timer => {
            let Current {
                wf,
                record,
                revision,
            } = cur;
            let needed = timer_reads_directory(&wf, &item.timer, record.state);
            let dir = match directory_if(tx, needed).await {
                Ok(dir) => dir,
                Err(e) => {
                    tx.release(item.record, record);
                    return Err(e);
                }
            };
            let before = needed
                .then(|| open_assignee(&wf, &record).map(str::to_string))
                .flatten();
            let mut out = match leadflow_engine::fire_timer_owned(
                &wf,
                record,
                &item.timer,
                now,
                &dir,
            ) {
                Ok(out) => out,
                Err(r) => {
                    tx.release(item.record, r.record);
                    let r = r.refusal;
                    if r.code != Code::NotEnabled {
                        tracing::warn!(record = item.record, timer = %item.timer, code = r.code.as_str(), "timer refused: {}", r.message);
                    }
                    return Ok(Ran::Discarded);
                }
            };
            // A timer arming a timer due at once (zero delay, or a due
            // instant already past): bound the chain at one instant.
            if out.arm.iter().any(|a| a.due <= now) {
                let streak = match tx.timer_streak(item.record, now, TIMER_LOOP_LIMIT).await {
                    Ok(n) => n,
                    Err(e) => {
                        tx.release(item.record, out.revert(&wf));
                        return Err(e);
                    }
                };
                if streak + 1 >= TIMER_LOOP_LIMIT {
                    tracing::warn!(record = item.record, timer = %item.timer, code = "E_TIMER_LOOP", "timer loop stopped");
                    tx.release(item.record, out.revert(&wf));
                    return Err(Error::TimerLoop {
                        record: item.record,
                        timer: item.timer.clone(),
                        at: now,
                        limit: TIMER_LOOP_LIMIT,
                    });
                }
            }
            let ctx = Ctx {
                now,
                actor: system,
                directory: &dir,
            };
            let revision = revision + 1;
            let step = Step {
                kind: EventKind::Timer,
                actor: &system.id,
                timer: Some(&item.timer),
                input: &[],
                now,
            };
            let written = async {
                let kids = children(v, &wf, &out, before.as_deref(), ctx)?;
                write_effects(tx, v, item.record, &wf, &out, revision, &step).await?;
                write_children(tx, v, item.record, kids, &step).await
            }
            .await;
            if let Err(e) = written {
                tx.release(item.record, out.revert(&wf));
                return match e {
                    Error::Refused(r) => {
                        tracing::warn!(record = item.record, timer = %item.timer, code = r.code.as_str(), "timer spawn refused: {}", r.message);
                        Ok(Ran::Discarded)
                    }
                    e => Err(e),
                };
            }
            let cascades = std::mem::take(&mut out.cascades);
            tx.update(item.record, &wf, out.record, revision, now)
                .await?;
            run_cascades(tx, v, item.record, cascades, now).await?;
        }
        Taken::Spawn(p) => {
            // Only links change on this record: give it back first.
            tx.release(item.record, cur.record);
            let wf = match v.current(&p.workflow) {
                Ok(wf) => wf,
                Err(e) => {
                    tracing::warn!(record = item.record, "scheduled spawn dropped: {e}");
                    return Ok(Ran::Discarded);
                }
            };
            let dir = directory_if(tx, v.needs_directory(&wf)).await?;
            let ctx = Ctx {
                now,
                actor: system,
                directory: &dir,
            };
            let input: Vec<(String, Value)> = p
                .fields
                .iter()
                .map(|(k, j)| (k.clone(), Value::from_json(j)))
                .collect();
            let created = leadflow_engine::create(&wf, &input, ctx)
                .map_err(Error::from)
                .and_then(|out| Ok((children(v, &wf, &out, None, ctx)?, out)));
            let (kids, out) = match created {
                Ok(x) => x,
                Err(Error::Refused(r)) => {
                    tracing::warn!(
                        record = item.record,
                        code = r.code.as_str(),
                        "scheduled spawn refused: {}",
                        r.message
                    );
                    return Ok(Ran::Discarded);
                }
                Err(e) => return Err(e),
            };
            let id = tx.insert(&wf, out.record.clone(), now).await?;
            let step = Step {
                kind: EventKind::Spawn,
                actor: &system.id,
                timer: None,
                input: &[],
                now,
            };
            write_effects(tx, v, id, &wf, &out, 1, &step).await?;
            write_children(tx, v, id, kids, &step).await?;
            tx.link(id, &p.link, item.record).await?;
            tx.link(item.record, &p.backlink, id).await?;
        }
    }
    Ok(Ran::Fired)
}

/// Move record `req.record` to actor `to` (a bulk reassignment): the
/// engine's `reassign` step, written as a transition is (history event of
/// kind `bulk`, the record row; the actor loads follow the assignee through
/// the stores' triggers). `req.transition` is ignored.
pub(crate) async fn reassign<T: Tx>(
    tx: &mut T,
    req: &FireRequest<'_>,
    to: &str,
) -> Result<(), Error> {
    let cur = tx
        .lock(req.record)
        .await?
        .ok_or(Error::NotFound(req.record))?;
    let Current {
        wf,
        record,
        revision,
    } = cur;
    if let Some(v) = &req.visible {
        if !(v.0)(&stored(req.record, &wf, &record, revision, req.now)) {
            tx.release(req.record, record);
            return Err(Error::NotFound(req.record));
        }
    }
    let dir = match tx.directory().await {
        Ok(dir) => dir,
        Err(e) => {
            tx.release(req.record, record);
            return Err(e);
        }
    };
    let ctx = Ctx {
        now: req.now,
        actor: req.actor,
        directory: &dir,
    };
    let out = match leadflow_engine::reassign_owned(&wf, record, to, ctx) {
        Ok(out) => out,
        Err(r) => {
            tx.release(req.record, r.record);
            return Err(r.refusal.into());
        }
    };
    let revision = revision + 1;
    let step = Step {
        kind: EventKind::Bulk,
        actor: &req.actor.id,
        timer: None,
        input: &req.input,
        now: req.now,
    };
    if let Err(e) = tx.event_of(req.record, revision, &wf, &out, &step).await {
        tx.release(req.record, out.revert(&wf));
        return Err(e);
    }
    tx.update(req.record, &wf, out.record, revision, req.now)
        .await
}
