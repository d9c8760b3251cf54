//! Files of the benchmarks: pseudo-random content and its hash, temporary directories, free
//! space, removal of what may already be gone, and flushing the disk before a measurement.

use crate::units::MIB;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// xorshift64*: fast pseudo-random bytes, incompressible for practical purposes.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with the next outputs, little-endian (the last one cut to fit).
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A seed that differs from run to run (the clock's nanoseconds).
pub fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
}

/// Writes `bytes` pseudo-random bytes ([`XorShift`] from `seed`) and returns their SHA-256.
pub fn write_random(path: &Path, bytes: u64, seed: u64) -> anyhow::Result<[u8; 32]> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(MIB as usize, f);
    let mut rng = XorShift::new(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    out.flush()?;
    Ok(hasher.finalize().into())
}

/// The SHA-256 of a file's content.
pub fn sha256_of(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Writes `bytes` to a new file readable by its owner only (fails if the file exists).
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Removes a file; one that is not there is not an error.
pub fn remove_file_if_present(p: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}

/// Removes a directory tree; one that is not there is not an error.
pub fn remove_dir_if_present(p: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}

/// A new directory `cph-bench-<what>-…` in `base`, removed when dropped.
pub fn temp_dir(base: &Path, what: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("cph-bench-{what}-"))
        .tempdir_in(base)
        .with_context(|| format!("creating a temporary directory in {}", base.display()))
}

/// Bytes available to this user on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("{} holds a NUL byte", dir.display()))?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statvfs {}", dir.display()));
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// `sync(1)` within `timeout`: flushes dirty pages so they are not written back during the
/// next measurement.
pub async fn sync_disk(timeout: Duration) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new("sync");
    crate::tools::run_tool(&mut cmd, "sync", timeout)
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_xorshift64_star() {
        // The first outputs of xorshift64* from state 1.
        let mut r = XorShift::new(0);
        assert_eq!(r.next_u64(), 0x47E4_CE4B_896C_DD1D);
        assert_eq!(r.next_u64(), 0xABCF_A6A8_E079_651D);
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        let mut buf = [0u8; 13];
        a.fill(&mut buf);
        assert_eq!(buf[..8], b.next_u64().to_le_bytes());
        assert_eq!(buf[8..], b.next_u64().to_le_bytes()[..5]);
        assert_ne!(XorShift::new(8).next_u64(), XorShift::new(10).next_u64());
    }

    #[test]
    fn random_file_hash_matches_a_reread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.bin");
        let h = write_random(&p, MIB + 13, 42).unwrap();
        let all = std::fs::read(&p).unwrap();
        assert_eq!(all.len() as u64, MIB + 13);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&all)), h);
        assert_eq!(sha256_of(&p).unwrap(), h);
        // The content is the generator's stream.
        let mut want = vec![0u8; 64];
        XorShift::new(42).fill(&mut want);
        assert_eq!(all[..64], want[..]);
        // Another seed, other bytes.
        let q = dir.path().join("q.bin");
        assert_ne!(write_random(&q, MIB + 13, 44).unwrap(), h);
    }

    #[test]
    fn removing_what_is_gone_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        remove_file_if_present(&f).unwrap();
        assert!(!f.exists());
        remove_file_if_present(&f).unwrap();
        let d = dir.path().join("d/e");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("g"), b"y").unwrap();
        remove_dir_if_present(&dir.path().join("d")).unwrap();
        assert!(!d.exists());
        remove_dir_if_present(&dir.path().join("d")).unwrap();
        // A directory is not a file.
        std::fs::create_dir(&f).unwrap();
        assert!(remove_file_if_present(&f).is_err());
    }

    #[test]
    fn private_files_are_new_and_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_private(&p, b"secret").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_private(&p, b"again").is_err());
    }

    #[test]
    fn temp_dirs_are_named_and_free_space_is_read() {
        let base = tempfile::tempdir().unwrap();
        let t = temp_dir(base.path(), "unit").unwrap();
        let name = t.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("cph-bench-unit-"), "{name}");
        assert_eq!(t.path().parent(), Some(base.path()));
        assert!(free_bytes(base.path()).unwrap() > 0);
        assert!(free_bytes(&base.path().join("missing")).is_err());
    }
}
