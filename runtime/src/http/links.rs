//! The pages behind one-click action links (`crate::links`):
//! `GET /links/{token}` shows what the link will do and a form with the
//! transition's declared inputs (it never changes anything); its
//! `POST /links/{token}` fires the transition as the link's actor, at the
//! revision the message was written at, and marks the link used.
//!
//! Every refusal is a small HTML page with a stable code, never a 500:
//! `E_LINK_INVALID` (altered, cut, foreign key, unknown tenant or
//! transition), `E_LINK_EXPIRED`, `E_LINK_USED`, `E_LINK_STALE` (the record
//! moved on since the message), `E_LINK_ACTOR` (the actor left the
//! directory or may no longer see the record); a refused input shows the
//! form again with the engine's code (`E_REQUIRED`, `E_TYPE`, ...).

use super::codes;
use super::error::ApiError;
use super::records::version_of;
use super::state::{AppState, Caller, Tenant};
use crate::backend::{Backend, Error, FireRequest, StoredRecord, Visible};
use crate::links::{LinkError, Verified};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Value, Workflow};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

const PAGE: &str = include_str!("link_page.html");

/// A refusal shown as a page: its code, status and text.
#[derive(Debug, Clone)]
struct Refusal {
    code: String,
    status: StatusCode,
    heading: Option<String>,
    message: String,
    field: Option<String>,
}

impl Refusal {
    fn new(code: &str, message: impl Into<String>) -> Refusal {
        let status = codes::lookup(code)
            .and_then(|c| StatusCode::from_u16(c.status).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
        Refusal {
            code: code.to_string(),
            status,
            heading: None,
            message: message.into(),
            field: None,
        }
    }

    /// A store or engine error, through the API's mapping (codes, statuses,
    /// storage text hidden).
    fn from_api(e: ApiError) -> Refusal {
        Refusal {
            code: e.body.code,
            status: e.status,
            heading: None,
            message: e.body.message,
            field: e.body.field,
        }
    }
}

/// The texts of the pages, per language (`it`, else English).
struct Texts {
    lang: &'static str,
    record: &'static str,
    code: &'static str,
    done: &'static str,
    expires: &'static str,
    confirm: &'static str,
    invalid: (&'static str, &'static str),
    expired: (&'static str, &'static str),
    used: (&'static str, &'static str),
    stale: (&'static str, &'static str),
    actor: (&'static str, &'static str),
    refused: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    record: "Record",
    code: "Code",
    done: "Done. You can close this page.",
    expires: "This link expires on",
    confirm: "Confirm",
    invalid: ("This link is not valid", "The link was altered or cut, or it was not made by this server. Nothing was done."),
    expired: ("This link has expired", "The link expired on {}. Nothing was done."),
    used: ("This link was already used", "The action of this link was already done. Nothing was done again."),
    stale: ("This link is out of date", "The record changed after the message was sent (someone acted on it, or it moved on). Nothing was done."),
    actor: ("You may not act on this record", "The record is no longer yours, or your account is no longer active. Nothing was done."),
    refused: "Not done",
};

const IT: Texts = Texts {
    lang: "it",
    record: "Lead n.",
    code: "Codice",
    done: "Fatto. Puoi chiudere questa pagina.",
    expires: "Il link scade il",
    confirm: "Conferma",
    invalid: ("Questo link non è valido", "Il link è stato alterato o troncato, oppure non proviene da questo server. Non è stato fatto nulla."),
    expired: ("Questo link è scaduto", "Il link è scaduto il {}. Non è stato fatto nulla."),
    used: ("Questo link è già stato usato", "L'azione di questo link è già stata eseguita. Non è stato fatto nulla."),
    stale: ("Questo link non è più attuale", "La lead è cambiata dopo l'invio del messaggio (qualcuno ha agito, oppure è passata oltre). Non è stato fatto nulla."),
    actor: ("Non puoi agire su questa lead", "La lead non è più tua, oppure il tuo account non è più attivo. Non è stato fatto nulla."),
    refused: "Non eseguito",
};

fn texts(lang: Option<&str>) -> &'static Texts {
    match lang.map(|l| l.split('-').next().unwrap_or(l)) {
        Some(l) if l.eq_ignore_ascii_case("it") => &IT,
        _ => &EN,
    }
}

fn env() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = minijinja::Environment::new();
        // `.html`: auto-escaped.
        if let Err(err) = e.add_template("link.html", PAGE) {
            tracing::error!("the link page template does not compile: {err}");
        }
        e
    })
}

/// The page answered for `ctx`, with headers that keep it out of caches,
/// frames and referrers (the URL is the credential).
fn page(status: StatusCode, ctx: serde_json::Value) -> Response {
    let html = env()
        .get_template("link.html")
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
        .unwrap_or_else(|e| {
            tracing::error!("the link page does not render: {e}");
            "<!doctype html><title>leadflow</title><p>leadflow</p>".to_string()
        });
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(super::error::RETRY_AFTER_SECS),
        );
    }
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    resp
}

fn refusal_page(t: &Texts, record: Option<i64>, r: Refusal) -> Response {
    let (heading, _) = match r.code.as_str() {
        "E_LINK_INVALID" => t.invalid,
        "E_LINK_EXPIRED" => t.expired,
        "E_LINK_USED" => t.used,
        "E_LINK_STALE" => t.stale,
        "E_LINK_ACTOR" => t.actor,
        _ => (t.refused, ""),
    };
    let heading = r.heading.clone().unwrap_or_else(|| heading.to_string());
    page(
        r.status,
        serde_json::json!({
            "kind": "error",
            "lang": t.lang,
            "t": labels(t),
            "heading": heading,
            "record": record,
            "error": {"code": r.code, "message": r.message, "field": r.field},
        }),
    )
}

fn labels(t: &Texts) -> serde_json::Value {
    serde_json::json!({
        "record": t.record, "code": t.code, "done": t.done, "expires": t.expires,
    })
}

/// A link checked against the store: everything the pages need.
struct Opened {
    tenant: Arc<Tenant>,
    link: Verified,
    actor: Actor,
    record: StoredRecord,
    wf: Arc<Workflow>,
    texts: &'static Texts,
}

fn refused(t: &Texts, which: (&str, &str), code: &str, arg: &str) -> Refusal {
    let mut r = Refusal::new(code, which.1.replace("{}", arg));
    r.heading = Some(which.0.to_string());
    let _ = t;
    r
}

/// Verify `token` and check it against the store: not used, the record at
/// the link's revision, the actor still in the directory and allowed to
/// see it, the transition known.
async fn open(s: &AppState, token: &str) -> Result<Opened, (&'static Texts, Option<i64>, Refusal)> {
    let fallback = texts(None);
    let invalid =
        |t: &'static Texts, record| (t, record, refused(t, t.invalid, "E_LINK_INVALID", ""));
    let Some(key) = s.links.get() else {
        return Err(invalid(fallback, None));
    };
    let link = match key.verify(token, Utc::now()) {
        Ok(v) => v,
        Err(LinkError::Expired(at)) => {
            // The claims are authentic: the tenant's language is known.
            let lang = claims_tenant(token)
                .and_then(|t| s.tenants.get(&t))
                .and_then(|t| t.config.notifications.language.clone());
            let t = texts(lang.as_deref());
            return Err((t, None, refused(t, t.expired, "E_LINK_EXPIRED", &when(at))));
        }
        Err(_) => return Err(invalid(fallback, None)),
    };
    let c = &link.claims;
    let Some(tenant) = s.tenants.get(&c.tenant).cloned() else {
        return Err(invalid(fallback, None));
    };
    let actor = tenant.actor(&c.actor);
    let lang = actor
        .as_ref()
        .and_then(|a| a.language.clone())
        .or_else(|| tenant.config.notifications.language.clone());
    let t = texts(lang.as_deref());
    let rec_id = Some(c.record);
    let api = |e: Error| (t, rec_id, Refusal::from_api(ApiError::from(e)));
    if tenant.backend.link_used(&link.id).await.map_err(api)? {
        return Err((t, rec_id, refused(t, t.used, "E_LINK_USED", "")));
    }
    let Some(actor) = actor else {
        return Err((t, rec_id, refused(t, t.actor, "E_LINK_ACTOR", "")));
    };
    let record = match tenant.backend.get(c.record).await.map_err(api)? {
        Some(r) if r.revision == c.revision => r,
        _ => return Err((t, rec_id, refused(t, t.stale, "E_LINK_STALE", ""))),
    };
    if !tenant.visible(&caller(&tenant, &link, &actor), &record) {
        return Err((t, rec_id, refused(t, t.actor, "E_LINK_ACTOR", "")));
    }
    let Some(wf) = version_of(&tenant, &record).filter(|w| w.transition(&c.transition).is_some())
    else {
        return Err(invalid(t, rec_id));
    };
    Ok(Opened {
        tenant,
        link,
        actor,
        record,
        wf,
        texts: t,
    })
}

/// The tenant named by a token's claims, read without verifying (only to
/// choose the language of an expiry page whose signature was verified).
fn claims_tenant(token: &str) -> Option<String> {
    use base64::Engine;
    let body = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    v.get(1)?.as_str().map(str::to_string)
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn caller(tenant: &Tenant, link: &Verified, actor: &Actor) -> Caller {
    Caller {
        tenant: tenant.id.clone(),
        key: format!("link:{}", link.id),
        admin: false,
        actor: actor.clone(),
        directory: tenant.directory(),
    }
}

/// The confirmation page: the transition, its inputs (with the values
/// sent, when the form comes back with an error).
fn confirm_page(
    o: &Opened,
    token: &str,
    values: &BTreeMap<String, String>,
    error: Option<Refusal>,
) -> Response {
    let t = o.texts;
    let c = &o.link.claims;
    let Some(tr) = o.wf.transition(&c.transition).map(|i| &o.wf.transitions[i]) else {
        return refusal_page(
            t,
            Some(c.record),
            refused(t, t.invalid, "E_LINK_INVALID", ""),
        );
    };
    let inputs: Vec<serde_json::Value> = tr
        .input
        .iter()
        .filter_map(|&f| o.wf.fields.get(f))
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "title": f.title,
                "type": f.ty.name(),
                "required": tr.require.iter().any(|&x| o.wf.fields.get(x).is_some_and(|r| r.name == f.name)),
                "values": f.values,
                "value": values.get(&f.name).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let state_title =
        o.wf.state(&o.record.state)
            .and_then(|i| o.wf.states.get(i))
            .map(|s| s.title.clone());
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let error =
        error.map(|e| serde_json::json!({"code": e.code, "message": e.message, "field": e.field}));
    page(
        status,
        serde_json::json!({
            "kind": "confirm",
            "lang": t.lang,
            "t": labels(t),
            "heading": tr.title,
            "button": t.confirm,
            "record": c.record,
            "state_title": state_title,
            "inputs": inputs,
            "action": format!("{}{token}", crate::links::PATH),
            "expires": when(c.expires),
            "error": error,
        }),
    )
}

/// Open an action link.
///
/// The page behind a one-click link of a message (`{{ action_url(..) }}`,
/// docs/notifications.md#action-links): the transition and a form with its
/// declared inputs. No key: the signed token is the credential. Changes
/// nothing. Every answer is an HTML page; a refusal carries its code.
#[utoipa::path(get, path = "/links/{token}", tag = "links", operation_id = "links_show", security(()),
    params(("token" = String, Path, description = "the link's signed token, as the message printed it")),
    responses(
        (status = 200, body = String, content_type = "text/html", description = "the confirmation page with the transition's form"),
        (status = 400, body = String, content_type = "text/html", description = "E_LINK_INVALID: altered, cut, signed with another key, or naming an unknown tenant or transition"),
        (status = 403, body = String, content_type = "text/html", description = "E_LINK_ACTOR: the actor left the directory or may no longer see the record"),
        (status = 409, body = String, content_type = "text/html", description = "E_LINK_STALE: the record moved on since the message"),
        (status = 410, body = String, content_type = "text/html", description = "E_LINK_EXPIRED; E_LINK_USED: the link was already used"),
        (status = 503, body = String, content_type = "text/html", description = "E_UNAVAILABLE: the database is down; retry after `Retry-After` seconds")))]
pub async fn show(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    match open(&s, &token).await {
        Ok(o) => confirm_page(&o, &token, &BTreeMap::new(), None),
        Err((t, record, r)) => refusal_page(t, record, r),
    }
}

/// Act through an action link.
///
/// The form of the confirmation page: fires the link's transition as its
/// actor, at the revision the message was written at, with the form's
/// fields as input (typed as the workflow declares them), and marks the
/// link used. A missing or wrong input shows the form again (422).
#[utoipa::path(post, path = "/links/{token}", tag = "links", operation_id = "links_submit", security(()),
    params(("token" = String, Path, description = "the link's signed token, as the message printed it")),
    request_body(content = BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded",
        description = "the transition's inputs, as the form sends them"),
    responses(
        (status = 200, body = String, content_type = "text/html", description = "done: the transition fired"),
        (status = 400, body = String, content_type = "text/html", description = "E_LINK_INVALID: altered, cut, signed with another key, or naming an unknown tenant or transition"),
        (status = 403, body = String, content_type = "text/html", description = "E_LINK_ACTOR; E_FORBIDDEN: the actor may not fire it"),
        (status = 409, body = String, content_type = "text/html", description = "E_LINK_STALE: the record moved on since the message"),
        (status = 410, body = String, content_type = "text/html", description = "E_LINK_EXPIRED; E_LINK_USED: the link was already used"),
        (status = 422, body = String, content_type = "text/html", description = "E_REQUIRED, E_TYPE, E_INPUT: the form again, with the error; E_GUARD and other refusals of the engine"),
        (status = 503, body = String, content_type = "text/html", description = "E_UNAVAILABLE: the database is down; retry after `Retry-After` seconds")))]
pub async fn submit(
    State(s): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let o = match open(&s, &token).await {
        Ok(o) => o,
        Err((t, record, r)) => return refusal_page(t, record, r),
    };
    let t = o.texts;
    let c = &o.link.claims;
    let values: BTreeMap<String, String> = form_urlencoded::parse(&body)
        .into_owned()
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let input = match typed_input(&o.wf, &c.transition, &values) {
        Ok(i) => i,
        Err(r) => return confirm_page(&o, &token, &values, Some(r)),
    };
    let (tenant, caller) = (o.tenant.clone(), caller(&o.tenant, &o.link, &o.actor));
    let visible = Visible(Arc::new(move |r: &StoredRecord| tenant.visible(&caller, r)));
    let fired = o
        .tenant
        .backend
        .fire(FireRequest {
            record: c.record,
            transition: &c.transition,
            input,
            actor: &o.actor,
            now: super::schema::now(),
            expected_revision: Some(c.revision),
            idempotency_key: None,
            visible: Some(visible),
            bulk: false,
        })
        .await;
    match fired {
        Ok(r) => {
            metrics::counter!("leadflow_transitions_total", "tenant" => o.tenant.id.clone(), "workflow" => r.workflow.clone(), "transition" => c.transition.clone()).increment(1);
            metrics::counter!("leadflow_action_links_used_total", "tenant" => o.tenant.id.clone())
                .increment(1);
            // The fire moved the revision on, so the link is already refused
            // as stale; the used mark makes a replay say what happened.
            if let Err(e) = o
                .tenant
                .backend
                .use_link(&o.link.id, c.record, Utc::now())
                .await
            {
                tracing::warn!(link = %o.link.id, "action link not marked used: {e}");
            }
            let state_title =
                o.wf.state(&r.state)
                    .and_then(|i| o.wf.states.get(i))
                    .map(|s| s.title.clone());
            page(
                StatusCode::OK,
                serde_json::json!({
                    "kind": "done",
                    "lang": t.lang,
                    "t": labels(t),
                    "heading": o.wf.transition(&c.transition).map(|i| o.wf.transitions[i].title.clone()),
                    "record": c.record,
                    "state_title": state_title,
                }),
            )
        }
        Err(Error::Conflict { .. }) | Err(Error::NotFound(_)) => {
            refusal_page(t, Some(c.record), refused(t, t.stale, "E_LINK_STALE", ""))
        }
        Err(Error::Refused(r)) if is_input(r.code.as_str()) => {
            let e = Refusal::from_api(ApiError::from(Error::Refused(r)));
            confirm_page(&o, &token, &values, Some(e))
        }
        Err(e) => refusal_page(t, Some(c.record), Refusal::from_api(ApiError::from(e))),
    }
}

/// Refusals the form can fix: show it again with the error.
fn is_input(code: &str) -> bool {
    matches!(code, "E_REQUIRED" | "E_INPUT" | "E_TYPE")
}

/// The form's text values typed as the transition's inputs are declared;
/// an empty value is no value (a required one is then refused by the
/// engine with `E_REQUIRED`); a name the transition does not take is
/// refused here.
fn typed_input(
    wf: &Workflow,
    transition: &str,
    values: &BTreeMap<String, String>,
) -> Result<Vec<(String, Value)>, Refusal> {
    let Some(tr) = wf.transition(transition).map(|i| &wf.transitions[i]) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, v) in values {
        let Some(f) = tr
            .input
            .iter()
            .filter_map(|&i| wf.fields.get(i))
            .find(|f| &f.name == k)
        else {
            let mut r = Refusal::new("E_INPUT", format!("`{k}` is not an input of this action"));
            r.field = Some(k.clone());
            return Err(r);
        };
        let v = v.trim();
        if v.is_empty() || v.contains('\0') {
            continue;
        }
        let value = match f.ty.name() {
            "int" => v
                .parse::<i64>()
                .map(Value::Int)
                .unwrap_or_else(|_| Value::Str(v.to_string())),
            "decimal" => v
                .replace(',', ".")
                .parse::<rust_decimal::Decimal>()
                .map(Value::Decimal)
                .unwrap_or_else(|_| Value::Str(v.to_string())),
            "bool" => match v {
                "true" | "on" | "1" => Value::Bool(true),
                "false" | "off" | "0" => Value::Bool(false),
                _ => Value::Str(v.to_string()),
            },
            "list" => Value::List(
                v.split([',', '\n'])
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(|x| Value::Str(x.to_string()))
                    .collect(),
            ),
            _ => Value::Str(v.to_string()),
        };
        out.push((k.clone(), value));
    }
    Ok(out)
}
