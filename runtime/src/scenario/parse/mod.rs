//! Scenario file -> [`Scenario`]. Two stages, as the workflow loader: serde
//! reads what was typed (with spans), then the names are checked in step
//! order. Every error is `file:line:col` with a stable code; nothing panics.
//!
//! Codes: S001 bad TOML or shape, S002 unknown workflow, S003 unknown record
//! name, S004 unknown actor, S005 project not found or not loadable.

//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`parse`], [`ScenarioError`], actors, name checks, [`Scenario::resolve`] |
//! | `raw.rs` | the file as serde reads it |
//! | `step.rs` | one `[[step]]` and which actions go together |
//! | `expectation.rs` | one `expect` table |

mod expectation;
mod raw;
mod step;

use super::model::*;
use leadflow_engine::value::parse_instant;
use leadflow_engine::{Actor, Period, SourceFile, Value, WorkflowSet};
use raw::{RawActor, RawScenario};
use serde::Serialize;
use std::collections::HashSet;
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
}

#[cfg(test)]
mod tests;
