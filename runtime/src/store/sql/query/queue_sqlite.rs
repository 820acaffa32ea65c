//! [`WorkQueue`] on SQLite: a pull is one `BEGIN IMMEDIATE` transaction on
//! the single writer, so no two pulls interleave.

use super::queue::{arms, claim_sql, held_sql, release_sql, Claim, Pull, WorkQueue};
use super::{Arg, Dialect};
use crate::backend::{Error, RecordId};
use crate::sql::{db, instant, micros};
use crate::sqlite::SqliteBackend;
use chrono::{DateTime, Utc};

impl WorkQueue for SqliteBackend {
    async fn next(&self, p: &Pull) -> Result<Option<Claim>, Error> {
        let tenant = self.tenant();
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        let held: Option<(i64, i64)> = sqlx::query_as(held_sql(Dialect::Sqlite))
            .bind(tenant)
            .bind(&p.workflow)
            .bind(&p.queue)
            .bind(&p.actor)
            .bind(micros(p.now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if let Some((record, until)) = held {
            tx.commit().await.map_err(db)?;
            return Ok(Some(Claim {
                record,
                expires_at: instant(until),
                again: true,
            }));
        }
        for arm in arms(Dialect::Sqlite, tenant, p) {
            let mut q = sqlx::query_as::<_, (i64, i64)>(&arm.text);
            for a in &arm.args {
                q = match a {
                    Arg::Text(v) => q.bind(v.clone()),
                    Arg::Int(i) => q.bind(*i),
                    Arg::Float(f) => q.bind(*f),
                };
            }
            let Some((record, revision)) = q.fetch_optional(&mut *tx).await.map_err(db)? else {
                continue;
            };
            // The one writer read no lease on it: the claim holds.
            let won: Option<(i64,)> = sqlx::query_as(claim_sql(Dialect::Sqlite))
                .bind(tenant)
                .bind(record)
                .bind(&p.workflow)
                .bind(&p.queue)
                .bind(&p.actor)
                .bind(revision)
                .bind(micros(p.lease_until))
                .bind(micros(p.now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(won.map(|(until,)| Claim {
                record,
                expires_at: instant(until),
                again: false,
            }));
        }
        tx.commit().await.map_err(db)?;
        Ok(None)
    }

    async fn give_back(
        &self,
        workflow: &str,
        queue: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordId>, Error> {
        let rows: Vec<(i64, bool)> = sqlx::query_as(release_sql(Dialect::Sqlite))
            .bind(self.tenant())
            .bind(workflow)
            .bind(queue)
            .bind(actor)
            .bind(micros(now))
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        Ok(rows.into_iter().find(|(_, held)| *held).map(|(r, _)| r))
    }
}
