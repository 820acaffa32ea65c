//! `leadflow.toml`: the daemon's configuration (listen address, database,
//! tenants with their workflows, actors, API keys, pools and sinks), and
//! reading a tenant's project files from disk for the engine.
//!
//! Relative paths are resolved against the directory of the config file.
//! See `examples/leadflow.toml` for a commented example.

use crate::outbox::{SmtpConfig, SmtpTls, WebhookConfig};
use leadflow_engine::{Actor, Period, Project, SourceFile, Value};
use lettre::message::Mailbox;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The embedded default: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:leadflow.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    /// An API key is wrong; `code` is stable (`E_KEY_*`).
    #[error("tenant `{tenant}`, key `{key}`: {message} [{code}]")]
    Key {
        tenant: String,
        key: String,
        code: &'static str,
        message: String,
    },
    /// A tenant's organisation is wrong; `code` is stable (`E_ORG_*`): a
    /// `reports_to` naming no actor of the tenant, a team managed by nobody
    /// it names, a chain of managers that comes back to its start.
    #[error("tenant `{tenant}`, actors: {message} [{code}]")]
    Org {
        tenant: String,
        code: &'static str,
        message: String,
    },
    /// A tenant's `sink` is wrong; `code` is stable (`E_SINK_*`, listed in
    /// `examples/leadflow.toml` and docs/store.md).
    #[error("tenant `{tenant}`, sink: {message} [{code}]")]
    Sink {
        tenant: String,
        code: &'static str,
        message: String,
    },
    /// `[links]` is wrong: its key is missing or short (`E_LINK_KEY`).
    #[error("links: {message} [{code}]")]
    Links { code: &'static str, message: String },
    /// A tenant's `rate_limit` or `cors_origins` is wrong; `code` is
    /// stable (`E_RATE_LIMIT`, `E_CORS_ORIGIN`).
    #[error("tenant `{tenant}`, {setting}: {message} [{code}]")]
    Http {
        tenant: String,
        setting: &'static str,
        code: &'static str,
        message: String,
    },
}

impl ConfigError {
    /// A stable code for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Io { .. } => "E_CONFIG_IO",
            ConfigError::Syntax { .. } => "E_CONFIG_SYNTAX",
            ConfigError::Invalid(_) => "E_CONFIG",
            ConfigError::Sink { code, .. }
            | ConfigError::Key { code, .. }
            | ConfigError::Http { code, .. }
            | ConfigError::Links { code, .. }
            | ConfigError::Org { code, .. } => code,
        }
    }

    fn sink(tenant: &str, code: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Sink {
            tenant: tenant.to_string(),
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `postgres://...`, `sqlite:path` or `mem:`; default `sqlite:leadflow.db`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Connection and request limits of the HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// PostgreSQL: connections of the daemon's pool for `database_url`,
    /// shared by all its tenants (default 20). The daemon holds at most
    /// this many, plus one at start and one LISTEN (docs/security.md).
    #[serde(default)]
    pub database_max_connections: Option<u32>,
    /// Name of the environment variable holding the bearer token that
    /// `/metrics` (and the detail of `/readyz`) ask for. Unset: `/metrics`
    /// answers 403 `E_METRICS_DISABLED` (docs/security.md).
    #[serde(default)]
    pub metrics_token_env: Option<String>,
    /// One-click action links in messages (docs/notifications.md#action-links).
    #[serde(default)]
    pub links: Option<LinksConfig>,
    /// Tenant id -> tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantConfig>,
    /// Directory the relative paths were resolved against (not a key).
    #[serde(skip)]
    pub base: PathBuf,
}

/// `[links]`: the signed one-click links a template prints with
/// `{{ action_url("accept") }}` (docs/notifications.md#action-links).
/// Without the table the daemon signs with a random key made at start:
/// links work until it stops, and only on its listen address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    /// The public URL of the daemon, as a recipient's browser reaches it
    /// (`https://leads.example.it`); default `http://<listen address>`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the HMAC-SHA256 key (at least 32
    /// bytes: `openssl rand -hex 32`); never in the file. Default
    /// `LEADFLOW_LINK_KEY`.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The key written in the file (prefer `secret_env`: anyone who can
    /// read the file can then make links).
    #[serde(default)]
    pub secret: Option<String>,
    /// Days a link lives when the step armed no timer (default 7).
    #[serde(default)]
    pub max_age_days: Option<u32>,
}

/// The variable `[links]` reads its key from unless `secret_env` says.
pub const DEFAULT_LINK_KEY_ENV: &str = "LEADFLOW_LINK_KEY";

impl LinksConfig {
    /// The daemon's link key; `listen` is the bound address (the default
    /// base URL). `env` reads a variable (tests pass their own).
    pub fn resolve(
        config: Option<&LinksConfig>,
        listen: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<crate::links::LinkKey, ConfigError> {
        let default_base = format!("http://{listen}");
        let err = |message: String| ConfigError::Links {
            code: "E_LINK_KEY",
            message,
        };
        let Some(c) = config else {
            return crate::links::LinkKey::ephemeral(&default_base).map_err(err);
        };
        let base = c.base_url.clone().unwrap_or(default_base);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(err(format!(
                "base_url `{base}` is not an http:// or https:// URL"
            )));
        }
        let (var, key) = match (&c.secret_env, &c.secret) {
            (Some(_), Some(_)) => {
                return Err(err("give `secret_env` or `secret`, not both".into()))
            }
            (None, Some(k)) => ("secret", Some(k.clone())),
            (v, None) => {
                let var = v.as_deref().unwrap_or(DEFAULT_LINK_KEY_ENV);
                (var, env(var))
            }
        };
        let Some(key) = key.filter(|k| !k.trim().is_empty()) else {
            return Err(err(format!(
                "the environment variable `{var}` (secret_env) is not set: it holds the key that signs action links"
            )));
        };
        crate::links::LinkKey::new(
            key.trim().as_bytes(),
            &base,
            c.max_age_days.unwrap_or(crate::links::DEFAULT_MAX_AGE_DAYS),
        )
        .map_err(|e| err(format!("`{var}`: {e}")))
    }
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}

/// `[server]`: what one client may hold of the daemon. Slow or idle
/// clients are cut off, the number of open connections is bounded (one
/// over the bound gets a `503` JSON answer and is closed), bodies are
/// bounded in size and time, and a shutdown waits at most `shutdown_grace`
/// for the requests in flight. Durations are in seconds (fractions allowed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Time a client has to send a request's headers, counted from the
    /// connection's opening or the end of the previous response (so it is
    /// also the keep-alive idle timeout).
    pub header_timeout: f64,
    /// Time a client has to send a whole request body (408 `E_TIMEOUT`).
    pub body_timeout: f64,
    /// Largest request body in bytes (413 `E_TOO_LARGE`).
    pub max_body_bytes: usize,
    /// Largest body of `POST /v1/imports` in bytes (413 `E_TOO_LARGE`): it
    /// streams to a spool file, never into memory; `body_timeout` bounds
    /// each pause of the client's sending rather than the whole upload.
    pub max_import_bytes: u64,
    /// Open connections served at once; more are answered 503 `E_OVERLOADED`.
    pub max_connections: usize,
    /// On SIGTERM, time given to the requests in flight; connections still
    /// open then are closed.
    pub shutdown_grace: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: 10.0,
            body_timeout: 30.0,
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 4 * 1024 * 1024 * 1024,
            max_connections: 512,
            shutdown_grace: 20.0,
        }
    }
}

impl ServerConfig {
    pub fn header_timeout(&self) -> std::time::Duration {
        secs(self.header_timeout)
    }
    pub fn body_timeout(&self) -> std::time::Duration {
        secs(self.body_timeout)
    }
    pub fn shutdown_grace(&self) -> std::time::Duration {
        secs(self.shutdown_grace)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("shutdown_grace", self.shutdown_grace),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return Err(ConfigError::Invalid(format!(
                    "[server] {name} = {v}: must be a number of seconds above 0 and at most 86400"
                )));
            }
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "[server] max_connections must be at least 1".into(),
            ));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "[server] max_body_bytes must be at least 1".into(),
            ));
        }
        if self.max_import_bytes == 0 {
            return Err(ConfigError::Invalid(
                "[server] max_import_bytes must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn secs(v: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(v)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Project directory holding `workflows/`, `rules/`, `calendars/`.
    pub root: PathBuf,
    /// Workflow ids served (`<root>/workflows/<id>.toml`); empty: every
    /// file under `<root>/workflows/`.
    #[serde(default)]
    pub workflows: Vec<String>,
    /// Outbox message templates (`<template>.txt`); default `<root>/templates`.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// Actor id -> actor (partners, dealers, operators, agents).
    #[serde(default)]
    pub actors: BTreeMap<String, ActorConfig>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Unassigned records an actor-bound key may see (and claim) besides its
    /// own: see [`PoolConfig`].
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// Where outbox messages go; default: the log.
    #[serde(default)]
    pub sink: Option<SinkConfig>,
    /// The default language of messages and named address lists
    /// (docs/notifications.md).
    #[serde(default)]
    pub notifications: crate::notify::Settings,
    /// Size limits of the project's files (`E060` over them).
    #[serde(default)]
    pub limits: crate::project_limits::ProjectLimits,
    /// Each API key's request budget on `/v1`; default: none (unlimited).
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Browser origins (`https://crm.example.com`) whose pages may call the
    /// API with this tenant's keys (CORS); `"*"`: any origin. Default: none.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// `[tenants.<id>.rate_limit]`: every API key of the tenant has its own
/// budget of `burst` requests, refilled at `requests_per_second` (GCRA);
/// over it a request is answered 429 `E_RATE_LIMITED` with `Retry-After`.
/// The tenant's keys together may send at most the sum of their budgets.
/// Both are checked at start (`E_RATE_LIMIT`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained rate, per key: above 0, at most 1,000,000; fractions
    /// allowed (`0.5`: one request every 2 s).
    pub requests_per_second: f64,
    /// Requests a key may send at once (1..=1,000,000); default:
    /// `requests_per_second` rounded up.
    #[serde(default)]
    pub burst: Option<i64>,
}

/// The largest `requests_per_second` and `burst`.
pub const MAX_RATE: f64 = 1_000_000.0;

impl RateLimitConfig {
    /// The burst in force: `burst`, else `requests_per_second` rounded up.
    pub fn burst(&self) -> u32 {
        let b = self.burst.unwrap_or(self.requests_per_second.ceil() as i64);
        b.clamp(1, MAX_RATE as i64) as u32
    }

    fn validate(&self, tenant: &str) -> Result<(), ConfigError> {
        let err = |message: String| {
            Err(ConfigError::Http {
                tenant: tenant.to_string(),
                setting: "rate_limit",
                code: "E_RATE_LIMIT",
                message,
            })
        };
        let r = self.requests_per_second;
        if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
            return err(format!(
                "requests_per_second = {r}: must be a number above 0 and at most 1000000 (0.5: one request every 2 s)"
            ));
        }
        if let Some(b) = self.burst {
            if !(1..=MAX_RATE as i64).contains(&b) {
                return err(format!(
                    "burst = {b}: must be a whole number of requests from 1 to 1000000"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorConfig {
    pub role: String,
    #[serde(default)]
    pub zones: Vec<String>,
    /// Skills or applications (e.g. "support", "pv"; Somfy's Experts list
    /// the applications they install: `applications` is the same key).
    #[serde(default, alias = "applications")]
    pub skills: Vec<String>,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub unavailable: Vec<Period>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Where the actor's messages go (`notify`); also settable in the
    /// SMTP sink's `addresses`, which this takes precedence over.
    #[serde(default)]
    pub email: Option<String>,
    /// The language of the actor's messages (`it`, `en`, ...); default: the
    /// tenant's `[notifications] language`.
    #[serde(default)]
    pub language: Option<String>,
    /// The team the actor works in: the actors that `manages` it are its
    /// managers (`assignee.manager`).
    #[serde(default)]
    pub team: Option<String>,
    /// The actor's own manager, by id.
    #[serde(default)]
    pub reports_to: Option<String>,
    /// The teams the actor manages.
    #[serde(default)]
    pub manages: Vec<String>,
}

impl ActorConfig {
    pub fn to_actor(&self, id: &str) -> Actor {
        Actor {
            id: id.to_string(),
            role: self.role.clone(),
            zones: self.zones.clone(),
            skills: self.skills.clone(),
            capacity: self.capacity,
            load: 0,
            unavailable: self.unavailable.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), Value::from_json(v)))
                .collect(),
            email: self.email.clone(),
            language: self.language.as_deref().map(str::to_ascii_lowercase),
            team: self.team.clone(),
            reports_to: self.reports_to.clone(),
            manages: self.manages.clone(),
        }
    }
}

/// An API key, stored as the SHA-256 (hex) of the key:
/// `printf %s "$KEY" | sha256sum`. Without `actor` it is an admin key.
///
/// Rotation: add the new key under a new name with the same `actor` (or
/// `role`), give the old one `expires_at`, hand out the new key; both work
/// until the old one expires (then 401), and the old entry can be removed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key's id: unique in its tenant (`E_KEY_DUPLICATE`); shown in
    /// logs and history instead of the key, and the scope of its
    /// idempotency keys.
    pub name: String,
    pub sha256: String,
    /// The actor this key acts as (it sees only its records and pools).
    #[serde(default)]
    pub actor: Option<String>,
    /// Role an admin key fires transitions with (default `admin`).
    #[serde(default)]
    pub role: Option<String>,
    /// From this instant on the key is refused (401 `E_KEY_EXPIRED`): an
    /// RFC 3339 date-time with offset, e.g. `2027-01-31T00:00:00Z` (a TOML
    /// date-time or a string).
    #[serde(default, deserialize_with = "rfc3339")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn rfc3339<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error> {
    use serde::de::Error;
    let text = match toml::Value::deserialize(d)? {
        toml::Value::String(s) => s,
        toml::Value::Datetime(t) => t.to_string(),
        other => {
            return Err(D::Error::custom(format!(
            "expires_at must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z, not `{other}`"
        )))
        }
    };
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .map_err(|e| {
            D::Error::custom(format!(
                "expires_at `{text}` is not an RFC 3339 date-time with an offset, such as 2027-01-31T00:00:00Z ({e})"
            ))
        })
}

/// A pool: records of `workflow` in one of `states`, with no assignee, whose
/// field `zone_field` is one of the caller's actor zones (Q.PARTNER: leads
/// of the installer's sales area waiting to be claimed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub workflow: String,
    pub states: Vec<String>,
    pub zone_field: String,
    /// Roles that follow every record of `workflow` in their zones, in any
    /// state, claimed or not (Q.PARTNER: the area's sales representative).
    /// Following is seeing, not revealing: `pii` fields stay the assignee's.
    #[serde(default)]
    pub followed_by: Vec<String>,
}

impl PoolConfig {
    /// Whether `actor` follows this pool's records (`followed_by`).
    pub fn followed_by(&self, actor: &Actor) -> bool {
        !actor.zones.is_empty() && self.followed_by.contains(&actor.role)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    Log,
    /// POST of a signed JSON event per message (docs/api.md `## Webhooks`).
    Webhook(WebhookSinkConfig),
    /// E-mail through an SMTP server.
    Smtp(SmtpSinkConfig),
}

/// `kind = "webhook"`. The secret comes from the environment variable
/// `secret_env` names (preferred), or is written as `secret` (kept for
/// existing files; anyone who can read the file can then forge deliveries).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// Where events are POSTed: an `http://` or `https://` URL.
    pub url: String,
    /// Name of the environment variable holding the signing secret, read
    /// when the daemon starts.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The signing secret written in the file (prefer `secret_env`).
    #[serde(default)]
    secret: Option<String>,
    /// During a rotation: the variable holding the previous secret; every
    /// delivery is then signed with both (two `v1=` values).
    #[serde(default)]
    pub previous_secret_env: Option<String>,
    /// Also send the deprecated `X-Leadflow-Signature: sha256=<hex>` (body
    /// only, replayable) for receivers not yet migrated. Default false.
    #[serde(default)]
    pub legacy_signature: bool,
    /// At most this many events a second to the receiver (per tenant); a
    /// bulk import waits instead of flooding it. Default: no limit.
    #[serde(default)]
    pub max_per_second: Option<u32>,
}

impl WebhookSinkConfig {
    /// Whether the secret is written in the file (the daemon warns).
    pub fn secret_in_file(&self) -> bool {
        self.secret.is_some()
    }

    fn validate(&self, tenant: &str) -> Result<(), ConfigError> {
        let err = |code, msg: String| Err(ConfigError::sink(tenant, code, msg));
        if let Err(e) = crate::outbox::webhook_url(&self.url) {
            return err("E_SINK_URL", e);
        }
        match (&self.secret, &self.secret_env) {
            (None, None) => return err(
                "E_SINK_CREDENTIALS",
                "webhook needs `secret_env` (the environment variable holding the signing secret)"
                    .into(),
            ),
            (Some(_), Some(_)) => {
                return err(
                    "E_SINK_CREDENTIALS",
                    "webhook takes `secret_env` or `secret`, not both".into(),
                )
            }
            (Some(s), None) if s.is_empty() => {
                return err("E_SINK_CREDENTIALS", "webhook secret is empty".into())
            }
            _ => {}
        }
        if self.max_per_second == Some(0) {
            return err(
                "E_SINK_RATE",
                "webhook max_per_second must be at least 1 (leave it out for no limit)".into(),
            );
        }
        for (key, v) in [
            ("secret_env", &self.secret_env),
            ("previous_secret_env", &self.previous_secret_env),
        ] {
            if let Some(v) = v {
                if !env_name_ok(v) {
                    return err(
                        "E_SINK_CREDENTIALS",
                        format!("webhook {key} `{v}` is not an environment variable name (letters, digits, `_`)"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The sink settings, with the secrets read through `env` (the process
    /// environment in the daemon): an unset or empty variable is an error.
    pub fn resolve(
        &self,
        tenant: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<WebhookConfig, ConfigError> {
        self.validate(tenant)?;
        let read = |key: &str, v: &str| match env(v) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ConfigError::sink(
                tenant,
                "E_SINK_CREDENTIALS",
                format!("the environment variable `{v}` (webhook {key}) is not set or empty"),
            )),
        };
        let mut secrets = Vec::new();
        match (&self.secret_env, &self.secret) {
            (Some(v), _) => secrets.push(read("secret_env", v)?),
            (None, Some(s)) => secrets.push(s.clone()),
            (None, None) => {}
        }
        if let Some(v) = &self.previous_secret_env {
            let previous = read("previous_secret_env", v)?;
            if !secrets.contains(&previous) {
                secrets.push(previous);
            }
        }
        Ok(WebhookConfig {
            url: self.url.clone(),
            secrets,
            legacy_signature: self.legacy_signature,
            max_per_second: self.max_per_second,
        })
    }
}

/// `kind = "smtp"`. The password is never in the file: `password_env` names
/// the environment variable that holds it, read when the daemon starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSinkConfig {
    /// Host name or IP address of the SMTP server (no scheme, no port).
    pub host: String,
    /// Default: 25 for `tls = "none"`, 587 for `"starttls"`, 465 for `"tls"`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `"starttls"` (default), `"tls"` (SMTPS) or `"none"` (plain).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The sender, e.g. `"Leads <noreply@example.com>"`.
    pub from: String,
    /// The `Reply-To` of the tenant's messages, e.g. `"Somfy <leads@somfy.it>"`.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// At most this many messages per second to the relay (a bulk import
    /// must not flood it); default: no limit.
    #[serde(default)]
    pub max_per_second: Option<u32>,
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the password (with `username`).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Only to refuse a password written in the file, with a clear error.
    #[serde(default)]
    password: Option<toml::Value>,
    /// Recipient name (an actor id, or any name a `notify` sends to) ->
    /// e-mail address. `customer` is the record's `email` field; a
    /// recipient containing `@` is used as written.
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
}

impl SmtpSinkConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    fn validate(&self, tenant: &str) -> Result<(), ConfigError> {
        let err = |code, msg: String| Err(ConfigError::sink(tenant, code, msg));
        let h = self.host.as_str();
        let bad_host = h.is_empty()
            || h.contains("://")
            || h.contains('/')
            || h.chars().any(char::is_whitespace)
            || (h.contains(':') && h.parse::<std::net::Ipv6Addr>().is_err());
        if bad_host {
            return err(
                "E_SINK_HOST",
                format!("smtp host `{h}` must be a host name or IP address (no scheme, path or port: the port goes in `port`)"),
            );
        }
        if self.port == Some(0) {
            return err("E_SINK_PORT", "smtp port must be 1-65535".into());
        }
        if let Err(e) = self.from.parse::<Mailbox>() {
            return err(
                "E_SINK_FROM",
                format!(
                    "smtp from `{}` is not an e-mail address ({e}); e.g. \"Leads <noreply@example.com>\"",
                    self.from
                ),
            );
        }
        if let Some(r) = &self.reply_to {
            if let Err(e) = r.parse::<Mailbox>() {
                return err(
                    "E_SINK_FROM",
                    format!("smtp reply_to `{r}` is not an e-mail address ({e})"),
                );
            }
        }
        if self.max_per_second == Some(0) {
            return err(
                "E_SINK_RATE",
                "smtp max_per_second must be at least 1 (leave it out for no limit)".into(),
            );
        }
        if self.password.is_some() {
            return err(
                "E_SINK_SECRET",
                "smtp password must not be written in the config file: put it in an environment variable and name it with `password_env`".into(),
            );
        }
        match (&self.username, &self.password_env) {
            (Some(_), None) => {
                return err(
                    "E_SINK_CREDENTIALS",
                    "smtp username needs `password_env` (the environment variable holding the password)".into(),
                )
            }
            (None, Some(_)) => {
                return err(
                    "E_SINK_CREDENTIALS",
                    "smtp password_env needs `username`".into(),
                )
            }
            (Some(_), Some(v)) if !env_name_ok(v) => {
                return err(
                    "E_SINK_CREDENTIALS",
                    format!("smtp password_env `{v}` is not an environment variable name (letters, digits, `_`)"),
                )
            }
            _ => {}
        }
        for (name, addr) in &self.addresses {
            if name == "customer" || name == "assignee" {
                return err(
                    "E_SINK_ADDRESS",
                    format!("smtp addresses: `{name}` cannot be mapped (`customer` is the record's `email` field, `assignee` its actor)"),
                );
            }
            if let Err(e) = addr.parse::<Mailbox>() {
                return err(
                    "E_SINK_ADDRESS",
                    format!("smtp addresses: `{name}` = `{addr}` is not an e-mail address ({e})"),
                );
            }
        }
        Ok(())
    }

    /// The outbox settings, with the password read through `env` (the
    /// process environment in the daemon) from the variable `password_env`.
    pub fn resolve(
        &self,
        tenant: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SmtpConfig, ConfigError> {
        self.validate(tenant)?;
        let password = match &self.password_env {
            None => None,
            Some(v) => match env(v) {
                Some(p) if !p.is_empty() => Some(p),
                _ => {
                    return Err(ConfigError::sink(
                        tenant,
                        "E_SINK_CREDENTIALS",
                        format!(
                        "the environment variable `{v}` (smtp password_env) is not set or empty"
                    ),
                    ))
                }
            },
        };
        Ok(SmtpConfig {
            host: self.host.clone(),
            port: self.port(),
            tls: self.tls,
            username: self.username.clone(),
            password,
            from: self.from.clone(),
            reply_to: self.reply_to.clone(),
            max_per_second: self.max_per_second,
            addresses: self
                .addresses
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// A language tag as messages use it: `it`, `en`, `pt-br` (lowercase
/// letters, a `-` between parts).
pub fn language_ok(l: &str) -> bool {
    (2..=12).contains(&l.len())
        && l.split('-')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Actors' `email` and `language`, the tenant's address lists and default
/// language: addresses that parse, languages such as `it`.
fn validate_notifications(tid: &str, t: &TenantConfig) -> Result<(), ConfigError> {
    let addr = |what: String, a: &str| match a.parse::<Mailbox>() {
        Ok(_) => Ok(()),
        Err(e) => Err(ConfigError::sink(
            tid,
            "E_SINK_ADDRESS",
            format!("{what} `{a}` is not an e-mail address ({e})"),
        )),
    };
    let lang = |what: String, l: &str| {
        if language_ok(l) {
            Ok(())
        } else {
            Err(ConfigError::Invalid(format!(
                "tenant `{tid}`, {what}: `{l}` is not a language such as \"it\" or \"en\""
            )))
        }
    };
    let org = |code: &'static str, message: String| ConfigError::Org {
        tenant: tid.to_string(),
        code,
        message,
    };
    for (id, a) in &t.actors {
        if let Some(m) = &a.reports_to {
            if !t.actors.contains_key(m) {
                return Err(org(
                    "E_ORG_UNKNOWN_ACTOR",
                    format!("actor `{id}`: reports_to `{m}` is no actor of the tenant"),
                ));
            }
        }
    }
    let directory: Vec<Actor> = t.actors.iter().map(|(id, a)| a.to_actor(id)).collect();
    if let Some(chain) = leadflow_engine::org::cycle(&directory) {
        return Err(org(
            "E_ORG_CYCLE",
            format!("the managers go round in a circle: {}", chain.join(" -> ")),
        ));
    }
    for (id, a) in &t.actors {
        if let Some(e) = &a.email {
            addr(format!("actor `{id}`: email"), e)?;
        }
        if let Some(l) = &a.language {
            lang(format!("actor `{id}`: language"), l)?;
        }
    }
    if let Some(l) = &t.notifications.language {
        lang("notifications.language".into(), l)?;
    }
    for (name, list) in &t.notifications.lists {
        for a in list {
            addr(format!("notifications.lists.{name}:"), a)?;
        }
    }
    Ok(())
}

fn env_name_ok(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// SHA-256 hex of an API key, as stored in the config.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, &path.display().to_string(), &base)
    }

    /// Parse config text; relative paths resolve against `base`.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        c.base = base.to_path_buf();
        for t in c.tenants.values_mut() {
            t.root = base.join(&t.root);
            if let Some(d) = &t.templates {
                t.templates = Some(base.join(d));
            }
        }
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        if self.database_max_connections == Some(0) {
            return Err(ConfigError::Invalid(
                "database_max_connections must be at least 1".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (tid, t) in &self.tenants {
            match &t.sink {
                Some(SinkConfig::Smtp(smtp)) => smtp.validate(tid)?,
                Some(SinkConfig::Webhook(w)) => w.validate(tid)?,
                _ => {}
            }
            if let Some(r) = &t.rate_limit {
                r.validate(tid)?;
            }
            validate_notifications(tid, t)?;
            for o in &t.cors_origins {
                if let Err(message) = crate::http::cors::check_origin(o) {
                    return Err(ConfigError::Http {
                        tenant: tid.clone(),
                        setting: "cors_origins",
                        code: "E_CORS_ORIGIN",
                        message,
                    });
                }
            }
            let mut names = std::collections::HashSet::new();
            for k in &t.keys {
                if !names.insert(k.name.as_str()) {
                    return Err(ConfigError::Key {
                        tenant: tid.clone(),
                        key: k.name.clone(),
                        code: "E_KEY_DUPLICATE",
                        message: "two keys have this name: key names are their ids (logs, idempotency scope) and must be unique in a tenant".into(),
                    });
                }
                let ok = k.sha256.len() == 64 && k.sha256.chars().all(|c| c.is_ascii_hexdigit());
                if !ok {
                    return Err(ConfigError::Invalid(format!(
                        "tenant `{tid}`, key `{}`: sha256 must be 64 hex digits (printf %s \"$KEY\" | sha256sum)",
                        k.name
                    )));
                }
                if !seen.insert(k.sha256.to_ascii_lowercase()) {
                    return Err(ConfigError::Invalid(format!(
                        "tenant `{tid}`, key `{}`: the same key is configured twice",
                        k.name
                    )));
                }
                if let Some(a) = &k.actor {
                    if !t.actors.contains_key(a) {
                        return Err(ConfigError::Invalid(format!(
                            "tenant `{tid}`, key `{}`: unknown actor `{a}`",
                            k.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn database_url(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// The metrics token (from the variable `metrics_token_env` names),
    /// hashed; `None` when not configured. An unset or empty variable is an
    /// error: a daemon told to protect its metrics does not start open.
    pub fn metrics_token(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(var) = &self.metrics_token_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(Sha256::digest(t.trim().as_bytes()).into())),
            _ => Err(ConfigError::Invalid(format!(
                "metrics_token_env: the environment variable `{var}` is not set (or empty)"
            ))),
        }
    }

    /// PostgreSQL pool settings: `database_max_connections` over the defaults.
    pub fn pg_options(&self) -> crate::pg::PgOptions {
        let mut o = crate::pg::PgOptions::default();
        if let Some(n) = self.database_max_connections {
            o.max_connections = n;
        }
        o
    }
}

impl TenantConfig {
    pub fn workflows_dir(&self) -> PathBuf {
        self.root.join("workflows")
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.templates
            .clone()
            .unwrap_or_else(|| self.root.join("templates"))
    }

    /// Directories whose changes call for a reload.
    pub fn watched_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = ["workflows", "rules", "calendars"]
            .iter()
            .map(|d| self.root.join(d))
            .collect();
        let templates = self.templates_dir();
        if !dirs.iter().any(|d| templates.starts_with(d)) {
            dirs.push(templates);
        }
        dirs.into_iter().filter(|p| p.is_dir()).collect()
    }

    /// The `[notifications]` settings as messages use them (languages in
    /// lowercase).
    pub fn notification_settings(&self) -> crate::notify::Settings {
        let mut s = self.notifications.clone();
        s.language = s.language.map(|l| l.to_ascii_lowercase());
        s
    }

    pub fn directory(&self) -> Vec<Actor> {
        self.actors.iter().map(|(id, a)| a.to_actor(id)).collect()
    }

    /// Read the tenant's workflow files, rules and calendars.
    pub fn read_project(&self) -> Result<Project, ConfigError> {
        let mut p = Project::default();
        let wdir = self.workflows_dir();
        if self.workflows.is_empty() {
            for f in walk(&wdir, "toml")? {
                p.workflows.push(read(&self.root, &f)?);
            }
        } else {
            for id in &self.workflows {
                p.workflows
                    .push(read(&self.root, &wdir.join(format!("{id}.toml")))?);
            }
        }
        for (dir, ext) in [("rules", "rhai"), ("calendars", "toml")] {
            let d = self.root.join(dir);
            if d.is_dir() {
                for f in walk(&d, ext)? {
                    let sf = read(&self.root, &f)?;
                    if dir == "rules" {
                        p.rules.push(sf);
                    } else {
                        p.calendars.push(sf);
                    }
                }
            }
        }
        Ok(p)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read(root: &Path, path: &Path) -> Result<SourceFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let shown = path.strip_prefix(root).unwrap_or(path);
    Ok(SourceFile::new(
        shown.to_string_lossy().replace('\\', "/"),
        text,
    ))
}

/// Files with extension `ext` under `dir`, recursively, sorted.
fn walk(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let p = e.map_err(io(&d))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_limits_have_defaults_and_are_checked() {
        let parse = |t: &str| Config::parse(t, "t.toml", Path::new("/"));
        let c = parse("").unwrap();
        assert_eq!(c.server.max_body_bytes, 1024 * 1024);
        assert_eq!(
            c.server.header_timeout(),
            std::time::Duration::from_secs(10)
        );
        let c = parse("[server]\nheader_timeout = 0.5\nmax_connections = 4").unwrap();
        assert_eq!(
            c.server.header_timeout(),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(c.server.max_connections, 4);
        for bad in [
            "[server]\nheader_timeout = 0",
            "[server]\nbody_timeout = -1",
            "[server]\nshutdown_grace = nan",
            "[server]\nmax_connections = 0",
            "[server]\nmax_body_bytes = 0",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code(), "E_CONFIG", "{bad}: {e}");
        }
        let e = parse("[server]\nheader_timeot = 1").unwrap_err();
        assert_eq!(e.code(), "E_CONFIG_SYNTAX", "{e}");
    }

    #[test]
    fn pool_size_and_metrics_token() {
        let p = |t: &str| Config::parse(t, "t.toml", Path::new("/"));
        let e = p("database_max_connections = 0").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let c = p("database_max_connections = 7").unwrap();
        assert_eq!(c.pg_options().max_connections, 7);
        assert_eq!(p("").unwrap().metrics_token().unwrap(), None);
        let c = p(r#"metrics_token_env = "LF_CONFIG_TEST_UNSET_TOKEN""#).unwrap();
        let e = c.metrics_token().unwrap_err();
        assert!(e.to_string().contains("LF_CONFIG_TEST_UNSET_TOKEN"), "{e}");
        std::env::set_var("LF_CONFIG_TEST_SET_TOKEN", "t0ken");
        let c = p(r#"metrics_token_env = "LF_CONFIG_TEST_SET_TOKEN""#).unwrap();
        let h: [u8; 32] = Sha256::digest(b"t0ken").into();
        assert_eq!(c.metrics_token().unwrap(), Some(h));
    }

    #[test]
    fn parses_a_tenant_and_resolves_paths() {
        let c = Config::parse(
            r#"
            [tenants.acme]
            root = "proj"
            workflows = ["aslm"]
            [tenants.acme.actors.d1]
            role = "dealer"
            zones = ["RM"]
            [tenants.acme.actors.x1]
            role = "expert"
            applications = ["tapparelle", "tende da sole"]
            [[tenants.acme.keys]]
            name = "d1"
            sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            actor = "d1"
            "#,
            "t.toml",
            Path::new("/etc/lf"),
        )
        .unwrap();
        assert_eq!(c.database_url(), DEFAULT_DATABASE_URL);
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.tenants["acme"].root, Path::new("/etc/lf/proj"));
        assert_eq!(hash_key("test"), c.tenants["acme"].keys[0].sha256);
        assert_eq!(
            c.tenants["acme"].actors["x1"].skills,
            ["tapparelle", "tende da sole"]
        );
    }

    #[test]
    fn rejects_unknown_keys_and_bad_hashes() {
        let e = Config::parse("lisen = 1", "t.toml", Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = Config::parse(
            "[tenants.a]\nroot = \".\"\n[[tenants.a.keys]]\nname = \"k\"\nsha256 = \"abc\"\n",
            "t.toml",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }

    fn keys(lines: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!("[tenants.a]\nroot = \".\"\n{lines}"),
            "t.toml",
            Path::new("."),
        )
    }

    #[test]
    fn key_names_are_unique_in_a_tenant() {
        let key = |name: &str, hash: &str| {
            format!(
                "[[tenants.a.keys]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
                hash_key(hash)
            )
        };
        let e = keys(&format!("{}{}", key("k", "one"), key("k", "two"))).unwrap_err();
        assert_eq!(e.code(), "E_KEY_DUPLICATE", "{e}");
        assert!(e.to_string().starts_with("tenant `a`, key `k`: "), "{e}");
        // The same name in two tenants is two ids.
        let two = format!(
            "{}[tenants.b]\nroot = \".\"\n{}",
            key("k", "one"),
            key("k", "two").replace("tenants.a", "tenants.b")
        );
        keys(&two).unwrap();
    }

    #[test]
    fn key_expiry_is_an_rfc3339_instant() {
        let hash = hash_key("x");
        let base = format!("[[tenants.a.keys]]\nname = \"k\"\nsha256 = \"{hash}\"\n");
        for v in ["2027-01-31T00:00:00Z", "\"2027-01-31T01:00:00+01:00\""] {
            let c = keys(&format!("{base}expires_at = {v}\n")).unwrap();
            assert_eq!(
                c.tenants["a"].keys[0].expires_at.unwrap().to_rfc3339(),
                "2027-01-31T00:00:00+00:00"
            );
        }
        for v in ["2027-01-31", "2027-01-31T00:00:00", "\"soon\"", "7"] {
            let e = keys(&format!("{base}expires_at = {v}\n")).unwrap_err();
            assert_eq!(e.code(), "E_CONFIG_SYNTAX", "{v}: {e}");
            assert!(e.to_string().contains("RFC 3339"), "{v}: {e}");
        }
    }

    #[test]
    fn rate_limits_default_to_none_and_are_checked() {
        assert_eq!(keys("").unwrap().tenants["a"].rate_limit, None);
        let c = keys("[tenants.a.rate_limit]\nrequests_per_second = 50\nburst = 100\n").unwrap();
        let r = c.tenants["a"].rate_limit.unwrap();
        assert_eq!((r.requests_per_second, r.burst()), (50.0, 100));
        // The burst defaults to the rate, rounded up (at least 1).
        for (rate, burst) in [("2.5", 3), ("0.5", 1), ("1000000", 1_000_000)] {
            let c = keys(&format!(
                "[tenants.a.rate_limit]\nrequests_per_second = {rate}\n"
            ))
            .unwrap();
            assert_eq!(c.tenants["a"].rate_limit.unwrap().burst(), burst, "{rate}");
        }
        for (bad, what) in [
            ("requests_per_second = 0", "requests_per_second = 0"),
            ("requests_per_second = -3", "above 0"),
            ("requests_per_second = nan", "above 0"),
            ("requests_per_second = inf", "above 0"),
            ("requests_per_second = 1e7", "at most 1000000"),
            ("requests_per_second = 5\nburst = 0", "burst = 0"),
            ("requests_per_second = 5\nburst = -1", "from 1 to 1000000"),
            (
                "requests_per_second = 5\nburst = 2000000",
                "from 1 to 1000000",
            ),
        ] {
            let e = keys(&format!("[tenants.a.rate_limit]\n{bad}\n")).unwrap_err();
            assert_eq!(e.code(), "E_RATE_LIMIT", "{bad}: {e}");
            assert!(e.to_string().starts_with("tenant `a`, rate_limit: "), "{e}");
            assert!(e.to_string().contains(what), "{bad}: {e}");
        }
        // A missing rate or an unknown name is a syntax error naming it.
        let e = keys("[tenants.a.rate_limit]\nburst = 5\n").unwrap_err();
        assert!(e.to_string().contains("requests_per_second"), "{e}");
        let e = keys("[tenants.a.rate_limit]\nrequests_per_second = 5\nbrust = 5\n").unwrap_err();
        assert_eq!(e.code(), "E_CONFIG_SYNTAX");
        assert!(e.to_string().contains("brust"), "{e}");
    }

    #[test]
    fn cors_origins_default_to_none_and_are_checked() {
        assert!(keys("").unwrap().tenants["a"].cors_origins.is_empty());
        let c = keys(
            "cors_origins = [\"https://crm.example.com\", \"http://localhost:3000\", \"*\"]\n",
        )
        .unwrap();
        assert_eq!(c.tenants["a"].cors_origins.len(), 3);
        for bad in [
            "https://crm.example.com/",
            "https://*.example.com",
            "null",
            "crm.example.com",
        ] {
            let e = keys(&format!("cors_origins = [\"{bad}\"]\n")).unwrap_err();
            assert_eq!(e.code(), "E_CORS_ORIGIN", "{bad}: {e}");
            assert!(
                e.to_string().starts_with("tenant `a`, cors_origins: `"),
                "{e}"
            );
        }
    }

    fn smtp(lines: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!("[tenants.a]\nroot = \".\"\n[tenants.a.sink]\nkind = \"smtp\"\n{lines}"),
            "t.toml",
            Path::new("."),
        )
    }

    #[test]
    fn an_smtp_sink_with_defaults_and_a_password_from_the_environment() {
        let c = smtp(
            "host = \"smtp.example.com\"\nfrom = \"Leads <noreply@example.com>\"\nusername = \"lf\"\npassword_env = \"LF_SMTP_PASSWORD\"\n[tenants.a.sink.addresses]\nd1 = \"d1@example.com\"\n",
        )
        .unwrap();
        let Some(SinkConfig::Smtp(s)) = &c.tenants["a"].sink else {
            panic!("not an smtp sink: {:?}", c.tenants["a"].sink)
        };
        assert_eq!((s.tls, s.port()), (SmtpTls::Starttls, 587));
        let env = |v: &str| (v == "LF_SMTP_PASSWORD").then(|| "s3cret".to_string());
        let r = s.resolve("a", env).unwrap();
        assert_eq!(
            (r.port, r.username.as_deref(), r.password.as_deref()),
            (587, Some("lf"), Some("s3cret"))
        );
        assert_eq!(r.addresses["d1"], "d1@example.com");
        let e = s.resolve("a", |_| None).unwrap_err();
        assert_eq!(e.code(), "E_SINK_CREDENTIALS");
        assert!(e.to_string().contains("`LF_SMTP_PASSWORD`"), "{e}");
        let c =
            smtp("host = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"a@b.c\"\n").unwrap();
        let Some(SinkConfig::Smtp(s)) = &c.tenants["a"].sink else {
            panic!()
        };
        assert_eq!((s.tls, s.port()), (SmtpTls::None, 2525));
        assert!(s.resolve("a", |_| None).unwrap().password.is_none());
    }

    fn webhook(lines: &str) -> Result<Config, ConfigError> {
        Config::parse(
            &format!("[tenants.a]\nroot = \".\"\n[tenants.a.sink]\nkind = \"webhook\"\n{lines}"),
            "t.toml",
            Path::new("."),
        )
    }

    fn webhook_sink(c: &Config) -> &WebhookSinkConfig {
        match &c.tenants["a"].sink {
            Some(SinkConfig::Webhook(w)) => w,
            other => panic!("not a webhook sink: {other:?}"),
        }
    }

    #[test]
    fn a_webhook_secret_from_the_environment_or_the_file_and_a_previous_one() {
        let url = "url = \"https://crm.example.com/hook\"\n";
        let env = |v: &str| match v {
            "LF_HOOK" => Some("new-secret".to_string()),
            "LF_HOOK_OLD" => Some("old-secret".to_string()),
            "LF_EMPTY" => Some(String::new()),
            _ => None,
        };
        let c = webhook(&format!("{url}secret_env = \"LF_HOOK\"\n")).unwrap();
        let w = webhook_sink(&c).resolve("a", env).unwrap();
        assert_eq!(w.secrets, ["new-secret"]);
        assert!(!w.legacy_signature && !webhook_sink(&c).secret_in_file());
        assert!(!format!("{w:?}").contains("new-secret"), "{w:?}");
        let c = webhook(&format!(
            "{url}secret_env = \"LF_HOOK\"\nprevious_secret_env = \"LF_HOOK_OLD\"\nlegacy_signature = true\n"
        ))
        .unwrap();
        let w = webhook_sink(&c).resolve("a", env).unwrap();
        assert_eq!(w.secrets, ["new-secret", "old-secret"]);
        assert!(w.legacy_signature);
        // The literal secret of existing files still works.
        let c = webhook(&format!("{url}secret = \"in-file\"\n")).unwrap();
        assert!(webhook_sink(&c).secret_in_file());
        assert_eq!(
            webhook_sink(&c).resolve("a", env).unwrap().secrets,
            ["in-file"]
        );
        // A variable unset or empty when the daemon starts.
        for (lines, var) in [
            ("secret_env = \"LF_UNSET\"\n", "LF_UNSET"),
            ("secret_env = \"LF_EMPTY\"\n", "LF_EMPTY"),
            (
                "secret_env = \"LF_HOOK\"\nprevious_secret_env = \"LF_UNSET\"\n",
                "LF_UNSET",
            ),
        ] {
            let c = webhook(&format!("{url}{lines}")).unwrap();
            let e = webhook_sink(&c).resolve("a", env).unwrap_err();
            assert_eq!(e.code(), "E_SINK_CREDENTIALS", "{e}");
            assert!(e.to_string().contains(&format!("`{var}`")), "{e}");
        }
    }

    #[test]
    fn webhook_sink_errors_have_stable_codes() {
        let env = "secret_env = \"LF_HOOK\"\n";
        let cases = [
            (format!("url = \"ftp://x/hook\"\n{env}"), "E_SINK_URL"),
            (
                format!("url = \"crm.example.com/hook\"\n{env}"),
                "E_SINK_URL",
            ),
            (format!("url = \"http://\"\n{env}"), "E_SINK_URL"),
            (format!("url = \"\"\n{env}"), "E_SINK_URL"),
            ("url = \"https://x\"\n".to_string(), "E_SINK_CREDENTIALS"),
            (
                format!("url = \"https://x\"\n{env}secret = \"s\"\n"),
                "E_SINK_CREDENTIALS",
            ),
            (
                "url = \"https://x\"\nsecret = \"\"\n".to_string(),
                "E_SINK_CREDENTIALS",
            ),
            (
                "url = \"https://x\"\nsecret_env = \"A-B\"\n".to_string(),
                "E_SINK_CREDENTIALS",
            ),
            (
                format!("url = \"https://x\"\n{env}previous_secret_env = \"1X\"\n"),
                "E_SINK_CREDENTIALS",
            ),
        ];
        for (text, code) in cases {
            let e = webhook(&text).unwrap_err();
            assert_eq!(e.code(), code, "{text}: {e}");
            assert!(
                e.to_string().starts_with("tenant `a`, sink: webhook "),
                "{e}"
            );
            assert!(e.to_string().ends_with(&format!("[{code}]")), "{e}");
        }
        let e = webhook(&format!("url = \"https://x\"\n{env}secrte = \"s\"\n")).unwrap_err();
        assert_eq!(e.code(), "E_CONFIG_SYNTAX");
        assert!(e.to_string().contains("secrte"), "{e}");
    }

    #[test]
    fn actors_email_and_language_and_notification_settings_are_checked() {
        let ok = Config::parse(
            "[tenants.a]\nroot = \".\"\n[tenants.a.notifications]\nlanguage = \"IT\"\nlists = { ops = [\"ops@example.com\"] }\n[tenants.a.actors.d1]\nrole = \"dealer\"\nemail = \"Dealer <d1@example.com>\"\nlanguage = \"EN\"\n",
            "t.toml",
            Path::new("/base"),
        )
        .unwrap();
        let t = &ok.tenants["a"];
        let a = &t.directory()[0];
        assert_eq!(
            (a.email.as_deref(), a.language.as_deref()),
            (Some("Dealer <d1@example.com>"), Some("en"))
        );
        let s = t.notification_settings();
        assert_eq!(
            (s.language.as_deref(), s.lists["ops"].len()),
            (Some("it"), 1)
        );
        for (lines, code) in [
            (
                "[tenants.a.actors.d1]\nrole = \"d\"\nemail = \"nobody\"\n",
                "E_SINK_ADDRESS",
            ),
            (
                "[tenants.a.actors.d1]\nrole = \"d\"\nlanguage = \"it_IT!\"\n",
                "E_CONFIG",
            ),
            ("[tenants.a.notifications]\nlanguage = \"\"\n", "E_CONFIG"),
            (
                "[tenants.a.notifications]\nlists = { ops = [\"x\"] }\n",
                "E_SINK_ADDRESS",
            ),
            (
                "[tenants.a.notifications]\nlanguages = \"it\"\n",
                "E_CONFIG_SYNTAX",
            ),
        ] {
            let e = Config::parse(
                &format!("[tenants.a]\nroot = \".\"\n{lines}"),
                "t.toml",
                Path::new("/"),
            )
            .unwrap_err();
            assert_eq!(e.code(), code, "{lines}: {e}");
        }
    }

    #[test]
    fn smtp_sink_errors_have_stable_codes() {
        let from = "from = \"a@b.c\"\n";
        let cases = [
            (format!("host = \"smtp://x\"\n{from}"), "E_SINK_HOST"),
            (format!("host = \"x:25\"\n{from}"), "E_SINK_HOST"),
            (format!("host = \"\"\n{from}"), "E_SINK_HOST"),
            (format!("host = \"x\"\nport = 0\n{from}"), "E_SINK_PORT"),
            (
                "host = \"x\"\nfrom = \"nobody\"\n".to_string(),
                "E_SINK_FROM",
            ),
            (
                format!("host = \"x\"\n{from}password = \"p\"\nusername = \"u\"\n"),
                "E_SINK_SECRET",
            ),
            (
                format!("host = \"x\"\n{from}username = \"u\"\n"),
                "E_SINK_CREDENTIALS",
            ),
            (
                format!("host = \"x\"\n{from}password_env = \"P\"\n"),
                "E_SINK_CREDENTIALS",
            ),
            (
                format!("host = \"x\"\n{from}username = \"u\"\npassword_env = \"A-B\"\n"),
                "E_SINK_CREDENTIALS",
            ),
            (
                format!(
                    "host = \"x\"\n{from}[tenants.a.sink.addresses]\nd1 = \"not an address\"\n"
                ),
                "E_SINK_ADDRESS",
            ),
            (
                format!("host = \"x\"\n{from}[tenants.a.sink.addresses]\ncustomer = \"c@d.e\"\n"),
                "E_SINK_ADDRESS",
            ),
        ];
        for (text, code) in cases {
            let e = smtp(&text).unwrap_err();
            assert_eq!(e.code(), code, "{text}: {e}");
            assert!(e.to_string().starts_with("tenant `a`, sink: smtp "), "{e}");
            assert!(e.to_string().ends_with(&format!("[{code}]")), "{e}");
        }
        // Unknown keys and TLS modes are syntax errors naming the key.
        let e = smtp(&format!("host = \"x\"\n{from}pasword_env = \"P\"\n")).unwrap_err();
        assert_eq!(e.code(), "E_CONFIG_SYNTAX");
        assert!(e.to_string().contains("pasword_env"), "{e}");
        let e = smtp(&format!("host = \"x\"\n{from}tls = \"ssl\"\n")).unwrap_err();
        assert!(e.to_string().contains("starttls"), "{e}");
    }
}
