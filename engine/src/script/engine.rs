//! The sandboxed Rhai engine: limits, the custom types (datetime,
//! duration, date, lead, actor) and their functions and operators, the
//! standard library.

use super::{ActorView, Day, Instant, Lead, Span, MAX_OPERATIONS};
use crate::calendar::Calendar;
use chrono::Duration;
use rhai::packages::Package;
use rhai::{Engine, EvalAltResult, ImmutableString, Module, INT};
use std::sync::Arc;

pub(super) fn sandbox(engine: &mut Engine) {
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

pub(super) fn register_types(engine: &mut Engine, calendar: Arc<Calendar>) {
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

/// Rhai's standard library, built once per process (building it is most of
/// the cost of creating an engine).
pub(super) fn standard_package() -> rhai::Shared<Module> {
    static PACKAGE: std::sync::OnceLock<rhai::Shared<Module>> = std::sync::OnceLock::new();
    PACKAGE
        .get_or_init(|| rhai::packages::StandardPackage::new().as_shared_module())
        .clone()
}
