//! `leadflow.toml`: the daemon's configuration (listen address, database,
//! tenants with their workflows, actors, API keys, pools and sinks), and
//! reading a tenant's project files from disk for the engine.
//!
//! Relative paths are resolved against the directory of the config file.
//! See `examples/leadflow.toml` for a commented example.

mod server;
mod sinks;
mod tenant;
#[cfg(test)]
mod tests;
mod validate;

pub use server::{LinksConfig, ServerConfig, DEFAULT_LINK_KEY_ENV};
pub use sinks::{SinkConfig, SmtpSinkConfig, WebhookSinkConfig};
pub use tenant::{ActorConfig, KeyConfig, PoolConfig, RateLimitConfig, TenantConfig, MAX_RATE};
pub use validate::language_ok;

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

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
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
