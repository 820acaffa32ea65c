//! The record, the actors and what a step is evaluated against.

use crate::model::*;
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A record as the engine sees it: its state and typed fields (indexed by the
/// workflow's field ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub state: StateId,
    pub fields: Vec<Value>,
    pub assignee: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the record entered its current state.
    pub entered_at: DateTime<Utc>,
}

impl Record {
    pub fn get<'a>(&'a self, wf: &Workflow, field: &str) -> Option<&'a Value> {
        wf.field(field).map(|i| &self.fields[i])
    }

    /// Fields by name, as JSON (what the store persists).
    pub fn fields_json(&self, wf: &Workflow) -> serde_json::Map<String, serde_json::Value> {
        wf.fields
            .iter()
            .zip(&self.fields)
            .filter(|(_, v)| !matches!(v, Value::Null))
            .map(|(f, v)| (f.name.clone(), v.to_json()))
            .collect()
    }

    /// Rebuild a record from persisted parts. Unknown fields are ignored and
    /// values that no longer fit their type are dropped (a workflow edit must
    /// never make a stored record unreadable).
    pub fn from_json(
        wf: &Workflow,
        state: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
        assignee: Option<String>,
        created_at: DateTime<Utc>,
        entered_at: DateTime<Utc>,
    ) -> Option<Record> {
        let state = wf.state(state)?;
        let mut values = vec![Value::Null; wf.fields.len()];
        for (i, f) in wf.fields.iter().enumerate() {
            if let Some(j) = fields.get(&f.name) {
                values[i] = f.ty.coerce(Value::from_json(j)).unwrap_or(Value::Null);
            }
        }
        Some(Record {
            state,
            fields: values,
            assignee,
            created_at,
            entered_at,
        })
    }
}

/// A period during which an actor receives nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Someone who fires transitions or receives assignments: a partner, dealer,
/// operator, agent, or the system itself (timers).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub role: String,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Open records currently assigned (computed by the caller).
    #[serde(default)]
    pub load: u32,
    #[serde(default)]
    pub unavailable: Vec<Period>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// Where messages to the actor go (`notify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The language of messages to the actor (`it`, `en`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The team the actor works in (`crate::org`): the actors whose
    /// `manages` lists it are its managers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The actor's own manager, by id (besides its team's managers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports_to: Option<String>,
    /// The teams the actor manages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manages: Vec<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            id: "system".into(),
            role: "system".into(),
            ..Actor::default()
        }
    }

    /// The system actor, shared: timers fire as it without building one.
    pub fn system_shared() -> &'static Actor {
        static SYSTEM: LazyLock<Actor> = LazyLock::new(Actor::system);
        &SYSTEM
    }

    pub fn available_at(&self, now: DateTime<Utc>) -> bool {
        !self
            .unavailable
            .iter()
            .any(|p| p.from <= now && now < p.until)
            && self.capacity.is_none_or(|c| self.load < c)
    }
}

/// What a transition is evaluated against besides the record.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub actor: &'a Actor,
    /// Candidates for `assign` effects.
    pub directory: &'a [Actor],
}
