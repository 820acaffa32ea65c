//! The audit of admin actions: one row per request by an admin key that
//! changes something (table `admin_audit`, PostgreSQL and SQLite; the
//! memory store keeps none). Written by the HTTP layer (`http/audit.rs`),
//! read back in id order with a keyset cursor.

use crate::any::AnyBackend;
use crate::backend::Error;
use crate::sql::{db, instant, micros};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increasing per store: the keyset cursor.
    pub id: i64,
    #[serde(serialize_with = "crate::http::schema::ts")]
    pub at: DateTime<Utc>,
    /// The key's name (never the key).
    pub key: String,
    pub method: String,
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The record created or acted on, when there is one.
    pub record: Option<i64>,
}

/// Append an entry for `tenant` (`id` is assigned by the store).
pub async fn append(b: &AnyBackend, tenant: &str, e: &AuditEntry) -> Result<(), Error> {
    match b {
        AnyBackend::Pg(pg) => {
            let mut tx = pg.tx().await?;
            sqlx::query(
                "INSERT INTO admin_audit (tenant_id, at, key_name, method, path, status, record_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant)
            .bind(e.at)
            .bind(&e.key)
            .bind(&e.method)
            .bind(&e.path)
            .bind(i32::from(e.status))
            .bind(e.record)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)
        }
        AnyBackend::Sqlite(l) => {
            sqlx::query(
                "INSERT INTO admin_audit (tenant_id, at, key_name, method, path, status, record_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(tenant)
            .bind(micros(e.at))
            .bind(&e.key)
            .bind(&e.method)
            .bind(&e.path)
            .bind(i32::from(e.status))
            .bind(e.record)
            .execute(l.pool())
            .await
            .map_err(db)?;
            Ok(())
        }
        AnyBackend::Mem(_) => Ok(()),
    }
}

type Row = (i64, i64, String, String, String, i32, Option<i64>);
type PgRow = (i64, DateTime<Utc>, String, String, String, i32, Option<i64>);

/// Up to `limit` entries of `tenant` with an id above `after`, oldest first.
pub async fn page(
    b: &AnyBackend,
    tenant: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, Error> {
    let entry = |(id, at, key, method, path, status, record): PgRow| AuditEntry {
        id,
        at,
        key,
        method,
        path,
        status: u16::try_from(status).unwrap_or_default(),
        record,
    };
    match b {
        AnyBackend::Pg(pg) => {
            let mut tx = pg.tx().await?;
            let rows: Vec<PgRow> = sqlx::query_as(
                "SELECT id, at, key_name, method, path, status, record_id FROM admin_audit
                 WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(tenant)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(rows.into_iter().map(entry).collect())
        }
        AnyBackend::Sqlite(l) => {
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, at, key_name, method, path, status, record_id FROM admin_audit
                 WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
            )
            .bind(tenant)
            .bind(after)
            .bind(limit)
            .fetch_all(l.read_pool())
            .await
            .map_err(db)?;
            Ok(rows
                .into_iter()
                .map(|(id, at, k, m, p, s, r)| entry((id, instant(at), k, m, p, s, r)))
                .collect())
        }
        AnyBackend::Mem(_) => Ok(Vec::new()),
    }
}
