//! One backend chosen at run time from a database URL.

use crate::backend::*;
use crate::mem::MemBackend;
use crate::pg::{PgBackend, PgOptions};
use crate::snapshot::Snapshot;
use crate::sqlite::SqliteBackend;
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Period, WorkflowSet};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;

/// Any store, so callers can pick one from configuration.
pub enum AnyBackend {
    Mem(Box<MemBackend>),
    Sqlite(SqliteBackend),
    Pg(PgBackend),
}

/// Open the store a URL names: `postgres://` or `postgresql://` (PostgreSQL),
/// `sqlite:` (a file, created if missing), `mem:` (in memory). Migrations
/// are applied; the backend is bound to `tenant`.
pub async fn open(url: &str, tenant: &str, set: Arc<WorkflowSet>) -> Result<AnyBackend, Error> {
    if is_pg(url) {
        Ok(AnyBackend::Pg(PgBackend::open(url, tenant, set).await?))
    } else if url.starts_with("sqlite:") {
        Ok(AnyBackend::Sqlite(
            SqliteBackend::open(url, tenant, set).await?,
        ))
    } else if url.starts_with("mem:") {
        Ok(AnyBackend::Mem(Box::new(MemBackend::new(set))))
    } else {
        Err(Error::Storage(crate::error::StoreError::new(
            crate::error::StoreErrorKind::Setup,
            format!("unsupported database URL `{url}`: use postgres://, sqlite: or mem:"),
        )))
    }
}

/// The stores of one daemon. Tenants on the same PostgreSQL URL share one
/// pool of at most `max_connections` connections (each transaction sets its
/// tenant), so the daemon's connection count does not grow with its
/// tenants: `max_connections` per database URL, plus one short-lived
/// connection per URL at start (migrations or the schema check) and the
/// timer workers' LISTEN connection.
pub struct Stores {
    opts: PgOptions,
    pg: HashMap<String, PgPool>,
}

impl Stores {
    pub fn new(opts: PgOptions) -> Stores {
        Stores {
            opts,
            pg: HashMap::new(),
        }
    }

    /// [`open`], on the pool of `url` when a tenant already opened it.
    pub async fn open(
        &mut self,
        url: &str,
        tenant: &str,
        set: Arc<WorkflowSet>,
    ) -> Result<AnyBackend, Error> {
        if !is_pg(url) {
            return open(url, tenant, set).await;
        }
        let pool = match self.pg.get(url) {
            Some(p) => p.clone(),
            None => {
                let p = crate::pg::connect(url, &self.opts).await?;
                self.pg.insert(url.to_string(), p.clone());
                p
            }
        };
        Ok(AnyBackend::Pg(
            PgBackend::open_on(pool, url, tenant, set, &self.opts).await?,
        ))
    }
}

fn is_pg(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl AnyBackend {
    /// Hot reload: `set` becomes current for new records; records keep
    /// running on the version they were created with.
    pub async fn set_workflows(&self, set: &WorkflowSet) -> Result<(), Error> {
        match self {
            AnyBackend::Mem(b) => {
                b.set_workflows(set);
                Ok(())
            }
            AnyBackend::Sqlite(b) => b.set_workflows(set).await,
            AnyBackend::Pg(b) => b.set_workflows(set).await,
        }
    }

    /// Store the project snapshot `set` was loaded from, so its versions are
    /// rebuilt when the store opens again (SQL stores; memory keeps nothing).
    pub async fn register_snapshot(&self, snap: &Snapshot, set: &WorkflowSet) -> Result<(), Error> {
        match self {
            AnyBackend::Mem(_) => Ok(()),
            AnyBackend::Sqlite(b) => b.register_snapshot(snap, set).await,
            AnyBackend::Pg(b) => b.register_snapshot(snap, set).await,
        }
    }

    /// Hot reload with the files: persist the snapshot first (a version is
    /// never current without the files to rebuild it), then publish `set`.
    pub async fn publish(&self, set: &WorkflowSet, snap: &Snapshot) -> Result<(), Error> {
        self.register_snapshot(snap, set).await?;
        self.set_workflows(set).await
    }

    /// Unload those of `older` (versions not current) that no record runs
    /// on; they stay in the database and load again when a record needs
    /// one. Returns the hashes unloaded. The memory store keeps everything
    /// (it has no snapshots to come back from).
    pub async fn unload_unused(&self, older: &[(String, String)]) -> Result<Vec<String>, Error> {
        let used = match self {
            AnyBackend::Mem(_) => return Ok(Vec::new()),
            AnyBackend::Sqlite(b) => {
                crate::snapshot::sqlite_in_use(b.read_pool(), b.tenant(), older).await?
            }
            AnyBackend::Pg(b) => crate::snapshot::pg_in_use(b, older).await?,
        };
        let unused: Vec<String> = older
            .iter()
            .zip(used)
            .filter(|(_, used)| !used)
            .map(|((_, h), _)| h.clone())
            .collect();
        self.versions().unload(&unused);
        Ok(unused)
    }

    /// Every workflow version the store can run (current and older).
    pub fn versions(&self) -> &crate::apply::Versions {
        match self {
            AnyBackend::Mem(b) => b.versions(),
            AnyBackend::Sqlite(b) => b.versions(),
            AnyBackend::Pg(b) => b.versions(),
        }
    }
}

macro_rules! each {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            AnyBackend::Mem($b) => $e,
            AnyBackend::Sqlite($b) => $e,
            AnyBackend::Pg($b) => $e,
        }
    };
}

impl Backend for AnyBackend {
    async fn select(&self, filter: &Filter<'_>) -> Result<Vec<RecordId>, Error> {
        each!(self, b => b.select(filter).await)
    }
    async fn set_actors(&self, actors: Vec<Actor>) -> Result<(), Error> {
        each!(self, b => b.set_actors(actors).await)
    }
    async fn set_unavailable(&self, actor: &str, periods: &[Period]) -> Result<bool, Error> {
        each!(self, b => b.set_unavailable(actor, periods).await)
    }
    async fn actors(&self) -> Result<Vec<Actor>, Error> {
        each!(self, b => b.actors().await)
    }
    async fn create(&self, req: CreateRequest<'_>) -> Result<StoredRecord, Error> {
        each!(self, b => b.create(req).await)
    }
    async fn fire(&self, req: FireRequest<'_>) -> Result<StoredRecord, Error> {
        each!(self, b => b.fire(req).await)
    }
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, Error> {
        each!(self, b => b.next_due().await)
    }
    async fn run_due(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        each!(self, b => b.run_due(now).await)
    }
    async fn get(&self, id: RecordId) -> Result<Option<StoredRecord>, Error> {
        each!(self, b => b.get(id).await)
    }
    async fn history(&self, id: RecordId) -> Result<Vec<HistoryEntry>, Error> {
        each!(self, b => b.history(id).await)
    }

    async fn events(&self, id: RecordId) -> Result<Vec<Event>, Error> {
        each!(self, b => b.events(id).await)
    }
    async fn timers(&self, id: RecordId) -> Result<Vec<ArmedTimer>, Error> {
        each!(self, b => b.timers(id).await)
    }
    async fn outbox(&self, id: RecordId) -> Result<Vec<OutboxMessage>, Error> {
        each!(self, b => b.outbox(id).await)
    }
    async fn links(&self, id: RecordId) -> Result<Vec<Link>, Error> {
        each!(self, b => b.links(id).await)
    }
    async fn link_used(&self, link: &str) -> Result<bool, Error> {
        each!(self, b => b.link_used(link).await)
    }
    async fn use_link(
        &self,
        link: &str,
        record: RecordId,
        at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        each!(self, b => b.use_link(link, record, at).await)
    }
}
