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
use crate::sql::{db, event_kind, join_events, json_err, with_loads, FieldRow, Row};
use crate::worker::{Failed, ParkedRow, ParkedTimer, Retry};
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Period, Record, Workflow, WorkflowSet};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Executor, Postgres, Transaction};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

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
        let mut b = PgBackend {
            tenant: tenant.into(),
            set_tenant: set_tenant_sql(tenant)?.into(),
            versions: Arc::new(Versions::new(&set)),
            pool,
            group: None,
            url: url.into(),
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
        let mut tx = self.tx().await?;
        sqlx::query(
            "INSERT INTO workflow_versions (tenant_id, workflow, hash, source, loaded_at) VALUES ($1, $2, $3, $4, now())
             ON CONFLICT (tenant_id, workflow, hash) DO UPDATE SET source = COALESCE(excluded.source, workflow_versions.source)",
        )
        .bind(&*self.tenant)
        .bind(&wf.id)
        .bind(&wf.hash)
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
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
    /// has a handful. Reads and list queries keep custom plans.
    pub(crate) async fn begin(&self) -> Result<PgTx<'_>, Error> {
        let tx = begin_on(
            &self.pool,
            format!(
                "BEGIN; {}; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off",
                self.set_tenant
            ),
        )
        .await?;
        Ok(PgTx {
            tx,
            tenant: &self.tenant,
            versions: &self.versions,
            notified: false,
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
             WHERE t.tenant_id = c.tenant_id AND t.record_id = c.record_id AND t.timer = c.timer
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
        let mut tx = self.tx().await?;
        let attempts: Option<i32> = sqlx::query_scalar(
            "UPDATE timers SET attempts = attempts + 1, last_error = $1, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = $2 AND record_id = $3 AND timer = $4 AND seq = $5 AND fired_at IS NULL RETURNING attempts",
        )
        .bind(error)
        .bind(&*self.tenant)
        .bind(item.record)
        .bind(&item.timer)
        .bind(item.seq)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(attempts) = attempts else {
            return Ok(None);
        };
        let f = retry.after(attempts.max(0) as u32, now);
        sqlx::query(
            "UPDATE timers SET next_attempt_at = $1, parked_at = $2
             WHERE tenant_id = $3 AND record_id = $4 AND timer = $5 AND seq = $6",
        )
        .bind(f.next_attempt)
        .bind(f.parked.then_some(now))
        .bind(&*self.tenant)
        .bind(item.record)
        .bind(&item.timer)
        .bind(item.seq)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(f))
    }

    /// The tenant's parked timer items, oldest parking first.
    pub async fn parked(&self) -> Result<Vec<ParkedTimer>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<ParkedRow> = sqlx::query_as(
            "SELECT record_id, timer, due, attempts, last_error, parked_at FROM timers
             WHERE tenant_id = $1 AND fired_at IS NULL AND parked_at IS NOT NULL ORDER BY parked_at, record_id, timer",
        )
        .bind(&*self.tenant)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().map(ParkedTimer::from_row).collect())
    }

    /// Give a parked item back to the workers (attempts start again) and
    /// wake them. `false`: no such parked item.
    pub async fn retry_parked(&self, record: RecordId, timer: &str) -> Result<bool, Error> {
        let mut tx = self.tx().await?;
        let r = sqlx::query(
            "UPDATE timers SET parked_at = NULL, next_attempt_at = NULL, attempts = 0
             WHERE tenant_id = $1 AND record_id = $2 AND timer = $3 AND fired_at IS NULL AND parked_at IS NOT NULL",
        )
        .bind(&*self.tenant)
        .bind(record)
        .bind(timer)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(TIMER_CHANNEL)
            .bind(&*self.tenant)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    /// Give back the unfired claims of `owner` (on shutdown).
    pub async fn release(&self, owner: &str) -> Result<u64, Error> {
        let mut tx = self.tx().await?;
        let r = sqlx::query("UPDATE timers SET claim_owner = NULL, lease_until = NULL WHERE tenant_id = $1 AND claim_owner = $2 AND fired_at IS NULL")
            .bind(&*self.tenant)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r.rows_affected())
    }
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
    crate::pg_roles::prepare(url, opts.migrate).await?;
    PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(Duration::from_secs(60))
        // No ping (a round trip) before every transaction: a connection
        // the server dropped fails its first statement instead, with a
        // storage error, and the pool then discards it.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET ROLE leadflow_app").await?;
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

#[derive(Default)]
struct Buffer {
    u_id: Vec<i64>,
    u_version: Vec<String>,
    u_state: Vec<String>,
    u_final: Vec<bool>,
    u_fields: Vec<serde_json::Value>,
    u_assignee: Vec<Option<String>>,
    u_revision: Vec<i64>,
    u_entered: Vec<DateTime<Utc>>,
    u_updated: Vec<DateTime<Utc>>,
    h_record: Vec<i64>,
    h_revision: Vec<i64>,
    h_ord: Vec<i32>,
    h_at: Vec<DateTime<Utc>>,
    h_actor: Vec<String>,
    h_transition: Vec<String>,
    h_field: Vec<String>,
    h_old: Vec<serde_json::Value>,
    h_new: Vec<serde_json::Value>,
    e_record: Vec<i64>,
    e_revision: Vec<i64>,
    e_workflow: Vec<String>,
    e_at: Vec<DateTime<Utc>>,
    e_kind: Vec<&'static str>,
    e_actor: Vec<String>,
    e_transition: Vec<Option<String>>,
    e_from: Vec<Option<String>>,
    e_to: Vec<String>,
    e_assignee: Vec<Option<String>>,
    e_input: Vec<Option<serde_json::Value>>,
    c_record: Vec<i64>,
    c_timer: Vec<String>,
    a_record: Vec<i64>,
    a_timer: Vec<String>,
    a_due: Vec<DateTime<Utc>>,
    a_revision: Vec<i64>,
    a_payload: Vec<Option<serde_json::Value>>,
    o_record: Vec<i64>,
    o_template: Vec<String>,
    o_recipients: Vec<serde_json::Value>,
    o_payload: Vec<serde_json::Value>,
    o_created: Vec<DateTime<Utc>>,
}

impl Buffer {
    fn is_empty(&self) -> bool {
        self.u_id.is_empty()
            && self.h_record.is_empty()
            && self.e_record.is_empty()
            && self.c_record.is_empty()
            && self.a_record.is_empty()
            && self.o_record.is_empty()
    }

    fn arms(&self, id: RecordId, timer: &str) -> bool {
        self.a_record
            .iter()
            .zip(&self.a_timer)
            .any(|(r, t)| *r == id && t == timer)
    }

    fn cancels(&self, id: RecordId, timer: &str) -> bool {
        self.c_record
            .iter()
            .zip(&self.c_timer)
            .any(|(r, t)| *r == id && t == timer)
    }

    /// Bit set of the non-empty parts: 1 updates (several records), 2
    /// history, 4 cancels, 8 armings, 16 update (one record: a plain primary
    /// key update, whatever the planner knows about the table), 32 outbox,
    /// 64 events.
    fn parts(&self) -> usize {
        usize::from(self.u_id.len() > 1)
            | usize::from(self.u_id.len() == 1) << 4
            | usize::from(!self.h_record.is_empty()) << 1
            | usize::from(!self.c_record.is_empty()) << 2
            | usize::from(!self.a_record.is_empty()) << 3
            | usize::from(!self.o_record.is_empty()) << 5
            | usize::from(!self.e_record.is_empty()) << 6
    }
}

/// The flush statement for a set of non-empty parts (see [`Buffer::parts`]):
/// data-modifying CTEs over UNNEST arrays, only for the parts present, so the
/// server plans and runs nothing for empty ones. Parameters: $1 the tenant,
/// then each present part's arrays in order.
fn flush_sql(parts: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    &SQL.get_or_init(|| (0..128).map(build_flush_sql).collect())[parts]
}

/// Each join on UNNEST arrays also says `id = ANY(array)`: the index scan
/// then visits only the listed rows whatever the planner thinks of the join
/// (without statistics, or with one big tenant, it hashes the whole table).
fn build_flush_sql(parts: usize) -> String {
    let mut n = 1;
    let mut p = |k: usize| {
        let s: Vec<String> = (n + 1..=n + k).map(|i| format!("${i}")).collect();
        n += k;
        s
    };
    let mut ctes = Vec::new();
    if parts & 16 != 0 {
        let a = p(9);
        ctes.push(format!(
            "u AS (UPDATE records SET version = {}, state = {}, is_final = {}, fields = {}, assignee = {}, revision = {},
                entered_at = {}, updated_at = {}
             WHERE tenant_id = $1 AND id = {})",
            a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[0]
        ));
    }
    if parts & 1 != 0 {
        let a = p(9);
        ctes.push(format!(
            "u AS (UPDATE records r SET version = x.version, state = x.state, is_final = x.is_final, fields = x.fields,
                assignee = x.assignee, revision = x.revision, entered_at = x.entered_at, updated_at = x.updated_at
             FROM UNNEST({}::bigint[], {}::text[], {}::text[], {}::bool[], {}::jsonb[], {}::text[], {}::bigint[], {}::timestamptz[], {}::timestamptz[])
                  AS x(id, version, state, is_final, fields, assignee, revision, entered_at, updated_at)
             WHERE r.tenant_id = $1 AND r.id = ANY({}) AND r.id = x.id)",
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[0]
        ));
    }
    if parts & 2 != 0 {
        let a = p(9);
        ctes.push(format!(
            "h AS (INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new)
             SELECT $1, x.record_id, x.revision, x.ord, x.at, x.actor, x.transition, x.field, x.old, x.new
             FROM UNNEST({}::bigint[], {}::bigint[], {}::int[], {}::timestamptz[], {}::text[], {}::text[], {}::text[], {}::jsonb[], {}::jsonb[])
                  AS x(record_id, revision, ord, at, actor, transition, field, old, new))",
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]
        ));
    }
    if parts & 64 != 0 {
        let a = p(11);
        ctes.push(format!(
            "e AS (INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee, input)
             SELECT $1, x.record_id, x.revision, x.workflow, x.at, x.kind, x.actor, x.transition, x.from_state, x.to_state, x.assignee, x.input
             FROM UNNEST({}::bigint[], {}::bigint[], {}::text[], {}::timestamptz[], {}::text[], {}::text[], {}::text[], {}::text[], {}::text[], {}::text[], {}::jsonb[])
                  AS x(record_id, revision, workflow, at, kind, actor, transition, from_state, to_state, assignee, input))",
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]
        ));
    }
    if parts & 4 != 0 {
        let a = p(2);
        ctes.push(format!(
            "c AS (DELETE FROM timers t USING UNNEST({}::bigint[], {}::text[]) AS d(record_id, timer)
             WHERE t.tenant_id = $1 AND t.record_id = ANY({}) AND t.record_id = d.record_id AND t.timer = d.timer)",
            a[0], a[1], a[0]
        ));
    }
    if parts & 8 != 0 {
        let a = p(5);
        ctes.push(format!(
            "a AS (INSERT INTO timers (tenant_id, record_id, timer, due, seq, armed_revision, payload)
             SELECT $1, x.record_id, x.timer, x.due, nextval('timer_seq'), x.revision, x.payload
             FROM UNNEST({}::bigint[], {}::text[], {}::timestamptz[], {}::bigint[], {}::jsonb[]) AS x(record_id, timer, due, revision, payload)
             ON CONFLICT (tenant_id, record_id, timer) DO UPDATE SET due = excluded.due, seq = excluded.seq,
                armed_revision = excluded.armed_revision, payload = excluded.payload, claim_owner = NULL, lease_until = NULL, fired_at = NULL,
                attempts = 0, last_error = NULL, next_attempt_at = NULL, parked_at = NULL)",
            a[0], a[1], a[2], a[3], a[4]
        ));
    }
    if parts & 32 != 0 {
        let a = p(5);
        ctes.push(format!(
            "o AS (INSERT INTO outbox (tenant_id, id, record_id, template, recipients, payload, created_at, next_attempt)
             SELECT $1, nextval('outbox_ids'), x.record_id, x.template, x.recipients, x.payload, x.created_at, x.created_at
             FROM UNNEST({}::bigint[], {}::text[], {}::jsonb[], {}::jsonb[], {}::timestamptz[]) WITH ORDINALITY
                  AS x(record_id, template, recipients, payload, created_at, n)
             ORDER BY x.n)",
            a[0], a[1], a[2], a[3], a[4]
        ));
    }
    format!("WITH {} SELECT 1", ctes.join(", "))
}

impl PgTx<'_> {
    /// Send the buffered writes in one statement of data-modifying CTEs.
    /// The engine never cancels and arms the same timer in one outcome, and
    /// buffering flushes first when a timer row would be touched twice (a
    /// record updated twice keeps only its last row image).
    async fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut b = std::mem::take(&mut self.buf);
        let parts = b.parts();
        let mut q = sqlx::query(flush_sql(parts)).bind(self.tenant);
        if parts & 16 != 0 {
            q = q
                .bind(b.u_id[0])
                .bind(b.u_version.pop())
                .bind(b.u_state.pop())
                .bind(b.u_final[0])
                .bind(b.u_fields.pop())
                .bind(b.u_assignee.pop().flatten())
                .bind(b.u_revision[0])
                .bind(b.u_entered[0])
                .bind(b.u_updated[0]);
        }
        if parts & 1 != 0 {
            q = q
                .bind(b.u_id)
                .bind(b.u_version)
                .bind(b.u_state)
                .bind(b.u_final)
                .bind(b.u_fields)
                .bind(b.u_assignee)
                .bind(b.u_revision)
                .bind(b.u_entered)
                .bind(b.u_updated);
        }
        if parts & 2 != 0 {
            q = q
                .bind(b.h_record)
                .bind(b.h_revision)
                .bind(b.h_ord)
                .bind(b.h_at)
                .bind(b.h_actor)
                .bind(b.h_transition)
                .bind(b.h_field)
                .bind(b.h_old)
                .bind(b.h_new);
        }
        if parts & 64 != 0 {
            q = q
                .bind(b.e_record)
                .bind(b.e_revision)
                .bind(b.e_workflow)
                .bind(b.e_at)
                .bind(b.e_kind)
                .bind(b.e_actor)
                .bind(b.e_transition)
                .bind(b.e_from)
                .bind(b.e_to)
                .bind(b.e_assignee)
                .bind(b.e_input);
        }
        if parts & 4 != 0 {
            q = q.bind(b.c_record).bind(b.c_timer);
        }
        if parts & 8 != 0 {
            q = q
                .bind(b.a_record)
                .bind(b.a_timer)
                .bind(b.a_due)
                .bind(b.a_revision)
                .bind(b.a_payload);
        }
        if parts & 32 != 0 {
            q = q
                .bind(b.o_record)
                .bind(b.o_template)
                .bind(b.o_recipients)
                .bind(b.o_payload)
                .bind(b.o_created);
        }
        q.execute(&mut *self.tx).await.map_err(db)?;
        Ok(())
    }

    /// Lock the records `ids` in one statement, in id order (as every batch
    /// does, so batches cannot deadlock), and keep them for `lock` to answer
    /// from memory for the rest of the transaction.
    async fn lock_all(&mut self, ids: &mut Vec<i64>) -> Result<(), Error> {
        self.flush().await?;
        ids.sort_unstable();
        ids.dedup();
        type R = (
            i64,
            String,
            String,
            String,
            Json<serde_json::Map<String, serde_json::Value>>,
            Option<String>,
            i64,
            DateTime<Utc>,
            DateTime<Utc>,
        );
        let rows: Vec<R> = sqlx::query_as(
            "SELECT id, workflow, version, state, fields, assignee, revision, created_at, entered_at FROM records
             WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
        )
        .bind(self.tenant)
        .bind(&*ids)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        let mut pre = Prefetch::default();
        for (id, workflow, version, state, fields, assignee, revision, created_at, entered_at) in
            rows
        {
            let row = Row {
                workflow,
                version,
                state,
                fields: fields.0,
                assignee,
                revision,
                created_at,
                entered_at,
            };
            // A record that cannot be loaded is left to `lock`, which
            // reports the same error as one at a time would.
            if let Ok(cur) = row.current(self.versions) {
                pre.locked.insert(id, cur);
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
        let rows: Vec<(bool,)> = sqlx::query_as(
            "SELECT kind = 'timer' AND at = $1 FROM events WHERE tenant_id = $2 AND record_id = $3 ORDER BY revision DESC LIMIT $4",
        )
        .bind(at)
        .bind(self.tenant)
        .bind(id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(rows.iter().take_while(|(same,)| *same).count())
    }

    async fn idem_get(&mut self, key: &str) -> Result<Option<(String, StoredRecord)>, Error> {
        let r: Option<(String, Json<StoredRecord>)> = sqlx::query_as(
            "SELECT request, response FROM idempotency WHERE tenant_id = $1 AND key = $2 AND created_at > $3",
        )
        .bind(self.tenant)
        .bind(key)
        .bind(Utc::now() - IDEMPOTENCY_RETENTION)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(r.map(|(q, j)| (q, j.0)))
    }

    async fn idem_put(&mut self, key: Idempotency<'_>, rec: &StoredRecord) -> Result<bool, Error> {
        // One statement: delete a few expired keys of the tenant (not this
        // one: a statement cannot change a row twice), then insert, or
        // replace this key if it has expired.
        let now = Utc::now();
        let r = sqlx::query(
            "WITH expired AS (
                 DELETE FROM idempotency WHERE ctid IN (
                     SELECT ctid FROM idempotency
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
        type R = (
            String,
            String,
            String,
            Json<serde_json::Map<String, serde_json::Value>>,
            Option<String>,
            i64,
            DateTime<Utc>,
            DateTime<Utc>,
        );
        let row: Option<R> = sqlx::query_as(
            "SELECT workflow, version, state, fields, assignee, revision, created_at, entered_at FROM records
             WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        let Some((workflow, version, state, fields, assignee, revision, created_at, entered_at)) =
            row
        else {
            return Ok(None);
        };
        let row = Row {
            workflow,
            version,
            state,
            fields: fields.0,
            assignee,
            revision,
            created_at,
            entered_at,
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
        let rows: Vec<Json<Actor>> =
            sqlx::query_scalar("SELECT data FROM actors WHERE tenant_id = $1 ORDER BY id")
                .bind(self.tenant)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db)?;
        Ok(Arc::new(rows.into_iter().map(|a| a.0).collect()))
    }

    async fn directory(&mut self) -> Result<Arc<Vec<Actor>>, Error> {
        // Loads count open records: earlier transitions of a batch included.
        self.flush().await?;
        // Loads are kept by triggers on records (migration 0005).
        let rows: Vec<(Json<Actor>, Option<i64>)> = sqlx::query_as(
            "SELECT a.data, l.open_records FROM actors a
             LEFT JOIN actor_loads l ON l.tenant_id = a.tenant_id AND l.actor = a.id
             WHERE a.tenant_id = $1 ORDER BY a.id",
        )
        .bind(self.tenant)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(with_loads(
            rows.into_iter().map(|(a, l)| (a.0, l.unwrap_or(0))),
        ))
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
        let state = wf.state_name(rec.state).to_string();
        let is_final = apply::is_final(wf, &rec);
        let fields = serde_json::Value::Object(rec.fields_json(wf));
        let b = &mut self.buf;
        // A record updated twice before a flush keeps its last row image.
        let k = match b.u_id.iter().position(|u| *u == id) {
            Some(k) => k,
            None => {
                b.u_id.push(id);
                b.u_version.push(String::new());
                b.u_state.push(String::new());
                b.u_final.push(false);
                b.u_fields.push(serde_json::Value::Null);
                b.u_assignee.push(None);
                b.u_revision.push(0);
                b.u_entered.push(now);
                b.u_updated.push(now);
                b.u_id.len() - 1
            }
        };
        b.u_version[k] = wf.hash.clone();
        b.u_state[k] = state;
        b.u_final[k] = is_final;
        b.u_fields[k] = fields;
        b.u_assignee[k] = rec.assignee;
        b.u_revision[k] = revision;
        b.u_entered[k] = rec.entered_at;
        b.u_updated[k] = now;
        Ok(())
    }

    async fn event(
        &mut self,
        id: RecordId,
        revision: i64,
        e: NewEvent,
        rows: Vec<HistoryEntry>,
    ) -> Result<(), Error> {
        let b = &mut self.buf;
        b.e_record.push(id);
        b.e_revision.push(revision);
        b.e_workflow.push(e.workflow);
        b.e_at.push(e.at);
        b.e_kind.push(e.kind.as_str());
        b.e_actor.push(e.actor);
        b.e_transition.push(e.transition);
        b.e_from.push(e.from);
        b.e_to.push(e.to);
        b.e_assignee.push(e.assignee);
        b.e_input.push(e.input);
        for (ord, h) in rows.into_iter().enumerate() {
            b.h_record.push(id);
            b.h_revision.push(revision);
            b.h_ord.push(ord as i32);
            b.h_at.push(h.at);
            b.h_actor.push(h.actor);
            b.h_transition.push(h.transition);
            b.h_field.push(h.field);
            b.h_old.push(h.old);
            b.h_new.push(h.new);
        }
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
        let b = &mut self.buf;
        b.a_record.push(id);
        b.a_timer.push(timer.to_string());
        b.a_due.push(due);
        b.a_revision.push(revision);
        b.a_payload.push(payload);
        if !self.notified && due <= Utc::now() + NOTIFY_HORIZON {
            // Delivered on commit only: a worker never wakes for a rolled-back arming.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(TIMER_CHANNEL)
                .bind(self.tenant)
                .execute(&mut *self.tx)
                .await
                .map_err(db)?;
            self.notified = true;
        }
        Ok(())
    }

    async fn cancel(&mut self, id: RecordId, timer: &str) -> Result<(), Error> {
        if self.buf.arms(id, timer) {
            self.flush().await?;
        }
        self.invalidate(id, timer);
        self.buf.c_record.push(id);
        self.buf.c_timer.push(timer.to_string());
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
        // Sent with the other buffered writes, in the order queued.
        let b = &mut self.buf;
        b.o_record.push(id);
        b.o_template.push(template.to_string());
        b.o_recipients.push(serde_json::Value::from(recipients));
        b.o_payload.push(payload);
        b.o_created.push(now);
        Ok(())
    }

    async fn link(&mut self, from: RecordId, name: &str, to: RecordId) -> Result<(), Error> {
        sqlx::query("INSERT INTO links (tenant_id, from_id, name, to_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(self.tenant)
            .bind(from)
            .bind(name)
            .bind(to)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn linked(&mut self, from: RecordId, name: &str) -> Result<Vec<RecordId>, Error> {
        sqlx::query_scalar(
            "SELECT to_id FROM links WHERE tenant_id = $1 AND from_id = $2 AND name = $3 ORDER BY to_id",
        )
        .bind(self.tenant)
        .bind(from)
        .bind(name)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db)
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
        let row: Option<(Option<Json<SpawnPayload>>,)> = sqlx::query_as(
            "UPDATE timers SET fired_at = $1, claim_owner = NULL, lease_until = NULL
             WHERE tenant_id = $2 AND record_id = $3 AND timer = $4 AND seq = $5 AND fired_at IS NULL RETURNING payload",
        )
        .bind(now)
        .bind(self.tenant)
        .bind(item.record)
        .bind(&item.timer)
        .bind(item.seq)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db)?;
        Ok(match row {
            None => None,
            Some((None,)) => Some(Taken::Timer),
            Some((Some(p),)) => Some(Taken::Spawn(p.0)),
        })
    }
}

type RecordRow = (
    i64,
    String,
    String,
    String,
    Json<serde_json::Map<String, serde_json::Value>>,
    Option<String>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

type Fields = serde_json::Map<String, serde_json::Value>;
type OutboxRow = (
    i64,
    String,
    Json<Vec<String>>,
    i64,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    i32,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    serde_json::Value,
);

fn record_from(r: RecordRow) -> StoredRecord {
    let (
        id,
        workflow,
        version,
        state,
        fields,
        assignee,
        revision,
        created_at,
        entered_at,
        updated_at,
    ) = r;
    StoredRecord {
        id,
        workflow,
        version,
        state,
        fields: fields.0,
        assignee,
        revision,
        created_at,
        entered_at,
        updated_at,
    }
}

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
        // Retrying items are due at their next attempt (always after their
        // due instant); parked ones wait for an operator.
        let mut tx = self.tx().await?;
        let r = sqlx::query_scalar(
            "SELECT MIN(at) FROM (
               SELECT MIN(due) AS at FROM timers WHERE tenant_id = $1 AND fired_at IS NULL AND next_attempt_at IS NULL AND parked_at IS NULL
               UNION ALL
               SELECT MIN(next_attempt_at) FROM timers WHERE tenant_id = $1 AND fired_at IS NULL AND next_attempt_at IS NOT NULL) n",
        )
        .bind(&*self.tenant)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r)
    }

    async fn run_due(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        let mut ran = 0;
        loop {
            let mut tx = self.begin().await?;
            // Not locked here: `run_item` locks the record first and then the
            // timer row, the same order as a transition, so no deadlock.
            let next: Option<(i64, String, DateTime<Utc>, i64)> = sqlx::query_as(
                "SELECT record_id, timer, due, seq FROM timers WHERE tenant_id = $1 AND fired_at IS NULL AND parked_at IS NULL AND due <= $2
                 AND (lease_until IS NULL OR lease_until < now()) ORDER BY due, seq LIMIT 1",
            )
            .bind(&*self.tenant)
            .bind(now)
            .fetch_optional(&mut *tx.tx)
            .await
            .map_err(db)?;
            let Some((record, timer, due, seq)) = next else {
                tx.tx.rollback().await.map_err(db)?;
                return Ok(ran);
            };
            let item = DueItem {
                record,
                timer,
                due,
                seq,
            };
            if apply::run_item(&mut tx, &self.versions, &item).await? == Ran::Fired {
                ran += 1;
            }
            tx.commit().await?;
        }
    }

    async fn get(&self, id: RecordId) -> Result<Option<StoredRecord>, Error> {
        let mut tx = self.tx().await?;
        let r: Option<RecordRow> = sqlx::query_as(
            "SELECT id, workflow, version, state, fields, assignee, revision, created_at, entered_at, updated_at FROM records WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&*self.tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(r.map(record_from))
    }

    async fn history(&self, id: RecordId) -> Result<Vec<HistoryEntry>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<(DateTime<Utc>, String, String, String, serde_json::Value, serde_json::Value)> = sqlx::query_as(
            "SELECT at, actor, transition, field, old, new FROM history WHERE tenant_id = $1 AND record_id = $2 ORDER BY revision, ord",
        )
        .bind(&*self.tenant)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(at, actor, transition, field, old, new)| HistoryEntry {
                at,
                actor,
                transition,
                field,
                old,
                new,
            })
            .collect())
    }

    async fn events(&self, id: RecordId) -> Result<Vec<Event>, Error> {
        type E = (
            String,
            i64,
            Option<i64>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Json<serde_json::Map<String, serde_json::Value>>>,
        );
        type F = (
            i64,
            DateTime<Utc>,
            String,
            String,
            String,
            serde_json::Value,
            serde_json::Value,
        );
        let mut tx = self.tx().await?;
        // From the record, so that its workflow is known without events.
        let rows: Vec<E> = sqlx::query_as(
            "SELECT r.workflow, r.revision, e.revision, e.workflow, e.at, e.kind, e.actor, e.transition, e.from_state, e.to_state, e.assignee, e.input
             FROM records r LEFT JOIN events e ON e.tenant_id = r.tenant_id AND e.record_id = r.id
             WHERE r.tenant_id = $1 AND r.id = $2 ORDER BY e.revision",
        )
        .bind(&*self.tenant)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let fields: Vec<F> = sqlx::query_as(
            "SELECT revision, at, actor, transition, field, old, new FROM history WHERE tenant_id = $1 AND record_id = $2 ORDER BY revision, ord",
        )
        .bind(&*self.tenant)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let Some((workflow, upto)) = rows.first().map(|r| (r.0.clone(), r.1)) else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        for (_, _, revision, wf, at, kind, actor, transition, from, to, assignee, input) in rows {
            let (Some(revision), Some(wf), Some(at), Some(kind), Some(actor)) =
                (revision, wf, at, kind, actor)
            else {
                continue;
            };
            events.push(Event {
                record: id,
                revision,
                workflow: wf,
                at,
                kind: event_kind(&kind)?,
                actor,
                transition,
                from,
                to,
                assignee,
                input: input.map(|i| i.0),
                changes: Vec::new(),
            });
        }
        let fields = fields
            .into_iter()
            .map(|(revision, at, actor, label, field, old, new)| FieldRow {
                revision,
                at,
                actor,
                label,
                field,
                old,
                new,
            })
            .collect();
        Ok(join_events(id, &workflow, upto, events, fields))
    }

    async fn timers(&self, id: RecordId) -> Result<Vec<ArmedTimer>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT timer, due FROM timers WHERE tenant_id = $1 AND record_id = $2 AND fired_at IS NULL ORDER BY due, timer")
                .bind(&*self.tenant)
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(timer, due)| ArmedTimer {
                record: id,
                timer,
                due,
            })
            .collect())
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
        let mut tx = self.tx().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, template, recipients, COALESCE((payload->>'revision')::bigint, 0), created_at, delivered_at, attempts, last_error, failed_at, note, payload FROM outbox WHERE tenant_id = $1 AND record_id = $2 ORDER BY id",
        )
        .bind(&*self.tenant)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    oid,
                    template,
                    recipients,
                    revision,
                    created_at,
                    delivered_at,
                    attempts,
                    last_error,
                    failed_at,
                    note,
                    payload,
                )| OutboxMessage {
                    id: oid,
                    record: id,
                    template,
                    recipients: recipients.0,
                    revision,
                    created_at,
                    delivered_at,
                    attempts,
                    last_error,
                    failed_at,
                    note,
                    payload: Some(payload),
                },
            )
            .collect())
    }

    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, to_id FROM links WHERE tenant_id = $1 AND from_id = $2 ORDER BY name, to_id")
            .bind(&*self.tenant)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(name, to)| Link { from: id, name, to })
            .collect())
    }
}
