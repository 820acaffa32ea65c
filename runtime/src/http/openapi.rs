//! The OpenAPI 3 document, generated from the handlers' annotations.

use super::ratelimit::RateLimitDoc;
use super::webhooks_doc::Webhooks;
use super::{admin, audit, codes, error, list, ops, records, timers};
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "leadflow", description = "Lead lifecycles over HTTP: records, transitions, actors, workflow versions. Errors are RFC 9457 problem documents (`application/problem+json`) whose `code` is stable (`GET /errors` lists the codes)."),
    paths(
        records::create, records::get, records::fire, records::actions, records::history, records::links,
        list::list,
        admin::list, admin::get, admin::get_unavailability, admin::put_unavailability, admin::workflows,
        timers::parked, timers::retry,
        ops::healthz, ops::readyz, ops::metrics_text,
        audit::list,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Bearer, &StandardErrors, &RateLimitDoc, &Webhooks)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The errors every operation can give, added where a handler's annotation
/// does not list them, so a generated client knows every status it may
/// get: 401 where a key is required, 400 where a path parameter, query or
/// body can be malformed (a path id that is not an integer, a bad cursor),
/// 500 (`E_INTERNAL`, no details) where the store is read; where a body is
/// taken, 413 (`E_TOO_LARGE`) and 408 (`E_TIMEOUT`) from the `[server]`
/// body limits. Then every error response (4xx, 5xx) is made an RFC 9457
/// problem document: `application/problem+json` with the `Problem` schema
/// (whose `code` is the `ErrorCode` enum of `codes.rs`), with its headers
/// (`WWW-Authenticate` on 401, `ETag` on 412, `Retry-After` on 503). The
/// catalogue pages `/errors` and `/errors/{code}` are added too.
struct StandardErrors;

#[derive(OpenApi)]
#[openapi(paths(codes::list, codes::describe))]
struct ErrorPages;

impl Modify for StandardErrors {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityRequirement;
        use utoipa::openapi::ResponseBuilder;
        let error = |what: &str| ResponseBuilder::new().description(what).build();
        api.merge(ErrorPages::openapi());
        for (path, item) in api.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let r = &mut op.responses.responses;
                // `security: [{}]` (the catalogue pages) is public.
                let secured = op
                    .security
                    .as_ref()
                    .is_some_and(|s| s.iter().any(|req| *req != SecurityRequirement::default()));
                let takes_input = path.contains('{')
                    || op.request_body.is_some()
                    || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if secured {
                    r.entry("401".into()).or_insert_with(|| {
                        error("E_UNAUTHORIZED: no key, or not a key of any tenant").into()
                    });
                }
                if takes_input {
                    r.entry("400".into()).or_insert_with(|| {
                        error("E_BAD_REQUEST: malformed path, query or body").into()
                    });
                }
                if op.request_body.is_some() {
                    r.entry("413".into()).or_insert_with(|| {
                        error("E_TOO_LARGE: the body is over `[server] max_body_bytes`").into()
                    });
                    r.entry("408".into()).or_insert_with(|| {
                        error("E_TIMEOUT: the body was not received within `[server] body_timeout`").into()
                    });
                }
                if path.starts_with("/v1/") {
                    r.entry("500".into()).or_insert_with(|| {
                        error("E_INTERNAL: the store failed (details only in the log)").into()
                    });
                    r.entry("503".into()).or_insert_with(|| {
                        error("E_UNAVAILABLE: the database is down, restarting or busy; retry after `Retry-After` seconds").into()
                    });
                }
                for (status, resp) in r.iter_mut() {
                    if let utoipa::openapi::RefOr::T(resp) = resp {
                        problem_response(status, resp);
                    }
                }
            }
        }
        let components = api.components.get_or_insert_with(Default::default);
        components.schemas.remove("ErrorBody");
        let mut schemas = vec![(
            <error::Problem as utoipa::ToSchema>::name().to_string(),
            <error::Problem as utoipa::PartialSchema>::schema(),
        )];
        <error::Problem as utoipa::ToSchema>::schemas(&mut schemas);
        schemas.push((
            <codes::ErrorCode as utoipa::ToSchema>::name().to_string(),
            <codes::ErrorCode as utoipa::PartialSchema>::schema(),
        ));
        components.schemas.extend(schemas);
    }
}

/// An error response (status `4xx`, `5xx`): a problem document, with the
/// headers its status carries.
fn problem_response(status: &str, resp: &mut utoipa::openapi::Response) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ContentBuilder, Ref};
    if !(status.starts_with('4') || status.starts_with('5')) {
        return;
    }
    if resp.description.is_empty() {
        let reason = status
            .parse()
            .ok()
            .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
            .and_then(|s| s.canonical_reason());
        resp.description = match reason {
            Some(r) => format!("{r} (a problem document: see its `code`)"),
            None => "a problem document: see its `code`".into(),
        };
    }
    resp.content.clear();
    resp.content.insert(
        error::PROBLEM_JSON.to_string(),
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    let header = |text: &str| {
        HeaderBuilder::new()
            .schema(utoipa::openapi::Object::with_type(
                utoipa::openapi::Type::String,
            ))
            .description(Some(text))
            .build()
    };
    let headers = &mut resp.headers;
    match status {
        "401" => {
            headers.entry("WWW-Authenticate".into()).or_insert_with(|| {
                header("`Bearer realm=\"leadflow\"`; with `, error=\"invalid_token\"` when the key sent is wrong or expired (RFC 6750)")
            });
        }
        "412" => {
            headers
                .entry("ETag".into())
                .or_insert_with(|| header("the record's current revision, quoted"));
        }
        "503" => {
            headers
                .entry("Retry-After".into())
                .or_insert_with(|| header("seconds to wait before retrying"));
        }
        _ => {}
    }
}

/// `GET /openapi.json`
pub async fn json() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_values_are_any_json_and_bodies_document_their_limits() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let history = &doc["components"]["schemas"]["HistoryView"]["properties"];
        for k in ["old", "new"] {
            assert!(
                history[k].get("type").is_none(),
                "HistoryView.{k} holds null, strings, numbers, booleans or lists: {}",
                history[k]
            );
        }
        let fire = &doc["paths"]["/v1/records/{id}/transitions/{transition}"]["post"]["responses"];
        assert!(fire.get("413").is_some() && fire.get("408").is_some());
    }

    /// Every error response of every operation is a problem document; its
    /// `code` is an enum of exactly the catalogue; the conditional and
    /// authentication answers are declared with their headers.
    #[test]
    fn errors_are_problem_documents_whose_code_is_the_catalogue() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        assert!(schemas.get("ErrorBody").is_none());
        let problem = &schemas["Problem"];
        assert_eq!(
            problem["properties"]["code"]["$ref"],
            "#/components/schemas/ErrorCode"
        );
        for m in ["type", "title", "status", "detail", "code", "request_id"] {
            assert!(
                problem["required"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!(m)),
                "{m}"
            );
        }
        let listed: Vec<&str> = schemas["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let catalogue: Vec<&str> = codes::CODES.iter().map(|c| c.code).collect();
        assert_eq!(listed, catalogue);
        let mut errors = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, resp) in op["responses"].as_object().unwrap() {
                    if !(status.starts_with('4') || status.starts_with('5')) {
                        continue;
                    }
                    errors += 1;
                    let content = resp["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{method} {path} {status}"
                    );
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem"
                    );
                    assert!(!resp["description"].as_str().unwrap().is_empty());
                    let header = match status.as_str() {
                        "401" => Some("WWW-Authenticate"),
                        "412" => Some("ETag"),
                        "503" => Some("Retry-After"),
                        _ => None,
                    };
                    if let Some(h) = header {
                        assert!(resp["headers"].get(h).is_some(), "{method} {path} {status}");
                    }
                }
            }
        }
        assert!(errors > 50, "{errors}");
        let fire = &doc["paths"]["/v1/records/{id}/transitions/{transition}"]["post"]["responses"];
        assert!(fire.get("412").is_some() && fire.get("409").is_none());
        let get = &doc["paths"]["/v1/records/{id}"]["get"]["responses"]["304"];
        assert!(get["headers"].get("ETag").is_some() && get.get("content").is_none());
        // The catalogue pages are public.
        for p in ["/errors", "/errors/{code}"] {
            assert_eq!(
                doc["paths"][p]["get"]["security"],
                serde_json::json!([{}]),
                "{p}"
            );
            assert!(doc["paths"][p]["get"]["responses"].get("401").is_none());
        }
    }
}
