//! Request and response bodies with bounded buffering and idle timeouts.
//!
//! - [`ReqBody`]: an empty body, a small in-memory body (XML), or a body fed through a channel
//!   of at most [`CHANNEL_CHUNKS`] chunks of at most [`CHUNK`] bytes by [`pump`], which reads
//!   exactly the declared number of bytes from the caller's reader. An upload therefore holds at
//!   most a few hundred KiB in memory, whatever its size.
//! - [`BodyReader`]: a response body as an [`AsyncRead`] that delivers exactly the
//!   `Content-Length` it announced and fails when no data arrives for the idle timeout.
//! - [`read_small`]: a whole response body of at most a given size (error documents, XML
//!   results).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, Sleep};

use crate::error::S3Error;

/// Size of one chunk of a streamed upload.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Chunks queued between the reader and the connection.
pub(crate) const CHANNEL_CHUNKS: usize = 4;

/// The body of a request.
pub(crate) enum ReqBody {
    /// No body.
    Empty,
    /// A small body held in memory.
    Full(Option<Bytes>),
    /// A streamed body of a known length.
    Channel {
        rx: mpsc::Receiver<io::Result<Bytes>>,
        remaining: u64,
    },
}

impl ReqBody {
    /// A streamed body of `len` bytes and the sender [`pump`] feeds it through.
    pub(crate) fn channel(len: u64) -> (ReqBody, mpsc::Sender<io::Result<Bytes>>) {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        (ReqBody::Channel { rx, remaining: len }, tx)
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Channel { rx, remaining } => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => {
                    *remaining = remaining.saturating_sub(b.len() as u64);
                    Poll::Ready(Some(Ok(Frame::data(b))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) if *remaining > 0 => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upload ended early",
                )))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Channel { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Channel { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// How a [`pump`] ended.
pub(crate) enum Pumped {
    /// All bytes were handed to the connection.
    All,
    /// The connection stopped taking the body (it failed, or the endpoint answered early);
    /// the response tells why.
    Closed,
}

/// Reads exactly `len` bytes from `reader` into the body channel. Every read of the reader and
/// every hand-over to the connection must complete within `idle`.
pub(crate) async fn pump<R>(
    reader: &mut R,
    tx: mpsc::Sender<io::Result<Bytes>>,
    len: u64,
    idle: Duration,
    host: &str,
) -> Result<Pumped, S3Error>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let mut buf = BytesMut::with_capacity(want);
        let n = match tokio::time::timeout(idle, reader.read_buf(&mut (&mut buf).limit(want))).await
        {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(S3Error::Body(e)),
            Err(_) => {
                return Err(S3Error::Body(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "reading the body timed out",
                )));
            }
        };
        if n == 0 {
            return Err(S3Error::Body(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the body ended after {} of {len} bytes",
                    len.saturating_sub(left)
                ),
            )));
        }
        left -= n as u64;
        match tokio::time::timeout(idle, tx.send(Ok(buf.freeze()))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Ok(Pumped::Closed),
            Err(_) => {
                return Err(S3Error::Unreachable {
                    host: host.to_owned(),
                    reason: format!(
                        "the upload stalled: no data was taken for {}s",
                        idle.as_secs()
                    ),
                });
            }
        }
    }
    Ok(Pumped::All)
}

/// A response body as an [`AsyncRead`] of exactly `len` bytes.
///
/// Fails with [`io::ErrorKind::TimedOut`] when no data arrives for the idle timeout, with
/// [`io::ErrorKind::UnexpectedEof`] when the body ends early and with
/// [`io::ErrorKind::InvalidData`] when it carries more than announced. Dropping the reader
/// before the end closes the connection.
pub struct BodyReader {
    body: Incoming,
    chunk: Bytes,
    remaining: u64,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    /// Whether the reader is waiting for the endpoint (the deadline runs only then).
    waiting: bool,
    host: String,
    /// The endpoint's request slot, held until the reader is dropped.
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("host", &self.host)
            .field("remaining", &(self.remaining + self.chunk.len() as u64))
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    pub(crate) fn new(
        body: Incoming,
        len: u64,
        idle: Duration,
        host: &str,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        BodyReader {
            body,
            chunk: Bytes::new(),
            remaining: len,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            host: host.to_owned(),
            _slot: slot,
        }
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining + self.chunk.len() as u64
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.remaining == 0 {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.waiting = false;
                    if let Ok(data) = frame.into_data() {
                        if data.len() as u64 > this.remaining {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{} sent more than its Content-Length", this.host),
                            )));
                        }
                        this.remaining -= data.len() as u64;
                        this.chunk = data;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("reading from {}: {}", this.host, chain(&e)),
                    )));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ended the object {} bytes early",
                            this.host, this.remaining
                        ),
                    )));
                }
                Poll::Pending => {
                    // The idle time counts from when the reader started waiting, not from
                    // the last data (the consumer may have been slow meanwhile).
                    if !this.waiting {
                        this.waiting = true;
                        this.deadline.as_mut().reset(Instant::now() + this.idle);
                    }
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("{} sent no data for {}s", this.host, this.idle.as_secs()),
                        )));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The whole body of a response, at most `max` bytes (more is an error), each frame within
/// `idle`.
pub(crate) async fn read_small(
    mut body: Incoming,
    max: usize,
    idle: Duration,
    host: &str,
) -> Result<Bytes, S3Error> {
    use http_body_util::BodyExt;
    let mut out = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(e))) => {
                return Err(S3Error::Unreachable {
                    host: host.to_owned(),
                    reason: format!("reading the response: {}", chain(&e)),
                });
            }
            Err(_) => {
                return Err(S3Error::Unreachable {
                    host: host.to_owned(),
                    reason: format!("the response stalled for {}s", idle.as_secs()),
                });
            }
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(S3Error::Protocol {
                    host: host.to_owned(),
                    reason: format!("the response is longer than {max} bytes"),
                });
            }
            out.extend_from_slice(&data);
        }
    }
}

/// An error and its sources, joined by `: ` (bounded).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
        depth += 1;
        if depth >= 8 {
            break;
        }
    }
    crate::client::bounded(s, 300)
}
