//! Full-text search (`q=`, issue 17) through `RecordQuery` on a fresh
//! PostgreSQL database and a fresh SQLite file: every word a prefix, case
//! and accents aside, the digits of a phone as one word, fields with
//! `search = false` never read, `pii` fields only when asked for (admin
//! keys), combined with a filter, a sort, keyset pages and a count; records
//! changed after a publish found by their new words, a publish that changes
//! the searched fields leaving the records out of searches until the
//! background backfill recomputed their words; and (PostgreSQL) the plan on
//! 100,000 rows reading the GIN index, never the whole table.

use crate::common::*;
use leadflow_engine::{load, Project, SourceFile, Value, WorkflowSet};
use leadflow_runtime::backend::Backend;
use leadflow_runtime::sql::query::{
    self, Column, Cond, Dialect, Filter, Key, Kind, Lit, Op, Query, RecordQuery, Search,
};
use leadflow_runtime::AnyBackend;
use std::sync::Arc;

const SW: &str = r#"
[workflow]
id = "sw"
initial = "new"
[fields.name]
type = "string"
[fields.phone]
type = "string"
pii = true
reveal_in = ["new"]
[fields.city]
type = "string"
[fields.notes]
type = "text"
search = false
[fields.n]
type = "int"
indexed = true

[states.new]
[states.done]
final = true

[transitions.rename]
from = ["new"]
by = ["agent"]
input = ["name"]
[transitions.finish]
from = ["new"]
to = "done"
by = ["agent"]
"#;

fn sw_set(src: &str) -> Arc<WorkflowSet> {
    let loaded = load(&Project {
        workflows: vec![SourceFile::new("workflows/sw.toml", src)],
        ..Project::default()
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    Arc::new(loaded.set)
}

/// A query of workflow `sw` for `text` (`pii`: as an admin key).
fn q(text: &str, pii: bool) -> Query {
    Query {
        tenant: "acme".into(),
        workflow: Some("sw".into()),
        states: Vec::new(),
        open_only: false,
        filters: Vec::new(),
        search: Search::parse(text, pii).unwrap(),
        visible_to: None,
        sort: Key::Column(Column::Id),
        desc: false,
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

async fn create(b: &AnyBackend, fields: Vec<(&str, Value)>) -> i64 {
    let input = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    b.create(create_req("sw", input, &agent("a1"), t0()))
        .await
        .unwrap()
        .id
}

async fn search_finds_words(b: &AnyBackend) {
    let rossi = create(
        b,
        vec![
            ("name", s("Rossi Mario")),
            ("phone", s("+39 06 1234567")),
            ("city", s("Città di Castello")),
        ],
    )
    .await;
    let popescu = create(
        b,
        vec![
            ("name", s("Ștefan Popescu-Ionescu")),
            ("city", s("Brașov")),
            ("notes", s("called Rossi's office")),
        ],
    )
    .await;
    let marta = create(b, vec![("name", s("ROSSINI Marta")), ("city", s("Roma"))]).await;
    let bianchi = create(
        b,
        vec![
            ("name", s("Bianchi Luca")),
            ("notes", s("rossi mario")),
            ("n", Value::Int(3)),
        ],
    )
    .await;

    // Every word a prefix of a word; all words needed.
    assert_eq!(ids(b, &q("ross mar", false)).await, [rossi, marta]);
    assert_eq!(ids(b, &q("rossi mario", false)).await, [rossi]);
    assert_eq!(ids(b, &q("mario ross", false)).await, [rossi], "any order");
    assert!(ids(b, &q("rossi luca", false)).await.is_empty());
    // Case and accents, either side.
    assert_eq!(ids(b, &q("CITTA", false)).await, [rossi]);
    assert_eq!(ids(b, &q("città castello", false)).await, [rossi]);
    assert_eq!(ids(b, &q("stefan brasov", false)).await, [popescu]);
    assert_eq!(ids(b, &q("ȘTEFAN", false)).await, [popescu]);
    // Punctuation separates words.
    assert_eq!(ids(b, &q("popescu-ionescu", false)).await, [popescu]);
    assert_eq!(ids(b, &q("ionescu", false)).await, [popescu]);
    // `notes` has `search = false`: never read.
    assert!(!ids(b, &q("rossi", false)).await.contains(&bianchi));
    assert!(ids(b, &q("office", true)).await.is_empty());
    // `phone` is pii: searched only when the caller may see personal data.
    assert!(ids(b, &q("1234567", false)).await.is_empty());
    assert!(ids(b, &q("3906", false)).await.is_empty());
    assert_eq!(ids(b, &q("1234567", true)).await, [rossi]);
    assert_eq!(ids(b, &q("+39 06 12", true)).await, [rossi]);
    assert_eq!(
        ids(b, &q("3906123", true)).await,
        [rossi],
        "digits as one word"
    );
    // Non-pii words with pii ones, for an admin.
    assert_eq!(ids(b, &q("rossi 1234", true)).await, [rossi]);
    assert!(ids(b, &q("rossi 1234", false)).await.is_empty());
    // Another tenant's query finds nothing of these.
    let mut other = q("rossi", true);
    other.tenant = "other".into();
    assert!(b.query(&other).await.unwrap().is_empty());

    // Changed after the publish: found by the new words, not the old.
    let r = b
        .fire(fire_req(
            rossi,
            "rename",
            vec![("name".to_string(), s("Verdi Giuseppe"))],
            &agent("a1"),
            t0(),
        ))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(ids(b, &q("verdi gius", false)).await, [rossi]);
    assert_eq!(ids(b, &q("ross mar", false)).await, [marta]);
}

async fn combined_with_filter_sort_keyset_and_count(b: &AnyBackend) {
    let mut made = Vec::new();
    for i in 0..30 {
        let name = if i % 3 == 0 {
            "Esposito Anna"
        } else {
            "Esposito Ugo"
        };
        let id = create(b, vec![("name", s(name)), ("n", Value::Int(i % 10))]).await;
        made.push((id, i % 10, name));
    }
    // "esp ann", n >= 3, by n descending, pages of 2.
    let mut want: Vec<(i64, i64)> = made
        .iter()
        .filter(|(_, n, name)| *n >= 3 && name.ends_with("Anna"))
        .map(|(id, n, _)| (*n, *id))
        .collect();
    want.sort_by(|a, b| b.cmp(a));
    let mut query = q("esp ann", false);
    query.filters = vec![Filter::Cond(Cond {
        key: Key::Field {
            name: "n".into(),
            kind: Kind::Num,
        },
        op: Op::Gte(Lit::parse(Kind::Num, "3").unwrap()),
    })];
    query.sort = Key::Field {
        name: "n".into(),
        kind: Kind::Num,
    };
    query.desc = true;
    query.limit = 2;
    let c = b.count(&query, 1000).await.unwrap();
    assert_eq!((c.value, c.estimated), (want.len() as i64, false));
    let mut seen = Vec::new();
    loop {
        let mut rows = b.query(&query).await.unwrap();
        let more = rows.len() > query.limit;
        rows.truncate(query.limit);
        // A record created between pages that matches sorts before the
        // cursor (n = 0 is filtered out): pages stay stable.
        create(b, vec![("name", s("Esposito Anna")), ("n", Value::Int(0))]).await;
        query.after = rows.last().map(|h| h.cursor.clone());
        seen.extend(rows.into_iter().map(|h| {
            let n = h.record.fields["n"].as_i64().unwrap();
            (n, h.record.id)
        }));
        if !more {
            break;
        }
    }
    assert_eq!(seen, want);
}

async fn publish_changes_the_searched_fields(b: &AnyBackend) {
    let id = create(
        b,
        vec![("name", s("Ferrari Enzo")), ("city", s("Maranello"))],
    )
    .await;
    assert_eq!(ids(b, &q("maranello", false)).await, [id]);
    // A version that no longer searches `city`: until the backfill has
    // done the records, a search leaves them out (never the old words).
    let set = sw_set(&SW.replacen(
        "[fields.city]\ntype = \"string\"",
        "[fields.city]\ntype = \"string\"\nsearch = false",
        1,
    ));
    b.set_workflows(&set).await.unwrap();
    assert!(ids(b, &q("maranello", false)).await.is_empty());
    assert!(
        ids(b, &q("ferrari", false)).await.is_empty(),
        "not done yet: left out"
    );
    // A record created after the publish has its words at once.
    let fresh = create(b, vec![("name", s("Ferrari Dino"))]).await;
    assert_eq!(ids(b, &q("dino", false)).await, [fresh]);
    // One batch of one id: its progress is committed, the rest still
    // pending (and still left out); the next run resumes after it.
    let step = b.backfill_search_batch(1).await.unwrap().expect("pending");
    assert_eq!(step.done, 1);
    assert!(step.upto >= id && step.upto < fresh, "{step:?}");
    assert!(id > 1, "earlier cases created records before it");
    assert_eq!(
        ids(b, &q("ferrari", false)).await,
        [fresh],
        "id still pending"
    );
    assert!(query::backfill_search(b).await.unwrap() > 0);
    assert!(ids(b, &q("maranello", false)).await.is_empty());
    assert_eq!(ids(b, &q("ferrari", false)).await, [id, fresh]);
    assert_eq!(query::backfill_search(b).await.unwrap(), 0, "nothing left");
    // `city` searched again, and `notes` too.
    let set = sw_set(&SW.replacen("search = false", "search = true", 1));
    b.set_workflows(&set).await.unwrap();
    query::backfill_search(b).await.unwrap();
    assert_eq!(ids(b, &q("maranello", false)).await, [id]);
    assert!(
        !ids(b, &q("office", false)).await.is_empty(),
        "notes searched"
    );
}

async fn refusals(b: &AnyBackend) {
    assert_eq!(Search::parse("  !! -- ", false), Ok(None));
    assert!(Search::parse(&"a ".repeat(17), false).is_err());
    // Quotes and FTS or tsquery syntax are separators, never syntax.
    for text in [
        "\"ross",
        "ross*",
        "a & b | !c",
        "x:*A",
        "NEAR(a b)",
        "'; --",
        "{pii}: 0",
    ] {
        let query = q(text, false);
        assert!(b.query(&query).await.is_ok(), "{text}");
    }
}

async fn all(b: &AnyBackend) {
    search_finds_words(b).await;
    combined_with_filter_sort_keyset_and_count(b).await;
    publish_changes_the_searched_fields(b).await;
    refusals(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_full_text_search() {
    let db = PgDb::new().await;
    let set = sw_set(SW);
    let b = leadflow_runtime::open(&db.url, "acme", set.clone())
        .await
        .unwrap();
    b.set_workflows(&set).await.unwrap();
    all(&b).await;
    drop(b);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_text_search() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    let set = sw_set(SW);
    let b = leadflow_runtime::open(&url, "acme", set.clone())
        .await
        .unwrap();
    b.set_workflows(&set).await.unwrap();
    all(&b).await;
}

/// 100,000 records loaded with `generate_series` after the publish (the
/// trigger gives each its words): a name search, alone, with an open-state
/// filter and a sort, and counted, reads the GIN index `lf_search`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_search_plans_read_the_gin_index_on_100k_rows() {
    let db = PgDb::new().await;
    let set = sw_set(SW);
    let b = leadflow_runtime::open(&db.url, "acme", set.clone())
        .await
        .unwrap();
    b.set_workflows(&set).await.unwrap();
    // The daemon's backfill task builds the index; here, directly.
    query::backfill_search(&b).await.unwrap();
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let hash = &set.get("sw").unwrap().hash;
    sqlx::query(
        "INSERT INTO records (tenant_id, id, workflow, version, state, is_final, fields, assignee, revision, created_at, entered_at, updated_at)
         SELECT 'acme', 1000 + g, 'sw', $1, (ARRAY['new','done'])[1 + g % 2], g % 2 = 1,
                jsonb_build_object('name', (ARRAY['Rossi','Russo','Ferrari','Esposito','Bianchi'])[1 + g % 5] || ' N' || g,
                                   'phone', '+39 3' || (g * 7919 % 999999999)::text,
                                   'city', (ARRAY['Roma','Milano','Napoli','Torino'])[1 + g % 4], 'n', g % 1000),
                'op' || (g % 50), 1, now(), now(), now()
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
    // A name and a number: a handful of records.
    let name = q("rossi n1234", false);
    let p = plan(name.clone()).await;
    assert!(p.contains("lf_search"), "the GIN index: {p}");
    assert!(!p.contains("Seq Scan"), "{p}");
    let found = ids(&b, &name).await;
    assert_eq!(found, [1000 + 12340, 1000 + 12345]);
    // With an open-state filter and a field sort.
    let mut open = q("ross n99", false);
    open.states = vec!["new".into()];
    open.open_only = true;
    open.sort = Key::Field {
        name: "n".into(),
        kind: Kind::Num,
    };
    open.limit = 20;
    let p = plan(open.clone()).await;
    assert!(p.contains("lf_search") && !p.contains("Seq Scan"), "{p}");
    assert!(!b.query(&open).await.unwrap().is_empty());
    // A phone lookup (pii: an admin's search).
    let phone = q("+39 3", true);
    assert!(b.count(&phone, 1000).await.unwrap().value > 0);
    let c = b.count(&q("ferrari n777", false), 200_000).await.unwrap();
    assert_eq!(
        (c.value, c.estimated),
        (23, false),
        "N777, N7770..N7779, N77700..N77799"
    );
    drop(b);
    db.drop_db().await;
}

/// Two tenants of one database publishing at the same instant build the
/// shared indexes one after the other: neither drops the other's build in
/// progress (seen as an invalid index), so both succeed and the indexes end
/// valid. Four rounds, the indexes dropped before each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_tenants_publishing_at_once_build_the_indexes_once() {
    use leadflow_runtime::sql::query::RecordQuery;
    use sqlx::Connection;
    let db = PgDb::new().await;
    let set = sw_set(SW);
    let a = leadflow_runtime::open(&db.url, "acme", set.clone())
        .await
        .unwrap();
    let b = leadflow_runtime::open(&db.url, "beta", set.clone())
        .await
        .unwrap();
    let search = query::wanted_search(set.workflows.values().map(|w| &**w));
    let indexes = query::wanted_indexes(set.workflows.values().map(|w| &**w));
    assert!(!indexes.is_empty(), "the workflow has an indexed field");
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for round in 0..4 {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'records'::regclass AND (c.relname = 'lf_search' OR c.relname LIKE 'lf\\_q\\_%')",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        for n in names {
            sqlx::raw_sql(&format!("DROP INDEX {n}"))
                .execute(&mut c)
                .await
                .unwrap();
        }
        let one = |x: AnyBackend| {
            let (search, indexes) = (search.clone(), indexes.clone());
            tokio::spawn(async move {
                x.sync_search(&search).await?;
                x.ensure_search_index().await?;
                x.sync_indexes(&indexes).await.map(|_| ())
            })
        };
        let (ra, rb) = tokio::join!(one(a.clone()), one(b.clone()));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.is_ok() && rb.is_ok(), "round {round}: {ra:?} {rb:?}");
        let invalid: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'records'::regclass AND NOT i.indisvalid",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(invalid, 0, "round {round}: an index was left invalid");
        let built: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_class WHERE relname = 'lf_search' OR relname LIKE 'lf\\_q\\_%'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(built as usize, indexes.len() + 1, "round {round}");
    }
    drop((a, b));
    c.close().await.unwrap();
    db.drop_db().await;
}
