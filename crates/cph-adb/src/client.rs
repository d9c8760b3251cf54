//! The host side of ADB: connects to a device's adbd (ours or a real one) over TCP,
//! authenticates with an RSA key, and runs commands, file transfers and installs on streams
//! multiplexed over that one connection.
//!
//! Every wait is bounded: connecting by [`ClientConfig::connect_timeout`], the handshake by
//! [`ClientConfig::auth_timeout`], and every later wait (the device accepting a stream, the next
//! chunk of output, the OKAY for a chunk we sent) by [`ClientConfig::io_timeout`]. Collected
//! output is capped by [`ClientConfig::max_output`]; file transfers stream and never hold a
//! whole file in memory.
//!
//! ```no_run
//! # async fn demo(key: cph_adb::AdbPrivateKey) -> Result<(), cph_adb::client::ClientError> {
//! use cph_adb::client::{AdbClient, ClientConfig};
//! let client = AdbClient::connect("127.0.0.1:5555", &key, ClientConfig::default()).await?;
//! let out = client.shell("getprop ro.build.version.release").await?;
//! println!("{} (exit {:?})", String::from_utf8_lossy(&out.stdout), out.exit_code);
//! # Ok(()) }
//! ```

mod install;
mod sync_client;
mod transport;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_e2e;

use crate::DeviceIdentity;
use crate::keys::AdbPrivateKey;
use crate::shell_protocol;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use transport::{Connection, Shared};

pub use sync_client::DirEntry;
pub use transport::AdbStream;

/// Features this client knows how to use, announced in the default banner.
pub const CLIENT_FEATURES: &[&str] = &[
    "shell_v2",
    "cmd",
    "stat_v2",
    "ls_v2",
    "fixed_push_mkdir",
    "abb_exec",
    "sendrecv_v2",
];

/// Settings of a client connection.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Limit for establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit for every single wait once connected: the device accepting a stream, the next
    /// chunk of output, the acknowledgement of a chunk we sent. A command that stays silent
    /// for longer than this fails with [`ClientError::Timeout`].
    pub io_timeout: Duration,
    /// Limit for the whole CNXN/AUTH handshake, including the wait after offering our public
    /// key to a device that refused it.
    pub auth_timeout: Duration,
    /// Most bytes of output collected by [`AdbClient::shell`] (stdout and stderr together) and
    /// the other collecting calls. Beyond it shell output is truncated and flagged.
    pub max_output: usize,
    /// The host banner sent in CNXN (at most 4096 bytes), `host::features=…`.
    pub banner: String,
    /// Largest packet payload announced in CNXN (the device uses the smaller of its own and
    /// this; clamped to 4 KiB – 1 MiB). What a transfer keeps in flight per stream scales with
    /// it, so many concurrent transfers use less memory with a smaller value.
    pub max_payload: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            max_output: 1024 * 1024,
            banner: format!("host::features={}", CLIENT_FEATURES.join(",")),
            max_payload: crate::packet::MAX_PAYLOAD,
        }
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be established.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// A wait exceeded its limit; the text says what was awaited.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The device did not accept our key.
    #[error("the device did not accept the key (unauthorized)")]
    Unauthorized,
    /// The device broke the protocol.
    #[error("adb protocol error: {0}")]
    Protocol(String),
    /// The connection (or the stream, while we were still writing) was closed.
    #[error("the connection to the device was closed")]
    Closed,
    /// The device refused to open this service.
    #[error("the device refused service {0:?}")]
    ServiceRefused(String),
    /// The sync service reported a failure (its FAIL message).
    #[error("file transfer failed: {0}")]
    Sync(String),
    /// A command ran but reported failure (e.g. `Failure [INSTALL_FAILED_…]`).
    #[error("command failed: {0}")]
    Command(String),
    /// Output exceeded [`ClientConfig::max_output`] where it cannot be truncated.
    #[error("output exceeds the limit of {0} bytes")]
    OutputTooLarge(usize),
    /// An argument cannot be sent (NUL byte, path too long, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A local I/O error (reading the file to push, writing the pulled file, …).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// What a shell command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOutput {
    pub stdout: Vec<u8>,
    /// Empty without the shell protocol (the device merges stderr into stdout).
    pub stderr: Vec<u8>,
    /// The exit status (`0x80 | signal` for a signal), or `None` without the shell protocol
    /// (device lacks `shell_v2`) or if the stream closed before the exit status came.
    pub exit_code: Option<i32>,
    /// More than [`ClientConfig::max_output`] bytes were produced; the rest was discarded.
    pub truncated: bool,
}

impl ShellOutput {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// What the device announced in its CNXN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceInfo {
    /// `device`, `recovery`, `bootloader`, `sideload`, `rescue`.
    pub state: String,
    pub product_name: String,
    pub model: String,
    pub device: String,
    pub features: Vec<String>,
}

struct Inner {
    conn: Arc<Connection>,
    info: DeviceInfo,
    config: ClientConfig,
    version: u32,
}

/// A connection to one device. Cheap to clone (clones share the connection); several calls may
/// run concurrently, each on its own stream. The connection closes when the last clone is
/// dropped.
#[derive(Clone)]
pub struct AdbClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AdbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdbClient")
            .field("state", &self.inner.info.state)
            .field("product", &self.inner.info.product_name)
            .field("max_payload", &self.max_payload())
            .finish()
    }
}

impl AdbClient {
    /// Connects to `addr` (a `SocketAddr` or `"host:port"`) and authenticates with `key`.
    ///
    /// Sends CNXN (version `A_VERSION`, max payload 1 MiB), signs the device's AUTH token with
    /// `key`; if the device refuses the signature, offers the public key once and fails with
    /// [`ClientError::Unauthorized`] unless the device accepts it within
    /// [`ClientConfig::auth_timeout`]. A device without authentication answers CNXN at once.
    pub async fn connect<A>(
        addr: A,
        key: &AdbPrivateKey,
        config: ClientConfig,
    ) -> Result<AdbClient, ClientError>
    where
        A: ToSocketAddrs + Display,
    {
        let addr_text = addr.to_string();
        let stream =
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Err(_) => return Err(ClientError::Timeout(format!("a connection to {addr_text}"))),
                Ok(Err(source)) => {
                    return Err(ClientError::Connect {
                        addr: addr_text,
                        source,
                    });
                }
                Ok(Ok(s)) => s,
            };
        // Small packets (OKAYs) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Self::connect_stream(stream, key, config).await
    }

    /// Runs the handshake over an already connected transport (a TCP stream, a TLS stream,
    /// an in-memory pipe) and starts serving streams on it.
    pub async fn connect_stream<S>(
        mut io: S,
        key: &AdbPrivateKey,
        config: ClientConfig,
    ) -> Result<AdbClient, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let hs = transport::handshake(&mut io, key, &config).await?;
        let info = transport::parse_banner(&hs.banner);
        let conn = Connection::start(io, &hs, config.io_timeout);
        Ok(AdbClient {
            inner: Arc::new(Inner {
                conn: Arc::new(conn),
                info,
                config,
                version: hs.version,
            }),
        })
    }

    /// The same connection with the device's features replaced (to exercise the paths taken
    /// for older devices against a modern endpoint).
    #[cfg(test)]
    pub(crate) fn with_features_for_test(self, features: &[&str]) -> AdbClient {
        let mut info = self.inner.info.clone();
        info.features = features.iter().map(|f| f.to_string()).collect();
        AdbClient {
            inner: Arc::new(Inner {
                conn: self.inner.conn.clone(),
                info,
                config: self.inner.config.clone(),
                version: self.inner.version,
            }),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.conn.shared
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The features the device announced (`shell_v2`, `cmd`, …).
    pub fn features(&self) -> &[String] {
        &self.inner.info.features
    }

    /// Whether the device announced `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.inner.info.features.iter().any(|f| f == feature)
    }

    /// `ro.product.name`, `ro.product.model` and `ro.product.device` from the banner.
    pub fn identity(&self) -> DeviceIdentity {
        DeviceIdentity {
            product_name: self.inner.info.product_name.clone(),
            model: self.inner.info.model.clone(),
            device: self.inner.info.device.clone(),
        }
    }

    /// The connection state the device announced: `device`, `recovery`, `sideload`, ….
    pub fn state(&self) -> &str {
        &self.inner.info.state
    }

    /// The largest payload the device accepts in one packet (outgoing data is split to it).
    pub fn max_payload(&self) -> usize {
        self.shared().max_payload
    }

    /// The negotiated protocol version (`0x01000000` means every packet carries a checksum).
    pub fn protocol_version(&self) -> u32 {
        self.inner.version
    }

    /// Why the connection ended, or `None` while it is up.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared().dead_reason()
    }

    /// Opens a raw stream to `service` (e.g. `tcp:8080`, `localabstract:foo`).
    pub async fn open(&self, service: &str) -> Result<AdbStream, ClientError> {
        if service.contains('\0') && !service.starts_with("abb") {
            return Err(ClientError::InvalidArgument(
                "service name contains a NUL byte".into(),
            ));
        }
        transport::open(self.shared(), service).await
    }

    /// Runs `command` (a shell command line, passed to `sh -c` on the device) with no stdin.
    ///
    /// Uses `shell,v2,raw:` when the device has `shell_v2` (separate stdout and stderr, exit
    /// code), else `shell:` (merged output, no exit code).
    pub async fn shell(&self, command: &str) -> Result<ShellOutput, ClientError> {
        self.shell_with_stdin(command, tokio::io::empty()).await
    }

    /// Runs `command` feeding it `stdin`. With the shell protocol the command sees end of
    /// input after the last byte; without it (device lacks `shell_v2`) it never does, so the
    /// command must not read its input to the end.
    pub async fn shell_with_stdin<R>(
        &self,
        command: &str,
        mut stdin: R,
    ) -> Result<ShellOutput, ClientError>
    where
        R: AsyncRead + Unpin,
    {
        let max = self.config().max_output;
        if !self.has_feature("shell_v2") {
            let stream = self.open(&format!("shell:{command}")).await?;
            let mut out = ShellOutput::default();
            let feed = feed_raw(&stream, &mut stdin, self.max_payload());
            let collect = async {
                while let Some(chunk) = stream.read().await? {
                    append_capped(&mut out.stdout, &chunk, max, &mut out.truncated);
                }
                Ok::<(), ClientError>(())
            };
            run_with_input(feed, collect).await?;
            stream.close().await;
            return Ok(out);
        }

        let stream = self.open(&format!("shell,v2,raw:{command}")).await?;
        // Stdin packets carry at most what fits in one WRTE together with their 5-byte header.
        let chunk = self.max_payload().saturating_sub(5).clamp(1, 64 * 1024);
        let feed = async {
            let mut buf = vec![0u8; chunk];
            loop {
                let n = stdin.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                stream
                    .write(&shell_protocol::encode(shell_protocol::ID_STDIN, &buf[..n]))
                    .await?;
            }
            stream
                .write(&shell_protocol::encode(shell_protocol::ID_CLOSE_STDIN, &[]))
                .await
        };
        let collect = collect_shell_v2(&stream, max);
        let out = run_with_input(feed, collect).await?;
        stream.close().await;
        Ok(out)
    }

    /// Runs `command` over the raw `exec:` service and returns its output (stdout and stderr
    /// merged, no exit status). With `stdin`, its bytes are written to the command (which
    /// sees no end of input: `exec:` has no half-close). Fails with
    /// [`ClientError::OutputTooLarge`] past [`ClientConfig::max_output`].
    pub async fn exec<R>(&self, command: &str, stdin: Option<R>) -> Result<Vec<u8>, ClientError>
    where
        R: AsyncRead + Unpin,
    {
        let mut out = CappedVec {
            buf: Vec::new(),
            max: self.config().max_output,
        };
        match self.exec_to(command, stdin, &mut out).await {
            Ok(_) => Ok(out.buf),
            Err(ClientError::Io(e)) if e.get_ref().is_some_and(|i| i.is::<OutputLimit>()) => {
                Err(ClientError::OutputTooLarge(out.max))
            }
            Err(e) => Err(e),
        }
    }

    /// Like [`AdbClient::exec`], streaming the output into `writer` (no size limit).
    /// Returns the number of bytes written.
    pub async fn exec_to<R, W>(
        &self,
        command: &str,
        stdin: Option<R>,
        writer: &mut W,
    ) -> Result<u64, ClientError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let stream = self.open(&format!("exec:{command}")).await?;
        let result = self.pump_exec(&stream, stdin, writer).await;
        stream.close().await;
        result
    }

    async fn pump_exec<R, W>(
        &self,
        stream: &AdbStream,
        stdin: Option<R>,
        writer: &mut W,
    ) -> Result<u64, ClientError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let feed = async {
            match stdin {
                Some(mut r) => feed_raw(stream, &mut r, self.max_payload()).await,
                None => Ok(()),
            }
        };
        let collect = async {
            let mut total = 0u64;
            while let Some(chunk) = stream.read().await? {
                writer.write_all(&chunk).await?;
                total += chunk.len() as u64;
            }
            writer.flush().await?;
            Ok(total)
        };
        run_with_input(feed, collect).await
    }

    /// Reads everything a service sends until it closes, capped at
    /// [`ClientConfig::max_output`].
    pub(crate) async fn read_service(&self, service: &str) -> Result<Vec<u8>, ClientError> {
        let stream = self.open(service).await?;
        let max = self.config().max_output;
        let mut out = Vec::new();
        let mut truncated = false;
        let result = async {
            while let Some(chunk) = stream.read().await? {
                append_capped(&mut out, &chunk, max, &mut truncated);
            }
            Ok::<(), ClientError>(())
        }
        .await;
        stream.close().await;
        result?;
        if truncated {
            return Err(ClientError::OutputTooLarge(max));
        }
        Ok(out)
    }

    /// Reboots the device (`reboot:<target>`; target empty, `bootloader`, `recovery`, …).
    /// The connection ends with the reboot; this returns once the device has taken the
    /// request (it closes the stream or the connection).
    pub async fn reboot(&self, target: &str) -> Result<(), ClientError> {
        if target.contains(['\0', ':']) || target.len() > 64 {
            return Err(ClientError::InvalidArgument(format!(
                "reboot target {target:?}"
            )));
        }
        match self.read_service(&format!("reboot:{target}")).await {
            Ok(_) | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Asks adbd to run as root (`root:`) and returns its reply, e.g.
    /// `adbd is already running as root`. A reply containing `restarting` means the device
    /// will drop this connection and a new one is needed.
    pub async fn root(&self) -> Result<String, ClientError> {
        let reply = self.read_service("root:").await?;
        Ok(String::from_utf8_lossy(&reply).trim_end().to_string())
    }
}

/// Collects a shell-protocol stream until the exit packet (or the end of the stream).
async fn collect_shell_v2(stream: &AdbStream, max: usize) -> Result<ShellOutput, ClientError> {
    let mut out = ShellOutput::default();
    let mut decoder = shell_protocol::Decoder::default();
    while let Some(chunk) = stream.read().await? {
        decoder.push(&chunk);
        while let Some(packet) = decoder
            .next_packet()
            .map_err(|e| ClientError::Protocol(format!("shell protocol: {e}")))?
        {
            match packet.id {
                shell_protocol::ID_STDOUT => {
                    let room = max.saturating_sub(out.stderr.len());
                    append_capped(&mut out.stdout, &packet.data, room, &mut out.truncated);
                }
                shell_protocol::ID_STDERR => {
                    let room = max.saturating_sub(out.stdout.len());
                    append_capped(&mut out.stderr, &packet.data, room, &mut out.truncated);
                }
                shell_protocol::ID_EXIT => {
                    out.exit_code = packet.exit_code().map(i32::from);
                    return Ok(out);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Appends `data` to `buf` up to `max` bytes in all; sets `truncated` if some was dropped.
fn append_capped(buf: &mut Vec<u8>, data: &[u8], max: usize, truncated: &mut bool) {
    let room = max.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

/// Copies `input` to the stream in chunks of at most `max_payload`.
async fn feed_raw<R: AsyncRead + Unpin>(
    stream: &AdbStream,
    input: &mut R,
    max_payload: usize,
) -> Result<(), ClientError> {
    let mut buf = vec![0u8; max_payload.clamp(1, 256 * 1024)];
    loop {
        let n = input.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write(&buf[..n]).await?;
    }
}

/// Runs `feed` (writing input) and `collect` (reading output) together; the result is
/// `collect`'s. Input that the device no longer takes (it closed the stream) is not an error;
/// other feed errors are.
async fn run_with_input<F, C, T>(feed: F, collect: C) -> Result<T, ClientError>
where
    F: Future<Output = Result<(), ClientError>>,
    C: Future<Output = Result<T, ClientError>>,
{
    tokio::pin!(feed);
    tokio::pin!(collect);
    let mut feeding = true;
    loop {
        tokio::select! {
            result = &mut collect => return result,
            fed = &mut feed, if feeding => {
                feeding = false;
                match fed {
                    Ok(()) | Err(ClientError::Closed) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// A `Vec` writer that refuses to grow past `max`.
struct CappedVec {
    buf: Vec<u8>,
    max: usize,
}

impl AsyncWrite for CappedVec {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.buf.len() + data.len() > self.max {
            return std::task::Poll::Ready(Err(std::io::Error::other(OutputLimit(self.max))));
        }
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("output exceeds the limit of {0} bytes")]
struct OutputLimit(usize);

/// Quotes `arg` for a POSIX shell: unchanged if it only holds characters that are never
/// special, else in single quotes (a `'` inside becomes `'\''`).
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+:,./-".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
