//! Who the daemon is on PostgreSQL, and the schema it needs (see
//! docs/security.md). The schema belongs to an owner role that runs the
//! migrations (`leadflow db migrate`); the daemon logs in as a member of
//! `leadflow_app`: not superuser, not owner, no BYPASSRLS, so row-level
//! security (forced on every table) holds for every statement it sends.
//!
//! A daemon that logs in as a superuser or as the owner still works (the
//! zero-setup path: it migrates by itself) but is warned that RLS is then no
//! boundary: such a session can `RESET ROLE` and read every tenant.

use crate::backend::Error;
use crate::sql::db;
use sqlx::{Connection, PgConnection};

/// The field-value functions that are not marked LEAKPROOF (a migration
/// run by a role that is not superuser cannot mark them): under row-level
/// security a field condition then cannot use its index. Warn, with what a
/// superuser runs once (docs/security.md).
async fn warn_leaky_values(conn: &mut PgConnection) -> Result<(), Error> {
    let leaky: Vec<String> = sqlx::query_scalar(
        "SELECT proname::text FROM pg_proc WHERE proname IN \
         ('leadflow_text_of', 'leadflow_num_of', 'leadflow_bool_of', 'leadflow_date_of', 'leadflow_ts_of') \
         AND NOT proleakproof ORDER BY proname",
    )
    .fetch_all(conn)
    .await
    .map_err(db)?;
    if !leaky.is_empty() {
        let alter: Vec<String> = leaky
            .iter()
            .map(|f| format!("ALTER FUNCTION {f}(jsonb, text) LEAKPROOF;"))
            .collect();
        tracing::warn!(
            functions = ?leaky,
            "PostgreSQL: the field-value functions are not LEAKPROOF, so under row-level security \
             a condition on an indexed field reads every record of the tenant instead of its index. \
             A superuser runs once: {} (docs/security.md)",
            alter.join(" ")
        );
    }
    Ok(())
}

/// What the login role of a database URL may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    /// Superuser or BYPASSRLS: row-level security does not apply to it.
    pub bypasses_rls: bool,
    /// Owns the schema (or there is none yet, so it would own it).
    pub owns_schema: bool,
    /// The database runs Citus (see `store/citus.rs`): sessions propagate
    /// their `SET LOCAL` to the shards, plans stay custom.
    pub citus: bool,
}

impl Login {
    /// Whether RLS bounds what this login can read (see docs/security.md).
    pub fn is_bounded(&self) -> bool {
        !self.bypasses_rls && !self.owns_schema
    }
}

/// The schema versions this build expects, in order.
pub fn expected_versions() -> Vec<i64> {
    crate::pg::MIGRATOR.iter().map(|m| m.version).collect()
}

async fn login(conn: &mut PgConnection) -> Result<Login, Error> {
    let (user, bypasses_rls): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let owns_schema = match owner {
        // No schema yet: it would own what it creates, if it may.
        None => sqlx::query_scalar("SELECT has_schema_privilege(current_schema(), 'CREATE')")
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?,
        Some(o) => sqlx::query_scalar("SELECT pg_has_role(current_user, $1::name, 'MEMBER')")
            .bind(o)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?,
    };
    let citus = crate::store::citus::is_citus(conn).await?;
    Ok(Login {
        user,
        bypasses_rls,
        owns_schema,
        citus,
    })
}

/// `leadflow db migrate`: apply the migrations as the URL's role (the
/// schema owner), distribute what they added on Citus, and return the
/// versions now applied.
pub async fn migrate(url: &str) -> Result<Vec<i64>, Error> {
    let mut conn = PgConnection::connect(url).await.map_err(db)?;
    run_migrations(&mut conn).await?;
    let v = applied(&mut conn).await?;
    conn.close().await.map_err(db)?;
    Ok(v)
}

/// `leadflow db distribute`: on a Citus coordinator, apply the migrations
/// and distribute every table not distributed yet, moving its rows to the
/// shards. Returns the tables it distributed (none: nothing left to do).
pub async fn distribute(url: &str) -> Result<Vec<String>, Error> {
    let mut conn = PgConnection::connect(url).await.map_err(db)?;
    if !crate::store::citus::is_citus(&mut conn).await? {
        return Err(Error::Storage(crate::error::StoreError::new(
            crate::error::StoreErrorKind::Setup,
            "not a Citus database (no `citus` extension): run `CREATE EXTENSION citus` and add \
             the workers (`citus_add_node`) first (docs/scaling.md)"
                .to_string(),
        )));
    }
    crate::pg::MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| Error::Storage(e.into()))?;
    let done = crate::store::citus::distribute(&mut conn).await?;
    conn.close().await.map_err(db)?;
    Ok(done)
}

/// The migrations, then (on Citus) the distribution of every table they
/// created that is not distributed yet: one step, so no migration needs a
/// Citus variant.
async fn run_migrations(conn: &mut PgConnection) -> Result<(), Error> {
    crate::pg::MIGRATOR
        .run(&mut *conn)
        .await
        .map_err(|e| Error::Storage(e.into()))?;
    let done = crate::store::citus::distribute(conn).await?;
    if !done.is_empty() {
        tracing::info!(tables = ?done, "Citus: distributed on tenant_id");
    }
    Ok(())
}

async fn applied(conn: &mut PgConnection) -> Result<Vec<i64>, Error> {
    let ledger: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    if !ledger {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)
}

/// Before a daemon opens its pool: a role that may migrate (superuser or
/// owner) migrates when `migrate` is set, with a warning that RLS is no
/// boundary for it; any other role checks that the schema has every
/// migration of this build, and refuses with what to run otherwise.
pub async fn prepare(url: &str, migrate: bool) -> Result<Login, Error> {
    let mut conn = PgConnection::connect(url).await.map_err(db)?;
    let who = login(&mut conn).await?;
    if !who.is_bounded() {
        if migrate {
            run_migrations(&mut conn).await?;
        }
        tracing::warn!(
            role = %who.user,
            "PostgreSQL: connected as `{}`, {}: row-level security is not a boundary for this \
             session (it can RESET ROLE and read every tenant). In production run the daemon as a \
             login role in leadflow_app and migrate with `leadflow db migrate` (docs/security.md)",
            who.user,
            if who.bypasses_rls {
                "a superuser or BYPASSRLS role"
            } else {
                "the owner of the schema"
            }
        );
    }
    let have = applied(&mut conn).await?;
    let want = expected_versions();
    let missing: Vec<i64> = want.iter().filter(|v| !have.contains(v)).copied().collect();
    if missing.is_empty() {
        warn_leaky_values(&mut conn).await?;
    }
    conn.close().await.map_err(db)?;
    if !missing.is_empty() {
        return Err(Error::Storage(crate::error::StoreError::new(
            crate::error::StoreErrorKind::Setup,
            format!(
            "the database schema lacks migrations {missing:?} (it has {}, this leadflow needs {}): \
             run `leadflow db migrate --database-url <URL of the schema owner>` (docs/security.md)",
            have.last().map_or("none".to_string(), |v| v.to_string()),
            want.last().copied().unwrap_or_default()
        ),
        )));
    }
    Ok(who)
}
