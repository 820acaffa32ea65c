//! Citus (distributed PostgreSQL, docs/scaling.md): when the database has
//! the `citus` extension, the schema is distributed after the migrations
//! ran, by [`distribute`]: `tenants` (and any table without a `tenant_id`)
//! becomes a reference table, every other table is distributed on
//! `tenant_id` and co-located with `records`, so every statement of a
//! tenant's transaction reaches one shard.
//!
//! It works on whatever is not distributed yet, so a later migration that
//! adds a table needs no Citus step of its own: the next start (or `leadflow
//! db migrate` / `leadflow db distribute`) distributes it. Citus refuses to
//! distribute a table with triggers, and a foreign key to the reference
//! `tenants` turns a table into a coordinator-local one, so the order is:
//! drop the foreign keys and triggers of those tables, distribute, add the
//! keys back, create the triggers again (`citus.enable_unsafe_triggers`:
//! ours only touch rows of the same tenant, hence of the same shard group).
//! All in one transaction: a failure leaves the schema as it was.

use crate::backend::Error;
use crate::sql::db;
use sqlx::{Connection, PgConnection};

/// The table every other one is co-located with.
const ANCHOR: &str = "records";

/// Whether the connected database runs Citus.
pub async fn is_citus(conn: &mut PgConnection) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        .fetch_one(conn)
        .await
        .map_err(db)
}

/// A table to distribute: its name and whether it has a `tenant_id`.
struct Todo {
    name: String,
    tenant_column: bool,
}

/// Distribute every table of the schema that is not distributed yet (none
/// on a database without Citus): returns the tables it distributed. Run as
/// the schema owner (or a superuser), after the migrations. Idempotent.
pub async fn distribute(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    if !is_citus(conn).await? {
        return Ok(Vec::new());
    }
    app_role_login(conn).await?;
    // Not distributed, or a Citus-local table (what a foreign key to a
    // reference table makes of a new table): partmethod 'n', repmodel 's'.
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT c.relname::text,
                EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND c.relname <> '_sqlx_migrations'
           AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p
                           WHERE p.logicalrelid = c.oid AND NOT (p.partmethod = 'n' AND p.repmodel = 's'))
         ORDER BY c.relname",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut todo: Vec<Todo> = rows
        .into_iter()
        .map(|(name, tenant_column)| Todo {
            name,
            tenant_column,
        })
        .collect();
    // Reference tables first, then the anchor, then the rest co-located with it.
    todo.sort_by_key(|t| (t.tenant_column, t.name != ANCHOR));
    let names: Vec<&str> = todo.iter().map(|t| t.name.as_str()).collect();

    let mut tx = conn.begin().await.map_err(db)?;
    // DDL on reference and distributed tables in one transaction: one
    // connection per node, or Citus refuses the later statements.
    sqlx::query("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    // Foreign keys from or to these tables, and their triggers (not the
    // internal ones that implement the keys), with what re-creates them.
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid)
         FROM pg_constraint c
         WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
           AND (c.conrelid::regclass::text = ANY($1) OR c.confrelid::regclass::text = ANY($1))
         ORDER BY 1, 2",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.tgrelid::regclass::text, t.tgname::text, pg_get_triggerdef(t.oid)
         FROM pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgrelid::regclass::text = ANY($1)
         ORDER BY 1, 2",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    for (table, name, _) in &keys {
        exec(
            &mut tx,
            &format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                ident(table),
                ident(name)
            ),
        )
        .await?;
    }
    for (table, name, _) in &triggers {
        exec(
            &mut tx,
            &format!("DROP TRIGGER {} ON {}", ident(name), ident(table)),
        )
        .await?;
    }
    // Our functions (policies, expression indexes, triggers use them) on
    // every node before a shard needs one: made after the extension they
    // are propagated as they are created; made before it (a database that
    // grew on one node, `leadflow db distribute`), they are only here.
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
         WHERE p.pronamespace = current_schema()::regnamespace
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                           WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid)
         ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    if !functions.is_empty() {
        // A SQL function naming a table is checked when it is created; on a
        // worker that table is not there yet (it comes with distribution).
        exec(
            &mut tx,
            "SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL check_function_bodies = off",
        )
        .await?;
    }
    for f in &functions {
        sqlx::query("SELECT create_distributed_function($1::regprocedure)")
            .bind(f)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    for t in &todo {
        // Without its foreign keys a Citus-local table is a plain one
        // again, unless it was made one explicitly: undo that too.
        let local: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass)",
        )
        .bind(&t.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        if local {
            sqlx::query("SELECT undistribute_table($1::regclass)")
                .bind(&t.name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let q = if !t.tenant_column {
            sqlx::query("SELECT create_reference_table($1::regclass)").bind(&t.name)
        } else if t.name == ANCHOR {
            sqlx::query("SELECT create_distributed_table($1::regclass, 'tenant_id')").bind(&t.name)
        } else {
            sqlx::query(
                "SELECT create_distributed_table($1::regclass, 'tenant_id', colocate_with => $2)",
            )
            .bind(&t.name)
            .bind(ANCHOR)
        };
        q.execute(&mut *tx).await.map_err(db)?;
    }
    for (table, name, def) in &keys {
        exec(
            &mut tx,
            &format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {def}",
                ident(table),
                ident(name)
            ),
        )
        .await?;
    }
    if !triggers.is_empty() {
        exec(&mut tx, "SET LOCAL citus.enable_unsafe_triggers = on").await?;
    }
    for (_, _, def) in &triggers {
        exec(&mut tx, def).await?;
    }
    // Rows of a database that grew before it got Citus were copied to the
    // shards; the coordinator's local copy is dead weight.
    for t in &todo {
        sqlx::query("SELECT truncate_local_data_after_distributing_table($1::regclass)")
            .bind(&t.name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(todo.into_iter().map(|t| t.name).collect())
}

/// Citus reaches the shards on the workers with new connections as the
/// session's current role, which for the daemon is `leadflow_app` (`SET
/// ROLE` after login): so on Citus that role may log in. It has no password
/// and stays without BYPASSRLS; the cluster's authentication between nodes
/// (docs/scaling.md) decides who can use it.
async fn app_role_login(conn: &mut PgConnection) -> Result<(), Error> {
    let can: Option<bool> =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'leadflow_app'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    if can == Some(false) {
        exec(conn, "ALTER ROLE leadflow_app LOGIN").await?;
    }
    Ok(())
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), Error> {
    sqlx::raw_sql(sql).execute(conn).await.map_err(db)?;
    Ok(())
}

/// A quoted identifier (our names come from the catalog: `regclass::text`
/// is already quoted when it needs to be, a constraint name is not).
fn ident(name: &str) -> String {
    if name.starts_with('"') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
