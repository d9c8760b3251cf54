//! One `direct-tcpip` tunnel: resolve, connect, then carry bytes both ways.
//!
//! The two directions run concurrently so that neither can block the other. Client→target
//! data arrives through the channel's bounded queue and is written to the target with a
//! stall timeout; target→client data is read only once the target is readable (an idle
//! tunnel holds no buffer) and sent within the client's SSH window. Half-close is kept: an
//! EOF in one direction is passed on and the other direction keeps running until it ends
//! too. Once both directions have ended (or one failed), the client gets a moment to close
//! the channel itself before the gateway closes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelMsg, ChannelOpenFailure, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::gateway::{Conn, Inner};
use crate::{AuditEvent, Principal};

/// Bytes read from the target at once.
const READ_CHUNK: usize = 32 * 1024;

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
        Some(Ok(Ok(addr))) => addr,
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
    let connected = tokio::select! {
        _ = conn.stop.cancelled() => None,
        r = tokio::time::timeout(limits.connect_timeout, TcpStream::connect(target)) => Some(r),
    };
    let tcp = match connected {
        None => {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
        Some(Ok(Ok(tcp))) => tcp,
        Some(Ok(Err(e))) => {
            refuse(format!("target {target} unreachable: {e}"));
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
        Some(Err(_)) => {
            refuse(format!("target {target} did not answer in time"));
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
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
        tcp,
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
async fn client_to_target(
    mut rx: ChannelReadHalf,
    mut target: OwnedWriteHalf,
    bytes: &AtomicU64,
    stall: Duration,
) -> ClientEvent {
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Data { data }) => {
                match tokio::time::timeout(stall, target.write_all(&data)).await {
                    Ok(Ok(())) => {
                        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    Ok(Err(_)) | Err(_) => return ClientEvent::Failed(rx),
                }
            }
            Some(ChannelMsg::Eof) => {
                let _ = tokio::time::timeout(stall, target.shutdown()).await;
                return ClientEvent::Eof(rx);
            }
            Some(ChannelMsg::Close) | None => return ClientEvent::Closed,
            // Extended data, window adjustments and requests carry nothing for the target.
            Some(_) => {}
        }
    }
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
    target: OwnedReadHalf,
    tx: &ChannelWriteHalf<Msg>,
    bytes: &AtomicU64,
) -> TargetEnd {
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
    tcp: TcpStream,
    stop: &CancellationToken,
    stall: Duration,
    grace: Duration,
) -> (u64, u64) {
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let (rx, tx) = channel.split();
    let (target_read, target_write) = tcp.into_split();
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
