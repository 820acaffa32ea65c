//! The in-memory store: scenario replay and tests. One tenant, no IO.
//!
//! Fast by construction: records live in a `Vec` indexed by id, the engine
//! record is kept typed (no JSON on the hot path), and due timers sit in a
//! binary heap keyed by (due, seq) with lazy deletion: cancelling or
//! re-arming only forgets the arming in the record, and the heap entry is
//! dropped when it surfaces. Replay cost depends on the number of armings,
//! never on the idle time between them.

use crate::apply::{self, Current, DueItem, SpawnPayload, Taken, Tx, Versions};
use crate::backend::*;
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Record, Workflow, WorkflowSet};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use tokio::sync::Mutex;

struct MemTimer {
    name: String,
    due: DateTime<Utc>,
    seq: i64,
    spawn: Option<SpawnPayload>,
}

struct MemRecord {
    wf: Arc<Workflow>,
    rec: Record,
    revision: i64,
    updated_at: DateTime<Utc>,
    history: Vec<HistoryEntry>,
    timers: Vec<MemTimer>,
    links: Vec<Link>,
    outbox: Vec<usize>,
}

impl MemRecord {
    /// The actor this record adds load to, if any.
    fn open_assignee(&self) -> Option<&str> {
        match apply::is_final(&self.wf, &self.rec) {
            true => None,
            false => self.rec.assignee.as_deref(),
        }
    }
}

#[derive(Default)]
struct State {
    records: Vec<MemRecord>,
    queue: BinaryHeap<Reverse<(DateTime<Utc>, i64, RecordId)>>,
    seq: i64,
    outbox: Vec<OutboxMessage>,
    idem: HashMap<String, StoredRecord>,
    actors: Arc<Vec<Actor>>,
    actor_index: HashMap<String, usize>,
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

    /// The earliest live entry of the queue, dropping stale ones on the way.
    fn peek(&mut self) -> Option<DueItem> {
        while let Some(&Reverse((due, seq, record))) = self.queue.peek() {
            let live = self
                .record(record)
                .and_then(|r| r.timers.iter().find(|t| t.seq == seq));
            match live {
                Some(t) => {
                    return Some(DueItem {
                        record,
                        timer: t.name.clone(),
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
}

impl MemBackend {
    pub fn new(set: Arc<WorkflowSet>) -> MemBackend {
        MemBackend {
            versions: Versions::new(&set),
            state: Mutex::new(State::default()),
        }
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
}

struct MemTx<'a>(&'a mut State);

impl Tx for MemTx<'_> {
    fn keeps_payloads(&self) -> bool {
        false
    }

    async fn idem_get(&mut self, key: &str) -> Result<Option<StoredRecord>, Error> {
        Ok(self.0.idem.get(key).cloned())
    }

    async fn idem_put(&mut self, key: &str, rec: &StoredRecord) -> Result<bool, Error> {
        Ok(self.0.idem.insert(key.to_string(), rec.clone()).is_none())
    }

    async fn lock(&mut self, id: RecordId) -> Result<Option<Current>, Error> {
        Ok(self.0.record(id).map(|r| Current {
            wf: r.wf.clone(),
            record: r.rec.clone(),
            revision: r.revision,
        }))
    }

    async fn directory(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        Ok(self.0.actors.clone())
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
            history: Vec::new(),
            timers: Vec::new(),
            links: Vec::new(),
            outbox: Vec::new(),
        };
        let load = r.open_assignee().map(str::to_string);
        self.0.records.push(r);
        self.0.adjust_load(load.as_deref(), 1);
        Ok(self.0.records.len() as RecordId)
    }

    async fn update(
        &mut self,
        id: RecordId,
        wf: &Arc<Workflow>,
        rec: Record,
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let r = self.0.record_mut(id)?;
        let before = r.open_assignee().map(str::to_string);
        r.wf = wf.clone();
        r.rec = rec;
        r.revision = revision;
        r.updated_at = now;
        let after = r.open_assignee().map(str::to_string);
        if before != after {
            self.0.adjust_load(before.as_deref(), -1);
            self.0.adjust_load(after.as_deref(), 1);
        }
        Ok(())
    }

    async fn history(
        &mut self,
        id: RecordId,
        _revision: i64,
        rows: Vec<HistoryEntry>,
    ) -> Result<(), Error> {
        self.0.record_mut(id)?.history.extend(rows);
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
        self.0.seq += 1;
        let seq = self.0.seq;
        let r = self.0.record_mut(id)?;
        match r.timers.iter_mut().find(|t| t.name == timer) {
            Some(t) => {
                t.due = due;
                t.seq = seq;
                t.spawn = spawn;
            }
            None => r.timers.push(MemTimer {
                name: timer.to_string(),
                due,
                seq,
                spawn,
            }),
        }
        self.0.queue.push(Reverse((due, seq, id)));
        Ok(())
    }

    async fn cancel(&mut self, id: RecordId, timer: &str) -> Result<(), Error> {
        self.0.record_mut(id)?.timers.retain(|t| t.name != timer);
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
        let n = self.0.outbox.len();
        self.0.outbox.push(OutboxMessage {
            id: n as i64 + 1,
            record: id,
            template: template.to_string(),
            recipients,
            created_at: now,
            delivered_at: None,
        });
        self.0.record_mut(id)?.outbox.push(n);
        Ok(())
    }

    async fn link(&mut self, from: RecordId, name: &str, to: RecordId) -> Result<(), Error> {
        self.0.record_mut(from)?.links.push(Link {
            from,
            name: name.to_string(),
            to,
        });
        Ok(())
    }

    async fn take(&mut self, item: &DueItem, _now: DateTime<Utc>) -> Result<Option<Taken>, Error> {
        let r = self.0.record_mut(item.record)?;
        let Some(i) = r.timers.iter().position(|t| t.seq == item.seq) else {
            return Ok(None);
        };
        let t = r.timers.swap_remove(i);
        Ok(Some(match t.spawn {
            Some(p) => Taken::Spawn(p),
            None => Taken::Timer,
        }))
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

    async fn actors(&self) -> Result<Vec<Actor>, Error> {
        Ok(self.state.lock().await.actors.as_ref().clone())
    }

    async fn create(&self, req: CreateRequest<'_>) -> Result<StoredRecord, Error> {
        let mut st = self.state.lock().await;
        apply::create(&mut MemTx(&mut st), &self.versions, &req).await
    }

    async fn fire(&self, req: FireRequest<'_>) -> Result<StoredRecord, Error> {
        let mut st = self.state.lock().await;
        apply::fire(&mut MemTx(&mut st), &self.versions, &req).await
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
            if apply::run_item(&mut MemTx(&mut st), &self.versions, &item).await?
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
        Ok(st.record(id).map(|r| r.history.clone()).unwrap_or_default())
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
                        timer: t.name.clone(),
                        due: t.due,
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by(|a, b| (a.due, &a.timer).cmp(&(b.due, &b.timer)));
        Ok(list)
    }

    async fn outbox(&self, id: RecordId) -> Result<Vec<OutboxMessage>, Error> {
        let st = self.state.lock().await;
        Ok(st
            .record(id)
            .map(|r| r.outbox.iter().map(|&i| st.outbox[i].clone()).collect())
            .unwrap_or_default())
    }

    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error> {
        let st = self.state.lock().await;
        Ok(st.record(id).map(|r| r.links.clone()).unwrap_or_default())
    }
}
