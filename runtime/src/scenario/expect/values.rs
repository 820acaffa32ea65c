//! Typed comparison of an expected TOML value with a stored JSON value.

use leadflow_engine::value::parse_instant;
use leadflow_engine::{FieldType, Value, Workflow};

/// Expected TOML value, typed by the field (`""` means empty).
pub(super) fn expected(ty: Option<FieldType>, v: &toml::Value) -> Result<Value, String> {
    if matches!(v, toml::Value::String(s) if s.is_empty()) {
        return Ok(Value::Null);
    }
    let v = Value::from_toml(v);
    match ty {
        Some(t) => t.coerce(v),
        None => Ok(v),
    }
}

/// Stored JSON value, typed by the field.
pub(super) fn actual(ty: Option<FieldType>, j: Option<&serde_json::Value>) -> Value {
    let v = j.map(Value::from_json).unwrap_or(Value::Null);
    match ty {
        Some(t) => t.coerce(v.clone()).unwrap_or(v),
        None => v,
    }
}

/// Equal as values: instants and numbers in any spelling, lists item by item
/// (list items are untyped, so strings that are instants compare as instants).
pub(super) fn same(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        _ if a == b => true,
        (Null, x) | (x, Null) => x.is_empty(),
        (List(x), List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Str(x), Str(y)) => {
            matches!((parse_instant(x), parse_instant(y)), (Some(p), Some(q)) if p == q)
        }
        (Str(s), DateTime(t)) | (DateTime(t), Str(s)) => parse_instant(s) == Some(*t),
        (Int(_) | Str(_), Decimal(_)) => {
            FieldType::Decimal.coerce(a.clone()).is_ok_and(|x| x == *b)
        }
        (Decimal(_), Int(_) | Str(_)) => same(b, a),
        _ => false,
    }
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::Null => "empty".to_string(),
        other => other.to_json().to_string(),
    }
}

pub(super) fn ty(wf: Option<&Workflow>, field: &str) -> Option<FieldType> {
    wf.and_then(|w| w.field(field).map(|i| w.fields[i].ty))
}
