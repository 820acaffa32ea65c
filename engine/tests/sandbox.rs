//! Scripts may only load modules under the project's rules/ (given to the
//! engine as text); nothing reaches the file system.

use leadflow_engine::{load, Project, SourceFile};

fn project(rules: Vec<SourceFile>) -> Project {
    let wf = r#"
[workflow]
id = "s"
initial = "open"
rules = ["rules/main.rhai"]
[states.open]
[states.done]
final = true
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
guard = "rules::ok()"
"#;
    Project {
        workflows: vec![SourceFile::new("workflows/s.toml", wf)],
        rules,
        calendars: vec![],
    }
}

#[test]
fn a_rules_module_may_import_another_rules_module() {
    let loaded = load(&project(vec![
        SourceFile::new("rules/shared.rhai", "fn yes() { true }"),
        SourceFile::new(
            "rules/main.rhai",
            "import \"rules/shared\" as common;\nfn ok() { common::yes() }",
        ),
    ]));
    // `rules/shared` must be listed in the workflow to be importable.
    assert!(loaded.has_errors());
    let with_both = r#"
[workflow]
id = "s"
initial = "open"
rules = ["rules/shared.rhai", "rules/main.rhai"]
[states.open]
[states.done]
final = true
[transitions.close]
from = ["open"]
to = "done"
by = ["agent"]
guard = "rules::ok()"
"#;
    let mut p = project(vec![
        SourceFile::new("rules/shared.rhai", "fn yes() { true }"),
        SourceFile::new(
            "rules/main.rhai",
            "import \"rules/shared\" as common;\nfn ok() { common::yes() }",
        ),
    ]);
    p.workflows[0].text = with_both.into();
    let loaded = load(&p);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
}

#[test]
fn importing_anything_else_is_refused_at_load() {
    for target in ["/etc/passwd", "../secrets", "rules/missing"] {
        let main = format!("import \"{target}\" as x;\nfn ok() {{ true }}");
        let loaded = load(&project(vec![SourceFile::new("rules/main.rhai", main)]));
        let d = loaded
            .diagnostics
            .iter()
            .find(|d| d.code == "E008")
            .unwrap_or_else(|| panic!("{target}: {:?}", loaded.diagnostics));
        assert!(
            d.message.contains("not found") || d.message.contains("Module"),
            "{target}: {}",
            d.message
        );
        assert_eq!(d.file, "rules/main.rhai");
    }
}

#[test]
fn eval_is_disabled() {
    let loaded = load(&project(vec![SourceFile::new(
        "rules/main.rhai",
        "fn ok() { eval(\"true\") }",
    )]));
    assert!(loaded.has_errors(), "eval must not be available to scripts");
}
