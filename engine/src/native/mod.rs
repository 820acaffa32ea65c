//! A fast path for the small expressions workflows are full of (`now`,
//! `lead.attempts + 1`, `now - lead.assigned_at <= hours(24)`,
//! `lead.x == ()`): compiled from the Rhai AST into a tiny tree and evaluated
//! without building a Rhai scope. Anything outside the subset, including any
//! type combination whose Rhai behaviour is not mirrored exactly here, returns
//! `None` at compile or run time and the caller runs Rhai instead, so results
//! never differ from Rhai's.

mod compile;
mod rules;
mod run;
#[cfg(test)]
mod tests;

pub use compile::compile;
pub use rules::RuleFns;

use crate::eval::Actor;
use crate::script::{Day, Instant, Span};
use crate::value::Value;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rhai::Dynamic;

#[derive(Debug, Clone)]
pub enum Node {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Now,
    Field(usize),
    Builtin(Builtin),
    /// `actor.id`.
    ActorId,
    /// `actor.zones.contains(x)`.
    ZonesContain(Box<Node>),
    /// `minutes(n)`, `hours(n)`, `days(n)`: `None` out of range (Rhai then
    /// gives the error).
    Duration(fn(i64) -> Option<Duration>, Box<Node>),
    Not(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    /// Statements in order; the value of the last one (unit if none).
    Block(Vec<Node>),
    /// `throw "message"`.
    Throw(String),
}

#[derive(Debug, Clone, Copy)]
pub enum Builtin {
    State,
    Assignee,
    CreatedAt,
    EnteredAt,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value during native evaluation.
#[derive(Debug, Clone, PartialEq)]
enum N {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Instant(DateTime<Utc>),
    Span(Duration),
    Day(NaiveDate),
}

impl N {
    fn dynamic(self) -> Dynamic {
        match self {
            N::Unit => Dynamic::UNIT,
            N::Bool(b) => b.into(),
            N::Int(i) => i.into(),
            N::Float(f) => f.into(),
            N::Str(s) => s.into(),
            N::Instant(t) => Dynamic::from(Instant(t)),
            N::Span(d) => Dynamic::from(Span(d)),
            N::Day(d) => Dynamic::from(Day(d)),
        }
    }
}

/// Why native evaluation stopped without a value.
enum Stop {
    /// Outside the subset: let Rhai do it.
    Fallback,
    /// `throw "message"`.
    Throw(String),
}

type R = Result<N, Stop>;

/// What a native expression reads.
pub struct Env<'a> {
    pub fields: &'a [Value],
    pub state: &'a str,
    pub assignee: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub entered_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// `actor`, when the script is given one.
    pub actor: Option<&'a Actor>,
}
