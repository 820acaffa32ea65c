//! Calendar facts with a validity range: a holiday that exists only from a
//! given year (San Francesco, a national holiday in Italy from 2026) and
//! opening hours that hold for a period (summer hours, a new timetable).
//!
//! Both take `from` / `until`, dates in `YYYY-MM-DD` form, each optional and
//! inclusive. A day outside the range simply does not see the fact: the
//! holiday does not close it, the period's hours do not apply to it.

use std::ops::Range;

use chrono::NaiveDate;
use serde::Deserialize;
use toml::Spanned;

use super::{parse_day, parse_full_date, CalendarError, OpenRange, DAY_KEYS};

/// The days a fact holds on: `from ..= until`, either end open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Validity {
    from: Option<NaiveDate>,
    until: Option<NaiveDate>,
}

impl Validity {
    pub(super) fn contains(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|from| from <= day) && self.until.is_none_or(|until| day <= until)
    }

    /// Whether any day of `year` lies inside the range.
    pub(super) fn touches_year(&self, year: i32) -> bool {
        use chrono::Datelike;
        self.from.is_none_or(|from| from.year() <= year)
            && self.until.is_none_or(|until| until.year() >= year)
    }

    fn overlaps(&self, other: &Validity) -> bool {
        let starts_before_other_ends = match (self.from, other.until) {
            (Some(from), Some(until)) => from <= until,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.from, self.until) {
            (Some(from), Some(until)) => from <= until,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_self_ends
    }

    /// `from` / `until` as written; `what` names the fact in messages and
    /// `bad` builds the error of the caller's code (E052 hours, E053 holiday).
    pub(super) fn parse(
        what: &str,
        from: Option<Spanned<toml::Value>>,
        until: Option<Spanned<toml::Value>>,
        bad: fn(String, Range<usize>) -> CalendarError,
    ) -> Result<Validity, CalendarError> {
        let date = |key: &str, value: Option<Spanned<toml::Value>>| match value {
            None => Ok(None),
            Some(v) => parse_full_date(v.get_ref())
                .map(|d| Some((d, v.span())))
                .ok_or_else(|| {
                    bad(
                        format!(
                            "{what}: `{key}` must be a date in YYYY-MM-DD form, e.g. \"2026-01-01\""
                        ),
                        v.span(),
                    )
                }),
        };
        let from = date("from", from)?;
        let until = date("until", until)?;
        if let (Some((f, _)), Some((u, span))) = (&from, &until) {
            if u < f {
                return Err(bad(
                    format!("{what}: `until` {u} is before `from` {f}"),
                    span.clone(),
                ));
            }
        }
        Ok(Validity {
            from: from.map(|(d, _)| d),
            until: until.map(|(d, _)| d),
        })
    }
}

/// `[[periods]]` as typed: weekly hours that replace `[hours]` between
/// `from` and `until`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeriod {
    name: Spanned<String>,
    from: Option<Spanned<toml::Value>>,
    until: Option<Spanned<toml::Value>>,
    mon: Option<Vec<Spanned<String>>>,
    tue: Option<Vec<Spanned<String>>>,
    wed: Option<Vec<Spanned<String>>>,
    thu: Option<Vec<Spanned<String>>>,
    fri: Option<Vec<Spanned<String>>>,
    sat: Option<Vec<Spanned<String>>>,
    sun: Option<Vec<Spanned<String>>>,
}

/// Opening hours valid for a range of days.
#[derive(Clone, Debug)]
pub(super) struct HoursPeriod {
    pub(super) validity: Validity,
    pub(super) week: [Vec<OpenRange>; 7],
}

fn bad_hours(message: String, span: Range<usize>) -> CalendarError {
    CalendarError::BadHours { message, span }
}

/// Every period checked: a name, at least one of `from`/`until`, valid
/// ranges, and no two periods sharing a day (which one would win is not
/// something a reader should have to guess).
pub(super) fn parse_periods(
    raw: Vec<Spanned<RawPeriod>>,
) -> Result<Vec<HoursPeriod>, CalendarError> {
    let mut out: Vec<(HoursPeriod, String)> = Vec::with_capacity(raw.len());
    for period in raw {
        let period = period.into_inner();
        let name_span = period.name.span();
        let name = period.name.into_inner();
        if name.trim().is_empty() {
            return Err(bad_hours(
                "period name must not be empty".to_string(),
                name_span,
            ));
        }
        if period.from.is_none() && period.until.is_none() {
            return Err(bad_hours(
                format!(
                    "period \"{name}\" needs `from` or `until` (YYYY-MM-DD); \
                     hours valid on every day belong in [hours]"
                ),
                name_span,
            ));
        }
        let what = format!("period \"{name}\"");
        let validity = Validity::parse(&what, period.from, period.until, bad_hours)?;
        let days = [
            period.mon, period.tue, period.wed, period.thu, period.fri, period.sat, period.sun,
        ];
        let mut week: [Vec<OpenRange>; 7] = Default::default();
        for ((slot, raw), key) in week.iter_mut().zip(days).zip(DAY_KEYS) {
            *slot = parse_day(&format!("{what} {key}"), raw.unwrap_or_default())?;
        }
        if let Some((_, other)) = out.iter().find(|(p, _)| p.validity.overlaps(&validity)) {
            return Err(bad_hours(
                format!("period \"{name}\" shares days with period \"{other}\""),
                name_span,
            ));
        }
        out.push((HoursPeriod { validity, week }, name));
    }
    Ok(out.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn ranges_are_inclusive_and_open_ended() {
        let v = Validity {
            from: Some(d("2026-01-01")),
            until: None,
        };
        assert!(!v.contains(d("2025-12-31")));
        assert!(v.contains(d("2026-01-01")));
        assert!(v.contains(d("2099-10-04")));
        assert!(!v.touches_year(2025));
        assert!(v.touches_year(2026));
        let w = Validity {
            from: None,
            until: Some(d("2025-12-31")),
        };
        assert!(w.contains(d("2025-12-31")));
        assert!(!w.contains(d("2026-01-01")));
        assert!(!v.overlaps(&w));
        assert!(v.overlaps(&Validity::default()));
    }
}
