//! A fast path for the small expressions workflows are full of (`now`,
//! `lead.attempts + 1`, `now - lead.assigned_at <= hours(24)`,
//! `lead.x == ()`): compiled from the Rhai AST into a tiny tree and evaluated
//! without building a Rhai scope. Anything outside the subset, including any
//! type combination whose Rhai behaviour is not mirrored exactly here, returns
//! `None` at compile or run time and the caller runs Rhai instead, so results
//! never differ from Rhai's.

use crate::script::{Day, Instant, Span};
use crate::value::Value;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rhai::{Dynamic, Expr, Stmt, Token, AST};
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;

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
    Duration(fn(i64) -> Duration, Box<Node>),
    Not(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
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

/// What a native expression reads.
pub struct Env<'a> {
    pub fields: &'a [Value],
    pub state: &'a str,
    pub assignee: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub entered_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// Compile a script consisting of one expression in the subset.
pub fn compile(ast: &AST, fields: &HashMap<String, usize>) -> Option<Node> {
    if ast.has_functions() {
        return None;
    }
    match ast.statements() {
        [s] => stmt(s, fields),
        _ => None,
    }
}

fn stmt(s: &Stmt, fields: &HashMap<String, usize>) -> Option<Node> {
    match s {
        Stmt::Expr(e) => expr(e, fields),
        Stmt::FnCall(f, _) => call(f, fields),
        Stmt::If(fc, _) => {
            let one = |b: &rhai::StmtBlock| match b.statements() {
                [] => Some(Node::Unit),
                [s] => stmt(s, fields),
                _ => None,
            };
            Some(Node::If(
                Box::new(expr(&fc.expr, fields)?),
                Box::new(one(&fc.body)?),
                Box::new(one(&fc.branch)?),
            ))
        }
        _ => None,
    }
}

fn expr(e: &Expr, fields: &HashMap<String, usize>) -> Option<Node> {
    Some(match e {
        Expr::Unit(_) => Node::Unit,
        Expr::BoolConstant(b, _) => Node::Bool(*b),
        Expr::IntegerConstant(i, _) => Node::Int(*i),
        Expr::FloatConstant(f, _) => Node::Float(**f),
        Expr::StringConstant(s, _) => Node::Str(s.to_string()),
        Expr::Variable(v, _, _) if v.2.is_empty() && v.1.as_str() == "now" => Node::Now,
        Expr::Dot(b, _, _) => match (&b.lhs, &b.rhs) {
            (Expr::Variable(v, _, _), Expr::Property(p, _))
                if v.2.is_empty() && v.1.as_str() == "lead" =>
            {
                let name = p.2.as_str();
                match fields.get(name) {
                    Some(&i) => Node::Field(i),
                    None => Node::Builtin(match name {
                        "state" => Builtin::State,
                        "assignee" => Builtin::Assignee,
                        "created_at" => Builtin::CreatedAt,
                        "entered_at" => Builtin::EnteredAt,
                        _ => return None,
                    }),
                }
            }
            _ => return None,
        },
        Expr::And(list, _) => Node::And(
            list.iter()
                .map(|e| expr(e, fields))
                .collect::<Option<_>>()?,
        ),
        Expr::Or(list, _) => Node::Or(
            list.iter()
                .map(|e| expr(e, fields))
                .collect::<Option<_>>()?,
        ),
        Expr::FnCall(f, _) => call(f, fields)?,
        Expr::Stmt(block) => match block.statements() {
            [s] => stmt(s, fields)?,
            _ => return None,
        },
        _ => return None,
    })
}

fn call(f: &rhai::FnCallExpr, fields: &HashMap<String, usize>) -> Option<Node> {
    if !f.namespace.is_empty() {
        return None;
    }
    let args = f.args.as_slice();
    if let Some(tok) = &f.op_token {
        let op = match tok {
            Token::Plus => Op::Add,
            Token::Minus => Op::Sub,
            Token::Multiply => Op::Mul,
            Token::EqualsTo => Op::Eq,
            Token::NotEqualsTo => Op::Ne,
            Token::LessThan => Op::Lt,
            Token::LessThanEqualsTo => Op::Le,
            Token::GreaterThan => Op::Gt,
            Token::GreaterThanEqualsTo => Op::Ge,
            Token::Bang if args.len() == 1 => {
                return Some(Node::Not(Box::new(expr(&args[0], fields)?)))
            }
            _ => return None,
        };
        return match args {
            [a, b] => Some(Node::Bin(
                op,
                Box::new(expr(a, fields)?),
                Box::new(expr(b, fields)?),
            )),
            _ => None,
        };
    }
    let unit: fn(i64) -> Duration = match (f.name.as_str(), args.len()) {
        ("minutes", 1) => Duration::minutes,
        ("hours", 1) => Duration::hours,
        ("days", 1) => Duration::days,
        _ => return None,
    };
    Some(Node::Duration(unit, Box::new(expr(&args[0], fields)?)))
}

impl Node {
    /// Evaluate; `None` means "let Rhai do it".
    pub fn eval(&self, env: &Env) -> Option<Dynamic> {
        Some(match self.n(env)? {
            N::Unit => Dynamic::UNIT,
            N::Bool(b) => b.into(),
            N::Int(i) => i.into(),
            N::Float(f) => f.into(),
            N::Str(s) => s.into(),
            N::Instant(t) => Dynamic::from(Instant(t)),
            N::Span(d) => Dynamic::from(Span(d)),
            N::Day(d) => Dynamic::from(Day(d)),
        })
    }

    fn n(&self, env: &Env) -> Option<N> {
        Some(match self {
            Node::Unit => N::Unit,
            Node::Bool(b) => N::Bool(*b),
            Node::Int(i) => N::Int(*i),
            Node::Float(f) => N::Float(*f),
            Node::Str(s) => N::Str(s.clone()),
            Node::Now => N::Instant(env.now),
            Node::Field(i) => match env.fields.get(*i)? {
                Value::Null => N::Unit,
                Value::Bool(b) => N::Bool(*b),
                Value::Int(i) => N::Int(*i),
                Value::Decimal(d) => N::Float(d.to_f64()?),
                Value::Str(s) => N::Str(s.clone()),
                Value::Date(d) => N::Day(*d),
                Value::DateTime(t) => N::Instant(*t),
                Value::List(_) => return None,
            },
            Node::Builtin(b) => match b {
                Builtin::State => N::Str(env.state.to_string()),
                Builtin::Assignee => env.assignee.map_or(N::Unit, |a| N::Str(a.to_string())),
                Builtin::CreatedAt => N::Instant(env.created_at),
                Builtin::EnteredAt => N::Instant(env.entered_at),
            },
            Node::Duration(f, n) => match n.n(env)? {
                N::Int(i) if i.unsigned_abs() < 1 << 40 => N::Span(f(i)),
                _ => return None,
            },
            Node::Not(x) => match x.n(env)? {
                N::Bool(b) => N::Bool(!b),
                _ => return None,
            },
            Node::And(list) => {
                for x in list {
                    match x.n(env)? {
                        N::Bool(true) => {}
                        N::Bool(false) => return Some(N::Bool(false)),
                        _ => return None,
                    }
                }
                N::Bool(true)
            }
            Node::Or(list) => {
                for x in list {
                    match x.n(env)? {
                        N::Bool(false) => {}
                        N::Bool(true) => return Some(N::Bool(true)),
                        _ => return None,
                    }
                }
                N::Bool(false)
            }
            Node::If(c, a, b) => match c.n(env)? {
                N::Bool(true) => a.n(env)?,
                N::Bool(false) => b.n(env)?,
                _ => return None,
            },
            Node::Bin(op, a, b) => bin(*op, a.n(env)?, b.n(env)?)?,
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

#[cfg(test)]
mod tests {
    use crate::calendar::Calendar;
    use crate::script::{Eval, Lead, LeadData, Scripts, Vars};
    use crate::value::{parse_instant, Value};
    use rust_decimal::Decimal;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// The fast path gives exactly what Rhai gives, for every expression it
    /// accepts, on records with empty and filled fields.
    #[test]
    fn native_agrees_with_rhai() {
        let names: HashMap<String, usize> = ["n", "d", "s", "t", "b", "day"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        let t = parse_instant("2022-11-14T09:00:00Z").unwrap();
        let records = [
            vec![Value::Null; 6],
            vec![
                Value::Int(3),
                Value::Decimal(Decimal::new(12_550, 2)),
                Value::Str("other".into()),
                Value::DateTime(t),
                Value::Bool(true),
                Value::Date(t.date_naive()),
            ],
        ];
        let exprs = [
            "now",
            "lead.n + 1",
            "lead.n * 2 - 1",
            "lead.n == ()",
            "lead.n != ()",
            "lead.n < 5",
            "lead.n >= 1",
            "lead.d > 100",
            "lead.d == 125.5",
            "lead.n == 3.0",
            "lead.s == \"other\"",
            "lead.s != \"x\"",
            "lead.s + \"!\"",
            "lead.t + hours(24)",
            "lead.t - days(60)",
            "now - lead.t <= hours(24)",
            "lead.b",
            "!lead.b",
            "lead.b && lead.n > 1",
            "lead.b || lead.n > 1",
            "lead.n == \"3\"",
            "if lead.b { lead.t - hours(24) } else { () }",
            "lead.day < lead.day",
            "lead.state",
            "lead.assignee == ()",
            "lead.s < \"p\"",
            "lead.t == ()",
            "minutes(90) > hours(1)",
            "1.5 + 2.5",
            "lead.n - 9223372036854775807 - 10",
        ];
        for fields in &records {
            for src in exprs {
                let mut scripts = Scripts::new(Arc::new(Calendar::always_open()), &[]).unwrap();
                let (id, _) = scripts.compile(src, &names).unwrap();
                let now = parse_instant("2022-11-15T08:00:00Z").unwrap();
                let rhai = scripts.eval(
                    id,
                    Vars {
                        lead: Lead(Arc::new(LeadData {
                            names: Arc::new(names.clone()),
                            fields: fields.clone(),
                            state: "assigned".into(),
                            assignee: None,
                            created_at: t,
                            entered_at: t,
                        })),
                        now,
                        input: None,
                        actor: None,
                    },
                );
                let Some(node) = scripts.native(id) else {
                    panic!("`{src}` has no fast path")
                };
                let env = super::Env {
                    fields,
                    state: "assigned",
                    assignee: None,
                    created_at: t,
                    entered_at: t,
                    now,
                };
                match (node.eval(&env), rhai) {
                    (Some(n), Eval::Value(r)) => {
                        assert_eq!(format!("{n:?}"), format!("{r:?}"), "`{src}` on {fields:?}")
                    }
                    (None, _) => {} // Rhai decides: same result by construction.
                    (Some(n), _) => panic!("`{src}`: native gave {n:?} where Rhai failed"),
                }
            }
        }
    }
}
