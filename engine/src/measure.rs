//! KPIs and reports as declarations a store can compute in SQL (docs/kpis.md):
//! which instant places a record in a period ([`Moment`]), conditions
//! without scripts ([`Where`]), the measure itself ([`Measure`]), and
//! periods in a calendar's time zone ([`Interval`], [`PeriodKind`]).
//!
//! Pure: the runtime turns a [`Spec`] into SQL for PostgreSQL and SQLite,
//! and the memory store evaluates the same semantics with
//! [`Where::test`] and the helpers here, so the three agree by test.

use crate::duration::{Span, Unit};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use std::str::FromStr;

/// An instant of a record a measure reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    /// When the record was created.
    Created,
    /// A datetime field.
    Field(String),
    /// The first firing of a transition (from the record's events).
    Transition(String),
    /// The first entering of a state (from the record's events).
    Entered(String),
}

impl Moment {
    /// `created`, `transition:<name>`, `entered:<state>`, or a field name.
    pub fn parse(s: &str) -> Moment {
        if s == "created" {
            Moment::Created
        } else if let Some(t) = s.strip_prefix("transition:") {
            Moment::Transition(t.to_string())
        } else if let Some(st) = s.strip_prefix("entered:") {
            Moment::Entered(st.to_string())
        } else {
            Moment::Field(s.to_string())
        }
    }

    /// The text form, as declared.
    pub fn text(&self) -> String {
        match self {
            Moment::Created => "created".into(),
            Moment::Field(f) => f.clone(),
            Moment::Transition(t) => format!("transition:{t}"),
            Moment::Entered(s) => format!("entered:{s}"),
        }
    }
}

/// Conditions a record meets, all of them (an empty `Where` selects every
/// record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Where {
    /// Current state is one of these.
    pub states: Vec<String>,
    /// In, or has ever entered, one of these states.
    pub reached: Vec<String>,
    pub set: Vec<String>,
    pub unset: Vec<String>,
    /// Field's stored value, as text ([`json_text`]), is one of these.
    pub equals: Vec<(String, Vec<String>)>,
    pub above: Vec<(String, Decimal)>,
    pub below: Vec<(String, Decimal)>,
}

/// A stored JSON value as the text SQL compares and groups by: strings as
/// they are, numbers and booleans in their JSON form, `None` for null and
/// absent values (lists and objects in their compact JSON form).
pub fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A stored JSON value as a number (decimals are stored as strings).
pub fn json_number(v: Option<&serde_json::Value>) -> Option<Decimal> {
    match v? {
        serde_json::Value::String(s) => Decimal::from_str(s.trim()).ok(),
        serde_json::Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .ok(),
        _ => None,
    }
}

impl Where {
    pub fn is_empty(&self) -> bool {
        *self == Where::default()
    }

    /// Whether a record in `state` with `fields` meets every condition;
    /// `ever` tells whether it has ever entered a state (its events).
    pub fn test(
        &self,
        state: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
        ever: &dyn Fn(&str) -> bool,
    ) -> bool {
        let text = |f: &str| json_text(fields.get(f));
        (self.states.is_empty() || self.states.iter().any(|s| s == state))
            && (self.reached.is_empty() || self.reached.iter().any(|s| s == state || ever(s)))
            && self.set.iter().all(|f| text(f).is_some())
            && self.unset.iter().all(|f| text(f).is_none())
            && self
                .equals
                .iter()
                .all(|(f, vs)| text(f).is_some_and(|t| vs.contains(&t)))
            && self
                .above
                .iter()
                .all(|(f, n)| json_number(fields.get(f)).is_some_and(|v| v > *n))
            && self
                .below
                .iter()
                .all(|(f, n)| json_number(fields.get(f)).is_some_and(|v| v < *n))
    }
}

/// What a KPI measures over its population.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Hits: the records that also meet these conditions.
    Ratio(Where),
    /// Hits: `stop` at most `within` after `start`; records without
    /// `start` are not in the population; durations are reported too.
    Sla {
        start: Moment,
        stop: Moment,
        within: Option<Span>,
    },
    /// How many reached each state (hits: the last).
    Funnel(Vec<String>),
    /// Only the population (reports).
    Count,
}

/// A declared (SQL-able) KPI or report.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub of: Where,
    pub measure: Measure,
}

impl Spec {
    /// Whether the measure needs the workflow's calendar per record
    /// (working hours or days), which SQL does not know.
    pub fn needs_calendar(&self) -> bool {
        matches!(
            &self.measure,
            Measure::Sla { within: Some(s), .. }
                if matches!(s.unit, Unit::WorkingHours | Unit::WorkingDays)
        )
    }

    /// The SLA target as a fixed length in milliseconds (m, h, d as 24 h,
    /// w as 7 × 24 h, as Rhai's `days()`), if it has one.
    pub fn within_ms(&self) -> Option<i64> {
        match &self.measure {
            Measure::Sla {
                within: Some(s), ..
            } => match s.unit {
                Unit::Minutes => Some(s.amount.saturating_mul(60_000)),
                Unit::Hours => Some(s.amount.saturating_mul(3_600_000)),
                Unit::Days => Some(s.amount.saturating_mul(86_400_000)),
                Unit::Weeks => Some(s.amount.saturating_mul(7 * 86_400_000)),
                Unit::WorkingHours | Unit::WorkingDays => None,
            },
            _ => None,
        }
    }
}

/// Calendar periods a report covers or a KPI groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl PeriodKind {
    pub fn parse(s: &str) -> Option<PeriodKind> {
        Some(match s {
            "day" => PeriodKind::Day,
            "week" => PeriodKind::Week,
            "month" => PeriodKind::Month,
            "quarter" => PeriodKind::Quarter,
            "year" => PeriodKind::Year,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Year => "year",
        }
    }

    /// First day of the period holding `d`.
    pub fn start(self, d: NaiveDate) -> NaiveDate {
        let ymd = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d);
        match self {
            PeriodKind::Day => d,
            PeriodKind::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            PeriodKind::Month => ymd(d.year(), d.month()),
            PeriodKind::Quarter => ymd(d.year(), (d.month() - 1) / 3 * 3 + 1),
            PeriodKind::Year => ymd(d.year(), 1),
        }
    }

    /// First day of the next period after the one starting at `start`.
    fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            PeriodKind::Day => start.succ_opt(),
            PeriodKind::Week => start.checked_add_signed(Duration::days(7)),
            PeriodKind::Month => start.checked_add_months(chrono::Months::new(1)),
            PeriodKind::Quarter => start.checked_add_months(chrono::Months::new(3)),
            PeriodKind::Year => start.checked_add_months(chrono::Months::new(12)),
        }
    }

    /// The period's name: `2025-03-04`, `2025-W10` (ISO week), `2025-03`,
    /// `2025-Q1`, `2025`.
    fn label(self, start: NaiveDate) -> String {
        match self {
            PeriodKind::Day => start.format("%Y-%m-%d").to_string(),
            PeriodKind::Week => {
                let w = start.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            PeriodKind::Month => start.format("%Y-%m").to_string(),
            PeriodKind::Quarter => format!("{}-Q{}", start.year(), (start.month() - 1) / 3 + 1),
            PeriodKind::Year => start.year().to_string(),
        }
    }
}

/// A half-open span of time `[from, to)` with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub label: String,
}

/// The accepted period forms, for error messages.
pub const PERIOD_FORMS: &str = "2025-Q1 (quarter), 2025-03 (month), 2025-W10 (ISO week), 2025-03-04 (day), 2025 (year) or 2025-01-01..2025-03-31 (days, both included)";

/// Midnight starting local day `d` in `tz` (the first instant of the day
/// when midnight falls in a DST gap).
pub fn day_start(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut t = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.with_timezone(&Utc);
        }
        t += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

fn interval(d0: NaiveDate, d1: NaiveDate, tz: Tz, label: String) -> Interval {
    Interval {
        from: day_start(d0, tz),
        to: day_start(d1, tz),
        label,
    }
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// Parse a period name, in the time zone `tz`: see [`PERIOD_FORMS`].
pub fn parse_period(s: &str, tz: Tz) -> Result<Interval, String> {
    let bad = || format!("period `{s}` is not one of: {PERIOD_FORMS}");
    let t = s.trim();
    if let Some((a, b)) = t.split_once("..") {
        let (a, b) = (date(a).ok_or_else(bad)?, date(b).ok_or_else(bad)?);
        let end = b.succ_opt().ok_or_else(bad)?;
        if end <= a {
            return Err(format!("period `{s}` ends before it starts"));
        }
        return Ok(interval(a, end, tz, t.to_string()));
    }
    let kind_start = if let Some(d) = date(t) {
        (PeriodKind::Day, d)
    } else if let Some((y, q)) = t.split_once("-Q") {
        let (y, q): (i32, u32) = (y.parse().map_err(|_| bad())?, q.parse().map_err(|_| bad())?);
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        let d = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1).ok_or_else(bad)?;
        (PeriodKind::Quarter, d)
    } else if let Some((y, w)) = t.split_once("-W") {
        let (y, w): (i32, u32) = (y.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
        let d = NaiveDate::from_isoywd_opt(y, w, Weekday::Mon).ok_or_else(bad)?;
        (PeriodKind::Week, d)
    } else if let Some((y, m)) = t.split_once('-') {
        let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if m.to_string().len() > 2 || y < 0 {
            return Err(bad());
        }
        let d = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
        (PeriodKind::Month, d)
    } else if t.len() == 4 && t.chars().all(|c| c.is_ascii_digit()) {
        let y: i32 = t.parse().map_err(|_| bad())?;
        (
            PeriodKind::Year,
            NaiveDate::from_ymd_opt(y, 1, 1).ok_or_else(bad)?,
        )
    } else {
        return Err(bad());
    };
    let (kind, d) = kind_start;
    let end = kind.next(d).ok_or_else(bad)?;
    Ok(interval(d, end, tz, kind.label(d)))
}

/// The period of `kind` holding instant `t` (in `tz`).
pub fn period_of(kind: PeriodKind, t: DateTime<Utc>, tz: Tz) -> Interval {
    let d = kind.start(t.with_timezone(&tz).date_naive());
    let end = kind.next(d).unwrap_or(d);
    interval(d, end, tz, kind.label(d))
}

/// The most buckets one query may group by.
pub const MAX_BUCKETS: usize = 5000;

/// The periods of `kind` that meet `[from, to)`, in order, each cut to
/// `[from, to)` (so every instant of the range is in exactly one).
pub fn buckets(
    kind: PeriodKind,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> Result<Vec<Interval>, String> {
    let mut out = Vec::new();
    let mut p = period_of(kind, from, tz);
    while p.from < to {
        if out.len() >= MAX_BUCKETS {
            return Err(format!(
                "grouping by {} gives more than {MAX_BUCKETS} periods: ask for a shorter range",
                kind.as_str()
            ));
        }
        let next_day = p.to.with_timezone(&tz).date_naive();
        let next = period_of(kind, p.to, tz);
        let next = if next.from <= p.from {
            // Defensive: never loop on a degenerate period.
            let d = next_day.succ_opt().unwrap_or(next_day);
            period_of(kind, day_start(d, tz), tz)
        } else {
            next
        };
        out.push(Interval {
            from: p.from.max(from),
            to: p.to.min(to),
            label: p.label,
        });
        p = next;
    }
    Ok(out)
}

/// An instant as the milliseconds since the epoch SQL compares.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rome() -> Tz {
        "Europe/Rome".parse().unwrap()
    }

    #[test]
    fn periods_parse_in_the_calendar_zone() {
        let q = parse_period("2025-Q1", rome()).unwrap();
        assert_eq!(q.from.to_rfc3339(), "2024-12-31T23:00:00+00:00");
        assert_eq!(q.to.to_rfc3339(), "2025-03-31T22:00:00+00:00");
        assert_eq!(q.label, "2025-Q1");
        let m = parse_period("2025-03", rome()).unwrap();
        assert_eq!(m.to.to_rfc3339(), "2025-03-31T22:00:00+00:00");
        let w = parse_period("2025-W10", rome()).unwrap();
        assert_eq!(w.from.to_rfc3339(), "2025-03-02T23:00:00+00:00");
        let c = parse_period("2025-01-01..2025-03-31", rome()).unwrap();
        assert_eq!((c.from, c.to), (q.from, q.to));
        assert_eq!(parse_period("2025", rome()).unwrap().label, "2025");
        for bad in [
            "2025-Q5",
            "2025-13",
            "Q1",
            "2025-W60",
            "2025-03-31..2025-01-01",
            "",
        ] {
            let e = parse_period(bad, rome()).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn dst_week_is_one_bucket_of_167_hours() {
        // 2025-03-30: Italy moves to summer time; ISO week 13 has 167 hours.
        let w = parse_period("2025-W13", rome()).unwrap();
        assert_eq!((w.to - w.from).num_hours(), 167);
        let b = buckets(PeriodKind::Week, w.from, w.to, rome()).unwrap();
        assert_eq!(b.len(), 1);
        let days = buckets(PeriodKind::Day, w.from, w.to, rome()).unwrap();
        assert_eq!(days.len(), 7);
        assert_eq!((days[6].to - days[6].from).num_hours(), 23);
        assert_eq!(days[6].label, "2025-03-30");
    }

    #[test]
    fn buckets_cover_the_range_once() {
        let y = parse_period("2025", rome()).unwrap();
        let q = buckets(PeriodKind::Quarter, y.from, y.to, rome()).unwrap();
        let labels: Vec<&str> = q.iter().map(|i| i.label.as_str()).collect();
        assert_eq!(labels, ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]);
        assert!(q.windows(2).all(|w| w[0].to == w[1].from));
    }

    #[test]
    fn where_tests_stored_values() {
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"sale_amount":"500.01","zone":"MI","ok":true,"n":3}"#)
                .unwrap();
        let never = |_: &str| false;
        let w = Where {
            above: vec![("sale_amount".into(), Decimal::from(500))],
            equals: vec![
                ("zone".into(), vec!["MI".into(), "RM".into()]),
                ("ok".into(), vec!["true".into()]),
                ("n".into(), vec!["3".into()]),
            ],
            set: vec!["zone".into()],
            unset: vec!["other".into()],
            ..Where::default()
        };
        assert!(w.test("closed", &fields, &never));
        let below = Where {
            below: vec![("sale_amount".into(), Decimal::from(500))],
            ..Where::default()
        };
        assert!(!below.test("closed", &fields, &never));
        let reached = Where {
            reached: vec!["won".into()],
            ..Where::default()
        };
        assert!(reached.test("won", &fields, &never));
        assert!(reached.test("closed", &fields, &|s| s == "won"));
        assert!(!reached.test("closed", &fields, &never));
    }
}
