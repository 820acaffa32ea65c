//! Bulk work over HTTP (issue 17, sections 3 and 4), on a fresh SQLite file
//! and a fresh PostgreSQL database: `POST /v1/imports` with bad lines (the
//! job's counts and its reject report), dedup, an idempotent re-post, the
//! job still there after a restart; `POST /v1/bulk` whose dry run reports
//! what the real run does, never touching nor revealing a record the caller
//! cannot see; a reassignment with its history and the actors' loads; and
//! exports (`format=csv`) that import into an empty tenant as the same
//! records and redact as the caller sees; a daemon stopped in the middle
//! of an import, whose re-post after the restart resumes it.

use crate::http_support;

use http_support::{repo, test_config, Daemon, Db, Kind};
use serde_json::{json, Value};

both!(
    an_import_reports_bad_lines_dedups_and_posts_again_idempotently,
    a_bulk_dry_run_is_the_real_run_and_hides_what_the_caller_cannot_see,
    a_reassignment_moves_records_with_history_and_loads,
    an_export_imports_into_an_empty_tenant_and_redacts_as_the_caller_sees,
    an_import_streams_past_the_body_limit_and_stops_at_its_own,
    a_shutdown_interrupts_an_import_and_a_repost_resumes_it,
);

/// POST a body with a content type; (status, JSON body or Null, text).
async fn send(d: &Daemon, path: &str, key: &str, ct: &str, body: String) -> (u16, Value, String) {
    let r = d
        .http
        .post(format!("{}{path}", d.base))
        .bearer_auth(format!("{key}-key"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// The job at `href` once it is no longer running.
async fn finished(d: &Daemon, href: &str, key: &str) -> Value {
    for _ in 0..600 {
        let r = d.get(href, key).await;
        assert_eq!(r.status, 200, "{r:?}");
        if r.body["state"] != "running" {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {href} still running");
}

async fn text(d: &Daemon, path: &str, key: &str) -> (u16, String, String) {
    let r = d
        .http
        .get(format!("{}{path}", d.base))
        .bearer_auth(format!("{key}-key"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.unwrap())
}

fn rows(csv_text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

const LEADS: &str = "first_name,last_name,email,phone,province,postal_code,model\n\
Mario,Rossi,mario@example.it,+39 06 1234567,RM,00185,Ghibli\n\
Luigi,Bianchi,luigi@example.it,02 5550002,MI,20121,Levante\n\
,Nessuno,x@example.it,,RM,00185,Ghibli\n\
Sara,Rosa,sara@example,,RM,00185,Ghibli\n\
Ugo,Grigi,ugo@example.it,,RM,123,Ghibli\n\
Mario,Rossi,MARIO@example.it,,RM,00185,Ghibli\n";

async fn an_import_reports_bad_lines_dedups_and_posts_again_idempotently(kind: Kind) {
    let d = Daemon::start(kind).await;
    let path = "/v1/imports?workflow=aslm&dedup=email";
    // Admin keys only; a body of another type; options the workflow refutes.
    let (s, b, _) = send(&d, path, "dealer-rm", "text/csv", LEADS.into()).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("E_FORBIDDEN")));
    let (s, b, _) = send(&d, path, "admin", "application/json", "{}".into()).await;
    assert_eq!((s, b["code"].as_str()), (415, Some("E_MEDIA_TYPE")));
    let (s, b, _) = send(
        &d,
        "/v1/imports?workflow=aslm&map=Tel=nope",
        "admin",
        "text/csv",
        LEADS.into(),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("E_IMPORT_MAP")), "{b}");
    let (s, b, _) = send(
        &d,
        "/v1/imports?workflow=aslm&dedup=nope",
        "admin",
        "text/csv",
        LEADS.into(),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (400, Some("E_IMPORT_DEDUP")),
        "{b}"
    );
    let (s, b, _) = send(
        &d,
        "/v1/imports?workflow=nope",
        "admin",
        "text/csv",
        LEADS.into(),
    )
    .await;
    assert_eq!(s, 404, "{b}");

    let (s, job, _) = send(&d, path, "admin", "text/csv", LEADS.into()).await;
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["state"], "running");
    assert!(job["key"].as_str().unwrap().starts_with("sha256:"));
    let href = job["href"].as_str().unwrap().to_string();
    let done = finished(&d, &href, "admin").await;
    assert_eq!(done["state"], "done", "{done}");
    let p = &done["progress"];
    assert_eq!(
        (
            p["lines"].as_u64(),
            p["imported"].as_u64(),
            p["skipped"].as_u64(),
            p["rejected"].as_u64()
        ),
        (Some(6), Some(2), Some(1), Some(3)),
        "{done}"
    );
    assert_eq!(
        done["report"]["summary"],
        "imported 2, updated 0, skipped 1, rejected 3"
    );

    // The reject report, as the CLI writes it.
    let (s, ct, report) = text(&d, done["rejected_href"].as_str().unwrap(), "admin").await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut got: Vec<(String, String, String)> = rows(&report)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    got.sort();
    let want = [
        ("4", "first_name", "E_REQUIRED"),
        ("5", "email", "E_PATTERN"),
        ("6", "postal_code", "E_PATTERN"),
    ];
    let got: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, want, "{report}");
    assert!(
        report.starts_with("_line,_column,_code,_message,first_name,"),
        "{report}"
    );

    // Real creates: assigned by province, history by `import`.
    let l = d.get("/v1/records?workflow=aslm&sort=id", "admin").await;
    let items = l.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{l:?}");
    assert_eq!(items[0]["assignee"], "dealer-rm");
    assert_eq!(items[1]["assignee"], "dealer-mi");
    let h = d
        .get(&format!("/v1/records/{}/history", items[0]["id"]), "admin")
        .await;
    assert_eq!(h.body[0]["actor"], "import", "{h:?}");

    // The same body again: the same key, nothing created twice.
    let (s, again, _) = send(&d, path, "admin", "text/csv", LEADS.into()).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["key"], job["key"]);
    let again = finished(&d, again["href"].as_str().unwrap(), "admin").await;
    assert_eq!(again["progress"]["imported"], 0, "{again}");
    assert_eq!(again["progress"]["already"], 2, "{again}");
    let l = d.get("/v1/records?workflow=aslm", "admin").await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 2);

    // NDJSON, with a key of its own.
    let nd =
        "{\"first_name\":\"Anna\",\"email\":\"anna@example.it\",\"province\":\"RM\"}\nnot json\n";
    let (s, j, _) = send(
        &d,
        "/v1/imports?workflow=aslm&key=nd-1",
        "admin",
        "application/x-ndjson",
        nd.into(),
    )
    .await;
    assert_eq!(s, 202, "{j}");
    assert_eq!(j["key"], "nd-1");
    let j = finished(&d, j["href"].as_str().unwrap(), "admin").await;
    assert_eq!(
        (
            j["progress"]["imported"].as_u64(),
            j["progress"]["rejected"].as_u64()
        ),
        (Some(1), Some(1)),
        "{j}"
    );
    let (_, ct, rep) = text(&d, j["rejected_href"].as_str().unwrap(), "admin").await;
    assert!(ct.starts_with("application/x-ndjson"), "{ct}");
    assert!(rep.contains("E_IMPORT_MALFORMED"), "{rep}");

    // Another tenant's admin does not see the job.
    let r = d.get(&href, "other-admin").await;
    assert_eq!((r.status, r.code()), (404, "E_JOB_NOT_FOUND"));

    // A restart: the job, its counts and its report are still there.
    let db = d.stop().await;
    let d = Daemon::start_with(db, &repo(), false).await;
    let after = d.get(&href, "admin").await;
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.body["state"], "done");
    assert_eq!(after.body["progress"], done["progress"]);
    let (_, _, report_after) = text(&d, done["rejected_href"].as_str().unwrap(), "admin").await;
    assert_eq!(report_after, report);
    // And a re-post after the restart still creates nothing twice.
    let (_, j, _) = send(&d, path, "admin", "text/csv", LEADS.into()).await;
    let j = finished(&d, j["href"].as_str().unwrap(), "admin").await;
    assert_eq!(j["progress"]["imported"], 0, "{j}");
}

/// Per-record (id, outcome, code) of a bulk report, the dry run's
/// `would_fire` read as `fired`.
fn outcomes(job: &Value) -> Vec<(i64, String, String)> {
    job["report"]["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{job}"))
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["outcome"]
                    .as_str()
                    .unwrap()
                    .replace("would_fire", "fired"),
                r["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn a_bulk_dry_run_is_the_real_run_and_hides_what_the_caller_cannot_see(kind: Kind) {
    let d = Daemon::start(kind).await;
    let rm1 = d.aslm_lead("admin", "Uno").await.id();
    let rm2 = d.aslm_lead("admin", "Due").await.id();
    let mi = d
        .post(
            "/v1/records",
            "admin",
            json!({"workflow": "aslm", "fields": {"first_name": "Lia", "last_name": "Milano", "province": "MI"}}),
        )
        .await;
    assert_eq!(mi.body["assignee"], "dealer-mi", "{mi:?}");
    let mi = mi.id();
    let mi_before = d.get(&format!("/v1/records/{mi}"), "admin").await.body;

    let body = |dry: bool| {
        json!({"workflow": "aslm", "transition": "log_contact_attempt",
               "ids": [rm1, mi, rm2, 999999], "dry_run": dry})
    };
    let dry = d.post("/v1/bulk", "dealer-rm", body(true)).await;
    assert_eq!(dry.status, 202, "{dry:?}");
    let dry = finished(&d, dry.body["href"].as_str().unwrap(), "dealer-rm").await;
    assert_eq!(dry["report"]["dry_run"], true);
    let want = vec![
        (rm1, "fired".to_string(), String::new()),
        (mi, "refused".to_string(), "E_NOT_FOUND".to_string()),
        (rm2, "fired".to_string(), String::new()),
        (999999, "refused".to_string(), "E_NOT_FOUND".to_string()),
    ];
    assert_eq!(outcomes(&dry), want, "{dry}");
    // The record dealer-rm cannot see reads exactly as one that does not exist.
    let recs = dry["report"]["records"].as_array().unwrap();
    assert_eq!(
        recs[1]["message"]
            .as_str()
            .map(|m| m.replace(&mi.to_string(), "N")),
        recs[3]["message"]
            .as_str()
            .map(|m| m.replace("999999", "N"))
    );
    // Nothing written by the dry run.
    let r = d.get(&format!("/v1/records/{rm1}"), "admin").await;
    assert_eq!(r.body["revision"], 1);

    let real = d.post("/v1/bulk", "dealer-rm", body(false)).await;
    let real = finished(&d, real.body["href"].as_str().unwrap(), "dealer-rm").await;
    assert_eq!(real["state"], "done");
    assert_eq!(
        outcomes(&real),
        want,
        "the dry run said what the real run does: {real}"
    );
    assert_eq!(
        real["progress"],
        json!({"selected": 4, "fired": 2, "refused": 2})
    );
    let r = d.get(&format!("/v1/records/{rm1}"), "admin").await;
    assert_eq!(
        (
            r.body["revision"].as_i64(),
            r.body["fields"]["attempts"].as_i64()
        ),
        (Some(2), Some(1))
    );
    let h = d.get(&format!("/v1/records/{rm1}/history"), "admin").await;
    assert_eq!(
        h.body.as_array().unwrap().last().unwrap()["kind"],
        "bulk",
        "{h:?}"
    );
    assert_eq!(
        d.get(&format!("/v1/records/{mi}"), "admin").await.body,
        mi_before
    );

    // A filter selects only what the caller sees; jobs are their poster's.
    let f = d
        .post(
            "/v1/bulk",
            "dealer-rm",
            json!({"workflow": "aslm", "transition": "log_contact_attempt",
            "filter": {"state": "assigned"}, "dry_run": true}),
        )
        .await;
    let href = f.body["href"].as_str().unwrap().to_string();
    let f = finished(&d, &href, "dealer-rm").await;
    let ids: Vec<i64> = outcomes(&f).iter().map(|o| o.0).collect();
    assert_eq!(ids, [rm1, rm2], "{f}");
    assert_eq!(d.get(&href, "dealer-mi").await.code(), "E_JOB_NOT_FOUND");
    assert_eq!(d.get(&href, "admin").await.status, 200);

    // Bad requests.
    for (body, status) in [
        (json!({"workflow": "aslm", "ids": [rm1]}), 400),
        (
            json!({"workflow": "aslm", "transition": "log_contact_attempt"}),
            400,
        ),
        (
            json!({"workflow": "aslm", "transition": "nope", "ids": [rm1]}),
            404,
        ),
        (
            json!({"workflow": "aslm", "transition": "log_contact_attempt", "filter": {"field.nope": "x"}}),
            400,
        ),
        (
            json!({"workflow": "aslm", "transition": "log_contact_attempt", "filter": {"field.phone": "1"}}),
            403,
        ),
        (
            json!({"workflow": "aslm", "reassign": {"to": "dealer-mi"}, "ids": [rm1]}),
            403,
        ),
    ] {
        let r = d.post("/v1/bulk", "dealer-rm", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {r:?}");
    }
}

async fn a_reassignment_moves_records_with_history_and_loads(kind: Kind) {
    let d = Daemon::start(kind).await;
    let a = d.aslm_lead("admin", "Uno").await.id();
    let b = d.aslm_lead("admin", "Due").await.id();
    let load = |who: &'static str| {
        let d = &d;
        async move { d.get(&format!("/v1/actors/{who}"), "admin").await.body["load"].as_i64() }
    };
    assert_eq!(
        (load("dealer-rm").await, load("dealer-mi").await),
        (Some(2), Some(0))
    );

    let dry = d
        .post(
            "/v1/bulk",
            "admin",
            json!({"workflow": "aslm", "reassign": {"to": "dealer-mi"},
            "filter": {"assignee": "dealer-rm"}, "dry_run": true}),
        )
        .await;
    assert_eq!(dry.status, 202, "{dry:?}");
    let dry = finished(&d, dry.body["href"].as_str().unwrap(), "admin").await;
    let r = d
        .post(
            "/v1/bulk",
            "admin",
            json!({"workflow": "aslm", "reassign": {"to": "dealer-mi"},
            "filter": {"assignee": "dealer-rm"}}),
        )
        .await;
    let r = finished(&d, r.body["href"].as_str().unwrap(), "admin").await;
    assert_eq!(outcomes(&r), outcomes(&dry), "{r}");
    assert_eq!(outcomes(&r).len(), 2);
    for id in [a, b] {
        let rec = d.get(&format!("/v1/records/{id}"), "admin").await;
        assert_eq!(rec.body["assignee"], "dealer-mi");
        assert_eq!(rec.body["state"], "assigned", "the state stays");
        let h = d.get(&format!("/v1/records/{id}/history"), "admin").await;
        let last = h.body.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["kind"], "bulk", "{last}");
        assert_eq!(last["assignee"], "dealer-mi", "{last}");
    }
    assert_eq!(
        (load("dealer-rm").await, load("dealer-mi").await),
        (Some(0), Some(2))
    );
    // dealer-mi now sees them, dealer-rm no longer.
    assert_eq!(
        d.get(&format!("/v1/records/{a}"), "dealer-mi").await.status,
        200
    );
    assert_eq!(
        d.get(&format!("/v1/records/{a}"), "dealer-rm").await.status,
        404
    );
    // An actor the directory lacks: refused per record, nothing moved.
    let r = d
        .post(
            "/v1/bulk",
            "admin",
            json!({"workflow": "aslm", "reassign": {"to": "ghost"}, "ids": [a]}),
        )
        .await;
    let r = finished(&d, r.body["href"].as_str().unwrap(), "admin").await;
    assert_eq!(
        outcomes(&r),
        [(a, "refused".to_string(), "E_INPUT".to_string())]
    );
    assert_eq!(
        d.get(&format!("/v1/records/{a}"), "admin").await.body["assignee"],
        "dealer-mi"
    );
}

async fn an_export_imports_into_an_empty_tenant_and_redacts_as_the_caller_sees(kind: Kind) {
    let d = Daemon::start(kind).await;
    for name in ["Uno", "Due", "Tre"] {
        d.aslm_lead("admin", name).await;
    }
    let (s, ct, csv_text) = text(&d, "/v1/records?workflow=aslm&format=csv", "admin").await;
    assert_eq!(s, 200, "{csv_text}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(
        csv_text.starts_with("_id,_state,_assignee,_created_at,_updated_at,_redacted,"),
        "{csv_text}"
    );
    assert_eq!(rows(&csv_text).len(), 3);
    // An export needs its workflow, and is no page.
    assert_eq!(d.get("/v1/records?format=csv", "admin").await.status, 400);
    assert_eq!(
        d.get("/v1/records?workflow=aslm&format=csv&count=true", "admin")
            .await
            .status,
        400
    );
    assert_eq!(
        d.get("/v1/records?workflow=aslm&format=xml", "admin")
            .await
            .status,
        400
    );

    // Into the empty tenant `other`: the same records.
    let (s, j, _) = send(
        &d,
        "/v1/imports?workflow=aslm",
        "other-admin",
        "text/csv",
        csv_text.clone(),
    )
    .await;
    assert_eq!(s, 202, "{j}");
    let j = finished(&d, j["href"].as_str().unwrap(), "other-admin").await;
    assert_eq!(j["progress"]["imported"], 3, "{j}");
    let key = |v: &Value| {
        let mut out: Vec<Value> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let f = &i["fields"];
                json!([
                    i["state"],
                    i["assignee"],
                    f["first_name"],
                    f["last_name"],
                    f["province"],
                    f["phone"],
                    f["email"],
                    f["model"],
                    f["priority"]
                ])
            })
            .collect();
        out.sort_by_key(|v| v.to_string());
        out
    };
    let there = d.get("/v1/records?workflow=aslm", "other-admin").await;
    let here = d.get("/v1/records?workflow=aslm", "admin").await;
    assert_eq!(key(&there.body), key(&here.body));

    // NDJSON, and a view's columns as header.
    let (_, ct, nd) = text(
        &d,
        "/v1/records?workflow=aslm&format=ndjson&sort=-id",
        "admin",
    )
    .await;
    assert!(ct.starts_with("application/x-ndjson"), "{ct}");
    let first: Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
    assert_eq!(first["last_name"], "Tre");
    let (s, _, v) = text(&d, "/v1/views/aslm/not_yet_handled?format=csv", "admin").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v.lines().next().unwrap(),
        "first_name,last_name,created_at,state,source,campaign,attempts,age_days,priority"
    );
    assert_eq!(v.lines().count(), 4);

    // Redaction and visibility as the caller's key: Q.PARTNER's pool shows
    // installers its records without their PII; another zone sees none.
    d.qp_lead().await;
    let (_, _, inst) = text(&d, "/v1/records?workflow=qpartner&format=csv", "inst-a").await;
    let r = rows(&inst);
    assert_eq!(r.len(), 1, "{inst}");
    let head: Vec<String> = rows(&format!("{}\nx", inst.lines().next().unwrap()))
        .first()
        .map(|_| {
            inst.lines()
                .next()
                .unwrap()
                .split(',')
                .map(String::from)
                .collect()
        })
        .unwrap();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    assert_eq!(r[0][col("phone")], "", "{inst}");
    assert!(r[0][col("_redacted")].contains("phone"), "{inst}");
    assert_eq!(r[0][col("city")], "Roma");
    let (_, _, admin) = text(&d, "/v1/records?workflow=qpartner&format=csv", "qp-admin").await;
    assert_eq!(rows(&admin)[0][col("phone")], "034114065515");
    let (_, _, none) = text(&d, "/v1/records?workflow=qpartner&format=csv", "inst-mi").await;
    assert_eq!(rows(&none).len(), 0, "{none}");
    let (_, _, view) = text(&d, "/v1/views/qpartner/available?format=ndjson", "inst-mi").await;
    assert_eq!(view, "");
}

/// `[server] max_import_bytes` bounds an import's body, not
/// `max_body_bytes`: a body over the JSON limit streams in and imports; one
/// over the import limit is refused 413 `E_TOO_LARGE` with nothing created.
async fn an_import_streams_past_the_body_limit_and_stops_at_its_own(kind: Kind) {
    let mut cfg = test_config(&repo());
    cfg.server.max_body_bytes = 1024;
    cfg.server.max_import_bytes = 8 * 1024;
    let d = Daemon::start_config(Db::new(kind), cfg, false).await;
    let body = |n: usize| {
        let mut s = String::from("first_name,last_name,email,province,postal_code,model\n");
        for i in 0..n {
            s.push_str(&format!(
                "Anna,Verdi{i},anna{i}@example.it,RM,00185,Ghibli\n"
            ));
        }
        s
    };
    let within = body(60);
    assert!(
        within.len() > 1024 && within.len() < 8 * 1024,
        "{}",
        within.len()
    );
    let path = "/v1/imports?workflow=aslm";
    let (s, job, _) = send(&d, path, "admin", "text/csv", within).await;
    assert_eq!(s, 202, "{job}");
    let done = finished(&d, job["href"].as_str().unwrap(), "admin").await;
    assert_eq!(done["progress"]["imported"], 60, "{done}");

    let over = body(300);
    assert!(over.len() > 8 * 1024);
    let (s, b, _) = send(&d, path, "admin", "text/csv", over).await;
    assert_eq!((s, b["code"].as_str()), (413, Some("E_TOO_LARGE")), "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("max_import_bytes"),
        "{b}"
    );
    let l = d.get("/v1/records?workflow=aslm&limit=500", "admin").await;
    assert_eq!(l.body["items"].as_array().unwrap().len(), 60, "{l:?}");
    d.stop().await;
}

/// The daemon shuts down while an import runs: the job ends `interrupted`
/// (shown so after the restart), every record it committed is whole (its
/// history there), and the same body posted again resumes: each line
/// becomes exactly one record.
async fn a_shutdown_interrupts_an_import_and_a_repost_resumes_it(kind: Kind) {
    const LINES: usize = 12_000;
    let d = Daemon::start(kind).await;
    let mut body = String::from("first_name,last_name,email,province,postal_code,model\n");
    for i in 0..LINES {
        body.push_str(&format!(
            "Anna,Verdi{i},anna{i}@example.it,RM,00185,Ghibli\n"
        ));
    }
    let path = "/v1/imports?workflow=aslm";
    let (s, job, _) = send(&d, path, "admin", "text/csv", body.clone()).await;
    assert_eq!(s, 202, "{job}");
    let href = job["href"].as_str().unwrap().to_string();
    // Stop once the first batches are in, well before the end.
    let mut seen = Value::Null;
    for _ in 0..1200 {
        seen = d.get(&href, "admin").await.body;
        if seen["progress"]["imported"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        seen["state"], "running",
        "the import ended before the stop: {seen}"
    );
    let db = d.stop().await;

    let d = Daemon::start_with(db, &repo(), false).await;
    let first = d.get(&href, "admin").await.body;
    assert_eq!(first["state"], "interrupted", "{first}");
    async fn count(d: &Daemon) -> u64 {
        let r = d
            .get("/v1/records?workflow=aslm&count=true&limit=1", "admin")
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["count"]["value"].as_u64().unwrap()
    }
    let kept = count(&d).await;
    assert!(
        kept > 0 && (kept as usize) < LINES,
        "{kept} of {LINES} committed"
    );
    // The newest record, of the last batch committed, has its history.
    let newest = d
        .get("/v1/records?workflow=aslm&sort=-id&limit=1", "admin")
        .await;
    let id = newest.body["items"][0]["id"].clone();
    let h = d.get(&format!("/v1/records/{id}/history"), "admin").await;
    assert_eq!(h.status, 200, "{h:?}");
    assert!(
        !h.body.as_array().unwrap().is_empty(),
        "no history for {id}: {h:?}"
    );

    // Posted again (same body, same key): it resumes.
    let (s, again, _) = send(&d, path, "admin", "text/csv", body).await;
    assert_eq!(s, 202, "{again}");
    let href = again["href"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..2400 {
        done = d.get(&href, "admin").await.body;
        if done["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done["state"], "done", "{done}");
    let p = &done["progress"];
    assert_eq!(
        p["imported"].as_u64().unwrap() + p["already"].as_u64().unwrap(),
        LINES as u64,
        "{p}"
    );
    assert!(p["already"].as_u64().unwrap() >= kept, "{p}, {kept} kept");
    assert_eq!(count(&d).await, LINES as u64, "each line one record");
    d.stop().await;
}
