//! Webhook deliveries as a receiver sees them: the JSON event
//! ([`WebhookEvent`]), its headers, its signature ([`sign`]) and how a
//! receiver checks it ([`verify`]). The sender is the outbox's webhook sink
//! (`outbox::Sink::Webhook`); the OpenAPI document declares the same event
//! under `webhooks:` (`http/webhooks_doc.rs`); docs/api.md `## Webhooks`
//! explains it to integrators.
//!
//! Signature: `Leadflow-Signature: t=<unix seconds>,v1=<hex>` where `<hex>`
//! is the HMAC-SHA256, under the secret, of `"<t>.<body>"` (the timestamp, a
//! dot, the exact body bytes). During a secret rotation the header carries
//! one `v1=` per secret. A receiver accepts a delivery when one `v1` matches
//! and `t` is within [`TOLERANCE`] of its clock, and drops a
//! `Leadflow-Delivery` id it has already processed.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">[,v1=...]`.
pub const SIGNATURE_HEADER: &str = "leadflow-signature";
/// The event type, e.g. `message.queued` (also `type` in the body).
pub const EVENT_HEADER: &str = "leadflow-event";
/// The delivery id, the same on every retry of one message (also
/// `delivery_id` in the body): receivers deduplicate on it.
pub const DELIVERY_HEADER: &str = "leadflow-delivery";
/// The pre-timestamp signature, `sha256=<hex HMAC-SHA256 of the body>`:
/// sent only when a sink sets `legacy_signature = true` (replayable;
/// deprecated).
pub const LEGACY_SIGNATURE_HEADER: &str = "x-leadflow-signature";
/// How far a signature's `t` may be from the receiver's clock (either
/// way): 5 minutes.
pub const TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// What happened. One type today; receivers should answer 2xx to types
/// they do not know (and ignore them), so new types can be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = WebhookEventType)]
pub enum EventType {
    /// A transition or timer queued a message (`notify` effect) for its
    /// recipients: the rendered subject and body, and the record's data.
    #[serde(rename = "message.queued")]
    MessageQueued,
}

impl EventType {
    pub const ALL: [EventType; 1] = [EventType::MessageQueued];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageQueued => "message.queued",
        }
    }
}

/// The JSON body of a webhook delivery. Fields may be added in later
/// versions: ignore the ones you do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "message.queued",
    "delivery_id": "0b1c6f4e-93d2-8a51-9c3e-5f0d8e2a7b14",
    "tenant": "aslm",
    "id": 42,
    "record": 7,
    "created_at": "2025-06-03T09:14:07.123456Z",
    "template": "lead_assigned",
    "recipients": ["dealer-rm", "customer"],
    "subject": "New lead: Mario Rossi",
    "body": "Mario Rossi (RM) asked about a Ghibli.\n",
    "payload": {"record": 7, "workflow": "aslm", "state": "assigned", "template": "lead_assigned",
                "assignee": "dealer-rm", "fields": {"first_name": "Mario", "last_name": "Rossi", "province": "RM"}}
}))]
pub struct WebhookEvent {
    /// The event type (the `Leadflow-Event` header).
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The delivery id (the `Leadflow-Delivery` header): a UUID, the same
    /// on every retry of this message, different for every other message
    /// (any tenant, and after a database is recreated).
    pub delivery_id: String,
    /// The tenant whose workflow queued the message.
    pub tenant: String,
    /// The message's id in the tenant's outbox.
    pub id: i64,
    /// The record whose transition or timer queued it.
    pub record: i64,
    /// When the message was queued (the transition's time), not when this
    /// attempt was sent.
    pub created_at: DateTime<Utc>,
    /// The template it was rendered from (`templates/<template>.txt`).
    pub template: String,
    /// Recipients as the workflow names them: actor ids (`assignee`
    /// resolved), `customer`, or e-mail addresses.
    pub recipients: Vec<String>,
    /// The rendered subject (the template's `Subject:` line, else its name).
    pub subject: String,
    /// The rendered text.
    pub body: String,
    /// The record's data when the message was queued.
    #[schema(value_type = WebhookPayload)]
    pub payload: serde_json::Value,
}

/// The record's data carried by a `message.queued` event, unredacted (the
/// sink belongs to the tenant: use an `https` URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookPayload {
    pub record: i64,
    pub workflow: String,
    /// The record's state after the transition.
    pub state: String,
    pub template: String,
    /// The record's assignee (an actor id), or null.
    #[schema(required = true)]
    pub assignee: Option<String>,
    /// The record's non-empty fields: strings (dates and date-times as ISO
    /// 8601 text), numbers, booleans or lists.
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// The delivery id of outbox message `id` of `tenant`, queued at
/// `created_at`: a UUID (version 8) made of the SHA-256 of the three, so it
/// is stable across retries without being stored, ASCII whatever the
/// tenant's name, and new if a database is recreated and ids start again.
pub fn delivery_id(tenant: &str, id: i64, created_at: DateTime<Utc>) -> String {
    let mut h = Sha256::new();
    h.update(b"leadflow-delivery\0");
    h.update(tenant.as_bytes());
    h.update(b"\0");
    h.update(id.to_be_bytes());
    h.update(created_at.timestamp_micros().to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn keyed(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length: this is never `None` in practice.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `Leadflow-Signature` value for `body` sent at `timestamp` (unix
/// seconds): `t=<timestamp>` and one `v1=<hex>` per secret, in order.
pub fn sign<S: AsRef<[u8]>>(secrets: &[S], timestamp: i64, body: &[u8]) -> String {
    let mut out = format!("t={timestamp}");
    for s in secrets {
        if let Some(mac) = keyed(s.as_ref(), timestamp, body) {
            out.push_str(",v1=");
            out.push_str(&hex::encode(mac.finalize().into_bytes()));
        }
    }
    out
}

/// `sha256=<hex HMAC-SHA256 of body>`: the legacy `X-Leadflow-Signature`
/// (no timestamp, so a captured delivery can be replayed; use [`verify`]).
pub fn legacy_signature(secret: &str, body: &[u8]) -> String {
    match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// Why [`verify`] refused a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
    #[error("the signature header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    /// No `v1` is the HMAC of `"<t>.<body>"` under this secret: another
    /// secret, or a changed body or timestamp.
    #[error("no v1 signature matches this body under this secret")]
    Mismatch,
    /// Signed correctly, but `t` is `age_seconds` before `now` (negative:
    /// after), beyond the tolerance: a replay, or a clock far off.
    #[error("signed {age_seconds} s from now, outside the tolerance")]
    OutsideTolerance { age_seconds: i64 },
}

/// Check a delivery as a receiver: `header` is the `Leadflow-Signature`
/// value, `body` the exact bytes received (before any JSON parsing), `now`
/// the receiver's clock, `tolerance` usually [`TOLERANCE`]. `Ok` when one
/// `v1` is the HMAC-SHA256 of `"<t>.<body>"` under `secret` (compared in
/// constant time) and `t` is within `tolerance` of `now`. Entries other
/// than `t` and `v1` are ignored (future schemes). Replays inside the
/// tolerance are the receiver's to drop, by remembering `Leadflow-Delivery`
/// ids for at least the tolerance.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(VerifyError::Malformed);
        };
        match k {
            "t" => {
                let t: i64 = v.parse().map_err(|_| VerifyError::Malformed)?;
                if timestamp.replace(t).is_some() {
                    return Err(VerifyError::Malformed);
                }
            }
            "v1" => signatures.push(v),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, signatures.is_empty()) else {
        return Err(VerifyError::Malformed);
    };
    let Some(mac) = keyed(secret.as_bytes(), t, body) else {
        return Err(VerifyError::Mismatch);
    };
    let matched = signatures.iter().any(|s| match hex::decode(s) {
        Ok(bytes) => mac.clone().verify_slice(&bytes).is_ok(),
        Err(_) => false,
    });
    if !matched {
        return Err(VerifyError::Mismatch);
    }
    let age_seconds = now.timestamp().saturating_sub(t);
    if age_seconds.unsigned_abs() > tolerance.num_seconds().unsigned_abs() {
        return Err(VerifyError::OutsideTolerance { age_seconds });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"type":"message.queued","id":1}"#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap()
    }

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let t = now().timestamp();
        let h = sign(&["whsec"], t, BODY);
        assert!(h.starts_with(&format!("t={t},v1=")) && h.len() == 2 + 10 + 4 + 64);
        assert_eq!(verify("whsec", &h, BODY, now(), TOLERANCE), Ok(()));
        // Within the tolerance either way; outside it, refused.
        for dt in [-300, 300] {
            let at = now() + TimeDelta::seconds(dt);
            assert_eq!(verify("whsec", &h, BODY, at, TOLERANCE), Ok(()));
        }
        assert_eq!(
            verify(
                "whsec",
                &h,
                BODY,
                now() + TimeDelta::seconds(301),
                TOLERANCE
            ),
            Err(VerifyError::OutsideTolerance { age_seconds: 301 })
        );
        assert_eq!(
            verify("whsec", &h, BODY, now() - TimeDelta::hours(1), TOLERANCE),
            Err(VerifyError::OutsideTolerance { age_seconds: -3600 })
        );
        let tampered = br#"{"type":"message.queued","id":2}"#;
        assert_eq!(
            verify("whsec", &h, tampered, now(), TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("other", &h, BODY, now(), TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        // Moving the timestamp (to get past the tolerance) breaks the MAC.
        let moved = h.replacen(&format!("t={t}"), &format!("t={}", t + 600), 1);
        assert_eq!(
            verify(
                "whsec",
                &moved,
                BODY,
                now() + TimeDelta::seconds(600),
                TOLERANCE
            ),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let t = now().timestamp();
        let h = sign(&["new", "old"], t, BODY);
        assert_eq!(h.matches(",v1=").count(), 2);
        for s in ["new", "old"] {
            assert_eq!(verify(s, &h, BODY, now(), TOLERANCE), Ok(()), "{s}");
        }
        assert_eq!(
            verify("neither", &h, BODY, now(), TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        // Unknown schemes and spaces are tolerated.
        let h2 = format!("v0=abc, {h}, v9=zz");
        assert_eq!(verify("old", &h2, BODY, now(), TOLERANCE), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let t = now().timestamp();
        let v1 = sign(&["s"], t, BODY);
        let v1 = v1.split_once(',').unwrap().1;
        for h in [
            String::new(),
            "sha256=abcd".into(),
            v1.to_string(),
            format!("t={t}"),
            format!("t=soon,{v1}"),
            format!("t={t},t={t},{v1}"),
            format!("t={t};{v1}"),
            "t=99999999999999999999,v1=00".into(),
        ] {
            assert_eq!(
                verify("s", &h, BODY, now(), TOLERANCE),
                Err(VerifyError::Malformed),
                "{h}"
            );
        }
        // Not hex, or the wrong length: a mismatch, not a panic.
        for bad in ["zz", "00", ""] {
            let h = format!("t={t},v1={bad}");
            assert_eq!(
                verify("s", &h, BODY, now(), TOLERANCE),
                Err(VerifyError::Mismatch),
                "{h}"
            );
        }
        // An extreme timestamp, signed: refused as outside the tolerance.
        let h = sign(&["s"], i64::MIN, BODY);
        assert!(matches!(
            verify("s", &h, BODY, now(), TOLERANCE),
            Err(VerifyError::OutsideTolerance { .. })
        ));
    }

    #[test]
    fn the_delivery_id_is_a_stable_uuid_per_tenant_message_and_time() {
        let at = now();
        let a = delivery_id("aslm", 42, at);
        assert_eq!(a, delivery_id("aslm", 42, at), "stable across retries");
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 8);
        let others = [
            delivery_id("other", 42, at),
            delivery_id("aslm", 43, at),
            delivery_id("aslm", 42, at + TimeDelta::microseconds(1)),
            delivery_id("Ünïcode tenant", 42, at),
        ];
        for o in &others {
            assert_ne!(&a, o);
            assert!(o.is_ascii());
        }
    }

    #[test]
    fn the_event_serializes_with_its_documented_names() {
        let e = WebhookEvent {
            event_type: EventType::MessageQueued,
            delivery_id: delivery_id("t", 1, now()),
            tenant: "t".into(),
            id: 1,
            record: 2,
            created_at: now(),
            template: "x".into(),
            recipients: vec!["a".into()],
            subject: "s".into(),
            body: "b".into(),
            payload: serde_json::json!({}),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "message.queued");
        assert_eq!(v["created_at"], "2025-06-15T15:06:40Z");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 11, "{keys:?}");
        assert_eq!(serde_json::from_value::<WebhookEvent>(v).unwrap(), e);
    }
}
