//! Evaluating a [`Node`] tree against an [`Env`]: a value, a `throw`, or
//! "let Rhai do it".

use super::{Builtin, Env, Node, Op, Stop, N, R};
use crate::value::Value;
use rhai::Dynamic;
use rust_decimal::prelude::ToPrimitive;

impl Node {
    /// Evaluate; `None` means "let Rhai do it" (a `throw` too).
    pub fn eval(&self, env: &Env) -> Option<Dynamic> {
        self.run(env)?.ok()
    }

    /// Evaluate: `Ok` a value, `Err` the message of a `throw`; `None` means
    /// "let Rhai do it".
    pub fn run(&self, env: &Env) -> Option<Result<Dynamic, String>> {
        match self.n(env) {
            Ok(n) => Some(Ok(n.dynamic())),
            Err(Stop::Throw(m)) => Some(Err(m)),
            Err(Stop::Fallback) => None,
        }
    }

    /// [`Node::run`] for a value a field or a timer takes: `Ok` what
    /// `script::from_dynamic` makes of `run`'s value (or its error), without
    /// building the `Dynamic` (a datetime in one is boxed); `Err` the
    /// message of a `throw`; `None`: let Rhai do it.
    pub fn run_value(&self, env: &Env) -> Option<Result<Result<Value, String>, String>> {
        Some(Ok(match self.n(env) {
            Ok(N::Unit) => Ok(Value::Null),
            Ok(N::Bool(b)) => Ok(Value::Bool(b)),
            Ok(N::Int(i)) => Ok(Value::Int(i)),
            Ok(N::Str(s)) => Ok(Value::Str(s)),
            Ok(N::Instant(t)) => Ok(Value::DateTime(t)),
            Ok(N::Day(d)) => Ok(Value::Date(d)),
            // Rounding and error messages exactly as for Rhai's values.
            Ok(n @ (N::Float(_) | N::Span(_))) => crate::script::from_dynamic(&n.dynamic()),
            Err(Stop::Throw(m)) => return Some(Err(m)),
            Err(Stop::Fallback) => return None,
        }))
    }

    fn n(&self, env: &Env) -> R {
        use Stop::Fallback;
        Ok(match self {
            Node::Unit => N::Unit,
            Node::Bool(b) => N::Bool(*b),
            Node::Int(i) => N::Int(*i),
            Node::Float(f) => N::Float(*f),
            Node::Str(s) => N::Str(s.clone()),
            Node::Now => N::Instant(env.now),
            Node::Field(i) => match env.fields.get(*i).ok_or(Fallback)? {
                Value::Null => N::Unit,
                Value::Bool(b) => N::Bool(*b),
                Value::Int(i) => N::Int(*i),
                Value::Decimal(d) => N::Float(d.to_f64().ok_or(Fallback)?),
                Value::Str(s) => N::Str(s.clone()),
                Value::Date(d) => N::Day(*d),
                Value::DateTime(t) => N::Instant(*t),
                Value::List(_) => return Err(Fallback),
            },
            Node::Builtin(b) => match b {
                Builtin::State => N::Str(env.state.to_string()),
                Builtin::Assignee => env.assignee.map_or(N::Unit, |a| N::Str(a.to_string())),
                Builtin::CreatedAt => N::Instant(env.created_at),
                Builtin::EnteredAt => N::Instant(env.entered_at),
            },
            Node::ActorId => N::Str(env.actor.ok_or(Fallback)?.id.clone()),
            Node::ZonesContain(x) => {
                let zones = &env.actor.ok_or(Fallback)?.zones;
                match x.n(env)? {
                    // A string equals only strings: Rhai's `contains` too.
                    N::Str(s) => N::Bool(zones.contains(&s)),
                    _ => return Err(Fallback),
                }
            }
            Node::Duration(f, n) => match n.n(env)? {
                N::Int(i) => N::Span(f(i).ok_or(Fallback)?),
                _ => return Err(Fallback),
            },
            Node::Not(x) => match x.n(env)? {
                N::Bool(b) => N::Bool(!b),
                _ => return Err(Fallback),
            },
            Node::And(list) => {
                for x in list {
                    match x.n(env)? {
                        N::Bool(true) => {}
                        N::Bool(false) => return Ok(N::Bool(false)),
                        _ => return Err(Fallback),
                    }
                }
                N::Bool(true)
            }
            Node::Or(list) => {
                for x in list {
                    match x.n(env)? {
                        N::Bool(false) => {}
                        N::Bool(true) => return Ok(N::Bool(true)),
                        _ => return Err(Fallback),
                    }
                }
                N::Bool(false)
            }
            Node::If(c, a, b) => match c.n(env)? {
                N::Bool(true) => a.n(env)?,
                N::Bool(false) => b.n(env)?,
                _ => return Err(Fallback),
            },
            Node::Block(list) => {
                let mut last = N::Unit;
                for x in list {
                    last = x.n(env)?;
                }
                last
            }
            Node::Throw(m) => return Err(Stop::Throw(m.clone())),
            Node::Bin(op, a, b) => bin(*op, a.n(env)?, b.n(env)?).ok_or(Fallback)?,
        })
    }
}

fn bin(op: Op, a: N, b: N) -> Option<N> {
    use Op::*;
    use N::*;
    Some(match (op, a, b) {
        (Add, Int(x), Int(y)) => Int(x.checked_add(y)?),
        (Sub, Int(x), Int(y)) => Int(x.checked_sub(y)?),
        (Mul, Int(x), Int(y)) => Int(x.checked_mul(y)?),
        (Add, Float(x), Float(y)) => Float(x + y),
        (Sub, Float(x), Float(y)) => Float(x - y),
        (Add, Str(x), Str(y)) => Str(x + y.as_str()),
        (Add, Instant(t), Span(d)) => Instant(t.checked_add_signed(d)?),
        (Sub, Instant(t), Span(d)) => Instant(t.checked_sub_signed(d)?),
        (Sub, Instant(t), Instant(u)) => Span(t - u),
        (Add, Span(x), Span(y)) => Span(x.checked_add(&y)?),
        (Eq | Ne, x, y) => {
            let same = match (&x, &y) {
                (Int(i), Float(f)) | (Float(f), Int(i)) => (*i as f64) == *f,
                // Rhai compares values of different types as unequal.
                _ => x == y,
            };
            Bool(same == (op == Eq))
        }
        (Lt | Le | Gt | Ge, x, y) => {
            let ord = match (x, y) {
                (Int(x), Int(y)) => x.cmp(&y),
                (Float(x), Float(y)) => x.partial_cmp(&y)?,
                (Int(x), Float(y)) => (x as f64).partial_cmp(&y)?,
                (Float(x), Int(y)) => x.partial_cmp(&(y as f64))?,
                (Str(x), Str(y)) => x.cmp(&y),
                (Instant(x), Instant(y)) => x.cmp(&y),
                (Span(x), Span(y)) => x.cmp(&y),
                (Day(x), Day(y)) => x.cmp(&y),
                _ => return None,
            };
            Bool(match op {
                Lt => ord.is_lt(),
                Le => ord.is_le(),
                Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        _ => return None,
    })
}
