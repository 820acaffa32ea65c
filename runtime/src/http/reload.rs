//! Hot reload: watch each tenant's `workflows/`, `rules/`, `calendars/` and
//! `templates/`; on a change, publish a new templates version (stored, then
//! stamped on new messages), load and check the workflows. Clean: the files are stored as a project
//! snapshot and the new versions become current for new records (existing
//! records stay on theirs, across restarts too). Broken: the last good
//! versions keep serving, and the diagnostics are logged and shown by
//! `GET /v1/workflows`. Files over the tenant's size limits are refused
//! (`E060`) before they are loaded, and reading and compiling run on the
//! blocking pool, so a big edit never stalls the requests of any tenant.

use super::state::{load_project, ReloadStatus, Tenant};
use chrono::Utc;
use notify::{RecursiveMode, Watcher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Editors write a file in several steps; wait for quiet before loading.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Load the tenant's files again and publish them if they are clean.
/// Returns whether a new version was published.
pub async fn reload(t: &Tenant) -> bool {
    // Templates first: a new version is stored and stamped on the messages
    // queued from now on (those queued before keep theirs).
    if let Some(templates) = t.templates.get() {
        if let Err(e) = crate::outbox::publish_templates_any(&t.backend, templates).await {
            tracing::warn!(tenant = %t.id, error = %e, "reload: storing the new templates version failed; the dispatcher retries");
        }
    }
    let config = t.config.clone();
    let loaded = tokio::task::spawn_blocking(move || load_project(&config))
        .await
        .unwrap_or_else(|e| Err((Vec::new(), Some(format!("loading the files failed: {e}")))));
    match loaded {
        Ok((set, diagnostics, snapshot)) => {
            let before: Vec<String> = t
                .backend
                .versions()
                .all_current()
                .iter()
                .map(|w| w.hash.clone())
                .collect();
            // Versions superseded by an earlier reload: unloaded below if no
            // record runs on them (the ones superseded now wait for the next
            // reload, so that a create still in flight on one finds it).
            let older: Vec<(String, String)> = t
                .backend
                .versions()
                .all()
                .iter()
                .filter(|w| !before.contains(&w.hash))
                .map(|w| (w.id.clone(), w.hash.clone()))
                .collect();
            // Unloaded before the new versions are published, so that whoever
            // sees the new current version also sees the older ones gone.
            if !older.is_empty() {
                match t.backend.unload_unused(&older).await {
                    Ok(gone) if !gone.is_empty() => {
                        tracing::info!(tenant = %t.id, versions = ?gone, "reload: older versions no record runs on unloaded (kept in the database)")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(tenant = %t.id, error = %e, "reload: could not check which older versions are in use; keeping them loaded")
                    }
                }
            }
            let changed = set.workflows.values().any(|w| !before.contains(&w.hash));
            if changed {
                if let Err(e) = t.backend.publish(&set, &snapshot).await {
                    tracing::error!(tenant = %t.id, error = %e, "reload: storing the new versions failed; keeping the old ones");
                    set_status(
                        t,
                        false,
                        Vec::new(),
                        Some("storing the new versions failed".into()),
                    );
                    return false;
                }
                for w in set.workflows.values().filter(|w| !before.contains(&w.hash)) {
                    tracing::info!(tenant = %t.id, workflow = %w.id, version = %w.hash, "reload: new workflow version published");
                }
            }
            set_status(t, true, diagnostics, None);
            changed
        }
        Err((diagnostics, error)) => {
            for d in diagnostics.iter().filter(|d| d.is_error()) {
                tracing::warn!(tenant = %t.id, code = d.code, file = %d.file, line = d.line, column = d.column, "reload: {}; keeping the last good version", d.message);
            }
            if let Some(e) = &error {
                tracing::warn!(tenant = %t.id, "reload: {e}; keeping the last good version");
            }
            set_status(t, false, diagnostics, error);
            false
        }
    }
}

fn set_status(
    t: &Tenant,
    ok: bool,
    diagnostics: Vec<leadflow_engine::Diagnostic>,
    error: Option<String>,
) {
    *t.status.write().unwrap_or_else(|e| e.into_inner()) = ReloadStatus {
        ok,
        checked_at: Some(Utc::now()),
        diagnostics,
        error,
    };
}

/// Running watchers; dropping it stops them.
pub struct ReloadHandle {
    _watchers: Vec<notify::RecommendedWatcher>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ReloadHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Watch every tenant's project directories.
pub fn watch(tenants: Vec<Arc<Tenant>>) -> notify::Result<ReloadHandle> {
    let mut watchers = Vec::new();
    let mut tasks = Vec::new();
    for t in tenants {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev {
                if !ev.kind.is_access() {
                    let _ = tx.send(());
                }
            }
        })?;
        for dir in t.config.watched_dirs() {
            w.watch(&dir, RecursiveMode::Recursive)?;
        }
        watchers.push(w);
        tasks.push(tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Coalesce a burst of events into one reload.
                loop {
                    match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                reload(&t).await;
            }
        }));
    }
    Ok(ReloadHandle {
        _watchers: watchers,
        tasks,
    })
}
