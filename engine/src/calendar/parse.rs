//! Reading a calendar file: its TOML shape (serde) and the parsing of its
//! hours, holidays and dates into the types of `super`.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) calendar: Spanned<RawHeader>,
    pub(super) hours: Option<Spanned<RawHours>>,
    #[serde(default)]
    pub(super) periods: Vec<Spanned<RawPeriod>>,
    #[serde(default)]
    pub(super) holidays: Vec<Spanned<RawHoliday>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    pub(super) title: Option<String>,
    pub(super) timezone: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHours {
    pub(super) mon: Option<Vec<Spanned<String>>>,
    pub(super) tue: Option<Vec<Spanned<String>>>,
    pub(super) wed: Option<Vec<Spanned<String>>>,
    pub(super) thu: Option<Vec<Spanned<String>>>,
    pub(super) fri: Option<Vec<Spanned<String>>>,
    pub(super) sat: Option<Vec<Spanned<String>>>,
    pub(super) sun: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHoliday {
    pub(super) name: Spanned<String>,
    pub(super) date: Option<Spanned<String>>,
    pub(super) easter: Option<Spanned<i64>>,
    /// A value rather than a string so that an unquoted TOML date works too.
    pub(super) on: Option<Spanned<toml::Value>>,
    /// First day the holiday exists (YYYY-MM-DD), inclusive.
    pub(super) from: Option<Spanned<toml::Value>>,
    /// Last day the holiday exists (YYYY-MM-DD), inclusive.
    pub(super) until: Option<Spanned<toml::Value>>,
}

pub(super) fn parse_week(hours: RawHours) -> Result<[Vec<OpenRange>; 7], CalendarError> {
    let days = [
        hours.mon, hours.tue, hours.wed, hours.thu, hours.fri, hours.sat, hours.sun,
    ];
    let mut week: [Vec<OpenRange>; 7] = Default::default();
    for ((slot, raw), key) in week.iter_mut().zip(days).zip(DAY_KEYS) {
        *slot = parse_day(key, raw.unwrap_or_default())?;
    }
    Ok(week)
}

pub(super) fn parse_day(
    key: &str,
    raw: Vec<Spanned<String>>,
) -> Result<Vec<OpenRange>, CalendarError> {
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

pub(super) fn parse_range(text: &str) -> Result<OpenRange, String> {
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
pub(super) fn parse_clock(text: &str) -> Option<u32> {
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

pub(super) fn parse_holiday(raw: Spanned<RawHoliday>) -> Result<HolidayRule, CalendarError> {
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

pub(super) fn parse_month_day(text: &str) -> Option<(u32, u32)> {
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

pub(super) fn parse_full_date(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            let d = dt.date?;
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
        }
        _ => None,
    }
}
