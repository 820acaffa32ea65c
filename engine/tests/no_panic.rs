//! Bad input never panics: arbitrary workflow text through the loader,
//! mutations of the shipped workflows, arbitrary Rhai through guards with
//! the limits set, and date, duration and number arithmetic at the bounds
//! of chrono, i64 and decimals through scripts and field input.
//!
//! Case counts are kept small so the suite stays fast; `PROPTEST_CASES=N`
//! raises every one of them for a long run (docs/reliability.md).

use chrono::{DateTime, NaiveDate, Utc};
use leadflow_engine::{
    create, fire, fire_timer, load, Actor, Code, Ctx, Project, Record, SourceFile, Value,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::path::Path;
use std::sync::OnceLock;

/// `default` cases, or `PROPTEST_CASES` when set.
fn cases(default: u32) -> ProptestConfig {
    match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => ProptestConfig::with_cases(n),
        None => ProptestConfig::with_cases(default),
    }
}

const BASE: &str = r#"
[workflow]
id = "p"
initial = "open"
[fields.note]
type = "text"
[fields.n]
type = "int"
default = 0
[states.open]
[states.done]
final = true
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
input = ["note"]
guard = "GUARD"
"#;

fn project(text: String) -> Project {
    Project {
        workflows: vec![SourceFile::new("workflows/p.toml", text)],
        ..Project::default()
    }
}

/// Fragments that make plausible-looking workflow text, so mutations reach
/// deep into the loader rather than failing at the first byte.
fn workflowish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "[workflow]\n",
        "id = \"p\"\n",
        "initial = \"open\"\n",
        "[states.open]\n",
        "[states.done]\nfinal = true\n",
        "[fields.x]\ntype = \"enum\"\n",
        "values = []\n",
        "type = \"int\"\n",
        "pattern = \"(\"\n",
        "[transitions.t]\n",
        "from = \"*\"\n",
        "from = [\"nope\"]\n",
        "to = \"done\"\n",
        "by = [\"a\"]\n",
        "guard = \"lead.x >\"\n",
        "do = [{ set = \"x\", value = 1 }]\n",
        "do = [{ spawn = \"q\", map = { y = \"x\" } }]\n",
        "[timers.z]\n",
        "in = [\"open\"]\n",
        "after = \"24wh\"\n",
        "after = \"xx\"\n",
        "fire = \"t\"\n",
        "at = \"now\"\n",
        "calendar = \"it\"\n",
        "rules = [\"rules/none.rhai\"]\n",
        "rearm = [\"q\"]\n",
        "\u{e8}\u{1F600}",
        "= = =\n",
        "\"\n",
    ]);
    prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn loader_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = load(&project(text));
    }

    #[test]
    fn loader_never_panics_on_workflowish_text(text in workflowish()) {
        let loaded = load(&project(text));
        for d in &loaded.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1);
        }
    }

    #[test]
    fn guards_never_panic_and_stay_fast(guard in prop::sample::select(vec![
        "loop {}",
        "let x = []; loop { x.push(1) }",
        "let s = \"a\"; loop { s += s }",
        "fn f(n) { f(n + 1) } f(0)",
        "lead.nope",
        "1 / 0",
        "input.note.len() > 2",
        "throw 42",
        "()",
        "[1,2,3]",
        "lead.n + \"x\"",
        "now - now > hours(1)",
        "let m = #{}; for i in 0..100000 { m[i.to_string()] = i }",
        "true",
        "timestamp() + 1.0e300 > timestamp()",
        "timestamp() - 9223372036854775807 < timestamp()",
        "(-9223372036854775807 - 1).abs() > 0",
        "9223372036854775807 + lead.n > 0",
        "2 ** 64 > 0",
        "(1.0e300 * 1.0e300).to_int() > 0",
        "parse_int(\"99999999999999999999\") > 0",
        "for i in range(0, 10, 0) {} true",
        "\"x\".pad(9223372036854775807, \"y\"); true",
        "[1].pad(9223372036854775807, 0); true",
        "\"abc\".sub_string(-9223372036854775807 - 1, 9223372036854775807) == \"\"",
        "days(9223372036854775807) > hours(1)",
        "now + days(106751991167) > now",
        "add_working_days(now, 9223372036854775807) > now",
        "date(now) + days(100000000) > date(now)",
    ]), note in "\\PC{0,40}") {
        let text = BASE.replace("GUARD", &guard.replace('"', "\\\""));
        let loaded = load(&project(text));
        if let Some(wf) = loaded.set.get("p") {
            let a = Actor { id: "a".into(), role: "agent".into(), ..Actor::default() };
            let ctx = Ctx { now: "2026-01-01T00:00:00Z".parse().unwrap(), actor: &a, directory: &[] };
            let rec = create(wf, &[], ctx).unwrap().record;
            let started = std::time::Instant::now();
            let _ = fire(wf, &rec, "close", &[("note".into(), Value::Str(note))], ctx);
            prop_assert!(started.elapsed() < std::time::Duration::from_millis(500), "guard `{}` took {:?}", guard, started.elapsed());
        }
    }
}

// ---------------------------------------------------------------------------
// Mutations of the shipped workflows.

/// The repository's workflows, rules and calendars, read once.
fn shipped() -> &'static (Vec<(String, String)>, Project) {
    static SHIPPED: OnceLock<(Vec<(String, String)>, Project)> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |dir: &str, ext: &str| -> Vec<SourceFile> {
            let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect();
            files.sort();
            files
                .iter()
                .map(|p| {
                    let name = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
                    SourceFile::new(&name, std::fs::read_to_string(p).unwrap())
                })
                .collect()
        };
        let workflows: Vec<(String, String)> = read("workflows", "toml")
            .into_iter()
            .map(|f| (f.path, f.text))
            .collect();
        let base = Project {
            workflows: vec![],
            rules: read("rules", "rhai"),
            calendars: read("calendars", "toml"),
        };
        (workflows, base)
    })
}

/// One edit of a text: a byte replaced, a line dropped, duplicated or
/// swapped with the next, a fragment inserted, the text cut short.
#[derive(Debug, Clone)]
enum Edit {
    Byte(usize, u8),
    DropLine(usize),
    DupLine(usize),
    SwapLines(usize),
    Insert(usize, &'static str),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let fragment = prop::sample::select(vec![
        "\n",
        "\"",
        "]",
        "[",
        "=",
        "{",
        "}",
        ",",
        "#",
        "\u{e8}",
        "999999999999d",
        "-1",
        "9223372036854775807",
        "+262142-12-31",
        " days(1000000000000) ",
        "lead.",
        "rules::",
        "[states.x]\n",
        "from = \"*\"\n",
        "final = true\n",
    ]);
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Byte(i, b)),
        any::<usize>().prop_map(Edit::DropLine),
        any::<usize>().prop_map(Edit::DupLine),
        any::<usize>().prop_map(Edit::SwapLines),
        (any::<usize>(), fragment).prop_map(|(i, f)| Edit::Insert(i, f)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Apply edits to text, always yielding a string (bytes that break UTF-8
/// are replaced, as a reader of a damaged file would see them).
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        let lines =
            |b: &[u8]| -> Vec<Vec<u8>> { b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect() };
        match *e {
            Edit::Byte(i, b) if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] = b;
            }
            Edit::Insert(i, f) => {
                let i = i % (bytes.len() + 1);
                bytes.splice(i..i, f.bytes());
            }
            Edit::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            Edit::DropLine(i) | Edit::DupLine(i) | Edit::SwapLines(i) => {
                let mut l = lines(&bytes);
                let i = i % l.len();
                match e {
                    Edit::DropLine(_) => {
                        l.remove(i);
                    }
                    Edit::DupLine(_) => {
                        let x = l[i].clone();
                        l.insert(i, x);
                    }
                    _ if i + 1 < l.len() => l.swap(i, i + 1),
                    _ => {}
                }
                bytes = l.join(&b'\n');
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(cases(48))]

    /// Any shipped workflow, mutated: the loader answers with diagnostics
    /// (at valid positions), never a panic.
    #[test]
    fn loader_never_panics_on_mutated_shipped_workflows(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let (workflows, base) = shipped();
        let (name, text) = pick.get(workflows);
        let mut project = base.clone();
        project.workflows = vec![SourceFile::new(name, mutate(text, &edits))];
        let loaded = load(&project);
        for d in &loaded.diagnostics {
            prop_assert!(d.line >= 1 && d.column >= 1, "{:?}", d);
        }
    }
}

// ---------------------------------------------------------------------------
// Arithmetic at the bounds, through scripts, timers and field input.

const BOUNDS: &str = r#"
[workflow]
id = "b"
initial = "open"

[fields.day]
type = "date"
[fields.at]
type = "datetime"
[fields.n]
type = "int"
[fields.amount]
type = "decimal"
[fields.out]
type = "datetime"
[fields.outday]
type = "date"
[fields.k]
type = "int"
[fields.x]
type = "decimal"

[states.open]
[states.done]
final = true

[transitions.calc]
from = ["open"]
by = ["agent"]
input = ["n", "day", "at", "amount"]
do = [{ set = "OUT", expr = "EXPR" }]

[transitions.close]
from = ["open"]
to = "done"
by = ["agent", "system"]

[timers.due]
in = ["open"]
at = "if lead.day == () { () } else { lead.day + days(1) }"
do = [{ notify = "due" }]

[timers.after]
in = ["open"]
after = "30d"
since = "at"
fire = "close"
"#;

/// Expressions over the bound values, each with the field it sets.
const EXPRS: &[(&str, &str)] = &[
    ("out", "lead.at + days(lead.n)"),
    ("out", "lead.at - days(lead.n)"),
    ("out", "lead.at + hours(lead.n)"),
    ("out", "lead.at + minutes(lead.n)"),
    ("out", "now + days(lead.n) + days(lead.n)"),
    ("out", "add_working_hours(lead.at, lead.n)"),
    ("out", "add_working_days(lead.at, lead.n)"),
    ("outday", "lead.day + days(lead.n)"),
    ("outday", "date(lead.at)"),
    ("k", "lead.n + lead.n"),
    ("k", "lead.n * lead.n"),
    ("k", "lead.n - 1"),
    ("k", "(lead.at - now).in_minutes"),
    ("k", "(lead.day - lead.day).in_days"),
    ("k", "(lead.at - lead.at).in_hours"),
    ("k", "lead.n / 0"),
    ("k", "lead.n % 0"),
    ("k", "-lead.n"),
    ("k", "lead.n.abs()"),
    ("k", "lead.n ** 3"),
    ("k", "(lead.amount * 1e300).to_int()"),
    ("x", "lead.amount * lead.amount"),
    ("x", "lead.amount + lead.n"),
    ("x", "lead.amount / 0.0"),
    ("x", "lead.n.to_float() * 1e300"),
];

fn workflows() -> &'static Vec<(usize, leadflow_engine::WorkflowSet)> {
    static SETS: OnceLock<Vec<(usize, leadflow_engine::WorkflowSet)>> = OnceLock::new();
    SETS.get_or_init(|| {
        EXPRS
            .iter()
            .enumerate()
            .map(|(i, (out, expr))| {
                let text = BOUNDS.replace("OUT", out).replace("EXPR", expr);
                let loaded = load(&Project {
                    workflows: vec![SourceFile::new("workflows/b.toml", text)],
                    ..Project::default()
                });
                assert!(!loaded.has_errors(), "{expr}: {:#?}", loaded.diagnostics);
                (i, loaded.set)
            })
            .collect()
    })
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        Just(NaiveDate::MIN),
        Just(NaiveDate::MAX),
        Just(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap()),
        Just(NaiveDate::from_ymd_opt(0, 1, 1).unwrap()),
        (-262_000_i32..262_000, 1_u32..=365)
            .prop_map(|(y, d)| NaiveDate::from_yo_opt(y, d).unwrap_or(NaiveDate::MIN)),
    ]
}

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        any_date().prop_map(|d| d.and_hms_opt(23, 30, 0).unwrap().and_utc()),
    ]
}

fn any_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(106_751_991_167),
        Just(1_000_000_000_000),
        any::<i64>(),
        -1_000_000_i64..1_000_000,
    ]
}

fn any_decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        Just(Decimal::MAX),
        Just(Decimal::MIN),
        Just(Decimal::ZERO),
        (any::<i64>(), 0_u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
    ]
}

fn agent() -> Actor {
    Actor {
        id: "a".into(),
        role: "agent".into(),
        ..Actor::default()
    }
}

/// A value a JSON body could carry for a date, datetime, int or decimal.
fn any_input() -> impl Strategy<Value = Value> {
    prop_oneof![
        any_date().prop_map(|d| Value::Str(d.format("%Y-%m-%d").to_string())),
        any_instant().prop_map(|t| Value::Str(t.to_rfc3339())),
        any_int().prop_map(Value::Int),
        any_decimal().prop_map(Value::Decimal),
        any::<f64>().prop_map(|f| Value::from_json(&serde_json::json!(f))),
        "[-+]?[0-9]{1,40}(\\.[0-9]{0,30})?(e[-+]?[0-9]{1,4})?".prop_map(Value::Str),
        "\\PC{0,20}".prop_map(Value::Str),
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    /// Records holding values at the bounds (as a store written before
    /// the range checks may hold them), through every expression: a value
    /// or a refusal, never a panic. A refusal of arithmetic is E_SCRIPT;
    /// any instant a record or timer keeps is inside years 0000 to 9999.
    #[test]
    fn script_arithmetic_at_the_bounds_never_panics(
        which in 0..EXPRS.len(),
        day in any_date(),
        at in any_instant(),
        n in any_int(),
        amount in any_decimal(),
    ) {
        let set = &workflows()[which].1;
        let wf = set.get("b").unwrap();
        let a = agent();
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let ctx = Ctx { now, actor: &a, directory: &[] };
        let mut rec: Record = create(wf, &[], ctx).unwrap().record;
        for (f, v) in [
            ("day", Value::Date(day)),
            ("at", Value::DateTime(at)),
            ("n", Value::Int(n)),
            ("amount", Value::Decimal(amount)),
        ] {
            rec.fields[wf.field(f).unwrap()] = v;
        }
        match fire(wf, &rec, "calc", &[], ctx) {
            Ok(o) => {
                // What the transition wrote is in range (the bound values
                // stored above are not its doing).
                for c in &o.changes {
                    prop_assert!(leadflow_engine::value::check_range(&c.new).is_ok(), "{:?}", c);
                }
                for t in &o.arm {
                    prop_assert!((0..=9999).contains(&chrono::Datelike::year(&t.due)), "{:?}", t);
                }
            }
            Err(r) => prop_assert!(
                matches!(r.code, Code::Script | Code::Type | Code::Guard),
                "{} refused with {:?}: {}", EXPRS[which].1, r.code, r.message
            ),
        }
        let _ = fire_timer(wf, &rec, "after", now, &[]);
        let _ = fire_timer(wf, &rec, "due", now, &[]);
    }

    /// Field input as a JSON body may carry it (numbers at and past i64's
    /// and decimals' bounds, signed years, exponents): created or refused
    /// with E_TYPE naming the field, never a panic, never a kept date
    /// outside years 0000 to 9999.
    #[test]
    fn field_input_at_the_bounds_never_panics(
        which in 0..EXPRS.len(),
        values in prop::collection::vec(any_input(), 4),
        n in any_int(),
    ) {
        let set = &workflows()[which].1;
        let wf = set.get("b").unwrap();
        let a = agent();
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let ctx = Ctx { now, actor: &a, directory: &[] };
        let input: Vec<(String, Value)> = ["day", "at", "n", "amount"]
            .iter()
            .map(|f| f.to_string())
            .zip(values)
            .collect();
        match create(wf, &input, ctx) {
            Ok(o) => {
                for c in &o.changes {
                    prop_assert!(leadflow_engine::value::check_range(&c.new).is_ok(), "{:?}", c);
                }
                let rec = o.record;
                let _ = fire(wf, &rec, "calc", &[("n".into(), Value::Int(n))], ctx);
            }
            Err(r) => {
                prop_assert!(matches!(r.code, Code::Type | Code::Script), "{:?}", r);
                if r.code == Code::Type {
                    prop_assert!(r.field.is_some(), "{:?}", r);
                }
            }
        }
    }
}
