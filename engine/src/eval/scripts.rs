//! Scripts evaluated against the record being worked on: the native fast
//! path first, Rhai otherwise.

use super::work::Work;
use super::{Actor, Code, Refusal};
use crate::model::*;
use crate::script::{self, Eval, Lead, LeadData, Vars};
use crate::value::Value;
use std::sync::Arc;

impl Work<'_> {
    /// Evaluate a script against the record as it is now. The fields move
    /// into the script's view and back, so no copy is made.
    pub(super) fn eval_with(
        &mut self,
        id: script::ScriptId,
        input: Option<rhai::Map>,
        actor: Option<&Actor>,
    ) -> Result<rhai::Dynamic, Refusal> {
        if let Some(node) = self.wf.scripts.native(id) {
            match node.run(&self.env(actor)) {
                Some(Ok(v)) => return Ok(v),
                Some(Err(m)) => return Err(Refusal::new(Code::Guard, m)),
                None => {}
            }
        }
        self.rhai(id, input, actor)
    }

    /// What a native expression reads: the record as it is now.
    fn env<'e>(&'e self, actor: Option<&'e Actor>) -> crate::native::Env<'e> {
        crate::native::Env {
            fields: &self.rec.fields,
            state: &self.wf.states[self.rec.state].name,
            assignee: self.rec.assignee.as_deref(),
            created_at: self.rec.created_at,
            entered_at: self.rec.entered_at,
            now: self.ctx.now,
            actor,
        }
    }

    /// Evaluate a script in Rhai.
    fn rhai(
        &mut self,
        id: script::ScriptId,
        input: Option<rhai::Map>,
        actor: Option<&Actor>,
    ) -> Result<rhai::Dynamic, Refusal> {
        let actor = actor.map(|a| script::ActorView(Arc::new(a.clone())));
        let data = Arc::new(LeadData {
            names: self.wf.field_index.clone(),
            fields: std::mem::take(&mut self.rec.fields),
            state: self.wf.states[self.rec.state].name.clone(),
            assignee: self.rec.assignee.clone(),
            created_at: self.rec.created_at,
            entered_at: self.rec.entered_at,
        });
        let r = self.wf.scripts.eval(
            id,
            Vars {
                lead: Lead(data.clone()),
                now: self.ctx.now,
                input,
                actor,
            },
        );
        self.rec.fields = Arc::try_unwrap(data)
            .map(|d| d.fields)
            .unwrap_or_else(|d| d.fields.clone());
        match r {
            Eval::Value(v) => Ok(v),
            Eval::Thrown(m) => Err(Refusal::new(Code::Guard, m)),
            Eval::Failed(m) => Err(Refusal::new(Code::Script, m)),
        }
    }

    pub(super) fn eval(
        &mut self,
        id: script::ScriptId,
        input: Option<rhai::Map>,
        with_actor: bool,
    ) -> Result<rhai::Dynamic, Refusal> {
        let actor = (with_actor && self.wf.scripts.uses(id).actor).then_some(self.ctx.actor);
        self.eval_with(id, input, actor)
    }

    /// Evaluate a script to a field value (`set`, timer and spawn instants):
    /// what `from_dynamic` of [`Work::eval`] gives, without a `Dynamic` on
    /// the fast path.
    pub(super) fn eval_value(
        &mut self,
        id: script::ScriptId,
        with_actor: bool,
    ) -> Result<Value, Refusal> {
        let actor = (with_actor && self.wf.scripts.uses(id).actor).then_some(self.ctx.actor);
        if let Some(node) = self.wf.scripts.native(id) {
            match node.run_value(&self.env(actor)) {
                Some(Ok(v)) => return v.map_err(|m| Refusal::new(Code::Script, m)),
                Some(Err(m)) => return Err(Refusal::new(Code::Guard, m)),
                None => {}
            }
        }
        let d = self.rhai(id, None, actor)?;
        script::from_dynamic(&d).map_err(|m| Refusal::new(Code::Script, m))
    }

    pub(super) fn value(&mut self, e: &Expr) -> Result<Value, Refusal> {
        match e {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Field(f) => Ok(self.rec.fields[*f].clone()),
            Expr::Script(id) => self.eval_value(*id, true),
        }
    }
}
