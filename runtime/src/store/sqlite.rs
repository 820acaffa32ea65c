//! The SQLite store: the embedded, zero-setup default. A real file in WAL
//! mode; writes go through one connection (SQLite has one writer anyway), so
//! transitions serialize in the pool and each runs as `BEGIN IMMEDIATE`.

use crate::apply::{self, Current, DueItem, NewEvent, Ran, SpawnPayload, Taken, Tx, Versions};
use crate::backend::*;
use crate::group::{self, Group, OwnedFire, RunBatch, MAX_GROUP};
use crate::snapshot::Snapshot;
use crate::sql::{db, instant, json_err, micros, records, timers, tx as stmt};
use crate::wake::Wake;
use crate::worker::{Failed, ParkedTimer, Retry};
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Period, Record, Workflow, WorkflowSet};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite backend, bound to one tenant.
#[derive(Clone)]
pub struct SqliteBackend {
    tenant: String,
    versions: Arc<Versions>,
    write: SqlitePool,
    read: SqlitePool,
    /// Group commit for `fire` (one writer: SQLite has one); `None` in the
    /// writer's own handle.
    group: Option<Arc<Group>>,
    /// Wakes this tenant's timer worker when a transaction arms a timer
    /// due before the worker's next wake-up.
    wake: Wake,
}

impl SqliteBackend {
    /// Open (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite:path`), apply migrations, register the tenant and the workflow
    /// versions of `set`, and rebuild the tenant's older stored versions from
    /// their project snapshots.
    pub async fn open(
        url: &str,
        tenant: &str,
        set: Arc<WorkflowSet>,
    ) -> Result<SqliteBackend, Error> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await
            .map_err(db)?;
        MIGRATOR
            .run(&write)
            .await
            .map_err(|e| Error::Storage(e.into()))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await
            .map_err(db)?;
        let mut b = SqliteBackend {
            tenant: tenant.to_string(),
            versions: Arc::new(Versions::new(&set)),
            write,
            read,
            group: None,
            wake: Wake::new(),
        };
        let now = micros(Utc::now());
        sqlx::query(
            "INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(tenant)
        .bind(now)
        .execute(&b.write)
        .await
        .map_err(db)?;
        for wf in set.workflows.values() {
            b.register_version(wf, None).await?;
        }
        crate::snapshot::sqlite_rebuild_older(&b.write, &b.tenant, &b.versions).await?;
        let inner = b.clone();
        let run: RunBatch = Arc::new(move |jobs| {
            let inner = inner.clone();
            Box::pin(async move { group::run(&inner, jobs).await })
        });
        b.group = Group::start(1, MAX_GROUP, run).map(Arc::new);
        Ok(b)
    }

    /// Group commit counters: (batches, requests) since open.
    pub fn group_stats(&self) -> Option<(u64, u64)> {
        self.group.as_ref().map(|g| g.stats())
    }

    /// Store the project `set` was loaded from and tie its versions to it,
    /// so they can be rebuilt after a restart (see `snapshot.rs`).
    pub async fn register_snapshot(&self, snap: &Snapshot, set: &WorkflowSet) -> Result<(), Error> {
        crate::snapshot::sqlite_save(&self.write, &self.tenant, snap, set).await
    }

    /// Record a workflow version (and its source text, when known).
    pub async fn register_version(&self, wf: &Workflow, source: Option<&str>) -> Result<(), Error> {
        let mut c = self.write.acquire().await.map_err(db)?;
        records::register_version(&mut *c, &self.tenant, &wf.id, &wf.hash, source, Utc::now()).await
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The timer worker's wake-up (armings in this process call it).
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// Hot reload: `set` becomes current for new records (and is registered
    /// in `workflow_versions`); records keep running on their own version.
    pub async fn set_workflows(&self, set: &WorkflowSet) -> Result<(), Error> {
        for wf in set.workflows.values() {
            self.register_version(wf, None).await?;
        }
        self.versions.publish(set);
        Ok(())
    }

    /// Every workflow version this store can run (current and older).
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// The write pool (one connection), for tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.write
    }

    /// The read-only pool (queries that must not wait for the writer).
    pub fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) async fn begin(&self) -> Result<SqliteTx<'_>, Error> {
        let tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        Ok(SqliteTx {
            tx,
            tenant: &self.tenant,
            versions: &self.versions,
            wake: &self.wake,
        })
    }

    /// Claim up to `limit` due items for `owner` until `lease_until`.
    pub async fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueItem>, Error> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "UPDATE timers SET claim_owner = ?, lease_until = ?
             WHERE rowid IN (SELECT rowid FROM timers WHERE tenant_id = ? AND fired_at IS NULL AND parked_at IS NULL AND due <= ?
                             AND (lease_until IS NULL OR lease_until < ?) AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                             ORDER BY due, seq LIMIT ?)
             RETURNING record_id, timer, due, seq",
        )
        .bind(owner)
        .bind(micros(lease_until))
        .bind(&self.tenant)
        .bind(micros(due_by))
        .bind(micros(wall))
        .bind(micros(wall))
        .bind(limit)
        .fetch_all(&self.write)
        .await
        .map_err(db)?;
        let mut items: Vec<DueItem> = rows
            .into_iter()
            .map(|(record, timer, due, seq)| DueItem {
                record,
                timer,
                due: instant(due),
                seq,
            })
            .collect();
        items.sort_by_key(|i| (i.due, i.seq));
        Ok(items)
    }

    /// Fire one claimed item in its own transaction.
    pub async fn fire_item(&self, item: &DueItem) -> Result<Ran, Error> {
        let mut tx = self.begin().await?;
        let ran = apply::run_item(&mut tx, &self.versions, item).await?;
        tx.tx.commit().await.map_err(db)?;
        Ok(ran)
    }

    /// Record a failed attempt at `item` (see `PgBackend::fail`).
    pub async fn fail(
        &self,
        item: &DueItem,
        error: &str,
        now: DateTime<Utc>,
        retry: &Retry,
    ) -> Result<Option<Failed>, Error> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        let f = timers::fail(&mut *tx, &self.tenant, item, error, now, retry).await?;
        tx.commit().await.map_err(db)?;
        Ok(f)
    }

    /// The tenant's parked timer items, oldest parking first.
    pub async fn parked(&self) -> Result<Vec<ParkedTimer>, Error> {
        timers::parked(&mut *self.reader().await?, &self.tenant).await
    }

    /// Give a parked item back to the workers (attempts start again).
    /// `false`: no such parked item.
    pub async fn retry_parked(&self, record: RecordId, timer: &str) -> Result<bool, Error> {
        let mut c = self.write.acquire().await.map_err(db)?;
        if !timers::unpark(&mut *c, &self.tenant, record, timer).await? {
            return Ok(false);
        }
        self.wake.wake();
        Ok(true)
    }

    /// Give back the unfired claims of `owner` (on shutdown).
    pub async fn release(&self, owner: &str) -> Result<u64, Error> {
        let mut c = self.write.acquire().await.map_err(db)?;
        timers::release(&mut *c, &self.tenant, owner).await
    }

    /// A connection of the read-only pool.
    async fn reader(&self) -> Result<sqlx::pool::PoolConnection<Sqlite>, Error> {
        self.read.acquire().await.map_err(db)
    }
}

pub(crate) struct SqliteTx<'a> {
    pub(crate) tx: Transaction<'static, Sqlite>,
    pub(crate) tenant: &'a str,
    versions: &'a Versions,
    wake: &'a Wake,
}

impl SqliteTx<'_> {
    async fn counter(&mut self, column: &str) -> Result<i64, Error> {
        let sql =
            format!("UPDATE tenants SET {column} = {column} + 1 WHERE id = ? RETURNING {column}");
        sqlx::query_scalar(&sql)
            .bind(self.tenant)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db)
    }
}

impl Tx for SqliteTx<'_> {
    async fn timer_streak(
        &mut self,
        id: RecordId,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, Error> {
        stmt::timer_streak(&mut *self.tx, self.tenant, id, at, limit).await
    }

    async fn idem_get(&mut self, key: &str) -> Result<Option<(String, StoredRecord)>, Error> {
        stmt::idem_get(&mut *self.tx, self.tenant, key, Utc::now()).await
    }

    async fn idem_put(&mut self, key: Idempotency<'_>, rec: &StoredRecord) -> Result<bool, Error> {
        let now = Utc::now();
        let cutoff = micros(now - IDEMPOTENCY_RETENTION);
        // A few expired keys of the tenant go with each keyed write.
        sqlx::query(
            "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency
             WHERE tenant_id = ? AND created_at <= ? AND key <> ? LIMIT 16)",
        )
        .bind(self.tenant)
        .bind(cutoff)
        .bind(key.key)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        let r = sqlx::query(
            "INSERT INTO idempotency (tenant_id, key, request, response, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, key) DO UPDATE
             SET request = excluded.request, response = excluded.response, created_at = excluded.created_at
             WHERE idempotency.created_at <= ?",
        )
        .bind(self.tenant)
        .bind(key.key)
        .bind(key.request)
        .bind(serde_json::to_string(rec).map_err(json_err)?)
        .bind(micros(now))
        .bind(cutoff)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    async fn lock(&mut self, id: RecordId) -> Result<Option<Current>, Error> {
        // The one writer holds the database: no row lock needed.
        let Some(row) = stmt::read_for_update(
            &mut *self.tx,
            "SELECT workflow, version, state, fields, assignee, revision, created_at, entered_at FROM records
             WHERE tenant_id = $1 AND id = $2",
            self.tenant,
            id,
        )
        .await?
        else {
            return Ok(None);
        };
        crate::snapshot::sqlite_load_missing(
            &mut self.tx,
            self.tenant,
            self.versions,
            &row.workflow,
            &row.version,
        )
        .await?;
        row.current(self.versions).map(Some)
    }

    async fn directory(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        stmt::directory(&mut *self.tx, self.tenant).await
    }

    async fn insert(
        &mut self,
        wf: &Arc<Workflow>,
        rec: Record,
        now: DateTime<Utc>,
    ) -> Result<RecordId, Error> {
        let id = self.counter("next_record").await?;
        sqlx::query(
            "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(&wf.id)
        .bind(&wf.hash)
        .bind(wf.state_name(rec.state))
        .bind(apply::is_final(wf, &rec))
        .bind(serde_json::to_string(&rec.fields_json(wf)).map_err(json_err)?)
        .bind(&rec.assignee)
        .bind(micros(rec.created_at))
        .bind(micros(rec.entered_at))
        .bind(micros(now))
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(id)
    }

    async fn update(
        &mut self,
        id: RecordId,
        wf: &Arc<Workflow>,
        rec: Record,
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE records SET version = ?, state = ?, is_final = ?, fields = ?, assignee = ?, revision = ?, entered_at = ?, updated_at = ?
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(&wf.hash)
        .bind(wf.state_name(rec.state))
        .bind(apply::is_final(wf, &rec))
        .bind(serde_json::to_string(&rec.fields_json(wf)).map_err(json_err)?)
        .bind(&rec.assignee)
        .bind(revision)
        .bind(micros(rec.entered_at))
        .bind(micros(now))
        .bind(self.tenant)
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn event(
        &mut self,
        id: RecordId,
        revision: i64,
        e: NewEvent,
        rows: Vec<HistoryEntry>,
    ) -> Result<(), Error> {
        // One statement for the event and its field rows (the view's
        // trigger, migration 0008): the rows of one step share actor,
        // label and instant.
        let (field_actor, label, changes) = match rows.first() {
            None => (None, None, None),
            Some(h) => {
                let changes: Vec<(&str, &serde_json::Value, &serde_json::Value)> = rows
                    .iter()
                    .map(|h| (h.field.as_str(), &h.old, &h.new))
                    .collect();
                (
                    Some(h.actor.as_str()),
                    Some(h.transition.as_str()),
                    Some(serde_json::to_string(&changes).map_err(json_err)?),
                )
            }
        };
        sqlx::query(
            "INSERT INTO event_writes (tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee, input, field_actor, label, changes)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(revision)
        .bind(e.workflow)
        .bind(micros(e.at))
        .bind(e.kind.as_str())
        .bind(e.actor)
        .bind(e.transition)
        .bind(e.from)
        .bind(e.to)
        .bind(e.assignee)
        .bind(e.input.map(|i| i.to_string()))
        .bind(field_actor)
        .bind(label)
        .bind(changes)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn arm(
        &mut self,
        id: RecordId,
        timer: &str,
        due: DateTime<Utc>,
        revision: i64,
        spawn: Option<SpawnPayload>,
    ) -> Result<(), Error> {
        let seq = self.counter("next_seq").await?;
        let payload = spawn
            .map(|p| serde_json::to_string(&p))
            .transpose()
            .map_err(json_err)?;
        sqlx::query(
            "INSERT INTO timers (tenant_id, record_id, timer, due, seq, armed_revision, payload) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, record_id, timer) DO UPDATE SET due = excluded.due, seq = excluded.seq,
                armed_revision = excluded.armed_revision, payload = excluded.payload, claim_owner = NULL, lease_until = NULL, fired_at = NULL,
                attempts = 0, last_error = NULL, next_attempt_at = NULL, parked_at = NULL",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(timer)
        .bind(micros(due))
        .bind(seq)
        .bind(revision)
        .bind(payload)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        // Before the commit: the worker, woken, claims through the one
        // write connection, so it sees the timer once this commits (a
        // rollback costs it one early look).
        self.wake.armed(due);
        Ok(())
    }

    async fn cancel(&mut self, id: RecordId, timer: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM timers WHERE tenant_id = ? AND record_id = ? AND timer = ?")
            .bind(self.tenant)
            .bind(id)
            .bind(timer)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn outbox(
        &mut self,
        id: RecordId,
        template: &str,
        recipients: Vec<String>,
        payload: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        // The id in the same statement (the tenant's highest + 1, one
        // b-tree seek; this connection is the only writer): no counter row
        // to update in every transaction that notifies.
        sqlx::query(
            "INSERT INTO outbox (tenant_id, id, record_id, template, recipients, payload, created_at, next_attempt)
             SELECT ?1, coalesce(max(id), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?6 FROM outbox WHERE tenant_id = ?1",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(template)
        .bind(serde_json::to_string(&recipients).map_err(json_err)?)
        .bind(payload.to_string())
        .bind(micros(now))
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn link(&mut self, from: RecordId, name: &str, to: RecordId) -> Result<(), Error> {
        stmt::link(&mut *self.tx, self.tenant, from, name, to).await
    }

    async fn linked(&mut self, from: RecordId, name: &str) -> Result<Vec<RecordId>, Error> {
        stmt::linked(&mut *self.tx, self.tenant, from, name).await
    }

    async fn take(&mut self, item: &DueItem, now: DateTime<Utc>) -> Result<Option<Taken>, Error> {
        stmt::take(
            &mut *self.tx,
            self.tenant,
            item.record,
            &item.timer,
            item.seq,
            now,
        )
        .await
    }
}

impl group::Batched for SqliteBackend {
    async fn try_group(
        &self,
        jobs: &[OwnedFire],
    ) -> Result<Vec<Result<StoredRecord, Error>>, Error> {
        let mut tx = self.begin().await?;
        let answers = group::fire_in(&mut tx, &self.versions, jobs).await?;
        Ok(match tx.tx.commit().await {
            Ok(()) => answers,
            Err(e) => group::commit_failed(answers, &db(e)),
        })
    }

    async fn fire_alone(&self, req: &FireRequest<'_>) -> Result<StoredRecord, Error> {
        let mut tx = self.begin().await?;
        let r = apply::fire(&mut tx, &self.versions, req).await?;
        tx.tx.commit().await.map_err(db)?;
        Ok(r)
    }
}

impl Backend for SqliteBackend {
    async fn select(&self, filter: &Filter<'_>) -> Result<Vec<RecordId>, Error> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, state, fields FROM records WHERE tenant_id = ? AND workflow = ? AND (is_final = 0 OR ?) AND updated_at < ? ORDER BY id",
        )
        .bind(&self.tenant)
        .bind(filter.workflow)
        .bind(filter.include_final)
        .bind(filter.idle_since.map_or(i64::MAX, micros))
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        let mut ids = Vec::new();
        for (id, state, fields) in rows {
            let fields = serde_json::from_str(&fields).map_err(json_err)?;
            if filter.matches(&state, &fields) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    async fn set_actors(&self, actors: Vec<Actor>) -> Result<(), Error> {
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        sqlx::query("DELETE FROM actors WHERE tenant_id = ?")
            .bind(&self.tenant)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for a in &actors {
            sqlx::query("INSERT INTO actors (tenant_id, id, data) VALUES (?, ?, ?) ON CONFLICT (tenant_id, id) DO UPDATE SET data = excluded.data")
                .bind(&self.tenant)
                .bind(&a.id)
                .bind(serde_json::to_string(a).map_err(json_err)?)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn set_unavailable(&self, actor: &str, periods: &[Period]) -> Result<bool, Error> {
        let r = sqlx::query(
            "UPDATE actors SET data = json_set(data, '$.unavailable', json(?)) WHERE tenant_id = ? AND id = ?",
        )
        .bind(serde_json::to_string(periods).map_err(json_err)?)
        .bind(&self.tenant)
        .bind(actor)
        .execute(&self.write)
        .await
        .map_err(db)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        self.wake.wake();
        Ok(true)
    }

    async fn actors(&self) -> Result<Vec<Actor>, Error> {
        let mut tx = self.begin().await?;
        let d = tx.directory().await?;
        tx.tx.rollback().await.map_err(db)?;
        Ok(d.as_ref().clone())
    }

    async fn create(&self, req: CreateRequest<'_>) -> Result<StoredRecord, Error> {
        let mut tx = self.begin().await?;
        let r = apply::create(&mut tx, &self.versions, &req).await?;
        tx.tx.commit().await.map_err(db)?;
        Ok(r)
    }

    async fn fire(&self, req: FireRequest<'_>) -> Result<StoredRecord, Error> {
        if let Some(g) = &self.group {
            if let Some(answer) = g.fire(&req).await {
                return answer;
            }
        }
        group::Batched::fire_alone(self, &req).await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        timers::next_due(&mut *self.reader().await?, &self.tenant).await
    }

    async fn run_due(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut ran = 0;
        loop {
            let mut tx = self.begin().await?;
            let Some(item) = timers::first_due(&mut *tx.tx, &self.tenant, now, Utc::now()).await?
            else {
                tx.tx.rollback().await.map_err(db)?;
                return Ok(ran);
            };
            if apply::run_item(&mut tx, &self.versions, &item).await? == Ran::Fired {
                ran += 1;
            }
            tx.tx.commit().await.map_err(db)?;
        }
    }

    async fn get(&self, id: RecordId) -> Result<Option<StoredRecord>, Error> {
        records::get(&mut *self.reader().await?, &self.tenant, id).await
    }

    async fn history(&self, id: RecordId) -> Result<Vec<HistoryEntry>, Error> {
        records::history(&mut *self.reader().await?, &self.tenant, id).await
    }

    async fn events(&self, id: RecordId) -> Result<Vec<Event>, Error> {
        records::events(&mut *self.reader().await?, &self.tenant, id).await
    }

    async fn timers(&self, id: RecordId) -> Result<Vec<ArmedTimer>, Error> {
        timers::armed(&mut *self.reader().await?, &self.tenant, id).await
    }

    async fn link_used(&self, link: &str) -> Result<bool, Error> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM used_links WHERE tenant_id = ? AND id = ?")
                .bind(&self.tenant)
                .bind(link)
                .fetch_optional(&self.read)
                .await
                .map_err(db)?;
        Ok(n.is_some())
    }

    async fn use_link(
        &self,
        link: &str,
        record: RecordId,
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let r = sqlx::query(
            "INSERT INTO used_links (tenant_id, id, record_id, used_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&self.tenant)
        .bind(link)
        .bind(record)
        .bind(micros(at))
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    async fn outbox(&self, id: RecordId) -> Result<Vec<OutboxMessage>, Error> {
        records::outbox(&mut *self.reader().await?, &self.tenant, id).await
    }

    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error> {
        records::links(&mut *self.reader().await?, &self.tenant, id).await
    }
}
