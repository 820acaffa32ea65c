//! Work queues over HTTP (issue 13), on a fresh SQLite file, a fresh
//! PostgreSQL database and the memory store (the same rules): `GET /v1/queues` lists what the caller may pull
//! from; `POST .../next` gives each operator a record of its own zone's
//! pool only, shown exactly as `GET /v1/records/{id}` shows it (PII
//! redacted), the same record again to the same operator, never one
//! another operator holds; a transition releases it, `DELETE .../lease`
//! gives it back; a closed, empty, unknown or unservable queue answers its
//! code; 20 operators pulling at once never get the same record.

use crate::http_support;

use chrono::Timelike;
use http_support::{Daemon, Db, Kind};
use leadflow_runtime::config::{hash_key, Config};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

both!(
    operators_pull_what_they_may_see_one_each,
    twenty_operators_never_share
);

/// The memory store serves queues as the SQL stores do (it answered 501
/// `E_UNSUPPORTED` before).
mod memory {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn operators_pull_what_they_may_see_one_each() {
        super::operators_pull_what_they_may_see_one_each(crate::http_support::Kind::Mem).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn twenty_operators_never_share() {
        super::twenty_operators_never_share(crate::http_support::Kind::Mem).await
    }
}

const CALLS: &str = r#"
[workflow]
id = "calls"
initial = "new"
roles = ["operator", "supervisor"]

[fields.name]
type = "string"
[fields.phone]
type = "string"
pii = true
reveal_in = ["new", "open"]
[fields.zone]
type = "string"
indexed = true
[fields.callback_at]
type = "datetime"
indexed = true
[fields.attempts]
type = "int"
default = 0

[states.new]
[states.open]
[states.done]
final = true

[transitions.log_call]
from = ["new", "open"]
to = "open"
by = ["operator"]
input = ["callback_at"]
do = [{ set = "attempts", expr = "lead.attempts + 1" }]

[transitions.finish]
from = ["new", "open"]
to = "done"
by = ["operator"]

[queues.next]
title = "Next call"
order = ["due:callback_at", "created_at"]
by = ["operator"]
max_attempts = { field = "attempts", max = 3 }
lease = "5m"

[queues.night]
by = ["operator"]
calling_hours = "WINDOW"

[queues.odd]
filter = "lead.name.len() > 2"
"#;

/// A window of one hour that does not hold now (UTC: the workflow has no
/// calendar), two hours ahead.
fn closed_window() -> String {
    let h = (chrono::Utc::now().hour() + 2) % 24;
    match h {
        23 => "23:00-24:00".to_string(),
        h => format!("{h:02}:00-{:02}:00", h + 1),
    }
}

fn config(root: &Path, operators: &[(&str, &str)]) -> Config {
    let mut t = format!(
        "listen = \"127.0.0.1:0\"\n[tenants.cc]\nroot = \"{}\"\nworkflows = [\"calls\"]\n\
         [[tenants.cc.pools]]\nworkflow = \"calls\"\nstates = [\"new\", \"open\"]\nzone_field = \"zone\"\n\
         [[tenants.cc.keys]]\nname = \"admin\"\nsha256 = \"{}\"\n",
        root.display(),
        hash_key("admin-key")
    );
    for (id, body) in operators {
        t.push_str(&format!(
            "[tenants.cc.actors.{id}]\n{body}\n[[tenants.cc.keys]]\nname = \"{id}\"\nsha256 = \"{}\"\nactor = \"{id}\"\n",
            hash_key(&format!("{id}-key"))
        ));
    }
    Config::parse(&t, "test.toml", Path::new("/")).unwrap()
}

async fn start(kind: Kind, operators: &[(&str, &str)]) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("workflows")).unwrap();
    std::fs::write(
        dir.path().join("workflows/calls.toml"),
        CALLS.replace("WINDOW", &closed_window()),
    )
    .unwrap();
    let d = Daemon::start_config(Db::new(kind), config(dir.path(), operators), false).await;
    (d, dir)
}

async fn lead(d: &Daemon, name: &str, zone: &str) -> i64 {
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "calls", "fields": {"name": name, "zone": zone, "phone": "+39 347 1234567"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.id()
}

async fn pull(d: &Daemon, key: &str, queue: &str) -> http_support::Resp {
    d.post(&format!("/v1/queues/calls/{queue}/next"), key, json!({}))
        .await
}

async fn pulled(d: &Daemon, key: &str) -> i64 {
    let r = pull(d, key, "next").await;
    assert_eq!(r.status, 200, "{key}: {r:?}");
    r.id()
}

fn without_lease(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("lease_expires_at");
    o.remove("again");
    v
}

async fn operators_pull_what_they_may_see_one_each(kind: Kind) {
    let ops = [
        ("rm1", "role = \"operator\"\nzones = [\"RM\"]"),
        ("rm2", "role = \"operator\"\nzones = [\"RM\"]"),
        ("rm3", "role = \"operator\"\nzones = [\"RM\"]"),
        ("mi1", "role = \"operator\"\nzones = [\"MI\"]"),
        ("mi2", "role = \"operator\"\nzones = [\"MI\"]"),
        ("sv", "role = \"supervisor\"\nzones = [\"RM\", \"MI\"]"),
    ];
    let (d, _dir) = start(kind, &ops).await;
    let r1 = lead(&d, "Uno", "RM").await;
    let r2 = lead(&d, "Due", "RM").await;
    let r3 = lead(&d, "Tre", "RM").await;
    let m1 = lead(&d, "Milano", "MI").await;

    // What each caller may pull from.
    let l = d.get("/v1/queues", "rm1").await;
    assert_eq!(l.status, 200, "{l:?}");
    let next = &l.body["items"][0];
    assert_eq!(next["name"], "next");
    assert_eq!(next["href"], "/v1/queues/calls/next/next");
    assert_eq!(next["order"], json!(["due:callback_at", "created_at"]));
    assert_eq!(next["lease_seconds"], 300);
    assert_eq!(next["max_attempts"], json!({"field": "attempts", "max": 3}));
    assert_eq!(l.body["items"][1]["open"], false, "{l:?}");
    let sv: Vec<Value> = d.get("/v1/queues", "sv").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].clone())
        .collect();
    assert_eq!(sv, [json!("odd")], "`by` leaves the supervisor out");
    let r = pull(&d, "sv", "next").await;
    assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"), "{r:?}");

    // The oldest record of the operator's zone, as GET shows it to it.
    let r = pull(&d, "rm1", "next").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!((r.id(), &r.body["again"]), (r1, &json!(false)));
    assert!(r.body["lease_expires_at"].as_str().is_some(), "{r:?}");
    let g = d.get(&format!("/v1/records/{r1}"), "rm1").await;
    assert_eq!(without_lease(r.body.clone()), g.body);
    assert!(r.body["fields"].get("phone").is_none(), "pii: {r:?}");
    assert_eq!(r.body["redacted"], json!(["phone"]));
    // Asked again: the same record, the same lease.
    let again = pull(&d, "rm1", "next").await;
    assert_eq!((again.id(), &again.body["again"]), (r1, &json!(true)));
    assert_eq!(again.body["lease_expires_at"], r.body["lease_expires_at"]);
    // Another operator of the zone gets the next one; Milan's its own.
    assert_eq!(pulled(&d, "rm2").await, r2);
    assert_eq!(pulled(&d, "mi1").await, m1);
    let r = pull(&d, "mi2", "next").await;
    assert_eq!((r.status, r.code()), (404, "E_QUEUE_EMPTY"), "{r:?}");

    // The call is logged: the lease ends, the record is free again.
    let f = d
        .post(
            &format!("/v1/records/{r1}/transitions/log_call"),
            "rm1",
            json!({}),
        )
        .await;
    assert_eq!(f.status, 200, "{f:?}");
    assert_eq!(pulled(&d, "rm3").await, r1);
    assert_eq!(pulled(&d, "rm1").await, r3);
    // Given back, and pulled by another.
    let del = |key: &'static str| {
        let d = &d;
        async move {
            d.call(
                Method::DELETE,
                "/v1/queues/calls/next/lease",
                Some(key),
                None,
                &[],
            )
            .await
        }
    };
    let g = del("rm1").await;
    assert_eq!(
        (g.status, &g.body),
        (200, &json!({"released": r3})),
        "{g:?}"
    );
    assert_eq!(del("rm1").await.body, json!({"released": null}));
    let r = pull(&d, "rm1", "next").await;
    assert_eq!(r.id(), r3, "given back, it is free for anyone: {r:?}");

    // Codes.
    let r = pull(&d, "rm1", "night").await;
    assert_eq!((r.status, r.code()), (404, "E_QUEUE_CLOSED"), "{r:?}");
    let r = pull(&d, "rm1", "odd").await;
    assert_eq!((r.status, r.code()), (422, "E_QUEUE_FILTER"), "{r:?}");
    let r = pull(&d, "rm1", "nope").await;
    assert_eq!((r.status, r.code()), (404, "E_QUEUE_NOT_FOUND"), "{r:?}");
    let r = d.post("/v1/queues/nope/next/next", "rm1", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "E_QUEUE_NOT_FOUND"), "{r:?}");
}

async fn twenty_operators_never_share(kind: Kind) {
    let names: Vec<String> = (0..20).map(|i| format!("op{i}")).collect();
    let ops: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), "role = \"operator\"\nzones = [\"RM\"]"))
        .collect();
    let (d, _dir) = start(kind, &ops).await;
    let mut made = BTreeSet::new();
    for i in 0..30 {
        made.insert(lead(&d, &format!("L{i}"), "RM").await);
    }
    let d = std::sync::Arc::new(d);
    let mut tasks = Vec::new();
    for n in names.clone() {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let r = pull(&d, &n, "next").await;
            assert_eq!(r.status, 200, "{n}: {r:?}");
            r.id()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    let unique: BTreeSet<i64> = got.iter().copied().collect();
    assert_eq!(unique.len(), 20, "a record went to two operators: {got:?}");
    assert!(unique.is_subset(&made));
    // The 10 left, then nothing, for one operator giving back each time.
    let mut rest = BTreeSet::new();
    for _ in 0..10 {
        let r = pull(&d, "op0", "next").await;
        assert_eq!(r.status, 200, "{r:?}");
        let id = r.id();
        assert!(
            !unique.contains(&id) || id == got[0],
            "{id} is held by another"
        );
        let f = d
            .post(
                &format!("/v1/records/{id}/transitions/finish"),
                "op0",
                json!({}),
            )
            .await;
        assert_eq!(f.status, 200, "{f:?}");
        rest.insert(id);
    }
    assert_eq!(rest.len(), 10);
}
