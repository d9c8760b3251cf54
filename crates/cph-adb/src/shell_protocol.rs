//! The shell protocol (`shell,v2,…:` services): framed packets that carry stdin, stdout, stderr,
//! the exit status and a few control messages over one ADB stream.
//!
//! A packet is `u8 id` + `u32` little-endian length + `length` bytes. Packets are independent of
//! the transport's WRTE boundaries: one WRTE may hold several packets and one packet may span
//! several WRTEs, so readers feed every received chunk to a [`Decoder`].
//!
//! Both sides use this module: the device endpoint decodes stdin/close-stdin/window-size and
//! encodes stdout/stderr/exit; a client does the reverse.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Host → device: bytes for the command's stdin.
pub const ID_STDIN: u8 = 0;
/// Device → host: bytes the command wrote to stdout.
pub const ID_STDOUT: u8 = 1;
/// Device → host: bytes the command wrote to stderr.
pub const ID_STDERR: u8 = 2;
/// Device → host: one byte, the exit status (`WEXITSTATUS`, or `0x80 | signal`).
pub const ID_EXIT: u8 = 3;
/// Host → device: close the command's stdin (no payload).
pub const ID_CLOSE_STDIN: u8 = 4;
/// Host → device: ASCII `"<rows>x<cols>,<xpixels>x<ypixels>"`, a terminal size change.
pub const ID_WINDOW_SIZE_CHANGE: u8 = 5;
/// Never valid on the wire.
pub const ID_INVALID: u8 = 255;

/// Length of a packet header (`id` + `length`).
pub const HEADER_LEN: usize = 5;

/// Default largest packet payload a [`Decoder`] accepts (1 MiB, the transport's own limit).
pub const DEFAULT_MAX_PACKET: usize = 1024 * 1024;

/// Why a byte stream is not a valid shell-protocol stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellProtocolError {
    /// A header announced a payload beyond the decoder's limit.
    #[error("shell packet of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u64, max: usize },
}

/// One decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPacket {
    pub id: u8,
    pub data: Bytes,
}

impl ShellPacket {
    /// The exit status of an [`ID_EXIT`] packet (`None` for other ids or an empty payload).
    pub fn exit_code(&self) -> Option<u8> {
        if self.id == ID_EXIT {
            self.data.first().copied()
        } else {
            None
        }
    }
}

/// The 5-byte header of a packet with `len` payload bytes.
pub fn encode_header(id: u8, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_le_bytes();
    [id, l[0], l[1], l[2], l[3]]
}

/// A whole packet (header and payload) in one buffer (see [`encode_into`] for the size limit).
pub fn encode(id: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + data.len());
    encode_into(&mut out, id, data);
    out.freeze()
}

/// Appends one packet to `out`. `data` must be shorter than 4 GiB (callers chunk by the
/// transport's max payload, far below that); longer input is cut to `u32::MAX` bytes.
pub fn encode_into(out: &mut BytesMut, id: u8, data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.reserve(HEADER_LEN + len as usize);
    out.put_slice(&encode_header(id, len));
    out.put_slice(&data[..len as usize]);
}

/// The exit packet for status `code` (only the low 8 bits are sent, as adbd does).
pub fn encode_exit(code: i32) -> Bytes {
    encode(ID_EXIT, &[(code & 0xff) as u8])
}

/// The window-size packet payload: `"<rows>x<cols>,<xpixels>x<ypixels>"`.
pub fn encode_window_size(rows: u32, cols: u32, xpixels: u32, ypixels: u32) -> Bytes {
    encode(
        ID_WINDOW_SIZE_CHANGE,
        format!("{rows}x{cols},{xpixels}x{ypixels}").as_bytes(),
    )
}

/// A terminal size from an [`ID_WINDOW_SIZE_CHANGE`] payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u32,
    pub cols: u32,
    pub xpixels: u32,
    pub ypixels: u32,
}

/// Parses a window-size payload; `None` if it is not `"RxC,XxY"` with decimal numbers.
pub fn parse_window_size(data: &[u8]) -> Option<WindowSize> {
    let s = std::str::from_utf8(data).ok()?;
    let s = s.trim_end_matches('\0');
    let (a, b) = s.split_once(',')?;
    let pair = |t: &str| -> Option<(u32, u32)> {
        let (x, y) = t.split_once('x')?;
        Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
    };
    let (rows, cols) = pair(a)?;
    let (xpixels, ypixels) = pair(b)?;
    Some(WindowSize {
        rows,
        cols,
        xpixels,
        ypixels,
    })
}

/// Reassembles packets from arbitrary chunks of the byte stream.
///
/// Memory is bounded: a header announcing more than `max_packet` bytes is an error (checked
/// before the payload is buffered), so the decoder never holds more than one header plus
/// `max_packet` bytes of an unfinished packet besides the chunk being fed.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_packet: usize,
    failed: Option<ShellProtocolError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_PACKET)
    }
}

impl Decoder {
    /// A decoder accepting payloads of up to `max_packet` bytes.
    pub fn new(max_packet: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_packet,
            failed: None,
        }
    }

    /// Appends received bytes. Call [`Decoder::next_packet`] until it returns `Ok(None)`
    /// before feeding more, to keep the buffer small.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed. After an error the
    /// stream is unusable and every later call returns the same error.
    pub fn next_packet(&mut self) -> Result<Option<ShellPacket>, ShellProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let id = self.buf[0];
        let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let len_usize = len as usize;
        if len_usize > self.max_packet {
            let e = ShellProtocolError::TooLarge {
                len: u64::from(len),
                max: self.max_packet,
            };
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
            return Err(e);
        }
        if self.buf.len() < HEADER_LEN + len_usize {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let data = self.buf.split_to(len_usize).freeze();
        Ok(Some(ShellPacket { id, data }))
    }

    /// Bytes buffered but not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_arbitrary_splits() {
        let mut stream = BytesMut::new();
        encode_into(&mut stream, ID_STDOUT, b"hello");
        encode_into(&mut stream, ID_STDERR, b"");
        encode_into(&mut stream, ID_STDIN, &[7u8; 300]);
        stream.extend_from_slice(&encode_exit(259));
        let stream = stream.freeze();
        for step in [1usize, 2, 3, 5, 7, 64, 1000] {
            let mut d = Decoder::new(1024);
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                d.push(chunk);
                while let Some(p) = d.next_packet().unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(got.len(), 4, "step {step}");
            assert_eq!(got[0].id, ID_STDOUT);
            assert_eq!(&got[0].data[..], b"hello");
            assert_eq!(got[1].data.len(), 0);
            assert_eq!(got[2].data.len(), 300);
            assert_eq!(got[3].exit_code(), Some(3));
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn oversized_header_is_rejected_before_buffering() {
        let mut d = Decoder::new(16);
        d.push(&encode_header(ID_STDIN, 17));
        assert_eq!(
            d.next_packet(),
            Err(ShellProtocolError::TooLarge { len: 17, max: 16 })
        );
        d.push(&[0u8; 100]);
        assert_eq!(d.buffered(), 0);
        assert!(d.next_packet().is_err());
    }

    #[test]
    fn window_size() {
        let p = encode_window_size(24, 80, 640, 480);
        let w = parse_window_size(&p[HEADER_LEN..]).unwrap();
        assert_eq!((w.rows, w.cols, w.xpixels, w.ypixels), (24, 80, 640, 480));
        assert_eq!(parse_window_size(b"24x80"), None);
        assert_eq!(parse_window_size(b"ax80,1x1"), None);
    }
}
