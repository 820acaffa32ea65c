//! The shipped message templates (`templates/`): every `notify` of the
//! shipped workflows has one, `leadflow check` finds nothing in them, and
//! each renders, in each of its languages, for the recipient the workflow
//! names, as the golden file in `tests/templates/golden/` says. The record
//! of each workflow is `tests/templates/records/<workflow>.json`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test templates` rewrites the goldens;
//! review the diff before committing it.

use leadflow_engine::model::Recipient;
use leadflow_runtime::notify::{self, Settings};
use leadflow_runtime::scenario::files::read_project;
use leadflow_runtime::template_check;
use leadflow_runtime::templates::{self, TemplateSet};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn project() -> (leadflow_engine::Loaded, Vec<leadflow_engine::SourceFile>) {
    let p = read_project(&root()).expect("the repository is a project");
    let files = p.workflows.clone();
    let loaded = leadflow_engine::load(&p);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    (loaded, files)
}

#[test]
fn check_finds_nothing_in_the_shipped_templates() {
    let (loaded, files) = project();
    let sources = templates::read_dir(&root().join("templates")).unwrap();
    assert!(sources.len() > 30, "templates ship: {}", sources.len());
    let diags = template_check::check(&loaded.set, &files, &sources);
    assert!(diags.is_empty(), "{diags:#?}");
}

/// The recipient a golden renders for: the first one the workflow names.
fn recipient(
    r: Option<&Recipient>,
    wf: &leadflow_engine::Workflow,
    rec: &serde_json::Value,
) -> String {
    match r {
        None | Some(Recipient::Assignee) => "assignee".into(),
        Some(Recipient::Customer) => "customer".into(),
        Some(Recipient::Field(f)) => rec["fields"][wf.fields[*f].name.as_str()]
            .as_str()
            .unwrap_or("field")
            .to_string(),
        Some(Recipient::Role { role, .. } | Recipient::Area(role)) => format!("{role}-1"),
        Some(Recipient::AssigneeManager) => "manager-1".into(),
        Some(Recipient::Actor(a)) => a.clone(),
        Some(Recipient::PreviousAssignee) => "previous-assignee".into(),
        Some(Recipient::Address(a)) => a.clone(),
        Some(Recipient::List(_)) => "ops@example.com".into(),
    }
}

#[test]
fn every_shipped_template_renders_as_its_golden_file() {
    let (loaded, _) = project();
    let set = TemplateSet::load(&root().join("templates"), None).unwrap();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    let mut rendered = 0;
    for wf in loaded.set.workflows.values() {
        let uses = template_check::uses(wf);
        if uses.is_empty() {
            continue;
        }
        let path = root().join(format!("tests/templates/records/{}.json", wf.id));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut rec: serde_json::Value = serde_json::from_str(&text).unwrap();
        for u in uses {
            if !seen.insert((wf.id.clone(), u.template.clone())) {
                continue;
            }
            let state = u
                .states
                .first()
                .map(|&s| wf.states[s].name.clone())
                .unwrap_or_else(|| wf.states[wf.initial].name.clone());
            rec["state"] = serde_json::json!(state);
            let to = recipient(u.to.first().copied(), wf, &rec);
            let payload =
                notify::preview(wf, &rec, &u.template, &to, &[], &Settings::default()).unwrap();
            for (lang, _, _) in set.files(&wf.id, &u.template) {
                let r = set
                    .render(&u.template, &payload, Some(&lang))
                    .unwrap_or_else(|e| panic!("{}/{} ({lang}): {e}", wf.id, u.template));
                assert_eq!(r.language, lang);
                let mut out = format!(
                    "To: {to} ({}), state {state}\nSubject: {}\n\n{}",
                    payload["recipient"]["kind"].as_str().unwrap_or("?"),
                    r.subject,
                    r.text
                );
                if let Some(h) = &r.html {
                    out.push_str("\n--- html ---\n");
                    out.push_str(h);
                }
                let golden = root().join(format!(
                    "tests/templates/golden/{}/{}.{lang}.txt",
                    wf.id, u.template
                ));
                rendered += 1;
                compare(&golden, &out, update, &mut problems);
            }
        }
    }
    assert!(rendered > 35, "{rendered} rendered");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn compare(golden: &Path, got: &str, update: bool, problems: &mut Vec<String>) {
    if update {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(golden, got).unwrap();
        return;
    }
    match std::fs::read_to_string(golden) {
        Ok(want) if want == got => {}
        Ok(want) => problems.push(format!(
            "{} differs (UPDATE_GOLDEN=1 to accept):\n--- want\n{want}\n--- got\n{got}",
            golden.display()
        )),
        Err(e) => problems.push(format!(
            "{}: {e} (UPDATE_GOLDEN=1 writes it)",
            golden.display()
        )),
    }
}

fn golden(path: &str) -> String {
    std::fs::read_to_string(root().join("tests/templates/golden").join(path)).unwrap()
}

/// Issue 12: the proposal to an Expert who has not accepted and the
/// Q.PARTNER pool mail carry no contact data; the acceptance mail does.
#[test]
fn messages_before_acceptance_carry_no_contact_data() {
    let proposal = golden("oplead_project/proposal.it.txt");
    for pii in ["Rossi", "Mario", "mario.rossi@", "333 1234567", "Via Dante"] {
        assert!(!proposal.contains(pii), "proposal shows {pii}");
    }
    for want in [
        "Tapparelle",
        "20121",
        "Milano",
        "entro 3 mesi",
        "Valido fino a: 03/03/2026 ore 09:15",
    ] {
        assert!(proposal.contains(want), "proposal lacks {want}");
    }
    let pool = golden("qpartner/lead_available.it.txt");
    for pii in ["luca.verdi@", "320 1112233", "Via Appia"] {
        assert!(!pool.contains(pii), "pool mail shows {pii}");
    }
    let accepted = golden("oplead_project/lead_accepted.it.txt");
    assert!(accepted.contains("Subject: Lead accettata: Mario Rossi"));
    assert!(accepted.contains("+39 333 1234567"));
}
