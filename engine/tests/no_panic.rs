//! Bad input never panics: arbitrary workflow text through the loader, and
//! arbitrary Rhai through guards with the limits set.

use leadflow_engine::{create, fire, load, Actor, Ctx, Project, SourceFile, Value};
use proptest::prelude::*;

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
    #![proptest_config(ProptestConfig::with_cases(256))]

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
