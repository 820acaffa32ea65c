//! Actors (the directory and unavailability) and workflow versions with
//! their check status.

use super::auth::require_admin;
use super::error::{ApiError, Json, Path};
use super::state::{AppState, Caller};
use crate::backend::Backend;
use axum::extract::State;
use chrono::{DateTime, Utc};
use leadflow_engine::{Actor, Period};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    pub id: String,
    pub role: String,
    pub zones: Vec<String>,
    pub skills: Vec<String>,
    pub capacity: Option<u32>,
    /// Open records assigned to the actor now.
    pub load: u32,
    pub unavailable: Vec<PeriodView>,
    /// The team the actor works in (its managers: the actors managing it).
    pub team: Option<String>,
    /// The actor's own manager.
    pub reports_to: Option<String>,
    /// The teams the actor manages.
    pub manages: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodView {
    #[serde(serialize_with = "super::schema::ts")]
    pub from: DateTime<Utc>,
    /// After `from`.
    #[serde(serialize_with = "super::schema::ts")]
    pub until: DateTime<Utc>,
}

fn actor_view(a: &Actor) -> ActorView {
    ActorView {
        id: a.id.clone(),
        role: a.role.clone(),
        zones: a.zones.clone(),
        skills: a.skills.clone(),
        capacity: a.capacity,
        load: a.load,
        unavailable: a
            .unavailable
            .iter()
            .map(|p| PeriodView {
                from: p.from,
                until: p.until,
            })
            .collect(),
        team: a.team.clone(),
        reports_to: a.reports_to.clone(),
        manages: a.manages.clone(),
    }
}

/// Admins see every actor, an actor-bound key only itself.
fn may_see(c: &Caller, id: &str) -> bool {
    c.admin || c.actor.id == id
}

/// The tenant's directory as stored now (with live loads: other daemons on
/// the same database may have changed it), refreshing the copy this daemon
/// keeps for auth.
async fn stored_directory(t: &super::state::Tenant) -> Result<Arc<Vec<Actor>>, ApiError> {
    let dir = Arc::new(t.backend.actors().await?);
    *t.actors.write().unwrap_or_else(|e| e.into_inner()) = dir.clone();
    Ok(dir)
}

/// The tenant's actor directory.
#[utoipa::path(get, path = "/v1/actors", tag = "actors", operation_id = "actors_list",
    responses((status = 200, body = [ActorView])), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ActorView>>, ApiError> {
    let t = s.tenant(&caller);
    Ok(Json(
        stored_directory(t)
            .await?
            .iter()
            .filter(|a| may_see(&caller, &a.id))
            .map(actor_view)
            .collect(),
    ))
}

/// One actor.
#[utoipa::path(get, path = "/v1/actors/{id}", tag = "actors", operation_id = "actors_get", params(("id" = String, Path, description = "the actor id")),
    responses((status = 200, body = ActorView), (status = 404, body = super::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ActorView>, ApiError> {
    if !may_see(&caller, &id) {
        return Err(actor_not_found());
    }
    let t = s.tenant(&caller);
    match stored_directory(t).await?.iter().find(|a| a.id == id) {
        Some(a) => Ok(Json(actor_view(a))),
        None => Err(actor_not_found()),
    }
}

fn actor_not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "E_NOT_FOUND",
        "no such actor",
    )
}

/// An actor's unavailability periods.
#[utoipa::path(get, path = "/v1/actors/{id}/unavailability", tag = "actors", operation_id = "actors_unavailability_get", params(("id" = String, Path, description = "the actor id")),
    responses((status = 200, body = [PeriodView]), (status = 404, body = super::error::ErrorBody)), security(("bearer" = [])))]
pub async fn get_unavailability(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<PeriodView>>, ApiError> {
    get(State(s), caller, Path(id))
        .await
        .map(|Json(a)| Json(a.unavailable))
}

/// Replace an actor's unavailability periods (admin, or the actor itself).
/// Assignments skip an actor while it is unavailable. Only this actor's
/// periods change in the store: actors and periods that other daemons on
/// the same database wrote are kept.
#[utoipa::path(put, path = "/v1/actors/{id}/unavailability", tag = "actors", operation_id = "actors_unavailability_put", params(("id" = String, Path, description = "the actor id")),
    request_body = [PeriodView],
    responses((status = 200, body = [PeriodView]), (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_unavailability(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(periods): Json<Vec<PeriodView>>,
) -> Result<Json<Vec<PeriodView>>, ApiError> {
    if !may_see(&caller, &id) {
        return Err(actor_not_found());
    }
    if let Some(p) = periods.iter().find(|p| p.until <= p.from) {
        return Err(ApiError::bad_request(format!(
            "period from {} until {}: `until` must be after `from`",
            p.from, p.until
        )));
    }
    let t = s.tenant(&caller);
    let stored: Vec<Period> = periods
        .iter()
        .map(|p| Period {
            from: p.from,
            until: p.until,
        })
        .collect();
    if !t.backend.set_unavailable(&id, &stored).await? {
        return Err(actor_not_found());
    }
    stored_directory(t).await?;
    Ok(Json(periods))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub hash: String,
    pub current: bool,
    pub file: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    pub id: String,
    pub title: String,
    /// Hash of the version new records get.
    pub current: String,
    /// Every version the store runs: the current one and the older ones
    /// (rebuilt from their project snapshots at start; records keep theirs).
    pub versions: Vec<VersionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiagnosticView {
    pub code: String,
    pub severity: String,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub hint: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowsStatus {
    /// False when the files on disk have errors: the last good versions
    /// keep serving and `diagnostics` says why.
    pub ok: bool,
    #[serde(serialize_with = "super::schema::ts_opt")]
    pub checked_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub diagnostics: Vec<DiagnosticView>,
    pub workflows: Vec<WorkflowView>,
}

/// Workflow versions and the status of the last check of the files.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows", operation_id = "workflows_list",
    responses((status = 200, body = WorkflowsStatus), (status = 403, body = super::error::ErrorBody)), security(("bearer" = [])))]
pub async fn workflows(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<WorkflowsStatus>, ApiError> {
    require_admin(&caller)?;
    let t = s.tenant(&caller);
    let st = t.status();
    let v = t.backend.versions();
    let all = v.all();
    let mut workflows: Vec<WorkflowView> = v
        .all_current()
        .into_iter()
        .map(|cur| {
            let mut versions: Vec<VersionView> = all
                .iter()
                .filter(|w| w.id == cur.id)
                .map(|w| VersionView {
                    hash: w.hash.clone(),
                    current: w.hash == cur.hash,
                    file: w.file.clone(),
                })
                .collect();
            versions.sort_by(|a, b| b.current.cmp(&a.current).then(a.hash.cmp(&b.hash)));
            WorkflowView {
                id: cur.id.clone(),
                title: cur.title.clone(),
                current: cur.hash.clone(),
                versions,
            }
        })
        .collect();
    workflows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(WorkflowsStatus {
        ok: st.ok,
        checked_at: st.checked_at,
        error: st.error,
        diagnostics: st
            .diagnostics
            .iter()
            .map(|d| DiagnosticView {
                code: d.code.to_string(),
                severity: format!("{:?}", d.severity).to_lowercase(),
                message: d.message.clone(),
                file: d.file.clone(),
                line: d.line,
                column: d.column,
                hint: d.hint.clone(),
            })
            .collect(),
        workflows,
    }))
}
