//! The HTTP daemon (`leadflow serve`): a JSON API over the tenants' stores,
//! with API-key auth, visibility and PII redaction, hot reload of workflow
//! versions, and the timer worker and outbox dispatcher running beside it.
//!
//! [`app`] builds the router from a state (tests drive it directly);
//! [`Server`] binds, runs the background tasks, and shuts down gracefully.
//!
//! | file | what |
//! | --- | --- |
//! | `state.rs` | tenants, keys, callers, visibility |
//! | `auth.rs` | Bearer key -> caller |
//! | `error.rs` | the error type, answered as an RFC 9457 problem document; extractors that answer 400 |
//! | `codes.rs` | the catalogue of error codes; `GET /errors`, `GET /errors/{code}` |
//! | `records.rs` | create, get, fire, actions, history, links; PII redaction |
//! | `kpis.rs` | `GET /v1/kpis/{workflow}`, `GET /v1/reports/{workflow}/{name}` (JSON, CSV): computed by the store (`crate::kpi`); `GET /v1/reports/runs[/{id}]`: scheduled runs and their stored results |
//! | `links.rs` | the pages of one-click action links: `GET`/`POST /links/{token}` (HTML, no key) |
//! | `notifications.rs` | a record's messages and their delivery state, `GET /v1/records/{id}/notifications` |
//! | `history.rs` | events as a caller sees them (PII redaction), the tenant-wide audit query `GET /v1/history` |
//! | `list.rs` | `GET /v1/records`: typed filters, sort, keyset pages, counts (the SQL is the store's `RecordQuery`) |
//! | `queues.rs` | `GET /v1/queues`, `POST /v1/queues/{workflow}/{queue}/next`, `DELETE .../lease`: work queues |
//! | `views.rs` | `GET /v1/views`, `GET /v1/views/{workflow}/{view}`: the workflows' views served |
//! | `export.rs` | `format=csv\|ndjson` on `/v1/records` and views: every row streamed by keyset, redacted |
//! | `imports.rs` | `POST /v1/imports` (body spooled, then a background job), `GET /v1/imports/{id}[/rejected]` |
//! | `bulk.rs` | `POST /v1/bulk` (a transition or a reassignment over ids or a filter), `GET /v1/bulk/{id}` |
//! | `jobs.rs` | the background jobs of imports and bulk operations, their document |
//! | `admin.rs` | actors and unavailability, workflow versions and status |
//! | `ops.rs` | healthz, readyz (with background-task liveness), metrics, latency middleware |
//! | `timers.rs` | parked timer items and their retry (admin) |
//! | `audit.rs` | audit of admin actions: the recording middleware, `GET /v1/audit` |
//! | `reload.rs` | watching the workflow files, publishing versions |
//! | `serve.rs` | connections within the `[server]` limits, body limits, panics |
//! | `conns.rs` | the open connections; at the limit the longest-idle one makes room |
//! | `openapi/` | the OpenAPI document: `ApiDoc`, the bearer scheme, public operations, serving it (`mod.rs`); the errors every operation can give (`errors.rs`); response headers (`headers.rs`); examples by API area (`examples.rs`); tests (`tests.rs`) |
//! | `ratelimit.rs` | per-key request budgets of a tenant's `rate_limit`, `RateLimit-*` headers, 429 |
//! | `cors.rs` | CORS: preflights, `Access-Control-Allow-Origin` for the key's tenant's `cors_origins` |
//! | `webhooks_doc.rs` | the OpenAPI `webhooks:` section: the signed `message.queued` event a webhook sink POSTs |
//! | `schema.rs` | typed values: `FieldValue`, one timestamp format, `GET /v1/workflows/{id}/schema` |

pub mod admin;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod codes;
pub mod conns;
pub mod cors;
pub mod error;
pub mod export;
pub mod history;
pub mod imports;
pub mod jobs;
pub mod kpis;
pub mod links;
pub mod list;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod queues;
pub mod ratelimit;
pub mod records;
pub mod reload;
pub mod schema;
pub mod serve;
pub mod state;
pub mod timers;
pub mod views;
pub mod webhooks_doc;

pub use state::{AppState, Caller, StartError, Tenant};

use crate::any::AnyBackend;
use crate::clock::SystemClock;
use crate::config::{Config, LinksConfig, SinkConfig};
use crate::kpi::schedule;
use crate::{outbox, worker};
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The router: every endpoint, problem documents for unknown routes and methods,
/// request ids (`x-request-id`, generated if absent), request tracing and
/// latency metrics, body limits, and a 500 problem for a handler that panics.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] with `extra` routes behind the same layers (tests add routes
/// that fail in ways the real endpoints must not).
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let limits = state.limits.clone();
    let (budgets, origins) = (ratelimit::Limits::new(&state), cors::Origins::new(&state));
    Router::new()
        .route("/v1/records", post(records::create).get(list::list))
        .route("/v1/records/{id}", get(records::get))
        .route(
            "/v1/records/{id}/transitions/{transition}",
            post(records::fire),
        )
        .route(
            "/v1/records/{id}/transitions/{transition}/check",
            get(records::check),
        )
        .route("/v1/records/{id}/actions", get(records::actions))
        .route("/v1/records/{id}/history", get(records::history))
        .route("/v1/records/{id}/links", get(records::links))
        .route(
            "/v1/records/{id}/notifications",
            get(notifications::list),
        )
        .route("/v1/views", get(views::list))
        .route("/v1/views/{workflow}/{view}", get(views::get))
        .route("/v1/imports", post(imports::create))
        .route("/v1/imports/{id}", get(imports::get))
        .route("/v1/imports/{id}/rejected", get(imports::rejected))
        .route("/v1/bulk", post(bulk::create))
        .route("/v1/bulk/{id}", get(bulk::get))
        .route("/v1/queues", get(queues::list))
        .route("/v1/queues/{workflow}/{queue}/next", post(queues::next))
        .route(
            "/v1/queues/{workflow}/{queue}/lease",
            axum::routing::delete(queues::release),
        )
        .route("/v1/history", get(history::list))
        .route("/v1/kpis/{workflow}", get(kpis::kpis))
        .route("/v1/reports/runs", get(kpis::report_runs))
        .route("/v1/reports/runs/{id}", get(kpis::report_run))
        .route("/v1/reports/{workflow}/{name}", get(kpis::report))
        .route("/v1/actors", get(admin::list))
        .route("/v1/actors/{id}", get(admin::get))
        .route(
            "/v1/actors/{id}/unavailability",
            get(admin::get_unavailability).put(admin::put_unavailability),
        )
        .route("/v1/workflows", get(admin::workflows))
        .route("/v1/workflows/{id}/schema", get(schema::workflow))
        .route("/v1/timers/parked", get(timers::parked))
        .route(
            "/v1/timers/parked/{record}/{timer}/retry",
            post(timers::retry),
        )
        .route("/v1/audit", get(audit::list))
        .route("/links/{token}", get(links::show).post(links::submit))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_text))
        .route("/openapi.json", get(openapi::json))
        .route("/errors", get(codes::list))
        .route("/errors/{code}", get(codes::describe))
        .merge(extra)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "E_NOT_FOUND", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "E_METHOD",
                "method not allowed on this endpoint",
            )
        })
        // Innermost first: panics become a 500 inside the body limits, the
        // latency metric, the request's span and its id.
        .layer(CatchPanicLayer::custom(serve::panicked))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |s, req, next| serve::bound_body(s, limits.clone(), req, next),
        ))
        // The body is read (and bounded) once, above; extractors take it whole.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        // A key over its budget is refused before its body is read or an
        // audit entry written; CORS headers go on every answer, 429s too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |s, req, next| ratelimit::limit(s, budgets.clone(), req, next),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |s, req, next| cors::cors(s, origins.clone(), req, next),
        ))
        .layer(axum::middleware::from_fn(ops::track))
        .layer(axum::middleware::from_fn(serve::scope_request_id))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id, caller = tracing::field::Empty)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// A tenant's outbox sink; SMTP passwords and webhook secrets come from the
/// environment (a webhook `secret` may also be in the file).
fn sink(tenant: &str, config: Option<&SinkConfig>) -> Result<outbox::Sink, StartError> {
    let store = |source| StartError::Store {
        tenant: tenant.to_string(),
        source,
    };
    match config {
        None | Some(SinkConfig::Log) => Ok(outbox::Sink::Log),
        Some(SinkConfig::Webhook(w)) => {
            let webhook = w.resolve(tenant, |v| std::env::var(v).ok())?;
            if w.secret_in_file() {
                tracing::warn!(
                    tenant,
                    "webhook secret written in the config file: prefer `secret_env`"
                );
            }
            // Events carry the record's fields unredacted.
            let plain = outbox::webhook_url(&webhook.url).is_ok_and(|u| {
                u.scheme() == "http"
                    && !matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
            });
            if plain {
                tracing::warn!(
                    tenant,
                    "webhook url is plain http: events carry personal data, use https"
                );
            }
            outbox::Sink::webhook_with(webhook).map_err(store)
        }
        Some(SinkConfig::Smtp(c)) => {
            let smtp = c.resolve(tenant, |v| std::env::var(v).ok())?;
            outbox::Sink::smtp(smtp).map_err(store)
        }
    }
}

/// A running daemon: HTTP server, timer workers, outbox dispatchers, file
/// watchers.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: tokio::sync::watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    workers: Vec<worker::WorkerHandle>,
    dispatchers: Vec<outbox::DispatcherHandle>,
    schedulers: Vec<schedule::SchedulerHandle>,
    backfills: Vec<crate::search_backfill::BackfillHandle>,
    _reload: Option<reload::ReloadHandle>,
}

/// What to run besides the HTTP API.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub timers: bool,
    pub outbox: bool,
    pub watch: bool,
    /// Run scheduled reports (`every`, docs/kpis.md "Schedules").
    pub schedules: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            timers: true,
            outbox: true,
            watch: true,
            schedules: true,
        }
    }
}

impl Server {
    /// Open the stores, bind `config.listen` (port 0: any free port), start
    /// serving and the background tasks.
    pub async fn start(config: &Config, opts: ServeOptions) -> Result<Server, StartError> {
        ops::recorder();
        // Sinks first: a wrong sink (or a missing SMTP password) stops the
        // start before any store is opened.
        let mut sinks = std::collections::BTreeMap::new();
        for (id, tc) in &config.tenants {
            sinks.insert(id.clone(), sink(id, tc.sink.as_ref())?);
        }
        // The link key likewise (its variable unset or short stops the start).
        let env = |v: &str| std::env::var(v).ok();
        LinksConfig::resolve(config.links.as_ref(), &config.listen, env)?;
        let state = AppState::open(config).await?;
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| {
                StartError::Config(crate::config::ConfigError::Invalid(format!(
                    "cannot listen on {}: {e}",
                    config.listen
                )))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Config(crate::config::ConfigError::Invalid(e.to_string())))?;
        let links = Arc::new(LinksConfig::resolve(
            config.links.as_ref(),
            &addr.to_string(),
            env,
        )?);
        if config.links.as_ref().is_some_and(|l| l.secret.is_some()) {
            tracing::warn!("[links] secret written in the config file: prefer `secret_env`");
        }
        if config.links.is_none() {
            tracing::warn!(
                base_url = links.base_url(),
                "no [links] in the config: action links are signed with a key made at start and stop working when the daemon stops"
            );
        }
        let _ = state.links.set(links.clone());
        let mut workers = Vec::new();
        let mut dispatchers = Vec::new();
        let mut schedulers = Vec::new();
        let mut backfills = Vec::new();
        let clock = Arc::new(SystemClock);
        for t in state.tenants.values() {
            let sink = sinks.remove(&t.id).unwrap_or(outbox::Sink::Log);
            let templates = Arc::new(
                outbox::Templates::with_language(
                    t.config.templates_dir(),
                    t.config.notifications.language.clone(),
                )
                .with_links(links.clone(), &t.id),
            );
            let _ = t.templates.set(templates.clone());
            let wcfg = worker::WorkerConfig::default();
            let dcfg = outbox::DispatchConfig::default();
            let scfg = schedule::SchedulerConfig::default();
            // The memory store has no queue to claim from: no tasks.
            if t.backend.is_durable() {
                // Always: a search leaves out the records whose words are
                // still to be computed again after a publish.
                let f = crate::search_backfill::spawn(
                    t.backend.clone(),
                    &t.id,
                    crate::search_backfill::BackfillConfig::default(),
                );
                state.tasks.add(f.health());
                backfills.push(f);
                if opts.timers {
                    let w = worker::spawn(t.backend.clone(), clock.clone(), wcfg);
                    state.tasks.add(w.health());
                    workers.push(w);
                }
                if opts.outbox {
                    let d = outbox::spawn(t.backend.clone(), sink, templates, dcfg, clock.clone());
                    state.tasks.add(d.health());
                    dispatchers.push(d);
                }
            }
            if opts.schedules {
                let s = match &t.backend {
                    AnyBackend::Pg(b) => Some(schedule::spawn_pg(
                        b.clone(),
                        &t.id,
                        clock.clone(),
                        scfg.clone(),
                    )),
                    AnyBackend::Sqlite(b) => Some(schedule::spawn_sqlite(
                        b.clone(),
                        &t.id,
                        clock.clone(),
                        scfg.clone(),
                    )),
                    AnyBackend::Mem(_) => None,
                };
                if let Some(s) = s {
                    state.tasks.add(s.health());
                    schedulers.push(s);
                }
            }
        }
        let reload = if opts.watch {
            match reload::watch(state.tenants.values().cloned().collect()) {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(
                        "hot reload disabled: cannot watch the workflow directories: {e}"
                    );
                    None
                }
            }
        } else {
            None
        };
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        let router = app(state.clone());
        let st = state.clone();
        let http = tokio::spawn(serve::serve(
            listener,
            router,
            config.server.clone(),
            async move {
                let _ = rx.wait_for(|s| *s).await;
                st.ready.store(false, Ordering::SeqCst);
            },
        ));
        tracing::info!(%addr, tenants = state.tenants.len(), "leadflow serving");
        Ok(Server {
            addr,
            state,
            stop,
            http,
            workers,
            dispatchers,
            schedulers,
            backfills,
            _reload: reload,
        })
    }

    /// Serve until `signal` resolves, then shut down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> std::io::Result<()> {
        signal.await;
        self.shutdown().await
    }

    /// Stop accepting connections, finish the requests in flight (for at
    /// most `[server] shutdown_grace`; connections still open then are
    /// closed), stop the timer workers (releasing their claims) and the
    /// dispatchers.
    pub async fn shutdown(self) -> std::io::Result<()> {
        tracing::info!("shutting down: finishing requests in flight");
        self.stop.send_replace(true);
        let served = match self.http.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        };
        drop(self._reload);
        // Running imports and bulk operations stop at once (their open
        // batch rolls back) and are marked interrupted.
        self.state.jobs.shutdown().await;
        for w in self.workers {
            let s = w.shutdown().await;
            tracing::info!(
                fired = s.fired,
                discarded = s.discarded,
                errors = s.errors,
                parked = s.parked,
                panics = s.panics,
                "timer worker stopped, claims released"
            );
        }
        for s in self.schedulers {
            s.shutdown().await;
        }
        for f in self.backfills {
            f.shutdown().await;
        }
        for d in self.dispatchers {
            let s = d.shutdown().await;
            tracing::info!(
                delivered = s.delivered,
                failed = s.failed,
                panics = s.panics,
                "outbox dispatcher stopped"
            );
        }
        tracing::info!("stopped");
        served
    }
}
