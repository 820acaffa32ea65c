//! `leadflow migrate`: move a workflow's records from one version to
//! another, explicitly and checked. Every state the records are in must map
//! (by `--map old=new`, else by name) to a state of the target version, or
//! nothing moves. Each moved record gets revision + 1, an event (kind
//! `migrate`, actor `migrate`, from and to its old and new state) and a
//! history row (transition `migrate`, field `version`) in the same
//! transaction.

use crate::any::AnyBackend;
use crate::backend::Error;
use crate::sql::{db, micros};
use chrono::{DateTime, Utc};
use leadflow_engine::Workflow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from_state: String,
    pub to_state: String,
    pub records: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error("--to {to} is not the version of `{workflow}` on disk ({current}); migrate to the current version")]
    NotCurrent {
        workflow: String,
        to: String,
        current: String,
    },
    #[error("--from and --to are the same version")]
    Same,
    #[error("--map {0}: `{1}` is not a state of the target version")]
    BadTarget(String, String),
    #[error("refused, nothing moved: {}", .0.join("; "))]
    UnknownStates(Vec<String>),
    #[error(transparent)]
    Store(#[from] Error),
}

/// Parse `old=new,old2=new2`.
pub fn parse_map(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}`: expected old=new"))?;
        m.insert(a.trim().to_string(), b.trim().to_string());
    }
    Ok(m)
}

/// What to move.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Old state -> new state; unmapped states keep their name.
    pub map: &'a BTreeMap<String, String>,
    /// Check and report, change nothing.
    pub dry_run: bool,
}

/// Move the records of `target.id` on version `plan.from` to `target`
/// (which must be version `plan.to`).
pub async fn migrate(
    b: &AnyBackend,
    tenant: &str,
    target: &Workflow,
    plan_: &Plan<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Moved>, MigrateError> {
    let Plan {
        from,
        to,
        map,
        dry_run,
    } = *plan_;
    if target.hash != to {
        return Err(MigrateError::NotCurrent {
            workflow: target.id.clone(),
            to: to.to_string(),
            current: target.hash.clone(),
        });
    }
    if from == to {
        return Err(MigrateError::Same);
    }
    for (k, v) in map {
        if target.state(v).is_none() {
            return Err(MigrateError::BadTarget(format!("{k}={v}"), v.clone()));
        }
    }
    let counts = state_counts(b, tenant, &target.id, from).await?;
    let mut plan = Vec::new();
    let mut unknown = Vec::new();
    for (state, n) in counts {
        let new = map.get(&state).cloned().unwrap_or_else(|| state.clone());
        match target.state(&new) {
            Some(_) => plan.push(Moved {
                from_state: state,
                to_state: new,
                records: n,
            }),
            None => unknown.push(format!(
                "state `{state}` ({n} records) is not in version {to}: add --map {state}=<state>"
            )),
        }
    }
    if !unknown.is_empty() {
        return Err(MigrateError::UnknownStates(unknown));
    }
    if dry_run || plan.is_empty() {
        return Ok(plan);
    }
    match b {
        AnyBackend::Pg(pg) => {
            let mut tx = pg.tx().await?;
            for m in &plan {
                let sid = target.state(&m.to_state).unwrap_or_default();
                let rows: Vec<(i64, i64)> = sqlx::query_as(
                    "WITH moved AS (
                         UPDATE records SET version = $1, state = $2, is_final = $3, revision = revision + 1, updated_at = $4
                         WHERE tenant_id = $5 AND workflow = $6 AND version = $7 AND state = $8 RETURNING id, revision, assignee)
                     INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, from_state, to_state, assignee)
                     SELECT $5, id, revision, $6, $4, 'migrate', 'migrate', $8, $2, assignee FROM moved
                     RETURNING record_id, revision",
                )
                .bind(to).bind(&m.to_state).bind(target.states[sid].is_final).bind(now)
                .bind(tenant).bind(&target.id).bind(from).bind(&m.from_state)
                .fetch_all(&mut *tx).await.map_err(db)?;
                for (id, rev) in rows {
                    sqlx::query(
                        "INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new)
                         VALUES ($1, $2, $3, 0, $4, 'migrate', 'migrate', 'version', $5, $6)",
                    )
                    .bind(tenant).bind(id).bind(rev).bind(now)
                    .bind(sqlx::types::Json(serde_json::json!(format!("{from}:{}", m.from_state))))
                    .bind(sqlx::types::Json(serde_json::json!(format!("{to}:{}", m.to_state))))
                    .execute(&mut *tx).await.map_err(db)?;
                }
            }
            tx.commit().await.map_err(db)?;
        }
        AnyBackend::Sqlite(l) => {
            let mut tx = l.pool().begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
            for m in &plan {
                let sid = target.state(&m.to_state).unwrap_or_default();
                let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
                    "UPDATE records SET version = ?, state = ?, is_final = ?, revision = revision + 1, updated_at = ?
                     WHERE tenant_id = ? AND workflow = ? AND version = ? AND state = ? RETURNING id, revision, assignee",
                )
                .bind(to).bind(&m.to_state).bind(target.states[sid].is_final).bind(micros(now))
                .bind(tenant).bind(&target.id).bind(from).bind(&m.from_state)
                .fetch_all(&mut *tx).await.map_err(db)?;
                for (id, rev, assignee) in rows {
                    sqlx::query(
                        "INSERT INTO events (tenant_id, record_id, revision, workflow, at, kind, actor, from_state, to_state, assignee)
                         VALUES (?, ?, ?, ?, ?, 'migrate', 'migrate', ?, ?, ?)",
                    )
                    .bind(tenant).bind(id).bind(rev).bind(&target.id).bind(micros(now))
                    .bind(&m.from_state).bind(&m.to_state).bind(assignee)
                    .execute(&mut *tx).await.map_err(db)?;
                    sqlx::query(
                        "INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new)
                         VALUES (?, ?, ?, 0, ?, 'migrate', 'migrate', 'version', ?, ?)",
                    )
                    .bind(tenant).bind(id).bind(rev).bind(micros(now))
                    .bind(serde_json::json!(format!("{from}:{}", m.from_state)).to_string())
                    .bind(serde_json::json!(format!("{to}:{}", m.to_state)).to_string())
                    .execute(&mut *tx).await.map_err(db)?;
                }
            }
            tx.commit().await.map_err(db)?;
        }
        AnyBackend::Mem(_) => {
            return Err(Error::storage("migrate needs a SQL store").into());
        }
    }
    Ok(plan)
}

async fn state_counts(
    b: &AnyBackend,
    tenant: &str,
    workflow: &str,
    version: &str,
) -> Result<Vec<(String, u64)>, Error> {
    let rows: Vec<(String, i64)> = match b {
        AnyBackend::Pg(pg) => {
            let mut tx = pg.tx().await?;
            let rows = sqlx::query_as(
                "SELECT state, count(*) FROM records WHERE tenant_id = $1 AND workflow = $2 AND version = $3 GROUP BY state ORDER BY state",
            )
            .bind(tenant).bind(workflow).bind(version)
            .fetch_all(&mut *tx).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            rows
        }
        AnyBackend::Sqlite(l) => sqlx::query_as(
            "SELECT state, count(*) FROM records WHERE tenant_id = ? AND workflow = ? AND version = ? GROUP BY state ORDER BY state",
        )
        .bind(tenant).bind(workflow).bind(version)
        .fetch_all(l.pool()).await.map_err(db)?,
        AnyBackend::Mem(_) => return Err(Error::storage("migrate needs a SQL store")),
    };
    Ok(rows
        .into_iter()
        .map(|(s, n)| (s, n.max(0) as u64))
        .collect())
}
