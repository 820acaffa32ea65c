//! The daemon's shared state: tenants (each with its store, actor directory,
//! pools and last reload status) and the API keys that lead to them.

use super::error::ApiError;
use crate::any::{AnyBackend, Stores};
use crate::backend::StoredRecord;
use crate::config::{Config, ConfigError, PoolConfig, ServerConfig, TenantConfig};
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Diagnostic, WorkflowSet};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

/// The outcome of the last load of a tenant's workflow files.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// False when the files on disk have errors (the last good versions
    /// keep serving).
    pub ok: bool,
    pub checked_at: Option<DateTime<Utc>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Set when the files could not even be read.
    pub error: Option<String>,
}

pub struct Tenant {
    pub id: String,
    pub config: TenantConfig,
    pub backend: AnyBackend,
    /// The actor directory as last read from the store (the store is the
    /// truth): read at start and again by the actor endpoints; actor-bound
    /// keys and the actions endpoint use this copy.
    pub actors: RwLock<Arc<Vec<Actor>>>,
    pub status: RwLock<ReloadStatus>,
    /// The tenant's message templates, shared with its outbox dispatcher
    /// (set when the daemon starts it; hot reload publishes new versions).
    pub templates: std::sync::OnceLock<Arc<crate::templates::Templates>>,
}

impl Tenant {
    pub fn pools(&self) -> &[PoolConfig] {
        &self.config.pools
    }

    pub fn actor(&self, id: &str) -> Option<Actor> {
        self.directory().iter().find(|a| a.id == id).cloned()
    }

    pub fn directory(&self) -> Arc<Vec<Actor>> {
        self.actors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the caller may see (and act on) a record: admins see every
    /// record; an actor sees its own, the pools it may claim from, and the
    /// records its workflow's `visible_to`/`reveal_to` show it (its team's,
    /// its area's: `crate::org`).
    pub fn visible(&self, caller: &Caller, r: &StoredRecord) -> bool {
        visible_to(self.pools(), self.backend.versions(), caller, r)
    }
}

/// [`Tenant::visible`] from its parts: also what `leadflow export
/// --actor` applies, so an export shows exactly what that actor's key
/// would see.
pub fn visible_to(
    pools: &[PoolConfig],
    versions: &crate::apply::Versions,
    caller: &Caller,
    r: &StoredRecord,
) -> bool {
    if caller.admin {
        return true;
    }
    if r.assignee.as_deref() == Some(caller.actor.id.as_str()) {
        return true;
    }
    let by_org = || {
        // The current version's rules, as the list and history queries.
        versions.current(&r.workflow).ok().is_some_and(|wf| {
            crate::org::sees(
                &wf,
                &caller.directory,
                &caller.actor,
                r.assignee.as_deref(),
                &r.fields,
            )
        })
    };
    if by_org() {
        return true;
    }
    pools.iter().any(|p| {
        let in_zone = || {
            r.fields
                .get(&p.zone_field)
                .and_then(|v| v.as_str())
                .is_some_and(|z| caller.actor.zones.iter().any(|c| c == z))
        };
        p.workflow == r.workflow
            && ((r.assignee.is_none() && p.states.contains(&r.state))
                || p.followed_by(&caller.actor))
            && in_zone()
    })
}

/// Who is calling: resolved from the API key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    /// The key's name (logs, idempotency scope); never the key.
    pub key: String,
    pub admin: bool,
    /// What transitions are evaluated with.
    pub actor: Actor,
    /// The tenant's directory when the request came in: who manages whom,
    /// who is responsible for which area (`crate::org`).
    pub directory: Arc<Vec<Actor>>,
}

impl Caller {
    /// Who the caller is for the `pii` rule on record `r` of `wf`.
    pub fn viewer(
        &self,
        wf: Option<&leadflow_engine::Workflow>,
        r: &StoredRecord,
    ) -> crate::privacy::Viewer<'_> {
        use crate::privacy::Viewer;
        if self.admin {
            return Viewer::Admin;
        }
        let assignee = r.assignee.as_deref();
        match wf {
            Some(wf)
                if assignee != Some(self.actor.id.as_str())
                    && crate::org::reveals(
                        wf,
                        &self.directory,
                        &self.actor,
                        assignee,
                        &r.fields,
                    ) =>
            {
                Viewer::Revealed
            }
            _ => Viewer::Actor(&self.actor.id),
        }
    }
}

/// One configured key.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub hash: [u8; 32],
    pub tenant: String,
    pub name: String,
    /// None: an admin key.
    pub actor: Option<String>,
    pub role: String,
    /// Refused from this instant on (rotation).
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct Inner {
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    pub keys: Vec<KeyEntry>,
    /// False until every tenant's store is open, and again while shutting down.
    pub ready: AtomicBool,
    /// The daemon's supervised background tasks (timer workers, outbox
    /// dispatchers), for `/readyz`.
    pub tasks: crate::background::Tasks,
    /// Connection and body limits (`[server]`).
    pub limits: Arc<ServerConfig>,
    /// SHA-256 of the `/metrics` bearer token; `None`: metrics disabled.
    pub metrics_token: Option<[u8; 32]>,
    /// The key of one-click action links, set once the daemon knows its
    /// address ([`crate::http::Server::start`]); unset, every link page
    /// answers `E_LINK_INVALID`.
    pub links: std::sync::OnceLock<Arc<crate::links::LinkKey>>,
    /// Where handlers read the time ([`AppState::now`]).
    pub clock: Arc<dyn crate::clock::ReadClock>,
    /// The running imports and bulk operations (`http/jobs.rs`).
    pub jobs: super::jobs::Runner,
}

/// Cheap to clone; handed to every handler.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl AppState {
    /// The time of a request, from the daemon's clock, at the stores'
    /// precision (microseconds): what a create or fire response shows is
    /// what later reads show, field values set to `now` included.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.read()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("tenant `{tenant}`: {message}")]
    Workflows { tenant: String, message: String },
    #[error("tenant `{tenant}`: {source}")]
    Store {
        tenant: String,
        source: crate::backend::Error,
    },
}

/// Why a tenant's files did not load: the findings, or an IO error.
pub type LoadFailure = (Vec<Diagnostic>, Option<String>);

/// Load one tenant's workflows: `Ok` only if they load without errors.
pub fn load_workflows(t: &TenantConfig) -> Result<(WorkflowSet, Vec<Diagnostic>), LoadFailure> {
    load_project(t).map(|(set, diagnostics, _)| (set, diagnostics))
}

/// [`load_workflows`], with the snapshot of the files the set was loaded
/// from (stored so that the versions survive a restart).
pub fn load_project(
    t: &TenantConfig,
) -> Result<(WorkflowSet, Vec<Diagnostic>, Snapshot), LoadFailure> {
    let project = t
        .read_project()
        .map_err(|e| (Vec::new(), Some(e.to_string())))?;
    // Over a size limit: refused before the engine spends time and memory.
    let over = crate::project_limits::check(&project, &t.limits);
    if !over.is_empty() {
        return Err((over, None));
    }
    let loaded = leadflow_engine::load(&project);
    if loaded.has_errors() {
        return Err((loaded.diagnostics, None));
    }
    Ok((loaded.set, loaded.diagnostics, Snapshot::of(&project)))
}

impl AppState {
    /// Open every tenant's store (migrations applied) and load its
    /// workflows; a tenant whose files have errors stops the start.
    pub async fn open(config: &Config) -> Result<AppState, StartError> {
        let clock: Arc<dyn crate::clock::ReadClock> = Arc::new(crate::clock::SystemClock);
        let mut tenants = BTreeMap::new();
        let mut keys = Vec::new();
        let mut stores = Stores::new(config.pg_options());
        let metrics_token = config.metrics_token()?;
        for (id, tc) in &config.tenants {
            let (set, diagnostics, snapshot) =
                load_project(tc).map_err(|(d, e)| StartError::Workflows {
                    tenant: id.clone(),
                    message: e.unwrap_or_else(|| {
                        let errors: Vec<String> = d
                            .iter()
                            .filter(|d| d.is_error())
                            .map(|d| {
                                format!(
                                    "{}:{}:{}: {} {}",
                                    d.file, d.line, d.column, d.code, d.message
                                )
                            })
                            .collect();
                        format!(
                            "workflow errors (run `leadflow check`):\n  {}",
                            errors.join("\n  ")
                        )
                    }),
                })?;
            let store = |source| StartError::Store {
                tenant: id.clone(),
                source,
            };
            let set = Arc::new(set);
            let backend = stores
                .open(config.database_url(), id, set.clone())
                .await
                .map_err(store)?;
            backend
                .register_snapshot(&snapshot, &set)
                .await
                .map_err(store)?;
            // The field indexes of the published versions (issue 17).
            crate::sql::query::publish_indexes(&backend, &set).await;
            // Config actors are upserted into the stored directory; actors
            // and periods added through the API survive (see directory.rs).
            let directory = crate::directory::sync(&backend, tc.directory())
                .await
                .map_err(store)?;
            backend.versions().set_notify(tc.notification_settings());
            for k in &tc.keys {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(k.sha256.to_ascii_lowercase(), &mut hash).map_err(|_| {
                    ConfigError::Invalid(format!("tenant `{id}`, key `{}`: bad sha256", k.name))
                })?;
                let role = match (&k.actor, &k.role) {
                    (_, Some(r)) => r.clone(),
                    (Some(a), None) => tc.actors.get(a).map(|a| a.role.clone()).unwrap_or_default(),
                    (None, None) => "admin".to_string(),
                };
                keys.push(KeyEntry {
                    hash,
                    tenant: id.clone(),
                    name: k.name.clone(),
                    actor: k.actor.clone(),
                    role,
                    expires_at: k.expires_at,
                });
            }
            tenants.insert(
                id.clone(),
                Arc::new(Tenant {
                    id: id.clone(),
                    config: tc.clone(),
                    backend,
                    actors: RwLock::new(Arc::new(directory)),
                    status: RwLock::new(ReloadStatus {
                        ok: true,
                        checked_at: Some(clock.read()),
                        diagnostics,
                        error: None,
                    }),
                    templates: std::sync::OnceLock::new(),
                }),
            );
        }
        let tasks = crate::background::Tasks::default();
        let jobs = super::jobs::Runner::new(&tasks);
        Ok(AppState(Arc::new(Inner {
            tenants,
            keys,
            ready: AtomicBool::new(true),
            jobs,
            tasks,
            limits: Arc::new(config.server.clone()),
            metrics_token,
            links: std::sync::OnceLock::new(),
            clock,
        })))
    }

    /// The caller a presented key stands for. Every configured hash is
    /// compared, in constant time, so timing tells nothing about near misses.
    /// An expired key answers 401 `E_KEY_EXPIRED`, anything else unknown
    /// 401 `E_UNAUTHORIZED`, both with `WWW-Authenticate: Bearer
    /// realm="leadflow", error="invalid_token"`.
    pub fn authenticate(&self, key: &str, now: DateTime<Utc>) -> Result<Caller, ApiError> {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found: Option<&KeyEntry> = None;
        for k in &self.keys {
            if bool::from(k.hash.ct_eq(&presented)) {
                found = Some(k);
            }
        }
        let k = found.ok_or_else(ApiError::invalid_key)?;
        if let Some(at) = k.expires_at.filter(|&at| at <= now) {
            return Err(ApiError::key_expired(at));
        }
        let tenant = self
            .tenants
            .get(&k.tenant)
            .ok_or_else(ApiError::invalid_key)?;
        let actor = match &k.actor {
            Some(a) => {
                let mut actor = tenant.actor(a).ok_or_else(ApiError::invalid_key)?;
                actor.role = k.role.clone();
                actor
            }
            None => Actor {
                id: k.name.clone(),
                role: k.role.clone(),
                ..Actor::default()
            },
        };
        Ok(Caller {
            tenant: k.tenant.clone(),
            key: k.name.clone(),
            admin: k.actor.is_none(),
            actor,
            directory: tenant.directory(),
        })
    }

    /// Whether `token` is the metrics token (compared in constant time).
    pub fn is_metrics_token(&self, token: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        self.metrics_token
            .is_some_and(|t| bool::from(t.ct_eq(&presented)))
    }

    pub fn tenant(&self, caller: &Caller) -> &Arc<Tenant> {
        // Keys only ever name configured tenants.
        &self.tenants[&caller.tenant]
    }
}
