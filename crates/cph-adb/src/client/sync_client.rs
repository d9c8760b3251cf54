//! File transfer over the `sync:` service: stat, list, push and pull, streamed in DATA chunks
//! of at most 64 KiB so that no file is held in memory.

use super::{AdbClient, AdbStream, ClientError};
use crate::FileStat;
use crate::sync::{
    self as wire, DataHeader, DecodeResult, DentV1, DentV2, ListItem, RecvV2, SendV2, StatV1,
    StatV2, SyncError,
};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most entries one listing may return.
const MAX_ENTRIES: usize = 100_000;
/// `ENOENT` and `ENOTDIR`: a `stat` that fails with these means "does not exist".
const ENOENT: u32 = 2;
const ENOTDIR: u32 = 20;
/// File type bits of a mode, and the regular-file type.
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    /// The entry's `lstat`. Without `ls_v2` only `mode`, `size` and `mtime` are known.
    pub stat: FileStat,
}

/// One conversation on a `sync:` stream: buffered requests and a byte-stream reader (sync
/// messages do not follow WRTE boundaries).
struct SyncSession {
    stream: AdbStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    flush_at: usize,
}

fn sync_error(e: SyncError) -> ClientError {
    match e {
        SyncError::Remote(msg) => ClientError::Sync(msg),
        SyncError::PathTooLong { len } => {
            ClientError::InvalidArgument(format!("remote path of {len} bytes is too long"))
        }
        SyncError::Io(e) => ClientError::Io(e),
        other => ClientError::Protocol(format!("sync: {other}")),
    }
}

impl SyncSession {
    async fn open(client: &AdbClient) -> Result<SyncSession, ClientError> {
        let stream = client.open("sync:").await?;
        Ok(SyncSession {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            flush_at: client
                .max_payload()
                .max(wire::SYNC_DATA_MAX + wire::HEADER_LEN),
        })
    }

    fn put_request(&mut self, id: u32, arg: &[u8]) -> Result<(), ClientError> {
        self.wbuf
            .put_slice(&wire::encode_request(id, arg).map_err(sync_error)?);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.wbuf.is_empty() {
            let out = self.wbuf.split().freeze();
            self.stream.write(&out).await?;
        }
        Ok(())
    }

    /// The next message, decoded by `decode` from the bytes received so far plus as many
    /// more chunks as it needs. A FAIL becomes [`ClientError::Sync`].
    async fn next<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> DecodeResult<T>,
    ) -> Result<T, ClientError> {
        loop {
            if let Some((value, used)) = decode(&self.rbuf).map_err(sync_error)? {
                self.rbuf.advance(used);
                return Ok(value);
            }
            match self.stream.read().await? {
                Some(chunk) => self.rbuf.extend_from_slice(&chunk),
                None => return Err(sync_error(SyncError::Truncated)),
            }
        }
    }

    /// Exactly `n` bytes of payload (after a DATA header).
    async fn take(&mut self, n: usize) -> Result<Bytes, ClientError> {
        while self.rbuf.len() < n {
            match self.stream.read().await? {
                Some(chunk) => self.rbuf.extend_from_slice(&chunk),
                None => return Err(sync_error(SyncError::Truncated)),
            }
        }
        Ok(self.rbuf.split_to(n).freeze())
    }

    /// Ends the conversation politely (QUIT) and closes the stream.
    async fn quit(mut self) {
        self.wbuf.put_slice(&wire::encode_quit());
        let _ = self.flush().await;
        self.stream.close().await;
    }
}
fn check_path(path: &str) -> Result<&[u8], ClientError> {
    if path.is_empty() || path.len() > wire::MAX_PATH_LEN || path.contains('\0') {
        return Err(ClientError::InvalidArgument(format!(
            "remote path must be 1..={} bytes without NUL: {path:?}",
            wire::MAX_PATH_LEN
        )));
    }
    Ok(path.as_bytes())
}

fn stat_from_v1(v1: &StatV1) -> FileStat {
    FileStat {
        mode: v1.mode,
        size: u64::from(v1.size),
        mtime: i64::from(v1.mtime),
        ..FileStat::default()
    }
}

impl AdbClient {
    /// The metadata of `path`, following symbolic links, or `None` if it does not exist.
    /// Uses `STA2` when the device has `stat_v2`; otherwise the old `STAT`, which does not
    /// follow links and only knows mode, size and mtime.
    pub async fn stat(&self, path: &str) -> Result<Option<FileStat>, ClientError> {
        self.stat_request(path, true).await
    }

    /// Like [`AdbClient::stat`] but does not follow a final symbolic link (`LST2`/`STAT`).
    pub async fn lstat(&self, path: &str) -> Result<Option<FileStat>, ClientError> {
        self.stat_request(path, false).await
    }

    async fn stat_request(
        &self,
        path: &str,
        follow: bool,
    ) -> Result<Option<FileStat>, ClientError> {
        let p = check_path(path)?;
        let v2 = self.has_feature("stat_v2");
        let mut s = SyncSession::open(self).await?;
        let result = async {
            if v2 {
                let id = if follow {
                    wire::ID_STAT_V2
                } else {
                    wire::ID_LSTAT_V2
                };
                s.put_request(id, p)?;
                s.flush().await?;
                let reply = s.next(StatV2::decode).await?;
                match reply.error {
                    0 => Ok(Some(reply.stat)),
                    ENOENT | ENOTDIR => Ok(None),
                    errno => Err(ClientError::Sync(format!(
                        "stat {path}: {}",
                        std::io::Error::from_raw_os_error(errno as i32)
                    ))),
                }
            } else {
                s.put_request(wire::ID_LSTAT_V1, p)?;
                s.flush().await?;
                let reply = s.next(StatV1::decode).await?;
                Ok((reply.mode != 0).then(|| stat_from_v1(&reply)))
            }
        }
        .await;
        s.quit().await;
        result
    }

    /// The entries of directory `path` with their `lstat` (`.` and `..` left out). Uses
    /// `LIS2` when the device has `ls_v2`, else `LIST`. A path that is not a readable
    /// directory gives an empty list (the protocol does not tell the difference).
    /// Entries whose `lstat` failed on the device are left out.
    pub async fn list(&self, path: &str) -> Result<Vec<DirEntry>, ClientError> {
        let p = check_path(path)?;
        let v2 = self.has_feature("ls_v2");
        let mut s = SyncSession::open(self).await?;
        let result = async {
            s.put_request(
                if v2 {
                    wire::ID_LIST_V2
                } else {
                    wire::ID_LIST_V1
                },
                p,
            )?;
            s.flush().await?;
            let mut entries = Vec::new();
            loop {
                let entry = if v2 {
                    match s.next(DentV2::decode).await? {
                        ListItem::Done => return Ok(entries),
                        ListItem::Entry(d) if d.error != 0 => continue,
                        ListItem::Entry(d) => DirEntry {
                            name: d.name,
                            stat: d.stat,
                        },
                    }
                } else {
                    match s.next(DentV1::decode).await? {
                        ListItem::Done => return Ok(entries),
                        ListItem::Entry(d) => DirEntry {
                            stat: FileStat {
                                mode: d.mode,
                                size: u64::from(d.size),
                                mtime: i64::from(d.mtime),
                                ..FileStat::default()
                            },
                            name: d.name,
                        },
                    }
                };
                if entry.name == "." || entry.name == ".." {
                    continue;
                }
                if entries.len() >= MAX_ENTRIES {
                    return Err(ClientError::OutputTooLarge(MAX_ENTRIES));
                }
                entries.push(entry);
            }
        }
        .await;
        s.quit().await;
        result
    }

    /// Writes `reader`'s bytes to `remote_path` on the device with `mode` (type and permission
    /// bits, e.g. `0o100644`; bare permission bits get the regular-file type) and `mtime`
    /// (seconds since the epoch). Missing parent directories
    /// are created by the device. Streams in DATA chunks of at most 64 KiB (`SND2` when the
    /// device has `sendrecv_v2`, else `SEND`). Returns the number of bytes sent.
    pub async fn push<R>(
        &self,
        mut reader: R,
        remote_path: &str,
        mode: u32,
        mtime: u32,
    ) -> Result<u64, ClientError>
    where
        R: AsyncRead + Unpin,
    {
        let p = check_path(remote_path)?;
        let mode = if mode & S_IFMT == 0 {
            mode | S_IFREG
        } else {
            mode
        };
        self.make_parent_dirs(remote_path).await;
        let v2 = self.has_feature("sendrecv_v2");
        let mut s = SyncSession::open(self).await?;
        let result = async {
            if v2 {
                s.put_request(wire::ID_SEND_V2, p)?;
                s.wbuf.put_slice(&SendV2 { mode, flags: 0 }.encode());
            } else {
                let spec = wire::send_v1_spec(remote_path, mode);
                s.put_request(wire::ID_SEND_V1, spec.as_bytes())?;
            }
            let mut total = 0u64;
            let mut buf = vec![0u8; wire::SYNC_DATA_MAX];
            let sent = async {
                loop {
                    let n = read_full(&mut reader, &mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    s.wbuf.put_slice(&wire::encode_data_header(n as u32));
                    s.wbuf.put_slice(&buf[..n]);
                    total += n as u64;
                    if s.wbuf.len() >= s.flush_at {
                        s.flush().await?;
                    }
                }
                s.wbuf.put_slice(&wire::encode_done(mtime));
                s.flush().await
            }
            .await;
            match sent {
                Ok(()) => {}
                // The device may have failed the transfer and closed the stream: its FAIL
                // message, if it sent one, explains why.
                Err(ClientError::Closed) if s.stream.is_closed_by_device() => {}
                Err(e) => return Err(e),
            }
            s.next(wire::decode_status).await?;
            Ok(total)
        }
        .await;
        s.quit().await;
        result
    }

    /// Devices without `fixed_push_mkdir` do not create missing parent directories on SEND;
    /// like stock adb, create them with a shell command first (best effort: the push reports
    /// any real problem).
    async fn make_parent_dirs(&self, remote_path: &str) {
        if self.has_feature("fixed_push_mkdir") || !self.has_feature("shell_v2") {
            return;
        }
        let Some((parent, _)) = remote_path.rsplit_once('/') else {
            return;
        };
        if parent.is_empty() {
            return;
        }
        let command = format!("mkdir -p {}", super::quote(parent));
        if let Err(e) = self.shell(&command).await {
            tracing::debug!(error = %e, parent, "could not create the parent directory");
        }
    }

    /// Copies `remote_path` from the device into `writer`, streaming (`RCV2` when the device
    /// has `sendrecv_v2`, else `RECV`). Returns the number of bytes received.
    pub async fn pull<W>(&self, remote_path: &str, writer: &mut W) -> Result<u64, ClientError>
    where
        W: AsyncWrite + Unpin,
    {
        let p = check_path(remote_path)?;
        let v2 = self.has_feature("sendrecv_v2");
        let mut s = SyncSession::open(self).await?;
        let result = async {
            if v2 {
                s.put_request(wire::ID_RECV_V2, p)?;
                s.wbuf.put_slice(&RecvV2 { flags: 0 }.encode());
            } else {
                s.put_request(wire::ID_RECV_V1, p)?;
            }
            s.flush().await?;
            let mut total = 0u64;
            loop {
                match s.next(wire::decode_data_header).await? {
                    DataHeader::Data(len) => {
                        let data = s.take(len as usize).await?;
                        writer.write_all(&data).await?;
                        total += u64::from(len);
                    }
                    DataHeader::Done(_) => {
                        writer.flush().await?;
                        return Ok(total);
                    }
                }
            }
        }
        .await;
        s.quit().await;
        result
    }

    /// Pushes local file `local` to `remote_path`, keeping its permission bits and mtime.
    pub async fn push_file(
        &self,
        local: impl AsRef<Path>,
        remote_path: &str,
    ) -> Result<u64, ClientError> {
        let file = tokio::fs::File::open(local.as_ref()).await?;
        let meta = file.metadata().await?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        self.push(file, remote_path, S_IFREG | local_permissions(&meta), mtime)
            .await
    }

    /// Pulls `remote_path` into local file `local` (created or truncated). On failure the
    /// partial local file is removed.
    pub async fn pull_file(
        &self,
        remote_path: &str,
        local: impl AsRef<Path>,
    ) -> Result<u64, ClientError> {
        let local = local.as_ref();
        let mut file = tokio::fs::File::create(local).await?;
        let result = async {
            let n = self.pull(remote_path, &mut file).await?;
            file.sync_all().await?;
            Ok(n)
        }
        .await;
        if result.is_err() {
            drop(file);
            let _ = tokio::fs::remove_file(local).await;
        }
        result
    }
}

#[cfg(unix)]
fn local_permissions(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn local_permissions(meta: &std::fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// Fills `buf` as far as the reader allows (fewer bytes only at end of input).
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
