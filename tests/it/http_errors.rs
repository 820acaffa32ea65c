//! Errors and conditional requests against a real daemon, on SQLite and
//! PostgreSQL: every error is an RFC 9457 problem document whose `type`
//! resolves on the daemon, a stale `If-Match` is 412 with the current
//! revision, `If-None-Match` gives 304 (never for a record the caller
//! cannot see), and a 401 carries a Bearer challenge.

use crate::http_support;

use http_support::{Daemon, Kind, Resp};
use leadflow_runtime::http::codes::{lookup, CODES};
use reqwest::Method;
use serde_json::json;

both!(
    a_stale_if_match_is_412_with_the_current_revision,
    if_none_match_is_304_until_the_record_changes,
    if_none_match_never_reveals_an_invisible_record,
    a_401_carries_a_bearer_challenge,
    unknown_routes_and_methods_are_problems,
    the_type_of_a_problem_resolves_on_the_daemon,
    a_guard_refusal_is_a_422_problem,
);

/// A problem document for `path`: media type, members, status, a code of
/// the catalogue with its status and title, the request id of the header.
#[track_caller]
fn assert_problem(r: &Resp, status: u16, code: &str, path: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        "application/problem+json",
        "{r:?}"
    );
    let b = &r.body;
    assert_eq!(b["status"], status, "{r:?}");
    assert_eq!(b["code"], code, "{r:?}");
    assert_eq!(b["type"], format!("/errors/{code}"), "{r:?}");
    let info = lookup(code).expect("a catalogued code");
    assert_eq!(info.status, status);
    assert_eq!(b["title"], info.title, "{r:?}");
    assert!(!b["detail"].as_str().unwrap_or("").is_empty(), "{r:?}");
    assert_eq!(b["message"], b["detail"], "the deprecated duplicate");
    assert_eq!(b["instance"], path, "{r:?}");
    let id = r.header("x-request-id");
    assert!(!id.is_empty());
    assert_eq!(b["request_id"], id, "{r:?}");
}

async fn a_stale_if_match_is_412_with_the_current_revision(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let path = format!("/v1/records/{id}/transitions/log_contact_attempt");
    let fire = |if_match: &'static str| {
        let (d, path) = (&d, path.clone());
        async move {
            d.call(
                Method::POST,
                &path,
                Some("dealer-rm"),
                None,
                &[("if-match", if_match)],
            )
            .await
        }
    };
    let ok = fire("\"1\"").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("etag"), "\"2\"");

    // Stale: 412, the revision now as a number and as the ETag; nothing done.
    let stale = fire("\"1\"").await;
    assert_problem(&stale, 412, "E_CONFLICT", &path);
    assert_eq!(stale.body["current_revision"], 2, "{stale:?}");
    assert!(stale.body["current_revision"].is_i64());
    assert_eq!(stale.header("etag"), "\"2\"");
    let g = d.get(&format!("/v1/records/{id}"), "dealer-rm").await;
    assert_eq!(g.body["revision"], 2);

    // A list naming the current revision passes; one that does not is 412;
    // `*` is any revision.
    let listed = fire("\"1\", \"2\"").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.header("etag"), "\"3\"");
    let r = fire("\"1\", \"2\"").await;
    assert_problem(&r, 412, "E_CONFLICT", &path);
    assert_eq!(r.body["current_revision"], 3);
    let r = fire("*").await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = fire("\"x\"").await;
    assert_problem(&r, 400, "E_BAD_REQUEST", &path);

    // An invisible record is 404 whatever the If-Match: no revision leaks.
    let r = d
        .call(
            Method::POST,
            &path,
            Some("dealer-mi"),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_problem(&r, 404, "E_NOT_FOUND", &path);
    assert!(r.body.get("current_revision").is_none());
    assert_eq!(r.header("etag"), "");
    let _ = d.stop().await;
}

async fn if_none_match_is_304_until_the_record_changes(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let path = format!("/v1/records/{id}");
    let get = |inm: &'static str| {
        let (d, path) = (&d, path.clone());
        async move {
            d.call(
                Method::GET,
                &path,
                Some("dealer-rm"),
                None,
                &[("if-none-match", inm)],
            )
            .await
        }
    };
    for inm in ["\"1\"", "W/\"1\"", "\"7\", \"1\"", "*"] {
        let r = get(inm).await;
        assert_eq!(r.status, 304, "{inm}: {r:?}");
        assert_eq!(r.header("etag"), "\"1\"", "{inm}");
        assert!(r.text.is_empty(), "{inm}: no body");
    }
    let r = get("\"2\"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["revision"], 1);

    let f = d
        .post(
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    // The tag held is stale now: the new representation, with its ETag.
    let r = get("\"1\"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("etag"), "\"2\"");
    assert_eq!(r.body["fields"]["attempts"], 1);
    let r = get("W/\"2\"").await;
    assert_eq!(r.status, 304);
    let _ = d.stop().await;
}

async fn if_none_match_never_reveals_an_invisible_record(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let missing = id + 1000;
    for (key, path) in [
        ("dealer-mi", format!("/v1/records/{id}")),
        ("other-admin", format!("/v1/records/{id}")),
        ("dealer-rm", format!("/v1/records/{missing}")),
    ] {
        for inm in ["*", "\"1\""] {
            let r = d
                .call(
                    Method::GET,
                    &path,
                    Some(key),
                    None,
                    &[("if-none-match", inm)],
                )
                .await;
            assert_problem(&r, 404, "E_NOT_FOUND", &path);
            assert_eq!(r.header("etag"), "", "{key} {path}");
        }
    }
    let _ = d.stop().await;
}

async fn a_401_carries_a_bearer_challenge(kind: Kind) {
    use leadflow_runtime::config::{hash_key, KeyConfig};
    let mut cfg = http_support::test_config(&http_support::repo());
    cfg.tenants.get_mut("aslm").unwrap().keys.push(KeyConfig {
        name: "rm-expired".into(),
        sha256: hash_key("rm-expired-key"),
        actor: Some("dealer-rm".into()),
        role: None,
        expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
    });
    let d = Daemon::start_config(http_support::Db::new(kind), cfg, false).await;
    let r = d.call(Method::GET, "/v1/records/1", None, None, &[]).await;
    assert_problem(&r, 401, "E_UNAUTHORIZED", "/v1/records/1");
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"leadflow\"");
    let r = d.get("/v1/records/1", "wrong").await;
    assert_problem(&r, 401, "E_UNAUTHORIZED", "/v1/records/1");
    assert_eq!(
        r.header("www-authenticate"),
        "Bearer realm=\"leadflow\", error=\"invalid_token\""
    );
    let r = d.get("/v1/records/1", "rm-expired").await;
    assert_problem(&r, 401, "E_KEY_EXPIRED", "/v1/records/1");
    assert!(
        r.header("www-authenticate")
            .starts_with("Bearer realm=\"leadflow\", error=\"invalid_token\""),
        "{r:?}"
    );
    // A body announced without a valid key: refused before it is read,
    // with the same challenge.
    let r = d
        .call(Method::POST, "/v1/records", None, Some(json!({})), &[])
        .await;
    assert_problem(&r, 401, "E_UNAUTHORIZED", "/v1/records");
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"leadflow\"");
    let _ = d.stop().await;
}

async fn unknown_routes_and_methods_are_problems(kind: Kind) {
    let d = Daemon::start(kind).await;
    let r = d.get("/v1/nothing/here", "admin").await;
    assert_problem(&r, 404, "E_NOT_FOUND", "/v1/nothing/here");
    let r = d.call(Method::GET, "/nothing", None, None, &[]).await;
    assert_problem(&r, 404, "E_NOT_FOUND", "/nothing");
    let r = d
        .call(Method::DELETE, "/v1/records", Some("admin"), None, &[])
        .await;
    assert_problem(&r, 405, "E_METHOD", "/v1/records");
    let allow = r.header("allow");
    assert!(allow.contains("GET") && allow.contains("POST"), "{r:?}");
    // Not an integer id: 400 from the path extractor, a problem too.
    let r = d.get("/v1/records/abc", "admin").await;
    assert_problem(&r, 400, "E_BAD_REQUEST", "/v1/records/abc");
    // Not JSON.
    let r = d
        .call(
            Method::POST,
            "/v1/records",
            Some("admin"),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_problem(&r, 400, "E_BAD_REQUEST", "/v1/records");
    let _ = d.stop().await;
}

async fn the_type_of_a_problem_resolves_on_the_daemon(kind: Kind) {
    let d = Daemon::start(kind).await;
    let r = d.get("/v1/records/424242", "admin").await;
    let ty = r.body["type"].as_str().unwrap().to_string();
    // A relative reference: resolved against the request's URL.
    let page = d.call(Method::GET, &ty, None, None, &[]).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.text.contains("E_NOT_FOUND"), "{}", page.text);
    let j = d
        .call(
            Method::GET,
            &ty,
            None,
            None,
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(j.body["code"], "E_NOT_FOUND");
    assert_eq!(j.body["status"], 404);

    let all = d
        .call(
            Method::GET,
            "/errors",
            None,
            None,
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(all.status, 200);
    let listed: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(listed, CODES.iter().map(|c| c.code).collect::<Vec<_>>());
    let html = d.call(Method::GET, "/errors", None, None, &[]).await;
    for c in CODES {
        assert!(
            html.text.contains(&format!("href=\"/errors/{}\"", c.code)),
            "{}",
            c.code
        );
        let one = d
            .call(Method::GET, &format!("/errors/{}", c.code), None, None, &[])
            .await;
        assert_eq!(one.status, 200, "{}", c.code);
    }
    let r = d.call(Method::GET, "/errors/E_NOPE", None, None, &[]).await;
    assert_problem(&r, 404, "E_NOT_FOUND", "/errors/E_NOPE");

    // The spec's enum is the catalogue.
    let spec = d.call(Method::GET, "/openapi.json", None, None, &[]).await;
    let listed: Vec<&str> = spec.body["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(listed, CODES.iter().map(|c| c.code).collect::<Vec<_>>());
    let _ = d.stop().await;
}

async fn a_guard_refusal_is_a_422_problem(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let fire = |t: &str| format!("/v1/records/{id}/transitions/{t}");
    let r = d
        .post(&fire("log_contact_attempt"), "dealer-rm", json!({}))
        .await;
    assert_eq!(r.status, 200);
    let path = fire("make_appointment");
    let r = d
        .post(
            &path,
            "dealer-rm",
            json!({"input": {"appointment_at": "2020-01-01T10:00:00Z"}}),
        )
        .await;
    assert_problem(&r, 422, "E_GUARD", &path);
    assert!(r.body["detail"].as_str().unwrap().contains("future"));
    let path = fire("close_sale");
    let r = d.post(&path, "dealer-rm", json!({})).await;
    assert_problem(&r, 422, "E_REQUIRED", &path);
    assert_eq!(r.body["field"], "vin");
    let _ = d.stop().await;
}

/// Arbitrary requests (methods, paths, bodies, keys, conditional headers):
/// every answer that is not a success is a problem document whose code is
/// in the catalogue, with the status the catalogue gives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_error_answer_is_a_problem_with_a_catalogued_code() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    let d = Daemon::start(Kind::Sqlite).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let method = proptest::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ]);
    let path = prop_oneof![
        Just(format!("/v1/records/{id}")),
        Just(format!("/v1/records/{id}/transitions/log_contact_attempt")),
        Just(format!("/v1/records/{id}/transitions/close_sale")),
        Just(format!("/v1/records/{id}/transitions/nope")),
        Just(format!("/v1/records/{id}/history")),
        Just("/v1/records".to_string()),
        Just("/v1/actors/dealer-rm/unavailability".to_string()),
        Just("/v1/timers/parked/1/t/retry".to_string()),
        Just("/v1/workflows".to_string()),
        Just("/v1/audit".to_string()),
        Just("/metrics".to_string()),
        Just("/errors/E_GUARD".to_string()),
        "/v1/records/[a-z0-9-]{0,8}(/[a-z]{0,8})?",
        "/[a-z]{0,6}",
    ];
    let body = prop_oneof![
        Just(None),
        Just(Some("{}".to_string())),
        Just(Some("[]".to_string())),
        Just(Some("{\"input\": {\"vin\": 3}}".to_string())),
        Just(Some(
            "{\"workflow\": \"aslm\", \"fields\": {\"province\": 7}}".to_string()
        )),
        Just(Some("{\"workflow\": \"nope\"}".to_string())),
        ".{0,12}".prop_map(Some),
    ];
    let key = proptest::sample::select(vec![None, Some("admin"), Some("dealer-mi"), Some("wrong")]);
    let cond = proptest::sample::select(vec![
        None,
        Some(("if-match", "\"99\"")),
        Some(("if-match", "bad")),
        Some(("if-none-match", "*")),
        Some(("idempotency-key", "")),
    ]);
    let request = (method, path, body, key, cond);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let (m, path, body, key, cond) = request.new_tree(&mut runner).unwrap().current();
        let mut req = d.http.request(m.clone(), format!("{}{path}", d.base));
        if let Some(k) = key {
            req = req.bearer_auth(format!("{k}-key"));
        }
        if let Some(b) = &body {
            req = req
                .header("content-type", "application/json")
                .body(b.clone());
        }
        if let Some((h, v)) = cond {
            req = req.header(h, v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.unwrap();
        let what = format!("{m} {path} {key:?} {cond:?} {body:?} -> {status} {text}");
        if status < 400 {
            continue;
        }
        assert_eq!(ctype, "application/problem+json", "{what}");
        let b: serde_json::Value = serde_json::from_str(&text).expect(&what);
        let code = b["code"].as_str().expect(&what);
        let info = lookup(code).unwrap_or_else(|| panic!("{code} not catalogued: {what}"));
        assert_eq!(info.status, status, "{what}");
        assert_eq!(b["status"], status, "{what}");
        assert_eq!(b["title"], info.title, "{what}");
        assert!(
            b["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}"
        );
        seen.insert(code.to_string());
    }
    assert!(seen.len() >= 6, "varied errors: {seen:?}");
    let _ = d.stop().await;
}
