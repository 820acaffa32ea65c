//! `[tenants.<id>]`: the project root and workflows, actors, API keys,
//! pools, rate limit; reading the tenant's project files from disk.

use super::{ConfigError, SinkConfig};
use leadflow_engine::{Actor, Period, Project, SourceFile, Value};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

    pub(super) fn validate(&self, tenant: &str) -> Result<(), ConfigError> {
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
