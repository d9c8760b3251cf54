//! The transport's unit: a 24-byte little-endian header and its payload.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const A_SYNC: u32 = 0x434e_5953;
pub const A_CNXN: u32 = 0x4e58_4e43;
pub const A_AUTH: u32 = 0x4854_5541;
pub const A_OPEN: u32 = 0x4e45_504f;
pub const A_OKAY: u32 = 0x5941_4b4f;
pub const A_CLSE: u32 = 0x4553_4c43;
pub const A_WRTE: u32 = 0x4554_5257;
pub const A_STLS: u32 = 0x534c_5453;

/// The original protocol version: payloads carry a byte-sum checksum.
pub const A_VERSION_MIN: u32 = 0x0100_0000;
/// Since Dec 2017: checksums may be zero.
pub const A_VERSION: u32 = 0x0100_0001;

/// Largest payload either side may use before CNXN is exchanged (and the banner's limit).
pub const MAX_PAYLOAD_V1: u32 = 4096;
/// Largest payload this implementation advertises and accepts.
pub const MAX_PAYLOAD: u32 = 1024 * 1024;

pub const AUTH_TOKEN: u32 = 1;
pub const AUTH_SIGNATURE: u32 = 2;
pub const AUTH_RSAPUBLICKEY: u32 = 3;
pub const TOKEN_SIZE: usize = 20;

pub const HEADER_LEN: usize = 24;

/// One transport message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub payload: Bytes,
}

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad magic for command {command:08x}")]
    BadMagic { command: u32 },
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u32, max: u32 },
}

/// The byte sum of a payload, as protocol version `0x01000000` requires.
pub fn checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |acc, b| acc.wrapping_add(u32::from(*b)))
}

/// Printable name of a command (`CNXN`, …) for logs.
pub fn command_name(command: u32) -> String {
    let b = command.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_uppercase()) {
        String::from_utf8_lossy(&b).into_owned()
    } else {
        format!("{command:08x}")
    }
}

impl Packet {
    pub fn new(command: u32, arg0: u32, arg1: u32, payload: impl Into<Bytes>) -> Self {
        Packet {
            command,
            arg0,
            arg1,
            payload: payload.into(),
        }
    }

    /// The 24-byte header; `with_checksum` fills `data_check` (needed below `A_VERSION`).
    pub fn header(&self, with_checksum: bool) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        let check = if with_checksum {
            checksum(&self.payload)
        } else {
            0
        };
        for (i, v) in [
            self.command,
            self.arg0,
            self.arg1,
            len,
            check,
            self.command ^ 0xffff_ffff,
        ]
        .into_iter()
        .enumerate()
        {
            h[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        h
    }

    /// Writes the packet (header and payload); does not flush.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        with_checksum: bool,
    ) -> std::io::Result<()> {
        w.write_all(&self.header(with_checksum)).await?;
        if !self.payload.is_empty() {
            w.write_all(&self.payload).await?;
        }
        Ok(())
    }

    /// Reads one packet. The header is checked (magic, `payload <= max_payload`) before any
    /// payload memory is allocated; the checksum is not verified (as adbd does not).
    pub async fn read_from<R: AsyncRead + Unpin>(
        r: &mut R,
        max_payload: u32,
    ) -> Result<Packet, PacketError> {
        let mut h = [0u8; HEADER_LEN];
        r.read_exact(&mut h).await?;
        let (command, arg0, arg1, len, magic) = parse_header(&h);
        if magic != command ^ 0xffff_ffff {
            return Err(PacketError::BadMagic { command });
        }
        if len > max_payload {
            return Err(PacketError::TooLarge {
                len,
                max: max_payload,
            });
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload).await?;
        Ok(Packet {
            command,
            arg0,
            arg1,
            payload: payload.into(),
        })
    }
}

/// (command, arg0, arg1, data_length, magic) of a raw header.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> (u32, u32, u32, u32, u32) {
    let f = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    (f(0), f(4), f(8), f(12), f(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let p = Packet::new(A_WRTE, 7, 9, &b"hello"[..]);
        let mut buf = Vec::new();
        p.write_to(&mut buf, true).await.unwrap();
        assert_eq!(buf.len(), HEADER_LEN + 5);
        assert_eq!(&buf[16..20], &checksum(b"hello").to_le_bytes());
        let q = Packet::read_from(&mut &buf[..], MAX_PAYLOAD).await.unwrap();
        assert_eq!(p, q);
        assert!(matches!(
            Packet::read_from(&mut &buf[..], 4).await,
            Err(PacketError::TooLarge { len: 5, max: 4 })
        ));
        buf[20] ^= 1;
        assert!(matches!(
            Packet::read_from(&mut &buf[..], MAX_PAYLOAD).await,
            Err(PacketError::BadMagic { .. })
        ));
        assert_eq!(command_name(A_CNXN), "CNXN");
    }
}
