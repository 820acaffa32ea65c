//! An example for each operation's request body and success answer, and
//! for path parameters; the examples are tables by API area.

use super::{op_id, operations};
use crate::http::schema;
use serde_json::{json, Value};
use utoipa::openapi::RefOr;
use utoipa::Modify;

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

/// An operation's examples: (request body, (status, response body)).
type Example = (Option<Value>, Option<(&'static str, Value)>);

/// Examples by operation: (request body, (status, response body)), from
/// the table of the operation's area.
fn examples(op: &str) -> Example {
    let areas: [fn(&str) -> Example; 5] = [
        list_examples,
        record_examples,
        report_examples,
        admin_examples,
        job_examples,
    ];
    for area in areas {
        let e = area(op);
        if e.0.is_some() || e.1.is_some() {
            return e;
        }
    }
    (None, None)
}

/// Lists, views and work queues.
fn list_examples(op: &str) -> Example {
    let record = record_example(42, "assigned", 1, lead_fields());
    match op {
        "records_list" => (
            None,
            Some((
                "200",
                json!({
                    "items": [record], "has_more": true,
                    "next": "3q2-7wHnR0uJ5cT1m8lY0aQ9vW4xZ2bK"
                }),
            )),
        ),
        "views_list" => (
            None,
            Some((
                "200",
                json!({"items": [{
                    "workflow": "cc_lead", "name": "lista_nord", "title": "Lista zona Nord",
                    "columns": ["first_name", "last_name", "phone", "province", "state", "assignee"],
                    "states": ["new", "in_progress", "appointment"], "filter": "lead.zone == \"nord\"",
                    "sort": "province", "href": "/v1/views/cc_lead/lista_nord"
                }]}),
            )),
        ),
        "views_get" => (
            None,
            Some((
                "200",
                json!({
                    "view": {"workflow": "aslm", "name": "not_yet_handled", "title": "Non ancora gestiti (not yet handled)",
                             "columns": ["first_name", "last_name", "created_at", "state", "attempts", "age_days", "priority"],
                             "states": ["assigned"], "filter": "lead.attempts == 0", "sort": "priority",
                             "href": "/v1/views/aslm/not_yet_handled"},
                    "items": [record_example(42, "assigned", 1, json!({"first_name": "Mario", "last_name": "Rossi", "attempts": 0, "priority": 1}))],
                    "has_more": true, "next": "3q2-7wHnR0uJ5cT1m8lY0aQ9vW4xZ2bK",
                    "count": {"value": 137, "estimated": false}
                }),
            )),
        ),
        "queues_list" => (
            None,
            Some((
                "200",
                json!({"items": [{
                    "workflow": "cc_lead", "name": "chiamate", "title": "Prossima chiamata",
                    "states": ["new", "in_progress"],
                    "filter": "lead.callback_at == () || lead.callback_at <= now",
                    "order": ["due:callback_at", "call_attempts", "created_at"],
                    "calling_hours": "09:00-20:00", "calendar": "it", "open": true,
                    "max_attempts": {"field": "call_attempts", "max": 5},
                    "lease_seconds": 300, "href": "/v1/queues/cc_lead/chiamate/next"
                }]}),
            )),
        ),
        "queues_next" => {
            let mut r = record_example(
                7,
                "in_progress",
                3,
                json!({
                "first_name": "Mario", "last_name": "Rossi", "phone": "+39 347 1234567",
                "province": "MI", "zone": "nord", "call_attempts": 1, "call_outcome": "call_back",
                "callback_at": "2026-12-01T09:30:00.000000Z"}),
            );
            r["workflow"] = json!("cc_lead");
            r["assignee"] = json!("op-mi-1");
            r["timers"] = json!([]);
            r["lease_expires_at"] = json!("2026-12-01T09:36:12.204518Z");
            r["again"] = json!(false);
            (None, Some(("200", r)))
        }
        "queues_release" => (None, Some(("200", json!({"released": 7})))),
        _ => (None, None),
    }
}

/// A record: create, read, fire, actions, history, links, checks.
fn record_examples(op: &str) -> Example {
    let record = record_example(42, "assigned", 1, lead_fields());
    match op {
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
        "records_actions" => (
            None,
            Some((
                "200",
                json!([
                    {"transition": "make_appointment", "title": "Make appointment", "to": "appointment_set",
                     "input": [{"name": "appointment_at", "title": "Appointment", "type": "datetime", "required": true}]},
                    {"transition": "log_contact_attempt", "title": "Log contact attempt", "to": null, "input": []}
                ]),
            )),
        ),
        "records_history" => (
            None,
            Some((
                "200",
                json!([
                    {"record": 42, "workflow": "aslm", "revision": 2, "at": "2026-11-30T09:40:11.020311Z",
                     "actor": "dealer-rm", "kind": "transition", "transition": "log_contact_attempt",
                     "from": "assigned", "to": "assigned", "assignee": "dealer-rm", "input": {},
                     "changes": [{"field": "attempts", "old": 0, "new": 1}]}
                ]),
            )),
        ),
        "history_list" => (
            None,
            Some((
                "200",
                json!({
                    "items": [{"record": 42, "workflow": "aslm", "revision": 2, "at": "2026-11-30T09:40:11.020311Z",
                     "actor": "dealer-rm", "kind": "transition", "transition": "log_contact_attempt",
                     "from": "assigned", "to": "assigned", "assignee": "dealer-rm", "input": {},
                     "changes": [{"field": "attempts", "old": 0, "new": 1}]}],
                    "has_more": false
                }),
            )),
        ),
        "records_links" => (None, Some(("200", json!([{"name": "spawned", "to": 43}])))),
        "records_check" => (
            None,
            Some((
                "200",
                json!({
                    "transition": "close_sale", "state": "assigned", "allowed": false,
                    "reasons": [
                        {"code": "E_REQUIRED", "message": "`vin` is required to Close with sale and is empty: give it as input", "field": "vin"},
                        {"code": "E_GUARD", "message": "log at least one contact attempt first"}
                    ],
                    "guard": [{"source": "rules::can_close_sale(lead)", "result": "threw",
                               "message": "log at least one contact attempt first", "reads": {}}]
                }),
            )),
        ),
        _ => (None, None),
    }
}

/// KPIs, reports and their scheduled runs; a record's notifications.
fn report_examples(op: &str) -> Example {
    match op {
        "kpis_get" => (
            None,
            Some((
                "200",
                json!({
                    "workflow": "aslm", "time_zone": "Europe/Rome",
                    "kpis": [{"name": "sla1", "title": "SLA-1: first contact attempt within 24 hours of assignment",
                        "kind": "sla", "computed": "sql", "target": 0.7, "anchor": "assigned_at",
                        "group_by": ["assignee"], "from": "2025-03-31T22:00:00Z", "to": "2025-06-30T22:00:00Z",
                        "rows": [{"group": ["dealer-rm"], "population": 4, "hits": 3, "ratio": 0.75, "met": true,
                                  "durations": {"count": 3, "avg_seconds": 30600.0}}],
                        "total": {"group": [], "population": 4, "hits": 3, "ratio": 0.75, "met": true,
                                  "durations": {"count": 3, "avg_seconds": 30600.0}}}]
                }),
            )),
        ),
        "reports_get" => (
            None,
            Some((
                "200",
                json!({
                    "workflow": "oplead_project", "name": "billing",
                    "title": "OPL-12: quarterly billing, 50 EUR VAT incl. per project lead closed with a sale above 500 EUR excl. VAT",
                    "period": "2025-Q2", "from": "2025-03-31T22:00:00Z", "to": "2025-06-30T22:00:00Z",
                    "anchor": "transition:close_sale", "computed": "sql", "group_by": ["assignee"],
                    "charge": 50.0, "currency": "EUR",
                    "rows": [{"group": ["exp-a"], "count": 2, "amount": 100.0}],
                    "total_count": 2, "total_amount": 100.0
                }),
            )),
        ),
        "reports_runs_list" => (
            None,
            Some((
                "200",
                json!({
                    "runs": [{"id": 2, "workflow": "oplead_project", "report": "billing", "slot": "2025-06-30T22:00:00Z",
                              "status": "done", "attempts": 1, "next_attempt": "2025-06-30T22:00:00Z",
                              "started_at": "2025-06-30T22:00:12.104220Z", "finished_at": "2025-06-30T22:00:12.311907Z",
                              "error": null, "period": "2025-Q2", "messages": 0}],
                    "has_more": false
                }),
            )),
        ),
        "reports_runs_get" => (
            None,
            Some((
                "200",
                json!({
                    "id": 2, "workflow": "oplead_project", "report": "billing", "slot": "2025-06-30T22:00:00Z",
                    "status": "done", "attempts": 1, "next_attempt": "2025-06-30T22:00:00Z",
                    "started_at": "2025-06-30T22:00:12.104220Z", "finished_at": "2025-06-30T22:00:12.311907Z",
                    "error": null, "period": "2025-Q2", "messages": 0,
                    "result": {"workflow": "oplead_project", "name": "billing", "title": "OPL-12: quarterly billing",
                               "period": "2025-Q2", "from": "2025-03-31T22:00:00Z", "to": "2025-06-30T22:00:00Z",
                               "anchor": "transition:close_sale", "computed": "sql", "group_by": ["assignee"],
                               "charge": 50.0, "currency": "EUR", "rows": [{"group": ["exp-a"], "count": 2, "amount": 100.0}],
                               "total_count": 2, "total_amount": 100.0}
                }),
            )),
        ),
        "records_notifications" => (
            None,
            Some((
                "200",
                json!([
                    {"id": 7, "template": "appointment_confirmation", "recipients": ["customer"], "revision": 3,
                     "status": "delivered", "attempts": 1, "created_at": "2026-11-30T09:40:11.020311Z",
                     "delivered_at": "2026-11-30T09:40:13.500120Z"},
                    {"id": 8, "template": "appointment_confirmation", "recipients": ["dealer-rm"], "revision": 3,
                     "status": "failed", "attempts": 1, "last_error": "E_SINK_ADDRESS: no e-mail address for dealer-rm",
                     "created_at": "2026-11-30T09:40:11.020311Z", "failed_at": "2026-11-30T09:40:13.500120Z"}
                ]),
            )),
        ),
        _ => (None, None),
    }
}

/// Actors, workflows, parked timers, audit, the error catalogue, action links.
fn admin_examples(op: &str) -> Example {
    let period =
        json!({"from": "2026-08-01T00:00:00.000000Z", "until": "2026-08-22T00:00:00.000000Z"});
    let actor = json!({"id": "dealer-rm", "role": "dealer", "zones": ["RM"], "skills": [],
        "capacity": 40, "load": 12, "unavailable": [period]});
    match op {
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
        _ => (None, None),
    }
}

/// Import and bulk jobs; operations.
fn job_examples(op: &str) -> Example {
    match op {
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
pub(super) struct Examples;

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
