//! The HTTP API against a real daemon on an ephemeral port, on a fresh
//! SQLite file and a fresh PostgreSQL database per test.

use crate::http_support;

use http_support::{Daemon, Kind};
use reqwest::Method;
use serde_json::json;

both!(
    create_get_fire_with_etag_and_conflict,
    idempotency_key_replays_the_first_result,
    idempotency_key_reused_on_another_request_is_refused,
    engine_refusals_carry_stable_codes,
    bad_requests_are_400_json,
    auth_and_tenant_isolation,
    expired_keys_are_401_and_rotation_keeps_two_valid,
    pii_redacted_by_role_and_state,
    pool_visibility_and_claim,
    actions_history_links,
    list_filters_sort_and_keyset_pages,
    list_refuses_pii_for_actors_and_seals_cursors,
    list_parameters_are_bounded,
    random_list_queries_are_never_5xx,
    actors_and_unavailability,
    workflows_openapi_and_operations,
    parked_timers_and_background_task_liveness,
    metrics_off_and_readyz_anonymous,
    admin_actions_are_audited,
    list_filter_syntax_unknown_fields_and_cursor_binding,
    workflow_schema_types_fields_and_inputs,
    timestamps_have_one_precision_and_values_are_typed,
);

async fn create_get_fire_with_etag_and_conflict(kind: Kind) {
    let d = Daemon::start(kind).await;
    let c = d.aslm_lead("admin", "Rossi").await;
    assert_eq!(c.header("etag"), "\"1\"");
    assert_eq!(c.header("location"), format!("/v1/records/{}", c.id()));
    assert_eq!(c.body["state"], "assigned");
    assert_eq!(c.body["assignee"], "dealer-rm");
    assert!(!c.header("x-request-id").is_empty());
    let id = c.id();

    let g = d.get(&format!("/v1/records/{id}"), "dealer-rm").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.header("etag"), "\"1\"");
    assert_eq!(g.body["revision"], 1);

    let path = format!("/v1/records/{id}/transitions/log_contact_attempt");
    let f = d
        .call(
            Method::POST,
            &path,
            Some("dealer-rm"),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    assert_eq!(f.header("etag"), "\"2\"");
    assert_eq!(f.body["fields"]["attempts"], 1);

    // A stale revision: 412 (RFC 9110), the current revision told; nothing changes.
    let stale = d
        .call(
            Method::POST,
            &path,
            Some("dealer-rm"),
            Some(json!({})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.code(), "E_CONFLICT");
    assert_eq!(stale.body["current_revision"], 2);
    assert_eq!(stale.header("etag"), "\"2\"");
    let g = d.get(&format!("/v1/records/{id}"), "dealer-rm").await;
    assert_eq!(g.body["revision"], 2);

    // Appointment, then closed with sale.
    let when = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let f = d
        .post(
            &format!("/v1/records/{id}/transitions/make_appointment"),
            "dealer-rm",
            json!({"input": {"appointment_at": when}}),
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    assert_eq!(f.body["state"], "appointment_set");
    let f = d
        .call(
            Method::POST,
            &format!("/v1/records/{id}/transitions/close_sale"),
            Some("dealer-rm"),
            Some(json!({"input": {"vin": "ZAMGJ45A390012345"}})),
            &[("if-match", "3")],
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    assert_eq!(f.body["state"], "closed_sale");
    let _ = d.stop().await;
}

async fn idempotency_key_replays_the_first_result(kind: Kind) {
    let d = Daemon::start(kind).await;
    let body = json!({"workflow": "aslm", "fields": {"first_name": "Ida", "province": "RM"}});
    let a = d
        .call(
            Method::POST,
            "/v1/records",
            Some("admin"),
            Some(body.clone()),
            &[("idempotency-key", "form-42")],
        )
        .await;
    let b = d
        .call(
            Method::POST,
            "/v1/records",
            Some("admin"),
            Some(body.clone()),
            &[("idempotency-key", "form-42")],
        )
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(b.status, 201);
    assert_eq!(a.id(), b.id());
    let list = d.get("/v1/records?workflow=aslm", "admin").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    // Fire replay: the transition runs once.
    let path = format!("/v1/records/{}/transitions/log_contact_attempt", a.id());
    for _ in 0..2 {
        let f = d
            .call(
                Method::POST,
                &path,
                Some("dealer-rm"),
                None,
                &[("idempotency-key", "click-1")],
            )
            .await;
        assert_eq!(f.status, 200);
        assert_eq!(f.body["fields"]["attempts"], 1);
    }
    // Another key's idempotency keys are its own.
    let c = d
        .call(
            Method::POST,
            "/v1/records",
            Some("dealer-rm"),
            Some(body),
            &[("idempotency-key", "form-42")],
        )
        .await;
    assert_ne!(c.id(), a.id());
    let _ = d.stop().await;
}

async fn idempotency_key_reused_on_another_request_is_refused(kind: Kind) {
    let d = Daemon::start(kind).await;
    let a = d.aslm_lead("admin", "Rossi").await.id();
    let b = d.aslm_lead("admin", "Verdi").await.id();
    let fire = |id: i64| format!("/v1/records/{id}/transitions/log_contact_attempt");
    let with_key = |path: String, body: Option<serde_json::Value>, key: &'static str| {
        let d = &d;
        async move {
            d.call(
                Method::POST,
                &path,
                Some("dealer-rm"),
                body,
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = with_key(fire(a), None, "K").await;
    assert_eq!(first.status, 200, "{first:?}");
    // The same key on another record: refused, B unchanged.
    let r = with_key(fire(b), None, "K").await;
    assert_eq!(
        (r.status, r.code()),
        (422, "E_IDEMPOTENCY_MISMATCH"),
        "{r:?}"
    );
    let g = d.get(&format!("/v1/records/{b}"), "dealer-rm").await;
    assert_eq!(
        (g.body["revision"].as_i64(), &g.body["fields"]["attempts"]),
        (Some(1), &json!(0))
    );
    // The same record and transition with another body: refused too.
    let r = with_key(fire(a), Some(json!({"input": {"note": "x"}})), "K").await;
    assert_eq!(
        (r.status, r.code()),
        (422, "E_IDEMPOTENCY_MISMATCH"),
        "{r:?}"
    );
    // The exact request again (an empty body is `{}`): the first result.
    let r = with_key(fire(a), Some(json!({})), "K").await;
    assert_eq!(
        (r.status, r.body["revision"].as_i64()),
        (200, Some(2)),
        "{r:?}"
    );
    assert_eq!(
        d.get(&format!("/v1/records/{a}"), "dealer-rm").await.body["revision"],
        2
    );
    // A create's key reused on a fire: refused, nothing fired.
    let body = json!({"workflow": "aslm", "fields": {"first_name": "Ida", "province": "RM"}});
    let c = with_key("/v1/records".into(), Some(body.clone()), "C").await;
    assert_eq!(c.status, 201, "{c:?}");
    let r = with_key(fire(c.id()), None, "C").await;
    assert_eq!(
        (r.status, r.code()),
        (422, "E_IDEMPOTENCY_MISMATCH"),
        "{r:?}"
    );
    assert_eq!(
        d.get(&format!("/v1/records/{}", c.id()), "dealer-rm")
            .await
            .body["revision"],
        1
    );
    // A create's key reused with another body: no second record.
    let other = json!({"workflow": "aslm", "fields": {"first_name": "Eva", "province": "RM"}});
    let r = with_key("/v1/records".into(), Some(other), "C").await;
    assert_eq!(
        (r.status, r.code()),
        (422, "E_IDEMPOTENCY_MISMATCH"),
        "{r:?}"
    );
    let list = d.get("/v1/records?workflow=aslm", "admin").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    // The same body with keys in another order and spacing is the same request.
    let same = r#"{ "fields": {"province": "RM", "first_name": "Ida"}, "workflow": "aslm" }"#;
    let r = d
        .http
        .post(format!("{}/v1/records", d.base))
        .bearer_auth("dealer-rm-key")
        .header("content-type", "application/json")
        .header("idempotency-key", "C")
        .body(same)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let j: serde_json::Value = r.json().await.unwrap();
    assert_eq!(j["id"], c.id());
    // Keys too long, empty or not visible ASCII: 400, nothing created.
    let long = "k".repeat(4096);
    for bad in [long.as_str(), "two words", "a\tb", ""] {
        let r = d
            .http
            .post(format!("{}/v1/records", d.base))
            .bearer_auth("admin-key")
            .header("idempotency-key", bad)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["code"], "E_BAD_REQUEST", "{j}");
    }
    let r = d
        .call(
            Method::POST,
            &fire(a),
            Some("dealer-rm"),
            None,
            &[("idempotency-key", long.as_str())],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    let list = d.get("/v1/records?workflow=aslm", "admin").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    let o = d.call(Method::GET, "/openapi.json", None, None, &[]).await;
    let create = o.body["paths"]["/v1/records"]["post"]["responses"]["422"].to_string();
    assert!(create.contains("E_IDEMPOTENCY_MISMATCH"), "{create}");
    let _ = d.stop().await;
}

async fn engine_refusals_carry_stable_codes(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let fire = |t: &str| format!("/v1/records/{id}/transitions/{t}");

    let r = d.post(&fire("close_sale"), "dealer-rm", json!({})).await;
    assert_eq!((r.status, r.code()), (422, "E_REQUIRED"), "{r:?}");
    assert_eq!(r.body["field"], "vin");

    let r = d
        .post(
            &fire("close_sale"),
            "admin",
            json!({"input": {"vin": "ZAMGJ45A390012345"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"), "{r:?}");

    let r = d.post(&fire("no_such"), "dealer-rm", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "E_UNKNOWN_TRANSITION"));

    let r = d
        .post(
            &fire("close_sale"),
            "dealer-rm",
            json!({"input": {"vin": "bad"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "E_TYPE"));

    let r = d
        .post(
            &fire("close_sale"),
            "dealer-rm",
            json!({"input": {"attempts": 3}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "E_INPUT"));

    let r = d
        .post(&fire("log_contact_attempt"), "dealer-rm", json!({}))
        .await;
    assert_eq!(r.status, 200);
    let r = d
        .post(
            &fire("make_appointment"),
            "dealer-rm",
            json!({"input": {"appointment_at": "2020-01-01T10:00:00Z"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "E_GUARD"), "{r:?}");
    assert!(r.body["detail"].as_str().unwrap().contains("future"));

    let r = d
        .post("/v1/records", "admin", json!({"workflow": "nope"}))
        .await;
    assert_eq!((r.status, r.code()), (404, "E_UNKNOWN_WORKFLOW"));
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "aslm", "fields": {"province": "RM"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "E_REQUIRED"));

    let r = d.get("/v1/records/999999", "admin").await;
    assert_eq!((r.status, r.code()), (404, "E_NOT_FOUND"));

    // Final state: E_FINAL.
    let r = d
        .post(
            &fire("close_sale"),
            "dealer-rm",
            json!({"input": {"vin": "ZAMGJ45A390012345", "notes": "walk-in"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = d
        .post(&fire("log_contact_attempt"), "dealer-rm", json!({}))
        .await;
    assert_eq!((r.status, r.code()), (422, "E_FINAL"));
    let _ = d.stop().await;
}

async fn bad_requests_are_400_json(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let raw = |path: String, body: &'static str| {
        d.http
            .post(format!("{}{path}", d.base))
            .bearer_auth("admin-key")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (path, body) in [
        ("/v1/records".to_string(), "{not json"),
        (
            "/v1/records".to_string(),
            r#"{"workflow": "aslm", "colour": 1}"#,
        ),
        ("/v1/records".to_string(), r#"{"workflow": 7}"#),
        (
            "/v1/records".to_string(),
            r#"{"workflow": "aslm", "fields": []}"#,
        ),
        (
            format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "[1,",
        ),
        (
            format!("/v1/records/{id}/transitions/log_contact_attempt"),
            r#"{"inptu": {}}"#,
        ),
    ] {
        let r = raw(path.clone(), body).await.unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["code"], "E_BAD_REQUEST", "{j}");
        assert!(!j["detail"].as_str().unwrap().is_empty());
    }
    // No content type.
    let r = d
        .http
        .post(format!("{}/v1/records", d.base))
        .bearer_auth("admin-key")
        .body(r#"{"workflow":"aslm"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = d.get("/v1/records/abc", "admin").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"));
    let r = d
        .call(
            Method::POST,
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            Some("dealer-rm"),
            None,
            &[("if-match", "\"x\"")],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"));
    let r = d.get("/v1/records?colour=red", "admin").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"));
    let r = d.get("/v1/records?limit=0", "admin").await;
    assert_eq!(r.status, 400);
    let r = d.get("/v1/records?after=zzz", "admin").await;
    assert_eq!(r.status, 400);
    let r = d.get("/v1/nothing", "admin").await;
    assert_eq!((r.status, r.code()), (404, "E_NOT_FOUND"));
    let r = d
        .call(Method::DELETE, "/v1/records", Some("admin"), None, &[])
        .await;
    assert_eq!((r.status, r.code()), (405, "E_METHOD"));
    let _ = d.stop().await;
}

async fn expired_keys_are_401_and_rotation_keeps_two_valid(kind: Kind) {
    use leadflow_runtime::config::{hash_key, Config, KeyConfig};
    let mut cfg = Config::parse(
        &http_support::config_text(&http_support::repo()),
        "test.toml",
        std::path::Path::new("/"),
    )
    .unwrap();
    let now = chrono::Utc::now();
    let key = |name: &str, expires_at| KeyConfig {
        name: name.into(),
        sha256: hash_key(&format!("{name}-key")),
        actor: Some("dealer-rm".into()),
        role: None,
        expires_at,
    };
    let keys = &mut cfg.tenants.get_mut("aslm").unwrap().keys;
    // Rotation: the old key still valid for a day, the new one open-ended.
    keys.push(key("rm-old", Some(now + chrono::Duration::days(1))));
    keys.push(key("rm-new", None));
    keys.push(key("rm-expired", Some(now - chrono::Duration::seconds(1))));
    let d = Daemon::start_config(http_support::Db::new(kind), cfg, false).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    for k in ["rm-old", "rm-new"] {
        let r = d.get(&format!("/v1/records/{id}"), k).await;
        assert_eq!(r.status, 200, "{k}: {r:?}");
        assert_eq!(r.body["fields"]["last_name"], "Rossi");
    }
    let r = d.get(&format!("/v1/records/{id}"), "rm-expired").await;
    assert_eq!((r.status, r.code()), (401, "E_KEY_EXPIRED"), "{r:?}");
    assert!(
        r.body["detail"].as_str().unwrap().contains("expired at"),
        "{r:?}"
    );
    let r = d
        .post(
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "rm-expired",
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "E_KEY_EXPIRED"), "{r:?}");
    assert_eq!(
        d.get(&format!("/v1/records/{id}"), "admin").await.body["revision"],
        1
    );
    let _ = d.stop().await;
}

async fn auth_and_tenant_isolation(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let r = d
        .call(Method::GET, &format!("/v1/records/{id}"), None, None, &[])
        .await;
    assert_eq!((r.status, r.code()), (401, "E_UNAUTHORIZED"));
    let r = d.get(&format!("/v1/records/{id}"), "wrong").await;
    assert_eq!((r.status, r.code()), (401, "E_UNAUTHORIZED"));
    let r = d
        .call(
            Method::GET,
            &format!("/v1/records/{id}"),
            None,
            None,
            &[("authorization", "Basic YWRtaW4=")],
        )
        .await;
    assert_eq!(r.status, 401);
    // The other tenant's admin: 404, as for a record that does not exist.
    let r = d.get(&format!("/v1/records/{id}"), "other-admin").await;
    assert_eq!((r.status, r.code()), (404, "E_NOT_FOUND"));
    assert_eq!(
        r.body["detail"],
        d.get("/v1/records/987654", "other-admin").await.body["detail"]
    );
    let r = d
        .post(
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "other-admin",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = d.get("/v1/records", "other-admin").await;
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["id"] != id));
    // Another dealer: 404 too.
    let r = d.get(&format!("/v1/records/{id}"), "dealer-mi").await;
    assert_eq!(r.status, 404);
    let r = d
        .post(
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "dealer-mi",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
    // Admin-only endpoint.
    let r = d.get("/v1/workflows", "dealer-rm").await;
    assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"));
    let _ = d.stop().await;
}

async fn pii_redacted_by_role_and_state(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let path = format!("/v1/records/{id}");
    // The assignee in a reveal_in state sees phone and e-mail.
    let r = d.get(&path, "dealer-rm").await;
    assert_eq!(r.body["fields"]["phone"], "+39 06 1234567");
    assert!(r.body.get("redacted").is_none());
    // After closing, the same dealer no longer does; the admin always does.
    d.post(
        &format!("{path}/transitions/log_contact_attempt"),
        "dealer-rm",
        json!({}),
    )
    .await;
    let r = d
        .post(
            &format!("{path}/transitions/close_no_sale"),
            "dealer-rm",
            json!({"input": {"close_reason": "refused"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.get(&path, "dealer-rm").await;
    assert!(r.body["fields"].get("phone").is_none(), "{r:?}");
    assert_eq!(r.body["redacted"], json!(["email", "phone"]));
    let h = d.get(&format!("{path}/history"), "dealer-rm").await;
    let create = &h.body[0];
    assert_eq!(create["kind"], "create");
    let phone = create["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "phone")
        .unwrap();
    assert_eq!(
        (&phone["old"], &phone["new"]),
        (&json!("[redacted]"), &json!("[redacted]"))
    );
    assert!(create["input"].get("phone").is_none(), "{create}");
    assert!(create["redacted"]
        .as_array()
        .unwrap()
        .contains(&json!("phone")));
    assert!(!h.body.to_string().contains("1234567"), "{}", h.body);
    let r = d.get(&path, "admin").await;
    assert_eq!(r.body["fields"]["phone"], "+39 06 1234567");
    let h = d.get(&format!("{path}/history"), "admin").await;
    let create = &h.body[0];
    let phone = create["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "phone")
        .unwrap();
    assert_eq!(phone["new"], "+39 06 1234567");
    assert_eq!(create["input"]["phone"], "+39 06 1234567");
    assert!(create.get("redacted").is_none());
    let _ = d.stop().await;
}

async fn pool_visibility_and_claim(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.qp_lead().await.id();
    let path = format!("/v1/records/{id}");
    // In the pool: both Lazio installers see it, without contact details.
    for k in ["inst-a", "inst-b"] {
        let r = d.get(&path, k).await;
        assert_eq!(r.status, 200, "{k}");
        assert_eq!(r.body["fields"]["city"], "Roma");
        assert!(r.body["fields"].get("phone").is_none());
        assert_eq!(r.body["redacted"], json!(["street", "email", "phone"]));
        let l = d.get("/v1/records?workflow=qpartner", k).await;
        assert_eq!(l.body["items"].as_array().unwrap().len(), 1, "{k}");
    }
    // Lombardy does not.
    assert_eq!(d.get(&path, "inst-mi").await.status, 404);
    let l = d.get("/v1/records", "inst-mi").await;
    assert!(l.body["items"].as_array().unwrap().is_empty());
    let r = d
        .post(&format!("{path}/transitions/claim"), "inst-mi", json!({}))
        .await;
    assert_eq!(r.status, 404);
    // The pool offers the claim button.
    let a = d.get(&format!("{path}/actions"), "inst-b").await;
    let names: Vec<&str> = a
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["transition"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["claim"]);
    // inst-a claims: it sees the contact details; inst-b loses sight.
    let r = d
        .post(&format!("{path}/transitions/claim"), "inst-a", json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["state"], "claimed");
    assert_eq!(r.body["assignee"], "inst-a");
    assert_eq!(r.body["fields"]["phone"], "034114065515");
    assert_eq!(d.get(&path, "inst-b").await.status, 404);
    let r = d
        .post(&format!("{path}/transitions/claim"), "inst-b", json!({}))
        .await;
    assert_eq!(r.status, 404);
    let l = d.get("/v1/records", "inst-b").await;
    assert!(l.body["items"].as_array().unwrap().is_empty());
    // Issue 13, correction 8: the area's sales representative (the pool's
    // `followed_by`) still follows the claimed lead, in the record, the list
    // and the history, without its contact details (not his to reveal).
    let r = d.get(&path, "rep-rm").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["assignee"], "inst-a");
    assert!(r.body["fields"].get("phone").is_none());
    let l = d.get("/v1/records?workflow=qpartner", "rep-rm").await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 1);
    let h = d.get("/v1/history", "rep-rm").await;
    assert_eq!(h.status, 200, "{h:?}");
    assert!(!h.body["events"].as_array().unwrap().is_empty(), "{h:?}");
    let _ = d.stop().await;
}

async fn actions_history_links(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let a = d
        .get(&format!("/v1/records/{id}/actions"), "dealer-rm")
        .await;
    assert_eq!(a.status, 200);
    let list = a.body.as_array().unwrap();
    let appt = list
        .iter()
        .find(|x| x["transition"] == "make_appointment")
        .unwrap();
    assert_eq!(appt["to"], "appointment_set");
    let f = appt["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "appointment_at")
        .unwrap();
    assert_eq!(f["type"], "datetime");
    assert_eq!(f["required"], true);
    assert!(
        list.iter().all(|x| x["transition"] != "mark_lost"),
        "system-only transitions are not buttons"
    );
    // The hq admin may fire none of the dealer's buttons.
    let a = d.get(&format!("/v1/records/{id}/actions"), "admin").await;
    assert!(a
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["transition"] != "make_appointment"));

    d.post(
        &format!("/v1/records/{id}/transitions/log_contact_attempt"),
        "dealer-rm",
        json!({}),
    )
    .await;
    let h = d
        .get(&format!("/v1/records/{id}/history"), "dealer-rm")
        .await;
    assert_eq!(h.status, 200);
    let h = h.body.as_array().unwrap().clone();
    assert!(
        h[0]["kind"] == "create"
            && h[0]["changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["field"] == "first_name")
    );
    let attempt = h.last().unwrap();
    assert_eq!(
        (&attempt["kind"], &attempt["transition"], &attempt["actor"]),
        (
            &json!("transition"),
            &json!("log_contact_attempt"),
            &json!("dealer-rm")
        )
    );
    assert!(attempt["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "attempts"));
    let l = d.get(&format!("/v1/records/{id}/links"), "dealer-rm").await;
    assert_eq!((l.status, l.body.clone()), (200, json!([])));
    assert_eq!(
        d.get(&format!("/v1/records/{id}/history"), "dealer-mi")
            .await
            .status,
        404
    );
    assert_eq!(
        d.get(&format!("/v1/records/{id}/links"), "dealer-mi")
            .await
            .status,
        404
    );
    assert_eq!(
        d.get(&format!("/v1/records/{id}/actions"), "dealer-mi")
            .await
            .status,
        404
    );
    let _ = d.stop().await;
}

async fn list_filters_sort_and_keyset_pages(kind: Kind) {
    let d = Daemon::start(kind).await;
    let names = [
        "Verdi", "Bianchi", "Rossi", "Neri", "Bianchi", "Galli", "Conti",
    ];
    let mut ids = Vec::new();
    for n in names {
        ids.push(d.aslm_lead("admin", n).await.id());
    }
    // One in Milan, with no last name.
    let mi = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "aslm", "fields": {"first_name": "Ugo", "province": "MI"}}),
        )
        .await
        .id();
    d.post(
        &format!("/v1/records/{}/transitions/log_contact_attempt", ids[0]),
        "dealer-rm",
        json!({}),
    )
    .await;
    let r = d
        .post(
            &format!("/v1/records/{}/transitions/close_no_sale", ids[0]),
            "dealer-rm",
            json!({"input": {"close_reason": "refused"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let all_pages = |q: String, key: &'static str| {
        let d = &d;
        async move {
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let url = match &after {
                    Some(c) => format!("/v1/records?{q}&limit=3&after={c}"),
                    None => format!("/v1/records?{q}&limit=3"),
                };
                let r = d.get(&url, key).await;
                assert_eq!(r.status, 200, "{r:?}");
                assert_eq!(
                    r.body["has_more"],
                    json!(r.body["next"].is_string()),
                    "{r:?}"
                );
                for it in r.body["items"].as_array().unwrap() {
                    out.push((
                        it["id"].as_i64().unwrap(),
                        it["fields"]["last_name"].as_str().map(String::from),
                    ));
                }
                match r.body["next"].as_str() {
                    Some(c) => after = Some(c.to_string()),
                    None => break,
                }
            }
            out
        }
    };
    // Ascending by a field: missing first, then by name, ties by id.
    let asc = all_pages("workflow=aslm&sort=last_name".into(), "admin").await;
    let got: Vec<Option<&str>> = asc.iter().map(|x| x.1.as_deref()).collect();
    assert_eq!(
        got,
        [
            None,
            Some("Bianchi"),
            Some("Bianchi"),
            Some("Conti"),
            Some("Galli"),
            Some("Neri"),
            Some("Rossi"),
            Some("Verdi")
        ]
    );
    assert_eq!(asc[0].0, mi);
    assert!(asc[1].0 < asc[2].0);
    // Descending: missing last.
    let desc = all_pages("sort=-last_name".into(), "admin").await;
    let got: Vec<Option<&str>> = desc.iter().map(|x| x.1.as_deref()).collect();
    assert_eq!(got.first().unwrap().as_deref(), Some("Verdi"));
    assert_eq!(got.last().unwrap(), &None);
    assert!(desc[5].0 > desc[6].0, "ties by id, descending: {desc:?}");
    // By column, descending.
    let by_id = all_pages("sort=-id".into(), "admin").await;
    let mut expect: Vec<i64> = ids.iter().copied().chain([mi]).collect();
    expect.sort_by(|a, b| b.cmp(a));
    assert_eq!(by_id.iter().map(|x| x.0).collect::<Vec<_>>(), expect);
    let by_created = all_pages("sort=created_at".into(), "admin").await;
    assert_eq!(by_created.len(), 8);
    // Filters.
    let rm = all_pages("field.province=RM".into(), "admin").await;
    assert_eq!(rm.len(), 7);
    let closed = all_pages("state=closed_no_sale".into(), "admin").await;
    assert_eq!(closed.iter().map(|x| x.0).collect::<Vec<_>>(), [ids[0]]);
    let open = all_pages("state=assigned&assignee=dealer-rm&sort=id".into(), "admin").await;
    assert_eq!(open.len(), 6);
    let zero = all_pages("field.attempts=0&field.province=MI".into(), "admin").await;
    assert_eq!(zero.iter().map(|x| x.0).collect::<Vec<_>>(), [mi]);
    // A dealer lists only its own.
    let mine = all_pages("sort=id".into(), "dealer-mi").await;
    assert_eq!(mine.iter().map(|x| x.0).collect::<Vec<_>>(), [mi]);
    let _ = d.stop().await;
}

async fn list_refuses_pii_for_actors_and_seals_cursors(kind: Kind) {
    use base64::Engine as _;
    let d = Daemon::start(kind).await;
    for _ in 0..3 {
        d.qp_lead().await;
    }
    // A pool installer may neither sort nor filter on a PII field.
    for q in [
        "workflow=qpartner&sort=phone&limit=1",
        "workflow=qpartner&sort=-email",
        "field.phone=034114065515",
        "workflow=qpartner&field.street=Via%20Cialdini%2014&sort=city",
    ] {
        let r = d.get(&format!("/v1/records?{q}"), "inst-a").await;
        assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"), "{q}: {r:?}");
        assert!(r.body["detail"].as_str().unwrap().contains("PII"), "{r:?}");
    }
    // The admin may; its cursor shows no value.
    let r = d
        .get(
            "/v1/records?workflow=qpartner&sort=phone&limit=1",
            "qp-admin",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let next = r.body["next"].as_str().unwrap().to_string();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&next)
        .unwrap();
    let shown = String::from_utf8_lossy(&raw);
    assert!(!shown.contains("034114065515"), "{shown}");
    assert!(!raw.windows(4).any(|w| w == b"0341"), "{raw:?}");
    let page2 = d
        .get(
            &format!("/v1/records?workflow=qpartner&sort=phone&limit=1&after={next}"),
            "qp-admin",
        )
        .await;
    assert_eq!(page2.status, 200, "{page2:?}");
    assert_ne!(page2.body["items"][0]["id"], r.body["items"][0]["id"]);
    // Another limit is the same query.
    let r2 = d
        .get(
            &format!("/v1/records?workflow=qpartner&sort=phone&limit=5&after={next}"),
            "qp-admin",
        )
        .await;
    assert_eq!(r2.body["items"].as_array().unwrap().len(), 2, "{r2:?}");
    // A non-PII sort for the installer: allowed, the cursor opaque too.
    let r = d
        .get("/v1/records?workflow=qpartner&sort=city&limit=1", "inst-a")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let mine = r.body["next"].as_str().unwrap().to_string();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&mine)
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("Roma"));
    // Tampered, forged, from another query or another key: 400.
    let mut bytes = raw.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"[\"Roma\",1]");
    for (q, key) in [
        (
            format!("workflow=qpartner&sort=city&limit=1&after={tampered}"),
            "inst-a",
        ),
        (
            format!("workflow=qpartner&sort=city&limit=1&after={forged}"),
            "inst-a",
        ),
        (
            format!("workflow=qpartner&sort=-city&limit=1&after={mine}"),
            "inst-a",
        ),
        (
            format!("workflow=qpartner&sort=name&limit=1&after={mine}"),
            "inst-a",
        ),
        (
            format!("workflow=qpartner&sort=city&field.city=Roma&after={mine}"),
            "inst-a",
        ),
        (
            format!("workflow=qpartner&sort=city&limit=1&after={mine}"),
            "inst-b",
        ),
        (
            format!("workflow=qpartner&sort=phone&limit=1&after={mine}"),
            "qp-admin",
        ),
        ("after=%%%".to_string(), "inst-a"),
    ] {
        let r = d.get(&format!("/v1/records?{q}"), key).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "E_BAD_REQUEST"),
            "{q} {key}: {r:?}"
        );
    }
    let r = d
        .get(
            &format!("/v1/records?workflow=qpartner&sort=city&limit=1&after={mine}"),
            "inst-a",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let _ = d.stop().await;
}

async fn list_parameters_are_bounded(kind: Kind) {
    let d = Daemon::start(kind).await;
    d.aslm_lead("admin", "Rossi").await;
    let many: Vec<String> = (0..3000).map(|i| format!("field.f{i}=1")).collect();
    let long = "x".repeat(2000);
    let long_name = format!("field.{}=1", "n".repeat(200));
    let states = vec!["s"; 100].join(",");
    for q in [
        "workflow=aslm%00".to_string(),
        "state=assigned%00".to_string(),
        "assignee=%00".to_string(),
        "field.last_name=Ros%00si".to_string(),
        "field.last%00name=Rossi".to_string(),
        "sort=last%00name".to_string(),
        "sort=-%00".to_string(),
        "limit=1%00".to_string(),
        "after=%00".to_string(),
        "x%00=1".to_string(),
        "field.a%22b=1".to_string(),
        many.join("&"),
        format!("field.last_name={long}"),
        long_name,
        format!("state={states}"),
    ] {
        let r = d.get(&format!("/v1/records?{q}"), "admin").await;
        let shown = &q[..q.len().min(60)];
        assert_eq!(
            (r.status, r.code()),
            (400, "E_BAD_REQUEST"),
            "{shown}: {r:?}"
        );
    }
    // 20 filters (both spellings count), not 21.
    let mut twenty: Vec<String> = (0..19).map(|_| "filter=province:RM".to_string()).collect();
    twenty.push("field.province=RM".into());
    let r = d
        .get(&format!("/v1/records?{}", twenty.join("&")), "admin")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    twenty.push("filter=province:RM".into());
    let r = d
        .get(&format!("/v1/records?{}", twenty.join("&")), "admin")
        .await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    let _ = d.stop().await;
}

/// Random `GET /v1/records` query strings (known and unknown names, NUL,
/// quotes, numbers, cursors of other queries) never panic the daemon and
/// are never a 5xx, on both stores. Cases are drawn up front with proptest's
/// runner (no shrinking: the failing query is printed whole).
async fn random_list_queries_are_never_5xx(kind: Kind) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    let d = Daemon::start(kind).await;
    for n in ["Rossi", "Verdi", "Bianchi"] {
        d.aslm_lead("admin", n).await;
    }
    let first = d.get("/v1/records?sort=last_name&limit=1", "admin").await;
    let cursor = first.body["next"].as_str().unwrap().to_string();
    let name = prop_oneof![
        Just("workflow".to_string()),
        Just("state".to_string()),
        Just("assignee".to_string()),
        Just("sort".to_string()),
        Just("limit".to_string()),
        Just("after".to_string()),
        "field\\.[a-z_]{1,10}",
        "field\\.\\PC{0,6}",
        "\\PC{0,8}",
        ".{0,4}",
    ];
    let value = prop_oneof![
        "[a-z0-9_,+-]{0,16}",
        "-?(last_name|phone|id|created_at|province|revision|state)",
        "-?[0-9]{1,25}(\\.[0-9]{1,5})?",
        "\\PC{0,24}",
        ".{0,6}",
        Just("\0".to_string()),
        Just(cursor.clone()),
        Just("true".to_string()),
        Just("null".to_string()),
    ];
    let query = prop::collection::vec((name, value), 0..8);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let started = std::time::Instant::now();
    for _ in 0..150 {
        let pairs = query.new_tree(&mut runner).unwrap().current();
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("/v1/records?{}", q.join("&"));
        for key in ["admin", "dealer-rm"] {
            let r = d.get(&url, key).await;
            assert!(r.status < 500, "{key} {url}: {r:?}");
            if r.status != 200 {
                assert!(!r.code().is_empty(), "{key} {url}: {r:?}");
            }
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let _ = d.stop().await;
}

async fn actors_and_unavailability(kind: Kind) {
    let d = Daemon::start(kind).await;
    let r = d.get("/v1/actors", "admin").await;
    let ids: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dealer-mi", "dealer-rm"]);
    let r = d.get("/v1/actors", "dealer-rm").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = d.get("/v1/actors/dealer-rm", "dealer-rm").await;
    assert_eq!((r.status, r.body["role"].as_str()), (200, Some("dealer")));
    assert_eq!(d.get("/v1/actors/dealer-mi", "dealer-rm").await.status, 404);
    assert_eq!(d.get("/v1/actors/ghost", "admin").await.status, 404);

    let now = chrono::Utc::now();
    let period = json!([{"from": (now - chrono::Duration::hours(1)).to_rfc3339(), "until": (now + chrono::Duration::days(2)).to_rfc3339()}]);
    let r = d
        .call(
            Method::PUT,
            "/v1/actors/dealer-rm/unavailability",
            Some("dealer-rm"),
            Some(period.clone()),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.get("/v1/actors/dealer-rm/unavailability", "admin").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // Another dealer may not change it; a reversed period is a 400.
    let r = d
        .call(
            Method::PUT,
            "/v1/actors/dealer-rm/unavailability",
            Some("dealer-mi"),
            Some(period),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    let bad = json!([{"from": now.to_rfc3339(), "until": (now - chrono::Duration::hours(1)).to_rfc3339()}]);
    let r = d
        .call(
            Method::PUT,
            "/v1/actors/dealer-rm/unavailability",
            Some("admin"),
            Some(bad),
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"));
    let r = d
        .call(
            Method::PUT,
            "/v1/actors/dealer-rm/unavailability",
            Some("admin"),
            Some(json!({"from": 1})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
    // While unavailable, the Rome dealer receives no new lead.
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "aslm", "fields": {"first_name": "Eva", "province": "RM"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_ne!(r.body["assignee"], "dealer-rm");
    // Cleared again.
    let r = d
        .call(
            Method::PUT,
            "/v1/actors/dealer-rm/unavailability",
            Some("admin"),
            Some(json!([])),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    let r = d.aslm_lead("admin", "Lupi").await;
    assert_eq!(r.body["assignee"], "dealer-rm");
    let _ = d.stop().await;
}

async fn workflows_openapi_and_operations(kind: Kind) {
    // The metrics token comes from the variable the config names.
    let var = format!("LF_TEST_METRICS_TOKEN_{kind:?}").to_uppercase();
    std::env::set_var(&var, "scrape-me");
    let mut cfg = http_support::test_config(&http_support::repo());
    cfg.metrics_token_env = Some(var);
    let d = Daemon::start_config(http_support::Db::new(kind), cfg, false).await;
    let w = d.get("/v1/workflows", "admin").await;
    assert_eq!(w.status, 200);
    assert_eq!(w.body["ok"], true);
    let wf = &w.body["workflows"][0];
    assert_eq!(wf["id"], "aslm");
    assert_eq!(wf["versions"][0]["current"], true);
    assert_eq!(wf["current"], wf["versions"][0]["hash"]);

    let o = d.call(Method::GET, "/openapi.json", None, None, &[]).await;
    assert_eq!(o.status, 200);
    assert!(o.body["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/records",
        "/v1/records/{id}",
        "/v1/records/{id}/transitions/{transition}",
        "/v1/records/{id}/actions",
        "/v1/records/{id}/history",
        "/v1/records/{id}/links",
        "/v1/history",
        "/v1/actors",
        "/v1/actors/{id}/unavailability",
        "/v1/workflows",
    ] {
        assert!(
            o.body["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    // Every status the server gives for a missing key or a malformed path
    // is documented on the operation (a generated client knows them).
    for (path, item) in o.body["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let body = (m != Method::GET).then(|| json!({}));
            let concrete = path.replace("{id}", "1").replace("{transition}", "t");
            let r = d.call(m.clone(), &concrete, None, body.clone(), &[]).await;
            assert_eq!(r.status, 401, "{method} {path} without a key");
            let documented = &op["responses"];
            assert!(
                documented.get("401").is_some(),
                "{method} {path}: 401 undocumented"
            );
            assert!(
                documented.get("500").is_some(),
                "{method} {path}: 500 undocumented"
            );
            if path.starts_with("/v1/records/{id}") {
                let bad = path
                    .replace("{id}", "not-a-number")
                    .replace("{transition}", "t");
                let r = d.call(m, &bad, Some("admin"), body, &[]).await;
                assert_eq!(
                    (r.status, r.body["code"].as_str()),
                    (400, Some("E_BAD_REQUEST")),
                    "{method} {bad}"
                );
                assert!(
                    documented.get("400").is_some(),
                    "{method} {path}: 400 undocumented"
                );
            }
        }
    }
    let h = d.call(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(h.status, 200);
    let h = d.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.body, json!({ "status": "ready" }));

    let id = d.aslm_lead("admin", "Rossi").await.id();
    d.post(
        &format!("/v1/records/{id}/transitions/log_contact_attempt"),
        "dealer-rm",
        json!({}),
    )
    .await;
    d.post(
        &format!("/v1/records/{id}/transitions/close_sale"),
        "dealer-rm",
        json!({}),
    )
    .await;
    // Tenant, workflow and transition names are not for anonymous callers
    // nor for a tenant's admin key: only for the metrics token.
    for key in [None, Some("admin")] {
        let m = d.call(Method::GET, "/metrics", key, None, &[]).await;
        assert_eq!((m.status, m.code()), (401, "E_UNAUTHORIZED"), "{key:?}");
        assert!(!m.text.contains("aslm"));
    }
    let m = d
        .call(
            Method::GET,
            "/metrics",
            None,
            None,
            &[("authorization", "Bearer scrape-me")],
        )
        .await;
    assert_eq!(m.status, 200);
    for s in [
        "leadflow_transitions_total{",
        "leadflow_refusals_total{code=\"E_REQUIRED\"}",
        "leadflow_http_request_duration_seconds_bucket{",
        "leadflow_timer_lag_seconds{tenant=\"aslm\"}",
        "leadflow_outbox_backlog{tenant=\"aslm\"}",
    ] {
        assert!(m.text.contains(s), "{s} missing from:\n{}", m.text);
    }
    let _ = d.stop().await;
}

/// A database outage is `503 E_UNAVAILABLE` with `Retry-After`, never a 500,
/// and the daemon recovers by itself once connections can be made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_is_503_with_retry_after() {
    let d = Daemon::start(Kind::Pg).await;
    let id = d.aslm_lead("admin", "Outage").await.id();
    assert_eq!(
        d.get(&format!("/v1/records/{id}"), "admin").await.status,
        200
    );
    // Every connection of the daemon's pool dies, as in a server restart.
    // A background task may take the first dead connection; kill again
    // until a request meets one.
    let name = d.db.url.rsplit('/').next().unwrap().to_string();
    let mut statuses = Vec::new();
    let mut saw_503 = false;
    for _ in 0..5 {
        http_support::psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}'"
        ));
        for _ in 0..40 {
            let r = d.get(&format!("/v1/records/{id}"), "admin").await;
            statuses.push(r.status);
            if r.status == 503 {
                assert_eq!(r.code(), "E_UNAVAILABLE", "{}", r.text);
                assert_eq!(r.header("retry-after"), "1");
                saw_503 = true;
            }
            if r.status == 200 {
                break;
            }
        }
        if saw_503 {
            break;
        }
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(saw_503, "the dead connections answer 503: {statuses:?}");
    assert_eq!(statuses.last(), Some(&200), "recovered: {statuses:?}");
    d.stop().await;
}

/// A timer item parked by the worker (here: one failure with a retry
/// policy of one attempt, through the store's own `fail`) shows on
/// `GET /v1/timers/parked` (admin only), in `/metrics` and in an admin's
/// `/readyz`; a retry gives it back. A background task in a restart loop
/// makes `/readyz` 503, with the tenant's detail only for its admin.
async fn parked_timers_and_background_task_liveness(kind: Kind) {
    use leadflow_runtime::any::AnyBackend;
    use leadflow_runtime::worker::Retry;
    // /metrics answers only the metrics token (docs/security.md).
    let var = format!("LF_TEST_PARKED_METRICS_TOKEN_{kind:?}").to_uppercase();
    std::env::set_var(&var, "scrape-parked");
    let mut cfg = http_support::test_config(&http_support::repo());
    cfg.metrics_token_env = Some(var);
    let d = Daemon::start_config(http_support::Db::new(kind), cfg, false).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let server = d.server.as_ref().unwrap();
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::days(3650);
    let once = Retry {
        max_attempts: 1,
        ..Retry::default()
    };
    let (timer, parked) = match &server.state.tenants["aslm"].backend {
        AnyBackend::Sqlite(b) => {
            let items = b.claim("test", later, now, later, 1).await.unwrap();
            let f = b.fail(&items[0], "boom", now, &once).await.unwrap();
            (items[0].timer.clone(), f.unwrap().parked)
        }
        AnyBackend::Pg(b) => {
            let items = b.claim("test", later, now, later, 1).await.unwrap();
            let f = b.fail(&items[0], "boom", now, &once).await.unwrap();
            (items[0].timer.clone(), f.unwrap().parked)
        }
        AnyBackend::Mem(_) => unreachable!(),
    };
    assert!(parked);

    let r = d.get("/v1/timers/parked", "admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            &r.body[0]["record"],
            &r.body[0]["timer"],
            &r.body[0]["attempts"],
            &r.body[0]["last_error"]
        ),
        (&json!(id), &json!(timer), &json!(1), &json!("boom"))
    );
    assert_eq!(
        d.get("/v1/timers/parked", "dealer-rm").await.code(),
        "E_FORBIDDEN"
    );
    let other = d.get("/v1/timers/parked", "other-admin").await;
    assert_eq!(other.body, json!([]), "another tenant sees none of it");
    let m = d
        .call(
            Method::GET,
            "/metrics",
            None,
            None,
            &[("authorization", "Bearer scrape-parked")],
        )
        .await;
    assert!(
        m.text.contains("leadflow_timers_parked{tenant=\"aslm\"} 1"),
        "{}",
        m.text
    );
    let ready = d.get("/readyz", "admin").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["parked_timers"], 1);
    let tasks = ready.body["tasks"].as_array().unwrap();
    assert_eq!(
        tasks.len(),
        4,
        "the timer worker, the outbox dispatcher, the report scheduler, the search backfill"
    );
    for task in ["report_scheduler", "search_backfill"] {
        assert!(tasks.iter().any(|t| t["task"] == task), "{task}: {tasks:?}");
    }
    assert!(tasks
        .iter()
        .all(|t| t["state"] == "running" && t["tenant"] == "aslm"));

    let retry = format!("/v1/timers/parked/{id}/{timer}/retry");
    assert_eq!(d.post(&retry, "dealer-rm", json!({})).await.status, 403);
    assert_eq!(d.post(&retry, "admin", json!({})).await.status, 204);
    assert_eq!(
        d.post(&retry, "admin", json!({})).await.code(),
        "E_NOT_FOUND"
    );
    assert_eq!(d.get("/v1/timers/parked", "admin").await.body, json!([]));

    // A task panicking in a loop: not ready; anonymous callers learn no names.
    let policy = leadflow_runtime::background::Restart::default();
    let h = leadflow_runtime::background::Health::new("timer_worker", "qpartner", &policy);
    for _ in 0..3 {
        h.panicked("timer_worker", "injected");
    }
    server.state.tasks.add(h);
    let anon = d.call(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!((anon.status, anon.code()), (503, "E_NOT_READY"));
    assert!(!anon.text.contains("qpartner") && anon.body.get("tasks").is_none());
    let qp = d.get("/readyz", "qp-admin").await;
    assert_eq!(qp.status, 503);
    assert!(qp.body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["state"] == "restart_loop" && t["last_panic"] == "injected"));
    let aslm = d.get("/readyz", "admin").await;
    assert!(!aslm.text.contains("qpartner"), "{}", aslm.text);
    d.stop().await;
}

both!(out_of_range_dates_are_refusals_and_the_daemon_keeps_serving);

/// The shipped example config (five tenants), with the callcenter and
/// socrate admin keys set to `<name>-key` for the test client.
fn example_config() -> leadflow_runtime::config::Config {
    use leadflow_runtime::config::{hash_key, Config};
    let dir = http_support::repo().join("examples");
    let text = std::fs::read_to_string(dir.join("leadflow.toml")).unwrap();
    let mut cfg = Config::parse(&text, "examples/leadflow.toml", &dir).unwrap();
    cfg.listen = "127.0.0.1:0".into();
    for (tenant, key) in [("callcenter", "cc-admin"), ("socrate", "soc-admin")] {
        let k = cfg.tenants.get_mut(tenant).unwrap();
        let k = k.keys.iter_mut().find(|k| k.name == key).unwrap();
        k.sha256 = hash_key(&format!("{key}-key"));
    }
    cfg
}

/// Issue 10, item 1: date arithmetic out of chrono's range used to panic
/// (an empty reply on create, a 500 on a transition, and a dead writer
/// task for the tenant). Now: 422 with a stable code and the value named,
/// and the tenant goes on serving creates and transitions.
async fn out_of_range_dates_are_refusals_and_the_daemon_keeps_serving(kind: Kind) {
    let d = Daemon::start_config(http_support::Db::new(kind), example_config(), false).await;

    // A date at chrono's last day, whose timer adds a day to it.
    let r = d
        .post(
            "/v1/records",
            "cc-admin",
            json!({"workflow": "cc_task", "fields": {"kind": "permits", "due_date": "+262142-12-31"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "E_TYPE"), "{r:?}");
    let m = r.body["detail"].as_str().unwrap();
    assert!(m.contains("due_date") && m.contains("+262142-12-31"), "{m}");
    let ok = d
        .post(
            "/v1/records",
            "cc-admin",
            json!({"workflow": "cc_task", "fields": {"kind": "permits", "due_date": "2026-12-31"}}),
        )
        .await;
    assert_eq!(ok.status, 201, "{ok:?}");

    // A recurrence interval whose `days(n)` no duration can hold, through
    // a transition (the tenant's group-commit writer).
    let opp = d
        .post(
            "/v1/records",
            "soc-admin",
            json!({"workflow": "soc_opportunity", "fields": {"opp_no": "OP-1", "name": "Service contract"}}),
        )
        .await;
    assert_eq!(opp.status, 201, "{opp:?}");
    let path = format!("/v1/records/{}/transitions/generate_recurring", opp.id());
    let r = d
        .post(
            &path,
            "soc-admin",
            json!({"input": {"recurrence_count": 1, "recurrence_interval_days": 1_000_000_000_000_i64,
                             "completion_date": "2026-01-01"}}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "E_SCRIPT"), "{r:?}");
    let m = r.body["detail"].as_str().unwrap();
    assert!(m.contains("days(1000000000000) is out of range"), "{m}");
    // The same tenant still commits transitions and creates.
    let r = d
        .post(
            &path,
            "soc-admin",
            json!({"input": {"recurrence_count": 1, "recurrence_interval_days": 30,
                             "completion_date": "2026-01-01"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let again = d
        .post(
            "/v1/records",
            "soc-admin",
            json!({"workflow": "soc_opportunity", "fields": {"opp_no": "OP-2", "name": "Next"}}),
        )
        .await;
    assert_eq!(again.status, 201, "{again:?}");
    let _ = d.stop().await;
}

/// Without `metrics_token_env`, /metrics is refused (it would list tenant,
/// workflow and transition names to anyone); /readyz tells anonymous
/// callers only ready or not, and names the tenant whose database is down
/// only to that tenant's admin key.
async fn metrics_off_and_readyz_anonymous(kind: Kind) {
    let d = Daemon::start(kind).await;
    let m = d.call(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!((m.status, m.code()), (403, "E_METRICS_DISABLED"));
    let m = d
        .call(Method::GET, "/metrics", Some("admin"), None, &[])
        .await;
    assert_eq!((m.status, m.code()), (403, "E_METRICS_DISABLED"));
    if kind == Kind::Pg {
        // The database goes away under the daemon.
        d.db.cut_off();
        let h = d.call(Method::GET, "/readyz", None, None, &[]).await;
        assert_eq!(h.status, 503);
        assert_eq!(h.body["detail"], "a database is unreachable", "{h:?}");
        for t in ["aslm", "qpartner", "other"] {
            assert!(!h.text.contains(t), "{h:?}");
        }
        // The admin key of the first tenant checked learns it is theirs.
        let h = d
            .call(Method::GET, "/readyz", Some("admin"), None, &[])
            .await;
        assert_eq!(h.status, 503);
        assert_eq!(h.body["detail"], "tenant aslm: database unreachable");
        let h = d
            .call(Method::GET, "/readyz", Some("qp-admin"), None, &[])
            .await;
        assert_eq!(h.body["detail"], "a database is unreachable");
        d.db.restore();
    }
    let _ = d.stop().await;
}

/// Every request by an admin key that changes something is in the tenant's
/// audit (refused ones too, with their status); reads and actor keys are
/// not; `GET /v1/audit` pages it for that tenant's admin keys only.
async fn admin_actions_are_audited(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Audit").await.id();
    let refused = d
        .post(
            &format!("/v1/records/{id}/transitions/no_such_transition"),
            "admin",
            json!({}),
        )
        .await;
    assert!(refused.status >= 400, "{refused:?}");
    let put = d
        .call(
            Method::PUT,
            "/v1/actors/dealer-rm/unavailability",
            Some("admin"),
            Some(json!([])),
            &[],
        )
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    // Not audited: reads, and actor keys.
    d.get(&format!("/v1/records/{id}"), "admin").await;
    d.aslm_lead("dealer-rm", "Dealer").await;

    let p1 = d.get("/v1/audit?limit=2", "admin").await;
    assert_eq!(p1.status, 200, "{p1:?}");
    let e = p1.body["entries"].as_array().unwrap();
    assert_eq!(e.len(), 2, "{p1:?}");
    assert_eq!(
        (
            &e[0]["key"],
            &e[0]["method"],
            &e[0]["path"],
            &e[0]["status"],
            &e[0]["record"]
        ),
        (
            &json!("admin"),
            &json!("POST"),
            &json!("/v1/records"),
            &json!(201),
            &json!(id)
        ),
    );
    assert_eq!(e[1]["record"], json!(id));
    assert_eq!(e[1]["status"], json!(refused.status));
    assert!(e[0]["at"].is_string());
    let next = p1.body["next"].as_i64().expect("a next page");
    let p2 = d
        .get(&format!("/v1/audit?limit=2&after={next}"), "admin")
        .await;
    let e = p2.body["entries"].as_array().unwrap();
    assert_eq!(e.len(), 1, "{p2:?}");
    assert_eq!(
        (
            &e[0]["method"],
            &e[0]["path"],
            &e[0]["status"],
            &e[0]["record"]
        ),
        (
            &json!("PUT"),
            &json!("/v1/actors/dealer-rm/unavailability"),
            &json!(200),
            &json!(null)
        ),
    );
    assert!(p2.body.get("next").is_none(), "{p2:?}");
    // Admin keys only, and each tenant its own.
    let r = d.get("/v1/audit", "dealer-rm").await;
    assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"));
    let r = d.get("/v1/audit", "other-admin").await;
    assert_eq!(r.body["entries"], json!([]), "{r:?}");
    let r = d.get("/v1/audit?limit=0", "admin").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"));
    let _ = d.stop().await;
}

/// `filter=name:value` (what generated clients send for the declared array
/// parameter) and its alias `field.<name>=value`; `state` as an array or a
/// comma list; unknown parameters and field names are 400 naming them;
/// a cursor only continues its own query, however its parameters are
/// ordered or spelled.
async fn list_filter_syntax_unknown_fields_and_cursor_binding(kind: Kind) {
    let d = Daemon::start(kind).await;
    let mut ids = Vec::new();
    for n in ["Rossi", "Verdi", "Bianchi", "Neri"] {
        ids.push(d.aslm_lead("admin", n).await.id());
    }
    let mi = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "aslm", "fields": {"first_name": "Ugo", "province": "MI"}}),
        )
        .await
        .id();
    d.post(
        &format!("/v1/records/{}/transitions/log_contact_attempt", ids[0]),
        "dealer-rm",
        json!({}),
    )
    .await;
    let r = d
        .post(
            &format!("/v1/records/{}/transitions/close_no_sale", ids[0]),
            "dealer-rm",
            json!({"input": {"close_reason": "refused"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let list = |q: &str| {
        let d = &d;
        let q = q.to_string();
        async move { d.get(&format!("/v1/records?{q}"), "admin").await }
    };
    let ids_of = |r: &http_support::Resp| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    // The two spellings of a filter are one query.
    let a = list("filter=province:RM&sort=id").await;
    let b = list("field.province=RM&sort=id").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(ids_of(&a), ids);
    assert_eq!(ids_of(&a), ids_of(&b));
    // A value holding `:` is split at the first one; numbers match as JSON.
    let r = list("filter=province:MI&filter=attempts:0").await;
    assert_eq!(ids_of(&r), [mi]);
    let r = list("filter=last_name:Ros:si").await;
    assert_eq!((r.status, ids_of(&r).len()), (200, 0));
    // States as an array, as a comma list, or both.
    for q in [
        "state=assigned&state=closed_no_sale",
        "state=assigned,closed_no_sale",
        "state=closed_no_sale&state=assigned,assigned",
    ] {
        let r = list(q).await;
        assert_eq!(ids_of(&r).len(), 5, "{q}: {r:?}");
    }
    assert_eq!(ids_of(&list("state=closed_no_sale").await), [ids[0]]);
    // Unknown names are refused and named, never an empty page.
    for (q, name) in [
        ("filter=provnce:RM", "provnce"),
        ("field.provnce=RM", "provnce"),
        ("sort=-provnce", "provnce"),
        ("workflow=aslm&filter=area:IT-LAZIO", "area"),
    ] {
        let r = list(q).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q}: {r:?}");
        assert_eq!(r.body["field"], name, "{q}: {r:?}");
        assert!(r.body["message"].as_str().unwrap().contains(name), "{r:?}");
    }
    for q in [
        "filter=province",
        "filter=:RM",
        "colour=red",
        "field.=1",
        "sort=id&sort=state",
        "limit=2&limit=3",
        "workflow=aslm&workflow=qpartner",
    ] {
        let r = list(q).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q}: {r:?}");
    }
    // Pages say whether more follow.
    let p1 = list("sort=-id&limit=2").await;
    assert_eq!(p1.body["has_more"], true, "{p1:?}");
    let cursor = p1.body["next"].as_str().unwrap().to_string();
    let last = list(&format!("sort=-id&limit=10&after={cursor}")).await;
    assert_eq!(
        (&last.body["has_more"], &last.body["next"]),
        (&json!(false), &json!(null))
    );
    assert_eq!(ids_of(&last).len(), 3);
    // A cursor of `sort=-id` continues `sort=-id` only: another sort, a
    // filter added, another state: 400.
    for q in [
        format!("sort=state&after={cursor}"),
        format!("sort=id&after={cursor}"),
        format!("sort=-id&filter=province:RM&after={cursor}"),
        format!("sort=-id&state=assigned&after={cursor}"),
    ] {
        let r = list(&q).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q}: {r:?}");
    }
    // The same query written otherwise continues.
    let p1 = list(
        "state=assigned&state=closed_no_sale&filter=province:RM&filter=attempts:0&sort=-id&limit=1",
    )
    .await;
    let c = p1.body["next"].as_str().unwrap().to_string();
    let p2 = list(&format!(
        "field.attempts=0&sort=-id&state=closed_no_sale,assigned&field.province=RM&limit=1&after={c}"
    ))
    .await;
    assert_eq!(p2.status, 200, "{p2:?}");
    assert_eq!(ids_of(&p2), [ids[ids.len() - 2]]);
    let _ = d.stop().await;
}

/// `GET /v1/workflows/{id}/schema`: the JSON Schema of a version's fields,
/// create body and transition inputs, typed from the declarations; any
/// key reads it; the ETag is the version hash.
async fn workflow_schema_types_fields_and_inputs(kind: Kind) {
    let d = Daemon::start(kind).await;
    let rec = d.aslm_lead("admin", "Rossi").await;
    let version = rec.body["version"].as_str().unwrap().to_string();
    let s = d.get("/v1/workflows/aslm/schema", "dealer-rm").await;
    assert_eq!(s.status, 200, "{s:?}");
    assert_eq!(s.header("etag"), format!("\"{version}\""));
    assert_eq!(
        (&s.body["version"], &s.body["current"]),
        (&json!(version), &json!(true))
    );
    let fields = &s.body["fields"];
    assert_eq!(
        fields["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(fields["additionalProperties"], false);
    let p = &fields["properties"];
    assert_eq!(p["attempts"]["type"], json!(["integer", "null"]));
    assert_eq!(p["assigned_at"]["format"], "date-time");
    assert_eq!(p["phone"]["x-pii"], true);
    assert_eq!(
        p["phone"]["x-reveal-in"],
        json!(["assigned", "appointment_set"])
    );
    assert!(p["province"].get("x-pii").is_none());
    assert!(p["close_reason"]["enum"]
        .as_array()
        .unwrap()
        .contains(&json!("refused")));
    assert_eq!(p["contact_attempts"]["type"], json!(["array", "null"]));
    // The record's fields are all declared, with the declared JSON types.
    for (name, v) in rec.body["fields"].as_object().unwrap() {
        let decl = &p[name];
        assert!(decl.is_object(), "{name} undeclared");
        let ty = match v {
            serde_json::Value::String(_) => "string",
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::Number(_) => "integer",
            serde_json::Value::Array(_) => "array",
            _ => continue,
        };
        if let Some(types) = decl["type"].as_array() {
            assert!(types.contains(&json!(ty)), "{name}: {v} is not {decl}");
        }
    }
    assert_eq!(s.body["create"]["required"], json!(["first_name"]));
    let close = &s.body["transitions"]["close_sale"];
    assert_eq!(close["to"], "closed_sale");
    assert_eq!(close["input"]["x-require"], json!(["vin"]));
    assert_eq!(close["input"]["additionalProperties"], false);
    let vin = &close["input"]["properties"]["vin"];
    assert_eq!(vin["pattern"], "^(?:[A-HJ-NPR-Z0-9]{17})$");
    // A default applies at creation, not to a transition's input.
    assert_eq!(p["send_email"]["default"], false);
    let appointment = &s.body["transitions"]["make_appointment"]["input"]["properties"];
    assert!(appointment["send_email"].get("default").is_none());
    assert_eq!(appointment["appointment_at"]["format"], "date-time");
    // By version; unknown workflow, version or parameter.
    let v = d
        .get(
            &format!("/v1/workflows/aslm/schema?version={version}"),
            "admin",
        )
        .await;
    assert_eq!(v.body, s.body);
    let r = d.get("/v1/workflows/nope/schema", "admin").await;
    assert_eq!((r.status, r.code()), (404, "E_UNKNOWN_WORKFLOW"), "{r:?}");
    let r = d
        .get("/v1/workflows/aslm/schema?version=0000", "admin")
        .await;
    assert_eq!((r.status, r.code()), (404, "E_NOT_FOUND"), "{r:?}");
    let r = d.get("/v1/workflows/aslm/schema?v=1", "admin").await;
    assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{r:?}");
    // Another tenant's workflow is unknown here.
    let r = d.get("/v1/workflows/qpartner/schema", "admin").await;
    assert_eq!((r.status, r.code()), (404, "E_UNKNOWN_WORKFLOW"), "{r:?}");
    let _ = d.stop().await;
}

/// Every instant the API returns is RFC 3339 UTC with microseconds, the
/// same in the create answer and in later reads (date-time field values
/// too); field values are scalars or lists of scalars.
async fn timestamps_have_one_precision_and_values_are_typed(kind: Kind) {
    let d = Daemon::start(kind).await;
    let micros = |v: &serde_json::Value| {
        let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
        let b = s.as_bytes();
        assert_eq!(b.len(), 27, "{s}");
        assert!(s.ends_with('Z') && b[19] == b'.', "{s}");
        assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{s}");
    };
    let c = d.aslm_lead("admin", "Rossi").await;
    let id = c.id();
    let g = d.get(&format!("/v1/records/{id}"), "admin").await;
    for k in ["created_at", "entered_at", "updated_at"] {
        micros(&c.body[k]);
        assert_eq!(c.body[k], g.body[k], "{k}");
    }
    micros(&g.body["fields"]["assigned_at"]);
    assert_eq!(c.body["fields"], g.body["fields"]);
    // A date-time given with an offset reads back in UTC, microseconds;
    // a filter with the value read back finds the record.
    let f = d
        .post(
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    micros(&f.body["fields"]["first_contact_attempt_at"]);
    let f = d
        .post(
            &format!("/v1/records/{id}/transitions/make_appointment"),
            "dealer-rm",
            json!({"input": {"appointment_at": "2030-01-02T10:00:00+01:00"}}),
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    assert_eq!(
        f.body["fields"]["appointment_at"],
        "2030-01-02T09:00:00.000000Z"
    );
    let l = d
        .get(
            "/v1/records?filter=appointment_at:2030-01-02T09:00:00.000000Z",
            "admin",
        )
        .await;
    assert_eq!(l.body["items"][0]["id"], id, "{l:?}");
    micros(&l.body["items"][0]["updated_at"]);
    let h = d.get(&format!("/v1/records/{id}/history"), "admin").await;
    for e in h.body.as_array().unwrap() {
        micros(&e["at"]);
        if e["field"] == "appointment_at" {
            assert_eq!(e["new"], "2030-01-02T09:00:00.000000Z");
        }
    }
    let a = d.get("/v1/audit", "admin").await;
    micros(&a.body["entries"][0]["at"]);
    let w = d.get("/v1/workflows", "admin").await;
    micros(&w.body["checked_at"]);
    // Objects and nested lists are no field value: 422 E_TYPE, naming it.
    for (path, body, field) in [
        (
            "/v1/records".to_string(),
            json!({"workflow": "aslm", "fields": {"first_name": {"x": 1}}}),
            "first_name",
        ),
        (
            "/v1/records".to_string(),
            json!({"workflow": "aslm", "fields": {"first_name": "A", "contact_attempts": [["a"]]}}),
            "contact_attempts",
        ),
        (
            format!("/v1/records/{id}/transitions/log_contact_attempt"),
            json!({"input": {"note": {}}}),
            "note",
        ),
    ] {
        let r = d.post(&path, "admin", body).await;
        assert_eq!((r.status, r.code()), (422, "E_TYPE"), "{path}: {r:?}");
        assert_eq!(r.body["field"], field);
    }
    let _ = d.stop().await;
}
