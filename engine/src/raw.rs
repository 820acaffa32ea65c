//! The raw model: the workflow file exactly as typed, with spans.
//!
//! Stage one of loading (see `load/` for stage two). These structs only
//! check shape (unknown keys, wrong TOML types); names are linked later. They
//! also generate the JSON Schema printed by `leadflow schema`, so every doc
//! comment here is what an editor shows on hover.

use crate::value::FieldType;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A workflow file: one lifecycle of one record kind.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "leadflow workflow file")]
pub struct RawFile {
    /// Identity and defaults of the lifecycle.
    pub workflow: RawWorkflow,
    /// Fields of the record, by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawField>")]
    pub fields: BTreeMap<Spanned<String>, RawField>,
    /// States of the lifecycle, by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawState>")]
    pub states: BTreeMap<Spanned<String>, RawState>,
    /// Transitions (actions a user or the system fires), by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawTransition>")]
    pub transitions: BTreeMap<Spanned<String>, RawTransition>,
    /// SLA timers armed while the record is in some states.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawTimer>")]
    pub timers: BTreeMap<Spanned<String>, RawTimer>,
    /// List views: named filters over records of this workflow (portal tabs).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawView>")]
    pub views: BTreeMap<Spanned<String>, RawView>,
    /// Work queues: operators pull the next record to work, one at a time,
    /// and hold it for a lease (docs/workflow-format.md, "Queues").
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawQueue>")]
    pub queues: BTreeMap<Spanned<String>, RawQueue>,
    /// KPIs: ratios over records, computed by the runtime.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawKpi>")]
    pub kpis: BTreeMap<Spanned<String>, RawKpi>,
    /// Periodic reports: counts grouped by fields, or per-record charges.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawReport>")]
    pub reports: BTreeMap<Spanned<String>, RawReport>,
    /// Who `customer` is in a `notify`: the fields holding the customer's
    /// e-mail address, name and language (docs/notifications.md).
    #[serde(default)]
    pub customer: Option<RawCustomer>,
}

/// `[customer]`: the person a record is about, for messages sent to
/// `customer`. The fields named here are the customer's own data: a message
/// to the customer may show them even when they are `pii`.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCustomer {
    /// The field holding the customer's e-mail address.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub email: Option<Spanned<String>>,
    /// The field(s) holding the customer's name, joined with a space
    /// (`["first_name", "last_name"]`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub name: Vec<Spanned<String>>,
    /// The field holding the customer's language (`it`, `en`, ...): the
    /// language of the messages sent to the customer.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub language: Option<Spanned<String>>,
    /// Further `pii` fields a message to the customer may show (their own
    /// address, phone).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reveal: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflow {
    /// Unique within a tenant; spawns and scenarios refer to it.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Human title, in the portal's own language.
    #[serde(default)]
    pub title: Option<String>,
    /// Longer description for docs.
    #[serde(default)]
    pub description: Option<String>,
    /// The record kind this graph governs (lead, opportunity, ticket, ...).
    #[serde(default)]
    pub record: Option<String>,
    /// The state every new record starts in.
    #[schemars(with = "String")]
    pub initial: Spanned<String>,
    /// Business calendar name (`calendars/<name>.toml`) for `wh`/`wd` durations.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub calendar: Option<Spanned<String>>,
    /// Rhai modules under `rules/`; their functions are callable as `rules::f(...)`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub rules: Vec<Spanned<String>>,
    /// The roles of this workflow (`["sales", "manager"]`). When given,
    /// every role named in `by`, `assign` and a `notify`'s `to` must be one
    /// of them (E026); `system` and `*` need no declaration.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub roles: Option<Vec<Spanned<String>>>,
    /// The field holding a record's area (a zone, a province, a sales
    /// area): the `area.<role>` relations compare it with the actors' zones.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub area: Option<Spanned<String>>,
    /// Who sees the workflow's records besides their assignee: roles,
    /// `assignee.manager`, `area.<role>`. They see `pii` fields only if
    /// `reveal_to` names them too.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub visible_to: Vec<Spanned<String>>,
    /// Who sees `pii` fields as the assignee does (in the fields'
    /// `reveal_in` states), and the record with them: roles,
    /// `assignee.manager`, `area.<role>`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reveal_to: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    /// string | text | int | decimal | bool | date | datetime | enum | list | actor | link
    #[serde(rename = "type")]
    #[schemars(with = "FieldType")]
    pub ty: Spanned<FieldType>,
    #[serde(default)]
    pub title: Option<String>,
    /// Regular expression a string value must match in full.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pattern: Option<Spanned<String>>,
    /// Allowed values of an `enum` field.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub values: Vec<Spanned<String>>,
    /// Must be given when the record is created.
    #[serde(default)]
    pub required: bool,
    /// Value on creation when none is given.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<toml::Value>,
    /// Personal data: redacted for actor-bound callers outside `reveal_in` states.
    #[serde(default)]
    pub pii: bool,
    /// States in which a `pii` field is visible to the assigned actor.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reveal_in: Vec<Spanned<String>>,
    /// Keep field-level history of changes (default true).
    #[serde(default = "yes")]
    pub track: bool,
    /// The store keeps an index on the field's typed value, created when a
    /// version declaring it is published, so list filters and sorts on it
    /// read an index instead of scanning (default false: every index slows
    /// down the writes that change the record's fields).
    #[serde(default)]
    pub indexed: bool,
    /// Full-text search (`q=` on lists and views) reads its words. Default:
    /// true for `string` and `text` fields, false for the other types; only
    /// `string`, `text` and `enum` fields may be searched. A `pii` field is
    /// searched only for callers who may see every record's personal data
    /// (admin keys).
    #[serde(default)]
    pub search: Option<bool>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// Label shown in portals.
    #[serde(default)]
    pub title: Option<String>,
    /// A final state accepts no transition.
    #[serde(default, rename = "final")]
    pub is_final: bool,
    /// Effects run every time a record enters this state (also on creation).
    #[serde(default)]
    #[schemars(with = "Vec<RawEffect>")]
    pub on_enter: Vec<Spanned<RawEffect>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTransition {
    #[serde(default)]
    pub title: Option<String>,
    /// States it may be fired from: a list, or "*" for every non-final state.
    #[schemars(with = "StatesSpec")]
    pub from: Spanned<toml::Value>,
    /// Target state; omitted means stay in the same state.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub to: Option<Spanned<String>>,
    /// Roles that may fire it; "system" for timers.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub by: Vec<Spanned<String>>,
    /// Fields the caller may set with this transition.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub input: Vec<Spanned<String>>,
    /// Fields that must be non-empty once the input is applied.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub require: Vec<Spanned<String>>,
    /// Rhai expression: true to allow; false or `throw "message"` to refuse.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub guard: Option<Spanned<String>>,
    /// Effects, in order.
    #[serde(default, rename = "do")]
    #[schemars(with = "Vec<RawEffect>")]
    pub effects: Vec<Spanned<RawEffect>>,
    /// Re-arm the target state's timers on a self-transition: true for all,
    /// or a list of timer names.
    #[serde(default)]
    #[schemars(with = "Option<RearmSpec>")]
    pub rearm: Option<Spanned<toml::Value>>,
}

/// Schema-only: a list of state names, or "*".
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum StatesSpec {
    All(String),
    List(Vec<String>),
}

/// Schema-only: true, or a list of timer names.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum RearmSpec {
    All(bool),
    List(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTimer {
    #[serde(default)]
    pub title: Option<String>,
    /// States in which the timer is armed: armed on entering, cancelled on leaving.
    #[serde(rename = "in")]
    #[schemars(with = "StatesSpec")]
    pub in_states: Spanned<toml::Value>,
    /// Delay: 30m, 2h, 60d (calendar), 24wh (working hours), 2wd (working days).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub after: Option<Spanned<String>>,
    /// Anchor datetime field for `after`; default: when the state was entered.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub since: Option<Spanned<String>>,
    /// Rhai expression giving the due datetime (instead of `after`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub at: Option<Spanned<String>>,
    /// Transition to fire when due (it must allow `by = ["system"]`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub fire: Option<Spanned<String>>,
    /// Effects to run when due, without changing state.
    #[serde(default, rename = "do")]
    #[schemars(with = "Vec<RawEffect>")]
    pub effects: Vec<Spanned<RawEffect>>,
}

/// One effect. Exactly one of the action keys (set, append, clear, notify,
/// assign, release, spawn) is given; the others qualify it.
#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEffect {
    /// Rhai condition: the effect runs only when it is true.
    #[serde(default)]
    pub when: Option<String>,
    /// Set a field to `value` (a literal) or `expr` (Rhai).
    #[serde(default)]
    pub set: Option<String>,
    /// Append `value`/`expr` to a list field.
    #[serde(default)]
    pub append: Option<String>,
    /// Empty one field or several.
    #[serde(default)]
    pub clear: Option<OneOrMany>,
    /// Send a notification from a template (written to the outbox).
    #[serde(default)]
    pub notify: Option<String>,
    /// Pick an actor of this role and make it the assignee.
    #[serde(default)]
    pub assign: Option<String>,
    /// Unassign the record (true).
    #[serde(default)]
    pub release: Option<bool>,
    /// Create a record of another (or the same) workflow, linked both ways.
    #[serde(default)]
    pub spawn: Option<String>,
    /// Literal value for set/append.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub value: Option<toml::Value>,
    /// Rhai expression for set/append.
    #[serde(default)]
    pub expr: Option<String>,
    /// Recipients of a notification: "assignee", "previous_assignee",
    /// "customer", a role ("installer"; `{ role = "installer", where =
    /// "lead.area in actor.zones" }` to narrow it), "role:<role>",
    /// "actor:<id>", "field:<field>" (an address or an actor held by a
    /// field), "list:<name>" (an address list of the tenant's config) or an
    /// e-mail address. Default: "assignee".
    #[serde(default)]
    pub to: Option<RawRecipients>,
    /// Rhai expression scoring a candidate (`actor`, `lead`); highest wins.
    #[serde(default)]
    pub score: Option<String>,
    /// Rhai expression: true if `actor` may receive `lead` at all.
    #[serde(default)]
    pub filter: Option<String>,
    /// For assign: refuse the transition (E_NO_CANDIDATE) when nobody is
    /// available, instead of leaving the record unassigned.
    #[serde(default)]
    pub required: bool,
    /// A list field of actor ids that must not be picked (history exclusions).
    #[serde(default)]
    pub exclude: Option<String>,
    /// For spawn: Rhai expression giving when to create it (default: now).
    #[serde(default)]
    pub at: Option<String>,
    /// For spawn: target field = source (a field name of this record, or a Rhai expression).
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// For spawn: link name on the new record pointing back here.
    #[serde(default)]
    pub link: Option<String>,
    /// For spawn: link name on this record pointing to the new one.
    #[serde(default)]
    pub backlink: Option<String>,
    /// Fire this transition, as `system` and after this record's changes,
    /// on every record this one links to under `via`; a linked record where
    /// it is not enabled (or refused) is left as it is.
    #[serde(default)]
    pub fire_linked: Option<String>,
    /// For fire_linked: the link name on this record.
    #[serde(default)]
    pub via: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `to` of a `notify`: one recipient or a list.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(untagged)]
pub enum RawRecipients {
    // First: serde reads a struct from a sequence too, so a list must be
    // tried as a list before `One` could take it for a `{ role, where }`.
    Many(Vec<RawRecipient>),
    One(RawRecipient),
}

impl RawRecipients {
    pub fn to_vec(&self) -> Vec<RawRecipient> {
        match self {
            RawRecipients::One(r) => vec![r.clone()],
            RawRecipients::Many(v) => v.clone(),
        }
    }
}

/// One recipient: a name (see `to`), or every actor of a role narrowed by a
/// Rhai condition over `actor` and `lead`.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(untagged)]
pub enum RawRecipient {
    Name(String),
    Role(RawRoleRecipient),
}

/// `{ role = "installer", where = "lead.area in actor.zones" }`.
#[derive(Debug, Deserialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRoleRecipient {
    /// Every actor of this role...
    pub role: String,
    /// ...for whom this Rhai condition (over `actor` and `lead`) is true.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A list view: a portal tab or work list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawView {
    #[serde(default)]
    pub title: Option<String>,
    /// States included (default: all).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub states: Vec<Spanned<String>>,
    /// Rhai expression over `lead`: true to include.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub filter: Option<Spanned<String>>,
    /// Columns shown: field names or `state`, `assignee`, `created_at`, `age_days`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub columns: Vec<Spanned<String>>,
    /// Default sort column; prefix with "-" for descending.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sort: Option<Spanned<String>>,
}

/// A work queue: `POST /v1/queues/{workflow}/{queue}/next` gives the
/// caller the first record of the queue's order that nobody holds, and
/// holds it for the caller for `lease`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    #[serde(default)]
    pub title: Option<String>,
    /// States served (default: every non-final state).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub states: Vec<Spanned<String>>,
    /// Rhai expression over `lead`, as a view's filter: true to serve.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub filter: Option<Spanned<String>>,
    /// Order, first key first: `"due:<field>"` (records whose instant has
    /// passed first, earliest first), `"<field>"` ascending, `"-<field>"`
    /// descending (also `created_at`, `updated_at`, `entered_at`, `id`).
    /// Missing values last; ties by record id.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub order: Vec<Spanned<String>>,
    /// Roles that may pull from the queue (default: any actor).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub by: Vec<Spanned<String>>,
    /// `"09:00-20:00"`: the queue serves only in this window (the
    /// workflow calendar's time zone) on the calendar's working days.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub calling_hours: Option<Spanned<String>>,
    /// `{ field = "call_attempts", max = 5 }`: records whose int field
    /// reached `max` are not served.
    #[serde(default)]
    #[schemars(with = "Option<RawMaxAttempts>")]
    pub max_attempts: Option<Spanned<RawMaxAttempts>>,
    /// How long a pulled record stays the puller's: `"5m"` (the default),
    /// minutes or hours.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub lease: Option<Spanned<String>>,
}

/// `max_attempts` of a queue.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMaxAttempts {
    /// An int field counting the attempts.
    pub field: String,
    /// Served while the field is below this.
    pub max: i64,
}

/// A KPI. Declared form (computed by the store in SQL, docs/kpis.md): a
/// population (`where`, records anchored in the asked period) and one
/// measure: `hits` (a ratio), `start`/`stop`/`within` (SLA compliance and
/// durations) or `funnel` (states reached in order). Older form: Rhai `of`
/// and `hit`, evaluated in memory over loaded records.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKpi {
    #[serde(default)]
    pub title: Option<String>,
    /// Rhai expression selecting the population (default: every record).
    /// Evaluated in memory; prefer `where`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub of: Option<Spanned<String>>,
    /// Rhai expression: true when the record meets the KPI. Evaluated in
    /// memory; prefer `hits` or `start`/`stop`/`within`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub hit: Option<Spanned<String>>,
    /// Target share, 0.0 to 1.0.
    #[serde(default)]
    pub target: Option<f64>,
    /// The instant that places a record in a period: `created`, a datetime
    /// field, `transition:<name>` (its first firing) or `entered:<state>`
    /// (first entering). Default `created`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub anchor: Option<Spanned<String>>,
    /// Without `from`/`to`: only records anchored in the last `window`
    /// (e.g. "60d").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub window: Option<Spanned<String>>,
    /// The population: records meeting every condition (default: all).
    #[serde(default, rename = "where")]
    #[schemars(with = "Option<RawWhere>")]
    pub where_: Option<Spanned<RawWhere>>,
    /// A ratio: the records of the population that also meet these.
    #[serde(default)]
    #[schemars(with = "Option<RawWhere>")]
    pub hits: Option<Spanned<RawWhere>>,
    /// A duration from this instant (same forms as `anchor`)...
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub start: Option<Spanned<String>>,
    /// ...to this one; a record without it has not met the SLA (yet).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub stop: Option<Spanned<String>>,
    /// SLA target duration: `24h`, `10d` (fixed lengths), `8wh`, `1wd`
    /// (working time of the workflow's calendar).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub within: Option<Spanned<String>>,
    /// A conversion funnel: how many records of the population reached each
    /// state (hits: the last one).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub funnel: Vec<Spanned<String>>,
    /// Default grouping: `assignee`, `state`, a field, or `day`, `week`,
    /// `month`, `quarter`, `year` (of the anchor, in the calendar's zone).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub group_by: Vec<Spanned<String>>,
}

/// Conditions a record meets (all of them): SQL-able, no scripts.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWhere {
    /// Its current state is one of these.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub state: Vec<Spanned<String>>,
    /// It is in, or has ever entered, one of these states.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reached: Vec<Spanned<String>>,
    /// These fields hold a value.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub set: Vec<Spanned<String>>,
    /// These fields are empty.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub unset: Vec<Spanned<String>>,
    /// Field equals a value (or one of a list of values).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub equals: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Number field strictly above a value.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub above: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    /// Number field strictly below a value.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, f64>")]
    pub below: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// A periodic report: counts grouped by fields, or a charge per record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    #[serde(default)]
    pub title: Option<String>,
    /// When the report runs by itself: day, week, month, quarter, year,
    /// `daily 09:00`, `monday 09:00`, `day 1 of month [at 09:00]`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub every: Option<Spanned<String>>,
    /// Rhai expression selecting records.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub filter: Option<Spanned<String>>,
    /// Fields (or `state`, `assignee`) to group counts by.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub group_by: Vec<Spanned<String>>,
    /// Amount charged per selected record (billing reports).
    #[serde(default)]
    pub charge: Option<f64>,
    /// Notification template sent per group (e.g. a reminder per assignee).
    #[serde(default)]
    pub notify: Option<String>,
    /// The period a run covers: day, week, month, quarter or year
    /// (default: `every` when it names one), or `all` for the whole
    /// history (a reminder of every lead still open).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub period: Option<Spanned<String>>,
    /// The instant that places a record in a period (as a KPI's `anchor`;
    /// default `created`): a sale is billed in the quarter it closed.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub anchor: Option<Spanned<String>>,
    /// Records selected, SQL-able (instead of the Rhai `filter`).
    #[serde(default, rename = "where")]
    #[schemars(with = "Option<RawWhere>")]
    pub where_: Option<Spanned<RawWhere>>,
    /// Currency of `charge` (e.g. "EUR").
    #[serde(default)]
    pub currency: Option<String>,
}
