//! [`Templates`]: the templates a dispatcher renders with, re-read when
//! the directory changes, earlier versions kept, action links.

use super::{RenderError, Rendered, Source, TemplateSet};
use chrono::{DateTime, Utc};
use minijinja::value::Value;
use minijinja::{Error as JError, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// What the directory held when last read: (name, modified, length).
type Stamp = Vec<(String, Option<std::time::SystemTime>, u64)>;

/// What `action_url("<transition>")` needs besides the payload: the
/// daemon's link key, the tenant, and when the message was queued (the
/// start of its links' `max_age_days`).
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub key: Arc<crate::links::LinkKey>,
    pub tenant: String,
    pub queued: DateTime<Utc>,
}

impl LinkContext {
    /// The `action_url` function for one recipient's payload: a signed link
    /// for its record, revision and actor, expiring at the payload's
    /// `deadline` (the timer the step armed) or after `max_age_days`. A
    /// recipient that is no actor (the customer, an address) cannot act:
    /// calling it then is a render error.
    pub(super) fn function(&self, payload: &serde_json::Value) -> Value {
        let record = payload.get("record").and_then(|v| v.as_i64());
        let revision = payload.get("revision").and_then(|v| v.as_i64());
        let recipient = payload.get("recipient");
        let actor = recipient
            .filter(|r| r.get("kind").and_then(|k| k.as_str()) == Some("actor"))
            .and_then(|r| r.get("id"))
            .and_then(|i| i.as_str())
            .map(str::to_string);
        let deadline = payload
            .get("deadline")
            .and_then(|d| d.as_str())
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc));
        let (key, tenant) = (self.key.clone(), self.tenant.clone());
        let expires = key.expiry(self.queued, deadline);
        Value::from_function(move |transition: &str| -> Result<String, JError> {
            let (Some(record), Some(revision)) = (record, revision) else {
                return Err(JError::new(
                    ErrorKind::InvalidOperation,
                    "action_url: the message has no record",
                ));
            };
            let Some(actor) = &actor else {
                return Err(JError::new(
                    ErrorKind::InvalidOperation,
                    "action_url: only an actor of the directory can act through a link, not this recipient",
                ));
            };
            if transition.is_empty() {
                return Err(JError::new(
                    ErrorKind::InvalidOperation,
                    "action_url: name a transition",
                ));
            }
            Ok(key.url(&crate::links::Claims {
                tenant: tenant.clone(),
                record,
                revision,
                transition: transition.to_string(),
                actor: actor.clone(),
                expires,
            }))
        })
    }
}

/// The templates a dispatcher renders with: the project's `templates/`
/// directory, re-read when its files change ([`Templates::refresh`]).
#[derive(Debug)]
pub struct Templates {
    dir: PathBuf,
    /// The daemon's link key and the tenant: `action_url` is defined.
    links: Option<(Arc<crate::links::LinkKey>, String)>,
    default_language: Option<String>,
    current: RwLock<(Stamp, Arc<TemplateSet>)>,
    /// Versions in force earlier in this process, or loaded from the store
    /// for messages queued under them (the newest last, at most
    /// [`KEPT_VERSIONS`]).
    older: std::sync::Mutex<Vec<Arc<TemplateSet>>>,
    /// The version last stored and stamped on new messages.
    published: std::sync::Mutex<Option<String>>,
    /// The files' stamp of an edit refused because a file no longer
    /// compiled: not read again until the files change.
    refused: std::sync::Mutex<Stamp>,
}

/// Template versions a dispatcher keeps in memory besides the current one.
pub const KEPT_VERSIONS: usize = 16;

impl Templates {
    pub fn new(dir: impl Into<PathBuf>) -> Templates {
        Templates::with_language(dir, None)
    }

    /// With the tenant's default language.
    pub fn with_language(dir: impl Into<PathBuf>, default_language: Option<String>) -> Templates {
        let t = Templates {
            dir: dir.into(),
            links: None,
            default_language,
            current: RwLock::new((Vec::new(), Arc::new(TemplateSet::default()))),
            older: Default::default(),
            published: Default::default(),
            refused: Default::default(),
        };
        t.refresh();
        t
    }

    /// A fixed set (tests, benches, the scenario harness).
    pub fn fixed(set: TemplateSet) -> Templates {
        Templates {
            dir: PathBuf::new(),
            links: None,
            default_language: set.default_language.clone(),
            current: RwLock::new((Vec::new(), Arc::new(set))),
            older: Default::default(),
            published: Default::default(),
            refused: Default::default(),
        }
    }

    fn stamp(&self) -> Stamp {
        let mut out = Vec::new();
        let walk = |d: &Path,
                    prefix: &str,
                    recurse: bool,
                    out: &mut Vec<_>,
                    dirs: &mut Vec<(PathBuf, String)>| {
            if let Ok(es) = std::fs::read_dir(d) {
                for e in es.flatten() {
                    let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                    let meta = e.metadata().ok();
                    if meta.as_ref().is_some_and(|m| m.is_dir()) {
                        if recurse {
                            dirs.push((e.path(), format!("{name}/")));
                        }
                        continue;
                    }
                    out.push((
                        name,
                        meta.as_ref().and_then(|m| m.modified().ok()),
                        meta.map_or(0, |m| m.len()),
                    ));
                }
            }
        };
        let mut dirs = Vec::new();
        walk(&self.dir, "", true, &mut out, &mut dirs);
        for (d, prefix) in std::mem::take(&mut dirs) {
            walk(&d, &prefix, false, &mut out, &mut Vec::new());
        }
        out.sort();
        out
    }

    /// Re-read the directory if a file changed since the last read.
    pub fn refresh(&self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        let stamp = self.stamp();
        {
            let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
            if cur.0 == stamp && !stamp.is_empty() {
                return;
            }
        }
        if !stamp.is_empty() && *self.refused.lock().unwrap_or_else(|e| e.into_inner()) == stamp {
            return;
        }
        match TemplateSet::load(&self.dir, self.default_language.clone()) {
            Ok(set) => {
                let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
                // An edit that breaks a template is not taken: the last
                // good set keeps rendering until the files compile again
                // (as a broken workflow edit keeps the last good version).
                let newly_broken: Vec<&str> = set
                    .broken()
                    .iter()
                    .filter(|(k, e)| cur.1.broken().get(*k) != Some(*e))
                    .map(|(k, _)| k.as_str())
                    .collect();
                if !newly_broken.is_empty() && !cur.0.is_empty() {
                    tracing::warn!(
                        files = ?newly_broken,
                        "templates not reloaded: an edited template does not compile; the last good templates keep rendering (`leadflow check` shows where)"
                    );
                    *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
                    return;
                }
                if cur.1.hash() != set.hash() && !cur.0.is_empty() {
                    // Messages queued under it still render with it.
                    self.keep(cur.1.clone());
                }
                *cur = (stamp, Arc::new(set));
            }
            Err(e) => tracing::warn!("templates not reloaded: {e}"),
        }
    }

    fn keep(&self, set: Arc<TemplateSet>) {
        let mut older = self.older.lock().unwrap_or_else(|e| e.into_inner());
        older.retain(|s| s.hash() != set.hash());
        older.push(set);
        let over = older.len().saturating_sub(KEPT_VERSIONS);
        older.drain(..over);
    }

    /// The set of version `hash`, if this process has it (current or kept).
    pub fn version(&self, hash: &str) -> Option<Arc<TemplateSet>> {
        let cur = self.set();
        if cur.hash() == hash {
            return Some(cur);
        }
        let older = self.older.lock().unwrap_or_else(|e| e.into_inner());
        older.iter().find(|s| s.hash() == hash).cloned()
    }

    /// Keep a version read back from the store.
    pub fn add_version(&self, sources: Vec<Source>) -> Arc<TemplateSet> {
        let set = Arc::new(TemplateSet::new(sources, self.default_language.clone()));
        self.keep(set.clone());
        set
    }

    /// The current set when it is not yet the published version.
    pub fn unpublished(&self) -> Option<Arc<TemplateSet>> {
        let cur = self.set();
        let published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        (published.as_deref() != Some(cur.hash())).then_some(cur)
    }

    /// Record that `hash` is stored and stamped on new messages.
    pub fn mark_published(&self, hash: &str) {
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash.to_string());
    }

    /// Messages rendered with `action_url` for `tenant`'s recipients.
    pub fn with_links(mut self, key: Arc<crate::links::LinkKey>, tenant: &str) -> Templates {
        self.links = Some((key, tenant.to_string()));
        self
    }

    /// Render an outbox row's message queued at `queued` with the set in
    /// force (and its action links, when the daemon makes them).
    pub fn render(
        &self,
        id: &str,
        payload: &serde_json::Value,
        queued: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let links = self.links.as_ref().map(|(key, tenant)| LinkContext {
            key: key.clone(),
            tenant: tenant.clone(),
            queued,
        });
        // The version the message was queued under, when this process has
        // it (the dispatcher loads it from the store first); else the
        // current one.
        let set = payload
            .get("templates")
            .and_then(|h| h.as_str())
            .and_then(|h| self.version(h))
            .unwrap_or_else(|| self.set());
        set.render_linked(id, payload, None, links.as_ref())
    }

    /// The set in force.
    pub fn set(&self) -> Arc<TemplateSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}
