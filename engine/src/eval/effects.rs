//! Effects: `when`, `set`, `append`, `clear`, `notify`, `release`,
//! `assign` (picking a candidate), `spawn`, `fire_linked`.

use super::timers::{date_start, shown, OUT_OF_YEARS};
use super::work::Work;
use super::*;
use crate::model::*;
use crate::script;
use crate::value::Value;

impl Work<'_> {
    pub(super) fn run(&mut self, effects: &[Effect]) -> Result<(), Refusal> {
        for e in effects {
            self.effect(e)?;
        }
        Ok(())
    }

    fn effect(&mut self, e: &Effect) -> Result<(), Refusal> {
        match e {
            Effect::When { cond, then } => {
                let d = self.eval(*cond, None, true)?;
                match d.as_bool() {
                    Ok(true) => self.effect(then)?,
                    Ok(false) => {}
                    Err(t) => {
                        return Err(Refusal::new(
                            Code::Script,
                            format!("effect condition returned {t} instead of true or false"),
                        ))
                    }
                }
            }
            Effect::Set { field, value } => {
                let v = self.value(value)?;
                let v = validate(&self.wf.fields[*field], v)
                    .map_err(|r| Refusal::new(Code::Script, format!("effect: {}", r.message)))?;
                self.set(*field, v);
            }
            Effect::Append { field, value } => {
                let v = self.value(value)?;
                self.keep(*field, |rec| rec.fields[*field].clone());
                match &mut self.rec.fields[*field] {
                    Value::List(l) => l.push(v),
                    slot => *slot = Value::List(vec![v]),
                }
            }
            Effect::Clear { fields } => {
                for f in fields {
                    self.set(*f, Value::Null);
                }
            }
            Effect::Notify { template, to } => self.notifications.push(Notification {
                template: template.clone(),
                to: to.clone(),
            }),
            Effect::Release => self.set_assignee(None),
            Effect::Assign {
                role,
                score,
                filter,
                exclude,
                required,
            } => {
                let chosen = self.assign(role, *score, *filter, *exclude)?;
                if chosen.is_none() && *required {
                    return Err(Refusal::new(
                        Code::NoCandidate,
                        format!("no available `{role}` can take this record"),
                    ));
                }
                self.set_assignee(chosen.clone());
                self.assignments.push(Assignment {
                    role: role.clone(),
                    actor: chosen,
                });
            }
            Effect::Spawn(s) => self.spawn(s)?,
            Effect::FireLinked { transition, via } => self.cascades.push(Cascade {
                via: via.clone(),
                transition: transition.clone(),
            }),
        }
        Ok(())
    }

    /// A `spawn`: its `at` (if any) as an instant, its mapped fields
    /// (empty values left out), the request queued for the caller.
    fn spawn(&mut self, s: &SpawnSpec) -> Result<(), Refusal> {
        let due = match s.at {
            None => None,
            Some(id) => match self.eval_value(id, false)? {
                v @ (Value::DateTime(_) | Value::Date(_)) => {
                    crate::value::check_range(&v).map_err(|_| {
                        Refusal::new(
                            Code::Script,
                            format!(
                                "spawn of `{}`: `at` gave {}, {OUT_OF_YEARS}",
                                s.workflow,
                                shown(&v)
                            ),
                        )
                    })?;
                    match v {
                        Value::Date(d) => Some(date_start(self.wf, d)),
                        v => v.as_datetime(),
                    }
                }
                Value::Null => None,
                other => {
                    return Err(Refusal::new(
                        Code::Script,
                        format!("spawn `at` gave {} instead of a datetime", other.to_json()),
                    ))
                }
            },
        };
        let mut fields = Vec::new();
        for (target, src) in &s.map {
            let v = self.value(src)?;
            if !matches!(v, Value::Null) {
                fields.push((target.clone(), v));
            }
        }
        self.spawns.push(SpawnRequest {
            workflow: s.workflow.clone(),
            due,
            fields,
            link: s.link.clone(),
            backlink: s.backlink.clone(),
        });
        Ok(())
    }

    /// Pick the best available candidate: highest score, then least loaded,
    /// then smallest id (deterministic).
    fn assign(
        &mut self,
        role: &str,
        score: Option<script::ScriptId>,
        filter: Option<script::ScriptId>,
        exclude: Option<FieldId>,
    ) -> Result<Option<String>, Refusal> {
        let excluded: Vec<String> = match exclude.map(|f| &self.rec.fields[f]) {
            Some(Value::List(l)) => l.iter().map(|v| v.to_string()).collect(),
            _ => Vec::new(),
        };
        let now = self.ctx.now;
        let mut best: Option<(f64, u32, &Actor)> = None;
        for a in self.ctx.directory {
            if a.role != role || !a.available_at(now) || excluded.iter().any(|x| x == &a.id) {
                continue;
            }
            if let Some(f) = filter {
                if !self.eval_with(f, None, Some(a))?.as_bool().unwrap_or(false) {
                    continue;
                }
            }
            let s = match score {
                None => 0.0,
                Some(id) => {
                    let d = self.eval_with(id, None, Some(a))?;
                    d.as_float()
                        .or_else(|_| d.as_int().map(|i| i as f64))
                        .map_err(|t| {
                            Refusal::new(
                                Code::Script,
                                format!("assign score returned {t} instead of a number"),
                            )
                        })?
                }
            };
            let better = match &best {
                None => true,
                Some((bs, bl, ba)) => {
                    s > *bs || (s == *bs && (a.load < *bl || (a.load == *bl && a.id < ba.id)))
                }
            };
            if better {
                best = Some((s, a.load, a));
            }
        }
        Ok(best.map(|(_, _, a)| a.id.clone()))
    }
}
