//! The resolved model: names linked to indices, scripts compiled, calendars
//! attached. Built by `load/` from the raw model; evaluated by `eval/`.

use crate::calendar::Calendar;
use crate::script::{ScriptId, Scripts};
use crate::value::{FieldType, Value};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

pub type StateId = usize;
pub type FieldId = usize;
pub type TransitionId = usize;
pub type TimerId = usize;

/// A loaded, checked lifecycle.
#[derive(Debug)]
pub struct Workflow {
    pub id: String,
    pub title: String,
    pub record: String,
    /// Path of the file it was loaded from.
    pub file: String,
    /// Content hash of the source text (hex), a version identifier.
    pub hash: String,
    pub initial: StateId,
    pub states: Vec<State>,
    pub fields: Vec<Field>,
    pub transitions: Vec<Transition>,
    pub timers: Vec<Timer>,
    pub views: Vec<View>,
    /// Work queues (`[queues]`), in file order.
    pub queues: Vec<crate::queue::Queue>,
    pub kpis: Vec<Kpi>,
    pub reports: Vec<Report>,
    pub calendar: Arc<Calendar>,
    /// Who `customer` is in a `notify` (`[customer]`).
    pub customer: Customer,
    /// The field holding a record's area (`[workflow] area`), for the
    /// `area.<role>` relations.
    pub area: Option<FieldId>,
    /// Who sees records besides their assignee (`[workflow] visible_to`).
    pub visible_to: Vec<crate::org::Relation>,
    /// Who sees `pii` fields as the assignee does (`[workflow] reveal_to`);
    /// they see the record too.
    pub reveal_to: Vec<crate::org::Relation>,
    pub(crate) scripts: Scripts,
    pub(crate) state_index: HashMap<String, StateId>,
    pub(crate) field_index: Arc<HashMap<String, FieldId>>,
    pub(crate) transition_index: HashMap<String, TransitionId>,
    pub(crate) timer_index: HashMap<String, TimerId>,
}

impl Workflow {
    /// A record's area (`[workflow] area`, a string or enum field).
    pub fn area_of(&self, rec: &crate::eval::Record) -> Option<String> {
        match rec.fields.get(self.area?)? {
            crate::value::Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn state(&self, name: &str) -> Option<StateId> {
        self.state_index.get(name).copied()
    }
    pub fn field(&self, name: &str) -> Option<FieldId> {
        self.field_index.get(name).copied()
    }
    pub fn transition(&self, name: &str) -> Option<TransitionId> {
        self.transition_index.get(name).copied()
    }
    pub fn timer(&self, name: &str) -> Option<TimerId> {
        self.timer_index.get(name).copied()
    }
    pub fn state_name(&self, id: StateId) -> &str {
        &self.states[id].name
    }
    /// Whether any effect assigns (so callers must pass the actor directory).
    pub fn uses_directory(&self) -> bool {
        fn any(effects: &[Effect]) -> bool {
            effects.iter().any(|e| match e {
                Effect::Assign { .. } => true,
                Effect::When { then, .. } => any(std::slice::from_ref(then)),
                _ => false,
            })
        }
        self.transitions.iter().any(|t| any(&t.effects))
            || self.states.iter().any(|s| any(&s.on_enter))
            || self
                .timers
                .iter()
                .any(|t| matches!(&t.action, TimerAction::Effects(e) if any(e)))
    }

    /// Whether a message to the customer may show the field `name`: it is
    /// one of the `[customer]` mapping's (the customer's own data).
    pub fn customer_sees(&self, name: &str) -> bool {
        self.field(name)
            .is_some_and(|f| self.customer.fields().any(|c| c == f))
    }

    /// Transitions enabled in `state` (ignoring roles and guards).
    pub fn enabled_in(&self, state: StateId) -> impl Iterator<Item = &Transition> {
        self.transitions
            .iter()
            .filter(move |t| t.enabled_from(state))
    }
}

/// The `[customer]` mapping. Without the table, `email` is the field named
/// `email` if the workflow has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customer {
    pub email: Option<FieldId>,
    pub name: Vec<FieldId>,
    pub language: Option<FieldId>,
    pub reveal: Vec<FieldId>,
}

impl Customer {
    /// Every field of the mapping.
    pub fn fields(&self) -> impl Iterator<Item = FieldId> + '_ {
        self.email
            .iter()
            .chain(&self.name)
            .chain(&self.language)
            .chain(&self.reveal)
            .copied()
    }
}

/// A recipient of a `notify`, as the workflow names it; the runtime
/// resolves it against the record and the actor directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The record's assignee after the step.
    Assignee,
    /// The assignee before the step, when the step changed it.
    PreviousAssignee,
    /// The person the record is about (`[customer]`).
    Customer,
    /// The managers of the record's assignee, direct and above (`crate::org`).
    AssigneeManager,
    /// The actors of `role` responsible for the record's area.
    Area(String),
    /// Every actor of `role` (available or not), narrowed by `filter` (a
    /// Rhai condition over `actor` and `lead`, see [`crate::eval::recipient_matches`]).
    Role {
        role: String,
        filter: Option<ScriptId>,
    },
    /// One actor of the directory.
    Actor(String),
    /// The address (string field) or actor (actor field) a field holds.
    Field(FieldId),
    /// An address written in the workflow.
    Address(String),
    /// An address list of the tenant's config.
    List(String),
}

#[derive(Debug)]
pub struct State {
    pub name: String,
    pub title: String,
    pub is_final: bool,
    pub on_enter: Vec<Effect>,
    pub span: Range<usize>,
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub title: String,
    pub ty: FieldType,
    pub pattern: Option<regex::Regex>,
    pub values: Vec<String>,
    pub required: bool,
    pub default: Option<Value>,
    pub pii: bool,
    pub reveal_in: Vec<StateId>,
    pub track: bool,
    /// `indexed = true`: the SQL stores keep an index on its typed value.
    pub indexed: bool,
    /// Full-text search reads its words (`search`, default: string and
    /// text fields).
    pub search: bool,
}

#[derive(Debug)]
pub struct Transition {
    pub name: String,
    pub title: String,
    /// Bit per state: may it be fired from there.
    pub from: Vec<bool>,
    pub to: Option<StateId>,
    pub by: Vec<String>,
    /// The entries of `by` that are relations (`assignee.manager`,
    /// `area.<role>`), not roles.
    pub by_relations: Vec<crate::org::Relation>,
    pub input: Vec<FieldId>,
    pub require: Vec<FieldId>,
    pub guard: Option<ScriptId>,
    pub guard_source: Option<String>,
    pub effects: Vec<Effect>,
    pub rearm: Rearm,
    pub span: Range<usize>,
}

impl Transition {
    pub fn enabled_from(&self, state: StateId) -> bool {
        self.from.get(state).copied().unwrap_or(false)
    }
    pub fn allows_role(&self, role: &str) -> bool {
        self.by.iter().any(|r| r == role || r == "*")
    }

    /// Whether `actor` may fire it on `rec`: by role, or by a relation of
    /// `by` to the record ([`crate::org`]).
    pub fn allows(
        &self,
        wf: &Workflow,
        rec: &crate::eval::Record,
        actor: &crate::eval::Actor,
        directory: &[crate::eval::Actor],
    ) -> bool {
        self.allows_role(&actor.role)
            || self.by_relations.iter().any(|r| {
                r.holds(
                    directory,
                    actor,
                    rec.assignee.as_deref(),
                    wf.area_of(rec).as_deref(),
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rearm {
    None,
    All,
    Some(Vec<TimerId>),
}

/// A value source in an effect: a literal or a compiled Rhai expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Value),
    Field(FieldId),
    Script(ScriptId),
}

#[derive(Debug, Clone)]
pub enum Effect {
    Set {
        field: FieldId,
        value: Expr,
    },
    Append {
        field: FieldId,
        value: Expr,
    },
    Clear {
        fields: Vec<FieldId>,
    },
    Notify {
        template: String,
        to: Vec<Recipient>,
    },
    Assign {
        role: String,
        score: Option<ScriptId>,
        filter: Option<ScriptId>,
        exclude: Option<FieldId>,
        /// Refuse with E_NO_CANDIDATE when nobody is available.
        required: bool,
    },
    Release,
    Spawn(SpawnSpec),
    /// Fire `transition` (as `system`) on the records linked under `via`.
    FireLinked {
        transition: String,
        via: String,
    },
    /// Run the inner effect only when the condition holds.
    When {
        cond: ScriptId,
        then: Box<Effect>,
    },
}

#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub workflow: String,
    pub at: Option<ScriptId>,
    /// Target field name -> source.
    pub map: Vec<(String, Expr)>,
    pub link: String,
    pub backlink: String,
}

#[derive(Debug)]
pub struct Timer {
    pub name: String,
    pub title: String,
    pub in_states: Vec<bool>,
    pub due: Due,
    /// When it is due, as written (`after 2wd since assigned_at`, `at
    /// lead.callback_at`): two versions whose texts agree arm it alike
    /// (`leadflow migrate --timers`).
    pub due_text: String,
    pub action: TimerAction,
    pub span: Range<usize>,
}

impl Timer {
    pub fn armed_in(&self, state: StateId) -> bool {
        self.in_states.get(state).copied().unwrap_or(false)
    }
}

#[derive(Debug, Clone)]
pub enum Due {
    After {
        amount: i64,
        unit: crate::duration::Unit,
        since: Option<FieldId>,
    },
    At(ScriptId),
}

#[derive(Debug, Clone)]
pub enum TimerAction {
    Fire(TransitionId),
    Effects(Vec<Effect>),
}

#[derive(Debug)]
pub struct View {
    pub name: String,
    pub title: String,
    pub states: Vec<StateId>,
    pub filter: Option<ScriptId>,
    /// The filter's Rhai source, for stores that run it as a query.
    pub filter_source: Option<String>,
    pub columns: Vec<String>,
    pub sort: Option<String>,
}

#[derive(Debug)]
pub struct Kpi {
    pub name: String,
    pub title: String,
    /// Rhai form (evaluated in memory): population.
    pub of: Option<ScriptId>,
    /// Rhai form: the hit test; `None` for a declared KPI.
    pub hit: Option<ScriptId>,
    /// Declared form, computed by the store (`None`: the Rhai form).
    pub spec: Option<crate::measure::Spec>,
    pub target: Option<f64>,
    pub anchor: crate::measure::Moment,
    pub window: Option<crate::duration::Span>,
    pub group_by: Vec<String>,
}

#[derive(Debug)]
pub struct Report {
    pub name: String,
    pub title: String,
    pub every: Option<String>,
    /// `every` parsed (`None`: the report runs only when asked).
    pub schedule: Option<crate::schedule::Schedule>,
    pub filter: Option<ScriptId>,
    /// Declared selection (`where`), computed by the store; `None` with a
    /// Rhai `filter` (evaluated in memory) or no selection at all.
    pub spec: Option<crate::measure::Spec>,
    pub group_by: Vec<String>,
    pub charge: Option<f64>,
    pub currency: Option<String>,
    pub notify: Option<String>,
    /// The period a run covers (`period`, else `every` when it names one).
    pub period: Option<crate::measure::PeriodKind>,
    pub anchor: crate::measure::Moment,
}
