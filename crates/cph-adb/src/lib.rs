//! Both sides of the Android Debug Bridge protocol over TCP.
//!
//! - [`device`]: the device endpoint (what `adbd` does): CNXN/AUTH handshake against an
//!   allow-list of keys, streams with flow control, and the services stock clients use
//!   (`shell`, shell protocol v2, `exec`, `sync`, streamed install through `exec:cmd package` and
//!   `abb_exec:`, `reboot`, `root`/`unroot`, `remount`, and `tcp:<port>` for `adb forward`).
//!   What a command *does*, and what listens on a device port, is up to the [`Device`] the
//!   endpoint serves: this crate only speaks the protocol.
//! - [`client`]: the host side, used by the control plane to run commands on any phone (virtual
//!   or a real adbd) with timeouts on every wait.
//!
//! Nothing here knows about cloud phones, the store or HTTP.

pub mod client;
pub mod device;
pub mod keys;
pub mod packet;
pub mod shell_protocol;
pub mod sync;
mod transport;

use futures::future::BoxFuture;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

pub use keys::{AdbPrivateKey, AdbPublicKey};

/// What a device announces in its CNXN banner (`adb devices -l` shows these three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// `ro.product.name`
    pub product_name: String,
    /// `ro.product.model`
    pub model: String,
    /// `ro.product.device`
    pub device: String,
}

/// What a client asked a device to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A command line from `shell:`, `shell,v2,…:` or `exec:`, to be run as `sh -c <line>`.
    /// The line is passed exactly as received (clients shell-quote arguments).
    /// An empty line asks for an interactive shell.
    Command(String),
    /// An `abb_exec:` call: the arguments of `cmd` (e.g. `["package", "install", "-S", "42"]`),
    /// already split at NULs.
    Cmd(Vec<String>),
}

/// How a command was requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub invocation: Invocation,
    /// `pty` was asked for (or implied by an empty `shell:` command).
    pub pty: bool,
    /// `TERM=` from the service arguments, if any.
    pub term: Option<String>,
}

/// The streams of a running command. `stdin` reaches end-of-file when the client closes stdin
/// (shell protocol) or the stream. Without the shell protocol `stdout` and `stderr` write to
/// the same stream, as adbd merges them.
pub struct ExecIo {
    pub stdin: Box<dyn AsyncRead + Send + Unpin>,
    pub stdout: Box<dyn AsyncWrite + Send + Unpin>,
    pub stderr: Box<dyn AsyncWrite + Send + Unpin>,
}

/// A byte stream to a socket inside the device.
pub trait DeviceStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> DeviceStream for T {}

/// A connection to a socket listening inside the device, as the `tcp:` service opens it.
/// Reading gives what the device side sends (end of file once it closed its side); writing
/// sends to it. Dropping the connection closes it in both directions.
pub type DeviceSocket = Box<dyn DeviceStream>;

/// File metadata as the sync protocol carries it (`sync_stat_v2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    /// Type and permission bits, as `st_mode` (`0o100644` for a regular file).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

/// A file being received by `SEND`/`SND2`. Bytes go through [`std::io::Write`], mostly as
/// vectored writes of the pieces they arrived in (implement `write_vectored` when the target
/// has a cheaper path than one `write` per piece); the file appears at its path only when
/// [`SyncFileWriter::finish`] succeeds. Dropping the writer without finishing discards it.
pub trait SyncFileWriter: io::Write + Send {
    fn finish(self: Box<Self>, mtime: i64) -> io::Result<()>;
}

/// The device's file system as the sync service sees it. Paths are absolute device paths as
/// the client sent them; the implementation resolves them inside its sandbox. Errors should
/// carry an OS error number where one applies (`io::Error::from_raw_os_error`), or at least a
/// meaningful [`io::ErrorKind`]; the endpoint reports them as errno values.
/// Methods block (they touch the disk); the endpoint calls them off the async threads.
pub trait SyncFs: Send + Sync + 'static {
    /// `stat` (follows symbolic links).
    fn stat(&self, path: &str) -> io::Result<FileStat>;
    /// `lstat` (does not follow a final symbolic link).
    fn lstat(&self, path: &str) -> io::Result<FileStat>;
    /// The entries of a directory with their `lstat`, excluding `.` and `..`.
    fn list(&self, path: &str) -> io::Result<Vec<(String, FileStat)>>;
    /// Opens a regular file for reading.
    fn open_read(&self, path: &str) -> io::Result<Box<dyn io::Read + Send>>;
    /// Starts receiving a regular file; missing parent directories are created.
    fn create_file(&self, path: &str, mode: u32) -> io::Result<Box<dyn SyncFileWriter>>;
    /// Creates (or replaces) a symbolic link at `path` pointing to `target`.
    fn symlink(&self, target: &str, path: &str) -> io::Result<()>;
}

/// A device an endpoint serves: its identity, who may connect, and what its commands do.
pub trait Device: Send + Sync + 'static {
    fn identity(&self) -> DeviceIdentity;

    /// Keys allowed to connect. Checked at every AUTH signature, so changes apply to new
    /// connections at once.
    fn allowed_keys(&self) -> Arc<Vec<AdbPublicKey>>;

    /// Runs a command to completion and returns its exit status (0–255).
    fn exec(&self, request: ExecRequest, io: ExecIo) -> BoxFuture<'static, i32>;

    /// The file system the `sync:` service works on.
    fn fs(&self) -> Arc<dyn SyncFs>;

    /// `reboot:<target>`: the device restarts. The endpoint closes the connection after this
    /// returns; the device decides what else restarting means (e.g. refusing connections while
    /// it boots).
    fn reboot(&self, target: &str) -> BoxFuture<'static, ()>;

    /// `tcp:<port>` (what the host's `adb forward … tcp:<port>` opens): connects to what
    /// listens on `port` inside the device. An error (normally `ConnectionRefused`: nothing
    /// listens there) refuses the stream. Never connects out of the device. The default
    /// refuses every port.
    fn connect_tcp(&self, port: u16) -> BoxFuture<'static, io::Result<DeviceSocket>> {
        let _ = port;
        Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
    }
}
