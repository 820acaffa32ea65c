//! `GET /v1/records/{id}/notifications`: the messages queued for a record,
//! one per recipient, with their delivery state (docs/notifications.md).
//! A caller sees them if it may see the record; a value of a `pii` field
//! it may not see (a customer's address as a recipient, in an error) is
//! shown as `[redacted]`.

use super::error::{ApiError, ErrorBody, Json, Path};
use super::records::{version_of, visible_record};
use super::state::{AppState, Caller};
use crate::backend::{Backend, OutboxMessage};
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued, not tried yet.
    Pending,
    /// Tried and failed; will be tried again (`last_error`).
    Retrying,
    /// The sink accepted it.
    Delivered,
    /// Given up (dead letter: a template that does not render, an address
    /// that does not parse, or every attempt failed); never retried.
    Failed,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    /// The template (the `notify`'s name).
    pub template: String,
    /// Who it is for: an actor id, `customer`, or an address.
    pub recipients: Vec<String>,
    /// The record's revision after the step that queued it.
    pub revision: i64,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The last failure, with its code (`E_TEMPLATE_RENDER: ...`,
    /// `E_SINK_ADDRESS: ...`).
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What was noticed on the way (the language the template fell back to).
    #[schema(required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(serialize_with = "super::schema::ts")]
    pub created_at: DateTime<Utc>,
    #[schema(required = false)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::schema::ts_opt"
    )]
    pub delivered_at: Option<DateTime<Utc>>,
    #[schema(required = false)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::schema::ts_opt"
    )]
    pub failed_at: Option<DateTime<Utc>>,
}

fn status(m: &OutboxMessage) -> DeliveryStatus {
    if m.delivered_at.is_some() {
        DeliveryStatus::Delivered
    } else if m.failed_at.is_some() {
        DeliveryStatus::Failed
    } else if m.attempts > 0 {
        DeliveryStatus::Retrying
    } else {
        DeliveryStatus::Pending
    }
}

/// The record's messages, oldest first: recipient, status, attempts, last
/// error. Values of `pii` fields the caller may not see are `[redacted]`.
#[utoipa::path(get, path = "/v1/records/{id}/notifications", tag = "records", operation_id = "records_notifications",
    params(("id" = i64, Path, description = "the record id")),
    responses((status = 200, body = [NotificationView]), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let t = s.tenant(&caller);
    let r = visible_record(t, &caller, id).await?;
    let wf = version_of(t, &r);
    // The values the caller may not see, to blank wherever they appear.
    let mut shown = r.fields.clone();
    let viewer = caller.viewer(wf.as_deref(), &r);
    let hidden_names = crate::privacy::redact(
        wf.as_deref(),
        &r.state,
        r.assignee.as_deref(),
        viewer,
        &mut shown,
    );
    let hidden: Vec<String> = hidden_names
        .iter()
        .filter_map(|n| r.fields.get(n))
        .filter_map(|v| v.as_str())
        .filter(|s| s.trim().len() >= 3)
        .map(str::to_string)
        .collect();
    let blank = |s: String| {
        hidden
            .iter()
            .fold(s, |acc, h| acc.replace(h.as_str(), "[redacted]"))
    };
    let rows = t.backend.outbox(id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|m| NotificationView {
                status: status(&m),
                id: m.id,
                template: m.template,
                recipients: m.recipients.into_iter().map(blank).collect(),
                revision: m.revision,
                attempts: m.attempts,
                last_error: m.last_error.map(blank),
                note: m.note.map(blank),
                created_at: m.created_at,
                delivered_at: m.delivered_at,
                failed_at: m.failed_at,
            })
            .collect(),
    ))
}
