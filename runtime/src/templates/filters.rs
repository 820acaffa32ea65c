//! The rendering context of a payload and the MiniJinja environment with
//! its filters: `date`, `datetime`, `time`, `longdate`, `money`, `list`,
//! `label`.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use minijinja::value::{Serde, Value};
use minijinja::{Environment, Error as JError, ErrorKind, UndefinedBehavior};
use std::collections::BTreeMap;

/// The rendering context of a payload.
pub(super) fn context(payload: &serde_json::Value, lang: &str) -> Value {
    Value::from(context_map(payload, lang))
}

pub(super) fn context_map(payload: &serde_json::Value, lang: &str) -> BTreeMap<String, Value> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(o) = payload.as_object() {
        for (k, v) in o {
            let key = if k == "fields" { "lead" } else { k.as_str() };
            map.insert(key.to_string(), Value::from(Serde(v)));
        }
    }
    map.insert("lang".into(), Value::from(lang));
    // Fields also by bare name (`{{ town }}`), unless the name is taken.
    if let Some(f) = payload.get("fields").and_then(|f| f.as_object()) {
        for (k, v) in f {
            if !map.contains_key(k) && !FILTERS.contains(&k.as_str()) {
                map.insert(k.clone(), Value::from(Serde(v)));
            }
        }
    }
    map
}

pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Ok(());
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("date", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::Date)
    });
    env.add_filter("datetime", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::DateTime)
    });
    env.add_filter("time", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::Time)
    });
    env.add_filter("longdate", |s: &minijinja::State, v: Value| {
        fmt_when(s, v, When::Long)
    });
    env.add_filter("money", money);
    env.add_filter("list", list);
    env.add_filter("label", |v: Value| Ok::<_, JError>(label(&v.to_string())));
    env
}

/// The filters and functions templates may use (`leadflow check`).
pub const FILTERS: &[&str] = &[
    "date", "datetime", "time", "longdate", "money", "list", "label",
];

#[derive(Clone, Copy)]
enum When {
    Date,
    DateTime,
    Time,
    Long,
}

fn ctx_str(s: &minijinja::State, name: &str) -> String {
    s.lookup(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn missing(what: &str) -> JError {
    JError::new(
        ErrorKind::InvalidOperation,
        format!("{what}: the value is missing (use `{{% if ... %}}` for an optional field)"),
    )
}

fn fmt_when(s: &minijinja::State, v: Value, w: When) -> Result<String, JError> {
    if v.is_none() || v.is_undefined() {
        return Err(missing("date"));
    }
    let text = v.to_string();
    let lang = ctx_str(s, "lang");
    let zone: chrono_tz::Tz = ctx_str(s, "time_zone").parse().unwrap_or(chrono_tz::UTC);
    let (date, clock) = if let Ok(t) = text.parse::<DateTime<Utc>>() {
        let local = t.with_timezone(&zone);
        (local.date_naive(), Some((local.hour(), local.minute())))
    } else if let Ok(d) = text.parse::<NaiveDate>() {
        (d, None)
    } else {
        return Err(JError::new(
            ErrorKind::InvalidOperation,
            format!("`{text}` is not a date or a date-time"),
        ));
    };
    let day = match lang.split('-').next().unwrap_or("") {
        "it" => format!("{:02}/{:02}/{}", date.day(), date.month(), date.year()),
        "ro" | "de" => format!("{:02}.{:02}.{}", date.day(), date.month(), date.year()),
        _ => format!(
            "{} {} {}",
            date.day(),
            &month(&lang, date.month())[..3],
            date.year()
        ),
    };
    let hm = clock.map(|(h, m)| format!("{h:02}:{m:02}"));
    Ok(match w {
        When::Date => day,
        When::Time => hm.unwrap_or_default(),
        When::DateTime => match hm {
            Some(hm) => match lang.split('-').next().unwrap_or("") {
                "it" => format!("{day} ore {hm}"),
                "ro" => format!("{day}, ora {hm}"),
                _ => format!("{day}, {hm}"),
            },
            None => day,
        },
        When::Long => {
            let wd = weekday(&lang, date.weekday().num_days_from_monday() as usize);
            let long = match lang.split('-').next().unwrap_or("") {
                "en" | "" => format!(
                    "{wd} {} {} {}",
                    date.day(),
                    month(&lang, date.month()),
                    date.year()
                ),
                "ro" => format!(
                    "{wd}, {} {} {}",
                    date.day(),
                    month(&lang, date.month()),
                    date.year()
                ),
                _ => format!(
                    "{wd} {} {} {}",
                    date.day(),
                    month(&lang, date.month()),
                    date.year()
                ),
            };
            match (hm, lang.split('-').next().unwrap_or("")) {
                (Some(hm), "it") => format!("{long} alle {hm}"),
                (Some(hm), "ro") => format!("{long}, ora {hm}"),
                (Some(hm), _) => format!("{long} at {hm}"),
                (None, _) => long,
            }
        }
    })
}

fn month(lang: &str, m: u32) -> &'static str {
    const IT: [&str; 12] = [
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ];
    const RO: [&str; 12] = [
        "ianuarie",
        "februarie",
        "martie",
        "aprilie",
        "mai",
        "iunie",
        "iulie",
        "august",
        "septembrie",
        "octombrie",
        "noiembrie",
        "decembrie",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let i = (m.clamp(1, 12) - 1) as usize;
    match lang.split('-').next().unwrap_or("") {
        "it" => IT[i],
        "ro" => RO[i],
        _ => EN[i],
    }
}

fn weekday(lang: &str, d: usize) -> &'static str {
    const IT: [&str; 7] = [
        "lunedì",
        "martedì",
        "mercoledì",
        "giovedì",
        "venerdì",
        "sabato",
        "domenica",
    ];
    const RO: [&str; 7] = [
        "luni",
        "marți",
        "miercuri",
        "joi",
        "vineri",
        "sâmbătă",
        "duminică",
    ];
    const EN: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let d = d.min(6);
    match lang.split('-').next().unwrap_or("") {
        "it" => IT[d],
        "ro" => RO[d],
        _ => EN[d],
    }
}

/// `1234.5 | money` -> `1.234,50 €` (it), `1.234,50 EUR`... `money("RON")`.
fn money(s: &minijinja::State, v: Value, currency: Option<String>) -> Result<String, JError> {
    if v.is_none() || v.is_undefined() {
        return Err(missing("money"));
    }
    let text = v.to_string();
    let amount: rust_decimal_free::Amount = text.parse().map_err(|_| {
        JError::new(
            ErrorKind::InvalidOperation,
            format!("`{text}` is not an amount"),
        )
    })?;
    let lang = ctx_str(s, "lang");
    let base = lang.split('-').next().unwrap_or("");
    let (thousands, decimal) = match base {
        "it" | "ro" | "de" | "es" | "fr" => ('.', ','),
        _ => (',', '.'),
    };
    let num = amount.format(thousands, decimal);
    let cur = currency.unwrap_or_else(|| {
        if base == "ro" {
            "RON".into()
        } else {
            "EUR".into()
        }
    });
    Ok(match (base, cur.as_str()) {
        ("it", "EUR") => format!("{num} €"),
        ("ro", "RON") => format!("{num} lei"),
        ("en" | "", "EUR") => format!("€{num}"),
        (_, c) => format!("{num} {c}"),
    })
}

/// Amounts with two decimals, without floating point surprises.
mod rust_decimal_free {
    pub struct Amount {
        negative: bool,
        cents: u128,
    }

    impl std::str::FromStr for Amount {
        type Err = ();
        fn from_str(s: &str) -> Result<Amount, ()> {
            let s = s.trim();
            let (negative, s) = match s.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, s),
            };
            let (int, frac) = s.split_once('.').unwrap_or((s, ""));
            if int.is_empty()
                || !int.chars().all(|c| c.is_ascii_digit())
                || !frac.chars().all(|c| c.is_ascii_digit())
            {
                return Err(());
            }
            let whole: u128 = int.parse().map_err(|_| ())?;
            let mut f: Vec<u32> = frac.chars().filter_map(|c| c.to_digit(10)).collect();
            f.resize(3, 0);
            let mut cents = whole * 100 + u128::from(f[0] * 10 + f[1]);
            if f[2] >= 5 {
                cents += 1;
            }
            Ok(Amount { negative, cents })
        }
    }

    impl Amount {
        pub fn format(&self, thousands: char, decimal: char) -> String {
            let whole = (self.cents / 100).to_string();
            let mut grouped = String::new();
            for (i, c) in whole.chars().enumerate() {
                if i > 0 && (whole.len() - i).is_multiple_of(3) {
                    grouped.push(thousands);
                }
                grouped.push(c);
            }
            let sign = if self.negative && self.cents > 0 {
                "-"
            } else {
                ""
            };
            format!("{sign}{grouped}{decimal}{:02}", self.cents % 100)
        }
    }
}

/// A list field as text: `a, b, c` (items through `label`).
fn list(v: Value) -> Result<String, JError> {
    if v.is_none() || v.is_undefined() {
        return Ok(String::new());
    }
    match v.try_iter() {
        Ok(it) if v.as_str().is_none() => Ok(it
            .map(|x| label(&x.to_string()))
            .collect::<Vec<_>>()
            .join(", ")),
        _ => Ok(label(&v.to_string())),
    }
}

/// An enum value or code for reading: `roller_shutters` -> `roller shutters`.
fn label(s: &str) -> String {
    s.replace('_', " ")
}
