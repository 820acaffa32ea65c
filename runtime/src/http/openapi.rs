//! The OpenAPI 3 document, generated from the handlers' annotations.

use super::{admin, audit, error, history, list, ops, records, timers};
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "leadflow", description = "Lead lifecycles over HTTP: records, transitions, actors, workflow versions. Errors are `{code, message}` with stable codes."),
    paths(
        records::create, records::get, records::fire, records::actions, records::history, records::links,
        list::list, history::list,
        admin::list, admin::get, admin::get_unavailability, admin::put_unavailability, admin::workflows,
        timers::parked, timers::retry,
        ops::healthz, ops::readyz, ops::metrics_text,
        audit::list,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Bearer, &StandardErrors)
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
/// body limits.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
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
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
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
            }
        }
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
        let history = &doc["components"]["schemas"]["ChangeView"]["properties"];
        for k in ["old", "new"] {
            assert!(
                history[k].get("type").is_none(),
                "ChangeView.{k} holds null, strings, numbers, booleans or lists: {}",
                history[k]
            );
        }
        let fire = &doc["paths"]["/v1/records/{id}/transitions/{transition}"]["post"]["responses"];
        assert!(fire.get("413").is_some() && fire.get("408").is_some());
    }
}
