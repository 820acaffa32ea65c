use super::*;
use serde_json::json;
use std::collections::BTreeSet;

fn ops(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op));
        }
    }
    out
}

#[test]
fn operation_ids_are_unique_prefixed_and_tagged() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut seen = BTreeSet::new();
    for (path, method, op) in ops(doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(seen.insert(id.to_string()), "{id} twice");
        let tag = op["tags"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: no tag"));
        let prefix = if tag == "operations" { "ops" } else { tag };
        assert!(
            id.starts_with(&format!("{prefix}_")),
            "{id} under tag {tag}"
        );
        assert!(op["summary"].is_string(), "{id}: no summary");
    }
    for id in [
        "records_list",
        "records_create",
        "records_get",
        "records_fire",
        "records_actions",
        "records_check",
        "records_history",
        "records_links",
        "records_notifications",
        "actors_list",
        "actors_get",
        "actors_unavailability_get",
        "actors_unavailability_put",
        "workflows_list",
        "workflows_schema",
        "timers_parked_list",
        "timers_parked_retry",
        "audit_list",
        "kpis_get",
        "reports_get",
        "reports_runs_list",
        "reports_runs_get",
        "ops_healthz",
        "ops_readyz",
        "ops_metrics",
        "ops_openapi",
    ] {
        assert!(seen.contains(id), "{id} missing");
    }
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (_, _, op) in ops(doc) {
        assert!(
            tags.contains(op["tags"][0].as_str().unwrap()),
            "undeclared tag"
        );
    }
}

/// Every `$ref` in `v`, with where it is.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push((at.clone(), r)),
                    _ => refs(x, format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                refs(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_ref_resolves() {
    let doc = document();
    let mut all = Vec::new();
    refs(doc, String::new(), &mut all);
    assert!(all.len() > 20);
    for (at, r) in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: external ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "{at}: {r} does not resolve");
    }
}

#[test]
fn list_parameters_have_the_servers_bounds() {
    let doc = document();
    let params = doc["paths"]["/v1/records"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let p = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
    };
    let names: BTreeSet<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "workflow",
            "state",
            "assignee",
            "filter",
            "q",
            "sort",
            "limit",
            "after",
            "count",
            "format",
            "created_at",
            "entered_at",
            "updated_at"
        ]
        .into()
    );
    for p in params {
        assert_eq!(p["in"], "query");
        assert_ne!(p["required"], true);
        assert!(
            !p["name"].as_str().unwrap().contains('<'),
            "a literal template name"
        );
    }
    let limit = &p("limit")["schema"];
    assert_eq!(limit["type"], "integer");
    assert_eq!(limit["minimum"], 1);
    assert_eq!(limit["maximum"], list::MAX_LIMIT);
    assert_eq!(limit["default"], list::DEFAULT_LIMIT);
    for (name, max) in [("state", list::MAX_STATES), ("filter", list::MAX_FILTERS)] {
        let q = p(name);
        assert_eq!(
            (&q["style"], &q["explode"]),
            (&json!("form"), &json!(true)),
            "{name}"
        );
        assert_eq!(q["schema"]["type"], "array", "{name}");
        assert_eq!(q["schema"]["maxItems"], max, "{name}");
        assert_eq!(q["schema"]["items"]["maxLength"], list::MAX_VALUE, "{name}");
    }
    for name in ["workflow", "assignee", "after"] {
        assert_eq!(p(name)["schema"]["maxLength"], list::MAX_VALUE, "{name}");
    }
    assert_eq!(p("sort")["schema"]["maxLength"], list::MAX_NAME + 1);
    let audit = doc["paths"]["/v1/audit"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let limit = &audit.iter().find(|p| p["name"] == "limit").unwrap()["schema"];
    assert_eq!(
        (&limit["minimum"], &limit["maximum"], &limit["default"]),
        (
            &json!(1),
            &json!(audit::MAX_LIMIT),
            &json!(audit::DEFAULT_LIMIT)
        )
    );
}

#[test]
fn values_are_typed_and_pages_say_if_more_follow() {
    let doc = document();
    let s = &doc["components"]["schemas"];
    let fv = json!({"$ref": "#/components/schemas/FieldValue"});
    for (schema, prop) in [
        ("RecordView", "fields"),
        ("CreateBody", "fields"),
        ("FireBody", "input"),
    ] {
        assert_eq!(
            s[schema]["properties"][prop]["type"], "object",
            "{schema}.{prop}"
        );
        assert_eq!(
            s[schema]["properties"][prop]["additionalProperties"], fv,
            "{schema}.{prop}"
        );
    }
    for k in ["old", "new"] {
        assert_eq!(
            s["ChangeView"]["properties"][k]["$ref"], fv["$ref"],
            "ChangeView.{k}"
        );
    }
    let kinds: Vec<&Value> = s["FieldValue"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["type"])
        .collect();
    assert_eq!(
        kinds,
        [
            &json!("null"),
            &json!("string"),
            &json!("number"),
            &json!("boolean"),
            &json!("array")
        ]
    );
    for page in ["Page", "AuditPage", "HistoryPage"] {
        assert_eq!(
            s[page]["properties"]["has_more"]["type"], "boolean",
            "{page}"
        );
        assert!(s[page]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("has_more")));
    }
    for (schema, prop) in [
        ("RecordView", "created_at"),
        ("EventView", "at"),
        ("AuditEntry", "at"),
        ("PeriodView", "from"),
    ] {
        assert_eq!(
            s[schema]["properties"][prop]["format"], "date-time",
            "{schema}.{prop}"
        );
    }
    // No empty-object types (a generator reads them as "no members").
    for (name, schema) in s.as_object().unwrap() {
        assert_ne!(schema["type"], "integer", "{name}: a scalar as a component");
        for (prop, p) in schema["properties"].as_object().into_iter().flatten() {
            if p["type"] == "object" {
                assert!(
                    p.get("properties").is_some() || p.get("additionalProperties").is_some(),
                    "{name}.{prop}: an empty object type"
                );
            }
        }
    }
    let fire = &doc["paths"]["/v1/records/{id}/transitions/{transition}"]["post"];
    assert_eq!(
        fire["requestBody"]["required"], false,
        "an empty body is an empty input"
    );
    let body = &fire["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        body["$ref"], "#/components/schemas/FireBody",
        "not nullable: `null` is refused"
    );
    assert!(fire["responses"].get("413").is_some() && fire["responses"].get("408").is_some());
}

#[test]
fn headers_security_and_examples_are_declared() {
    let doc = document();
    for (path, method, op) in ops(doc) {
        let id = op["operationId"].as_str().unwrap();
        let public = PUBLIC.contains(&id);
        assert_eq!(
            op["security"] == json!([]),
            public,
            "{id}: security {}",
            op["security"]
        );
        assert_eq!(
            op["responses"]["405"]["$ref"], "#/components/responses/MethodNotAllowed",
            "{id}"
        );
        for (status, r) in op["responses"].as_object().unwrap() {
            if r.get("$ref").is_some() {
                continue;
            }
            let h = &r["headers"];
            assert!(
                h.get("X-Request-Id").is_some(),
                "{id} {status}: no X-Request-Id"
            );
            assert_eq!(
                h.get("Retry-After").is_some(),
                status == "503" || status == "429",
                "{id} {status}"
            );
            assert_eq!(
                h.get("Location").is_some(),
                status == "201",
                "{id} {status}"
            );
            // A record's revision, a schema's version; a 304 and a 412
            // say the record's current revision.
            let etag = (status.starts_with('2')
                && (RECORD_ANSWERS.contains(&id) || id == "workflows_schema"))
                || (id == "records_get" && status == "304")
                || (id == "records_fire" && status == "412");
            assert_eq!(h.get("ETag").is_some(), etag, "{id} {status}");
        }
        if let Some(body) = op.get("requestBody") {
            for c in body["content"].as_object().unwrap().values() {
                assert!(
                    c["examples"]["example"]["value"] != Value::Null,
                    "{id}: no request example"
                );
            }
        }
        let ok = op["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(s, _)| s.starts_with('2'))
            .unwrap();
        if let Some(content) = ok.1["content"].as_object() {
            for c in content.values() {
                assert!(
                    c["examples"]["example"]["value"] != Value::Null,
                    "{method} {path}: no answer example"
                );
            }
        }
    }
    for (_, _, op) in ops(doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            assert!(
                p["schema"]["type"].is_string(),
                "{} {}: {}",
                op["operationId"],
                p["name"],
                p["schema"]
            );
        }
    }
    let methods = &doc["components"]["responses"]["MethodNotAllowed"]["headers"];
    assert!(methods.get("Allow").is_some());
}

/// Every error response of every operation is a problem document; its
/// `code` is an enum of exactly the catalogue; the conditional and
/// authentication answers are declared with their headers.
#[test]
fn errors_are_problem_documents_whose_code_is_the_catalogue() {
    let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(schemas.get("ErrorBody").is_none());
    let problem = &schemas["Problem"];
    assert_eq!(
        problem["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    for m in ["type", "title", "status", "detail", "code", "request_id"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(m)),
            "{m}"
        );
    }
    let listed: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let catalogue: Vec<&str> = codes::CODES.iter().map(|c| c.code).collect();
    assert_eq!(listed, catalogue);
    let mut errors = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                errors += 1;
                let resp = match resp["$ref"].as_str() {
                    Some(r) => {
                        let name = r.trim_start_matches("#/components/responses/");
                        &doc["components"]["responses"][name]
                    }
                    None => resp,
                };
                let content = resp["content"].as_object().unwrap();
                if path.starts_with("/links/") && content.contains_key("text/html") {
                    // The action link pages: refusals are pages too.
                    assert_eq!(content.len(), 1, "{method} {path} {status}");
                    continue;
                }
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem"
                );
                assert!(!resp["description"].as_str().unwrap().is_empty());
                let header = match status.as_str() {
                    "401" => Some("WWW-Authenticate"),
                    "412" => Some("ETag"),
                    "503" => Some("Retry-After"),
                    _ => None,
                };
                if let Some(h) = header {
                    assert!(resp["headers"].get(h).is_some(), "{method} {path} {status}");
                }
            }
        }
    }
    assert!(errors > 50, "{errors}");
    let fire = &doc["paths"]["/v1/records/{id}/transitions/{transition}"]["post"]["responses"];
    assert!(fire.get("412").is_some() && fire.get("409").is_none());
    let get = &doc["paths"]["/v1/records/{id}"]["get"]["responses"]["304"];
    assert!(get["headers"].get("ETag").is_some() && get.get("content").is_none());
    // The catalogue pages are public.
    for p in ["/errors", "/errors/{code}"] {
        assert_eq!(
            doc["paths"][p]["get"]["security"],
            serde_json::json!([]),
            "{p}"
        );
        assert!(doc["paths"][p]["get"]["responses"].get("401").is_none());
    }
}
