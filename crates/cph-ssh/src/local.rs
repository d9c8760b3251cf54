//! In-process targets: a tunnel whose destination runs in the gateway's own process.
//!
//! [`pair`] makes two connected ends. The policy hands the [`LocalStream`] end to the
//! destination (anything that serves an `AsyncRead + AsyncWrite`, e.g. a phone's ADB
//! endpoint) and returns the [`LocalTarget`] end as [`crate::Target::Local`]; the tunnel then
//! carries bytes without a socket: client packets are handed over as they are (no copy), and
//! what the destination writes is taken as it was written.
//!
//! Each direction is a queue of chunks bounded by a byte count (a write waits while the queue
//! holds that much; a single write is cut to the room left), so a slow side holds the other
//! back exactly as a full socket would. An empty queue keeps no buffer. Dropping or shutting
//! down an end's writing side is an end of file for the other end's reader; dropping an end's
//! reading side makes the other end's writes fail with `BrokenPipe`.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Default bytes queued in each direction ([`pair`]).
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// One direction: a bounded queue of chunks.
struct Queue {
    state: Mutex<QueueState>,
    capacity: usize,
}

struct QueueState {
    chunks: VecDeque<Bytes>,
    len: usize,
    /// The writer is gone or shut down: the reader sees end of file once the queue is empty.
    write_closed: bool,
    /// The reader is gone: writes fail.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Queue {
    fn new(capacity: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(QueueState {
                chunks: VecDeque::new(),
                len: 0,
                write_closed: false,
                read_closed: false,
                reader: None,
                writer: None,
            }),
            capacity: capacity.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Room for at least one byte, or the reader is gone.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut st = self.lock();
        if st.read_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if st.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if st.len >= self.capacity {
            st.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Ok(self.capacity - st.len))
    }

    /// Appends a chunk (the caller checked the room) and wakes the reader.
    fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let waker = {
            let mut st = self.lock();
            st.len += chunk.len();
            st.chunks.push_back(chunk);
            st.reader.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The next chunk, `None` at end of file.
    fn poll_chunk(&self, cx: &mut Context<'_>, most: usize) -> Poll<Option<Bytes>> {
        let (chunk, waker) = {
            let mut st = self.lock();
            let Some(front) = st.chunks.front_mut() else {
                if st.write_closed {
                    return Poll::Ready(None);
                }
                st.reader = Some(cx.waker().clone());
                return Poll::Pending;
            };
            let chunk = if front.len() <= most {
                st.chunks.pop_front().unwrap_or_default()
            } else {
                front.split_to(most)
            };
            st.len -= chunk.len();
            (chunk, st.writer.take())
        };
        if let Some(w) = waker {
            w.wake();
        }
        Poll::Ready(Some(chunk))
    }

    fn close_write(&self) {
        let waker = {
            let mut st = self.lock();
            st.write_closed = true;
            st.reader.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close_read(&self) {
        let waker = {
            let mut st = self.lock();
            st.read_closed = true;
            st.chunks.clear();
            st.len = 0;
            st.writer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Two connected ends, each direction holding at most `capacity` bytes.
pub fn pair(capacity: usize) -> (LocalTarget, LocalStream) {
    let up = Queue::new(capacity);
    let down = Queue::new(capacity);
    (
        LocalTarget {
            reader: LocalReader {
                queue: down.clone(),
            },
            writer: LocalWriter { queue: up.clone() },
        },
        LocalStream {
            reader: LocalStreamReader { up },
            writer: LocalStreamWriter { down },
        },
    )
}

/// The gateway's end of an in-process target (see the module documentation).
pub struct LocalTarget {
    reader: LocalReader,
    writer: LocalWriter,
}

impl std::fmt::Debug for LocalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalTarget")
    }
}

impl LocalTarget {
    pub(crate) fn into_split(self) -> (LocalReader, LocalWriter) {
        (self.reader, self.writer)
    }
}

/// What the destination wrote, chunk by chunk.
pub(crate) struct LocalReader {
    queue: Arc<Queue>,
}

impl LocalReader {
    /// The next chunk the destination wrote; `None` once it closed its writing side.
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        poll_fn(|cx| self.queue.poll_chunk(cx, usize::MAX)).await
    }
}

impl Drop for LocalReader {
    fn drop(&mut self) {
        self.queue.close_read();
    }
}

/// The way to the destination.
pub(crate) struct LocalWriter {
    queue: Arc<Queue>,
}

impl LocalWriter {
    /// Hands `data` over (without copying), waiting while the queue is full; fails once the
    /// destination is gone.
    pub(crate) async fn send(&mut self, mut data: Bytes) -> io::Result<()> {
        while !data.is_empty() {
            let room = poll_fn(|cx| self.queue.poll_room(cx)).await?;
            let chunk = if data.len() <= room {
                std::mem::take(&mut data)
            } else {
                data.split_to(room)
            };
            self.queue.push(chunk);
        }
        Ok(())
    }

    /// End of file for the destination.
    pub(crate) fn shutdown(&mut self) {
        self.queue.close_write();
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        self.queue.close_write();
    }
}

/// The destination's end: a byte stream like a socket. [`LocalStream::into_split`] gives its
/// two halves; the reading half also hands over the chunks as they were queued, without
/// copying (as a [`futures::Stream`]).
pub struct LocalStream {
    reader: LocalStreamReader,
    writer: LocalStreamWriter,
}

impl std::fmt::Debug for LocalStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalStream")
    }
}

impl LocalStream {
    /// The reading and the writing half; dropping either is what dropping that side of the
    /// whole stream would be.
    pub fn into_split(self) -> (LocalStreamReader, LocalStreamWriter) {
        (self.reader, self.writer)
    }
}

/// What the gateway sends the destination: readable as bytes or, without a copy, as the
/// chunks the client's packets arrived in (a `Stream` that ends at end of file).
pub struct LocalStreamReader {
    up: Arc<Queue>,
}

/// The destination's way back to the gateway.
pub struct LocalStreamWriter {
    down: Arc<Queue>,
}

impl Drop for LocalStreamReader {
    fn drop(&mut self) {
        self.up.close_read();
    }
}

impl Drop for LocalStreamWriter {
    fn drop(&mut self) {
        self.down.close_write();
    }
}

impl futures::Stream for LocalStreamReader {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.up.poll_chunk(cx, usize::MAX).map(|c| c.map(Ok))
    }
}

impl AsyncRead for LocalStreamReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        match self.up.poll_chunk(cx, buf.remaining()) {
            Poll::Ready(Some(chunk)) => {
                buf.put_slice(&chunk);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(None) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for LocalStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for LocalStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

impl AsyncWrite for LocalStreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = match self.down.poll_room(cx) {
            Poll::Ready(Ok(room)) => room,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        let n = buf.len().min(room);
        self.down.push(Bytes::copy_from_slice(&buf[..n]));
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let room = match self.down.poll_room(cx) {
            Poll::Ready(Ok(room)) => room,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        // One chunk for the whole write (an ADB header and its payload travel together).
        let n = total.min(room);
        let mut chunk = BytesMut::with_capacity(n);
        for b in bufs {
            let k = b.len().min(n - chunk.len());
            chunk.extend_from_slice(&b[..k]);
            if chunk.len() == n {
                break;
            }
        }
        self.down.push(chunk.freeze());
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.down.close_write();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_both_ways_and_end_of_file_is_passed_on() {
        let (target, mut stream) = pair(1024);
        let (mut r, mut w) = target.into_split();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for c in sent.chunks(3000) {
                w.send(Bytes::copy_from_slice(c)).await.unwrap();
            }
            w.shutdown();
        });
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, data);

        stream.write_all(b"reply").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut back = Vec::new();
        while let Some(c) = r.recv().await {
            back.extend_from_slice(&c);
        }
        assert_eq!(back, b"reply");
    }

    #[tokio::test]
    async fn the_split_reader_hands_over_the_sent_chunks_themselves() {
        use futures::StreamExt;
        let (target, stream) = pair(1 << 20);
        let (mut r, mut w) = target.into_split();
        let (mut rx, mut tx) = stream.into_split();
        let sent: Vec<Bytes> = (0..4u8).map(|i| Bytes::from(vec![i; 1000])).collect();
        for c in &sent {
            w.send(c.clone()).await.unwrap();
        }
        w.shutdown();
        let mut got = Vec::new();
        while let Some(c) = rx.next().await {
            got.push(c.unwrap());
        }
        assert_eq!(got, sent);
        for (g, s) in got.iter().zip(&sent) {
            assert_eq!(g.as_ptr(), s.as_ptr(), "a chunk was copied");
        }
        // The writing half still works after the split, and dropping it is end of file.
        tx.write_all(b"back").await.unwrap();
        drop(tx);
        let mut back = Vec::new();
        while let Some(c) = r.recv().await {
            back.extend_from_slice(&c);
        }
        assert_eq!(back, b"back");
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_writer_back() {
        let (target, mut stream) = pair(4096);
        let (_r, mut w) = target.into_split();
        w.send(Bytes::from(vec![1u8; 4096])).await.unwrap();
        let more = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            w.send(Bytes::from_static(b"x")),
        )
        .await;
        assert!(more.is_err(), "a write into a full queue must wait");
        let mut buf = vec![0u8; 4096];
        stream.read_exact(&mut buf).await.unwrap();
        w.send(Bytes::from_static(b"x")).await.unwrap();
        let mut one = [0u8; 1];
        stream.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"x");
    }

    #[tokio::test]
    async fn a_dropped_end_breaks_writes_and_ends_reads() {
        let (target, mut stream) = pair(1024);
        let (r, mut w) = target.into_split();
        drop(r);
        let e = stream.write_all(b"lost").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        drop(stream);
        let e = w.send(Bytes::from_static(b"lost")).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);

        let (target, mut stream) = pair(1024);
        drop(target);
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
    }
}
