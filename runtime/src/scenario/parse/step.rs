//! One `[[step]]`: its action (advance, alias, create, fire, pull, release),
//! what it expects, and the rules on which of them go together.

use super::raw::{RawAlias, RawCreate, RawFire, RawPull, RawStep};
use super::{Parser, ScenarioError};
use crate::scenario::model::*;
use leadflow_engine::duration::Span as Dur;
use std::collections::HashSet;
use std::ops::Range;
use toml::Spanned;

/// A `pull` or `release` with the span of its table.
type SpannedPull = Option<(Range<usize>, Pull)>;

impl Parser<'_> {
    pub(super) fn step(
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
        step.advance = self.advance(raw.advance, raw.advance_to)?;
        if let Some(a) = raw.alias {
            step.alias = Some(self.alias(a, names)?);
        }
        if let Some(c) = raw.create {
            step.create = Some(self.create(c, &step, default_wf, actors, names)?);
        }
        if let Some(f) = raw.fire {
            step.fire = Some(self.fire(f, actors, names)?);
        }
        let pulls = [("pull", raw.pull), ("release", raw.release)]
            .map(|(what, p)| self.pull(what, p, default_wf, actors));
        let [pull, release] = pulls;
        let (pull, release) = (pull?, release?);
        self.check_pulls_alone(&step, &pull, &release)?;
        step.pull = pull.map(|(_, p)| p);
        step.release = release.map(|(_, p)| p);
        if let Some(r) = raw.expect_record {
            step.expect_record = Some(self.expect_record(r, &step, names)?);
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
        self.check_step(&step, &span)?;
        Ok(step)
    }

    /// `advance` or `advance_to`, at most one.
    fn advance(
        &self,
        advance: Option<Spanned<String>>,
        advance_to: Option<Spanned<toml::Value>>,
    ) -> Result<Option<Advance>, ScenarioError> {
        Ok(match (advance, advance_to) {
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
        })
    }

    /// `alias`: names a record (usually a linked one) for later steps.
    fn alias(
        &self,
        a: Spanned<RawAlias>,
        names: &mut HashSet<String>,
    ) -> Result<Alias, ScenarioError> {
        let a = a.into_inner();
        let record = self.record(a.record.get_ref(), &a.record.span(), names)?;
        names.insert(a.name.get_ref().clone());
        Ok(Alias {
            name: a.name.into_inner(),
            record,
        })
    }

    /// `create`; its `as` name counts from here on unless the step expects
    /// an error.
    fn create(
        &self,
        c: Spanned<RawCreate>,
        step: &Step,
        default_wf: &Option<Located<String>>,
        actors: &HashSet<&str>,
        names: &mut HashSet<String>,
    ) -> Result<Create, ScenarioError> {
        let cspan = c.span();
        let c = c.into_inner();
        let workflow = self.step_workflow("create", c.workflow, default_wf, &cspan)?;
        let by = self.by(c.by, actors)?;
        let name = c.name.map(|n| n.into_inner());
        // A create expected to fail names nothing.
        if let (Some(n), None) = (&name, &step.expect_error) {
            names.insert(n.clone());
        }
        Ok(Create {
            name,
            workflow,
            fields: c.fields.into_iter().collect(),
            by,
        })
    }

    fn fire(
        &self,
        f: Spanned<RawFire>,
        actors: &HashSet<&str>,
        names: &HashSet<String>,
    ) -> Result<Fire, ScenarioError> {
        let f = f.into_inner();
        Ok(Fire {
            record: self.record(f.record.get_ref(), &f.record.span(), names)?,
            transition: f.transition,
            by: self.by(f.by, actors)?,
            input: f.input.into_iter().collect(),
        })
    }

    /// A `pull` or `release` (`what`), if the step has one.
    fn pull(
        &self,
        what: &str,
        p: Option<Spanned<RawPull>>,
        default_wf: &Option<Located<String>>,
        actors: &HashSet<&str>,
    ) -> Result<SpannedPull, ScenarioError> {
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
    }

    /// A `pull` or `release` shares its step with no other action.
    fn check_pulls_alone(
        &self,
        step: &Step,
        pull: &SpannedPull,
        release: &SpannedPull,
    ) -> Result<(), ScenarioError> {
        if let Some((sp, _)) = pull {
            if step.create.is_some() || step.fire.is_some() || release.is_some() {
                return Err(self.err(
                    "S001",
                    sp,
                    "a `pull` goes in a step of its own (with `advance`, `alias` or `expect` at most)",
                ));
            }
        }
        if let Some((sp, _)) = release {
            if step.create.is_some() || step.fire.is_some() {
                return Err(self.err(
                    "S001",
                    sp,
                    "a `release` goes in a step of its own (with `advance`, `alias` or `expect` at most)",
                ));
            }
        }
        Ok(())
    }

    /// `expect_record`: the record a pull gives (or a release's, "" for none).
    fn expect_record(
        &self,
        r: Spanned<String>,
        step: &Step,
        names: &HashSet<String>,
    ) -> Result<Option<RecordRef>, ScenarioError> {
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
        Ok(match r.get_ref().trim() {
            "" if step.release.is_some() => None,
            "" => {
                return Err(self.err(
                    "S001",
                    &sp,
                    "a `pull` that gives nothing is `expect_error = \"E_QUEUE_EMPTY\"`",
                ))
            }
            name => Some(self.record(name, &sp, names)?),
        })
    }

    /// A step does something, and `expect_error` has an action to fail.
    fn check_step(&self, step: &Step, span: &Range<usize>) -> Result<(), ScenarioError> {
        let pulls = step.pull.is_some() || step.release.is_some();
        if step.expect_error.is_some()
            && step.create.is_none()
            && step.fire.is_none()
            && step.advance.is_none()
            && !pulls
        {
            return Err(self.err(
                "S001",
                span,
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
                span,
                "empty step: give it advance, advance_to, alias, create, fire, pull, release or expect",
            ));
        }
        Ok(())
    }
}
