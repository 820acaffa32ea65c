//! A tenant's `sink`: the log, a webhook (its secrets from the
//! environment), or SMTP (its password from the environment).

use super::ConfigError;
use crate::outbox::{SmtpConfig, SmtpTls, WebhookConfig};
use lettre::message::Mailbox;
use serde::Deserialize;
use std::collections::BTreeMap;

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

    pub(super) fn validate(&self, tenant: &str) -> Result<(), ConfigError> {
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

    pub(super) fn validate(&self, tenant: &str) -> Result<(), ConfigError> {
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

fn env_name_ok(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
