//! The device endpoint: what `adbd` does on a TCP port.
//!
//! [`serve`] accepts connections until cancelled; [`serve_connection`] runs one.
//! [`Endpoint::attach`] serves a connection made in this process ([`InProcessConnection`]),
//! whose received chunks become the streams' data without a copy. A connection goes through:
//!
//! 1. **Handshake.** The host speaks first with `CNXN`. The endpoint negotiates the protocol
//!    version (`min(peer, A_VERSION)`; byte-sum checksums on everything it sends when that is
//!    below [`A_VERSION`]) and the max payload (`min(peer, ours)`), then sends a 20-byte random
//!    `AUTH` token.
//! 2. **Authentication.** Every `AUTH(SIGNATURE)` is checked against
//!    [`Device::allowed_keys`]; a match gets the `CNXN` banner, a mismatch a fresh token. An
//!    `AUTH(RSAPUBLICKEY)` is never trusted: the connection stays open and silent, so the host
//!    shows `unauthorized` instead of reconnecting in a loop, until
//!    [`EndpointConfig::unauthorized_timeout`] closes it. Authentication is always required:
//!    with an empty allow-list nobody gets in. After
//!    [`EndpointConfig::auth_failures_before_delay`] bad signatures from one peer address, each
//!    new token is delayed by [`EndpointConfig::auth_failure_delay`].
//! 3. **Streams.** `OPEN`/`OKAY`/`WRTE`/`CLSE` with one `WRTE` in flight per stream and
//!    direction, outgoing data re-chunked to the negotiated max payload, bounded receive
//!    buffers (a stream whose peer overruns its buffer is closed, not the connection). A
//!    client's `WRTE` is acknowledged as soon as its header is in when its stream has room for
//!    the payload, so the client's next write travels while this one's payload still arrives
//!    (stock adb servers send nothing more until the `OKAY`: without this, every write costs a
//!    full round trip, which over a tunnel or a long link is most of the time). `CLSE`
//!    echoed once for live streams, messages for unknown ids ignored. A second `CNXN` resets
//!    the session: every stream closes and authentication starts over.
//!
//! Services: `shell:`, `shell,v2,…:` (shell protocol), `exec:`, `abb_exec:`, `sync:`,
//! `reboot:`, `tcp:<port>`, and harmless replies for `root:`, `unroot:` and `remount:`.
//! Anything else (also `tcpip:`/`usb:`, `reverse:…` and the other socket kinds) is refused with
//! `CLSE(0, id)`. Commands run through [`Device::exec`]; files through [`Device::fs`] (see
//! [`crate::sync`]).
//!
//! `tcp:<port>` (and `tcp:localhost:<port>`, as adbd accepts; any other host is refused, so
//! nothing connects out of the device) is what the host's `adb forward` opens for each
//! connection to its local port. The endpoint connects through [`Device::connect_tcp`] before
//! it answers: the stream's `OKAY` when the connection is made, `CLSE(0, id)` when nothing
//! listens there (as adbd does when its connect fails). Then bytes move both ways, each
//! direction bounded: device data goes out one `WRTE` at a time, each awaiting its `OKAY`;
//! client data is acknowledged only while little of it waits to be written to the device side.
//! When the device side ends its output, what it sent is delivered and the stream is closed
//! (`CLSE`) along with the connection; when the client closes the stream, what it sent before
//! is written to the device side (for at most [`EndpointConfig::close_grace`]) and the
//! connection is closed.

use crate::packet::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_VERSION, A_WRTE, AUTH_RSAPUBLICKEY, AUTH_SIGNATURE,
    AUTH_TOKEN, HEADER_LEN, MAX_PAYLOAD, MAX_PAYLOAD_V1, Packet, PacketError, TOKEN_SIZE,
    command_name,
};
use crate::shell_protocol;
use crate::sync;
pub use crate::transport::InProcessConnection;
use crate::transport::{ChunkReader, Header, PacketRead, Payload, SocketReader};
use crate::{Device, DeviceIdentity, ExecIo, ExecRequest, Invocation};
use bytes::{Bytes, BytesMut};
use rand::RngCore;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The features this endpoint implements, as announced in the `CNXN` banner. Compression
/// (`sendrecv_v2_*`), `delayed_ack` and `remount_shell` are deliberately absent.
pub const FEATURES: &str = "shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,abb_exec,sendrecv_v2";

/// Reply to `root:` (must not contain "restarting", or `adb root` waits for a reconnect).
pub const ROOT_REPLY: &str = "adbd is already running as root\n";
/// Reply to `unroot:`.
pub const UNROOT_REPLY: &str = "adbd not running as root\n";
/// Reply to `remount:`.
pub const REMOUNT_REPLY: &str = "remount succeeded\n";

/// Smallest max payload the endpoint uses towards a peer, whatever the peer announced.
const MIN_PEER_PAYLOAD: u32 = 256;
/// Capacity of the in-memory pipes between a command and its stream.
const PIPE_CAPACITY: usize = 64 * 1024;
/// After a command ends, how long its output pipes may stay idle before the stream closes
/// (a writer the command leaked to a background task must not keep the stream open).
const OUTPUT_IDLE_AFTER_EXIT: Duration = Duration::from_millis(500);
/// Peer addresses the auth throttle remembers at most.
const THROTTLE_MAX_PEERS: usize = 4096;
/// Packets queued towards the socket writer.
const OUTGOING_QUEUE: usize = 256;
/// How long a stopping endpoint waits for its connection tasks before aborting them.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// How long `tcp:` waits for the device to accept the connection before refusing the stream.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest read from a `tcp:` connection's device side (one `WRTE` at most).
const TCP_CHUNK: usize = 256 * 1024;

/// Limits and timeouts of an endpoint. [`EndpointConfig::default`] gives sane values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Largest payload announced and accepted (≤ 1 MiB, ≥ 4096). Default 1 MiB.
    pub max_payload: u32,
    /// Open streams per connection; further `OPEN`s are refused. Default 64.
    pub max_streams: usize,
    /// Concurrent connections of [`serve`]; excess connections are closed at once. Default 64.
    pub max_connections: usize,
    /// Time from accepting a connection to the host's first `CNXN`. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time a connection may stay unauthenticated after its `CNXN` before it is closed.
    /// Default 60 s.
    pub unauthorized_timeout: Duration,
    /// Bad signatures per peer address (per connection when the address is unknown) before
    /// every new token is delayed. Default 10.
    pub auth_failures_before_delay: u32,
    /// The delay before each new token once the throttle applies. Default 1 s.
    pub auth_failure_delay: Duration,
    /// A peer address's failure count is forgotten after this long without failures.
    /// Default 10 min.
    pub auth_failure_window: Duration,
    /// Bytes a stream may buffer from its peer before it is closed. The endpoint withholds its
    /// `OKAY` once more than one max payload is buffered, so only peers that ignore flow
    /// control reach this. At least twice `max_payload` is used. Default 4 MiB.
    pub stream_buffer_limit: usize,
    /// After the client closes a command's stream, how long the command may keep running
    /// (its stdin at end-of-file, its output discarded) before it is dropped. Default 5 s.
    pub close_grace: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            max_payload: MAX_PAYLOAD,
            max_streams: 64,
            max_connections: 64,
            handshake_timeout: Duration::from_secs(10),
            unauthorized_timeout: Duration::from_secs(60),
            auth_failures_before_delay: 10,
            auth_failure_delay: Duration::from_secs(1),
            auth_failure_window: Duration::from_secs(600),
            stream_buffer_limit: 4 * 1024 * 1024,
            close_grace: Duration::from_secs(5),
        }
    }
}

impl EndpointConfig {
    /// The configuration with every value brought into its valid range.
    fn normalized(&self) -> EndpointConfig {
        let mut c = self.clone();
        c.max_payload = c.max_payload.clamp(MAX_PAYLOAD_V1, MAX_PAYLOAD);
        c.max_streams = c.max_streams.max(1);
        c.max_connections = c.max_connections.max(1);
        c.stream_buffer_limit = c.stream_buffer_limit.max(2 * c.max_payload as usize);
        c
    }
}

/// Remembers bad signatures per peer address, so that a peer cannot try keys quickly by
/// opening new connections.
#[derive(Debug, Default)]
struct AuthThrottle {
    peers: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthThrottle {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a failure; returns the peer's count within the window.
    fn failure(&self, ip: IpAddr, window: Duration) -> u32 {
        let now = Instant::now();
        let mut peers = self.lock();
        if peers.len() >= THROTTLE_MAX_PEERS && !peers.contains_key(&ip) {
            peers.retain(|_, (_, last)| now.duration_since(*last) < window);
            if peers.len() >= THROTTLE_MAX_PEERS {
                // Too many distinct peers failing: forget the oldest half.
                let mut v: Vec<_> = peers.iter().map(|(k, (_, t))| (*t, *k)).collect();
                v.sort();
                for (_, k) in v.iter().take(v.len() / 2) {
                    peers.remove(k);
                }
            }
        }
        let e = peers.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= window {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
        e.0
    }

    fn success(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }
}

/// A device endpoint: one device, its configuration and the state shared by its connections
/// (connection limit, auth throttle).
pub struct Endpoint {
    device: Arc<dyn Device>,
    config: EndpointConfig,
    throttle: AuthThrottle,
    connections: Arc<Semaphore>,
}

impl Endpoint {
    pub fn new(device: Arc<dyn Device>, config: EndpointConfig) -> Arc<Endpoint> {
        let config = config.normalized();
        Arc::new(Endpoint {
            device,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config,
            throttle: AuthThrottle::default(),
        })
    }

    /// The effective configuration (values clamped to their valid ranges).
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Accepts connections on `listener` until `shutdown` is cancelled; then closes every
    /// connection and returns once they are gone (waiting at most a couple of seconds).
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((sock, addr)) => {
                        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                            debug!(peer = %addr, "adb: connection limit reached, refusing");
                            drop(sock);
                            continue;
                        };
                        let _ = sock.set_nodelay(true);
                        let ep = self.clone();
                        let token = shutdown.child_token();
                        tasks.spawn(async move {
                            ep.serve_connection(sock, Some(addr.ip()), token).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        warn!(error = %e, "adb: accept failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                },
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(STOP_WAIT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
    }

    /// Serves a connection made in this process (e.g. an SSH gateway's in-process tunnel) in
    /// the background, within the same connection limit as [`Endpoint::serve`]: `false` (and
    /// `conn` dropped) when the endpoint is full. Its received chunks are taken as they are
    /// (see [`InProcessConnection`]). The connection ends like any other, or when `shutdown`
    /// is cancelled.
    pub fn attach(
        self: &Arc<Self>,
        conn: InProcessConnection,
        shutdown: CancellationToken,
    ) -> bool {
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            debug!("adb: connection limit reached, refusing an in-process connection");
            return false;
        };
        let ep = self.clone();
        tokio::spawn(async move {
            ep.serve_in_process(conn, shutdown).await;
            drop(permit);
        });
        true
    }

    /// Serves a connection made in this process until it ends (see [`Endpoint::attach`],
    /// which does this in the background within the connection limit).
    pub async fn serve_in_process(&self, conn: InProcessConnection, shutdown: CancellationToken) {
        let InProcessConnection { rx, tx } = conn;
        self.serve_parts(ChunkReader::new(rx), tx, None, shutdown)
            .await;
    }

    /// Serves one connection until the peer leaves, a fatal protocol error, a timeout,
    /// `reboot:` or `shutdown`. `peer` keys the auth throttle (`None`: per connection only).
    /// Returns once the connection and all its streams are closed.
    pub async fn serve_connection<S>(
        &self,
        io: S,
        peer: Option<IpAddr>,
        shutdown: CancellationToken,
    ) where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (r, w) = tokio::io::split(io);
        self.serve_parts(SocketReader::new(r), w, peer, shutdown)
            .await;
    }

    /// Serves one connection from its packet source and its writing side.
    async fn serve_parts<R, W>(
        &self,
        mut reader: R,
        w: W,
        peer: Option<IpAddr>,
        shutdown: CancellationToken,
    ) where
        R: PacketRead,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let conn_token = shutdown.child_token();
        let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
        let writer = tokio::spawn(writer_task(w, rx, conn_token.clone()));
        let mut conn = Connection {
            ep: self,
            peer,
            out: tx,
            token: conn_token.clone(),
            link: None,
            state: AuthState::AwaitConnect,
            failures: 0,
            next_id: 1,
            tasks: JoinSet::new(),
        };
        if let Err(e) = conn.run(&mut reader).await {
            debug!(error = %e, "adb: connection ended");
        }
        conn_token.cancel();
        if let Some(link) = conn.link.take() {
            link.reset();
        }
        let mut tasks = std::mem::take(&mut conn.tasks);
        drop(conn);
        let _ = tokio::time::timeout(STOP_WAIT, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        let _ = writer.await;
    }
}

/// Accepts ADB connections on `listener` for `device` until `shutdown` is cancelled, then
/// closes every connection and stream and returns. See the module documentation.
pub async fn serve(
    listener: TcpListener,
    device: Arc<dyn Device>,
    config: EndpointConfig,
    shutdown: CancellationToken,
) {
    Endpoint::new(device, config)
        .serve(listener, shutdown)
        .await
}

/// Serves a single connection (already accepted, any byte stream) until it ends or
/// `shutdown` is cancelled. Without a peer address the auth throttle counts per connection.
pub async fn serve_connection<S>(
    io: S,
    device: Arc<dyn Device>,
    config: &EndpointConfig,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Endpoint::new(device, config.clone())
        .serve_connection(io, None, shutdown)
        .await
}

/// The `CNXN` banner: `device::ro.product.name=…;ro.product.model=…;ro.product.device=…;
/// features=…`, at most 4096 bytes. Characters that would break the format (`;`, `:`, `=`,
/// `,`, control characters) are replaced by `_`; over-long values are cut.
pub fn banner(identity: &DeviceIdentity) -> String {
    fn clean(s: &str) -> String {
        s.chars()
            .map(|c| {
                if matches!(c, ';' | ':' | '=' | ',') || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    }
    let mut fields = [
        clean(&identity.product_name),
        clean(&identity.model),
        clean(&identity.device),
    ];
    let fixed = "device::ro.product.name=;ro.product.model=;ro.product.device=;features=".len()
        + FEATURES.len();
    let budget = MAX_PAYLOAD_V1 as usize - fixed;
    for f in fields.iter_mut() {
        let limit = budget / 3;
        if f.len() > limit {
            let mut cut = limit;
            while !f.is_char_boundary(cut) {
                cut -= 1;
            }
            f.truncate(cut);
        }
    }
    format!(
        "device::ro.product.name={};ro.product.model={};ro.product.device={};features={FEATURES}",
        fields[0], fields[1], fields[2]
    )
}

// ---------------------------------------------------------------------------------------------
// Socket writer

enum Outgoing {
    /// A packet and whether its checksum must be filled in.
    Packet(Packet, bool),
    /// Flush what is queued before, then close the connection.
    Close,
}

/// Writes queued packets, batching small ones into vectored writes. Cancels the connection
/// when the socket fails, when asked to close, or when the connection is dropped.
async fn writer_task<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Outgoing>,
    token: CancellationToken,
) {
    const BATCH_PACKETS: usize = 64;
    const BATCH_BYTES: usize = 4 * 1024 * 1024;
    let mut batch: Vec<(Packet, bool)> = Vec::with_capacity(BATCH_PACKETS);
    'outer: loop {
        let first = tokio::select! {
            biased;
            _ = token.cancelled() => break,
            m = rx.recv() => m,
        };
        let mut close = false;
        let mut bytes = 0usize;
        let mut next = first;
        loop {
            match next {
                None => {
                    close = true;
                    break;
                }
                Some(Outgoing::Close) => {
                    close = true;
                    break;
                }
                Some(Outgoing::Packet(p, ck)) => {
                    bytes += HEADER_LEN + p.payload.len();
                    batch.push((p, ck));
                }
            }
            if batch.len() >= BATCH_PACKETS || bytes >= BATCH_BYTES {
                break;
            }
            match rx.try_recv() {
                Ok(m) => next = Some(m),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let r = tokio::select! {
                biased;
                _ = token.cancelled() => break 'outer,
                r = write_batch(&mut w, &batch) => r,
            };
            batch.clear();
            if let Err(e) = r {
                debug!(error = %e, "adb: write failed");
                break;
            }
        }
        if close {
            let _ = tokio::time::timeout(Duration::from_secs(2), w.shutdown()).await;
            break;
        }
    }
    token.cancel();
}

async fn write_batch<W: AsyncWrite + Unpin>(w: &mut W, batch: &[(Packet, bool)]) -> io::Result<()> {
    let headers: Vec<[u8; HEADER_LEN]> = batch.iter().map(|(p, ck)| p.header(*ck)).collect();
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(batch.len() * 2);
    for ((p, _), h) in batch.iter().zip(headers.iter()) {
        slices.push(IoSlice::new(h));
        if !p.payload.is_empty() {
            slices.push(IoSlice::new(&p.payload));
        }
    }
    let mut rest: &mut [IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    w.flush().await
}

// ---------------------------------------------------------------------------------------------
// Sessions and streams

/// One authenticated-or-not session (from one `CNXN` to the next or to the end).
struct Link {
    out: mpsc::Sender<Outgoing>,
    /// Byte-sum checksums are sent (negotiated version below `A_VERSION`).
    checksum: bool,
    /// Largest payload sent to the peer.
    peer_max: usize,
    /// Buffered bytes per stream above which `OKAY` is withheld.
    low_water: usize,
    /// Buffered bytes per stream above which the stream is closed.
    buffer_limit: usize,
    /// Cancelled when the session ends (new `CNXN`, connection closed, shutdown).
    token: CancellationToken,
    streams: Mutex<HashMap<u32, Arc<Stream>>>,
}

impl Link {
    fn streams(&self) -> MutexGuard<'_, HashMap<u32, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, p: Packet) -> bool {
        self.out
            .send(Outgoing::Packet(p, self.checksum))
            .await
            .is_ok()
    }

    /// Ends the session: every stream is dropped without `CLSE` (the peer reset it).
    fn reset(&self) {
        let streams: Vec<_> = self.streams().drain().map(|(_, s)| s).collect();
        self.token.cancel();
        for s in streams {
            s.peer_gone();
        }
    }

    /// Closes a stream from the device side: sends `CLSE` once if it is still open.
    async fn close_stream(&self, s: &Stream) {
        let removed = self.streams().remove(&s.local).is_some();
        s.peer_gone();
        if removed {
            self.send(Packet::new(A_CLSE, s.local, s.remote, Bytes::new()))
                .await;
        }
    }
}

#[derive(Default)]
struct Inbound {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    /// No more data will come (peer closed).
    eof: bool,
    /// An `OKAY` is owed once the buffer drains below the low-water mark.
    okay_owed: bool,
}

/// One stream's shared state between the connection reader and the service task.
struct Stream {
    local: u32,
    remote: u32,
    inbound: Mutex<Inbound>,
    data_ready: Notify,
    /// A `WRTE` was sent and its `OKAY` has not arrived.
    in_flight: AtomicBool,
    okay: Notify,
    /// Cancelled when nothing more can be sent: the peer closed the stream, the session
    /// ended, or the device closed it.
    closed: CancellationToken,
}

impl Stream {
    fn inbound(&self) -> MutexGuard<'_, Inbound> {
        self.inbound.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The peer is gone: no more input after what is buffered, no more output.
    fn peer_gone(&self) {
        self.inbound().eof = true;
        self.data_ready.notify_one();
        self.closed.cancel();
    }
}

/// Reads a stream's received data (the service side).
struct StreamReader {
    link: Arc<Link>,
    stream: Arc<Stream>,
}

impl StreamReader {
    /// The next received chunk; `None` once the peer closed the stream and everything was
    /// read, or when the session ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            let mut send_okay = false;
            let got = {
                let mut ib = self.stream.inbound();
                match ib.chunks.pop_front() {
                    Some(c) => {
                        ib.bytes -= c.len();
                        if ib.okay_owed && ib.bytes <= self.link.low_water && !ib.eof {
                            ib.okay_owed = false;
                            send_okay = true;
                        }
                        Some(Some(c))
                    }
                    None if ib.eof => Some(None),
                    None => None,
                }
            };
            if send_okay {
                self.link
                    .send(Packet::new(
                        A_OKAY,
                        self.stream.local,
                        self.stream.remote,
                        Bytes::new(),
                    ))
                    .await;
            }
            if let Some(r) = got {
                return r;
            }
            tokio::select! {
                _ = self.stream.data_ready.notified() => {}
                _ = self.link.token.cancelled() => return None,
            }
        }
    }
}

impl sync::ChunkSource for StreamReader {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        self.next().await
    }
}

/// Writes to a stream (the service side): chunks to the peer's max payload and waits for each
/// `OKAY`.
#[derive(Clone)]
struct StreamWriter {
    link: Arc<Link>,
    stream: Arc<Stream>,
}

impl StreamWriter {
    async fn write(&self, data: Bytes) -> io::Result<()> {
        let mut off = 0;
        while off < data.len() {
            let end = (off + self.link.peer_max).min(data.len());
            self.write_one(data.slice(off..end)).await?;
            off = end;
        }
        Ok(())
    }

    async fn write_one(&self, chunk: Bytes) -> io::Result<()> {
        let closed = || io::Error::from(io::ErrorKind::BrokenPipe);
        if self.stream.closed.is_cancelled() {
            return Err(closed());
        }
        self.stream.in_flight.store(true, Ordering::SeqCst);
        let p = Packet::new(A_WRTE, self.stream.local, self.stream.remote, chunk);
        if !self.link.send(p).await {
            return Err(closed());
        }
        tokio::select! {
            _ = self.stream.okay.notified() => Ok(()),
            _ = self.stream.closed.cancelled() => Err(closed()),
        }
    }
}

impl sync::ChunkSink for StreamWriter {
    async fn send_chunk(&mut self, data: Bytes) -> io::Result<()> {
        self.write(data).await
    }
}

/// Aborts a task when dropped, so a service's helpers never outlive it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The connection

enum AuthState {
    /// Waiting for the host's first `CNXN`.
    AwaitConnect,
    /// A token was sent; waiting for a valid signature.
    AwaitSignature {
        token: [u8; TOKEN_SIZE],
    },
    Online,
}

struct Connection<'a> {
    ep: &'a Endpoint,
    peer: Option<IpAddr>,
    out: mpsc::Sender<Outgoing>,
    token: CancellationToken,
    link: Option<Arc<Link>>,
    state: AuthState,
    /// Bad signatures on this connection.
    failures: u32,
    next_id: u32,
    tasks: JoinSet<()>,
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Packet(#[from] PacketError),
    #[error("no CNXN within the handshake timeout")]
    HandshakeTimeout,
    #[error("not authenticated within the timeout")]
    UnauthorizedTimeout,
    #[error("socket writer stopped")]
    WriterGone,
}

impl Connection<'_> {
    fn cfg(&self) -> &EndpointConfig {
        &self.ep.config
    }

    async fn run<R: PacketRead>(&mut self, reader: &mut R) -> Result<(), ConnError> {
        let mut deadline = Some((
            tokio::time::Instant::now() + self.cfg().handshake_timeout,
            true,
        ));
        loop {
            let limit = match self.state {
                AuthState::Online => self.cfg().max_payload,
                _ => MAX_PAYLOAD_V1,
            };
            let sleep = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Reap finished services (never race them against the read: reads are not
            // cancel-safe).
            while self.tasks.try_join_next().is_some() {}
            let (h, payload, acked) = tokio::select! {
                biased;
                _ = self.token.cancelled() => return Ok(()),
                _ = sleep => {
                    return Err(match deadline {
                        Some((_, true)) => ConnError::HandshakeTimeout,
                        _ => ConnError::UnauthorizedTimeout,
                    });
                }
                p = self.read_packet(reader, limit) => p?,
            };
            if h.command == A_WRTE {
                if let (AuthState::Online, Some(link)) = (&self.state, &self.link) {
                    on_write(link, &h, payload, acked).await;
                }
                continue;
            }
            let packet = Packet {
                command: h.command,
                arg0: h.arg0,
                arg1: h.arg1,
                payload: payload.into_bytes(),
            };
            match packet.command {
                A_CNXN => {
                    self.on_connect(&packet).await?;
                    // A CNXN while unauthenticated does not extend the deadline.
                    if !matches!(deadline, Some((_, false))) {
                        deadline = Some((
                            tokio::time::Instant::now() + self.cfg().unauthorized_timeout,
                            false,
                        ));
                    }
                }
                A_AUTH => {
                    if self.on_auth(&packet).await? {
                        deadline = None;
                    }
                }
                A_OPEN | A_OKAY | A_CLSE => {
                    if let (AuthState::Online, Some(link)) = (&self.state, self.link.clone()) {
                        match packet.command {
                            A_OPEN => self.on_open(&link, packet).await,
                            A_OKAY => on_okay(&link, &packet),
                            _ => on_close(&link, &packet).await,
                        }
                    }
                }
                other => debug!(command = %command_name(other), "adb: ignoring unknown command"),
            }
        }
    }

    /// Reads one packet; also whether its `OKAY` was already sent. A `WRTE` of an
    /// authenticated session is acknowledged as soon as its header is in, when its stream
    /// has room for the whole payload: the peer's next write is then on its way while this
    /// payload still arrives, instead of one round trip per write (stock adb servers wait
    /// for each `OKAY` before they read more from their client). The stream's buffer bound
    /// is unchanged: the room is checked for the whole payload before it is granted.
    async fn read_packet<R: PacketRead>(
        &self,
        r: &mut R,
        max: u32,
    ) -> Result<(Header, Payload, bool), PacketError> {
        let h = r.read_header(max).await?;
        let mut acked = false;
        if h.command == A_WRTE
            && let (AuthState::Online, Some(link)) = (&self.state, &self.link)
        {
            acked = okay_ahead(link, &h).await;
        }
        let payload = r.read_payload(h.len).await?;
        Ok((h, payload, acked))
    }

    async fn send(&self, p: Packet, checksum: bool) -> Result<(), ConnError> {
        self.out
            .send(Outgoing::Packet(p, checksum))
            .await
            .map_err(|_| ConnError::WriterGone)
    }

    async fn on_connect(&mut self, p: &Packet) -> Result<(), ConnError> {
        let version = p.arg0.min(A_VERSION);
        let checksum = version < A_VERSION;
        let peer_max = p.arg1.clamp(MIN_PEER_PAYLOAD, self.cfg().max_payload);
        debug!(
            version = format_args!("{:#010x}", p.arg0),
            max_payload = p.arg1,
            banner = %String::from_utf8_lossy(&p.payload),
            "adb: CNXN"
        );
        if let Some(old) = self.link.take() {
            debug!("adb: CNXN on a live connection, resetting the session");
            old.reset();
        }
        let max = self.cfg().max_payload as usize;
        self.link = Some(Arc::new(Link {
            out: self.out.clone(),
            checksum,
            peer_max: peer_max as usize,
            low_water: max,
            buffer_limit: self.cfg().stream_buffer_limit,
            token: self.token.child_token(),
            streams: Mutex::new(HashMap::new()),
        }));
        self.failures = 0;
        self.send_token(checksum).await
    }

    async fn send_token(&mut self, checksum: bool) -> Result<(), ConnError> {
        let mut token = [0u8; TOKEN_SIZE];
        rand::thread_rng().fill_bytes(&mut token);
        self.state = AuthState::AwaitSignature { token };
        self.send(
            Packet::new(A_AUTH, AUTH_TOKEN, 0, Bytes::copy_from_slice(&token)),
            checksum,
        )
        .await
    }

    /// Handles an `AUTH`; returns whether the connection just became authenticated.
    async fn on_auth(&mut self, p: &Packet) -> Result<bool, ConnError> {
        let AuthState::AwaitSignature { token } = &self.state else {
            return Ok(false);
        };
        let checksum = self.link.as_ref().is_some_and(|l| l.checksum);
        match p.arg0 {
            AUTH_SIGNATURE => {
                let keys = self.ep.device.allowed_keys();
                if keys.iter().any(|k| k.verify_token(token, &p.payload)) {
                    if let Some(ip) = self.peer {
                        self.ep.throttle.success(ip);
                    }
                    info!(peer = ?self.peer, "adb: host authenticated");
                    self.state = AuthState::Online;
                    let b = banner(&self.ep.device.identity());
                    let version = if checksum {
                        crate::packet::A_VERSION_MIN
                    } else {
                        A_VERSION
                    };
                    self.send(
                        Packet::new(A_CNXN, version, self.cfg().max_payload, b.into_bytes()),
                        checksum,
                    )
                    .await?;
                    return Ok(true);
                }
                self.failures = self.failures.saturating_add(1);
                let count = match self.peer {
                    Some(ip) => self.ep.throttle.failure(ip, self.cfg().auth_failure_window),
                    None => self.failures,
                };
                debug!(peer = ?self.peer, count, "adb: signature rejected");
                if count > self.cfg().auth_failures_before_delay {
                    let delay = self.cfg().auth_failure_delay;
                    tokio::select! {
                        _ = self.token.cancelled() => return Ok(false),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                self.send_token(checksum).await?;
            }
            AUTH_RSAPUBLICKEY => {
                // Never a trust decision: the host stays "unauthorized" until it signs with an
                // allowed key (or the unauthorized timeout closes the connection).
                debug!(peer = ?self.peer, "adb: host offered an unknown public key");
            }
            _ => {}
        }
        Ok(false)
    }

    fn alloc_id(&mut self, link: &Link) -> u32 {
        let streams = link.streams();
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !streams.contains_key(&id) {
                return id;
            }
        }
    }

    async fn on_open(&mut self, link: &Arc<Link>, p: Packet) {
        let remote = p.arg0;
        if remote == 0 {
            return;
        }
        let refuse = Packet::new(A_CLSE, 0, remote, Bytes::new());
        if p.arg1 != 0 {
            // Delayed ack was not negotiated.
            link.send(refuse).await;
            return;
        }
        let mut name = &p.payload[..];
        while let [rest @ .., 0] = name {
            name = rest;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(service) = parse_service(&name) else {
            debug!(service = %name, "adb: refusing unknown service");
            link.send(refuse).await;
            return;
        };
        if link.streams().len() >= self.cfg().max_streams {
            debug!("adb: stream limit reached");
            link.send(refuse).await;
            return;
        }
        let local = self.alloc_id(link);
        let stream = Arc::new(Stream {
            local,
            remote,
            inbound: Mutex::new(Inbound::default()),
            data_ready: Notify::new(),
            in_flight: AtomicBool::new(false),
            okay: Notify::new(),
            closed: link.token.child_token(),
        });
        link.streams().insert(local, stream.clone());
        debug!(service = %name, local, remote, "adb: OPEN");
        let ctx = ServiceCtx {
            device: self.ep.device.clone(),
            link: link.clone(),
            stream,
            close_grace: self.cfg().close_grace,
            max_packet: self.cfg().stream_buffer_limit,
        };
        if let Service::Tcp(port) = service {
            // Accepted (OKAY) or refused only once the connection is made or has failed.
            self.tasks.spawn(run_tcp(ctx, port));
            return;
        }
        if !link
            .send(Packet::new(A_OKAY, local, remote, Bytes::new()))
            .await
        {
            return;
        }
        self.tasks.spawn(run_service(ctx, service));
    }
}

fn on_okay(link: &Link, p: &Packet) {
    let stream = link.streams().get(&p.arg1).cloned();
    if let Some(s) = stream
        && s.remote == p.arg0
        && s.in_flight.swap(false, Ordering::SeqCst)
    {
        s.okay.notify_one();
    }
}

/// Sends a `WRTE`'s `OKAY` before its payload is read when its stream, open and not at its
/// end, has room for the payload under the low-water mark. Returns whether it was sent.
/// Only the connection reader adds to a stream's buffer, so the room cannot shrink before
/// the payload lands.
async fn okay_ahead(link: &Link, h: &Header) -> bool {
    let Some(s) = link.streams().get(&h.arg1).cloned() else {
        return false;
    };
    if s.remote != h.arg0 {
        return false;
    }
    let room = {
        let ib = s.inbound();
        !ib.eof && !ib.okay_owed && ib.bytes + h.len <= link.low_water
    };
    if room {
        link.send(Packet::new(A_OKAY, s.local, s.remote, Bytes::new()))
            .await;
    }
    room
}

/// Delivers a `WRTE`'s payload to its stream; `acked`: its `OKAY` was already sent.
async fn on_write(link: &Link, h: &Header, payload: Payload, acked: bool) {
    let Some(s) = link.streams().get(&h.arg1).cloned() else {
        return;
    };
    if s.remote != h.arg0 {
        return;
    }
    let len = h.len;
    let (okay_now, overflow) = {
        let mut ib = s.inbound();
        if ib.eof {
            return;
        }
        if ib.bytes + len > link.buffer_limit {
            (false, true)
        } else {
            ib.bytes += len;
            ib.chunks.extend(payload.into_pieces());
            if acked {
                (false, false)
            } else if ib.bytes <= link.low_water {
                (true, false)
            } else {
                ib.okay_owed = true;
                (false, false)
            }
        }
    };
    if overflow {
        debug!(
            local = s.local,
            "adb: peer overran the stream's receive buffer, closing it"
        );
        link.close_stream(&s).await;
        return;
    }
    // The OKAY is queued before the service sees the data, so it precedes any reply.
    if okay_now {
        link.send(Packet::new(A_OKAY, s.local, s.remote, Bytes::new()))
            .await;
    }
    s.data_ready.notify_one();
}

async fn on_close(link: &Link, p: &Packet) {
    let local = p.arg1;
    let removed = {
        let mut streams = link.streams();
        match streams.get(&local) {
            Some(s) if s.remote == p.arg0 || p.arg0 == 0 => streams.remove(&local),
            _ => None,
        }
    };
    if let Some(s) = removed {
        s.peer_gone();
        link.send(Packet::new(A_CLSE, s.local, s.remote, Bytes::new()))
            .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Services

/// A parsed `OPEN` service name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Service {
    Exec {
        request: ExecRequest,
        v2: bool,
    },
    Sync,
    Reboot(String),
    Reply(&'static str),
    /// `tcp:<port>`: a connection to what listens on the device's port.
    Tcp(u16),
}

/// The port of a `tcp:` socket spec (`tcp:` already removed): `<port>` or `localhost:<port>`.
/// adbd connects only to its own loopback; any other host is refused, as adbd does ("adbd does
/// not support arbitrary tcp connections").
fn parse_tcp_spec(spec: &str) -> Option<u16> {
    let port = match spec.rsplit_once(':') {
        None => spec,
        Some(("localhost", port)) => port,
        Some(_) => return None,
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Parses a service name (trailing NULs already removed); `None` for unsupported services.
fn parse_service(name: &str) -> Option<Service> {
    if let Some(rest) = name.strip_prefix("shell")
        && (rest.starts_with(':') || rest.starts_with(','))
    {
        let (args, command) = rest.split_once(':')?;
        let mut v2 = false;
        let mut pty = None;
        let mut term = None;
        for a in args.split(',') {
            match a {
                "v2" => v2 = true,
                "raw" => pty = Some(false),
                "pty" => pty = Some(true),
                _ => {
                    if let Some(t) = a.strip_prefix("TERM=") {
                        term = Some(t.to_owned());
                    }
                }
            }
        }
        return Some(Service::Exec {
            request: ExecRequest {
                pty: pty.unwrap_or(command.is_empty()),
                term,
                invocation: Invocation::Command(command.to_owned()),
            },
            v2,
        });
    }
    if let Some(command) = name.strip_prefix("exec:") {
        return Some(Service::Exec {
            request: ExecRequest {
                invocation: Invocation::Command(command.to_owned()),
                pty: false,
                term: None,
            },
            v2: false,
        });
    }
    if let Some(args) = name.strip_prefix("abb_exec:") {
        let args = if args.is_empty() {
            Vec::new()
        } else {
            args.split('\0').map(str::to_owned).collect()
        };
        return Some(Service::Exec {
            request: ExecRequest {
                invocation: Invocation::Cmd(args),
                pty: false,
                term: None,
            },
            v2: false,
        });
    }
    if name == "sync:" {
        return Some(Service::Sync);
    }
    if let Some(target) = name.strip_prefix("reboot:") {
        return Some(Service::Reboot(target.to_owned()));
    }
    if let Some(spec) = name.strip_prefix("tcp:") {
        return parse_tcp_spec(spec).map(Service::Tcp);
    }
    match name {
        "root:" => Some(Service::Reply(ROOT_REPLY)),
        "unroot:" => Some(Service::Reply(UNROOT_REPLY)),
        "remount:" => Some(Service::Reply(REMOUNT_REPLY)),
        _ => None,
    }
}

struct ServiceCtx {
    device: Arc<dyn Device>,
    link: Arc<Link>,
    stream: Arc<Stream>,
    close_grace: Duration,
    max_packet: usize,
}

impl ServiceCtx {
    fn reader(&self) -> StreamReader {
        StreamReader {
            link: self.link.clone(),
            stream: self.stream.clone(),
        }
    }

    fn writer(&self) -> StreamWriter {
        StreamWriter {
            link: self.link.clone(),
            stream: self.stream.clone(),
        }
    }
}

async fn run_service(ctx: ServiceCtx, service: Service) {
    match service {
        Service::Exec { request, v2 } => run_exec(&ctx, request, v2).await,
        Service::Sync => {
            let fs = ctx.device.fs();
            let frame = ctx.link.peer_max;
            if let Err(e) = sync::serve(fs, ctx.reader(), ctx.writer(), frame).await {
                debug!(error = %e, "adb: sync session ended");
            }
        }
        Service::Reply(text) => {
            let _ = ctx
                .writer()
                .write(Bytes::from_static(text.as_bytes()))
                .await;
        }
        Service::Reboot(target) => {
            info!(target = %target, "adb: reboot requested");
            tokio::select! {
                _ = ctx.link.token.cancelled() => return,
                _ = ctx.device.reboot(&target) => {}
            }
            ctx.link.close_stream(&ctx.stream).await;
            let _ = ctx.link.out.send(Outgoing::Close).await;
            return;
        }
        Service::Tcp(port) => {
            // Opened through `run_tcp`; never dispatched here.
            debug!(port, "adb: tcp service reached the generic dispatch");
        }
    }
    ctx.link.close_stream(&ctx.stream).await;
}

/// `tcp:<port>`: connects to the device's port, answers the `OPEN` (`OKAY`, or `CLSE(0, id)`
/// when the connection fails), then bridges the stream and the connection until either side
/// closes.
async fn run_tcp(ctx: ServiceCtx, port: u16) {
    let connected = tokio::select! {
        _ = ctx.stream.closed.cancelled() => return,
        r = tokio::time::timeout(TCP_CONNECT_TIMEOUT, ctx.device.connect_tcp(port)) => r,
    };
    let socket = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(port, error = %e, "adb: tcp: connection refused");
            refuse_stream(&ctx).await;
            return;
        }
        Err(_) => {
            debug!(port, "adb: tcp: connecting timed out");
            refuse_stream(&ctx).await;
            return;
        }
    };
    let (local, remote) = (ctx.stream.local, ctx.stream.remote);
    if !ctx
        .link
        .send(Packet::new(A_OKAY, local, remote, Bytes::new()))
        .await
    {
        return;
    }
    debug!(port, local, "adb: tcp: connected");
    let (mut from_device, mut to_device) = tokio::io::split(socket);
    bridge_tcp(&ctx, &mut from_device, &mut to_device).await;
    // Dropping both halves closes the device side in both directions.
    drop(from_device);
    drop(to_device);
    ctx.link.close_stream(&ctx.stream).await;
}

/// Moves bytes between the stream and the device connection until the device side ends its
/// output, the client closes the stream (what it sent is written first, within the grace
/// period) or writing to the device side fails.
async fn bridge_tcp<R, W>(ctx: &ServiceCtx, from_device: &mut R, to_device: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let chunk = ctx.link.peer_max.clamp(1, TCP_CHUNK);
    let writer = ctx.writer();
    // Device → client: one WRTE in flight, each awaiting its OKAY.
    let outbound = async {
        loop {
            let mut buf = BytesMut::with_capacity(chunk);
            match from_device.read_buf(&mut buf).await {
                Ok(n) if n > 0 => {
                    if writer.write(buf.freeze()).await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    // Client → device: the reader withholds OKAY while data waits here, so this is bounded
    // by the stream's buffer.
    let mut input = ctx.reader();
    let inbound = async {
        while let Some(data) = input.next().await {
            if to_device.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = to_device.flush().await;
    };
    tokio::pin!(outbound, inbound);
    let inbound_done = tokio::select! {
        _ = &mut outbound => false,
        _ = &mut inbound => true,
        _ = ctx.stream.closed.cancelled() => false,
    };
    if !inbound_done && ctx.stream.closed.is_cancelled() && !ctx.link.token.is_cancelled() {
        // The client closed the stream: deliver what it sent before, within the grace period.
        let _ = tokio::time::timeout(ctx.close_grace, &mut inbound).await;
    }
}

/// Refuses a stream that was never accepted: forgets it and sends `CLSE(0, id)`.
async fn refuse_stream(ctx: &ServiceCtx) {
    let removed = ctx.link.streams().remove(&ctx.stream.local).is_some();
    ctx.stream.peer_gone();
    if removed {
        ctx.link
            .send(Packet::new(A_CLSE, 0, ctx.stream.remote, Bytes::new()))
            .await;
    }
}

/// Feeds received stream data to a command's stdin (decoding the shell protocol for v2).
async fn feed_stdin(mut input: StreamReader, stdin: tokio::io::DuplexStream, v2: bool, max: usize) {
    let mut stdin = Some(stdin);
    let mut decoder = shell_protocol::Decoder::new(max);
    while let Some(chunk) = input.next().await {
        if !v2 {
            write_stdin(&mut stdin, &chunk).await;
            continue;
        }
        decoder.push(&chunk);
        loop {
            match decoder.next_packet() {
                Ok(Some(p)) => match p.id {
                    shell_protocol::ID_STDIN => write_stdin(&mut stdin, &p.data).await,
                    shell_protocol::ID_CLOSE_STDIN => {
                        if let Some(mut w) = stdin.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    // Window size changes are accepted and ignored; other ids are not
                    // meant for the device.
                    _ => {}
                },
                Ok(None) => break,
                Err(e) => {
                    debug!(error = %e, "adb: bad shell protocol input, closing the stream");
                    input.link.close_stream(&input.stream).await;
                    return;
                }
            }
        }
    }
}

async fn write_stdin(stdin: &mut Option<tokio::io::DuplexStream>, data: &[u8]) {
    if let Some(w) = stdin
        && w.write_all(data).await.is_err()
    {
        // The command no longer reads stdin: discard the rest.
        *stdin = None;
    }
}

async fn run_exec(ctx: &ServiceCtx, request: ExecRequest, v2: bool) {
    let (stdin_cmd, stdin_ours) = tokio::io::duplex(PIPE_CAPACITY);
    let (stdout_cmd, mut stdout_ours) = tokio::io::duplex(PIPE_CAPACITY);
    let (stderr_cmd, mut stderr_ours) = tokio::io::duplex(PIPE_CAPACITY);
    let io = ExecIo {
        stdin: Box::new(stdin_cmd),
        stdout: Box::new(stdout_cmd),
        stderr: Box::new(stderr_cmd),
    };
    let mut exec = AbortOnDrop(tokio::spawn(ctx.device.exec(request, io)));
    let _input = AbortOnDrop(tokio::spawn(feed_stdin(
        ctx.reader(),
        stdin_ours,
        v2,
        ctx.max_packet,
    )));
    let writer = ctx.writer();
    let frame = |id: u8, data: &[u8]| -> Bytes {
        if v2 {
            shell_protocol::encode(id, data)
        } else {
            Bytes::copy_from_slice(data)
        }
    };

    let mut out_buf = vec![0u8; PIPE_CAPACITY];
    let mut err_buf = vec![0u8; PIPE_CAPACITY];
    let mut out_open = true;
    let mut err_open = true;
    let mut code: Option<i32> = None;
    let mut idle_deadline: Option<tokio::time::Instant> = None;
    let finished = loop {
        if code.is_some() && !out_open && !err_open {
            break true;
        }
        let idle = async {
            match idle_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let sent = tokio::select! {
            biased;
            _ = ctx.stream.closed.cancelled() => break false,
            r = stdout_ours.read(&mut out_buf), if out_open => match r {
                Ok(n) if n > 0 => writer.write(frame(shell_protocol::ID_STDOUT, &out_buf[..n])).await,
                _ => { out_open = false; Ok(()) }
            },
            r = stderr_ours.read(&mut err_buf), if err_open => match r {
                Ok(n) if n > 0 => writer.write(frame(shell_protocol::ID_STDERR, &err_buf[..n])).await,
                _ => { err_open = false; Ok(()) }
            },
            r = &mut exec, if code.is_none() => {
                code = Some(match r {
                    Ok(c) => c,
                    Err(e) => {
                        warn!(error = %e, "adb: command task failed");
                        if v2 {
                            let _ = writer
                                .write(frame(shell_protocol::ID_STDERR, b"error: command failed\n"))
                                .await;
                        }
                        126
                    }
                });
                Ok(())
            }
            _ = idle => break true,
        };
        if sent.is_err() {
            break false;
        }
        if code.is_some() {
            idle_deadline = Some(tokio::time::Instant::now() + OUTPUT_IDLE_AFTER_EXIT);
        }
    };
    drop(stdout_ours);
    drop(stderr_ours);
    if finished {
        if let (true, Some(c)) = (v2, code) {
            let _ = writer.write(shell_protocol::encode_exit(c)).await;
        }
        ctx.link.close_stream(&ctx.stream).await;
        return;
    }
    // The client closed the stream (or the session ended): the command's output now fails and
    // its stdin reaches end-of-file after the data already received; give it a moment to end.
    if code.is_none() && !ctx.link.token.is_cancelled() {
        tokio::select! {
            _ = ctx.link.token.cancelled() => {}
            _ = tokio::time::sleep(ctx.close_grace) => {}
            _ = &mut exec => {}
        }
    }
    ctx.link.close_stream(&ctx.stream).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        let Some(Service::Exec { request, v2 }) = parse_service("shell,v2,TERM=xterm,raw:ls -l")
        else {
            panic!("not exec")
        };
        assert!(v2);
        assert!(!request.pty);
        assert_eq!(request.term.as_deref(), Some("xterm"));
        assert_eq!(request.invocation, Invocation::Command("ls -l".into()));

        let Some(Service::Exec { request, v2 }) = parse_service("shell:") else {
            panic!("not exec")
        };
        assert!(!v2 && request.pty);
        let Some(Service::Exec { request, .. }) = parse_service("shell,v2,pty:a:b") else {
            panic!("not exec")
        };
        assert_eq!(request.invocation, Invocation::Command("a:b".into()));
        assert!(request.pty);

        let Some(Service::Exec { request, v2 }) =
            parse_service("abb_exec:package\0install\0-S\x00123")
        else {
            panic!("not exec")
        };
        assert!(!v2);
        assert_eq!(
            request.invocation,
            Invocation::Cmd(vec![
                "package".into(),
                "install".into(),
                "-S".into(),
                "123".into()
            ])
        );
        assert_eq!(parse_service("sync:"), Some(Service::Sync));
        assert_eq!(
            parse_service("reboot:bootloader"),
            Some(Service::Reboot("bootloader".into()))
        );
        assert_eq!(
            parse_service("reboot:"),
            Some(Service::Reboot(String::new()))
        );
        assert_eq!(parse_service("tcp:8080"), Some(Service::Tcp(8080)));
        assert_eq!(
            parse_service("tcp:localhost:65535"),
            Some(Service::Tcp(65535))
        );
        assert_eq!(parse_service("root:"), Some(Service::Reply(ROOT_REPLY)));
        assert!(!UNROOT_REPLY.contains("restarting") && !ROOT_REPLY.contains("restarting"));
        for refused in [
            "tcpip:5555",
            "usb:",
            "shellfoo:x",
            "shell",
            "framebuffer:",
            "",
            "reverse:forward:tcp:9000;tcp:8080",
            "reverse:list-forward",
            "tcp:",
            "tcp:0",
            "tcp:65536",
            "tcp:-1",
            "tcp:+80",
            "tcp:80x",
            "tcp:127.0.0.1:80",
            "tcp:10.0.0.1:80",
            "tcp:example.com:80",
            "tcp:[::1]:80",
            "tcp:localhost:",
            "localabstract:foo",
        ] {
            assert_eq!(parse_service(refused), None, "{refused}");
        }
    }

    #[test]
    fn banner_format_and_limit() {
        let id = DeviceIdentity {
            product_name: "cloudphone".into(),
            model: "Cloud;Phone".into(),
            device: "x".repeat(10_000),
        };
        let b = banner(&id);
        assert!(b.starts_with("device::ro.product.name=cloudphone;ro.product.model=Cloud_Phone;"));
        assert!(b.ends_with(&format!(";features={FEATURES}")));
        assert!(b.len() <= MAX_PAYLOAD_V1 as usize);
    }

    #[test]
    fn throttle_counts_per_peer_and_forgets() {
        let t = AuthThrottle::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(t.failure(a, Duration::from_secs(60)), 1);
        assert_eq!(t.failure(a, Duration::from_secs(60)), 2);
        assert_eq!(t.failure(b, Duration::from_secs(60)), 1);
        assert_eq!(t.failure(a, Duration::ZERO), 1);
        t.success(a);
        assert_eq!(t.failure(a, Duration::from_secs(60)), 1);
    }
}
