//! The fast path agrees with Rhai, inlined rules functions too.

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
