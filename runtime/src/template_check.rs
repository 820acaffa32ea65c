//! `leadflow check` over message templates (docs/diagnostics.md#e070):
//! every `notify` has a template (E070), every template compiles and
//! renders with typed sample values (E071: syntax, unknown filter or
//! function, a filter given the wrong type), uses only variables the
//! payload has (E072), and shows a `pii` field only to recipients who may
//! see it in the states the message is sent from (E073); a template no
//! `notify` uses is a warning (W070). Action links (`action_url("t")`):
//! `t` must be a transition of the workflow (E074), every recipient of the
//! message must be an actor (E075: a customer or an address cannot act),
//! and `t` should be enabled from a state the message is sent from (W071:
//! else every link is refused as out of date).

use crate::privacy::{self, Viewer};
use crate::templates::{parse_name, Source, TemplateSet};
use leadflow_engine::model::{Effect, Recipient, StateId, TimerAction};
use leadflow_engine::value::FieldType;
use leadflow_engine::{Diagnostic, SourceFile, Workflow, WorkflowSet};
use std::collections::{BTreeMap, BTreeSet};

/// One `notify` of a workflow: the template, its recipients, the states
/// the record may be in when it is sent, where it is written.
#[derive(Debug)]
pub struct Use<'a> {
    pub workflow: &'a Workflow,
    pub template: String,
    pub to: Vec<&'a Recipient>,
    pub states: Vec<StateId>,
    /// `transition accept`, `timer survey`, `state proposed`, `report x`.
    pub owner: String,
}

fn walk<'a>(effects: &'a [Effect], out: &mut Vec<(&'a str, Vec<&'a Recipient>)>) {
    for e in effects {
        match e {
            Effect::Notify { template, to } => out.push((template.as_str(), to.iter().collect())),
            Effect::When { then, .. } => walk(std::slice::from_ref(then.as_ref()), out),
            _ => {}
        }
    }
}

fn push<'a>(
    out: &mut Vec<Use<'a>>,
    wf: &'a Workflow,
    owner: String,
    states: Vec<StateId>,
    effects: &'a [Effect],
) {
    let mut found = Vec::new();
    walk(effects, &mut found);
    for (t, to) in found {
        out.push(Use {
            workflow: wf,
            template: t.to_string(),
            to,
            states: states.clone(),
            owner: owner.clone(),
        });
    }
}

/// Every `notify` of `wf`.
pub fn uses(wf: &Workflow) -> Vec<Use<'_>> {
    let mut out = Vec::new();
    for t in &wf.transitions {
        let states = match t.to {
            Some(s) => vec![s],
            None => (0..wf.states.len())
                .filter(|&s| t.enabled_from(s))
                .collect(),
        };
        push(
            &mut out,
            wf,
            format!("transition {}", t.name),
            states,
            &t.effects,
        );
    }
    for (i, s) in wf.states.iter().enumerate() {
        push(
            &mut out,
            wf,
            format!("state {}", s.name),
            vec![i],
            &s.on_enter,
        );
    }
    for t in &wf.timers {
        if let TimerAction::Effects(e) = &t.action {
            let states = (0..wf.states.len()).filter(|&s| t.armed_in(s)).collect();
            push(&mut out, wf, format!("timer {}", t.name), states, e);
        }
    }
    for r in &wf.reports {
        if let Some(t) = &r.notify {
            // A report's reminder goes to the assignee of each group; its
            // records may be in any state the filter lets through.
            out.push(Use {
                workflow: wf,
                template: t.clone(),
                to: Vec::new(),
                states: Vec::new(),
                owner: format!("report {}", r.name),
            });
        }
    }
    out
}

/// Names a payload gives a template besides the fields.
const PAYLOAD: &[&str] = &[
    "record",
    "revision",
    "workflow",
    "state",
    "state_title",
    "template",
    "assignee",
    "recipient",
    "redacted",
    "time_zone",
    "lang",
    "lead",
    // A scheduled report's message (`crate::kpi::schedule::messages`).
    "report",
];
const RECIPIENT: &[&str] = &["id", "kind", "address", "language", "name"];
/// Globals of the environment (MiniJinja built-ins and ours).
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "debug",
    "action_url",
    "loop",
    "self",
];

fn sample(ty: FieldType, values: &[String]) -> serde_json::Value {
    use serde_json::json;
    match ty {
        FieldType::Int => json!(3),
        FieldType::Decimal => json!("1234.5"),
        FieldType::Bool => json!(true),
        FieldType::Date => json!("2026-03-02"),
        FieldType::Datetime => json!("2026-03-02T09:30:00Z"),
        FieldType::Enum => json!(values.first().cloned().unwrap_or_default()),
        FieldType::List => json!(["a", "b"]),
        FieldType::Actor => json!("actor-1"),
        _ => json!("text"),
    }
}

/// A payload with every field set to a value of its type (nothing redacted).
fn sample_payload(wf: &Workflow, template: &str, lang: &str) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = wf
        .fields
        .iter()
        .map(|f| (f.name.clone(), sample(f.ty, &f.values)))
        .collect();
    serde_json::json!({
        "record": 1, "revision": 2, "workflow": wf.id,
        "state": wf.states.get(wf.initial).map(|s| s.name.as_str()),
        "state_title": "State", "template": template, "assignee": "actor-1",
        "recipient": { "id": "actor-1", "kind": "actor", "address": "a@example.com", "language": lang, "name": "Name" },
        "fields": fields, "redacted": [], "time_zone": wf.calendar.timezone().name(),
    })
}

/// Who a recipient is for the privacy rule: `None` when it may be anyone
/// (an actor id, a role member) and so sees no `pii` field.
fn viewer<'a>(wf: &Workflow, r: &Recipient, assignee: &'a str) -> Viewer<'a> {
    use leadflow_engine::org::Relation;
    let revealed = |rel: Relation| wf.reveal_to.contains(&rel);
    match r {
        Recipient::Assignee => Viewer::Actor(assignee),
        Recipient::Customer => Viewer::Customer,
        Recipient::AssigneeManager if revealed(Relation::AssigneeManager) => Viewer::Revealed,
        Recipient::Area(role) if revealed(Relation::Area(role.clone())) => Viewer::Revealed,
        _ => Viewer::Other,
    }
}

fn recipient_name(r: &Recipient, wf: &Workflow) -> String {
    match r {
        Recipient::Assignee => "assignee".into(),
        Recipient::PreviousAssignee => "previous_assignee".into(),
        Recipient::Customer => "customer".into(),
        Recipient::Role { role, .. } => format!("role `{role}`"),
        Recipient::Actor(a) => format!("actor `{a}`"),
        Recipient::AssigneeManager => "assignee.manager".into(),
        Recipient::Area(role) => format!("area.{role}"),
        Recipient::Field(f) => format!(
            "field:{}",
            wf.fields.get(*f).map_or("?", |d| d.name.as_str())
        ),
        Recipient::Address(a) => a.clone(),
        Recipient::List(l) => format!("list:{l}"),
    }
}

/// Byte offset of the first `needle` in `text` that is a whole name
/// (not followed by a name character), or 0.
fn find(text: &str, needle: &str) -> usize {
    let mut from = 0;
    while let Some(i) = text[from..].find(needle) {
        let at = from + i;
        let next = text[at + needle.len()..].chars().next();
        if !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return at;
        }
        from = at + needle.len();
    }
    0
}

/// Where `notify = "<t>"` is written (`quoted` is `"<t>"`): the quoted
/// name after a `notify` key, else its first occurrence.
fn notify_at(text: &str, quoted: &str) -> usize {
    let mut from = 0;
    while let Some(i) = text[from..].find("notify") {
        let at = from + i + "notify".len();
        let rest = text[at..].trim_start();
        if let Some(r) = rest.strip_prefix('=') {
            let r2 = r.trim_start();
            if r2.starts_with(quoted) {
                return text.len() - r2.len();
            }
        }
        from = at;
    }
    find(text, quoted)
}

/// Check the templates `sources` against the workflows of `set`, whose
/// files are `workflows` (for positions of E070).
pub fn check(set: &WorkflowSet, workflows: &[SourceFile], sources: &[Source]) -> Vec<Diagnostic> {
    let templates = TemplateSet::new(sources.to_vec(), None);
    let lenient = TemplateSet::new(sources.to_vec(), None).lenient();
    let files: BTreeMap<&str, SourceFile> = sources
        .iter()
        .map(|s| {
            (
                s.path.as_str(),
                SourceFile::new(s.path.clone(), s.text.clone()),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (path, e) in templates.broken() {
        if let Some(f) = files.get(path.as_str()) {
            out.push(at_message(f, "E071", e));
        }
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut checked: BTreeSet<(String, String)> = BTreeSet::new();
    for wf in set.workflows.values() {
        let wf_file = workflows.iter().find(|f| f.path == wf.file);
        for u in uses(wf) {
            if templates.has(&wf.id, &u.template) {
                let own = format!("{}/{}", wf.id, u.template);
                let key = if templates.templates().any(|(k, _)| k == own) {
                    own
                } else {
                    u.template.clone()
                };
                used.insert(key);
            } else if let Some(f) = wf_file {
                let quoted = format!("\"{}\"", u.template);
                let at = notify_at(&f.text, &quoted);
                out.push(Diagnostic::new(
                    "E070",
                    f,
                    at..at + quoted.len(),
                    format!(
                        "no template `{}` for the notify of {} (templates/{}/{}.<lang>.txt or templates/{}.<lang>.txt)",
                        u.template, u.owner, wf.id, u.template, u.template
                    ),
                ));
                continue;
            }
            for (lang, text, html) in templates.files(&wf.id, &u.template) {
                for path in [text, html].into_iter().flatten() {
                    let Some(f) = files.get(path.as_str()) else {
                        continue;
                    };
                    if templates.broken().contains_key(&path) {
                        continue;
                    }
                    let first = checked.insert((wf.id.clone(), path.clone()));
                    out.extend(check_file(&templates, &lenient, wf, &u, f, &lang, first));
                }
            }
        }
    }
    for (key, _) in templates.templates() {
        if used.contains(key) {
            continue;
        }
        for (path, f) in &files {
            let Some(n) = parse_name(path) else { continue };
            let k = match &n.workflow {
                Some(w) => format!("{w}/{}", n.id),
                None => n.id.clone(),
            };
            if k == key {
                out.push(Diagnostic::new(
                    "W070",
                    f,
                    0..0,
                    format!("template `{key}` is not used by any notify of the loaded workflows"),
                ));
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code).cmp(&(&b.file, b.line, b.column, b.code))
    });
    // One finding per place: a template sent from several steps is
    // reported once, for the first.
    let mut seen = BTreeSet::new();
    out.retain(|d| seen.insert((d.file.clone(), d.span.start, d.span.end, d.code)));
    out
}

/// Every `action_url(...)` call of a template: its byte span and the
/// transition named by its string argument (`None`: not a literal).
pub fn action_calls(text: &str) -> Vec<(std::ops::Range<usize>, Option<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("action_url") {
        let at = from + i;
        from = at + "action_url".len();
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[from..];
        let trimmed = rest.trim_start();
        let Some(args) = trimmed.strip_prefix('(') else {
            continue; // `action_url is defined`
        };
        let args_at = text.len() - args.len();
        let end = args.find(')').map_or(text.len(), |e| args_at + e + 1);
        let arg = args.trim_start();
        let name = match arg.chars().next() {
            Some(q @ ('"' | '\'')) => arg[1..].find(q).map(|e| arg[1..1 + e].to_string()),
            _ => None,
        };
        out.push((at..end, name));
    }
    out
}

/// E074, E075, W071 for the `action_url` calls of one template file.
fn check_links(wf: &Workflow, u: &Use<'_>, f: &SourceFile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let calls = action_calls(&f.text);
    for (span, name) in &calls {
        let Some(name) = name else {
            out.push(Diagnostic::new(
                "E074",
                f,
                span.clone(),
                "action_url takes the name of a transition, quoted: `action_url(\"accept\")`"
                    .to_string(),
            ));
            continue;
        };
        let Some(t) = wf.transition(name).and_then(|i| wf.transitions.get(i)) else {
            let names: Vec<&str> = wf.transitions.iter().map(|t| t.name.as_str()).collect();
            out.push(Diagnostic::new(
                "E074",
                f,
                span.clone(),
                format!(
                    "action_url(\"{name}\"): workflow `{}` has no transition `{name}` ({})",
                    wf.id,
                    names.join(", ")
                ),
            ));
            continue;
        };
        if !u.states.is_empty() && !u.states.iter().any(|&s| t.enabled_from(s)) {
            let states: Vec<&str> = u
                .states
                .iter()
                .filter_map(|&s| wf.states.get(s).map(|x| x.name.as_str()))
                .collect();
            out.push(Diagnostic::new(
                "W071",
                f,
                span.clone(),
                format!(
                    "action_url(\"{name}\"): `{name}` is not enabled from {} where the notify of {} sends this message: every such link would be refused",
                    states.join(", "),
                    u.owner
                ),
            ));
        }
    }
    if let Some((span, _)) = calls.first() {
        let not_actor = u.to.iter().find(|r| {
            matches!(
                r,
                Recipient::Customer | Recipient::Address(_) | Recipient::List(_)
            )
        });
        if let Some(r) = not_actor {
            out.push(Diagnostic::new(
                "E075",
                f,
                span.clone(),
                format!(
                    "action links are for actors of the directory: the notify of {} in workflow `{}` sends this template to {}, who cannot act (the message would fail with E_TEMPLATE_RENDER)",
                    u.owner,
                    wf.id,
                    recipient_name(r, wf)
                ),
            ));
        }
    }
    out
}

/// A diagnostic from a `path:line:col: message` error of [`crate::templates`].
fn at_message(f: &SourceFile, code: &'static str, e: &str) -> Diagnostic {
    let rest = e.strip_prefix(&format!("{}:", f.path)).unwrap_or(e);
    let mut parts = rest.splitn(3, ':');
    let line: usize = parts
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(1);
    let col: usize = parts
        .next()
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(1);
    let msg = parts.next().map(str::trim).unwrap_or(e);
    let offset = f
        .text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + f.text
            .split_inclusive('\n')
            .nth(line.saturating_sub(1))
            .map_or(0, |l| {
                l.chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum()
            });
    let end = f.text[offset.min(f.text.len())..]
        .find(['\n', '}', '|'])
        .map_or(f.text.len(), |i| offset + i);
    Diagnostic::new(code, f, offset..end.max(offset), msg.to_string())
}

fn check_file(
    templates: &TemplateSet,
    lenient: &TemplateSet,
    wf: &Workflow,
    u: &Use<'_>,
    f: &SourceFile,
    lang: &str,
    first: bool,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Ok(t) = templates.env().get_template(&f.path) else {
        return out;
    };
    let vars = t.undeclared_variables(true);
    let field_names: BTreeSet<&str> = wf.fields.iter().map(|f| f.name.as_str()).collect();
    let mut fields_used: BTreeSet<String> = BTreeSet::new();
    let mut vars: Vec<String> = vars.into_iter().collect();
    vars.sort();
    for v in &vars {
        let (root, attr) = match v.split_once('.') {
            Some((r, a)) => (r, Some(a.split('.').next().unwrap_or(a))),
            None => (v.as_str(), None),
        };
        let bad = match (root, attr) {
            ("lead", Some(a)) => {
                if field_names.contains(a) {
                    fields_used.insert(a.to_string());
                    None
                } else {
                    Some(format!(
                        "`lead.{a}`: workflow `{}` has no field `{a}`",
                        wf.id
                    ))
                }
            }
            ("recipient", Some(a)) if !RECIPIENT.contains(&a) => Some(format!(
                "`recipient.{a}`: a recipient has {}",
                RECIPIENT.join(", ")
            )),
            (r, _) if PAYLOAD.contains(&r) || GLOBALS.contains(&r) => None,
            (r, _) if field_names.contains(r) => {
                fields_used.insert(r.to_string());
                None
            }
            (r, _) => Some(format!(
                "`{r}` is not a variable of a message of `{}` (lead.<field>, record, state, recipient, ...)",
                wf.id
            )),
        };
        if let (Some(msg), true) = (bad, first) {
            let at = find(&f.text, v);
            out.push(Diagnostic::new("E072", f, at..at + v.len(), msg));
        }
    }
    // PII: each field used that some recipient may not see in some state
    // the message is sent from.
    for name in &fields_used {
        let Some(field) = wf.field(name).and_then(|i| wf.fields.get(i)) else {
            continue;
        };
        if !field.pii || f.text.contains(&format!("lead.{name} is defined")) {
            continue;
        }
        let blind = u.to.iter().find_map(|r| {
            let who = viewer(wf, r, "the-assignee");
            u.states.iter().find_map(|&s| {
                (!privacy::may_see(wf, field, Some(s), Some("the-assignee"), who))
                    .then(|| (recipient_name(r, wf), s))
            })
        });
        if let Some((who, s)) = blind {
            let state = wf.states.get(s).map_or("?", |s| s.name.as_str());
            let needle = format!("lead.{name}");
            let at = match f.text.find(&needle) {
                Some(i) => i,
                None => find(&f.text, name),
            };
            out.push(Diagnostic::new(
                "E073",
                f,
                at..at + needle.len().min(f.text.len().saturating_sub(at)),
                format!(
                    "`{name}` is pii and the {who} may not see it in state `{state}` (the notify of {} in workflow `{}`)",
                    u.owner, wf.id
                ),
            ));
        }
    }
    out.extend(check_links(wf, u, f));
    if first {
        let payload = sample_payload(wf, &u.template, lang);
        if let Err(e) = lenient.render_file(&f.path, &payload, lang) {
            if e.code == crate::templates::RENDER_CODE {
                out.push(at_message(f, "E071", &e.message));
            }
        }
    }
    out
}
