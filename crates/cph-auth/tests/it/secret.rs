//! Key generation and password hashing.

use std::collections::HashSet;

use cph_auth::secret::{
    DEFAULT_ITERATIONS, generate_access_key, generate_secret_key, hash_password,
    hash_password_with_iterations, pbkdf2_hmac_sha256, verify_password,
};

#[test]
fn pbkdf2_matches_rfc_7914_section_11() {
    let mut out = [0u8; 64];
    pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut out);
    assert_eq!(
        hex::encode(out),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
         49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    );
}

#[test]
fn pbkdf2_matches_rfc_7914_section_11_many_iterations() {
    let mut out = [0u8; 64];
    pbkdf2_hmac_sha256(b"Password", b"NaCl", 80_000, &mut out);
    assert_eq!(
        hex::encode(out),
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
         a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
    );
}

#[test]
fn pbkdf2_output_length_is_free() {
    let mut long = [0u8; 64];
    pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut long);
    let mut short = [0u8; 20];
    pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut short);
    assert_eq!(short, long[..20]);
}

#[test]
fn access_keys_look_like_huawei_ones() {
    let keys: HashSet<String> = (0..100).map(|_| generate_access_key()).collect();
    assert_eq!(keys.len(), 100);
    for key in &keys {
        assert_eq!(key.len(), 20);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{key}"
        );
    }
}

#[test]
fn secret_keys_are_40_alphanumerics() {
    let keys: HashSet<String> = (0..100).map(|_| generate_secret_key()).collect();
    assert_eq!(keys.len(), 100);
    for key in &keys {
        assert_eq!(key.len(), 40);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    }
    assert!(
        keys.iter()
            .any(|k| k.bytes().any(|b| b.is_ascii_lowercase()))
    );
}

#[test]
fn default_hash_has_the_documented_format_and_verifies() {
    let stored = hash_password("correct horse battery staple");
    let parts: Vec<&str> = stored.split('$').collect();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0], "pbkdf2-sha256");
    assert_eq!(parts[1], DEFAULT_ITERATIONS.to_string());
    assert!(verify_password("correct horse battery staple", &stored));
    assert!(!verify_password("correct horse battery stapler", &stored));
    assert!(!verify_password("", &stored));
}

#[test]
fn salts_differ_between_hashes() {
    let a = hash_password_with_iterations("pw", 10);
    let b = hash_password_with_iterations("pw", 10);
    assert_ne!(a, b);
    assert!(verify_password("pw", &a));
    assert!(verify_password("pw", &b));
}

#[test]
fn a_known_hash_verifies() {
    // PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes, in the stored format.
    let stored = "pbkdf2-sha256$1$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw";
    assert!(verify_password("passwd", stored));
    assert!(verify_password("passwd", &format!("{stored}=")));
    assert!(!verify_password(
        "passwd",
        &stored.replacen("$1$", "$2$", 1)
    ));
}

#[test]
fn garbage_never_verifies() {
    let stored = hash_password_with_iterations("pw", 10);
    let parts: Vec<&str> = stored.split('$').collect();
    let cases = [
        String::new(),
        "pw".to_owned(),
        stored.replacen("pbkdf2-sha256", "pbkdf2-sha1", 1),
        format!("{stored}$extra"),
        format!("{}${}${}", parts[0], parts[1], parts[2]),
        format!("{}$0${}${}", parts[0], parts[2], parts[3]),
        format!("{}$-1${}${}", parts[0], parts[2], parts[3]),
        format!("{}$999999999${}${}", parts[0], parts[2], parts[3]),
        format!("{}${}$!!${}", parts[0], parts[1], parts[3]),
        format!("{}${}$${}", parts[0], parts[1], parts[3]),
        format!("{}${}${}$AAAA", parts[0], parts[1], parts[2]),
    ];
    for case in cases {
        assert!(!verify_password("pw", &case), "{case:?}");
    }
}
