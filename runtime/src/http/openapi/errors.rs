//! The errors every operation can give, as problem documents.

use super::headers::{request_id_header, string_header};
use super::operations;
use crate::http::{codes, error};
use utoipa::openapi::{Content, RefOr, Response};
use utoipa::Modify;

fn error_response(what: &str) -> Response {
    let mut r = Response::new(what);
    r.content.insert(
        "application/json".into(),
        Content::new(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody"))),
    );
    r
}

/// The errors every operation can give, added where a handler's annotation
/// does not list them, so a generated client knows every status it may
/// get: 401 where a key is required, 400 where a path parameter, query or
/// body can be malformed (a path id that is not an integer, a bad cursor),
/// 500 (`E_INTERNAL`, no details) where the store is read; where a body is
/// taken, 413 (`E_TOO_LARGE`) and 408 (`E_TIMEOUT`) from the `[server]`
/// body limits; 405 (`E_METHOD`, with `Allow`) for a method the path does
/// not take, on every operation of the path.
pub(super) struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let mut method = error_response(
            "E_METHOD: the path exists but does not take this method; `Allow` lists those it takes",
        );
        method.headers.insert(
            "Allow".into(),
            string_header("The methods the path takes, e.g. `POST,GET,HEAD`"),
        );
        method
            .headers
            .insert("X-Request-Id".into(), request_id_header());
        problem_response("405", &mut method);
        api.components
            .get_or_insert_with(Default::default)
            .responses
            .insert("MethodNotAllowed".into(), RefOr::T(method));
        for (path, _, op) in operations(api) {
            let r = &mut op.responses.responses;
            let secured = op.security.as_ref().is_none_or(|s| !s.is_empty());
            let takes_input = path.contains('{')
                || op.request_body.is_some()
                || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            if secured {
                r.entry("401".into()).or_insert_with(|| {
                    error_response(
                        "E_UNAUTHORIZED: no key, or not a key of any tenant; E_KEY_EXPIRED",
                    )
                    .into()
                });
            }
            if takes_input {
                r.entry("400".into()).or_insert_with(|| {
                    error_response("E_BAD_REQUEST: malformed path, query or body").into()
                });
            }
            if op.request_body.is_some() {
                r.entry("413".into()).or_insert_with(|| {
                    error_response("E_TOO_LARGE: the body is over `[server] max_body_bytes`").into()
                });
                r.entry("408".into()).or_insert_with(|| {
                    error_response(
                        "E_TIMEOUT: the body was not received within `[server] body_timeout`",
                    )
                    .into()
                });
            }
            if path.starts_with("/v1/") {
                r.entry("500".into()).or_insert_with(|| {
                    error_response("E_INTERNAL: the store failed (details only in the log, under `request_id`)").into()
                });
                r.entry("503".into()).or_insert_with(|| {
                    error_response("E_UNAVAILABLE: the database is down, restarting or busy; E_OVERLOADED: too many connections; retry after `Retry-After` seconds").into()
                });
            }
            r.entry("405".into()).or_insert_with(|| {
                utoipa::openapi::Ref::from_response_name("MethodNotAllowed").into()
            });
            for (status, resp) in r.iter_mut() {
                // The action link pages answer their refusals as pages.
                if let RefOr::T(resp) = resp {
                    if !resp.content.contains_key("text/html") {
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
