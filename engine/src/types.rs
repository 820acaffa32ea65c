//! Type inference for workflow scripts (E030): the types of `lead.<field>`
//! (from the field declarations), `input.<field>`, `actor.*`, `now`,
//! literals and the leadflow helpers are known, so an operator applied to
//! values that cannot go together is found at check time, not at run time:
//! `lead.postal_code > 50000` on a string field (Rhai would silently answer
//! false, refusing every attempt as E_GUARD), `now + 1` or `lead.day * 2`.
//! Unknown types (a rules function's result, an empty value) are never
//! reported.

use crate::script::ScriptProblem;
use crate::value::FieldType;
use rhai::{ASTNode, Expr, AST};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Int,
    Float,
    Bool,
    DateTime,
    Date,
    Duration,
    List,
    Unknown,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Float => "decimal",
            Ty::Bool => "bool",
            Ty::DateTime => "datetime",
            Ty::Date => "date",
            Ty::Duration => "duration",
            Ty::List => "list",
            Ty::Unknown => "unknown",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    fn of_field(t: FieldType) -> Ty {
        match t {
            FieldType::String | FieldType::Text | FieldType::Enum | FieldType::Actor => Ty::Str,
            FieldType::Int => Ty::Int,
            FieldType::Decimal => Ty::Float,
            FieldType::Bool => Ty::Bool,
            FieldType::Date => Ty::Date,
            FieldType::Datetime => Ty::DateTime,
            FieldType::List => Ty::List,
            FieldType::Link => Ty::Unknown,
        }
    }
}

struct Cx<'a> {
    fields: &'a HashMap<String, usize>,
    types: &'a [FieldType],
}

impl Cx<'_> {
    fn field(&self, name: &str) -> Ty {
        self.fields
            .get(name)
            .and_then(|&i| self.types.get(i))
            .map_or(Ty::Unknown, |&t| Ty::of_field(t))
    }

    /// The type of `e` and how to name it in a message.
    fn infer(&self, e: &Expr) -> (Ty, String) {
        match e {
            Expr::StringConstant(s, _) => (Ty::Str, format!("\"{s}\"")),
            Expr::InterpolatedString(..) => (Ty::Str, "a string".into()),
            Expr::IntegerConstant(n, _) => (Ty::Int, n.to_string()),
            Expr::FloatConstant(f, _) => (Ty::Float, f.to_string()),
            Expr::BoolConstant(b, _) => (Ty::Bool, b.to_string()),
            Expr::DynamicConstant(d, _) => {
                let t = if d.is_string() {
                    Ty::Str
                } else if d.is_int() {
                    Ty::Int
                } else if d.is_float() {
                    Ty::Float
                } else if d.is_bool() {
                    Ty::Bool
                } else if d.is_array() {
                    Ty::List
                } else {
                    Ty::Unknown
                };
                (t, d.to_string())
            }
            Expr::Array(..) => (Ty::List, "a list".into()),
            Expr::Variable(v, _, _) if v.1.as_str() == "now" && v.2.is_empty() => {
                (Ty::DateTime, "`now`".into())
            }
            Expr::Dot(bin, _, _) => {
                let (Expr::Variable(v, _, _), Expr::Property(p, _)) = (&bin.lhs, &bin.rhs) else {
                    return (Ty::Unknown, String::new());
                };
                let prop = p.2.as_str();
                let var = v.1.as_str();
                let ty = match var {
                    "lead" | "input" => match prop {
                        "state" | "assignee" if var == "lead" => Ty::Str,
                        "created_at" | "entered_at" if var == "lead" => Ty::DateTime,
                        _ => self.field(prop),
                    },
                    "actor" => match prop {
                        "id" | "role" => Ty::Str,
                        "zones" | "skills" => Ty::List,
                        "capacity" | "load" => Ty::Int,
                        _ => Ty::Unknown,
                    },
                    _ => Ty::Unknown,
                };
                (ty, format!("`{var}.{prop}`"))
            }
            Expr::FnCall(f, _) if f.namespace.is_empty() => {
                let name = f.name.as_str();
                if f.is_operator_call() {
                    return (self.operator(name, &f.args), String::new());
                }
                let ty = match name {
                    "minutes" | "hours" | "days" => Ty::Duration,
                    "date" => Ty::Date,
                    "add_working_hours" | "add_working_days" | "parse_datetime" => Ty::DateTime,
                    "is_working_time" => Ty::Bool,
                    _ => Ty::Unknown,
                };
                (ty, format!("`{name}(...)`"))
            }
            Expr::And(..) | Expr::Or(..) => (Ty::Bool, String::new()),
            _ => (Ty::Unknown, String::new()),
        }
    }

    /// The result type of an operator on well-typed operands (Unknown when
    /// the operands do not go together: that is reported where it occurs).
    fn operator(&self, op: &str, args: &[Expr]) -> Ty {
        let tys: Vec<Ty> = args.iter().map(|a| self.infer(a).0).collect();
        match (op, tys.as_slice()) {
            ("==" | "!=" | "<" | "<=" | ">" | ">=" | "!", _) => Ty::Bool,
            (_, [a, b]) => arithmetic(op, *a, *b).unwrap_or(Ty::Unknown),
            (_, [a]) if a.numeric() => *a,
            _ => Ty::Unknown,
        }
    }

    /// What is wrong with operator `op` on `args`, if anything.
    fn problem(&self, op: &str, args: &[Expr]) -> Option<String> {
        let [a, b] = args else { return None };
        let ((ta, na), (tb, nb)) = (self.infer(a), self.infer(b));
        if ta == Ty::Unknown || tb == Ty::Unknown {
            return None;
        }
        let show = |n: &str, t: Ty| {
            if n.is_empty() {
                t.name().to_string()
            } else {
                format!("{n} ({})", t.name())
            }
        };
        match op {
            "==" | "!=" | "<" | "<=" | ">" | ">=" => {
                let fits = ta == tb || (ta.numeric() && tb.numeric());
                if fits {
                    return None;
                }
                let outcome = if matches!(op, "==" | "!=") {
                    format!(
                        "always {} at run time",
                        if op == "==" { "false" } else { "true" }
                    )
                } else {
                    "a script error at run time (E_SCRIPT)".to_string()
                };
                Some(format!(
                    "`{op}` compares {} with {}: {outcome}",
                    show(&na, ta),
                    show(&nb, tb)
                ))
            }
            "+" | "-" | "*" | "/" | "%" => {
                let time = |t: Ty| matches!(t, Ty::DateTime | Ty::Date | Ty::Duration);
                // Strings concatenate with anything; numbers are Rhai's.
                if !(time(ta) || time(tb)) || ta == Ty::Str || tb == Ty::Str {
                    return None;
                }
                if arithmetic(op, ta, tb).is_some() {
                    return None;
                }
                Some(format!(
                    "`{op}` on {} and {}: no such operation (a script error at run time); datetimes and dates take `+`/`-` a duration (`days(n)`, `hours(n)`), and subtract each other",
                    show(&na, ta),
                    show(&nb, tb)
                ))
            }
            _ => None,
        }
    }
}

/// The result of arithmetic `op` on `a` and `b`, or None when there is no
/// such operation on those types.
fn arithmetic(op: &str, a: Ty, b: Ty) -> Option<Ty> {
    use Ty::*;
    Some(match (op, a, b) {
        ("+", DateTime, Duration) | ("-", DateTime, Duration) => DateTime,
        ("-", DateTime, DateTime) | ("-", Date, Date) => Duration,
        ("+", Duration, Duration) => Duration,
        ("+", Date, Duration) => Date,
        ("+", Str, _) | ("+", _, Str) => Str,
        (_, Int, Int) => Int,
        (_, x, y) if x.numeric() && y.numeric() => Float,
        (_, x, y)
            if matches!(x, DateTime | Date | Duration)
                || matches!(y, DateTime | Date | Duration) =>
        {
            return None
        }
        _ => Unknown,
    })
}

/// Every operator of `ast` applied to operands of known types that cannot
/// go together.
pub fn check(
    ast: &AST,
    fields: &HashMap<String, usize>,
    types: &[FieldType],
) -> Vec<ScriptProblem> {
    let cx = Cx { fields, types };
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(f, pos))) => Some((f, pos)),
            Some(ASTNode::Stmt(rhai::Stmt::FnCall(f, pos))) => Some((f, pos)),
            _ => None,
        };
        if let Some((f, pos)) = call {
            if f.is_operator_call() {
                if let Some(message) = cx.problem(f.name.as_str(), &f.args) {
                    out.push(ScriptProblem::Type {
                        op: f.name.to_string(),
                        message,
                        line: pos.line().unwrap_or(1),
                        column: pos.position().unwrap_or(1),
                    });
                }
            }
        }
        true
    });
    out
}
