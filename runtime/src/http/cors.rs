//! CORS: browser pages on the origins a tenant lists in `cors_origins` may
//! call the API with that tenant's keys. Off by default: no tenant lists an
//! origin, no response carries CORS headers, every preflight is refused.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! carries no key, so its tenant is unknown: it is allowed when any tenant
//! lists the origin, for a path under `/v1/`, a method the API serves (GET,
//! POST, PUT) and request headers from [`ALLOW_HEADERS`]. Otherwise it is
//! answered 403 `E_CORS_REFUSED` (JSON, no CORS headers, so the browser
//! gives up; the body says why, in the browser's network panel). An
//! `OPTIONS` that is no preflight is answered by the router (405 `E_METHOD`).
//!
//! On the actual request the key decides: `Access-Control-Allow-Origin`
//! (the request's origin, with the headers a client may read) is sent only
//! when the key's tenant lists the origin. An answer to a request without a
//! valid key (401) holds no tenant's data: it carries the header when any
//! tenant lists the origin, so that a browser page can read why its key
//! was refused (`E_KEY_EXPIRED`). Responses on `/v1/` say `Vary: Origin`
//! whenever some tenant configures CORS.
//!
//! `Access-Control-Allow-Credentials` is never sent: keys travel in the
//! `Authorization` header, not in cookies, so a page needs no credentials
//! mode, and `"*"` (any origin) is then no open door to ambient
//! credentials; it suits a tenant whose keys are meant for pages anywhere.
//!
//! tower-http's `CorsLayer` answers a refused preflight with an empty 200
//! and sends one policy for all tenants; the per-key rule and JSON errors
//! need this small middleware instead.

use super::error::ApiError;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Methods a preflight may ask for: those the API serves.
pub const ALLOW_METHODS: &str = "GET, POST, PUT";
/// Request headers a page may send.
pub const ALLOW_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-request-id",
];
/// Response headers a page may read besides the CORS-safelisted ones.
pub const EXPOSE_HEADERS: &str = "ETag, Location, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After";
/// How long a browser may cache a preflight's answer, in seconds.
pub const MAX_AGE: &str = "600";

/// The configured origins, lowercased.
#[derive(Debug, Default)]
pub struct Origins {
    by_tenant: BTreeMap<String, BTreeSet<String>>,
}

impl Origins {
    pub fn new(state: &AppState) -> Arc<Origins> {
        let by_tenant = state
            .tenants
            .values()
            .filter(|t| !t.config.cors_origins.is_empty())
            .map(|t| {
                let set = t
                    .config
                    .cors_origins
                    .iter()
                    .map(|o| o.to_ascii_lowercase())
                    .collect();
                (t.id.clone(), set)
            })
            .collect();
        Arc::new(Origins { by_tenant })
    }

    fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }

    /// Whether `tenant` lists `origin` (lowercased).
    fn tenant_allows(&self, tenant: &str, origin: &str) -> bool {
        self.by_tenant
            .get(tenant)
            .is_some_and(|s| s.contains("*") || s.contains(origin))
    }

    /// Whether any tenant lists `origin` (lowercased).
    fn any_allows(&self, origin: &str) -> bool {
        self.by_tenant.keys().any(|t| self.tenant_allows(t, origin))
    }
}

/// The middleware; see the module documentation.
pub async fn cors(
    State(s): State<AppState>,
    origins: Arc<Origins>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let lower = origin.to_str().unwrap_or("").to_ascii_lowercase();
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(&origins, &origin, &lower, req.headers());
    }
    if origins.is_empty() {
        return next.run(req).await;
    }
    let allowed = match super::auth::key_of(&s, req.headers()) {
        Ok(caller) => origins.tenant_allows(&caller.tenant, &lower),
        Err(_) => origins.any_allows(&lower),
    };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    resp
}

fn preflight(origins: &Origins, origin: &HeaderValue, lower: &str, req: &HeaderMap) -> Response {
    let refuse = |why: String| {
        let mut r = ApiError::new(StatusCode::FORBIDDEN, "E_CORS_REFUSED", why).into_response();
        r.headers_mut().append(
            header::VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        r
    };
    if !origins.any_allows(lower) {
        return refuse(format!(
            "cross-origin requests from `{}` are not allowed: no tenant lists this origin in `cors_origins`",
            origin.to_str().unwrap_or("?")
        ));
    }
    let method = req
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !matches!(method, "GET" | "POST" | "PUT") {
        return refuse(format!(
            "method `{method}` is not served; cross-origin requests may use {ALLOW_METHODS}"
        ));
    }
    let asked = req
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty());
    for h in asked {
        if !ALLOW_HEADERS.contains(&h.as_str()) {
            return refuse(format!(
                "request header `{h}` is not allowed; cross-origin requests may send {}",
                ALLOW_HEADERS.join(", ")
            ));
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    );
    r
}

/// Checks a `cors_origins` entry: `"*"`, or an origin as a browser sends it
/// in `Origin`: `scheme://host` or `scheme://host:port`, without a path, a
/// trailing `/`, a wildcard or a scheme's default port.
pub fn check_origin(o: &str) -> Result<(), String> {
    let hint = "write an origin as browsers send it, e.g. \"https://crm.example.com\" or \"http://localhost:3000\" (or \"*\" for any origin)";
    if o == "*" {
        return Ok(());
    }
    let bad = |why: &str| Err(format!("`{o}`: {why}; {hint}"));
    if o.eq_ignore_ascii_case("null") {
        return bad("the origin `null` (sandboxed pages, files) cannot be trusted");
    }
    let Some((scheme, rest)) = o.split_once("://") else {
        return bad("no scheme");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return bad("not a URL scheme");
    }
    if scheme.eq_ignore_ascii_case("file") {
        return bad("file pages have the origin `null`, which cannot be trusted");
    }
    if rest.contains('*') {
        return bad("wildcards in an origin are not supported (list each origin, or \"*\" alone)");
    }
    if rest.contains(['/', '?', '#']) {
        return bad("an origin has no path, query or trailing `/`");
    }
    // Host: a bracketed IPv6 address, or names of letters, digits, `-`, `.`.
    let port = if let Some(v6) = rest.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return bad("unclosed `[` in the host");
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("not an IPv6 address between `[` and `]`");
        }
        match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return bad("unexpected text after the host"),
            },
        }
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
            && !host.starts_with('.')
            && !host.ends_with('.');
        if !ok {
            return bad("the host must be a DNS name or an IP address");
        }
        port
    };
    if let Some(p) = port {
        let Ok(n) = p.parse::<u16>() else {
            return bad("the port must be a number from 1 to 65535");
        };
        if n == 0 || !p.chars().all(|c| c.is_ascii_digit()) {
            return bad("the port must be a number from 1 to 65535");
        }
        let default = match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        if default == Some(n) {
            return bad("browsers leave the scheme's default port out of `Origin`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        for ok in [
            "*",
            "https://crm.example.com",
            "http://localhost:3000",
            "HTTPS://CRM.Example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:5173",
            "capacitor://localhost",
        ] {
            assert_eq!(check_origin(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "no scheme"),
            ("crm.example.com", "no scheme"),
            ("https://crm.example.com/", "no path"),
            ("https://crm.example.com/app", "no path"),
            ("https://*.example.com", "wildcards"),
            ("https://crm.example.com:443", "default port"),
            ("http://localhost:0", "port"),
            ("http://localhost:99999", "port"),
            ("http://localhost:+80", "port"),
            ("null", "null"),
            ("file://", "null"),
            ("https://", "host"),
            ("https://user@crm.example.com", "host"),
            ("https://[::1", "unclosed"),
            ("https://[nope]:80", "IPv6"),
            ("1http://x", "scheme"),
        ] {
            let e = check_origin(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("as browsers send it"), "{bad}: {e}");
        }
    }
}
