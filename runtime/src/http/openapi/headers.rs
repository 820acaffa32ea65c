//! The response headers: `X-Request-Id` everywhere, `ETag`, `Location`,
//! `Retry-After`.

use super::{op_id, operations, RECORD_ANSWERS};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Header, RefOr};
use utoipa::Modify;

pub(super) fn string_header(description: &str) -> Header {
    let mut h = Header::new(ObjectBuilder::new().schema_type(Type::String));
    h.description = Some(description.into());
    h
}

pub(super) fn request_id_header() -> Header {
    string_header("The request's id: the client's `X-Request-Id` if it sent one, else a new UUID; log lines carry it")
}

/// The response headers: `X-Request-Id` on every answer, `Retry-After` on
/// 503, `ETag` on a record (its revision) and on a workflow schema (the
/// version hash), `Location` on 201.
pub(super) struct Headers;

impl Modify for Headers {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        for (_, _, op) in operations(api) {
            let id = op_id(op).to_string();
            for (status, resp) in op.responses.responses.iter_mut() {
                let RefOr::T(resp) = resp else { continue };
                let h = &mut resp.headers;
                h.insert("X-Request-Id".into(), request_id_header());
                let ok = status.starts_with('2');
                if status == "503" {
                    let mut retry = Header::new(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    );
                    retry.description =
                        Some("Seconds to wait before sending the request again".into());
                    h.insert("Retry-After".into(), retry);
                }
                if ok && RECORD_ANSWERS.contains(&id.as_str()) {
                    h.insert(
                        "ETag".into(),
                        string_header(
                            "The record's revision, quoted (`\"3\"`): send it back as `If-Match`",
                        ),
                    );
                }
                if ok && id == "workflows_schema" {
                    h.insert("ETag".into(), string_header("The version hash, quoted"));
                }
                if status == "201" {
                    h.insert(
                        "Location".into(),
                        string_header("The created record's path, `/v1/records/{id}`"),
                    );
                }
            }
        }
    }
}
