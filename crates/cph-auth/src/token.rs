//! Stateless, tamper-proof bearer tokens for `X-Auth-Token`.
//!
//! A token is `base64url(JSON claims) "." base64url(HMAC-SHA256(key, <first part>))`, both parts
//! without padding. The tag covers the encoded payload exactly as sent, so nothing is
//! re-serialised before checking it. Nothing is stored server side: a token stays valid until
//! `expires_at`, or until the key changes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::AuthError;

/// Longest token [`verify`] looks at; anything longer is malformed.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The IAM user the token was issued to.
    pub user_id: String,
    /// The user's domain (account).
    pub domain_id: String,
    /// The project the token is scoped to.
    pub project_id: String,
    /// Unix seconds; the token is refused from this instant on.
    pub expires_at: i64,
    /// Unix seconds of issue.
    pub issued_at: i64,
}

/// Issues a token carrying `claims`, authenticated with `key`.
pub fn issue(key: &[u8], claims: &TokenClaims) -> String {
    let json = serde_json::to_vec(claims).expect("token claims are plain strings and integers");
    let payload = URL_SAFE_NO_PAD.encode(json);
    let tag = URL_SAFE_NO_PAD.encode(tag(key, &payload));
    format!("{payload}.{tag}")
}

/// Checks a token issued by [`issue`] with the same `key` and returns its claims.
///
/// Fails with [`AuthError::MalformedToken`] if it is not a token at all,
/// [`AuthError::InvalidToken`] if the tag does not match (compared in constant time), and
/// [`AuthError::Expired`] if `now` is at or past `expires_at`.
pub fn verify(key: &[u8], token: &str, now: DateTime<Utc>) -> Result<TokenClaims, AuthError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::MalformedToken);
    }
    let (payload, sent_tag) = token.split_once('.').ok_or(AuthError::MalformedToken)?;
    if payload.is_empty() {
        return Err(AuthError::MalformedToken);
    }
    let sent_tag = URL_SAFE_NO_PAD
        .decode(sent_tag)
        .map_err(|_| AuthError::MalformedToken)?;
    if sent_tag.len() != TAG_LEN {
        return Err(AuthError::MalformedToken);
    }
    if !bool::from(tag(key, payload).as_slice().ct_eq(&sent_tag)) {
        return Err(AuthError::InvalidToken);
    }

    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::MalformedToken)?;
    let claims: TokenClaims =
        serde_json::from_slice(&json).map_err(|_| AuthError::MalformedToken)?;
    if now.timestamp() >= claims.expires_at {
        return Err(AuthError::Expired);
    }
    Ok(claims)
}

fn tag(key: &[u8], payload: &str) -> [u8; TAG_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().into()
}
