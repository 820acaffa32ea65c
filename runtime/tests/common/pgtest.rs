//! Fresh PostgreSQL databases for tests, shared by the runtime's and the
//! workspace's test binaries. The server is `LEADFLOW_TEST_PG` (an admin
//! URL, default `postgres://postgres@127.0.0.1:5432/postgres`). When it is
//! a Citus coordinator (its admin database has the `citus` extension, as
//! `scripts/citus-cluster.sh` sets it up), a database is created on every
//! node, with the extension, and the workers are registered in it: Citus
//! 13 neither propagates `CREATE DATABASE` nor shares node metadata
//! between databases (scripts/citus.sh runs the suites that way).
#![allow(dead_code)]

use std::process::Command;
use std::sync::OnceLock;

/// The admin URL of the test server.
pub fn admin_url() -> String {
    std::env::var("LEADFLOW_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `scheme://user@` of the admin URL (its host part replaced per node).
fn user_part(admin: &str) -> &str {
    match admin.find('@') {
        Some(i) => &admin[..=i],
        None => "postgres://",
    }
}

/// The URL of database `db` on the admin URL's server.
pub fn url_of(db: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_string();
    format!("{base}/{db}")
}

/// Run `sql` on `url` with psql; its output, or the error text.
pub fn psql_at(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// Run `sql` on the admin database (asserts success).
pub fn psql_admin(sql: &str) -> String {
    let admin = admin_url();
    psql_at(&admin, sql).unwrap_or_else(|e| panic!("psql {sql} on {admin}: {e}"))
}

/// The Citus workers (`host:port`) when the test server is a Citus
/// coordinator, else none. Asked once per process.
pub fn citus_workers() -> &'static [String] {
    static W: OnceLock<Vec<String>> = OnceLock::new();
    W.get_or_init(|| {
        let citus = psql_admin("SELECT count(*) FROM pg_extension WHERE extname = 'citus'");
        if citus != "1" {
            return Vec::new();
        }
        psql_admin("SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid <> 0 ORDER BY nodeport")
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// Whether the tests run against a Citus cluster.
pub fn is_citus() -> bool {
    !citus_workers().is_empty()
}

pub fn worker_url(node: &str, db: &str) -> String {
    format!("{}{node}/{db}", user_part(&admin_url()))
}

/// Create database `name` (dropping a leftover of that name) and return
/// its URL; on Citus on every node, ready to distribute tables.
pub fn create_db(name: &str) -> String {
    psql_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql_admin(&format!("CREATE DATABASE {name}"));
    let url = url_of(name);
    if is_citus() {
        // `CREATE EXTENSION citus` and node registration in several new
        // databases at once collide on the workers' catalogs: one at a time.
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        for w in citus_workers() {
            let admin = worker_url(w, "postgres");
            let ok = psql_at(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .and_then(|_| psql_at(&admin, &format!("CREATE DATABASE {name}")))
            .and_then(|_| psql_at(&worker_url(w, name), "CREATE EXTENSION citus"));
            if let Err(e) = ok {
                panic!("creating {name} on Citus worker {w}: {e}");
            }
        }
        let mut sql = String::from("CREATE EXTENSION citus; SELECT citus_set_coordinator_host(");
        let admin = admin_url();
        let host_port = admin[user_part(&admin).len()..]
            .split('/')
            .next()
            .unwrap_or("127.0.0.1:5432");
        let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "5432"));
        sql.push_str(&format!("'{host}', {port});"));
        for w in citus_workers() {
            let (h, p) = w.rsplit_once(':').unwrap_or((w, "5432"));
            sql.push_str(&format!(" SELECT citus_add_node('{h}', {p});"));
        }
        psql_at(&url, &sql).unwrap_or_else(|e| panic!("Citus set-up of {name}: {e}"));
    }
    url
}

/// Drop database `name` (on every node on Citus); errors are ignored.
pub fn drop_db(name: &str) {
    let _ = psql_at(
        &admin_url(),
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    for w in citus_workers() {
        let _ = psql_at(
            &worker_url(w, "postgres"),
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
    }
}
