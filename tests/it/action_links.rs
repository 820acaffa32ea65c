//! One-click action links as a recipient uses them: the daemon with the
//! shipped Oplead workflow and templates mails the proposal (ACCETTA /
//! RIFIUTA links) to a real SMTP receiver on a local port, over a real
//! SQLite file; the links are taken from the mails received and opened
//! over HTTP as a browser would. RIFIUTA without its reason shows the form
//! again with the error; with it, the proposal passes to the next Expert
//! and the first Expert's ACCETTA link is out of date; a replayed, altered
//! or expired link is refused with its page and code; ACCETTA through the
//! second Expert's link accepts the lead. A GET never changes the record.
//! The key is written in the config (`[links] secret`), so the test sets
//! no environment variable; a `secret_env` naming an unset variable stops
//! the start with `E_LINK_KEY`.

use crate::smtp;
use chrono::{Duration as Days, Utc};
use leadflow_runtime::config::{hash_key, Config};
use leadflow_runtime::http::{ServeOptions, Server, StartError};
use leadflow_runtime::links::{Claims, LinkKey};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY: &str = "0123456789abcdef0123456789abcdef-test-link-key";
const PHONE: &str = "+39 02 1234567";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `key`: `secret = "..."` or `secret_env = "..."`.
fn config(dir: &Path, smtp_port: u16, key: &str) -> Config {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
database_url = "sqlite:{db}"

[links]
{key}

[tenants.oplead]
root = "{root}"
workflows = ["oplead_project", "oplead_survey"]
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
[tenants.oplead.actors.exp-b]
role = "expert"
zones = ["MI"]
skills = ["roller_shutters", "supply_and_installation"]
email = "expert.b@example.it"
[[tenants.oplead.keys]]
name = "cc"
sha256 = "{cc}"
role = "call_center"
[tenants.oplead.sink]
kind = "smtp"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Somfy Oplead <oplead@example.it>"
"#,
        db = dir.join("lf.db").display(),
        root = repo().display(),
        cc = hash_key("cc-key"),
    );
    Config::parse(&text, "leadflow.toml", dir).unwrap()
}

/// The mail's text as sent, with quoted-printable soft breaks and `=`
/// escapes undone (the links are ASCII).
fn plain(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The URL after `label` (`ACCETTA: `) in the text part of the proposal
/// mailed to `rcpt`, waiting for the mail.
async fn link_in_mail(mails: &smtp::Mails, rcpt: &str, nth: usize, label: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<String> = mails
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains(&format!("RCPT <{rcpt}>")) && m.contains("in esclusiva"))
            .map(|m| plain(m))
            .collect();
        if let Some(m) = found.get(nth) {
            let i = m
                .find(label)
                .unwrap_or_else(|| panic!("no `{label}` link in the mail:\n{m}"));
            let rest = &m[i + label.len()..];
            let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            return rest[..end].to_string();
        }
        assert!(Instant::now() < deadline, "no proposal mail to {rcpt}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn record(base: &str, id: i64) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/v1/records/{id}"))
        .bearer_auth("cc-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A page: (status, HTML).
async fn open(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{url}: not a page"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.text().await.unwrap())
}

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[test]
fn proposal_links_accept_refuse_and_refuse_what_they_must() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (port, mails) = smtp::server().await;
        let opts = ServeOptions {
            timers: false,
            watch: false,
            ..ServeOptions::default()
        };

        // The variable the config names is not set: no start, a stable code.
        let unset = config(
            dir.path(),
            port,
            r#"secret_env = "LEADFLOW_TEST_LINK_KEY_NEVER_SET""#,
        );
        match Server::start(&unset, opts.clone()).await {
            Err(StartError::Config(e)) => assert_eq!(e.code(), "E_LINK_KEY", "{e}"),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("started without the link key"),
        }

        let short = config(dir.path(), port, r#"secret = "too short""#);
        match Server::start(&short, opts.clone()).await {
            Err(StartError::Config(e)) => assert_eq!(e.code(), "E_LINK_KEY", "{e}"),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("started with a short link key"),
        }

        let server = Server::start(
            &config(dir.path(), port, &format!("secret = \"{KEY}\"")),
            opts,
        )
        .await
        .expect("daemon starts");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::new();
        let lead: Value = http
            .post(format!("{base}/v1/records"))
            .bearer_auth("cc-key")
            .json(&json!({"workflow": "oplead_project", "fields": {
                "request_type": "supply_and_installation", "applications": ["roller_shutters"],
                "town": "Milano", "postal_code": "20121", "province": "MI",
                "first_name": "Mario", "last_name": "Rossi", "phone": PHONE,
                "email": "mario.rossi@example.it", "address": "Via Roma 1"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = lead["id"].as_i64().unwrap();
        let q: Value = http
            .post(format!("{base}/v1/records/{id}/transitions/qualify"))
            .bearer_auth("cc-key")
            .json(&json!({"input": {"qualification": "ok"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let first = q["assignee"].as_str().unwrap().to_string();
        let second = if first == "exp-a" { "exp-b" } else { "exp-a" };
        let mail = |a: &str| format!("expert.{}@example.it", &a[4..]);
        let revision = q["revision"].as_i64().unwrap();

        let accept_1 = link_in_mail(&mails, &mail(&first), 0, "ACCETTA: ").await;
        let refuse_1 = link_in_mail(&mails, &mail(&first), 0, "RIFIUTA: ").await;
        assert!(
            accept_1.starts_with(&format!("{base}/links/")),
            "{accept_1}"
        );
        assert_ne!(accept_1, refuse_1);

        // GET shows the confirmation and changes nothing, however often.
        for _ in 0..2 {
            let (status, page) = open(&refuse_1).await;
            assert_eq!(status, 200, "{page}");
            assert!(page.contains("RIFIUTA"), "{page}");
            assert!(page.contains(r#"name="refusal_reason""#), "{page}");
            assert!(page.contains("<form method=\"post\""), "{page}");
            assert!(!page.contains(PHONE), "no contact data before ACCETTA");
        }
        let now = record(&base, id).await;
        assert_eq!(now["revision"].as_i64(), Some(revision), "GET changed it");
        assert_eq!(now["assignee"], first.as_str());

        // RIFIUTA without its reason: the form again, with the error.
        let (status, page) = post(&refuse_1, &[("refusal_reason", "")]).await;
        assert_eq!(status, 422, "{page}");
        assert!(page.contains("E_REQUIRED"), "{page}");
        assert!(page.contains(r#"name="refusal_reason""#), "{page}");
        assert_eq!(record(&base, id).await["revision"].as_i64(), Some(revision));

        // With it: refused; the proposal goes to the other Expert.
        let (status, page) = post(&refuse_1, &[("refusal_reason", "troppo lontano")]).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Fatto"), "{page}");
        let after = record(&base, id).await;
        assert_eq!(after["state"], "proposed");
        assert_eq!(after["assignee"], second, "{after}");
        let refusals = after["fields"]["refusals"].to_string();
        assert!(refusals.contains("troppo lontano"), "{after}");

        // The same link again: used.
        let (status, page) = post(&refuse_1, &[("refusal_reason", "ancora")]).await;
        assert_eq!(status, 410, "{page}");
        assert!(page.contains("E_LINK_USED"), "{page}");
        let (status, page) = open(&refuse_1).await;
        assert_eq!(
            (status, page.contains("E_LINK_USED")),
            (410, true),
            "{page}"
        );

        // The first Expert's ACCETTA: the record moved on (superseded revision).
        let (status, page) = open(&accept_1).await;
        assert_eq!(status, 409, "{page}");
        assert!(page.contains("E_LINK_STALE"), "{page}");
        let (status, page) = post(&accept_1, &[]).await;
        assert_eq!(
            (status, page.contains("E_LINK_STALE")),
            (409, true),
            "{page}"
        );
        assert_eq!(record(&base, id).await["assignee"], second);

        let accept_2 = link_in_mail(&mails, &mail(second), 0, "ACCETTA: ").await;
        let rev_2 = record(&base, id).await["revision"].as_i64().unwrap();

        // Altered: one character of the claims or of the signature.
        let token = accept_2.rsplit('/').next().unwrap().to_string();
        let (claims, sig) = token.split_once('.').unwrap();
        let flip = |s: &str, i: usize| {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        for bad in [
            format!("{}.{sig}", flip(claims, 5)),
            format!("{claims}.{}", flip(sig, 3)),
            claims.to_string(),
            "nonsense".to_string(),
        ] {
            let url = format!("{base}/links/{bad}");
            let (status, page) = open(&url).await;
            assert_eq!(status, 400, "{bad}: {page}");
            assert!(page.contains("E_LINK_INVALID"), "{page}");
            let (status, page) = post(&url, &[]).await;
            assert_eq!((status, page.contains("E_LINK_INVALID")), (400, true));
        }

        // Expired: a link signed with the daemon's key, for this record at
        // its revision, whose time is over.
        let key = LinkKey::new(KEY.as_bytes(), &base, 7).unwrap();
        let expired = key.url(&Claims {
            tenant: "oplead".into(),
            record: id,
            revision: rev_2,
            transition: "accept".into(),
            actor: second.to_string(),
            expires: Utc::now() - Days::minutes(1),
        });
        let (status, page) = post(&expired, &[]).await;
        assert_eq!(status, 410, "{page}");
        assert!(page.contains("E_LINK_EXPIRED"), "{page}");
        // The same claims in time are honoured: the key is the daemon's.
        let fresh_url = key.url(&Claims {
            tenant: "oplead".into(),
            record: id,
            revision: rev_2,
            transition: "accept".into(),
            actor: second.to_string(),
            expires: Utc::now() + Days::hours(1),
        });
        assert_eq!(open(&fresh_url).await.0, 200);
        assert_eq!(record(&base, id).await["revision"].as_i64(), Some(rev_2));

        // ACCETTA from the mail: accepted as that Expert.
        let (status, page) = open(&accept_2).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("ACCETTA"), "{page}");
        let (status, page) = post(&accept_2, &[]).await;
        assert_eq!(status, 200, "{page}");
        let done = record(&base, id).await;
        assert_eq!(done["state"], "to_work", "{done}");
        assert_eq!(done["assignee"], second);
        assert!(!done["fields"]["accepted_at"].is_null(), "{done}");
        // The acceptance mail, with the contact data, follows.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !mails
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains(&format!("RCPT <{}>", mail(second))) && plain(m).contains(PHONE))
        {
            assert!(Instant::now() < deadline, "no acceptance mail");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Replayed: used (and the hand-made link of the same revision is stale).
        let (status, page) = post(&accept_2, &[]).await;
        assert_eq!(
            (status, page.contains("E_LINK_USED")),
            (410, true),
            "{page}"
        );
        let (status, page) = post(&fresh_url, &[]).await;
        assert_eq!(
            (status, page.contains("E_LINK_STALE")),
            (409, true),
            "{page}"
        );
        let history: Value = http
            .get(format!("{base}/v1/records/{id}/history"))
            .bearer_auth("cc-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let accepts = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["transition"] == "accept")
            .count();
        assert_eq!(accepts, 1, "accepted once: {history}");
        server.shutdown().await.unwrap();
    });
}
