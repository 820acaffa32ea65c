//! leadflow on a Citus cluster (docs/scaling.md). These tests do something
//! only when `LEADFLOW_TEST_PG` is a Citus coordinator (scripts/citus.sh
//! starts one and runs them); on plain PostgreSQL they return at once.

use crate::common::pgtest::{is_citus, psql_at};
use crate::common::*;
use chrono::Duration;
use leadflow_runtime::backend::Backend;
use leadflow_runtime::outbox::OutboxQueue;
use leadflow_runtime::sql::query::{Column, Key, Query, RecordQuery};
use leadflow_runtime::PgBackend;

/// Every table but the migration ledger, as the superuser sees them.
fn tables(url: &str) -> Vec<String> {
    psql_at(
        url,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
           AND relname <> '_sqlx_migrations' ORDER BY 1",
    )
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect()
}

/// `tenants` is a reference table, every other table is hash-distributed
/// on `tenant_id` in one co-location group with `records`; a table added
/// later (as a migration would) is distributed by the next migrate, with
/// its foreign keys and triggers; the app role may log in (Citus connects
/// to the workers as it) and still bypasses nothing.
#[tokio::test]
async fn citus_schema_is_distributed_colocated_and_stays_so() {
    if !is_citus() {
        return;
    }
    let db = PgDb::new().await;
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let dist = |url: &str| -> Vec<String> {
        psql_at(
            url,
            "SELECT logicalrelid::text || ' ' || partmethod::text || ' ' || repmodel::text || ' ' ||
                    (colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'records'::regclass))::text
             FROM pg_dist_partition ORDER BY 1",
        )
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
    };
    let rows = dist(&db.url);
    let all = tables(&db.url);
    assert_eq!(rows.len(), all.len(), "{rows:?} vs {all:?}");
    for r in &rows {
        if r.starts_with("tenants ") {
            assert_eq!(r, "tenants n t false", "tenants is a reference table");
        } else {
            assert!(r.ends_with(" h s true"), "not co-located on tenant_id: {r}");
        }
    }
    let role = psql_at(
        &db.url,
        "SELECT rolcanlogin, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'leadflow_app'",
    )
    .unwrap();
    assert_eq!(role, "t|f");
    // Keys and the triggers (actor loads, search words) came back.
    let keys = psql_at(
        &db.url,
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'links'::regclass",
    )
    .unwrap();
    assert_eq!(keys, "2");
    let triggers = psql_at(
        &db.url,
        "SELECT string_agg(tgname, ' ' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'records'::regclass",
    )
    .unwrap();
    assert_eq!(
        triggers,
        "records_load_delete records_load_insert records_load_update records_search_insert records_search_update"
    );

    // A later migration's table (a key to tenants, a trigger; a key to a
    // distributed table cannot be created before the table is distributed,
    // see docs/scaling.md).
    for sql in [
        "CREATE TABLE later_notes (tenant_id text NOT NULL REFERENCES tenants (id), record_id bigint NOT NULL,
            note text, PRIMARY KEY (tenant_id, record_id))",
        "CREATE FUNCTION later_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'x'); RETURN NEW; END $$",
        "CREATE TRIGGER later_touch BEFORE INSERT ON later_notes FOR EACH ROW EXECUTE FUNCTION later_touch()",
    ] {
        psql_at(&db.url, sql).unwrap();
    }
    leadflow_runtime::pg_roles::migrate(&db.url).await.unwrap();
    let rows = dist(&db.url);
    assert!(
        rows.contains(&"later_notes h s true".to_string()),
        "{rows:?}"
    );
    let r = b
        .create(create_req("task", vec![], &agent("a1"), t0()))
        .await
        .unwrap();
    let note = psql_at(
        &db.url,
        &format!(
            "INSERT INTO later_notes (tenant_id, record_id) VALUES ('acme', {}) RETURNING note",
            r.id
        ),
    )
    .unwrap();
    assert_eq!(note, "x", "the trigger runs on the shard");
    assert!(
        psql_at(
            &db.url,
            "INSERT INTO later_notes (tenant_id, record_id) VALUES ('nobody', -1)"
        )
        .is_err(),
        "the foreign key to tenants holds on the shards"
    );
    // Running it again changes nothing.
    leadflow_runtime::pg_roles::migrate(&db.url).await.unwrap();
    assert_eq!(dist(&db.url), rows);
    b.pool().close().await;
    db.drop_db().await;
}

/// Row-level security on the cluster: the tenant set by each transaction
/// reaches the shards, so a tenant-bound session sees none of another
/// tenant's rows on any table (and its own are there), a session without
/// a tenant sees nothing, and a write into another tenant is refused.
#[tokio::test]
async fn citus_tenant_bound_session_sees_no_other_tenant_on_any_table() {
    if !is_citus() {
        return;
    }
    let db = PgDb::new().await;
    let a = PgBackend::open(&db.url, "tenant_a", set()).await.unwrap();
    let b = PgBackend::open(&db.url, "tenant_b", set()).await.unwrap();
    // Rows in every table the conformance suite writes, for both tenants.
    conformance::run(&a).await;
    conformance::run(&b).await;
    let tables = tables(&db.url);
    let mut tx = a.tx().await.unwrap();
    let mut own = 0;
    for t in &tables {
        let col = if t == "tenants" { "id" } else { "tenant_id" };
        let (mine, theirs): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*) FILTER (WHERE {col} = 'tenant_a'), count(*) FILTER (WHERE {col} <> 'tenant_a') FROM {t}"
        ))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(theirs, 0, "{t}: tenant B's rows seen by tenant A");
        own += mine;
    }
    assert!(own > 100, "tenant A sees its own rows ({own})");
    let w = sqlx::query("INSERT INTO actors (tenant_id, id, data) VALUES ('tenant_b', 'x', '{}')")
        .execute(&mut *tx)
        .await;
    assert!(w.is_err(), "RLS refuses a write into tenant B on the shard");
    drop(tx);
    for t in &tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(a.pool())
            .await
            .unwrap();
        assert_eq!(n, 0, "{t} without a tenant");
    }
    // Both tenants' rows are there for the superuser.
    let n = psql_at(&db.url, "SELECT count(DISTINCT tenant_id) FROM records").unwrap();
    assert_eq!(n, "2");
    a.pool().close().await;
    b.pool().close().await;
    db.drop_db().await;
}

/// `EXPLAIN` of `sql` in a transaction of `b`: the plan's text.
async fn explain(b: &PgBackend, sql: &str, binds: &[&str]) -> String {
    let mut tx = b.tx().await.unwrap();
    // Planned, not run: the multi-shard form must be explainable too.
    sqlx::query("SET LOCAL citus.multi_task_query_log_level = 'off'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut q = sqlx::query_scalar::<_, String>(sql);
    for v in binds {
        q = q.bind(*v);
    }
    let lines: Vec<String> = q.fetch_all(&mut *tx).await.unwrap();
    lines.join("\n")
}

/// Every statement of a transition, a creation, the timer, outbox and
/// report-run claims and the record lists reaches one shard. Checked two
/// ways: `EXPLAIN` shows one task for the claims and the lock; and the
/// conformance suite, timers and lists run with
/// `citus.multi_task_query_log_level = error`, so any statement that would
/// touch more than one shard fails the test.
#[tokio::test]
async fn citus_transitions_claims_and_lists_are_router_queries() {
    if !is_citus() {
        return;
    }
    let db = PgDb::new().await;
    psql_at(
        &db.url,
        &format!(
            "ALTER DATABASE {} SET citus.multi_task_query_log_level = 'error'",
            db.name
        ),
    )
    .unwrap();
    let b = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let other = PgBackend::open(&db.url, "other", set()).await.unwrap();
    conformance::run(&b).await;
    conformance::events(&b).await;
    conformance::loads(&other).await;
    // Timers and messages of records made an hour ago, due now.
    let r = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("due"))],
            &agent("a1"),
            chrono::Utc::now() - Duration::hours(2),
        ))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let items = b
        .claim("w1", now, now, now + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert!(!items.is_empty());
    let (fired, _) = b.fire_batch(&items).await.unwrap();
    assert!(fired > 0);
    b.release("w1").await.unwrap();
    b.run_due(now).await.unwrap();
    let pending = b
        .claim_outbox(now + Duration::days(3), now + Duration::days(3), 5, 10)
        .await
        .unwrap();
    assert!(!pending.is_empty());
    let page = b
        .query(&Query {
            tenant: "acme".into(),
            workflow: Some("lead".into()),
            states: Vec::new(),
            open_only: true,
            filters: Vec::new(),
            search: None,
            visible_to: None,
            sort: Key::Column(Column::parse("updated_at").unwrap()),
            desc: true,
            limit: 50,
            after: None,
        })
        .await
        .unwrap();
    assert!(page.iter().any(|h| h.record.id == r.id));

    let one_task = |plan: &str| plan.contains("Task Count: 1") && !plan.contains("Task Count: 3");
    let lock = explain(
        &b,
        "EXPLAIN SELECT workflow, state, revision FROM records WHERE tenant_id = $1 AND id = 1 FOR UPDATE",
        &["acme"],
    )
    .await;
    assert!(one_task(&lock), "{lock}");
    let claim = explain(
        &b,
        "EXPLAIN UPDATE timers t SET claim_owner = 'w', lease_until = now()
         FROM (SELECT tenant_id, record_id, timer FROM timers
               WHERE tenant_id = $1 AND fired_at IS NULL AND parked_at IS NULL AND due <= now()
               ORDER BY due, seq LIMIT 10 FOR UPDATE SKIP LOCKED) c
         WHERE t.tenant_id = $1 AND t.tenant_id = c.tenant_id AND t.record_id = c.record_id AND t.timer = c.timer
         RETURNING t.record_id",
        &["acme"],
    )
    .await;
    assert!(one_task(&claim), "{claim}");
    let outbox = explain(
        &b,
        "EXPLAIN UPDATE outbox o SET next_attempt = now()
         FROM (SELECT tenant_id, id FROM outbox WHERE tenant_id = $1 AND delivered_at IS NULL AND failed_at IS NULL
               AND next_attempt <= now() ORDER BY next_attempt, id LIMIT 10 FOR UPDATE SKIP LOCKED) c
         WHERE o.tenant_id = $1 AND o.tenant_id = c.tenant_id AND o.id = c.id RETURNING o.id",
        &["acme"],
    )
    .await;
    assert!(one_task(&outbox), "{outbox}");
    let runs = explain(
        &b,
        "EXPLAIN UPDATE report_runs r SET claim_owner = 'w'
         FROM (SELECT tenant_id, id FROM report_runs WHERE tenant_id = $1 AND status <> 'done'
               ORDER BY slot, id LIMIT 10 FOR UPDATE SKIP LOCKED) c
         WHERE r.tenant_id = $1 AND r.tenant_id = c.tenant_id AND r.id = c.id RETURNING r.id",
        &["acme"],
    )
    .await;
    assert!(one_task(&runs), "{runs}");
    // Without the tenant in the outer WHERE the same claim is multi-shard
    // (what the store sent before): the check above can tell.
    let wide = explain(
        &b,
        "EXPLAIN UPDATE outbox o SET next_attempt = now()
         FROM (SELECT tenant_id, id FROM outbox WHERE tenant_id = $1 LIMIT 10 FOR UPDATE SKIP LOCKED) c
         WHERE o.tenant_id = c.tenant_id AND o.id = c.id RETURNING o.id",
        &["acme"],
    )
    .await;
    assert!(!one_task(&wide), "{wide}");
    b.pool().close().await;
    other.pool().close().await;
    db.drop_db().await;
}

/// Two daemons on the coordinator (two stores with their own pools and
/// timer workers, as two processes would have) share one tenant's due
/// timers: each fires exactly once, claims being single-shard
/// `SKIP LOCKED` updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citus_two_daemons_fire_each_timer_exactly_once() {
    use leadflow_engine::Value;
    use leadflow_runtime::clock::SystemClock;
    use leadflow_runtime::worker::{self, WorkerConfig};
    use std::sync::Arc;
    if !is_citus() {
        return;
    }
    const N: i64 = 300;
    let db = PgDb::new().await;
    let d1 = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    let d2 = PgBackend::open(&db.url, "acme", set()).await.unwrap();
    for k in 0..N {
        d1.create(create_req(
            "tick",
            vec![("k".into(), Value::Int(k))],
            &agent("a1"),
            t0(),
        ))
        .await
        .unwrap();
    }
    let count = |sql: &'static str| {
        let b = d1.clone();
        async move {
            let mut tx = b.tx().await.unwrap();
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&mut *tx)
                .await
                .unwrap()
        }
    };
    let cfg = |name: &str| WorkerConfig {
        owner: name.into(),
        batch: 20,
        ..WorkerConfig::default()
    };
    let clock = Arc::new(SystemClock);
    let w1 = worker::spawn(d1.clone(), clock.clone(), cfg("d1"));
    let w2 = worker::spawn(d2.clone(), clock.clone(), cfg("d2"));
    let deadline = chrono::Utc::now() + Duration::seconds(120);
    while count("SELECT count(*) FROM timers WHERE fired_at IS NOT NULL").await < N {
        assert!(chrono::Utc::now() < deadline, "timers not fired in 120 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s1, s2) = (w1.shutdown().await, w2.shutdown().await);
    assert_eq!(s1.fired + s2.fired, N as u64, "{s1:?} {s2:?}");
    assert_eq!(s1.errors + s2.errors, 0);
    assert_eq!(
        count("SELECT count(DISTINCT record_id) FROM outbox").await,
        N
    );
    assert_eq!(count("SELECT count(*) FROM outbox").await, N);
    assert_eq!(
        count("SELECT count(*) FROM records WHERE state = 'done' AND revision = 2").await,
        N
    );
    d1.pool().close().await;
    d2.pool().close().await;
    db.drop_db().await;
}

/// `leadflow db distribute` on a database that grew on one node and then
/// got Citus: its rows move to the shards, the store keeps working on them
/// (RLS included), and a second run has nothing left to do.
#[tokio::test]
async fn citus_db_distribute_moves_an_existing_database() {
    use crate::common::pgtest::{citus_workers, drop_db, url_of, worker_url};
    if !is_citus() {
        return;
    }
    let name = unique("lf_grew");
    // On the coordinator only, without the extension: a plain database.
    psql_at(
        &crate::common::pgtest::admin_url(),
        &format!("CREATE DATABASE {name}"),
    )
    .unwrap();
    let url = url_of(&name);
    let b = PgBackend::open(&url, "acme", set()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = b
            .create(create_req(
                "lead",
                vec![("name".into(), s(&format!("n{i}")))],
                &agent("a1"),
                t0(),
            ))
            .await
            .unwrap();
        ids.push(r.id);
    }
    b.pool().close().await;
    // The cluster arrives.
    for w in citus_workers() {
        psql_at(
            &worker_url(w, "postgres"),
            &format!("CREATE DATABASE {name}"),
        )
        .unwrap();
        psql_at(&worker_url(w, &name), "CREATE EXTENSION citus").unwrap();
    }
    let admin = crate::common::pgtest::admin_url();
    let port = admin
        .rsplit_once(':')
        .and_then(|(_, p)| p.split('/').next())
        .unwrap_or("5432");
    let mut setup =
        format!("CREATE EXTENSION citus; SELECT citus_set_coordinator_host('127.0.0.1', {port});");
    for w in citus_workers() {
        let (h, p) = w.rsplit_once(':').unwrap();
        setup.push_str(&format!(" SELECT citus_add_node('{h}', {p});"));
    }
    psql_at(&url, &setup).unwrap();
    let moved = leadflow_runtime::pg_roles::distribute(&url).await.unwrap();
    assert!(moved.contains(&"records".to_string()), "{moved:?}");
    assert!(leadflow_runtime::pg_roles::distribute(&url)
        .await
        .unwrap()
        .is_empty());
    let b = PgBackend::open(&url, "acme", set()).await.unwrap();
    for id in &ids {
        let r = b.get(*id).await.unwrap().expect("record moved");
        assert_eq!(r.revision, 1);
    }
    let h = b.history(ids[0]).await.unwrap();
    assert!(!h.is_empty());
    b.pool().close().await;
    drop_db(&name);
}
