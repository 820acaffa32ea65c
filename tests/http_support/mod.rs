//! Shared by the `tests/http_*.rs` suites: a real daemon on an ephemeral
//! port over a fresh SQLite file or a fresh PostgreSQL database (created
//! and dropped per test on `LEADFLOW_TEST_PG`, default 127.0.0.1:5432 user
//! postgres; a Citus cluster works too, see runtime/tests/common/pgtest.rs),
//! and a client.
#![allow(dead_code)]

use leadflow_runtime::config::{hash_key, Config};
use leadflow_runtime::http::{ServeOptions, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// One test per store: `both!(name, ...)` turns each `async fn name(kind:
/// Kind)` into `name::sqlite` and `name::postgres` tests.
#[allow(unused_macros)]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(crate::http_support::Kind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(crate::http_support::Kind::Pg).await
            }
        }
    )*};
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Sqlite,
    Pg,
    /// The memory store (`mem:`): nothing outlives the daemon.
    Mem,
}

/// A database for one test: dropped (PostgreSQL) or deleted with its
/// directory (SQLite) at the end.
pub struct Db {
    pub url: String,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

/// Run `sql` as the superuser of the test server (asserts success).
pub fn psql(sql: &str) {
    crate::pgtest::psql_admin(sql);
}

impl Db {
    pub fn new(kind: Kind) -> Db {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::Mem => Db {
                url: "mem:".to_string(),
                pg_name: None,
                _dir: dir,
            },
            Kind::Sqlite => Db {
                url: format!("sqlite:{}", dir.path().join("lf.db").display()),
                pg_name: None,
                _dir: dir,
            },
            Kind::Pg => {
                let name = format!(
                    "lf_http_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                );
                Db {
                    url: crate::pgtest::create_db(&name),
                    pg_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }
}

impl Db {
    /// PostgreSQL: refuse new connections and end the open ones, as a
    /// database going down would (superusers included).
    pub fn cut_off(&self) {
        if let Some(n) = &self.pg_name {
            psql(&format!("ALTER DATABASE {n} ALLOW_CONNECTIONS false"));
            psql(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{n}'"
            ));
        }
    }

    /// Undo [`Db::cut_off`].
    pub fn restore(&self) {
        if let Some(n) = &self.pg_name {
            psql(&format!("ALTER DATABASE {n} ALLOW_CONNECTIONS true"));
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(n) = &self.pg_name {
            crate::pgtest::drop_db(n);
        }
    }
}

/// [`config_text`], parsed, for a test to adjust before
/// [`Daemon::start_config`].
pub fn test_config(root: &Path) -> Config {
    Config::parse(&config_text(root), "test.toml", Path::new("/")).unwrap()
}

/// Three tenants: aslm (dealers), qpartner (a pool by area), other (a
/// second aslm tenant, for isolation). Keys are `<name>-key`.
pub fn config_text(root: &Path) -> String {
    let root = root.display();
    let k = |n: &str| hash_key(&format!("{n}-key"));
    format!(
        r#"
listen = "127.0.0.1:0"

[tenants.aslm]
root = "{root}"
workflows = ["aslm"]
[tenants.aslm.actors.dealer-rm]
role = "dealer"
zones = ["RM"]
[tenants.aslm.actors.dealer-mi]
role = "dealer"
zones = ["MI"]
[[tenants.aslm.keys]]
name = "admin"
sha256 = "{}"
role = "hq"
[[tenants.aslm.keys]]
name = "dealer-rm"
sha256 = "{}"
actor = "dealer-rm"
[[tenants.aslm.keys]]
name = "dealer-mi"
sha256 = "{}"
actor = "dealer-mi"

[tenants.qpartner]
root = "{root}"
workflows = ["qpartner"]
[[tenants.qpartner.pools]]
workflow = "qpartner"
states = ["available"]
zone_field = "area"
followed_by = ["sales_rep"]
[tenants.qpartner.actors.rep-rm]
role = "sales_rep"
zones = ["IT-LAZIO"]
[tenants.qpartner.actors.inst-a]
role = "installer"
zones = ["IT-LAZIO"]
[tenants.qpartner.actors.inst-b]
role = "installer"
zones = ["IT-LAZIO"]
[tenants.qpartner.actors.inst-mi]
role = "installer"
zones = ["IT-LOMBARDIA"]
[[tenants.qpartner.keys]]
name = "qp-admin"
sha256 = "{}"
[[tenants.qpartner.keys]]
name = "inst-a"
sha256 = "{}"
actor = "inst-a"
[[tenants.qpartner.keys]]
name = "inst-b"
sha256 = "{}"
actor = "inst-b"
[[tenants.qpartner.keys]]
name = "inst-mi"
sha256 = "{}"
actor = "inst-mi"
[[tenants.qpartner.keys]]
name = "rep-rm"
sha256 = "{}"
actor = "rep-rm"

[tenants.other]
root = "{root}"
workflows = ["aslm"]
[tenants.other.actors.dealer-rm]
role = "dealer"
zones = ["RM"]
[[tenants.other.keys]]
name = "other-admin"
sha256 = "{}"
"#,
        k("admin"),
        k("dealer-rm"),
        k("dealer-mi"),
        k("qp-admin"),
        k("inst-a"),
        k("inst-b"),
        k("inst-mi"),
        k("rep-rm"),
        k("other-admin"),
    )
}

pub struct Daemon {
    pub base: String,
    pub http: reqwest::Client,
    pub server: Option<Server>,
    pub db: Db,
}

impl Daemon {
    pub async fn start(kind: Kind) -> Daemon {
        Daemon::start_with(Db::new(kind), &repo(), false).await
    }

    pub async fn start_with(db: Db, root: &Path, watch: bool) -> Daemon {
        let cfg = Config::parse(&config_text(root), "test.toml", Path::new("/")).unwrap();
        Daemon::start_config(db, cfg, watch).await
    }

    /// Start on a config the test adjusted (its database URL is set here).
    pub async fn start_config(db: Db, mut cfg: Config, watch: bool) -> Daemon {
        cfg.database_url = Some(db.url.clone());
        let opts = ServeOptions {
            watch,
            ..ServeOptions::default()
        };
        let server = Server::start(&cfg, opts).await.expect("daemon starts");
        Daemon {
            base: format!("http://{}", server.addr),
            http: reqwest::Client::new(),
            server: Some(server),
            db,
        }
    }

    /// Shut down gracefully; the database lives on with the returned handle.
    pub async fn stop(mut self) -> Db {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        self.db
    }

    fn req(&self, m: reqwest::Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.request(m, format!("{}{path}", self.base));
        match key {
            Some(k) => r.bearer_auth(format!("{k}-key")),
            None => r,
        }
    }

    pub async fn call(
        &self,
        m: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut r = self.req(m, path, key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        Resp::from(r.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(reqwest::Method::GET, path, Some(key), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(key), Some(body), &[])
            .await
    }

    /// Create an ASLM lead in Rome (assigned to dealer-rm).
    pub async fn aslm_lead(&self, key: &str, last_name: &str) -> Resp {
        let r = self
            .post(
                "/v1/records",
                key,
                json!({"workflow": "aslm", "fields": {"first_name": "Mario", "last_name": last_name,
                       "province": "RM", "phone": "+39 06 1234567", "email": "mario@example.it", "model": "Ghibli"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r
    }

    /// Create a Q.PARTNER lead in the Lazio pool.
    pub async fn qp_lead(&self) -> Resp {
        let r = self
            .post(
                "/v1/records",
                "qp-admin",
                json!({"workflow": "qpartner", "fields": {"area": "IT-LAZIO", "name": "Test1 ITroma",
                       "postal_code": "00185", "city": "Roma", "street": "Via Cialdini 14",
                       "email": "q@example.de", "phone": "034114065515"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    async fn from(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    pub fn id(&self) -> i64 {
        self.body["id"].as_i64().unwrap()
    }
}

/// Copy the parts of the repository a tenant project needs into `dir`.
pub fn copy_project(dir: &Path) {
    for sub in ["rules", "calendars"] {
        let to = dir.join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(repo().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    for w in ["aslm", "qpartner"] {
        std::fs::copy(
            repo().join(format!("workflows/{w}.toml")),
            dir.join(format!("workflows/{w}.toml")),
        )
        .unwrap();
    }
}
