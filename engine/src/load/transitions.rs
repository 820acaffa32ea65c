//! Transitions (`by`, `from`, `to`, `guard`, effects, `rearm`) and timers
//! (`in`, `after`/`since`/`at`, `fire`/`do`).

use super::{in_file_order, Names, Resolver};
use crate::diag::{refine, Diagnostic};
use crate::duration::Span as Dur;
use crate::model::*;
use crate::raw::{RawTimer, RawTransition};
use crate::script::Scripts;
use crate::value::FieldType;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use toml::Spanned;

/// States and transitions already resolved, for the timers that fire them.
pub(super) struct Built<'w> {
    pub(super) states: &'w [State],
    pub(super) transitions: &'w [Transition],
    pub(super) index: &'w HashMap<String, TransitionId>,
}

impl Resolver<'_> {
    /// The transitions, in file order, and their index by name.
    pub(super) fn transitions(
        &mut self,
        raw: BTreeMap<Spanned<String>, RawTransition>,
        timers: &BTreeMap<Spanned<String>, RawTimer>,
        has_area: bool,
        names: &Names,
        scripts: &mut Scripts,
    ) -> (Vec<Transition>, HashMap<String, TransitionId>) {
        let transitions_raw = in_file_order(raw);
        let transition_index: HashMap<String, TransitionId> = transitions_raw
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| (n.clone(), i))
            .collect();
        let timer_names: HashMap<String, TimerId> = {
            let mut v: Vec<(&Spanned<String>, ())> = timers.keys().map(|k| (k, ())).collect();
            v.sort_by_key(|(k, _)| k.span().start);
            v.iter()
                .enumerate()
                .map(|(i, (k, _))| (k.get_ref().clone(), i))
                .collect()
        };
        let mut transitions = Vec::new();
        for entry in transitions_raw {
            transitions.push(self.transition(entry, &timer_names, has_area, names, scripts));
        }
        (transitions, transition_index)
    }

    /// One `[transitions.<name>]`: `by` (roles and relations), `from`, `to`,
    /// no `by` (W002), `input`, `require`, `guard`, effects, `rearm`.
    fn transition(
        &mut self,
        (name, span, t): (String, Range<usize>, RawTransition),
        timer_names: &HashMap<String, TimerId>,
        has_area: bool,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Transition {
        let mut by_relations = Vec::new();
        for b in &t.by {
            if crate::org::Relation::is_relation(b.get_ref()) {
                by_relations.extend(self.relations(std::slice::from_ref(b), has_area));
            } else if b.get_ref() != "system" && b.get_ref() != "*" {
                let at = refine(&self.file.text, &b.span(), b.get_ref());
                self.role_uses.push((b.get_ref().clone(), at));
            }
        }
        let from = self.states_spec(&t.from, names, Some(&name));
        let to = t.to.as_ref().and_then(|s| self.state(s, names));
        if t.by.is_empty() {
            self.err(
                "W002",
                span.clone(),
                format!("transition `{name}` has no `by`: nobody can fire it"),
            );
        }
        let input = self.fields(&t.input, names);
        let require = self.fields(&t.require, names);
        let guard = t
            .guard
            .as_ref()
            .and_then(|g| self.script(g, names, scripts));
        let effects = self.effects(&t.effects, names, scripts);
        let rearm = self.rearm(t.rearm.as_ref(), timer_names);
        Transition {
            title: t.title.unwrap_or_else(|| name.clone()),
            name,
            from,
            to,
            by: t.by.iter().map(|b| b.get_ref().clone()).collect(),
            by_relations,
            input,
            require,
            guard,
            guard_source: t.guard.as_ref().map(|g| g.get_ref().clone()),
            effects,
            rearm,
            span,
        }
    }

    /// `rearm` of a transition: true, false or timer names (E022 unknown).
    fn rearm(
        &mut self,
        rearm: Option<&Spanned<toml::Value>>,
        timer_names: &HashMap<String, TimerId>,
    ) -> Rearm {
        match rearm {
            None => Rearm::None,
            Some(v) => match v.get_ref() {
                toml::Value::Boolean(true) => Rearm::All,
                toml::Value::Boolean(false) => Rearm::None,
                toml::Value::Array(items) => {
                    let mut ids = Vec::new();
                    for it in items {
                        let n = it.as_str().unwrap_or("");
                        match timer_names.get(n) {
                            Some(&i) => ids.push(i),
                            None => self.err(
                                "E022",
                                refine(&self.file.text, &v.span(), n),
                                format!("`rearm` names unknown timer `{n}`"),
                            ),
                        }
                    }
                    Rearm::Some(ids)
                }
                _ => {
                    self.err(
                        "E001",
                        v.span(),
                        "`rearm` must be true or a list of timer names",
                    );
                    Rearm::None
                }
            },
        }
    }

    /// The timers, in file order; a timer with an error is left out.
    pub(super) fn timers(
        &mut self,
        raw: BTreeMap<Spanned<String>, RawTimer>,
        names: &Names,
        built: &Built,
        scripts: &mut Scripts,
    ) -> Vec<Timer> {
        let mut timers = Vec::new();
        for entry in in_file_order(raw) {
            if let Some(timer) = self.timer(entry, names, built, scripts) {
                timers.push(timer);
            }
        }
        timers
    }

    /// One `[timers.<name>]`: `in`, when it is due, what it does (E017 for
    /// none or both of `fire` and `do`).
    fn timer(
        &mut self,
        (name, span, t): (String, Range<usize>, RawTimer),
        names: &Names,
        built: &Built,
        scripts: &mut Scripts,
    ) -> Option<Timer> {
        let in_states = self.states_spec(&t.in_states, names, None);
        let due = self.timer_due(&name, &span, &t, names, scripts);
        let action = match (&t.fire, t.effects.is_empty()) {
            (Some(f), true) => self.timer_fire(&name, f, &in_states, names, built),
            (None, false) => Some(TimerAction::Effects(
                self.effects(&t.effects, names, scripts),
            )),
            _ => {
                self.err(
                    "E017",
                    span.clone(),
                    format!("timer `{name}` needs exactly one of `fire` and `do`"),
                );
                None
            }
        };
        let (Some(due), Some(action)) = (due, action) else {
            return None;
        };
        let due_text = match (&t.after, &t.at) {
            (Some(a), _) => format!(
                "after {}{}",
                a.get_ref().trim(),
                t.since
                    .as_ref()
                    .map(|s| format!(" since {}", s.get_ref()))
                    .unwrap_or_default()
            ),
            (None, Some(at)) => format!("at {}", at.get_ref().trim()),
            (None, None) => String::new(),
        };
        Some(Timer {
            title: t.title.unwrap_or_else(|| name.clone()),
            name,
            in_states,
            due,
            due_text,
            action,
            span,
        })
    }

    /// When a timer is due: `after` a duration (E016), optionally `since` a
    /// date or datetime field (E019), or `at` a script; E017 for none or
    /// both.
    fn timer_due(
        &mut self,
        name: &str,
        span: &Range<usize>,
        t: &RawTimer,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Option<Due> {
        match (&t.after, &t.at) {
            (Some(a), None) => match Dur::parse(a.get_ref()) {
                Ok(d) => {
                    let since = t.since.as_ref().and_then(|s| {
                        let f = self.field(s, names)?;
                        if !matches!(names.field_types[f], FieldType::Datetime | FieldType::Date) {
                            self.err(
                                "E019",
                                s.span(),
                                format!(
                                    "`since` must name a date or datetime field; `{}` is {}",
                                    s.get_ref(),
                                    names.field_types[f].name()
                                ),
                            );
                        }
                        Some(f)
                    });
                    Some(Due::After {
                        amount: d.amount,
                        unit: d.unit,
                        since,
                    })
                }
                Err(e) => {
                    self.err("E016", a.span(), e);
                    None
                }
            },
            (None, Some(at)) => self.script(at, names, scripts).map(Due::At),
            _ => {
                self.err(
                    "E017",
                    span.clone(),
                    format!("timer `{name}` needs exactly one of `after` and `at`"),
                );
                None
            }
        }
    }

    /// A timer's `fire`: a transition enabled in every state the timer is
    /// armed in and that `system` may fire (E012); E005 when unknown.
    fn timer_fire(
        &mut self,
        name: &str,
        f: &Spanned<String>,
        in_states: &[bool],
        names: &Names,
        built: &Built,
    ) -> Option<TimerAction> {
        match built.index.get(f.get_ref()) {
            Some(&ti) => {
                let tr = &built.transitions[ti];
                let states = built.states;
                // E012 at the timer's `fire`, with how to mend it.
                let mut e012 = |msg: String, hint: String| {
                    let d = Diagnostic::new("E012", self.file, f.span(), msg).hint(hint);
                    self.diags.push(d);
                };
                for (s, armed) in in_states.iter().enumerate() {
                    if *armed && !tr.enabled_from(s) && !names.finals[s] {
                        e012(
                            format!(
                                "timer `{name}` fires `{}`, which is not enabled in state `{}`",
                                tr.name, states[s].name
                            ),
                            format!(
                                "add \"{}\" to the `from` of transition `{}`",
                                states[s].name, tr.name
                            ),
                        );
                    }
                }
                if !tr.allows_role("system") {
                    e012(
                        format!(
                            "timer `{name}` fires `{}`, whose `by` does not include \"system\"",
                            tr.name
                        ),
                        format!("add \"system\" to the `by` of transition `{}`", tr.name),
                    );
                }
                Some(TimerAction::Fire(ti))
            }
            None => {
                let hint = Self::did_you_mean(f.get_ref(), built.index.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E005",
                        self.file,
                        f.span(),
                        format!("timer `{name}` fires unknown transition `{}`", f.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }
}
