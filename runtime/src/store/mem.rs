//! The in-memory store: scenario replay and tests. One tenant, no IO.
//!
//! Fast by construction: records live in a `Vec` indexed by id, the engine
//! record is kept typed (no JSON on the hot path), and due timers sit in a
//! queue keyed by (due, seq) with lazy deletion ([`queue`]: per-hour buckets,
//! a heap for the hour reached): cancelling or re-arming only forgets the
//! arming in the record, and the queue entry is dropped when it surfaces.
//! Replay cost depends on the number of armings, never on the idle time
//! between them.
//!
//! Compact by construction too (a generated year keeps millions of rows):
//! events, history and outbox rows live in three store-wide `Vec`s, chained
//! per record (each row points to the record's previous one), with actor,
//! transition, field, template and recipient names interned as `u32`,
//! states as indices into the record's workflow, and history and input
//! values kept typed; they become [`Event`] / [`HistoryEntry`] /
//! [`OutboxMessage`] (strings, JSON) only when read. An event's field
//! changes are the next `changes` rows of the record's history chain. A transition borrows the engine record out of the
//! store instead of copying it ([`Tx::release`] gives it back when nothing
//! was written).

use crate::apply::{self, Current, DueItem, NewEvent, SpawnPayload, Step, Taken, Tx, Versions};
use crate::backend::*;
use chrono::{DateTime, Utc};
use leadflow_engine::eval::Outcome;
use leadflow_engine::{Actor, Period, Record, Value, Workflow, WorkflowSet};
use queue::{DueQueue, Entry};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use tokio::sync::Mutex;

mod queue;
mod work_queue;

/// An armed timer or scheduled spawn of a record: 32 bytes, the name
/// interned (scheduled spawns are named `spawn:<revision>.<n>`, so their
/// names are interned too) and the rare spawn payload boxed.
struct MemTimer {
    name: u32,
    due: DateTime<Utc>,
    seq: i64,
    spawn: Option<Box<SpawnPayload>>,
}

/// End of a per-record chain of rows.
const NONE: usize = usize::MAX;

/// No name (an event without transition or assignee, a creation's `from`).
const NO_NAME: u32 = u32::MAX;

/// An event's assignee is the previous event's (it did not change).
const SAME: u32 = u32::MAX - 1;

struct MemRecord {
    wf: Arc<Workflow>,
    rec: Record,
    revision: i64,
    updated_at: DateTime<Utc>,
    /// Index of the record's latest row in `State::history` (or NONE).
    last_history: usize,
    /// Index of the record's latest row in `State::events` (or NO_NAME).
    last_event: u32,
    timers: Vec<MemTimer>,
    links: Vec<Link>,
    /// Index of the record's latest row in `State::outbox` (or NONE).
    last_outbox: usize,
}

/// One field-level change, names interned, values typed.
struct HistoryRow {
    at: DateTime<Utc>,
    actor: u32,
    transition: u32,
    field: u32,
    old: Value,
    new: Value,
    /// The record's previous row (or NONE).
    prev: usize,
}

/// One event in 56 bytes: names interned, states as indices into the
/// record's workflow (a record keeps its workflow in this store), the
/// assignee only when it changed, the rare input in a side table.
struct EventRow {
    at: DateTime<Utc>,
    revision: u32,
    actor: u32,
    /// NO_NAME: none.
    transition: u32,
    /// State indices; NO_NAME: none (a creation's `from`).
    from: u32,
    to: u32,
    /// The assignee after the event: an interned name, NO_NAME for none,
    /// SAME for the previous event's.
    assignee: u32,
    /// How many history rows (the record's next ones) are its changes.
    changes: u32,
    /// Index into `State::inputs`; NO_NAME: no input.
    input: u32,
    /// The record's previous event (NO_NAME: none; a store holds far
    /// fewer than 2^32 events).
    prev: u32,
    kind: EventKind,
}

const _: () = assert!(std::mem::size_of::<EventRow>() <= 56);

/// One queued message; its id is its index + 1.
struct OutboxRow {
    record: RecordId,
    template: u32,
    /// Index into `State::recipients`.
    recipients: u32,
    /// The record's revision after the step that queued it.
    revision: i64,
    created_at: DateTime<Utc>,
    prev: usize,
}

/// FNV-1a: the interned names are short and not attacker-chosen.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Names (actors, transitions, fields, templates, recipients) as `u32`.
#[derive(Default)]
struct Names {
    list: Vec<String>,
    index: FastMap<String, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.list.len() as u32;
        self.list.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    fn get(&self, id: u32) -> &str {
        &self.list[id as usize]
    }

    /// The id of a name seen before.
    fn find(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
}

impl MemRecord {
    /// The actor this record adds load to, if any.
    fn open_assignee(&self) -> Option<&str> {
        apply::open_assignee(&self.wf, &self.rec)
    }
}

#[derive(Default)]
struct State {
    records: Vec<MemRecord>,
    queue: DueQueue,
    seq: i64,
    history: Vec<HistoryRow>,
    events: Vec<EventRow>,
    outbox: Vec<OutboxRow>,
    names: Names,
    /// Events' inputs, names interned, values typed.
    inputs: Vec<Box<[(u32, Value)]>>,
    /// Timer name -> interned `timer:<name>` (a timer event's actor).
    timer_actors: FastMap<String, u32>,
    /// Interned recipient lists (each a list of interned names).
    recipients: Vec<Vec<u32>>,
    recipient_index: FastMap<Vec<u32>, u32>,
    /// Key -> (request fingerprint, response); kept for the process's life.
    idem: HashMap<String, (String, StoredRecord)>,
    actors: Arc<Vec<Actor>>,
    actor_index: HashMap<String, usize>,
    /// Keep outbox payloads (scenarios that check rendered messages);
    /// row index -> payload.
    keep_payloads: bool,
    payloads: HashMap<usize, serde_json::Value>,
    /// Used action links: id -> (record, when).
    used_links: HashMap<String, (RecordId, DateTime<Utc>)>,
    /// Work queue leases (`mem/work_queue.rs`).
    leases: work_queue::Leases,
}

impl State {
    fn record(&self, id: RecordId) -> Option<&MemRecord> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.records.get(i))
    }

    fn record_mut(&mut self, id: RecordId) -> Result<&mut MemRecord, Error> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.records.get_mut(i))
            .ok_or(Error::NotFound(id))
    }

    fn adjust_load(&mut self, actor: Option<&str>, delta: i64) {
        if let Some(&i) = actor.and_then(|a| self.actor_index.get(a)) {
            let a = &mut Arc::make_mut(&mut self.actors)[i];
            a.load = (i64::from(a.load) + delta).max(0) as u32;
        }
    }

    fn push_input(&mut self, input: Box<[(u32, Value)]>) -> u32 {
        self.inputs.push(input);
        (self.inputs.len() - 1) as u32
    }

    fn recipient_list(&mut self, ids: &[u32]) -> u32 {
        if let Some(&i) = self.recipient_index.get(ids) {
            return i;
        }
        let i = self.recipients.len() as u32;
        self.recipients.push(ids.to_vec());
        self.recipient_index.insert(ids.to_vec(), i);
        i
    }

    fn push_outbox(
        &mut self,
        id: RecordId,
        template: u32,
        recipients: &[u32],
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let recipients = self.recipient_list(recipients);
        let n = self.outbox.len();
        let r = self.record_mut(id)?;
        let prev = std::mem::replace(&mut r.last_outbox, n);
        self.outbox.push(OutboxRow {
            record: id,
            template,
            recipients,
            revision,
            created_at: now,
            prev,
        });
        Ok(())
    }

    /// Indices of a record's rows in a chain, oldest first.
    fn chain(&self, mut last: usize, prev: impl Fn(usize) -> usize) -> Vec<usize> {
        let mut list = Vec::new();
        while last != NONE {
            list.push(last);
            last = prev(last);
        }
        list.reverse();
        list
    }

    /// The earliest live entry of the queue, dropping stale ones on the way.
    fn peek(&mut self) -> Option<DueItem> {
        while let Some(Entry { due, seq, index }) = self.queue.peek() {
            let record = RecordId::from(index) + 1;
            let live = self
                .record(record)
                .and_then(|r| r.timers.iter().find(|t| t.seq == seq));
            match live {
                Some(t) => {
                    return Some(DueItem {
                        record,
                        timer: self.names.get(t.name).to_string(),
                        due,
                        seq,
                    })
                }
                None => {
                    self.queue.pop();
                }
            }
        }
        None
    }
}

/// The in-memory backend, bound to one tenant.
pub struct MemBackend {
    versions: Versions,
    state: Mutex<State>,
    /// Scheduled report runs (`crate::kpi::schedule`).
    runs: std::sync::Mutex<crate::kpi::schedule::MemRuns>,
}

impl MemBackend {
    pub fn new(set: Arc<WorkflowSet>) -> MemBackend {
        MemBackend {
            versions: Versions::new(&set),
            state: Mutex::new(State::default()),
            runs: Default::default(),
        }
    }

    /// The scheduled report runs of this store.
    pub fn runs(&self) -> &std::sync::Mutex<crate::kpi::schedule::MemRuns> {
        &self.runs
    }

    /// Keep the payloads of the messages queued from now on (the store
    /// drops them by default: scenario replay does not need them unless it
    /// checks rendered messages).
    pub async fn keep_payloads(&self) {
        self.state.lock().await.keep_payloads = true;
    }

    /// Make an older workflow version runnable for records created with it.
    pub fn add_version(&mut self, wf: Arc<Workflow>) {
        self.versions.add(wf);
    }

    /// Hot reload: `set` becomes current for new records.
    pub fn set_workflows(&self, set: &WorkflowSet) {
        self.versions.publish(set);
    }

    /// Every workflow version this store can run (current and older).
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Create a record; only its id is returned (scenario replay: no
    /// [`StoredRecord`] is built). Same effects as [`Backend::create`].
    pub async fn create_id(&self, req: CreateRequest<'_>) -> Result<RecordId, Error> {
        let mut st = self.state.lock().await;
        apply::create_id(&mut MemTx::new(&mut st), &self.versions, &req).await
    }

    /// Fire a transition; nothing is returned (scenario replay: no
    /// [`StoredRecord`] is built). Same effects as [`Backend::fire`].
    pub async fn fire_only(&self, req: FireRequest<'_>) -> Result<(), Error> {
        let mut st = self.state.lock().await;
        apply::fire_only(&mut MemTx::new(&mut st), &self.versions, &req).await
    }
}

struct MemTx<'a> {
    st: &'a mut State,
    /// The record lent out by `lock` (its slot holds a stand-in with the
    /// same state and assignee until `update` or `release`).
    lent: Option<RecordId>,
}

impl<'a> MemTx<'a> {
    fn new(st: &'a mut State) -> MemTx<'a> {
        MemTx { st, lent: None }
    }
}

impl Tx for MemTx<'_> {
    fn keeps_payloads(&self) -> bool {
        self.st.keep_payloads
    }

    async fn timer_streak(
        &mut self,
        id: RecordId,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, Error> {
        let mut e = self.st.record_mut(id)?.last_event;
        let mut n = 0;
        while e != NO_NAME && n < limit {
            let row = &self.st.events[e as usize];
            if row.kind != EventKind::Timer || row.at != at {
                break;
            }
            n += 1;
            e = row.prev;
        }
        Ok(n)
    }

    async fn idem_get(&mut self, key: &str) -> Result<Option<(String, StoredRecord)>, Error> {
        Ok(self.st.idem.get(key).cloned())
    }

    async fn idem_put(&mut self, key: Idempotency<'_>, rec: &StoredRecord) -> Result<bool, Error> {
        Ok(self
            .st
            .idem
            .insert(key.key.to_string(), (key.request.to_string(), rec.clone()))
            .is_none())
    }

    async fn lock(&mut self, id: RecordId) -> Result<Option<Current>, Error> {
        let lend = self.lent.is_none();
        let Ok(r) = self.st.record_mut(id) else {
            return Ok(None);
        };
        let record = if lend {
            // Move the record out instead of cloning it; the stand-in keeps
            // what load accounting reads (state, assignee).
            let stand_in = Record {
                state: r.rec.state,
                fields: Vec::new(),
                assignee: r.rec.assignee.clone(),
                created_at: r.rec.created_at,
                entered_at: r.rec.entered_at,
            };
            self.lent = Some(id);
            std::mem::replace(&mut r.rec, stand_in)
        } else {
            r.rec.clone()
        };
        Ok(Some(Current {
            wf: r.wf.clone(),
            record,
            revision: r.revision,
        }))
    }

    fn release(&mut self, id: RecordId, record: Record) {
        if self.lent == Some(id) {
            self.lent = None;
            if let Ok(r) = self.st.record_mut(id) {
                r.rec = record;
            }
        }
    }

    async fn directory(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        Ok(self.st.actors.clone())
    }

    async fn insert(
        &mut self,
        wf: &Arc<Workflow>,
        rec: Record,
        now: DateTime<Utc>,
    ) -> Result<RecordId, Error> {
        let r = MemRecord {
            wf: wf.clone(),
            rec,
            revision: 1,
            updated_at: now,
            last_history: NONE,
            last_event: NO_NAME,
            timers: Vec::new(),
            links: Vec::new(),
            last_outbox: NONE,
        };
        let load = r.open_assignee().map(str::to_string);
        self.st.records.push(r);
        self.st.adjust_load(load.as_deref(), 1);
        Ok(self.st.records.len() as RecordId)
    }

    async fn update(
        &mut self,
        id: RecordId,
        wf: &Arc<Workflow>,
        rec: Record,
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if self.lent == Some(id) {
            self.lent = None;
        }
        let r = self.st.record_mut(id)?;
        let changed = r.rec.assignee != rec.assignee
            || apply::is_final(&r.wf, &r.rec) != apply::is_final(wf, &rec);
        let before = changed.then(|| r.open_assignee().map(str::to_string));
        r.wf = wf.clone();
        r.rec = rec;
        r.revision = revision;
        r.updated_at = now;
        if let Some(before) = before {
            let after = r.open_assignee().map(str::to_string);
            if before != after {
                self.st.adjust_load(before.as_deref(), -1);
                self.st.adjust_load(after.as_deref(), 1);
            }
        }
        Ok(())
    }

    async fn event(
        &mut self,
        id: RecordId,
        revision: i64,
        event: NewEvent,
        rows: Vec<HistoryEntry>,
    ) -> Result<(), Error> {
        // Not on the executor's path (`event_of` is): values come back
        // through `Value::from_json`, exact for the JSON `Value::to_json`
        // produces (no floats, no objects).
        let wf = self.st.record_mut(id)?.wf.clone();
        let state = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| wf.state(s))
                .map_or(NO_NAME, |i| i as u32)
        };
        let names = &mut self.st.names;
        let input = match event.input.as_ref().and_then(|i| i.as_object()) {
            None => NO_NAME,
            Some(m) => {
                let input = m
                    .iter()
                    .map(|(k, v)| (names.id(k), Value::from_json(v)))
                    .collect();
                self.st.push_input(input)
            }
        };
        let names = &mut self.st.names;
        let row = EventRow {
            at: event.at,
            revision: u32::try_from(revision).unwrap_or(u32::MAX),
            actor: names.id(&event.actor),
            transition: event.transition.as_deref().map_or(NO_NAME, |t| names.id(t)),
            from: state(&event.from),
            to: state(&Some(event.to)),
            assignee: event.assignee.as_deref().map_or(NO_NAME, |a| names.id(a)),
            changes: rows.len() as u32,
            input,
            prev: NO_NAME,
            kind: event.kind,
        };
        self.push_event(id, row)?;
        for h in rows {
            let row = HistoryRow {
                at: h.at,
                actor: self.st.names.id(&h.actor),
                transition: self.st.names.id(&h.transition),
                field: self.st.names.id(&h.field),
                old: Value::from_json(&h.old),
                new: Value::from_json(&h.new),
                prev: NONE,
            };
            self.push_history(id, row)?;
        }
        Ok(())
    }

    async fn event_of(
        &mut self,
        id: RecordId,
        revision: i64,
        _wf: &Workflow,
        out: &Outcome,
        step: &Step<'_>,
    ) -> Result<(), Error> {
        let now = step.now;
        let tracked = out.changes.iter().filter(|c| c.tracked).count();
        let st = &mut *self.st;
        let transition = out
            .transition
            .as_deref()
            .map_or(NO_NAME, |t| st.names.id(t));
        let by = match step.timer {
            None => st.names.id(step.actor),
            Some(t) => match st.timer_actors.get(t) {
                Some(&a) => a,
                None => {
                    let a = st.names.id(&format!("timer:{t}"));
                    st.timer_actors.insert(t.to_string(), a);
                    a
                }
            },
        };
        let assignee = match &out.assignee {
            None => SAME,
            Some((_, None)) => NO_NAME,
            Some((_, Some(a))) => st.names.id(a),
        };
        let input = match step.input.is_empty() {
            true => NO_NAME,
            false => {
                let input = step
                    .input
                    .iter()
                    .map(|(k, v)| (st.names.id(k), v.clone()))
                    .collect();
                st.push_input(input)
            }
        };
        let r = st.record_mut(id)?;
        // A step on an existing record runs before `update`: the slot still
        // holds the record as it was (or its stand-in), in its old state.
        let from = match out.from_state {
            None => NO_NAME,
            Some(_) => r.rec.state as u32,
        };
        debug_assert_eq!(
            out.from_state.as_deref(),
            (from != NO_NAME).then(|| r.wf.state_name(from as usize))
        );
        let row = EventRow {
            at: now,
            revision: u32::try_from(revision).unwrap_or(u32::MAX),
            actor: by,
            transition,
            from,
            to: out.record.state as u32,
            assignee,
            changes: tracked as u32,
            input,
            prev: NO_NAME,
            kind: step.kind,
        };
        self.push_event(id, row)?;
        if tracked == 0 {
            return Ok(());
        }
        // Field rows keep the engine's actor (`system` for a timer) and the
        // outcome's label: its transition, `timer:<name>` (the event's
        // actor) for a timer's effects, `create` on creation.
        let st = &mut *self.st;
        let actor = match step.timer {
            None => by,
            Some(_) => st.names.id(step.actor),
        };
        let label = match (&out.transition, &out.timer) {
            (Some(_), _) => transition,
            (None, Some(_)) if step.timer.is_some() => by,
            _ => st.names.id(&apply::label(out)),
        };
        for c in out.changes.iter().filter(|c| c.tracked) {
            let row = HistoryRow {
                at: now,
                actor,
                transition: label,
                field: self.st.names.id(&c.field),
                old: c.old.clone(),
                new: c.new.clone(),
                prev: NONE,
            };
            self.push_history(id, row)?;
        }
        Ok(())
    }

    async fn arm(
        &mut self,
        id: RecordId,
        timer: &str,
        due: DateTime<Utc>,
        _revision: i64,
        spawn: Option<SpawnPayload>,
    ) -> Result<(), Error> {
        self.st.seq += 1;
        let seq = self.st.seq;
        let index = u32::try_from(id - 1).map_err(|_| Error::NotFound(id))?;
        let name = self.st.names.id(timer);
        let spawn = spawn.map(Box::new);
        let r = self.st.record_mut(id)?;
        match r.timers.iter_mut().find(|t| t.name == name) {
            Some(t) => {
                t.due = due;
                t.seq = seq;
                t.spawn = spawn;
            }
            None => r.timers.push(MemTimer {
                name,
                due,
                seq,
                spawn,
            }),
        }
        self.st.queue.push(Entry { due, seq, index });
        Ok(())
    }

    async fn cancel(&mut self, id: RecordId, timer: &str) -> Result<(), Error> {
        let name = self.st.names.find(timer);
        let r = self.st.record_mut(id)?;
        if let Some(name) = name {
            r.timers.retain(|t| t.name != name);
        }
        Ok(())
    }

    async fn outbox(
        &mut self,
        id: RecordId,
        template: &str,
        recipients: Vec<String>,
        _payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let template = self.st.names.id(template);
        let ids: Vec<u32> = recipients.iter().map(|r| self.st.names.id(r)).collect();
        self.st.push_outbox(id, template, &ids, 0, now)
    }

    async fn notify(
        &mut self,
        id: RecordId,
        template: &str,
        to: &crate::notify::Addressee,
        revision: i64,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let template = self.st.names.id(template);
        let to = self.st.names.id(&to.id);
        if self.st.keep_payloads {
            let n = self.st.outbox.len();
            self.st.payloads.insert(n, payload);
        }
        self.st.push_outbox(id, template, &[to], revision, now)
    }

    async fn link(&mut self, from: RecordId, name: &str, to: RecordId) -> Result<(), Error> {
        self.st.record_mut(from)?.links.push(Link {
            from,
            name: name.to_string(),
            to,
        });
        Ok(())
    }

    async fn linked(&mut self, from: RecordId, name: &str) -> Result<Vec<RecordId>, Error> {
        let mut ids: Vec<RecordId> = self
            .st
            .record(from)
            .map(|r| {
                r.links
                    .iter()
                    .filter(|l| l.name == name)
                    .map(|l| l.to)
                    .collect()
            })
            .unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    async fn take(&mut self, item: &DueItem, _now: DateTime<Utc>) -> Result<Option<Taken>, Error> {
        let r = self.st.record_mut(item.record)?;
        let Some(i) = r.timers.iter().position(|t| t.seq == item.seq) else {
            return Ok(None);
        };
        let t = r.timers.swap_remove(i);
        Ok(Some(match t.spawn {
            Some(p) => Taken::Spawn(*p),
            None => Taken::Timer,
        }))
    }
}

impl MemTx<'_> {
    fn push_event(&mut self, id: RecordId, mut row: EventRow) -> Result<(), Error> {
        let n = u32::try_from(self.st.events.len())
            .ok()
            .filter(|&n| n != NO_NAME)
            .ok_or_else(|| Error::storage("the memory store holds 2^32 - 1 events at most"))?;
        let r = self.st.record_mut(id)?;
        row.prev = std::mem::replace(&mut r.last_event, n);
        self.st.events.push(row);
        Ok(())
    }

    fn push_history(&mut self, id: RecordId, mut row: HistoryRow) -> Result<(), Error> {
        let n = self.st.history.len();
        let r = self.st.record_mut(id)?;
        row.prev = std::mem::replace(&mut r.last_history, n);
        self.st.history.push(row);
        Ok(())
    }
}

impl Backend for MemBackend {
    async fn select(&self, filter: &Filter<'_>) -> Result<Vec<RecordId>, Error> {
        let st = self.state.lock().await;
        let mut ids = Vec::new();
        for (i, r) in st.records.iter().enumerate() {
            if r.wf.id != filter.workflow
                || (!filter.include_final && apply::is_final(&r.wf, &r.rec))
                || filter.idle_since.is_some_and(|t| r.updated_at >= t)
            {
                continue;
            }
            let state = r.wf.state_name(r.rec.state);
            let fields_match =
                filter.fields.is_empty() || filter.matches(state, &r.rec.fields_json(&r.wf));
            if fields_match && (filter.states.is_empty() || filter.states.contains(&state)) {
                ids.push(i as RecordId + 1);
            }
        }
        Ok(ids)
    }

    async fn set_actors(&self, actors: Vec<Actor>) -> Result<(), Error> {
        let mut st = self.state.lock().await;
        let mut load: HashMap<&str, u32> = HashMap::new();
        for r in &st.records {
            if let Some(a) = r.open_assignee() {
                *load.entry(a).or_default() += 1;
            }
        }
        let actors: Vec<Actor> = actors
            .into_iter()
            .map(|a| Actor {
                load: load.get(a.id.as_str()).copied().unwrap_or(0),
                ..a
            })
            .collect();
        st.actor_index = actors
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        st.actors = Arc::new(actors);
        Ok(())
    }

    async fn set_unavailable(&self, actor: &str, periods: &[Period]) -> Result<bool, Error> {
        let mut st = self.state.lock().await;
        let Some(&i) = st.actor_index.get(actor) else {
            return Ok(false);
        };
        Arc::make_mut(&mut st.actors)[i].unavailable = periods.to_vec();
        Ok(true)
    }

    async fn actors(&self) -> Result<Vec<Actor>, Error> {
        Ok(self.state.lock().await.actors.as_ref().clone())
    }

    async fn create(&self, req: CreateRequest<'_>) -> Result<StoredRecord, Error> {
        let mut st = self.state.lock().await;
        apply::create(&mut MemTx::new(&mut st), &self.versions, &req).await
    }

    async fn fire(&self, req: FireRequest<'_>) -> Result<StoredRecord, Error> {
        let mut st = self.state.lock().await;
        apply::fire(&mut MemTx::new(&mut st), &self.versions, &req).await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(self.state.lock().await.peek().map(|d| d.due))
    }

    async fn run_due(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut st = self.state.lock().await;
        let mut ran = 0;
        while let Some(item) = st.peek() {
            if item.due > now {
                break;
            }
            st.queue.pop();
            if apply::run_item(&mut MemTx::new(&mut st), &self.versions, &item).await?
                == apply::Ran::Fired
            {
                ran += 1;
            }
        }
        Ok(ran)
    }

    async fn get(&self, id: RecordId) -> Result<Option<StoredRecord>, Error> {
        let st = self.state.lock().await;
        Ok(st
            .record(id)
            .map(|r| apply::stored(id, &r.wf, &r.rec, r.revision, r.updated_at)))
    }

    async fn history(&self, id: RecordId) -> Result<Vec<HistoryEntry>, Error> {
        let st = self.state.lock().await;
        let Some(r) = st.record(id) else {
            return Ok(Vec::new());
        };
        Ok(st
            .chain(r.last_history, |i| st.history[i].prev)
            .into_iter()
            .map(|i| {
                let h = &st.history[i];
                HistoryEntry {
                    at: h.at,
                    actor: st.names.get(h.actor).to_string(),
                    transition: st.names.get(h.transition).to_string(),
                    field: st.names.get(h.field).to_string(),
                    old: h.old.to_json(),
                    new: h.new.to_json(),
                }
            })
            .collect())
    }

    async fn events(&self, id: RecordId) -> Result<Vec<Event>, Error> {
        let st = self.state.lock().await;
        let Some(r) = st.record(id) else {
            return Ok(Vec::new());
        };
        let name = |i: u32| (i != NO_NAME).then(|| st.names.get(i).to_string());
        let state = |i: u32| (i != NO_NAME).then(|| r.wf.state_name(i as usize).to_string());
        let mut changes = st.chain(r.last_history, |i| st.history[i].prev).into_iter();
        let mut assignee = None;
        let mut out = Vec::new();
        let last = match r.last_event {
            NO_NAME => NONE,
            n => n as usize,
        };
        let prev = |i: usize| match st.events[i].prev {
            NO_NAME => NONE,
            n => n as usize,
        };
        for i in st.chain(last, prev) {
            let e = &st.events[i];
            if e.assignee != SAME {
                assignee = name(e.assignee);
            }
            out.push(Event {
                record: id,
                revision: i64::from(e.revision),
                workflow: r.wf.id.clone(),
                at: e.at,
                kind: e.kind,
                actor: st.names.get(e.actor).to_string(),
                transition: name(e.transition),
                from: state(e.from),
                to: state(e.to),
                assignee: assignee.clone(),
                input: (e.input != NO_NAME).then(|| {
                    st.inputs[e.input as usize]
                        .iter()
                        .map(|(k, v)| (st.names.get(*k).to_string(), v.to_json()))
                        .collect()
                }),
                changes: changes
                    .by_ref()
                    .take(e.changes as usize)
                    .map(|h| {
                        let h = &st.history[h];
                        Change {
                            field: st.names.get(h.field).to_string(),
                            old: h.old.to_json(),
                            new: h.new.to_json(),
                        }
                    })
                    .collect(),
            });
        }
        Ok(out)
    }

    async fn timers(&self, id: RecordId) -> Result<Vec<ArmedTimer>, Error> {
        let st = self.state.lock().await;
        let mut list: Vec<ArmedTimer> = st
            .record(id)
            .map(|r| {
                r.timers
                    .iter()
                    .map(|t| ArmedTimer {
                        record: id,
                        timer: st.names.get(t.name).to_string(),
                        due: t.due,
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by(|a, b| (a.due, &a.timer).cmp(&(b.due, &b.timer)));
        Ok(list)
    }

    async fn link_used(&self, link: &str) -> Result<bool, Error> {
        Ok(self.state.lock().await.used_links.contains_key(link))
    }

    async fn use_link(
        &self,
        link: &str,
        record: RecordId,
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut st = self.state.lock().await;
        if st.used_links.contains_key(link) {
            return Ok(false);
        }
        st.used_links.insert(link.to_string(), (record, at));
        Ok(true)
    }

    async fn outbox(&self, id: RecordId) -> Result<Vec<OutboxMessage>, Error> {
        let st = self.state.lock().await;
        let Some(r) = st.record(id) else {
            return Ok(Vec::new());
        };
        Ok(st
            .chain(r.last_outbox, |i| st.outbox[i].prev)
            .into_iter()
            .map(|i| {
                let o = &st.outbox[i];
                OutboxMessage {
                    id: i as i64 + 1,
                    record: o.record,
                    template: st.names.get(o.template).to_string(),
                    recipients: st.recipients[o.recipients as usize]
                        .iter()
                        .map(|&n| st.names.get(n).to_string())
                        .collect(),
                    revision: o.revision,
                    created_at: o.created_at,
                    delivered_at: None,
                    attempts: 0,
                    last_error: None,
                    failed_at: None,
                    note: None,
                    payload: st.payloads.get(&i).cloned(),
                }
            })
            .collect())
    }

    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error> {
        let st = self.state.lock().await;
        Ok(st.record(id).map(|r| r.links.clone()).unwrap_or_default())
    }
}
