//! The gateway's persistent host key.
//!
//! The key lives in an OpenSSH private key file (`-----BEGIN OPENSSH PRIVATE KEY-----`), the
//! format `ssh-keygen` writes, so an operator can inspect or replace it with stock tools. A
//! missing file is created with a new ed25519 key, readable by its owner only; creation is
//! atomic (a complete file appears under the final name or none does), and when two processes
//! race, both end up with the key of the first.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::{HashAlg, PrivateKey, PublicKey};

use crate::SshError;

/// Largest host key file read; OpenSSH private keys are a few KiB at most.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A host key: ed25519 when generated here; an existing file may also hold an ECDSA key or an
/// RSA key of at least 2048 bits.
#[derive(Clone)]
pub struct HostKey {
    key: PrivateKey,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("fingerprint", &self.fingerprint_sha256())
            .finish()
    }
}

impl HostKey {
    /// Loads the OpenSSH private key file at `path`, or, if there is none, generates an
    /// ed25519 key and writes it there (mode 0600, parent directories created).
    ///
    /// Refuses files that are encrypted, not OpenSSH private keys, of an unsupported
    /// algorithm, or readable by group or others.
    pub fn load_or_generate(path: &Path) -> Result<HostKey, SshError> {
        match Self::load(path) {
            Err(SshError::HostKeyIo { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
        let key = Self::generate();
        match write_new(path, &key) {
            Ok(()) => Ok(key),
            // Another process created the file first: use its key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(source) => Err(io_err(path, source)),
        }
    }

    /// A new random ed25519 key, kept in memory only.
    pub fn generate() -> HostKey {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let pair = Ed25519Keypair::from_seed(&seed);
        seed.fill(0);
        HostKey {
            key: PrivateKey::from(pair),
        }
    }

    fn load(path: &Path) -> Result<HostKey, SshError> {
        let file = fs::File::open(path).map_err(|e| io_err(path, e))?;
        let meta = file.metadata().map_err(|e| io_err(path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format_err(
                    path,
                    format!("readable by group or others (mode {mode:04o}); chmod 600 it"),
                ));
            }
        }
        if meta.len() > MAX_KEY_FILE {
            return Err(format_err(
                path,
                "larger than any OpenSSH private key".into(),
            ));
        }
        let mut text = Vec::new();
        file.take(MAX_KEY_FILE)
            .read_to_end(&mut text)
            .map_err(|e| io_err(path, e))?;
        let key = PrivateKey::from_openssh(&text)
            .map_err(|e| format_err(path, format!("not an OpenSSH private key: {e}")))?;
        if key.is_encrypted() {
            return Err(format_err(path, "encrypted with a passphrase".into()));
        }
        match key.key_data() {
            KeypairData::Ed25519(_) | KeypairData::Ecdsa(_) => {}
            KeypairData::Rsa(rsa) if rsa.public().key_size() >= 2048 => {}
            _ => {
                return Err(format_err(
                    path,
                    format!("unsupported host key algorithm {}", key.algorithm()),
                ));
            }
        }
        Ok(HostKey { key })
    }

    /// The public key as one `authorized_keys`/`known_hosts` field pair, e.g.
    /// `ssh-ed25519 AAAA…` (no comment).
    pub fn public_openssh(&self) -> String {
        let public = PublicKey::new(self.key.public_key().key_data().clone(), "");
        // Encoding a key that was decoded or generated cannot fail; fall back to the
        // fingerprint rather than panic if it ever does.
        public
            .to_openssh()
            .unwrap_or_else(|_| self.fingerprint_sha256())
    }

    /// The fingerprint as `ssh-keygen -l` prints it, e.g. `SHA256:…`.
    pub fn fingerprint_sha256(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    pub(crate) fn private_key(&self) -> &PrivateKey {
        &self.key
    }
}

/// Writes `key` to `path` without ever exposing a partial file or replacing an existing one.
fn write_new(path: &Path, key: &HostKey) -> std::io::Result<()> {
    let pem = key
        .key
        .to_openssh(LineEnding::LF)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(name);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(pem.as_bytes())?;
        file.sync_all()?;
        drop(file);
        // A hard link fails if the final name exists, so a racing writer never loses its key.
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    result
}

fn io_err(path: &Path, source: std::io::Error) -> SshError {
    SshError::HostKeyIo {
        path: path.to_path_buf(),
        source,
    }
}

fn format_err(path: &Path, reason: String) -> SshError {
    SshError::HostKeyFormat {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/host_ed25519");
        let a = HostKey::load_or_generate(&path).unwrap();
        let b = HostKey::load_or_generate(&path).unwrap();
        assert_eq!(a.fingerprint_sha256(), b.fingerprint_sha256());
        assert!(a.fingerprint_sha256().starts_with("SHA256:"));
        assert!(a.public_openssh().starts_with("ssh-ed25519 AAAA"));
        assert_eq!(a.public_openssh().split(' ').count(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn distinct_generated_keys_differ() {
        assert_ne!(
            HostKey::generate().fingerprint_sha256(),
            HostKey::generate().fingerprint_sha256()
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_group_readable_and_garbage_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        HostKey::load_or_generate(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            HostKey::load_or_generate(&path),
            Err(SshError::HostKeyFormat { .. })
        ));

        let junk = dir.path().join("junk");
        fs::write(&junk, b"not a key").unwrap();
        fs::set_permissions(&junk, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            HostKey::load_or_generate(&junk),
            Err(SshError::HostKeyFormat { .. })
        ));
        // The refused file is left as it was.
        assert_eq!(fs::read(&junk).unwrap(), b"not a key");
    }
}
