//! Key pairs: the Nova `os-keypairs` registry (create/import, list, show, delete) and the CPH
//! operation UpdateKeypair, which changes the key pair of servers through jobs.
//!
//! Nova rules as this registry applies them:
//! - A name is 1–64 characters of `[A-Za-z0-9_-]` and unique within the project.
//! - Without `public_key` a key pair is generated: RSA 2048 (what Nova does; private key in
//!   PKCS#1 PEM) or, when the service is configured with [`KeypairAlgorithm::Ed25519`], Ed25519
//!   (private key in OpenSSH's `openssh-key-v1` form, unencrypted, as `ssh-keygen -t ed25519`
//!   writes it). The API has no field to choose. The public key is returned in OpenSSH form and
//!   the private key is returned once and never stored.
//! - With `public_key` an OpenSSH public key is imported: `ssh-rsa` (at least 1024 bits),
//!   `ssh-ed25519` or `ecdsa-sha2-nistp256/384/521`, checked structurally.
//! - `type` is `ssh` (default); `x509` key pairs are not supported.
//! - The fingerprint is the colon-separated MD5 of the key blob, as Nova shows it.
//!
//! Errors: Nova answers with `{"<kind>": {"code": <status>, "message": …}}`, from which the SDK
//! reports the HTTP status as the error code. These operations therefore answer with the Nova
//! status (400 bad request, 404 not found, 409 conflict) and that status as `error_code`, in the
//! error body of the rest of the API.

use crate::servers::server_operable;
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use base64::Engine;
use cph_domain::ids;
use cph_store::jobs::NewJob;
use cph_store::network::Keypair;
use std::collections::{HashMap, HashSet};

/// Largest page of NovaListKeypairs (also the default).
pub const MAX_PAGE: i64 = 1000;
/// Most servers in one UpdateKeypair request.
pub const MAX_SERVERS: usize = 100;
/// Longest public key accepted for import.
const MAX_PUBLIC_KEY: usize = 8192;
/// Size of generated RSA keys.
const RSA_BITS: usize = 2048;
/// Comment of generated public keys.
const GENERATED_COMMENT: &str = "Generated-by-cph";

/// The algorithm of key pairs NovaCreateKeypair generates (a setting: the API has no field).
/// Phones accept only RSA 2048 keys over ADB (Android's key format), so an Ed25519 key pair
/// opens the SSH gateway of its servers but not the phones' ADB endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeypairAlgorithm {
    #[default]
    Rsa,
    Ed25519,
}

impl std::str::FromStr for KeypairAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rsa" => Ok(KeypairAlgorithm::Rsa),
            "ed25519" => Ok(KeypairAlgorithm::Ed25519),
            other => Err(format!(
                "keypair_algorithm must be rsa or ed25519, got {other:?}"
            )),
        }
    }
}

impl KeypairAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeypairAlgorithm::Rsa => "rsa",
            KeypairAlgorithm::Ed25519 => "ed25519",
        }
    }
}

fn nova(status: u16, msg: impl Into<String>) -> ServiceError {
    ServiceError::raw(status, &status.to_string(), msg)
}

/// A key pair name as Nova accepts it here.
pub fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Colon-separated hex MD5 of an SSH public key blob.
pub fn md5_fingerprint(blob: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(blob)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads one SSH wire-format string (u32 length, bytes).
fn take_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    if buf.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let rest = &buf[4..];
    if rest.len() < n {
        return None;
    }
    let (s, tail) = rest.split_at(n);
    *buf = tail;
    Some(s)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// SSH `mpint` of a non-negative big-endian number.
fn put_mpint(out: &mut Vec<u8>, be: &[u8]) {
    let trimmed: &[u8] = {
        let first = be.iter().position(|b| *b != 0).unwrap_or(be.len());
        &be[first..]
    };
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = Vec::with_capacity(trimmed.len() + 1);
        v.push(0);
        v.extend_from_slice(trimmed);
        put_string(out, &v);
    } else {
        put_string(out, trimmed);
    }
}

/// Bits of a positive `mpint` (0 when negative or zero).
fn mpint_bits(m: &[u8]) -> usize {
    if m.first().is_some_and(|b| b & 0x80 != 0) {
        return 0;
    }
    match m.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (m.len() - i - 1) * 8 + (8 - m[i].leading_zeros() as usize),
    }
}

/// A parsed OpenSSH public key: its algorithm and wire blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: String,
    pub blob: Vec<u8>,
}

/// Parses and checks an OpenSSH public key line (`<algorithm> <base64> [comment]`).
pub fn parse_public_key(line: &str) -> std::result::Result<PublicKey, String> {
    let line = line.trim();
    if line.len() > MAX_PUBLIC_KEY {
        return Err(format!(
            "the public key is longer than {MAX_PUBLIC_KEY} bytes"
        ));
    }
    let mut parts = line.split_whitespace();
    let algorithm = parts.next().ok_or("the public key is empty")?;
    let b64 = parts
        .next()
        .ok_or("the public key has no base64 key data")?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the key data is not valid base64".to_string())?;
    let mut rest: &[u8] = &blob;
    let inner = take_string(&mut rest).ok_or("the key data is truncated")?;
    if inner != algorithm.as_bytes() {
        return Err(format!(
            "the key data is of type '{}', not '{algorithm}'",
            String::from_utf8_lossy(inner)
        ));
    }
    match algorithm {
        "ssh-rsa" => {
            let e = take_string(&mut rest).ok_or("the RSA key is truncated")?;
            let n = take_string(&mut rest).ok_or("the RSA key is truncated")?;
            if mpint_bits(e) < 2 {
                return Err("the RSA public exponent is invalid".into());
            }
            let bits = mpint_bits(n);
            if !(1024..=16384).contains(&bits) {
                return Err(format!(
                    "RSA keys must have 1024 to 16384 bits, this one has {bits}"
                ));
            }
        }
        "ssh-ed25519" => {
            let k = take_string(&mut rest).ok_or("the Ed25519 key is truncated")?;
            if k.len() != 32 {
                return Err("an Ed25519 key must be 32 bytes".into());
            }
        }
        "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
            let curve = take_string(&mut rest).ok_or("the ECDSA key is truncated")?;
            let want_curve = &algorithm["ecdsa-sha2-".len()..];
            if curve != want_curve.as_bytes() {
                return Err("the ECDSA curve does not match the key type".into());
            }
            let point = take_string(&mut rest).ok_or("the ECDSA key is truncated")?;
            let len = match want_curve {
                "nistp256" => 65,
                "nistp384" => 97,
                _ => 133,
            };
            if point.len() != len || point[0] != 4 {
                return Err("the ECDSA public point is invalid".into());
            }
        }
        other => {
            return Err(format!(
                "key type '{other}' is not supported (ssh-rsa, ssh-ed25519, ecdsa-sha2-nistp256/384/521)"
            ));
        }
    }
    if !rest.is_empty() {
        return Err("the key data has trailing bytes".into());
    }
    Ok(PublicKey {
        algorithm: algorithm.to_string(),
        blob,
    })
}

/// A new RSA key pair: (OpenSSH public key line, PKCS#1 PEM private key, key blob).
pub fn generate_rsa(comment: &str) -> std::result::Result<(String, String, Vec<u8>), String> {
    use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    let mut rng = rand::rngs::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, RSA_BITS).map_err(|e| e.to_string())?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?
        .to_string();
    let mut blob = Vec::with_capacity(300);
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, &key.e().to_bytes_be());
    put_mpint(&mut blob, &key.n().to_bytes_be());
    let line = format!(
        "ssh-rsa {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    Ok((line, pem, blob))
}

/// A new Ed25519 key pair: (OpenSSH public key line, OpenSSH private key, key blob).
pub fn generate_ed25519(comment: &str) -> std::result::Result<(String, String, Vec<u8>), String> {
    use ring::rand::SecureRandom;
    use ring::signature::KeyPair;
    let rng = ring::rand::SystemRandom::new();
    let mut seed = [0u8; 32];
    rng.fill(&mut seed)
        .map_err(|_| "no randomness for a key".to_string())?;
    let mut check = [0u8; 4];
    rng.fill(&mut check)
        .map_err(|_| "no randomness for a key".to_string())?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| format!("ed25519 key: {e}"))?;
    let public: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| "ed25519 public key of unexpected size".to_string())?;
    let pem = openssh_ed25519_private_key(&seed, &public, comment, u32::from_be_bytes(check));
    seed.fill(0);
    let blob = ed25519_blob(&public);
    let line = format!(
        "ssh-ed25519 {} {comment}",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    Ok((line, pem, blob))
}

/// The SSH wire blob of an Ed25519 public key.
fn ed25519_blob(public: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, public);
    blob
}

/// An unencrypted `openssh-key-v1` private key holding one Ed25519 key, in the PEM-like
/// armour OpenSSH writes (70 base64 characters a line).
fn openssh_ed25519_private_key(
    seed: &[u8; 32],
    public: &[u8; 32],
    comment: &str,
    checkint: u32,
) -> String {
    let mut private = Vec::with_capacity(160);
    private.extend_from_slice(&checkint.to_be_bytes());
    private.extend_from_slice(&checkint.to_be_bytes());
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, public);
    let mut secret = [0u8; 64];
    secret[..32].copy_from_slice(seed);
    secret[32..].copy_from_slice(public);
    put_string(&mut private, &secret);
    secret.fill(0);
    put_string(&mut private, comment.as_bytes());
    // Padding 1, 2, 3, … up to the cipher block size ("none": 8).
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut key = Vec::with_capacity(private.len() + 100);
    key.extend_from_slice(b"openssh-key-v1\0");
    put_string(&mut key, b"none");
    put_string(&mut key, b"none");
    put_string(&mut key, b"");
    key.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut key, &ed25519_blob(public));
    put_string(&mut key, &private);
    private.fill(0);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
    key.fill(0);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 70 + 80);
    pem.push_str("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(70) {
        // Base64 is ASCII.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    pem
}

/// A new key pair of `algorithm`: (OpenSSH public key line, private key, key blob).
pub fn generate(
    algorithm: KeypairAlgorithm,
    comment: &str,
) -> std::result::Result<(String, String, Vec<u8>), String> {
    match algorithm {
        KeypairAlgorithm::Rsa => generate_rsa(comment),
        KeypairAlgorithm::Ed25519 => generate_ed25519(comment),
    }
}

/// A stable numeric id of a key pair (Nova shows an integer id; the registry keys by name).
pub fn numeric_id(k: &Keypair) -> i64 {
    use md5::{Digest, Md5};
    let d = Md5::digest(format!("{}\n{}\n{}", k.project_id, k.name, k.created_at).as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    // 53 bits: exact in every JSON number implementation.
    (u64::from_be_bytes(b) >> 11) as i64 + 1
}

/// A key pair to create, as received.
#[derive(Debug, Clone, Default)]
pub struct NewKeypair {
    /// False when the body has no `keypair` object.
    pub present: bool,
    pub name: Option<String>,
    pub public_key: Option<String>,
    pub key_type: Option<String>,
    pub user_id: Option<String>,
}

/// A created key pair; `private_key` only when it was generated.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedKeypair {
    pub keypair: Keypair,
    pub private_key: Option<String>,
}

/// One entry of UpdateKeypair, as received.
#[derive(Debug, Clone, Default)]
pub struct ServerKeypairInput {
    pub server_id: Option<String>,
    pub keypair_name: Option<String>,
}

fn list_limit(limit: Option<&str>) -> Result<i64> {
    match limit {
        None => Ok(MAX_PAGE),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(v) if (1..=MAX_PAGE).contains(&v) => Ok(v),
            _ => Err(nova(
                400,
                format!("Invalid input for query parameters limit: '{s}' must be 1..={MAX_PAGE}."),
            )),
        },
    }
}

impl Service {
    /// NovaCreateKeypair: generates a key pair, or imports `public_key`.
    pub async fn create_keypair(
        &self,
        caller: &Caller,
        req: &NewKeypair,
    ) -> Result<CreatedKeypair> {
        if !req.present {
            return Err(nova(
                400,
                "Invalid input: the request has no keypair object.",
            ));
        }
        let name = req.name.clone().unwrap_or_default();
        if !name_ok(&name) {
            return Err(nova(
                400,
                "Invalid input for field/attribute name: 1-64 characters of letters, digits, '_' and '-'.",
            ));
        }
        match req.key_type.as_deref() {
            None | Some("ssh") => {}
            Some("x509") => {
                return Err(nova(400, "Key pairs of type x509 are not supported here."));
            }
            Some(t) => {
                return Err(nova(
                    400,
                    format!(
                        "Invalid input for field/attribute type: '{t}' is not one of 'ssh', 'x509'."
                    ),
                ));
            }
        }
        if let Some(u) = req.user_id.as_deref()
            && u != caller.user_id
        {
            return Err(nova(
                400,
                "Invalid input for field/attribute user_id: key pairs can only be created for the calling user.",
            ));
        }
        let (public_key, private_key, blob) = match req.public_key.as_deref() {
            Some(pk) => {
                let parsed = parse_public_key(pk)
                    .map_err(|e| nova(400, format!("Keypair data is invalid: {e}.")))?;
                (pk.trim().to_string(), None, parsed.blob)
            }
            None => {
                let algorithm = self.config().keypair_algorithm;
                let (line, pem, blob) =
                    tokio::task::spawn_blocking(move || generate(algorithm, GENERATED_COMMENT))
                        .await
                        .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?
                        .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?;
                (line, Some(pem), blob)
            }
        };
        let keypair = Keypair {
            project_id: caller.project_id.clone(),
            name: name.clone(),
            key_type: "ssh".into(),
            public_key,
            fingerprint: md5_fingerprint(&blob),
            user_id: caller.user_id.clone(),
            created_at: self.now_ms(),
        };
        let mut tx = self.store().write().await?;
        let conflict = || nova(409, format!("Key pair '{name}' already exists."));
        if cph_store::network::get_keypair(&mut tx, &caller.project_id, &name)
            .await?
            .is_some()
        {
            return Err(conflict());
        }
        match cph_store::network::insert_keypair(&mut tx, &keypair).await {
            Err(e) if e.is_unique_violation() => return Err(conflict()),
            r => r?,
        }
        if let Err(e) = tx.commit().await {
            let e = cph_store::StoreError::from(e);
            if e.is_unique_violation() {
                return Err(conflict());
            }
            return Err(e.into());
        }
        Ok(CreatedKeypair {
            keypair,
            private_key,
        })
    }

    /// NovaListKeypairs: by name, `limit` per page after the key pair named `marker`.
    pub async fn list_keypairs(
        &self,
        caller: &Caller,
        limit: Option<&str>,
        marker: Option<&str>,
    ) -> Result<Vec<Keypair>> {
        let limit = list_limit(limit)?;
        let mut c = self.store().read().await?;
        let marker = marker.filter(|m| !m.is_empty());
        if let Some(m) = marker
            && cph_store::network::get_keypair(&mut c, &caller.project_id, m)
                .await?
                .is_none()
        {
            return Err(nova(400, format!("Marker {m} could not be found.")));
        }
        Ok(cph_store::netops::keypairs_page(&mut c, &caller.project_id, marker, limit).await?)
    }

    /// NovaShowKeypair.
    pub async fn show_keypair(&self, caller: &Caller, name: &str) -> Result<Keypair> {
        let mut c = self.store().read().await?;
        cph_store::network::get_keypair(&mut c, &caller.project_id, name)
            .await?
            .ok_or_else(|| nova(404, format!("Keypair {name} not found.")))
    }

    /// NovaDeleteKeypair. Servers keep the name they were given; a later UpdateKeypair or
    /// purchase with that name fails until it exists again.
    pub async fn delete_keypair(&self, caller: &Caller, name: &str) -> Result<()> {
        let mut tx = self.store().write().await?;
        if !cph_store::network::delete_keypair(&mut tx, &caller.project_id, name).await? {
            return Err(nova(404, format!("Keypair {name} not found.")));
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// UpdateKeypair: one `server.keypair` job per server; the server shows the new key pair
    /// when its job has succeeded.
    pub async fn update_server_keypairs(
        &self,
        caller: &Caller,
        request_id: &str,
        servers: Option<Vec<ServerKeypairInput>>,
    ) -> Result<Vec<BatchItem>> {
        let items = servers
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps_msg("CPS.0094", "Parameter: servers is empty."))?;
        if items.len() > MAX_SERVERS {
            return Err(ServiceError::cps("CPS.0096"));
        }
        let mut wanted: Vec<(String, String)> = Vec::with_capacity(items.len());
        for it in &items {
            let keypair = it
                .keypair_name
                .clone()
                .filter(|k| !k.is_empty())
                .ok_or_else(|| ServiceError::cps("CPS.0068"))?;
            let server_id = it
                .server_id
                .clone()
                .filter(|s| crate::validate::is_valid_id(s, 32))
                .ok_or_else(|| {
                    ServiceError::cps_msg(
                        "CPS.0094",
                        format!(
                            "Parameter: server_id '{}' is invalid.",
                            it.server_id.as_deref().unwrap_or_default()
                        ),
                    )
                })?;
            wanted.push((server_id, keypair));
        }
        let names: Vec<&String> = {
            let mut seen = HashSet::new();
            wanted
                .iter()
                .map(|(_, k)| k)
                .filter(|k| seen.insert(*k))
                .collect()
        };
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        for k in names {
            if k.len() > 64
                || cph_store::network::get_keypair(&mut tx, &caller.project_id, k)
                    .await?
                    .is_none()
            {
                return Err(ServiceError::cps_msg(
                    "CPS.0067",
                    format!("Keypair could not found: {k}."),
                ));
            }
        }
        let ids: Vec<String> =
            crate::validate::dedup(&wanted.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>());
        let rows: HashMap<String, cph_store::ServerRow> =
            cph_store::servers::get_many(&mut tx, &caller.project_id, &ids)
                .await?
                .into_iter()
                .map(|s| (s.server_id.clone(), s))
                .collect();
        let mut out = Vec::with_capacity(wanted.len());
        let mut jobs = Vec::new();
        let mut seen = HashSet::new();
        for (server_id, keypair) in wanted {
            let Some(s) = rows.get(&server_id) else {
                out.push(BatchItem::failed(
                    &server_id,
                    &ServiceError::cps("CPS.0097"),
                ));
                continue;
            };
            if !seen.insert(server_id.clone()) {
                continue;
            }
            if let Err(e) = server_operable(s) {
                out.push(BatchItem::failed(&server_id, &e));
                continue;
            }
            let job_id = ids::hex_id();
            jobs.push(NewJob {
                job_id: job_id.clone(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: crate::jobs::kind::SERVER_KEYPAIR.into(),
                phone_id: None,
                server_id: Some(server_id.clone()),
                encode_server_id: None,
                lock_key: format!("server:{server_id}"),
                payload: serde_json::json!({ "keypair_name": keypair }).to_string(),
            });
            out.push(BatchItem::job(&server_id, &job_id));
        }
        if !jobs.is_empty() {
            cph_store::jobs::insert(&mut tx, &jobs, now).await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            self.wake_jobs();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";

    #[test]
    fn names() {
        assert!(name_ok("kp-1_A"));
        assert!(name_ok(&"k".repeat(64)));
        assert!(!name_ok(""));
        assert!(!name_ok(&"k".repeat(65)));
        assert!(!name_ok("a b"));
        assert!(!name_ok("a.b"));
        assert!(!name_ok("键"));
    }

    #[test]
    fn imports_ed25519_with_nova_fingerprint() {
        let k = parse_public_key(ED25519).unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        let fp = md5_fingerprint(&k.blob);
        assert_eq!(fp.len(), 47);
        assert_eq!(fp.matches(':').count(), 15);
        assert!(fp.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()));
    }

    #[test]
    fn rejects_bad_public_keys() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 !!!",
            // Type line says rsa, blob says ed25519.
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            // Truncated blob.
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6",
            "ssh-dss AAAAB3NzaC1kc3M=",
        ] {
            assert!(parse_public_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_rsa_round_trips() {
        let (line, pem, blob) = generate_rsa("c").unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        assert!(line.ends_with(" c"));
        let parsed = parse_public_key(&line).unwrap();
        assert_eq!(parsed.algorithm, "ssh-rsa");
        assert_eq!(parsed.blob, blob);
        // A 2048-bit modulus.
        let mut rest: &[u8] = &blob;
        take_string(&mut rest).unwrap();
        take_string(&mut rest).unwrap();
        assert_eq!(mpint_bits(take_string(&mut rest).unwrap()), 2048);
    }

    /// Reads an unencrypted `openssh-key-v1` Ed25519 private key: (public blob, seed, public
    /// key, comment), checking every structural rule OpenSSH checks.
    fn decode_openssh_ed25519(pem: &str) -> (Vec<u8>, [u8; 32], [u8; 32], String) {
        let body = pem
            .strip_prefix("-----BEGIN OPENSSH PRIVATE KEY-----\n")
            .and_then(|r| r.strip_suffix("-----END OPENSSH PRIVATE KEY-----\n"))
            .expect("armour");
        let lines: Vec<&str> = body.lines().collect();
        assert!(
            lines.iter().rev().skip(1).all(|l| l.len() == 70),
            "{lines:?}"
        );
        assert!(!lines.last().unwrap().is_empty() && lines.last().unwrap().len() <= 70);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(lines.concat())
            .unwrap();
        let mut r: &[u8] = raw
            .strip_prefix(b"openssh-key-v1\0".as_slice())
            .expect("magic");
        assert_eq!(take_string(&mut r).unwrap(), b"none");
        assert_eq!(take_string(&mut r).unwrap(), b"none");
        assert_eq!(take_string(&mut r).unwrap(), b"");
        assert_eq!(&r[..4], &1u32.to_be_bytes());
        r = &r[4..];
        let blob = take_string(&mut r).unwrap().to_vec();
        let mut private = take_string(&mut r).unwrap();
        assert!(r.is_empty(), "trailing bytes after the private section");
        assert_eq!(private.len() % 8, 0);
        assert_eq!(private[..4], private[4..8], "check integers differ");
        private = &private[8..];
        assert_eq!(take_string(&mut private).unwrap(), b"ssh-ed25519");
        let public: [u8; 32] = take_string(&mut private).unwrap().try_into().unwrap();
        let secret = take_string(&mut private).unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(&secret[32..], &public);
        let comment = String::from_utf8(take_string(&mut private).unwrap().to_vec()).unwrap();
        assert!(private.len() < 8);
        for (i, b) in private.iter().enumerate() {
            assert_eq!(*b as usize, i + 1, "padding");
        }
        (blob, secret[..32].try_into().unwrap(), public, comment)
    }

    #[test]
    fn generated_ed25519_round_trips() {
        let (line, pem, blob) = generate(KeypairAlgorithm::Ed25519, "Generated-by-cph").unwrap();
        assert!(line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert!(line.ends_with(" Generated-by-cph"));
        let parsed = parse_public_key(&line).unwrap();
        assert_eq!(parsed.algorithm, "ssh-ed25519");
        assert_eq!(parsed.blob, blob);
        assert_eq!(md5_fingerprint(&blob).len(), 47);

        let (pblob, seed, public, comment) = decode_openssh_ed25519(&pem);
        assert_eq!(pblob, blob);
        assert_eq!(comment, "Generated-by-cph");
        // The seed really is the private half of the public key: it signs what the public key
        // verifies.
        let pair = ring::signature::Ed25519KeyPair::from_seed_and_public_key(&seed, &public)
            .expect("seed and public key belong together");
        let sig = pair.sign(b"cph");
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &blob[19..])
            .verify(b"cph", sig.as_ref())
            .unwrap();
        // Every key is new.
        let (line2, pem2, _) = generate_ed25519("c").unwrap();
        assert_ne!(line2.split(' ').nth(1), line.split(' ').nth(1));
        assert_ne!(pem2, pem);
    }

    #[test]
    fn openssh_private_key_matches_a_known_encoding() {
        // Fixed inputs give OpenSSH's exact layout: 4+4 check bytes, type, public, secret,
        // comment, padding to 8.
        let seed = [7u8; 32];
        let public = [9u8; 32];
        let pem = openssh_ed25519_private_key(&seed, &public, "ab", 0x01020304);
        let (blob, s, p, c) = decode_openssh_ed25519(&pem);
        assert_eq!((s, p, c.as_str()), (seed, public, "ab"));
        assert_eq!(blob, ed25519_blob(&public));
        // 8 + 15 + 36 + 68 + 6 = 133 bytes, padded with 1, 2, 3.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        assert!(raw.ends_with(&[b'a', b'b', 1, 2, 3]));
    }

    #[test]
    fn ssh_keygen_reads_generated_ed25519_keys() {
        // Checked against OpenSSH itself where it is installed (the SDK suite always does).
        let Ok(out) = std::process::Command::new("ssh-keygen").arg("-?").output() else {
            return;
        };
        drop(out);
        let (line, pem, _) = generate_ed25519("Generated-by-cph").unwrap();
        let dir = std::env::temp_dir().join(format!("cph-kp-{}", cph_domain::ids::hex_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id_ed25519");
        std::fs::write(&path, &pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .args(["-y", "-P", "", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), line);
    }

    #[test]
    fn algorithm_setting() {
        assert_eq!("rsa".parse(), Ok(KeypairAlgorithm::Rsa));
        assert_eq!(" Ed25519 ".parse(), Ok(KeypairAlgorithm::Ed25519));
        assert!("ecdsa".parse::<KeypairAlgorithm>().is_err());
        assert_eq!(KeypairAlgorithm::default(), KeypairAlgorithm::Rsa);
        assert_eq!(KeypairAlgorithm::Ed25519.as_str(), "ed25519");
    }

    #[test]
    fn mpints() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0x00, 0x80, 0x01]);
        assert_eq!(v, vec![0, 0, 0, 3, 0, 0x80, 0x01]);
        let mut v = Vec::new();
        put_mpint(&mut v, &[0x01, 0x00, 0x01]);
        assert_eq!(v, vec![0, 0, 0, 3, 1, 0, 1]);
        assert_eq!(mpint_bits(&[0x00, 0x80]), 8);
        assert_eq!(mpint_bits(&[0x01, 0x00, 0x01]), 17);
        assert_eq!(mpint_bits(&[0x80]), 0);
    }

    #[test]
    fn numeric_ids_are_stable_and_safe() {
        let k = Keypair {
            project_id: "p".into(),
            name: "n".into(),
            key_type: "ssh".into(),
            public_key: String::new(),
            fingerprint: String::new(),
            user_id: String::new(),
            created_at: 1,
        };
        let a = numeric_id(&k);
        assert_eq!(a, numeric_id(&k));
        assert!(a > 0 && a < (1i64 << 53) + 1);
    }
}
