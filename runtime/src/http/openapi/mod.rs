//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! completed by modifiers (here and in `errors.rs`, `headers.rs`,
//! `examples.rs`): the errors every operation can give, the response
//! headers (`X-Request-Id` everywhere, `ETag`, `Location`, `Retry-After`,
//! `Allow`), `security: []` on the public operations, and an example for
//! each operation.

mod errors;
mod examples;
mod headers;

use super::ratelimit::RateLimitDoc;
use super::webhooks_doc::Webhooks;
use super::{
    admin, audit, bulk, codes, error, history, imports, kpis, links, list, notifications, ops,
    queues, records, schema, timers, views,
};
use axum::response::IntoResponse;
use errors::StandardErrors;
use examples::Examples;
use headers::Headers;
use serde_json::Value;
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "leadflow", description = "Lead lifecycles over HTTP: records, transitions, actors, workflow versions.

Conventions (docs/api.md): JSON bodies; every instant is RFC 3339 in UTC with microseconds (`2026-11-30T20:27:18.388018Z`); a record's `revision` is its `ETag` (send it back as `If-Match`); every response carries `X-Request-Id`; errors are RFC 9457 problem documents (`application/problem+json`) with a stable `code` (`GET /errors` lists the codes); a method a path does not take is 405 with `Allow`. Query parameters a list operation does not know are refused (400), so are filter and sort field names no loaded workflow version declares. Field values are typed per workflow: `GET /v1/workflows/{id}/schema`."),
    servers((url = "/", description = "the daemon serving this document")),
    paths(
        list::list, views::list, views::get, queues::list, queues::next, queues::release, history::list, records::create, records::get, records::fire, records::check, records::actions, records::history, records::links, notifications::list,
        admin::list, admin::get, admin::get_unavailability, admin::put_unavailability,
        admin::workflows, schema::workflow,
        timers::parked, timers::retry,
        audit::list,
        kpis::kpis, kpis::report, kpis::report_runs, kpis::report_run,
        ops::healthz, ops::readyz, ops::metrics_text, json,
        links::show, links::submit,
        imports::create, imports::get, imports::rejected, bulk::create, bulk::get,
    ),
    components(schemas(error::ErrorBody, schema::FieldValue)),
    tags(
        (name = "records", description = "Records (leads, tickets, ...): create, read, list, fire transitions; history and links"),
        (name = "actors", description = "The actor directory and unavailability periods"),
        (name = "workflows", description = "Workflow versions, their check status and their JSON Schemas"),
        (name = "timers", description = "Parked timer items (admin keys)"),
        (name = "views", description = "The workflows' `[views]` served as lists: columns, filter, sort, counts, keyset pages"),
        (name = "queues", description = "Work queues (`[queues]`): pull the next record to work and hold it for a lease"),
        (name = "history", description = "The tenant's record events, for supervisors and audits"),
        (name = "imports", description = "Bulk import of CSV or NDJSON as a background job, its progress and reject report (admin keys; docs/import.md)"),
        (name = "bulk", description = "One transition, or a reassignment, over a list of records or a filter, as a background job; dry runs (docs/import.md)"),
        (name = "audit", description = "The audit of admin actions (admin keys)"),
        (name = "kpis", description = "KPIs computed by the store, per group and period (admin keys; docs/kpis.md)"),
        (name = "reports", description = "Reports for a period, JSON or CSV, billing amounts from the declared charge (admin keys)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "errors", description = "The catalogue of error codes a problem document's `type` points at"),
        (name = "links", description = "The HTML pages of one-click action links in messages (no key: the signed token is the credential; docs/notifications.md)"),
    ),
    security(("bearer" = [])),
    modifiers(&Bearer, &Public, &StandardErrors, &RateLimitDoc, &Headers, &Examples, &Webhooks)
)]
pub struct ApiDoc;

/// Operations any client may call without a key.
pub const PUBLIC: [&str; 7] = [
    "links_show",
    "links_submit",
    "ops_healthz",
    "ops_readyz",
    "ops_openapi",
    "errors_list",
    "errors_get",
];

/// Operations whose success answer is a record with its `ETag`.
const RECORD_ANSWERS: [&str; 3] = ["records_create", "records_get", "records_fire"];

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("An API key of a tenant (`Authorization: Bearer <key>`); /metrics takes the metrics token instead.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// Every operation of the document, with its path and method.
fn operations(api: &mut utoipa::openapi::OpenApi) -> Vec<(String, &'static str, &mut Operation)> {
    let mut out = Vec::new();
    for (path, item) in api.paths.paths.iter_mut() {
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                out.push((path.clone(), method, op));
            }
        }
    }
    out
}

fn op_id(op: &Operation) -> &str {
    op.operation_id.as_deref().unwrap_or_default()
}

/// `security: []` on the public operations (an admin key on /readyz adds
/// detail, but none is needed); parameters are not nullable; the fire
/// body is optional.
struct Public;

#[derive(OpenApi)]
#[openapi(paths(codes::list, codes::describe))]
struct ErrorPages;

impl Modify for Public {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        api.merge(ErrorPages::openapi());
        for (_, _, op) in operations(api) {
            if PUBLIC.contains(&op_id(op)) {
                op.security = Some(Vec::new());
            }
            // A header or query value is never JSON null: `Option<_>`
            // parameters are optional, not nullable.
            for p in op.parameters.iter_mut().flatten() {
                if let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() {
                    if let SchemaType::Array(types) = &o.schema_type {
                        let kept: Vec<Type> = types
                            .iter()
                            .filter(|t| **t != Type::Null)
                            .cloned()
                            .collect();
                        if let [one] = kept.as_slice() {
                            o.schema_type = SchemaType::Type(one.clone());
                        }
                    }
                }
            }
            // An empty body is an empty input (buttons without fields).
            if op_id(op) == "records_fire" {
                if let Some(body) = op.request_body.as_mut() {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
    }
}

/// The document as served (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null))
}

/// This document.
///
/// The OpenAPI 3.1 document of the API, built from the code that serves it.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "ops_openapi",
    responses((status = 200, body = BTreeMap<String, Value>, description = "the OpenAPI 3.1 document")))]
pub async fn json() -> impl IntoResponse {
    axum::Json(document())
}

#[cfg(test)]
mod tests;
