//! Secret keys at rest: AES-256-GCM under a master key.
//!
//! Signature checks (SDK-HMAC-SHA256, SigV2/SigV4) need the secret key itself, so it cannot be
//! hashed; it is encrypted instead. The stored form is `v1:` followed by standard base64 of
//! `nonce (12 bytes) || ciphertext || tag (16 bytes)`. The associated data is the access key id,
//! so a ciphertext copied to another row does not decrypt.
//!
//! Decrypted secrets are [`Secret`]s: redacted in `Debug`, zeroed on drop, compared in constant
//! time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Prefix of a value sealed by [`MasterKey::seal`] (format version 1).
pub const SEALED_PREFIX: &str = "v1:";

/// Domain separation of the associated data.
const AAD_CONTEXT: &[u8] = b"cph/access-key-secret/v1\0";

/// Longest stored value [`MasterKey::open`] decodes (secrets are far shorter).
const MAX_SEALED_LEN: usize = 4096;

/// Why a master key could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MasterKeyError {
    #[error(
        "a master key file must hold exactly 32 bytes, or 64 hexadecimal digits (found {0} bytes)"
    )]
    BadLength(usize),
    #[error("the random number generator failed")]
    Random,
}

/// Why a stored value did not decrypt. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("the stored value is not in the sealed format")]
    NotSealed,
    #[error("the stored value is malformed")]
    Malformed,
    #[error("the stored value does not decrypt with this master key for this access key")]
    Rejected,
}

/// A plaintext secret: redacted in `Debug`, zeroed on drop, compared in constant time.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(s.into()))
    }

    /// The secret itself, for signing and verification only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a plaintext.
    pub fn matches(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.matches(other.expose())
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

/// The AES-256-GCM key that seals secret keys at rest. Cheap to clone; redacted in `Debug`.
#[derive(Clone)]
pub struct MasterKey {
    key: Arc<LessSafeKey>,
    rng: SystemRandom,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A key from exactly [`MASTER_KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, MasterKeyError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| MasterKeyError::BadLength(bytes.len()))?;
        Ok(MasterKey {
            key: Arc::new(LessSafeKey::new(unbound)),
            rng: SystemRandom::new(),
        })
    }

    /// A key from the contents of a key file: 32 raw bytes, or 64 hexadecimal digits
    /// (surrounding whitespace ignored). A 32-byte file of hex digits only is refused: it is
    /// the hex form of a 16-byte key, not a 32-byte key.
    pub fn from_file_contents(contents: &[u8]) -> Result<MasterKey, MasterKeyError> {
        if contents.len() == MASTER_KEY_LEN && !contents.iter().all(u8::is_ascii_hexdigit) {
            return MasterKey::from_bytes(contents);
        }
        let text = contents.trim_ascii();
        if text.len() == 2 * MASTER_KEY_LEN && text.iter().all(u8::is_ascii_hexdigit) {
            let mut raw = Zeroizing::new([0u8; MASTER_KEY_LEN]);
            for (i, pair) in text.chunks(2).enumerate() {
                raw[i] = (hex_val(pair[0]) << 4) | hex_val(pair[1]);
            }
            return MasterKey::from_bytes(&raw[..]);
        }
        Err(MasterKeyError::BadLength(contents.len()))
    }

    /// A new random key and its bytes (to be written to a key file).
    pub fn generate() -> Result<(MasterKey, Zeroizing<[u8; MASTER_KEY_LEN]>), MasterKeyError> {
        let mut raw = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        SystemRandom::new()
            .fill(&mut raw[..])
            .map_err(|_| MasterKeyError::Random)?;
        let key = MasterKey::from_bytes(&raw[..])?;
        Ok((key, raw))
    }

    /// Seals `secret` for the row of `access_key`.
    pub fn seal(&self, access_key: &str, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The system generator does not fail on supported platforms; a failure would be fatal.
        self.rng
            .fill(&mut nonce)
            .expect("the system random number generator failed");
        let mut buf = Vec::with_capacity(NONCE_LEN + secret.len() + AES_256_GCM.tag_len());
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(secret.as_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(access_key)),
                &mut buf[NONCE_LEN..],
            )
            .expect("AES-GCM sealing of a short value cannot fail");
        buf.extend_from_slice(tag.as_ref());
        let out = format!("{SEALED_PREFIX}{}", STANDARD.encode(&buf));
        buf.zeroize();
        out
    }

    /// Opens a value made by [`MasterKey::seal`] for the row of `access_key`.
    pub fn open(&self, access_key: &str, stored: &str) -> Result<Secret, OpenError> {
        let body = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or(OpenError::NotSealed)?;
        if body.len() > MAX_SEALED_LEN {
            return Err(OpenError::Malformed);
        }
        let mut buf = STANDARD.decode(body).map_err(|_| OpenError::Malformed)?;
        if buf.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::Malformed);
        }
        let nonce = Nonce::try_assume_unique_for_key(&buf[..NONCE_LEN])
            .map_err(|_| OpenError::Malformed)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(access_key)), &mut buf[NONCE_LEN..])
            .map_err(|_| OpenError::Rejected)?;
        let text = std::str::from_utf8(plain)
            .map(str::to_string)
            .map_err(|_| OpenError::Malformed);
        buf.zeroize();
        text.map(Secret::new)
    }
}

/// True when `stored` is in the sealed format (anything else is a legacy clear value).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

fn aad(access_key: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(AAD_CONTEXT.len() + access_key.len());
    v.extend_from_slice(AAD_CONTEXT);
    v.extend_from_slice(access_key.as_bytes());
    v
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_bindings() {
        let k = key(1);
        let sealed = k.seal("AK1", "the-secret");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("the-secret"));
        assert_eq!(k.open("AK1", &sealed).unwrap().expose(), "the-secret");
        // Fresh nonce each time.
        assert_ne!(sealed, k.seal("AK1", "the-secret"));
        // Bound to the access key and to the master key.
        assert_eq!(k.open("AK2", &sealed).unwrap_err(), OpenError::Rejected);
        assert_eq!(
            key(2).open("AK1", &sealed).unwrap_err(),
            OpenError::Rejected
        );
        // Tampering is detected.
        let mut raw = STANDARD.decode(&sealed[3..]).unwrap();
        raw[NONCE_LEN] ^= 1;
        let tampered = format!("v1:{}", STANDARD.encode(raw));
        assert_eq!(k.open("AK1", &tampered).unwrap_err(), OpenError::Rejected);
        assert_eq!(k.open("AK1", "clear").unwrap_err(), OpenError::NotSealed);
        assert_eq!(k.open("AK1", "v1:!!").unwrap_err(), OpenError::Malformed);
        assert_eq!(k.open("AK1", "v1:AAAA").unwrap_err(), OpenError::Malformed);
    }

    #[test]
    fn key_files() {
        let raw = [7u8; 32];
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let a = MasterKey::from_file_contents(&raw).unwrap();
        let b = MasterKey::from_file_contents(format!("{hex}\n").as_bytes()).unwrap();
        assert_eq!(b.open("A", &a.seal("A", "s")).unwrap().expose(), "s");
        assert_eq!(
            MasterKey::from_file_contents(&[1u8; 31]).unwrap_err(),
            MasterKeyError::BadLength(31)
        );
        // 32 hex digits are a 16-byte key: refused.
        assert!(MasterKey::from_file_contents(&hex.as_bytes()[..32]).is_err());
        let (g, bytes) = MasterKey::generate().unwrap();
        let again = MasterKey::from_file_contents(&bytes[..]).unwrap();
        assert_eq!(again.open("X", &g.seal("X", "y")).unwrap().expose(), "y");
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", key(3)).contains("3"));
        assert!(s.matches("hunter2") && !s.matches("hunter3"));
    }
}
