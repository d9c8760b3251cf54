//! One `direct-tcpip` tunnel: resolve, connect, then carry bytes both ways.
//!
//! The two directions run concurrently so that neither can block the other. Client→target
//! data arrives through the channel's bounded queue and is written to the target with a
//! stall timeout; target→client data is read only once the target is readable (an idle
//! tunnel holds no buffer) and sent within the client's SSH window. Half-close is kept: an
//! EOF in one direction is passed on and the other direction keeps running until it ends
//! too. Once both directions have ended (or one failed), the client gets a moment to close
//! the channel itself before the gateway closes it.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::gateway::{Conn, Inner};
use crate::local::{LocalReader, LocalWriter};
use crate::{AuditEvent, Principal, Target};

/// Bytes read from the target at once.
const READ_CHUNK: usize = 32 * 1024;

/// Most client packets written to the target at once (taken from the channel's queue, so a
/// tunnel holds at most this many packets besides the queue's).
const MAX_BATCH: usize = 8;

/// A tunnel's place in its connection's count; released on drop, whatever happens.
pub(crate) struct Slot {
    inner: Arc<Inner>,
    conn: Arc<Conn>,
    open: bool,
}

impl Slot {
    /// Takes over a place already counted in `conn.tunnels`.
    pub(crate) fn new(inner: Arc<Inner>, conn: Arc<Conn>) -> Self {
        Slot {
            inner,
            conn,
            open: false,
        }
    }

    fn mark_open(&mut self) {
        self.open = true;
        self.inner.tunnels.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.open {
            self.inner.tunnels.fetch_sub(1, Ordering::Relaxed);
        }
        self.conn.tunnels.fetch_sub(1, Ordering::AcqRel);
        self.conn.tunnels_changed.notify_one();
    }
}

pub(crate) async fn run(
    mut slot: Slot,
    principal: Principal,
    host: String,
    port: u16,
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
) {
    let inner = slot.inner.clone();
    let conn = slot.conn.clone();
    let limits = &inner.limits;
    let peer = conn.peer;
    let refuse = |reason: String| {
        debug!(%peer, host, port, %reason, "ssh tunnel refused");
        inner.policy.audit(AuditEvent::Tunnel {
            peer,
            principal: principal.clone(),
            host: host.clone(),
            port: u32::from(port),
            accepted: false,
            reason: Some(reason),
        });
    };

    let resolved = tokio::select! {
        _ = conn.stop.cancelled() => None,
        r = tokio::time::timeout(limits.policy_timeout, inner.policy.resolve(&principal, &host, port)) => Some(r),
    };
    let target = match resolved {
        None => {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
        Some(Ok(Ok(target))) => target,
        Some(Ok(Err(reason))) => {
            refuse(reason);
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
        Some(Err(_)) => {
            refuse("policy did not answer in time".into());
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
    };
    let (stream, target) = match target {
        Target::Local(local) => (Stream::Local(local), "in-process".to_string()),
        Target::Tcp(addr) => match connect(&conn.stop, limits.connect_timeout, addr).await {
            Ok(tcp) => (Stream::Tcp(tcp), addr.to_string()),
            Err(failure) => {
                if let Some((reason, why)) = failure {
                    refuse(reason);
                    reply.reject(why).await;
                } else {
                    reply
                        .reject(ChannelOpenFailure::AdministrativelyProhibited)
                        .await;
                }
                return;
            }
        },
    };
    reply.accept().await;
    slot.mark_open();
    debug!(%peer, host, port, %target, "ssh tunnel open");
    inner.policy.audit(AuditEvent::Tunnel {
        peer,
        principal: principal.clone(),
        host: host.clone(),
        port: u32::from(port),
        accepted: true,
        reason: None,
    });

    let (bytes_up, bytes_down) = pump(
        channel,
        stream,
        &conn.stop,
        limits.target_write_timeout,
        limits.close_grace,
    )
    .await;
    debug!(%peer, host, port, bytes_up, bytes_down, "ssh tunnel closed");
    inner.policy.audit(AuditEvent::TunnelClosed {
        peer,
        principal,
        host,
        port: u32::from(port),
        bytes_up,
        bytes_down,
    });
    drop(slot);
}

/// A connected target.
enum Stream {
    Tcp(TcpStream),
    Local(crate::local::LocalTarget),
}

/// Connects to a TCP target. `Err(None)`: the session is stopping; `Err(Some(..))`: the
/// refusal's reason and the channel-open failure to answer with.
async fn connect(
    stop: &CancellationToken,
    timeout: Duration,
    target: std::net::SocketAddr,
) -> Result<TcpStream, Option<(String, ChannelOpenFailure)>> {
    let connected = tokio::select! {
        _ = stop.cancelled() => None,
        r = tokio::time::timeout(timeout, TcpStream::connect(target)) => Some(r),
    };
    match connected {
        None => Err(None),
        Some(Ok(Ok(tcp))) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Some(Ok(Err(e))) => Err(Some((
            format!("target {target} unreachable: {e}"),
            ChannelOpenFailure::ConnectFailed,
        ))),
        Some(Err(_)) => Err(Some((
            format!("target {target} did not answer in time"),
            ChannelOpenFailure::ConnectFailed,
        ))),
    }
}

/// What the client side of a tunnel did.
enum ClientEvent {
    /// The client sent EOF (passed on to the target); more messages may follow.
    Eof(ChannelReadHalf),
    /// The client closed the channel, or the session is gone.
    Closed,
    /// The target refused the client's data.
    Failed(ChannelReadHalf),
}

/// What the target side of a tunnel did.
enum TargetEnd {
    /// The target sent EOF (passed on to the client).
    Eof,
    /// Reading from the target failed.
    Failed,
    /// The session can take no more data.
    SessionGone,
}

type ClientFuture<'a> = Pin<Box<dyn Future<Output = ClientEvent> + Send + 'a>>;

/// Client → target, until the client's EOF or close.
///
/// The data packets already queued when a write starts go out together, in one vectored
/// write of at most [`MAX_BATCH`] packets: the target is woken once for them, not once per
/// packet.
async fn client_to_target(
    mut rx: ChannelReadHalf,
    mut target: TargetWrite,
    bytes: &AtomicU64,
    stall: Duration,
) -> ClientEvent {
    let mut batch: VecDeque<Bytes> = VecDeque::with_capacity(MAX_BATCH);
    loop {
        let msg = match rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                // Empty packets carry nothing (and would make a vectored write return 0).
                if !data.is_empty() {
                    batch.push_back(data);
                }
                let mut after = None;
                for _ in 1..MAX_BATCH {
                    match ready(&mut rx) {
                        Some(Some(ChannelMsg::Data { data })) => {
                            if !data.is_empty() {
                                batch.push_back(data);
                            }
                        }
                        Some(other) => {
                            after = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                let len: usize = batch.iter().map(Bytes::len).sum();
                if target.write_batch(&mut batch, stall).await.is_err() {
                    return ClientEvent::Failed(rx);
                }
                bytes.fetch_add(len as u64, Ordering::Relaxed);
                match after {
                    Some(msg) => msg,
                    None => continue,
                }
            }
            msg => msg,
        };
        match msg {
            Some(ChannelMsg::Eof) => {
                target.shutdown(stall).await;
                return ClientEvent::Eof(rx);
            }
            Some(ChannelMsg::Close) | None => return ClientEvent::Closed,
            // Extended data, window adjustments and requests carry nothing for the target.
            Some(_) => {}
        }
    }
}

/// The writing half of a connected target.
enum TargetWrite {
    Tcp(OwnedWriteHalf),
    Local(LocalWriter),
}

impl TargetWrite {
    /// Writes (TCP) or hands over (in-process) every packet of `batch`, emptying it.
    async fn write_batch(
        &mut self,
        batch: &mut VecDeque<Bytes>,
        stall: Duration,
    ) -> std::io::Result<()> {
        match self {
            TargetWrite::Tcp(w) => write_batch(w, batch, stall).await,
            TargetWrite::Local(w) => {
                while let Some(packet) = batch.pop_front() {
                    tokio::time::timeout(stall, w.send(packet))
                        .await
                        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
                }
                Ok(())
            }
        }
    }

    /// Passes the client's end of file on.
    async fn shutdown(&mut self, stall: Duration) {
        match self {
            TargetWrite::Tcp(w) => {
                let _ = tokio::time::timeout(stall, w.shutdown()).await;
            }
            TargetWrite::Local(w) => w.shutdown(),
        }
    }
}

/// The reading half of a connected target.
enum TargetRead {
    Tcp(OwnedReadHalf),
    Local(LocalReader),
}

/// The next message of the channel if one is queued (`Some(None)`: the channel is gone), without
/// waiting.
fn ready(rx: &mut ChannelReadHalf) -> Option<Option<ChannelMsg>> {
    let wait = std::pin::pin!(rx.wait());
    match wait.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(msg) => Some(msg),
        Poll::Pending => None,
    }
}

/// Writes every byte of `batch` (at most [`MAX_BATCH`] packets, none empty) to the target,
/// emptying it; fails if the target accepts nothing for `stall`.
async fn write_batch<W: AsyncWrite + Unpin>(
    target: &mut W,
    batch: &mut VecDeque<Bytes>,
    stall: Duration,
) -> std::io::Result<()> {
    while !batch.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_BATCH];
        for (slot, b) in slices.iter_mut().zip(batch.iter()) {
            *slot = IoSlice::new(b);
        }
        let write = target.write_vectored(&slices[..batch.len().min(MAX_BATCH)]);
        let n = tokio::time::timeout(stall, write)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut left = n;
        while left > 0 {
            let Some(front) = batch.front_mut() else {
                break;
            };
            if front.len() <= left {
                left -= front.len();
                batch.pop_front();
            } else {
                front.advance(left);
                left = 0;
            }
        }
    }
    Ok(())
}

/// After the client's EOF (or a failed target): discards whatever else the client sends
/// until it closes the channel, so that the channel's queue never fills.
async fn until_client_closes(mut rx: ChannelReadHalf) -> ClientEvent {
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Close) | None => return ClientEvent::Closed,
            Some(_) => {}
        }
    }
}

/// Target → client, until the target's EOF.
async fn target_to_client(
    target: TargetRead,
    tx: &ChannelWriteHalf<Msg>,
    bytes: &AtomicU64,
) -> TargetEnd {
    let target = match target {
        TargetRead::Tcp(t) => t,
        TargetRead::Local(mut t) => {
            // Chunks as the destination wrote them: no buffer while idle, no copy.
            while let Some(chunk) = t.recv().await {
                let n = chunk.len();
                if tx.data_bytes(chunk).await.is_err() {
                    return TargetEnd::SessionGone;
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            return if tx.eof().await.is_ok() {
                TargetEnd::Eof
            } else {
                TargetEnd::SessionGone
            };
        }
    };
    loop {
        if target.readable().await.is_err() {
            return TargetEnd::Failed;
        }
        // A buffer per read, allocated only once there is something to read: an idle
        // tunnel holds none, and a small read is copied out so that it does not pin a
        // whole chunk while it waits in the session's queue.
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        match target.try_read_buf(&mut buf) {
            Ok(0) => {
                return if tx.eof().await.is_ok() {
                    TargetEnd::Eof
                } else {
                    TargetEnd::SessionGone
                };
            }
            Ok(n) => {
                let chunk = if n < READ_CHUNK / 8 {
                    Bytes::copy_from_slice(&buf)
                } else {
                    buf.freeze()
                };
                if tx.data_bytes(chunk).await.is_err() {
                    return TargetEnd::SessionGone;
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return TargetEnd::Failed,
        }
    }
}

/// How the tunnel ended.
enum End {
    /// The session is being stopped.
    Stopped,
    /// The client closed the channel.
    ClientClosed,
    /// Both sides are done (or one failed) and the client did not close in time.
    Linger,
}

/// Carries bytes both ways until the tunnel ends; returns (client→target, target→client)
/// byte counts.
async fn pump(
    channel: Channel<Msg>,
    stream: Stream,
    stop: &CancellationToken,
    stall: Duration,
    grace: Duration,
) -> (u64, u64) {
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let (rx, tx) = channel.split();
    let (target_read, target_write) = match stream {
        Stream::Tcp(tcp) => {
            let (r, w) = tcp.into_split();
            (TargetRead::Tcp(r), TargetWrite::Tcp(w))
        }
        Stream::Local(local) => {
            let (r, w) = local.into_split();
            (TargetRead::Local(r), TargetWrite::Local(w))
        }
    };
    let end = {
        let mut client: ClientFuture<'_> = Box::pin(client_to_target(rx, target_write, &up, stall));
        let mut target = Box::pin(target_to_client(target_read, &tx, &down));
        let mut target_running = true;
        let mut client_eof = false;
        let mut target_eof = false;
        let mut failed = false;
        let linger = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(linger);
        let mut linger_armed = false;
        loop {
            if !linger_armed && (failed || (client_eof && target_eof)) {
                linger.as_mut().reset(tokio::time::Instant::now() + grace);
                linger_armed = true;
            }
            tokio::select! {
                _ = stop.cancelled() => break End::Stopped,
                event = &mut client => match event {
                    ClientEvent::Eof(rx) => {
                        client_eof = true;
                        client = Box::pin(until_client_closes(rx));
                    }
                    ClientEvent::Closed => break End::ClientClosed,
                    ClientEvent::Failed(rx) => {
                        failed = true;
                        client = Box::pin(until_client_closes(rx));
                        if target_running {
                            target_running = false;
                            let _ = tokio::time::timeout(grace, tx.eof()).await;
                        }
                    }
                },
                r = &mut target, if target_running => {
                    target_running = false;
                    match r {
                        TargetEnd::Eof => target_eof = true,
                        TargetEnd::Failed => {
                            failed = true;
                            let _ = tokio::time::timeout(grace, tx.eof()).await;
                        }
                        TargetEnd::SessionGone => break End::ClientClosed,
                    }
                }
                _ = &mut linger, if linger_armed => break End::Linger,
            }
        }
    };
    match end {
        End::ClientClosed => {}
        End::Stopped | End::Linger => {
            let _ = tokio::time::timeout(grace, tx.close()).await;
        }
    }
    (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn write_batch_writes_every_byte_in_order_across_partial_writes() {
        // A pipe of 5 bytes accepts every write only in part.
        let (mut w, mut r) = tokio::io::duplex(5);
        let packets: Vec<Bytes> = (0..MAX_BATCH)
            .map(|i| Bytes::from(vec![i as u8; 3 + i * 7]))
            .collect();
        let expected: Vec<u8> = packets.iter().flat_map(|p| p.iter().copied()).collect();
        let mut batch: VecDeque<Bytes> = packets.into_iter().collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.map(|_| got)
        });
        write_batch(&mut w, &mut batch, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(batch.is_empty());
        drop(w);
        assert_eq!(reader.await.unwrap().unwrap(), expected);
    }

    #[tokio::test]
    async fn write_batch_fails_when_the_target_is_gone() {
        let (mut w, r) = tokio::io::duplex(5);
        drop(r);
        let mut batch: VecDeque<Bytes> = [Bytes::from_static(b"hello")].into_iter().collect();
        let r = write_batch(&mut w, &mut batch, Duration::from_secs(5)).await;
        assert!(r.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn write_batch_gives_up_on_a_target_that_accepts_nothing() {
        let (mut w, _r) = tokio::io::duplex(4);
        let mut batch: VecDeque<Bytes> = [Bytes::from_static(b"more than four")]
            .into_iter()
            .collect();
        let r = write_batch(&mut w, &mut batch, Duration::from_secs(5)).await;
        assert_eq!(r.map_err(|e| e.kind()), Err(std::io::ErrorKind::TimedOut));
        // What the target did accept is gone from the batch.
        assert_eq!(batch.front().map(|b| &b[..]), Some(&b" than four"[..]));
    }
}
