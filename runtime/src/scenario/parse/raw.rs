//! What a scenario file says, as serde reads it (with spans); [`super`]
//! checks the names and builds the model.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Option<String>,
    pub(super) workflow: Option<Spanned<String>>,
    pub(super) start: Spanned<toml::Value>,
    pub(super) project: Option<String>,
    #[serde(default)]
    pub(super) actors: BTreeMap<Spanned<String>, Spanned<RawActor>>,
    #[serde(default)]
    pub(super) step: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawActor {
    pub(super) role: String,
    #[serde(default)]
    pub(super) zones: Vec<String>,
    #[serde(default)]
    pub(super) skills: Vec<String>,
    pub(super) capacity: Option<u32>,
    #[serde(default)]
    pub(super) unavailable: Vec<RawPeriod>,
    #[serde(default)]
    pub(super) attributes: toml::Table,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) language: Option<String>,
    /// The organisation (`leadflow_engine::org`).
    #[serde(default)]
    pub(super) team: Option<String>,
    #[serde(default)]
    pub(super) reports_to: Option<String>,
    #[serde(default)]
    pub(super) manages: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeriod {
    pub(super) from: Spanned<toml::Value>,
    pub(super) until: Spanned<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) advance: Option<Spanned<String>>,
    pub(super) advance_to: Option<Spanned<toml::Value>>,
    pub(super) alias: Option<Spanned<RawAlias>>,
    pub(super) create: Option<Spanned<RawCreate>>,
    pub(super) fire: Option<Spanned<RawFire>>,
    pub(super) pull: Option<Spanned<RawPull>>,
    pub(super) release: Option<Spanned<RawPull>>,
    pub(super) expect_record: Option<Spanned<String>>,
    pub(super) expect: Option<Spanned<toml::Value>>,
    pub(super) expect_error: Option<String>,
    /// Free text for the reader; ignored.
    #[allow(dead_code)]
    pub(super) note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlias {
    #[serde(rename = "as")]
    pub(super) name: Spanned<String>,
    pub(super) record: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCreate {
    #[serde(rename = "as")]
    pub(super) name: Option<Spanned<String>>,
    pub(super) workflow: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) fields: toml::Table,
    pub(super) by: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFire {
    pub(super) record: Spanned<String>,
    pub(super) transition: String,
    pub(super) by: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) input: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPull {
    pub(super) queue: String,
    pub(super) by: Spanned<String>,
    pub(super) workflow: Option<Spanned<String>>,
    pub(super) again: Option<bool>,
}

/// An `outbox` entry: a template name, or a table checking its messages.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawOutbox {
    Name(String),
    Message(RawMessage),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessage {
    pub(super) template: String,
    pub(super) to: Option<String>,
    #[serde(default)]
    pub(super) recipients: Vec<String>,
    #[serde(default)]
    pub(super) subject_contains: OneOrMany,
    #[serde(default)]
    pub(super) body_contains: OneOrMany,
    #[serde(default)]
    pub(super) body_not_contains: OneOrMany,
    pub(super) language: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn list(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) record: Option<String>,
    pub(super) state: Option<String>,
    #[serde(default)]
    pub(super) fields: toml::Table,
    #[serde(default)]
    pub(super) empty: Vec<String>,
    pub(super) assignee: Option<String>,
    #[serde(default)]
    pub(super) outbox: Vec<RawOutbox>,
    #[serde(default)]
    pub(super) no_outbox: Vec<String>,
    #[serde(default)]
    pub(super) outbox_count: BTreeMap<String, usize>,
    #[serde(default)]
    pub(super) outbox_to: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) outbox_not_to: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) seen_by: Vec<String>,
    #[serde(default)]
    pub(super) hidden_from: Vec<String>,
    #[serde(default)]
    pub(super) pii_seen_by: Vec<String>,
    #[serde(default)]
    pub(super) pii_hidden_from: Vec<String>,
    #[serde(default)]
    pub(super) timers: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub(super) no_timers: Vec<String>,
    #[serde(default)]
    pub(super) history: Vec<RawHistory>,
    #[serde(default)]
    pub(super) events: Vec<RawEvent>,
    #[serde(default)]
    pub(super) links: BTreeMap<String, toml::Value>,
    pub(super) revision: Option<i64>,
    #[serde(default)]
    pub(super) views: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) kpis: BTreeMap<String, RawKpiExpect>,
    #[serde(default)]
    pub(super) reports: BTreeMap<String, RawReportExpect>,
    #[serde(default)]
    pub(super) report_runs: BTreeMap<String, RawRunsExpect>,
}

/// `report_runs.billing = { count = 2, periods = ["2025-Q1", "2025-Q2"], messages = [1, 0] }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRunsExpect {
    pub(super) count: Option<usize>,
    pub(super) periods: Option<Vec<String>>,
    pub(super) messages: Option<Vec<i32>>,
}

/// `sla1 = [hits, population]`, or a table with a period and groups.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawKpiExpect {
    Total([usize; 2]),
    Table(RawKpiTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKpiTable {
    pub(super) period: Option<String>,
    pub(super) group_by: Option<String>,
    pub(super) total: Option<[usize; 2]>,
    pub(super) rows: Option<Vec<RawKpiRow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKpiRow {
    pub(super) group: Vec<String>,
    pub(super) hits: usize,
    pub(super) population: usize,
}

/// `billing = [rows]` (the whole history) or `{ period, rows }`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawReportExpect {
    Rows(Vec<RawReportRow>),
    Table(RawReportTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReportTable {
    pub(super) period: Option<String>,
    pub(super) rows: Vec<RawReportRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReportRow {
    pub(super) group: Vec<String>,
    pub(super) count: usize,
    pub(super) amount: Option<f64>,
}

pub(super) fn report_rows(rows: Vec<RawReportRow>) -> Vec<(Vec<String>, usize, Option<f64>)> {
    rows.into_iter()
        .map(|r| (r.group, r.count, r.amount))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub(super) kind: Option<String>,
    pub(super) actor: Option<String>,
    pub(super) transition: Option<String>,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    pub(super) revision: Option<i64>,
    pub(super) changes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    pub(super) field: Option<String>,
    pub(super) old: Option<toml::Value>,
    pub(super) new: Option<toml::Value>,
    pub(super) actor: Option<String>,
    pub(super) transition: Option<String>,
}
