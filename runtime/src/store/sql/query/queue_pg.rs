//! [`WorkQueue`] on PostgreSQL: a pull is one tenant transaction; the
//! candidate is locked `FOR UPDATE SKIP LOCKED`, so concurrent pullers
//! never wait for nor get each other's record.

use super::queue::{arms, claim_sql, held_sql, release_sql, Claim, Pull, WorkQueue, RETRIES};
use super::{Arg, Dialect};
use crate::backend::{Error, RecordId};
use crate::pg::PgBackend;
use crate::sql::db;
use chrono::{DateTime, Utc};

impl WorkQueue for PgBackend {
    async fn next(&self, p: &Pull) -> Result<Option<Claim>, Error> {
        let tenant = self.tenant();
        let arms = arms(Dialect::Pg, tenant, p);
        for _ in 0..RETRIES {
            let mut tx = self.generic_tx().await?;
            let held: Option<(i64, DateTime<Utc>)> = sqlx::query_as(held_sql(Dialect::Pg))
                .bind(tenant)
                .bind(&p.workflow)
                .bind(&p.queue)
                .bind(&p.actor)
                .bind(p.now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some((record, expires_at)) = held {
                tx.commit().await.map_err(db)?;
                return Ok(Some(Claim {
                    record,
                    expires_at,
                    again: true,
                }));
            }
            let mut lost = false;
            for arm in &arms {
                let mut q = sqlx::query_as::<_, (i64, i64)>(&arm.text);
                for a in &arm.args {
                    q = match a {
                        Arg::Text(v) => q.bind(v),
                        Arg::Int(i) => q.bind(i),
                        Arg::Float(f) => q.bind(f),
                    };
                }
                let Some((record, revision)) = q.fetch_optional(&mut *tx).await.map_err(db)? else {
                    continue;
                };
                let won: Option<(DateTime<Utc>,)> = sqlx::query_as(claim_sql(Dialect::Pg))
                    .bind(tenant)
                    .bind(record)
                    .bind(&p.workflow)
                    .bind(&p.queue)
                    .bind(&p.actor)
                    .bind(revision)
                    .bind(p.lease_until)
                    .bind(p.now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                match won {
                    Some((expires_at,)) => {
                        tx.commit().await.map_err(db)?;
                        return Ok(Some(Claim {
                            record,
                            expires_at,
                            again: false,
                        }));
                    }
                    // Leased by a puller whose commit this statement's
                    // snapshot did not see: start again.
                    None => {
                        lost = true;
                        break;
                    }
                }
            }
            tx.rollback().await.map_err(db)?;
            if !lost {
                return Ok(None);
            }
        }
        Ok(None)
    }

    async fn give_back(
        &self,
        workflow: &str,
        queue: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RecordId>, Error> {
        let mut tx = self.tx().await?;
        let rows: Vec<(i64, bool)> = sqlx::query_as(release_sql(Dialect::Pg))
            .bind(self.tenant())
            .bind(workflow)
            .bind(queue)
            .bind(actor)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().find(|(_, held)| *held).map(|(r, _)| r))
    }
}
