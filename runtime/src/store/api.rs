//! The one storage interface the runtime needs. Three implementations: in
//! memory (scenario replay), SQLite (embedded default) and PostgreSQL
//! (production). One conformance suite (`runtime/tests/it/conformance.rs`) runs against
//! all three, and `leadflow test --database-url` replays scenarios through
//! any of them with the same results.
//!
//! A backend is bound to one tenant. Every method that changes something
//! executes one engine `Outcome` atomically: record, history, timers,
//! outbox, spawns and links commit together or not at all.

use crate::apply::{DueItem, Ran};
use crate::outbox::{Mark, Pending};
use crate::wake::Wakeups;
use crate::worker::{Failed, ParkedTimer, Retry};
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Period, Refusal, Value};
use serde::{Deserialize, Serialize};

pub type RecordId = i64;

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub id: RecordId,
    pub workflow: String,
    /// Content hash of the workflow version the record runs on.
    pub version: String,
    pub state: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub assignee: Option<String>,
    /// Starts at 1, +1 per committed change.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub entered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One field-level change (ASLM-11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// Transition name, `timer:<name>` for timer effects, `create` on creation.
    pub transition: String,
    pub field: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// What caused an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A record created by a caller (API, CLI, scenario).
    Create,
    /// A record created by another record's `spawn` (at once or scheduled).
    Spawn,
    /// A transition fired by a caller.
    Transition,
    /// A transition fired by a bulk operation (`fire_many`, `close_idle`).
    Bulk,
    /// A timer that fired (its transition, or its effects).
    Timer,
    /// `leadflow migrate` moved the record to another workflow version.
    Migrate,
    /// Field rows written before events existed (migration: one event per
    /// record revision that had field rows; from and to unknown).
    Legacy,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Create,
        EventKind::Spawn,
        EventKind::Transition,
        EventKind::Bulk,
        EventKind::Timer,
        EventKind::Migrate,
        EventKind::Legacy,
    ];

    /// The name stored in the `kind` column and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Create => "create",
            EventKind::Spawn => "spawn",
            EventKind::Transition => "transition",
            EventKind::Bulk => "bulk",
            EventKind::Timer => "timer",
            EventKind::Migrate => "migrate",
            EventKind::Legacy => "legacy",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One field change of an [`Event`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// One committed change of a record: every create, spawn, transition, bulk
/// operation, timer firing and version move writes exactly one, for the
/// revision it produced, with its tracked field changes (the history rows
/// of the same record and revision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub record: RecordId,
    /// The record's revision after the event (1 for a creation).
    pub revision: i64,
    pub workflow: String,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// The actor id; `timer:<name>` for a timer firing (and what its spawns
    /// create); `system` for scheduled spawns and system bulk operations;
    /// `migrate` for a version move.
    pub actor: String,
    /// The transition fired (a timer's too); `None` for a creation, a
    /// timer running effects, a move. On a legacy event: the label its
    /// field rows were written with (a transition, `create`,
    /// `timer:<name>` or `migrate`).
    pub transition: Option<String>,
    /// The state before (`None` for a creation and a legacy event).
    pub from: Option<String>,
    /// The state after (`None` for a legacy event).
    pub to: Option<String>,
    /// The record's assignee after the event (`None` on a legacy event:
    /// unknown). An assignment shows as a change of it between events.
    pub assignee: Option<String>,
    /// The input the caller gave (field name -> value, stored as fields
    /// are); `None` when there was none.
    pub input: Option<serde_json::Map<String, serde_json::Value>>,
    /// Tracked field changes, in field order.
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub record: RecordId,
    pub template: String,
    /// The row's recipient (one per row; rows written before recipients
    /// were resolved may hold several): an actor id, `customer`, or an
    /// address.
    pub recipients: Vec<String>,
    /// The record's revision after the step that queued it (0: unknown,
    /// an older row): the rows of one `notify` share it.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Delivery attempts so far.
    #[serde(default)]
    pub attempts: i32,
    /// The last failure (`E_TEMPLATE_RENDER: ...`, `E_SINK_ADDRESS: ...`).
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the dispatcher gave up on it (dead letter): never retried.
    #[serde(default)]
    pub failed_at: Option<DateTime<Utc>>,
    /// What was noticed on the way (the language a template fell back to).
    #[serde(default)]
    pub note: Option<String>,
    /// The row's payload (what its recipient may see); `None` where the
    /// store keeps none (the memory store, unless asked).
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmedTimer {
    pub record: RecordId,
    pub timer: String,
    pub due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub from: RecordId,
    pub name: String,
    pub to: RecordId,
}

/// What went wrong. Refusals carry the engine's stable codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("revision conflict: expected {expected}, the record is at {actual}")]
    Conflict { expected: i64, actual: i64 },
    #[error("record {0} not found")]
    NotFound(RecordId),
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    #[error("storage error: {0}")]
    Storage(#[from] crate::error::StoreError),
    /// A transition's spawns (with their own spawns) exceeded the cap: the
    /// whole transition is refused, nothing is written.
    #[error("more than {limit} records spawned by one transition")]
    SpawnLimit { limit: usize },
    /// A record's timers fired `limit` times at one instant, each arming the
    /// next (a zero-delay timer cycle): the next firing is refused.
    #[error("timer `{timer}` of record {record} would fire for the {limit}th time at {at}, each firing arming the next at the same instant (a zero-delay timer cycle)")]
    TimerLoop {
        record: RecordId,
        timer: String,
        at: DateTime<Utc>,
        limit: usize,
    },
    /// A record runs on a version this process has not loaded and could not
    /// load from its snapshot.
    #[error("workflow `{workflow}` version {hash} is not loaded (records stay on the version they were created with)")]
    VersionNotLoaded { workflow: String, hash: String },
    /// A concurrent request with the same idempotency key committed first.
    /// Stores answer with that request's stored result instead, so callers
    /// never see this.
    #[error("idempotency key `{}` was used concurrently", .0.key)]
    IdempotencyRace(IdempotencyOwned),
    /// The idempotency key was first used with another request (another
    /// method, path or body): nothing was done.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
}

/// How long an idempotency key is kept: within it a retry replays the first
/// result (or is refused as a mismatch); after it the key is forgotten (a
/// reuse is a new request) and its row is deleted by a later keyed write.
pub const IDEMPOTENCY_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// An idempotency key and the fingerprint of the request that carries it
/// (the HTTP layer hashes method, path and body). A key seen before with the
/// same fingerprint replays the first result; with another fingerprint it
/// is [`Error::IdempotencyMismatch`].
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    /// Already scoped by the caller (the HTTP layer prefixes the API key id).
    pub key: &'a str,
    pub request: &'a str,
}

/// [`Idempotency`] with owned parts (queued requests, race recovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyOwned {
    pub key: String,
    pub request: String,
}

impl IdempotencyOwned {
    pub fn borrow(&self) -> Idempotency<'_> {
        Idempotency {
            key: &self.key,
            request: &self.request,
        }
    }
}

impl Idempotency<'_> {
    pub fn owned(self) -> IdempotencyOwned {
        IdempotencyOwned {
            key: self.key.to_string(),
            request: self.request.to_string(),
        }
    }
}

impl Error {
    /// A storage failure from a message (no database error behind it).
    pub fn storage(message: impl Into<String>) -> Error {
        Error::Storage(crate::error::StoreError::other(message))
    }

    /// Stable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused(r) => r.code.as_str(),
            Error::Conflict { .. } => "E_CONFLICT",
            Error::NotFound(_) => "E_NOT_FOUND",
            Error::UnknownWorkflow(_) => "E_UNKNOWN_WORKFLOW",
            Error::Storage(e) if e.is_retryable() => "E_UNAVAILABLE",
            Error::SpawnLimit { .. } => "E_SPAWN_LIMIT",
            Error::TimerLoop { .. } => "E_TIMER_LOOP",
            Error::VersionNotLoaded { .. } => "E_VERSION_NOT_LOADED",
            Error::Storage(_) | Error::IdempotencyRace(_) => "E_STORAGE",
            Error::IdempotencyMismatch => "E_IDEMPOTENCY_MISMATCH",
        }
    }
}

/// A condition the record must meet, tested on its locked current row
/// before anything else (the HTTP daemon's visibility rule for actor-bound
/// callers). A record that fails it answers [`Error::NotFound`], exactly as
/// a record that does not exist, so nothing leaks.
#[derive(Clone)]
pub struct Visible(pub std::sync::Arc<dyn Fn(&StoredRecord) -> bool + Send + Sync>);

impl std::fmt::Debug for Visible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Visible(..)")
    }
}

/// A request to change a record.
#[derive(Debug, Clone)]
pub struct FireRequest<'a> {
    pub record: RecordId,
    pub transition: &'a str,
    pub input: Vec<(String, Value)>,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    /// If set, a different current revision is a conflict and changes nothing.
    pub expected_revision: Option<i64>,
    /// If set and seen before with the same request, the first result is
    /// returned and nothing fires; with another request, nothing fires
    /// either: [`Error::IdempotencyMismatch`].
    pub idempotency_key: Option<Idempotency<'a>>,
    /// If set, a record that fails it is "not found" (see [`Visible`]).
    pub visible: Option<Visible>,
    /// Part of a bulk operation: the event's kind is [`EventKind::Bulk`].
    pub bulk: bool,
}

#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub workflow: &'a str,
    pub input: Vec<(String, Value)>,
    pub actor: &'a Actor,
    pub now: DateTime<Utc>,
    /// As in [`FireRequest`].
    pub idempotency_key: Option<Idempotency<'a>>,
}

/// Which records a bulk operation applies to (SOC-8, SOC-9). Only records
/// in non-final states are ever selected.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub workflow: &'a str,
    /// Empty: every non-final state.
    pub states: Vec<&'a str>,
    /// Field equalities (JSON values as stored).
    pub fields: Vec<(String, serde_json::Value)>,
    /// Only records not changed since this instant (idle ones).
    pub idle_since: Option<DateTime<Utc>>,
    /// Also records in final states (lists and reports; bulk operations
    /// leave it false).
    pub include_final: bool,
}

impl<'a> Filter<'a> {
    /// Every record of `wf`, in any state (final ones included).
    pub fn whole_workflow(wf: &'a leadflow_engine::Workflow) -> Filter<'a> {
        Filter {
            workflow: &wf.id,
            states: wf.states.iter().map(|s| s.name.as_str()).collect(),
            fields: Vec::new(),
            idle_since: None,
            include_final: true,
        }
    }
}

impl Filter<'_> {
    /// Whether a record in `state` with `fields` passes the state and field
    /// conditions (the store checks workflow, finality and idleness).
    pub fn matches(
        &self,
        state: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        (self.states.is_empty() || self.states.contains(&state))
            && self
                .fields
                .iter()
                .all(|(k, v)| fields.get(k).unwrap_or(&serde_json::Value::Null) == v)
    }
}

/// What a bulk operation did, record by record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkResult {
    /// Records changed, each by one ordinary transition with history (its
    /// event of kind `bulk`).
    pub changed: Vec<RecordId>,
    /// Records the transition refused or that changed concurrently: (id, code).
    pub refused: Vec<(RecordId, String)>,
}

/// The storage interface. Implementations: `mem::MemBackend`, and the SQL
/// stores.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// Replace the tenant's actor directory (partners, dealers, operators).
    async fn set_actors(&self, actors: Vec<Actor>) -> Result<(), Error>;
    /// Replace one actor's unavailability periods in the stored directory,
    /// leaving every other actor (and the rest of this one) as stored, so
    /// writers in other processes do not overwrite each other. `false`: the
    /// directory has no such actor.
    async fn set_unavailable(&self, actor: &str, periods: &[Period]) -> Result<bool, Error>;
    async fn actors(&self) -> Result<Vec<Actor>, Error>;
    async fn create(&self, req: CreateRequest<'_>) -> Result<StoredRecord, Error>;
    async fn fire(&self, req: FireRequest<'_>) -> Result<StoredRecord, Error>;
    /// The earliest due instant of an armed timer or a scheduled spawn.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error>;
    /// Fire every timer and scheduled spawn due at or before `now`, in due
    /// order, each as its own atomic transition with time = its due instant.
    /// Timers armed by those firings that are also due run too. A timer whose
    /// record left the timer's states is discarded. Returns how many ran.
    async fn run_due(&self, now: DateTime<Utc>) -> Result<usize, Error>;
    async fn get(&self, id: RecordId) -> Result<Option<StoredRecord>, Error>;
    async fn history(&self, id: RecordId) -> Result<Vec<HistoryEntry>, Error>;
    /// The record's events, oldest first, each with its field changes.
    async fn events(&self, id: RecordId) -> Result<Vec<Event>, Error>;
    async fn timers(&self, id: RecordId) -> Result<Vec<ArmedTimer>, Error>;
    async fn outbox(&self, id: RecordId) -> Result<Vec<OutboxMessage>, Error>;
    /// Links from this record (both directions are stored as two links).
    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error>;
    /// Whether the one-click action link `link` (its id, `crate::links`)
    /// was used.
    async fn link_used(&self, link: &str) -> Result<bool, Error>;
    /// Mark the action link `link` (of `record`) used at `at`; false if it
    /// already was.
    async fn use_link(
        &self,
        link: &str,
        record: RecordId,
        at: DateTime<Utc>,
    ) -> Result<bool, Error>;
    /// Ids of the non-final records a filter selects, ascending.
    async fn select(&self, filter: &Filter<'_>) -> Result<Vec<RecordId>, Error>;

    /// SOC-8 batch update: fire `transition` with `input` on every selected
    /// record, each as its own atomic transition (with history). Refusals
    /// are reported per record; storage errors stop the batch.
    async fn fire_many(
        &self,
        filter: &Filter<'_>,
        transition: &str,
        input: Vec<(String, Value)>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<BulkResult, Error> {
        let mut out = BulkResult::default();
        for id in self.select(filter).await? {
            let req = FireRequest {
                record: id,
                transition,
                input: input.clone(),
                actor,
                now,
                expected_revision: None,
                idempotency_key: None,
                visible: None,
                bulk: true,
            };
            match self.fire(req).await {
                Ok(_) => out.changed.push(id),
                Err(e @ (Error::Refused(_) | Error::Conflict { .. } | Error::NotFound(_))) => {
                    out.refused.push((id, e.code().to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// SOC-9 auto-close: fire `transition` as the system on every record of
    /// `workflow` idle (unchanged) for `idle` or longer. States the
    /// transition is not enabled from are left alone (reported as refused).
    async fn close_idle(
        &self,
        workflow: &str,
        idle: chrono::Duration,
        transition: &str,
        now: DateTime<Utc>,
    ) -> Result<BulkResult, Error> {
        let filter = Filter {
            workflow,
            idle_since: Some(now - idle),
            ..Filter::default()
        };
        self.fire_many(&filter, transition, Vec::new(), &Actor::system(), now)
            .await
    }
}

// Capabilities: what the background tasks and operator endpoints need from
// a store beyond `Backend`. The SQL stores implement them; `AnyBackend`
// implements each by delegating to the store it holds (the memory store has
// no claimable queue: its timers run through `run_due`, its outbox is only
// read).

/// A store whose due queue workers can claim from.
pub trait TimerQueue: Clone + Send + Sync + 'static {
    fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> impl std::future::Future<Output = Result<Vec<DueItem>, Error>> + Send;
    fn fire_item(
        &self,
        item: &DueItem,
    ) -> impl std::future::Future<Output = Result<Ran, Error>> + Send;
    /// Whether [`TimerQueue::fire_batch`] commits a batch in one
    /// transaction (all or nothing); the worker then tries it first.
    const BATCHES: bool = false;
    /// [`TimerQueue::BATCHES`] of this queue (a store chosen at run time
    /// answers for the one it holds).
    fn batches(&self) -> bool {
        Self::BATCHES
    }
    /// Fire several claimed items; returns (fired, discarded). A store that
    /// batches commits them together or not at all; the default fires them
    /// one transaction each and stops at the first error.
    fn fire_batch(
        &self,
        items: &[DueItem],
    ) -> impl std::future::Future<Output = Result<(u64, u64), Error>> + Send {
        async move {
            let mut counts = (0, 0);
            for item in items {
                match self.fire_item(item).await? {
                    Ran::Fired => counts.0 += 1,
                    Ran::Discarded => counts.1 += 1,
                }
            }
            Ok(counts)
        }
    }
    fn release(&self, owner: &str) -> impl std::future::Future<Output = Result<u64, Error>> + Send;
    /// Record a failed attempt at `item` and give its claim back: retried
    /// after a backoff, parked after `retry.max_attempts`. `None`: the item
    /// was re-armed, cancelled or fired meanwhile.
    fn fail(
        &self,
        item: &DueItem,
        error: &str,
        now: DateTime<Utc>,
        retry: &Retry,
    ) -> impl std::future::Future<Output = Result<Option<Failed>, Error>> + Send;
    /// The tenant's parked items.
    fn parked(&self) -> impl std::future::Future<Output = Result<Vec<ParkedTimer>, Error>> + Send;
    /// Give a parked item back to the workers; `false`: no such item.
    fn retry_parked(
        &self,
        record: RecordId,
        timer: &str,
    ) -> impl std::future::Future<Output = Result<bool, Error>> + Send;
    /// The tenant the queue belongs to (logs, metrics).
    fn tenant(&self) -> &str;
    fn next_due_at(
        &self,
    ) -> impl std::future::Future<Output = Result<Option<DateTime<Utc>>, Error>> + Send;
    /// What wakes a sleeping worker when a timer is armed earlier than
    /// its next wake-up (see `wake.rs`): a stream of wake-ups, whatever
    /// carries them (in process on SQLite, LISTEN on PostgreSQL).
    fn wakeups(&self) -> impl std::future::Future<Output = Wakeups> + Send;
}

/// Stores whose outbox can be dispatched.
pub trait OutboxQueue: Clone + Send + Sync + 'static {
    /// Claim up to `limit` undelivered messages due by `now` (fewer than
    /// `max_attempts` tries), hiding them from other dispatchers until `lease_until`.
    fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: i32,
        limit: i64,
    ) -> impl std::future::Future<Output = Result<Vec<Pending>, Error>> + Send;
    fn delivered(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send;
    /// Record a failed attempt with its error: retried at a later instant,
    /// or given up (dead letter: never claimed again).
    fn mark(
        &self,
        id: i64,
        mark: Mark,
        error: &str,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send;
    /// Record a note on a message (the language it fell back to).
    fn noted(
        &self,
        id: i64,
        note: &str,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send;
    /// The tenant the queue belongs to (logs).
    fn tenant(&self) -> &str;
    /// Store the template version `hash` (its files), once per content.
    fn save_templates(
        &self,
        _hash: &str,
        _files: Vec<crate::templates::Source>,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send {
        async { Ok(()) }
    }
    /// The files of a stored template version.
    fn load_templates(
        &self,
        _hash: &str,
    ) -> impl std::future::Future<Output = Result<Option<Vec<crate::templates::Source>>, Error>> + Send
    {
        async { Ok(None) }
    }
    /// Stamp the messages queued from now on with template version `hash`.
    fn stamp_templates(&self, _hash: &str) {}
}
