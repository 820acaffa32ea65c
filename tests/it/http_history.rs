//! History and audit over HTTP (docs/api.md, "History and audit"): one
//! event per create, transition (with or without field changes) and timer
//! firing, PII redaction of inputs and changes, and the tenant-wide audit
//! query with its sealed, filter-bound cursor and actor visibility. On a
//! fresh SQLite file and a fresh PostgreSQL database per test.

use crate::http_support;

use http_support::{Daemon, Db, Kind};
use leadflow_runtime::config::{hash_key, Config};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

both!(
    events_of_creates_transitions_and_timers,
    pii_in_inputs_and_changes_is_redacted_for_a_dealer,
    audit_pages_with_a_cursor_bound_to_its_filters,
    actor_keys_see_only_events_of_records_they_see,
);

/// A deal goes to the dealer it names; `win` changes no field; a quote
/// expires at the instant given with it (a timer firing `expire`).
const DEAL: &str = r#"
[workflow]
id = "deal"
initial = "new"

[fields.name]
type = "string"
required = true
[fields.dealer]
type = "actor"
[fields.phone]
type = "string"
pii = true
reveal_in = ["new"]
[fields.amount]
type = "int"
[fields.quote_until]
type = "datetime"
[fields.zone]
type = "string"
[fields.area]
type = "int"

[states.new]
on_enter = [{ assign = "dealer", filter = "actor.id == lead.dealer" }]
[states.quote_sent]
[states.won]
final = true
[states.expired]
final = true

[transitions.send_quote]
from = ["new"]
to = "quote_sent"
by = ["dealer"]
input = ["amount", "quote_until", "phone"]
require = ["amount", "quote_until"]

[transitions.win]
from = ["quote_sent"]
to = "won"
by = ["dealer"]

[transitions.expire]
from = ["quote_sent"]
to = "expired"
by = ["system"]

[timers.quote_expiry]
in = ["quote_sent"]
at = "lead.quote_until"
fire = "expire"
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["workflows", "rules", "calendars"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("workflows/deal.toml"), DEAL).unwrap();
    dir
}

fn config(root: &Path) -> Config {
    let k = |n: &str| hash_key(&format!("{n}-key"));
    let text = format!(
        r#"
listen = "127.0.0.1:0"

[tenants.deals]
root = "{}"
workflows = ["deal"]
[[tenants.deals.pools]]
workflow = "deal"
states = ["new"]
zone_field = "zone"
[[tenants.deals.pools]]
workflow = "deal"
states = ["new"]
zone_field = "area"
[tenants.deals.actors.dealer-a]
role = "dealer"
zones = ["RM"]
[tenants.deals.actors.dealer-b]
role = "dealer"
zones = ["5"]
[[tenants.deals.keys]]
name = "admin"
sha256 = "{}"
role = "hq"
[[tenants.deals.keys]]
name = "dealer-a"
sha256 = "{}"
actor = "dealer-a"
[[tenants.deals.keys]]
name = "dealer-b"
sha256 = "{}"
actor = "dealer-b"
"#,
        root.display(),
        k("admin"),
        k("dealer-a"),
        k("dealer-b"),
    );
    Config::parse(&text, "test.toml", Path::new("/")).unwrap()
}

async fn start(kind: Kind) -> (Daemon, tempfile::TempDir) {
    let root = project();
    let d = Daemon::start_config(Db::new(kind), config(root.path()), false).await;
    (d, root)
}

/// A deal for `dealer`, created by the admin key.
async fn deal(d: &Daemon, dealer: &str, name: &str) -> i64 {
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "deal", "fields": {"name": name, "dealer": dealer, "phone": "+39 06 5550123"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.id()
}

async fn fire(d: &Daemon, id: i64, t: &str, key: &str, input: Value) {
    let r = d
        .post(
            &format!("/v1/records/{id}/transitions/{t}"),
            key,
            json!({ "input": input }),
        )
        .await;
    assert_eq!(r.status, 200, "{t}: {r:?}");
}

async fn history(d: &Daemon, id: i64, key: &str) -> Vec<Value> {
    let r = d.get(&format!("/v1/records/{id}/history"), key).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body.as_array().unwrap().clone()
}

fn in_a_day() -> String {
    (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339()
}

/// (kind, actor, transition, from, to, revision)
fn shape(e: &Value) -> Value {
    json!([
        e["kind"],
        e["actor"],
        e["transition"],
        e["from"],
        e["to"],
        e["revision"]
    ])
}

async fn events_of_creates_transitions_and_timers(kind: Kind) {
    let (d, _root) = start(kind).await;
    let id = deal(&d, "dealer-a", "Rossi").await;
    fire(
        &d,
        id,
        "send_quote",
        "dealer-a",
        json!({"amount": 1200, "quote_until": in_a_day()}),
    )
    .await;
    fire(&d, id, "win", "dealer-a", json!({})).await;
    let h = history(&d, id, "admin").await;
    assert_eq!(
        h.iter().map(shape).collect::<Vec<_>>(),
        vec![
            json!(["create", "admin", null, null, "new", 1]),
            json!([
                "transition",
                "dealer-a",
                "send_quote",
                "new",
                "quote_sent",
                2
            ]),
            json!(["transition", "dealer-a", "win", "quote_sent", "won", 3]),
        ]
    );
    assert!(h
        .iter()
        .all(|e| e["record"] == id && e["workflow"] == "deal"));
    assert_eq!(h[0]["assignee"], "dealer-a");
    assert_eq!(h[0]["input"]["name"], "Rossi");
    assert_eq!(h[1]["input"]["amount"], 1200);
    assert!(h[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == &json!({"field": "amount", "old": null, "new": 1200})));
    // `win` changed no field: its event is there all the same.
    assert_eq!(
        (&h[2]["input"], &h[2]["changes"]),
        (&Value::Null, &json!([]))
    );

    // A quote that expires in a second: the timer fires `expire`.
    let t = deal(&d, "dealer-a", "Bianchi").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    fire(
        &d,
        t,
        "send_quote",
        "dealer-a",
        json!({"amount": 900, "quote_until": soon}),
    )
    .await;
    let mut h = Vec::new();
    for _ in 0..100 {
        h = history(&d, t, "admin").await;
        if h.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.last().map(shape),
        Some(json!([
            "timer",
            "timer:quote_expiry",
            "expire",
            "quote_sent",
            "expired",
            3
        ])),
        "{h:?}"
    );
    let _ = d.stop().await;
}

async fn pii_in_inputs_and_changes_is_redacted_for_a_dealer(kind: Kind) {
    let (d, _root) = start(kind).await;
    let id = deal(&d, "dealer-a", "Verdi").await;
    // In `new` the assignee sees the phone, in its input and its change.
    let h = history(&d, id, "dealer-a").await;
    assert_eq!(h[0]["input"]["phone"], "+39 06 5550123");
    assert!(h[0].get("redacted").is_none(), "{}", h[0]);
    // A new phone given with the quote; from `quote_sent` on it is hidden.
    fire(
        &d,
        id,
        "send_quote",
        "dealer-a",
        json!({"amount": 10, "quote_until": in_a_day(), "phone": "+39 02 5550999"}),
    )
    .await;
    let h = history(&d, id, "dealer-a").await;
    let text = serde_json::to_string(&h).unwrap();
    assert!(
        !text.contains("5550123") && !text.contains("5550999"),
        "{text}"
    );
    for e in &h {
        assert!(e["input"].get("phone").is_none(), "{e}");
        assert_eq!(e["redacted"], json!(["phone"]), "{e}");
        let phone = e["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == "phone")
            .unwrap();
        assert_eq!(
            (&phone["old"], &phone["new"]),
            (&json!("[redacted]"), &json!("[redacted]")),
            "an empty old value is hidden too"
        );
    }
    assert_eq!(h[1]["input"]["amount"], 10, "other input stays");
    // The admin sees every value.
    let h = history(&d, id, "admin").await;
    assert_eq!(h[1]["input"]["phone"], "+39 02 5550999");
    assert_eq!(
        h[1]["changes"][0],
        json!({"field": "phone", "old": "+39 06 5550123", "new": "+39 02 5550999"}),
        "changes in field order"
    );
    // The audit query redacts the same way.
    let a = d.get("/v1/history", "dealer-a").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(!a.text.contains("5550"), "{}", a.text);
    assert!(d.get("/v1/history", "admin").await.text.contains("5550999"));
    let _ = d.stop().await;
}

/// Every page of the audit query for `query` (`after` added), as `key`.
async fn all_pages(d: &Daemon, query: &str, key: &str) -> (Vec<Value>, usize) {
    let mut events = Vec::new();
    let mut pages = 0;
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(c) => format!("/v1/history?{query}&after={c}"),
            None => format!("/v1/history?{query}"),
        };
        let r = d.get(&url, key).await;
        assert_eq!(r.status, 200, "{r:?}");
        pages += 1;
        events.extend(r.body["events"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(c) => {
                assert_eq!(r.body["has_more"], true);
                after = Some(c.to_string());
            }
            None => {
                assert_eq!(r.body["has_more"], false);
                return (events, pages);
            }
        }
    }
}

async fn audit_pages_with_a_cursor_bound_to_its_filters(kind: Kind) {
    let (d, _root) = start(kind).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = deal(&d, "dealer-a", &format!("D{n}")).await;
        fire(
            &d,
            id,
            "send_quote",
            "dealer-a",
            json!({"amount": n, "quote_until": in_a_day()}),
        )
        .await;
        ids.push(id);
    }
    fire(&d, ids[1], "win", "dealer-a", json!({})).await;
    // 7 events, 2 a page: 4 pages, in (at, record, revision) order, each
    // event once, the same as the records' own histories.
    let (events, pages) = all_pages(&d, "limit=2", "admin").await;
    assert_eq!((events.len(), pages), (7, 4));
    let keys: Vec<(String, i64, i64)> = events
        .iter()
        .map(|e| {
            (
                e["at"].as_str().unwrap().to_string(),
                e["record"].as_i64().unwrap(),
                e["revision"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        (t(&a.0), a.1, a.2).cmp(&(t(&b.0), b.1, b.2))
    });
    assert_eq!(keys, sorted);
    let mut per_record = Vec::new();
    for &id in &ids {
        per_record.extend(history(&d, id, "admin").await);
    }
    let mut a = events.clone();
    let mut b = per_record;
    let by = |e: &Value| (e["record"].as_i64(), e["revision"].as_i64());
    a.sort_by_key(by);
    b.sort_by_key(by);
    assert_eq!(
        a, b,
        "the audit shows each event as the record's history does"
    );
    // Filters.
    let (won, _) = all_pages(&d, "transition=win", "admin").await;
    assert_eq!(won.len(), 1);
    assert_eq!(
        (&won[0]["record"], &won[0]["to"]),
        (&json!(ids[1]), &json!("won"))
    );
    let (creates, _) = all_pages(&d, "kind=create&workflow=deal&actor=admin", "admin").await;
    assert_eq!(creates.len(), 3);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let q = format!("since={}", urlencode(&future));
    assert!(all_pages(&d, &q, "admin").await.0.is_empty());
    let q = format!("until={}", urlencode(&future));
    assert_eq!(all_pages(&d, &q, "admin").await.0.len(), 7);

    // A cursor serves only its own query and key (the limit may change).
    let first = d.get("/v1/history?limit=1&workflow=deal", "admin").await;
    let next = first.body["next"].as_str().unwrap().to_string();
    let ok = d
        .get(
            &format!("/v1/history?limit=3&workflow=deal&after={next}"),
            "admin",
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["events"][0]["revision"], 2);
    for (q, key) in [
        (
            format!("limit=1&workflow=deal&kind=create&after={next}"),
            "admin",
        ),
        (format!("limit=1&after={next}"), "admin"),
        (format!("limit=1&workflow=deal&after={next}"), "dealer-a"),
        (
            "limit=1&workflow=deal&after=not-a-cursor".to_string(),
            "admin",
        ),
    ] {
        let r = d.get(&format!("/v1/history?{q}"), key).await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q} as {key}");
    }
    for q in [
        "since=yesterday",
        "kind=party",
        "limit=0",
        "limit=501",
        "sort=at",
    ] {
        let r = d.get(&format!("/v1/history?{q}"), "admin").await;
        assert_eq!((r.status, r.code()), (400, "E_BAD_REQUEST"), "{q}");
    }
    assert_eq!(
        d.call(reqwest::Method::GET, "/v1/history", None, None, &[])
            .await
            .status,
        401
    );
    let _ = d.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn actor_keys_see_only_events_of_records_they_see(kind: Kind) {
    let (d, _root) = start(kind).await;
    let a = deal(&d, "dealer-a", "Mine").await;
    let b = deal(&d, "dealer-b", "Theirs").await;
    fire(
        &d,
        b,
        "send_quote",
        "dealer-b",
        json!({"amount": 5, "quote_until": in_a_day()}),
    )
    .await;
    let records = |events: &[Value]| {
        let mut r: Vec<i64> = events
            .iter()
            .map(|e| e["record"].as_i64().unwrap())
            .collect();
        r.dedup();
        r
    };
    let (seen, _) = all_pages(&d, "limit=1", "dealer-a").await;
    assert_eq!(records(&seen), [a]);
    let (seen, _) = all_pages(&d, "limit=1", "dealer-b").await;
    assert_eq!(records(&seen), [b]);
    assert_eq!(seen.len(), 2);
    // Filters cannot reach another dealer's records either.
    let (seen, _) = all_pages(&d, "actor=dealer-b", "dealer-a").await;
    assert!(seen.is_empty());
    assert_eq!(
        d.get(&format!("/v1/records/{b}/history"), "dealer-a")
            .await
            .status,
        404
    );
    // A deal for nobody in Rome sits in the pool dealer-a claims from: its
    // events are visible to dealer-a (the phone redacted), not to dealer-b.
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "deal", "fields": {"name": "Pool", "zone": "RM", "phone": "+39 06 5550777"}}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["assignee"]),
        (201, &Value::Null),
        "{r:?}"
    );
    let pool = r.id();
    let (seen, _) = all_pages(&d, "", "dealer-a").await;
    assert_eq!(records(&seen), [a, pool]);
    assert!(!serde_json::to_string(&seen).unwrap().contains("5550777"));
    let (seen, _) = all_pages(&d, "", "dealer-b").await;
    assert_eq!(records(&seen), [b]);
    // Zones match strings only: the number 5 in the pool's `area` is not
    // dealer-b's zone "5", in the audit query, the list and the record.
    let r = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "deal", "fields": {"name": "Area", "area": 5}}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let area = r.id();
    let (seen, _) = all_pages(&d, "", "dealer-b").await;
    assert_eq!(records(&seen), [b]);
    let list = d.get("/v1/records", "dealer-b").await;
    let ids: Vec<i64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [b], "{list:?}");
    assert_eq!(
        d.get(&format!("/v1/records/{area}"), "dealer-b")
            .await
            .status,
        404
    );
    let (all, _) = all_pages(&d, "", "admin").await;
    assert_eq!(all.len(), 5);
    let _ = d.stop().await;
}
