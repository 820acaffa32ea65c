//! `Resolver::workflow`: one workflow file, resolved step by step in the
//! order the format documents its tables: calendar, rules modules, fields
//! (`fields.rs`), customer, area and roles, states, transitions and timers
//! (`transitions.rs`); then views, queues, KPIs and reports (`views.rs`,
//! `queue.rs`, `kpi.rs`), and the final assembly.

use super::transitions::Built;
use super::{content_hash, in_file_order, Calendars, Names, Resolver};
use crate::calendar::Calendar;
use crate::diag::Diagnostic;
use crate::model::*;
use crate::raw::{RawEffect, RawField, RawFile, RawState, RawTimer, RawTransition};
use crate::script::Scripts;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

impl Resolver<'_> {
    /// One workflow file, resolved. `None` when there is nothing to load
    /// (no states, no script engine); the diagnostics say why.
    pub(super) fn workflow(&mut self, raw: RawFile, calendars: &Calendars) -> Option<Workflow> {
        let mut hash_input = self.file.text.clone();
        // Calendar.
        let calendar = self.calendar(raw.workflow.calendar.as_ref(), calendars, &mut hash_input);
        // Rules modules.
        let mut scripts = self.rules(&raw.workflow.rules, &calendar, &mut hash_input)?;

        // States.
        let states_raw = in_file_order(raw.states);
        // Fields.
        let fields_raw = in_file_order(raw.fields);
        let names = names(&states_raw, &fields_raw);
        let mut fields = Vec::new();
        for (name, span, f) in fields_raw {
            fields.push(self.field_decl(name, span, f, &names));
        }
        let customer = self.customer(raw.customer.as_ref(), &names);
        self.area = self.area_field(raw.workflow.area.as_ref(), &names);
        let visible_to = self.relations(&raw.workflow.visible_to, raw.workflow.area.is_some());
        let reveal_to = self.relations(&raw.workflow.reveal_to, raw.workflow.area.is_some());
        self.customer_email = customer.email.is_some();
        self.set_roles(
            raw.workflow.roles.as_ref(),
            &raw.transitions,
            &raw.timers,
            &states_raw,
        );

        let initial = self.state(&raw.workflow.initial, &names).unwrap_or(0);
        if states_raw.is_empty() {
            self.err(
                "E003",
                raw.workflow.initial.span(),
                "the workflow declares no states",
            );
            return None;
        }
        let states = self.state_decls(states_raw, initial, &names, &mut scripts);

        // Transitions.
        let has_area = raw.workflow.area.is_some();
        let (transitions, transition_index) =
            self.transitions(raw.transitions, &raw.timers, has_area, &names, &mut scripts);

        // Timers.
        let built = Built {
            states: &states,
            transitions: &transitions,
            index: &transition_index,
        };
        let timers = self.timers(raw.timers, &names, &built, &mut scripts);
        let timer_index = timers
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();

        // Views, KPIs, reports.
        let views = self.views(raw.views, &names, &mut scripts);
        let queues = self.queues(raw.queues, &names, &mut scripts);
        let kpis = self.kpis(raw.kpis, &names, &transition_index, &mut scripts);
        let reports = self.reports(raw.reports, &names, &transition_index, &mut scripts);

        self.check_roles();
        let Names {
            states: state_index,
            fields: field_index,
            ..
        } = names;
        Some(Workflow {
            id: raw.workflow.id.into_inner(),
            title: raw.workflow.title.unwrap_or_default(),
            record: raw.workflow.record.unwrap_or_else(|| "lead".into()),
            file: self.file.path.clone(),
            hash: content_hash(&hash_input),
            initial,
            states,
            fields,
            transitions,
            timers,
            views,
            queues,
            kpis,
            reports,
            calendar,
            customer,
            area: self.area,
            visible_to,
            reveal_to,
            scripts,
            state_index,
            field_index,
            transition_index,
            timer_index,
        })
    }

    /// `[workflow] calendar`: a calendar of the project (its text goes into
    /// the content hash), or always open (E010 when unknown).
    fn calendar(
        &mut self,
        name: Option<&Spanned<String>>,
        calendars: &Calendars,
        hash_input: &mut String,
    ) -> Arc<Calendar> {
        match name {
            None => Arc::new(Calendar::always_open()),
            Some(c) => match calendars.get(c.get_ref()) {
                Some(Ok((cal, text))) => {
                    hash_input.push_str(text);
                    cal.clone()
                }
                Some(Err(())) => Arc::new(Calendar::always_open()),
                None => {
                    let hint = Self::did_you_mean(c.get_ref(), calendars.keys());
                    self.diags.push(
                        Diagnostic::new(
                            "E010",
                            self.file,
                            c.span(),
                            format!("unknown calendar `{}`", c.get_ref()),
                        )
                        .hint(format!("add calendars/{}.toml; {hint}", c.get_ref())),
                    );
                    Arc::new(Calendar::always_open())
                }
            },
        }
    }

    /// `[workflow] rules`: the rules modules (E009 when missing, E008 when
    /// they do not compile, their script findings), compiled into the
    /// script engine of the workflow; their text goes into the content hash.
    fn rules(
        &mut self,
        list: &[Spanned<String>],
        calendar: &Arc<Calendar>,
        hash_input: &mut String,
    ) -> Option<Scripts> {
        let mut rules = Vec::new();
        for r in list {
            match self.project.rules.iter().find(|f| &f.path == r.get_ref()) {
                Some(f) => {
                    hash_input.push_str(&f.text);
                    rules.push((f.path.as_str(), f.text.as_str()));
                }
                None => {
                    self.rules_incomplete = true;
                    let known: Vec<String> =
                        self.project.rules.iter().map(|f| f.path.clone()).collect();
                    let hint = Self::did_you_mean(r.get_ref(), known.iter());
                    self.diags.push(
                        Diagnostic::new(
                            "E009",
                            self.file,
                            r.span(),
                            format!("rules module `{}` not found", r.get_ref()),
                        )
                        .hint(hint),
                    );
                }
            }
        }
        let scripts = match Scripts::new(calendar.clone(), &rules) {
            Ok(s) => s,
            Err((path, e)) => {
                self.rules_incomplete = true;
                if let Some(f) = self.project.rules.iter().find(|f| f.path == path) {
                    let off = f.offset_of(e.line, e.column);
                    self.diags.push(Diagnostic::new(
                        "E008",
                        f,
                        off..off + 1,
                        format!("rules module does not compile: {}", e.message),
                    ));
                }
                Scripts::new(calendar.clone(), &[]).ok()?
            }
        };
        for (path, p) in scripts.module_problems() {
            let Some(f) = self.project.rules.iter().find(|f| &f.path == path) else {
                continue;
            };
            let (line, column) = p.position();
            let at = f.offset_of(line, column);
            if let Some(d) = self.problem(p, f, at, None) {
                self.diags.push(d);
            }
        }
        Some(scripts)
    }

    /// The roles of the workflow: `[workflow] roles` when declared, else
    /// the roles its transitions and `assign`s name.
    fn set_roles(
        &mut self,
        declared: Option<&Vec<Spanned<String>>>,
        transitions: &BTreeMap<Spanned<String>, RawTransition>,
        timers: &BTreeMap<Spanned<String>, RawTimer>,
        states_raw: &[(String, Range<usize>, RawState)],
    ) {
        self.declared_roles = declared.map(|r| r.iter().map(|x| x.get_ref().clone()).collect());
        self.roles = match &self.declared_roles {
            Some(d) => d.clone(),
            None => known_roles(transitions, timers, states_raw),
        };
    }

    /// The states, in file order, with their `on_enter` effects.
    fn state_decls(
        &mut self,
        states_raw: Vec<(String, Range<usize>, RawState)>,
        initial: StateId,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Vec<State> {
        let mut states = Vec::new();
        for (name, span, s) in states_raw {
            self.in_initial = states.len() == initial;
            let on_enter = self.effects(&s.on_enter, names, scripts);
            self.in_initial = false;
            states.push(State {
                title: s.title.unwrap_or_else(|| name.clone()),
                name,
                is_final: s.is_final,
                on_enter,
                span,
            });
        }
        states
    }
}

/// Tables of the names of states and fields, in file order.
fn names(
    states_raw: &[(String, Range<usize>, RawState)],
    fields_raw: &[(String, Range<usize>, RawField)],
) -> Names {
    let mut state_index = HashMap::new();
    for (i, (name, _, _)) in states_raw.iter().enumerate() {
        state_index.insert(name.clone(), i);
    }
    let finals: Vec<bool> = states_raw.iter().map(|(_, _, s)| s.is_final).collect();
    let field_index: Arc<HashMap<String, FieldId>> = Arc::new(
        fields_raw
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| (n.clone(), i))
            .collect(),
    );
    Names {
        states: state_index,
        finals,
        fields: field_index,
        field_types: fields_raw.iter().map(|(_, _, f)| *f.ty.get_ref()).collect(),
    }
}

/// Roles a workflow names: in `by` (not `system` or `*`) and in `assign`.
fn known_roles(
    transitions: &BTreeMap<Spanned<String>, crate::raw::RawTransition>,
    timers: &BTreeMap<Spanned<String>, crate::raw::RawTimer>,
    states: &[(String, Range<usize>, crate::raw::RawState)],
) -> Vec<String> {
    fn assigns(list: &[Spanned<RawEffect>], out: &mut Vec<String>) {
        out.extend(list.iter().filter_map(|e| e.get_ref().assign.clone()));
    }
    let mut out = Vec::new();
    for (_, _, s) in states {
        assigns(&s.on_enter, &mut out);
    }
    for t in transitions.values() {
        out.extend(
            t.by.iter()
                .filter_map(|b| match crate::org::Relation::parse(b.get_ref()) {
                    Ok(r) => r.role().map(str::to_string),
                    Err(_) => None,
                })
                .filter(|b| b != "system" && b != "*"),
        );
        assigns(&t.effects, &mut out);
    }
    for t in timers.values() {
        assigns(&t.effects, &mut out);
    }
    out.sort();
    out.dedup();
    out
}
