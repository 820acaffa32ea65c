use super::*;
use leadflow_engine::{FieldType, Value};

#[test]
fn typed_comparison() {
    let t = Some(FieldType::Datetime);
    let want = expected(t, &toml::Value::String("2022-11-14T09:00:00+01:00".into())).unwrap();
    assert!(same(
        &want,
        &actual(t, Some(&serde_json::json!("2022-11-14T08:00:00Z")))
    ));
    let d = Some(FieldType::Decimal);
    let want = expected(d, &toml::Value::Float(1250.5)).unwrap();
    assert!(same(&want, &actual(d, Some(&serde_json::json!("1250.50")))));
    assert!(same(
        &expected(Some(FieldType::Int), &toml::Value::String(String::new())).unwrap(),
        &Value::Null
    ));
    let l = Some(FieldType::List);
    let want = expected(
        l,
        &toml::Value::Array(vec![toml::Value::String(
            "2022-11-14T11:00:00+01:00".into(),
        )]),
    )
    .unwrap();
    assert!(same(
        &want,
        &actual(l, Some(&serde_json::json!(["2022-11-14T10:00:00Z"])))
    ));
    assert!(!same(&Value::Int(1), &Value::Int(2)));
}

#[tokio::test]
async fn resolve_follows_links_and_names_the_missing_one() {
    use crate::backend::{Backend, CreateRequest, FireRequest};
    let loaded = leadflow_engine::load(&leadflow_engine::Project {
        workflows: vec![leadflow_engine::SourceFile::new(
            "workflows/w.toml",
            r#"
[workflow]
id = "w"
initial = "open"
[states.open]
[states.done]
final = true
[transitions.split]
from = ["open"]
by = ["agent"]
do = [{ spawn = "w", link = "parent", backlink = "kid" }]
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
"#,
        )],
        ..Default::default()
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let b = crate::MemBackend::new(std::sync::Arc::new(loaded.set));
    let agent = leadflow_engine::Actor {
        id: "a".into(),
        role: "agent".into(),
        ..Default::default()
    };
    let now = "2024-01-01T09:00:00Z".parse().unwrap();
    let a = b
        .create(CreateRequest {
            workflow: "w",
            input: Vec::new(),
            actor: &agent,
            now,
            idempotency_key: None,
        })
        .await
        .unwrap();
    b.fire(FireRequest {
        record: a.id,
        transition: "split",
        input: Vec::new(),
        actor: &agent,
        now,
        expected_revision: None,
        idempotency_key: None,
        visible: None,
        bulk: false,
    })
    .await
    .unwrap();
    let names: HashMap<String, RecordId> = [("A".to_string(), a.id)].into();
    let at = |s: &str| RecordRef::parse(s);
    assert_eq!(resolve(&b, &names, &at("A")).await, Ok(a.id));
    assert_eq!(resolve(&b, &names, &at("A/kid/parent")).await, Ok(a.id));
    assert_eq!(
        resolve(&b, &names, &at("A/kid/nope")).await,
        Err("record `A/kid/nope`: A/kid has no link `nope` (links: parent)".into())
    );
    assert_eq!(
        resolve(&b, &names, &at("A/x")).await,
        Err("record `A/x`: A has no link `x` (links: kid)".into())
    );
    assert_eq!(
        resolve(&b, &names, &at("B")).await,
        Err("record `B` is not named yet".into())
    );
}
