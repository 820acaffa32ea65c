//! Typed values: the `FieldValue` schema (what a field holds in JSON), one
//! format for every instant the API returns (RFC 3339, microseconds, `Z`),
//! and `GET /v1/workflows/{id}/schema`: the JSON Schema (2020-12) of a
//! workflow version's record fields, of the create body's `fields` and of
//! each transition's `input`, built from the workflow's field declarations.

use super::error::{ApiError, Path, Query};
use super::state::{AppState, Caller};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use leadflow_engine::model::Field;
use leadflow_engine::{FieldType, Workflow};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value as J};
use std::borrow::Cow;
use std::collections::BTreeMap;
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

/// The JSON Schema dialect of the documents [`workflow`] returns.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// An instant as the API writes it: RFC 3339 in UTC with exactly six
/// fractional digits, `2026-11-30T20:27:18.388018Z` (the stores keep
/// microseconds; finer digits are cut, never rounded up).
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `serialize_with` for a `DateTime<Utc>` the API returns.
pub fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

/// `serialize_with` for an `Option<DateTime<Utc>>` the API returns.
pub fn ts_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&rfc3339(t)),
        None => s.serialize_none(),
    }
}

/// A field value in JSON: null (empty), a string (text, enum, actor,
/// link; decimals as exact strings such as `"1250.5"`; dates as
/// `YYYY-MM-DD`; instants as RFC 3339 strings, answered in UTC with
/// microseconds), a number (int; decimals are accepted as numbers on
/// input), a boolean, or a list of such scalars.
pub struct FieldValue;

impl utoipa::PartialSchema for FieldValue {
    fn schema() -> RefOr<Schema> {
        let scalars = json!([
            {"type": "null"}, {"type": "string"}, {"type": "number"}, {"type": "boolean"}
        ]);
        let mut one_of = scalars.as_array().cloned().unwrap_or_default();
        one_of.push(json!({
            "type": "array",
            "description": "A `list` field: scalars (no nested lists or objects).",
            "items": {"oneOf": scalars}
        }));
        let schema = json!({
            "description": "A field value: null (empty), a string (text, enum, actor and link values; decimals as exact strings such as \"1250.5\"; dates as YYYY-MM-DD; date-times as RFC 3339 strings, answered in UTC with microseconds, e.g. \"2026-11-30T20:27:18.388018Z\"), a number, a boolean, or a list of scalars. `GET /v1/workflows/{id}/schema` gives each field's exact type.",
            "oneOf": one_of,
            "examples": ["Mario", 3, true, null, ["a", "b"]]
        });
        // A literal schema: it always parses.
        serde_json::from_value::<Schema>(schema)
            .map(RefOr::T)
            .unwrap_or_else(|_| RefOr::T(Schema::default()))
    }
}

impl ToSchema for FieldValue {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FieldValue")
    }
}

/// The values of a create body's `fields` or a fire body's `input` must
/// be [`FieldValue`]s: 422 `E_TYPE` (naming the field) for an object or a
/// list holding a list or an object, which no field type stores.
pub fn check_values(values: &Map<String, J>) -> Result<(), ApiError> {
    for (name, v) in values {
        let nested = match v {
            J::Object(_) => true,
            J::Array(items) => items.iter().any(|i| i.is_array() || i.is_object()),
            _ => false,
        };
        if nested {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "E_TYPE",
                format!("{name}: a field value is null, a string, a number, a boolean or a list of those, not an object or a nested list"),
            );
            e.body.field = Some(name.clone());
            return Err(e);
        }
    }
    Ok(())
}

/// Write the `datetime` fields of `wf` in `fields` as [`rfc3339`] (stored
/// values keep whatever precision they were written with).
pub fn normalize_fields(wf: &Workflow, fields: &mut Map<String, J>) {
    for f in wf.fields.iter().filter(|f| f.ty == FieldType::Datetime) {
        if let Some(v) = fields.get_mut(&f.name) {
            normalize_value(f.ty, v);
        }
    }
}

/// [`normalize_fields`] for one value of a field of type `ty`.
pub fn normalize_value(ty: FieldType, v: &mut J) {
    if ty != FieldType::Datetime {
        return;
    }
    if let Some(t) = v.as_str().and_then(leadflow_engine::value::parse_instant) {
        *v = J::String(rfc3339(&t));
    }
}

/// A transition: when it may be fired and the JSON Schema of its `input`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionSchema {
    pub title: String,
    /// States it may be fired from.
    pub from: Vec<String>,
    /// Target state; absent: stays in the same state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Roles that may fire it (`*`: any).
    pub by: Vec<String>,
    /// The fire body's `input`: the transition's input fields, each
    /// optional; `x-require` lists the fields that must be non-empty once
    /// the input is applied (they may already be set on the record).
    #[schema(value_type = BTreeMap<String, Value>)]
    pub input: Map<String, J>,
}

/// The JSON Schemas of one version of a workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSchema {
    pub workflow: String,
    pub title: String,
    /// The version's content hash (also the `ETag`).
    pub version: String,
    /// Whether new records get this version.
    pub current: bool,
    /// JSON Schema of `RecordView.fields` for a record on this version:
    /// every declared field, each optional (unset fields and PII fields
    /// hidden from the caller are absent) and nullable. Annotations:
    /// `title`, `x-leadflow-type` (the declared type), `x-pii: true`,
    /// `x-reveal-in` (states where the assignee sees a PII field).
    #[schema(value_type = BTreeMap<String, Value>)]
    pub fields: Map<String, J>,
    /// JSON Schema of the create body's `fields`: `required` lists the
    /// fields that must be given (required, without a default).
    #[schema(value_type = BTreeMap<String, Value>)]
    pub create: Map<String, J>,
    /// Every transition by name.
    pub transitions: BTreeMap<String, TransitionSchema>,
}

/// What a schema describes.
#[derive(Clone, Copy, PartialEq)]
enum Use {
    /// `RecordView.fields`, as answered.
    Record,
    /// The create body's `fields`: absent fields get their default.
    Create,
    /// A fire body's `input`: absent fields stay as they are.
    Input,
}

/// The JSON Schema of one field's value; on input, as a request may send
/// it (decimals also as numbers, a list also as a single value).
fn field_schema(wf: &Workflow, f: &Field, to: Use) -> Map<String, J> {
    let input = to != Use::Record;
    let mut s = Map::new();
    let ty = |t: &str| json!([t, "null"]);
    match f.ty {
        FieldType::String | FieldType::Text | FieldType::Actor | FieldType::Link => {
            s.insert("type".into(), ty("string"));
            if let Some(p) = &f.pattern {
                // Stored anchored (`^(?:...)$`), in Rust `regex` syntax.
                s.insert("pattern".into(), J::String(p.as_str().to_string()));
            }
        }
        FieldType::Int => {
            s.insert("type".into(), ty("integer"));
        }
        FieldType::Decimal => {
            if input {
                s.insert("type".into(), json!(["string", "number", "null"]));
            } else {
                s.insert("type".into(), ty("string"));
                s.insert("format".into(), J::String("decimal".into()));
            }
        }
        FieldType::Bool => {
            s.insert("type".into(), ty("boolean"));
        }
        FieldType::Date => {
            s.insert("type".into(), ty("string"));
            s.insert("format".into(), J::String("date".into()));
        }
        FieldType::Datetime => {
            s.insert("type".into(), ty("string"));
            s.insert("format".into(), J::String("date-time".into()));
        }
        FieldType::Enum => {
            let mut values: Vec<J> = f.values.iter().cloned().map(J::String).collect();
            values.push(J::Null);
            s.insert("enum".into(), J::Array(values));
        }
        FieldType::List => {
            let items = json!({"type": ["string", "number", "boolean", "null"]});
            if input {
                s.insert(
                    "anyOf".into(),
                    json!([{"type": "array", "items": items}, items]),
                );
            } else {
                s.insert("type".into(), ty("array"));
                s.insert("items".into(), items);
            }
        }
    }
    if !f.title.is_empty() {
        s.insert("title".into(), J::String(f.title.clone()));
    }
    let default = f.default.as_ref().filter(|d| !d.is_empty());
    if let (Some(d), Use::Record | Use::Create) = (default, to) {
        s.insert("default".into(), d.to_json());
    }
    s.insert("x-leadflow-type".into(), J::String(f.ty.name().into()));
    if f.pii {
        s.insert("x-pii".into(), J::Bool(true));
        let states: Vec<J> = f
            .reveal_in
            .iter()
            .map(|&st| J::String(wf.state_name(st).to_string()))
            .collect();
        s.insert("x-reveal-in".into(), J::Array(states));
    }
    s
}

/// An object schema over `fields`, none of them required.
fn object_schema<'a>(
    wf: &Workflow,
    title: String,
    fields: impl Iterator<Item = &'a Field>,
    to: Use,
) -> Map<String, J> {
    let props: Map<String, J> = fields
        .map(|f| (f.name.clone(), J::Object(field_schema(wf, f, to))))
        .collect();
    let mut s = Map::new();
    s.insert("$schema".into(), J::String(DIALECT.into()));
    s.insert("title".into(), J::String(title));
    s.insert("type".into(), J::String("object".into()));
    s.insert("properties".into(), J::Object(props));
    s.insert("additionalProperties".into(), J::Bool(false));
    s
}

/// The schemas of a loaded version.
pub fn of_version(wf: &Workflow, current: bool) -> WorkflowSchema {
    let fields = object_schema(
        wf,
        format!("{} {} fields", wf.id, wf.record),
        wf.fields.iter(),
        Use::Record,
    );
    let mut create = object_schema(
        wf,
        format!("{} {}: fields to create one", wf.id, wf.record),
        wf.fields.iter(),
        Use::Create,
    );
    let required: Vec<J> = wf
        .fields
        .iter()
        .filter(|f| f.required && f.default.as_ref().is_none_or(|d| d.is_empty()))
        .map(|f| J::String(f.name.clone()))
        .collect();
    if !required.is_empty() {
        create.insert("required".into(), J::Array(required));
    }
    let transitions = wf
        .transitions
        .iter()
        .map(|t| {
            let mut input = object_schema(
                wf,
                format!("{}: input of {}", wf.id, t.name),
                t.input.iter().map(|&f| &wf.fields[f]),
                Use::Input,
            );
            let require: Vec<J> = t
                .require
                .iter()
                .map(|&f| J::String(wf.fields[f].name.clone()))
                .collect();
            input.insert("x-require".into(), J::Array(require));
            let from = (0..wf.states.len())
                .filter(|&s| t.enabled_from(s))
                .map(|s| wf.state_name(s).to_string())
                .collect();
            (
                t.name.clone(),
                TransitionSchema {
                    title: t.title.clone(),
                    from,
                    to: t.to.map(|s| wf.state_name(s).to_string()),
                    by: t.by.clone(),
                    input,
                },
            )
        })
        .collect();
    WorkflowSchema {
        workflow: wf.id.clone(),
        title: wf.title.clone(),
        version: wf.hash.clone(),
        current,
        fields,
        create,
        transitions,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SchemaParams {
    /// A version hash of the workflow (`GET /v1/workflows` lists them;
    /// a record's `version`); default: the version new records get.
    #[param(max_length = 1024)]
    pub version: Option<String>,
}

/// The JSON Schemas of a workflow version.
///
/// The JSON Schema (2020-12) of the record fields (`fields`), of the
/// create body's `fields` (`create`) and of each transition's `input`
/// (`transitions.<name>.input`), from the workflow's field declarations:
/// types, enum values, patterns, defaults, required fields, PII
/// (`x-pii`). Any key of the tenant may read it: it shows field names and
/// types, never values. The `ETag` is the version hash.
#[utoipa::path(get, path = "/v1/workflows/{id}/schema", tag = "workflows",
    operation_id = "workflows_schema",
    params(("id" = String, Path, description = "the workflow id, e.g. `aslm`", max_length = 1024), SchemaParams),
    responses((status = 200, body = WorkflowSchema, description = "the version's schemas"),
              (status = 404, body = super::error::ErrorBody, description = "E_UNKNOWN_WORKFLOW: no such workflow in the tenant; E_NOT_FOUND: no such version of it loaded")),
    security(("bearer" = [])))]
pub async fn workflow(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<SchemaParams>,
) -> Result<Response, ApiError> {
    let versions = s.tenant(&caller).backend.versions();
    let current = versions.current(&id)?;
    let wf = match &p.version {
        None => current.clone(),
        Some(h) => versions.version(&id, h).map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "E_NOT_FOUND",
                format!(
                    "workflow `{id}` has no loaded version `{h}` (GET /v1/workflows lists them)"
                ),
            )
        })?,
    };
    let body = of_version(&wf, wf.hash == current.hash);
    let tag = HeaderValue::from_str(&format!("\"{}\"", wf.hash)).ok();
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    if let Some(tag) = tag {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_have_microseconds_always() {
        let t = DateTime::parse_from_rfc3339("2026-11-30T20:27:18.388018472+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(&t), "2026-11-30T19:27:18.388018Z");
        let whole = DateTime::parse_from_rfc3339("2026-11-30T20:27:18Z").unwrap();
        assert_eq!(
            rfc3339(&whole.with_timezone(&Utc)),
            "2026-11-30T20:27:18.000000Z"
        );
        let mut v = json!("2022-11-14T09:00:00+01:00");
        normalize_value(FieldType::Datetime, &mut v);
        assert_eq!(v, "2022-11-14T08:00:00.000000Z");
        let mut s = json!("2022-11-14T09:00:00+01:00");
        normalize_value(FieldType::String, &mut s);
        assert_eq!(s, "2022-11-14T09:00:00+01:00");
        use crate::clock::Clock;
        let now = crate::clock::SystemClock.now();
        assert_eq!(now.timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn field_values_are_scalars_or_lists_of_scalars() {
        let ok = json!({"a": null, "b": "x", "c": 1.5, "d": true, "e": ["x", 1, null]});
        assert!(check_values(ok.as_object().unwrap()).is_ok());
        for bad in [
            json!({"a": {"x": 1}}),
            json!({"a": [[1]]}),
            json!({"a": [{}]}),
        ] {
            let e = check_values(bad.as_object().unwrap()).unwrap_err();
            assert_eq!((e.status.as_u16(), e.body.code.as_str()), (422, "E_TYPE"));
            assert_eq!(e.body.field.as_deref(), Some("a"));
        }
    }
}
