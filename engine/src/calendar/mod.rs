//! Working calendars: weekly opening hours in one time zone, minus holidays,
//! and arithmetic over the working time they describe.
//!
//! Semantics (the full text, with examples, is in `docs/calendars.md`):
//!
//! * A local wall-clock time is turned into an instant by taking the *first
//!   instant whose wall clock reads at least that time*: inside a
//!   spring-forward gap this is the end of the gap, in a fall-back overlap it
//!   is the earlier occurrence.
//! * Each range `[start, end)` of a working day (a weekday with hours that is
//!   not a holiday) becomes one half-open UTC interval by converting both ends
//!   that way. The union of those intervals is the working time `W`;
//!   [`Calendar::is_working_time`] is membership in `W`, so a range that covers
//!   a DST change lasts its real length (one hour more or less).
//! * `add_working_minutes(t, n)` is the earliest instant `s >= t` such that
//!   exactly `n` minutes of `W` lie in `[t, s)`. It may be a range end; `n <= 0`
//!   returns `t`. Being "earliest" makes the addition exactly additive and
//!   monotonic in both arguments.
//! * `add_working_days(t, n)` keeps the local time of day and moves to the n-th
//!   next working day. A start on a non-working day, or before the first range
//!   of a working day, is first moved to that (next) working day's opening
//!   time. `n <= 0` returns `t`.
//! * Every scan is bounded to about twenty years of days, so even a calendar
//!   whose holidays close every day cannot hang; the best value reached is
//!   returned instead.

use std::ops::Range;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Utc,
};
use chrono_tz::{GapInfo, Tz};
use serde::Deserialize;
use toml::Spanned;

mod parse;
mod validity;
use parse::*;
use validity::{parse_periods, HoursPeriod, RawPeriod, Validity};

/// Bound on any day-by-day scan: long enough for every realistic deadline,
/// short enough that a pathological calendar answers in milliseconds.
const MAX_SCAN_DAYS: u32 = 20 * 366;

/// Easter offsets are limited so that a rule always lands within a year of
/// its Easter, which keeps `holidays(year)` and the checked date maths simple.
const MAX_EASTER_OFFSET: i64 = 365;

const MINUTES_PER_DAY: u32 = 24 * 60;

const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A parsed working calendar. Cheap to clone; immutable once built.
#[derive(Clone, Debug)]
pub struct Calendar {
    id: String,
    title: String,
    tz: Tz,
    /// Indexed by `Weekday::num_days_from_monday`; sorted, disjoint and
    /// non-touching (touching ranges are merged while parsing).
    week: [Vec<OpenRange>; 7],
    /// Weekly hours that replace `week` on the days of their range
    /// (`[[periods]]`); disjoint.
    periods: Vec<HoursPeriod>,
    holidays: Vec<HolidayRule>,
}

/// One opening range in minutes since local midnight; `end` may be 1440.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenRange {
    start: u32,
    end: u32,
}

#[derive(Clone, Debug)]
struct HolidayRule {
    name: String,
    when: HolidayWhen,
    /// The days the rule holds on (`from` / `until`); every day by default.
    validity: Validity,
}

#[derive(Clone, Copy, Debug)]
enum HolidayWhen {
    Yearly { month: u32, day: u32 },
    Easter(i64),
    Once(NaiveDate),
}

/// One holiday occurrence, as listed by [`Calendar::holidays`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
    /// True when the weekly schedule has hours on that weekday, i.e. the
    /// holiday actually closes a day that would otherwise be worked.
    pub on_working_weekday: bool,
}

/// Why a calendar file was rejected. Every variant carries the byte range of
/// the offending text when one can be pointed at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not TOML, or TOML of the wrong shape (missing or unknown key, wrong type).
    #[error("{message}")]
    Syntax {
        message: String,
        span: Option<Range<usize>>,
    },
    #[error(
        "unknown time zone `{name}`: expected an IANA name such as \"Europe/Rome\" or \"UTC\""
    )]
    UnknownTimeZone { name: String, span: Range<usize> },
    #[error("{message}")]
    BadHours { message: String, span: Range<usize> },
    #[error("{message}")]
    BadHoliday { message: String, span: Range<usize> },
}

impl CalendarError {
    /// Byte range in the calendar source that the error points at.
    pub fn span(&self) -> Option<Range<usize>> {
        match self {
            CalendarError::Syntax { span, .. } => span.clone(),
            CalendarError::UnknownTimeZone { span, .. }
            | CalendarError::BadHours { span, .. }
            | CalendarError::BadHoliday { span, .. } => Some(span.clone()),
        }
    }

    /// Stable diagnostic code, independent of the message wording.
    pub fn code(&self) -> &'static str {
        match self {
            CalendarError::Syntax { .. } => "E050",
            CalendarError::UnknownTimeZone { .. } => "E051",
            CalendarError::BadHours { .. } => "E052",
            CalendarError::BadHoliday { .. } => "E053",
        }
    }
}

impl From<toml::de::Error> for CalendarError {
    fn from(e: toml::de::Error) -> Self {
        // `message()` rather than `to_string()`: the caller renders the span
        // itself, and the Display form would repeat the source snippet.
        CalendarError::Syntax {
            message: e.message().to_string(),
            span: e.span(),
        }
    }
}

impl Calendar {
    /// Parse a calendar file. `id` is the file stem (e.g. "it").
    pub fn parse(id: &str, source: &str) -> Result<Calendar, CalendarError> {
        let raw: RawFile = toml::from_str(source)?;
        let header_span = raw.calendar.span();
        let header = raw.calendar.into_inner();

        let tz_span = header.timezone.span();
        let tz_name = header.timezone.into_inner();
        let tz: Tz = tz_name
            .trim()
            .parse()
            .map_err(|_| CalendarError::UnknownTimeZone {
                name: tz_name.clone(),
                span: tz_span,
            })?;

        let (week, hours_span) = match raw.hours {
            Some(hours) => {
                let span = hours.span();
                (parse_week(hours.into_inner())?, span)
            }
            None => (Default::default(), header_span),
        };
        if week.iter().all(Vec::is_empty) {
            // Without any hours every addition would have nowhere to land.
            return Err(CalendarError::BadHours {
                message: "the calendar has no working hours on any day of the week; \
                          add ranges under [hours], e.g. mon = [\"09:00-18:00\"]"
                    .to_string(),
                span: hours_span,
            });
        }

        let periods = parse_periods(raw.periods)?;
        let holidays = raw
            .holidays
            .into_iter()
            .map(parse_holiday)
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Calendar {
            id: id.to_string(),
            title: header.title.unwrap_or_else(|| id.to_string()),
            tz,
            week,
            periods,
            holidays,
        })
    }

    /// 24/7, UTC, no holidays: used when a workflow names no calendar.
    pub fn always_open() -> Calendar {
        let all_day = vec![OpenRange {
            start: 0,
            end: MINUTES_PER_DAY,
        }];
        Calendar {
            id: "always".to_string(),
            title: "Always open (24/7, UTC)".to_string(),
            tz: Tz::UTC,
            week: std::array::from_fn(|_| all_day.clone()),
            periods: Vec::new(),
            holidays: Vec::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The weekday has hours and the day is not a holiday.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !self.hours_of(day).is_empty() && !self.is_holiday(day)
    }

    /// Whether `t` lies inside a working range (start included, end excluded).
    pub fn is_working_time(&self, t: DateTime<Utc>) -> bool {
        let t_ns = nanos(t);
        self.neighbour_days(t)
            .any(|day| self.day_intervals(day).any(|(s, e)| s <= t_ns && t_ns < e))
    }

    /// Consume `minutes` of working time from `t`; see the module docs.
    /// Negative amounts are treated as zero. Saturates at the end of
    /// chrono's range; [`Calendar::checked_add_working_minutes`] says so.
    pub fn add_working_minutes(&self, t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        self.checked_add_working_minutes(t, minutes)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// [`Calendar::add_working_minutes`], `None` when the result lies beyond
    /// the end of chrono's range (about year 262000).
    pub fn checked_add_working_minutes(
        &self,
        t: DateTime<Utc>,
        minutes: i64,
    ) -> Option<DateTime<Utc>> {
        if minutes <= 0 {
            return Some(t);
        }
        // Cannot overflow: i64 minutes in nanoseconds stay far inside i128.
        let mut remaining = Nanos::from(minutes) * NANOS_PER_MINUTE;
        let t_ns = nanos(t);
        let mut reached = t_ns;
        // The day before too: a range of that day can only end at or before
        // local midnight, but starting there costs nothing and needs no proof.
        let first_day = self.local_date(t);
        let first_day = first_day.pred_opt().unwrap_or(first_day);
        let mut walk = Walk::new(self, first_day);
        while let Some(intervals) = walk.next_day() {
            for (s, e) in intervals {
                if e <= t_ns {
                    continue;
                }
                let s = s.max(t_ns);
                let available = e - s;
                if available >= remaining {
                    return instant(s + remaining);
                }
                remaining -= available;
                reached = e;
            }
        }
        // None: the days ran out at chrono's last date, not at the scan bound.
        walk.next?;
        instant(reached)
    }

    /// The same local time of day on the `days`-th next working day; see the
    /// module docs. Negative amounts are treated as zero. Saturates at the
    /// end of chrono's range; [`Calendar::checked_add_working_days`] says so.
    pub fn add_working_days(&self, t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        self.checked_add_working_days(t, days)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// [`Calendar::add_working_days`], `None` when the result lies beyond
    /// the end of chrono's range (about year 262000).
    pub fn checked_add_working_days(&self, t: DateTime<Utc>, days: i64) -> Option<DateTime<Utc>> {
        if days <= 0 {
            return Some(t);
        }
        let local = self.local(t);
        let (base_day, time_of_day) = match self.start_of_working_day(local.date()) {
            // Before opening on a working day counts as the opening itself, as
            // for a non-working day; otherwise an earlier start (Sunday) could
            // get a later deadline than a later one (Monday 07:00).
            Some((day, open)) if day == local.date() => match self.to_utc(day.and_time(open)) {
                Some(open_at) if t < open_at => (day, open),
                _ => (day, local.time()),
            },
            Some((day, open)) => (day, open),
            // No working day before chrono's last date: out of range.
            None if local
                .date()
                .checked_add_days(chrono::Days::new(u64::from(MAX_SCAN_DAYS)))
                .is_none() =>
            {
                return None
            }
            // No working day within the scan bound: nothing to count, as the
            // module docs say.
            None => return Some(t),
        };

        let mut target = base_day;
        let mut last = base_day;
        let mut counted: i64 = 0;
        let mut closed = Closures::default();
        for day in days_from(base_day).skip(1) {
            last = day;
            if closed.is_working_day(self, day) {
                target = day;
                counted += 1;
                if counted == days {
                    break;
                }
            }
        }
        if counted < days && last.succ_opt().is_none() {
            // The days ran out at chrono's last date, not at the scan bound.
            return None;
        }
        self.to_utc(target.and_time(time_of_day))
    }

    /// Every holiday date of `year` with its name, sorted by date, including
    /// the ones that fall on days without hours (flagged).
    pub fn holidays(&self, year: i32) -> Vec<Holiday> {
        let mut out: Vec<Holiday> = self
            .occurrences(year)
            .into_iter()
            .map(|(date, rule)| Holiday {
                date,
                name: rule.name.clone(),
                on_working_weekday: !self.hours_of(date).is_empty(),
            })
            .collect();
        // Stable: rules sharing a date keep the order of the file.
        out.sort_by_key(|h| h.date);
        out
    }

    // -----------------------------------------------------------------------
    // Internals

    /// Every (date, rule) pair of `year`, in rule order.
    fn occurrences(&self, year: i32) -> Vec<(NaiveDate, &HolidayRule)> {
        let mut out = Vec::new();
        for rule in self
            .holidays
            .iter()
            .filter(|r| r.validity.touches_year(year))
        {
            let mut push = |date: NaiveDate| {
                if rule.validity.contains(date) {
                    out.push((date, rule));
                }
            };
            match rule.when {
                HolidayWhen::Yearly { month, day } => {
                    // Absent in years without that day (29 February).
                    if let Some(date) = NaiveDate::from_ymd_opt(year, month, day) {
                        push(date);
                    }
                }
                HolidayWhen::Easter(offset) => {
                    // A large offset can move the day into the neighbouring year.
                    for easter_year in [year.checked_sub(1), Some(year), year.checked_add(1)]
                        .into_iter()
                        .flatten()
                    {
                        if let Some(date) = easter_sunday(easter_year)
                            .and_then(|e| e.checked_add_signed(TimeDelta::try_days(offset)?))
                        {
                            if date.year() == year {
                                push(date);
                            }
                        }
                    }
                }
                HolidayWhen::Once(date) => {
                    if date.year() == year {
                        push(date);
                    }
                }
            }
        }
        out
    }

    /// The opening ranges of `day`: those of the period it falls in, else
    /// the weekly `[hours]`.
    fn hours_of(&self, day: NaiveDate) -> &[OpenRange] {
        let week = self
            .periods
            .iter()
            .find(|p| p.validity.contains(day))
            .map_or(&self.week, |p| &p.week);
        &week[day.weekday().num_days_from_monday() as usize]
    }

    fn is_holiday(&self, day: NaiveDate) -> bool {
        let holds = |rule: &&HolidayRule| rule.validity.contains(day);
        self.holidays
            .iter()
            .filter(holds)
            .any(|rule| match rule.when {
                HolidayWhen::Yearly { month, day: d } => day.month() == month && day.day() == d,
                HolidayWhen::Easter(offset) => TimeDelta::try_days(offset)
                    .and_then(|delta| day.checked_sub_signed(delta))
                    .is_some_and(|sunday| easter_sunday(sunday.year()) == Some(sunday)),
                HolidayWhen::Once(date) => date == day,
            })
    }

    /// `days` calendar days after `t` at the same wall-clock time in this
    /// calendar's zone: `60d` from 10:00 stays 10:00 across a DST change.
    /// A time that does not exist on the target day moves to the end of the gap.
    /// Saturates at the ends of chrono's range;
    /// [`Calendar::checked_add_calendar_days`] says so.
    pub fn add_calendar_days(&self, t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        self.checked_add_calendar_days(t, days)
            .unwrap_or(if days < 0 {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
    }

    /// [`Calendar::add_calendar_days`], `None` when the result lies outside
    /// chrono's range.
    pub fn checked_add_calendar_days(&self, t: DateTime<Utc>, days: i64) -> Option<DateTime<Utc>> {
        let delta = chrono::Duration::try_days(days)?;
        let local = self.checked_local(t)?;
        let target = local.checked_add_signed(delta)?;
        // Near the ends of chrono's range a wall time may have no instant;
        // plain UTC arithmetic then decides.
        self.to_utc(target).or_else(|| t.checked_add_signed(delta))
    }

    /// Wall-clock reading of `t` in this calendar's zone, `None` when it
    /// lies outside chrono's range (at its very ends).
    pub fn checked_local(&self, t: DateTime<Utc>) -> Option<NaiveDateTime> {
        let utc = t.naive_utc();
        utc.checked_add_offset(self.tz.offset_from_utc_datetime(&utc).fix())
    }

    /// Wall-clock reading of `t`. Saturates instead of panicking (as
    /// chrono's `naive_local` would) at the very ends of chrono's range.
    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        let utc = t.naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_offset(offset)
            .unwrap_or(if offset.local_minus_utc() > 0 {
                NaiveDateTime::MAX
            } else {
                NaiveDateTime::MIN
            })
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        self.local(t).date()
    }

    /// The local date of `t` and its neighbours: enough to find every range
    /// that could contain `t`, whatever DST did around it.
    fn neighbour_days(&self, t: DateTime<Utc>) -> impl Iterator<Item = NaiveDate> {
        let day = self.local_date(t);
        [day.pred_opt(), Some(day), day.succ_opt()]
            .into_iter()
            .flatten()
    }

    /// First instant whose wall clock reads at least `local`: the instant
    /// itself when it exists once, the earlier one when it exists twice, and
    /// the end of the gap when it does not exist. `None` only at the edges of
    /// chrono's representable range.
    fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => self.end_of_gap(local),
        }
    }

    fn end_of_gap(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match GapInfo::new(&local, &self.tz).and_then(|gap| gap.end) {
            Some(end) => Some(end.with_timezone(&Utc)),
            None => self.search_end_of_gap(local),
        }
    }

    /// Fallback for gaps chrono-tz cannot describe (at the ends of its
    /// tables): binary search for the transition that skipped `local`. No
    /// zone offset exceeds a day, so it lies within two days of `local` read
    /// as UTC; transitions fall on whole seconds, so seconds suffice.
    fn search_end_of_gap(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        const WINDOW: i64 = 2 * 86_400;
        let guess = local.and_utc().timestamp();
        let mut before = guess.checked_sub(WINDOW)?;
        let mut after = guess.checked_add(WINDOW)?;
        let reads_at_least = |secs: i64| -> Option<bool> {
            let t = DateTime::from_timestamp(secs, 0)?;
            Some(self.local(t) >= local)
        };
        while after - before > 1 {
            let mid = before + (after - before) / 2;
            if reads_at_least(mid)? {
                after = mid;
            } else {
                before = mid;
            }
        }
        DateTime::from_timestamp(after, 0)
    }

    /// Working intervals of one local day, as half-open UTC intervals in
    /// order. Empty on non-working days; a range swallowed by a DST gap
    /// yields nothing.
    fn day_intervals(&self, day: NaiveDate) -> DayIntervals<'_> {
        if !self.is_working_day(day) {
            return DayIntervals::closed(self, day);
        }
        let tomorrow = day.succ_opt().and_then(|d| self.midnight(d));
        DayIntervals::open(self, day, self.midnight(day), tomorrow)
    }

    /// The instant of the local midnight that starts `day`.
    fn midnight(&self, day: NaiveDate) -> Option<Nanos> {
        self.to_utc(day.and_time(NaiveTime::MIN)).map(nanos)
    }

    /// The working day on or after `day` and its opening time.
    fn start_of_working_day(&self, day: NaiveDate) -> Option<(NaiveDate, NaiveTime)> {
        let mut closed = Closures::default();
        let day = days_from(day).find(|d| closed.is_working_day(self, *d))?;
        let open = self.hours_of(day).first()?;
        Some((day, time_of_minutes(open.start)))
    }
}

/// Holiday dates of one year at a time: a long scan then costs a binary
/// search per day instead of evaluating every rule (and Easter) per day.
#[derive(Default)]
struct Closures {
    year: Option<i32>,
    dates: Vec<NaiveDate>,
}

impl Closures {
    fn is_working_day(&mut self, cal: &Calendar, day: NaiveDate) -> bool {
        if cal.hours_of(day).is_empty() {
            return false;
        }
        if self.year != Some(day.year()) {
            self.year = Some(day.year());
            self.dates = cal
                .occurrences(day.year())
                .into_iter()
                .map(|(d, _)| d)
                .collect();
            self.dates.sort_unstable();
        }
        self.dates.binary_search(&day).is_err()
    }
}

/// Day-by-day walk over working intervals, bounded by `MAX_SCAN_DAYS`.
/// Each local midnight is converted once and reused by the next day, and
/// holidays come from a per-year cache.
struct Walk<'a> {
    cal: &'a Calendar,
    next: Option<NaiveDate>,
    left: u32,
    closed: Closures,
    /// The instant of the next day's midnight, when already known.
    next_midnight: Option<(NaiveDate, Option<Nanos>)>,
}

impl<'a> Walk<'a> {
    fn new(cal: &'a Calendar, start: NaiveDate) -> Self {
        Walk {
            cal,
            next: Some(start),
            left: MAX_SCAN_DAYS,
            closed: Closures::default(),
            next_midnight: None,
        }
    }

    fn next_day(&mut self) -> Option<DayIntervals<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let day = self.next?;
        let tomorrow = day.succ_opt();
        self.next = tomorrow;
        if !self.closed.is_working_day(self.cal, day) {
            return Some(DayIntervals::closed(self.cal, day));
        }
        let start = match self.next_midnight.take() {
            Some((d, at)) if d == day => at,
            _ => self.cal.midnight(day),
        };
        let end = tomorrow.and_then(|d| self.cal.midnight(d));
        self.next_midnight = tomorrow.map(|d| (d, end));
        Some(DayIntervals::open(self.cal, day, start, end))
    }
}

/// The working intervals of one day, computed lazily.
///
/// Converting every range end through the time zone dominates the cost of a
/// long scan, so a day whose local midnights are exactly 24 hours apart is
/// taken to have no offset change inside it and its ranges are placed by
/// plain addition from midnight. A zone would have to change its offset twice
/// within one day, cancelling out, to defeat this; tzdata has no such day
/// (`fast_path_matches_conversion` checks the zones most likely to).
struct DayIntervals<'a> {
    cal: &'a Calendar,
    day: NaiveDate,
    ranges: &'a [OpenRange],
    /// Set when the day has no offset change: ranges are midnight + minutes.
    plain_midnight: Option<Nanos>,
}

impl<'a> DayIntervals<'a> {
    fn closed(cal: &'a Calendar, day: NaiveDate) -> Self {
        DayIntervals {
            cal,
            day,
            ranges: &[],
            plain_midnight: None,
        }
    }

    /// A working day, given the instants of its midnight and the next one.
    fn open(
        cal: &'a Calendar,
        day: NaiveDate,
        midnight: Option<Nanos>,
        next_midnight: Option<Nanos>,
    ) -> Self {
        let plain_midnight = match (midnight, next_midnight) {
            (Some(s), Some(e)) if e - s == NANOS_PER_DAY => Some(s),
            _ => None,
        };
        DayIntervals {
            cal,
            day,
            ranges: cal.hours_of(day),
            plain_midnight,
        }
    }

    fn at(&self, minutes: u32) -> Option<Nanos> {
        match self.plain_midnight {
            Some(midnight) => Some(midnight + Nanos::from(minutes) * NANOS_PER_MINUTE),
            None => {
                let offset = TimeDelta::minutes(i64::from(minutes));
                let local = self
                    .day
                    .and_time(NaiveTime::MIN)
                    .checked_add_signed(offset)?;
                self.cal.to_utc(local).map(nanos)
            }
        }
    }
}

impl Iterator for DayIntervals<'_> {
    type Item = (Nanos, Nanos);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some((range, rest)) = self.ranges.split_first() {
            self.ranges = rest;
            if let (Some(s), Some(e)) = (self.at(range.start), self.at(range.end)) {
                if s < e {
                    return Some((s, e));
                }
            }
        }
        None
    }
}

/// Instants as nanoseconds since the Unix epoch. The hot loops do plain
/// integer arithmetic on these instead of chrono's calendar-aware maths;
/// i128 holds chrono's whole range.
type Nanos = i128;

const NANOS_PER_SECOND: Nanos = 1_000_000_000;
const NANOS_PER_MINUTE: Nanos = 60 * NANOS_PER_SECOND;
const NANOS_PER_DAY: Nanos = 24 * 60 * NANOS_PER_MINUTE;

fn nanos(t: DateTime<Utc>) -> Nanos {
    Nanos::from(t.timestamp()) * NANOS_PER_SECOND + Nanos::from(t.timestamp_subsec_nanos())
}

/// `None` outside chrono's range.
fn instant(ns: Nanos) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(ns.div_euclid(NANOS_PER_SECOND)).ok()?;
    let sub = u32::try_from(ns.rem_euclid(NANOS_PER_SECOND)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

/// `start` and the days after it, bounded so that no scan can run forever.
fn days_from(start: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    std::iter::successors(Some(start), |d| d.succ_opt()).take(MAX_SCAN_DAYS as usize)
}

fn time_of_minutes(minutes: u32) -> NaiveTime {
    // Only range starts come here, and those are below 24:00.
    NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or(NaiveTime::MIN)
}

/// Easter Sunday in the Gregorian calendar (anonymous Gregorian algorithm,
/// a.k.a. Meeus/Jones/Butcher), using Euclidean division so that proleptic
/// negative years cannot misbehave.
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let n = h + l - 7 * m + 114;
    let month = u32::try_from(n.div_euclid(31)).ok()?;
    let day = u32::try_from(n.rem_euclid(31) + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests;
