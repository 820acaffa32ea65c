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

/// A parsed duration: an amount of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub amount: i64,
    pub unit: Unit,
}

impl Span {
    /// Parse `"24wh"`, `"60d"`, `"90m"`, `"1w"`. Whitespace between amount and
    /// unit is allowed; the amount is a non-negative integer.
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let amount: i64 = num
            .parse()
            .map_err(|_| format!("`{s}` does not start with a whole number"))?;
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
        Ok(Span { amount, unit })
    }

    /// The instant `self` after `t`, working units counted in `cal`.
    pub fn add_to(self, t: DateTime<Utc>, cal: &Calendar) -> DateTime<Utc> {
        let n = self.amount;
        match self.unit {
            Unit::Minutes => t + Duration::minutes(n),
            Unit::Hours => t + Duration::hours(n),
            Unit::Days => cal.add_calendar_days(t, n),
            Unit::Weeks => cal.add_calendar_days(t, n.saturating_mul(7)),
            Unit::WorkingHours => cal.add_working_minutes(t, n.saturating_mul(60)),
            Unit::WorkingDays => cal.add_working_days(t, n),
        }
    }

    /// Wall-clock length, if the unit has a fixed one.
    pub fn fixed(self) -> Option<Duration> {
        match self.unit {
            Unit::Minutes => Some(Duration::minutes(self.amount)),
            Unit::Hours => Some(Duration::hours(self.amount)),
            Unit::Days => Some(Duration::days(self.amount)),
            Unit::Weeks => Some(Duration::weeks(self.amount)),
            _ => None,
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
}
