//! Project snapshots: a content-addressed copy of every file a tenant's
//! workflows were loaded from (`workflows/`, `rules/`, `calendars/`), stored
//! once per distinct content in `project_snapshots` and referenced from
//! `workflow_versions.snapshot`. A workflow version depends on its rules
//! modules and calendar, and its spawns are checked against the other
//! workflows, so the whole project is kept, not one file.
//!
//! When a SQL store opens, every version of the tenant that is not current
//! and that a record runs on is rebuilt from its snapshot (see
//! [`rebuild_older`]), so a record created on an older version keeps running
//! on it after a restart; versions no record uses stay in the database only
//! (hot reload unloads them too, [`pg_in_use`]) and are loaded on demand. A snapshot that no
//! longer loads (or no longer gives the same content hash, e.g. after an
//! engine change) is logged and skipped: the other versions keep serving and
//! a record on the missing version gets the usual "version H is not loaded"
//! error until it is moved with `leadflow migrate`.

use crate::apply::Versions;
use crate::backend::Error;
use crate::sql::{db, json_err, micros};
use chrono::Utc;
use leadflow_engine::{Project, SourceFile, WorkflowSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::types::Json;
use std::collections::BTreeMap;

/// The stored form of a snapshot (`project_snapshots.files`). `format`
/// guards against reading a future layout as this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Files {
    format: u32,
    workflows: Vec<File>,
    rules: Vec<File>,
    calendars: Vec<File>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct File {
    path: String,
    text: String,
}

const FORMAT: u32 = 1;

/// Every file of a project, sorted by path, with the SHA-256 (hex) of all of
/// them: equal content gives an equal hash, whatever order it was read in.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    hash: String,
    files: Files,
}

impl Snapshot {
    pub fn of(project: &Project) -> Snapshot {
        let list = |v: &[SourceFile]| {
            let mut out: Vec<File> = v
                .iter()
                .map(|f| File {
                    path: f.path.clone(),
                    text: f.text.clone(),
                })
                .collect();
            out.sort_by(|a, b| a.path.cmp(&b.path));
            out
        };
        let files = Files {
            format: FORMAT,
            workflows: list(&project.workflows),
            rules: list(&project.rules),
            calendars: list(&project.calendars),
        };
        Snapshot {
            hash: content_hash(&files),
            files,
        }
    }

    /// SHA-256 hex of every file (kind, path and text, length-prefixed).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The project the snapshot holds, for the engine to load.
    pub fn project(&self) -> Project {
        let list = |v: &[File]| {
            v.iter()
                .map(|f| SourceFile::new(f.path.clone(), f.text.clone()))
                .collect()
        };
        Project {
            workflows: list(&self.files.workflows),
            rules: list(&self.files.rules),
            calendars: list(&self.files.calendars),
        }
    }

    fn from_stored(hash: &str, files: Files) -> Result<Snapshot, String> {
        if files.format != FORMAT {
            return Err(format!(
                "stored in format {}, this build reads format {FORMAT}",
                files.format
            ));
        }
        let computed = content_hash(&files);
        if computed != hash {
            return Err(format!(
                "its files hash to {computed}, not {hash} (edited in the database?)"
            ));
        }
        Ok(Snapshot {
            hash: hash.to_string(),
            files,
        })
    }
}

fn content_hash(f: &Files) -> String {
    let mut h = Sha256::new();
    for (kind, list) in [
        ("workflows", &f.workflows),
        ("rules", &f.rules),
        ("calendars", &f.calendars),
    ] {
        for file in list {
            for part in [kind, file.path.as_str(), file.text.as_str()] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

/// The stored versions that are not current, grouped by the snapshot they
/// can be rebuilt from. Versions stored without a snapshot (before
/// snapshots existed, or registered by a tool that had none) are logged.
fn older(
    tenant: &str,
    versions: &Versions,
    rows: Vec<(String, String, Option<String>)>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let current: Vec<(String, String)> = versions
        .all()
        .iter()
        .map(|w| (w.id.clone(), w.hash.clone()))
        .collect();
    let mut by_snapshot: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (workflow, hash, snapshot) in rows {
        if current.iter().any(|(w, h)| *w == workflow && *h == hash) {
            continue;
        }
        match snapshot {
            Some(s) => by_snapshot.entry(s).or_default().push((workflow, hash)),
            None => tracing::warn!(
                tenant,
                workflow = %workflow,
                version = %hash,
                "workflow version stored without a project snapshot: not loaded; its records fail until moved with `leadflow migrate`"
            ),
        }
    }
    by_snapshot
}

/// Load one stored snapshot and add the wanted versions it rebuilds to
/// `versions`. Problems are logged, never returned: the store keeps serving
/// every version it could rebuild.
fn rebuild(
    tenant: &str,
    versions: &Versions,
    snapshot: &str,
    files: Option<Files>,
    wanted: &[(String, String)],
) {
    let skip = |why: &str| {
        for (workflow, hash) in wanted {
            tracing::error!(tenant, workflow = %workflow, version = %hash, snapshot, "older workflow version not loaded: snapshot {why}; its records fail until moved with `leadflow migrate`");
        }
    };
    let Some(files) = files else {
        return skip("is missing");
    };
    let snap = match Snapshot::from_stored(snapshot, files) {
        Ok(s) => s,
        Err(e) => return skip(&e),
    };
    let loaded = leadflow_engine::load(&snap.project());
    for (workflow, hash) in wanted {
        match loaded.set.get(workflow) {
            Some(wf) if wf.hash == *hash => {
                versions.add(wf.clone());
                tracing::info!(tenant, workflow = %workflow, version = %hash, "older workflow version loaded from its snapshot");
            }
            found => {
                let why = match found {
                    Some(wf) => format!("now loads as version {}", wf.hash),
                    None => {
                        let errors: Vec<String> = loaded
                            .diagnostics
                            .iter()
                            .filter(|d| d.is_error())
                            .map(|d| format!("{}:{}: {} {}", d.file, d.line, d.code, d.message))
                            .collect();
                        format!("no longer loads ({})", errors.join("; "))
                    }
                };
                tracing::error!(tenant, workflow = %workflow, version = %hash, snapshot, "older workflow version not loaded: {why}; its records fail until moved with `leadflow migrate`");
            }
        }
    }
}

/// PostgreSQL: store `snap` (once per content) and point every version of
/// `set` at it, in the caller's transaction. A version that already has a
/// snapshot keeps it (any snapshot it loaded from rebuilds it exactly).
pub(crate) async fn pg_save(
    tx: &mut PgConnection,
    tenant: &str,
    snap: &Snapshot,
    set: &WorkflowSet,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO project_snapshots (tenant_id, hash, files) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, hash) DO NOTHING",
    )
    .bind(tenant)
    .bind(&snap.hash)
    .bind(Json(&snap.files))
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    for wf in set.workflows.values() {
        sqlx::query(
            "INSERT INTO workflow_versions (tenant_id, workflow, hash, loaded_at, snapshot) VALUES ($1, $2, $3, now(), $4)
             ON CONFLICT (tenant_id, workflow, hash) DO UPDATE SET snapshot = COALESCE(workflow_versions.snapshot, excluded.snapshot)",
        )
        .bind(tenant)
        .bind(&wf.id)
        .bind(&wf.hash)
        .bind(&snap.hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// PostgreSQL: rebuild the tenant's older versions (see [`rebuild`]).
pub(crate) async fn pg_rebuild_older(
    conn: &mut PgConnection,
    tenant: &str,
    versions: &Versions,
) -> Result<(), Error> {
    pg_rebuild(conn, tenant, versions, None).await
}

/// PostgreSQL: a record runs on a version this store does not know, so
/// another process on the database (another daemon's hot reload) published
/// it: load it from its snapshot now. Tried at most once a minute per
/// version ([`Versions::may_look_up`]), so a record on a version that
/// cannot be rebuilt does not reload snapshots on every request.
pub(crate) async fn pg_load_missing(
    conn: &mut PgConnection,
    tenant: &str,
    versions: &Versions,
    workflow: &str,
    hash: &str,
) -> Result<(), Error> {
    if versions.knows(workflow, hash) || !versions.may_look_up(hash) {
        return Ok(());
    }
    pg_rebuild(conn, tenant, versions, Some((workflow, hash))).await
}

async fn pg_rebuild(
    conn: &mut PgConnection,
    tenant: &str,
    versions: &Versions,
    only: Option<(&str, &str)>,
) -> Result<(), Error> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT workflow, hash, snapshot FROM workflow_versions v WHERE tenant_id = $1
           AND CASE WHEN $2::text IS NULL
                 THEN EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = $1
                                AND r.workflow = v.workflow AND r.version = v.hash)
                 ELSE workflow = $2 AND hash = $3 END
           ORDER BY workflow, loaded_at",
    )
    .bind(tenant)
    .bind(only.map(|o| o.0))
    .bind(only.map(|o| o.1))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for (snapshot, wanted) in older(tenant, versions, rows) {
        let files: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT files FROM project_snapshots WHERE tenant_id = $1 AND hash = $2",
        )
        .bind(tenant)
        .bind(&snapshot)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let files = parse(files.map(|v| serde_json::from_value(v).map_err(json_err)));
        rebuild(tenant, versions, &snapshot, files, &wanted);
    }
    Ok(())
}

/// PostgreSQL: which of the `(workflow, hash)` versions a record runs on.
pub(crate) async fn pg_in_use(
    b: &crate::pg::PgBackend,
    versions: &[(String, String)],
) -> Result<Vec<bool>, Error> {
    let tenant = b.tenant();
    // Row-level security: only inside a transaction that set the tenant.
    let mut tx = b.tx().await?;
    let mut out = Vec::with_capacity(versions.len());
    for (workflow, hash) in versions {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM records WHERE tenant_id = $1 AND workflow = $2 AND version = $3)",
        )
        .bind(tenant)
        .bind(workflow)
        .bind(hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        out.push(used);
    }
    tx.commit().await.map_err(db)?;
    Ok(out)
}

/// SQLite: as [`pg_in_use`].
pub(crate) async fn sqlite_in_use(
    pool: &SqlitePool,
    tenant: &str,
    versions: &[(String, String)],
) -> Result<Vec<bool>, Error> {
    let mut out = Vec::with_capacity(versions.len());
    for (workflow, hash) in versions {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM records WHERE tenant_id = ? AND workflow = ? AND version = ?)",
        )
        .bind(tenant)
        .bind(workflow)
        .bind(hash)
        .fetch_one(pool)
        .await
        .map_err(db)?;
        out.push(used);
    }
    Ok(out)
}

/// SQLite: as [`pg_save`].
pub(crate) async fn sqlite_save(
    pool: &SqlitePool,
    tenant: &str,
    snap: &Snapshot,
    set: &WorkflowSet,
) -> Result<(), Error> {
    let now = micros(Utc::now());
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    sqlx::query(
        "INSERT INTO project_snapshots (tenant_id, hash, files, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_id, hash) DO NOTHING",
    )
    .bind(tenant)
    .bind(&snap.hash)
    .bind(serde_json::to_string(&snap.files).map_err(json_err)?)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    for wf in set.workflows.values() {
        sqlx::query(
            "INSERT INTO workflow_versions (tenant_id, workflow, hash, loaded_at, snapshot) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant_id, workflow, hash) DO UPDATE SET snapshot = COALESCE(workflow_versions.snapshot, excluded.snapshot)",
        )
        .bind(tenant)
        .bind(&wf.id)
        .bind(&wf.hash)
        .bind(now)
        .bind(&snap.hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// SQLite: as [`pg_rebuild_older`].
pub(crate) async fn sqlite_rebuild_older(
    pool: &SqlitePool,
    tenant: &str,
    versions: &Versions,
) -> Result<(), Error> {
    let mut conn = pool.acquire().await.map_err(db)?;
    sqlite_rebuild(&mut conn, tenant, versions, None).await
}

/// SQLite: as [`pg_load_missing`] (another process may share the file).
pub(crate) async fn sqlite_load_missing(
    conn: &mut SqliteConnection,
    tenant: &str,
    versions: &Versions,
    workflow: &str,
    hash: &str,
) -> Result<(), Error> {
    if versions.knows(workflow, hash) || !versions.may_look_up(hash) {
        return Ok(());
    }
    sqlite_rebuild(conn, tenant, versions, Some((workflow, hash))).await
}

async fn sqlite_rebuild(
    conn: &mut SqliteConnection,
    tenant: &str,
    versions: &Versions,
    only: Option<(&str, &str)>,
) -> Result<(), Error> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT workflow, hash, snapshot FROM workflow_versions v WHERE tenant_id = ?
           AND CASE WHEN ? IS NULL
                 THEN EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = v.tenant_id
                                AND r.workflow = v.workflow AND r.version = v.hash)
                 ELSE workflow = ? AND hash = ? END
           ORDER BY workflow, loaded_at",
    )
    .bind(tenant)
    .bind(only.map(|o| o.0))
    .bind(only.map(|o| o.0))
    .bind(only.map(|o| o.1))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    for (snapshot, wanted) in older(tenant, versions, rows) {
        let files: Option<String> = sqlx::query_scalar(
            "SELECT files FROM project_snapshots WHERE tenant_id = ? AND hash = ?",
        )
        .bind(tenant)
        .bind(&snapshot)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let files = parse(files.map(|t| serde_json::from_str(&t).map_err(json_err)));
        rebuild(tenant, versions, &snapshot, files, &wanted);
    }
    Ok(())
}

/// A stored snapshot that does not even parse counts as missing (logged).
fn parse(files: Option<Result<Files, Error>>) -> Option<Files> {
    match files? {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!("project snapshot unreadable: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> Project {
        let mut p = Project::default();
        for (path, text) in files {
            let f = SourceFile::new(*path, *text);
            if path.starts_with("rules/") {
                p.rules.push(f);
            } else if path.starts_with("calendars/") {
                p.calendars.push(f);
            } else {
                p.workflows.push(f);
            }
        }
        p
    }

    #[test]
    fn the_hash_is_the_content_whatever_the_order() {
        let a = Snapshot::of(&project(&[
            ("workflows/a.toml", "x"),
            ("workflows/b.toml", "y"),
        ]));
        let b = Snapshot::of(&project(&[
            ("workflows/b.toml", "y"),
            ("workflows/a.toml", "x"),
        ]));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.hash().len(), 64);
        // Moving text between files, or a file between kinds, changes it.
        let c = Snapshot::of(&project(&[
            ("workflows/a.toml", "xy"),
            ("workflows/b.toml", ""),
        ]));
        assert_ne!(a.hash(), c.hash());
        let d = Snapshot::of(&project(&[
            ("rules/a.toml", "x"),
            ("workflows/b.toml", "y"),
        ]));
        assert_ne!(a.hash(), d.hash());
    }

    #[test]
    fn a_stored_snapshot_round_trips_and_tampering_is_refused() {
        let s = Snapshot::of(&project(&[
            ("workflows/a.toml", "x"),
            ("rules/r.rhai", "fn f() { 1 }"),
        ]));
        let json = serde_json::to_string(&s.files).unwrap();
        let back = Snapshot::from_stored(s.hash(), serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.project().rules[0].path, "rules/r.rhai");
        let mut edited = s.files.clone();
        edited.rules[0].text.push(' ');
        let e = Snapshot::from_stored(s.hash(), edited).unwrap_err();
        assert!(e.contains("hash to"), "{e}");
        let mut future = s.files.clone();
        future.format = 2;
        assert!(Snapshot::from_stored(s.hash(), future)
            .unwrap_err()
            .contains("format 2"));
    }
}
