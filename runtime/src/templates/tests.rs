//! Template names, languages, filters, escaping, missing values.

use super::*;
use serde_json::json;

fn set(files: &[(&str, &str)], default: Option<&str>) -> TemplateSet {
    TemplateSet::new(
        files
            .iter()
            .map(|(p, t)| Source {
                path: p.to_string(),
                text: t.to_string(),
            })
            .collect(),
        default.map(str::to_string),
    )
}

fn payload(lang: Option<&str>) -> serde_json::Value {
    json!({
        "record": 7, "workflow": "wf", "state": "open", "template": "hello",
        "recipient": { "id": "a", "kind": "actor", "language": lang },
        "fields": { "name": "Mario <b>", "at": "2026-03-02T09:30:00Z", "price": "1234.5", "apps": ["roller_shutters", "awnings"], "empty": null },
        "time_zone": "Europe/Rome",
    })
}

#[test]
fn names_split_into_workflow_id_language_and_part() {
    let n = parse_name("templates/aslm/appointment_reminder.en.html").unwrap();
    assert_eq!(
        (
            n.workflow.as_deref(),
            n.id.as_str(),
            n.lang.as_str(),
            n.html
        ),
        (Some("aslm"), "appointment_reminder", "en", true)
    );
    let n = parse_name("templates/proposal.txt").unwrap();
    assert_eq!((n.id.as_str(), n.lang.as_str()), ("proposal", ""));
    assert!(parse_name("templates/readme.md").is_none());
}

#[test]
fn renders_in_the_recipients_language_with_filters_and_escaping() {
    let s = set(
        &[
            ("templates/hello.it.txt", "Subject: Ciao {{ lead.name }}\n{{ lead.at | datetime }} {{ lead.price | money }} {{ lead.apps | list }}{{ lead.empty }}\n"),
            ("templates/hello.it.html", "<p>{{ lead.name }}</p>"),
            ("templates/hello.en.txt", "Subject: Hi\n{{ lead.at | longdate }} {{ lead.price | money }}\n"),
        ],
        Some("it"),
    );
    let r = s.render("hello", &payload(Some("it")), None).unwrap();
    assert_eq!(r.subject, "Ciao Mario <b>");
    assert_eq!(
        r.text,
        "02/03/2026 ore 10:30 1.234,50 € roller shutters, awnings\n"
    );
    assert_eq!(r.html.as_deref(), Some("<p>Mario &lt;b&gt;</p>"));
    assert_eq!(r.note, None);
    let r = s.render("hello", &payload(Some("en")), None).unwrap();
    assert_eq!(r.text, "Monday 2 March 2026 at 10:30 €1,234.50\n");
    // Unknown language: the tenant's default, recorded.
    let r = s.render("hello", &payload(Some("de")), None).unwrap();
    assert_eq!(r.language, "it");
    assert!(r.note.unwrap().contains("no `de` version"));
}

#[test]
fn a_missing_value_fails_with_the_variable_never_half_rendered() {
    let s = set(
        &[(
            "templates/hello.txt",
            "Subject: x\nline\n{{ lead.phone }}\n",
        )],
        None,
    );
    let e = s.render("hello", &payload(None), None).unwrap_err();
    assert_eq!(e.code, RENDER_CODE);
    assert_eq!(e.variable.as_deref(), Some("lead.phone"));
    assert!(
        e.message.starts_with("templates/hello.txt:3:"),
        "{}",
        e.message
    );
    let e = s.render("nope", &payload(None), None).unwrap_err();
    assert_eq!(e.code, MISSING_CODE);
    assert!(!e.permanent());
}

#[test]
fn a_workflow_folder_wins_over_the_shared_template() {
    let s = set(
        &[
            ("templates/hello.en.txt", "Subject: shared\n"),
            ("templates/wf/hello.en.txt", "Subject: own\n"),
        ],
        None,
    );
    assert_eq!(
        s.render("hello", &payload(Some("en")), None)
            .unwrap()
            .subject,
        "own"
    );
}
