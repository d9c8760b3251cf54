//! Where the device endpoint reads its packets from.
//!
//! A socket's bytes are read into one buffer per payload ([`SocketReader`]). A connection
//! made in this process ([`InProcessConnection`], e.g. an SSH gateway's tunnel) already holds
//! what it received as `Bytes` chunks; [`ChunkReader`] takes a payload's bytes out of those
//! chunks as they are, without copying them (a `WRTE`'s payload then reaches the stream's
//! reader as the pieces it arrived in).
//!
//! Sharing is bounded: a piece shares its chunk's memory only when it holds at least half of
//! that chunk, so a buffered byte never pins more than about two; smaller pieces are copied.
//! A payload that would be cut into more pieces than one per [`MIN_AVG_PIECE`] bytes (a peer
//! that sends tiny chunks) is copied into one buffer instead, so the per-piece overhead stays
//! a small fraction of the payload.

use crate::packet::{HEADER_LEN, PacketError, parse_header};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::future::Future;
use std::io;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, BufReader, ReadHalf};
use tokio_util::io::ReaderStream;

/// A payload may be cut into at most one piece per this many bytes (plus two for its ends).
pub(crate) const MIN_AVG_PIECE: usize = 4096;
/// Read size of [`InProcessConnection::from_io`].
const FROM_IO_CHUNK: usize = 64 * 1024;
/// Read buffer of a socket connection.
const SOCKET_BUFFER: usize = 64 * 1024;

/// A checked packet header whose payload has not been read yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub command: u32,
    pub arg0: u32,
    pub arg1: u32,
    pub len: usize,
}

impl Header {
    /// Checks the magic and `len <= max`.
    fn parse(h: &[u8; HEADER_LEN], max: u32) -> Result<Header, PacketError> {
        let (command, arg0, arg1, len, magic) = parse_header(h);
        if magic != command ^ 0xffff_ffff {
            return Err(PacketError::BadMagic { command });
        }
        if len > max {
            return Err(PacketError::TooLarge { len, max });
        }
        Ok(Header {
            command,
            arg0,
            arg1,
            len: len as usize,
        })
    }
}

/// A received payload: one buffer, or the pieces it arrived in.
#[derive(Debug)]
pub(crate) enum Payload {
    Whole(Bytes),
    Pieces(Vec<Bytes>),
}

impl Payload {
    /// The payload as one buffer (pieces are joined).
    pub(crate) fn into_bytes(self) -> Bytes {
        match self {
            Payload::Whole(b) => b,
            Payload::Pieces(mut pieces) if pieces.len() == 1 => pieces.pop().unwrap_or_default(),
            Payload::Pieces(pieces) => {
                let len = pieces.iter().map(Bytes::len).sum();
                let mut out = BytesMut::with_capacity(len);
                for p in &pieces {
                    out.extend_from_slice(p);
                }
                out.freeze()
            }
        }
    }

    /// The payload's non-empty pieces, in order.
    pub(crate) fn into_pieces(self) -> Vec<Bytes> {
        match self {
            Payload::Whole(b) if b.is_empty() => Vec::new(),
            Payload::Whole(b) => vec![b],
            Payload::Pieces(pieces) => pieces,
        }
    }
}

/// A connection's packet source.
pub(crate) trait PacketRead: Send {
    /// Reads and checks one header (magic, `len <= max`).
    fn read_header(&mut self, max: u32)
    -> impl Future<Output = Result<Header, PacketError>> + Send;

    /// Reads the payload of a checked header.
    fn read_payload(
        &mut self,
        len: usize,
    ) -> impl Future<Output = Result<Payload, PacketError>> + Send;
}

/// A byte stream's packets: each payload is read into a buffer of its own.
pub(crate) struct SocketReader<R> {
    r: BufReader<R>,
}

impl<R: AsyncRead + Send + Unpin> SocketReader<R> {
    pub(crate) fn new(r: R) -> SocketReader<R> {
        SocketReader {
            r: BufReader::with_capacity(SOCKET_BUFFER, r),
        }
    }
}

impl<R: AsyncRead + Send + Unpin> PacketRead for SocketReader<R> {
    async fn read_header(&mut self, max: u32) -> Result<Header, PacketError> {
        let mut h = [0u8; HEADER_LEN];
        self.r.read_exact(&mut h).await?;
        Header::parse(&h, max)
    }

    /// Reads without zero-filling the buffer first (large reads bypass the read buffer).
    async fn read_payload(&mut self, len: usize) -> Result<Payload, PacketError> {
        let mut payload = BytesMut::with_capacity(len);
        while payload.len() < len {
            let want = (len - payload.len()) as u64;
            let n = (&mut self.r).take(want).read_buf(&mut payload).await?;
            if n == 0 {
                return Err(PacketError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(Payload::Whole(payload.freeze()))
    }
}

/// Received chunks, boxed.
type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// An in-process connection's packets, cut out of the chunks it received (see the module
/// documentation).
pub(crate) struct ChunkReader {
    src: ChunkStream,
    /// What is left of the current chunk.
    cur: Bytes,
    /// The length of the chunk `cur` was cut from.
    cur_whole: usize,
}

impl ChunkReader {
    pub(crate) fn new(src: ChunkStream) -> ChunkReader {
        ChunkReader {
            src,
            cur: Bytes::new(),
            cur_whole: 0,
        }
    }

    /// Makes `cur` non-empty; end of file is an error (a packet is incomplete).
    async fn refill(&mut self) -> Result<(), PacketError> {
        while self.cur.is_empty() {
            match self.src.next().await {
                Some(Ok(chunk)) => {
                    self.cur_whole = chunk.len();
                    self.cur = chunk;
                }
                Some(Err(e)) => return Err(PacketError::Io(e)),
                None => return Err(PacketError::Io(io::ErrorKind::UnexpectedEof.into())),
            }
        }
        Ok(())
    }
}

impl PacketRead for ChunkReader {
    async fn read_header(&mut self, max: u32) -> Result<Header, PacketError> {
        let mut h = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            self.refill().await?;
            let k = (HEADER_LEN - filled).min(self.cur.len());
            h[filled..filled + k].copy_from_slice(&self.cur.split_to(k));
            filled += k;
        }
        Header::parse(&h, max)
    }

    async fn read_payload(&mut self, len: usize) -> Result<Payload, PacketError> {
        let max_pieces = 2 + len / MIN_AVG_PIECE;
        let mut pieces: Vec<Bytes> = Vec::new();
        let mut got = 0;
        while got < len {
            self.refill().await?;
            let k = (len - got).min(self.cur.len());
            let piece = self.cur.split_to(k);
            got += k;
            if pieces.len() == max_pieces {
                // Too many small pieces: the rest is copied into one buffer.
                let mut whole = BytesMut::with_capacity(len);
                for p in pieces.drain(..) {
                    whole.extend_from_slice(&p);
                }
                whole.extend_from_slice(&piece);
                while whole.len() < len {
                    self.refill().await?;
                    let k = (len - whole.len()).min(self.cur.len());
                    whole.extend_from_slice(&self.cur.split_to(k));
                }
                return Ok(Payload::Whole(whole.freeze()));
            }
            pieces.push(if piece.len() * 2 >= self.cur_whole {
                piece
            } else {
                Bytes::copy_from_slice(&piece)
            });
        }
        Ok(Payload::Pieces(pieces))
    }
}

/// A connection made in this process, served by [`crate::device::Endpoint::attach`]: what it
/// received, as a stream of chunks, and where replies go.
///
/// The endpoint keeps the chunks' memory where it can (see the [module
/// documentation](self)): a chunk should be its own allocation, not a small slice of a much
/// larger buffer.
pub struct InProcessConnection {
    pub(crate) rx: ChunkStream,
    pub(crate) tx: Pin<Box<dyn AsyncWrite + Send>>,
}

impl std::fmt::Debug for InProcessConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessConnection")
    }
}

impl InProcessConnection {
    /// A connection from its received chunks (`None` at end of file; an error ends the
    /// connection) and its writing side.
    pub fn new<S, W>(rx: S, tx: W) -> InProcessConnection
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        InProcessConnection {
            rx: Box::pin(rx),
            tx: Box::pin(tx),
        }
    }

    /// A connection over any byte stream (its bytes are read in chunks of up to 64 KiB).
    pub fn from_io<S>(io: S) -> InProcessConnection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w): (ReadHalf<S>, _) = tokio::io::split(io);
        InProcessConnection::new(ReaderStream::with_capacity(r, FROM_IO_CHUNK), w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn reader(chunks: Vec<Bytes>) -> ChunkReader {
        ChunkReader::new(Box::pin(stream::iter(chunks.into_iter().map(Ok))))
    }

    fn header(command: u32, len: u32) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        for v in [command, 1, 2, len, 0, command ^ 0xffff_ffff] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    #[tokio::test]
    async fn payload_pieces_share_the_chunks_they_fill() {
        let a = Bytes::from(vec![1u8; 32 * 1024]);
        let b = Bytes::from(vec![2u8; 32 * 1024]);
        let mut first = header(crate::packet::A_WRTE, 64 * 1024 + 100);
        first.extend_from_slice(&[0u8; 100]);
        let tail = Bytes::from(first);
        let mut r = reader(vec![tail, a.clone(), b.clone()]);
        let h = r.read_header(1 << 20).await.unwrap();
        assert_eq!(h.len, 64 * 1024 + 100);
        let pieces = r.read_payload(h.len).await.unwrap().into_pieces();
        assert_eq!(pieces.len(), 3);
        // The 100 bytes after the header are most of their chunk: kept as they are; the two
        // full chunks are the very same memory.
        assert_eq!(pieces[1].as_ptr(), a.as_ptr());
        assert_eq!(pieces[2].as_ptr(), b.as_ptr());
        assert_eq!(pieces.iter().map(Bytes::len).sum::<usize>(), h.len);
    }

    #[tokio::test]
    async fn a_small_cut_of_a_large_chunk_is_copied() {
        // Header and 10 payload bytes, then the next packet's header, in one 64 KiB chunk.
        let mut c = header(crate::packet::A_WRTE, 10);
        c.extend_from_slice(&[7u8; 10]);
        c.extend_from_slice(&header(crate::packet::A_OKAY, 0));
        c.resize(64 * 1024, 0);
        let chunk = Bytes::from(c);
        let mut r = reader(vec![chunk.clone()]);
        let h = r.read_header(1 << 20).await.unwrap();
        let pieces = r.read_payload(h.len).await.unwrap().into_pieces();
        assert_eq!(pieces, vec![Bytes::from(vec![7u8; 10])]);
        let base = chunk.as_ptr() as usize..chunk.as_ptr() as usize + chunk.len();
        assert!(!base.contains(&(pieces[0].as_ptr() as usize)));
        assert_eq!(
            r.read_header(1 << 20).await.unwrap().command,
            crate::packet::A_OKAY
        );
    }

    #[tokio::test]
    async fn tiny_chunks_make_one_buffer() {
        let len = 64 * 1024;
        let mut chunks: Vec<Bytes> = header(crate::packet::A_WRTE, len as u32)
            .into_iter()
            .map(|b| Bytes::from(vec![b]))
            .collect();
        chunks.extend((0..len).map(|i| Bytes::from(vec![(i % 251) as u8])));
        let mut r = reader(chunks);
        let h = r.read_header(1 << 20).await.unwrap();
        let p = r.read_payload(h.len).await.unwrap();
        assert!(matches!(p, Payload::Whole(_)), "{p:?}");
        let data = p.into_bytes();
        assert_eq!(data.len(), len);
        assert!(data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }

    #[tokio::test]
    async fn a_truncated_packet_is_an_error_and_bad_headers_are_refused() {
        let mut r = reader(vec![Bytes::from(header(crate::packet::A_WRTE, 10))]);
        let h = r.read_header(1 << 20).await.unwrap();
        assert!(matches!(
            r.read_payload(h.len).await,
            Err(PacketError::Io(_))
        ));
        let mut bad = header(crate::packet::A_WRTE, 10);
        bad[20] ^= 1;
        let mut r = reader(vec![Bytes::from(bad)]);
        assert!(matches!(
            r.read_header(1 << 20).await,
            Err(PacketError::BadMagic { .. })
        ));
        let mut r = reader(vec![Bytes::from(header(crate::packet::A_WRTE, 5000))]);
        assert!(matches!(
            r.read_header(4096).await,
            Err(PacketError::TooLarge { .. })
        ));
    }
}
