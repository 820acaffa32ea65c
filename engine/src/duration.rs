//! SLA durations as written in workflow and scenario files: `30m`, `2h`,
//! `60d` (calendar time), `24wh` (working hours), `2wd` (working days).

use crate::calendar::Calendar;
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
    WorkingHours,
    WorkingDays,
}

/// The longest duration a workflow or scenario may write: 1000 years
/// (counted as 366-day years; working units as if every hour worked). Far
/// beyond any real deadline, and short enough that adding it to any instant
/// a record can hold (years 0000 to 9999) stays inside chrono's range.
pub const MAX_DAYS: i64 = 1000 * 366;

/// A parsed duration: an amount of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub amount: i64,
    pub unit: Unit,
}

impl Span {
    /// Parse `"24wh"`, `"60d"`, `"90m"`, `"1w"`. Whitespace between amount and
    /// unit is allowed; the amount is a non-negative integer and the length
    /// at most [`MAX_DAYS`].
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(format!("`{s}` does not start with a whole number"));
        }
        // All digits: a parse failure can only be an amount beyond i64.
        let amount: i64 = num.parse().unwrap_or(i64::MAX);
        let unit = match unit.trim() {
            "m" | "min" => Unit::Minutes,
            "h" => Unit::Hours,
            "d" => Unit::Days,
            "w" => Unit::Weeks,
            "wh" => Unit::WorkingHours,
            "wd" => Unit::WorkingDays,
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{s}`: use m, h, d, w, wh (working hours) or wd (working days)"
                ))
            }
        };
        let span = Span { amount, unit };
        if span.days() > MAX_DAYS {
            return Err(format!(
                "`{s}` is too long: a duration may be at most 1000 years ({MAX_DAYS}d)"
            ));
        }
        Ok(span)
    }

    /// Length in whole days, rounded up (working units as if every hour
    /// worked); saturates instead of overflowing.
    fn days(self) -> i64 {
        let n = self.amount.max(0);
        let ceil = |per: i64| n / per + i64::from(n % per != 0);
        match self.unit {
            Unit::Minutes => ceil(24 * 60),
            Unit::Hours | Unit::WorkingHours => ceil(24),
            Unit::Days | Unit::WorkingDays => n,
            Unit::Weeks => n.saturating_mul(7),
        }
    }

    /// The instant `self` after `t`, working units counted in `cal`;
    /// `None` when it lies beyond chrono's range (about year 262000).
    pub fn checked_add_to(self, t: DateTime<Utc>, cal: &Calendar) -> Option<DateTime<Utc>> {
        let n = self.amount;
        match self.unit {
            Unit::Minutes | Unit::Hours => t.checked_add_signed(self.fixed()?),
            Unit::Days => cal.checked_add_calendar_days(t, n),
            Unit::Weeks => cal.checked_add_calendar_days(t, n.checked_mul(7)?),
            Unit::WorkingHours => cal.checked_add_working_minutes(t, n.checked_mul(60)?),
            Unit::WorkingDays => cal.checked_add_working_days(t, n),
        }
    }

    /// [`Span::checked_add_to`], saturating at the end of chrono's range
    /// (the latest instant it can represent: "never").
    pub fn add_to(self, t: DateTime<Utc>, cal: &Calendar) -> DateTime<Utc> {
        self.checked_add_to(t, cal).unwrap_or(if self.amount < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// Wall-clock length, if the unit has a fixed one (and it fits a
    /// chrono duration).
    pub fn fixed(self) -> Option<Duration> {
        match self.unit {
            Unit::Minutes => Duration::try_minutes(self.amount),
            Unit::Hours => Duration::try_hours(self.amount),
            Unit::Days => Duration::try_days(self.amount),
            Unit::Weeks => Duration::try_weeks(self.amount),
            _ => None,
        }
    }

    /// The text form: `24wh`.
    pub fn unit_suffix(self) -> &'static str {
        match self.unit {
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::Days => "d",
            Unit::Weeks => "w",
            Unit::WorkingHours => "wh",
            Unit::WorkingDays => "wd",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(
            Span::parse("24wh"),
            Ok(Span {
                amount: 24,
                unit: Unit::WorkingHours
            })
        );
        assert_eq!(Span::parse("2wd").unwrap().unit, Unit::WorkingDays);
        assert_eq!(
            Span::parse("60d").unwrap().fixed(),
            Some(Duration::days(60))
        );
        assert_eq!(Span::parse("90 m").unwrap().amount, 90);
        assert!(Span::parse("d").unwrap_err().contains("whole number"));
        assert!(Span::parse("3y").unwrap_err().contains("unknown unit"));
    }

    /// Amounts too large for chrono (or for i64) are a parse error naming
    /// the text, not a panic when a timer is armed or a clock advanced.
    #[test]
    fn huge_amounts_are_refused_at_parse() {
        for s in [
            "999999999999d",
            "99999999999999999999999m",
            "366001d",
            "60000w",
            "8784025wh",
            "527040001m",
        ] {
            let e = Span::parse(s).unwrap_err();
            assert!(e.contains("too long") && e.contains(s), "{s}: {e}");
        }
        for s in ["366000d", "8784000h", "52285w", "366000wd", "527040000m"] {
            let d = Span::parse(s).unwrap();
            let t: DateTime<Utc> = "9999-12-31T23:59:59Z".parse().unwrap();
            assert!(
                d.checked_add_to(t, &Calendar::always_open()).is_some(),
                "{s}"
            );
        }
    }

    /// A span built directly (not parsed) never panics either: out of
    /// range is `None`, and `add_to` saturates.
    #[test]
    fn arithmetic_at_the_bounds_is_checked() {
        let cal = Calendar::always_open();
        let max = DateTime::<Utc>::MAX_UTC;
        for unit in [
            Unit::Minutes,
            Unit::Hours,
            Unit::Days,
            Unit::Weeks,
            Unit::WorkingHours,
            Unit::WorkingDays,
        ] {
            for amount in [1, 1_000_000_000_000, i64::MAX] {
                let s = Span { amount, unit };
                assert_eq!(s.checked_add_to(max, &cal), None, "{amount}{unit:?}");
                assert_eq!(s.add_to(max, &cal), max);
                let _ = s.fixed();
            }
        }
    }
}
