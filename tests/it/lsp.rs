//! `leadflow lsp` spoken to as an editor does: JSON-RPC over the binary's
//! stdin/stdout, on this repository's own project (workflows, rules,
//! calendars, scenarios). Nothing is written to disk: edits live in the
//! server's buffers and rename answers with a workspace edit.

use crate::lsp_support;

use lsp_support::{uri, Client};
use serde_json::{json, Value};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start() -> Client {
    Client::start(env!("CARGO_BIN_EXE_leadflow"), &root())
}

/// (line, character) of the first `needle` in `text`, plus `shift` chars.
fn pos(text: &str, needle: &str, shift: usize) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, col + shift)
}

fn labels(v: &Value) -> Vec<String> {
    let items = v.get("items").unwrap_or(v);
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

fn qpartner() -> (PathBuf, String) {
    let f = root().join("workflows/qpartner.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    (f, text)
}

#[test]
fn an_error_typed_in_a_buffer_is_published_with_its_code_and_range_then_cleared() {
    let (f, text) = qpartner();
    let mut c = start();
    c.open(&f, &text);
    assert!(
        c.diagnostics_for(&f).is_empty(),
        "the shipped workflow is clean"
    );
    let broken = text.replacen("to = \"claimed\"", "to = \"claimd\"", 1);
    c.change(&f, 2, &broken);
    let diags = c.diagnostics_for(&f);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert!(d["code"].as_str().unwrap().starts_with('E'), "{d}");
    assert!(d["message"].as_str().unwrap().contains("claimd"), "{d}");
    let (line, col) = pos(&broken, "\"claimd\"", 0);
    assert_eq!(d["range"]["start"]["line"], json!(line));
    let start = d["range"]["start"]["character"].as_u64().unwrap() as usize;
    assert!(
        (col..=col + 1).contains(&start),
        "range starts at the misspelt state: {d}"
    );
    // Fixed again: the file's diagnostics are cleared.
    c.change(&f, 3, &text);
    assert!(c.diagnostics_for(&f).is_empty());
    c.stop();
}

#[test]
fn completion_lists_states_fields_keys_and_rules_functions() {
    let (f, text) = qpartner();
    let mut c = start();
    c.open(&f, &text);
    c.diagnostics_for(&f);
    // `to = "|"` in a transition: the workflow's states.
    let (l, ch) = pos(&text, "to = \"claimed\"", "to = \"".len());
    let states = labels(&c.at("textDocument/completion", &f, l, ch));
    for s in ["available", "claimed", "assigned", "won"] {
        assert!(
            states.contains(&s.to_string()),
            "{s} missing from {states:?}"
        );
    }
    // `lead.|` inside a guard: the fields.
    let (l, ch) = pos(&text, "rules::can_claim(lead", 0);
    let edited = text.replacen(
        "guard = \"rules::can_claim(lead, actor)\"",
        "guard = \"rules::can_claim(lead, actor) && lead.\"",
        1,
    );
    c.change(&f, 2, &edited);
    let col = ch + "rules::can_claim(lead, actor) && lead.".len();
    let fields = labels(&c.at("textDocument/completion", &f, l, col));
    assert!(fields.contains(&"postal_code".to_string()), "{fields:?}");
    // `rules::|`: the functions of the rules modules.
    let fns = labels(&c.at("textDocument/completion", &f, l, ch + "rules::".len()));
    assert!(fns.contains(&"can_claim".to_string()), "{fns:?}");
    // A key at the start of a line in a transition table.
    let (l, _) = pos(&text, "[transitions.claim]", 0);
    let with_key = {
        let mut lines: Vec<&str> = edited.lines().collect();
        lines.insert(l + 1, "gu");
        lines.join("\n")
    };
    c.change(&f, 3, &with_key);
    let keys = labels(&c.at("textDocument/completion", &f, l + 1, 2));
    for k in ["guard", "from", "to", "by"] {
        assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
    }
    c.stop();
}

#[test]
fn hover_and_definition_follow_names_across_files() {
    let (f, text) = qpartner();
    let mut c = start();
    c.open(&f, &text);
    c.diagnostics_for(&f);
    // Hover on a state used as a target: its transitions.
    let (l, ch) = pos(&text, "to = \"claimed\"", "to = \"".len() + 2);
    let h = c.at("textDocument/hover", &f, l, ch);
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(md.contains("state `claimed`"), "{md}");
    assert!(md.contains("transitions out"), "{md}");
    // Definition of the state: its [states.claimed] table.
    let d = c.at("textDocument/definition", &f, l, ch);
    let (hl, _) = pos(&text, "[states.claimed]", 0);
    assert_eq!(d["uri"], json!(uri(&f)));
    assert_eq!(d["range"]["start"]["line"], json!(hl));
    // Definition of a rules:: call: the fn in the rules module.
    let (l, ch) = pos(&text, "rules::can_claim", "rules::".len() + 1);
    let d = c.at("textDocument/definition", &f, l, ch);
    let rules = root().join("rules/qpartner.rhai");
    assert_eq!(d["uri"], json!(uri(&rules)));
    let rtext = std::fs::read_to_string(&rules).unwrap();
    let (rl, _) = pos(&rtext, "fn can_claim", 0);
    assert_eq!(d["range"]["start"]["line"], json!(rl));
    // Hover on a field after `lead.`: its type.
    let (l, ch) = pos(
        &text,
        "actor.id == lead.installer",
        "actor.id == lead.".len() + 1,
    );
    let h = c.at("textDocument/hover", &f, l, ch);
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(md.contains("field `installer`"), "{md}");
    c.stop();
}

#[test]
fn rename_a_field_edits_the_workflow_its_rules_and_its_scenarios() {
    let (f, text) = qpartner();
    let mut c = start();
    c.open(&f, &text);
    c.diagnostics_for(&f);
    let (l, ch) = pos(&text, "[fields.postal_code]", "[fields.".len() + 1);
    let edit = c.request(
        "textDocument/rename",
        json!({ "textDocument": { "uri": uri(&f) }, "position": { "line": l, "character": ch }, "newName": "cap" }),
    );
    let changes = edit["changes"].as_object().unwrap();
    let wf_edits = changes[&uri(&f)].as_array().unwrap();
    assert!(wf_edits.iter().all(|e| e["newText"] == "cap"));
    // The header, and every other use in the file.
    let uses = text.matches("postal_code").count();
    assert_eq!(wf_edits.len(), uses, "{wf_edits:?}");
    // A scenario that creates qpartner leads with a postal_code.
    let sc = root().join("tests/scenarios/qpartner/qp01_simulator_data.toml");
    if sc.exists() {
        assert!(changes.contains_key(&uri(&sc)), "{:?}", changes.keys());
    } else {
        assert!(
            changes
                .keys()
                .any(|k| k.contains("tests/scenarios/qpartner/")),
            "{:?}",
            changes.keys()
        );
    }
    // An invalid new name is refused with a message.
    let err = c.request_error(
        "textDocument/rename",
        json!({ "textDocument": { "uri": uri(&f) }, "position": { "line": l, "character": ch }, "newName": "Bad Name" }),
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not a valid name"),
        "{err}"
    );
    c.stop();
}

#[test]
fn a_scenario_with_an_unknown_workflow_gets_s002_and_states_complete_in_it() {
    let mut c = start();
    let sc = root().join("tests/scenarios/qpartner/lsp-probe.toml");
    let text = "name = \"probe\"\nworkflow = \"qpartnr\"\nstart = \"2025-03-03T09:00:00+01:00\"\n\n[[step]]\ncreate = { as = \"Q1\", fields = { area = \"X\" } }\nexpect = { state = \"\" }\n";
    c.open(&sc, text);
    let d = c.diagnostics_for(&sc);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["code"], "S002");
    let fixed = text.replace("qpartnr", "qpartner");
    c.change(&sc, 2, &fixed);
    assert!(c.diagnostics_for(&sc).is_empty());
    let (l, ch) = pos(&fixed, "state = \"\"", "state = \"".len());
    let states = labels(&c.at("textDocument/completion", &sc, l, ch));
    assert!(states.contains(&"available".to_string()), "{states:?}");
    c.stop();
}

#[test]
fn a_template_typed_in_a_buffer_gets_its_diagnostics_like_check() {
    let f = root().join("templates/aslm/appointment_reminder.it.txt");
    let text = std::fs::read_to_string(&f).unwrap();
    let mut c = start();
    c.open(&f, &text);
    assert!(
        c.diagnostics_for(&f).is_empty(),
        "the shipped template is clean"
    );
    let broken = text.replacen("lead.first_name", "lead.frist_name", 1);
    c.change(&f, 2, &broken);
    let diags = c.diagnostics_for(&f);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d["code"], "E072", "{d}");
    assert!(d["message"].as_str().unwrap().contains("frist_name"), "{d}");
    let (line, _) = pos(&broken, "frist_name", 0);
    assert_eq!(d["range"]["start"]["line"], json!(line));
    c.change(&f, 3, &text);
    assert!(c.diagnostics_for(&f).is_empty());
    c.stop();
}
