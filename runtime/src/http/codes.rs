//! The catalogue of error codes: every `code` the API can answer, with its
//! one HTTP status, a short fixed title and a description. It is the
//! source of the `ErrorCode` enum of the OpenAPI document, of each problem
//! document's `title` and `type`, and of the pages `GET /errors` and
//! `GET /errors/{code}` that a problem's `type` points at (public, no key).
//!
//! A code used in `http/` but missing here fails a test (see the tests at
//! the end), so a new code cannot ship undocumented.

use super::error::{ApiError, Path};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

/// One error code.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct CodeInfo {
    #[schema(value_type = ErrorCode)]
    pub code: &'static str,
    /// The HTTP status a response with this code always has.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// Short and fixed: the problem document's `title`.
    pub title: &'static str,
    /// When it happens and what to do.
    pub description: &'static str,
}

const fn c(
    code: &'static str,
    status: u16,
    title: &'static str,
    description: &'static str,
) -> CodeInfo {
    CodeInfo {
        code,
        status,
        title,
        description,
    }
}

/// Every code the HTTP API can answer, by status.
pub const CODES: &[CodeInfo] = &[
    c("E_BAD_REQUEST", 400, "Bad request",
      "The request is malformed: invalid JSON, a body that is not a JSON object, an unknown or mistyped body field, a NUL character in text, a path or query parameter that does not parse or is out of bounds, a bad `If-Match` or `Idempotency-Key` header, a cursor altered or from another query. `field` names the body field when it is known. Sending the same request again fails again."),
    c("E_LINK_INVALID", 400, "Action link not valid",
      "An action link (`/links/{token}`, from a message's `action_url`) that was altered or cut, signed with another key (another server, or a daemon restarted without `[links]`), or naming a tenant or transition that no longer exists. Answered as an HTML page; nothing was done. Use the record's API or a newer message."),
    c("E_IMPORT_MAP", 400, "Import column map not valid",
      "`POST /v1/imports`: a `map` pair that is not `column=field`, or names a field the workflow lacks. Nothing was read or imported."),
    c("E_IMPORT_DEDUP", 400, "Import dedup fields not valid",
      "`POST /v1/imports`: a `dedup` field the workflow lacks, or `on_duplicate` other than `skip` without `dedup`. Nothing was read or imported."),
    c("E_IMPORT_UPDATE", 400, "Import update transition not valid",
      "`POST /v1/imports`: `on_duplicate=update` without `update_with`, or naming a transition the workflow lacks. Nothing was read or imported."),
    c("E_UNAUTHORIZED", 401, "Unauthorized",
      "No API key, or a key no tenant has (`Authorization: Bearer <key>`); on /metrics, a missing or wrong metrics token. The answer carries `WWW-Authenticate: Bearer realm=\"leadflow\"`, with `error=\"invalid_token\"` when a key was sent."),
    c("E_KEY_EXPIRED", 401, "API key expired",
      "The API key is past its `expires_at`. Use the key that replaces it (during a rotation both are valid). The answer carries `WWW-Authenticate: Bearer realm=\"leadflow\", error=\"invalid_token\"`."),
    c("E_FORBIDDEN", 403, "Forbidden",
      "The caller may not do this: its role is not in the transition's `by`, the endpoint needs an admin key, or an actor-bound key filters or sorts on a `pii` field."),
    c("E_METRICS_DISABLED", 403, "Metrics disabled",
      "/metrics is off: no `metrics_token_env` is configured in leadflow.toml (docs/security.md)."),
    c("E_CORS_REFUSED", 403, "CORS preflight refused",
      "A browser preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an origin no tenant lists in `cors_origins`, or asking for a method or header the API does not take; the detail names which. No CORS header is sent, so the browser blocks the request."),
    c("E_LINK_ACTOR", 403, "Action link not yours now",
      "The actor an action link was sent to has left the directory, or may no longer see the record. Answered as an HTML page; nothing was done."),
    c("E_NOT_FOUND", 404, "Not found",
      "No such record, actor, parked timer, error code or endpoint. A record the caller may not see answers exactly as one that does not exist, so nothing tells whether it exists."),
    c("E_UNKNOWN_WORKFLOW", 404, "Unknown workflow",
      "The tenant has no workflow of that id (`GET /v1/workflows` lists them)."),
    c("E_UNKNOWN_TRANSITION", 404, "Unknown transition",
      "The record's workflow has no transition of that name (`GET /v1/records/{id}/actions` lists the ones the caller may fire now)."),
    c("E_UNKNOWN_TIMER", 404, "Unknown timer",
      "The record's workflow has no timer of that name; typically a timer armed by an older version of the workflow."),
    c("E_REPORT_RUN_NOT_FOUND", 404, "Unknown report run",
      "The tenant has no scheduled report run of that id (`GET /v1/reports/runs` lists them)."),
    c("E_JOB_NOT_FOUND", 404, "Unknown job",
      "`GET /v1/imports/{id}`, `/v1/bulk/{id}`: no import or bulk job with this id in the tenant, or one another (non-admin) API key posted."),
    c("E_METHOD", 405, "Method not allowed",
      "The endpoint exists but not with this method; the `Allow` header lists the methods it takes."),
    c("E_TIMEOUT", 408, "Request body timeout",
      "The request body was not received within `[server] body_timeout`."),
    c("E_LINK_STALE", 409, "Action link out of date",
      "The record changed since the message with this action link was written (its revision moved on: someone acted, a timer fired, the proposal passed to someone else), or it no longer exists. Answered as an HTML page; nothing was done."),
    c("E_REPORT_RUN_NOT_READY", 409, "Report run without a result",
      "The run has not produced a result yet (`status` pending, or failed and waiting to be retried): its CSV cannot be served. The JSON answer shows its status and last error; ask again after `next_attempt`."),
    c("E_LINK_EXPIRED", 410, "Action link expired",
      "The action link is past its expiry: the deadline of the timer its message's step armed, else `[links] max_age_days` (7) after the message was written. Answered as an HTML page; nothing was done."),
    c("E_LINK_USED", 410, "Action link already used",
      "The action link's transition was already fired through it: a link works once. Answered as an HTML page; nothing was done again."),
    c("E_IMPORT_RUNNING", 409, "Import running",
      "`POST /v1/imports`: a job with the same import key (`key`, or the body's SHA-256) is running. Wait until `GET /v1/imports/{id}` shows it ended, then post again: the lines it committed are skipped."),
    c("E_CONFLICT", 412, "Revision conflict",
      "`If-Match` named a revision the record is no longer at: someone changed it since it was read, and nothing was done. `current_revision` (and the `ETag` header) give the record's revision now: read it again, decide, and send the transition with the new `If-Match`."),
    c("E_TOO_LARGE", 413, "Request body too large",
      "The request body is over `[server] max_body_bytes`."),
    c("E_MEDIA_TYPE", 415, "Unsupported media type",
      "`POST /v1/imports`: the body is neither `text/csv` (with a header row) nor `application/x-ndjson`. Set `Content-Type`."),
    c("E_NOT_ENABLED", 422, "Transition not enabled",
      "The transition cannot be fired from the record's current state; the detail lists the transitions enabled there."),
    c("E_FINAL", 422, "Record in a final state",
      "The record is in a final state and accepts no transition."),
    c("E_INPUT", 422, "Field not accepted",
      "The input sets a field the transition does not accept (on creation: a field the workflow does not declare); `field` names it."),
    c("E_TYPE", 422, "Wrong value",
      "A value does not fit its field: wrong type, a string not matching the pattern, a value outside the enum, a bad date or decimal, a number or date out of range; `field` names it."),
    c("E_REQUIRED", 422, "Required field missing",
      "A field the transition requires (or a field required on creation) is empty once the input is applied; `field` names it."),
    c("E_GUARD", 422, "Guard refused",
      "The transition's guard refused; the detail is the workflow's own message, meant for the user."),
    c("E_SCRIPT", 422, "Rule script failed",
      "A rule script of the workflow failed at run time (an error, a value of the wrong type, arithmetic out of range, the operation limit). Nothing changed; the workflow's rules need fixing."),
    c("E_NO_CANDIDATE", 422, "No candidate assignee",
      "An `assign` effect marked `required` found no available actor, so the transition was refused and nothing changed."),
    c("E_SPAWN_LIMIT", 422, "Spawn limit exceeded",
      "The transition would spawn more records than the limit (64 with their own spawns); nothing changed."),
    c("E_VIEW_NOT_FOUND", 404, "No such view",
      "`GET /v1/views/{workflow}/{view}`: the workflow has no current version, or its current version declares no view of that name. `GET /v1/views` lists the views."),
    c("E_QUEUE_NOT_FOUND", 404, "No such queue",
      "`/v1/queues/{workflow}/{queue}/...`: the workflow has no current version, or its current version declares no queue of that name. `GET /v1/queues` lists the queues the caller may pull from."),
    c("E_QUEUE_EMPTY", 404, "Queue empty",
      "`POST /v1/queues/{workflow}/{queue}/next`: no record of the queue is there for the caller now (none matches, the caller may see none, or every one is held by another puller). Nothing was held. Ask again later."),
    c("E_QUEUE_CLOSED", 404, "Queue closed",
      "`POST /v1/queues/{workflow}/{queue}/next` outside the queue's `calling_hours` (its window on the working days of the workflow's calendar): nothing is served. `GET /v1/queues` shows `open` and the window."),
    c("E_QUEUE_FILTER", 422, "Queue filter not servable",
      "The queue's Rhai `filter` uses something the store cannot run as a query (the comparisons a view's filter may use, docs/api.md \"Views\"); `leadflow check` warns about it (W082). Rewrite the filter in that form."),
    c("E_VIEW_FILTER", 422, "View filter not servable",
      "The view's Rhai `filter` uses something the store cannot run as a query (the comparisons of docs/api.md \"Views\" joined by `&&` and `||` can); `leadflow check` warns about it (W081). Rewrite the filter in that form."),
    c("E_IDEMPOTENCY_MISMATCH", 422, "Idempotency key reused",
      "This `Idempotency-Key` was first used with another request (method, path or body) within 24 hours: nothing was done. Use a new key for a new request."),
    c("E_RATE_LIMITED", 429, "Rate limit exceeded",
      "The API key spent its request budget (the tenant's `rate_limit`: `requests_per_second`, `burst`). Nothing was done. Retry after `Retry-After` seconds; `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every answer show the budget."),
    c("E_INTERNAL", 500, "Internal error",
      "The daemon failed (a storage error, a bug). No details are given; `request_id` finds the server's log lines."),
    c("E_UNSUPPORTED", 501, "Not supported by this store",
      "The endpoint needs a SQL store (sqlite: or postgres://)."),
    c("E_UNAVAILABLE", 503, "Database unavailable",
      "The database is down, restarting or busy. Retry after `Retry-After` seconds; with the same `Idempotency-Key` a retry is safe."),
    c("E_OVERLOADED", 503, "Too many connections",
      "The daemon serves `[server] max_connections` connections already and none is idle. Retry after `Retry-After` seconds."),
    c("E_NOT_READY", 503, "Not ready",
      "/readyz: the daemon is starting or shutting down, a tenant's database does not answer, or a background task (timer worker, outbox dispatcher) is dead or panicking in a loop."),
];

/// The catalogue entry of `code`.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

/// The `type` of a problem with this code: a URI reference resolved
/// against the daemon's address, where `GET` describes the code.
pub fn type_uri(code: &str) -> String {
    format!("/errors/{code}")
}

/// The `code` member: one of the catalogue's codes (an `enum` in OpenAPI).
pub struct ErrorCode;

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(
                "Stable error code; `GET /errors/{code}` describes it.",
            ))
            .enum_values(Some(CODES.iter().map(|c| c.code)))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Backticked words as `<code>`.
fn html_text(s: &str) -> String {
    escape(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn wants_json(h: &HeaderMap) -> bool {
    h.get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

/// The catalogue of error codes: an HTML page, or JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/errors", tag = "errors", operation_id = "errors_list",
    responses((status = 200, description = "every error code: an HTML table, or with `Accept: application/json` a JSON array",
        content(([CodeInfo] = "application/json"), (String = "text/html")))),
    security(()))]
pub async fn list(headers: HeaderMap) -> Response {
    if wants_json(&headers) {
        return axum::Json(CODES).into_response();
    }
    let rows: String = CODES
        .iter()
        .map(|c| {
            format!(
                "<tr><td><a href=\"/errors/{0}\"><code>{0}</code></a></td><td>{1}</td><td>{2}</td><td>{3}</td></tr>\n",
                c.code,
                c.status,
                escape(c.title),
                html_text(c.description)
            )
        })
        .collect();
    page(
        "leadflow error codes",
        &format!(
            "<h1>leadflow error codes</h1>\n<p>Every error response is an RFC 9457 problem document (<code>application/problem+json</code>) whose <code>code</code> is one of these; its <code>type</code> links here.</p>\n<table>\n<tr><th>code</th><th>status</th><th>title</th><th>description</th></tr>\n{rows}</table>"
        ),
    )
}

/// One error code: an HTML page, or JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/errors/{code}", tag = "errors", operation_id = "errors_get",
    params(("code" = String, Path, description = "an error code, e.g. E_CONFLICT")),
    responses((status = 200, description = "the code's status, title and description",
        content((CodeInfo = "application/json"), (String = "text/html"))),
        (status = 404, body = super::error::ErrorBody, description = "E_NOT_FOUND: no such code")),
    security(()))]
pub async fn describe(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let Some(c) = lookup(&code) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "E_NOT_FOUND",
            "no such error code (GET /errors lists them)",
        )
        .into_response();
    };
    if wants_json(&headers) {
        return axum::Json(c).into_response();
    }
    page(
        &format!("{} {}", c.code, c.title),
        &format!(
            "<h1><code>{}</code>: {}</h1>\n<p>HTTP status {}</p>\n<p>{}</p>\n<p><a href=\"/errors\">All error codes</a></p>",
            c.code,
            escape(c.title),
            c.status,
            html_text(c.description)
        ),
    )
}

/// Every engine refusal code, for tests.
#[cfg(test)]
pub(crate) fn engine_codes() -> Vec<leadflow_engine::Code> {
    use leadflow_engine::Code;
    // No wildcard: a code the engine gains fails to compile here, so it
    // is added to the list below (and the test below asks for its entry).
    fn listed(c: Code) -> bool {
        match c {
            Code::UnknownTransition
            | Code::UnknownTimer
            | Code::NotEnabled
            | Code::Final
            | Code::Forbidden
            | Code::Input
            | Code::Type
            | Code::Required
            | Code::Guard
            | Code::Script
            | Code::NoCandidate => true,
        }
    }
    let all = vec![
        Code::UnknownTransition,
        Code::UnknownTimer,
        Code::NotEnabled,
        Code::Final,
        Code::Forbidden,
        Code::Input,
        Code::Type,
        Code::Required,
        Code::Guard,
        Code::Script,
        Code::NoCandidate,
    ];
    assert!(all.iter().all(|&c| listed(c)));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue as the Markdown table of docs/api.md.
    fn markdown_table() -> String {
        let mut t = String::from("| code | status | title | when |\n| --- | --- | --- | --- |\n");
        for c in CODES {
            t.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.code, c.status, c.title, c.description
            ));
        }
        t
    }

    /// `file` (from the repository root) holds `expected` between its
    /// `codes` markers; on a difference the test prints the table to paste.
    fn assert_table(file: &str, expected: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(file);
        let doc = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- codes:begin -->\n", "<!-- codes:end -->");
        let start = doc
            .find(begin)
            .unwrap_or_else(|| panic!("{file} has the codes:begin marker"))
            + begin.len();
        let stop = doc[start..].find(end).expect("and codes:end") + start;
        assert!(
            doc[start..stop] == *expected,
            "{file}'s table of error codes differs from http/codes.rs; put this between the markers:\n{expected}"
        );
    }

    /// docs/api.md lists the catalogue as it is.
    #[test]
    fn the_docs_table_is_the_catalogue() {
        assert_table("docs/api.md", &markdown_table());
    }

    /// The catalogue as README.md's short table.
    fn short_table() -> String {
        let mut t = String::from("| code | status | title |\n| --- | --- | --- |\n");
        for c in CODES {
            t.push_str(&format!("| `{}` | {} | {} |\n", c.code, c.status, c.title));
        }
        t
    }

    /// README.md lists the codes as they are.
    #[test]
    fn the_readme_table_is_the_catalogue() {
        assert_table("README.md", &short_table());
    }

    #[test]
    fn codes_are_unique_well_formed_and_errors() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(c.code.starts_with("E_"), "{}", c.code);
            assert!(
                c.code[2..]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                c.code
            );
            assert!((400..600).contains(&c.status), "{}", c.code);
            assert!(!c.title.is_empty() && c.title.len() <= 40, "{}", c.code);
            assert!(!c.description.is_empty(), "{}", c.code);
        }
    }

    #[test]
    fn every_engine_refusal_code_is_in_the_catalogue() {
        for code in engine_codes() {
            assert!(lookup(code.as_str()).is_some(), "{} missing", code.as_str());
        }
    }

    /// Every string literal `"E_..."` in `runtime/src/http/*.rs` is a code
    /// of the catalogue: a new code cannot be answered without being
    /// documented (and listed in the OpenAPI enum).
    #[test]
    fn every_code_used_in_the_http_sources_is_in_the_catalogue() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut files = 0;
        let mut found = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, _) in text.match_indices("\"E_") {
                let rest = &text[i + 1..];
                let end = rest[2..]
                    .find(|ch: char| !(ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_'))
                    .map(|n| n + 2)
                    .unwrap_or(rest.len());
                if end > 2 && rest[end..].starts_with('"') {
                    found.insert((rest[..end].to_string(), path.clone()));
                }
            }
        }
        assert!(files >= 10, "the http sources were read from {dir:?}");
        assert!(found.len() > 10, "{found:?}");
        for (code, file) in &found {
            assert!(
                lookup(code).is_some(),
                "{code} (used in {}) is not in the catalogue of http/codes.rs",
                file.display()
            );
        }
    }
}
