//! When a scheduled report runs: a report's `every` (docs/kpis.md,
//! "Schedules"). Pure: the caller gives the instants and the time zone.
//!
//! | form | runs |
//! | --- | --- |
//! | `day`, `week`, `month`, `quarter`, `year` | at local midnight starting each period (a week starts on Monday) |
//! | `daily 09:00` | every day at that local time |
//! | `monday 09:00` (any weekday, or its three letters) | every week on that day and local time |
//! | `day 1 of month` (1 to 28), optionally `at 09:00` | every month on that day (00:00 without a time) |
//!
//! Times are local wall-clock times of the workflow calendar's zone. A time
//! that does not exist on a spring-forward day runs at the first instant
//! after the gap; a time that happens twice on a fall-back day runs once, at
//! the first.

use crate::measure::{day_start, PeriodKind};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A parsed `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// At the start of each period.
    Period(PeriodKind),
    /// Every day at a local time.
    Daily(NaiveTime),
    /// Every week on a day at a local time.
    Weekly(Weekday, NaiveTime),
    /// Every month on a day (1-28) at a local time.
    Monthly(u32, NaiveTime),
}

/// The forms `every` accepts, for messages.
pub const SCHEDULE_FORMS: &str = "day, week, month, quarter, year, `daily 09:00`, `monday 09:00` (any weekday), `day 1 of month` (1 to 28, optionally `at 09:00`)";

/// The most runs one catch-up enumerates (older missed runs are dropped,
/// newest kept).
pub const MAX_CATCH_UP: usize = 1000;

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn time(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

impl Schedule {
    /// Parse an `every`; the error lists the forms.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let bad = || format!("`every = \"{s}\"` is not a schedule: use {SCHEDULE_FORMS}");
        let lower = s.trim().to_ascii_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        match words.as_slice() {
            [one] => PeriodKind::parse(one).map(Schedule::Period).ok_or_else(bad),
            ["daily", t] => time(t).map(Schedule::Daily).ok_or_else(bad),
            [d, t] => match (weekday(d), time(t)) {
                (Some(d), Some(t)) => Ok(Schedule::Weekly(d, t)),
                _ => Err(bad()),
            },
            ["day", n, "of", "month", rest @ ..] => {
                let n: u32 = n.parse().map_err(|_| bad())?;
                if !(1..=28).contains(&n) {
                    return Err(format!(
                        "`every = \"{s}\"`: the day of the month must be 1 to 28 (every month has it)"
                    ));
                }
                let t = match rest {
                    [] => NaiveTime::MIN,
                    ["at", t] | [t] => time(t).ok_or_else(bad)?,
                    _ => return Err(bad()),
                };
                Ok(Schedule::Monthly(n, t))
            }
            _ => Err(bad()),
        }
    }

    /// The period a run of this schedule covers by default (the one that
    /// just ended), when the schedule names one.
    pub fn period(self) -> Option<PeriodKind> {
        match self {
            Schedule::Period(k) => Some(k),
            _ => None,
        }
    }

    /// The run of local day `d`, if the schedule runs on that day.
    fn on_day(self, d: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
        let at = match self {
            Schedule::Period(k) => {
                return (k.start(d) == d).then(|| day_start(d, tz));
            }
            Schedule::Daily(t) => t,
            Schedule::Weekly(w, t) => {
                if d.weekday() != w {
                    return None;
                }
                t
            }
            Schedule::Monthly(n, t) => {
                if d.day() != n {
                    return None;
                }
                t
            }
        };
        Some(local(d, at, tz))
    }

    /// The first run strictly after `t`.
    pub fn next_after(self, t: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // The longest gap between runs is a year; look a little further.
        let mut d = t.with_timezone(&tz).date_naive();
        for _ in 0..400 {
            if let Some(x) = self.on_day(d, tz) {
                if x > t {
                    return Some(x);
                }
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// The runs in `(after, upto]`, oldest first; at most [`MAX_CATCH_UP`]
    /// (the newest).
    pub fn due_between(
        self,
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
        tz: Tz,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while let Some(x) = self.next_after(t, tz) {
            if x > upto {
                break;
            }
            out.push(x);
            t = x;
        }
        if out.len() > MAX_CATCH_UP {
            out.drain(..out.len() - MAX_CATCH_UP);
        }
        out
    }
}

/// Local date and time in `tz` as an instant: a time in a spring-forward
/// gap moves past the gap, an ambiguous time takes its first occurrence.
fn local(d: NaiveDate, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let mut t = d.and_time(at);
    for _ in 0..8 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.with_timezone(&Utc);
        }
        t += Duration::minutes(15);
    }
    Utc.from_utc_datetime(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const ROME: Tz = chrono_tz::Europe::Rome;

    #[test]
    fn parses_the_forms_and_refuses_the_rest() {
        assert_eq!(
            Schedule::parse("quarter"),
            Ok(Schedule::Period(PeriodKind::Quarter))
        );
        assert_eq!(
            Schedule::parse("Monday 09:00"),
            Ok(Schedule::Weekly(
                Weekday::Mon,
                NaiveTime::from_hms_opt(9, 0, 0).unwrap()
            ))
        );
        assert_eq!(
            Schedule::parse("day 1 of month"),
            Ok(Schedule::Monthly(1, NaiveTime::MIN))
        );
        assert_eq!(
            Schedule::parse("day 15 of month at 7:30"),
            Ok(Schedule::Monthly(
                15,
                NaiveTime::from_hms_opt(7, 30, 0).unwrap()
            ))
        );
        assert_eq!(
            Schedule::parse("daily 18:05"),
            Ok(Schedule::Daily(NaiveTime::from_hms_opt(18, 5, 0).unwrap()))
        );
        for bad in [
            "",
            "quartr",
            "monday",
            "monday 25:00",
            "funday 09:00",
            "day 31 of month",
            "day 0 of month",
            "day x of month",
            "day 1 of week",
            "09:00",
            "daily 9",
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.contains("day") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn quarterly_runs_at_local_midnight_of_each_quarter() {
        let s = Schedule::parse("quarter").unwrap();
        let runs = s.due_between(
            utc("2025-02-10T00:00:00Z"),
            utc("2025-10-01T00:00:00Z"),
            ROME,
        );
        assert_eq!(
            runs,
            vec![
                utc("2025-03-31T22:00:00Z"),
                utc("2025-06-30T22:00:00Z"),
                utc("2025-09-30T22:00:00Z")
            ]
        );
        // Exactly at a run: it is not "after" itself.
        assert_eq!(
            s.next_after(utc("2025-03-31T22:00:00Z"), ROME),
            Some(utc("2025-06-30T22:00:00Z"))
        );
    }

    #[test]
    fn weekly_runs_keep_local_time_across_dst() {
        let s = Schedule::parse("monday 09:00").unwrap();
        // 2025-03-30: Rome moves from +01:00 to +02:00.
        let runs = s.due_between(
            utc("2025-03-20T00:00:00Z"),
            utc("2025-04-01T00:00:00Z"),
            ROME,
        );
        assert_eq!(
            runs,
            vec![utc("2025-03-24T08:00:00Z"), utc("2025-03-31T07:00:00Z")]
        );
    }

    #[test]
    fn a_time_in_the_gap_moves_past_it_and_a_doubled_time_runs_once() {
        let s = Schedule::parse("daily 02:30").unwrap();
        let spring = s.due_between(
            utc("2025-03-29T12:00:00Z"),
            utc("2025-03-31T12:00:00Z"),
            ROME,
        );
        // 2025-03-30 02:30 does not exist in Rome: 03:00 local (+02:00).
        assert_eq!(
            spring,
            vec![utc("2025-03-30T01:00:00Z"), utc("2025-03-31T00:30:00Z")]
        );
        let fall = s.due_between(
            utc("2025-10-25T12:00:00Z"),
            utc("2025-10-26T12:00:00Z"),
            ROME,
        );
        // 2025-10-26 02:30 happens twice: the first (+02:00) only.
        assert_eq!(fall, vec![utc("2025-10-26T00:30:00Z")]);
    }

    #[test]
    fn monthly_on_a_day_and_the_catch_up_cap() {
        let s = Schedule::parse("day 1 of month").unwrap();
        let runs = s.due_between(
            utc("2025-01-15T00:00:00Z"),
            utc("2025-03-01T00:00:00Z"),
            ROME,
        );
        assert_eq!(
            runs,
            vec![utc("2025-01-31T23:00:00Z"), utc("2025-02-28T23:00:00Z")]
        );
        let d = Schedule::parse("day").unwrap();
        let many = d.due_between(
            utc("2020-01-01T00:00:00Z"),
            utc("2025-01-01T00:00:00Z"),
            chrono_tz::UTC,
        );
        assert_eq!(many.len(), MAX_CATCH_UP);
        assert_eq!(many.last(), Some(&utc("2025-01-01T00:00:00Z")));
    }
}
