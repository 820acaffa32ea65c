//! Compiling a Rhai AST into a [`Node`] tree: the subset of expressions,
//! statements and calls the fast path accepts, rules functions inlined.

use super::{Builtin, Node, Op, RuleFns};
use chrono::Duration;
use rhai::{ASTFlags, Expr, Stmt, StmtBlock, Token, AST};
use std::collections::HashMap;

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
