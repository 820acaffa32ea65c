//! `RecordQuery` (issue 17) on a fresh PostgreSQL database and a fresh
//! SQLite file: every filter operator on every type, missing values, typed
//! sort with keyset pages across concurrent inserts, counts, the field
//! indexes following the published versions, and (PostgreSQL) the plan on
//! 100,000 rows reading the field index, never the whole table.

use crate::common::*;
use leadflow_engine::{load, Actor, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::sql::query::{
    self, Column, Cond, Dialect, Filter, Key, Kind, Lit, Op, Query, RecordQuery,
};
use leadflow_runtime::AnyBackend;
use std::sync::Arc;

const QW: &str = r#"
[workflow]
id = "qw"
initial = "new"
[fields.name]
type = "string"
indexed = true
[fields.phone]
type = "string"
indexed = true
[fields.n]
type = "int"
indexed = true
[fields.amount]
type = "decimal"
[fields.ok]
type = "bool"
[fields.day]
type = "date"
indexed = true
[fields.at]
type = "datetime"
indexed = true
[fields.tags]
type = "list"

[states.new]
[states.open]
[states.done]
final = true

[transitions.start]
from = ["new"]
to = "open"
by = ["agent"]
[transitions.finish]
from = ["open"]
to = "done"
by = ["agent"]
"#;

fn qw_set(src: &str) -> Arc<WorkflowSet> {
    let loaded = load(&Project {
        workflows: vec![SourceFile::new("workflows/qw.toml", src)],
        ..Project::default()
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

fn field(name: &str, kind: Kind) -> Key {
    Key::Field {
        name: name.into(),
        kind,
    }
}

fn cond(key: Key, op: Op) -> Filter {
    Filter::Cond(Cond { key, op })
}

fn q(tenant: &str, filters: Vec<Filter>, sort: Key, desc: bool) -> Query {
    Query {
        tenant: tenant.into(),
        workflow: Some("qw".into()),
        states: Vec::new(),
        open_only: false,
        filters,
        search: None,
        visible_to: None,
        sort,
        desc,
        limit: 500,
        after: None,
    }
}

async fn ids(b: &AnyBackend, q: &Query) -> Vec<i64> {
    b.query(q)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.record.id)
        .collect()
}

async fn create(b: &AnyBackend, a: &Actor, fields: Vec<(&str, Value)>) -> i64 {
    let input = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    b.create(create_req("qw", input, a, t0())).await.unwrap().id
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse().unwrap())
}

fn date(s: &str) -> Value {
    Value::Date(s.parse().unwrap())
}

fn instant(s: &str) -> Value {
    Value::DateTime(s.parse().unwrap())
}

/// The rows, by name: (name, phone, n, amount, ok, day, at, tags).
async fn seed(b: &AnyBackend) -> Vec<(&'static str, i64)> {
    let a = agent("a1");
    let rows: Vec<(&str, Vec<(&str, Value)>)> = vec![
        (
            "Bianchi",
            vec![
                ("phone", s("+39347111")),
                ("n", Value::Int(9)),
                ("amount", dec("9.5")),
                ("ok", Value::Bool(true)),
                ("day", date("2026-01-31")),
                ("at", instant("2026-12-01T10:00:00Z")),
                ("tags", Value::List(vec![s("x")])),
            ],
        ),
        (
            "bianco",
            vec![
                ("phone", s("+39348222")),
                ("n", Value::Int(10)),
                ("amount", dec("10")),
                ("ok", Value::Bool(false)),
                ("day", date("2026-02-01")),
                ("at", instant("2026-12-01T10:00:00.5Z")),
            ],
        ),
        (
            "Rossi",
            vec![
                ("phone", s("+39347333")),
                ("n", Value::Int(-2)),
                ("amount", dec("100.25")),
                ("day", date("2025-12-31")),
                ("at", instant("2026-11-30T23:59:59Z")),
            ],
        ),
        ("Verdi", vec![("phone", s("")), ("n", Value::Int(100))]),
        ("Neri_%", vec![]),
    ];
    let mut out = Vec::new();
    for (name, mut fields) in rows {
        fields.push(("name", s(name)));
        out.push((name, create(b, &a, fields).await));
    }
    // One without a name at all.
    out.push(("", create(b, &a, vec![("n", Value::Int(3))]).await));
    out
}

fn id_of(rows: &[(&str, i64)], name: &str) -> i64 {
    rows.iter().find(|r| r.0 == name).unwrap().1
}

async fn operators_on_every_type(b: &AnyBackend, tenant: &str) {
    let rows = seed(b).await;
    let id = |n: &str| id_of(&rows, n);
    let sorted = |mut v: Vec<i64>| {
        v.sort();
        v
    };
    let by_id = Key::Column(Column::Id);
    let check = |filters: Vec<Filter>, want: Vec<i64>, what: &'static str| {
        let query = q(tenant, filters, by_id.clone(), false);
        async move {
            assert_eq!(ids(b, &query).await, sorted(want), "{what}");
        }
    };
    let name = field("name", Kind::Text);
    let n = field("n", Kind::Num);
    let amount = field("amount", Kind::Num);
    let text = |v: &str| Lit::Text(v.into());
    let num = |v: &str| Lit::parse(Kind::Num, v).unwrap();
    // Strings: equality is exact (case too), in, ne (missing is not equal),
    // prefix and case-insensitive contains with LIKE's wildcards literal.
    check(
        vec![cond(name.clone(), Op::In(vec![text("Rossi")]))],
        vec![id("Rossi")],
        "eq",
    )
    .await;
    check(
        vec![cond(name.clone(), Op::In(vec![text("rossi")]))],
        vec![],
        "eq is exact",
    )
    .await;
    check(
        vec![cond(
            name.clone(),
            Op::In(vec![text("Rossi"), text("Verdi")]),
        )],
        vec![id("Rossi"), id("Verdi")],
        "in",
    )
    .await;
    check(
        vec![cond(name.clone(), Op::Ne(text("Rossi")))],
        vec![
            id("Bianchi"),
            id("bianco"),
            id("Verdi"),
            id("Neri_%"),
            id(""),
        ],
        "ne, missing included",
    )
    .await;
    check(
        vec![cond(
            field("phone", Kind::Text),
            Op::Prefix("+39347".into()),
        )],
        vec![id("Bianchi"), id("Rossi")],
        "prefix",
    )
    .await;
    check(
        vec![cond(name.clone(), Op::Contains("BIAN".into()))],
        vec![id("Bianchi"), id("bianco")],
        "contains ignores case",
    )
    .await;
    check(
        vec![cond(name.clone(), Op::Contains("_%".into()))],
        vec![id("Neri_%")],
        "contains: wildcards are literal",
    )
    .await;
    check(
        vec![cond(name.clone(), Op::Contains("i_".into()))],
        vec![id("Neri_%")],
        "contains: _ is literal",
    )
    .await;
    // Empty: missing, or "" for strings, or [] for lists.
    check(
        vec![cond(field("phone", Kind::Text), Op::Empty)],
        vec![id("Verdi"), id("Neri_%"), id("")],
        "empty string",
    )
    .await;
    check(
        vec![cond(field("tags", Kind::List), Op::NotEmpty)],
        vec![id("Bianchi")],
        "list not empty",
    )
    .await;
    // Numbers compare as numbers (10 > 9, not "10" < "9"), decimals too.
    check(
        vec![cond(n.clone(), Op::Gt(num("9")))],
        vec![id("bianco"), id("Verdi")],
        "int gt",
    )
    .await;
    check(
        vec![cond(n.clone(), Op::Lte(num("3")))],
        vec![id("Rossi"), id("")],
        "int lte, negative",
    )
    .await;
    check(
        vec![cond(n.clone(), Op::In(vec![num("10.0")]))],
        vec![id("bianco")],
        "int eq as a number",
    )
    .await;
    check(
        vec![cond(amount.clone(), Op::Gte(num("9.75")))],
        vec![id("bianco"), id("Rossi")],
        "decimal gte",
    )
    .await;
    check(
        vec![cond(amount.clone(), Op::In(vec![num("10.00")]))],
        vec![id("bianco")],
        "decimal eq",
    )
    .await;
    check(
        vec![cond(amount, Op::Empty)],
        vec![id("Verdi"), id("Neri_%"), id("")],
        "decimal empty",
    )
    .await;
    // Booleans, dates, instants.
    check(
        vec![cond(
            field("ok", Kind::Bool),
            Op::In(vec![Lit::Bool(false)]),
        )],
        vec![id("bianco")],
        "bool",
    )
    .await;
    let day = field("day", Kind::Date);
    check(
        vec![cond(
            day.clone(),
            Op::Lt(Lit::parse(Kind::Date, "2026-02-01").unwrap()),
        )],
        vec![id("Bianchi"), id("Rossi")],
        "date lt",
    )
    .await;
    let at = field("at", Kind::DateTime);
    let when = |v: &str| Lit::parse(Kind::DateTime, v).unwrap();
    check(
        vec![cond(at.clone(), Op::Lt(when("2026-12-01")))],
        vec![id("Rossi")],
        "datetime lt a date",
    )
    .await;
    check(
        vec![cond(at.clone(), Op::Gt(when("2026-12-01T10:00:00Z")))],
        vec![id("bianco")],
        "datetime: a fraction of a second later",
    )
    .await;
    check(
        vec![cond(
            at.clone(),
            Op::In(vec![when("2026-12-01T11:00:00+01:00")]),
        )],
        vec![id("Bianchi")],
        "datetime eq, another offset",
    )
    .await;
    // Columns: assignee, created_at, state; Any (views' ||).
    check(
        vec![cond(Key::Column(Column::Assignee), Op::Empty)],
        rows.iter().map(|r| r.1).collect(),
        "unassigned",
    )
    .await;
    check(
        vec![cond(
            Key::Column(Column::Created),
            Op::Gte(when("2024-01-01T09:00:00Z")),
        )],
        rows.iter().map(|r| r.1).collect(),
        "created_at",
    )
    .await;
    check(
        vec![Filter::Any(vec![
            cond(n.clone(), Op::Lt(num("0"))),
            cond(name.clone(), Op::Prefix("Ver".into())),
        ])],
        vec![id("Rossi"), id("Verdi")],
        "any",
    )
    .await;
    let mut open = q(tenant, vec![], by_id.clone(), false);
    open.states = vec!["new".into()];
    open.open_only = true;
    assert_eq!(ids(b, &open).await.len(), rows.len(), "open records");
    // Counts.
    let all = q(tenant, vec![], by_id.clone(), false);
    let c = b.count(&all, 1000).await.unwrap();
    assert_eq!((c.value, c.estimated), (rows.len() as i64, false));
    if let AnyBackend::Sqlite(_) = b {
        // No planner estimate on SQLite: it counts up to the bound and says so.
        let c = b.count(&all, 2).await.unwrap();
        assert_eq!((c.value, c.estimated), (2, true));
    }

    // Typed sort: numbers as numbers, missing first ascending, last
    // descending, ties by id.
    let walk = |sort: Key, desc: bool, limit: usize| {
        let sort = sort.clone();
        async move {
            let mut out = Vec::new();
            let mut query = q(tenant, vec![], sort, desc);
            query.limit = limit;
            loop {
                let mut page = b.query(&query).await.unwrap();
                let more = page.len() > limit;
                page.truncate(limit);
                query.after = page.last().map(|h| h.cursor.clone());
                out.extend(page.into_iter().map(|h| h.record.id));
                if !more {
                    return out;
                }
            }
        }
    };
    let by_n = walk(n.clone(), false, 2).await;
    assert_eq!(
        by_n,
        [
            id("Neri_%"),
            id("Rossi"),
            id(""),
            id("Bianchi"),
            id("bianco"),
            id("Verdi")
        ]
    );
    let by_n_desc = walk(n.clone(), true, 4).await;
    assert_eq!(
        by_n_desc,
        [
            id("Verdi"),
            id("bianco"),
            id("Bianchi"),
            id(""),
            id("Rossi"),
            id("Neri_%")
        ]
    );
    // Strings by code point (upper case first), on both stores.
    let by_name = walk(name.clone(), false, 1).await;
    assert_eq!(
        by_name,
        [
            id(""),
            id("Bianchi"),
            id("Neri_%"),
            id("Rossi"),
            id("Verdi"),
            id("bianco")
        ]
    );
    let by_at = walk(at.clone(), true, 1).await;
    assert_eq!(
        by_at,
        [
            id("bianco"),
            id("Bianchi"),
            id("Rossi"),
            id(""),
            id("Neri_%"),
            id("Verdi")
        ],
        "missing last, ties by id descending"
    );
    let by_day = walk(day, false, 5).await;
    assert_eq!(&by_day[3..], [id("Rossi"), id("Bianchi"), id("bianco")]);
}

/// Pages of 7 by `n` while other tasks insert records before and after
/// the cursor: every record that existed at the start is seen exactly
/// once, in order.
async fn keyset_is_stable_under_concurrent_inserts(b: Arc<AnyBackend>, tenant: &str) {
    let a = agent("a1");
    let mut before = Vec::new();
    for i in 0..60 {
        let fields = match i % 5 {
            0 => vec![],
            _ => vec![("n", Value::Int(i % 13))],
        };
        before.push(create(&b, &a, fields).await);
    }
    let writer = {
        let b = b.clone();
        tokio::spawn(async move {
            let a = agent("a2");
            for i in 0..80 {
                let fields = match i % 4 {
                    0 => vec![],
                    _ => vec![("n", Value::Int(i % 17 - 3))],
                };
                create(&b, &a, fields).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut query = q(tenant, vec![], field("n", Kind::Num), false);
    query.limit = 7;
    let mut seen: Vec<(Option<i64>, i64)> = Vec::new();
    loop {
        let mut page = b.query(&query).await.unwrap();
        let more = page.len() > 7;
        page.truncate(7);
        query.after = page.last().map(|h| h.cursor.clone());
        seen.extend(page.into_iter().map(|h| {
            (
                h.record.fields.get("n").and_then(|v| v.as_i64()),
                h.record.id,
            )
        }));
        tokio::task::yield_now().await;
        if !more {
            break;
        }
    }
    writer.await.unwrap();
    let mut ids: Vec<i64> = seen.iter().map(|s| s.1).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no record twice");
    for id in &before {
        assert!(ids.contains(id), "record {id} of the start was skipped");
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    assert_eq!(seen, sorted, "pages in (n, id) order, missing first");
}

async fn index_names(b: &AnyBackend, url: &str) -> Vec<String> {
    match b {
        AnyBackend::Pg(_) => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE tablename = 'records'")
                .fetch_all(&mut c)
                .await
                .unwrap()
        }
        AnyBackend::Sqlite(lite) => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'",
        )
        .fetch_all(lite.read_pool())
        .await
        .unwrap(),
        AnyBackend::Mem(_) => Vec::new(),
    }
}

async fn indexes_follow_the_published_versions(b: &AnyBackend, url: &str) {
    let wanted = query::wanted_indexes(b.versions().all_current().iter().map(|w| &**w));
    assert_eq!(wanted.len(), 5, "{wanted:?}");
    let names = index_names(b, url).await;
    for w in &wanted {
        assert!(
            names.contains(&w.name),
            "{} after publish: {names:?}",
            w.name
        );
    }
    // A version without `indexed` on `phone`: its index goes, the others stay.
    let phone = query::IndexSpec::new("phone", Kind::Text);
    let set = qw_set(&QW.replacen(
        "type = \"string\"\nindexed = true\n[fields.n]",
        "type = \"string\"\n[fields.n]",
        1,
    ));
    b.set_workflows(&set).await.unwrap();
    let names = index_names(b, url).await;
    assert!(
        !names.contains(&phone.name),
        "unwanted index dropped: {names:?}"
    );
    assert!(names.contains(&query::IndexSpec::new("n", Kind::Num).name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_record_queries() {
    let db = PgDb::new().await;
    let set = qw_set(QW);
    let b = Arc::new(
        leadflow_runtime::open(&db.url, "acme", set.clone())
            .await
            .unwrap(),
    );
    b.set_workflows(&set).await.unwrap();
    operators_on_every_type(&b, "acme").await;
    let AnyBackend::Pg(pg) = &*b else { panic!() };
    let pool = pg.pool().clone();
    indexes_follow_the_published_versions(&b, &db.url).await;
    // Another tenant's records are never seen.
    let other = leadflow_runtime::open(&db.url, "other", set.clone())
        .await
        .unwrap();
    assert!(
        ids(&other, &q("other", vec![], Key::Column(Column::Id), false))
            .await
            .is_empty()
    );
    drop(other);
    pool.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_keyset_under_concurrent_inserts() {
    let db = PgDb::new().await;
    let set = qw_set(QW);
    let b = Arc::new(
        leadflow_runtime::open(&db.url, "acme", set.clone())
            .await
            .unwrap(),
    );
    keyset_is_stable_under_concurrent_inserts(b.clone(), "acme").await;
    if let AnyBackend::Pg(pg) = &*b {
        pg.pool().close().await;
    }
    db.drop_db().await;
}

fn sqlite_url(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join(format!("{name}.db")).display());
    (dir, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_record_queries() {
    let (_dir, url) = sqlite_url("q");
    let set = qw_set(QW);
    let b = Arc::new(
        leadflow_runtime::open(&url, "acme", set.clone())
            .await
            .unwrap(),
    );
    b.set_workflows(&set).await.unwrap();
    operators_on_every_type(&b, "acme").await;
    indexes_follow_the_published_versions(&b, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keyset_under_concurrent_inserts() {
    let (_dir, url) = sqlite_url("k");
    let b = Arc::new(
        leadflow_runtime::open(&url, "acme", qw_set(QW))
            .await
            .unwrap(),
    );
    keyset_is_stable_under_concurrent_inserts(b, "acme").await;
}

/// 100,000 records loaded with `generate_series`: the zone list (field
/// filter, open states, sort by a field), a phone prefix lookup and a
/// keyset page deep in the walk read the field indexes (no sequential scan
/// of records).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_plans_read_the_field_indexes_on_100k_rows() {
    let db = PgDb::new().await;
    let set = qw_set(QW);
    let b = leadflow_runtime::open(&db.url, "acme", set.clone())
        .await
        .unwrap();
    b.set_workflows(&set).await.unwrap();
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let hash = &set.get("qw").unwrap().hash;
    sqlx::query(
        "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
         SELECT 'acme', 1000 + g, 'qw', $1, (ARRAY['new','open','done'])[1 + g % 3], g % 3 = 2,
                jsonb_build_object('name', 'N' || (g % 997), 'phone', '+39' || (3000000000 + g * 7919 % 999999999)::text,
                                   'n', g % 1000, 'at', to_char((timestamptz '2026-01-01' + g * interval '1 minute') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')),
                CASE WHEN g % 4 = 0 THEN NULL ELSE 'op' || (g % 50) END, 1, now(), now(), now()
         FROM generate_series(1, 100000) AS g",
    )
    .bind(hash)
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query("ANALYZE records")
        .execute(&mut c)
        .await
        .unwrap();
    let plan = |query: Query| {
        let s = query::select(Dialect::Pg, &query);
        let text = format!("EXPLAIN (FORMAT JSON) {}", s.text);
        let url = db.url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut qq = sqlx::query_scalar::<_, sqlx::types::Json<serde_json::Value>>(&text);
            for a in &s.args {
                qq = match a {
                    query::Arg::Text(v) => qq.bind(v.clone()),
                    query::Arg::Int(i) => qq.bind(*i),
                    query::Arg::Float(f) => qq.bind(*f),
                };
            }
            qq.fetch_one(&mut c).await.unwrap().0.to_string()
        }
    };
    let name_idx = query::IndexSpec::new("name", Kind::Text).name;
    // A list filtered by open states and sorted by an indexed field.
    let mut zone = q("acme", vec![], field("name", Kind::Text), false);
    zone.states = vec!["new".into(), "open".into()];
    zone.open_only = true;
    zone.limit = 50;
    let p = plan(zone.clone()).await;
    assert!(p.contains(&name_idx), "sorted by the name index: {p}");
    assert!(!p.contains("Seq Scan"), "{p}");
    // Deep in the walk: the cursor is an index condition.
    let rows = b.query(&zone).await.unwrap();
    let mut deep = zone.clone();
    deep.after = rows.last().map(|h| query::Cursor {
        key: serde_json::json!("N900"),
        ..h.cursor.clone()
    });
    let p = plan(deep).await;
    assert!(p.contains(&name_idx) && !p.contains("Seq Scan"), "{p}");
    // A phone lookup by prefix.
    let phone = q(
        "acme",
        vec![cond(
            field("phone", Kind::Text),
            Op::Prefix("+393000079".into()),
        )],
        Key::Column(Column::Id),
        false,
    );
    let p = plan(phone.clone()).await;
    assert!(
        p.contains(&query::IndexSpec::new("phone", Kind::Text).name),
        "{p}"
    );
    assert!(!p.contains("Seq Scan"), "{p}");
    assert!(!b.query(&phone).await.unwrap().is_empty());
    // A range on an indexed datetime.
    let at = q(
        "acme",
        vec![cond(
            field("at", Kind::DateTime),
            Op::Lt(Lit::parse(Kind::DateTime, "2026-01-01T02:00:00Z").unwrap()),
        )],
        field("at", Kind::DateTime),
        false,
    );
    let p = plan(at.clone()).await;
    assert!(!p.contains("Seq Scan"), "{p}");
    assert_eq!(b.query(&at).await.unwrap().len(), 119);
    // An operator's own open records.
    let mut own = q(
        "acme",
        vec![cond(
            Key::Column(Column::Assignee),
            Op::In(vec![Lit::Text("op7".into())]),
        )],
        Key::Column(Column::Id),
        false,
    );
    own.states = vec!["new".into(), "open".into()];
    own.open_only = true;
    let p = plan(own).await;
    assert!(p.contains("records_open_assignee"), "{p}");
    // A count over the bound is the planner's estimate, flagged.
    let c = b
        .count(&q("acme", vec![], Key::Column(Column::Id), false), 1000)
        .await
        .unwrap();
    assert!(c.estimated && c.value > 50_000, "{c:?}");
    let c = b
        .count(
            &q(
                "acme",
                vec![cond(
                    field("n", Kind::Num),
                    Op::In(vec![Lit::parse(Kind::Num, "7").unwrap()]),
                )],
                Key::Column(Column::Id),
                false,
            ),
            1000,
        )
        .await
        .unwrap();
    assert_eq!((c.value, c.estimated), (100, false));
    drop(b);
    db.drop_db().await;
}
