//! The events migration keeps field rows written before events existed
//! readable: a database migrated to the version before (SQLite 0007,
//! PostgreSQL 0009) with history rows of the old shape reads back, after
//! the store opens and migrates, as one legacy event per record revision
//! with its changes; new transitions add ordinary events after them.

use crate::common;

use common::*;
use leadflow_runtime::backend::{Backend, Change, Event, EventKind};
use serde_json::json;
use std::path::Path;

/// A copy of the migrations of `dialect` older than `below`.
fn older_migrations(dialect: &str, below: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    for e in std::fs::read_dir(&from).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < below {
            std::fs::copy(&p, dir.path().join(&name)).unwrap();
        }
    }
    dir
}

fn counter_hash() -> String {
    set().workflows["counter"].hash.clone()
}

/// The two legacy events of a record created with n = 1 and bumped to 2
/// by a1 (at t0 and one hour later).
fn check_legacy(events: &[Event], id: i64) {
    let legacy = |rev: i64, label: &str, old: serde_json::Value, new: i64| Event {
        record: id,
        revision: rev,
        workflow: "counter".into(),
        at: at(rev - 1),
        kind: EventKind::Legacy,
        actor: "a1".into(),
        transition: Some(label.into()),
        from: None,
        to: None,
        assignee: None,
        input: None,
        changes: vec![Change {
            field: "n".into(),
            old,
            new: json!(new),
        }],
    };
    assert_eq!(
        events[..2],
        [
            legacy(1, "create", json!(null), 1),
            legacy(2, "bump", json!(1), 2)
        ]
    );
}

/// A transition after the migration: an ordinary event after the legacy ones.
async fn fire_after<B: Backend>(b: &B, id: i64) {
    let a = agent("a1");
    b.fire(fire_req(
        id,
        "bump",
        vec![("n".into(), leadflow_engine::Value::Int(3))],
        &a,
        at(5),
    ))
    .await
    .unwrap();
    let events = b.events(id).await.unwrap();
    check_legacy(&events, id);
    let e = &events[2];
    assert_eq!(
        (
            e.kind,
            e.transition.as_deref(),
            e.from.as_deref(),
            e.to.as_deref(),
            e.revision
        ),
        (
            EventKind::Transition,
            Some("bump"),
            Some("open"),
            Some("open"),
            3
        )
    );
    assert_eq!(b.history(id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn sqlite_field_rows_become_legacy_events() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = format!("sqlite://{}", path.display());
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    let old = older_migrations("sqlite", 8);
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let us = |h: i64| at(h).timestamp_micros();
    sqlx::query("INSERT INTO tenants (id, next_record, created_at) VALUES ('acme', 1, 0)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
         VALUES ('acme', 1, 'counter', ?, 'open', 0, '{\"n\": 2}', NULL, 2, ?, ?, ?)",
    )
    .bind(counter_hash())
    .bind(us(0))
    .bind(us(0))
    .bind(us(1))
    .execute(&pool)
    .await
    .unwrap();
    for (rev, label, old, new) in [(1, "create", "null", "1"), (2, "bump", "1", "2")] {
        sqlx::query(
            "INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new)
             VALUES ('acme', 1, ?, 0, ?, 'a1', ?, 'n', ?, ?)",
        )
        .bind(rev)
        .bind(us(rev - 1))
        .bind(label)
        .bind(old)
        .bind(new)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let b = leadflow_runtime::SqliteBackend::open(&url, "acme", set())
        .await
        .unwrap();
    let events = b.events(1).await.unwrap();
    assert_eq!(events.len(), 2);
    check_legacy(&events, 1);
    // Stored as events by the migration (not only read as such).
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE kind = 'legacy' AND transition IS NOT NULL",
    )
    .fetch_one(b.pool())
    .await
    .unwrap();
    assert_eq!(stored, 2);
    fire_after(&b, 1).await;
}

/// As the production set-up migrates: the schema owner, not a superuser,
/// for whom row-level security is forced (the migration reads each
/// tenant's rows inside that tenant's setting). Two tenants.
#[tokio::test]
async fn pg_field_rows_become_legacy_events_for_every_tenant() {
    use sqlx::{Connection, Executor};
    let admin_url = pg_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let owner = unique("lf_ev_owner");
    let app = unique("lf_ev_app");
    let name = unique("lf_ev_mig");
    admin
        .execute("DO $$ BEGIN CREATE ROLE leadflow_app NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
        .await
        .unwrap();
    for sql in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE leadflow_app"),
        format!("CREATE DATABASE {name} OWNER {owner}"),
    ] {
        admin.execute(sql.as_str()).await.unwrap();
    }
    let base = admin_url.rsplit_once('/').unwrap().0.to_string();
    let with_user = |user: &str| {
        format!(
            "{}/{name}",
            base.replacen("postgres@", &format!("{user}@"), 1)
        )
    };
    let owner_url = with_user(&owner);

    let mut c = sqlx::PgConnection::connect(&owner_url).await.unwrap();
    let old = older_migrations("postgres", 10);
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&mut c)
        .await
        .unwrap();
    for (tenant, id) in [("acme", 1_i64), ("beta", 2)] {
        let mut tx = c.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO tenants (id) VALUES ($1)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
             VALUES ($1, $2, 'counter', $3, 'open', false, '{\"n\": 2}', NULL, 2, $4, $4, $5)",
        )
        .bind(tenant)
        .bind(id)
        .bind(counter_hash())
        .bind(at(0))
        .bind(at(1))
        .execute(&mut *tx)
        .await
        .unwrap();
        for (rev, label, old, new) in [(1_i64, "create", json!(null), 1), (2, "bump", json!(1), 2)]
        {
            sqlx::query(
                "INSERT INTO history (tenant_id, record_id, revision, ord, at, actor, transition, field, old, new)
                 VALUES ($1, $2, $3, 0, $4, 'a1', $5, 'n', $6, $7)",
            )
            .bind(tenant)
            .bind(id)
            .bind(rev)
            .bind(at(rev - 1))
            .bind(label)
            .bind(old)
            .bind(json!(new))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    c.execute("SELECT setval('record_ids', 10)").await.unwrap();
    c.close().await.unwrap();

    leadflow_runtime::pg_roles::migrate(&owner_url)
        .await
        .unwrap();
    for (tenant, id) in [("acme", 1_i64), ("beta", 2)] {
        let b = leadflow_runtime::PgBackend::open(&with_user(&app), tenant, set())
            .await
            .unwrap();
        let events = b.events(id).await.unwrap();
        assert_eq!(events.len(), 2, "{tenant}");
        check_legacy(&events, id);
        fire_after(&b, id).await;
        // The other tenant's record is not there.
        let other = if id == 1 { 2 } else { 1 };
        assert!(b.events(other).await.unwrap().is_empty());
        b.pool().close().await;
    }
    let mut su = sqlx::PgConnection::connect(&format!("{base}/{name}"))
        .await
        .unwrap();
    let kinds: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT tenant_id, kind, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2")
            .fetch_all(&mut su)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            ("acme".to_string(), "legacy".to_string(), 2),
            ("acme".into(), "transition".into(), 1),
            ("beta".into(), "legacy".into(), 2),
            ("beta".into(), "transition".into(), 1),
        ]
    );
    su.close().await.unwrap();
    for sql in [
        format!("DROP DATABASE {name} WITH (FORCE)"),
        format!("DROP ROLE {app}"),
        format!("DROP ROLE {owner}"),
    ] {
        admin.execute(sql.as_str()).await.unwrap();
    }
}
