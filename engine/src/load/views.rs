//! Lists over records: views (states, filter, columns, sort) and reports
//! (filter or `where`, grouping, anchor, schedule, period).

use super::{in_file_order, Names, Resolver, VIEW_COLUMNS};
use crate::diag::Diagnostic;
use crate::measure::PeriodKind;
use crate::model::{Report, TransitionId, View};
use crate::raw::{RawReport, RawView};
use crate::schedule::Schedule;
use crate::script::Scripts;
use std::collections::{BTreeMap, HashMap};
use toml::Spanned;

impl Resolver<'_> {
    /// The `[views.<name>]`, in file order: unknown columns are E004.
    pub(super) fn views(
        &mut self,
        raw: BTreeMap<Spanned<String>, RawView>,
        names: &Names,
        scripts: &mut Scripts,
    ) -> Vec<View> {
        let mut views = Vec::new();
        for (name, _, v) in in_file_order(raw) {
            let states = self.states(&v.states, names, true);
            let filter = v
                .filter
                .as_ref()
                .and_then(|f| self.script(f, names, scripts));
            let mut columns = Vec::new();
            for c in v.columns.iter().chain(v.sort.iter()) {
                let col = c.get_ref().trim_start_matches('-');
                if !names.fields.contains_key(col) && !VIEW_COLUMNS.contains(&col) {
                    let hint = Self::did_you_mean(col, names.fields.keys());
                    self.diags.push(
                        Diagnostic::new(
                            "E004",
                            self.file,
                            c.span(),
                            format!("view `{name}` shows unknown column `{col}`"),
                        )
                        .hint(hint),
                    );
                }
            }
            for c in &v.columns {
                columns.push(c.get_ref().clone());
            }
            views.push(View {
                title: v.title.unwrap_or_else(|| name.clone()),
                name,
                states,
                filter,
                filter_source: v.filter.map(|f| f.into_inner()),
                columns,
                sort: v.sort.map(|s| s.into_inner()),
            });
        }
        views
    }

    /// The `[reports.<name>]`, in file order.
    pub(super) fn reports(
        &mut self,
        raw: BTreeMap<Spanned<String>, RawReport>,
        names: &Names,
        transitions: &HashMap<String, TransitionId>,
        scripts: &mut Scripts,
    ) -> Vec<Report> {
        let mut reports = Vec::new();
        for (name, _, r) in in_file_order(raw) {
            reports.push(self.report(name, r, names, transitions, scripts));
        }
        reports
    }

    /// One report: `group_by` (E004), a Rhai `filter` or a `where` (E031
    /// for both), `anchor`, then `every` and `period`.
    fn report(
        &mut self,
        name: String,
        r: RawReport,
        names: &Names,
        transition_index: &HashMap<String, TransitionId>,
        scripts: &mut Scripts,
    ) -> Report {
        let filter = r
            .filter
            .as_ref()
            .and_then(|f| self.script(f, names, scripts));
        for g in &r.group_by {
            if !names.fields.contains_key(g.get_ref())
                && !VIEW_COLUMNS.contains(&g.get_ref().as_str())
            {
                self.err(
                    "E004",
                    g.span(),
                    format!("report `{name}` groups by unknown field `{}`", g.get_ref()),
                );
            }
        }
        let ctx = format!("report `{name}`");
        let spec = r.where_.as_ref().map(|w| crate::measure::Spec {
            of: self.measure_where(&ctx, w, names),
            measure: crate::measure::Measure::Count,
        });
        if let (Some(w), Some(_)) = (&r.where_, &r.filter) {
            self.err(
                "E031",
                w.span(),
                format!("{ctx} has both a Rhai `filter` and a `where`: keep one"),
            );
        }
        let anchor = r
            .anchor
            .as_ref()
            .map(|a| self.moment(&ctx, a, names, transition_index))
            .unwrap_or(crate::measure::Moment::Created);
        let (schedule, period) = self.report_schedule(&ctx, &r);
        Report {
            title: r.title.unwrap_or_else(|| name.clone()),
            name,
            every: r.every.map(|e| e.into_inner()),
            schedule,
            filter,
            spec,
            group_by: r.group_by.into_iter().map(|g| g.into_inner()).collect(),
            charge: r.charge,
            currency: r.currency,
            notify: r.notify,
            period,
            anchor,
        }
    }

    /// When a report runs (`every`, E032; W006 for a `notify` that reaches
    /// nobody) and the period it covers (`period`, E031; by default the
    /// schedule's).
    fn report_schedule(
        &mut self,
        ctx: &str,
        r: &RawReport,
    ) -> (Option<Schedule>, Option<PeriodKind>) {
        let schedule = match &r.every {
            Some(e) => match Schedule::parse(e.get_ref()) {
                Ok(s) => Some(s),
                Err(m) => {
                    self.err("E032", e.span(), format!("{ctx}: {m}"));
                    None
                }
            },
            None => None,
        };
        if let (Some(_), Some(e)) = (&r.notify, &r.every) {
            if !r.group_by.iter().any(|g| g.get_ref() == "assignee") {
                self.err(
                    "W006",
                    e.span(),
                    format!("{ctx} runs `every = \"{}\"` with `notify`, but is not grouped by assignee: its message reaches nobody", e.get_ref()),
                );
            }
        }
        let period = match &r.period {
            // The whole history, whatever `every` says.
            Some(p) if p.get_ref() == "all" => None,
            Some(p) => {
                let k = PeriodKind::parse(p.get_ref());
                if k.is_none() {
                    self.err(
                        "E031",
                        p.span(),
                        format!("{ctx} has unknown period `{}`: use day, week, month, quarter, year or all", p.get_ref()),
                    );
                }
                k
            }
            None => schedule.and_then(|s| s.period()),
        };
        (schedule, period)
    }
}
