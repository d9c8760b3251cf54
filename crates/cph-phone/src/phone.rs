//! A virtual phone as an ADB device: [`VirtualPhone`] implements [`cph_adb::Device`] over a
//! [`PhoneCore`].
//!
//! Commands run on the blocking thread pool (the shell and its commands are synchronous), with
//! their standard streams bridged to the ADB stream. An empty `shell:` command is an
//! interactive session: each line of input runs in one shell session; on a terminal (`pty`) a
//! small line editor echoes input and a prompt is printed, as mksh does.
//!
//! ADB's `tcp:<port>` service (`adb forward`) reaches the phone's socket table
//! ([`crate::net::PhoneNet`]): a port nobody listens on refuses the stream; otherwise the
//! in-phone connection is bridged to the endpoint through a bounded in-memory pipe, and closing
//! it from the endpoint closes the connection in both directions.

use crate::PhoneCore;
use cph_adb::{
    AdbPublicKey, Device, DeviceIdentity, DeviceSocket, ExecIo, ExecRequest, Invocation, SyncFs,
};
use futures::future::BoxFuture;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::io::SyncIoBridge;

/// Exit status reported when a command could not be started or its thread failed.
const EXIT_CANNOT_RUN: i32 = 126;
/// Longest line the interactive shell accepts.
const MAX_INTERACTIVE_LINE: usize = 64 * 1024;
/// Bytes buffered between an in-phone connection and the ADB endpoint, each direction.
const SOCKET_BRIDGE_CAPACITY: usize = 64 * 1024;

/// A phone served over ADB.
pub struct VirtualPhone {
    core: Arc<PhoneCore>,
    identity: DeviceIdentity,
    keys: Mutex<Arc<Vec<AdbPublicKey>>>,
    fs: Arc<dyn SyncFs>,
}

impl VirtualPhone {
    /// A phone with the given identity (banner) and allowed keys.
    pub fn new(core: Arc<PhoneCore>, identity: DeviceIdentity, keys: Vec<AdbPublicKey>) -> Self {
        let fs: Arc<dyn SyncFs> = Arc::new(SharedFs(core.clone()));
        VirtualPhone {
            core,
            identity,
            keys: Mutex::new(Arc::new(keys)),
            fs,
        }
    }

    pub fn core(&self) -> &Arc<PhoneCore> {
        &self.core
    }

    /// Replaces the allowed keys; new connections see the change at once.
    pub fn set_allowed_keys(&self, keys: Vec<AdbPublicKey>) {
        *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
    }
}

/// The phone's file system behind an `Arc<PhoneCore>`.
struct SharedFs(Arc<PhoneCore>);

impl SyncFs for SharedFs {
    fn stat(&self, path: &str) -> std::io::Result<cph_adb::FileStat> {
        SyncFs::stat(&self.0.fs, path)
    }
    fn lstat(&self, path: &str) -> std::io::Result<cph_adb::FileStat> {
        SyncFs::lstat(&self.0.fs, path)
    }
    fn list(&self, path: &str) -> std::io::Result<Vec<(String, cph_adb::FileStat)>> {
        SyncFs::list(&self.0.fs, path)
    }
    fn open_read(&self, path: &str) -> std::io::Result<Box<dyn Read + Send>> {
        SyncFs::open_read(&self.0.fs, path)
    }
    fn create_file(
        &self,
        path: &str,
        mode: u32,
    ) -> std::io::Result<Box<dyn cph_adb::SyncFileWriter>> {
        SyncFs::create_file(&self.0.fs, path, mode)
    }
    fn symlink(&self, target: &str, path: &str) -> std::io::Result<()> {
        SyncFs::symlink(&self.0.fs, target, path)
    }
}

impl Device for VirtualPhone {
    fn identity(&self) -> DeviceIdentity {
        self.identity.clone()
    }

    fn allowed_keys(&self) -> Arc<Vec<AdbPublicKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn exec(&self, request: ExecRequest, io: ExecIo) -> BoxFuture<'static, i32> {
        let core = self.core.clone();
        Box::pin(async move {
            // Dropping this future (the client went away, the phone stops) stops the command.
            let cancel = crate::shell::Cancel::new();
            let _stop_on_drop = CancelOnDrop(cancel.clone());
            let handle = tokio::runtime::Handle::current();
            let ExecIo {
                stdin,
                stdout,
                stderr,
            } = io;
            let job = tokio::task::spawn_blocking(move || {
                let mut stdin = SyncIoBridge::new_with_handle(stdin, handle.clone());
                let mut stdout = SyncIoBridge::new_with_handle(stdout, handle.clone());
                let mut stderr = SyncIoBridge::new_with_handle(stderr, handle);
                let status = match request.invocation {
                    Invocation::Command(line) if line.trim().is_empty() => interactive(
                        &core,
                        request.pty,
                        &cancel,
                        &mut stdin,
                        &mut stdout,
                        &mut stderr,
                    ),
                    Invocation::Command(line) => crate::shell::run_script_with(
                        &core,
                        &line,
                        &mut stdin,
                        &mut stdout,
                        &mut stderr,
                        &cancel,
                    ),
                    Invocation::Cmd(args) => {
                        let mut argv = Vec::with_capacity(args.len() + 1);
                        argv.push("cmd".to_string());
                        argv.extend(args);
                        crate::shell::run_argv_with(
                            &core,
                            &argv,
                            &mut stdin,
                            &mut stdout,
                            &mut stderr,
                            &cancel,
                        )
                    }
                };
                let _ = stdout.flush();
                let _ = stderr.flush();
                let _ = stdout.shutdown();
                let _ = stderr.shutdown();
                status
            });
            job.await.unwrap_or(EXIT_CANNOT_RUN)
        })
    }

    fn fs(&self) -> Arc<dyn SyncFs> {
        self.fs.clone()
    }

    fn reboot(&self, target: &str) -> BoxFuture<'static, ()> {
        let core = self.core.clone();
        let target = target.to_string();
        Box::pin(async move {
            core.control.request_reboot(&target);
        })
    }

    fn connect_tcp(&self, port: u16) -> BoxFuture<'static, std::io::Result<DeviceSocket>> {
        let core = self.core.clone();
        Box::pin(async move {
            let conn = core.net.connect(port)?;
            Ok(Box::new(bridge_conn(conn)) as DeviceSocket)
        })
    }
}

/// An in-phone connection as an async stream: one blocking task copies the phone's output
/// into a bounded in-memory pipe, another copies the pipe's other direction into the phone.
/// The phone's end of file reaches the reader. Dropping the stream closes the connection as a
/// socket's close does: the phone's further writes fail at once, and it reads what was written
/// before (for at most [`SOCKET_LINGER`] if it does not read) and then end of file.
fn bridge_conn(conn: crate::net::Conn) -> PhoneSocket {
    let crate::net::Conn { reader, writer } = conn;
    let from_phone = reader.closer();
    let to_phone = writer.closer();
    let delivered = Arc::new(AtomicBool::new(false));
    let (ours, theirs) = tokio::io::duplex(SOCKET_BRIDGE_CAPACITY);
    let (pipe_read, pipe_write) = tokio::io::split(theirs);
    let handle = tokio::runtime::Handle::current();
    let h = handle.clone();
    // Phone → endpoint. Ends at the phone's end of file, or when the endpoint is gone.
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut out = SyncIoBridge::new_with_handle(pipe_write, h);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = out.shutdown();
    });
    // Endpoint → phone. At the endpoint's end of input the phone reads end of file.
    let done = delivered.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        let mut input = SyncIoBridge::new_with_handle(pipe_read, handle);
        let _ = std::io::copy(&mut input, &mut writer);
        done.store(true, Ordering::SeqCst);
    });
    PhoneSocket {
        inner: ours,
        from_phone,
        to_phone,
        delivered,
    }
}

/// How long data written to an in-phone connection may wait for the phone to read it after the
/// endpoint closed the connection.
const SOCKET_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// The endpoint's side of an in-phone connection; dropping it closes the connection.
struct PhoneSocket {
    inner: tokio::io::DuplexStream,
    from_phone: crate::shell::pipe::PipeCloser,
    to_phone: crate::shell::pipe::PipeCloser,
    /// Everything written towards the phone reached its pipe, which then ended.
    delivered: Arc<AtomicBool>,
}

impl Drop for PhoneSocket {
    fn drop(&mut self) {
        // Nobody reads the phone's output any more.
        self.from_phone.close();
        if self.delivered.load(Ordering::SeqCst) {
            return;
        }
        // Data on its way to the phone gets a while to be read; then the pipe is torn down,
        // which also wakes a copying task stuck on a phone that never reads.
        let to_phone = self.to_phone.clone();
        let delivered = self.delivered.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let deadline = tokio::time::Instant::now() + SOCKET_LINGER;
                    while !delivered.load(Ordering::SeqCst)
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    if !delivered.load(Ordering::SeqCst) {
                        to_phone.close();
                    }
                });
            }
            Err(_) => to_phone.close(),
        }
    }
}

impl tokio::io::AsyncRead for PhoneSocket {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for PhoneSocket {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Sets a [`crate::shell::Cancel`] when dropped.
struct CancelOnDrop(crate::shell::Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The prompt of the interactive shell, as Android's shell prints it for root.
fn prompt(core: &PhoneCore, cwd: &str) -> String {
    let device = core
        .props
        .get("ro.product.device")
        .unwrap_or_else(|| "cloudphone".to_string());
    format!("{device}:{cwd} # ")
}

/// An interactive session: reads lines (echoing them back on a pty, with backspace handling),
/// runs each one, and ends at `exit`, end of input or Ctrl-D on an empty line.
fn interactive(
    core: &PhoneCore,
    pty: bool,
    cancel: &crate::shell::Cancel,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let mut session = crate::shell::Session::new(core);
    session.set_cancel(cancel);
    let mut status = 0;
    loop {
        // Like mksh, prompt only when talking to a terminal.
        if pty
            && (write!(stdout, "{}", prompt(core, session.cwd())).is_err()
                || stdout.flush().is_err())
        {
            return status;
        }
        let Some(line) = read_line(stdin, stdout, pty) else {
            return status;
        };
        if pty {
            // The terminal is raw: the device side translates its own newlines.
            let mut out = CrLf(stdout);
            let mut err = CrLf(stderr);
            status = session.run(&line, &mut std::io::empty(), &mut out, &mut err);
        } else {
            status = session.run(&line, &mut std::io::empty(), stdout, stderr);
        }
        if let Some(code) = session.exited() {
            return code;
        }
    }
}

/// Writes `\n` as `\r\n`, as a pty in cooked output mode does.
struct CrLf<'a>(&'a mut dyn Write);

impl Write for CrLf<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                self.0.write_all(&buf[start..i])?;
                self.0.write_all(b"\r\n")?;
                start = i + 1;
            }
        }
        self.0.write_all(&buf[start..])?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Reads one line. On a pty input is echoed, `\r` ends the line, DEL/backspace erase, Ctrl-C
/// drops the line and Ctrl-D on an empty line ends the session. `None` at end of input.
fn read_line(stdin: &mut dyn Read, echo: &mut dyn Write, pty: bool) -> Option<String> {
    let mut line: Vec<u8> = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stdin.read(&mut byte) {
            Ok(0) | Err(_) => {
                return if line.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&line).into_owned())
                };
            }
            Ok(_) => {}
        }
        let b = byte[0];
        if !pty {
            if b == b'\n' {
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            if line.len() < MAX_INTERACTIVE_LINE {
                line.push(b);
            }
            continue;
        }
        match b {
            b'\r' | b'\n' => {
                let _ = echo.write_all(b"\r\n");
                let _ = echo.flush();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            0x7f | 0x08 => {
                if line.pop().is_some() {
                    let _ = echo.write_all(b"\x08 \x08");
                }
            }
            0x03 => {
                line.clear();
                let _ = echo.write_all(b"^C\r\n");
                return Some(String::new());
            }
            0x04 if line.is_empty() => return None,
            _ => {
                if line.len() < MAX_INTERACTIVE_LINE {
                    line.push(b);
                    let _ = echo.write_all(&[b]);
                }
            }
        }
        let _ = echo.flush();
    }
}
