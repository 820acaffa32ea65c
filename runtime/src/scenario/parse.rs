//! Scenario file -> [`Scenario`]. Two stages, as the workflow loader: serde
//! reads what was typed (with spans), then the names are checked in step
//! order. Every error is `file:line:col` with a stable code; nothing panics.
//!
//! Codes: S001 bad TOML or shape, S002 unknown workflow, S003 unknown record
//! name, S004 unknown actor, S005 project not found or not loadable.

use super::model::*;
use leadflow_engine::duration::Span as Dur;
use leadflow_engine::value::parse_instant;
use leadflow_engine::{Actor, Period, SourceFile, Value, WorkflowSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use toml::Spanned;

/// A scenario that cannot be run, located in its file.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{file}:{line}:{column}: {code}: {message}")]
pub struct ScenarioError {
    pub code: &'static str,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ScenarioError {
    pub(crate) fn at(
        code: &'static str,
        src: &SourceFile,
        span: &Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = src.line_col(span.start);
        ScenarioError {
            code,
            file: src.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    workflow: Option<Spanned<String>>,
    start: Spanned<toml::Value>,
    project: Option<String>,
    #[serde(default)]
    actors: BTreeMap<Spanned<String>, Spanned<RawActor>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    role: String,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default)]
    skills: Vec<String>,
    capacity: Option<u32>,
    #[serde(default)]
    unavailable: Vec<RawPeriod>,
    #[serde(default)]
    attributes: toml::Table,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    language: Option<String>,
    /// The organisation (`leadflow_engine::org`).
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    reports_to: Option<String>,
    #[serde(default)]
    manages: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    from: Spanned<toml::Value>,
    until: Spanned<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    advance: Option<Spanned<String>>,
    advance_to: Option<Spanned<toml::Value>>,
    alias: Option<Spanned<RawAlias>>,
    create: Option<Spanned<RawCreate>>,
    fire: Option<Spanned<RawFire>>,
    pull: Option<Spanned<RawPull>>,
    release: Option<Spanned<RawPull>>,
    expect_record: Option<Spanned<String>>,
    expect: Option<Spanned<toml::Value>>,
    expect_error: Option<String>,
    /// Free text for the reader; ignored.
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlias {
    #[serde(rename = "as")]
    name: Spanned<String>,
    record: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCreate {
    #[serde(rename = "as")]
    name: Option<Spanned<String>>,
    workflow: Option<Spanned<String>>,
    #[serde(default)]
    fields: toml::Table,
    by: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFire {
    record: Spanned<String>,
    transition: String,
    by: Option<Spanned<String>>,
    #[serde(default)]
    input: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPull {
    queue: String,
    by: Spanned<String>,
    workflow: Option<Spanned<String>>,
    again: Option<bool>,
}

/// An `outbox` entry: a template name, or a table checking its messages.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawOutbox {
    Name(String),
    Message(RawMessage),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    template: String,
    to: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    subject_contains: OneOrMany,
    #[serde(default)]
    body_contains: OneOrMany,
    #[serde(default)]
    body_not_contains: OneOrMany,
    language: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    record: Option<String>,
    state: Option<String>,
    #[serde(default)]
    fields: toml::Table,
    #[serde(default)]
    empty: Vec<String>,
    assignee: Option<String>,
    #[serde(default)]
    outbox: Vec<RawOutbox>,
    #[serde(default)]
    no_outbox: Vec<String>,
    #[serde(default)]
    outbox_count: BTreeMap<String, usize>,
    #[serde(default)]
    outbox_to: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    outbox_not_to: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    seen_by: Vec<String>,
    #[serde(default)]
    hidden_from: Vec<String>,
    #[serde(default)]
    pii_seen_by: Vec<String>,
    #[serde(default)]
    pii_hidden_from: Vec<String>,
    #[serde(default)]
    timers: BTreeMap<String, toml::Value>,
    #[serde(default)]
    no_timers: Vec<String>,
    #[serde(default)]
    history: Vec<RawHistory>,
    #[serde(default)]
    events: Vec<RawEvent>,
    #[serde(default)]
    links: BTreeMap<String, toml::Value>,
    revision: Option<i64>,
    #[serde(default)]
    views: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    kpis: BTreeMap<String, RawKpiExpect>,
    #[serde(default)]
    reports: BTreeMap<String, RawReportExpect>,
    #[serde(default)]
    report_runs: BTreeMap<String, RawRunsExpect>,
}

/// `report_runs.billing = { count = 2, periods = ["2025-Q1", "2025-Q2"], messages = [1, 0] }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunsExpect {
    count: Option<usize>,
    periods: Option<Vec<String>>,
    messages: Option<Vec<i32>>,
}

/// `sla1 = [hits, population]`, or a table with a period and groups.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawKpiExpect {
    Total([usize; 2]),
    Table(RawKpiTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpiTable {
    period: Option<String>,
    group_by: Option<String>,
    total: Option<[usize; 2]>,
    rows: Option<Vec<RawKpiRow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpiRow {
    group: Vec<String>,
    hits: usize,
    population: usize,
}

/// `billing = [rows]` (the whole history) or `{ period, rows }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawReportExpect {
    Rows(Vec<RawReportRow>),
    Table(RawReportTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReportTable {
    period: Option<String>,
    rows: Vec<RawReportRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReportRow {
    group: Vec<String>,
    count: usize,
    amount: Option<f64>,
}

fn report_rows(rows: Vec<RawReportRow>) -> Vec<(Vec<String>, usize, Option<f64>)> {
    rows.into_iter()
        .map(|r| (r.group, r.count, r.amount))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    kind: Option<String>,
    actor: Option<String>,
    transition: Option<String>,
    from: Option<String>,
    to: Option<String>,
    revision: Option<i64>,
    changes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    field: Option<String>,
    old: Option<toml::Value>,
    new: Option<toml::Value>,
    actor: Option<String>,
    transition: Option<String>,
}

/// Parse a scenario file's text. `path` is used in error positions and reports.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let src = SourceFile::new(path, text);
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ScenarioError::at("S001", &src, &span, e.message().trim())
    })?;
    let mut p = Parser {
        src: &src,
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
    };
    let start = p.instant(&raw.start)?;
    let mut actors: Vec<(usize, Actor)> = Vec::new();
    for (id, a) in raw.actors {
        let span = id.span();
        let a = p.actor(id.into_inner(), a)?;
        actors.push((span.start, a));
    }
    actors.sort_by_key(|(s, _)| *s);
    let actors: Vec<Actor> = actors.into_iter().map(|(_, a)| a).collect();
    let known_actors: HashSet<&str> = actors.iter().map(|a| a.id.as_str()).collect();
    let workflow = raw.workflow.map(|w| {
        let span = w.span();
        Located::new(w.into_inner(), span)
    });
    let mut names: HashSet<String> = HashSet::new();
    let mut steps = Vec::with_capacity(raw.step.len());
    for s in raw.step {
        steps.push(p.step(s, &workflow, &known_actors, &mut names)?);
    }
    Ok(Scenario {
        path: path.to_string(),
        name: raw.name.unwrap_or_else(|| path.to_string()),
        workflow,
        start,
        project: raw.project,
        actors,
        steps,
        templates: None,
        source: src.clone(),
    })
}

impl Scenario {
    /// Check the workflows the scenario names against a loaded set (S002).
    /// `broken` lists workflow files that did not load, for the hint.
    pub fn resolve(&self, set: &WorkflowSet, broken: &[String]) -> Result<(), ScenarioError> {
        let mut named: Vec<&Located<String>> = self.workflow.iter().collect();
        named.extend(
            self.steps
                .iter()
                .filter_map(|s| s.create.as_ref().map(|c| &c.workflow)),
        );
        named.extend(
            self.steps
                .iter()
                .flat_map(|s| s.pull.iter().chain(&s.release))
                .map(|p| &p.workflow),
        );
        for w in named {
            if set.get(&w.value).is_none() {
                let known: Vec<&str> = set.workflows.keys().map(String::as_str).collect();
                let mut msg = format!(
                    "unknown workflow `{}` (known: {})",
                    w.value,
                    known.join(", ")
                );
                if !broken.is_empty() {
                    msg.push_str(&format!(
                        "; these files did not load, run `leadflow check`: {}",
                        broken.join(", ")
                    ));
                }
                return Err(ScenarioError::at("S002", &self.source, &w.span, msg));
            }
        }
        Ok(())
    }
}

struct Parser<'a> {
    src: &'a SourceFile,
    /// Byte offset of each line's start: step lines by binary search, since
    /// counting newlines from the top per step is quadratic in big files.
    line_starts: Vec<usize>,
}

impl Parser<'_> {
    /// The workflow a step names, else the file's; S001 when neither.
    fn step_workflow(
        &self,
        what: &str,
        given: Option<Spanned<String>>,
        default_wf: &Option<Located<String>>,
        span: &Range<usize>,
    ) -> Result<Located<String>, ScenarioError> {
        match (given, default_wf) {
            (Some(w), _) => {
                let sp = w.span();
                Ok(Located::new(w.into_inner(), sp))
            }
            (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(self.err(
                "S001",
                span,
                format!("`{what}` needs a workflow: add `workflow = \"...\"` to it or at the top of the file"),
            )),
        }
    }

    fn err(
        &self,
        code: &'static str,
        span: &Range<usize>,
        msg: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::at(code, self.src, span, msg)
    }

    fn instant(
        &self,
        v: &Spanned<toml::Value>,
    ) -> Result<chrono::DateTime<chrono::Utc>, ScenarioError> {
        let text = match v.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            other => other.to_string(),
        };
        parse_instant(&text).ok_or_else(|| {
            self.err(
                "S001",
                &v.span(),
                format!("expected an RFC 3339 instant with an offset, such as 2022-11-14T09:00:00+01:00, got {text}"),
            )
        })
    }

    fn actor(&self, id: String, a: Spanned<RawActor>) -> Result<Actor, ScenarioError> {
        let span = a.span();
        let a = a.into_inner();
        let mut unavailable = Vec::new();
        for p in &a.unavailable {
            unavailable.push(Period {
                from: self.instant(&p.from)?,
                until: self.instant(&p.until)?,
            });
        }
        if id == "system" {
            return Err(self.err(
                "S001",
                &span,
                "the actor id `system` is reserved for timers",
            ));
        }
        Ok(Actor {
            id,
            role: a.role,
            zones: a.zones,
            skills: a.skills,
            capacity: a.capacity,
            load: 0,
            unavailable,
            attributes: a
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), Value::from_toml(v)))
                .collect(),
            email: a.email,
            language: a.language,
            team: a.team,
            reports_to: a.reports_to,
            manages: a.manages,
        })
    }

    fn by(
        &self,
        by: Option<Spanned<String>>,
        actors: &HashSet<&str>,
    ) -> Result<Option<String>, ScenarioError> {
        match by {
            None => Ok(None),
            Some(b) if b.get_ref() == "system" || actors.contains(b.get_ref().as_str()) => {
                Ok(Some(b.into_inner()))
            }
            Some(b) => {
                let mut known: Vec<&str> = actors.iter().copied().collect();
                known.sort();
                Err(self.err(
                    "S004",
                    &b.span(),
                    format!(
                        "unknown actor `{}`: declare it under [actors.{}] (known: {}; `system` is the timer actor)",
                        b.get_ref(),
                        b.get_ref(),
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    fn record(
        &self,
        r: &str,
        span: &Range<usize>,
        names: &HashSet<String>,
    ) -> Result<RecordRef, ScenarioError> {
        let rr = RecordRef::parse(r);
        if rr.name.is_empty() || rr.links.iter().any(String::is_empty) {
            return Err(self.err(
                "S001",
                span,
                format!("`{r}` is not a record reference (`L1` or `L1/link`)"),
            ));
        }
        if !names.contains(&rr.name) {
            let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
            known.sort();
            return Err(self.err(
                "S003",
                span,
                format!(
                    "unknown record `{}`: name it with `as` in an earlier step (known here: {})",
                    rr.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        Ok(rr)
    }

    fn step(
        &mut self,
        s: Spanned<RawStep>,
        default_wf: &Option<Located<String>>,
        actors: &HashSet<&str>,
        names: &mut HashSet<String>,
    ) -> Result<Step, ScenarioError> {
        let span = s.span();
        let line = self.line_starts.partition_point(|&o| o <= span.start);
        let raw = s.into_inner();
        let mut step = Step {
            line,
            expect_error: raw.expect_error,
            ..Step::default()
        };
        step.advance = match (raw.advance, raw.advance_to) {
            (Some(_), Some(to)) => {
                return Err(self.err(
                    "S001",
                    &to.span(),
                    "a step takes `advance` or `advance_to`, not both",
                ))
            }
            (Some(a), None) => Some(Advance::By(
                Dur::parse(a.get_ref()).map_err(|m| self.err("S001", &a.span(), m))?,
            )),
            (None, Some(to)) => Some(Advance::To(self.instant(&to)?)),
            (None, None) => None,
        };
        if let Some(a) = raw.alias {
            let a = a.into_inner();
            let record = self.record(a.record.get_ref(), &a.record.span(), names)?;
            names.insert(a.name.get_ref().clone());
            step.alias = Some(Alias {
                name: a.name.into_inner(),
                record,
            });
        }
        if let Some(c) = raw.create {
            let cspan = c.span();
            let c = c.into_inner();
            let workflow = self.step_workflow("create", c.workflow, default_wf, &cspan)?;
            let by = self.by(c.by, actors)?;
            let name = c.name.map(|n| n.into_inner());
            // A create expected to fail names nothing.
            if let (Some(n), None) = (&name, &step.expect_error) {
                names.insert(n.clone());
            }
            step.create = Some(Create {
                name,
                workflow,
                fields: c.fields.into_iter().collect(),
                by,
            });
        }
        if let Some(f) = raw.fire {
            let f = f.into_inner();
            step.fire = Some(Fire {
                record: self.record(f.record.get_ref(), &f.record.span(), names)?,
                transition: f.transition,
                by: self.by(f.by, actors)?,
                input: f.input.into_iter().collect(),
            });
        }
        let pulls = [("pull", raw.pull), ("release", raw.release)].map(|(what, p)| {
            p.map(|p| {
                let pspan = p.span();
                let p = p.into_inner();
                let workflow = self.step_workflow(what, p.workflow, default_wf, &pspan)?;
                if what == "release" && p.again.is_some() {
                    return Err(self.err(
                        "S001",
                        &pspan,
                        "`again` is for `pull`: a `release` gives back what the puller holds",
                    ));
                }
                let by_span = p.by.span();
                let by = self
                    .by(Some(p.by), actors)?
                    .ok_or_else(|| self.err("S001", &by_span, "`by` names the puller"))?;
                Ok((
                    pspan,
                    Pull {
                        workflow,
                        queue: p.queue,
                        by,
                        again: p.again,
                    },
                ))
            })
            .transpose()
        });
        let [pull, release] = pulls;
        let (pull, release) = (pull?, release?);
        if let Some((sp, _)) = &pull {
            if step.create.is_some() || step.fire.is_some() || release.is_some() {
                return Err(self.err(
                    "S001",
                    sp,
                    "a `pull` goes in a step of its own (with `advance`, `alias` or `expect` at most)",
                ));
            }
        }
        if let Some((sp, _)) = &release {
            if step.create.is_some() || step.fire.is_some() {
                return Err(self.err(
                    "S001",
                    sp,
                    "a `release` goes in a step of its own (with `advance`, `alias` or `expect` at most)",
                ));
            }
        }
        step.pull = pull.map(|(_, p)| p);
        step.release = release.map(|(_, p)| p);
        if let Some(r) = raw.expect_record {
            let sp = r.span();
            if step.pull.is_none() && step.release.is_none() {
                return Err(self.err(
                    "S001",
                    &sp,
                    "`expect_record` needs a `pull` or `release` in the same step",
                ));
            }
            if step.expect_error.is_some() {
                return Err(self.err("S001", &sp, "a step expects a record or an error, not both"));
            }
            step.expect_record = Some(match r.get_ref().trim() {
                "" if step.release.is_some() => None,
                "" => {
                    return Err(self.err(
                        "S001",
                        &sp,
                        "a `pull` that gives nothing is `expect_error = \"E_QUEUE_EMPTY\"`",
                    ))
                }
                name => Some(self.record(name, &sp, names)?),
            });
        }
        if let Some(e) = raw.expect {
            let espan = e.span();
            let items = match e.into_inner() {
                toml::Value::Array(a) => a,
                other => vec![other],
            };
            for it in items {
                step.expect.push(self.expect(it, &espan, names)?);
            }
        }
        let pulls = step.pull.is_some() || step.release.is_some();
        if step.expect_error.is_some()
            && step.create.is_none()
            && step.fire.is_none()
            && step.advance.is_none()
            && !pulls
        {
            return Err(self.err(
                "S001",
                &span,
                "`expect_error` needs a `create`, `fire`, `pull`, `release` or `advance` in the same step",
            ));
        }
        if step.advance.is_none()
            && step.alias.is_none()
            && step.create.is_none()
            && step.fire.is_none()
            && !pulls
            && step.expect.is_empty()
        {
            return Err(self.err(
                "S001",
                &span,
                "empty step: give it advance, advance_to, alias, create, fire, pull, release or expect",
            ));
        }
        Ok(step)
    }

    fn expect(
        &self,
        v: toml::Value,
        span: &Range<usize>,
        names: &HashSet<String>,
    ) -> Result<Expect, ScenarioError> {
        let raw: RawExpect = v.try_into().map_err(|e: toml::de::Error| {
            self.err("S001", span, format!("in `expect`: {}", e.message().trim()))
        })?;
        let record = match &raw.record {
            Some(r) => Some(self.record(r, span, names)?),
            None => None,
        };
        let mut timers = BTreeMap::new();
        for (k, v) in raw.timers {
            let t = match v {
                toml::Value::Boolean(true) => TimerExpect::Armed,
                toml::Value::Boolean(false) => TimerExpect::NotArmed,
                other => TimerExpect::At(self.instant(&Spanned::new(span.clone(), other))?),
            };
            timers.insert(k, t);
        }
        let mut links = BTreeMap::new();
        for (k, v) in raw.links {
            let l = match v {
                toml::Value::Boolean(b) => LinkExpect::Exists(b),
                toml::Value::String(s) => LinkExpect::To(self.record(&s, span, names)?),
                other => {
                    return Err(self.err(
                        "S001",
                        span,
                        format!("`links.{k}`: expected a record name or true/false, got {other}"),
                    ))
                }
            };
            links.insert(k, l);
        }
        Ok(Expect {
            record,
            state: raw.state,
            fields: raw.fields.into_iter().collect(),
            empty: raw.empty,
            assignee: raw.assignee,
            outbox: raw
                .outbox
                .iter()
                .map(|o| match o {
                    RawOutbox::Name(n) => n.clone(),
                    RawOutbox::Message(m) => m.template.clone(),
                })
                .collect(),
            messages: raw
                .outbox
                .into_iter()
                .filter_map(|o| match o {
                    RawOutbox::Name(_) => None,
                    RawOutbox::Message(m) => Some(MessageExpect {
                        template: m.template,
                        to: m.to,
                        recipients: m.recipients,
                        subject_contains: m.subject_contains.list(),
                        body_contains: m.body_contains.list(),
                        body_not_contains: m.body_not_contains.list(),
                        language: m.language,
                    }),
                })
                .collect(),
            no_outbox: raw.no_outbox,
            outbox_count: raw.outbox_count,
            outbox_to: raw.outbox_to,
            outbox_not_to: raw.outbox_not_to,
            seen_by: raw.seen_by,
            hidden_from: raw.hidden_from,
            pii_seen_by: raw.pii_seen_by,
            pii_hidden_from: raw.pii_hidden_from,
            timers,
            no_timers: raw.no_timers,
            history: raw
                .history
                .into_iter()
                .map(|h| HistoryExpect {
                    field: h.field,
                    old: h.old,
                    new: h.new,
                    actor: h.actor,
                    transition: h.transition,
                })
                .collect(),
            events: raw
                .events
                .into_iter()
                .map(|e| EventExpect {
                    kind: e.kind,
                    actor: e.actor,
                    transition: e.transition,
                    from: e.from,
                    to: e.to,
                    revision: e.revision,
                    changes: e.changes,
                })
                .collect(),
            links,
            revision: raw.revision,
            views: raw
                .views
                .into_iter()
                .map(|(k, v)| {
                    Ok((
                        k,
                        v.iter()
                            .map(|r| self.record(r, span, names))
                            .collect::<Result<_, _>>()?,
                    ))
                })
                .collect::<Result<_, ScenarioError>>()?,
            kpis: raw
                .kpis
                .into_iter()
                .map(|(k, v)| {
                    let e = match v {
                        RawKpiExpect::Total([h, p]) => KpiExpect {
                            total: Some((h, p)),
                            ..KpiExpect::default()
                        },
                        RawKpiExpect::Table(t) => KpiExpect {
                            period: t.period,
                            group_by: t.group_by,
                            total: t.total.map(|[h, p]| (h, p)),
                            rows: t.rows.map(|rows| {
                                rows.into_iter()
                                    .map(|r| (r.group, r.hits, r.population))
                                    .collect()
                            }),
                        },
                    };
                    (k, e)
                })
                .collect(),
            reports: raw
                .reports
                .into_iter()
                .map(|(k, v)| {
                    let e = match v {
                        RawReportExpect::Rows(rows) => ReportExpect {
                            period: None,
                            rows: report_rows(rows),
                        },
                        RawReportExpect::Table(t) => ReportExpect {
                            period: t.period,
                            rows: report_rows(t.rows),
                        },
                    };
                    (k, e)
                })
                .collect(),
            report_runs: raw
                .report_runs
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        RunsExpect {
                            count: v.count,
                            periods: v.periods,
                            messages: v.messages,
                        },
                    )
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
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
        for text in ["", "[[step]]", "start = 1", "step = 3\nstart=\"2022-11-14T09:00:00Z\"", "\u{0}", "[actors]\nx = 1", "start = \"2022-11-14T09:00:00Z\"\n[[step]]\npull = 3", "start = \"2022-11-14T09:00:00Z\"\n[[step]]\nrelease = { queue = 1, by = [] }", "start = \"2022-11-14T09:00:00Z\"\n[[step]]\nfire = { record = \"/\", transition = \"t\" }"] {
            assert!(parse("t.toml", text).is_err(), "{text:?}");
        }
    }
}
