//! What a step gives: refusal codes, refusals, and the [`Outcome`] with
//! its changes, timers, notifications, spawns, assignments and cascades.

use super::Record;
use crate::model::*;
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request was refused. Codes are stable: clients match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Code {
    #[serde(rename = "E_UNKNOWN_TRANSITION")]
    UnknownTransition,
    #[serde(rename = "E_UNKNOWN_TIMER")]
    UnknownTimer,
    #[serde(rename = "E_NOT_ENABLED")]
    NotEnabled,
    #[serde(rename = "E_FINAL")]
    Final,
    #[serde(rename = "E_FORBIDDEN")]
    Forbidden,
    #[serde(rename = "E_INPUT")]
    Input,
    #[serde(rename = "E_TYPE")]
    Type,
    #[serde(rename = "E_REQUIRED")]
    Required,
    #[serde(rename = "E_GUARD")]
    Guard,
    #[serde(rename = "E_SCRIPT")]
    Script,
    #[serde(rename = "E_NO_CANDIDATE")]
    NoCandidate,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::UnknownTransition => "E_UNKNOWN_TRANSITION",
            Code::UnknownTimer => "E_UNKNOWN_TIMER",
            Code::NotEnabled => "E_NOT_ENABLED",
            Code::Final => "E_FINAL",
            Code::Forbidden => "E_FORBIDDEN",
            Code::Input => "E_INPUT",
            Code::Type => "E_TYPE",
            Code::Required => "E_REQUIRED",
            Code::Guard => "E_GUARD",
            Code::Script => "E_SCRIPT",
            Code::NoCandidate => "E_NO_CANDIDATE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    /// The field concerned, for E_INPUT, E_TYPE and E_REQUIRED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Refusal {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            field: None,
        }
    }
    pub(super) fn on(code: Code, field: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
    /// Whether history keeps this change (`track = true`, the default).
    pub tracked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerArm {
    pub timer: String,
    pub due: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub template: String,
    /// Recipients as the workflow names them; the runtime resolves them.
    pub to: Vec<Recipient>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpawnRequest {
    pub workflow: String,
    /// None: create now.
    pub due: Option<DateTime<Utc>>,
    pub fields: Vec<(String, Value)>,
    /// Link name on the new record pointing back to this one.
    pub link: String,
    /// Link name on this record pointing to the new one.
    pub backlink: String,
}

/// A transition to fire, as `system`, on every record linked from this one
/// under `via`, once this record's changes are written (`fire_linked`).
/// Linked records where it is not enabled, or that refuse it, stay as they
/// are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cascade {
    pub via: String,
    pub transition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub role: String,
    /// None: no available candidate.
    pub actor: Option<String>,
}

/// What a create, transition or timer should do. The caller commits it as a
/// whole or not at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The transition fired (None for a creation or a timer running effects).
    pub transition: Option<String>,
    /// The timer that fired, if a timer caused this.
    pub timer: Option<String>,
    /// None on creation.
    pub from_state: Option<String>,
    pub to_state: String,
    #[serde(skip)]
    pub record: Record,
    pub changes: Vec<FieldChange>,
    /// (old, new) if the assignee changed.
    pub assignee: Option<(Option<String>, Option<String>)>,
    pub arm: Vec<TimerArm>,
    pub cancel: Vec<String>,
    pub notifications: Vec<Notification>,
    pub spawns: Vec<SpawnRequest>,
    pub assignments: Vec<Assignment>,
    /// `fire_linked` effects that ran, in order.
    pub cascades: Vec<Cascade>,
    /// State and `entered_at` before a transition or timer (None on
    /// creation): with `changes` and `assignee`, what [`Outcome::revert`]
    /// needs to give an owned record back unchanged.
    #[serde(skip)]
    pub(super) before: Option<(StateId, DateTime<Utc>)>,
}

impl Outcome {
    /// The record as it was passed to [`fire_owned`] or [`fire_timer_owned`],
    /// for a caller that must give it back unchanged after all (a spawn it
    /// causes is refused, a write fails). Every changed field, the assignee,
    /// the state and `entered_at` get their old values back. On the outcome
    /// of a creation this is the record with every field empty.
    pub fn revert(self, wf: &Workflow) -> Record {
        let mut rec = self.record;
        for c in self.changes {
            if let Some(i) = wf.field(&c.field) {
                rec.fields[i] = c.old;
            }
        }
        if let Some((old, _)) = self.assignee {
            rec.assignee = old;
        }
        if let Some((state, entered_at)) = self.before {
            rec.state = state;
            rec.entered_at = entered_at;
        }
        rec
    }
}

/// A refusal of a call that took the record by value ([`fire_owned`],
/// [`fire_timer_owned`]), with the record given back exactly as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub refusal: Refusal,
    pub record: Record,
}

/// Loosely typed input: field name -> value.
pub type Input = [(String, Value)];

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}",
            self.from_state.as_deref().unwrap_or("(new)"),
            self.to_state
        )
    }
}
