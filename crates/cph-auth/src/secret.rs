//! Credential material: access keys, secret keys and password hashes.
//!
//! Passwords are stored as `pbkdf2-sha256$<iterations>$<salt>$<hash>`, salt and hash in standard
//! base64 without padding. The PBKDF2 here is RFC 8018's, with HMAC-SHA256 as the PRF.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Iterations used by [`hash_password`].
pub const DEFAULT_ITERATIONS: u32 = 100_000;

/// Stored hashes claiming more iterations than this are refused rather than computed.
const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const SCHEME: &str = "pbkdf2-sha256";

/// Decodes base64 with or without padding.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const AK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new access key (AK): 20 characters from `A-Z0-9`, like Huawei Cloud's.
pub fn generate_access_key() -> String {
    random_string(AK_ALPHABET, 20)
}

/// A new secret key (SK): 40 characters from `A-Za-z0-9` (about 238 bits).
pub fn generate_secret_key() -> String {
    random_string(SK_ALPHABET, 40)
}

/// Hashes a password with a fresh random salt and [`DEFAULT_ITERATIONS`].
pub fn hash_password(pw: &str) -> String {
    hash_password_with_iterations(pw, DEFAULT_ITERATIONS)
}

/// Hashes a password with a fresh random salt and the given iteration count (at least 1).
pub fn hash_password_with_iterations(pw: &str, iterations: u32) -> String {
    let iterations = iterations.clamp(1, MAX_ITERATIONS);
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let mut hash = [0u8; HASH_LEN];
    pbkdf2_hmac_sha256(pw.as_bytes(), &salt, iterations, &mut hash);
    format!(
        "{SCHEME}${iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

/// Checks a password against a string made by [`hash_password`]; the comparison is constant
/// time. A stored value that cannot be parsed never matches.
pub fn verify_password(pw: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(scheme), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    if scheme != SCHEME {
        return false;
    }
    let Ok(iterations) = iterations.parse::<u32>() else {
        return false;
    };
    if !(1..=MAX_ITERATIONS).contains(&iterations) {
        return false;
    }
    let (Ok(salt), Ok(expected)) = (B64_LENIENT.decode(salt), B64_LENIENT.decode(hash)) else {
        return false;
    };
    if salt.is_empty() || !(16..=64).contains(&expected.len()) {
        return false;
    }
    let mut actual = vec![0u8; expected.len()];
    pbkdf2_hmac_sha256(pw.as_bytes(), &salt, iterations, &mut actual);
    actual.ct_eq(&expected).into()
}

/// PBKDF2 (RFC 8018 section 5.2) with HMAC-SHA256, filling all of `out`.
///
/// An `iterations` of 0 is treated as 1.
pub fn pbkdf2_hmac_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    let prf = Hmac::<Sha256>::new_from_slice(password).expect("HMAC accepts keys of any length");
    for (block_idx, block) in out.chunks_mut(32).enumerate() {
        let block_number = u32::try_from(block_idx + 1).expect("PBKDF2 output too long");
        let mut mac = prf.clone();
        mac.update(salt);
        mac.update(&block_number.to_be_bytes());
        let mut u = mac.finalize().into_bytes();
        let mut t = u;
        for _ in 1..iterations {
            let mut mac = prf.clone();
            mac.update(&u);
            u = mac.finalize().into_bytes();
            for (acc, byte) in t.iter_mut().zip(u.iter()) {
                *acc ^= byte;
            }
        }
        block.copy_from_slice(&t[..block.len()]);
    }
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}
