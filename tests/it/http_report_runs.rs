//! Scheduled report runs over HTTP (docs/api.md, "Scheduled report runs"):
//! the Oplead billing and open-leads reminder run by the daemon's scheduler
//! code for the quarters that ended, listed newest first with keyset pages
//! and filters, one run served with its stored result as JSON and CSV, a
//! run without a result refused as CSV, admin keys only, and bad input a
//! 400 naming it. On a fresh SQLite file and a fresh PostgreSQL database.

use crate::http_support;

use chrono::{Duration, Utc};
use http_support::{repo, Daemon, Db, Kind};
use leadflow_runtime::config::{hash_key, Config};
use leadflow_runtime::kpi::schedule::{tick, RunStore, TickConfig};
use std::path::Path;

both!(runs_are_listed_paged_and_served_with_their_results);

fn config() -> Config {
    let root = repo();
    let text = format!(
        r#"
listen = "127.0.0.1:0"

[tenants.oplead]
root = "{}"
workflows = ["oplead_project", "oplead_survey"]
[tenants.oplead.actors.exp-a]
role = "expert"
email = "exp-a@example.com"
[[tenants.oplead.keys]]
name = "admin"
sha256 = "{}"
[[tenants.oplead.keys]]
name = "exp-a"
sha256 = "{}"
actor = "exp-a"
"#,
        root.display(),
        hash_key("admin-key"),
        hash_key("exp-a-key"),
    );
    Config::parse(&text, "test.toml", Path::new("/")).unwrap()
}

async fn runs_are_listed_paged_and_served_with_their_results(kind: Kind) {
    let d = Daemon::start_config(Db::new(kind), config(), false).await;
    let backend = &d.server.as_ref().unwrap().state.tenants["oplead"].backend;
    let wfs = backend.workflows();
    let cfg = TickConfig {
        owner: "test".into(),
        ..TickConfig::default()
    };
    // The schedules are seen now (by the daemon or here, whichever is
    // first); 200 days later two or three quarters have ended.
    let now = Utc::now();
    tick(backend, &wfs, &[], &cfg, now).await.unwrap();
    let later = now + Duration::days(200);
    let t = tick(backend, &wfs, &[], &cfg, later).await.unwrap();
    assert!(t.failed.is_empty(), "{t:?}");
    let n = t.done.len();
    assert!(
        (4..=6).contains(&n),
        "two or three quarters × billing and reminder: {t:?}"
    );
    assert_eq!(t.enqueued as usize, n);

    // Newest first, all done.
    let r = d.get("/v1/reports/runs", "admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    let runs = r.body["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), n);
    assert_eq!(r.body["has_more"], false);
    let ids: Vec<i64> = runs.iter().map(|x| x["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    assert!(runs
        .iter()
        .all(|x| x["status"] == "done" && x["attempts"] == 1));
    assert!(runs.iter().all(|x| x.get("result").is_none()));

    // Pages of one, following `next`, give the same runs.
    let mut paged = Vec::new();
    let mut path = "/v1/reports/runs?limit=1".to_string();
    loop {
        let p = d.get(&path, "admin").await;
        assert_eq!(p.status, 200, "{p:?}");
        paged.extend(
            p.body["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_i64().unwrap()),
        );
        match p.body["next"].as_str() {
            Some(next) => path = format!("/v1/reports/runs?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, ids);

    // Filtered to the billing report; a cursor of another filter is refused.
    let b = d
        .get(
            "/v1/reports/runs?workflow=oplead_project&report=billing&limit=1",
            "admin",
        )
        .await;
    assert_eq!(b.status, 200, "{b:?}");
    assert_eq!(b.body["runs"][0]["report"], "billing");
    let next = b.body["next"].as_str().unwrap().to_string();
    let all = d
        .get(&format!("/v1/reports/runs?limit=1&after={next}"), "admin")
        .await;
    assert_eq!(
        (all.status, all.body["code"].as_str()),
        (400, Some("E_BAD_REQUEST"))
    );

    // One run with its result: the billing of the quarter that ended.
    let id = b.body["runs"][0]["id"].as_i64().unwrap();
    let one = d.get(&format!("/v1/reports/runs/{id}"), "admin").await;
    assert_eq!(one.status, 200, "{one:?}");
    let period = one.body["period"].as_str().unwrap().to_string();
    assert!(period.contains("-Q"), "{period}");
    assert_eq!(one.body["result"]["name"], "billing");
    assert_eq!(one.body["result"]["period"], period.as_str());
    assert_eq!(one.body["result"]["currency"], "EUR");
    let csv = d
        .get(&format!("/v1/reports/runs/{id}?format=csv"), "admin")
        .await;
    assert_eq!(csv.status, 200, "{csv:?}");
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(csv.text.lines().next(), Some("assignee,count,amount"));
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("oplead_project-billing-{period}.csv")));

    // A run not run yet: JSON shows it pending, CSV is refused.
    backend
        .enqueue_runs("oplead_project", "billing", &[later + Duration::days(400)])
        .await
        .unwrap();
    let newest = d.get("/v1/reports/runs?limit=1", "admin").await;
    let pending = newest.body["runs"][0]["id"].as_i64().unwrap();
    assert_eq!(newest.body["runs"][0]["status"], "pending");
    let r = d
        .get(&format!("/v1/reports/runs/{pending}?format=csv"), "admin")
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("E_REPORT_RUN_NOT_READY"))
    );

    // Not found, bad input, actor keys.
    let r = d.get("/v1/reports/runs/999999", "admin").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("E_REPORT_RUN_NOT_FOUND"))
    );
    for bad in [
        "/v1/reports/runs/abc",
        "/v1/reports/runs?limit=0",
        "/v1/reports/runs?limit=501",
        "/v1/reports/runs?status=done",
        "/v1/reports/runs?after=garbage",
        &format!("/v1/reports/runs/{id}?format=xml"),
    ] {
        let r = d.get(bad, "admin").await;
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some("E_BAD_REQUEST")),
            "{bad}: {r:?}"
        );
    }
    let r = d.get("/v1/reports/runs", "exp-a").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (403, Some("E_FORBIDDEN"))
    );
    let r = d.get(&format!("/v1/reports/runs/{id}"), "exp-a").await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (403, Some("E_FORBIDDEN"))
    );
    d.stop().await;
}
