//! A parsed scenario. Every step keeps the line it starts on, so failures
//! point at the file.

use chrono::{DateTime, Utc};
use leadflow_engine::duration::Span as Dur;
use leadflow_engine::Actor;
use std::collections::BTreeMap;

/// A scenario, parsed but not yet checked against workflows.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Path as given (for reports).
    pub path: String,
    pub name: String,
    /// Default workflow of `create` steps.
    pub workflow: Option<Located<String>>,
    pub start: DateTime<Utc>,
    /// `project = "dir"`: project root relative to the scenario file.
    pub project: Option<String>,
    /// In file order; the first is the default actor of `create`/`fire`.
    pub actors: Vec<Actor>,
    pub steps: Vec<Step>,
    /// The project's message templates, for `outbox` tables that check
    /// rendered messages (set by the runner of the file; none: such checks
    /// fail with the reason).
    pub templates: Option<std::sync::Arc<crate::templates::TemplateSet>>,
    /// The source text, for positions of errors found after parsing.
    pub(crate) source: leadflow_engine::SourceFile,
}

/// A value with the byte span it was written at.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub span: std::ops::Range<usize>,
}

impl<T> Located<T> {
    pub fn new(value: T, span: std::ops::Range<usize>) -> Self {
        Located { value, span }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Step {
    /// 1-based line of the step's `[[step]]` header.
    pub line: usize,
    pub advance: Option<Advance>,
    pub alias: Option<Alias>,
    pub create: Option<Create>,
    pub fire: Option<Fire>,
    /// `pull = { queue, by }`: the next record of a work queue.
    pub pull: Option<Pull>,
    /// `release = { queue, by }`: give back what the puller holds.
    pub release: Option<Pull>,
    /// The record the step's `pull` must give (or its `release` give back;
    /// `""` for none).
    pub expect_record: Option<Option<RecordRef>>,
    pub expect: Vec<Expect>,
    pub expect_error: Option<String>,
}

/// A `pull` or `release` step: who, from which queue.
#[derive(Debug, Clone)]
pub struct Pull {
    pub workflow: Located<String>,
    pub queue: String,
    pub by: String,
    /// `again = true`: the puller must already hold the record (a repeated
    /// pull); `false`: it must be newly held.
    pub again: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
pub enum Advance {
    By(Dur),
    To(DateTime<Utc>),
}

/// A record reference: `L1`, or `L1/link/link`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRef {
    pub name: String,
    pub links: Vec<String>,
}

impl RecordRef {
    pub fn parse(s: &str) -> RecordRef {
        let mut parts = s.split('/').map(|p| p.trim().to_string());
        let name = parts.next().unwrap_or_default();
        RecordRef {
            name,
            links: parts.collect(),
        }
    }
}

impl std::fmt::Display for RecordRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        for l in &self.links {
            write!(f, "/{l}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Alias {
    pub name: String,
    pub record: RecordRef,
}

#[derive(Debug, Clone)]
pub struct Create {
    pub name: Option<String>,
    pub workflow: Located<String>,
    pub fields: Vec<(String, toml::Value)>,
    /// Actor id; None: the default actor.
    pub by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Fire {
    pub record: RecordRef,
    pub transition: String,
    pub by: Option<String>,
    pub input: Vec<(String, toml::Value)>,
}

/// One `expect` table. Every key is optional; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub record: Option<RecordRef>,
    pub state: Option<String>,
    pub fields: Vec<(String, toml::Value)>,
    pub empty: Vec<String>,
    pub assignee: Option<String>,
    pub outbox: Vec<String>,
    /// `outbox = [{ template = "...", subject_contains = "..." }]`: the
    /// rendered messages of the last notification of a template.
    pub messages: Vec<MessageExpect>,
    pub no_outbox: Vec<String>,
    pub outbox_count: BTreeMap<String, usize>,
    pub outbox_to: BTreeMap<String, Vec<String>>,
    /// `{ template = [recipients] }`: no notification of the template
    /// reached any of them.
    pub outbox_not_to: BTreeMap<String, Vec<String>>,
    /// Actors who see the record (its assignee, or through the workflow's
    /// `visible_to`/`reveal_to`: `crate::org`), and actors who do not.
    pub seen_by: Vec<String>,
    pub hidden_from: Vec<String>,
    /// Actors who see every `pii` field revealed in the current state, and
    /// actors who see none.
    pub pii_seen_by: Vec<String>,
    pub pii_hidden_from: Vec<String>,
    pub timers: BTreeMap<String, TimerExpect>,
    pub no_timers: Vec<String>,
    pub history: Vec<HistoryExpect>,
    pub events: Vec<EventExpect>,
    pub links: BTreeMap<String, LinkExpect>,
    pub revision: Option<i64>,
    /// View name -> exactly the records it lists (of the expected record's workflow).
    pub views: BTreeMap<String, Vec<RecordRef>>,
    /// KPI name -> what it must compute.
    pub kpis: BTreeMap<String, KpiExpect>,
    /// Report name -> its rows for a period (or the whole history).
    pub reports: BTreeMap<String, ReportExpect>,
    /// Scheduled report name -> the runs made so far on the virtual clock.
    pub report_runs: BTreeMap<String, RunsExpect>,
}

/// The runs of a scheduled report so far (`report_runs.<report>`), as
/// `GET /v1/reports/runs` lists them, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunsExpect {
    /// How many runs were made.
    pub count: Option<usize>,
    /// The period each run covered (`""` for the whole history).
    pub periods: Option<Vec<String>>,
    /// The messages each run queued (`notify`: one per assignee line).
    pub messages: Option<Vec<i32>>,
}

/// A KPI as the daemon serves it (`GET /v1/kpis`): its total over the
/// range (hits, population) and, grouped, its rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KpiExpect {
    pub period: Option<String>,
    pub group_by: Option<String>,
    pub total: Option<(usize, usize)>,
    /// (group values, hits, population), in group order.
    pub rows: Option<Vec<(Vec<String>, usize, usize)>>,
}

/// A report as the daemon serves it: rows (group values, count, amount
/// when given) for `period` (none: the whole history).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportExpect {
    pub period: Option<String>,
    pub rows: Vec<(Vec<String>, usize, Option<f64>)>,
}

/// A table of `outbox`: what the last notification of `template` says,
/// rendered for each recipient (or only for `to`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageExpect {
    pub template: String,
    /// Only the message to this recipient (an actor id, `customer`, an
    /// address); it must have been sent to it.
    pub to: Option<String>,
    /// Every recipient the notification must have reached.
    pub recipients: Vec<String>,
    pub subject_contains: Vec<String>,
    pub body_contains: Vec<String>,
    pub body_not_contains: Vec<String>,
    /// The language the message must be rendered in.
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimerExpect {
    Armed,
    NotArmed,
    At(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LinkExpect {
    Exists(bool),
    To(RecordRef),
}

/// One expected event (every key optional; `""` for `transition`, `from`
/// or `to` means none).
#[derive(Debug, Clone, Default)]
pub struct EventExpect {
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub transition: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub revision: Option<i64>,
    /// Exactly these fields changed (in any order).
    pub changes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryExpect {
    pub field: Option<String>,
    pub old: Option<toml::Value>,
    pub new: Option<toml::Value>,
    pub actor: Option<String>,
    pub transition: Option<String>,
}
