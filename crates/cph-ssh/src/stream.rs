//! A byte stream that can be cut from outside.
//!
//! The SSH protocol engine owns a connection's socket for its whole life and has states (a
//! key exchange, a blocked write) in which it does not look at requests to disconnect. To
//! bound every session's life regardless, its socket is wrapped: once the kill token fires,
//! every pending and future read or write fails with `ConnectionAborted`, the engine ends,
//! and the socket is closed. Reads and writes wait on separate token futures, so each has its
//! own wake-up registration whichever task polls it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pub(crate) struct Killable<S> {
    inner: S,
    read_kill: Pin<Box<WaitForCancellationFutureOwned>>,
    write_kill: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> Killable<S> {
    pub(crate) fn new(inner: S, kill: &CancellationToken) -> Self {
        Killable {
            inner,
            read_kill: Box::pin(kill.clone().cancelled_owned()),
            write_kill: Box::pin(kill.clone().cancelled_owned()),
        }
    }
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by the gateway",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.write_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.write_kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn kill_wakes_a_pending_read_and_fails_writes() {
        let (a, mut b) = tokio::io::duplex(64);
        let kill = CancellationToken::new();
        let mut k = Killable::new(a, &kill);
        k.write_all(b"hi").await.unwrap();
        let mut got = [0u8; 2];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");

        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let r = k.read(&mut buf).await;
            (r.map_err(|e| e.kind()), k)
        });
        tokio::task::yield_now().await;
        kill.cancel();
        let (r, mut k) = tokio::time::timeout(std::time::Duration::from_secs(5), reader)
            .await
            .expect("read woke up")
            .unwrap();
        assert_eq!(r, Err(io::ErrorKind::ConnectionAborted));
        assert_eq!(
            k.write_all(b"x").await.map_err(|e| e.kind()),
            Err(io::ErrorKind::ConnectionAborted)
        );
        drop(b);
    }
}
