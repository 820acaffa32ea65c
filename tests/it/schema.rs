//! The committed JSON Schema (what editors load) matches the code.

#[test]
fn committed_schema_is_in_sync() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/workflow.schema.json"
    ))
    .unwrap();
    let generated = leadflow::cmd::schema_json();
    assert_eq!(
        committed.trim(),
        generated.trim(),
        "docs/workflow.schema.json is stale: run `cargo run -- schema > docs/workflow.schema.json`"
    );
}

#[test]
fn schema_knows_every_top_level_section() {
    let v: serde_json::Value = serde_json::from_str(&leadflow::cmd::schema_json()).unwrap();
    let props = v["properties"].as_object().unwrap();
    for key in [
        "workflow",
        "fields",
        "states",
        "transitions",
        "timers",
        "views",
        "kpis",
        "reports",
    ] {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
}
