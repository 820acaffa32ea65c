//! One `expect` table: [`RawExpect`] -> [`Expect`], record names checked.

use super::raw::{
    report_rows, RawEvent, RawExpect, RawHistory, RawKpiExpect, RawOutbox, RawReportExpect,
    RawRunsExpect,
};
use super::{Parser, ScenarioError};
use crate::scenario::model::*;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use toml::Spanned;

impl Parser<'_> {
    pub(super) fn expect(
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
        let timers = self.timers(raw.timers, span)?;
        let links = self.links(raw.links, span, names)?;
        Ok(Expect {
            record,
            state: raw.state,
            fields: raw.fields.into_iter().collect(),
            empty: raw.empty,
            assignee: raw.assignee,
            outbox: outbox_names(&raw.outbox),
            messages: outbox_messages(raw.outbox),
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
            history: history(raw.history),
            events: events(raw.events),
            links,
            revision: raw.revision,
            views: self.views(raw.views, span, names)?,
            kpis: kpis(raw.kpis),
            reports: reports(raw.reports),
            report_runs: report_runs(raw.report_runs),
        })
    }

    /// `timers = { name = true | false | instant }`
    fn timers(
        &self,
        raw: BTreeMap<String, toml::Value>,
        span: &Range<usize>,
    ) -> Result<BTreeMap<String, TimerExpect>, ScenarioError> {
        let mut timers = BTreeMap::new();
        for (k, v) in raw {
            let t = match v {
                toml::Value::Boolean(true) => TimerExpect::Armed,
                toml::Value::Boolean(false) => TimerExpect::NotArmed,
                other => TimerExpect::At(self.instant(&Spanned::new(span.clone(), other))?),
            };
            timers.insert(k, t);
        }
        Ok(timers)
    }

    /// `links = { name = true | false | record }`
    fn links(
        &self,
        raw: BTreeMap<String, toml::Value>,
        span: &Range<usize>,
        names: &HashSet<String>,
    ) -> Result<BTreeMap<String, LinkExpect>, ScenarioError> {
        let mut links = BTreeMap::new();
        for (k, v) in raw {
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
        Ok(links)
    }

    /// `views = { name = [records] }`
    fn views(
        &self,
        raw: BTreeMap<String, Vec<String>>,
        span: &Range<usize>,
        names: &HashSet<String>,
    ) -> Result<BTreeMap<String, Vec<RecordRef>>, ScenarioError> {
        raw.into_iter()
            .map(|(k, v)| {
                Ok((
                    k,
                    v.iter()
                        .map(|r| self.record(r, span, names))
                        .collect::<Result<_, _>>()?,
                ))
            })
            .collect::<Result<_, ScenarioError>>()
    }
}

/// The template of every `outbox` entry.
fn outbox_names(outbox: &[RawOutbox]) -> Vec<String> {
    outbox
        .iter()
        .map(|o| match o {
            RawOutbox::Name(n) => n.clone(),
            RawOutbox::Message(m) => m.template.clone(),
        })
        .collect()
}

/// The `outbox` entries that check a message's contents.
fn outbox_messages(outbox: Vec<RawOutbox>) -> Vec<MessageExpect> {
    outbox
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
        .collect()
}

fn history(raw: Vec<RawHistory>) -> Vec<HistoryExpect> {
    raw.into_iter()
        .map(|h| HistoryExpect {
            field: h.field,
            old: h.old,
            new: h.new,
            actor: h.actor,
            transition: h.transition,
        })
        .collect()
}

fn events(raw: Vec<RawEvent>) -> Vec<EventExpect> {
    raw.into_iter()
        .map(|e| EventExpect {
            kind: e.kind,
            actor: e.actor,
            transition: e.transition,
            from: e.from,
            to: e.to,
            revision: e.revision,
            changes: e.changes,
        })
        .collect()
}

fn kpis(raw: BTreeMap<String, RawKpiExpect>) -> BTreeMap<String, KpiExpect> {
    raw.into_iter()
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
        .collect()
}

fn reports(raw: BTreeMap<String, RawReportExpect>) -> BTreeMap<String, ReportExpect> {
    raw.into_iter()
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
        .collect()
}

fn report_runs(raw: BTreeMap<String, RawRunsExpect>) -> BTreeMap<String, RunsExpect> {
    raw.into_iter()
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
        .collect()
}
