//! Rhai: one sandboxed engine configuration, scripts compiled once at load.
//!
//! Scripts see `lead` (typed field values, read-only), `input` (a map),
//! `actor` (a map: id, role, zones, skills, capacity, load, attributes),
//! `now` (a datetime) and helpers: `minutes/hours/days(n)`,
//! `add_working_hours(t, n)`, `add_working_days(t, n)`, `is_working_time(t)`,
//! `date(t)`. Limits keep every evaluation to a few milliseconds at worst;
//! the module resolver is static, so scripts cannot read files or load
//! modules other than the workflow's own `rules/`.

mod engine;
mod lint;
mod scripts;
#[cfg(test)]
mod tests;

pub use lint::ScriptProblem;
pub use scripts::Scripts;

use crate::value::Value;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rhai::{Array, Dynamic, EvalAltResult, ImmutableString, Map, AST, INT};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;

pub type ScriptId = usize;

/// Upper bound of Rhai operations per evaluation: a runaway loop stops after
/// about a millisecond.
pub const MAX_OPERATIONS: u64 = 20_000;

/// A datetime as scripts see it: compares, adds durations, subtracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub DateTime<Utc>);

/// A length of time (`hours(24)`), added to or subtracted from datetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub NaiveDate);

/// The record as a guard sees it: read-only, fields converted on access.
#[derive(Debug, Clone)]
pub struct Lead(pub Arc<LeadData>);

#[derive(Debug)]
pub struct LeadData {
    pub names: Arc<HashMap<String, usize>>,
    pub fields: Vec<Value>,
    pub state: String,
    pub assignee: Option<String>,
    pub created_at: DateTime<Utc>,
    pub entered_at: DateTime<Utc>,
}

/// Properties every `lead` has besides its fields.
pub const LEAD_BUILTINS: &[&str] = &["state", "assignee", "created_at", "entered_at"];

impl Lead {
    fn get(&mut self, name: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let d = &self.0;
        if let Some(&i) = d.names.get(name) {
            return Ok(to_dynamic(&d.fields[i]));
        }
        Ok(match name {
            "state" => d.state.clone().into(),
            "assignee" => d.assignee.clone().map_or(Dynamic::UNIT, Dynamic::from),
            "created_at" => Dynamic::from(Instant(d.created_at)),
            "entered_at" => Dynamic::from(Instant(d.entered_at)),
            _ => return Err(format!("the record has no field `{name}`").into()),
        })
    }
}

/// Field value -> script value.
pub fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i as INT).into(),
        Value::Decimal(d) => d.to_f64().unwrap_or(0.0).into(),
        Value::Str(s) => s.clone().into(),
        Value::Date(d) => Dynamic::from(Day(*d)),
        Value::DateTime(t) => Dynamic::from(Instant(*t)),
        Value::List(l) => Dynamic::from_array(l.iter().map(to_dynamic).collect()),
    }
}

/// Script value -> loosely typed field value (then coerced by the field type).
pub fn from_dynamic(d: &Dynamic) -> Result<Value, String> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    // One copy; each failed cast hands it back (a copy per type tried
    // would box a datetime five times).
    let v = match d.clone().try_cast_result::<bool>() {
        Ok(b) => return Ok(Value::Bool(b)),
        Err(v) => v,
    };
    let v = match v.try_cast_result::<INT>() {
        Ok(i) => return Ok(Value::Int(i)),
        Err(v) => v,
    };
    let v = match v.try_cast_result::<f64>() {
        Ok(f) => {
            return Decimal::from_f64(f)
                .map(|x| Value::Decimal(x.round_dp(6).normalize()))
                .ok_or_else(|| format!("{f} is not a representable decimal"))
        }
        Err(v) => v,
    };
    let v = match v.try_cast_result::<ImmutableString>() {
        Ok(s) => return Ok(Value::Str(s.to_string())),
        Err(v) => v,
    };
    let v = match v.try_cast_result::<Instant>() {
        Ok(t) => return Ok(Value::DateTime(t.0)),
        Err(v) => v,
    };
    let v = match v.try_cast_result::<Day>() {
        Ok(t) => return Ok(Value::Date(t.0)),
        Err(v) => v,
    };
    if let Ok(a) = v.try_cast_result::<Array>() {
        return a
            .iter()
            .map(from_dynamic)
            .collect::<Result<_, _>>()
            .map(Value::List);
    }
    Err(format!(
        "a script returned a value of type {} that no field can hold",
        d.type_name()
    ))
}

/// A compile error with its 1-based line and column inside the script.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// The outcome of evaluating a script.
pub enum Eval {
    Value(Dynamic),
    /// `throw "message"`.
    Thrown(String),
    /// A runtime error or an exhausted limit.
    Failed(String),
}

/// What a script can see. `input` and `actor` are only built when the
/// script mentions them (see [`Scripts::uses`]): building them is most of
/// the cost of a small guard.
pub struct Vars {
    pub lead: Lead,
    pub now: DateTime<Utc>,
    pub input: Option<Map>,
    pub actor: Option<ActorView>,
}

/// Which optional variables a script reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uses {
    pub input: bool,
    pub actor: bool,
}

impl Uses {
    fn of(ast: &AST) -> Uses {
        use rhai::{ASTNode, Expr};
        let mut u = Uses::default();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::Variable(v, _, _))) = path.last() {
                match v.1.as_str() {
                    "input" => u.input = true,
                    "actor" => u.actor = true,
                    _ => {}
                }
            }
            true
        });
        u
    }
}

/// An actor as scripts see it: `actor.id`, `.role`, `.zones`, `.skills`,
/// `.capacity`, `.load`, `.attributes`, or an attribute by name.
#[derive(Debug, Clone)]
pub struct ActorView(pub Arc<crate::eval::Actor>);

impl ActorView {
    fn get(&mut self, name: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let a = &self.0;
        let strs = |v: &[String]| Dynamic::from_array(v.iter().map(|s| s.clone().into()).collect());
        Ok(match name {
            "id" => a.id.clone().into(),
            "role" => a.role.clone().into(),
            "zones" => strs(&a.zones),
            "skills" => strs(&a.skills),
            "capacity" => a.capacity.map_or(Dynamic::UNIT, |c| (c as INT).into()),
            "load" => (a.load as INT).into(),
            "attributes" => {
                let mut m = Map::new();
                for (k, v) in &a.attributes {
                    m.insert(k.as_str().into(), to_dynamic(v));
                }
                m.into()
            }
            other => a.attributes.get(other).map_or(Dynamic::UNIT, to_dynamic),
        })
    }
}
