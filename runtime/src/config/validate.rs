//! Checking a parsed config: server limits, sinks, rate limits, CORS
//! origins, actors' addresses, languages and managers, API keys.

use super::{Config, ConfigError, SinkConfig, TenantConfig};
use leadflow_engine::Actor;
use lettre::message::Mailbox;

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
