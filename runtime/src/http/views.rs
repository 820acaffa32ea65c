//! `GET /v1/views` and `GET /v1/views/{workflow}/{view}`: the `[views]` of
//! the workflow files served as lists (issue 17 section 2). A view's states,
//! filter and sort become a store query (`store/sql/query/view.rs`
//! translates the filter), the caller's own conditions are added as on
//! `/v1/records` (same parameters), and the caller's visibility and PII
//! redaction apply exactly as there. `now` in a filter is the request's
//! instant and `actor.id` the caller's actor, so `lead.assignee ==
//! actor.id` is "mine".

use super::error::{ApiError, Json, Path, Query};
use super::list::{
    binding, only_open, page, parse, refuse_pii_names, search, sort_key, typed_filters, visibility,
    Page,
};
use super::state::{AppState, Caller, Tenant};
use crate::sql::query::view::{fields_of, translate};
use crate::sql::query::{Column, Filter, Key, Query as RQuery};
use axum::extract::State;
use leadflow_engine::Workflow;
use serde::Serialize;
use utoipa::ToSchema;

/// The query of a view: that of `GET /v1/records` but `workflow`.
pub struct ViewQuery;

impl utoipa::IntoParams for ViewQuery {
    fn into_params(
        f: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        <super::list::ListQuery as utoipa::IntoParams>::into_params(f)
            .into_iter()
            .filter(|p| p.name != "workflow")
            .collect()
    }
}

/// A view a caller may open.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewInfo {
    pub workflow: String,
    pub name: String,
    pub title: String,
    /// Columns shown: field names, or `id`, `state`, `assignee`,
    /// `created_at`, `updated_at`, `entered_at`, `age_days`.
    pub columns: Vec<String>,
    /// States included (empty: all).
    pub states: Vec<String>,
    /// Its filter as written (Rhai), if any.
    pub filter: Option<String>,
    /// Its default sort (`-` first: descending).
    pub sort: Option<String>,
    /// The path of its rows.
    pub href: String,
}

/// The views of the tenant's workflows.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewList {
    pub items: Vec<ViewInfo>,
}

/// A page of a view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewPage {
    pub view: ViewInfo,
    #[serde(flatten)]
    pub page: Page,
}

fn info(wf: &Workflow, v: &leadflow_engine::model::View) -> ViewInfo {
    ViewInfo {
        workflow: wf.id.clone(),
        name: v.name.clone(),
        title: v.title.clone(),
        columns: v.columns.clone(),
        states: v
            .states
            .iter()
            .map(|s| wf.state_name(*s).to_string())
            .collect(),
        filter: v.filter_source.clone(),
        sort: v.sort.clone(),
        href: format!("/v1/views/{}/{}", wf.id, v.name),
    }
}

/// A sort name and whether it descends.
type SortBy = (String, bool);

/// A view's own filter and sort key, as the store runs them.
fn prepared(
    t: &Tenant,
    wf: &Workflow,
    v: &leadflow_engine::model::View,
    caller: &Caller,
) -> Result<(Option<Filter>, Option<SortBy>), ApiError> {
    let filter = match &v.filter_source {
        Some(src) => Some(
            translate(wf, src, chrono::Utc::now(), &caller.actor.id).map_err(|reason| {
                ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "E_VIEW_FILTER",
                    format!(
                        "view `{}` of `{}` cannot be served: {reason} (leadflow check: W081)",
                        v.name, wf.id
                    ),
                )
            })?,
        ),
        None => None,
    };
    let sort = v.sort.as_ref().map(|s| match s.strip_prefix('-') {
        Some(n) => (n.to_string(), true),
        None => (s.clone(), false),
    });
    // The view's own filter and sort are refused to actor-bound keys on PII
    // fields, as the caller's would be: the order or the selection would
    // reveal what the records hide.
    let mut names = filter.as_ref().map(fields_of).unwrap_or_default();
    names.extend(sort.iter().map(|(n, _)| n.clone()));
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    refuse_pii_names(caller, t.backend.versions(), Some(&wf.id), &names)?;
    Ok((filter, sort))
}

/// The views the caller may open, per workflow, in file order.
#[utoipa::path(get, path = "/v1/views", tag = "views", operation_id = "views_list",
    responses((status = 200, body = ViewList, description = "the views of the tenant's current workflows the caller may open")),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, caller: Caller) -> Result<Json<ViewList>, ApiError> {
    let t = s.tenant(&caller);
    let mut wfs = t.backend.versions().all_current();
    wfs.sort_by(|a, b| a.id.cmp(&b.id));
    let items = wfs
        .iter()
        .flat_map(|wf| wf.views.iter().map(move |v| (wf, v)))
        .filter(|(wf, v)| prepared(t, wf, v, &caller).is_ok())
        .map(|(wf, v)| info(wf, v))
        .collect();
    Ok(Json(ViewList { items }))
}

/// One view's rows, with its columns.
///
/// The view's states, filter and sort, with the caller's own conditions
/// (the parameters of `GET /v1/records` but `workflow`: `state` narrows the
/// view's states, `sort` replaces its sort), keyset pages and `count`.
/// Rows show the view's field columns only, redacted as `/v1/records/{id}`.
/// `format=csv` or `format=ndjson` streams every row of the view instead,
/// with the view's columns.
#[utoipa::path(get, path = "/v1/views/{workflow}/{view}", tag = "views", operation_id = "views_get",
    params(("workflow" = String, Path, description = "workflow id", example = "cc_lead"),
           ("view" = String, Path, description = "view name", example = "lista_nord"),
           ViewQuery),
    responses((status = 200, body = ViewPage, description = "a page of the view, in its order; with `format=csv` (text/csv, the view's columns as header) or `format=ndjson` (application/x-ndjson), every row of the view, streamed, redacted as the caller sees them"),
              (status = 400, body = super::error::ErrorBody, description = "E_BAD_REQUEST: as `GET /v1/records`; `workflow` is not a parameter here"),
              (status = 403, body = super::error::ErrorBody, description = "E_FORBIDDEN: an actor-bound key, and the view or the caller filters or sorts on a `pii` field"),
              (status = 404, body = super::error::ErrorBody, description = "E_VIEW_NOT_FOUND: no such workflow or view"),
              (status = 422, body = super::error::ErrorBody, description = "E_VIEW_FILTER: the view's filter is not one the store can run (leadflow check warns: W081)")),
    security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path((workflow, name)): Path<(String, String)>,
    Query(mut q): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let t = s.tenant(&caller);
    let format = super::export::take_format(&mut q)?;
    let not_found = || {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "E_VIEW_NOT_FOUND",
            format!("no view `{name}` in workflow `{workflow}`"),
        )
    };
    let wf = t
        .backend
        .versions()
        .current(&workflow)
        .map_err(|_| not_found())?;
    let v = wf
        .views
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(not_found)?;
    if q.iter().any(|(k, _)| k == "workflow") {
        return Err(ApiError::bad_request(
            "`workflow` is not a parameter of a view (the path names it)",
        ));
    }
    let mut p = parse(q)?;
    p.workflow = Some(wf.id.clone());
    let (own, own_sort) = prepared(t, &wf, v, &caller)?;
    super::list::refuse_pii(&caller, t.backend.versions(), &p)?;
    let versions = t.backend.versions();
    let wid = Some(wf.id.as_str());
    let mut filters = typed_filters(versions, wid, p.assignee.as_deref(), &p.fields, &p.columns)?;
    filters.extend(own);
    let view_states: Vec<String> = v
        .states
        .iter()
        .map(|s| wf.state_name(*s).to_string())
        .collect();
    let states = match (view_states.is_empty(), p.states.is_empty()) {
        (_, true) => view_states,
        (true, false) => p.states.clone(),
        // The caller's states narrow the view's; none in common: no rows.
        (false, false) => {
            let both: Vec<String> = p
                .states
                .iter()
                .filter(|s| view_states.contains(s))
                .cloned()
                .collect();
            if both.is_empty() {
                filters.push(Filter::Any(Vec::new()));
            }
            both
        }
    };
    let (sort_name, desc) = match (&p.sort, own_sort) {
        (Some(s), _) => (s.clone(), p.desc),
        (None, Some(s)) => s,
        (None, None) => ("id".to_string(), false),
    };
    // `age_days` grows as `created_at` recedes.
    let (sort, desc) = match sort_name.as_str() {
        "age_days" => (Key::Column(Column::Created), !desc),
        n => (sort_key(versions, wid, n)?, desc),
    };
    let mut bound = p;
    bound.sort = Some(sort_name.clone());
    bound.desc = desc;
    let aad = binding(&t.id, &caller, &bound);
    let query = RQuery {
        tenant: t.id.clone(),
        workflow: Some(wf.id.clone()),
        open_only: only_open(versions, wid, &states),
        states,
        filters,
        search: search(&caller, bound.q.as_deref())?,
        visible_to: visibility(t, &caller, t.pools()),
        sort,
        desc,
        limit: bound.limit,
        after: None,
    };
    if let Some(format) = format {
        super::export::refuse_paging(bound.cursor.is_some(), bound.count)?;
        let cols = super::export::Columns::View(v.columns.clone());
        return Ok(super::export::stream(
            t.clone(),
            caller,
            query,
            cols,
            format,
        ));
    }
    let mut page = page(
        t,
        &caller,
        query,
        bound.cursor.as_deref(),
        &aad,
        bound.count,
    )
    .await?;
    // The view's field columns only.
    for item in &mut page.items {
        item.fields.retain(|k, _| v.columns.iter().any(|c| c == k));
        item.redacted.retain(|k| v.columns.iter().any(|c| c == k));
    }
    Ok(Json(ViewPage {
        view: info(&wf, v),
        page,
    })
    .into_response())
}
