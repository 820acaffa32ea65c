//! Static checks of a script: unknown functions, wrong numbers of
//! arguments, the result of an in-place method used as a value.

use super::engine::{register_types, standard_package};
use crate::calendar::Calendar;
use rhai::{Engine, AST};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Names every script may call without defining them (besides registered
/// functions): Rhai's language built-ins.
const LANGUAGE_BUILTINS: &[&str] = &[
    "type_of",
    "print",
    "debug",
    "is_def_var",
    "is_def_fn",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "throw",
];

/// Names of every function a script may call besides its rules modules:
/// the same for every workflow, so computed once.
fn base_functions() -> &'static HashSet<String> {
    static NAMES: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut engine = Engine::new_raw();
        engine.register_global_module(standard_package());
        register_types(&mut engine, Arc::new(Calendar::always_open()));
        let mut names: HashSet<String> = engine
            .gen_fn_signatures(true)
            .iter()
            .filter_map(|s| s.split('(').next())
            .map(|s| s.trim_start_matches("fn ").trim().to_string())
            .collect();
        names.extend(LANGUAGE_BUILTINS.iter().map(|s| s.to_string()));
        names
    })
}

/// Methods that change their receiver in place and return `()`
/// (`s.trim()`, `s.make_upper()`, `a.sort()`): every overload of the name
/// takes `&mut` and returns nothing, so using the result as a value
/// (`s.trim() == ""`) is always a mistake. Read from the signatures of the
/// standard library, computed once.
pub(super) fn unit_methods() -> &'static HashSet<String> {
    static NAMES: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut engine = Engine::new_raw();
        engine.register_global_module(standard_package());
        let mut unit: HashMap<String, bool> = HashMap::new();
        for sig in engine.gen_fn_signatures(true) {
            let Some((head, rest)) = sig.trim_start_matches("fn ").split_once('(') else {
                continue;
            };
            let (params, ret) = rest.split_once(')').unwrap_or((rest, ""));
            let ret = ret.trim().trim_start_matches("->").trim();
            let unit_ret = ret.is_empty() || ret == "()" || ret.starts_with("Result<()");
            let in_place = params.contains("&mut") && unit_ret;
            let e = unit.entry(head.trim().to_string()).or_insert(true);
            *e = *e && in_place;
        }
        unit.into_iter()
            .filter(|(n, u)| *u && !n.starts_with("set$") && !n.contains('='))
            .map(|(n, _)| n)
            .collect()
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScriptProblem {
    UnknownFunction {
        name: String,
        line: usize,
        column: usize,
    },
    UnknownField {
        name: String,
        line: usize,
        column: usize,
    },
    /// A script-defined function called with a number of arguments none of
    /// its definitions takes (Rhai: "Function not found" at run time).
    Arity {
        name: String,
        /// The numbers of parameters of its definitions.
        takes: Vec<usize>,
        given: usize,
        line: usize,
        column: usize,
    },
    /// The result of a method that changes its receiver in place and
    /// returns `()` is used as a value (`s.trim() == ""`).
    UnitMethod {
        name: String,
        line: usize,
        column: usize,
    },
    /// An operator applied to values whose types cannot go together
    /// (`lead.postal_code > 50000` on a string field, `now + 1`).
    Type {
        /// The operator (`>`, `+`, ...).
        op: String,
        message: String,
        line: usize,
        column: usize,
    },
}

impl ScriptProblem {
    /// 1-based (line, column) inside the script.
    pub fn position(&self) -> (usize, usize) {
        match self {
            ScriptProblem::UnknownFunction { line, column, .. }
            | ScriptProblem::UnknownField { line, column, .. }
            | ScriptProblem::Arity { line, column, .. }
            | ScriptProblem::UnitMethod { line, column, .. }
            | ScriptProblem::Type { line, column, .. } => (*line, *column),
        }
    }
}

/// Function name -> the numbers of parameters of its definitions in `ast`.
pub(super) fn arities(ast: &AST) -> HashMap<String, Vec<usize>> {
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for f in ast.iter_functions() {
        out.entry(f.name.to_string())
            .or_default()
            .push(f.params.len());
    }
    out
}

/// Check every call of `ast`: the function exists (a script function that
/// `known` finds by name and namespace, or the standard library), takes as
/// many arguments as given; and no in-place method's `()` result is used.
pub(super) fn lint_calls(
    ast: &AST,
    known: &dyn Fn(&str, &str) -> Option<Vec<usize>>,
    result_used: bool,
) -> Vec<ScriptProblem> {
    use rhai::{ASTNode, Expr, Stmt};
    let base = base_functions();
    let unit = unit_methods();
    // A workflow script's last top-level statement is its value (a guard's
    // verdict, a `set`'s value).
    let last = ast.statements().last().filter(|_| result_used);
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(f, pos)) | ASTNode::Stmt(Stmt::FnCall(f, pos)))
                if !f.is_operator_call() =>
            {
                let ns = f.namespace.to_string();
                let name = if ns.is_empty() {
                    f.name.to_string()
                } else {
                    format!("{ns}::{}", f.name)
                };
                let (line, column) = (pos.line().unwrap_or(1), pos.position().unwrap_or(1));
                match known(f.name.as_str(), &ns) {
                    Some(takes) if !takes.contains(&f.args.len()) => {
                        out.push(ScriptProblem::Arity {
                            name,
                            takes,
                            given: f.args.len(),
                            line,
                            column,
                        })
                    }
                    Some(_) => {}
                    None if ns.is_empty() && base.contains(&name) => {}
                    None => out.push(ScriptProblem::UnknownFunction { name, line, column }),
                }
            }
            Some(ASTNode::Expr(Expr::Dot(bin, _, _)))
                if !matches!(path.iter().rev().nth(1), Some(ASTNode::Expr(Expr::Dot(..)))) =>
            {
                // The last call of a chain (`a.b.trim()`) is the chain's
                // value; an earlier one (`s.trim().len()`) is always used.
                let mut calls = Vec::new();
                chain_calls(&bin.rhs, &mut calls);
                let n = calls.len();
                let parents = &path[..path.len() - 1];
                let used = value_is_used(parents)
                    || matches!((parents, last), ([ASTNode::Stmt(s)], Some(l)) if std::ptr::eq(*s, l));
                for (i, (name, pos)) in calls.into_iter().enumerate() {
                    if unit.contains(name) && (i + 1 < n || used) {
                        out.push(ScriptProblem::UnitMethod {
                            name: name.to_string(),
                            line: pos.line().unwrap_or(1),
                            column: pos.position().unwrap_or(1),
                        });
                    }
                }
            }
            _ => {}
        }
        true
    });
    out
}

/// The method calls of a dot chain's right-hand side, in order.
fn chain_calls<'a>(e: &'a rhai::Expr, out: &mut Vec<(&'a str, rhai::Position)>) {
    match e {
        rhai::Expr::MethodCall(f, pos) => out.push((f.name.as_str(), *pos)),
        rhai::Expr::Dot(b, _, _) => {
            // Only the top of a chain is visited by the walk; nested dots
            // are the rest of the same chain.
            chain_calls(&b.lhs, out);
            chain_calls(&b.rhs, out);
        }
        _ => {}
    }
}

/// Whether the value of an expression whose ancestors are `parents` is used:
/// as an operand, an argument, a condition, a variable's value. A statement
/// of its own (`s.trim();`) is not a use.
fn value_is_used(parents: &[rhai::ASTNode]) -> bool {
    use rhai::{ASTNode, Stmt};
    !matches!(
        parents.last(),
        Some(ASTNode::Stmt(
            Stmt::Expr(_) | Stmt::Block(..) | Stmt::Noop(..)
        )) | None
    )
}

/// The property a chain such as `.vin.len()` starts with.
pub(super) fn first_property(e: &rhai::Expr) -> Option<(&str, rhai::Position)> {
    match e {
        rhai::Expr::Property(p, pos) => Some((p.2.as_str(), *pos)),
        rhai::Expr::Dot(b, _, _) | rhai::Expr::Index(b, _, _) => first_property(&b.lhs),
        _ => None,
    }
}
