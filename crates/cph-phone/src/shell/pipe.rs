//! In-memory pipes between pipeline stages, and the hub that carries a pipeline's terminal
//! input and output through the thread that owns the real streams.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Bytes a pipe holds before its writer waits.
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// Bytes of output the hub holds before stage writers wait.
pub const HUB_CAPACITY: usize = 256 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct PipeState {
    data: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
}

struct PipeShared {
    state: Mutex<PipeState>,
    cv: Condvar,
}

/// The writing end: blocks while the pipe is full; `BrokenPipe` once the reader is gone.
pub struct PipeWriter(Arc<PipeShared>);

/// The reading end: blocks while the pipe is empty; end of file once the writer is gone.
pub struct PipeReader(Arc<PipeShared>);

/// A new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Arc::new(PipeShared {
        state: Mutex::new(PipeState::default()),
        cv: Condvar::new(),
    });
    (PipeWriter(shared.clone()), PipeReader(shared))
}

/// Closes a pipe from any thread, whichever end it came from: buffered bytes are dropped, the
/// reader sees end of file and the writer `BrokenPipe`, and both wake up at once.
#[derive(Clone)]
pub struct PipeCloser(Arc<PipeShared>);

impl PipeCloser {
    pub fn close(&self) {
        let mut st = lock(&self.0.state);
        st.writer_closed = true;
        st.reader_closed = true;
        st.data.clear();
        drop(st);
        self.0.cv.notify_all();
    }
}

impl PipeWriter {
    /// A handle that closes this pipe from elsewhere.
    pub fn closer(&self) -> PipeCloser {
        PipeCloser(self.0.clone())
    }
}

impl PipeReader {
    /// A handle that closes this pipe from elsewhere.
    pub fn closer(&self) -> PipeCloser {
        PipeCloser(self.0.clone())
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = lock(&self.0.state);
        loop {
            if st.reader_closed {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            if st.data.len() < PIPE_CAPACITY {
                break;
            }
            st = self.0.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let n = buf.len().min(PIPE_CAPACITY - st.data.len());
        st.data.extend(&buf[..n]);
        self.0.cv.notify_all();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        lock(&self.0.state).writer_closed = true;
        self.0.cv.notify_all();
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = lock(&self.0.state);
        loop {
            if !st.data.is_empty() {
                let n = buf.len().min(st.data.len());
                for (slot, b) in buf.iter_mut().zip(st.data.drain(..n)) {
                    *slot = b;
                }
                self.0.cv.notify_all();
                return Ok(n);
            }
            if st.writer_closed {
                return Ok(0);
            }
            st = self.0.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.reader_closed = true;
        st.data.clear();
        drop(st);
        self.0.cv.notify_all();
    }
}

/// Which real stream a hub chunk goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

#[derive(Default)]
struct HubState {
    chunks: VecDeque<(Stream, Vec<u8>)>,
    bytes: usize,
    broken_out: bool,
    broken_err: bool,
    /// A stage asked for up to this many bytes of input.
    want_input: Option<usize>,
    input: Option<io::Result<Vec<u8>>>,
    input_eof: bool,
    running: usize,
    aborted: bool,
}

/// Connects pipeline stages running on other threads to the streams of the thread that runs
/// the pipeline: stages write output chunks and ask for input; that thread moves the bytes
/// ([`Hub::pump`]).
pub struct Hub {
    state: Mutex<HubState>,
    cv: Condvar,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(HubState::default()),
            cv: Condvar::new(),
        })
    }

    /// Counts a stage as running (call before starting it).
    pub fn stage_started(&self) {
        lock(&self.state).running += 1;
    }

    /// Counts a stage as finished (call after its streams are dropped).
    pub fn stage_finished(&self) {
        let mut st = lock(&self.state);
        st.running = st.running.saturating_sub(1);
        drop(st);
        self.cv.notify_all();
    }

    /// Makes every further input read end and output write fail (a stage could not start).
    pub fn abort(&self) {
        lock(&self.state).aborted = true;
        self.cv.notify_all();
    }

    /// Moves bytes between the stages and the real streams until every stage has finished.
    pub fn pump(&self, stdin: &mut dyn Read, stdout: &mut dyn Write, stderr: &mut dyn Write) {
        let mut st = lock(&self.state);
        loop {
            if let Some((stream, chunk)) = st.chunks.pop_front() {
                st.bytes -= chunk.len();
                drop(st);
                self.cv.notify_all();
                let target: &mut dyn Write = match stream {
                    Stream::Out => &mut *stdout,
                    Stream::Err => &mut *stderr,
                };
                let ok = target
                    .write_all(&chunk)
                    .and_then(|_| target.flush())
                    .is_ok();
                st = lock(&self.state);
                if !ok {
                    match stream {
                        Stream::Out => st.broken_out = true,
                        Stream::Err => st.broken_err = true,
                    }
                    let before = st.chunks.len();
                    st.chunks.retain(|(s, _)| *s != stream);
                    if st.chunks.len() != before {
                        st.bytes = st.chunks.iter().map(|(_, c)| c.len()).sum();
                    }
                    self.cv.notify_all();
                }
                continue;
            }
            if let Some(n) = st.want_input.take() {
                drop(st);
                let mut buf = vec![0u8; n.clamp(1, PIPE_CAPACITY)];
                let result = loop {
                    match stdin.read(&mut buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other,
                    }
                };
                st = lock(&self.state);
                st.input = Some(result.map(|k| {
                    buf.truncate(k);
                    buf
                }));
                self.cv.notify_all();
                continue;
            }
            if st.running == 0 {
                return;
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A stage's writer into the hub.
pub struct HubWriter {
    pub hub: Arc<Hub>,
    pub stream: Stream,
}

impl Write for HubWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = lock(&self.hub.state);
        loop {
            let broken = match self.stream {
                Stream::Out => st.broken_out,
                Stream::Err => st.broken_err,
            };
            if broken || st.aborted {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            if st.bytes < HUB_CAPACITY {
                break;
            }
            st = self.hub.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let n = buf.len().min(HUB_CAPACITY - st.bytes).max(1).min(buf.len());
        st.bytes += n;
        st.chunks.push_back((self.stream, buf[..n].to_vec()));
        drop(st);
        self.hub.cv.notify_all();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The first stage's input, read on demand from the hub's thread.
pub struct HubReader {
    pub hub: Arc<Hub>,
}

impl Read for HubReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = lock(&self.hub.state);
        if st.input_eof || st.aborted {
            return Ok(0);
        }
        st.want_input = Some(buf.len());
        self.hub.cv.notify_all();
        loop {
            if let Some(result) = st.input.take() {
                return match result {
                    Ok(data) => {
                        if data.is_empty() {
                            st.input_eof = true;
                        }
                        let n = data.len().min(buf.len());
                        buf[..n].copy_from_slice(&data[..n]);
                        Ok(n)
                    }
                    Err(e) => Err(e),
                };
            }
            if st.aborted {
                return Ok(0);
            }
            st = self.hub.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_carries_bytes_and_reports_closed_ends() {
        let (mut w, mut r) = pipe();
        w.write_all(b"hello").unwrap();
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");

        let (mut w, r) = pipe();
        drop(r);
        assert_eq!(w.write(b"x").unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn full_pipe_blocks_until_read() {
        let (mut w, mut r) = pipe();
        let t = std::thread::spawn(move || {
            let data = vec![7u8; PIPE_CAPACITY * 3];
            w.write_all(&data).unwrap();
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got.len(), PIPE_CAPACITY * 3);
    }
}
