//! Notifications as their recipients receive them: the daemon with the
//! shipped Oplead and Q.PARTNER workflows, messages delivered to a real
//! SMTP receiver and a real webhook receiver on local ports, over a real
//! SQLite file. Each recipient gets only what the API would show it at that
//! moment: no customer contact data in the Oplead proposal before ACCETTA
//! nor in the Q.PARTNER pool mail, the contact data in the assignee's mail
//! once accepted; and the stored outbox rows keep no more than that.

use crate::smtp;

use leadflow_runtime::config::{hash_key, Config};
use leadflow_runtime::http::{ServeOptions, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const PHONE: &str = "+39 02 1234567";
const EMAIL: &str = "mario.rossi@example.it";
const STREET: &str = "Via Roma 1";

fn config(dir: &Path, smtp_port: u16, hook: &str, templates: &Path) -> Config {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
database_url = "sqlite:{db}"

[tenants.oplead]
root = "{root}"
workflows = ["oplead_project", "oplead_survey"]
templates = "{templates}"
[tenants.oplead.notifications]
language = "it"
[tenants.oplead.actors.cc]
role = "call_center"
[tenants.oplead.actors.somfy]
role = "somfy"
email = "leads@somfy.example.it"
[tenants.oplead.actors.exp-a]
role = "expert"
zones = ["MI"]
skills = ["roller_shutters", "supply_and_installation"]
email = "expert.a@example.it"
[[tenants.oplead.keys]]
name = "cc"
sha256 = "{cc}"
role = "call_center"
[[tenants.oplead.keys]]
name = "exp-a"
sha256 = "{exp}"
actor = "exp-a"
[tenants.oplead.sink]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Somfy Oplead <oplead@example.it>"
reply_to = "Somfy Lead <leads@example.it>"

[tenants.qpartner]
root = "{root}"
workflows = ["qpartner"]
templates = "{templates}"
[tenants.qpartner.actors.inst-a]
role = "installer"
zones = ["IT-LAZIO"]
email = "inst.a@example.it"
[tenants.qpartner.actors.inst-b]
role = "installer"
zones = ["IT-LAZIO"]
email = "inst.b@example.it"
[tenants.qpartner.actors.inst-mi]
role = "installer"
zones = ["IT-LOMBARDIA"]
email = "inst.mi@example.it"
[[tenants.qpartner.keys]]
name = "qp-admin"
sha256 = "{qp}"
[tenants.qpartner.sink]
kind = "webhook"
url = "{hook}"
secret = "test-secret"
"#,
        db = dir.join("lf.db").display(),
        root = repo().display(),
        templates = templates.display(),
        cc = hash_key("cc-key"),
        exp = hash_key("exp-key"),
        qp = hash_key("qp-key"),
    );
    Config::parse(&text, "leadflow.toml", dir).unwrap()
}

type Events = Arc<Mutex<Vec<Value>>>;

async fn webhook_receiver() -> (String, Events) {
    let got: Events = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

async fn call(base: &str, key: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(x) = f() {
            return x;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The mail to `rcpt` whose subject contains `subject`.
fn mail_to(mails: &smtp::Mails, rcpt: &str, subject: &str) -> Option<String> {
    mails
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.contains(&format!("RCPT <{rcpt}>")) && m.contains(subject))
        .cloned()
}

/// The payloads of the stored outbox rows, as text.
async fn stored_rows(db: &Path, template: &str) -> Vec<(String, String)> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT recipients, payload FROM outbox WHERE template = ? ORDER BY id")
            .bind(template)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

/// The mail's text as sent, with quoted-printable soft breaks and
/// escapes undone (enough for the ASCII values the test looks for).
fn plain(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

#[test]
fn each_recipient_gets_only_what_it_may_see() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // The shipped templates: what they print is all a recipient gets.
        let templates = repo().join("templates");
        let (port, mails) = smtp::server().await;
        let (hook, events) = webhook_receiver().await;
        let cfg = config(dir.path(), port, &hook, &templates);
        let opts = ServeOptions {
            timers: false,
            watch: false,
            ..ServeOptions::default()
        };
        let server = Server::start(&cfg, opts).await.expect("daemon starts");
        let base = format!("http://{}", server.addr);

        // Oplead: the call center qualifies; the Expert gets the proposal.
        let lead = call(
            &base,
            "cc-key",
            "/v1/records",
            json!({"workflow": "oplead_project", "fields": {
            "request_type": "supply_and_installation", "applications": ["roller_shutters"],
            "town": "Milano", "postal_code": "20121", "province": "MI",
            "first_name": "Mario", "last_name": "Rossi", "phone": PHONE, "email": EMAIL,
            "address": STREET, "request": "Motorizzare 4 tapparelle"}}),
        )
        .await;
        let id = lead["id"].as_i64().unwrap();
        let q = call(
            &base,
            "cc-key",
            &format!("/v1/records/{id}/transitions/qualify"),
            json!({"input": {"qualification": "ok"}}),
        )
        .await;
        assert_eq!(q["assignee"], "exp-a", "{q}");
        let proposal = wait_for("the proposal mail", || {
            mail_to(&mails, "expert.a@example.it", "Reply-To").and_then(|m| {
                plain(&m)
                    .contains(&format!("lead n. {id}"))
                    .then(|| plain(&m))
            })
        })
        .await;
        for secret in [PHONE, EMAIL, STREET, "Mario", "Rossi"] {
            assert!(
                !proposal.contains(secret),
                "the proposal leaks `{secret}`:\n{proposal}"
            );
        }
        for shown in ["CAP: 20121", "Milano (MI)", "Tapparelle", "Valido fino a:"] {
            assert!(proposal.contains(shown), "`{shown}` missing:\n{proposal}");
        }

        // ACCETTA: the second mail, to the assignee, carries the contact data.
        call(
            &base,
            "exp-key",
            &format!("/v1/records/{id}/transitions/accept"),
            json!({}),
        )
        .await;
        let accepted = wait_for("the acceptance mail", || {
            mail_to(&mails, "expert.a@example.it", "hai accettato la lead").map(|m| plain(&m))
        })
        .await;
        for shown in [PHONE, EMAIL, STREET, "Cliente: Mario Rossi"] {
            assert!(
                accepted.contains(shown),
                "`{shown}` missing after acceptance:\n{accepted}"
            );
        }

        // The record's messages and their delivery state, as the Expert sees them.
        let deadline = Instant::now() + Duration::from_secs(30);
        let list = loop {
            assert!(Instant::now() < deadline, "the messages were not delivered");
            let v: Value = reqwest::Client::new()
                .get(format!("{base}/v1/records/{id}/notifications"))
                .bearer_auth("exp-key")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let done = v
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["status"] == "delivered");
            if done && v.as_array().unwrap().len() == 2 {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let templates: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["template"].as_str().unwrap())
            .collect();
        assert_eq!(templates, ["proposal", "lead_accepted"], "{list}");
        assert_eq!(list[0]["recipients"], json!(["exp-a"]));
        assert_eq!(list[0]["attempts"], 1);

        // Q.PARTNER: the pool mail reaches each installer of the area, once,
        // without the customer's street, e-mail or phone.
        let qp = call(
            &base,
            "qp-key",
            "/v1/records",
            json!({"workflow": "qpartner", "fields": {
            "area": "IT-LAZIO", "name": "Anna Bianchi", "postal_code": "00185", "city": "Roma",
            "street": STREET, "email": EMAIL, "phone": PHONE}}),
        )
        .await;
        let qid = qp["id"].as_i64().unwrap();
        let pool = wait_for("two pool events", || {
            let e = events.lock().unwrap();
            (e.len() >= 2).then(|| e.clone())
        })
        .await;
        server.shutdown().await.unwrap();
        let mut to: Vec<&str> = pool
            .iter()
            .map(|e| e["recipients"][0].as_str().unwrap())
            .collect();
        to.sort();
        assert_eq!(to, ["inst-a", "inst-b"], "the installers of IT-LAZIO only");
        for e in &pool {
            assert_eq!(e["record"].as_i64(), Some(qid));
            let text = e.to_string();
            for secret in [PHONE, EMAIL, STREET] {
                assert!(
                    !text.contains(secret),
                    "the pool event leaks `{secret}`: {e:#}"
                );
            }
            let mut redacted: Vec<&str> = e["payload"]["redacted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            redacted.sort();
            assert_eq!(redacted, ["email", "phone", "street"], "{e:#}");
            let body = e["body"].as_str().unwrap();
            assert!(body.contains("00185 Roma"), "{e:#}");
        }

        // What is stored matches what was sent: no row keeps more.
        let db = dir.path().join("lf.db");
        let rows = stored_rows(&db, "proposal").await;
        assert_eq!(rows.len(), 1);
        for secret in [PHONE, EMAIL, STREET] {
            assert!(
                !rows[0].1.contains(secret),
                "stored proposal keeps `{secret}`"
            );
        }
        let rows = stored_rows(&db, "lead_available").await;
        assert_eq!(rows.len(), 2, "one row per installer");
        for (_, payload) in &rows {
            for secret in [PHONE, EMAIL, STREET] {
                assert!(
                    !payload.contains(secret),
                    "stored pool row keeps `{secret}`"
                );
            }
        }
        let rows = stored_rows(&db, "lead_accepted").await;
        assert!(rows[0].1.contains(PHONE), "the assignee may see it, now");
    });
}

/// Copy the directory tree `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A new Oplead lead qualified to the Expert; the text of the proposal
/// mail it gets.
async fn proposal_for_new_lead(base: &str, mails: &smtp::Mails) -> String {
    let lead = call(
        base,
        "cc-key",
        "/v1/records",
        json!({"workflow": "oplead_project", "fields": {
        "request_type": "supply_and_installation", "applications": ["roller_shutters"],
        "town": "Milano", "postal_code": "20121", "province": "MI",
        "first_name": "Mario", "last_name": "Rossi", "phone": PHONE, "email": EMAIL,
        "address": STREET, "request": "Motorizzare 4 tapparelle"}}),
    )
    .await;
    let id = lead["id"].as_i64().unwrap();
    call(
        base,
        "cc-key",
        &format!("/v1/records/{id}/transitions/qualify"),
        json!({"input": {"qualification": "ok"}}),
    )
    .await;
    let marker = format!("lead n. {id}");
    wait_for("the proposal mail", || {
        mails
            .lock()
            .unwrap()
            .iter()
            .map(|m| plain(m))
            .find(|m| m.contains("RCPT <expert.a@example.it>") && m.contains(&marker))
    })
    .await
}

/// The daemon's watcher, through real files: an edited template reaches
/// the next mails without a restart; an edit that does not compile is not
/// published (the last good templates keep rendering, nothing fails); the
/// fix is picked up again.
#[test]
fn an_edited_template_reaches_the_next_mails_and_a_broken_edit_keeps_the_last_good_one() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("templates");
        copy_tree(&repo().join("templates"), &templates);
        let (port, mails) = smtp::server().await;
        let (hook, _events) = webhook_receiver().await;
        let cfg = config(dir.path(), port, &hook, &templates);
        let opts = ServeOptions {
            timers: false,
            watch: true,
            ..ServeOptions::default()
        };
        let server = Server::start(&cfg, opts).await.expect("daemon starts");
        let base = format!("http://{}", server.addr);
        let file = templates.join("oplead_project/proposal.it.txt");
        let original = std::fs::read_to_string(&file).unwrap();

        let first = proposal_for_new_lead(&base, &mails).await;
        assert!(first.contains("Il team Somfy") && !first.contains("VERSIONE"));

        // A valid edit: the next mails carry it, once the watcher saw it.
        std::fs::write(&file, format!("{original}\nVERSIONE DUE\n")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = proposal_for_new_lead(&base, &mails).await;
            if m.contains("VERSIONE DUE") {
                break;
            }
            assert!(Instant::now() < deadline, "the edit never reached a mail:\n{m}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // A broken edit: not published; the last good version keeps
        // rendering, and the message is delivered, not failed.
        std::fs::write(&file, format!("{original}\n{{% if %}}VERSIONE ROTTA\n")).unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let m = proposal_for_new_lead(&base, &mails).await;
        assert!(
            m.contains("VERSIONE DUE") && !m.contains("ROTTA"),
            "a broken edit replaced the last good template:\n{m}"
        );

        // The fix is picked up.
        std::fs::write(&file, format!("{original}\nVERSIONE TRE\n")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = proposal_for_new_lead(&base, &mails).await;
            if m.contains("VERSIONE TRE") {
                break;
            }
            assert!(Instant::now() < deadline, "the fix never reached a mail:\n{m}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let failed: Vec<(String, String)> = {
            let pool = sqlx::SqlitePool::connect(&format!(
                "sqlite:{}",
                dir.path().join("lf.db").display()
            ))
            .await
            .unwrap();
            let rows = sqlx::query_as(
                "SELECT template, coalesce(last_error, '') FROM outbox WHERE last_error IS NOT NULL",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        };
        assert!(failed.is_empty(), "messages failed: {failed:?}");
    });
}
