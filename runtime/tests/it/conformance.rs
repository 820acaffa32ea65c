//! The conformance suite against every backend.

use crate::common;

use leadflow_runtime::mem::MemBackend;

#[tokio::test]
async fn conformance_mem() {
    let b = MemBackend::new(common::set());
    common::conformance::run(&b).await;
    common::conformance::bulk(&b).await;
    common::conformance::events(&b).await;
    common::conformance::loads(&b).await;
    common::conformance::siblings(&b).await;
}

#[tokio::test]
async fn conformance_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let b = leadflow_runtime::SqliteBackend::open(&url, "acme", common::set())
        .await
        .unwrap();
    common::conformance::run(&b).await;
    common::conformance::bulk(&b).await;
    common::conformance::events(&b).await;
    common::conformance::loads(&b).await;
    common::conformance::siblings(&b).await;
}

#[tokio::test]
async fn conformance_pg() {
    let db = common::PgDb::new().await;
    let b = leadflow_runtime::PgBackend::open(&db.url, "acme", common::set())
        .await
        .unwrap();
    common::conformance::run(&b).await;
    common::conformance::bulk(&b).await;
    common::conformance::events(&b).await;
    common::conformance::loads(&b).await;
    common::conformance::siblings(&b).await;
    b.pool().close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn conformance_any_from_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("any.db").display());
    let b = leadflow_runtime::open(&url, "acme", common::set())
        .await
        .unwrap();
    common::conformance::run(&b).await;
    common::conformance::bulk(&b).await;
    common::conformance::events(&b).await;
    common::conformance::loads(&b).await;
    common::conformance::siblings(&b).await;
    let m = leadflow_runtime::open("mem:", "acme", common::set())
        .await
        .unwrap();
    common::conformance::run(&m).await;
    common::conformance::bulk(&m).await;
    assert!(leadflow_runtime::open("mysql://x", "acme", common::set())
        .await
        .is_err());
}
