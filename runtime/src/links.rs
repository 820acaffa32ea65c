//! One-click action links (docs/notifications.md#action-links): a template's
//! `{{ action_url("accept") }}` prints a URL that lets the recipient fire one
//! transition of one record, as that recipient, without an API key.
//!
//! A link carries its claims in the clear and an HMAC-SHA256 over them:
//! tenant, record, revision, transition, recipient actor and expiry. The key
//! is the daemon's (`[links] secret_env`, an environment variable; without
//! `[links]` a random key made at start, so links die with the process). The
//! claims bind the link: a change of any byte breaks the signature, a record
//! that moved on (another revision) refuses it as stale, and a used link's id
//! is kept in the store so it is refused the second time.
//!
//! Token: `<claims>.<mac>`, both base64url without padding; claims are the
//! JSON array `[1, tenant, record, revision, transition, actor, expires]`
//! (`expires` in Unix seconds). The link id is the first 16 bytes of the
//! SHA-256 of the claims part, in hex: the same link always has the same id.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The path of the link pages: `GET`/`POST /links/{token}`.
pub const PATH: &str = "/links/";

/// Days a link lives when the record has no armed timer (`max_age_days`).
pub const DEFAULT_MAX_AGE_DAYS: u32 = 7;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a link is refused; each has a stable code (`E_LINK_*`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Not a token, or its signature does not match (altered, or signed
    /// with another key).
    #[error("this link is not valid: it was altered or cut, or it was made by another server")]
    Invalid,
    #[error("this link expired on {0}")]
    Expired(DateTime<Utc>),
}

impl LinkError {
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::Invalid => "E_LINK_INVALID",
            LinkError::Expired(_) => "E_LINK_EXPIRED",
        }
    }
}

/// What a link lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub tenant: String,
    pub record: i64,
    /// The record's revision the message was written at: the link works
    /// only while the record is still there.
    pub revision: i64,
    pub transition: String,
    /// The recipient actor: the transition is fired as this actor.
    pub actor: String,
    pub expires: DateTime<Utc>,
}

/// A verified link: its claims and its id (the used-link store's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: Claims,
    pub id: String,
}

/// The daemon's link key and the base of the URLs it prints.
pub struct LinkKey {
    /// Keyed and primed with the domain prefix; cloned per use.
    mac: Hmac<Sha256>,
    base_url: String,
    max_age: Duration,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkKey")
            .field("base_url", &self.base_url)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl LinkKey {
    /// A key of at least [`MIN_KEY_BYTES`] bytes; `base_url` without the
    /// trailing slash (`https://leads.example.it`).
    pub fn new(key: &[u8], base_url: &str, max_age_days: u32) -> Result<LinkKey, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the link key has {} bytes, at least {MIN_KEY_BYTES} are needed (`openssl rand -hex 32`)",
                key.len()
            ));
        }
        if max_age_days == 0 {
            return Err("max_age_days must be at least 1".into());
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|e| e.to_string())?;
        mac.update(b"leadflow-link-v1.");
        Ok(LinkKey {
            mac,
            base_url: base_url.trim_end_matches('/').to_string(),
            max_age: Duration::days(i64::from(max_age_days)),
        })
    }

    /// A random key (no `[links]` configured): links work until the daemon
    /// stops.
    pub fn ephemeral(base_url: &str) -> Result<LinkKey, String> {
        let mut key = [0u8; 32];
        let rng = ring::rand::SystemRandom::new();
        if ring::rand::SecureRandom::fill(&rng, &mut key).is_err() {
            // No system randomness: fall back on v4 UUIDs (also random).
            let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            key[..16].copy_from_slice(a.as_bytes());
            key[16..].copy_from_slice(b.as_bytes());
        }
        LinkKey::new(&key, base_url, DEFAULT_MAX_AGE_DAYS)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// When a link of a message written at `queued` expires: at `deadline`
    /// (the record's timer the step armed, when one was) if it comes
    /// first, else after `max_age_days`.
    pub fn expiry(&self, queued: DateTime<Utc>, deadline: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let max = queued + self.max_age;
        match deadline {
            Some(d) if d < max => d,
            _ => max,
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }

    /// The token of `claims`.
    pub fn sign(&self, c: &Claims) -> String {
        let json = serde_json::json!([
            1,
            c.tenant,
            c.record,
            c.revision,
            c.transition,
            c.actor,
            c.expires.timestamp()
        ]);
        let body = URL_SAFE_NO_PAD.encode(json.to_string());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{sig}")
    }

    /// The URL of `claims`: `<base_url>/links/<token>`.
    pub fn url(&self, c: &Claims) -> String {
        format!("{}{PATH}{}", self.base_url, self.sign(c))
    }

    /// Check a token's signature and expiry at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Verified, LinkError> {
        let (body, sig) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Invalid)?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).map_err(|_| LinkError::Invalid)?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| LinkError::Invalid)?;
        let v: serde_json::Value = serde_json::from_slice(&json).map_err(|_| LinkError::Invalid)?;
        let claims = parse_claims(&v).ok_or(LinkError::Invalid)?;
        if now >= claims.expires {
            return Err(LinkError::Expired(claims.expires));
        }
        Ok(Verified {
            id: link_id(body),
            claims,
        })
    }
}

fn parse_claims(v: &serde_json::Value) -> Option<Claims> {
    let a = v.as_array()?;
    if a.len() != 7 || a[0].as_i64()? != 1 {
        return None;
    }
    Some(Claims {
        tenant: a[1].as_str()?.to_string(),
        record: a[2].as_i64()?,
        revision: a[3].as_i64()?,
        transition: a[4].as_str()?.to_string(),
        actor: a[5].as_str()?.to_string(),
        expires: Utc.timestamp_opt(a[6].as_i64()?, 0).single()?,
    })
}

fn link_id(body: &str) -> String {
    let d = Sha256::digest(body.as_bytes());
    hex::encode(&d[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LinkKey {
        LinkKey::new(&[7u8; 32], "http://127.0.0.1:8080/", 7).unwrap()
    }

    fn claims(expires: DateTime<Utc>) -> Claims {
        Claims {
            tenant: "oplead".into(),
            record: 42,
            revision: 3,
            transition: "accept".into(),
            actor: "exp-a".into(),
            expires,
        }
    }

    #[test]
    fn a_signed_link_verifies_and_keeps_its_claims_and_id() {
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let c = claims(now + Duration::hours(24));
        let url = key().url(&c);
        assert!(url.starts_with("http://127.0.0.1:8080/links/"), "{url}");
        let token = &url["http://127.0.0.1:8080/links/".len()..];
        let v = key().verify(token, now).unwrap();
        assert_eq!(v.claims, c);
        assert_eq!(v.id.len(), 32);
        assert_eq!(key().verify(token, now).unwrap().id, v.id, "stable id");
        let other = key().sign(&Claims {
            transition: "refuse".into(),
            ..c
        });
        assert_ne!(key().verify(&other, now).unwrap().id, v.id);
    }

    #[test]
    fn altered_cut_foreign_and_expired_links_are_refused() {
        let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let token = key().sign(&claims(now + Duration::hours(1)));
        let (body, sig) = token.split_once('.').unwrap();
        // Another record in the claims, same signature.
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::json!([
                1,
                "oplead",
                43,
                3,
                "accept",
                "exp-a",
                (now + Duration::hours(1)).timestamp()
            ])
            .to_string(),
        );
        for bad in [
            format!("{forged}.{sig}"),
            format!("{body}.{}", &sig[1..]),
            body.to_string(),
            String::new(),
            "..".into(),
            "ä.ö".into(),
        ] {
            assert_eq!(key().verify(&bad, now), Err(LinkError::Invalid), "{bad}");
        }
        let foreign = LinkKey::new(&[8u8; 32], "http://x", 7).unwrap();
        assert_eq!(foreign.verify(&token, now), Err(LinkError::Invalid));
        let later = now + Duration::hours(1);
        assert_eq!(
            key().verify(&token, later).map_err(|e| e.code()),
            Err("E_LINK_EXPIRED")
        );
    }

    #[test]
    fn expiry_is_the_armed_deadline_or_max_age() {
        let q = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let k = key();
        assert_eq!(k.expiry(q, None), q + Duration::days(7));
        let d = q + Duration::hours(30);
        assert_eq!(k.expiry(q, Some(d)), d);
        assert_eq!(
            k.expiry(q, Some(q + Duration::days(30))),
            q + Duration::days(7)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(LinkKey::new(b"short", "http://x", 7).is_err());
        assert!(LinkKey::new(&[1u8; 32], "http://x", 0).is_err());
    }
}
