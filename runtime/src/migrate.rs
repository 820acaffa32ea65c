//! `leadflow migrate`: move a workflow's records from one version to
//! another, explicitly and checked. Every state the records are in must map
//! (by `--map old=new`, else by name) to a state of the target version, or
//! nothing moves. Each moved record gets revision + 1, an event (kind
//! `migrate`, actor `migrate`, from and to its old and new state) and a
//! history row (transition `migrate`, field `version`) in the same
//! transaction.
//!
//! Armed timers: a timer whose definition (`after`/`since`/`at`, as
//! written) is the same in both versions keeps its due instant. One the
//! target version defines differently is recomputed from when it was armed
//! (the instant of the record's event at the timer's `armed_revision`) and
//! the record's fields; one the target version removes, or no longer arms in
//! the record's new state, is cancelled. `--timers keep` leaves every armed
//! timer as it was. `--dry-run` reports each change per record.

use crate::any::AnyBackend;
use crate::backend::Error;
use crate::sql::{db, instant, micros};
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

/// What happens to armed timers whose definition the target changes or
/// drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimerMode {
    /// Leave every armed timer as it is.
    Keep,
    /// Recompute a changed timer, cancel a dropped one.
    #[default]
    Recompute,
}

impl std::str::FromStr for TimerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<TimerMode, String> {
        match s {
            "keep" => Ok(TimerMode::Keep),
            "recompute" => Ok(TimerMode::Recompute),
            _ => Err(format!("`{s}`: expected keep or recompute")),
        }
    }
}

/// What a migration does (or would do) to one armed timer of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerChange {
    pub record: i64,
    pub timer: String,
    pub due: DateTime<Utc>,
    pub action: TimerAction,
    /// Why, for the report: the definitions before and after, or what is missing.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimerAction {
    /// Due at a new instant (`None`: the new `at` gives nothing: cancelled).
    Recomputed(Option<DateTime<Utc>>),
    /// Removed: the target version has no such timer in the new state.
    Cancelled,
    /// Changed or dropped in the target, left as it was (`--timers keep`).
    Kept,
}

/// What a migration moved and what it did to armed timers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub moved: Vec<Moved>,
    pub timers: Vec<TimerChange>,
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
    /// Changed and dropped timers: recompute (default) or keep.
    pub timers: TimerMode,
}

/// Move the records of `target.id` on version `plan.from` to `target`
/// (which must be version `plan.to`).
pub async fn migrate(
    b: &AnyBackend,
    tenant: &str,
    target: &Workflow,
    plan_: &Plan<'_>,
    now: DateTime<Utc>,
) -> Result<Report, MigrateError> {
    let Plan {
        from,
        to,
        map,
        dry_run,
        timers: mode,
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
    let timers = timer_changes(b, tenant, target, from, map, mode).await?;
    if dry_run || plan.is_empty() {
        return Ok(Report {
            moved: plan,
            timers,
        });
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
            for c in &timers {
                match &c.action {
                    TimerAction::Recomputed(Some(due)) => {
                        sqlx::query(
                            "UPDATE timers SET due = $1, attempts = 0, next_attempt_at = NULL, last_error = NULL
                             WHERE tenant_id = $2 AND record_id = $3 AND timer = $4 AND fired_at IS NULL",
                        )
                        .bind(due).bind(tenant).bind(c.record).bind(&c.timer)
                        .execute(&mut *tx).await.map_err(db)?;
                    }
                    TimerAction::Recomputed(None) | TimerAction::Cancelled => {
                        sqlx::query(
                            "DELETE FROM timers WHERE tenant_id = $1 AND record_id = $2 AND timer = $3 AND fired_at IS NULL",
                        )
                        .bind(tenant).bind(c.record).bind(&c.timer)
                        .execute(&mut *tx).await.map_err(db)?;
                    }
                    TimerAction::Kept => {}
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
            for c in &timers {
                match &c.action {
                    TimerAction::Recomputed(Some(due)) => {
                        sqlx::query(
                            "UPDATE timers SET due = ?, attempts = 0, next_attempt_at = NULL, last_error = NULL
                             WHERE tenant_id = ? AND record_id = ? AND timer = ? AND fired_at IS NULL",
                        )
                        .bind(micros(*due)).bind(tenant).bind(c.record).bind(&c.timer)
                        .execute(&mut *tx).await.map_err(db)?;
                    }
                    TimerAction::Recomputed(None) | TimerAction::Cancelled => {
                        sqlx::query(
                            "DELETE FROM timers WHERE tenant_id = ? AND record_id = ? AND timer = ? AND fired_at IS NULL",
                        )
                        .bind(tenant).bind(c.record).bind(&c.timer)
                        .execute(&mut *tx).await.map_err(db)?;
                    }
                    TimerAction::Kept => {}
                }
            }
            tx.commit().await.map_err(db)?;
        }
        AnyBackend::Mem(_) => {
            return Err(Error::storage("migrate needs a SQL store").into());
        }
    }
    Ok(Report {
        moved: plan,
        timers,
    })
}

/// One armed timer of a record on the source version: record, timer, due,
/// the record's state, when it was armed (if its event is known).
type Armed = (i64, String, DateTime<Utc>, String, Option<DateTime<Utc>>);

async fn armed_timers(
    b: &AnyBackend,
    tenant: &str,
    workflow: &str,
    version: &str,
) -> Result<Vec<Armed>, Error> {
    const Q: &str = "SELECT t.record_id, t.timer, t.due, r.state, e.at
         FROM timers t
         JOIN records r ON r.tenant_id = t.tenant_id AND r.id = t.record_id
         LEFT JOIN events e ON e.tenant_id = t.tenant_id AND e.record_id = t.record_id AND e.revision = t.armed_revision
         WHERE t.tenant_id = {1} AND r.workflow = {2} AND r.version = {3} AND t.fired_at IS NULL
         ORDER BY t.record_id, t.timer";
    match b {
        AnyBackend::Pg(pg) => {
            let q = Q
                .replace("{1}", "$1")
                .replace("{2}", "$2")
                .replace("{3}", "$3");
            let mut tx = pg.tx().await?;
            let rows: Vec<Armed> = sqlx::query_as(&q)
                .bind(tenant)
                .bind(workflow)
                .bind(version)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(rows)
        }
        AnyBackend::Sqlite(l) => {
            let q = Q
                .replace("{1}", "?")
                .replace("{2}", "?")
                .replace("{3}", "?");
            let rows: Vec<(i64, String, i64, String, Option<i64>)> = sqlx::query_as(&q)
                .bind(tenant)
                .bind(workflow)
                .bind(version)
                .fetch_all(l.pool())
                .await
                .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|(r, t, due, s, at)| (r, t, instant(due), s, at.map(instant)))
                .collect())
        }
        AnyBackend::Mem(_) => Err(Error::storage("migrate needs a SQL store")),
    }
}

/// What moving to `target` does to each armed timer (see the module doc).
async fn timer_changes(
    b: &AnyBackend,
    tenant: &str,
    target: &Workflow,
    from: &str,
    map: &BTreeMap<String, String>,
    mode: TimerMode,
) -> Result<Vec<TimerChange>, Error> {
    use crate::backend::Backend;
    let old = b.versions().version(&target.id, from).ok();
    let armed = armed_timers(b, tenant, &target.id, from).await?;
    if armed.is_empty() {
        return Ok(Vec::new());
    }
    let directory = b.actors().await?;
    let mut out = Vec::new();
    for (record, timer, due, state, armed_at) in armed {
        let old_tm = old
            .as_ref()
            .and_then(|w| w.timer(&timer).map(|i| &w.timers[i]));
        if old.is_some() && old_tm.is_none() {
            continue; // a scheduled spawn (`spawn:...`), not a timer
        }
        if old.is_none() && timer.starts_with("spawn:") {
            continue;
        }
        let new_state = map.get(&state).cloned().unwrap_or(state);
        let sid = target.state(&new_state);
        let new_tm = target.timer(&timer).map(|i| &target.timers[i]);
        let old_text = old_tm.map(|t| t.due_text.clone()).unwrap_or_default();
        let change = |action: TimerAction, reason: String| TimerChange {
            record,
            timer: timer.clone(),
            due,
            action: match mode {
                TimerMode::Keep => TimerAction::Kept,
                TimerMode::Recompute => action,
            },
            reason,
        };
        let Some(tm) = new_tm else {
            out.push(change(
                TimerAction::Cancelled,
                format!("the target version has no timer `{timer}`"),
            ));
            continue;
        };
        let armed_here = sid.is_some_and(|s| tm.armed_in(s) && !target.states[s].is_final);
        if !armed_here {
            out.push(change(
                TimerAction::Cancelled,
                format!("the target version does not arm it in state `{new_state}`"),
            ));
            continue;
        }
        if old_tm.is_some() && old_text == tm.due_text {
            continue; // same definition: same instant
        }
        let Some(r) = b.get(record).await? else {
            continue;
        };
        let rec = leadflow_engine::Record::from_json(
            target,
            &new_state,
            &r.fields,
            r.assignee.clone(),
            r.created_at,
            r.entered_at,
        );
        let Some(rec) = rec else {
            continue;
        };
        let at = armed_at.unwrap_or(r.entered_at);
        let new_due = leadflow_engine::eval::timer_due(target, &rec, &timer, at, &directory)
            .map_err(|e| {
                Error::storage(format!("record {record}, timer `{timer}`: {}", e.message))
            })?;
        if new_due == Some(due) {
            continue;
        }
        out.push(change(
            TimerAction::Recomputed(new_due),
            format!(
                "`{old_text}` -> `{}`, armed {}",
                tm.due_text,
                at.to_rfc3339()
            ),
        ));
    }
    Ok(out)
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
