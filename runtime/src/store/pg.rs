//! The PostgreSQL store: production. One transition is one transaction that
//! locks the record row (`FOR UPDATE`), checks the revision, calls the engine
//! and writes everything. Connections run as the role `leadflow_app` and
//! are shared by the tenants of a database; every transaction sets its
//! tenant (`SET LOCAL app.tenant_id`), so row-level security isolates
//! tenants even for a query that forgets its tenant filter, and a statement
//! outside a tenant's transaction sees nothing (docs/security.md).

use crate::apply::{self, Current, DueItem, NewEvent, Ran, SpawnPayload, Taken, Tx, Versions};
use crate::backend::*;
use crate::group::{self, Group, OwnedFire, RunBatch, MAX_GROUP};
use crate::snapshot::Snapshot;
use crate::sql::conn::Cells;
use crate::sql::pg::buffer::{Arming, Buffer, Message, Update};
use crate::sql::{db, json_err, records, timers, tx as stmt};
use crate::worker::{Failed, ParkedTimer, Retry};
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Period, Record, Workflow, WorkflowSet};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Executor, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Run one shared statement function on a tenant transaction of `$self`
/// and commit it.
macro_rules! in_tx {
    ($self:ident, $c:ident => $e:expr) => {{
        let mut tx = $self.tx().await?;
        let $c: &mut PgConnection = &mut tx;
        let r = $e.await?;
        tx.commit().await.map_err(db)?;
        Ok(r)
    }};
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel the arming transaction notifies when a timer is due soon.
pub const TIMER_CHANNEL: &str = "leadflow_timers";

/// Timers due within this horizon of their arming wake the workers at once;
/// later ones are found by the worker's periodic look-ahead.
pub const NOTIFY_HORIZON: chrono::Duration = chrono::Duration::seconds(60);

/// Connection settings for [`PgBackend::open_with`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub max_connections: u32,
    /// Group commit writers (see `group.rs`): concurrent transitions share
    /// a transaction, at most this many batches in flight. 0 turns group
    /// commit off (one transaction per request). Default 1, or the
    /// environment variable `LEADFLOW_PG_GROUP_WRITERS`: once the batch
    /// statements ran on generic plans, one writer (larger batches, fewer
    /// statements per transition) gave the lowest p99 on 2 cores in
    /// `scripts/bench-http.sh` at the same throughput as 2; more cores may
    /// want more.
    pub writers: usize,
    /// Apply migrations before use when the login may (a superuser or the
    /// schema owner); any other login only checks the schema is current
    /// (docs/security.md).
    pub migrate: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 20,
            writers: std::env::var("LEADFLOW_PG_GROUP_WRITERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            migrate: true,
        }
    }
}

/// The PostgreSQL backend, bound to one tenant.
#[derive(Clone)]
pub struct PgBackend {
    tenant: Arc<str>,
    /// `SET LOCAL app.tenant_id = ...` for this tenant, sent with `BEGIN`.
    set_tenant: Arc<str>,
    versions: Arc<Versions>,
    pool: PgPool,
    /// Group commit for `fire`; `None` in the writers' own handle.
    group: Option<Arc<Group>>,
    /// The database URL (the timer workers' shared LISTEN connection).
    url: Arc<str>,
    /// The database runs Citus: write transactions keep custom plans
    /// (Citus cannot route a generic plan's parameters to a shard).
    citus: bool,
}

impl PgBackend {
    pub async fn open(url: &str, tenant: &str, set: Arc<WorkflowSet>) -> Result<PgBackend, Error> {
        PgBackend::open_with(url, tenant, set, PgOptions::default()).await
    }

    /// Connect (migrating first when the URL's role may, see
    /// [`crate::pg_roles::prepare`]), open a pool of its own and bind it to `tenant`. A
    /// daemon with several tenants on one database shares one pool between
    /// them instead: [`connect`] once, then [`PgBackend::open_on`].
    pub async fn open_with(
        url: &str,
        tenant: &str,
        set: Arc<WorkflowSet>,
        opts: PgOptions,
    ) -> Result<PgBackend, Error> {
        let pool = connect(url, &opts).await?;
        PgBackend::open_on(pool, url, tenant, set, &opts).await
    }

    /// Bind a store to `tenant` on a pool from [`connect`] (shared with the
    /// other tenants of the database): register the versions of `set` and
    /// rebuild the tenant's older ones from their project snapshots. Every
    /// transaction of this handle sets `app.tenant_id` for itself.
    pub async fn open_on(
        pool: PgPool,
        url: &str,
        tenant: &str,
        set: Arc<WorkflowSet>,
        opts: &PgOptions,
    ) -> Result<PgBackend, Error> {
        let citus = {
            let mut c = pool.acquire().await.map_err(db)?;
            crate::store::citus::is_citus(&mut c).await?
        };
        let mut b = PgBackend {
            tenant: tenant.into(),
            set_tenant: set_tenant_sql(tenant)?.into(),
            versions: Arc::new(Versions::new(&set)),
            pool,
            group: None,
            url: url.into(),
            citus,
        };
        let mut tx = b.tx().await?;
        sqlx::query("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        for wf in set.workflows.values() {
            b.register_version(wf, None).await?;
        }
        let mut tx = b.tx().await?;
        crate::snapshot::pg_rebuild_older(&mut tx, &b.tenant, &b.versions).await?;
        tx.commit().await.map_err(db)?;
        if opts.writers > 0 {
            let inner = b.clone();
            let run: RunBatch = Arc::new(move |jobs| {
                let inner = inner.clone();
                Box::pin(async move { group::run(&inner, jobs).await })
            });
            b.group = Group::start(opts.writers, MAX_GROUP, run).map(Arc::new);
        }
        Ok(b)
    }

    /// Group commit counters: (batches, requests) since open; `None` when
    /// group commit is off.
    pub fn group_stats(&self) -> Option<(u64, u64)> {
        self.group.as_ref().map(|g| g.stats())
    }

    /// Store the project `set` was loaded from and tie its versions to it,
    /// so they can be rebuilt after a restart (see `snapshot.rs`).
    pub async fn register_snapshot(&self, snap: &Snapshot, set: &WorkflowSet) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        crate::snapshot::pg_save(&mut tx, &self.tenant, snap, set).await?;
        tx.commit().await.map_err(db)
    }

    /// Record a workflow version (and its source text, when known).
    pub async fn register_version(&self, wf: &Workflow, source: Option<&str>) -> Result<(), Error> {
        in_tx!(self, c => records::register_version(c, &self.tenant, &wf.id, &wf.hash, source, Utc::now()))
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The database URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
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

    /// The pool, shared with the other tenants of the database. Its
    /// sessions run as `leadflow_app` with no tenant set, so under row-level
    /// security a statement sent on it directly sees no rows: use
    /// [`PgBackend::tx`]. For LISTEN and for closing.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction bound to this handle's tenant (`SET LOCAL
    /// app.tenant_id`): every read and write goes through one, since the
    /// pool's connections serve every tenant of the database.
    pub async fn tx(&self) -> Result<Transaction<'static, Postgres>, Error> {
        begin_on(&self.pool, format!("BEGIN; {}", self.set_tenant)).await
    }

    /// A transaction whose prepared statements run on generic plans: for
    /// statements sent many times a second whose best plan does not depend
    /// on the values (a work queue's pull reads one index in order whoever
    /// pulls). A custom plan is planned again on every execution, and with
    /// a dozen expression indexes on `records` planning a pull took 5-6 ms,
    /// twenty times its execution. Citus keeps custom plans (see [`Self::begin`]).
    pub(crate) async fn generic_tx(&self) -> Result<Transaction<'static, Postgres>, Error> {
        begin_on(
            &self.pool,
            format!("BEGIN; {}{}", self.set_tenant, self.generic_plans()),
        )
        .await
    }

    /// Whether the database runs Citus (docs/scaling.md).
    pub(crate) fn is_citus(&self) -> bool {
        self.citus
    }

    /// The statement putting a transaction on generic plans (none on
    /// Citus, whose coordinator routes by the tenant value of a custom plan).
    fn generic_plans(&self) -> &'static str {
        match self.citus {
            true => "",
            false => "; SET LOCAL plan_cache_mode = force_generic_plan",
        }
    }

    /// After a failed request (its transaction rolled back): if it lost an
    /// idempotency race, the request that won committed its result; answer
    /// with that, as a retry with the same key would.
    async fn first_result(&self, e: Error) -> Result<StoredRecord, Error> {
        let Error::IdempotencyRace(key) = e else {
            return Err(e);
        };
        let mut tx = self.begin().await?;
        apply::replay(&mut tx, Some(key.borrow()))
            .await?
            .ok_or_else(|| {
                Error::storage(format!(
                    "idempotency key `{}` has no stored result",
                    key.key
                ))
            })
    }

    /// A write transaction. Its statements are the same few every time and
    /// reach rows by key (`id = ANY(..)` for a batch), so they run on
    /// generic plans, planned once per connection: re-planning the buffered
    /// flush for every batch cost about a quarter of the server's CPU per
    /// transition. Without bitmap scans the planner keeps the key arrays in
    /// the index condition even when it has no statistics (a new tenant, a
    /// bulk load before ANALYZE, autovacuum off): it would otherwise read
    /// every timer of the tenant for a batch's cancels, thinking the tenant
    /// has a handful. Reads and list queries keep custom plans. On Citus
    /// every plan stays custom: the coordinator routes a statement to a
    /// shard by its tenant value, which a generic plan does not have.
    pub(crate) async fn begin(&self) -> Result<PgTx<'_>, Error> {
        let tx = begin_on(
            &self.pool,
            format!(
                "BEGIN; {}{}; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
                self.set_tenant,
                self.generic_plans()
            ),
        )
        .await?;
        Ok(PgTx {
            tx,
            tenant: &self.tenant,
            versions: &self.versions,
            notified: false,
            citus: self.citus,
            buf: Buffer::default(),
            pre: None,
        })
    }

    /// Claim up to `limit` items due by `due_by` whose lease (if any) ended
    /// before `wall`, for `owner` until `lease_until`. Rows locked by another
    /// claimer are skipped, not waited for.
    pub async fn claim(
        &self,
        owner: &str,
        due_by: DateTime<Utc>,
        wall: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueItem>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<(i64, String, DateTime<Utc>, i64)> = sqlx::query_as(
            "UPDATE timers t SET claim_owner = $1, lease_until = $2
             FROM (SELECT tenant_id, record_id, timer FROM timers
                   WHERE tenant_id = $3 AND fired_at IS NULL AND parked_at IS NULL AND due <= $4
                     AND (lease_until IS NULL OR lease_until < $5) AND (next_attempt_at IS NULL OR next_attempt_at <= $5)
                   ORDER BY due, seq LIMIT $6 FOR UPDATE SKIP LOCKED) c
             WHERE t.tenant_id = $3 AND t.tenant_id = c.tenant_id AND t.record_id = c.record_id AND t.timer = c.timer
             RETURNING t.record_id, t.timer, t.due, t.seq",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(&*self.tenant)
        .bind(due_by)
        .bind(wall)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut items: Vec<DueItem> = rows
            .into_iter()
            .map(|(record, timer, due, seq)| DueItem {
                record,
                timer,
                due,
                seq,
            })
            .collect();
        items.sort_by_key(|i| (i.due, i.seq));
        Ok(items)
    }

    /// Fire one claimed item in its own transaction. Exactly once per arming:
    /// the record is locked, then the timer row is marked fired only if it is
    /// still the same arming and not fired yet.
    pub async fn fire_item(&self, item: &DueItem) -> Result<Ran, Error> {
        let mut tx = self.begin().await?;
        let ran = apply::run_item(&mut tx, &self.versions, item).await?;
        tx.commit().await?;
        Ok(ran)
    }

    /// Fire claimed items in one transaction (one commit for the batch),
    /// ordered by record then due instant so concurrent batches lock records
    /// in the same order. All or nothing: if anything fails the whole batch
    /// rolls back and the error is returned, and the caller (the worker)
    /// fires the items one transaction each, so a bad item cannot hold the
    /// others back. Returns (fired, discarded).
    pub async fn fire_batch(&self, items: &[DueItem]) -> Result<(u64, u64), Error> {
        let mut sorted: Vec<&DueItem> = items.iter().collect();
        sorted.sort_by_key(|i| (i.record, i.due, i.seq));
        let mut tx = self.begin().await?;
        let mut counts = (0, 0);
        tx.prefetch(&sorted).await?;
        for item in &sorted {
            match apply::run_item(&mut tx, &self.versions, item).await? {
                Ran::Fired => counts.0 += 1,
                Ran::Discarded => counts.1 += 1,
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// Record a failed attempt at `item` (still the same arming, not
    /// fired): the claim is given back, the next attempt waits
    /// `retry.delay(attempts)`, and the item is parked once it failed
    /// `retry.max_attempts` times. `None`: the item changed meanwhile.
    pub async fn fail(
        &self,
        item: &DueItem,
        error: &str,
        now: DateTime<Utc>,
        retry: &Retry,
    ) -> Result<Option<Failed>, Error> {
        in_tx!(self, c => timers::fail(c, &self.tenant, item, error, now, retry))
    }

    /// The tenant's parked timer items, oldest parking first.
    pub async fn parked(&self) -> Result<Vec<ParkedTimer>, Error> {
        in_tx!(self, c => timers::parked(c, &self.tenant))
    }

    /// Give a parked item back to the workers (attempts start again) and
    /// wake them. `false`: no such parked item.
    pub async fn retry_parked(&self, record: RecordId, timer: &str) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        if !timers::unpark(&mut *tx, &self.tenant, record, timer).await? {
            return Ok(false);
        }
        notify_timers(&mut tx, &self.tenant).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Give back the unfired claims of `owner` (on shutdown).
    pub async fn release(&self, owner: &str) -> Result<u64, Error> {
        in_tx!(self, c => timers::release(c, &self.tenant, owner))
    }
}

/// Wake the timer workers of `tenant` when the transaction commits.
async fn notify_timers(c: &mut PgConnection, tenant: &str) -> Result<(), Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(TIMER_CHANNEL)
        .bind(tenant)
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

/// `SET LOCAL app.tenant_id = E'...'` for `tenant`: sent in the same
/// simple query as `BEGIN`, so it is a literal (escaped as an `E''` string,
/// which reads the same whatever `standard_conforming_strings` says).
fn set_tenant_sql(tenant: &str) -> Result<String, Error> {
    if tenant.contains('\0') {
        return Err(Error::storage("a tenant id cannot contain NUL"));
    }
    let lit = tenant.replace('\\', "\\\\").replace('\'', "''");
    Ok(format!("SET LOCAL app.tenant_id = E'{lit}'"))
}

/// Begin a transaction with `sql` (`BEGIN; SET LOCAL ...`) in a task of
/// its own, so that the caller being cancelled (a client that hangs up)
/// cannot stop it half-way. sqlx 0.8 counts a transaction only once its
/// `BEGIN` has answered, and the guard that rolls back a cancelled begin
/// looks at that count: a begin dropped after the server ran `BEGIN` but
/// before the answer was read left the connection inside a transaction
/// sqlx did not know about. The pool handed it out again, the next `BEGIN`
/// drew the notice `there is already a transaction in progress`, and a
/// statement sent outside a transaction would have run in the stale one
/// (with its `app.tenant_id`). Run to completion, a begin whose caller is
/// gone ends with a `Transaction` dropped normally: rolled back.
async fn begin_on(pool: &PgPool, sql: String) -> Result<Transaction<'static, Postgres>, Error> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin_with(sql).await })
        .await
        .map_err(|e| Error::storage(format!("begin: {e}")))?
        .map_err(db)
}

/// Open the connection pool for a database (one per daemon and database
/// URL, shared by its tenants; `opts.max_connections` bounds it). Sessions
/// run as `leadflow_app`. First, [`crate::pg_roles::prepare`] the schema.
pub async fn connect(url: &str, opts: &PgOptions) -> Result<PgPool, Error> {
    let login = crate::pg_roles::prepare(url, opts.migrate).await?;
    // On Citus the tenant set by `SET LOCAL app.tenant_id` must reach the
    // shards, or row-level security there sees no tenant: propagate every
    // `SET LOCAL` of a transaction to the workers it touches.
    let session = if login.citus {
        "SET citus.propagate_set_commands = 'local'; SET ROLE leadflow_app"
    } else {
        "SET ROLE leadflow_app"
    };
    PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(Duration::from_secs(60))
        // No ping (a round trip) before every transaction: a connection
        // the server dropped fails its first statement instead, with a
        // storage error, and the pool then discards it.
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(session).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(db)
}

pub(crate) struct PgTx<'a> {
    pub(crate) tx: Transaction<'static, Postgres>,
    pub(crate) tenant: &'a str,
    versions: &'a Versions,
    notified: bool,
    /// The database runs Citus (the flush's form, see `Buffer::flush`).
    citus: bool,
    /// Writes buffered until commit and sent as one statement (fewer round
    /// trips per transition, one for a whole timer batch): record updates,
    /// events, history, cancels, armings.
    buf: Buffer,
    /// Timer batches only: the batch's records, locked together, and its
    /// items, taken together (see [`PgTx::prefetch`]).
    pre: Option<Prefetch>,
}

/// What a timer batch locked and took up front. `lock` and `take` answer
/// from here; anything else (or anything invalidated by a cancel or arming
/// inside the batch) goes to the database as usual.
#[derive(Default)]
struct Prefetch {
    /// Locked records, kept current as the batch updates them.
    locked: HashMap<RecordId, Current>,
    /// Items marked fired, by (record, timer): (seq, what was taken).
    taken: HashMap<(RecordId, String), (i64, Taken)>,
    /// Items found stale (re-armed, cancelled or fired before the batch).
    stale: std::collections::HashSet<(RecordId, String, i64)>,
}

impl PgTx<'_> {
    /// Send the buffered writes (see [`Buffer::flush`]).
    async fn flush(&mut self) -> Result<(), Error> {
        self.buf.flush(&mut self.tx, self.tenant, self.citus).await
    }

    /// Lock the records `ids` in one statement, in id order (as every batch
    /// does, so batches cannot deadlock), and keep them for `lock` to answer
    /// from memory for the rest of the transaction.
    async fn lock_all(&mut self, ids: &mut Vec<i64>) -> Result<(), Error> {
        self.flush().await?;
        ids.sort_unstable();
        ids.dedup();
        let rows = sqlx::query(
            "SELECT id, workflow, version, state, fields, assignee, revision, created_at, entered_at FROM records
             WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
        )
        .bind(self.tenant)
        .bind(&*ids)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        let mut pre = Prefetch::default();
        for r in &rows {
            // A record that cannot be loaded is left to `lock`, which
            // reports the same error as one at a time would.
            let Ok(row) = stmt::record_row(r, 1) else {
                continue;
            };
            if let Ok(cur) = row.current(self.versions) {
                pre.locked.insert(r.int(0)?, cur);
            }
        }
        self.pre = Some(pre);
        Ok(())
    }

    /// Timer batch: lock every record of `items` in one statement (in id
    /// order, as concurrent batches do) and then mark every item whose record
    /// exists fired in one statement, if it is still the claimed arming and
    /// not fired yet. Same lock order as one item at a time (record, then
    /// timer row), same exactly-once test; `lock` and `take` then answer
    /// from memory.
    async fn prefetch(&mut self, items: &[&DueItem]) -> Result<(), Error> {
        let mut ids: Vec<i64> = items.iter().map(|i| i.record).collect();
        self.lock_all(&mut ids).await?;
        let Some(mut pre) = self.pre.take() else {
            return Ok(());
        };
        let live: Vec<&&DueItem> = items
            .iter()
            .filter(|i| pre.locked.contains_key(&i.record))
            .collect();
        let rows: Vec<(i64, String, i64, Option<Json<SpawnPayload>>)> = sqlx::query_as(
            "UPDATE timers t SET fired_at = x.due, claim_owner = NULL, lease_until = NULL
             FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::timestamptz[]) AS x(record_id, timer, seq, due)
             WHERE t.tenant_id = $1 AND t.record_id = ANY($2) AND t.record_id = x.record_id AND t.timer = x.timer
               AND t.seq = x.seq AND t.fired_at IS NULL
             RETURNING t.record_id, t.timer, t.seq, t.payload",
        )
        .bind(self.tenant)
        .bind(live.iter().map(|i| i.record).collect::<Vec<_>>())
        .bind(live.iter().map(|i| i.timer.as_str()).collect::<Vec<_>>())
        .bind(live.iter().map(|i| i.seq).collect::<Vec<_>>())
        .bind(live.iter().map(|i| i.due).collect::<Vec<_>>())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        for (record, timer, seq, payload) in rows {
            let t = match payload {
                None => Taken::Timer,
                Some(p) => Taken::Spawn(p.0),
            };
            pre.taken.insert((record, timer), (seq, t));
        }
        for i in live {
            if !pre.taken.contains_key(&(i.record, i.timer.clone())) {
                pre.stale.insert((i.record, i.timer.clone(), i.seq));
            }
        }
        self.pre = Some(pre);
        Ok(())
    }

    /// An arming or cancel of (id, timer) inside a batch: a pre-taken item
    /// for it must be tested again against the database.
    fn invalidate(&mut self, id: RecordId, timer: &str) {
        if let Some(p) = &mut self.pre {
            p.taken.remove(&(id, timer.to_string()));
        }
    }

    pub(crate) async fn commit(mut self) -> Result<(), Error> {
        self.flush().await?;
        self.tx.commit().await.map_err(db)
    }
}

impl Tx for PgTx<'_> {
    async fn timer_streak(
        &mut self,
        id: RecordId,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, Error> {
        // Events of this transaction are buffered: write them first.
        self.flush().await?;
        stmt::timer_streak(&mut *self.tx, self.tenant, id, at, limit).await
    }

    async fn idem_get(&mut self, key: &str) -> Result<Option<(String, StoredRecord)>, Error> {
        stmt::idem_get(&mut *self.tx, self.tenant, key, Utc::now()).await
    }

    async fn idem_put(&mut self, key: Idempotency<'_>, rec: &StoredRecord) -> Result<bool, Error> {
        // One statement: delete a few expired keys of the tenant (not this
        // one: a statement cannot change a row twice), then insert, or
        // replace this key if it has expired. By key, not ctid: Citus
        // cannot plan a distributed DELETE on ctid.
        let now = Utc::now();
        let r = sqlx::query(
            "WITH expired AS (
                 DELETE FROM idempotency WHERE tenant_id = $1 AND key IN (
                     SELECT key FROM idempotency
                     WHERE tenant_id = $1 AND created_at <= $5 AND key <> $2
                     LIMIT 16 FOR UPDATE SKIP LOCKED))
             INSERT INTO idempotency (tenant_id, key, request, response, created_at)
             VALUES ($1, $2, $3, $4, $6)
             ON CONFLICT (tenant_id, key) DO UPDATE
             SET request = EXCLUDED.request, response = EXCLUDED.response, created_at = EXCLUDED.created_at
             WHERE idempotency.created_at <= $5",
        )
        .bind(self.tenant)
        .bind(key.key)
        .bind(key.request)
        .bind(Json(rec))
        .bind(now - IDEMPOTENCY_RETENTION)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    async fn lock(&mut self, id: RecordId) -> Result<Option<Current>, Error> {
        if let Some(c) = self.pre.as_ref().and_then(|p| p.locked.get(&id)) {
            return Ok(Some(Current {
                wf: c.wf.clone(),
                record: c.record.clone(),
                revision: c.revision,
            }));
        }
        self.flush().await?;
        let Some(row) = stmt::read_for_update(
            &mut *self.tx,
            "SELECT workflow, version, state, fields, assignee, revision, created_at, entered_at FROM records
             WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            self.tenant,
            id,
        )
        .await?
        else {
            return Ok(None);
        };
        crate::snapshot::pg_load_missing(
            &mut self.tx,
            self.tenant,
            self.versions,
            &row.workflow,
            &row.version,
        )
        .await?;
        row.current(self.versions).map(Some)
    }

    async fn actors(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        // Recipients need no loads: no flush, no join.
        stmt::actors(&mut *self.tx, self.tenant).await
    }

    async fn directory(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        // Loads count open records: earlier transitions of a batch included.
        self.flush().await?;
        stmt::directory(&mut *self.tx, self.tenant).await
    }

    async fn insert(
        &mut self,
        wf: &Arc<Workflow>,
        rec: Record,
        now: DateTime<Utc>,
    ) -> Result<RecordId, Error> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
             VALUES ($1, nextval('record_ids'), $2, $3, $4, $5, $6, $7, 1, $8, $9, $10) RETURNING id",
        )
        .bind(self.tenant)
        .bind(&wf.id)
        .bind(&wf.hash)
        .bind(wf.state_name(rec.state))
        .bind(apply::is_final(wf, &rec))
        .bind(Json(rec.fields_json(wf)))
        .bind(&rec.assignee)
        .bind(rec.created_at)
        .bind(rec.entered_at)
        .bind(now)
        .fetch_one(&mut *self.tx)
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
        if let Some(c) = self.pre.as_mut().and_then(|p| p.locked.get_mut(&id)) {
            c.wf = wf.clone();
            c.record = rec.clone();
            c.revision = revision;
        }
        self.buf.update(Update {
            id,
            version: wf.hash.clone(),
            state: wf.state_name(rec.state).to_string(),
            is_final: apply::is_final(wf, &rec),
            fields: serde_json::Value::Object(rec.fields_json(wf)),
            assignee: rec.assignee,
            revision,
            entered_at: rec.entered_at,
            updated_at: now,
        });
        Ok(())
    }

    async fn event(
        &mut self,
        id: RecordId,
        revision: i64,
        e: NewEvent,
        rows: Vec<HistoryEntry>,
    ) -> Result<(), Error> {
        self.buf.event(id, revision, e, rows);
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
        if self.buf.arms(id, timer) || self.buf.cancels(id, timer) {
            self.flush().await?;
        }
        self.invalidate(id, timer);
        let payload = spawn
            .map(serde_json::to_value)
            .transpose()
            .map_err(json_err)?;
        self.buf.arm(Arming {
            record: id,
            timer: timer.to_string(),
            due,
            revision,
            payload,
        });
        if !self.notified && due <= Utc::now() + NOTIFY_HORIZON {
            // Delivered on commit only: a worker never wakes for a rolled-back arming.
            notify_timers(&mut self.tx, self.tenant).await?;
            self.notified = true;
        }
        Ok(())
    }

    async fn cancel(&mut self, id: RecordId, timer: &str) -> Result<(), Error> {
        if self.buf.arms(id, timer) {
            self.flush().await?;
        }
        self.invalidate(id, timer);
        self.buf.cancel(id, timer);
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
        self.buf.message(Message {
            record: id,
            template: template.to_string(),
            recipients: serde_json::Value::from(recipients),
            payload,
            created_at: now,
        });
        Ok(())
    }

    async fn link(&mut self, from: RecordId, name: &str, to: RecordId) -> Result<(), Error> {
        stmt::link(&mut *self.tx, self.tenant, from, name, to).await
    }

    async fn linked(&mut self, from: RecordId, name: &str) -> Result<Vec<RecordId>, Error> {
        stmt::linked(&mut *self.tx, self.tenant, from, name).await
    }

    async fn take(&mut self, item: &DueItem, now: DateTime<Utc>) -> Result<Option<Taken>, Error> {
        if let Some(p) = &mut self.pre {
            let key = (item.record, item.timer.clone());
            match p.taken.remove(&key) {
                Some((seq, t)) if seq == item.seq => return Ok(Some(t)),
                Some(other) => {
                    p.taken.insert(key, other);
                }
                None if p
                    .stale
                    .contains(&(item.record, item.timer.clone(), item.seq)) =>
                {
                    return Ok(None)
                }
                None => {}
            }
        }
        self.flush().await?;
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

type Fields = serde_json::Map<String, serde_json::Value>;

impl group::Batched for PgBackend {
    async fn try_group(
        &self,
        jobs: &[OwnedFire],
    ) -> Result<Vec<Result<StoredRecord, Error>>, Error> {
        let mut tx = self.begin().await?;
        let mut ids: Vec<i64> = jobs.iter().map(|j| j.record).collect();
        tx.lock_all(&mut ids).await?;
        let answers = group::fire_in(&mut tx, &self.versions, jobs).await?;
        Ok(match tx.commit().await {
            Ok(()) => answers,
            Err(e) => group::commit_failed(answers, &e),
        })
    }

    async fn fire_alone(&self, req: &FireRequest<'_>) -> Result<StoredRecord, Error> {
        let mut tx = self.begin().await?;
        match apply::fire(&mut tx, &self.versions, req).await {
            Ok(r) => {
                tx.commit().await?;
                Ok(r)
            }
            Err(e) => {
                drop(tx);
                self.first_result(e).await
            }
        }
    }
}

impl Backend for PgBackend {
    async fn select(&self, filter: &Filter<'_>) -> Result<Vec<RecordId>, Error> {
        let states: Vec<&str> = filter.states.clone();
        let fields: serde_json::Map<String, serde_json::Value> =
            filter.fields.iter().cloned().collect();
        // `fields @> {}` holds for every record; null equalities are checked below.
        let contained: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut tx = self.tx().await?;
        let rows: Vec<(i64, String, Json<Fields>)> = sqlx::query_as(
            "SELECT id, state, fields FROM records WHERE tenant_id = $1 AND workflow = $2 AND (NOT is_final OR $6)
             AND ($3::timestamptz IS NULL OR updated_at < $3) AND (cardinality($4::text[]) = 0 OR state = ANY($4)) AND fields @> $5
             ORDER BY id",
        )
        .bind(&*self.tenant)
        .bind(filter.workflow)
        .bind(filter.idle_since)
        .bind(states)
        .bind(Json(contained))
        .bind(filter.include_final)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .filter(|(_, state, f)| filter.matches(state, &f.0))
            .map(|(id, _, _)| id)
            .collect())
    }

    async fn set_actors(&self, actors: Vec<Actor>) -> Result<(), Error> {
        let mut tx = self.tx().await?;
        sqlx::query("DELETE FROM actors WHERE tenant_id = $1")
            .bind(&*self.tenant)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let ids: Vec<&str> = actors.iter().map(|a| a.id.as_str()).collect();
        let data: Vec<serde_json::Value> = actors
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(json_err)?;
        sqlx::query(
            "INSERT INTO actors (tenant_id, id, data) SELECT $1, u.id, u.data FROM UNNEST($2::text[], $3::jsonb[]) AS u(id, data)
             ON CONFLICT (tenant_id, id) DO UPDATE SET data = excluded.data",
        )
        .bind(&*self.tenant)
        .bind(ids)
        .bind(data)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn set_unavailable(&self, actor: &str, periods: &[Period]) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        let r = sqlx::query(
            "UPDATE actors SET data = jsonb_set(data, '{unavailable}', $3) WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&*self.tenant)
        .bind(actor)
        .bind(Json(periods))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn actors(&self) -> Result<Vec<Actor>, Error> {
        let mut tx = self.begin().await?;
        let d = tx.directory().await?;
        tx.tx.rollback().await.map_err(db)?;
        Ok(d.as_ref().clone())
    }

    async fn create(&self, req: CreateRequest<'_>) -> Result<StoredRecord, Error> {
        let mut tx = self.begin().await?;
        match apply::create(&mut tx, &self.versions, &req).await {
            Ok(r) => {
                tx.commit().await?;
                Ok(r)
            }
            Err(e) => {
                drop(tx);
                self.first_result(e).await
            }
        }
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
        in_tx!(self, c => timers::next_due(c, &self.tenant))
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
            tx.commit().await?;
        }
    }

    async fn get(&self, id: RecordId) -> Result<Option<StoredRecord>, Error> {
        in_tx!(self, c => records::get(c, &self.tenant, id))
    }

    async fn history(&self, id: RecordId) -> Result<Vec<HistoryEntry>, Error> {
        in_tx!(self, c => records::history(c, &self.tenant, id))
    }

    async fn events(&self, id: RecordId) -> Result<Vec<Event>, Error> {
        in_tx!(self, c => records::events(c, &self.tenant, id))
    }

    async fn timers(&self, id: RecordId) -> Result<Vec<ArmedTimer>, Error> {
        in_tx!(self, c => timers::armed(c, &self.tenant, id))
    }

    async fn link_used(&self, link: &str) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        let n: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM used_links WHERE tenant_id = $1 AND id = $2")
                .bind(&*self.tenant)
                .bind(link)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(n.is_some())
    }

    async fn use_link(
        &self,
        link: &str,
        record: RecordId,
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        let r = sqlx::query(
            "INSERT INTO used_links (tenant_id, id, record_id, used_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&*self.tenant)
        .bind(link)
        .bind(record)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    async fn outbox(&self, id: RecordId) -> Result<Vec<OutboxMessage>, Error> {
        in_tx!(self, c => records::outbox(c, &self.tenant, id))
    }

    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error> {
        in_tx!(self, c => records::links(c, &self.tenant, id))
    }
}
