//! Rate limits and CORS as a client (and a browser) meets them, against a
//! real daemon: a key over its burst gets 429 `E_RATE_LIMITED` with
//! `Retry-After` and the `RateLimit-*` fields, and its whole burst back
//! after `RateLimit-Reset`; budgets are per key (one key's exhaustion
//! leaves the tenant's other keys and other tenants alone); bad keys spend
//! nothing; the ops endpoints are never limited; a limited key's body is
//! refused before it is read. CORS: nothing by default; preflights allowed
//! for an origin some tenant lists; `Access-Control-Allow-Origin` on actual
//! answers only for the key's tenant's origins.

use crate::http_support;

use http_support::{config_text, repo, Daemon, Db, Kind, Resp};
use leadflow_runtime::config::Config;
use reqwest::Method;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CRM: &str = "https://crm.example.com";
const OTHER: &str = "https://other.example.com";
const EVIL: &str = "https://evil.example.com";

/// The test config with `aslm` and `other` lines added to those tenants.
async fn daemon(aslm: &str, other: &str) -> Daemon {
    let text = config_text(&repo())
        .replace("[tenants.aslm]\n", &format!("[tenants.aslm]\n{aslm}\n"))
        .replace("[tenants.other]\n", &format!("[tenants.other]\n{other}\n"));
    let cfg = Config::parse(&text, "test.toml", Path::new("/")).unwrap();
    Daemon::start_config(Db::new(Kind::Sqlite), cfg, false).await
}

const LIST: &str = "/v1/records?limit=1";

async fn list(d: &Daemon, key: &str, origin: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    d.call(Method::GET, LIST, Some(key), None, &headers).await
}

fn num(r: &Resp, h: &str) -> u64 {
    r.header(h)
        .parse()
        .unwrap_or_else(|_| panic!("{h} is not a number: {r:?}"))
}

fn has_ratelimit_fields(r: &Resp) -> bool {
    ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]
        .iter()
        .any(|h| r.headers.contains_key(*h))
}

/// Requests until one is refused (at most `n`): the refusal.
async fn exhaust(d: &Daemon, key: &str, n: usize) -> Resp {
    for _ in 0..n {
        let r = list(d, key, None).await;
        if r.status == 429 {
            return r;
        }
        assert_eq!(r.status, 200, "{r:?}");
    }
    panic!("{key}: no 429 within {n} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_burst_a_key_gets_429_with_retry_after_and_its_burst_back_after_the_reset() {
    let d = daemon(
        &format!(
            "rate_limit = {{ requests_per_second = 0.5, burst = 3 }}\ncors_origins = [\"{CRM}\"]"
        ),
        "",
    )
    .await;
    let first = list(&d, "admin", None).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(num(&first, "ratelimit-limit"), 3, "{first:?}");
    assert_eq!(num(&first, "ratelimit-remaining"), 2, "{first:?}");
    assert_eq!(num(&first, "ratelimit-reset"), 2, "{first:?}");
    // Two more fit the burst whatever the timing; then within a few more
    // (one request comes back every 2 s) the key is refused.
    for _ in 0..2 {
        assert_eq!(list(&d, "admin", None).await.status, 200);
    }
    let _ = exhaust(&d, "admin", 4).await;
    // Refused, as a browser page on a listed origin sees it.
    let r = list(&d, "admin", Some(CRM)).await;
    assert_eq!((r.status, r.code()), (429, "E_RATE_LIMITED"), "{r:?}");
    assert!(r.header("content-type").contains("json"), "{r:?}");
    let retry = num(&r, "retry-after");
    assert!((1..=2).contains(&retry), "Retry-After {retry}: {r:?}");
    assert_eq!(num(&r, "ratelimit-limit"), 3);
    assert_eq!(num(&r, "ratelimit-remaining"), 0);
    let reset = num(&r, "ratelimit-reset");
    assert!((retry..=6).contains(&reset), "Reset {reset}: {r:?}");
    assert_eq!(r.header("access-control-allow-origin"), CRM, "{r:?}");
    assert!(
        r.header("access-control-expose-headers")
            .contains("Retry-After"),
        "{r:?}"
    );
    // The ops endpoints are never limited, nor do they carry the fields.
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let h = d.call(Method::GET, path, Some("admin"), None, &[]).await;
        assert_eq!(h.status, 200, "{path}: {h:?}");
        assert!(!has_ratelimit_fields(&h), "{path}: {h:?}");
    }
    // A refused key's body is not read: the 429 comes without it.
    let addr = d.server.as_ref().unwrap().addr;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-key\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n\r\n{")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(text.contains("E_RATE_LIMITED"), "{text}");
    // After RateLimit-Reset seconds the whole burst is back.
    let r = list(&d, "admin", None).await;
    let reset = num(&r, "ratelimit-reset");
    tokio::time::sleep(Duration::from_secs(reset)).await;
    for i in 0..3 {
        let r = list(&d, "admin", None).await;
        assert_eq!(r.status, 200, "request {i} of the new burst: {r:?}");
        if i == 0 {
            assert_eq!(num(&r, "ratelimit-remaining"), 2, "{r:?}");
        }
    }
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_are_per_key_so_one_exhausted_key_leaves_the_others_alone() {
    let d = daemon("rate_limit = { requests_per_second = 0.2, burst = 2 }", "").await;
    let r = exhaust(&d, "dealer-rm", 3).await;
    assert!(num(&r, "retry-after") >= 1, "{r:?}");
    // The tenant's other keys have their own budgets.
    for key in ["admin", "dealer-mi"] {
        let r = list(&d, key, None).await;
        assert_eq!(r.status, 200, "{key}: {r:?}");
        assert_eq!(num(&r, "ratelimit-remaining"), 1, "{key}: {r:?}");
    }
    // Another tenant, without a rate_limit: never limited, no fields.
    for _ in 0..10 {
        let r = list(&d, "other-admin", None).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(!has_ratelimit_fields(&r), "{r:?}");
    }
    assert_eq!(list(&d, "dealer-rm", None).await.status, 429);
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_key_spend_no_budget() {
    let d = daemon("rate_limit = { requests_per_second = 0.2, burst = 2 }", "").await;
    for key in ["nope", "admin-key-but-wrong", ""] {
        for _ in 0..5 {
            let r = if key.is_empty() {
                d.call(Method::GET, LIST, None, None, &[]).await
            } else {
                list(&d, key, None).await
            };
            assert_eq!((r.status, r.code()), (401, "E_UNAUTHORIZED"), "{r:?}");
            assert!(!has_ratelimit_fields(&r), "{r:?}");
        }
    }
    // Fifteen strangers later, the admin key's burst is whole.
    let r = list(&d, "admin", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(num(&r, "ratelimit-remaining"), 1, "{r:?}");
    let _ = d.stop().await;
}

async fn preflight(d: &Daemon, origin: &str, method: &str, headers: &str) -> Resp {
    let mut h = vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
    ];
    if !headers.is_empty() {
        h.push(("Access-Control-Request-Headers", headers));
    }
    d.call(Method::OPTIONS, "/v1/records", None, None, &h).await
}

fn no_cors(r: &Resp) -> bool {
    !r.headers
        .keys()
        .any(|k| k.as_str().starts_with("access-control-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default() {
    let d = daemon("", "").await;
    let r = list(&d, "admin", Some(CRM)).await;
    assert_eq!(r.status, 200);
    assert!(no_cors(&r), "{r:?}");
    assert!(!r.header("vary").contains("Origin"), "{r:?}");
    assert!(!has_ratelimit_fields(&r), "no rate_limit by default: {r:?}");
    let r = preflight(&d, CRM, "GET", "authorization").await;
    assert_eq!((r.status, r.code()), (403, "E_CORS_REFUSED"), "{r:?}");
    assert!(no_cors(&r), "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains(CRM), "{r:?}");
    // An OPTIONS that is no preflight is still the router's 405.
    let r = d
        .call(Method::OPTIONS, "/v1/records", Some("admin"), None, &[])
        .await;
    assert_eq!((r.status, r.code()), (405, "E_METHOD"), "{r:?}");
    let _ = d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_a_listed_origin_and_answers_it_only_for_its_tenants_keys() {
    let d = daemon(
        &format!("cors_origins = [\"{CRM}\", \"http://localhost:3000\"]"),
        &format!("cors_origins = [\"{OTHER}\"]"),
    )
    .await;
    // Preflights: allowed for an origin any tenant lists.
    for origin in [CRM, OTHER, "http://localhost:3000"] {
        let r = preflight(
            &d,
            origin,
            "POST",
            "authorization, content-type, idempotency-key",
        )
        .await;
        assert_eq!(r.status, 204, "{origin}: {r:?}");
        assert_eq!(r.header("access-control-allow-origin"), origin);
        let methods = r.header("access-control-allow-methods");
        for m in ["GET", "POST", "PUT"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = r.header("access-control-allow-headers").to_lowercase();
        for h in [
            "authorization",
            "content-type",
            "if-match",
            "if-none-match",
            "idempotency-key",
        ] {
            assert!(allowed.contains(h), "{allowed}");
        }
        assert!(num(&r, "access-control-max-age") > 0);
        assert!(r.header("vary").contains("Origin"), "{r:?}");
        assert!(r.header("access-control-allow-credentials").is_empty());
    }
    // Refused: an unlisted origin, a method or header the API does not take.
    for (origin, method, headers, says) in [
        (EVIL, "GET", "", EVIL),
        (CRM, "DELETE", "", "DELETE"),
        (CRM, "GET", "authorization, x-custom", "x-custom"),
    ] {
        let r = preflight(&d, origin, method, headers).await;
        assert_eq!((r.status, r.code()), (403, "E_CORS_REFUSED"), "{r:?}");
        assert!(no_cors(&r), "{r:?}");
        assert!(r.body["message"].as_str().unwrap().contains(says), "{r:?}");
    }
    // Actual requests: the key's tenant decides.
    for (key, origin, allowed) in [
        ("admin", CRM, true),
        ("dealer-rm", CRM, true),
        ("admin", OTHER, false),
        ("admin", EVIL, false),
        ("other-admin", OTHER, true),
        ("other-admin", CRM, false),
    ] {
        let r = list(&d, key, Some(origin)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.header("vary").contains("Origin"), "{r:?}");
        if allowed {
            assert_eq!(
                r.header("access-control-allow-origin"),
                origin,
                "{key} {origin}"
            );
            let exposed = r.header("access-control-expose-headers");
            for h in [
                "ETag",
                "Location",
                "X-Request-Id",
                "RateLimit-Remaining",
                "Retry-After",
            ] {
                assert!(exposed.contains(h), "{exposed}");
            }
        } else {
            assert!(no_cors(&r), "{key} {origin}: {r:?}");
        }
    }
    // A refused key: the page may read why when some tenant lists its origin.
    let r = list(&d, "nope", Some(CRM)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), CRM);
    let r = list(&d, "nope", Some(EVIL)).await;
    assert_eq!(r.status, 401);
    assert!(no_cors(&r), "{r:?}");
    // The ops endpoints stay out of CORS.
    let r = d
        .call(Method::GET, "/healthz", None, None, &[("Origin", CRM)])
        .await;
    assert!(no_cors(&r), "{r:?}");
    let _ = d.stop().await;
}
