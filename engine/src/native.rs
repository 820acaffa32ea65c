//! A fast path for the small expressions workflows are full of (`now`,
//! `lead.attempts + 1`, `now - lead.assigned_at <= hours(24)`,
//! `lead.x == ()`): compiled from the Rhai AST into a tiny tree and evaluated
//! without building a Rhai scope. Anything outside the subset, including any
//! type combination whose Rhai behaviour is not mirrored exactly here, returns
//! `None` at compile or run time and the caller runs Rhai instead, so results
//! never differ from Rhai's.

use crate::eval::Actor;
use crate::script::{Day, Instant, Span};
use crate::value::Value;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rhai::{ASTFlags, Dynamic, Expr, FnAccess, Shared, Stmt, StmtBlock, Token, AST};
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

/// The functions of the workflow's rules modules, which the fast path
/// inlines when they stay in the subset.
#[derive(Debug, Default, Clone)]
pub struct RuleFns {
    /// (index of the rules module, definition, body statements).
    list: Vec<(usize, Shared<rhai::ScriptFuncDef>, Vec<Stmt>)>,
}

fn at(p: rhai::Position) -> Option<(usize, usize)> {
    Some((p.line()?, p.position()?))
}

impl RuleFns {
    /// Add the functions of one rules module. Function bodies are only
    /// reachable through `AST::walk` (the body type is not exported): each
    /// top-level body statement is given to the function whose body spans
    /// its position. If any statement cannot be placed exactly, the module's
    /// functions are left to Rhai.
    pub fn add(&mut self, module: usize, ast: &AST) {
        let defs: Vec<Shared<rhai::ScriptFuncDef>> = ast.iter_fn_def().cloned().collect();
        let spans: Option<Vec<_>> = defs
            .iter()
            .map(|d| Some((at(d.body.start_position())?, at(d.body.end_position())?)))
            .collect();
        let Some(spans) = spans else { return };
        let mut bodies: Vec<Vec<Stmt>> = vec![Vec::new(); defs.len()];
        let top = ast.statements().len();
        let (mut seen, mut last, mut ok) = (0, 0, true);
        ast.walk(&mut |path: &[rhai::ASTNode]| {
            if let [rhai::ASTNode::Stmt(s)] = path {
                seen += 1;
                if seen > top {
                    let place = at(s.position())
                        .and_then(|p| spans.iter().position(|(a, b)| *a <= p && p <= *b));
                    match place {
                        Some(i) if i >= last => {
                            last = i;
                            bodies[i].push((*s).clone());
                        }
                        _ => ok = false,
                    }
                }
            }
            ok
        });
        if ok {
            self.list
                .extend(defs.into_iter().zip(bodies).map(|(d, b)| (module, d, b)));
        }
    }

    /// The one function `name` of `arity` params: called as `rules::name`
    /// (`module` None: public ones of every module, which must not clash) or
    /// without namespace from inside `module`.
    fn find(
        &self,
        module: Option<usize>,
        name: &str,
        arity: usize,
    ) -> Option<(usize, &rhai::ScriptFuncDef, &[Stmt])> {
        let mut found = self.list.iter().filter(|(m, f, _)| {
            f.name.as_str() == name
                && f.params.len() == arity
                && match module {
                    None => f.access == FnAccess::Public,
                    Some(x) => *m == x,
                }
        });
        let (m, f, body) = found.next()?;
        if found.next().is_some() || f.this_type.is_some() {
            return None;
        }
        Some((*m, f.as_ref(), body))
    }

    /// Whether any rules function has this name (it would shadow a builtin).
    fn has(&self, name: &str) -> bool {
        self.list.iter().any(|(_, f, _)| f.name.as_str() == name)
    }
}

/// What a variable name is bound to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Var {
    Lead,
    Now,
    Actor,
}

/// Compile context: field ids, rules functions, visible variables.
struct Cx<'a> {
    fields: &'a HashMap<String, usize>,
    fns: &'a RuleFns,
    vars: Vec<(String, Var)>,
    /// The rules module whose function is being inlined (None: top level).
    module: Option<usize>,
    depth: usize,
}

/// Inlining depth limit (recursion is left to Rhai).
const MAX_DEPTH: usize = 8;

impl Cx<'_> {
    fn var(&self, name: &str) -> Option<Var> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// Compile a script consisting of one expression in the subset.
pub fn compile(ast: &AST, fields: &HashMap<String, usize>, fns: &RuleFns) -> Option<Node> {
    if ast.has_functions() {
        return None;
    }
    let cx = Cx {
        fields,
        fns,
        vars: vec![
            ("lead".into(), Var::Lead),
            ("now".into(), Var::Now),
            ("actor".into(), Var::Actor),
        ],
        module: None,
        depth: 0,
    };
    match ast.statements() {
        [s] => stmt(s, &cx),
        _ => None,
    }
}

fn block(b: &StmtBlock, cx: &Cx) -> Option<Node> {
    match b.statements() {
        [] => Some(Node::Unit),
        [s] => stmt(s, cx),
        list => Some(Node::Block(
            list.iter().map(|s| stmt(s, cx)).collect::<Option<_>>()?,
        )),
    }
}

fn stmt(s: &Stmt, cx: &Cx) -> Option<Node> {
    match s {
        Stmt::Expr(e) => expr(e, cx),
        Stmt::FnCall(f, _) => call(f, cx),
        Stmt::If(fc, _) => Some(Node::If(
            Box::new(expr(&fc.expr, cx)?),
            Box::new(block(&fc.body, cx)?),
            Box::new(block(&fc.branch, cx)?),
        )),
        Stmt::Return(Some(e), flags, _) if flags.contains(ASTFlags::BREAK) => match &**e {
            Expr::StringConstant(m, _) => Some(Node::Throw(m.to_string())),
            _ => None,
        },
        _ => None,
    }
}

fn expr(e: &Expr, cx: &Cx) -> Option<Node> {
    Some(match e {
        Expr::Unit(_) => Node::Unit,
        Expr::BoolConstant(b, _) => Node::Bool(*b),
        Expr::IntegerConstant(i, _) => Node::Int(*i),
        Expr::FloatConstant(f, _) => Node::Float(**f),
        Expr::StringConstant(s, _) => Node::Str(s.to_string()),
        Expr::Variable(v, _, _) if v.2.is_empty() && cx.var(v.1.as_str()) == Some(Var::Now) => {
            Node::Now
        }
        Expr::Dot(b, _, _) => match (&b.lhs, &b.rhs) {
            (Expr::Variable(v, _, _), rhs) if v.2.is_empty() => {
                match (cx.var(v.1.as_str())?, rhs) {
                    (Var::Lead, Expr::Property(p, _)) => {
                        let name = p.2.as_str();
                        match cx.fields.get(name) {
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
                    (Var::Actor, Expr::Property(p, _)) if p.2.as_str() == "id" => Node::ActorId,
                    (Var::Actor, Expr::Dot(chain, _, _)) => match (&chain.lhs, &chain.rhs) {
                        (Expr::Property(p, _), Expr::MethodCall(f, _))
                            if p.2.as_str() == "zones"
                                && f.name.as_str() == "contains"
                                && f.namespace.is_empty()
                                && f.args.len() == 1 =>
                        {
                            Node::ZonesContain(Box::new(expr(&f.args[0], cx)?))
                        }
                        _ => return None,
                    },
                    _ => return None,
                }
            }
            _ => return None,
        },
        Expr::And(list, _) => Node::And(list.iter().map(|e| expr(e, cx)).collect::<Option<_>>()?),
        Expr::Or(list, _) => Node::Or(list.iter().map(|e| expr(e, cx)).collect::<Option<_>>()?),
        Expr::FnCall(f, _) => call(f, cx)?,
        Expr::Stmt(b) => block(b, cx)?,
        _ => return None,
    })
}

fn call(f: &rhai::FnCallExpr, cx: &Cx) -> Option<Node> {
    let args = f.args.as_slice();
    if let Some(tok) = &f.op_token {
        if !f.namespace.is_empty() {
            return None;
        }
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
                return Some(Node::Not(Box::new(expr(&args[0], cx)?)))
            }
            _ => return None,
        };
        return match args {
            [a, b] => Some(Node::Bin(
                op,
                Box::new(expr(a, cx)?),
                Box::new(expr(b, cx)?),
            )),
            _ => None,
        };
    }
    let name = f.name.as_str();
    let rules = match (cx.module, f.namespace.is_empty()) {
        // `rules::f(..)` at the top level.
        (None, false) if f.namespace.to_string() == "rules" => Some(None),
        // `f(..)` inside a rules module: its own functions first.
        (Some(m), true) if cx.fns.has(name) => Some(Some(m)),
        (_, true) => None,
        _ => return None,
    };
    if let Some(module) = rules {
        return inline(f, module, cx);
    }
    if cx.fns.has(name) {
        return None;
    }
    let unit: fn(i64) -> Option<Duration> = match (name, args.len()) {
        ("minutes", 1) => Duration::try_minutes,
        ("hours", 1) => Duration::try_hours,
        ("days", 1) => Duration::try_days,
        _ => return None,
    };
    Some(Node::Duration(unit, Box::new(expr(&args[0], cx)?)))
}

/// A rules function called with plain variables (`lead`, `now`, `actor`,
/// or parameters bound to them): its body, compiled with the parameters
/// bound to what the caller passed. Pure, so inlining changes nothing.
fn inline(f: &rhai::FnCallExpr, module: Option<usize>, cx: &Cx) -> Option<Node> {
    if cx.depth >= MAX_DEPTH {
        return None;
    }
    let (m, def, list) = cx.fns.find(module, f.name.as_str(), f.args.len())?;
    let vars = def
        .params
        .iter()
        .zip(f.args.iter())
        .map(|(p, a)| match a {
            Expr::Variable(v, _, _) if v.2.is_empty() => {
                Some((p.to_string(), cx.var(v.1.as_str())?))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    let inner = Cx {
        fields: cx.fields,
        fns: cx.fns,
        vars,
        module: Some(m),
        depth: cx.depth + 1,
    };
    // A final `return x` is the body's value.
    let (last, rest) = match list.split_last() {
        Some((Stmt::Return(Some(e), flags, _), rest)) if !flags.contains(ASTFlags::BREAK) => {
            (Some(expr(e.as_ref(), &inner)?), rest)
        }
        _ => (None, list),
    };
    let mut nodes = rest
        .iter()
        .map(|s| stmt(s, &inner))
        .collect::<Option<Vec<_>>>()?;
    nodes.extend(last);
    Some(match nodes.len() {
        0 => Node::Unit,
        1 => nodes.pop()?,
        _ => Node::Block(nodes),
    })
}

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
            "lead.d",
            "lead.day",
            "hours(2)",
            "lead.s",
            "0.1 + 0.2",
            // Out of range: Rhai's error, never a panic on the fast path
            // (`days(200000000000)` panicked in it before).
            "days(200000000000)",
            "hours(9223372036854775807)",
            "lead.t + days(100000000)",
            "lead.t - days(100000000)",
            "days(106751991167) + days(106751991167)",
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
                    actor: None,
                };
                match (node.eval(&env), rhai) {
                    (Some(n), Eval::Value(r)) => {
                        assert_eq!(format!("{n:?}"), format!("{r:?}"), "`{src}` on {fields:?}");
                        assert_eq!(
                            node.run_value(&env),
                            Some(Ok(crate::script::from_dynamic(&r))),
                            "`{src}` on {fields:?} as a field value"
                        );
                    }
                    (None, _) => {} // Rhai decides: same result by construction.
                    (Some(n), _) => panic!("`{src}`: native gave {n:?} where Rhai failed"),
                }
            }
        }
    }

    /// At the bounds of chrono and i64 the fast path either gives exactly
    /// Rhai's value or hands the expression to Rhai (whose error is then
    /// the one the engine reports): it never panics and never disagrees.
    mod bounds {
        use super::*;
        use chrono::{DateTime, NaiveDate, Utc};
        use proptest::prelude::*;

        const EXPRS: &[&str] = &[
            "lead.t + days(lead.n)",
            "lead.t - hours(lead.n)",
            "lead.t + minutes(lead.n)",
            "days(lead.n) + days(lead.n)",
            "now - lead.t",
            "lead.t - now <= hours(lead.n)",
            "lead.n + lead.n",
            "lead.n * lead.n",
            "lead.n - 1",
            "lead.day < lead.day",
        ];

        fn instant() -> impl Strategy<Value = DateTime<Utc>> {
            prop_oneof![
                Just(DateTime::<Utc>::MIN_UTC),
                Just(DateTime::<Utc>::MAX_UTC),
                (-8_000_000_000_000_i64..8_000_000_000_000)
                    .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default()),
            ]
        }

        fn int() -> impl Strategy<Value = i64> {
            prop_oneof![
                Just(i64::MIN),
                Just(i64::MAX),
                Just(106_751_991_167),
                Just(106_751_991_168),
                Just(1 << 40),
                any::<i64>(),
                -100_000_000_i64..100_000_000,
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(
                std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
            ))]
            #[test]
            fn native_agrees_with_rhai_at_the_bounds(
                which in 0..EXPRS.len(),
                n in int(),
                t in instant(),
            ) {
                let src = EXPRS[which];
                let names: HashMap<String, usize> = ["n", "t", "day"]
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.to_string(), i))
                    .collect();
                let fields = vec![
                    Value::Int(n),
                    Value::DateTime(t),
                    Value::Date(NaiveDate::MAX),
                ];
                let mut scripts = Scripts::new(Arc::new(Calendar::always_open()), &[]).unwrap();
                let (id, _) = scripts.compile(src, &names).unwrap();
                let now = parse_instant("2026-01-01T00:00:00Z").unwrap();
                let node = scripts.native(id).expect("in the subset");
                let env = super::super::Env {
                    fields: &fields,
                    state: "s",
                    assignee: None,
                    created_at: now,
                    entered_at: now,
                    now,
                    actor: None,
                };
                let native = node.run_value(&env);
                let rhai = scripts.eval(
                    id,
                    Vars {
                        lead: Lead(Arc::new(LeadData {
                            names: Arc::new(names.clone()),
                            fields: fields.clone(),
                            state: "s".into(),
                            assignee: None,
                            created_at: now,
                            entered_at: now,
                        })),
                        now,
                        input: None,
                        actor: None,
                    },
                );
                match (native, rhai) {
                    (None, _) => {}
                    (Some(Ok(v)), Eval::Value(r)) => {
                        prop_assert_eq!(v, crate::script::from_dynamic(&r), "`{}`", src)
                    }
                    (Some(n), _) => prop_assert!(false, "`{}`: native gave {:?}, Rhai did not", src, n),
                }
            }
        }
    }

    /// Rules functions inlined by the fast path give what Rhai gives:
    /// values, `throw` messages, `actor.id` and `actor.zones.contains`.
    #[test]
    fn inlined_rules_agree_with_rhai() {
        use crate::eval::Actor;
        use crate::script::ActorView;
        let rules = r#"
fn dealer_matches(lead, actor) {
    if lead.dealer != () {
        actor.id == lead.dealer
    } else {
        lead.province != () && actor.zones.contains(lead.province)
    }
}
fn require_attempt(lead) {
    if lead.n < 1 {
        throw "log at least one contact attempt first";
    }
    true
}
fn can_make(lead, now) {
    require_attempt(lead);
    if lead.t <= now {
        throw "the appointment must be in the future";
    }
    true
}
fn early(lead) {
    return lead.n + 1;
}
"#;
        let names: HashMap<String, usize> = ["n", "t", "dealer", "province"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        let t = parse_instant("2022-11-14T09:00:00Z").unwrap();
        let now = parse_instant("2022-11-10T08:00:00Z").unwrap();
        let records = [
            vec![Value::Null; 4],
            vec![
                Value::Int(2),
                Value::DateTime(t),
                Value::Str("d1".into()),
                Value::Null,
            ],
            vec![
                Value::Int(0),
                Value::DateTime(now),
                Value::Null,
                Value::Str("MO".into()),
            ],
            vec![
                Value::Int(1),
                Value::DateTime(now),
                Value::Null,
                Value::Str("BO".into()),
            ],
        ];
        let actor = Actor {
            id: "d1".into(),
            role: "dealer".into(),
            zones: vec!["MO".into(), "RE".into()],
            ..Actor::default()
        };
        let exprs = [
            "rules::dealer_matches(lead, actor)",
            "rules::require_attempt(lead)",
            "rules::can_make(lead, now)",
            "rules::early(lead)",
        ];
        let mut scripts = Scripts::new(
            Arc::new(Calendar::always_open()),
            &[("rules/t.rhai", rules)],
        )
        .unwrap();
        for src in exprs {
            let (id, _) = scripts.compile(src, &names).unwrap();
            let Some(node) = scripts.native(id) else {
                panic!("`{src}` has no fast path")
            };
            for (k, fields) in records.iter().enumerate() {
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
                        actor: Some(ActorView(Arc::new(actor.clone()))),
                    },
                );
                let env = super::Env {
                    fields,
                    state: "assigned",
                    assignee: None,
                    created_at: t,
                    entered_at: t,
                    now,
                    actor: Some(&actor),
                };
                match (node.run(&env), rhai) {
                    (Some(Ok(n)), Eval::Value(r)) => {
                        assert_eq!(format!("{n:?}"), format!("{r:?}"), "`{src}` on {fields:?}")
                    }
                    (Some(Err(n)), Eval::Thrown(r)) => assert_eq!(n, r, "`{src}` on {fields:?}"),
                    // Empty fields: comparisons with () are left to Rhai.
                    (None, _) if k == 0 => {}
                    (None, _) => panic!("`{src}` fell back to Rhai on {fields:?}"),
                    (Some(n), _) => panic!("`{src}`: native gave {n:?} where Rhai did not"),
                }
            }
        }
        // Not inlined: a call with an expression argument, recursion.
        let (id, _) = scripts
            .compile("rules::early(lead.n)", &names)
            .unwrap_or((0, vec![]));
        assert!(scripts.native(id).is_none() || id == 0);
    }
}
