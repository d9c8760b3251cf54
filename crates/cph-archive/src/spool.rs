//! The host-local spool of a staged archive: a temporary file and a reader that copies what
//! it reads into it.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A temporary file that is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct TempSpool {
    path: PathBuf,
}

impl TempSpool {
    /// Creates a new empty file in `dir` (which must exist), readable only by its owner.
    pub(crate) async fn create(dir: &Path) -> std::io::Result<(TempSpool, tokio::fs::File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for _ in 0..16 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".cph-archive-{}-{n}-{nanos:08x}.tar",
                std::process::id()
            ));
            let mut options = tokio::fs::OpenOptions::new();
            options.read(true).write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            match options.open(&path).await {
                Ok(file) => return Ok((TempSpool { path }, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "cannot create a unique spool file",
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempSpool {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove an archive spool");
        }
    }
}

/// Passes `inner`'s bytes through and writes each byte read into `out` before handing out more.
pub(crate) struct Tee<R, W> {
    inner: R,
    out: W,
    pending: Vec<u8>,
    written: usize,
    total: u64,
}

impl<R, W: AsyncWrite + Unpin> Tee<R, W> {
    pub(crate) fn new(inner: R, out: W) -> Self {
        Tee {
            inner,
            out,
            pending: Vec::new(),
            written: 0,
            total: 0,
        }
    }

    /// Writes what is still pending and flushes; returns the writer and the bytes copied.
    pub(crate) async fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.out.write_all(&self.pending[self.written..]).await?;
        self.out.flush().await?;
        Ok((self.out, self.total))
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.out).poll_write(cx, &self.pending[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> AsyncRead for Tee<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        this.pending.extend_from_slice(new);
        this.total += new.len() as u64;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn tee_copies_everything_read_and_spool_is_removed() {
        let dir = std::env::temp_dir();
        let (spool, file) = TempSpool::create(&dir).await.unwrap();
        let path = spool.path().to_path_buf();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut tee = Tee::new(&data[..], tokio::io::BufWriter::new(file));
        let mut seen = Vec::new();
        tee.read_to_end(&mut seen).await.unwrap();
        let (_, total) = tee.finish().await.unwrap();
        assert_eq!(total, data.len() as u64);
        assert_eq!(seen, data);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        drop(spool);
        assert!(!path.exists());
    }
}
