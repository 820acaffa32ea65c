//! Rate limits: `[tenants.<id>.rate_limit]` gives every API key of the
//! tenant its own budget (GCRA, the `governor` crate): `burst` requests at
//! once, refilled at `requests_per_second`. A key has its own budget so
//! that one integration running hot does not starve the tenant's others.
//! Default: no limit.
//!
//! Only requests on `/v1/` with a valid key count: a request without one
//! is answered 401 and spends no tenant's budget (a stranger cannot drain
//! it with bad keys), and the ops endpoints (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`) are never limited. The check runs before
//! the body is read, so a refused client costs a hash and a lookup.
//!
//! Every `/v1/` answer to a limited key carries the fields of
//! draft-ietf-httpapi-ratelimit-headers-06: `RateLimit-Limit` (the burst),
//! `RateLimit-Remaining` (requests that would pass now) and
//! `RateLimit-Reset` (seconds until the whole burst is available again).
//! A refused request gets 429 `E_RATE_LIMITED` with `Retry-After` (whole
//! seconds, at least 1, until one request passes).
//!
//! Memory is bounded: one limiter (a few words) per configured key, built
//! when the router is.

use super::error::ApiError;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

pub const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

struct Budget {
    limiter: Limiter,
    requests_per_second: f64,
}

/// Tenant -> key name -> its budget, for the keys of limited tenants.
#[derive(Default)]
pub struct Limits {
    by_key: BTreeMap<String, BTreeMap<String, Budget>>,
}

impl Limits {
    pub fn new(state: &AppState) -> Arc<Limits> {
        let mut by_key: BTreeMap<String, BTreeMap<String, Budget>> = BTreeMap::new();
        for k in &state.keys {
            let Some(rl) = state
                .tenants
                .get(&k.tenant)
                .and_then(|t| t.config.rate_limit)
            else {
                continue;
            };
            // Both are checked at start (`E_RATE_LIMIT`); a value that
            // still made no quota leaves the key unlimited.
            let quota = NonZeroU32::new(rl.burst()).and_then(|b| {
                Quota::with_period(Duration::from_secs_f64(1.0 / rl.requests_per_second))
                    .map(|q| q.allow_burst(b))
            });
            let Some(quota) = quota else { continue };
            by_key.entry(k.tenant.clone()).or_default().insert(
                k.name.clone(),
                Budget {
                    limiter: RateLimiter::direct(quota).with_middleware(),
                    requests_per_second: rl.requests_per_second,
                },
            );
        }
        Arc::new(Limits { by_key })
    }

    fn get(&self, tenant: &str, key: &str) -> Option<&Budget> {
        self.by_key.get(tenant)?.get(key)
    }
}

/// Whole seconds, rounded up.
fn secs_up(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

fn set(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let h = resp.headers_mut();
    h.insert(LIMIT, HeaderValue::from(limit));
    h.insert(REMAINING, HeaderValue::from(remaining));
    h.insert(RESET, HeaderValue::from(reset));
}

/// The middleware; see the module documentation.
pub async fn limit(
    State(s): State<AppState>,
    limits: Arc<Limits>,
    req: Request,
    next: Next,
) -> Response {
    if limits.by_key.is_empty() || !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let Ok(caller) = super::auth::key_of(&s, req.headers()) else {
        return next.run(req).await;
    };
    let Some(budget) = limits.get(&caller.tenant, &caller.key) else {
        return next.run(req).await;
    };
    match budget.limiter.check() {
        Ok(state) => {
            let quota = state.quota();
            let burst = quota.burst_size().get();
            let remaining = state.remaining_burst_capacity();
            // The spent requests come back one per interval.
            let reset = quota.replenish_interval() * burst.saturating_sub(remaining);
            let mut resp = next.run(req).await;
            set(&mut resp, burst, remaining, secs_up(reset));
            resp
        }
        Err(refused) => {
            let quota = refused.quota();
            let burst = quota.burst_size().get();
            let wait = refused.wait_time_from(budget.limiter.clock().now());
            let retry = secs_up(wait).max(1);
            let full = wait + quota.replenish_interval() * burst.saturating_sub(1);
            super::ops::refusal("E_RATE_LIMITED");
            tracing::debug!(tenant = %caller.tenant, key = %caller.key, retry, "rate limited");
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "E_RATE_LIMITED",
                format!(
                    "key `{}` is over its rate limit ({} requests per second, bursts of {burst}); retry after {retry} s (Retry-After)",
                    caller.key, budget.requests_per_second
                ),
            )
            .into_response();
            set(&mut resp, burst, 0, secs_up(full).max(retry));
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
            resp
        }
    }
}

/// OpenAPI: every `/v1/` operation may answer 429 `E_RATE_LIMITED` with
/// `Retry-After`, and its answers carry the `RateLimit-*` fields when the
/// key's tenant has a rate limit. The 429's body is the operation's 401
/// body (the API's one error document), so it follows the error format.
pub struct RateLimitDoc;

impl utoipa::Modify for RateLimitDoc {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
        let int = |what: &str| {
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some(what))
                .build()
        };
        let fields = [
            (
                "RateLimit-Limit",
                int("Requests the key may send at once (its burst); present when the tenant has a `rate_limit` (draft-ietf-httpapi-ratelimit-headers-06)"),
            ),
            (
                "RateLimit-Remaining",
                int("Requests the key could send now"),
            ),
            (
                "RateLimit-Reset",
                int("Seconds until the key's whole burst is available again"),
            ),
        ];
        for (path, item) in api.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let r = &mut op.responses.responses;
                if !r.contains_key("429") {
                    let content = match r.get("401") {
                        Some(RefOr::T(e)) if !e.content.is_empty() => e.content.clone(),
                        _ => [(
                            "application/json".to_string(),
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )]
                        .into_iter()
                        .collect(),
                    };
                    let mut tmr = ResponseBuilder::new()
                        .description("E_RATE_LIMITED: the key is over its tenant's `rate_limit`; retry after `Retry-After` seconds")
                        .header(
                            "Retry-After",
                            HeaderBuilder::new()
                                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
                                .description(Some("Seconds to wait before one request passes (at least 1)"))
                                .build(),
                        )
                        .build();
                    tmr.content = content;
                    r.insert("429".into(), tmr.into());
                }
                for resp in r.values_mut() {
                    if let RefOr::T(resp) = resp {
                        for (name, h) in &fields {
                            resp.headers
                                .entry(name.to_string())
                                .or_insert_with(|| h.clone());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[test]
    fn seconds_round_up() {
        assert_eq!(secs_up(Duration::ZERO), 0);
        assert_eq!(secs_up(Duration::from_millis(1)), 1);
        assert_eq!(secs_up(Duration::from_secs(2)), 2);
        assert_eq!(secs_up(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn the_spec_declares_429_and_the_ratelimit_fields_on_v1() {
        let doc = serde_json::to_value(super::super::openapi::ApiDoc::openapi()).unwrap();
        let list = &doc["paths"]["/v1/records"]["get"]["responses"];
        assert!(list["429"]["headers"]["Retry-After"].is_object(), "{list}");
        assert!(list["429"]["content"].is_object(), "{list}");
        for code in ["200", "401", "429"] {
            for h in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                assert!(list[code]["headers"][h].is_object(), "{code} {h}: {list}");
            }
        }
        let health = &doc["paths"]["/healthz"]["get"]["responses"];
        assert!(health.get("429").is_none(), "{health}");
    }
}
