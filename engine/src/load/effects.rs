//! Effects: `set`, `append`, `clear`, `notify`, `assign`, `release`,
//! `spawn`, `fire_linked`, each optionally under a `when` condition.

use super::checks::{FireLinkedCheck, SpawnCheck};
use super::{Names, Resolver};
use crate::diag::refine;
use crate::model::{Effect, Expr, FieldId, Recipient, SpawnSpec};
use crate::raw::RawEffect;
use crate::script::Scripts;
use crate::value::{FieldType, Value};
use std::ops::Range;
use toml::Spanned;

impl Resolver<'_> {
    pub(super) fn effects(
        &mut self,
        list: &[Spanned<RawEffect>],
        names: &Names,
        scripts: &mut Scripts,
    ) -> Vec<Effect> {
        list.iter()
            .filter_map(|e| self.effect(e, names, scripts))
            .collect()
    }

    fn effect(
        &mut self,
        e: &Spanned<RawEffect>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Effect> {
        let n = self.spawns.len();
        let inner = self.effect_action(e, names, scripts)?;
        if e.get_ref().when.is_some() {
            for c in &mut self.spawns[n..] {
                c.on_create = false;
            }
        }
        match &e.get_ref().when {
            None => Some(inner),
            Some(w) => {
                let s = refine(&self.file.text, &e.span(), w);
                let cond =
                    self.script_at(w, s.start.saturating_sub(1)..s.end + 1, names, scripts)?;
                Some(Effect::When {
                    cond,
                    then: Box::new(inner),
                })
            }
        }
    }

    fn effect_action(
        &mut self,
        e: &Spanned<RawEffect>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Effect> {
        let span = e.span();
        let r = e.get_ref();
        let actions = [
            r.set.is_some(),
            r.append.is_some(),
            r.clear.is_some(),
            r.notify.is_some(),
            r.assign.is_some(),
            r.release.is_some(),
            r.spawn.is_some(),
            r.fire_linked.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            self.err(
                "E018",
                span,
                "an effect needs exactly one of set, append, clear, notify, assign, release, spawn, fire_linked",
            );
            return None;
        }
        if let Some(f) = r.set.as_ref().or(r.append.as_ref()) {
            return self.effect_set(f, r, span, names, scripts);
        }
        if let Some(c) = &r.clear {
            let fields = c
                .to_vec()
                .iter()
                .filter_map(|f| self.field_named(f, &span, names))
                .collect();
            return Some(Effect::Clear { fields });
        }
        if let Some(t) = &r.notify {
            let to = match &r.to {
                None => vec![Recipient::Assignee],
                Some(list) => list
                    .to_vec()
                    .iter()
                    .filter_map(|x| self.recipient(x, &span, names, scripts))
                    .collect(),
            };
            return Some(Effect::Notify {
                template: t.clone(),
                to,
            });
        }
        if let Some(role) = &r.assign {
            return Some(self.effect_assign(role, r, span, names, scripts));
        }
        if r.release.is_some() {
            return Some(Effect::Release);
        }
        if let Some(transition) = &r.fire_linked {
            return self.effect_fire_linked(transition, r, span);
        }
        self.effect_spawn(r, span, names, scripts)
    }

    /// A field an effect names, looked up at its place in the effect.
    fn field_named(&mut self, name: &str, span: &Range<usize>, names: &Names) -> Option<FieldId> {
        let s = Spanned::new(refine(&self.file.text, span, name), name.to_string());
        self.field(&s, names)
    }

    /// `set` or `append` of field `f`: a literal `value` (coerced for
    /// `set`) or a Rhai `expr`.
    fn effect_set(
        &mut self,
        f: &str,
        r: &RawEffect,
        span: Range<usize>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Effect> {
        let field = self.field_named(f, &span, names)?;
        let is_set = r.set.is_some();
        let ty = names.field_types[field];
        if !is_set && ty != FieldType::List {
            self.err(
                "E019",
                span.clone(),
                format!("`append` needs a list field; `{f}` is {}", ty.name()),
            );
        }
        let value = match (&r.value, &r.expr) {
            (Some(v), None) => {
                let v = Value::from_toml(v);
                let coerced = if is_set { ty.coerce(v) } else { Ok(v) }
                    .and_then(|v| crate::value::check_range(&v).map(|()| v));
                match coerced {
                    Ok(v) => Expr::Literal(v),
                    Err(m) => {
                        self.err("E019", span, format!("value for `{f}`: {m}"));
                        return None;
                    }
                }
            }
            (None, Some(x)) => {
                let at = refine(&self.file.text, &span, x);
                Expr::Script(self.script_at(
                    x,
                    at.start.saturating_sub(1)..at.end + 1,
                    names,
                    scripts,
                )?)
            }
            _ => {
                self.err(
                    "E018",
                    span,
                    format!(
                        "`{}` needs exactly one of `value` (a literal) and `expr` (Rhai)",
                        if is_set { "set" } else { "append" }
                    ),
                );
                return None;
            }
        };
        Some(if is_set {
            Effect::Set { field, value }
        } else {
            Effect::Append { field, value }
        })
    }

    /// `assign` to `role`: its `score` and `filter` scripts, the list field
    /// of actors to `exclude`.
    fn effect_assign(
        &mut self,
        role: &str,
        r: &RawEffect,
        span: Range<usize>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Effect {
        self.role_uses
            .push((role.to_string(), refine(&self.file.text, &span, role)));
        let mut compile = |this: &mut Self, x: &Option<String>| {
            x.as_ref().and_then(|x| {
                let at = refine(&this.file.text, &span, x);
                this.script_at(x, at.start.saturating_sub(1)..at.end + 1, names, scripts)
            })
        };
        let score = compile(self, &r.score);
        let filter = compile(self, &r.filter);
        let exclude = r.exclude.as_ref().and_then(|x| {
            let f = self.field_named(x, &span, names)?;
            if names.field_types[f] != FieldType::List {
                self.err(
                    "E019",
                    refine(&self.file.text, &span, x),
                    format!(
                        "`exclude` needs a list field; `{x}` is {}",
                        names.field_types[f].name()
                    ),
                );
            }
            Some(f)
        });
        Effect::Assign {
            role: role.to_string(),
            score,
            filter,
            exclude,
            required: r.required,
        }
    }

    /// `fire_linked` of `transition` over the link `via`; the transition is
    /// checked once every workflow is loaded.
    fn effect_fire_linked(
        &mut self,
        transition: &str,
        r: &RawEffect,
        span: Range<usize>,
    ) -> Option<Effect> {
        let via = match &r.via {
            Some(v) if !v.trim().is_empty() => v.clone(),
            _ => {
                self.err(
                    "E018",
                    span,
                    "`fire_linked` needs `via`: the link name on this record (e.g. via = \"offer\")",
                );
                return None;
            }
        };
        self.fire_linked.push(FireLinkedCheck {
            transition: transition.to_string(),
            span,
        });
        Some(Effect::FireLinked {
            transition: transition.to_string(),
            via,
        })
    }

    /// `spawn` of a record of another workflow: when (`at`), and its fields
    /// (`map`: a field of this record or a script); the target is checked
    /// once every workflow is loaded.
    fn effect_spawn(
        &mut self,
        r: &RawEffect,
        span: Range<usize>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Effect> {
        let workflow = r.spawn.clone().unwrap_or_default();
        let at = r.at.as_ref().and_then(|x| {
            let s = refine(&self.file.text, &span, x);
            self.script_at(x, s.start.saturating_sub(1)..s.end + 1, names, scripts)
        });
        let mut map = Vec::new();
        let mut check_map = Vec::new();
        for (target, source) in &r.map {
            if let Some(&f) = names.fields.get(source) {
                map.push((target.clone(), Expr::Field(f)));
                check_map.push((target.clone(), Some(names.field_types[f])));
            } else {
                let s = refine(&self.file.text, &span, source);
                let id =
                    self.script_at(source, s.start.saturating_sub(1)..s.end + 1, names, scripts)?;
                map.push((target.clone(), Expr::Script(id)));
                check_map.push((target.clone(), None));
            }
        }
        self.spawns.push(SpawnCheck {
            workflow: workflow.clone(),
            span,
            map: check_map,
            on_create: self.in_initial && r.at.is_none(),
        });
        Some(Effect::Spawn(SpawnSpec {
            workflow,
            at,
            map,
            link: r.link.clone().unwrap_or_else(|| "origin".into()),
            backlink: r.backlink.clone().unwrap_or_else(|| "spawned".into()),
        }))
    }
}
