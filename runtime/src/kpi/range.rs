//! The instants a query covers ([`Range`]), what its rows are grouped by
//! ([`GroupKey`]), and the period buckets of a grouping by period.

use super::{bad, millis, Query, QueryError};
use chrono::{DateTime, Utc};
use leadflow_engine::measure::{buckets, parse_period, Interval, PeriodKind};
use leadflow_engine::Workflow;

/// The instants a query covers: `[from, to)`, either end open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// The period's name when one was asked (`2025-Q1`).
    pub label: Option<String>,
}

impl Range {
    pub fn all() -> Range {
        Range::default()
    }

    /// A period name in the workflow calendar's zone ([`leadflow_engine::measure::PERIOD_FORMS`]).
    pub fn period(wf: &Workflow, s: &str) -> Result<Range, QueryError> {
        let i = parse_period(s, wf.calendar.timezone()).map_err(QueryError::Bad)?;
        Ok(Range::of(i))
    }

    pub(super) fn of(i: Interval) -> Range {
        Range {
            from: Some(i.from),
            to: Some(i.to),
            label: Some(i.label),
        }
    }

    /// `from`/`to` as given on a query: a day (`2025-01-01`, local midnight
    /// in the calendar's zone; `to` a day includes that day) or an RFC 3339
    /// instant (`to` excluded).
    pub fn between(
        wf: &Workflow,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Range, QueryError> {
        let tz = wf.calendar.timezone();
        let parse = |s: &str, end: bool| -> Result<DateTime<Utc>, QueryError> {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                bad(format!(
                    "`{s}` is neither a day (2025-01-31) nor an RFC 3339 instant (2025-01-31T09:00:00+01:00)"
                ))
            })?;
            let d = if end { d.succ_opt().unwrap_or(d) } else { d };
            Ok(leadflow_engine::measure::day_start(d, tz))
        };
        let r = Range {
            from: from.map(|s| parse(s, false)).transpose()?,
            to: to.map(|s| parse(s, true)).transpose()?,
            label: None,
        };
        if let (Some(a), Some(b)) = (r.from, r.to) {
            if b <= a {
                return Err(bad("`to` must be after `from`"));
            }
        }
        Ok(r)
    }

    pub(super) fn is_all(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    pub(super) fn contains(&self, ms: Option<i64>) -> bool {
        if self.is_all() {
            return true;
        }
        let Some(t) = ms else { return false };
        self.from.is_none_or(|f| t >= millis(f)) && self.to.is_none_or(|e| t < millis(e))
    }
}

/// What a row is grouped by.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupKey {
    Assignee,
    State,
    Field(String),
    Period(PeriodKind),
}

impl GroupKey {
    /// `assignee`, `state`, `day`..`year`, or a single-valued field.
    pub fn parse(wf: &Workflow, s: &str) -> Result<GroupKey, QueryError> {
        let s = s.trim();
        if s == "assignee" {
            return Ok(GroupKey::Assignee);
        }
        if s == "state" {
            return Ok(GroupKey::State);
        }
        if let Some(k) = PeriodKind::parse(s) {
            return Ok(GroupKey::Period(k));
        }
        match wf.field(s).map(|f| &wf.fields[f]) {
            Some(f) if f.ty != leadflow_engine::FieldType::List => Ok(GroupKey::Field(s.to_string())),
            Some(_) => Err(bad(format!("cannot group by `{s}`: it is a list field"))),
            None => Err(bad(format!(
                "unknown group_by `{s}`: use assignee, state, day, week, month, quarter, year or a field of workflow `{}`",
                wf.id
            ))),
        }
    }

    /// A comma-separated list.
    pub fn parse_list(wf: &Workflow, s: &str) -> Result<Vec<GroupKey>, QueryError> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| GroupKey::parse(wf, p))
            .collect()
    }

    pub fn name(&self) -> String {
        match self {
            GroupKey::Assignee => "assignee".into(),
            GroupKey::State => "state".into(),
            GroupKey::Field(f) => f.clone(),
            GroupKey::Period(k) => k.as_str().into(),
        }
    }
}

/// The buckets of every period grouping of `q`, in order of `group_by`.
pub(super) fn period_buckets(
    q: &Query<'_>,
    range: &Range,
) -> Result<Option<(PeriodKind, Vec<Interval>)>, QueryError> {
    let kinds: Vec<PeriodKind> = q
        .group_by
        .iter()
        .filter_map(|g| match g {
            GroupKey::Period(k) => Some(*k),
            _ => None,
        })
        .collect();
    match kinds.as_slice() {
        [] => Ok(None),
        [k] => {
            let (Some(from), Some(to)) = (range.from, range.to.or(Some(q.now))) else {
                return Err(bad(format!(
                    "group_by={} needs a range: give period= or from= (and to=)",
                    k.as_str()
                )));
            };
            let b = buckets(*k, from, to, q.wf.calendar.timezone()).map_err(QueryError::Bad)?;
            Ok(Some((*k, b)))
        }
        _ => Err(bad(
            "group by one period (day, week, month, quarter or year) at most",
        )),
    }
}
