//! "Why not?" over HTTP: `GET /v1/records/{id}/transitions/{name}/check`
//! explains every reason a transition is refused now, `actions` lists the
//! disabled transitions with their reasons on request, and the record view
//! shows its armed timers with their due instants. Against a real daemon
//! on SQLite and PostgreSQL.

use crate::http_support;

use http_support::{Daemon, Kind};

both!(
    why_not_lists_every_reason,
    actions_include_disabled_and_record_timers
);

fn codes(body: &serde_json::Value) -> Vec<String> {
    body["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn why_not_lists_every_reason(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    let path = format!("/v1/records/{id}/transitions/close_sale/check");
    // The dealer: the VIN is missing and no contact attempt was logged;
    // both reasons at once, the guard's clause with the rule's message.
    let w = d.get(&path, "dealer-rm").await;
    assert_eq!(w.status, 200, "{w:?}");
    assert_eq!(w.body["allowed"], false);
    assert_eq!(w.body["state"], "assigned");
    assert_eq!(codes(&w.body), ["E_REQUIRED", "E_GUARD"], "{:#}", w.body);
    assert_eq!(w.body["reasons"][0]["field"], "vin");
    let clause = &w.body["guard"][0];
    assert_eq!(clause["source"], "rules::can_close_sale(lead)");
    assert_eq!(clause["result"], "threw");
    assert_eq!(clause["message"], "log at least one contact attempt first");
    // The hq admin may not fire it at all: the role too.
    let w = d.get(&path, "admin").await;
    assert_eq!(
        codes(&w.body),
        ["E_FORBIDDEN", "E_REQUIRED", "E_GUARD"],
        "{:#}",
        w.body
    );
    // After a contact attempt the rule asks for the next thing (notes, as
    // there is no appointment); firing answers only the first reason
    // (E_REQUIRED), and the dry runs changed nothing.
    let f = d
        .post(
            &format!("/v1/records/{id}/transitions/log_contact_attempt"),
            "dealer-rm",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    let w = d.get(&path, "dealer-rm").await;
    assert_eq!(codes(&w.body), ["E_REQUIRED", "E_GUARD"], "{:#}", w.body);
    assert_eq!(
        w.body["guard"][0]["message"],
        "closing with sale without an appointment requires notes"
    );
    let fire = d
        .post(
            &format!("/v1/records/{id}/transitions/close_sale"),
            "dealer-rm",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(fire.code(), "E_REQUIRED");
    let g = d.get(&format!("/v1/records/{id}"), "dealer-rm").await;
    assert_eq!(g.body["revision"], 2, "the checks changed nothing");
    // A transition the workflow lacks is explained, not an error; a record
    // the caller may not see is 404, as everywhere.
    let w = d
        .get(
            &format!("/v1/records/{id}/transitions/fly/check"),
            "dealer-rm",
        )
        .await;
    assert_eq!(w.status, 200);
    assert_eq!(codes(&w.body), ["E_UNKNOWN_TRANSITION"]);
    let hidden = d.get(&path, "dealer-mi").await;
    assert_eq!(hidden.status, 404, "{hidden:?}");
    assert_eq!(hidden.code(), "E_NOT_FOUND");
}

async fn actions_include_disabled_and_record_timers(kind: Kind) {
    let d = Daemon::start(kind).await;
    let id = d.aslm_lead("admin", "Rossi").await.id();
    // Without the parameter: the buttons only, as before.
    let a = d
        .get(&format!("/v1/records/{id}/actions"), "dealer-rm")
        .await;
    let plain = a.body.as_array().unwrap().clone();
    assert!(plain
        .iter()
        .all(|x| x.get("enabled").is_none() && x.get("reasons").is_none()));
    assert!(plain.iter().all(|x| x["transition"] != "mark_lost"));
    let a = d
        .get(
            &format!("/v1/records/{id}/actions?include_disabled=true"),
            "dealer-rm",
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let all = a.body.as_array().unwrap();
    let find = |t: &str| {
        all.iter()
            .find(|x| x["transition"] == t)
            .unwrap_or_else(|| panic!("{t} missing"))
    };
    // A button refused for missing input stays enabled (as in the plain
    // list); its reasons still tell all: the input and the guard.
    let close = find("close_sale");
    assert_eq!(close["enabled"], true);
    assert_eq!(codes(close), ["E_REQUIRED", "E_GUARD"], "{close:#}");
    let lost = find("mark_lost");
    assert_eq!(lost["enabled"], false);
    assert!(codes(lost).contains(&"E_FORBIDDEN".to_string()), "{lost:#}");
    let attempt = find("log_contact_attempt");
    assert_eq!(attempt["enabled"], true);
    assert_eq!(
        all.iter().filter(|x| x["enabled"] == true).count(),
        plain.len(),
        "the enabled ones are the buttons"
    );
    let bad = d
        .get(
            &format!("/v1/records/{id}/actions?include_disabled=maybe"),
            "dealer-rm",
        )
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    let bad = d
        .get(&format!("/v1/records/{id}/actions?bogus=1"), "dealer-rm")
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    // The record view: the 60-day timer armed on creation, with its due
    // instant (60 days after the assignment).
    let g = d.get(&format!("/v1/records/{id}"), "dealer-rm").await;
    let timers = g.body["timers"].as_array().expect("timers").clone();
    assert_eq!(timers.len(), 1, "{:#}", g.body);
    assert_eq!(timers[0]["timer"], "lost_after_assignment");
    let due = chrono::DateTime::parse_from_rfc3339(timers[0]["due"].as_str().unwrap()).unwrap();
    let assigned =
        chrono::DateTime::parse_from_rfc3339(g.body["fields"]["assigned_at"].as_str().unwrap())
            .unwrap();
    assert_eq!(due - assigned, chrono::Duration::days(60));
    // Lists and fire answers leave timers out.
    let l = d.get("/v1/records?workflow=aslm", "dealer-rm").await;
    assert!(l.body["items"][0].get("timers").is_none());
}
