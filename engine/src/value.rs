//! Field values and field types.
//!
//! A record's fields are typed by its workflow. Values arriving from the outside
//! (JSON bodies, scenario files) are loosely typed; [`FieldType::coerce`] turns
//! them into the field's type or explains why it cannot (`E_TYPE`).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A field value. `Null` is "empty": what `clear` produces and `require` rejects.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Decimal(Decimal),
    Str(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    List(Vec<Value>),
}

impl Value {
    /// Empty for `require`: null, an empty string, an empty list.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.trim().is_empty(),
            Value::List(l) => l.is_empty(),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_datetime(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::DateTime(t) => Some(*t),
            _ => None,
        }
    }

    /// JSON as the store and the HTTP API carry it: dates and instants as
    /// RFC 3339 strings, decimals as strings (no float rounding).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Decimal(d) => J::String(d.normalize().to_string()),
            Value::Str(s) => J::String(s.clone()),
            Value::Date(d) => J::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(t) => J::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
        }
    }

    /// Loosely typed value from JSON; [`FieldType::coerce`] types it.
    pub fn from_json(j: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Decimal::from_str(&n.to_string())
                    .or_else(|_| Decimal::from_scientific(&n.to_string()))
                    .map(Value::Decimal)
                    .unwrap_or(Value::Str(n.to_string())),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(_) => Value::Str(j.to_string()),
        }
    }

    /// Loosely typed value from TOML (scenario files, literal effect values).
    pub fn from_toml(t: &toml::Value) -> Value {
        match t {
            toml::Value::String(s) => Value::Str(s.clone()),
            toml::Value::Integer(i) => Value::Int(*i),
            toml::Value::Float(f) => Decimal::from_str(&f.to_string())
                .map(Value::Decimal)
                .unwrap_or(Value::Str(f.to_string())),
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::Datetime(d) => Value::Str(d.to_string()),
            toml::Value::Array(a) => Value::List(a.iter().map(Value::from_toml).collect()),
            toml::Value::Table(_) => Value::Str(t.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Str(s) => f.write_str(s),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Value::from_json(&serde_json::Value::deserialize(d)?))
    }
}

/// The type of a field, as written in `[fields.x] type = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Text,
    Int,
    Decimal,
    Bool,
    Date,
    Datetime,
    Enum,
    List,
    Actor,
    Link,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Int => "int",
            FieldType::Decimal => "decimal",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Enum => "enum",
            FieldType::List => "list",
            FieldType::Actor => "actor",
            FieldType::Link => "link",
        }
    }

    /// Whether a value of type `other` may be stored in a field of this type
    /// without conversion (spawn mappings, `set` from another field).
    pub fn accepts(self, other: FieldType) -> bool {
        use FieldType::*;
        self == other
            || matches!(
                (self, other),
                (String | Text, String | Text | Enum | Actor | Link)
                    | (Decimal, Int)
                    | (Enum, String)
                    | (Datetime, Date)
            )
    }

    /// Convert a loosely typed value into this type. The error says why, in
    /// words a user understands; the caller adds the field name.
    pub fn coerce(self, v: Value) -> Result<Value, String> {
        use FieldType as T;
        if matches!(v, Value::Null) {
            return Ok(Value::Null);
        }
        match (self, v) {
            (T::String | T::Text | T::Enum | T::Actor | T::Link, Value::Str(s)) => Ok(Value::Str(s)),
            (T::String | T::Text, Value::Int(i)) => Ok(Value::Str(i.to_string())),
            (T::Int, Value::Int(i)) => Ok(Value::Int(i)),
            (T::Int, Value::Str(s)) => s
                .trim()
                .parse()
                .map(Value::Int)
                .map_err(|_| format!("expected an integer, got \"{s}\"")),
            (T::Int, Value::Decimal(d)) if d.fract().is_zero() => i64::try_from(d)
                .map(Value::Int)
                .map_err(|_| format!("integer out of range: {d}")),
            (T::Decimal, Value::Decimal(d)) => Ok(Value::Decimal(d)),
            (T::Decimal, Value::Int(i)) => Ok(Value::Decimal(Decimal::from(i))),
            (T::Decimal, Value::Str(s)) => Decimal::from_str(s.trim())
                .map(Value::Decimal)
                .map_err(|_| format!("expected a decimal number such as 1250.50, got \"{s}\"")),
            (T::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (T::Bool, Value::Str(s)) => match s.as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(format!("expected true or false, got \"{s}\"")),
            },
            (T::Date, Value::Date(d)) => Ok(Value::Date(d)),
            (T::Date, Value::DateTime(t)) => Ok(Value::Date(t.date_naive())),
            (T::Date, Value::Str(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(Value::Date)
                .map_err(|_| format!("expected a date YYYY-MM-DD, got \"{s}\"")),
            (T::Datetime, Value::DateTime(t)) => Ok(Value::DateTime(t)),
            (T::Datetime, Value::Str(s)) => parse_instant(&s)
                .map(Value::DateTime)
                .ok_or_else(|| format!("expected an RFC 3339 instant such as 2022-11-14T09:00:00+01:00, got \"{s}\"")),
            (T::List, Value::List(l)) => Ok(Value::List(l)),
            (T::List, other) => Ok(Value::List(vec![other])),
            (t, other) => Err(format!("expected a value of type {}, got {}", t.name(), other.to_json())),
        }
    }
}

/// The years a date or instant kept by a record or a timer may have: what
/// RFC 3339 (and so the JSON API) can write. Chrono reaches year 262143,
/// but one day more there overflows; a value inside these years always has
/// room for arithmetic and a round trip through the store.
pub const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

/// `Err` (what is wrong, naming the value) when a date or instant lies
/// outside [`YEARS`]; list items are checked one by one.
pub fn check_range(v: &Value) -> Result<(), String> {
    use chrono::Datelike;
    let year = match v {
        Value::Date(d) => d.year(),
        Value::DateTime(t) => t.year(),
        Value::List(l) => return l.iter().try_for_each(check_range),
        _ => return Ok(()),
    };
    if YEARS.contains(&year) {
        Ok(())
    } else {
        Err(format!(
            "{v} is outside the supported range of dates (years 0000 to 9999)"
        ))
    }
}

/// Parse an RFC 3339 instant (offset required). Also accepts TOML's
/// space-separated form.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_explains_failures() {
        assert_eq!(
            FieldType::Int.coerce(Value::Str("12".into())),
            Ok(Value::Int(12))
        );
        assert!(FieldType::Int
            .coerce(Value::Str("twelve".into()))
            .unwrap_err()
            .contains("integer"));
        assert!(FieldType::Date
            .coerce(Value::Str("2022-13-01".into()))
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert_eq!(
            FieldType::Decimal.coerce(Value::Str("1250.50".into())),
            Ok(Value::Decimal(Decimal::from_str("1250.50").unwrap()))
        );
        assert!(FieldType::Bool.coerce(Value::Int(1)).is_err());
        assert_eq!(FieldType::Datetime.coerce(Value::Null), Ok(Value::Null));
    }

    /// Chrono parses signed years up to 262143 ("+262142-12-31"); one day
    /// more overflows it, so such values are refused with the value named.
    #[test]
    fn dates_outside_years_0_to_9999_are_out_of_range() {
        let far = FieldType::Date
            .coerce(Value::Str("+262142-12-31".into()))
            .unwrap();
        let e = check_range(&far).unwrap_err();
        assert!(
            e.contains("+262142-12-31") && e.contains("0000 to 9999"),
            "{e}"
        );
        let before = FieldType::Date.coerce(Value::Str("-0001-01-01".into()));
        assert!(check_range(&before.unwrap()).is_err());
        for ok in ["0000-01-01", "9999-12-31", "2026-11-30"] {
            let v = FieldType::Date.coerce(Value::Str(ok.into())).unwrap();
            assert_eq!(check_range(&v), Ok(()), "{ok}");
        }
        let t = DateTime::<Utc>::MAX_UTC;
        assert!(check_range(&Value::List(vec![Value::Int(1), Value::DateTime(t)])).is_err());
        assert_eq!(check_range(&Value::Int(i64::MAX)), Ok(()));
    }

    /// Numbers beyond i64 or beyond a decimal's range are explained, never
    /// a panic.
    #[test]
    fn huge_numbers_are_type_errors() {
        for j in [
            serde_json::json!(18446744073709551615_u64),
            serde_json::json!(1e300),
            serde_json::json!(-1e300),
            serde_json::json!(79228162514264337593543950336.0),
        ] {
            let v = Value::from_json(&j);
            assert!(FieldType::Int.coerce(v.clone()).is_err(), "{j}");
            let _ = FieldType::Decimal.coerce(v);
        }
        for j in [serde_json::json!(1e-300), serde_json::json!(-0.0)] {
            let _ = FieldType::Int.coerce(Value::from_json(&j));
            let _ = FieldType::Decimal.coerce(Value::from_json(&j));
        }
        assert!(FieldType::Int
            .coerce(Value::Str("99999999999999999999".into()))
            .unwrap_err()
            .contains("99999999999999999999"));
        assert!(FieldType::Decimal
            .coerce(Value::Str("1e400".into()))
            .is_err());
    }

    #[test]
    fn json_round_trip_keeps_types_readable() {
        let t = parse_instant("2022-11-14T09:00:00+01:00").unwrap();
        assert_eq!(
            Value::DateTime(t).to_json(),
            serde_json::json!("2022-11-14T08:00:00Z")
        );
        assert_eq!(
            Value::Decimal(Decimal::from_str("50.00").unwrap()).to_json(),
            serde_json::json!("50")
        );
    }
}
