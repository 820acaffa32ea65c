//! Tests of the working calendars (`super`): parsing, DST, holidays,
//! working-time arithmetic, and properties over random instants.

use super::*;
use chrono::Weekday;
use proptest::prelude::*;

const IT: &str = include_str!("../../../calendars/it.toml");
const IT_DEALERS: &str = include_str!("../../../calendars/it-dealers.toml");
const ALWAYS: &str = include_str!("../../../calendars/always.toml");

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
    let cal = Calendar::parse("it", include_str!("../../../calendars/it.toml")).unwrap();
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
                        let local = day.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(m));
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
    let apia = parse("[calendar]\ntimezone = \"Pacific/Apia\"\n[hours]\nfri = [\"09:00-17:00\"]\n");
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
    let src =
        "[calendar]\ntitle = \"x\"\ntimezone = \"Europe/Roma\"\n[hours]\nmon = [\"09:00-18:00\"]\n";
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
    (1_672_531_200_i64..1_861_920_000, 0_u32..1_000_000_000)
        .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns).unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
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
