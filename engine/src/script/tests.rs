//! Scripts: datetime arithmetic and its range, limits, `throw`, type
//! mismatches, the lint.

use super::lint::unit_methods;
use super::*;
use crate::calendar::Calendar;

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
    assert!(matches!(&p[1], ScriptProblem::UnknownFunction { name, .. } if name == "frobnicate"));
    // A call that is the whole script is a statement, not an expression.
    let (_, whole) = s.compile("rules::nope(lead)", &names).unwrap();
    assert!(
        matches!(&whole[..], [ScriptProblem::UnknownFunction { name, .. }] if name == "rules::nope"),
        "{whole:?}"
    );
}
