//! The actor directory when the daemon starts: the tenant's config actors
//! merged into the directory stored in the database, which the HTTP API
//! also writes (unavailability periods) and other tools may extend.
//!
//! - A config actor is upserted by id: its profile (role, zones, skills,
//!   capacity, attributes) is the config's; its unavailability is the
//!   config's periods plus the stored periods the config did not define at
//!   the last start (the ones added through the API).
//! - A stored actor the config defined at the last start but no longer does
//!   is removed from the directory (no new assignments; records keep it as
//!   their assignee, history keeps it). A stored actor the config never
//!   defined is kept as it is.
//!
//! What the config defined is remembered per tenant (`tenants.config_actors`,
//! written at every start). Before the first start that remembers it, the
//! stored directory counts as the config's (earlier versions replaced it at
//! every start) with the periods counted as the API's, so nothing set through
//! the API is lost on upgrade.

use crate::any::AnyBackend;
use crate::backend::{Backend, Error};
use crate::sql::{db, json_err};
use leadflow_engine::{Actor, Period};
use sqlx::types::Json;
use std::collections::BTreeMap;

/// Actor id -> its unavailability periods, as the config defined them.
pub type ConfigActors = BTreeMap<String, Vec<Period>>;

/// The directory to store: see the module documentation.
pub fn merge(
    config: Vec<Actor>,
    stored: Vec<Actor>,
    previous: Option<&ConfigActors>,
) -> Vec<Actor> {
    let upgrade: ConfigActors;
    let previous = match previous {
        Some(p) => p,
        None => {
            upgrade = stored.iter().map(|a| (a.id.clone(), Vec::new())).collect();
            &upgrade
        }
    };
    let mut out: Vec<Actor> = Vec::with_capacity(config.len());
    for mut a in config {
        if let Some(s) = stored.iter().find(|s| s.id == a.id) {
            let from_config = previous.get(&a.id);
            for p in &s.unavailable {
                let was_config = from_config.is_some_and(|c| c.contains(p));
                if !was_config && !a.unavailable.contains(p) {
                    a.unavailable.push(p.clone());
                }
            }
        }
        a.unavailable.sort_by_key(|p| (p.from, p.until));
        out.push(a);
    }
    for s in stored {
        if out.iter().any(|a| a.id == s.id) {
            continue;
        }
        if previous.contains_key(&s.id) {
            tracing::info!(actor = %s.id, "actor removed from the config: removed from the directory (its records keep it as assignee)");
        } else {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Merge the config's actors into the stored directory, store the result and
/// remember what the config defined. Returns the directory.
pub async fn sync(b: &AnyBackend, config: Vec<Actor>) -> Result<Vec<Actor>, Error> {
    let previous = remembered(b).await?;
    let stored = b.actors().await?;
    let defined: ConfigActors = config
        .iter()
        .map(|a| (a.id.clone(), a.unavailable.clone()))
        .collect();
    let directory = merge(config, stored, previous.as_ref());
    b.set_actors(directory.clone()).await?;
    remember(b, &defined).await?;
    Ok(directory)
}

async fn remembered(b: &AnyBackend) -> Result<Option<ConfigActors>, Error> {
    match b {
        AnyBackend::Pg(p) => {
            let mut tx = p.tx().await?;
            let v: Option<Option<Json<ConfigActors>>> =
                sqlx::query_scalar("SELECT config_actors FROM tenants WHERE id = $1")
                    .bind(p.tenant())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(v.flatten().map(|j| j.0))
        }
        AnyBackend::Sqlite(s) => {
            let v: Option<Option<String>> =
                sqlx::query_scalar("SELECT config_actors FROM tenants WHERE id = ?")
                    .bind(s.tenant())
                    .fetch_optional(s.pool())
                    .await
                    .map_err(db)?;
            v.flatten()
                .map(|t| serde_json::from_str(&t).map_err(json_err))
                .transpose()
        }
        // Nothing survives a restart in memory.
        AnyBackend::Mem(_) => Ok(None),
    }
}

async fn remember(b: &AnyBackend, defined: &ConfigActors) -> Result<(), Error> {
    match b {
        AnyBackend::Pg(p) => {
            let mut tx = p.tx().await?;
            sqlx::query("UPDATE tenants SET config_actors = $1 WHERE id = $2")
                .bind(Json(defined))
                .bind(p.tenant())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
        }
        AnyBackend::Sqlite(s) => {
            sqlx::query("UPDATE tenants SET config_actors = ? WHERE id = ?")
                .bind(serde_json::to_string(defined).map_err(json_err)?)
                .bind(s.tenant())
                .execute(s.pool())
                .await
                .map_err(db)?;
        }
        AnyBackend::Mem(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn period(day: u32) -> Period {
        Period {
            from: Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap(),
            until: Utc.with_ymd_and_hms(2026, 3, day + 1, 0, 0, 0).unwrap(),
        }
    }

    fn actor(id: &str, role: &str, unavailable: Vec<Period>) -> Actor {
        Actor {
            id: id.into(),
            role: role.into(),
            unavailable,
            ..Actor::default()
        }
    }

    #[test]
    fn config_profiles_win_api_periods_stay_removed_config_actors_go() {
        // Last start: the config had d1 (period 1) and old; the API added
        // period 2 to d1 and period 3 to d2; a tool added ext.
        let previous: ConfigActors = [
            ("d1".to_string(), vec![period(1)]),
            ("d2".to_string(), vec![]),
            ("old".to_string(), vec![]),
        ]
        .into();
        let stored = vec![
            actor("d1", "dealer", vec![period(1), period(2)]),
            actor("d2", "dealer", vec![period(3)]),
            actor("old", "dealer", vec![]),
            actor("ext", "partner", vec![period(4)]),
        ];
        // Now: d1 is an hq with period 5 instead of 1; old is gone.
        let config = vec![
            actor("d1", "hq", vec![period(5)]),
            actor("d2", "dealer", vec![]),
        ];
        let got = merge(config, stored, Some(&previous));
        let ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["d1", "d2", "ext"]);
        assert_eq!(got[0].role, "hq");
        assert_eq!(got[0].unavailable, vec![period(2), period(5)]);
        assert_eq!(got[1].unavailable, vec![period(3)]);
        assert_eq!(got[2].unavailable, vec![period(4)]);
        // Merging again with what this start remembers changes nothing.
        let remembered: ConfigActors = [
            ("d1".to_string(), vec![period(5)]),
            ("d2".to_string(), vec![]),
        ]
        .into();
        let config = vec![
            actor("d1", "hq", vec![period(5)]),
            actor("d2", "dealer", vec![]),
        ];
        assert_eq!(merge(config, got.clone(), Some(&remembered)), got);
    }

    #[test]
    fn on_upgrade_stored_periods_are_kept_and_unconfigured_actors_go() {
        let stored = vec![
            actor("d1", "dealer", vec![period(2)]),
            actor("gone", "dealer", vec![]),
        ];
        let got = merge(vec![actor("d1", "dealer", vec![period(1)])], stored, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].unavailable, vec![period(1), period(2)]);
    }
}
