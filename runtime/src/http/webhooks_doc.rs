//! The `webhooks:` section of the OpenAPI document: what leadflow POSTs to
//! a tenant's webhook sink (`message.queued`), its headers, its body (the
//! `WebhookEvent` schema) and which answers end the delivery. The sender
//! and the verification helper are in `crate::webhook` and `crate::outbox`.
//!
//! utoipa 5 has no field for OpenAPI 3.1's top-level `webhooks`; its
//! `extensions` map is serialized flattened into the document, so the
//! section goes there under its own name (not `x-`).

use crate::webhook::{EventType, WebhookEvent, TOLERANCE};
use serde_json::{json, Value};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::OpenApi;
use utoipa::{Modify, PartialSchema, ToSchema};

pub struct Webhooks;

impl Modify for Webhooks {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut schemas = Vec::new();
        WebhookEvent::schemas(&mut schemas);
        components
            .schemas
            .insert(WebhookEvent::name().into_owned(), WebhookEvent::schema());
        components.schemas.extend(schemas);
        let tags = api.tags.get_or_insert_with(Vec::new);
        if !tags.iter().any(|t| t.name == "webhooks") {
            tags.push(
                TagBuilder::new()
                    .name("webhooks")
                    .description(Some(
                        "Events leadflow POSTs to a tenant's webhook sink (docs/api.md, Webhooks)",
                    ))
                    .build(),
            );
        }
        api.extensions
            .get_or_insert_with(Default::default)
            .insert("webhooks".into(), webhooks());
    }
}

/// The `webhooks` object: one entry per event type.
pub fn webhooks() -> Value {
    let mut out = serde_json::Map::new();
    for t in EventType::ALL {
        out.insert(t.as_str().into(), json!({ "post": operation(t) }));
    }
    Value::Object(out)
}

fn header(name: &str, description: &str, required: bool, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    })
}

fn operation(t: EventType) -> Value {
    let (summary, description) = match t {
        EventType::MessageQueued => (
            "A message was queued (leadflow POSTs it to your URL)",
            "A transition or timer queued a message (`notify` effect): its rendered subject \
             and body, its recipients and the record's data. Sent once per message, and again \
             until your endpoint answers 2xx.",
        ),
    };
    let tolerance = TOLERANCE.num_seconds();
    let mut legacy = header(
        "X-Leadflow-Signature",
        "Deprecated, replayable: `sha256=<hex HMAC-SHA256 of the body>`, sent only when the sink sets `legacy_signature = true`. Verify `Leadflow-Signature` instead.",
        false,
        json!({"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"}),
    );
    legacy["deprecated"] = json!(true);
    json!({
        "operationId": format!("webhooks_{}", t.as_str().replace('.', "_")),
        "tags": ["webhooks"],
        "summary": summary,
        "description": format!(
            "{description}\n\nVerify before acting: `Leadflow-Signature` is \
             `t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">` under the sink's secret \
             (one `v1` per secret during a rotation). Accept when one `v1` matches (compare in \
             constant time, over the raw body bytes) and `t` is within {tolerance} s of your \
             clock; remember `Leadflow-Delivery` ids for longer than that and drop a repeated one \
             (it is the same on every retry). Answer 2xx quickly; any other answer, a redirect \
             (not followed), no answer within 10 s or a connection error is retried after \
             5 s, then 10 s, 20 s, ... doubling up to 1 h, 12 attempts in all."
        ),
        "parameters": [
            header(
                "Leadflow-Signature",
                "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">`, one `v1` per signing secret.",
                true,
                json!({"type": "string", "pattern": "^t=[0-9]+(,v1=[0-9a-f]{64})+$",
                       "example": "t=1750000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"}),
            ),
            header(
                "Leadflow-Event",
                "The event type, as `type` in the body.",
                true,
                json!({"type": "string", "enum": EventType::ALL.map(EventType::as_str)}),
            ),
            header(
                "Leadflow-Delivery",
                "The delivery id, as `delivery_id` in the body: the same on every retry of this message, different for every other message. Deduplicate on it.",
                true,
                json!({"type": "string", "format": "uuid"}),
            ),
            legacy,
        ],
        "requestBody": {
            "required": true,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}},
        },
        "responses": {
            "2XX": {"description": "Accepted: the message is marked delivered and not sent again. The response body is ignored."},
            "default": {"description": "Any other status (3xx included), or no answer within 10 s: the message is sent again later (backoff 5 s doubling to 1 h, 12 attempts in all), with the same `Leadflow-Delivery` and a new signature."},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::openapi::ApiDoc;
    use utoipa::OpenApi as _;

    fn doc() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn the_spec_declares_the_webhook_its_headers_and_its_body() {
        let doc = doc();
        let op = &doc["webhooks"]["message.queued"]["post"];
        assert_eq!(op["operationId"], "webhooks_message_queued", "{doc:#}");
        let headers: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header" && p["required"] == true)
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["Leadflow-Signature", "Leadflow-Event", "Leadflow-Delivery"]
        );
        assert!(op["responses"].get("2XX").is_some());
        let body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        let name = body_ref.rsplit('/').next().unwrap();
        let schema = &doc["components"]["schemas"][name];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for k in [
            "type",
            "delivery_id",
            "tenant",
            "id",
            "record",
            "created_at",
            "template",
            "recipients",
            "subject",
            "body",
            "payload",
        ] {
            assert!(required.contains(&k), "{k} not required: {schema:#}");
        }
        // Every schema the event refers to is in the components.
        let text = serde_json::to_string(&doc).unwrap();
        for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let n = &r[..r.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"].get(n).is_some(),
                "dangling $ref {n}"
            );
        }
        assert!(doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "webhooks"));
    }

    /// The schema's example, and an event as the sink builds it, validate
    /// against the published schema (a real JSON Schema validator).
    #[test]
    fn events_validate_against_the_published_schema() {
        let doc = doc();
        let mut root = doc.clone();
        root["$ref"] = json!("#/components/schemas/WebhookEvent");
        let validator = jsonschema::draft202012::new(&root).unwrap();
        let example = doc["components"]["schemas"]["WebhookEvent"]["example"].clone();
        assert!(example.is_object(), "the schema has an example");
        let errors: Vec<String> = validator
            .iter_errors(&example)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let mut bad = example.clone();
        bad["type"] = json!("message.sent");
        bad.as_object_mut().unwrap().remove("delivery_id");
        assert!(!validator.is_valid(&bad));
    }
}
