//! The file sync sub-protocol (`sync:` service): message ids, wire structs with encoders and
//! decoders for both sides, and the device's sync server.
//!
//! After `OPEN("sync:")` the stream is a byte stream of little-endian messages whose boundaries
//! are unrelated to WRTE packets. A request is `{u32 id; u32 path_len}` + path (≤ 1024 bytes);
//! replies depend on the request (see each struct). Every decoder here takes the bytes received
//! so far and returns `Ok(None)` while a message is incomplete, `Ok(Some((message, consumed)))`
//! once it is complete; a `FAIL` reply where another message was expected decodes to
//! [`SyncError::Remote`] with the peer's message.

use crate::{FileStat, SyncFileWriter, SyncFs};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::sync::mpsc;

const fn id(b: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*b)
}

/// `lstat`, reply [`StatV1`].
pub const ID_LSTAT_V1: u32 = id(b"STAT");
/// `stat` (follows links), reply [`StatV2`] (feature `stat_v2`).
pub const ID_STAT_V2: u32 = id(b"STA2");
/// `lstat`, reply [`StatV2`] (feature `stat_v2`).
pub const ID_LSTAT_V2: u32 = id(b"LST2");
/// List a directory, reply [`DentV1`]s then a zeroed `DONE` dent.
pub const ID_LIST_V1: u32 = id(b"LIST");
/// List a directory, reply [`DentV2`]s then a zeroed `DONE` dent (feature `ls_v2`).
pub const ID_LIST_V2: u32 = id(b"LIS2");
/// A `LIST` entry.
pub const ID_DENT_V1: u32 = id(b"DENT");
/// A `LIS2` entry.
pub const ID_DENT_V2: u32 = id(b"DNT2");
/// Push, path is `"<path>,<mode>"`.
pub const ID_SEND_V1: u32 = id(b"SEND");
/// Push, followed by [`SendV2`] (feature `sendrecv_v2`).
pub const ID_SEND_V2: u32 = id(b"SND2");
/// Pull.
pub const ID_RECV_V1: u32 = id(b"RECV");
/// Pull, followed by [`RecvV2`] (feature `sendrecv_v2`).
pub const ID_RECV_V2: u32 = id(b"RCV2");
/// File data: `{id, u32 size}` + `size` bytes (≤ [`SYNC_DATA_MAX`]).
pub const ID_DATA: u32 = id(b"DATA");
/// End of file data (`arg` = mtime for SEND, 0 for RECV) or end of a listing.
pub const ID_DONE: u32 = id(b"DONE");
/// SEND succeeded.
pub const ID_OKAY: u32 = id(b"OKAY");
/// Failure: `{id, u32 len}` + message.
pub const ID_FAIL: u32 = id(b"FAIL");
/// End of the sync session.
pub const ID_QUIT: u32 = id(b"QUIT");

/// Largest DATA payload.
pub const SYNC_DATA_MAX: usize = 64 * 1024;
/// Longest request path.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest FAIL message a decoder accepts.
pub const MAX_FAIL_LEN: usize = 64 * 1024;
/// Longest directory entry name a decoder accepts.
pub const MAX_NAME_LEN: usize = 4096;

/// `SND2`/`RCV2` flag: brotli-compressed data (not supported by this endpoint).
pub const FLAG_BROTLI: u32 = 1;
/// `SND2`/`RCV2` flag: LZ4-compressed data (not supported by this endpoint).
pub const FLAG_LZ4: u32 = 2;
/// `SND2`/`RCV2` flag: zstd-compressed data (not supported by this endpoint).
pub const FLAG_ZSTD: u32 = 4;
/// `SND2` flag: receive and discard the data without writing the file.
pub const FLAG_DRY_RUN: u32 = 0x8000_0000;

/// Length of the `{id, u32}` header shared by requests, DATA, DONE, OKAY, FAIL and QUIT.
pub const HEADER_LEN: usize = 8;
pub const STAT_V1_LEN: usize = 16;
pub const STAT_V2_LEN: usize = 72;
pub const DENT_V1_LEN: usize = 20;
pub const DENT_V2_LEN: usize = 76;
pub const SEND_V2_LEN: usize = 12;
pub const RECV_V2_LEN: usize = 8;

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// Errors of the sync protocol, on either side.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("path too long ({len} bytes, limit {MAX_PATH_LEN})")]
    PathTooLong { len: usize },
    #[error("expected {} but got {}", id_name(*expected), id_name(*got))]
    UnexpectedId { expected: u32, got: u32 },
    /// The peer answered `FAIL` with this message.
    #[error("remote failure: {0}")]
    Remote(String),
    /// The sync server refused a request and sent `FAIL` with this message.
    #[error("request refused: {0}")]
    Refused(String),
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: usize,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The stream ended in the middle of a message.
    #[error("stream closed mid-message")]
    Truncated,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// A decoder's result: `Ok(None)` = need more bytes, else the message and the bytes it used.
pub type DecodeResult<T> = Result<Option<(T, usize)>, SyncError>;

/// Printable form of a message id (`STAT`, or hex for non-ASCII ids).
pub fn id_name(id: u32) -> String {
    let b = id.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_alphanumeric()) {
        String::from_utf8_lossy(&b).into_owned()
    } else {
        format!("{id:08x}")
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// If `buf` starts with a FAIL message: `Some(Err(Remote))` when complete, `Some(Ok(None))`
/// when incomplete; `None` if it is not a FAIL.
fn check_fail<T>(buf: &[u8]) -> Option<DecodeResult<T>> {
    if buf.len() < 4 || u32_at(buf, 0) != ID_FAIL {
        return None;
    }
    Some(match decode_fail(buf) {
        Ok(Some((msg, _))) => Err(SyncError::Remote(msg)),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    })
}

/// The `{id, u32}` header of requests and of DATA/DONE/OKAY/FAIL/QUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncHeader {
    pub id: u32,
    pub arg: u32,
}

impl SyncHeader {
    pub fn new(id: u32, arg: u32) -> Self {
        SyncHeader { id, arg }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.id.to_le_bytes());
        b[4..].copy_from_slice(&self.arg.to_le_bytes());
        b
    }

    /// The header at the start of `buf`, if 8 bytes are there.
    pub fn decode(buf: &[u8]) -> Option<SyncHeader> {
        (buf.len() >= HEADER_LEN).then(|| SyncHeader {
            id: u32_at(buf, 0),
            arg: u32_at(buf, 4),
        })
    }
}

/// A request: `{id, path_len}` + path. Fails for paths over [`MAX_PATH_LEN`].
pub fn encode_request(id: u32, path: &[u8]) -> Result<Bytes, SyncError> {
    if path.len() > MAX_PATH_LEN {
        return Err(SyncError::PathTooLong { len: path.len() });
    }
    let mut b = BytesMut::with_capacity(HEADER_LEN + path.len());
    b.put_slice(&SyncHeader::new(id, path.len() as u32).encode());
    b.put_slice(path);
    Ok(b.freeze())
}

/// The path of a `SEND` (v1) request: `"<path>,<mode>"` with the mode in decimal, as stock
/// adb writes it.
pub fn send_v1_spec(path: &str, mode: u32) -> String {
    format!("{path},{mode}")
}

/// A DATA header for `len` bytes that follow.
pub fn encode_data_header(len: u32) -> [u8; HEADER_LEN] {
    SyncHeader::new(ID_DATA, len).encode()
}

/// `DONE` with its argument (the mtime after SEND data, 0 after RECV data).
pub fn encode_done(arg: u32) -> [u8; HEADER_LEN] {
    SyncHeader::new(ID_DONE, arg).encode()
}

/// `OKAY` (the reply to a successful SEND).
pub fn encode_okay() -> [u8; HEADER_LEN] {
    SyncHeader::new(ID_OKAY, 0).encode()
}

/// `QUIT` (ends the session).
pub fn encode_quit() -> [u8; HEADER_LEN] {
    SyncHeader::new(ID_QUIT, 0).encode()
}

/// `FAIL` with a message (cut at [`MAX_FAIL_LEN`] bytes).
pub fn encode_fail(msg: &str) -> Bytes {
    let mut m = msg.as_bytes();
    if m.len() > MAX_FAIL_LEN {
        m = &m[..MAX_FAIL_LEN];
    }
    let mut b = BytesMut::with_capacity(HEADER_LEN + m.len());
    b.put_slice(&SyncHeader::new(ID_FAIL, m.len() as u32).encode());
    b.put_slice(m);
    b.freeze()
}

/// Decodes a `FAIL` message (its text, lossy UTF-8).
pub fn decode_fail(buf: &[u8]) -> DecodeResult<String> {
    let Some(h) = SyncHeader::decode(buf) else {
        return Ok(None);
    };
    if h.id != ID_FAIL {
        return Err(SyncError::UnexpectedId {
            expected: ID_FAIL,
            got: h.id,
        });
    }
    let len = h.arg as usize;
    if len > MAX_FAIL_LEN {
        return Err(SyncError::TooLarge {
            what: "FAIL message",
            len: u64::from(h.arg),
            max: MAX_FAIL_LEN,
        });
    }
    if buf.len() < HEADER_LEN + len {
        return Ok(None);
    }
    let msg = String::from_utf8_lossy(&buf[HEADER_LEN..HEADER_LEN + len]).into_owned();
    Ok(Some((msg, HEADER_LEN + len)))
}

/// What a SEND's reply says: `OKAY` decodes to `Ok(Some(((), 8)))`, `FAIL` to
/// [`SyncError::Remote`].
pub fn decode_status(buf: &[u8]) -> DecodeResult<()> {
    if let Some(r) = check_fail(buf) {
        return r;
    }
    let Some(h) = SyncHeader::decode(buf) else {
        return Ok(None);
    };
    if h.id != ID_OKAY {
        return Err(SyncError::UnexpectedId {
            expected: ID_OKAY,
            got: h.id,
        });
    }
    Ok(Some(((), HEADER_LEN)))
}

/// A message in a file's data stream (RECV replies; SEND payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataHeader {
    /// `len` bytes of data follow the 8-byte header.
    Data(u32),
    /// The end; the argument (mtime for SEND, 0 for RECV).
    Done(u32),
}

/// Decodes a DATA or DONE header (8 bytes; the data itself is not consumed). DATA over
/// [`SYNC_DATA_MAX`] is an error; FAIL decodes to [`SyncError::Remote`].
pub fn decode_data_header(buf: &[u8]) -> DecodeResult<DataHeader> {
    if let Some(r) = check_fail(buf) {
        return r;
    }
    let Some(h) = SyncHeader::decode(buf) else {
        return Ok(None);
    };
    match h.id {
        ID_DATA if h.arg as usize > SYNC_DATA_MAX => Err(SyncError::TooLarge {
            what: "DATA",
            len: u64::from(h.arg),
            max: SYNC_DATA_MAX,
        }),
        ID_DATA => Ok(Some((DataHeader::Data(h.arg), HEADER_LEN))),
        ID_DONE => Ok(Some((DataHeader::Done(h.arg), HEADER_LEN))),
        got => Err(SyncError::UnexpectedId {
            expected: ID_DATA,
            got,
        }),
    }
}

/// `SND2` second part: `{id 'SND2', u32 mode, u32 flags}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendV2 {
    pub mode: u32,
    pub flags: u32,
}

impl SendV2 {
    pub fn encode(&self) -> [u8; SEND_V2_LEN] {
        let mut b = [0u8; SEND_V2_LEN];
        b[..4].copy_from_slice(&ID_SEND_V2.to_le_bytes());
        b[4..8].copy_from_slice(&self.mode.to_le_bytes());
        b[8..].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    pub fn decode(buf: &[u8]) -> DecodeResult<SendV2> {
        if buf.len() < SEND_V2_LEN {
            return Ok(None);
        }
        let got = u32_at(buf, 0);
        if got != ID_SEND_V2 {
            return Err(SyncError::UnexpectedId {
                expected: ID_SEND_V2,
                got,
            });
        }
        Ok(Some((
            SendV2 {
                mode: u32_at(buf, 4),
                flags: u32_at(buf, 8),
            },
            SEND_V2_LEN,
        )))
    }
}

/// `RCV2` second part: `{id 'RCV2', u32 flags}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvV2 {
    pub flags: u32,
}

impl RecvV2 {
    pub fn encode(&self) -> [u8; RECV_V2_LEN] {
        SyncHeader::new(ID_RECV_V2, self.flags).encode()
    }

    pub fn decode(buf: &[u8]) -> DecodeResult<RecvV2> {
        let Some(h) = SyncHeader::decode(buf) else {
            return Ok(None);
        };
        if h.id != ID_RECV_V2 {
            return Err(SyncError::UnexpectedId {
                expected: ID_RECV_V2,
                got: h.id,
            });
        }
        Ok(Some((RecvV2 { flags: h.arg }, RECV_V2_LEN)))
    }
}

/// `STAT` reply: `{id 'STAT', u32 mode, u32 size, u32 mtime}`. All zero when `lstat` failed;
/// clients read mode 0 as "does not exist".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatV1 {
    pub mode: u32,
    pub size: u32,
    pub mtime: u32,
}

impl StatV1 {
    /// From a [`FileStat`] (size and mtime are truncated to 32 bits, as on the wire).
    pub fn from_stat(st: &FileStat) -> Self {
        StatV1 {
            mode: st.mode,
            size: st.size as u32,
            mtime: st.mtime as u32,
        }
    }

    pub fn encode(&self) -> [u8; STAT_V1_LEN] {
        let mut b = [0u8; STAT_V1_LEN];
        b[..4].copy_from_slice(&ID_LSTAT_V1.to_le_bytes());
        b[4..8].copy_from_slice(&self.mode.to_le_bytes());
        b[8..12].copy_from_slice(&self.size.to_le_bytes());
        b[12..].copy_from_slice(&self.mtime.to_le_bytes());
        b
    }

    pub fn decode(buf: &[u8]) -> DecodeResult<StatV1> {
        if let Some(r) = check_fail(buf) {
            return r;
        }
        if buf.len() < STAT_V1_LEN {
            return Ok(None);
        }
        let got = u32_at(buf, 0);
        if got != ID_LSTAT_V1 {
            return Err(SyncError::UnexpectedId {
                expected: ID_LSTAT_V1,
                got,
            });
        }
        Ok(Some((
            StatV1 {
                mode: u32_at(buf, 4),
                size: u32_at(buf, 8),
                mtime: u32_at(buf, 12),
            },
            STAT_V1_LEN,
        )))
    }
}

/// `STA2`/`LST2` reply (`sync_stat_v2`, 72 bytes). `id` echoes the request; `error` is an
/// errno (0 on success, then the other fields are valid; on error they are zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatV2 {
    pub id: u32,
    pub error: u32,
    pub stat: FileStat,
}

impl StatV2 {
    pub fn ok(id: u32, stat: FileStat) -> Self {
        StatV2 { id, error: 0, stat }
    }

    pub fn error(id: u32, errno: u32) -> Self {
        StatV2 {
            id,
            error: errno,
            stat: FileStat::default(),
        }
    }

    fn put(&self, b: &mut [u8]) {
        let s = &self.stat;
        b[0..4].copy_from_slice(&self.id.to_le_bytes());
        b[4..8].copy_from_slice(&self.error.to_le_bytes());
        b[8..16].copy_from_slice(&s.dev.to_le_bytes());
        b[16..24].copy_from_slice(&s.ino.to_le_bytes());
        b[24..28].copy_from_slice(&s.mode.to_le_bytes());
        b[28..32].copy_from_slice(&s.nlink.to_le_bytes());
        b[32..36].copy_from_slice(&s.uid.to_le_bytes());
        b[36..40].copy_from_slice(&s.gid.to_le_bytes());
        b[40..48].copy_from_slice(&s.size.to_le_bytes());
        b[48..56].copy_from_slice(&s.atime.to_le_bytes());
        b[56..64].copy_from_slice(&s.mtime.to_le_bytes());
        b[64..72].copy_from_slice(&s.ctime.to_le_bytes());
    }

    fn get(b: &[u8]) -> Self {
        StatV2 {
            id: u32_at(b, 0),
            error: u32_at(b, 4),
            stat: FileStat {
                dev: u64_at(b, 8),
                ino: u64_at(b, 16),
                mode: u32_at(b, 24),
                nlink: u32_at(b, 28),
                uid: u32_at(b, 32),
                gid: u32_at(b, 36),
                size: u64_at(b, 40),
                atime: u64_at(b, 48) as i64,
                mtime: u64_at(b, 56) as i64,
                ctime: u64_at(b, 64) as i64,
            },
        }
    }

    pub fn encode(&self) -> [u8; STAT_V2_LEN] {
        let mut b = [0u8; STAT_V2_LEN];
        self.put(&mut b);
        b
    }

    /// Decodes a `STA2` or `LST2` reply (either id is accepted; compare `id` if it matters).
    pub fn decode(buf: &[u8]) -> DecodeResult<StatV2> {
        if let Some(r) = check_fail(buf) {
            return r;
        }
        if buf.len() < STAT_V2_LEN {
            return Ok(None);
        }
        let got = u32_at(buf, 0);
        if got != ID_STAT_V2 && got != ID_LSTAT_V2 {
            return Err(SyncError::UnexpectedId {
                expected: ID_STAT_V2,
                got,
            });
        }
        Ok(Some((StatV2::get(buf), STAT_V2_LEN)))
    }
}

/// An item of a listing: an entry, or the terminating `DONE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListItem<T> {
    Entry(T),
    Done,
}

/// A `LIST` entry: `{id 'DENT', u32 mode, u32 size, u32 mtime, u32 namelen}` + name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DentV1 {
    pub mode: u32,
    pub size: u32,
    pub mtime: u32,
    pub name: String,
}

impl DentV1 {
    pub fn new(name: &str, st: &FileStat) -> Self {
        DentV1 {
            mode: st.mode,
            size: st.size as u32,
            mtime: st.mtime as u32,
            name: name.to_owned(),
        }
    }

    /// Appends the entry (names are cut at [`MAX_NAME_LEN`] bytes).
    pub fn encode_into(&self, out: &mut BytesMut) {
        let name = &self.name.as_bytes()[..self.name.len().min(MAX_NAME_LEN)];
        out.reserve(DENT_V1_LEN + name.len());
        out.put_u32_le(ID_DENT_V1);
        out.put_u32_le(self.mode);
        out.put_u32_le(self.size);
        out.put_u32_le(self.mtime);
        out.put_u32_le(name.len() as u32);
        out.put_slice(name);
    }

    /// The zeroed 20-byte `DONE` that ends a `LIST`.
    pub fn encode_done() -> [u8; DENT_V1_LEN] {
        let mut b = [0u8; DENT_V1_LEN];
        b[..4].copy_from_slice(&ID_DONE.to_le_bytes());
        b
    }

    /// Decodes an entry (name as lossy UTF-8) or the terminating `DONE` (20 bytes).
    pub fn decode(buf: &[u8]) -> DecodeResult<ListItem<DentV1>> {
        if let Some(r) = check_fail(buf) {
            return r;
        }
        if buf.len() < DENT_V1_LEN {
            return Ok(None);
        }
        match u32_at(buf, 0) {
            ID_DONE => Ok(Some((ListItem::Done, DENT_V1_LEN))),
            ID_DENT_V1 => {
                let len = u32_at(buf, 16) as usize;
                if len > MAX_NAME_LEN {
                    return Err(SyncError::TooLarge {
                        what: "entry name",
                        len: len as u64,
                        max: MAX_NAME_LEN,
                    });
                }
                if buf.len() < DENT_V1_LEN + len {
                    return Ok(None);
                }
                let name =
                    String::from_utf8_lossy(&buf[DENT_V1_LEN..DENT_V1_LEN + len]).into_owned();
                Ok(Some((
                    ListItem::Entry(DentV1 {
                        mode: u32_at(buf, 4),
                        size: u32_at(buf, 8),
                        mtime: u32_at(buf, 12),
                        name,
                    }),
                    DENT_V1_LEN + len,
                )))
            }
            got => Err(SyncError::UnexpectedId {
                expected: ID_DENT_V1,
                got,
            }),
        }
    }
}

/// A `LIS2` entry: the 72 bytes of a [`StatV2`] with id `DNT2`, then `u32 namelen` + name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DentV2 {
    /// errno of the entry's `lstat` (0 = ok).
    pub error: u32,
    pub stat: FileStat,
    pub name: String,
}

impl DentV2 {
    pub fn new(name: &str, st: &FileStat) -> Self {
        DentV2 {
            error: 0,
            stat: *st,
            name: name.to_owned(),
        }
    }

    /// Appends the entry (names are cut at [`MAX_NAME_LEN`] bytes).
    pub fn encode_into(&self, out: &mut BytesMut) {
        let name = &self.name.as_bytes()[..self.name.len().min(MAX_NAME_LEN)];
        let mut fixed = [0u8; DENT_V2_LEN];
        StatV2 {
            id: ID_DENT_V2,
            error: self.error,
            stat: self.stat,
        }
        .put(&mut fixed[..STAT_V2_LEN]);
        fixed[STAT_V2_LEN..].copy_from_slice(&(name.len() as u32).to_le_bytes());
        out.reserve(DENT_V2_LEN + name.len());
        out.put_slice(&fixed);
        out.put_slice(name);
    }

    /// The zeroed 76-byte `DONE` that ends a `LIS2` (a short one hangs `adb ls`).
    pub fn encode_done() -> [u8; DENT_V2_LEN] {
        let mut b = [0u8; DENT_V2_LEN];
        b[..4].copy_from_slice(&ID_DONE.to_le_bytes());
        b
    }

    /// Decodes an entry (name as lossy UTF-8) or the terminating `DONE` (76 bytes).
    pub fn decode(buf: &[u8]) -> DecodeResult<ListItem<DentV2>> {
        if let Some(r) = check_fail(buf) {
            return r;
        }
        if buf.len() < DENT_V2_LEN {
            return Ok(None);
        }
        match u32_at(buf, 0) {
            ID_DONE => Ok(Some((ListItem::Done, DENT_V2_LEN))),
            ID_DENT_V2 => {
                let len = u32_at(buf, STAT_V2_LEN) as usize;
                if len > MAX_NAME_LEN {
                    return Err(SyncError::TooLarge {
                        what: "entry name",
                        len: len as u64,
                        max: MAX_NAME_LEN,
                    });
                }
                if buf.len() < DENT_V2_LEN + len {
                    return Ok(None);
                }
                let st = StatV2::get(buf);
                let name =
                    String::from_utf8_lossy(&buf[DENT_V2_LEN..DENT_V2_LEN + len]).into_owned();
                Ok(Some((
                    ListItem::Entry(DentV2 {
                        error: st.error,
                        stat: st.stat,
                        name,
                    }),
                    DENT_V2_LEN + len,
                )))
            }
            got => Err(SyncError::UnexpectedId {
                expected: ID_DENT_V2,
                got,
            }),
        }
    }
}

/// Parses a mode like C's `strtoul(s, NULL, 0)`: leading whitespace and `+` skipped, `0x`/`0X`
/// hexadecimal, a leading `0` octal, otherwise decimal; parsing stops at the first invalid
/// character (no digits gives 0). `None` only on overflow of 32 bits.
pub fn parse_mode(s: &str) -> Option<u32> {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let s = s.strip_prefix('+').unwrap_or(s);
    let b = s.as_bytes();
    let (radix, digits) = if (b.starts_with(b"0x") || b.starts_with(b"0X"))
        && b.get(2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        (16, &s[2..])
    } else if b.starts_with(b"0") {
        (8, s)
    } else {
        (10, s)
    };
    let mut v: u32 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else { break };
        v = v.checked_mul(radix)?.checked_add(d)?;
    }
    Some(v)
}

/// Splits a `SEND` v1 spec `"<path>,<mode>"` at the last comma.
pub fn parse_send_spec(spec: &[u8]) -> Result<(&[u8], u32), SyncError> {
    let comma = spec
        .iter()
        .rposition(|&c| c == b',')
        .ok_or_else(|| SyncError::Protocol("missing , in ID_SEND".into()))?;
    let mode_text = std::str::from_utf8(&spec[comma + 1..])
        .map_err(|_| SyncError::Protocol("bad mode".into()))?;
    let mode = parse_mode(mode_text).ok_or_else(|| SyncError::Protocol("bad mode".into()))?;
    Ok((&spec[..comma], mode))
}

/// The errno an I/O error stands for: its OS error number if it has one, else one derived
/// from its kind (NotFound 2, PermissionDenied 13, AlreadyExists 17, NotADirectory 20,
/// IsADirectory 21, InvalidInput 22, ReadOnlyFilesystem 30, anything else EIO 5).
pub fn errno_of(e: &io::Error) -> u32 {
    if let Some(n) = e.raw_os_error()
        && let Ok(n) = u32::try_from(n)
        && n != 0
    {
        return n;
    }
    match e.kind() {
        io::ErrorKind::NotFound => 2,
        io::ErrorKind::PermissionDenied => 13,
        io::ErrorKind::AlreadyExists => 17,
        io::ErrorKind::NotADirectory => 20,
        io::ErrorKind::IsADirectory => 21,
        io::ErrorKind::InvalidInput => 22,
        io::ErrorKind::ReadOnlyFilesystem => 30,
        _ => 5,
    }
}

/// A short text for common errno values (as `strerror` prints them).
pub fn strerror(errno: u32) -> &'static str {
    match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        5 => "I/O error",
        12 => "Out of memory",
        13 => "Permission denied",
        17 => "File exists",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        27 => "File too large",
        28 => "No space left on device",
        30 => "Read-only file system",
        36 => "File name too long",
        40 => "Too many levels of symbolic links",
        _ => "Unknown error",
    }
}

fn fail_text(reason: &str, e: &io::Error) -> String {
    format!("{reason}: {}", strerror(errno_of(e)))
}

/// Where the sync server reads the client's bytes from: the stream's received chunks in order,
/// `None` at end of stream.
pub trait ChunkSource: Send {
    fn next_chunk(&mut self) -> impl Future<Output = Option<Bytes>> + Send;
}

/// Where the sync server writes its replies (each call's data may be of any size; the sink
/// chunks it for the transport). An error means the stream is gone.
pub trait ChunkSink: Send {
    fn send_chunk(&mut self, data: Bytes) -> impl Future<Output = io::Result<()>> + Send;
}

impl ChunkSource for mpsc::Receiver<Bytes> {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        self.recv().await
    }
}

impl ChunkSink for mpsc::Sender<Bytes> {
    async fn send_chunk(&mut self, data: Bytes) -> io::Result<()> {
        self.send(data)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

/// Size of the reply buffers the server fills before handing them to the sink.
const OUT_FRAME: usize = 256 * 1024;
/// File chunks queued between the async side and a blocking reader/writer thread.
const FILE_QUEUE: usize = 8;

/// The sync session's input (a queue of received chunks) and buffered output.
struct Session<I, O> {
    src: I,
    chunks: VecDeque<Bytes>,
    len: usize,
    sink: O,
    out: BytesMut,
    frame: usize,
}

impl<I: ChunkSource, O: ChunkSink> Session<I, O> {
    /// Sends everything buffered.
    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let data = self.out.split().freeze();
            self.sink.send_chunk(data).await?;
        }
        Ok(())
    }

    async fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(data);
        if self.out.len() >= self.frame {
            self.flush().await?;
        }
        Ok(())
    }

    /// Makes at least `n` bytes available; `false` at end of stream. Pending output is sent
    /// before waiting for input so a client waiting for a reply is never stalled.
    async fn fill(&mut self, n: usize) -> Result<bool, SyncError> {
        while self.len < n {
            self.flush().await?;
            match self.src.next_chunk().await {
                Some(c) => {
                    if !c.is_empty() {
                        self.len += c.len();
                        self.chunks.push_back(c);
                    }
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Takes `n` buffered bytes (zero-copy when they lie in one chunk). Requires `len >= n`.
    fn take(&mut self, n: usize) -> Bytes {
        debug_assert!(self.len >= n);
        self.len -= n;
        if let Some(front) = self.chunks.front_mut()
            && front.len() >= n
        {
            let b = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return b;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let k = (n - out.len()).min(front.len());
            out.put_slice(&front[..k]);
            front.advance(k);
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        out.freeze()
    }

    /// Takes `n` buffered bytes as the pieces of the received chunks they lie in (no copy).
    /// Requires `len >= n`.
    fn take_pieces(&mut self, n: usize, out: &mut Vec<Bytes>) {
        debug_assert!(self.len >= n);
        self.len -= n;
        let mut left = n;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= left {
                left -= front.len();
                out.extend(self.chunks.pop_front());
            } else {
                out.push(front.split_to(left));
                left = 0;
            }
        }
    }

    /// Exactly `n` bytes, or [`SyncError::Truncated`].
    async fn read(&mut self, n: usize) -> Result<Bytes, SyncError> {
        if !self.fill(n).await? {
            return Err(SyncError::Truncated);
        }
        Ok(self.take(n))
    }

    async fn read_header(&mut self) -> Result<SyncHeader, SyncError> {
        let b = self.read(HEADER_LEN).await?;
        Ok(SyncHeader::new(u32_at(&b, 0), u32_at(&b, 4)))
    }

    /// Sends FAIL with `msg` and returns the protocol error that ends the session.
    async fn fail(&mut self, msg: String) -> SyncError {
        let f = encode_fail(&msg);
        if let Err(e) = self.put(&f).await {
            return e.into();
        }
        if let Err(e) = self.flush().await {
            return e.into();
        }
        SyncError::Refused(msg)
    }
}

/// Runs `f` on the blocking pool; a panic there becomes an I/O error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("file system task failed: {e}")))?
}

fn path_string(path: &[u8]) -> io::Result<String> {
    String::from_utf8(path.to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"))
}

/// Serves one sync session: reads requests from `input` until `QUIT`, end of stream or a
/// protocol error, and writes replies to `output`. `frame` is the preferred size of the
/// buffers handed to `output` (typically the transport's max payload).
///
/// Returns `Ok(())` after `QUIT` or a clean end of stream between requests; any error means
/// the stream must be closed (a FAIL has been sent where the protocol calls for one). Paths are
/// passed to `fs` exactly as received (it resolves them in its sandbox); paths longer than
/// [`MAX_PATH_LEN`] are refused. Memory is bounded by a few frames plus [`FILE_QUEUE`] data
/// chunks, whatever the input.
pub async fn serve<I: ChunkSource, O: ChunkSink>(
    fs: Arc<dyn SyncFs>,
    input: I,
    output: O,
    frame: usize,
) -> Result<(), SyncError> {
    let frame = frame.clamp(4096, 1024 * 1024);
    let mut s = Session {
        src: input,
        chunks: VecDeque::new(),
        len: 0,
        sink: output,
        out: BytesMut::with_capacity(frame.min(OUT_FRAME)),
        frame,
    };
    let result = serve_session(&fs, &mut s).await;
    // Whatever happened, deliver what is buffered (e.g. the reply before QUIT).
    let flushed = s.flush().await;
    result?;
    flushed?;
    Ok(())
}

async fn serve_session<I: ChunkSource, O: ChunkSink>(
    fs: &Arc<dyn SyncFs>,
    s: &mut Session<I, O>,
) -> Result<(), SyncError> {
    loop {
        if !s.fill(HEADER_LEN).await? {
            // End of stream between requests.
            return Ok(());
        }
        let req = s.read_header().await?;
        let path_len = req.arg as usize;
        if path_len > MAX_PATH_LEN {
            s.fail("path too long".into()).await;
            return Err(SyncError::PathTooLong { len: path_len });
        }
        let path = s.read(path_len).await?;
        match req.id {
            ID_LSTAT_V1 => {
                let reply = match path_string(&path) {
                    Ok(p) => {
                        let fs = fs.clone();
                        blocking(move || fs.lstat(&p))
                            .await
                            .map(|st| StatV1::from_stat(&st))
                            .unwrap_or_default()
                    }
                    Err(_) => StatV1::default(),
                };
                s.put(&reply.encode()).await?;
            }
            ID_STAT_V2 | ID_LSTAT_V2 => {
                let follow = req.id == ID_STAT_V2;
                let r = match path_string(&path) {
                    Ok(p) => {
                        let fs = fs.clone();
                        blocking(move || if follow { fs.stat(&p) } else { fs.lstat(&p) }).await
                    }
                    Err(e) => Err(e),
                };
                let reply = match r {
                    Ok(st) => StatV2::ok(req.id, st),
                    Err(e) => StatV2::error(req.id, errno_of(&e)),
                };
                s.put(&reply.encode()).await?;
            }
            ID_LIST_V1 | ID_LIST_V2 => list(fs, s, &path, req.id == ID_LIST_V2).await?,
            ID_SEND_V1 => {
                let (p, mode) = match parse_send_spec(&path) {
                    Ok(v) => v,
                    Err(SyncError::Protocol(m)) => return Err(s.fail(m).await),
                    Err(e) => return Err(s.fail(e.to_string()).await),
                };
                let p = Bytes::copy_from_slice(p);
                receive_file(fs, s, &p, mode, 0).await?;
            }
            ID_SEND_V2 => {
                let b = s.read(SEND_V2_LEN).await?;
                let args = match SendV2::decode(&b) {
                    Ok(Some((a, _))) => a,
                    _ => {
                        return Err(s
                            .fail("SND2 request not followed by its arguments".into())
                            .await);
                    }
                };
                if args.flags & !FLAG_DRY_RUN != 0 {
                    return Err(s
                        .fail(format!("unsupported SND2 flags {:#x}", args.flags))
                        .await);
                }
                receive_file(fs, s, &path, args.mode, args.flags).await?;
            }
            ID_RECV_V1 => send_file(fs, s, &path).await?,
            ID_RECV_V2 => {
                let b = s.read(RECV_V2_LEN).await?;
                let args = match RecvV2::decode(&b) {
                    Ok(Some((a, _))) => a,
                    _ => {
                        return Err(s
                            .fail("RCV2 request not followed by its arguments".into())
                            .await);
                    }
                };
                if args.flags != 0 {
                    return Err(s
                        .fail(format!("unsupported RCV2 flags {:#x}", args.flags))
                        .await);
                }
                send_file(fs, s, &path).await?;
            }
            ID_QUIT => return Ok(()),
            other => return Err(s.fail(format!("unknown command {other:08x}")).await),
        }
    }
}

async fn list<I: ChunkSource, O: ChunkSink>(
    fs: &Arc<dyn SyncFs>,
    s: &mut Session<I, O>,
    path: &[u8],
    v2: bool,
) -> Result<(), SyncError> {
    let entries = match path_string(path) {
        Ok(p) => {
            let fs = fs.clone();
            blocking(move || fs.list(&p)).await.unwrap_or_default()
        }
        Err(_) => Vec::new(),
    };
    let mut buf = BytesMut::new();
    for (name, st) in &entries {
        buf.clear();
        if v2 {
            DentV2::new(name, st).encode_into(&mut buf);
        } else {
            DentV1::new(name, st).encode_into(&mut buf);
        }
        s.put(&buf).await?;
    }
    if v2 {
        s.put(&DentV2::encode_done()).await?;
    } else {
        s.put(&DentV1::encode_done()).await?;
    }
    Ok(())
}

enum WriterMsg {
    /// One DATA message's bytes, as the pieces of the received chunks they lie in.
    Data(Vec<Bytes>),
    Finish(i64),
}

/// SEND/SND2 after the request: reads DATA…DONE and writes the file (or the symlink).
async fn receive_file<I: ChunkSource, O: ChunkSink>(
    fs: &Arc<dyn SyncFs>,
    s: &mut Session<I, O>,
    path: &[u8],
    mode: u32,
    flags: u32,
) -> Result<(), SyncError> {
    let path = match path_string(path) {
        Ok(p) => p,
        Err(e) => {
            let msg = fail_text("couldn't create file", &e);
            return discard_after_fail(s, msg).await;
        }
    };
    if mode & S_IFMT == S_IFLNK {
        return receive_symlink(fs, s, path).await;
    }
    // Copy the user permission bits to group and other, as adbd does.
    let mut perm = mode & 0o777;
    perm |= (perm >> 3) & 0o070;
    perm |= (perm >> 3) & 0o007;
    let dry_run = flags & FLAG_DRY_RUN != 0;

    let writer = if dry_run {
        None
    } else {
        let fs = fs.clone();
        let p = path.clone();
        match blocking(move || fs.create_file(&p, perm)).await {
            Ok(w) => Some(w),
            Err(e) => {
                let msg = fail_text("couldn't create file", &e);
                return discard_after_fail(s, msg).await;
            }
        }
    };
    let (tx, task) = match writer {
        Some(w) => {
            let (tx, rx) = mpsc::channel::<WriterMsg>(FILE_QUEUE);
            (
                Some(tx),
                Some(tokio::task::spawn_blocking(move || write_file(w, rx))),
            )
        }
        None => (None, None),
    };
    // Receive DATA until DONE, handing each to the writer thread as the pieces it arrived in.
    let mut writer_failed = false;
    let mtime = loop {
        let h = s.read_header().await?;
        match h.id {
            ID_DATA => {
                if h.arg as usize > SYNC_DATA_MAX {
                    return Err(s.fail("oversize data message".into()).await);
                }
                let n = h.arg as usize;
                if !s.fill(n).await? {
                    return Err(SyncError::Truncated);
                }
                let mut pieces = Vec::new();
                s.take_pieces(n, &mut pieces);
                if let Some(tx) = &tx
                    && !writer_failed
                    && tx.send(WriterMsg::Data(pieces)).await.is_err()
                {
                    // The writer stopped on an error; it is reported after DONE.
                    writer_failed = true;
                }
            }
            ID_DONE => break i64::from(h.arg),
            other => {
                return Err(s
                    .fail(format!("invalid data message {}", id_name(other)))
                    .await);
            }
        }
    };
    let result = match (tx, task) {
        (Some(tx), Some(task)) => {
            // A failed send means the writer already ended; its error is in the join result.
            let _ = tx.send(WriterMsg::Finish(mtime)).await;
            drop(tx);
            match task.await {
                Ok(r) => r,
                Err(e) => Err(io::Error::other(format!("file writer failed: {e}"))),
            }
        }
        _ => Ok(()),
    };
    match result {
        Ok(()) => {
            s.put(&encode_okay()).await?;
            Ok(())
        }
        Err(e) => Err(s.fail(fail_text("write failed", &e)).await),
    }
}

/// The blocking side of a SEND: writes each DATA (one vectored write of its pieces), then
/// finishes the file with its mtime.
fn write_file(mut w: Box<dyn SyncFileWriter>, mut rx: mpsc::Receiver<WriterMsg>) -> io::Result<()> {
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            WriterMsg::Data(pieces) => write_all_vectored(&mut *w, &pieces)?,
            WriterMsg::Finish(mtime) => {
                w.flush()?;
                return w.finish(mtime);
            }
        }
    }
    // The session ended before DONE: dropping the writer discards the file.
    Err(io::Error::from(io::ErrorKind::UnexpectedEof))
}

/// Writes every byte of `bufs`, in order.
fn write_all_vectored(w: &mut dyn io::Write, bufs: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = bufs
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| io::IoSlice::new(b))
        .collect();
    let mut rest: &mut [io::IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        match w.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// After a failed SEND: report it, then read and discard DATA until DONE (old hosts keep
/// writing until they see the failure); the session then ends.
async fn discard_after_fail<I: ChunkSource, O: ChunkSink>(
    s: &mut Session<I, O>,
    msg: String,
) -> Result<(), SyncError> {
    let err = s.fail(msg).await;
    loop {
        let h = s.read_header().await?;
        match h.id {
            ID_DATA if h.arg as usize <= SYNC_DATA_MAX => {
                let n = h.arg as usize;
                if !s.fill(n).await? {
                    return Err(SyncError::Truncated);
                }
                s.take(n);
            }
            _ => return Err(err),
        }
    }
}

async fn receive_symlink<I: ChunkSource, O: ChunkSink>(
    fs: &Arc<dyn SyncFs>,
    s: &mut Session<I, O>,
    path: String,
) -> Result<(), SyncError> {
    let h = s.read_header().await?;
    if h.id != ID_DATA || h.arg as usize > SYNC_DATA_MAX {
        return Err(s
            .fail("invalid data message: expected ID_DATA".into())
            .await);
    }
    let target = s.read(h.arg as usize).await?;
    let done = s.read_header().await?;
    if done.id != ID_DONE {
        return Err(s
            .fail("invalid data message: expected ID_DONE".into())
            .await);
    }
    let r = match String::from_utf8(target.to_vec()) {
        Ok(t) => {
            let fs = fs.clone();
            blocking(move || fs.symlink(&t, &path)).await
        }
        Err(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "link target is not UTF-8",
        )),
    };
    match r {
        Ok(()) => {
            s.put(&encode_okay()).await?;
            Ok(())
        }
        Err(e) => Err(s.fail(fail_text("failed to create symlink", &e)).await),
    }
}

/// RECV/RCV2: streams the file as DATA messages, then DONE.
async fn send_file<I: ChunkSource, O: ChunkSink>(
    fs: &Arc<dyn SyncFs>,
    s: &mut Session<I, O>,
    path: &[u8],
) -> Result<(), SyncError> {
    let opened = match path_string(path) {
        Ok(p) => {
            let fs = fs.clone();
            blocking(move || fs.open_read(&p)).await
        }
        Err(e) => Err(e),
    };
    let file = match opened {
        Ok(f) => f,
        Err(e) => return Err(s.fail(fail_text("open failed", &e)).await),
    };
    // Replies queued so far go first.
    s.flush().await?;
    let frame = s.frame;
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(FILE_QUEUE.min(8));
    let reader = tokio::task::spawn_blocking(move || read_file(file, &tx, frame));
    let mut failure = None;
    while let Some(item) = rx.recv().await {
        match item {
            Ok(b) => s.sink.send_chunk(b).await?,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    // The reader ends once the channel is closed; its panics surface as errors.
    if let Err(e) = reader.await {
        failure = Some(io::Error::other(format!("file reader failed: {e}")));
    }
    if let Some(e) = failure {
        return Err(s.fail(fail_text("read failed", &e)).await);
    }
    s.put(&encode_done(0)).await?;
    Ok(())
}

/// The blocking side of a RECV: frames the file into DATA messages, `frame` bytes per buffer.
fn read_file(
    mut file: Box<dyn io::Read + Send>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    frame: usize,
) {
    // Whole DATA messages per buffer, so every chunk but the last carries a full 64 KiB.
    const MSG: usize = HEADER_LEN + SYNC_DATA_MAX;
    let frame = if frame >= MSG {
        frame - frame % MSG
    } else {
        frame
    };
    let mut buf = BytesMut::with_capacity(frame);
    loop {
        let room = frame.saturating_sub(buf.len());
        if room <= HEADER_LEN {
            if tx.blocking_send(Ok(buf.split().freeze())).is_err() {
                return;
            }
            buf.reserve(frame);
            continue;
        }
        let want = (room - HEADER_LEN).min(SYNC_DATA_MAX);
        let start = buf.len();
        buf.resize(start + HEADER_LEN + want, 0);
        let mut got = 0;
        let mut eof = false;
        while got < want {
            match file.read(&mut buf[start + HEADER_LEN + got..start + HEADER_LEN + want]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    buf.truncate(start);
                    if !buf.is_empty() {
                        let _ = tx.blocking_send(Ok(buf.split().freeze()));
                    }
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        if got == 0 {
            buf.truncate(start);
        } else {
            buf[start..start + HEADER_LEN].copy_from_slice(&encode_data_header(got as u32));
            buf.truncate(start + HEADER_LEN + got);
        }
        if eof {
            if !buf.is_empty() {
                let _ = tx.blocking_send(Ok(buf.split().freeze()));
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_parsing_like_strtoul() {
        assert_eq!(parse_mode("33188"), Some(33188));
        assert_eq!(parse_mode("0777"), Some(0o777));
        assert_eq!(parse_mode("0x1ed"), Some(0x1ed));
        assert_eq!(parse_mode("0X1ED"), Some(0x1ed));
        assert_eq!(parse_mode(" +0644junk"), Some(0o644));
        assert_eq!(parse_mode(""), Some(0));
        assert_eq!(parse_mode("0x"), Some(0));
        assert_eq!(parse_mode("089"), Some(0));
        assert_eq!(parse_mode("99999999999"), None);
        let (p, m) = parse_send_spec(b"/sdcard/a,b.txt,0100644").unwrap();
        assert_eq!((p, m), (&b"/sdcard/a,b.txt"[..], 0o100644));
        assert!(parse_send_spec(b"/no/comma").is_err());
    }

    #[test]
    fn struct_round_trips() {
        let st = FileStat {
            dev: 1,
            ino: 2,
            mode: 0o100644,
            nlink: 1,
            uid: 1000,
            gid: 1000,
            size: 5_000_000_000,
            atime: -1,
            mtime: 1_700_000_000,
            ctime: 3,
        };
        let v2 = StatV2::ok(ID_LSTAT_V2, st);
        let enc = v2.encode();
        assert_eq!(StatV2::decode(&enc).unwrap(), Some((v2, STAT_V2_LEN)));
        assert_eq!(StatV2::decode(&enc[..71]).unwrap(), None);

        let v1 = StatV1::from_stat(&st);
        assert_eq!(v1.size, 5_000_000_000u64 as u32);
        assert_eq!(StatV1::decode(&v1.encode()).unwrap(), Some((v1, 16)));

        let mut b = BytesMut::new();
        DentV2::new("a.txt", &st).encode_into(&mut b);
        b.put_slice(&DentV2::encode_done());
        let (e, n) = DentV2::decode(&b).unwrap().unwrap();
        assert_eq!(n, DENT_V2_LEN + 5);
        assert_eq!(e, ListItem::Entry(DentV2::new("a.txt", &st)));
        assert_eq!(
            DentV2::decode(&b[n..]).unwrap(),
            Some((ListItem::Done, DENT_V2_LEN))
        );

        let mut b = BytesMut::new();
        DentV1::new("dir", &st).encode_into(&mut b);
        let (e, n) = DentV1::decode(&b).unwrap().unwrap();
        assert_eq!(n, DENT_V1_LEN + 3);
        assert!(matches!(e, ListItem::Entry(d) if d.name == "dir" && d.mode == 0o100644));
        assert_eq!(DentV1::encode_done().len(), 20);

        let f = encode_fail("nope");
        assert!(matches!(StatV2::decode(&f), Err(SyncError::Remote(m)) if m == "nope"));
        assert!(matches!(StatV2::decode(&f[..9]), Ok(None)));
        assert!(matches!(decode_status(&encode_okay()), Ok(Some(((), 8)))));
        assert_eq!(
            decode_data_header(&encode_data_header(10)).unwrap(),
            Some((DataHeader::Data(10), 8))
        );
        assert!(decode_data_header(&encode_data_header(65537)).is_err());
        let s2 = SendV2 {
            mode: 0o100644,
            flags: 0,
        };
        assert_eq!(SendV2::decode(&s2.encode()).unwrap(), Some((s2, 12)));
        assert!(encode_request(ID_RECV_V1, &[b'a'; 1025]).is_err());
    }

    #[test]
    fn errno_mapping() {
        assert_eq!(errno_of(&io::Error::from_raw_os_error(28)), 28);
        assert_eq!(errno_of(&io::Error::from(io::ErrorKind::NotFound)), 2);
        assert_eq!(errno_of(&io::Error::from(io::ErrorKind::IsADirectory)), 21);
        assert_eq!(errno_of(&io::Error::other("x")), 5);
    }
}
