//! Bearer tokens for `X-Auth-Token`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use cph_auth::AuthError;
use cph_auth::token::{TokenClaims, issue, verify};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn claims() -> TokenClaims {
    TokenClaims {
        user_id: "user-1".to_owned(),
        domain_id: "domain-1".to_owned(),
        project_id: "0123456789abcdef0123456789abcdef".to_owned(),
        issued_at: 1_700_000_000,
        expires_at: 1_700_086_400,
    }
}

#[test]
fn issued_tokens_verify_to_their_claims() {
    let token = issue(KEY, &claims());
    assert_eq!(token.matches('.').count(), 1);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    );
    assert_eq!(verify(KEY, &token, now()), Ok(claims()));
}

#[test]
fn the_payload_is_base64url_json_of_the_claims() {
    let token = issue(KEY, &claims());
    let payload = token.split_once('.').unwrap().0;
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(json["user_id"], "user-1");
    assert_eq!(json["expires_at"], 1_700_086_400);
}

#[test]
fn a_token_with_forged_claims_is_invalid() {
    let token = issue(KEY, &claims());
    let tag = token.split_once('.').unwrap().1;
    let mut forged = claims();
    forged.project_id = "ffffffffffffffffffffffffffffffff".to_owned();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let forged_token = format!("{forged_payload}.{tag}");
    assert_eq!(
        verify(KEY, &forged_token, now()),
        Err(AuthError::InvalidToken)
    );
}

#[test]
fn every_flipped_character_is_rejected() {
    let token = issue(KEY, &claims());
    for idx in 0..token.len() {
        if token.as_bytes()[idx] == b'.' {
            continue;
        }
        let mut bytes = token.clone().into_bytes();
        bytes[idx] = if bytes[idx] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let result = verify(KEY, &tampered, now());
        assert!(
            matches!(
                result,
                Err(AuthError::InvalidToken) | Err(AuthError::MalformedToken)
            ),
            "position {idx}: {result:?}"
        );
    }
}

#[test]
fn another_key_is_invalid() {
    let token = issue(KEY, &claims());
    assert_eq!(
        verify(b"another key", &token, now()),
        Err(AuthError::InvalidToken)
    );
}

#[test]
fn expiry_is_enforced() {
    let token = issue(KEY, &claims());
    let just_before = DateTime::from_timestamp(1_700_086_399, 0).unwrap();
    let at_expiry = DateTime::from_timestamp(1_700_086_400, 0).unwrap();
    assert_eq!(verify(KEY, &token, just_before), Ok(claims()));
    assert_eq!(verify(KEY, &token, at_expiry), Err(AuthError::Expired));
}

#[test]
fn malformed_tokens_are_reported() {
    let token = issue(KEY, &claims());
    let (payload, tag) = token.split_once('.').unwrap();
    let too_long = "a".repeat(10_000);
    let cases = [
        String::new(),
        "no-dot".to_owned(),
        format!(".{tag}"),
        format!("{payload}."),
        format!("{payload}.{tag}.extra"),
        format!("{payload}.{tag}=="),
        format!("{payload}.not base64!"),
        too_long,
    ];
    for case in cases {
        assert_eq!(
            verify(KEY, &case, now()),
            Err(AuthError::MalformedToken),
            "{case:?}"
        );
    }
}

#[test]
fn an_authentic_payload_that_is_not_claims_is_malformed() {
    use hmac::{Hmac, Mac};
    let payload = URL_SAFE_NO_PAD.encode(br#"{"user_id": 1}"#);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
    mac.update(payload.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_eq!(
        verify(KEY, &format!("{payload}.{tag}"), now()),
        Err(AuthError::MalformedToken)
    );
}
