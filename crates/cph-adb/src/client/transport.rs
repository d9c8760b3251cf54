//! The connection under the client: the CNXN/AUTH handshake, a writer task that owns the write
//! half, a reader task that dispatches packets to streams by local id, and [`AdbStream`], one
//! multiplexed stream with ADB's flow control (one WRTE in flight per direction).

use super::{ClientConfig, ClientError, DeviceInfo};
use crate::keys::AdbPrivateKey;
use crate::packet::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_STLS, A_VERSION, A_WRTE, AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE, AUTH_TOKEN, HEADER_LEN, MAX_PAYLOAD, MAX_PAYLOAD_V1, Packet, PacketError,
    TOKEN_SIZE, command_name, parse_header,
};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

/// Packets queued for the writer task before senders wait.
const OUTBOUND_QUEUE: usize = 64;
/// Bytes a stream may hold unread before the device is considered to ignore flow control
/// (a well-behaved device has at most one WRTE of at most `MAX_PAYLOAD` outstanding).
const MAX_INBOUND_PER_STREAM: usize = 4 * MAX_PAYLOAD as usize;
/// Packets other than CNXN/AUTH tolerated during the handshake.
const MAX_STRAY_HANDSHAKE_PACKETS: usize = 16;
/// Smallest max payload a device may announce (pre-N devices used 4096).
const MIN_DEVICE_PAYLOAD: u32 = 256;

/// Everything the handshake learned.
pub(super) struct Handshake {
    pub version: u32,
    pub max_payload: u32,
    pub banner: String,
}

/// Runs the CNXN/AUTH exchange on a fresh transport. Our CNXN and AUTH packets always carry
/// checksums (the version is not negotiated yet).
pub(super) async fn handshake<S>(
    io: &mut S,
    key: &AdbPrivateKey,
    config: &ClientConfig,
) -> Result<Handshake, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let banner = config.banner.as_bytes();
    if banner.len() > MAX_PAYLOAD_V1 as usize {
        return Err(ClientError::InvalidArgument(format!(
            "the host banner is {} bytes, the limit is {MAX_PAYLOAD_V1}",
            banner.len()
        )));
    }
    let deadline = Instant::now() + config.auth_timeout;
    let ours = config.max_payload.clamp(MAX_PAYLOAD_V1, MAX_PAYLOAD);
    let cnxn = Packet::new(A_CNXN, A_VERSION, ours, Bytes::copy_from_slice(banner));
    write_packet(io, &cnxn, true, deadline, "sending CNXN").await?;

    let mut signed = false;
    let mut sent_public_key = false;
    let mut stray = 0usize;
    loop {
        let packet = match timeout_at(deadline, Packet::read_from(io, MAX_PAYLOAD)).await {
            Err(_) if sent_public_key => return Err(ClientError::Unauthorized),
            Err(_) => return Err(ClientError::Timeout("the device's answer to CNXN".into())),
            Ok(Err(PacketError::Io(e))) if is_eof(&e) => {
                return Err(if signed {
                    ClientError::Unauthorized
                } else {
                    ClientError::Closed
                });
            }
            Ok(Err(e)) => return Err(packet_error(e)),
            Ok(Ok(p)) => p,
        };
        match packet.command {
            A_CNXN => {
                if packet.arg1 < MIN_DEVICE_PAYLOAD {
                    return Err(ClientError::Protocol(format!(
                        "device announced a max payload of {} bytes",
                        packet.arg1
                    )));
                }
                let banner = String::from_utf8_lossy(&packet.payload)
                    .trim_end_matches('\0')
                    .to_string();
                return Ok(Handshake {
                    version: packet.arg0.min(A_VERSION),
                    max_payload: packet.arg1.min(ours),
                    banner,
                });
            }
            A_AUTH if packet.arg0 == AUTH_TOKEN => {
                if packet.payload.len() != TOKEN_SIZE {
                    return Err(ClientError::Protocol(format!(
                        "AUTH token of {} bytes (expected {TOKEN_SIZE})",
                        packet.payload.len()
                    )));
                }
                if !signed {
                    let signature = key
                        .sign_token(&packet.payload)
                        .map_err(|e| ClientError::Protocol(format!("cannot sign: {e}")))?;
                    let p = Packet::new(A_AUTH, AUTH_SIGNATURE, 0, signature);
                    write_packet(io, &p, true, deadline, "sending AUTH").await?;
                    signed = true;
                } else if !sent_public_key {
                    // The key was refused. Offer it once (a real device may ask its user),
                    // then wait for the rest of the auth budget.
                    let line = key
                        .public_key()
                        .to_line("cph@control-plane")
                        .map_err(|e| ClientError::Protocol(format!("cannot encode key: {e}")))?;
                    let mut payload = line.into_bytes();
                    payload.push(0);
                    let p = Packet::new(A_AUTH, AUTH_RSAPUBLICKEY, 0, payload);
                    write_packet(io, &p, true, deadline, "sending AUTH").await?;
                    sent_public_key = true;
                } else {
                    return Err(ClientError::Unauthorized);
                }
            }
            A_STLS => {
                return Err(ClientError::Protocol(
                    "the device requires TLS (STLS), which this client does not speak".into(),
                ));
            }
            other => {
                stray += 1;
                tracing::debug!(command = %command_name(other), "ignoring packet during handshake");
                if stray > MAX_STRAY_HANDSHAKE_PACKETS {
                    return Err(ClientError::Protocol(
                        "too many unexpected packets during the handshake".into(),
                    ));
                }
            }
        }
    }
}

async fn write_packet<S: AsyncWrite + Unpin>(
    io: &mut S,
    packet: &Packet,
    checksum: bool,
    deadline: Instant,
    what: &str,
) -> Result<(), ClientError> {
    let fut = async {
        packet.write_to(io, checksum).await?;
        io.flush().await
    };
    match timeout_at(deadline, fut).await {
        Err(_) => Err(ClientError::Timeout(what.to_string())),
        Ok(Err(e)) if is_eof(&e) => Err(ClientError::Closed),
        Ok(Err(e)) => Err(ClientError::Io(e)),
        Ok(Ok(())) => Ok(()),
    }
}

fn is_eof(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

fn packet_error(e: PacketError) -> ClientError {
    match e {
        PacketError::Io(e) if is_eof(&e) => ClientError::Closed,
        PacketError::Io(e) => ClientError::Io(e),
        other => ClientError::Protocol(other.to_string()),
    }
}

/// The state shared by the client, its streams and the two tasks.
pub(super) struct Shared {
    out: mpsc::Sender<Packet>,
    table: Mutex<Table>,
    /// The largest WRTE payload the device accepts.
    pub max_payload: usize,
    pub io_timeout: Duration,
}

struct Table {
    streams: HashMap<u32, Arc<StreamState>>,
    next_id: u32,
    /// Why the connection ended, once it has.
    dead: Option<String>,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the table inconsistent (every
        // critical section is a few map operations), so a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the connection: every stream sees it at its next wait.
    fn die(&self, reason: String) {
        let streams: Vec<Arc<StreamState>> = {
            let mut t = self.table();
            if t.dead.is_none() {
                tracing::debug!(%reason, "adb connection ended");
                t.dead = Some(reason);
            }
            t.streams.drain().map(|(_, s)| s).collect()
        };
        for s in streams {
            s.update(|st| {
                st.closed = true;
                st.lost = true;
            });
        }
    }

    /// Why the connection ended, if it has.
    pub fn dead_reason(&self) -> Option<String> {
        self.table().dead.clone()
    }

    async fn send(&self, packet: Packet) -> Result<(), ClientError> {
        self.out.send(packet).await.map_err(|_| ClientError::Closed)
    }

    fn forget(&self, local: u32) {
        self.table().streams.remove(&local);
    }
}

/// Owns the background tasks; aborts them when the client goes away.
pub(super) struct Connection {
    pub shared: Arc<Shared>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        self.shared.die("the client was dropped".into());
    }
}

impl Connection {
    /// Starts the tasks on an authenticated transport.
    pub fn start<S>(io: S, hs: &Handshake, io_timeout: Duration) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let shared = Arc::new(Shared {
            out: tx,
            table: Mutex::new(Table {
                streams: HashMap::new(),
                next_id: 1,
                dead: None,
            }),
            max_payload: hs.max_payload as usize,
            io_timeout,
        });
        let checksum = hs.version < A_VERSION;
        let writer = tokio::spawn(writer_task(
            BufWriter::new(wr),
            rx,
            checksum,
            io_timeout,
            shared.clone(),
        ));
        let reader = tokio::spawn(reader_task(rd, io_timeout, shared.clone()));
        Connection {
            shared,
            reader,
            writer,
        }
    }
}

async fn writer_task<W: AsyncWrite + Unpin>(
    mut w: BufWriter<W>,
    mut rx: mpsc::Receiver<Packet>,
    checksum: bool,
    io_timeout: Duration,
    shared: Arc<Shared>,
) {
    while let Some(packet) = rx.recv().await {
        let mut next = Some(packet);
        let result = timeout(io_timeout, async {
            // Write everything queued, then flush once.
            while let Some(p) = next.take() {
                p.write_to(&mut w, checksum).await?;
                next = rx.try_recv().ok();
            }
            w.flush().await
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shared.die(format!("write failed: {e}"));
                return;
            }
            Err(_) => {
                shared.die("the device stopped reading (write timed out)".into());
                return;
            }
        }
    }
}

async fn reader_task<R: AsyncRead + Unpin>(mut r: R, io_timeout: Duration, shared: Arc<Shared>) {
    let reason = loop {
        let packet = match read_packet(&mut r, io_timeout).await {
            Ok(p) => p,
            Err(reason) => break reason,
        };
        if let Err(reason) = dispatch(&shared, packet).await {
            break reason;
        }
    };
    shared.die(reason);
}

/// Reads one packet. Waiting for a header is unbounded (an idle connection is fine; every
/// caller waiting for data has its own timeout), a started payload must arrive in time.
async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    io_timeout: Duration,
) -> Result<Packet, String> {
    let mut h = [0u8; HEADER_LEN];
    r.read_exact(&mut h[..1])
        .await
        .map_err(|e| closed_reason(&e))?;
    timeout(io_timeout, r.read_exact(&mut h[1..]))
        .await
        .map_err(|_| "timed out inside a packet header".to_string())?
        .map_err(|e| closed_reason(&e))?;
    let (command, arg0, arg1, len, magic) = parse_header(&h);
    if magic != command ^ 0xffff_ffff {
        return Err(format!("bad magic for command {command:08x}"));
    }
    if len > MAX_PAYLOAD {
        return Err(format!("payload of {len} bytes exceeds {MAX_PAYLOAD}"));
    }
    let mut payload = vec![0u8; len as usize];
    timeout(io_timeout, r.read_exact(&mut payload))
        .await
        .map_err(|_| "timed out inside a packet payload".to_string())?
        .map_err(|e| closed_reason(&e))?;
    Ok(Packet::new(command, arg0, arg1, payload))
}

fn closed_reason(e: &std::io::Error) -> String {
    if is_eof(e) {
        "the device closed the connection".into()
    } else {
        format!("read failed: {e}")
    }
}

async fn dispatch(shared: &Shared, p: Packet) -> Result<(), String> {
    match p.command {
        A_OKAY => {
            let Some(s) = shared.table().streams.get(&p.arg1).cloned() else {
                return Ok(());
            };
            s.update(|st| match st.remote {
                None => {
                    st.remote = Some(p.arg0);
                    st.credit = true;
                }
                Some(r) if r == p.arg0 => st.credit = true,
                Some(_) => {}
            });
        }
        A_WRTE => {
            let Some(s) = shared.table().streams.get(&p.arg1).cloned() else {
                return Ok(());
            };
            let mut overflow = None;
            s.update(|st| {
                if st.remote != Some(p.arg0) || st.closed {
                    return;
                }
                st.inbound_bytes += p.payload.len();
                st.inbound.push_back(p.payload.clone());
                if st.inbound_bytes > MAX_INBOUND_PER_STREAM {
                    st.closed = true;
                    st.error = Some("the device ignored flow control".into());
                    overflow = st.remote;
                }
            });
            if let Some(remote) = overflow {
                shared.forget(p.arg1);
                send_or_stop(shared, Packet::new(A_CLSE, p.arg1, remote, Bytes::new())).await?;
            }
        }
        A_CLSE => {
            let Some(s) = shared.table().streams.remove(&p.arg1) else {
                return Ok(());
            };
            let mut echo = None;
            s.update(|st| match st.remote {
                None => {
                    st.refused = true;
                    st.closed = true;
                }
                Some(remote) => {
                    st.closed = true;
                    echo = Some(remote);
                }
            });
            if let Some(remote) = echo {
                // Real hosts answer a CLSE for a live stream; some devices wait for it.
                send_or_stop(shared, Packet::new(A_CLSE, p.arg1, remote, Bytes::new())).await?;
            }
        }
        A_OPEN => {
            // The device opening a stream towards us (reverse forwarding): refuse.
            send_or_stop(shared, Packet::new(A_CLSE, 0, p.arg0, Bytes::new())).await?;
        }
        A_CNXN => return Err("the device reset the connection (CNXN)".into()),
        other => {
            tracing::debug!(command = %command_name(other), "ignoring adb packet");
        }
    }
    Ok(())
}

async fn send_or_stop(shared: &Shared, p: Packet) -> Result<(), String> {
    shared
        .out
        .send(p)
        .await
        .map_err(|_| "the writer stopped".to_string())
}

struct StreamState {
    inner: Mutex<StreamInner>,
    notify: Notify,
}

#[derive(Default)]
struct StreamInner {
    /// The device's id, once it accepted the OPEN.
    remote: Option<u32>,
    /// The device refused the OPEN.
    refused: bool,
    /// We may send one WRTE (OPEN implies READY; every OKAY grants one more).
    credit: bool,
    inbound: VecDeque<Bytes>,
    inbound_bytes: usize,
    /// No more data will arrive (CLSE received, or the connection ended).
    closed: bool,
    /// The connection ended (as opposed to the device closing this stream).
    lost: bool,
    /// The stream was torn down for a protocol violation.
    error: Option<String>,
}

impl StreamState {
    fn lock(&self) -> MutexGuard<'_, StreamInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut StreamInner)) {
        f(&mut self.lock());
        self.notify.notify_waiters();
    }

    /// Waits until `check` returns `Some`, at most `limit`.
    async fn wait<T>(
        &self,
        limit: Duration,
        what: impl FnOnce() -> String,
        mut check: impl FnMut(&mut StreamInner) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = check(&mut self.lock()) {
                return Ok(v);
            }
            if timeout_at(deadline, notified).await.is_err() {
                return Err(ClientError::Timeout(what()));
            }
        }
    }
}

/// One stream over the connection. Reading and writing take `&self`, so one task may write
/// (e.g. stdin) while another reads. Dropping the stream closes it.
pub struct AdbStream {
    shared: Arc<Shared>,
    state: Arc<StreamState>,
    local: u32,
    remote: u32,
    service: String,
    closed_by_us: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for AdbStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdbStream")
            .field("service", &self.service)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish()
    }
}

/// Opens `service` (`shell:…`, `sync:`, …) and waits for the device to accept it.
pub(super) async fn open(shared: &Arc<Shared>, service: &str) -> Result<AdbStream, ClientError> {
    let mut payload = service.as_bytes().to_vec();
    payload.push(0);
    if payload.len() > shared.max_payload.min(MAX_PAYLOAD_V1 as usize * 16) {
        return Err(ClientError::InvalidArgument(format!(
            "service name of {} bytes is too long",
            payload.len()
        )));
    }
    let state = Arc::new(StreamState {
        inner: Mutex::new(StreamInner::default()),
        notify: Notify::new(),
    });
    let local = {
        let mut t = shared.table();
        if let Some(reason) = &t.dead {
            tracing::debug!(%reason, service, "open on a dead connection");
            return Err(ClientError::Closed);
        }
        let mut id = t.next_id;
        while id == 0 || t.streams.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        t.next_id = id.wrapping_add(1);
        t.streams.insert(id, state.clone());
        id
    };
    if let Err(e) = shared.send(Packet::new(A_OPEN, local, 0, payload)).await {
        shared.forget(local);
        return Err(e);
    }
    let waited = state
        .wait(
            shared.io_timeout,
            || format!("the device to accept {}", printable(service)),
            |st| {
                if st.refused {
                    Some(Err(ClientError::ServiceRefused(service.to_string())))
                } else if let Some(r) = st.remote {
                    Some(Ok(r))
                } else if st.lost {
                    Some(Err(ClientError::Closed))
                } else {
                    None
                }
            },
        )
        .await;
    match waited {
        Ok(Ok(remote)) => Ok(AdbStream {
            shared: shared.clone(),
            state,
            local,
            remote,
            service: service.to_string(),
            closed_by_us: std::sync::atomic::AtomicBool::new(false),
        }),
        Ok(Err(e)) | Err(e) => {
            shared.forget(local);
            Err(e)
        }
    }
}

/// A service name fit for messages (NULs of `abb_exec:` shown as spaces).
fn printable(service: &str) -> String {
    let s: String = service.replace('\0', " ");
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

impl AdbStream {
    /// The service this stream was opened for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The next chunk the device sent, or `None` once the device closed the stream.
    /// Acknowledges the chunk (OKAY), which lets the device send the next one.
    /// Fails with [`ClientError::Closed`] if the whole connection ended, and with
    /// [`ClientError::Timeout`] if nothing arrives within the I/O timeout.
    pub async fn read(&self) -> Result<Option<Bytes>, ClientError> {
        let got = self
            .state
            .wait(
                self.shared.io_timeout,
                || format!("output of {}", printable(&self.service)),
                |st| {
                    if let Some(chunk) = st.inbound.pop_front() {
                        st.inbound_bytes -= chunk.len();
                        Some(Ok(Some((chunk, !st.closed))))
                    } else if let Some(e) = &st.error {
                        Some(Err(ClientError::Protocol(e.clone())))
                    } else if st.lost {
                        Some(Err(ClientError::Closed))
                    } else if st.closed {
                        Some(Ok(None))
                    } else {
                        None
                    }
                },
            )
            .await??;
        match got {
            Some((chunk, open)) => {
                if open {
                    self.shared
                        .send(Packet::new(A_OKAY, self.local, self.remote, Bytes::new()))
                        .await?;
                }
                Ok(Some(chunk))
            }
            None => Ok(None),
        }
    }

    /// Sends `data`, split into WRTEs of at most the device's max payload, waiting for the
    /// device's OKAY before each one. Fails with [`ClientError::Closed`] if the device closed
    /// the stream.
    pub async fn write(&self, data: &[u8]) -> Result<(), ClientError> {
        for chunk in data.chunks(self.shared.max_payload.max(1)) {
            self.state
                .wait(
                    self.shared.io_timeout,
                    || format!("the device to accept data for {}", printable(&self.service)),
                    |st| {
                        if st.closed {
                            Some(Err(ClientError::Closed))
                        } else if st.credit {
                            st.credit = false;
                            Some(Ok(()))
                        } else {
                            None
                        }
                    },
                )
                .await??;
            self.shared
                .send(Packet::new(
                    A_WRTE,
                    self.local,
                    self.remote,
                    Bytes::copy_from_slice(chunk),
                ))
                .await?;
        }
        Ok(())
    }

    /// Whether the device has closed the stream (data may still be buffered).
    pub fn is_closed_by_device(&self) -> bool {
        self.state.lock().closed
    }

    /// Closes the stream (CLSE). Idempotent.
    pub async fn close(&self) {
        if let Some(p) = self.take_close() {
            let _ = self.shared.send(p).await;
        }
    }

    fn take_close(&self) -> Option<Packet> {
        if self
            .closed_by_us
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        self.shared.forget(self.local);
        let closed = {
            let mut st = self.state.lock();
            std::mem::replace(&mut st.closed, true)
        };
        (!closed).then(|| Packet::new(A_CLSE, self.local, self.remote, Bytes::new()))
    }
}

impl Drop for AdbStream {
    fn drop(&mut self) {
        if let Some(p) = self.take_close()
            && self.shared.out.try_send(p.clone()).is_err()
        {
            // The queue is full: close from a task rather than leave the device's side open.
            let out = self.shared.out.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = out.send(p).await;
                });
            }
        }
    }
}

/// Parses `<state>:<serial>:<key=value;…>` from the device's CNXN.
pub(super) fn parse_banner(banner: &str) -> DeviceInfo {
    let mut parts = banner.splitn(3, ':');
    let state = parts.next().unwrap_or("").to_string();
    let _serial = parts.next();
    let props = parts.next().unwrap_or("");
    let mut info = DeviceInfo {
        state,
        product_name: String::new(),
        model: String::new(),
        device: String::new(),
        features: Vec::new(),
    };
    for item in props.split(';') {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        match k {
            "ro.product.name" => info.product_name = v.to_string(),
            "ro.product.model" => info.model = v.to_string(),
            "ro.product.device" => info.device = v.to_string(),
            "features" => {
                info.features = v
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            _ => {}
        }
    }
    info
}
