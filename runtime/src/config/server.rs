//! `[server]`: connection and request limits of the HTTP server; `[links]`:
//! the key that signs one-click action links.

use super::ConfigError;
use serde::Deserialize;

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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
