//! The conformance suite against every backend.

mod common;

use leadflow_runtime::mem::MemBackend;

#[tokio::test]
async fn conformance_mem() {
    let b = MemBackend::new(common::set());
    common::conformance::run(&b).await;
}
