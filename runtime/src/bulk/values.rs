//! Cell text to field values, by the field's type, as people write them in
//! spreadsheets: dates ISO or `dd/mm/yyyy`, decimals with `,` or `.`,
//! booleans `si`/`no`/`yes`/`true`/`false`/`1`/`0`. The engine validates
//! the result again (type, range, enum values) when the record is created.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use leadflow_engine::model::Field;
use leadflow_engine::{FieldType, Value};
use rust_decimal::Decimal;
use std::str::FromStr;

/// Why a cell was refused: a stable code (`E_TYPE`, `E_PATTERN`) and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub code: &'static str,
    pub message: String,
}

fn bad(f: &Field, what: &str, raw: &str) -> Bad {
    Bad {
        code: "E_TYPE",
        message: format!("{}: expected {what}, got \"{raw}\"", f.name),
    }
}

/// The value of `raw` (a CSV cell, a JSON string) for field `f`. An empty
/// cell is no value (`Null`: the field's default applies, `required`
/// refuses it).
pub fn parse(f: &Field, raw: &str) -> Result<Value, Bad> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(Value::Null);
    }
    let v = match f.ty {
        FieldType::Int => Value::Int(
            s.parse()
                .map_err(|_| bad(f, "an integer such as 3500", raw))?,
        ),
        FieldType::Decimal => {
            Value::Decimal(decimal(s).ok_or_else(|| bad(f, "a number such as 4,5 or 4.5", raw))?)
        }
        FieldType::Bool => {
            Value::Bool(boolean(s).ok_or_else(|| bad(f, "si/no, yes/no, true/false or 1/0", raw))?)
        }
        FieldType::Date => {
            Value::Date(date(s).ok_or_else(|| bad(f, "a date 2026-03-31 or 31/03/2026", raw))?)
        }
        FieldType::Datetime => Value::DateTime(instant(s).ok_or_else(|| {
            bad(
                f,
                "an instant 2026-03-31T09:30:00+02:00, 2026-03-31 09:30 or 31/03/2026 09:30 (UTC)",
                raw,
            )
        })?),
        FieldType::List => Value::List(
            s.split(';')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| Value::Str(x.to_string()))
                .collect(),
        ),
        FieldType::String
        | FieldType::Text
        | FieldType::Enum
        | FieldType::Actor
        | FieldType::Link => Value::Str(s.to_string()),
    };
    check(f, &v)?;
    Ok(v)
}

/// The field's pattern (`E_PATTERN`) and enum values (`E_TYPE`) on a value.
pub fn check(f: &Field, v: &Value) -> Result<(), Bad> {
    if let (Some(p), Value::Str(s)) = (&f.pattern, v) {
        if !p.is_match(s) {
            let pat = p.as_str().trim_start_matches("^(?:").trim_end_matches(")$");
            return Err(Bad {
                code: "E_PATTERN",
                message: format!("{}: \"{s}\" does not match the pattern {pat}", f.name),
            });
        }
    }
    if let (false, Value::Str(s)) = (f.values.is_empty(), v) {
        if !f.values.iter().any(|x| x == s) {
            return Err(Bad {
                code: "E_TYPE",
                message: format!("{}: \"{s}\" is not one of {}", f.name, f.values.join(", ")),
            });
        }
    }
    Ok(())
}

/// `1234.5`, `1234,5`, `1.234,5` (Italian thousands), `1,234.5`.
fn decimal(s: &str) -> Option<Decimal> {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\'')
        .collect();
    let text = match (s.rfind(','), s.rfind('.')) {
        (Some(c), Some(d)) if c > d => s.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => s.replace(',', ""),
        (Some(_), None) if s.matches(',').count() == 1 => s.replace(',', "."),
        (Some(_), None) => return None,
        _ => s,
    };
    Decimal::from_str(&text).ok()
}

fn boolean(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "si" | "sì" | "s" | "yes" | "y" | "true" | "vero" | "1" => Some(true),
        "no" | "n" | "false" | "falso" | "0" => Some(false),
        _ => None,
    }
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%d/%m/%Y"))
        .or_else(|_| NaiveDate::parse_from_str(s, "%d-%m-%Y"))
        .ok()
}

/// RFC 3339 with its offset; without one (`2026-03-31 09:30`, `31/03/2026
/// 09:30[:ss]`, a bare date) the instant is read as UTC.
fn instant(s: &str) -> Option<chrono::DateTime<Utc>> {
    if let Some(t) = leadflow_engine::value::parse_instant(s) {
        return Some(t);
    }
    const FORMATS: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ];
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| date(s).and_then(|d| d.and_hms_opt(0, 0, 0)))
        .map(|t| Utc.from_utc_datetime(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(ty: FieldType) -> Field {
        Field {
            name: "x".into(),
            title: "x".into(),
            ty,
            pattern: None,
            values: Vec::new(),
            required: false,
            default: None,
            pii: false,
            reveal_in: Vec::new(),
            track: false,
            indexed: false,
            search: false,
        }
    }

    #[test]
    fn decimals_with_comma_or_point() {
        let f = field(FieldType::Decimal);
        for (raw, want) in [
            ("4,5", "4.5"),
            ("4.5", "4.5"),
            ("1.234,56", "1234.56"),
            ("1,234.56", "1234.56"),
            (" 6 ", "6"),
        ] {
            assert_eq!(
                parse(&f, raw),
                Ok(Value::Decimal(Decimal::from_str(want).unwrap())),
                "{raw}"
            );
        }
        assert_eq!(parse(&f, "4,5,6").unwrap_err().code, "E_TYPE");
        assert_eq!(parse(&f, "abc").unwrap_err().code, "E_TYPE");
    }

    #[test]
    fn dates_iso_and_italian() {
        let f = field(FieldType::Date);
        let d = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
        assert_eq!(parse(&f, "2026-03-31"), Ok(Value::Date(d)));
        assert_eq!(parse(&f, "31/03/2026"), Ok(Value::Date(d)));
        assert_eq!(parse(&f, "31/13/2026").unwrap_err().code, "E_TYPE");
        let t = field(FieldType::Datetime);
        let want = Utc.with_ymd_and_hms(2026, 3, 31, 7, 30, 0).unwrap();
        assert_eq!(
            parse(&t, "2026-03-31T09:30:00+02:00"),
            Ok(Value::DateTime(want))
        );
        assert_eq!(parse(&t, "31/03/2026 07:30"), Ok(Value::DateTime(want)));
        assert_eq!(parse(&t, "ieri").unwrap_err().code, "E_TYPE");
    }

    #[test]
    fn booleans_in_italian_and_english() {
        let f = field(FieldType::Bool);
        for (raw, want) in [
            ("si", true),
            ("Sì", true),
            ("yes", true),
            ("1", true),
            ("TRUE", true),
            ("no", false),
            ("0", false),
            ("false", false),
        ] {
            assert_eq!(parse(&f, raw), Ok(Value::Bool(want)), "{raw}");
        }
        assert_eq!(parse(&f, "forse").unwrap_err().code, "E_TYPE");
    }

    #[test]
    fn patterns_and_enums() {
        let mut f = field(FieldType::String);
        f.pattern = Some(regex::Regex::new("^(?:[A-Z]{2})$").unwrap());
        assert_eq!(parse(&f, "RM"), Ok(Value::Str("RM".into())));
        let e = parse(&f, "Roma").unwrap_err();
        assert_eq!(e.code, "E_PATTERN");
        assert!(e.message.contains("[A-Z]{2}"), "{}", e.message);
        let mut g = field(FieldType::Enum);
        g.values = vec!["nord".into(), "sud".into()];
        assert_eq!(parse(&g, "est").unwrap_err().code, "E_TYPE");
        assert_eq!(parse(&g, ""), Ok(Value::Null));
        assert_eq!(
            parse(&field(FieldType::Int), "12a").unwrap_err().code,
            "E_TYPE"
        );
    }
}
