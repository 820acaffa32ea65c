use super::*;

const OK: &str = r#"
name = "demo"
workflow = "aslm"
start = 2022-11-14T09:00:00+01:00
[actors.dealer-rm]
role = "dealer"
zones = ["RM"]
[actors.hq]
role = "hq"

[[step]]
create = { as = "L1", fields = { first_name = "Mario", province = "RM" } }
expect = { state = "assigned", assignee = "dealer-rm" }

[[step]]
advance = "2h"
fire = { record = "L1", transition = "log_contact_attempt", by = "dealer-rm", input = { notes = "x" } }

[[step]]
fire = { record = "L1", transition = "close_sale" }
expect_error = "E_REQUIRED"

[[step]]
advance_to = "2023-01-20T10:00:00+01:00"
expect = [{ record = "L1", state = "lost_sale", outbox = ["survey"], timers = { a = true, b = "2023-01-01T00:00:00Z" } },
          { record = "L1/recontact_lead", links = { master_as_lead = "L1" } }]

[[step]]
alias = { as = "L2", record = "L1/recontact_lead" }
expect = { record = "L2", history = [{ field = "state", new = "x" }] }
"#;

fn err(text: &str) -> ScenarioError {
    parse("t.toml", text).unwrap_err()
}

#[test]
fn parses_the_documented_format() {
    let s = parse("t.toml", OK).unwrap();
    assert_eq!(s.name, "demo");
    assert_eq!(s.actors.len(), 2);
    assert_eq!(s.actors[0].id, "dealer-rm", "actors keep file order");
    assert_eq!(s.steps.len(), 5);
    assert_eq!(s.steps[0].line, 11);
    assert_eq!(s.steps[0].create.as_ref().unwrap().workflow.value, "aslm");
    assert!(matches!(s.steps[1].advance, Some(Advance::By(_))));
    assert_eq!(s.steps[2].expect_error.as_deref(), Some("E_REQUIRED"));
    assert_eq!(s.steps[3].expect.len(), 2);
    assert_eq!(
        s.steps[3].expect[1].record,
        Some(RecordRef {
            name: "L1".into(),
            links: vec!["recontact_lead".into()]
        })
    );
    assert_eq!(s.steps[3].expect[0].timers["a"], TimerExpect::Armed);
    assert_eq!(s.steps[4].alias.as_ref().unwrap().name, "L2");
}

#[test]
fn bad_toml_is_s001_with_position() {
    let e = err("start = \"2022-11-14T09:00:00Z\"\n[[step]]\nadvance = \n");
    assert_eq!((e.code, e.line), ("S001", 3), "{e}");
    let e = err("start = \"2022-11-14T09:00:00Z\"\n[[step]]\nadvanec = \"1d\"\n");
    assert_eq!((e.code, e.line), ("S001", 3), "{e}");
    assert!(e.message.contains("advanec"), "{e}");
    let e = err("start = \"yesterday\"\n");
    assert_eq!((e.code, e.line, e.column), ("S001", 1, 9), "{e}");
    let e = err("start = \"2022-11-14T09:00:00Z\"\n[[step]]\nadvance = \"3 fortnights\"\n");
    assert_eq!((e.code, e.line), ("S001", 3), "{e}");
    let e = err("start = \"2022-11-14T09:00:00Z\"\n\n[[step]]\n");
    assert_eq!((e.code, e.line), ("S001", 3), "{e}");
    let e = err("start = \"2022-11-14T09:00:00Z\"\n[[step]]\nexpect = { stat = \"x\" }\n");
    assert_eq!((e.code, e.line), ("S001", 3), "{e}");
    assert!(e.message.contains("stat"), "{e}");
}

#[test]
fn unknown_record_is_s003() {
    let e = err("start = \"2022-11-14T09:00:00Z\"\nworkflow = \"w\"\n[[step]]\nfire = { record = \"L9\", transition = \"t\" }\n");
    assert_eq!((e.code, e.line, e.column), ("S003", 4, 19), "{e}");
    // A create expected to fail does not name its record.
    let e = err(
        "start = \"2022-11-14T09:00:00Z\"\nworkflow = \"w\"\n[[step]]\ncreate = { as = \"L1\" }\nexpect_error = \"E_TYPE\"\n[[step]]\nexpect = { record = \"L1\" }\n",
    );
    assert_eq!((e.code, e.line), ("S003", 7), "{e}");
}

#[test]
fn unknown_actor_is_s004() {
    let e = err(
        "start = \"2022-11-14T09:00:00Z\"\nworkflow = \"w\"\n[actors.a]\nrole = \"r\"\n[[step]]\ncreate = { as = \"L1\", by = \"b\" }\n",
    );
    assert_eq!((e.code, e.line, e.column), ("S004", 6, 28), "{e}");
}

#[test]
fn unknown_workflow_is_s002() {
    let s = parse(
        "t.toml",
        "start = \"2022-11-14T09:00:00Z\"\nworkflow = \"nope\"\n",
    )
    .unwrap();
    let e = s.resolve(&WorkflowSet::default(), &[]).unwrap_err();
    assert_eq!((e.code, e.line, e.column), ("S002", 2, 12), "{e}");
}

#[test]
fn pull_and_release_steps_parse_and_bad_ones_say_where() {
    let head = "start = \"2022-11-14T09:00:00Z\"\nworkflow = \"w\"\n[actors.op]\nrole = \"operator\"\n[[step]]\ncreate = { as = \"L1\" }\n[[step]]\n";
    let s = parse(
        "t.toml",
        &format!("{head}pull = {{ queue = \"q\", by = \"op\", again = true }}\nexpect_record = \"L1\"\n[[step]]\nrelease = {{ queue = \"q\", by = \"op\" }}\nexpect_record = \"\"\n[[step]]\npull = {{ queue = \"q\", by = \"op\" }}\nexpect_error = \"E_QUEUE_EMPTY\"\n"),
    )
    .unwrap();
    let p = s.steps[1].pull.as_ref().unwrap();
    assert_eq!(
        (
            p.workflow.value.as_str(),
            p.queue.as_str(),
            p.by.as_str(),
            p.again
        ),
        ("w", "q", "op", Some(true))
    );
    assert_eq!(s.steps[1].expect_record, Some(Some(RecordRef::parse("L1"))));
    assert!(s.steps[2].release.is_some());
    assert_eq!(s.steps[2].expect_record, Some(None));
    assert_eq!(s.steps[3].expect_error.as_deref(), Some("E_QUEUE_EMPTY"));
    for (body, code, line, col, says) in [
        ("pull = { queue = \"q\", by = \"nobody\" }\n", "S004", 8, 28, "unknown actor"),
        ("pull = { queue = \"q\" }\n", "S001", 8, 8, "by"),
        ("pull = { queue = \"q\", by = \"op\", who = 1 }\n", "S001", 8, 34, "who"),
        ("pull = { queue = \"q\", by = \"op\" }\nexpect_record = \"L9\"\n", "S003", 9, 17, "unknown record"),
        ("pull = { queue = \"q\", by = \"op\" }\nexpect_record = \"\"\n", "S001", 9, 17, "E_QUEUE_EMPTY"),
        ("pull = { queue = \"q\", by = \"op\" }\nexpect_record = \"L1\"\nexpect_error = \"E_QUEUE_EMPTY\"\n", "S001", 9, 17, "not both"),
        ("expect_record = \"L1\"\n", "S001", 8, 17, "needs a `pull`"),
        ("pull = { queue = \"q\", by = \"op\" }\nfire = { record = \"L1\", transition = \"t\" }\n", "S001", 8, 8, "step of its own"),
        ("release = { queue = \"q\", by = \"op\", again = true }\n", "S001", 8, 11, "`again` is for `pull`"),
    ] {
        let e = err(&format!("{head}{body}"));
        assert_eq!((e.code, e.line, e.column), (code, line, col), "{body}: {e}");
        assert!(e.to_string().contains(says), "{body}: {e}");
    }
    // Without a workflow anywhere, a pull says it needs one.
    let e = err("start = \"2022-11-14T09:00:00Z\"\n[actors.op]\nrole = \"operator\"\n[[step]]\npull = { queue = \"q\", by = \"op\" }\n");
    assert_eq!((e.code, e.line), ("S001", 5), "{e}");
    // A pull's workflow is checked against the loaded set (S002).
    let s = parse("t.toml", "start = \"2022-11-14T09:00:00Z\"\n[actors.op]\nrole = \"operator\"\n[[step]]\npull = { queue = \"q\", by = \"op\", workflow = \"nope\" }\n").unwrap();
    let e = s.resolve(&WorkflowSet::default(), &[]).unwrap_err();
    assert_eq!((e.code, e.line), ("S002", 5), "{e}");
}

#[test]
fn never_panics_on_garbage() {
    for text in [
        "",
        "[[step]]",
        "start = 1",
        "step = 3\nstart=\"2022-11-14T09:00:00Z\"",
        "\u{0}",
        "[actors]\nx = 1",
        "start = \"2022-11-14T09:00:00Z\"\n[[step]]\npull = 3",
        "start = \"2022-11-14T09:00:00Z\"\n[[step]]\nrelease = { queue = 1, by = [] }",
        "start = \"2022-11-14T09:00:00Z\"\n[[step]]\nfire = { record = \"/\", transition = \"t\" }",
    ] {
        assert!(parse("t.toml", text).is_err(), "{text:?}");
    }
}
