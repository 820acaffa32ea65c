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

mod validity;
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

// ---------------------------------------------------------------------------
// File shape

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    calendar: Spanned<RawHeader>,
    hours: Option<Spanned<RawHours>>,
    #[serde(default)]
    periods: Vec<Spanned<RawPeriod>>,
    #[serde(default)]
    holidays: Vec<Spanned<RawHoliday>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    title: Option<String>,
    timezone: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    mon: Option<Vec<Spanned<String>>>,
    tue: Option<Vec<Spanned<String>>>,
    wed: Option<Vec<Spanned<String>>>,
    thu: Option<Vec<Spanned<String>>>,
    fri: Option<Vec<Spanned<String>>>,
    sat: Option<Vec<Spanned<String>>>,
    sun: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: Spanned<String>,
    date: Option<Spanned<String>>,
    easter: Option<Spanned<i64>>,
    /// A value rather than a string so that an unquoted TOML date works too.
    on: Option<Spanned<toml::Value>>,
    /// First day the holiday exists (YYYY-MM-DD), inclusive.
    from: Option<Spanned<toml::Value>>,
    /// Last day the holiday exists (YYYY-MM-DD), inclusive.
    until: Option<Spanned<toml::Value>>,
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

// ---------------------------------------------------------------------------
// Parsing helpers

fn parse_week(hours: RawHours) -> Result<[Vec<OpenRange>; 7], CalendarError> {
    let days = [
        hours.mon, hours.tue, hours.wed, hours.thu, hours.fri, hours.sat, hours.sun,
    ];
    let mut week: [Vec<OpenRange>; 7] = Default::default();
    for ((slot, raw), key) in week.iter_mut().zip(days).zip(DAY_KEYS) {
        *slot = parse_day(key, raw.unwrap_or_default())?;
    }
    Ok(week)
}

fn parse_day(key: &str, raw: Vec<Spanned<String>>) -> Result<Vec<OpenRange>, CalendarError> {
    let mut ranges = raw
        .into_iter()
        .map(|text| {
            let span = text.span();
            parse_range(text.get_ref())
                .map(|range| (range, text.get_ref().clone(), span.clone()))
                .map_err(|message| CalendarError::BadHours {
                    message: format!("{key}: {message}"),
                    span,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ranges.sort_by_key(|(r, _, _)| r.start);

    let mut merged: Vec<OpenRange> = Vec::with_capacity(ranges.len());
    let mut previous_text = String::new();
    for (range, text, span) in ranges {
        match merged.last_mut() {
            Some(last) if range.start < last.end => {
                return Err(CalendarError::BadHours {
                    message: format!("{key}: range \"{text}\" overlaps \"{previous_text}\""),
                    span,
                });
            }
            // Touching ranges are one stretch of work; merging them means a
            // "range end" is always a real closing time.
            Some(last) if range.start == last.end => last.end = range.end,
            _ => merged.push(range),
        }
        previous_text = text;
    }
    Ok(merged)
}

fn parse_range(text: &str) -> Result<OpenRange, String> {
    let shape = || format!("bad range \"{text}\": expected \"HH:MM-HH:MM\", e.g. \"09:00-13:00\"");
    let (from, to) = text.split_once('-').ok_or_else(shape)?;
    let start = parse_clock(from.trim()).ok_or_else(shape)?;
    let end = parse_clock(to.trim()).ok_or_else(shape)?;
    if start >= MINUTES_PER_DAY {
        return Err(format!(
            "bad range \"{text}\": a range cannot start at 24:00"
        ));
    }
    if end <= start {
        return Err(format!(
            "bad range \"{text}\": the end must be after the start \
             (a range cannot cross midnight: split it over two days)"
        ));
    }
    Ok(OpenRange { start, end })
}

/// "HH:MM" (hour may be one digit) in minutes since midnight; "24:00" is
/// accepted so that a range can run to the end of the day.
fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || h.len() > 2 || !all_digits(m) || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_holiday(raw: Spanned<RawHoliday>) -> Result<HolidayRule, CalendarError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let name_span = raw.name.span();
    let name = raw.name.into_inner();
    if name.trim().is_empty() {
        return Err(CalendarError::BadHoliday {
            message: "holiday name must not be empty".to_string(),
            span: name_span,
        });
    }
    let bad = |message: String, span: Range<usize>| CalendarError::BadHoliday { message, span };

    let when = match (raw.date, raw.easter, raw.on) {
        (Some(date), None, None) => {
            let (month, day) = parse_month_day(date.get_ref()).ok_or_else(|| {
                bad(
                    format!(
                        "holiday \"{name}\": date \"{}\" is not a day of the year in MM-DD form, e.g. \"12-25\"",
                        date.get_ref()
                    ),
                    date.span(),
                )
            })?;
            HolidayWhen::Yearly { month, day }
        }
        (None, Some(offset), None) => {
            let days = *offset.get_ref();
            if days.abs() > MAX_EASTER_OFFSET {
                return Err(bad(
                    format!(
                        "holiday \"{name}\": easter offset {days} is out of range \
                         (-{MAX_EASTER_OFFSET}..={MAX_EASTER_OFFSET} days)"
                    ),
                    offset.span(),
                ));
            }
            HolidayWhen::Easter(days)
        }
        (None, None, Some(on)) => {
            let date = parse_full_date(on.get_ref()).ok_or_else(|| {
                bad(
                    format!(
                        "holiday \"{name}\": `on` must be a date in YYYY-MM-DD form, e.g. \"2026-12-07\""
                    ),
                    on.span(),
                )
            })?;
            HolidayWhen::Once(date)
        }
        (None, None, None) => {
            return Err(bad(
                format!(
                    "holiday \"{name}\" needs one of `date` (MM-DD, every year), \
                     `easter` (days from Easter Sunday) or `on` (YYYY-MM-DD, once)"
                ),
                name_span,
            ))
        }
        (date, easter, on) => {
            // Point at the later of the clashing keys: the first one looks
            // intended, the extra one is what to remove.
            let extra = [
                date.map(|d| d.span()),
                easter.map(|e| e.span()),
                on.map(|o| o.span()),
            ]
            .into_iter()
            .flatten()
            .max_by_key(|s| s.start)
            .unwrap_or(span);
            return Err(bad(
                format!("holiday \"{name}\" must have exactly one of `date`, `easter` or `on`"),
                extra,
            ));
        }
    };
    let what = format!("holiday \"{name}\"");
    let validity = Validity::parse(&what, raw.from, raw.until, |message, span| {
        CalendarError::BadHoliday { message, span }
    })?;
    Ok(HolidayRule {
        name,
        when,
        validity,
    })
}

fn parse_month_day(text: &str) -> Option<(u32, u32)> {
    let (m, d) = text.trim().split_once('-')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(m) || !two_digits(d) {
        return None;
    }
    let (month, day) = (m.parse().ok()?, d.parse().ok()?);
    // A leap year accepts 02-29, which then simply does not occur in other years.
    NaiveDate::from_ymd_opt(2000, month, day)?;
    Some((month, day))
}

fn parse_full_date(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;
    use proptest::prelude::*;

    const IT: &str = include_str!("../../calendars/it.toml");
    const IT_DEALERS: &str = include_str!("../../calendars/it-dealers.toml");
    const ALWAYS: &str = include_str!("../../calendars/always.toml");

    /// Mon-Fri 09:00-18:00 in Rome without holidays: the brief's examples.
    const OFFICE: &str = r#"
        [calendar]
        title = "Office"
        timezone = "Europe/Rome"
        [hours]
        mon = ["09:00-18:00"]
        tue = ["09:00-18:00"]
        wed = ["09:00-18:00"]
        thu = ["09:00-18:00"]
        fri = ["09:00-18:00"]
    "#;

    const ROME_24_7: &str = r#"
        [calendar]
        timezone = "Europe/Rome"
        [hours]
        mon = ["00:00-24:00"]
        tue = ["00:00-24:00"]
        wed = ["00:00-24:00"]
        thu = ["00:00-24:00"]
        fri = ["00:00-24:00"]
        sat = ["00:00-24:00"]
        sun = ["00:00-24:00"]
    "#;

    /// Sunday night shift straddling 02:00-03:00, where Rome changes clocks.
    const NIGHT: &str = r#"
        [calendar]
        timezone = "Europe/Rome"
        [hours]
        sat = ["22:00-24:00"]
        sun = ["00:00-00:30", "01:00-04:00"]
    "#;

    fn parse(src: &str) -> Calendar {
        match Calendar::parse("test", src) {
            Ok(c) => c,
            Err(e) => panic!("calendar does not parse: {} ({:?})", e, e.span()),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
    }

    /// An unambiguous Rome wall-clock time as an instant.
    fn rome(s: &str) -> DateTime<Utc> {
        let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap_or_else(|e| panic!("bad local time {s}: {e}"));
        match chrono_tz::Europe::Rome.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            _ => panic!("{s} is not a single instant in Rome"),
        }
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad date {s}: {e}"))
    }

    fn is_range_end(cal: &Calendar, t: DateTime<Utc>) -> bool {
        cal.neighbour_days(t)
            .any(|d| cal.day_intervals(d).any(|(_, e)| e == nanos(t)))
    }

    /// Working time in [from, to), summed independently of the walker.
    fn working_between(cal: &Calendar, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        let mut total = TimeDelta::zero();
        let last = cal.local_date(to);
        let mut day = cal
            .local_date(from)
            .pred_opt()
            .unwrap_or(cal.local_date(from));
        while day <= last {
            for (s, e) in cal.day_intervals(day) {
                let (s, e) = (s.max(nanos(from)), e.min(nanos(to)));
                if s < e {
                    total += TimeDelta::nanoseconds(i64::try_from(e - s).unwrap_or(i64::MAX));
                }
            }
            day = day.succ_opt().unwrap_or(NaiveDate::MAX);
        }
        total
    }

    #[test]
    fn calendar_days_keep_the_wall_clock_across_dst() {
        let cal = Calendar::parse("it", include_str!("../../calendars/it.toml")).unwrap();
        let t: DateTime<Utc> = "2023-03-01T10:00:00+01:00".parse().unwrap();
        let due = cal.add_calendar_days(t, 60);
        assert_eq!(
            due,
            "2023-04-30T10:00:00+02:00"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
        assert_eq!(
            Calendar::always_open().add_calendar_days(t, 2),
            t + chrono::Duration::days(2)
        );
    }

    #[test]
    fn calendar_is_clone_send_sync() {
        fn check<T: Clone + std::fmt::Debug + Send + Sync>() {}
        check::<Calendar>();
        check::<CalendarError>();
    }

    #[test]
    fn brief_examples() {
        let cal = parse(OFFICE);
        // Friday 17:30 + 24 h of working time.
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-16 17:30"), 1440),
            rome("2026-01-21 14:30")
        );
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-17 10:00"), 120),
            rome("2026-01-19 11:00")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-01-16 17:30"), 1),
            rome("2026-01-19 17:30")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-01-17 10:00"), 1),
            rome("2026-01-20 09:00")
        );
    }

    #[test]
    fn landing_on_closing_time_stays_there() {
        let cal = parse(OFFICE);
        let fri_1800 = rome("2026-01-16 18:00");
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-16 17:00"), 60),
            fri_1800
        );
        assert!(!cal.is_working_time(fri_1800));
        assert!(cal.is_working_time(rome("2026-01-16 17:59")));
        assert!(cal.is_working_time(rome("2026-01-16 09:00")));
        assert!(!cal.is_working_time(rome("2026-01-16 08:59")));
        // From the closing time itself the next minute is Monday's first.
        assert_eq!(
            cal.add_working_minutes(fri_1800, 1),
            rome("2026-01-19 09:01")
        );
        assert_eq!(cal.add_working_days(fri_1800, 1), rome("2026-01-19 18:00"));
    }

    #[test]
    fn zero_and_negative_amounts_return_the_start() {
        let cal = parse(IT);
        let sat = rome("2026-01-17 10:00");
        for n in [0, -1, -1440, i64::MIN] {
            assert_eq!(cal.add_working_minutes(sat, n), sat);
            assert_eq!(cal.add_working_days(sat, n), sat);
        }
    }

    #[test]
    fn before_opening_lunch_break_and_closing() {
        let cal = parse(IT);
        // Before opening: the clock starts at 09:00.
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-19 07:00"), 30),
            rome("2026-01-19 09:30")
        );
        // Inside the lunch break: the clock starts at 14:00.
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-19 13:20"), 30),
            rome("2026-01-19 14:30")
        );
        // Running into lunch: the morning end is a valid landing point...
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-19 12:00"), 60),
            rome("2026-01-19 13:00")
        );
        // ...and one more minute jumps the break.
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-19 12:00"), 61),
            rome("2026-01-19 14:01")
        );
        // Exactly at closing.
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-19 18:00"), 60),
            rome("2026-01-20 10:00")
        );
        assert!(!cal.is_working_time(rome("2026-01-19 13:00")));
        assert!(cal.is_working_time(rome("2026-01-19 14:00")));
        // Working days: before opening counts as opening; after closing keeps the time.
        assert_eq!(
            cal.add_working_days(rome("2026-01-19 07:00"), 1),
            rome("2026-01-20 09:00")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-01-19 13:30"), 2),
            rome("2026-01-21 13:30")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-01-19 20:00"), 1),
            rome("2026-01-20 20:00")
        );
    }

    #[test]
    fn holidays_are_skipped_mid_addition() {
        let cal = parse(IT);
        // Easter Monday 2026-04-06 is closed: Friday's last hour, then Tuesday.
        assert_eq!(
            cal.add_working_minutes(rome("2026-04-03 17:00"), 180),
            rome("2026-04-07 11:00")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-04-03 10:00"), 1),
            rome("2026-04-07 10:00")
        );
        // Immacolata, Tuesday 2026-12-08.
        assert_eq!(
            cal.add_working_minutes(rome("2026-12-07 17:00"), 120),
            rome("2026-12-09 10:00")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-12-07 11:00"), 1),
            rome("2026-12-09 11:00")
        );
        // A week that holds Christmas and Santo Stefano, then New Year.
        assert_eq!(
            cal.add_working_days(rome("2026-12-24 10:00"), 3),
            rome("2026-12-30 10:00")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-12-31 10:00"), 1),
            rome("2027-01-04 10:00")
        );
        assert!(!cal.is_working_day(date("2026-04-06")));
        assert!(cal.is_working_day(date("2026-04-03")));
        assert!(!cal.is_working_time(rome("2026-12-25 10:00")));
    }

    #[test]
    fn easter_dates() {
        for (year, expected) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2000, "2000-04-23"),
            (2019, "2019-04-21"),
            (2038, "2038-04-25"),
            (1818, "1818-03-22"),
            (1943, "1943-04-25"),
            (2285, "2285-03-22"),
        ] {
            assert_eq!(easter_sunday(year), Some(date(expected)), "{year}");
        }
        let cal = parse(IT);
        let pasquetta: Vec<_> = (2024..=2027)
            .flat_map(|y| cal.holidays(y))
            .filter(|h| h.name == "Lunedì dell'Angelo")
            .map(|h| h.date)
            .collect();
        assert_eq!(
            pasquetta,
            ["2024-04-01", "2025-04-21", "2026-04-06", "2027-03-29"].map(date)
        );
    }

    #[test]
    fn italian_holidays_2026() {
        let cal = parse(IT);
        assert_eq!(cal.id(), "test");
        assert_eq!(cal.title(), "Italia (festività nazionali)");
        assert_eq!(cal.timezone(), chrono_tz::Europe::Rome);
        let listed: Vec<(NaiveDate, bool)> = cal
            .holidays(2026)
            .iter()
            .map(|h| (h.date, h.on_working_weekday))
            .collect();
        let expected = [
            ("2026-01-01", true),
            ("2026-01-06", true),
            ("2026-04-05", false),
            ("2026-04-06", true),
            ("2026-04-25", false),
            ("2026-05-01", true),
            ("2026-06-02", true),
            ("2026-08-15", false),
            ("2026-10-04", false),
            ("2026-11-01", false),
            ("2026-12-08", true),
            ("2026-12-25", true),
            ("2026-12-26", false),
        ]
        .map(|(d, w)| (date(d), w));
        assert_eq!(listed, expected);
        let names: Vec<String> = cal.holidays(2026).into_iter().map(|h| h.name).collect();
        assert_eq!(
            names,
            [
                "Capodanno",
                "Epifania",
                "Pasqua",
                "Lunedì dell'Angelo",
                "Festa della Liberazione",
                "Festa del Lavoro",
                "Festa della Repubblica",
                "Ferragosto",
                "San Francesco d'Assisi",
                "Ognissanti",
                "Immacolata Concezione",
                "Natale",
                "Santo Stefano",
            ]
        );
        // The dealers open on Saturday, so Saturday holidays close a real day.
        let dealers = parse(IT_DEALERS);
        let saturday_holidays: Vec<_> = dealers
            .holidays(2026)
            .into_iter()
            .filter(|h| h.on_working_weekday && h.date.weekday() == Weekday::Sat)
            .map(|h| h.date)
            .collect();
        assert_eq!(
            saturday_holidays,
            ["2026-04-25", "2026-08-15", "2026-12-26"].map(date)
        );
        assert!(dealers.is_working_day(date("2026-01-17")));
        assert!(!dealers.is_working_day(date("2026-04-25")));
        assert_eq!(
            dealers.add_working_minutes(rome("2026-01-17 12:00"), 60),
            rome("2026-01-19 09:30")
        );
    }

    #[test]
    fn holiday_rules_across_years() {
        let cal = parse(
            r#"
            [calendar]
            timezone = "UTC"
            [hours]
            mon = ["09:00-17:00"]
            [[holidays]]
            name = "Leap"
            date = "02-29"
            [[holidays]]
            name = "Late"
            easter = 300
            [[holidays]]
            name = "Early"
            easter = -100
            [[holidays]]
            name = "Once"
            on = 2026-12-07
            [[holidays]]
            name = "Once quoted"
            on = "2027-01-04"
            "#,
        );
        let dates = |y| -> Vec<String> {
            cal.holidays(y)
                .into_iter()
                .map(|h| format!("{} {}", h.date, h.name))
                .collect()
        };
        // Easter 2025-04-20 + 300 = 2026-02-14; Easter 2027-03-28 - 100 = 2026-12-18.
        assert_eq!(
            dates(2026),
            ["2026-02-14 Late", "2026-12-07 Once", "2026-12-18 Early"]
        );
        assert_eq!(
            dates(2028),
            [
                "2028-01-07 Early",
                "2028-01-22 Late",
                "2028-02-29 Leap",
                "2028-12-22 Early"
            ]
        );
        assert!(!cal.is_working_day(date("2027-01-04")));
        assert!(cal.is_working_day(date("2027-01-11")));
        // The per-day rule check, the per-year cache and the list must agree.
        for year in 2020..2030 {
            for h in cal.holidays(year) {
                assert!(cal.is_holiday(h.date), "{h:?}");
            }
        }
        for cal in [&cal, &parse(IT), &parse(IT_DEALERS)] {
            let mut closed = Closures::default();
            for day in days_from(date("2020-01-01")).take(366 * 10) {
                assert_eq!(
                    cal.is_working_day(day),
                    closed.is_working_day(cal, day),
                    "{day}"
                );
            }
        }
    }

    #[test]
    fn dst_week_with_office_hours() {
        let cal = parse(IT);
        // Spring forward on Sunday 2026-03-29: Friday is UTC+1, Monday UTC+2.
        assert_eq!(
            cal.add_working_days(rome("2026-03-27 17:30"), 1),
            utc("2026-03-30T15:30:00Z")
        );
        assert_eq!(
            cal.add_working_minutes(rome("2026-03-27 17:00"), 120),
            utc("2026-03-30T08:00:00Z")
        );
        // Fall back on Sunday 2026-10-25.
        assert_eq!(
            cal.add_working_days(rome("2026-10-23 17:30"), 1),
            utc("2026-10-26T16:30:00Z")
        );
        assert_eq!(
            cal.add_working_minutes(rome("2026-10-23 17:00"), 120),
            utc("2026-10-26T09:00:00Z")
        );
    }

    #[test]
    fn dst_inside_working_hours_counts_real_time() {
        let cal = parse(ROME_24_7);
        // 23:00 CET + 4 h lands at 04:00 CEST: one local hour was skipped.
        assert_eq!(
            cal.add_working_minutes(rome("2026-03-28 23:00"), 240),
            utc("2026-03-29T02:00:00Z")
        );
        // 23:00 CEST + 4 h lands at 02:00 CET, the second 02:00.
        assert_eq!(
            cal.add_working_minutes(rome("2026-10-24 23:00"), 240),
            utc("2026-10-25T01:00:00Z")
        );
        assert!(cal.is_working_time(utc("2026-10-25T01:30:00Z")));

        let night = parse(NIGHT);
        // 01:00-04:00 lasts two real hours in March...
        let spring = rome("2026-03-29 01:00");
        assert_eq!(
            night.add_working_minutes(spring, 120),
            utc("2026-03-29T02:00:00Z")
        );
        assert_eq!(
            night.add_working_minutes(spring, 121),
            rome("2026-04-04 22:01")
        );
        assert!(!night.is_working_time(utc("2026-03-29T02:00:00Z")));
        // ...and four in October, the repeated hour included.
        let autumn = rome("2026-10-25 01:00");
        assert_eq!(
            night.add_working_minutes(autumn, 240),
            utc("2026-10-25T03:00:00Z")
        );
        assert!(night.is_working_time(utc("2026-10-25T01:30:00Z")));
        assert_eq!(
            working_between(&night, autumn, utc("2026-10-25T03:00:00Z")),
            TimeDelta::hours(4)
        );
    }

    #[test]
    fn nonexistent_and_repeated_range_boundaries() {
        // A range starting in the spring gap opens when the gap ends.
        let gap = parse(
            r#"
            [calendar]
            timezone = "Europe/Rome"
            [hours]
            sun = ["02:30-05:00"]
            "#,
        );
        assert_eq!(
            gap.add_working_minutes(utc("2026-03-29T00:00:00Z"), 1),
            utc("2026-03-29T01:01:00Z")
        );
        assert!(gap.is_working_time(utc("2026-03-29T01:00:00Z")));
        assert!(!gap.is_working_time(utc("2026-03-29T00:59:59Z")));

        // A range ending in the repeated hour ends at its first occurrence.
        let overlap = parse(
            r#"
            [calendar]
            timezone = "Europe/Rome"
            [hours]
            sun = ["00:00-02:30"]
            "#,
        );
        assert!(overlap.is_working_time(utc("2026-10-25T00:29:00Z")));
        assert!(!overlap.is_working_time(utc("2026-10-25T00:30:00Z")));
        assert!(!overlap.is_working_time(utc("2026-10-25T01:15:00Z")));
        assert_eq!(
            overlap.add_working_minutes(utc("2026-10-24T22:00:00Z"), 150),
            utc("2026-10-25T00:30:00Z")
        );

        // Working days: the same wall time, or the end of the gap.
        let cal = parse(ROME_24_7);
        assert_eq!(
            cal.add_working_days(rome("2026-03-28 02:30"), 1),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            cal.add_working_days(rome("2026-10-24 02:30"), 1),
            utc("2026-10-25T00:30:00Z")
        );
        // Seconds survive the trip, including through the gap search.
        let t = utc("2026-03-28T01:30:17.250Z");
        assert_eq!(cal.add_working_days(t, 1), utc("2026-03-29T01:00:00Z"));
        assert_eq!(cal.add_working_days(t, 2), utc("2026-03-30T00:30:17.250Z"));
    }

    /// The walk places ranges by plain addition on days whose midnights are
    /// 24 h apart; check that against per-boundary conversion in zones with
    /// midnight transitions, half-hour DST and a skipped day.
    #[test]
    fn fast_path_matches_conversion() {
        for zone in [
            "Europe/Rome",
            "America/Sao_Paulo",
            "America/Santiago",
            "America/Havana",
            "Asia/Gaza",
            "Africa/Casablanca",
            "Australia/Lord_Howe",
            "Pacific/Apia",
        ] {
            let mut src = format!("[calendar]\ntimezone = \"{zone}\"\n[hours]\n");
            for key in DAY_KEYS {
                src.push_str(&format!(
                    "{key} = [\"00:00-00:30\", \"01:00-23:00\", \"23:30-24:00\"]\n"
                ));
            }
            let cal = parse(&src);
            let mut walk = Walk::new(&cal, date("1995-01-01"));
            let mut day = date("1995-01-01");
            while day < date("2040-01-01") {
                if day.ordinal() == 1 {
                    // A walk is bounded to ~20 years.
                    walk = Walk::new(&cal, day);
                }
                let fast: Vec<_> = match walk.next_day() {
                    Some(intervals) => intervals.collect(),
                    None => panic!("walk ended early"),
                };
                let slow: Vec<_> = cal.week[0]
                    .iter()
                    .filter_map(|r| {
                        let at = |m: u32| {
                            let local =
                                day.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(m));
                            cal.to_utc(local).map(nanos)
                        };
                        let (s, e) = (at(r.start)?, at(r.end)?);
                        (s < e).then_some((s, e))
                    })
                    .collect();
                assert_eq!(fast, slow, "{zone} {day}");
                day += TimeDelta::days(1);
            }
        }
        // Samoa skipped 2011-12-30 entirely: Thursday 23:59 was followed by
        // Saturday 00:00.
        let apia =
            parse("[calendar]\ntimezone = \"Pacific/Apia\"\n[hours]\nfri = [\"09:00-17:00\"]\n");
        let thursday = utc("2011-12-29T12:00:00Z");
        assert!(!apia.is_working_time(utc("2011-12-30T20:00:00Z")));
        assert_eq!(
            apia.add_working_minutes(thursday, 60),
            utc("2012-01-05T20:00:00Z")
        );
    }

    #[test]
    fn always_open_matches_always_toml() {
        let built = Calendar::always_open();
        let parsed = match Calendar::parse("always", ALWAYS) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(format!("{built:?}"), format!("{parsed:?}"));
        let t = utc("2026-03-29T00:59:30Z");
        assert!(built.is_working_time(t));
        assert_eq!(built.add_working_minutes(t, 1440), t + TimeDelta::days(1));
        assert_eq!(
            built.add_working_minutes(t, 1_000_000),
            t + TimeDelta::minutes(1_000_000)
        );
        assert_eq!(built.add_working_days(t, 7), t + TimeDelta::days(7));
        assert!(built.holidays(2026).is_empty());
    }

    #[test]
    fn large_amounts_agree_with_chained_additions() {
        let cal = parse(IT);
        let t = rome("2026-02-10 11:17");
        let direct = cal.add_working_minutes(t, 1_000_000);
        let mut chained = t;
        for _ in 0..100 {
            chained = cal.add_working_minutes(chained, 10_000);
        }
        assert_eq!(direct, chained);
        assert_eq!(
            working_between(&cal, t, direct),
            TimeDelta::minutes(1_000_000)
        );
    }

    #[test]
    fn scans_are_bounded() {
        // Every day of the year is a holiday: nothing is ever open.
        let mut src =
            String::from("[calendar]\ntimezone = \"UTC\"\n[hours]\nmon = [\"09:00-10:00\"]\n");
        for day in 0..366 {
            let d = date("2000-01-01") + TimeDelta::days(day);
            src.push_str(&format!(
                "[[holidays]]\nname = \"closed\"\ndate = \"{}\"\n",
                d.format("%m-%d")
            ));
        }
        let cal = parse(&src);
        let t = utc("2026-01-01T00:00:00Z");
        assert_eq!(cal.add_working_minutes(t, 10), t);
        assert_eq!(cal.add_working_days(t, 10), t);
        assert!(!cal.is_working_time(t));

        // Amounts far beyond the bound saturate instead of looping.
        let it = parse(IT);
        let far = it.add_working_minutes(t, i64::MAX);
        assert!(far > t + TimeDelta::days(19 * 365));
        let far_days = it.add_working_days(t, i64::MAX);
        assert!(far_days > t + TimeDelta::days(19 * 365));
    }

    /// Near the end of chrono's range every addition says "out of range"
    /// (`None`) instead of panicking or answering its start instant; the
    /// unchecked forms saturate.
    #[test]
    fn additions_past_chrono_s_range_are_none() {
        let max = DateTime::<Utc>::MAX_UTC;
        let near = max - TimeDelta::days(3);
        for src in [IT, ALWAYS, ROME_24_7, NIGHT] {
            let cal = parse(src);
            for t in [near, max] {
                assert_eq!(cal.checked_add_working_minutes(t, 10 * 1440), None);
                assert_eq!(cal.checked_add_working_days(t, 10), None);
                assert_eq!(cal.checked_add_calendar_days(t, 10), None);
                assert_eq!(cal.add_working_minutes(t, 10 * 1440), max);
                assert_eq!(cal.add_working_days(t, 10), max);
            }
            // Before the fix: `TimeDelta::days` panicked on these amounts.
            for n in [i64::MAX, i64::MIN, 1_000_000_000_000] {
                let t = utc("2026-01-01T00:00:00Z");
                assert_eq!(cal.checked_add_calendar_days(t, n), None, "{n}");
                let _ = cal.add_calendar_days(t, n);
            }
            let min = DateTime::<Utc>::MIN_UTC;
            assert_eq!(cal.checked_add_calendar_days(min, -1), None);
            assert_eq!(cal.add_calendar_days(min, -1), min);
        }
        // Ordinary amounts far from the bounds are unchanged.
        let it = parse(IT);
        let t = utc("2026-01-19T08:00:00Z");
        assert_eq!(
            it.checked_add_working_minutes(t, 60),
            Some(it.add_working_minutes(t, 60))
        );
        assert!(it.checked_add_working_days(t, 2).is_some());
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        for src in [IT, ALWAYS, ROME_24_7, NIGHT] {
            let cal = parse(src);
            for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let _ = cal.is_working_time(t);
                for n in [1, 1440, 1_000_000, i64::MAX] {
                    let _ = cal.add_working_minutes(t, n);
                    let _ = cal.add_working_days(t, n);
                }
            }
            for year in [i32::MIN, -262_144, 262_143, i32::MAX] {
                let _ = cal.holidays(year);
            }
            let _ = cal.is_working_day(NaiveDate::MIN);
            let _ = cal.is_working_day(NaiveDate::MAX);
        }
    }

    fn parse_err(src: &str) -> CalendarError {
        match Calendar::parse("bad", src) {
            Ok(_) => panic!("calendar unexpectedly parses:\n{src}"),
            Err(e) => e,
        }
    }

    /// The error's code, and the source text its span points at.
    fn code_and_text(src: &str) -> (&'static str, String) {
        let e = parse_err(src);
        assert!(!e.to_string().is_empty());
        let span = e
            .span()
            .unwrap_or_else(|| panic!("no span for {e} ({})", e.code()));
        (e.code(), src[span].to_string())
    }

    const HEAD: &str = "[calendar]\ntimezone = \"Europe/Rome\"\n";

    #[test]
    fn unknown_time_zone() {
        let src = "[calendar]\ntitle = \"x\"\ntimezone = \"Europe/Roma\"\n[hours]\nmon = [\"09:00-18:00\"]\n";
        let (code, text) = code_and_text(src);
        assert_eq!(code, "E051");
        assert!(text.contains("Europe/Roma"), "{text}");
        assert!(parse_err(src).to_string().contains("Europe/Roma"));
    }

    #[test]
    fn bad_hours() {
        for (hours, culprit) in [
            ("mon = [\"18:00-09:00\"]", "18:00-09:00"),
            ("mon = [\"09:00-09:00\"]", "09:00-09:00"),
            ("mon = [\"9-18\"]", "9-18"),
            ("mon = [\"09:00-24:01\"]", "09:00-24:01"),
            ("mon = [\"24:00-24:00\"]", "24:00-24:00"),
            ("tue = [\"09:00-13:00\", \"12:00-18:00\"]", "12:00-18:00"),
            ("tue = [\"14:00-18:00\", \"09:00-14:30\"]", "14:00-18:00"),
        ] {
            let src = format!("{HEAD}[hours]\n{hours}\n");
            let (code, text) = code_and_text(&src);
            assert_eq!(code, "E052", "{hours}");
            assert!(text.contains(culprit), "{hours}: span shows {text:?}");
        }
        // No hours at all, with or without an [hours] table.
        let (code, text) = code_and_text(&format!("{HEAD}[hours]\nmon = []\n"));
        assert_eq!(code, "E052");
        assert!(text.contains("hours"), "{text:?}");
        assert_eq!(code_and_text(HEAD).0, "E052");
    }

    #[test]
    fn touching_ranges_merge() {
        let cal = parse(&format!(
            "{HEAD}[hours]\nmon = [\"13:00-18:00\", \"09:00-13:00\", \"20:00-24:00\"]\ntue = [\"00:00-02:00\"]\n"
        ));
        assert_eq!(
            cal.week[0],
            [
                OpenRange {
                    start: 540,
                    end: 1080
                },
                OpenRange {
                    start: 1200,
                    end: 1440
                }
            ]
        );
        // Monday night runs into Tuesday morning without a break.
        assert_eq!(
            cal.add_working_minutes(rome("2026-01-19 23:00"), 120),
            rome("2026-01-20 01:00")
        );
    }

    #[test]
    fn unknown_keys_and_shape_errors() {
        let (code, text) = code_and_text(
            "[calendar]\ntitel = \"x\"\ntimezone = \"UTC\"\n[hours]\nmon = [\"09:00-18:00\"]\n",
        );
        assert_eq!(code, "E050");
        assert!(text.contains("titel"), "{text:?}");
        assert!(parse_err("[calendar]\ntitel = \"x\"\ntimezone = \"UTC\"\n")
            .to_string()
            .contains("unknown field"));

        let (code, text) = code_and_text(&format!("{HEAD}[hours]\nmonday = [\"09:00-18:00\"]\n"));
        assert_eq!(code, "E050");
        assert!(text.contains("monday"), "{text:?}");

        let (code, text) = code_and_text(&format!(
            "{HEAD}[hours]\nmon = [\"09:00-18:00\"]\n[[holidays]]\nname = \"x\"\ndate = \"01-01\"\nyearly = true\n"
        ));
        assert_eq!(code, "E050");
        assert!(text.contains("yearly"), "{text:?}");

        let (code, _) = code_and_text(&format!("{HEAD}[hours]\nmon = \"09:00-18:00\"\n"));
        assert_eq!(code, "E050");
        let (code, _) = code_and_text("this is not toml");
        assert_eq!(code, "E050");
        assert_eq!(
            parse_err("[hours]\nmon = [\"09:00-18:00\"]\n").code(),
            "E050"
        );
    }

    #[test]
    fn bad_holidays() {
        let hours = "[hours]\nmon = [\"09:00-18:00\"]\n";
        for (holiday, culprit) in [
            ("name = \"x\"\ndate = \"02-30\"", "02-30"),
            ("name = \"x\"\ndate = \"2026-01-01\"", "2026-01-01"),
            ("name = \"x\"\ndate = \"1-1\"", "1-1"),
            ("name = \"x\"\non = \"2026-02-30\"", "2026-02-30"),
            ("name = \"x\"\non = \"12-07\"", "12-07"),
            ("name = \"x\"\neaster = 4000", "4000"),
            ("name = \"Both\"\ndate = \"01-01\"\neaster = 17", "17"),
            (
                "name = \"Three\"\non = \"2026-01-02\"\ndate = \"01-01\"\neaster = 17",
                "17",
            ),
            ("name = \"None\"", "None"),
            ("name = \" \"\ndate = \"01-01\"", "\" \""),
        ] {
            let src = format!("{HEAD}{hours}[[holidays]]\n{holiday}\n");
            let (code, text) = code_and_text(&src);
            assert_eq!(code, "E053", "{holiday}");
            assert!(text.contains(culprit), "{holiday}: span shows {text:?}");
        }
    }

    /// Issue 13: San Francesco closes 4 October only from 2026; the
    /// brief's CLI example and the dealers' Saturday 2025-10-04.
    #[test]
    fn holidays_with_a_start_date() {
        let it = parse(IT);
        assert_eq!(
            it.add_working_minutes(rome("2024-10-03 17:00"), 120),
            rome("2024-10-04 10:00")
        );
        assert!(it.is_working_day(date("2024-10-04")));
        assert!(!it.is_working_day(date("2027-10-04")));
        assert!(!it
            .holidays(2025)
            .iter()
            .any(|h| h.name.contains("Francesco")));
        assert!(it
            .holidays(2026)
            .iter()
            .any(|h| h.name.contains("Francesco")));
        let dealers = parse(IT_DEALERS);
        assert!(dealers.is_working_day(date("2025-10-04")));
        assert!(dealers.is_working_time(rome("2025-10-04 10:00")));

        let bounded = parse(&format!(
            "{HEAD}[hours]\nmon = [\"09:00-18:00\"]\n[[holidays]]\nname = \"Old\"\ndate = \"01-05\"\nuntil = 2026-12-31\n"
        ));
        // 5 January is a Monday in 2026 and 2037.
        assert!(!bounded.is_working_day(date("2026-01-05")));
        assert!(bounded.is_working_day(date("2037-01-05")));
    }

    #[test]
    fn opening_hours_for_a_period() {
        let cal = parse(&format!(
            "{HEAD}[hours]\nmon = [\"09:00-18:00\"]\ntue = [\"09:00-18:00\"]\n\
             [[periods]]\nname = \"Orario estivo\"\nfrom = \"2026-07-01\"\nuntil = \"2026-08-31\"\nmon = [\"08:00-13:00\"]\n"
        ));
        // Rome is UTC+2 in summer. Monday 29 June: [hours]; Monday 6 July: the summer period; Tuesday
        // 7 July: closed (the period lists no Tuesday); Monday 7 September: [hours].
        let mon = |d: &str| cal.add_working_minutes(utc(&format!("{d}T00:00:00Z")), 60);
        assert_eq!(mon("2026-06-29"), utc("2026-06-29T08:00:00Z"));
        assert_eq!(mon("2026-07-06"), utc("2026-07-06T07:00:00Z"));
        assert!(!cal.is_working_day(date("2026-07-07")));
        assert_eq!(mon("2026-09-07"), utc("2026-09-07T08:00:00Z"));
        assert_eq!(
            cal.add_working_days(utc("2026-06-30T08:00:00Z"), 1),
            utc("2026-07-06T08:00:00Z")
        );
    }

    #[test]
    fn bad_validity_ranges() {
        let hours = "[hours]\nmon = [\"09:00-18:00\"]\n";
        for (extra, code, culprit) in [
            ("[[holidays]]\nname = \"x\"\ndate = \"01-01\"\nfrom = \"2026\"", "E053", "2026"),
            (
                "[[holidays]]\nname = \"x\"\ndate = \"01-01\"\nfrom = \"2026-01-01\"\nuntil = \"2025-01-01\"",
                "E053",
                "2025-01-01",
            ),
            ("[[periods]]\nname = \"p\"\nmon = [\"08:00-12:00\"]", "E052", "p"),
            ("[[periods]]\nname = \"p\"\nfrom = \"2026-01-01\"\nmon = [\"12:00-08:00\"]", "E052", "12:00-08:00"),
            (
                "[[periods]]\nname = \"a\"\nfrom = \"2026-01-01\"\n[[periods]]\nname = \"b\"\nuntil = \"2026-01-01\"",
                "E052",
                "\"b\"",
            ),
            ("[[periods]]\nname = \"p\"\nfrom = \"2026-01-01\"\nmonday = []", "E050", "monday"),
        ] {
            let (got, text) = code_and_text(&format!("{HEAD}{hours}{extra}\n"));
            assert_eq!(got, code, "{extra}");
            assert!(text.contains(culprit), "{extra}: span shows {text:?}");
        }
    }

    // -----------------------------------------------------------------------
    // Properties

    fn calendars() -> Vec<Calendar> {
        [IT, IT_DEALERS, ALWAYS, OFFICE, ROME_24_7, NIGHT]
            .into_iter()
            .map(parse)
            .collect()
    }

    /// Calendars whose working days never contain a DST change or a missing
    /// wall time, where chaining day additions is exact.
    fn day_calendars() -> Vec<Calendar> {
        [IT, IT_DEALERS, ALWAYS, OFFICE]
            .into_iter()
            .map(parse)
            .collect()
    }

    /// 2023-01-01 .. 2029-01-01, at sub-second resolution.
    fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
        (1_672_531_200_i64..1_861_920_000, 0_u32..1_000_000_000).prop_map(|(s, ns)| {
            DateTime::from_timestamp(s, ns).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn minutes_are_additive(c in 0..6_usize, t in any_instant(), a in 0..5000_i64, b in 0..5000_i64) {
            let cal = &calendars()[c];
            let once = cal.add_working_minutes(t, a + b);
            let twice = cal.add_working_minutes(cal.add_working_minutes(t, a), b);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn minutes_land_in_working_time_and_count_exactly(c in 0..6_usize, t in any_instant(), n in 1..5000_i64) {
            let cal = &calendars()[c];
            let r = cal.add_working_minutes(t, n);
            prop_assert!(cal.is_working_time(r) || is_range_end(cal, r), "{} lands at {}", t, r);
            prop_assert_eq!(working_between(cal, t, r), TimeDelta::minutes(n));
            prop_assert!(r >= t + TimeDelta::minutes(n));
        }

        #[test]
        fn minutes_are_monotonic(c in 0..6_usize, t1 in any_instant(), t2 in any_instant(), a in 0..5000_i64, b in 0..5000_i64) {
            let cal = &calendars()[c];
            let (t1, t2) = (t1.min(t2), t1.max(t2));
            let (a, b) = (a.min(b), a.max(b));
            prop_assert!(cal.add_working_minutes(t1, a) <= cal.add_working_minutes(t1, b));
            prop_assert!(cal.add_working_minutes(t1, a) <= cal.add_working_minutes(t2, a));
        }

        #[test]
        fn days_are_additive(c in 0..4_usize, t in any_instant(), a in 1..30_i64, b in 1..30_i64) {
            let cal = &day_calendars()[c];
            let once = cal.add_working_days(t, a + b);
            let twice = cal.add_working_days(cal.add_working_days(t, a), b);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn days_land_on_working_days(c in 0..4_usize, t in any_instant(), n in 1..30_i64) {
            let cal = &day_calendars()[c];
            let r = cal.add_working_days(t, n);
            let day = cal.local_date(r);
            prop_assert!(cal.is_working_day(day));
            prop_assert!(day > cal.local_date(t));
            // Exactly n working days after the (normalised) start day.
            let start = cal.start_of_working_day(cal.local_date(t)).map(|(d, _)| d);
            let between = days_from(start.unwrap_or(day)).skip(1).take_while(|d| *d <= day)
                .filter(|d| cal.is_working_day(*d)).count();
            prop_assert_eq!(between as i64, n);
        }

        #[test]
        fn days_are_monotonic(c in 0..4_usize, t1 in any_instant(), t2 in any_instant(), a in 0..30_i64, b in 0..30_i64) {
            let cal = &day_calendars()[c];
            let (t1, t2) = (t1.min(t2), t1.max(t2));
            let (a, b) = (a.min(b), a.max(b));
            prop_assert!(cal.add_working_days(t1, a) <= cal.add_working_days(t1, b));
            prop_assert!(cal.add_working_days(t1, a) <= cal.add_working_days(t2, a));
        }
    }
}
