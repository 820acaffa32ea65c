//! `leadflow import` and `leadflow export` as a user runs them, on a fresh
//! SQLite file and a fresh PostgreSQL database: every kind of bad line in
//! the reject report, dedup within the file and against the store, an
//! idempotent re-run, a kill -9 in the middle then a re-run (no record
//! without its history), the duplicate policies, and an export imported
//! into an empty tenant giving the same records.

use crate::http_support::{repo, Db, Kind};
use leadflow_runtime::config::Config;
use leadflow_runtime::Backend;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

struct Env {
    db: Db,
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn config_text(root: &Path, url: &str) -> String {
    let root = root.display();
    let cc = |t: &str| {
        format!(
            r#"
[tenants.{t}]
root = "{root}"
workflows = ["cc_lead", "cc_opportunity", "cc_project", "cc_task", "cc_ticket"]
[tenants.{t}.actors.op-rm]
role = "operator"
zones = ["RM"]
[tenants.{t}.actors.op-mi]
role = "operator"
zones = ["MI", "nord"]
"#
        )
    };
    format!(
        r#"
listen = "127.0.0.1:0"
database_url = "{url}"
{}{}
[tenants.aslm]
root = "{root}"
workflows = ["aslm"]
[tenants.aslm.actors.dealer-rm]
role = "dealer"
zones = ["RM"]
[tenants.aslm.actors.dealer-mi]
role = "dealer"
zones = ["MI"]
"#,
        cc("cc"),
        cc("cc2")
    )
}

impl Env {
    fn new(kind: Kind) -> Env {
        let db = Db::new(kind);
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("leadflow.toml");
        std::fs::write(&config, config_text(&repo(), &db.url)).unwrap();
        Env { db, dir, config }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_leadflow"))
            .arg(args[0])
            .arg("--config")
            .arg(&self.config)
            .args(&args[1..])
            .current_dir(self.dir.path())
            .output()
            .expect("run leadflow");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn import(&self, tenant: &str, wf: &str, file: &Path, extra: &[&str]) -> (i32, String, String) {
        let f = file.display().to_string();
        let mut args = vec!["import", "--tenant", tenant, "--workflow", wf];
        args.extend_from_slice(extra);
        args.push(&f);
        self.run(&args)
    }

    /// The tenant's store, opened as the daemon would.
    async fn store(&self, tenant: &str) -> leadflow_runtime::AnyBackend {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let c = Config::parse(&text, "leadflow.toml", self.dir.path()).unwrap();
        let tc = &c.tenants[tenant];
        let (set, _, _) = leadflow_runtime::http::state::load_project(tc)
            .ok()
            .unwrap();
        leadflow_runtime::open(&self.db.url, tenant, Arc::new(set))
            .await
            .unwrap()
    }
}

async fn records(
    b: &leadflow_runtime::AnyBackend,
    wf: &str,
) -> Vec<leadflow_runtime::backend::StoredRecord> {
    let ids = b
        .select(&leadflow_runtime::backend::Filter {
            workflow: wf,
            include_final: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for id in ids {
        out.push(b.get(id).await.unwrap().unwrap());
    }
    out
}

const HEADER: &str =
    "first_name,last_name,Telefono,email,city,province,zone,annual_kwh,interest_kw,notes\n";

both!(
    every_bad_line_is_reported_and_the_good_ones_are_real_creates,
    a_rerun_creates_nothing_twice,
    duplicates_update_or_refuse_as_asked,
    an_export_imports_into_an_empty_tenant_as_the_same_records,
    an_import_killed_midway_resumes_without_partial_records,
    aslm_imports_arm_timers_and_exports_redact_as_the_actor_sees,
    a_bulk_dry_run_reports_what_the_real_run_does,
);

async fn every_bad_line_is_reported_and_the_good_ones_are_real_creates(kind: Kind) {
    let env = Env::new(kind);
    // A record already in the store, found again by its e-mail.
    let first = env.file(
        "first.csv",
        &format!("{HEADER}Anna,Verdi,+39 06 5550001,ANNA@Example.it,Roma,RM,centro,,,\n"),
    );
    let (code, out, err) = env.import(
        "cc",
        "cc_lead",
        &first,
        &["--dedup", "phone,email", "--map", "Telefono=phone"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "imported 1, updated 0, skipped 0, rejected 0");

    let text = format!(
        "{HEADER}\
Mario,Rossi,+39 347 1234567,mario@example.it,Roma,RM,centro,3500,\"4,5\",prima\n\
Luigi,Bianchi,06 5550002,luigi@example.it,Milano,MI,nord,tanti,,\n\
Carla,Neri,,carla@example.it,Roma,Roma,centro,,,\n\
,Nessuno,,x@example.it,Roma,RM,centro,,,\n\
Paolo,Gialli,0039 347 1234567,paolo@example.it,Roma,RM,centro,,,\n\
Giulia,Blu,,anna@example.it,Roma,RM,centro,,,\n\
Rita,Viola,,rita@example.it,Roma,RM\n\
Sara,Rosa,02 5550003,sara@example,Milano,MI,nord,,\"1.234,56\",\n\
Ugo,Grigi,02 5550004,ugo@example.it,Milano,MI,est,,,\n\
Elena,Marrone,02 5550005,elena@example.it,Milano,MI,nord,1200,\"1.234,56\",\"due\nrighe\"\n"
    );
    let leads = env.file("leads.csv", &text);
    let (code, out, err) = env.import(
        "cc",
        "cc_lead",
        &leads,
        &["--dedup", "phone,email", "--map", "Telefono=phone"],
    );
    assert_eq!(code, 1, "rejected lines make exit code 1: {out}{err}");
    assert_eq!(
        out.trim(),
        "imported 2, updated 0, skipped 2, rejected 6",
        "{err}"
    );

    let report = std::fs::read_to_string(env.dir.path().join("leads.rejects.csv")).unwrap();
    let mut rd = csv::Reader::from_reader(report.as_bytes());
    let head: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &head[..5],
        ["_line", "_column", "_code", "_message", "first_name"]
    );
    // Lines refused while parsing come at once, the engine's refusals when
    // their batch runs: sorted by line here.
    let mut rows: Vec<(String, String, String)> = rd
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string(), r[2].to_string())
        })
        .collect();
    rows.sort_by_key(|r| r.0.parse::<u64>().unwrap());
    let want = [
        ("3", "annual_kwh", "E_TYPE"),
        ("4", "province", "E_PATTERN"),
        ("5", "first_name", "E_REQUIRED"),
        ("8", "", "E_IMPORT_MALFORMED"),
        ("9", "email", "E_PATTERN"),
        ("10", "zone", "E_TYPE"),
    ];
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got, want, "{report}");

    let b = env.store("cc").await;
    let all = records(&b, "cc_lead").await;
    assert_eq!(all.len(), 3);
    let mario = all
        .iter()
        .find(|r| r.fields["first_name"] == "Mario")
        .unwrap();
    assert_eq!(mario.state, "new");
    assert_eq!(
        mario.assignee.as_deref(),
        Some("op-rm"),
        "assigned as a create assigns"
    );
    assert_eq!(mario.fields["operator"], "op-rm", "on_enter effects ran");
    assert_eq!(mario.fields["interest_kw"], "4.5", "decimal comma");
    assert_eq!(mario.fields["annual_kwh"], 3500);
    assert_eq!(mario.fields["source"], "purchased_list", "defaults apply");
    let elena = all
        .iter()
        .find(|r| r.fields["first_name"] == "Elena")
        .unwrap();
    assert_eq!(elena.assignee.as_deref(), Some("op-mi"));
    assert_eq!(elena.fields["interest_kw"], "1234.56");
    assert_eq!(elena.fields["notes"], "due\nrighe");
    let ev = b.events(mario.id).await.unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind.as_str(), "create");
    assert_eq!(ev[0].actor, "import");
    assert_eq!(ev[0].assignee.as_deref(), Some("op-rm"));

    // The report, fixed, imports as it is (its `_` columns are ignored).
    let fixed = report
        .replace(",tanti,", ",4000,")
        .replace(",Roma,centro", ",RM,centro")
        .replace(",,Nessuno,", ",Ida,Nessuno,")
        .replace("sara@example,", "sara@example.it,")
        .replace(",est,", ",nord,");
    let fixed = env.file("fixed.csv", &fixed);
    let (code, out, err) = env.import(
        "cc",
        "cc_lead",
        &fixed,
        &["--dedup", "phone,email", "--map", "Telefono=phone"],
    );
    assert_eq!(
        out.trim(),
        "imported 6, updated 0, skipped 0, rejected 0",
        "{err}"
    );
    assert_eq!(code, 0);
    let all = records(&b, "cc_lead").await;
    assert_eq!(all.len(), 9);
    let rita = all
        .iter()
        .find(|r| r.fields["first_name"] == "Rita")
        .unwrap();
    assert_eq!(
        rita.fields["province"], "RM",
        "the short line, padded, imports"
    );
}

async fn a_rerun_creates_nothing_twice(kind: Kind) {
    let env = Env::new(kind);
    let text = format!(
        "{HEADER}Mario,Rossi,3471234567,,Roma,RM,centro,,,\nLuigi,Bianchi,3479999999,,Roma,RM,centro,,,\nBad,Row,,,Roma,Roma,,,,\n"
    );
    let f = env.file("leads.csv", &text);
    let (_, out, _) = env.import("cc", "cc_lead", &f, &["--map", "Telefono=phone"]);
    assert_eq!(out.trim(), "imported 2, updated 0, skipped 0, rejected 1");
    // No dedup asked: only the import key keeps the re-run from creating twice.
    let (_, out, err) = env.import("cc", "cc_lead", &f, &["--map", "Telefono=phone"]);
    assert_eq!(
        out.trim(),
        "imported 0, updated 0, skipped 0, rejected 1",
        "{err}"
    );
    assert!(
        err.contains("2 lines were imported by an earlier run"),
        "{err}"
    );
    let b = env.store("cc").await;
    assert_eq!(records(&b, "cc_lead").await.len(), 2);
    // Another key is another import.
    let (_, out, _) = env.import(
        "cc",
        "cc_lead",
        &f,
        &["--map", "Telefono=phone", "--key", "again"],
    );
    assert_eq!(out.trim(), "imported 2, updated 0, skipped 0, rejected 1");
    assert_eq!(records(&b, "cc_lead").await.len(), 4);
}

async fn duplicates_update_or_refuse_as_asked(kind: Kind) {
    let env = Env::new(kind);
    let f = env.file(
        "a.csv",
        &format!("{HEADER}Mario,Rossi,3471234567,,Roma,RM,centro,,,vecchia\n"),
    );
    env.import("cc", "cc_lead", &f, &["--map", "Telefono=phone"]);
    let g = env.file(
        "b.csv",
        &format!("{HEADER}Mario,Rossi,+39 347 123 4567,mario@example.it,Roma,RM,centro,,,nuova\nMario,Rossi,+393471234567,,Roma,RM,centro,,,ultima\n"),
    );
    let (code, out, err) = env.import(
        "cc",
        "cc_lead",
        &g,
        &[
            "--map",
            "Telefono=phone",
            "--dedup",
            "phone",
            "--on-duplicate",
            "error",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "imported 0, updated 0, skipped 0, rejected 2",
        "{err}"
    );
    let report = std::fs::read_to_string(env.dir.path().join("b.rejects.csv")).unwrap();
    assert_eq!(report.matches("E_IMPORT_DUPLICATE").count(), 2, "{report}");

    let (code, _, err) = env.import(
        "cc",
        "cc_lead",
        &g,
        &[
            "--map",
            "Telefono=phone",
            "--dedup",
            "phone",
            "--on-duplicate",
            "update",
            "--key",
            "u",
        ],
    );
    assert_eq!(code, 2, "update needs its transition: {err}");
    assert!(err.contains("E_IMPORT_UPDATE"), "{err}");
    let (code, out, err) = env.import(
        "cc",
        "cc_lead",
        &g,
        &[
            "--map",
            "Telefono=phone",
            "--dedup",
            "phone",
            "--on-duplicate",
            "update",
            "--update-with",
            "edit_inline",
            "--key",
            "u",
        ],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "imported 0, updated 2, skipped 0, rejected 0"),
        "{err}"
    );
    let b = env.store("cc").await;
    let all = records(&b, "cc_lead").await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].fields["notes"], "ultima");
    assert_eq!(all[0].fields["email"], "mario@example.it");
    let ev = b.events(all[0].id).await.unwrap();
    let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["create", "bulk", "bulk"]);
    assert_eq!(ev[1].transition.as_deref(), Some("edit_inline"));
}

async fn an_export_imports_into_an_empty_tenant_as_the_same_records(kind: Kind) {
    let env = Env::new(kind);
    let mut text = String::from(HEADER);
    for i in 0..200 {
        let (prov, zone) = if i % 2 == 0 {
            ("RM", "centro")
        } else {
            ("MI", "nord")
        };
        text.push_str(&format!(
            "Nome{i},Cognome {i},+39 347 {i:07},n{i}@example.it,Città {i},{prov},{zone},{},\"{},5\",\"nota, \"\"{i}\"\"\"\n",
            1000 + i,
            i % 7
        ));
    }
    let f = env.file("leads.csv", &text);
    let (_, out, err) = env.import(
        "cc",
        "cc_lead",
        &f,
        &["--map", "Telefono=phone", "--batch", "64"],
    );
    assert_eq!(
        out.trim(),
        "imported 200, updated 0, skipped 0, rejected 0",
        "{err}"
    );
    let one = env.dir.path().join("one.csv");
    let (code, _, err) = env.run(&[
        "export",
        "--tenant",
        "cc",
        "--workflow",
        "cc_lead",
        "-o",
        one.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 200"), "{err}");
    let (_, out, err) = env.import("cc2", "cc_lead", &one, &[]);
    assert_eq!(
        out.trim(),
        "imported 200, updated 0, skipped 0, rejected 0",
        "{err}"
    );
    let (_, two, _) = env.run(&["export", "--tenant", "cc2", "--workflow", "cc_lead"]);
    let strip = |t: &str| -> Vec<Vec<String>> {
        let mut rd = csv::Reader::from_reader(t.as_bytes());
        rd.records()
            .map(|r| {
                let r = r.unwrap();
                // Everything but the id and the instants.
                r.iter()
                    .enumerate()
                    .filter(|(i, _)| ![0, 3, 4].contains(i))
                    .map(|(_, c)| c.to_string())
                    .collect()
            })
            .collect()
    };
    let one = std::fs::read_to_string(one).unwrap();
    assert_eq!(strip(&one), strip(&two));
    assert_eq!(strip(&one).len(), 200);
    // NDJSON the same way.
    let (_, nd, _) = env.run(&[
        "export",
        "--tenant",
        "cc",
        "--workflow",
        "cc_lead",
        "--format",
        "ndjson",
        "--filter",
        "zone=nord",
    ]);
    assert_eq!(nd.lines().count(), 100);
    let first: serde_json::Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
    assert_eq!(first["zone"], "nord");
    assert_eq!(first["_assignee"], "op-mi");
}

async fn an_import_killed_midway_resumes_without_partial_records(kind: Kind) {
    let env = Env::new(kind);
    let n = 6000;
    let mut text = String::from(HEADER);
    for i in 0..n {
        text.push_str(&format!(
            "Nome{i},Cognome,+39 333 {i:07},,Roma,RM,centro,,,\n"
        ));
    }
    let f = env.file("big.csv", &text);
    let b = env.store("cc").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadflow"))
        .args(["import", "--config"])
        .arg(&env.config)
        .args([
            "--tenant",
            "cc",
            "--workflow",
            "cc_lead",
            "--batch",
            "50",
            "--map",
            "Telefono=phone",
            "--dedup",
            "phone",
        ])
        .arg(&f)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let got = records(&b, "cc_lead").await.len();
        if got >= 200 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "the import made no progress"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    // A batch whose COMMIT reached the server before the kill still
    // commits after it: read once the count has settled.
    let mut partial = records(&b, "cc_lead").await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let again = records(&b, "cc_lead").await;
        if again.len() == partial.len() {
            break;
        }
        partial = again;
    }
    assert!(
        partial.len() < n,
        "killed before the end ({} records)",
        partial.len()
    );
    for r in &partial {
        let ev = b.events(r.id).await.unwrap();
        assert_eq!(ev.len(), 1, "record {} has its create event", r.id);
        assert_eq!(r.assignee.as_deref(), Some("op-rm"));
    }
    let (code, out, err) = env.import(
        "cc",
        "cc_lead",
        &f,
        &[
            "--batch",
            "50",
            "--map",
            "Telefono=phone",
            "--dedup",
            "phone",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.trim().starts_with(&format!(
            "imported {}, updated 0, skipped 0, rejected 0",
            n - partial.len()
        )),
        "{out} {err}"
    );
    let all = records(&b, "cc_lead").await;
    assert_eq!(all.len(), n);
    let mut names: Vec<&str> = all
        .iter()
        .map(|r| r.fields["first_name"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "each line once");
}

async fn aslm_imports_arm_timers_and_exports_redact_as_the_actor_sees(kind: Kind) {
    let env = Env::new(kind);
    let f = env.file(
        "aslm.ndjson",
        "{\"first_name\":\"Mario\",\"last_name\":\"Rossi\",\"province\":\"RM\",\"email\":\"m@example.it\",\"phone\":\"+39 06 1234567\",\"consent_marketing\":\"si\",\"model\":\"Ghibli\"}\n\
         {\"first_name\":\"Luca\",\"province\":\"MI\",\"email\":\"l@example.it\",\"consent_marketing\":0}\n\
         {\"first_name\":\"Bad\",\"province\":\"MI\",\"postal_code\":\"1234\"}\n\
         not json\n",
    );
    let (code, out, err) = env.import("aslm", "aslm", &f, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        out.trim(),
        "imported 2, updated 0, skipped 0, rejected 2",
        "{err}"
    );
    let report = std::fs::read_to_string(env.dir.path().join("aslm.rejects.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["_code"], "E_PATTERN");
    assert_eq!(lines[0]["_column"], "postal_code");
    assert_eq!(lines[0]["first_name"], "Bad", "the line itself, to fix");
    assert_eq!(lines[1]["_code"], "E_IMPORT_MALFORMED");
    assert_eq!(lines[1]["_line"], 4);

    let b = env.store("aslm").await;
    let all = records(&b, "aslm").await;
    let mario = all
        .iter()
        .find(|r| r.fields["first_name"] == "Mario")
        .unwrap();
    assert_eq!(mario.state, "assigned");
    assert_eq!(mario.assignee.as_deref(), Some("dealer-rm"));
    assert_eq!(mario.fields["consent_marketing"], true);
    let timers = b.timers(mario.id).await.unwrap();
    assert!(
        timers.iter().any(|t| t.timer == "lost_after_assignment"),
        "{timers:?}"
    );

    let (_, admin, _) = env.run(&[
        "export",
        "--tenant",
        "aslm",
        "--workflow",
        "aslm",
        "--format",
        "ndjson",
    ]);
    assert_eq!(admin.lines().count(), 2);
    assert!(admin.contains("m@example.it") && admin.contains("l@example.it"));
    let (code, rm, err) = env.run(&[
        "export",
        "--tenant",
        "aslm",
        "--workflow",
        "aslm",
        "--format",
        "ndjson",
        "--actor",
        "dealer-rm",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rm.lines().count(),
        1,
        "dealer-rm sees its own record only: {rm}"
    );
    assert!(
        rm.contains("m@example.it"),
        "the assignee sees pii in a reveal_in state"
    );
    assert!(!rm.contains("l@example.it"));
    // Once the record leaves the reveal_in states, the same export hides its pii.
    let dealer = b
        .actors()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.id == "dealer-rm")
        .unwrap();
    let wf_set = b.versions().all_current();
    let wf = wf_set.iter().find(|w| w.id == "aslm").unwrap();
    let reason = wf.fields[wf.field("close_reason").unwrap()].values[0].clone();
    let fire = |t: &'static str, input: Vec<(String, leadflow_engine::Value)>| {
        leadflow_runtime::backend::FireRequest {
            record: mario.id,
            transition: t,
            input,
            actor: &dealer,
            now: chrono::Utc::now(),
            expected_revision: None,
            idempotency_key: None,
            visible: None,
            bulk: false,
        }
    };
    b.fire(fire("log_contact_attempt", Vec::new()))
        .await
        .unwrap();
    b.fire(leadflow_runtime::backend::FireRequest {
        record: mario.id,
        transition: "close_no_sale",
        input: vec![("close_reason".into(), leadflow_engine::Value::Str(reason))],
        actor: &dealer,
        now: chrono::Utc::now(),
        expected_revision: None,
        idempotency_key: None,
        visible: None,
        bulk: false,
    })
    .await
    .unwrap();
    let (_, rm, _) = env.run(&[
        "export",
        "--tenant",
        "aslm",
        "--workflow",
        "aslm",
        "--format",
        "ndjson",
        "--actor",
        "dealer-rm",
    ]);
    assert_eq!(rm.lines().count(), 1, "{rm}");
    assert!(!rm.contains("m@example.it"), "{rm}");
    assert!(rm.contains("\"_redacted\":[\"email\",\"phone\"]"), "{rm}");
}

async fn a_bulk_dry_run_reports_what_the_real_run_does(kind: Kind) {
    let env = Env::new(kind);
    let mut text = String::from(HEADER);
    for i in 0..30 {
        let (prov, zone) = if i % 3 == 0 {
            ("MI", "nord")
        } else {
            ("RM", "centro")
        };
        text.push_str(&format!(
            "Nome{i},Cognome,+39 333 {i:07},,Roma,{prov},{zone},,,\n"
        ));
    }
    let f = env.file("leads.csv", &text);
    let (_, out, err) = env.import("cc", "cc_lead", &f, &["--map", "Telefono=phone"]);
    assert_eq!(
        out.trim(),
        "imported 30, updated 0, skipped 0, rejected 0",
        "{err}"
    );
    let b = env.store("cc").await;
    let ids: Vec<i64> = records(&b, "cc_lead").await.iter().map(|r| r.id).collect();
    // Three records closed first, so the filtered run must leave them out
    // and the listed run must find them final.
    let first: Vec<String> = ids[..3].iter().map(i64::to_string).collect();
    let bulk = |extra: &[&str]| {
        let mut args = vec!["bulk", "--tenant", "cc", "--workflow", "cc_lead"];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    let (code, _, err) = bulk(&[
        "--transition",
        "mark_invalid",
        "--input",
        r#"{"close_reason":"wrong_number"}"#,
        "--ids",
        &first.join(","),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("fired 3, refused 0"), "{err}");

    let listed = format!("{},{},{},999999", ids[0], ids[5], ids[6]);
    for args in [
        vec![
            "--transition",
            "close_not_interested",
            "--input",
            r#"{"close_reason":"other"}"#,
            "--filter",
            "zone=centro",
        ],
        vec![
            "--transition",
            "close_not_interested",
            "--input",
            r#"{"close_reason":"other"}"#,
            "--ids",
            &listed,
        ],
        vec![
            "--transition",
            "close_not_interested",
            "--filter",
            "zone=nord",
        ],
    ] {
        let before: Vec<_> = records(&b, "cc_lead").await;
        let mut dry_args = args.clone();
        dry_args.push("--dry-run");
        let (code, dry, derr) = bulk(&dry_args);
        assert_eq!(code, 0, "{derr}");
        assert_eq!(
            records(&b, "cc_lead").await,
            before,
            "a dry run writes nothing"
        );
        let (code, real, rerr) = bulk(&args);
        assert_eq!(code, 0, "{rerr}");
        assert_eq!(dry.replace("would_fire", "fired"), real, "{args:?}");
        assert_eq!(derr.replace("would fire", "fired"), rerr);
        assert!(real.lines().count() > 1, "{real}");
    }
    let all = records(&b, "cc_lead").await;
    let centro_open = all
        .iter()
        .filter(|r| r.fields["zone"] == "centro" && r.state == "new")
        .count();
    assert_eq!(centro_open, 0, "every open centro lead was closed");
    let (_, listed_report, _) = bulk(&[
        "--transition",
        "close_not_interested",
        "--input",
        r#"{"close_reason":"other"}"#,
        "--ids",
        &listed,
        "--dry-run",
    ]);
    let codes: Vec<&str> = listed_report
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(
        codes,
        ["E_FINAL", "E_FINAL", "E_FINAL", "E_NOT_FOUND"],
        "{listed_report}"
    );
    let nord = all
        .iter()
        .find(|r| r.fields["zone"] == "nord" && r.state == "new")
        .unwrap();
    let ev = b.events(nord.id).await.unwrap();
    assert_eq!(
        ev.len(),
        1,
        "refused (close_reason required): nothing written"
    );
    let closed = all
        .iter()
        .find(|r| r.fields["zone"] == "centro" && r.state == "not_interested")
        .unwrap();
    let ev = b.events(closed.id).await.unwrap();
    assert_eq!(ev.last().unwrap().kind.as_str(), "bulk");
}
