//! The conformance suite: every backend runs it unchanged and must give the
//! same results.

use super::*;
use serde_json::json;

fn code<T: std::fmt::Debug>(r: Result<T, Error>) -> &'static str {
    r.expect_err("expected an error").code()
}

pub async fn run<B: Backend>(b: &B) {
    let a1 = agent("a1");
    let a2 = agent("a2");
    b.set_actors(vec![a1.clone(), a2.clone()]).await.unwrap();
    assert_eq!(b.actors().await.unwrap().len(), 2);
    // One actor's periods change alone; an unknown actor is reported.
    let away = leadflow_engine::Period {
        from: t0() - chrono::Duration::days(1),
        until: t0() + chrono::Duration::days(1),
    };
    assert!(b
        .set_unavailable("a2", std::slice::from_ref(&away))
        .await
        .unwrap());
    assert!(!b
        .set_unavailable("ghost", std::slice::from_ref(&away))
        .await
        .unwrap());
    let dir = b.actors().await.unwrap();
    assert_eq!(dir.len(), 2);
    assert_eq!(
        dir.iter().find(|a| a.id == "a2").unwrap().unavailable,
        [away]
    );
    assert_eq!(dir.iter().find(|a| a.id == "a1").unwrap(), &a1);
    assert!(b.set_unavailable("a2", &[]).await.unwrap());

    // Create: initial state, assignment by least load, history of the initial values.
    let l1 = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("Mario"))],
            &a1,
            t0(),
        ))
        .await
        .unwrap();
    assert_eq!(
        (l1.state.as_str(), l1.revision, l1.assignee.as_deref()),
        ("new", 1, Some("a1"))
    );
    assert_eq!(l1.fields.get("name"), Some(&json!("Mario")));
    let l2 = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("Luigi"))],
            &a1,
            t0(),
        ))
        .await
        .unwrap();
    assert_eq!(
        l2.assignee.as_deref(),
        Some("a2"),
        "a1 already has one open lead"
    );
    assert_eq!(b.get(l1.id).await.unwrap().as_ref(), Some(&l1));
    let h = b.history(l1.id).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (
            h[0].transition.as_str(),
            h[0].field.as_str(),
            &h[0].old,
            &h[0].new
        ),
        ("create", "name", &json!(null), &json!("Mario"))
    );
    assert_eq!(h[0].actor, "a1");
    let timers: Vec<(String, DateTime<Utc>)> = b
        .timers(l1.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.timer, t.due))
        .collect();
    assert_eq!(
        timers,
        vec![("reminder".into(), at(1)), ("expiry".into(), at(48))]
    );
    assert_eq!(b.next_due().await.unwrap(), Some(at(1)));

    // Refusal codes pass through unchanged and change nothing.
    assert_eq!(
        code(b.fire(fire_req(l1.id, "start", vec![], &a1, t0())).await),
        "E_REQUIRED"
    );
    assert_eq!(
        code(b.fire(fire_req(l1.id, "nope", vec![], &a1, t0())).await),
        "E_UNKNOWN_TRANSITION"
    );
    assert_eq!(
        code(b.fire(fire_req(l1.id, "expire", vec![], &a1, t0())).await),
        "E_FORBIDDEN"
    );
    assert_eq!(
        code(
            b.fire(fire_req(l1.id, "nudge", vec![], &Actor::system(), t0()))
                .await
        ),
        "E_NOT_ENABLED"
    );
    assert_eq!(
        code(
            b.fire(fire_req(
                l1.id,
                "bump",
                vec![("n".into(), s("x"))],
                &a1,
                t0()
            ))
            .await
        ),
        "E_TYPE"
    );
    assert_eq!(
        code(
            b.fire(fire_req(
                l1.id,
                "bump",
                vec![("note".into(), s("x"))],
                &a1,
                t0()
            ))
            .await
        ),
        "E_INPUT"
    );
    assert_eq!(
        code(b.fire(fire_req(999_999, "bump", vec![], &a1, t0())).await),
        "E_NOT_FOUND"
    );
    assert_eq!(
        code(b.create(create_req("nope", vec![], &a1, t0())).await),
        "E_UNKNOWN_WORKFLOW"
    );
    assert_eq!(b.get(l1.id).await.unwrap().unwrap().revision, 1);

    // Expected revision: the right one passes, a stale one conflicts and changes nothing.
    let mut req = fire_req(
        l1.id,
        "bump",
        vec![("n".into(), Value::Int(1)), ("scratch".into(), s("x"))],
        &a1,
        at(0),
    );
    req.expected_revision = Some(1);
    let r = b.fire(req.clone()).await.unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(r.fields.get("scratch"), Some(&json!("x")));
    match b.fire(req).await {
        Err(Error::Conflict {
            expected: 1,
            actual: 2,
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.get(l1.id).await.unwrap().unwrap().revision, 2);

    // Idempotency: the same key and request returns the first result and
    // fires nothing; the same key with another request fires nothing either.
    let idem = |key, request| Some(Idempotency { key, request });
    let mut req = fire_req(l1.id, "bump", vec![("n".into(), Value::Int(5))], &a1, at(0));
    req.idempotency_key = idem("k1", "bump-5");
    let first = b.fire(req.clone()).await.unwrap();
    assert_eq!(b.fire(req).await.unwrap(), first);
    let mut other = fire_req(l1.id, "bump", vec![("n".into(), Value::Int(6))], &a1, at(0));
    other.idempotency_key = idem("k1", "bump-6");
    match b.fire(other).await {
        Err(Error::IdempotencyMismatch) => {}
        other => panic!("expected an idempotency mismatch, got {other:?}"),
    }
    assert_eq!(
        b.get(l1.id).await.unwrap().unwrap().fields.get("n"),
        Some(&json!(5))
    );
    let mut c = create_req("lead", vec![("name".into(), s("Once"))], &a1, at(0));
    c.idempotency_key = idem("c1", "create-once");
    let once = b.create(c.clone()).await.unwrap();
    assert_eq!(b.create(c).await.unwrap(), once);
    // A create's key reused on a fire: refused, the record unchanged.
    let mut reuse = fire_req(once.id, "close", vec![], &a1, at(0));
    reuse.idempotency_key = idem("c1", "close-once");
    assert!(matches!(
        b.fire(reuse).await,
        Err(Error::IdempotencyMismatch)
    ));
    assert_eq!(b.get(once.id).await.unwrap().unwrap().revision, 1);
    b.fire(fire_req(once.id, "close", vec![], &a1, at(0)))
        .await
        .unwrap();

    // History keeps tracked changes only, with old and new values.
    let h = b.history(l1.id).await.unwrap();
    let rows: Vec<(&str, &str, serde_json::Value, serde_json::Value)> = h
        .iter()
        .map(|e| {
            (
                e.transition.as_str(),
                e.field.as_str(),
                e.old.clone(),
                e.new.clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("create", "name", json!(null), json!("Mario")),
            ("bump", "n", json!(null), json!(1)),
            ("bump", "n", json!(1), json!(5))
        ]
    );

    // Timers fire in due order with time = their due instant.
    assert_eq!(b.run_due(at(0) + Duration::minutes(30)).await.unwrap(), 0);
    assert_eq!(b.run_due(at(1)).await.unwrap(), 2, "both reminders");
    let ob = b.outbox(l1.id).await.unwrap();
    assert_eq!(ob.len(), 1);
    assert_eq!(
        (
            ob[0].template.as_str(),
            ob[0].recipients.clone(),
            ob[0].created_at
        ),
        ("reminder", vec!["a1".to_string()], at(1))
    );
    assert!(ob[0].delivered_at.is_none());
    let r = b
        .fire(fire_req(
            l1.id,
            "start",
            vec![("note".into(), s("called"))],
            &a1,
            at(2),
        ))
        .await
        .unwrap();
    assert_eq!((r.state.as_str(), r.entered_at), ("working", at(2)));
    let ob = b.outbox(l1.id).await.unwrap();
    // One row per recipient, both written by this step (its revision).
    let started: Vec<(&str, &[String], i64)> = ob[1..]
        .iter()
        .map(|m| (m.template.as_str(), m.recipients.as_slice(), m.revision))
        .collect();
    assert_eq!(
        started,
        [
            ("started", &["a1".to_string()][..], r.revision),
            ("started", &["customer".to_string()][..], r.revision)
        ]
    );
    let timers: Vec<(String, DateTime<Utc>)> = b
        .timers(l1.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.timer, t.due))
        .collect();
    assert_eq!(
        timers,
        vec![("nudger".into(), at(3)), ("expiry".into(), at(48))]
    );

    // Timers armed by firings run in the same call when due.
    assert_eq!(b.run_due(at(5)).await.unwrap(), 3);
    let r = b.get(l1.id).await.unwrap().unwrap();
    assert_eq!(
        r.fields.get("log"),
        Some(&json!(["nudge", "nudge", "nudge"]))
    );
    assert_eq!(r.updated_at, at(5));
    let h = b.history(l1.id).await.unwrap();
    let last = h.last().unwrap();
    assert_eq!(
        (last.transition.as_str(), last.actor.as_str(), last.at),
        ("nudge", "system", at(5))
    );

    // Expiry at 48h leaves `working`: the nudger is cancelled, the lead is lost.
    // l2 (in `new`) expires too.
    assert_eq!(b.run_due(at(72)).await.unwrap(), 42 + 1 + 1);
    let r = b.get(l1.id).await.unwrap().unwrap();
    assert_eq!((r.state.as_str(), r.entered_at), ("lost", at(48)));
    assert_eq!(
        r.fields.get("log").and_then(|l| l.as_array()).map(Vec::len),
        Some(3 + 42)
    );
    assert!(b.timers(l1.id).await.unwrap().is_empty());
    assert_eq!(b.get(l2.id).await.unwrap().unwrap().state, "lost");
    assert_eq!(
        code(b.fire(fire_req(l1.id, "bump", vec![], &a1, at(72))).await),
        "E_FINAL"
    );
    assert_eq!(b.next_due().await.unwrap(), None);

    // Spawn now: the task exists at once, linked both ways.
    let l3 = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("Anna"))],
            &a2,
            at(72),
        ))
        .await
        .unwrap();
    assert_eq!(
        l3.assignee.as_deref(),
        Some("a1"),
        "loads count open records only"
    );
    b.fire(fire_req(
        l3.id,
        "start",
        vec![("note".into(), s("n"))],
        &a2,
        at(72),
    ))
    .await
    .unwrap();
    let won = b
        .fire(fire_req(l3.id, "win", vec![], &a2, at(73)))
        .await
        .unwrap();
    assert_eq!(won.state, "won");
    let links = b.links(l3.id).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].from, links[0].name.as_str()), (l3.id, "tasks"));
    let task = b.get(links[0].to).await.unwrap().unwrap();
    assert_eq!(
        (task.workflow.as_str(), task.state.as_str(), task.created_at),
        ("task", "open", at(73))
    );
    assert_eq!(task.fields.get("title"), Some(&json!("Anna")));
    assert_eq!(
        b.links(task.id).await.unwrap(),
        vec![Link {
            from: task.id,
            name: "lead".into(),
            to: l3.id
        }]
    );
    assert!(b.timers(l3.id).await.unwrap().is_empty());

    // Spawn later: a scheduled spawn sits in the due queue until its instant.
    let l4 = b
        .create(create_req(
            "lead",
            vec![("name".into(), s("Carla"))],
            &a2,
            at(74),
        ))
        .await
        .unwrap();
    b.fire(fire_req(
        l4.id,
        "contact_again",
        vec![("again_at".into(), Value::DateTime(at(240)))],
        &a2,
        at(74),
    ))
    .await
    .unwrap();
    let timers = b.timers(l4.id).await.unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].due, at(240));
    assert!(b.links(l4.id).await.unwrap().is_empty());
    assert_eq!(b.next_due().await.unwrap(), Some(at(240)));
    assert_eq!(b.run_due(at(239)).await.unwrap(), 0);
    assert_eq!(b.run_due(at(240)).await.unwrap(), 1);
    let links = b.links(l4.id).await.unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].name, "recontact");
    let l5 = b.get(links[0].to).await.unwrap().unwrap();
    assert_eq!((l5.state.as_str(), l5.created_at), ("new", at(240)));
    assert_eq!(l5.fields.get("recontacted"), Some(&json!(true)));
    assert_eq!(l5.fields.get("name"), Some(&json!("Carla")));
    assert_eq!(
        b.links(l5.id).await.unwrap(),
        vec![Link {
            from: l5.id,
            name: "master".into(),
            to: l4.id
        }]
    );
    let h = b.history(l5.id).await.unwrap();
    assert!(
        h.iter()
            .all(|e| e.transition == "create" && e.actor == "system"),
        "{h:?}"
    );
    assert_eq!(b.timers(l5.id).await.unwrap().len(), 2);
}

/// (kind, actor, transition, from, to, revision) of an event.
type Shape = (
    EventKind,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

fn shape(e: &Event) -> Shape {
    (
        e.kind,
        e.actor.clone(),
        e.transition.clone(),
        e.from.clone(),
        e.to.clone(),
        e.revision,
    )
}

fn ev(
    kind: EventKind,
    actor: &str,
    t: Option<&str>,
    from: Option<&str>,
    to: &str,
    rev: i64,
) -> Shape {
    (
        kind,
        actor.into(),
        t.map(Into::into),
        from.map(Into::into),
        Some(to.into()),
        rev,
    )
}

/// Every committed change writes one event (after `run`, which sets the
/// actors): creates, transitions with and without field changes, spawns,
/// timer firings (their transition or their effects), with input, assignee
/// and the field changes of the same revision.
pub async fn events<B: Backend>(b: &B) {
    use EventKind::*;
    let a1 = agent("a1");
    let t = at(400);
    let l = b
        .create(create_req("lead", vec![("name".into(), s("Eva"))], &a1, t))
        .await
        .unwrap();
    b.fire(fire_req(
        l.id,
        "start",
        vec![("note".into(), s("called"))],
        &a1,
        t,
    ))
    .await
    .unwrap();
    let won = b.fire(fire_req(l.id, "win", vec![], &a1, t)).await.unwrap();
    let e = b.events(l.id).await.unwrap();
    assert_eq!(
        e.iter().map(shape).collect::<Vec<_>>(),
        vec![
            ev(Create, "a1", None, None, "new", 1),
            ev(Transition, "a1", Some("start"), Some("new"), "working", 2),
            ev(Transition, "a1", Some("win"), Some("working"), "won", 3),
        ]
    );
    assert!(e
        .iter()
        .all(|e| e.record == l.id && e.workflow == "lead" && e.at == t));
    assert_eq!(e[0].assignee, l.assignee);
    assert_eq!(e[2].assignee, won.assignee);
    assert_eq!(
        e[0].input,
        Some(json!({"name": "Eva"}).as_object().unwrap().clone())
    );
    assert_eq!(
        e[1].input,
        Some(json!({"note": "called"}).as_object().unwrap().clone())
    );
    assert_eq!(e[2].input, None);
    assert_eq!(
        e[0].changes,
        vec![Change {
            field: "name".into(),
            old: json!(null),
            new: json!("Eva")
        }]
    );
    assert_eq!(e[1].changes.len(), 1);
    assert!(e[2].changes.is_empty(), "win changes no field: {:?}", e[2]);
    // The flat history is unchanged: field rows only.
    assert_eq!(b.history(l.id).await.unwrap().len(), 2);
    // The task spawned by `win`: a spawn event by the same actor.
    let task = b.links(l.id).await.unwrap()[0].to;
    let e = b.events(task).await.unwrap();
    assert_eq!(
        e.iter().map(shape).collect::<Vec<_>>(),
        vec![ev(Spawn, "a1", None, None, "open", 1)]
    );
    assert_eq!(e[0].changes[0].field, "title");

    // Timers: `reminder` runs effects (no transition, no field change),
    // `nudger` fires `nudge`; the actor is the timer.
    let m = b
        .create(create_req("lead", vec![("name".into(), s("Ugo"))], &a1, t))
        .await
        .unwrap();
    b.run_due(at(401)).await.unwrap();
    b.fire(fire_req(
        m.id,
        "start",
        vec![("note".into(), s("n"))],
        &a1,
        at(401),
    ))
    .await
    .unwrap();
    b.run_due(at(402)).await.unwrap();
    let e = b.events(m.id).await.unwrap();
    assert_eq!(
        e.iter().map(shape).collect::<Vec<_>>(),
        vec![
            ev(Create, "a1", None, None, "new", 1),
            ev(Timer, "timer:reminder", None, Some("new"), "new", 2),
            ev(Transition, "a1", Some("start"), Some("new"), "working", 3),
            ev(
                Timer,
                "timer:nudger",
                Some("nudge"),
                Some("working"),
                "working",
                4
            ),
        ]
    );
    assert_eq!((e[1].at, e[3].at), (at(401), at(402)));
    assert!(e[1].changes.is_empty());
    assert_eq!(e[3].changes[0].field, "log");
    let rec = b.get(m.id).await.unwrap().unwrap();
    assert_eq!(e.len() as i64, rec.revision, "one event per revision");
}

/// Bulk operations (SOC-8 batch update, SOC-9 auto-close) as ordinary
/// transitions with history.
pub async fn bulk<B: Backend>(b: &B) {
    let a = agent("a1");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            b.create(create_req("counter", vec![], &a, at(300)))
                .await
                .unwrap()
                .id,
        );
    }
    b.fire(fire_req(
        ids[0],
        "bump",
        vec![("n".into(), Value::Int(1))],
        &a,
        at(300),
    ))
    .await
    .unwrap();
    let only_n1 = Filter {
        workflow: "counter",
        fields: vec![("n".into(), json!(1))],
        ..Filter::default()
    };
    assert_eq!(b.select(&only_n1).await.unwrap(), vec![ids[0]]);
    let r = b
        .fire_many(
            &only_n1,
            "bump",
            vec![("n".into(), Value::Int(7))],
            &a,
            at(301),
        )
        .await
        .unwrap();
    assert_eq!((r.changed.clone(), r.refused.len()), (vec![ids[0]], 0));
    let h = b.history(ids[0]).await.unwrap();
    assert_eq!(
        (&h.last().unwrap().old, &h.last().unwrap().new),
        (&json!(1), &json!(7))
    );
    let unset = Filter {
        workflow: "counter",
        fields: vec![("n".into(), json!(null))],
        states: vec!["open"],
        ..Filter::default()
    };
    assert_eq!(b.select(&unset).await.unwrap(), ids[1..].to_vec());
    let all = Filter {
        workflow: "counter",
        ..Filter::default()
    };
    let r = b
        .fire_many(&all, "bump", vec![("note".into(), s("x"))], &a, at(301))
        .await
        .unwrap();
    assert!(r.changed.is_empty());
    assert_eq!(
        r.refused,
        ids.iter()
            .map(|&i| (i, "E_INPUT".to_string()))
            .collect::<Vec<_>>()
    );

    // Auto-close after 10 idle days; one record was touched meanwhile.
    b.fire(fire_req(
        ids[1],
        "bump",
        vec![("n".into(), Value::Int(3))],
        &a,
        at(301 + 24 * 5),
    ))
    .await
    .unwrap();
    let now = at(301 + 24 * 10) + Duration::minutes(1);
    let r = b
        .close_idle("counter", Duration::days(10), "close", now)
        .await
        .unwrap();
    assert_eq!(r.changed, vec![ids[0], ids[2], ids[3]]);
    for &id in &r.changed {
        let rec = b.get(id).await.unwrap().unwrap();
        assert_eq!((rec.state.as_str(), rec.updated_at), ("closed", now));
    }
    assert_eq!(b.get(ids[1]).await.unwrap().unwrap().state, "open");
    assert_eq!(
        b.select(&all).await.unwrap(),
        vec![ids[1]],
        "final records are never selected"
    );
    // Each record a bulk operation changed has an event of kind `bulk`:
    // the batch update by its actor, the auto-close by the system.
    let e = b.events(ids[0]).await.unwrap();
    assert_eq!(
        e.iter().map(shape).collect::<Vec<_>>(),
        vec![
            ev(EventKind::Create, "a1", None, None, "open", 1),
            ev(
                EventKind::Transition,
                "a1",
                Some("bump"),
                Some("open"),
                "open",
                2
            ),
            ev(EventKind::Bulk, "a1", Some("bump"), Some("open"), "open", 3),
            ev(
                EventKind::Bulk,
                "system",
                Some("close"),
                Some("open"),
                "closed",
                4
            ),
        ]
    );
    assert_eq!(e[2].changes[0].new, json!(7));
    assert!(e[3].changes.is_empty());
}

/// Each actor's `load` in the directory equals the open records assigned to
/// it, counted record by record, after creates (assignment by least load),
/// transitions to final states, and timers that close records. The SQL
/// stores keep loads with triggers; this compares them with a recount.
pub async fn loads<B: Backend>(b: &B) {
    async fn check<B: Backend>(b: &B, step: &str) {
        let mut expected: std::collections::BTreeMap<String, u32> = Default::default();
        for wf in [
            "lead",
            "task",
            "counter",
            "tick",
            "crew_project",
            "crew_job",
        ] {
            let open = Filter {
                workflow: wf,
                ..Filter::default()
            };
            for id in b.select(&open).await.unwrap() {
                if let Some(a) = b.get(id).await.unwrap().unwrap().assignee {
                    *expected.entry(a).or_default() += 1;
                }
            }
        }
        for a in b.actors().await.unwrap() {
            assert_eq!(
                a.load,
                expected.get(&a.id).copied().unwrap_or(0),
                "{step}: load of {}",
                a.id
            );
        }
    }
    let (x, y, z) = (agent("lx"), agent("ly"), agent("lz"));
    b.set_actors(vec![x.clone(), y.clone(), z.clone()])
        .await
        .unwrap();
    check(b, "new directory").await;
    let mut leads = Vec::new();
    for i in 0..6 {
        let r = b
            .create(create_req("lead", vec![], &x, at(400 + i)))
            .await
            .unwrap();
        leads.push(r);
    }
    check(b, "after creates").await;
    let by = |r: &StoredRecord| agent(r.assignee.as_deref().unwrap());
    for l in &leads[..2] {
        b.fire(fire_req(l.id, "close", vec![], &by(l), at(410)))
            .await
            .unwrap();
    }
    check(b, "after closing two").await;
    let r = b
        .create(create_req("lead", vec![], &x, at(411)))
        .await
        .unwrap();
    check(b, "after a create that sees the freed capacity").await;
    let who = by(&r);
    b.fire(fire_req(
        r.id,
        "start",
        vec![("note".into(), s("go"))],
        &who,
        at(412),
    ))
    .await
    .unwrap();
    b.fire(fire_req(r.id, "win", vec![], &who, at(413)))
        .await
        .unwrap();
    check(b, "after a win").await;
    // Two days later the expiry timers close every open lead.
    b.run_due(at(500)).await.unwrap();
    check(b, "after the expiry timers").await;
}

/// Records assigned in one step see each other (issue 13): a project and the
/// three jobs it spawns when started go to four different crew members of
/// capacity 1, not all to the one that was least loaded before the step.
pub async fn siblings<B: Backend>(b: &B) {
    let crew = |id: &str| Actor {
        id: id.into(),
        role: "crew".into(),
        capacity: Some(1),
        ..Actor::default()
    };
    let pm = agent("pm");
    b.set_actors(vec![
        pm.clone(),
        crew("c1"),
        crew("c2"),
        crew("c3"),
        crew("c4"),
    ])
    .await
    .unwrap();
    let p = b
        .create(create_req("crew_project", vec![], &pm, at(600)))
        .await
        .unwrap();
    let p = b
        .fire(fire_req(p.id, "start", vec![], &pm, at(601)))
        .await
        .unwrap();
    assert_eq!(p.assignee.as_deref(), Some("c1"));
    let jobs = linked_assignees(b, p.id, &["job_a", "job_b", "job_c"]).await;
    assert_eq!(
        jobs,
        [Some("c2".into()), Some("c3".into()), Some("c4".into())],
        "each sibling sees the assignments made before it in the step"
    );
    let loads: Vec<(String, u32)> = b
        .actors()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.load))
        .collect();
    for (id, load) in loads {
        assert_eq!(load, u32::from(id != "pm"), "load of {id}");
    }
    // Everyone at capacity: the next project's records stay unassigned.
    let q = b
        .create(create_req("crew_project", vec![], &pm, at(602)))
        .await
        .unwrap();
    let q = b
        .fire(fire_req(q.id, "start", vec![], &pm, at(603)))
        .await
        .unwrap();
    assert_eq!(q.assignee, None);
    // A record that assigns nothing itself, created with children that do:
    // the directory is read for them too, and they see each other.
    b.set_actors(vec![pm.clone(), crew("c5"), crew("c6")])
        .await
        .unwrap();
    let batch = b
        .create(create_req("crew_batch", vec![], &pm, at(604)))
        .await
        .unwrap();
    assert_eq!(
        linked_assignees(b, batch.id, &["first", "second"]).await,
        [Some("c5".into()), Some("c6".into())],
        "children of a created record are assigned, each seeing the one before"
    );
}

/// The assignee of the record behind each named link of `id`.
async fn linked_assignees<B: Backend>(b: &B, id: RecordId, names: &[&str]) -> Vec<Option<String>> {
    let links = b.links(id).await.unwrap();
    let mut out = Vec::new();
    for name in names {
        let link = links
            .iter()
            .find(|l| l.name == *name)
            .unwrap_or_else(|| panic!("link {name}"));
        out.push(b.get(link.to).await.unwrap().unwrap().assignee);
    }
    out
}
