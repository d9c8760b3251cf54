//! A virtual phone served over ADB on 127.0.0.1, and a tar writer that can also write the
//! hostile entries no well-behaved builder produces.

use astral_tar::{EntryType, Header};
use cph_adb::client::{AdbClient, ClientConfig, quote};
use cph_adb::device::{Endpoint, EndpointConfig};
use cph_adb::{AdbPrivateKey, DeviceIdentity, FileStat};
use cph_phone::PhoneCore;
use cph_phone::phone::VirtualPhone;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// One key per test process (generating RSA keys is slow in debug builds).
fn key() -> &'static AdbPrivateKey {
    static K: OnceLock<AdbPrivateKey> = OnceLock::new();
    K.get_or_init(|| AdbPrivateKey::generate().unwrap())
}

/// A running virtual phone and a client connected to it.
pub struct Phone {
    pub client: AdbClient,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Phone {
    pub async fn start() -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let core = PhoneCore::scratch(dir.path(), BTreeMap::new(), vec![]).unwrap();
        let identity = DeviceIdentity {
            product_name: "cph_test".into(),
            model: "Test Phone".into(),
            device: "cph".into(),
        };
        let device = Arc::new(VirtualPhone::new(
            Arc::new(core),
            identity,
            vec![key().public_key()],
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let endpoint = Endpoint::new(device, EndpointConfig::default());
        tokio::spawn(endpoint.serve(listener, cancel.clone()));
        let client = AdbClient::connect(addr, key(), ClientConfig::default())
            .await
            .unwrap();
        Phone {
            client,
            cancel,
            _dir: dir,
        }
    }

    /// Runs a shell command that must succeed; returns its stdout.
    pub async fn sh(&self, cmd: &str) -> String {
        let out = self.client.shell(cmd).await.unwrap();
        assert_eq!(
            out.exit_code,
            Some(0),
            "{cmd}: {} {}",
            out.stdout_text(),
            out.stderr_text()
        );
        out.stdout_text()
    }

    pub async fn lstat(&self, path: &str) -> Option<FileStat> {
        self.client.lstat(path).await.unwrap()
    }

    /// The phone's sha256 of `path`.
    pub async fn sha256(&self, path: &str) -> String {
        let out = self.sh(&format!("sha256sum {}", quote(path))).await;
        out.split_whitespace().next().unwrap().to_string()
    }
}

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes that do not compress or repeat in short cycles.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tar written header by header; names go into the header byte for byte, unchecked.
#[derive(Default)]
pub struct Tar(pub Vec<u8>);

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// One entry: a GNU header with `name` and `link` copied raw, then `data` padded. The
    /// declared size is `size` (normally `data.len()`). Every header field is a parameter on
    /// purpose: hostile archives set each of them.
    #[allow(clippy::too_many_arguments)]
    pub fn raw(
        &mut self,
        kind: EntryType,
        name: &[u8],
        link: &[u8],
        mode: u32,
        mtime: u64,
        size: u64,
        data: &[u8],
    ) -> &mut Tar {
        let mut h = Header::new_gnu();
        let old = h.as_old_mut();
        old.name.fill(0);
        old.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        old.linkname.fill(0);
        old.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_size(size);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn file(&mut self, name: &str, mode: u32, mtime: u64, data: &[u8]) -> &mut Tar {
        self.raw(
            EntryType::Regular,
            name.as_bytes(),
            b"",
            mode,
            mtime,
            data.len() as u64,
            data,
        )
    }

    pub fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Tar {
        self.raw(
            EntryType::Directory,
            name.as_bytes(),
            b"",
            mode,
            mtime,
            0,
            b"",
        )
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            0o777,
            1_600_000_000,
            0,
            b"",
        )
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            0o644,
            1_600_000_000,
            0,
            b"",
        )
    }

    /// A GNU long-name record for the next entry.
    pub fn long_name(&mut self, name: &[u8]) -> &mut Tar {
        let mut data = name.to_vec();
        data.push(0);
        self.raw(
            EntryType::GNULongName,
            b"././@LongLink",
            b"",
            0o644,
            0,
            data.len() as u64,
            &data,
        )
    }

    /// A PAX extended header with the given records for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        let mut data = Vec::new();
        for (k, v) in records {
            let body = k.len() + v.len() + 3; // space, '=', newline
            let mut len = body + body.to_string().len();
            if len.to_string().len() != body.to_string().len() {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.raw(
            EntryType::XHeader,
            b"PaxHeaders/x",
            b"",
            0o644,
            0,
            data.len() as u64,
            &data,
        )
    }

    /// The archive with its end marker.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.0.clone();
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// The entry names and types of a tar, in order.
pub async fn list_tar(bytes: &[u8]) -> Vec<(String, EntryType, Vec<u8>)> {
    use futures::StreamExt;
    use tokio::io::AsyncReadExt;
    let mut archive = astral_tar::Archive::new(bytes);
    let mut entries = archive.entries().unwrap();
    let mut out = Vec::new();
    while let Some(e) = entries.next().await {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().unwrap().into_owned()).unwrap();
        let kind = e.header().entry_type();
        let mut data = Vec::new();
        e.read_to_end(&mut data).await.unwrap();
        out.push((name, kind, data));
    }
    out
}
