//! The organisation through the HTTP API, on a fresh SQLite file and a
//! fresh PostgreSQL database: a team's supervisor (and the supervisor's own
//! manager) sees the leads of the operators it manages in `GET /v1/records`,
//! `GET /v1/records/{id}`, `GET /v1/history` and a record's history, contact
//! data included (`cc_lead`: `visible_to`/`reveal_to = ["assignee.manager"]`);
//! another team's supervisor and the team's other operators see none of
//! them; the supervisor moves an absent operator's lead (`move_to_operator`)
//! and the old holder loses it. A config whose managers go round in a circle
//! does not start.

use crate::http_support;

use http_support::{repo, Daemon, Db, Kind};
use leadflow_runtime::config::{hash_key, Config};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

const ACTORS: &[(&str, &str)] = &[
    (
        "op-a1",
        "role = \"operator\"\nzones = [\"RM\"]\nteam = \"centro-a\"",
    ),
    (
        "op-a2",
        "role = \"operator\"\nzones = [\"LT\"]\nteam = \"centro-a\"",
    ),
    (
        "op-b1",
        "role = \"operator\"\nzones = [\"NA\"]\nteam = \"sud-b\"",
    ),
    (
        "sv-a",
        "role = \"supervisor\"\nmanages = [\"centro-a\"]\nreports_to = \"head\"",
    ),
    (
        "sv-b",
        "role = \"supervisor\"\nmanages = [\"sud-b\"]\nreports_to = \"head\"",
    ),
    ("head", "role = \"supervisor\""),
    (
        "ag-rm",
        "role = \"agent\"\nzones = [\"RM\", \"LT\", \"NA\"]",
    ),
];

fn config_text(actors: &[(&str, &str)]) -> String {
    let mut t = format!(
        "listen = \"127.0.0.1:0\"\n[tenants.cc]\nroot = \"{}\"\nworkflows = [\"cc_lead\", \"cc_opportunity\", \"cc_project\", \"cc_task\", \"cc_ticket\"]\n[[tenants.cc.keys]]\nname = \"admin\"\nsha256 = \"{}\"\n",
        repo().display(),
        hash_key("admin-key")
    );
    for (id, body) in actors {
        t.push_str(&format!(
            "[tenants.cc.actors.{id}]\n{body}\n[[tenants.cc.keys]]\nname = \"{id}\"\nsha256 = \"{}\"\nactor = \"{id}\"\n",
            hash_key(&format!("{id}-key"))
        ));
    }
    t
}

fn config(actors: &[(&str, &str)]) -> Config {
    Config::parse(&config_text(actors), "test.toml", Path::new("/")).unwrap()
}

async fn lead(d: &Daemon, name: &str, province: &str, phone: &str) -> i64 {
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "cc_lead", "fields": {"first_name": name, "province": province, "phone": phone}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["id"].as_i64().unwrap()
}

async fn listed(d: &Daemon, key: &str) -> BTreeSet<i64> {
    let r = d.get("/v1/records?workflow=cc_lead&limit=100", key).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

async fn history_records(d: &Daemon, key: &str) -> BTreeSet<i64> {
    let r = d.get("/v1/history?workflow=cc_lead&limit=500", key).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["record"].as_i64().unwrap())
        .collect()
}

fn set(ids: &[i64]) -> BTreeSet<i64> {
    ids.iter().copied().collect()
}

async fn supervisors_see_and_move_their_teams_leads(kind: Kind) {
    let d = Daemon::start_config(Db::new(kind), config(ACTORS), false).await;
    let l1 = lead(&d, "Mario", "RM", "+39 333 1111111").await;
    let l2 = lead(&d, "Luigi", "LT", "+39 333 2222222").await;
    let l3 = lead(&d, "Gennaro", "NA", "+39 333 3333333").await;
    let r = d.get(&format!("/v1/records/{l1}"), "admin").await;
    assert_eq!(r.body["assignee"], "op-a1", "{r:?}");

    // Lists: each sees its own, the supervisors their teams', the head all.
    assert_eq!(listed(&d, "op-a1").await, set(&[l1]));
    assert_eq!(listed(&d, "op-a2").await, set(&[l2]));
    assert_eq!(listed(&d, "sv-a").await, set(&[l1, l2]));
    assert_eq!(listed(&d, "sv-b").await, set(&[l3]));
    assert_eq!(listed(&d, "head").await, set(&[l1, l2, l3]));
    assert_eq!(listed(&d, "ag-rm").await, set(&[]));

    // The record: the supervisor sees the phone, another team's gets 404.
    let r = d.get(&format!("/v1/records/{l1}"), "sv-a").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["fields"]["phone"], "+39 333 1111111", "{r:?}");
    for k in ["sv-b", "op-a2", "ag-rm"] {
        let r = d.get(&format!("/v1/records/{l1}"), k).await;
        assert_eq!(r.status, 404, "{k}: {r:?}");
    }
    // The list shows the supervisor the phone too.
    let r = d
        .get("/v1/records?workflow=cc_lead&limit=100", "sv-a")
        .await;
    let phones: Vec<&Value> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["fields"]["phone"])
        .collect();
    assert!(phones.iter().all(|p| p.is_string()), "{r:?}");

    // The audit query: the events of the records each may see.
    assert_eq!(history_records(&d, "sv-a").await, set(&[l1, l2]));
    assert_eq!(history_records(&d, "sv-b").await, set(&[l3]));
    assert_eq!(history_records(&d, "op-a1").await, set(&[l1]));

    // The actions: the supervisor may move the lead, the operator may not.
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["transition"].as_str().unwrap().to_string())
            .collect()
    };
    let r = d.get(&format!("/v1/records/{l1}/actions"), "sv-a").await;
    assert!(
        names(&r.body).contains(&"move_to_operator".to_string()),
        "{r:?}"
    );
    let r = d.get(&format!("/v1/records/{l1}/actions"), "op-a1").await;
    assert!(
        !names(&r.body).contains(&"move_to_operator".to_string()),
        "{r:?}"
    );

    // Another team's supervisor cannot even reach it; the operator is refused.
    let mv = |to: &str| json!({"input": {"operator": to, "notes": "op-a1 in ferie"}});
    let path = format!("/v1/records/{l1}/transitions/move_to_operator");
    let r = d.post(&path, "sv-b", mv("op-b1")).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = d.post(&path, "op-a1", mv("op-a2")).await;
    assert_eq!(r.body["code"], "E_FORBIDDEN", "{r:?}");
    let r = d.post(&path, "sv-a", mv("op-a2")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["assignee"], "op-a2", "{r:?}");

    // The old holder loses it, the new one has it, the history says who.
    let r = d.get(&format!("/v1/records/{l1}"), "op-a1").await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(listed(&d, "op-a2").await, set(&[l1, l2]));
    assert_eq!(listed(&d, "op-a1").await, set(&[]));
    let r = d.get(&format!("/v1/records/{l1}/history"), "sv-a").await;
    assert_eq!(r.status, 200, "{r:?}");
    let text = r.body.to_string();
    assert!(
        text.contains("\"move_to_operator\"") && text.contains("\"sv-a\""),
        "{text}"
    );
    d.stop().await;
}

#[tokio::test]
async fn supervisors_see_and_move_their_teams_leads_on_sqlite() {
    supervisors_see_and_move_their_teams_leads(Kind::Sqlite).await;
}

#[tokio::test]
async fn supervisors_see_and_move_their_teams_leads_on_postgres() {
    supervisors_see_and_move_their_teams_leads(Kind::Pg).await;
}

#[test]
fn managers_in_a_circle_or_unknown_do_not_start() {
    let circle = [
        ("a", "role = \"supervisor\"\nreports_to = \"b\""),
        ("b", "role = \"supervisor\"\nteam = \"t\""),
        (
            "c",
            "role = \"supervisor\"\nmanages = [\"t\"]\nreports_to = \"a\"",
        ),
    ];
    let e = Config::parse(&config_text(&circle), "test.toml", Path::new("/")).unwrap_err();
    assert_eq!(e.code(), "E_ORG_CYCLE", "{e}");
    assert!(e.to_string().contains("a -> "), "{e}");
    let unknown = [("a", "role = \"operator\"\nreports_to = \"nobody\"")];
    let e = Config::parse(&config_text(&unknown), "test.toml", Path::new("/")).unwrap_err();
    assert_eq!(e.code(), "E_ORG_UNKNOWN_ACTOR", "{e}");
}
