//! KPIs and the declared measures they and reports use: `where` tables,
//! moments (`created`, a field, `transition:`, `entered:`), groupings.

use super::{in_file_order, Names, Resolver};
use crate::diag::Diagnostic;
use crate::duration::Span as Dur;
use crate::model::{Kpi, TransitionId};
use crate::raw::RawKpi;
use crate::script::Scripts;
use crate::value::{FieldType, Value};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use toml::Spanned;

impl Resolver<'_> {
    /// The `[kpis.<name>]`, in file order; a KPI with an error is left out.
    pub(super) fn kpis(
        &mut self,
        raw: BTreeMap<Spanned<String>, RawKpi>,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
        scripts: &mut Scripts,
    ) -> Vec<Kpi> {
        let mut kpis = Vec::new();
        for (name, span, k) in in_file_order(raw) {
            if let Some(kpi) = self.kpi(name, span, k, names, transitions, scripts) {
                kpis.push(kpi);
            }
        }
        kpis
    }

    /// A KPI: the Rhai form (`of`/`hit`) or the declared one; the two
    /// forms do not mix.
    #[allow(clippy::too_many_arguments)]
    fn kpi(
        &mut self,
        name: String,
        span: Range<usize>,
        k: RawKpi,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
        scripts: &mut Scripts,
    ) -> Option<Kpi> {
        use crate::measure::Moment;
        let ctx = format!("kpi `{name}`");
        let declared = k.where_.is_some()
            || k.hits.is_some()
            || k.start.is_some()
            || k.stop.is_some()
            || k.within.is_some()
            || !k.funnel.is_empty();
        let anchor = k
            .anchor
            .as_ref()
            .map(|a| self.moment(&ctx, a, names, transitions))
            .unwrap_or(Moment::Created);
        let window = k
            .window
            .as_ref()
            .and_then(|w| match Dur::parse(w.get_ref()) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err("E016", w.span(), format!("{ctx}: window {e}"));
                    None
                }
            });
        let mut group_by = Vec::new();
        for g in &k.group_by {
            self.group_key(&ctx, g, names);
            group_by.push(g.get_ref().clone());
        }
        let (of, hit, spec) = if declared {
            let spec = self.kpi_declared(&ctx, &span, &k, names, transitions);
            (None, None, Some(spec))
        } else {
            let Some(h) = &k.hit else {
                self.err(
                    "E031",
                    span,
                    format!("{ctx} measures nothing: give `hits`, `start`/`stop` with `within`, `funnel`, or a Rhai `hit`"),
                );
                return None;
            };
            let of = k.of.as_ref().and_then(|f| self.script(f, names, scripts));
            let hit = self.script(h, names, scripts)?;
            (of, Some(hit), None)
        };
        Some(Kpi {
            title: k.title.unwrap_or_else(|| name.clone()),
            name,
            of,
            hit,
            spec,
            target: k.target,
            anchor,
            window,
            group_by,
        })
    }

    /// The declared form of a KPI: a population (`where`) and one measure
    /// (`hits`, `start`/`stop` with `within`, or `funnel`).
    fn kpi_declared(
        &mut self,
        ctx: &str,
        span: &Range<usize>,
        k: &RawKpi,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
    ) -> crate::measure::Spec {
        use crate::measure::{Measure, Spec};
        if let Some(r) = k.of.as_ref().or(k.hit.as_ref()) {
            self.err(
                "E031",
                r.span(),
                format!("{ctx} mixes Rhai `of`/`hit` with declared keys (where, hits, start, stop, within, funnel): keep one form"),
            );
        }
        let of = k
            .where_
            .as_ref()
            .map(|w| self.measure_where(ctx, w, names))
            .unwrap_or_default();
        let kinds = usize::from(k.hits.is_some())
            + usize::from(k.start.is_some() || k.stop.is_some() || k.within.is_some())
            + usize::from(!k.funnel.is_empty());
        if kinds > 1 {
            self.err(
                "E031",
                span.clone(),
                format!("{ctx} declares more than one measure: give one of `hits`, `start`/`stop` (with `within`) or `funnel`"),
            );
        }
        let measure = if let Some(h) = &k.hits {
            Measure::Ratio(self.measure_where(ctx, h, names))
        } else if !k.funnel.is_empty() {
            for st in &k.funnel {
                self.measure_state(ctx, st, names);
            }
            Measure::Funnel(k.funnel.iter().map(|s| s.get_ref().clone()).collect())
        } else {
            match (&k.start, &k.stop) {
                (Some(a), Some(b)) => {
                    let within = k
                        .within
                        .as_ref()
                        .and_then(|w| match Dur::parse(w.get_ref()) {
                            Ok(d) => Some(d),
                            Err(e) => {
                                self.err("E016", w.span(), format!("{ctx}: within {e}"));
                                None
                            }
                        });
                    Measure::Sla {
                        start: self.moment(ctx, a, names, transitions),
                        stop: self.moment(ctx, b, names, transitions),
                        within,
                    }
                }
                _ => {
                    let at = k
                        .start
                        .as_ref()
                        .or(k.stop.as_ref())
                        .or(k.within.as_ref())
                        .map_or(span.clone(), |s| s.span());
                    self.err(
                        "E031",
                        at,
                        format!("{ctx} measures a duration: give both `start` and `stop`"),
                    );
                    Measure::Count
                }
            }
        };
        Spec { of, measure }
    }

    /// A KPI's grouping: `assignee`, `state`, a period, or a field.
    fn group_key(&mut self, ctx: &str, g: &Spanned<String>, names: &Names) {
        let key = g.get_ref().as_str();
        if ["assignee", "state"].contains(&key) || crate::measure::PeriodKind::parse(key).is_some()
        {
            return;
        }
        match names.fields.get(key) {
            Some(&f) if names.field_types[f] == FieldType::List => self.err(
                "E031",
                g.span(),
                format!("{ctx} groups by `{key}`, a list field: group by a single-valued field"),
            ),
            Some(_) => {}
            None => {
                let hint = Self::did_you_mean(key, names.fields.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E031",
                        self.file,
                        g.span(),
                        format!("{ctx} groups by unknown `{key}`: use assignee, state, day, week, month, quarter, year or a field"),
                    )
                    .hint(hint),
                );
            }
        }
    }

    fn measure_state(&mut self, ctx: &str, s: &Spanned<String>, names: &Names) {
        if !names.states.contains_key(s.get_ref()) {
            let hint = Self::did_you_mean(s.get_ref(), names.states.keys());
            self.diags.push(
                Diagnostic::new(
                    "E031",
                    self.file,
                    s.span(),
                    format!("{ctx} names unknown state `{}`", s.get_ref()),
                )
                .hint(hint),
            );
        }
    }

    /// A field a measure reads, checked against `ok` types (empty: any).
    fn measure_field(
        &mut self,
        ctx: &str,
        f: &Spanned<String>,
        names: &Names,
        ok: &[FieldType],
    ) -> Option<FieldType> {
        match names.fields.get(f.get_ref()) {
            Some(&id) => {
                let ty = names.field_types[id];
                if !ok.is_empty() && !ok.contains(&ty) {
                    let want: Vec<&str> = ok.iter().map(|t| t.name()).collect();
                    self.err(
                        "E031",
                        f.span(),
                        format!(
                            "{ctx} reads `{}` as {}, but it is {}",
                            f.get_ref(),
                            want.join(" or "),
                            ty.name()
                        ),
                    );
                    return None;
                }
                Some(ty)
            }
            None => {
                let hint = Self::did_you_mean(f.get_ref(), names.fields.keys());
                self.diags.push(
                    Diagnostic::new(
                        "E031",
                        self.file,
                        f.span(),
                        format!("{ctx} names unknown field `{}`", f.get_ref()),
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    /// `created`, a datetime field, `transition:<name>` or `entered:<state>`.
    pub(super) fn moment(
        &mut self,
        ctx: &str,
        s: &Spanned<String>,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
    ) -> crate::measure::Moment {
        use crate::measure::Moment;
        let m = Moment::parse(s.get_ref());
        match &m {
            Moment::Created => {}
            Moment::Field(_) => {
                self.measure_field(ctx, s, names, &[FieldType::Datetime]);
            }
            Moment::Transition(t) => {
                if !transitions.contains_key(t) {
                    let hint = Self::did_you_mean(t, transitions.keys());
                    self.diags.push(
                        Diagnostic::new(
                            "E031",
                            self.file,
                            s.span(),
                            format!("{ctx} names unknown transition `{t}`"),
                        )
                        .hint(hint),
                    );
                }
            }
            Moment::Entered(st) => {
                let st = Spanned::new(s.span(), st.clone());
                self.measure_state(ctx, &st, names);
            }
        }
        m
    }

    /// A declared condition table: names checked, values typed as their
    /// fields store them.
    pub(super) fn measure_where(
        &mut self,
        ctx: &str,
        w: &Spanned<crate::raw::RawWhere>,
        names: &Names,
    ) -> crate::measure::Where {
        use crate::measure::{json_text, Where};
        let raw = w.get_ref();
        let mut out = Where::default();
        for (list, into) in [
            (&raw.state, &mut out.states),
            (&raw.reached, &mut out.reached),
        ] {
            for st in list {
                self.measure_state(ctx, st, names);
                into.push(st.get_ref().clone());
            }
        }
        for (list, into) in [(&raw.set, &mut out.set), (&raw.unset, &mut out.unset)] {
            for f in list {
                self.measure_field(ctx, f, names, &[]);
                into.push(f.get_ref().clone());
            }
        }
        for (f, v) in &raw.equals {
            let Some(ty) = self.measure_field(ctx, f, names, &[]) else {
                continue;
            };
            let items: Vec<&toml::Value> = match v.get_ref() {
                toml::Value::Array(a) if ty != FieldType::List => a.iter().collect(),
                one => vec![one],
            };
            let mut texts = Vec::new();
            for item in items {
                match ty.coerce(Value::from_toml(item)) {
                    Ok(val) => texts.extend(json_text(Some(&val.to_json()))),
                    Err(e) => self.err(
                        "E019",
                        v.span(),
                        format!("{ctx}: `{}` cannot equal {item}: {e}", f.get_ref()),
                    ),
                }
            }
            out.equals.push((f.get_ref().clone(), texts));
        }
        for (map, into) in [(&raw.above, &mut out.above), (&raw.below, &mut out.below)] {
            for (f, v) in map {
                if self
                    .measure_field(ctx, f, names, &[FieldType::Int, FieldType::Decimal])
                    .is_none()
                {
                    continue;
                }
                match FieldType::Decimal.coerce(Value::from_toml(v.get_ref())) {
                    Ok(Value::Decimal(d)) => into.push((f.get_ref().clone(), d)),
                    _ => self.err(
                        "E019",
                        v.span(),
                        format!(
                            "{ctx}: `{}` compares with a number, not {}",
                            f.get_ref(),
                            v.get_ref()
                        ),
                    ),
                }
            }
        }
        out
    }
}
