//! KPIs and reports over HTTP (docs/api.md, "KPIs and reports"; docs/kpis.md):
//! ASLM SLA-1 per dealer computed by the store, grouped by a field and a
//! period, a report as JSON and CSV, admin keys only, and every bad input a
//! 400 naming what is wrong. On a fresh SQLite file and a fresh PostgreSQL
//! database per test.

use crate::http_support;

use http_support::{Daemon, Kind};
use serde_json::json;

both!(
    sla_per_dealer_and_reports_as_json_and_csv,
    bad_input_is_400_naming_it
);

async fn two_leads_one_contacted(d: &Daemon) {
    let a = d.aslm_lead("admin", "Rossi").await.id();
    d.aslm_lead("admin", "Bianchi").await;
    let r = d
        .post(
            &format!("/v1/records/{a}/transitions/log_contact_attempt"),
            "dealer-rm",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn sla_per_dealer_and_reports_as_json_and_csv(kind: Kind) {
    let d = Daemon::start(kind).await;
    two_leads_one_contacted(&d).await;

    // SLA-1, grouped by its declared default (the dealer).
    let r = d.get("/v1/kpis/aslm?kpi=sla1", "admin").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["time_zone"], "Europe/Rome");
    let k = &r.body["kpis"][0];
    assert_eq!(k["name"], "sla1");
    assert_eq!(k["kind"], "sla");
    assert_eq!(k["computed"], "sql");
    assert_eq!(k["group_by"], json!(["assignee"]));
    assert_eq!(k["rows"][0]["group"], json!(["dealer-rm"]));
    assert_eq!(k["total"]["population"], 2);
    assert_eq!(k["total"]["hits"], 1);
    assert_eq!(k["total"]["ratio"], 0.5);
    assert_eq!(k["total"]["met"], false);
    assert_eq!(k["total"]["durations"]["count"], 1);

    // Every KPI, this year, per assignee and month.
    let year = chrono::Utc::now().format("%Y").to_string();
    let r = d
        .get(
            &format!("/v1/kpis/aslm?period={year}&group_by=assignee,month"),
            "admin",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let names: Vec<&str> = r.body["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sla1", "sla2", "sla3", "funnel_by_source"]);
    let funnel = &r.body["kpis"][3];
    let group = &funnel["rows"][0]["group"];
    assert_eq!(group[0], "dealer-rm");
    let month = regex::Regex::new(r"^\d{4}-\d{2}$").unwrap();
    assert!(month.is_match(group[1].as_str().unwrap()), "{group}");
    assert_eq!(
        funnel["rows"][0]["steps"][0],
        json!({"state": "assigned", "count": 2})
    );

    // A quarter with no lead: empty rows, an empty total.
    let r = d
        .get("/v1/kpis/aslm?kpi=sla1&period=2020-Q1", "admin")
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["kpis"][0]["rows"], json!([]));
    assert_eq!(r.body["kpis"][0]["total"]["population"], 0);
    assert_eq!(r.body["kpis"][0]["total"]["ratio"], json!(null));

    // The status report as JSON, then as CSV (by parameter and by Accept).
    let r = d
        .get(
            &format!("/v1/reports/aslm/by_status?period={year}"),
            "admin",
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["period"], json!(year));
    assert_eq!(r.body["total_count"], 2);
    assert_eq!(r.body["rows"][0]["group"], json!(["assigned", "web_form"]));
    let csv = d
        .get("/v1/reports/aslm/by_status?format=csv", "admin")
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type").starts_with("text/csv"),
        "{csv:?}"
    );
    assert_eq!(csv.text, "state,source,count\nassigned,web_form,2\n");
    let accept = d
        .call(
            reqwest::Method::GET,
            "/v1/reports/aslm/by_status",
            Some("admin"),
            None,
            &[("accept", "text/csv")],
        )
        .await;
    assert_eq!(accept.text, csv.text);

    // Aggregates over every dealer: not for an actor-bound key.
    for path in ["/v1/kpis/aslm", "/v1/reports/aslm/by_status"] {
        let r = d.get(path, "dealer-rm").await;
        assert_eq!((r.status, r.code()), (403, "E_FORBIDDEN"), "{path}");
    }
}

async fn bad_input_is_400_naming_it(kind: Kind) {
    let d = Daemon::start(kind).await;
    for (path, needle) in [
        ("/v1/kpis/aslm?kpi=sla9", "sla9"),
        ("/v1/kpis/aslm?group_by=zona", "zona"),
        ("/v1/kpis/aslm?group_by=preferred_dates", "list field"),
        ("/v1/kpis/aslm?period=2025-Q5", "2025-W10"),
        ("/v1/kpis/aslm?from=yesterday", "RFC 3339"),
        ("/v1/kpis/aslm?from=2025-03-01&to=2025-01-01", "after"),
        ("/v1/kpis/aslm?period=2025&from=2025-01-01", "either"),
        ("/v1/kpis/aslm?sort=x", "sort"),
        ("/v1/kpis/aslm?group_by=month", "range"),
        ("/v1/reports/aslm/billing", "billing"),
        ("/v1/reports/aslm/by_status?period=Q1", "2025-Q1"),
        ("/v1/reports/aslm/by_status?format=xml", "xml"),
    ] {
        let r = d.get(path, "admin").await;
        assert_eq!(
            (r.status, r.code()),
            (400, "E_BAD_REQUEST"),
            "{path}: {r:?}"
        );
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "{path}: {detail}");
    }
    let r = d.get("/v1/kpis/nope", "admin").await;
    assert_eq!((r.status, r.code()), (404, "E_UNKNOWN_WORKFLOW"));
}
