//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! completed by the modifiers below: the errors every operation can give,
//! the response headers (`X-Request-Id` everywhere, `ETag`, `Location`,
//! `Retry-After`, `Allow`), `security: []` on the public operations, and
//! an example for each operation.

use super::ratelimit::RateLimitDoc;
use super::webhooks_doc::Webhooks;
use super::{
    admin, audit, bulk, codes, error, history, imports, kpis, links, list, notifications, ops,
    queues, records, schema, timers, views,
};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Header, RefOr, Response};
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
struct StandardErrors;

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

fn string_header(description: &str) -> Header {
    let mut h = Header::new(ObjectBuilder::new().schema_type(Type::String));
    h.description = Some(description.into());
    h
}

fn request_id_header() -> Header {
    string_header("The request's id: the client's `X-Request-Id` if it sent one, else a new UUID; log lines carry it")
}

/// The response headers: `X-Request-Id` on every answer, `Retry-After` on
/// 503, `ETag` on a record (its revision) and on a workflow schema (the
/// version hash), `Location` on 201.
struct Headers;

impl Modify for Headers {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (_, _, op) in operations(api) {
            let id = op_id(op).to_string();
            for (status, resp) in op.responses.responses.iter_mut() {
                let RefOr::T(resp) = resp else { continue };
                let h = &mut resp.headers;
                h.insert("X-Request-Id".into(), request_id_header());
                let ok = status.starts_with('2');
                if status == "503" {
                    let mut retry = Header::new(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    );
                    retry.description =
                        Some("Seconds to wait before sending the request again".into());
                    h.insert("Retry-After".into(), retry);
                }
                if ok && RECORD_ANSWERS.contains(&id.as_str()) {
                    h.insert(
                        "ETag".into(),
                        string_header(
                            "The record's revision, quoted (`\"3\"`): send it back as `If-Match`",
                        ),
                    );
                }
                if ok && id == "workflows_schema" {
                    h.insert("ETag".into(), string_header("The version hash, quoted"));
                }
                if status == "201" {
                    h.insert(
                        "Location".into(),
                        string_header("The created record's path, `/v1/records/{id}`"),
                    );
                }
            }
        }
    }
}

/// A record as the examples show it.
fn record_example(id: i64, state: &str, revision: i64, fields: Value) -> Value {
    json!({
        "id": id, "workflow": "aslm", "version": "9eb52b8464d84760", "state": state,
        "fields": fields, "assignee": "dealer-rm", "revision": revision,
        "created_at": "2026-11-30T09:12:03.512044Z",
        "entered_at": "2026-11-30T09:12:03.512044Z",
        "updated_at": "2026-11-30T09:40:11.020311Z"
    })
}

fn lead_fields() -> Value {
    json!({
        "first_name": "Mario", "last_name": "Rossi", "province": "RM",
        "phone": "3331234567", "attempts": 0, "consent_marketing": false,
        "assigned_at": "2026-11-30T09:12:03.512044Z"
    })
}

/// Examples by operation: (request body, (status, response body)).
fn examples(op: &str) -> (Option<Value>, Option<(&'static str, Value)>) {
    let record = record_example(42, "assigned", 1, lead_fields());
    let period =
        json!({"from": "2026-08-01T00:00:00.000000Z", "until": "2026-08-22T00:00:00.000000Z"});
    let actor = json!({"id": "dealer-rm", "role": "dealer", "zones": ["RM"], "skills": [],
        "capacity": 40, "load": 12, "unavailable": [period]});
    match op {
        "records_list" => (None, Some(("200", json!({
            "items": [record], "has_more": true,
            "next": "3q2-7wHnR0uJ5cT1m8lY0aQ9vW4xZ2bK"
        })))),
        "views_list" => (None, Some(("200", json!({"items": [{
            "workflow": "cc_lead", "name": "lista_nord", "title": "Lista zona Nord",
            "columns": ["first_name", "last_name", "phone", "province", "state", "assignee"],
            "states": ["new", "in_progress", "appointment"], "filter": "lead.zone == \"nord\"",
            "sort": "province", "href": "/v1/views/cc_lead/lista_nord"
        }]})))),
        "views_get" => (None, Some(("200", json!({
            "view": {"workflow": "aslm", "name": "not_yet_handled", "title": "Non ancora gestiti (not yet handled)",
                     "columns": ["first_name", "last_name", "created_at", "state", "attempts", "age_days", "priority"],
                     "states": ["assigned"], "filter": "lead.attempts == 0", "sort": "priority",
                     "href": "/v1/views/aslm/not_yet_handled"},
            "items": [record_example(42, "assigned", 1, json!({"first_name": "Mario", "last_name": "Rossi", "attempts": 0, "priority": 1}))],
            "has_more": true, "next": "3q2-7wHnR0uJ5cT1m8lY0aQ9vW4xZ2bK",
            "count": {"value": 137, "estimated": false}
        })))),
        "queues_list" => (None, Some(("200", json!({"items": [{
            "workflow": "cc_lead", "name": "chiamate", "title": "Prossima chiamata",
            "states": ["new", "in_progress"],
            "filter": "lead.callback_at == () || lead.callback_at <= now",
            "order": ["due:callback_at", "call_attempts", "created_at"],
            "calling_hours": "09:00-20:00", "calendar": "it", "open": true,
            "max_attempts": {"field": "call_attempts", "max": 5},
            "lease_seconds": 300, "href": "/v1/queues/cc_lead/chiamate/next"
        }]})))),
        "queues_next" => {
            let mut r = record_example(7, "in_progress", 3, json!({
                "first_name": "Mario", "last_name": "Rossi", "phone": "+39 347 1234567",
                "province": "MI", "zone": "nord", "call_attempts": 1, "call_outcome": "call_back",
                "callback_at": "2026-12-01T09:30:00.000000Z"}));
            r["workflow"] = json!("cc_lead");
            r["assignee"] = json!("op-mi-1");
            r["timers"] = json!([]);
            r["lease_expires_at"] = json!("2026-12-01T09:36:12.204518Z");
            r["again"] = json!(false);
            (None, Some(("200", r)))
        }
        "queues_release" => (None, Some(("200", json!({"released": 7})))),
        "records_create" => (
            Some(json!({"workflow": "aslm", "fields": {
                "first_name": "Mario", "last_name": "Rossi", "province": "RM", "phone": "3331234567"}})),
            Some(("201", record)),
        ),
        "records_get" => (None, Some(("200", record))),
        "records_fire" => {
            let mut fields = lead_fields();
            fields["appointment_at"] = json!("2026-12-03T10:00:00.000000Z");
            (
                Some(json!({"input": {"appointment_at": "2026-12-03T11:00:00+01:00"}})),
                Some(("200", record_example(42, "appointment_set", 2, fields))),
            )
        }
        "records_actions" => (None, Some(("200", json!([
            {"transition": "make_appointment", "title": "Make appointment", "to": "appointment_set",
             "input": [{"name": "appointment_at", "title": "Appointment", "type": "datetime", "required": true}]},
            {"transition": "log_contact_attempt", "title": "Log contact attempt", "to": null, "input": []}
        ])))),
        "records_history" => (None, Some(("200", json!([
            {"record": 42, "workflow": "aslm", "revision": 2, "at": "2026-11-30T09:40:11.020311Z",
             "actor": "dealer-rm", "kind": "transition", "transition": "log_contact_attempt",
             "from": "assigned", "to": "assigned", "assignee": "dealer-rm", "input": {},
             "changes": [{"field": "attempts", "old": 0, "new": 1}]}
        ])))),
        "history_list" => (None, Some(("200", json!({
            "items": [{"record": 42, "workflow": "aslm", "revision": 2, "at": "2026-11-30T09:40:11.020311Z",
             "actor": "dealer-rm", "kind": "transition", "transition": "log_contact_attempt",
             "from": "assigned", "to": "assigned", "assignee": "dealer-rm", "input": {},
             "changes": [{"field": "attempts", "old": 0, "new": 1}]}],
            "has_more": false
        })))),
        "records_links" => (None, Some(("200", json!([{"name": "spawned", "to": 43}])))),
        "records_check" => (None, Some(("200", json!({
            "transition": "close_sale", "state": "assigned", "allowed": false,
            "reasons": [
                {"code": "E_REQUIRED", "message": "`vin` is required to Close with sale and is empty: give it as input", "field": "vin"},
                {"code": "E_GUARD", "message": "log at least one contact attempt first"}
            ],
            "guard": [{"source": "rules::can_close_sale(lead)", "result": "threw",
                       "message": "log at least one contact attempt first", "reads": {}}]
        })))),
        "kpis_get" => (None, Some(("200", json!({
            "workflow": "aslm", "time_zone": "Europe/Rome",
            "kpis": [{"name": "sla1", "title": "SLA-1: first contact attempt within 24 hours of assignment",
                "kind": "sla", "computed": "sql", "target": 0.7, "anchor": "assigned_at",
                "group_by": ["assignee"], "from": "2025-03-31T22:00:00Z", "to": "2025-06-30T22:00:00Z",
                "rows": [{"group": ["dealer-rm"], "population": 4, "hits": 3, "ratio": 0.75, "met": true,
                          "durations": {"count": 3, "avg_seconds": 30600.0}}],
                "total": {"group": [], "population": 4, "hits": 3, "ratio": 0.75, "met": true,
                          "durations": {"count": 3, "avg_seconds": 30600.0}}}]
        })))),
        "reports_get" => (None, Some(("200", json!({
            "workflow": "oplead_project", "name": "billing",
            "title": "OPL-12: quarterly billing, 50 EUR VAT incl. per project lead closed with a sale above 500 EUR excl. VAT",
            "period": "2025-Q2", "from": "2025-03-31T22:00:00Z", "to": "2025-06-30T22:00:00Z",
            "anchor": "transition:close_sale", "computed": "sql", "group_by": ["assignee"],
            "charge": 50.0, "currency": "EUR",
            "rows": [{"group": ["exp-a"], "count": 2, "amount": 100.0}],
            "total_count": 2, "total_amount": 100.0
        })))),
        "reports_runs_list" => (None, Some(("200", json!({
            "runs": [{"id": 2, "workflow": "oplead_project", "report": "billing", "slot": "2025-06-30T22:00:00Z",
                      "status": "done", "attempts": 1, "next_attempt": "2025-06-30T22:00:00Z",
                      "started_at": "2025-06-30T22:00:12.104220Z", "finished_at": "2025-06-30T22:00:12.311907Z",
                      "error": null, "period": "2025-Q2", "messages": 0}],
            "has_more": false
        })))),
        "reports_runs_get" => (None, Some(("200", json!({
            "id": 2, "workflow": "oplead_project", "report": "billing", "slot": "2025-06-30T22:00:00Z",
            "status": "done", "attempts": 1, "next_attempt": "2025-06-30T22:00:00Z",
            "started_at": "2025-06-30T22:00:12.104220Z", "finished_at": "2025-06-30T22:00:12.311907Z",
            "error": null, "period": "2025-Q2", "messages": 0,
            "result": {"workflow": "oplead_project", "name": "billing", "title": "OPL-12: quarterly billing",
                       "period": "2025-Q2", "from": "2025-03-31T22:00:00Z", "to": "2025-06-30T22:00:00Z",
                       "anchor": "transition:close_sale", "computed": "sql", "group_by": ["assignee"],
                       "charge": 50.0, "currency": "EUR", "rows": [{"group": ["exp-a"], "count": 2, "amount": 100.0}],
                       "total_count": 2, "total_amount": 100.0}
        })))),
        "records_notifications" => (None, Some(("200", json!([
            {"id": 7, "template": "appointment_confirmation", "recipients": ["customer"], "revision": 3,
             "status": "delivered", "attempts": 1, "created_at": "2026-11-30T09:40:11.020311Z",
             "delivered_at": "2026-11-30T09:40:13.500120Z"},
            {"id": 8, "template": "appointment_confirmation", "recipients": ["dealer-rm"], "revision": 3,
             "status": "failed", "attempts": 1, "last_error": "E_SINK_ADDRESS: no e-mail address for dealer-rm",
             "created_at": "2026-11-30T09:40:11.020311Z", "failed_at": "2026-11-30T09:40:13.500120Z"}
        ])))),
        "actors_list" => (None, Some(("200", json!([actor])))),
        "actors_get" => (None, Some(("200", actor))),
        "actors_unavailability_get" => (None, Some(("200", json!([period])))),
        "actors_unavailability_put" => (Some(json!([period])), Some(("200", json!([period])))),
        "workflows_list" => (None, Some(("200", json!({
            "ok": true, "checked_at": "2026-11-30T09:00:00.104211Z", "error": null, "diagnostics": [],
            "workflows": [{"id": "aslm", "title": "After-sales leads", "current": "9eb52b8464d84760",
                "versions": [{"hash": "9eb52b8464d84760", "current": true, "file": "workflows/aslm.toml"}]}]
        })))),
        "workflows_schema" => (None, Some(("200", json!({
            "workflow": "aslm", "title": "After-sales leads", "version": "9eb52b8464d84760", "current": true,
            "fields": {"$schema": schema::DIALECT, "title": "aslm lead fields", "type": "object",
                "additionalProperties": false, "properties": {
                    "province": {"type": ["string", "null"], "title": "Province", "x-leadflow-type": "string"},
                    "phone": {"type": ["string", "null"], "title": "Phone", "x-leadflow-type": "string",
                        "x-pii": true, "x-reveal-in": ["assigned", "appointment_set"]},
                    "attempts": {"type": ["integer", "null"], "title": "Attempts", "default": 0, "x-leadflow-type": "int"}}},
            "create": {"$schema": schema::DIALECT, "title": "aslm lead: fields to create one", "type": "object",
                "additionalProperties": false, "required": ["province"], "properties": {
                    "province": {"type": ["string", "null"], "title": "Province", "x-leadflow-type": "string"}}},
            "transitions": {"make_appointment": {"title": "Make appointment", "from": ["assigned"],
                "to": "appointment_set", "by": ["dealer"],
                "input": {"$schema": schema::DIALECT, "title": "aslm: input of make_appointment", "type": "object",
                    "additionalProperties": false, "x-require": ["appointment_at"], "properties": {
                        "appointment_at": {"type": ["string", "null"], "format": "date-time",
                            "title": "Appointment", "x-leadflow-type": "datetime"}}}}}
        })))),
        "timers_parked_list" => (None, Some(("200", json!([
            {"record": 42, "timer": "first_contact_sla", "due": "2026-11-30T13:12:03.512044Z",
             "attempts": 5, "last_error": "E_SCRIPT: ...", "parked_at": "2026-11-30T13:20:40.001822Z"}
        ])))),
        "timers_parked_retry" => (None, None),
        "audit_list" => (None, Some(("200", json!({
            "entries": [{"id": 7, "at": "2026-11-30T09:12:03.530101Z", "key": "aslm-admin",
                "method": "POST", "path": "/v1/records", "status": 201, "record": 42}],
            "has_more": false
        })))),
        "errors_list" => (None, Some(("200", json!([{"code": "E_CONFLICT", "status": 412,
            "title": "Revision conflict", "description": "`If-Match` named a revision the record is no longer at ..."}])))),
        "errors_get" => (None, Some(("200", json!({"code": "E_CONFLICT", "status": 412,
            "title": "Revision conflict", "description": "`If-Match` named a revision the record is no longer at ..."})))),
        "links_show" => (None, Some(("200", json!("<!doctype html><title>RIFIUTA</title><form method=\"post\" action=\"/links/WzEsIm9wbGVhZCIs...\"><label for=\"f-refusal_reason\">Motivo del rifiuto *</label>...</form>")))),
        "links_submit" => (
            Some(json!({"refusal_reason": "troppo lontano"})),
            Some(("200", json!("<!doctype html><title>RIFIUTA</title><div class=\"done\"><p>Fatto. Puoi chiudere questa pagina.</p></div>"))),
        ),
        "imports_create" => (
            Some(json!("first_name,last_name,phone,province\nMario,Rossi,+39 347 1234567,MI\nAnna,Verdi,not a phone,TO\n")),
            Some(("202", import_job("running", json!({"lines": 0, "imported": 0, "updated": 0, "skipped": 0, "rejected": 0, "already": 0, "bytes": 0}), Value::Null))),
        ),
        "imports_get" => (None, Some(("200", import_job("done",
            json!({"lines": 2, "imported": 1, "updated": 0, "skipped": 0, "rejected": 1, "already": 0, "bytes": 76}),
            json!({"summary": "imported 1, updated 0, skipped 0, rejected 1", "ignored_columns": []}))))),
        "imports_rejected" => (None, Some(("200", json!("_line,_column,_code,_message,first_name,last_name,phone,province\n3,phone,E_PATTERN,\"phone: does not match the pattern\",Anna,Verdi,not a phone,TO\n")))),
        "bulk_create" => (
            Some(json!({"workflow": "cc_lead", "transition": "close_not_interested",
                "filter": {"state": "new", "field.zone": "isole"}, "input": {"close_reason": "other"}, "dry_run": true})),
            Some(("202", bulk_job("running", json!({"selected": 0, "fired": 0, "refused": 0}), Value::Null))),
        ),
        "bulk_get" => (None, Some(("200", bulk_job("done", json!({"selected": 2, "fired": 1, "refused": 1}),
            json!({"dry_run": true, "fired": 1, "refused": 1, "records": [
                {"id": 17, "outcome": "would_fire"},
                {"id": 18, "outcome": "refused", "code": "E_NOT_ENABLED", "message": "`close_not_interested` cannot be fired in state `closed`"}]}))))),
        "ops_healthz" => (None, Some(("200", json!({"status": "ok"})))),
        "ops_readyz" => (None, Some(("200", json!({"status": "ready"})))),
        "ops_metrics" => (None, Some(("200", json!("# TYPE leadflow_transitions_total counter\nleadflow_transitions_total{tenant=\"aslm\",workflow=\"aslm\",transition=\"make_appointment\"} 3\n")))),
        "ops_openapi" => (None, Some(("200", json!({"openapi": "3.1.0", "info": {"title": "leadflow", "version": "0.1.0"}, "paths": {}})))),
        _ => (None, None),
    }
}

/// An import job's document in examples.
fn import_job(state: &str, progress: Value, report: Value) -> Value {
    json!({"id": 7, "kind": "import", "workflow": "cc_lead", "state": state,
        "key": "sha256:5f0c6e1d2a9b8c7d5f0c6e1d2a9b8c7d5f0c6e1d2a9b8c7d5f0c6e1d2a9b8c7d",
        "params": {"workflow": "cc_lead", "format": "csv", "dedup": ["phone"], "on_duplicate": "skip", "country": "39", "bytes": 76},
        "progress": progress, "report": report, "error": null, "created_by": "cc-admin",
        "created_at": "2026-11-30T09:12:03.530101Z", "updated_at": "2026-11-30T09:12:04.101934Z",
        "finished_at": if state == "done" { json!("2026-11-30T09:12:04.101934Z") } else { Value::Null },
        "href": "/v1/imports/7", "rejected_href": "/v1/imports/7/rejected"})
}

/// A bulk job's document in examples.
fn bulk_job(state: &str, progress: Value, report: Value) -> Value {
    json!({"id": 8, "kind": "bulk", "workflow": "cc_lead", "state": state,
        "params": {"workflow": "cc_lead", "transition": "close_not_interested", "reassign": null,
            "filter": {"state": "new", "field.zone": "isole"}, "ids": null, "input": {"close_reason": "other"}, "dry_run": true},
        "progress": progress, "report": report, "error": null, "created_by": "cc-admin",
        "created_at": "2026-11-30T09:12:03.530101Z", "updated_at": "2026-11-30T09:12:04.101934Z",
        "finished_at": if state == "done" { json!("2026-11-30T09:12:04.101934Z") } else { Value::Null },
        "href": "/v1/bulk/8"})
}

/// An example for each operation's request body and success answer;
/// examples for path parameters.
struct Examples;

impl Modify for Examples {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let named = |summary: &str, v: Value| {
            utoipa::openapi::example::ExampleBuilder::new()
                .summary(summary)
                .value(Some(v))
                .build()
        };
        for (path, _, op) in operations(api) {
            let id = op_id(op).to_string();
            let (request, response) = examples(&id);
            if let (Some(v), Some(body)) = (request, op.request_body.as_mut()) {
                for (kind, c) in body.content.iter_mut() {
                    let v = match kind.as_str() {
                        "application/x-ndjson" => json!("{\"first_name\":\"Mario\",\"last_name\":\"Rossi\",\"phone\":\"+39 347 1234567\",\"province\":\"MI\"}\n"),
                        _ => v.clone(),
                    };
                    c.examples
                        .insert("example".into(), named("a request", v).into());
                }
            }
            if let Some((status, v)) = response {
                if let Some(RefOr::T(r)) = op.responses.responses.get_mut(status) {
                    for (kind, c) in r.content.iter_mut() {
                        // A JSON answer that is also served as a page.
                        let v = match kind.as_str() {
                            "text/html" if !v.is_string() => {
                                json!("<!doctype html><title>leadflow</title>...")
                            }
                            "text/csv" if !v.is_string() => {
                                json!("assignee,count,amount\nexp-a,2,100.00\n")
                            }
                            "application/x-ndjson" => json!("{\"_line\":3,\"_column\":\"email\",\"_code\":\"E_PATTERN\",\"_message\":\"email: does not match the pattern\",\"first_name\":\"Anna\",\"email\":\"anna@\"}\n"),
                            _ => v.clone(),
                        };
                        c.examples
                            .insert("example".into(), named("an answer", v).into());
                    }
                }
            }
            for p in op.parameters.iter_mut().flatten() {
                let example = match (p.name.as_str(), path.starts_with("/v1/actors")) {
                    ("id", true) => json!("dealer-rm"),
                    ("id", false) if path.starts_with("/v1/workflows") => json!("aslm"),
                    ("id" | "record", _) => json!(42),
                    ("transition", _) => json!("make_appointment"),
                    ("timer", _) => json!("first_contact_sla"),
                    ("token", _) => json!("WzEsIm9wbGVhZCIsNDIsMywicmVmdXNlIiwiZXhwLWEiLDE3NjQ1ODk2MDBd.q0HxD0tWYgp9fRkvO7n6b5wV3zNUQm8CqkZr0yX2e4s"),
                    ("If-Match", _) => json!("\"1\""),
                    ("Idempotency-Key", _) => json!("form-submission-8f14e45f"),
                    _ => continue,
                };
                let with = utoipa::openapi::path::ParameterBuilder::from(p.clone())
                    .example(Some(example))
                    .build();
                *p = with;
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
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ops(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op));
            }
        }
        out
    }

    #[test]
    fn operation_ids_are_unique_prefixed_and_tagged() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut seen = BTreeSet::new();
        for (path, method, op) in ops(doc) {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(seen.insert(id.to_string()), "{id} twice");
            let tag = op["tags"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no tag"));
            let prefix = if tag == "operations" { "ops" } else { tag };
            assert!(
                id.starts_with(&format!("{prefix}_")),
                "{id} under tag {tag}"
            );
            assert!(op["summary"].is_string(), "{id}: no summary");
        }
        for id in [
            "records_list",
            "records_create",
            "records_get",
            "records_fire",
            "records_actions",
            "records_check",
            "records_history",
            "records_links",
            "records_notifications",
            "actors_list",
            "actors_get",
            "actors_unavailability_get",
            "actors_unavailability_put",
            "workflows_list",
            "workflows_schema",
            "timers_parked_list",
            "timers_parked_retry",
            "audit_list",
            "kpis_get",
            "reports_get",
            "reports_runs_list",
            "reports_runs_get",
            "ops_healthz",
            "ops_readyz",
            "ops_metrics",
            "ops_openapi",
        ] {
            assert!(seen.contains(id), "{id} missing");
        }
        let tags: BTreeSet<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        for (_, _, op) in ops(doc) {
            assert!(
                tags.contains(op["tags"][0].as_str().unwrap()),
                "undeclared tag"
            );
        }
    }

    /// Every `$ref` in `v`, with where it is.
    fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push((at.clone(), r)),
                        _ => refs(x, format!("{at}/{k}"), out),
                    }
                }
            }
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    refs(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut all = Vec::new();
        refs(doc, String::new(), &mut all);
        assert!(all.len() > 20);
        for (at, r) in all {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{at}: external ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "{at}: {r} does not resolve");
        }
    }

    #[test]
    fn list_parameters_have_the_servers_bounds() {
        let doc = document();
        let params = doc["paths"]["/v1/records"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let p = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no parameter {name}"))
        };
        let names: BTreeSet<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "workflow",
                "state",
                "assignee",
                "filter",
                "q",
                "sort",
                "limit",
                "after",
                "count",
                "format",
                "created_at",
                "entered_at",
                "updated_at"
            ]
            .into()
        );
        for p in params {
            assert_eq!(p["in"], "query");
            assert_ne!(p["required"], true);
            assert!(
                !p["name"].as_str().unwrap().contains('<'),
                "a literal template name"
            );
        }
        let limit = &p("limit")["schema"];
        assert_eq!(limit["type"], "integer");
        assert_eq!(limit["minimum"], 1);
        assert_eq!(limit["maximum"], list::MAX_LIMIT);
        assert_eq!(limit["default"], list::DEFAULT_LIMIT);
        for (name, max) in [("state", list::MAX_STATES), ("filter", list::MAX_FILTERS)] {
            let q = p(name);
            assert_eq!(
                (&q["style"], &q["explode"]),
                (&json!("form"), &json!(true)),
                "{name}"
            );
            assert_eq!(q["schema"]["type"], "array", "{name}");
            assert_eq!(q["schema"]["maxItems"], max, "{name}");
            assert_eq!(q["schema"]["items"]["maxLength"], list::MAX_VALUE, "{name}");
        }
        for name in ["workflow", "assignee", "after"] {
            assert_eq!(p(name)["schema"]["maxLength"], list::MAX_VALUE, "{name}");
        }
        assert_eq!(p("sort")["schema"]["maxLength"], list::MAX_NAME + 1);
        let audit = doc["paths"]["/v1/audit"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let limit = &audit.iter().find(|p| p["name"] == "limit").unwrap()["schema"];
        assert_eq!(
            (&limit["minimum"], &limit["maximum"], &limit["default"]),
            (
                &json!(1),
                &json!(audit::MAX_LIMIT),
                &json!(audit::DEFAULT_LIMIT)
            )
        );
    }

    #[test]
    fn values_are_typed_and_pages_say_if_more_follow() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        let fv = json!({"$ref": "#/components/schemas/FieldValue"});
        for (schema, prop) in [
            ("RecordView", "fields"),
            ("CreateBody", "fields"),
            ("FireBody", "input"),
        ] {
            assert_eq!(
                s[schema]["properties"][prop]["type"], "object",
                "{schema}.{prop}"
            );
            assert_eq!(
                s[schema]["properties"][prop]["additionalProperties"], fv,
                "{schema}.{prop}"
            );
        }
        for k in ["old", "new"] {
            assert_eq!(
                s["ChangeView"]["properties"][k]["$ref"], fv["$ref"],
                "ChangeView.{k}"
            );
        }
        let kinds: Vec<&Value> = s["FieldValue"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| &k["type"])
            .collect();
        assert_eq!(
            kinds,
            [
                &json!("null"),
                &json!("string"),
                &json!("number"),
                &json!("boolean"),
                &json!("array")
            ]
        );
        for page in ["Page", "AuditPage", "HistoryPage"] {
            assert_eq!(
                s[page]["properties"]["has_more"]["type"], "boolean",
                "{page}"
            );
            assert!(s[page]["required"]
                .as_array()
                .unwrap()
                .contains(&json!("has_more")));
        }
        for (schema, prop) in [
            ("RecordView", "created_at"),
            ("EventView", "at"),
            ("AuditEntry", "at"),
            ("PeriodView", "from"),
        ] {
            assert_eq!(
                s[schema]["properties"][prop]["format"], "date-time",
                "{schema}.{prop}"
            );
        }
        // No empty-object types (a generator reads them as "no members").
        for (name, schema) in s.as_object().unwrap() {
            assert_ne!(schema["type"], "integer", "{name}: a scalar as a component");
            for (prop, p) in schema["properties"].as_object().into_iter().flatten() {
                if p["type"] == "object" {
                    assert!(
                        p.get("properties").is_some() || p.get("additionalProperties").is_some(),
                        "{name}.{prop}: an empty object type"
                    );
                }
            }
        }
        let fire = &doc["paths"]["/v1/records/{id}/transitions/{transition}"]["post"];
        assert_eq!(
            fire["requestBody"]["required"], false,
            "an empty body is an empty input"
        );
        let body = &fire["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            body["$ref"], "#/components/schemas/FireBody",
            "not nullable: `null` is refused"
        );
        assert!(fire["responses"].get("413").is_some() && fire["responses"].get("408").is_some());
    }

    #[test]
    fn headers_security_and_examples_are_declared() {
        let doc = document();
        for (path, method, op) in ops(doc) {
            let id = op["operationId"].as_str().unwrap();
            let public = PUBLIC.contains(&id);
            assert_eq!(
                op["security"] == json!([]),
                public,
                "{id}: security {}",
                op["security"]
            );
            assert_eq!(
                op["responses"]["405"]["$ref"], "#/components/responses/MethodNotAllowed",
                "{id}"
            );
            for (status, r) in op["responses"].as_object().unwrap() {
                if r.get("$ref").is_some() {
                    continue;
                }
                let h = &r["headers"];
                assert!(
                    h.get("X-Request-Id").is_some(),
                    "{id} {status}: no X-Request-Id"
                );
                assert_eq!(
                    h.get("Retry-After").is_some(),
                    status == "503" || status == "429",
                    "{id} {status}"
                );
                assert_eq!(
                    h.get("Location").is_some(),
                    status == "201",
                    "{id} {status}"
                );
                // A record's revision, a schema's version; a 304 and a 412
                // say the record's current revision.
                let etag = (status.starts_with('2')
                    && (RECORD_ANSWERS.contains(&id) || id == "workflows_schema"))
                    || (id == "records_get" && status == "304")
                    || (id == "records_fire" && status == "412");
                assert_eq!(h.get("ETag").is_some(), etag, "{id} {status}");
            }
            if let Some(body) = op.get("requestBody") {
                for c in body["content"].as_object().unwrap().values() {
                    assert!(
                        c["examples"]["example"]["value"] != Value::Null,
                        "{id}: no request example"
                    );
                }
            }
            let ok = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(s, _)| s.starts_with('2'))
                .unwrap();
            if let Some(content) = ok.1["content"].as_object() {
                for c in content.values() {
                    assert!(
                        c["examples"]["example"]["value"] != Value::Null,
                        "{method} {path}: no answer example"
                    );
                }
            }
        }
        for (_, _, op) in ops(doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(
                    p["schema"]["type"].is_string(),
                    "{} {}: {}",
                    op["operationId"],
                    p["name"],
                    p["schema"]
                );
            }
        }
        let methods = &doc["components"]["responses"]["MethodNotAllowed"]["headers"];
        assert!(methods.get("Allow").is_some());
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
                    let resp = match resp["$ref"].as_str() {
                        Some(r) => {
                            let name = r.trim_start_matches("#/components/responses/");
                            &doc["components"]["responses"][name]
                        }
                        None => resp,
                    };
                    let content = resp["content"].as_object().unwrap();
                    if path.starts_with("/links/") && content.contains_key("text/html") {
                        // The action link pages: refusals are pages too.
                        assert_eq!(content.len(), 1, "{method} {path} {status}");
                        continue;
                    }
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
                serde_json::json!([]),
                "{p}"
            );
            assert!(doc["paths"][p]["get"]["responses"].get("401").is_none());
        }
    }
}
