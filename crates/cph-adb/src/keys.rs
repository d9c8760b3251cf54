//! ADB's RSA keys: Android's 524-byte public key format (`adbkey.pub`), PEM private keys, and
//! the AUTH token signature (PKCS#1 v1.5 with the SHA-1 DigestInfo over the raw 20-byte token,
//! which is treated as the digest: it is not hashed again).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;

/// Size of the encoded public key struct: 3 words and two 256-byte numbers.
pub const ENCODED_SIZE: usize = 524;
const MODULUS_WORDS: u32 = 64;
const MODULUS_BYTES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("public key is not valid base64")]
    Base64,
    #[error("public key is {0} bytes, expected {ENCODED_SIZE}")]
    Size(usize),
    #[error("public key modulus is not 2048 bits")]
    Modulus,
    #[error("invalid RSA key: {0}")]
    Rsa(String),
    #[error("private key is neither PKCS#8 nor PKCS#1 PEM")]
    Pem,
}

/// An RSA public key as adb knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdbPublicKey {
    key: RsaPublicKey,
}

impl AdbPublicKey {
    pub fn from_rsa(key: RsaPublicKey) -> Self {
        AdbPublicKey { key }
    }

    pub fn rsa(&self) -> &RsaPublicKey {
        &self.key
    }

    /// Decodes the 524-byte struct (only size, word count, modulus and exponent are read).
    pub fn from_bytes(raw: &[u8]) -> Result<Self, KeyError> {
        if raw.len() != ENCODED_SIZE {
            return Err(KeyError::Size(raw.len()));
        }
        let words = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if words != MODULUS_WORDS {
            return Err(KeyError::Modulus);
        }
        let n = BigUint::from_bytes_le(&raw[8..8 + MODULUS_BYTES]);
        let e = u32::from_le_bytes([raw[520], raw[521], raw[522], raw[523]]);
        let key =
            RsaPublicKey::new(n, BigUint::from(e)).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(AdbPublicKey { key })
    }

    /// Parses an `adbkey.pub` line: base64, then optionally whitespace and a comment.
    /// A trailing NUL (as sent in `AUTH(RSAPUBLICKEY)`) is ignored.
    pub fn from_line(line: &str) -> Result<Self, KeyError> {
        let b64 = line
            .trim_end_matches('\0')
            .split([' ', '\t'])
            .next()
            .unwrap_or("")
            .trim();
        let raw = B64.decode(b64).map_err(|_| KeyError::Base64)?;
        Self::from_bytes(&raw)
    }

    /// The 524-byte struct, with `n0inv` and `rr` computed as Android does.
    pub fn to_bytes(&self) -> Result<[u8; ENCODED_SIZE], KeyError> {
        let n = self.key.n();
        let n_le = n.to_bytes_le();
        if n.bits() != 2048 {
            return Err(KeyError::Modulus);
        }
        let mut out = [0u8; ENCODED_SIZE];
        out[0..4].copy_from_slice(&MODULUS_WORDS.to_le_bytes());
        let n0 = u32::from_le_bytes([n_le[0], n_le[1], n_le[2], n_le[3]]);
        // Inverse of n0 modulo 2^32 by Newton iteration (n is odd), negated.
        let mut inv: u32 = n0;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        out[4..8].copy_from_slice(&inv.wrapping_neg().to_le_bytes());
        out[8..8 + n_le.len()].copy_from_slice(&n_le);
        let rr = (BigUint::from(1u32) << 4096usize) % n;
        let rr_le = rr.to_bytes_le();
        out[264..264 + rr_le.len()].copy_from_slice(&rr_le);
        let e = num_traits::ToPrimitive::to_u32(self.key.e())
            .ok_or_else(|| KeyError::Rsa("exponent does not fit 32 bits".into()))?;
        out[520..524].copy_from_slice(&e.to_le_bytes());
        Ok(out)
    }

    /// `base64(struct) comment`, the `adbkey.pub` format.
    pub fn to_line(&self, comment: &str) -> Result<String, KeyError> {
        Ok(format!("{} {comment}", B64.encode(self.to_bytes()?)))
    }

    /// Whether `signature` is this key's signature of the 20-byte `token`.
    pub fn verify_token(&self, token: &[u8], signature: &[u8]) -> bool {
        self.key
            .verify(Pkcs1v15Sign::new::<Sha1>(), token, signature)
            .is_ok()
    }
}

/// A private key the client side signs AUTH tokens with.
#[derive(Clone)]
pub struct AdbPrivateKey {
    key: RsaPrivateKey,
}

impl std::fmt::Debug for AdbPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdbPrivateKey(..)")
    }
}

impl AdbPrivateKey {
    /// A new 2048-bit key with e = 65537, as `adb keygen` makes.
    pub fn generate() -> Result<Self, KeyError> {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 2048).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(AdbPrivateKey { key })
    }

    /// Reads a PEM key: PKCS#8 (`BEGIN PRIVATE KEY`, what `adb keygen` writes) or PKCS#1.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| KeyError::Pem)?;
        Ok(AdbPrivateKey { key })
    }

    /// PKCS#8 PEM, the format of `~/.android/adbkey`.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|s| s.to_string())
            .map_err(|e| KeyError::Rsa(e.to_string()))
    }

    pub fn public_key(&self) -> AdbPublicKey {
        AdbPublicKey::from_rsa(self.key.to_public_key())
    }

    /// Signs an AUTH token (the token is used as the SHA-1 digest).
    pub fn sign_token(&self, token: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.key
            .sign(Pkcs1v15Sign::new::<Sha1>(), token)
            .map_err(|e| KeyError::Rsa(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_sign_verify() {
        let k = AdbPrivateKey::generate().unwrap();
        let pubk = k.public_key();
        let line = pubk.to_line("user@host").unwrap();
        assert!(line.starts_with("QAAAA"), "{line}");
        assert_eq!(line.split(' ').next().unwrap().len(), 700);
        let back = AdbPublicKey::from_line(&format!("{line}\0")).unwrap();
        assert_eq!(back, pubk);
        let token = [7u8; 20];
        let sig = k.sign_token(&token).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(back.verify_token(&token, &sig));
        let mut other = token;
        other[0] ^= 1;
        assert!(!back.verify_token(&other, &sig));
        let pem = k.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(AdbPrivateKey::from_pem(&pem).unwrap().public_key(), pubk);
        assert!(AdbPublicKey::from_line("not base64!").is_err());
        assert!(AdbPublicKey::from_bytes(&[0u8; 10]).is_err());
    }

    #[test]
    fn n0inv_is_minus_inverse() {
        let k = AdbPrivateKey::generate().unwrap();
        let raw = k.public_key().to_bytes().unwrap();
        let n0 = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
        let n0inv = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
        assert_eq!(n0.wrapping_mul(n0inv), u32::MAX); // n0 * (-1/n0) == -1 mod 2^32
    }
}
