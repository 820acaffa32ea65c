//! Rhai: one sandboxed engine configuration, scripts compiled once at load.
//!
//! Scripts see `lead` (typed field values, read-only), `input` (a map),
//! `actor` (a map: id, role, zones, skills, capacity, load, attributes),
//! `now` (a datetime) and helpers: `minutes/hours/days(n)`,
//! `add_working_hours(t, n)`, `add_working_days(t, n)`, `is_working_time(t)`,
//! `date(t)`. Limits keep every evaluation to a few milliseconds at worst;
//! the module resolver is static, so scripts cannot read files or load
//! modules other than the workflow's own `rules/`.

use crate::calendar::Calendar;
use crate::value::Value;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rhai::module_resolvers::StaticModuleResolver;
use rhai::packages::Package;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Module, Scope, AST, INT};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};
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

fn sandbox(engine: &mut Engine) {
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_call_levels(24);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(64 * 1024);
    engine.set_max_array_size(10_000);
    engine.set_max_map_size(10_000);
    engine.set_max_modules(32);
    engine.set_max_variables(256);
    engine.set_max_functions(1024);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.set_optimization_level(rhai::OptimizationLevel::Simple);
}

fn register_types(engine: &mut Engine, calendar: Arc<Calendar>) {
    engine
        .register_type_with_name::<Instant>("datetime")
        .register_type_with_name::<Span>("duration")
        .register_type_with_name::<Day>("date")
        .register_type_with_name::<Lead>("lead")
        .register_indexer_get(|l: &mut Lead, name: &str| l.get(name))
        .register_type_with_name::<ActorView>("actor")
        .register_indexer_get(|a: &mut ActorView, name: &str| a.get(name))
        .register_get("in_minutes", |a: &mut Span| a.0.num_minutes() as INT)
        .register_get("in_hours", |a: &mut Span| a.0.num_hours() as INT)
        .register_get("in_days", |a: &mut Span| a.0.num_days() as INT);
    engine.register_global_module(types_module());
    // Needed by the type mismatches of `types_module`: with fast operators
    // on, Rhai's built-in fallback for different types would answer first.
    engine.set_fast_operators(false);
    let cal = calendar.clone();
    engine.register_fn("add_working_hours", move |t: Instant, n: INT| {
        n.checked_mul(60)
            .and_then(|m| cal.checked_add_working_minutes(t.0, m))
            .map(Instant)
            .ok_or_else(|| out_of_range(format!("add_working_hours({}, {n})", t.text())))
    });
    let cal = calendar.clone();
    engine.register_fn("add_working_days", move |t: Instant, n: INT| {
        cal.checked_add_working_days(t.0, n)
            .map(Instant)
            .ok_or_else(|| out_of_range(format!("add_working_days({}, {n})", t.text())))
    });
    let cal = calendar.clone();
    engine.register_fn("is_working_time", move |t: Instant| {
        cal.is_working_time(t.0)
    });
    let cal = calendar;
    engine.register_fn("date", move |t: Instant| {
        cal.checked_local(t.0)
            .map(|l| Day(l.date()))
            .ok_or_else(|| out_of_range(format!("date({})", t.text())))
    });
}

/// The functions and operators of leadflow's script types that do not
/// depend on a workflow's calendar (durations, instant arithmetic,
/// comparisons, the type mismatches below), built once per process and
/// shared by every engine: registering these few hundred functions anew for
/// each workflow was a third of `leadflow check`'s time.
fn types_module() -> rhai::Shared<Module> {
    static MODULE: std::sync::OnceLock<rhai::Shared<Module>> = std::sync::OnceLock::new();
    MODULE
        .get_or_init(|| {
            let mut m = Module::new();
            add_type_functions(&mut m);
            add_mismatches(&mut m);
            m.build_index();
            m.into()
        })
        .clone()
}

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn add_type_functions(m: &mut Module) {
    m.set_native_fn("minutes", |n: INT| {
        Duration::try_minutes(n)
            .map(Span)
            .ok_or_else(|| out_of_range(format!("minutes({n})")))
    });
    m.set_native_fn("hours", |n: INT| {
        Duration::try_hours(n)
            .map(Span)
            .ok_or_else(|| out_of_range(format!("hours({n})")))
    });
    m.set_native_fn("days", |n: INT| {
        Duration::try_days(n)
            .map(Span)
            .ok_or_else(|| out_of_range(format!("days({n})")))
    });
    m.set_native_fn("+", |a: Instant, b: Span| {
        a.0.checked_add_signed(b.0)
            .map(Instant)
            .ok_or_else(|| out_of_range(format!("{} + {}", a.text(), b.text())))
    });
    m.set_native_fn("-", |a: Instant, b: Span| {
        a.0.checked_sub_signed(b.0)
            .map(Instant)
            .ok_or_else(|| out_of_range(format!("{} - {}", a.text(), b.text())))
    });
    // Cannot overflow: two instants are at most about 524,000 years
    // apart, a duration holds 292 million.
    m.set_native_fn("-", |a: Instant, b: Instant| -> Fallible<Span> {
        Ok(Span(a.0 - b.0))
    });
    m.set_native_fn("+", |a: Span, b: Span| {
        a.0.checked_add(&b.0)
            .map(Span)
            .ok_or_else(|| out_of_range(format!("{} + {}", a.text(), b.text())))
    });
    m.set_native_fn("+", |a: Day, n: Span| {
        Duration::try_days(n.0.num_days())
            .and_then(|d| a.0.checked_add_signed(d))
            .map(Day)
            .ok_or_else(|| out_of_range(format!("{} + {}", a.0, n.text())))
    });
    m.set_native_fn("-", |a: Day, b: Day| -> Fallible<Span> {
        Ok(Span(a.0.signed_duration_since(b.0)))
    });
    m.set_native_fn("to_string", |a: &mut Instant| -> Fallible<String> {
        Ok(a.0.to_rfc3339())
    });
    m.set_native_fn("to_string", |a: &mut Day| -> Fallible<String> {
        Ok(a.0.to_string())
    });
    m.set_native_fn("to_string", |a: &mut Span| -> Fallible<String> {
        Ok(format!("{}m", a.0.num_minutes()))
    });
    m.set_native_fn("parse_datetime", |s: &str| -> Fallible<Instant> {
        crate::value::parse_instant(s).map(Instant).ok_or_else(|| {
            EvalAltResult::ErrorArithmetic(
                format!("parse_datetime: not an RFC 3339 instant: {s}"),
                rhai::Position::NONE,
            )
            .into()
        })
    });
    macro_rules! compare {
        ($t:ty) => {
            m.set_native_fn("<", |a: $t, b: $t| -> Fallible<bool> { Ok(a < b) });
            m.set_native_fn("<=", |a: $t, b: $t| -> Fallible<bool> { Ok(a <= b) });
            m.set_native_fn(">", |a: $t, b: $t| -> Fallible<bool> { Ok(a > b) });
            m.set_native_fn(">=", |a: $t, b: $t| -> Fallible<bool> { Ok(a >= b) });
            m.set_native_fn("==", |a: $t, b: $t| -> Fallible<bool> { Ok(a == b) });
            m.set_native_fn("!=", |a: $t, b: $t| -> Fallible<bool> { Ok(a != b) });
        };
    }
    compare!(Instant);
    compare!(Span);
    compare!(Day);
}

/// Ordering values of types that cannot be ordered together (`"20121" >
/// 50000`, a datetime with a number) is a script error (E_SCRIPT), not
/// Rhai's silent `false` (which would refuse every attempt as E_GUARD with
/// a misleading message). `()` (an empty field) still compares as false,
/// and `==`/`!=` keep Rhai's meaning (values of different types are
/// unequal). `leadflow check` reports the cases it can see (E030). Needs
/// the engine's fast operators off, or Rhai's built-in fallback for
/// different types would answer first.
fn add_mismatches(m: &mut Module) {
    fn fail(op: &str, a: &str, b: &str) -> Box<EvalAltResult> {
        EvalAltResult::ErrorArithmetic(
            format!("`{op}` cannot compare {a} with {b}: a type error in the script"),
            rhai::Position::NONE,
        )
        .into()
    }
    macro_rules! pair {
        ($a:ty, $an:literal, $b:ty, $bn:literal) => {
            m.set_native_fn("<", |_: $a, _: $b| -> Fallible<bool> {
                Err(fail("<", $an, $bn))
            });
            m.set_native_fn("<=", |_: $a, _: $b| -> Fallible<bool> {
                Err(fail("<=", $an, $bn))
            });
            m.set_native_fn(">", |_: $a, _: $b| -> Fallible<bool> {
                Err(fail(">", $an, $bn))
            });
            m.set_native_fn(">=", |_: $a, _: $b| -> Fallible<bool> {
                Err(fail(">=", $an, $bn))
            });
        };
    }
    macro_rules! against {
        ($a:ty, $an:literal; $($b:ty, $bn:literal);*) => {
            $(pair!($a, $an, $b, $bn); pair!($b, $bn, $a, $an);)*
        };
    }
    against!(ImmutableString, "string"; INT, "int"; f64, "decimal"; bool, "bool"; Instant, "datetime"; Day, "date"; Span, "duration");
    against!(INT, "int"; bool, "bool"; Instant, "datetime"; Day, "date"; Span, "duration");
    against!(f64, "decimal"; bool, "bool"; Instant, "datetime"; Day, "date"; Span, "duration");
    against!(bool, "bool"; Instant, "datetime"; Day, "date"; Span, "duration");
    against!(Instant, "datetime"; Day, "date"; Span, "duration");
    against!(Day, "date"; Span, "duration");
}

/// The script error of a date or duration operation whose result chrono
/// cannot represent: a Rhai arithmetic error (as for integer overflow),
/// which the engine refuses with `E_SCRIPT`, never a panic.
fn out_of_range(what: String) -> Box<EvalAltResult> {
    EvalAltResult::ErrorArithmetic(format!("{what} is out of range"), rhai::Position::NONE).into()
}

impl Instant {
    fn text(&self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
}

impl Span {
    /// `days(3)`, `hours(5)` or `minutes(90)`: as a script would write it.
    fn text(&self) -> String {
        let m = self.0.num_minutes();
        if m % 1440 == 0 {
            format!("days({})", m / 1440)
        } else if m % 60 == 0 {
            format!("hours({})", m / 60)
        } else {
            format!("minutes({m})")
        }
    }
}

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

/// Rhai's standard library, built once per process (building it is most of
/// the cost of creating an engine).
fn standard_package() -> rhai::Shared<Module> {
    static PACKAGE: std::sync::OnceLock<rhai::Shared<Module>> = std::sync::OnceLock::new();
    PACKAGE
        .get_or_init(|| rhai::packages::StandardPackage::new().as_shared_module())
        .clone()
}

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
fn unit_methods() -> &'static HashSet<String> {
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

/// A compile error with its 1-based line and column inside the script.
#[derive(Debug, Clone)]
pub struct ScriptError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// The compiled scripts of one workflow, with the engine that runs them.
pub struct Scripts {
    engine: Engine,
    asts: Vec<AST>,
    uses: Vec<Uses>,
    natives: Vec<Option<crate::native::Node>>,
    /// `rules::f` -> the numbers of arguments its definitions take.
    rule_arity: HashMap<String, Vec<usize>>,
    /// Findings inside the rules modules themselves: (module path, problem).
    module_problems: Vec<(String, ScriptProblem)>,
    /// Rules functions, for the native fast path to inline.
    rule_fns: crate::native::RuleFns,
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scripts({} compiled)", self.asts.len())
    }
}

/// The outcome of evaluating a script.
pub enum Eval {
    Value(Dynamic),
    /// `throw "message"`.
    Thrown(String),
    /// A runtime error or an exhausted limit.
    Failed(String),
}

impl Scripts {
    /// Build the engine and compile the rules modules (path, source). A
    /// module that fails to compile is reported with its path and position.
    pub fn new(
        calendar: Arc<Calendar>,
        rules: &[(&str, &str)],
    ) -> Result<Scripts, (String, ScriptError)> {
        let mut engine = Engine::new_raw();
        engine.register_global_module(standard_package());
        sandbox(&mut engine);
        register_types(&mut engine, calendar);
        let mut resolver = StaticModuleResolver::new();
        let mut merged = Module::new();
        let mut rule_arity: HashMap<String, Vec<usize>> = HashMap::new();
        let mut modules: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut module_problems = Vec::new();
        let mut rule_fns = crate::native::RuleFns::default();
        let mut asts = Vec::new();
        for (i, (path, src)) in rules.iter().enumerate() {
            let ast = engine
                .compile(src)
                .map_err(|e| (path.to_string(), parse_error(&e)))?;
            let module = Module::eval_ast_as_new(Scope::new(), &ast, &engine).map_err(|e| {
                (
                    path.to_string(),
                    ScriptError {
                        message: e.to_string(),
                        line: 1,
                        column: 1,
                    },
                )
            })?;
            rule_fns.add(i, &ast);
            let name = path.trim_end_matches(".rhai").to_string();
            let own = arities(&ast);
            for (f, n) in &own {
                let e = rule_arity.entry(format!("rules::{f}")).or_default();
                e.extend(n.iter().copied());
                e.sort_unstable();
                e.dedup();
            }
            modules.insert(name.clone(), own);
            asts.push((path.to_string(), ast));
            merged.combine(module.clone());
            resolver.insert(name, module);
            // Later modules may `import` earlier ones (and only those).
            engine.set_module_resolver(resolver.clone());
        }
        engine.set_module_resolver(resolver);
        engine.register_static_module("rules", merged.into());
        // The call graph across modules: every call inside a module must
        // name a function of the module, of a module it imports, of
        // `rules::` or of the standard library, with a number of arguments
        // one of its definitions takes.
        for (path, ast) in &asts {
            let mut imports: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
            ast.walk(&mut |p: &[rhai::ASTNode]| {
                if let Some(rhai::ASTNode::Stmt(rhai::Stmt::Import(x, _))) = p.last() {
                    if let rhai::Expr::StringConstant(target, _) = &x.0 {
                        let target = target.trim_end_matches(".rhai");
                        if let Some(fns) = modules.get(target) {
                            imports.insert(x.1.name.to_string(), fns.clone());
                        }
                    }
                }
                true
            });
            let local = arities(ast);
            let known = |name: &str, ns: &str| -> Option<Vec<usize>> {
                match ns {
                    "" => local.get(name).cloned(),
                    "rules" => rule_arity.get(&format!("rules::{name}")).cloned(),
                    alias => imports.get(alias).and_then(|m| m.get(name).cloned()),
                }
            };
            for p in lint_calls(ast, &known, false) {
                module_problems.push((path.clone(), p));
            }
        }
        Ok(Scripts {
            engine,
            asts: Vec::new(),
            uses: Vec::new(),
            natives: Vec::new(),
            rule_arity,
            module_problems,
            rule_fns,
        })
    }

    /// Compile an expression or script once; returns its id. The static
    /// checks (unknown functions, unknown `lead.` fields) go to `problems`.
    pub fn compile(
        &mut self,
        src: &str,
        fields: &HashMap<String, usize>,
    ) -> Result<(ScriptId, Vec<ScriptProblem>), ScriptError> {
        self.compile_typed(src, fields, &[])
    }

    /// [`Scripts::compile`] knowing the fields' types (by field id): also
    /// reports comparisons and arithmetic over `lead.*`, `input.*`,
    /// `actor.*`, `now` and literals whose types cannot go together.
    pub fn compile_typed(
        &mut self,
        src: &str,
        fields: &HashMap<String, usize>,
        types: &[crate::value::FieldType],
    ) -> Result<(ScriptId, Vec<ScriptProblem>), ScriptError> {
        let ast = self.engine.compile(src).map_err(|e| parse_error(&e))?;
        let mut problems = self.lint(&ast, fields);
        if !types.is_empty() {
            problems.extend(crate::types::check(&ast, fields, types));
            problems.sort_by_key(|p| p.position());
        }
        self.uses.push(Uses::of(&ast));
        self.natives
            .push(crate::native::compile(&ast, fields, &self.rule_fns));
        self.asts.push(ast);
        Ok((self.asts.len() - 1, problems))
    }

    fn lint(&self, ast: &AST, fields: &HashMap<String, usize>) -> Vec<ScriptProblem> {
        use rhai::{ASTNode, Expr};
        let local = arities(ast);
        let known = |name: &str, ns: &str| -> Option<Vec<usize>> {
            match ns {
                "" => local.get(name).cloned(),
                "rules" => self.rule_arity.get(&format!("rules::{name}")).cloned(),
                _ => None,
            }
        };
        let mut out = lint_calls(ast, &known, true);
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::Dot(bin, _, _))) = path.last() {
                if let (Expr::Variable(v, _, _), Some((prop, pos))) =
                    (&bin.lhs, first_property(&bin.rhs))
                {
                    if v.1.as_str() == "lead"
                        && !fields.contains_key(prop)
                        && !LEAD_BUILTINS.contains(&prop)
                    {
                        out.push(ScriptProblem::UnknownField {
                            name: prop.to_string(),
                            line: pos.line().unwrap_or(1),
                            column: pos.position().unwrap_or(1),
                        });
                    }
                }
            }
            true
        });
        out.sort_by_key(|p| p.position());
        out
    }

    /// Findings inside the rules modules (calls to unknown functions, wrong
    /// numbers of arguments, in-place methods used as values), each with
    /// the module's path.
    pub fn module_problems(&self) -> &[(String, ScriptProblem)] {
        &self.module_problems
    }

    /// Compile and evaluate a source text once (a clause of a guard, for
    /// "why not?"); a compile error is a failure.
    pub fn eval_source(&self, src: &str, vars: Vars) -> Eval {
        match self.engine.compile(src) {
            Ok(ast) => self.eval_ast(&ast, vars),
            Err(e) => Eval::Failed(format!("does not compile: {}", parse_error(&e).message)),
        }
    }

    /// The `lead.` properties a source text reads, in order of appearance,
    /// each once (none if it does not compile).
    pub fn lead_reads(&self, src: &str) -> Vec<String> {
        use rhai::{ASTNode, Expr};
        let Ok(ast) = self.engine.compile(src) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Expr(Expr::Dot(bin, _, _))) = path.last() {
                if let (Expr::Variable(v, _, _), Some((prop, _))) =
                    (&bin.lhs, first_property(&bin.rhs))
                {
                    if v.1.as_str() == "lead" && !out.iter().any(|p| p == prop) {
                        out.push(prop.to_string());
                    }
                }
            }
            true
        });
        out
    }

    /// The native fast path of script `id`, if it has one.
    pub fn native(&self, id: ScriptId) -> Option<&crate::native::Node> {
        self.natives[id].as_ref()
    }

    /// Which optional variables script `id` reads.
    pub fn uses(&self, id: ScriptId) -> Uses {
        self.uses[id]
    }

    /// Evaluate a compiled script with the standard variables.
    pub fn eval(&self, id: ScriptId, vars: Vars) -> Eval {
        self.eval_ast(&self.asts[id], vars)
    }

    fn eval_ast(&self, ast: &AST, vars: Vars) -> Eval {
        let mut scope = Scope::new();
        scope.push_constant("lead", vars.lead);
        scope.push_constant("now", Instant(vars.now));
        if let Some(input) = vars.input {
            scope.push_constant("input", input);
        }
        if let Some(actor) = vars.actor {
            scope.push_constant("actor", actor);
        }
        match self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast) {
            Ok(v) => Eval::Value(v),
            Err(e) => match *e {
                EvalAltResult::ErrorRuntime(v, _) => Eval::Thrown(v.to_string()),
                EvalAltResult::ErrorTooManyOperations(_) => Eval::Failed(
                    "the script exceeded its operation limit (an endless loop?)".into(),
                ),
                EvalAltResult::ErrorInFunctionCall(..) => unwrap_call_error(*e),
                other => Eval::Failed(other.to_string()),
            },
        }
    }
}

/// A `throw` inside rule functions calling each other arrives wrapped once
/// per call level: unwrap to the thrown message, or name the innermost failure.
fn unwrap_call_error(mut e: EvalAltResult) -> Eval {
    let mut names = Vec::new();
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, _, inner, _) => {
                names.push(name);
                e = *inner;
            }
            EvalAltResult::ErrorRuntime(v, _) => return Eval::Thrown(v.to_string()),
            EvalAltResult::ErrorTooManyOperations(_) => {
                return Eval::Failed(
                    "the script exceeded its operation limit (an endless loop?)".into(),
                )
            }
            other => return Eval::Failed(format!("in {}: {other}", names.join(" > "))),
        }
    }
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
fn arities(ast: &AST) -> HashMap<String, Vec<usize>> {
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
fn lint_calls(
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
fn first_property(e: &rhai::Expr) -> Option<(&str, rhai::Position)> {
    match e {
        rhai::Expr::Property(p, pos) => Some((p.2.as_str(), *pos)),
        rhai::Expr::Dot(b, _, _) | rhai::Expr::Index(b, _, _) => first_property(&b.lhs),
        _ => None,
    }
}

fn parse_error(e: &rhai::ParseError) -> ScriptError {
    ScriptError {
        message: e.0.to_string(),
        line: e.1.line().unwrap_or(1),
        column: e.1.position().unwrap_or(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(fields: Vec<Value>, names: &[&str]) -> Lead {
        let names = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        let t = crate::value::parse_instant("2022-11-14T09:00:00Z").unwrap();
        Lead(Arc::new(LeadData {
            names: Arc::new(names),
            fields,
            state: "assigned".into(),
            assignee: None,
            created_at: t,
            entered_at: t,
        }))
    }

    fn run(src: &str, l: Lead) -> Eval {
        let mut s = Scripts::new(Arc::new(Calendar::always_open()), &[]).unwrap();
        let (id, _) = s.compile(src, &l.0.names).unwrap();
        s.eval(
            id,
            Vars {
                lead: l,
                now: crate::value::parse_instant("2022-11-15T09:00:00Z").unwrap(),
                input: None,
                actor: None,
            },
        )
    }

    #[test]
    fn datetimes_compare_and_add() {
        let t = crate::value::parse_instant("2022-11-14T09:00:00Z").unwrap();
        let l = lead(
            vec![Value::DateTime(t), Value::Int(2)],
            &["appointment_at", "attempts"],
        );
        match run(
            "lead.appointment_at + hours(24) <= now && lead.attempts >= 1",
            l,
        ) {
            Eval::Value(v) => assert!(v.as_bool().unwrap()),
            _ => panic!("guard failed"),
        }
    }

    /// Every date and duration operation out of chrono's range is a script
    /// failure (E_SCRIPT) naming the operation and its values; before, each
    /// of these panicked.
    #[test]
    fn out_of_range_date_arithmetic_fails_the_script() {
        let max = DateTime::<Utc>::MAX_UTC;
        let l = lead(
            vec![
                Value::Date(NaiveDate::MAX),
                Value::DateTime(max),
                Value::Int(1_000_000_000_000),
            ],
            &["day", "at", "n"],
        );
        for (src, culprit) in [
            (
                "lead.day + days(1)",
                "+262142-12-31 + days(1) is out of range",
            ),
            ("days(lead.n)", "days(1000000000000) is out of range"),
            (
                "hours(lead.n * 1000)",
                "hours(1000000000000000) is out of range",
            ),
            (
                "minutes(9223372036854775807)",
                "minutes(9223372036854775807)",
            ),
            (
                "lead.at + minutes(1)",
                "+262142-12-31T23:59:59.999999999Z + minutes(1)",
            ),
            (
                "now - days(100000000)",
                "2022-11-15T09:00:00Z - days(100000000)",
            ),
            (
                "days(100000000000) + days(100000000000)",
                "days(100000000000) + days(100000000000) is out of range",
            ),
            ("add_working_days(lead.at, 1)", "add_working_days("),
            (
                "add_working_hours(now, 9223372036854775807)",
                "add_working_hours(",
            ),
            ("parse_datetime(\"soon\")", "not an RFC 3339 instant: soon"),
            (
                "fn f(d) { d + days(1) } f(lead.day)",
                "in f: +262142-12-31 + days(1)",
            ),
        ] {
            match run(src, l.clone()) {
                Eval::Failed(m) => assert!(m.contains(culprit), "`{src}`: {m}"),
                Eval::Value(v) => panic!("`{src}` gave {v:?}"),
                Eval::Thrown(m) => panic!("`{src}` threw {m} (E_GUARD, not E_SCRIPT)"),
            }
        }
        // `date(t)` at chrono's last instant in a zone ahead of UTC.
        let rome = Calendar::parse(
            "rome",
            "[calendar]\ntimezone = \"Europe/Rome\"\n[hours]\nmon = [\"09:00-18:00\"]\n",
        )
        .unwrap();
        let mut s = Scripts::new(Arc::new(rome), &[]).unwrap();
        let (id, _) = s.compile("date(lead.at)", &l.0.names).unwrap();
        let vars = Vars {
            lead: l,
            now: crate::value::parse_instant("2022-11-15T09:00:00Z").unwrap(),
            input: None,
            actor: None,
        };
        match s.eval(id, vars) {
            Eval::Failed(m) => assert!(m.contains("date(") && m.contains("out of range"), "{m}"),
            _ => panic!("date() at the last instant must fail"),
        }
    }

    #[test]
    fn endless_loop_is_a_failure_not_a_hang() {
        let start = std::time::Instant::now();
        match run("loop { }", lead(vec![], &[])) {
            Eval::Failed(m) => assert!(m.contains("operation limit"), "{m}"),
            _ => panic!("expected failure"),
        }
        assert!(start.elapsed() < std::time::Duration::from_millis(200));
    }

    #[test]
    fn throw_carries_the_message() {
        match run(
            r#"if lead.attempts < 1 { throw "log a contact attempt first" } true"#,
            lead(vec![Value::Int(0)], &["attempts"]),
        ) {
            Eval::Thrown(m) => assert_eq!(m, "log a contact attempt first"),
            _ => panic!("expected a throw"),
        }
    }

    /// Ordering values of types that cannot be ordered together is a script
    /// failure (E_SCRIPT), not a silent false (E_GUARD); an empty field
    /// still compares as false, and `==` of different types is false.
    #[test]
    fn ordering_mismatched_types_fails_the_script() {
        let t = crate::value::parse_instant("2022-11-14T09:00:00Z").unwrap();
        let l = lead(
            vec![Value::Str("20121".into()), Value::DateTime(t), Value::Null],
            &["postal_code", "at", "empty"],
        );
        for (src, culprit) in [
            ("lead.postal_code > 50000", "cannot compare string with int"),
            (
                "50000 <= lead.postal_code",
                "cannot compare int with string",
            ),
            ("lead.at < 3", "cannot compare datetime with int"),
            ("lead.at >= date(now)", "cannot compare datetime with date"),
            (
                "fn f(x) { x > 1.5 } f(lead.postal_code)",
                "cannot compare string with decimal",
            ),
        ] {
            match run(src, l.clone()) {
                Eval::Failed(m) => assert!(m.contains(culprit), "`{src}`: {m}"),
                Eval::Value(v) => panic!("`{src}` gave {v:?}"),
                Eval::Thrown(m) => panic!("`{src}` threw {m}"),
            }
        }
        for (src, want) in [
            ("lead.empty < 5", false),
            ("lead.empty >= now", false),
            ("lead.postal_code == 20121", false),
            ("lead.postal_code != 20121", true),
            ("lead.postal_code > \"1\"", true),
            ("2 > 1.5", true),
        ] {
            match run(src, l.clone()) {
                Eval::Value(v) => assert_eq!(v.as_bool(), Ok(want), "{src}"),
                _ => panic!("`{src}` failed"),
            }
        }
    }

    #[test]
    fn in_place_methods_are_known_from_the_signatures() {
        let unit = unit_methods();
        for m in [
            "trim",
            "make_upper",
            "make_lower",
            "pad",
            "clear",
            "truncate",
        ] {
            assert!(unit.contains(m), "{m}: {unit:?}");
        }
        for m in [
            "to_upper",
            "to_lower",
            "len",
            "contains",
            "remove",
            "pop",
            "parse_int",
        ] {
            assert!(!unit.contains(m), "{m}");
        }
        let mut s = Scripts::new(Arc::new(Calendar::always_open()), &[]).unwrap();
        let names: HashMap<String, usize> = [("s".to_string(), 0)].into();
        let unit_method = |p: &[ScriptProblem]| {
            p.iter()
                .filter(|p| matches!(p, ScriptProblem::UnitMethod { .. }))
                .count()
        };
        for (src, n) in [
            ("lead.s.trim() == \"\"", 1),
            ("lead.s.make_upper()", 1),
            ("let x = lead.s; x.trim(); x == \"\"", 0),
            ("let x = lead.s; x.trim().len()", 1),
            (
                "if lead.s != () { let x = lead.s; x.trim(); x.len() > 0 } else { false }",
                0,
            ),
            ("lead.s.to_upper() == \"A\"", 0),
        ] {
            let (_, p) = s.compile(src, &names).unwrap();
            assert_eq!(unit_method(&p), n, "{src}: {p:?}");
        }
    }

    #[test]
    fn lint_finds_unknown_functions_and_fields() {
        let mut s = Scripts::new(Arc::new(Calendar::always_open()), &[]).unwrap();
        let names: HashMap<String, usize> = [("vin".to_string(), 0)].into();
        let (_, p) = s
            .compile(
                "lead.vni.len() > 0 && frobnicate(1) && days(1) > hours(2)",
                &names,
            )
            .unwrap();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(matches!(&p[0], ScriptProblem::UnknownField { name, .. } if name == "vni"));
        assert!(
            matches!(&p[1], ScriptProblem::UnknownFunction { name, .. } if name == "frobnicate")
        );
        // A call that is the whole script is a statement, not an expression.
        let (_, whole) = s.compile("rules::nope(lead)", &names).unwrap();
        assert!(
            matches!(&whole[..], [ScriptProblem::UnknownFunction { name, .. }] if name == "rules::nope"),
            "{whole:?}"
        );
    }
}
