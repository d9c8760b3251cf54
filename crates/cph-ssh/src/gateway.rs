//! The gateway: admission of TCP connections, the registry of live connections, and each
//! connection's life from accept to close.
//!
//! Lock order: the registry lock may be held while taking a connection's principal lock,
//! never the other way round; the throttle lock is never held together with either.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use russh::server::RunningSession;
use russh::{MethodKind, MethodSet, SshId, cipher, kex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::handler::ConnHandler;
use crate::stream::Killable;
use crate::throttle::Throttle;
use crate::{AuditEvent, GatewayConfig, GatewayPolicy, Limits, Principal, SshError};

/// Locks a mutex, taking over the data of a holder that panicked (all data guarded here stays
/// consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An SSH gateway. Cheap to clone: clones share connections, counters and the throttle.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("connections", &self.connections())
            .field("sessions", &self.sessions())
            .field("tunnels", &self.tunnels())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) ssh: Arc<russh::server::Config>,
    pub(crate) limits: Limits,
    pub(crate) policy: Arc<dyn GatewayPolicy>,
    pub(crate) registry: Mutex<Registry>,
    throttle: Mutex<Throttle>,
    /// Open tunnels of the whole gateway.
    pub(crate) tunnels: AtomicUsize,
}

pub(crate) struct Registry {
    next_id: u64,
    /// Bumped by every revoke; a login registers only if no revoke ran since its policy
    /// answer.
    pub(crate) generation: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// State shared by a connection's task, its protocol handler and its tunnels.
pub(crate) struct Conn {
    id: u64,
    ip: IpAddr,
    pub(crate) peer: SocketAddr,
    /// Fires when the connection must end (revoke, idle, shutdown); tunnels watch it.
    pub(crate) stop: CancellationToken,
    /// Fires when authentication succeeded.
    pub(crate) authed: CancellationToken,
    /// Why `stop` fired, when it was not the gateway shutting down.
    close_reason: Mutex<Option<&'static str>>,
    /// Set once the login is registered; read by `revoke`.
    pub(crate) principal: Mutex<Option<Principal>>,
    /// Rejected authentication requests (not counting `none`).
    pub(crate) rejections: AtomicU32,
    /// Tunnels open or being opened.
    pub(crate) tunnels: AtomicUsize,
    /// Signalled whenever `tunnels` changes.
    pub(crate) tunnels_changed: Notify,
    /// Tracks the tunnel tasks so that shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
}

impl Conn {
    fn close(&self, reason: &'static str) {
        lock(&self.close_reason).get_or_insert(reason);
        self.stop.cancel();
    }
}

/// Algorithms offered to clients. Key exchange: hybrid post-quantum, then X25519, then
/// finite-field groups for old clients. Ciphers: AES-GCM only (OpenSSH then picks
/// aes128-gcm). Client keys: no SHA-1 RSA signatures.
fn preferred() -> russh::Preferred {
    use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
    russh::Preferred {
        kex: Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::DH_G16_SHA512,
            kex::DH_G14_SHA256,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        // AES-GCM only: with AES instructions it costs both ends about half the CPU per byte of
        // ChaCha20-Poly1305, which OpenSSH would otherwise pick first.
        cipher: Cow::Borrowed(&[cipher::AES_128_GCM, cipher::AES_256_GCM]),
        ..russh::Preferred::default()
    }
}

impl Gateway {
    /// A gateway with `config` whose decisions are `policy`'s. Out-of-range limits are moved
    /// into range (see [`Limits`]).
    pub fn new(config: GatewayConfig, policy: Arc<dyn GatewayPolicy>) -> Gateway {
        let limits = config.limits.sanitized();
        let ssh = russh::server::Config {
            server_id: SshId::Standard(Cow::Borrowed("SSH-2.0-cph")),
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            auth_rejection_time: limits.auth_rejection_delay,
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![config.host_key.private_key().clone()],
            window_size: limits.window_size,
            maximum_packet_size: limits.max_packet_size,
            channel_buffer_size: limits.channel_buffer,
            event_buffer_size: 64,
            preferred: preferred(),
            // The initial `none` probe counts as a rejection in the protocol engine.
            max_auth_attempts: limits.max_auth_attempts + 1,
            // A live client answers keepalives, so this only ends sessions whose peer
            // vanished or stopped reading while a write was pending.
            inactivity_timeout: Some(
                limits.keepalive_interval
                    * (u32::try_from(limits.keepalive_max).unwrap_or(100) + 2),
            ),
            keepalive_interval: Some(limits.keepalive_interval),
            keepalive_max: limits.keepalive_max,
            nodelay: true,
            ..russh::server::Config::default()
        };
        let throttle = Throttle::new(
            limits.failure_threshold,
            limits.failure_window,
            limits.block_duration,
            limits.max_tracked_ips,
        );
        Gateway {
            inner: Arc::new(Inner {
                ssh: Arc::new(ssh),
                limits,
                policy,
                registry: Mutex::new(Registry {
                    next_id: 0,
                    generation: 0,
                    conns: HashMap::new(),
                    per_ip: HashMap::new(),
                }),
                throttle: Mutex::new(throttle),
                tunnels: AtomicUsize::new(0),
            }),
        }
    }

    /// Serves `listener` until `cancel` fires, then closes every session it accepted and
    /// waits (bounded) for them to end.
    ///
    /// Transient accept errors (out of descriptors, aborted handshakes) are logged and
    /// retried; any other listener error closes the sessions and is returned.
    pub async fn serve(
        &self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> Result<(), SshError> {
        let stop_all = cancel.child_token();
        let tracker = TaskTracker::new();
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "ssh gateway listening");
        }
        let result = loop {
            let accepted = tokio::select! {
                _ = stop_all.cancelled() => break Ok(()),
                r = listener.accept() => r,
            };
            match accepted {
                Ok((tcp, peer)) => self.admit(tcp, peer, &stop_all, &tracker),
                Err(e) if is_transient(&e) => {
                    warn!(error = %e, "ssh gateway accept failed; retrying");
                    tokio::select! {
                        _ = stop_all.cancelled() => break Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                Err(e) => break Err(SshError::Listener(e)),
            }
        };
        drop(listener);
        stop_all.cancel();
        tracker.close();
        let wait = self.inner.limits.close_grace * 2 + Duration::from_secs(1);
        if tokio::time::timeout(wait, tracker.wait()).await.is_err() {
            warn!("ssh gateway: some connections outlived the shutdown grace period");
        }
        result
    }

    fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        parent: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        let inner = &self.inner;
        let ip = client_group(peer.ip());
        let refuse = |what: &str| {
            debug!(%peer, what, "ssh connection refused");
            inner.policy.audit(AuditEvent::Refused {
                peer,
                what: what.to_string(),
            });
        };
        if lock(&inner.throttle).is_blocked(ip, std::time::Instant::now()) {
            return refuse("throttled");
        }
        let conn = {
            let mut reg = lock(&inner.registry);
            if reg.conns.len() >= inner.limits.max_connections {
                drop(reg);
                return refuse("connection-limit");
            }
            let per_ip = reg.per_ip.get(&ip).copied().unwrap_or(0);
            if per_ip >= inner.limits.max_connections_per_ip {
                drop(reg);
                return refuse("per-ip-limit");
            }
            reg.next_id += 1;
            let conn = Arc::new(Conn {
                id: reg.next_id,
                ip,
                peer,
                stop: parent.child_token(),
                authed: CancellationToken::new(),
                close_reason: Mutex::new(None),
                principal: Mutex::new(None),
                rejections: AtomicU32::new(0),
                tunnels: AtomicUsize::new(0),
                tunnels_changed: Notify::new(),
                tracker: tracker.clone(),
            });
            reg.conns.insert(conn.id, conn.clone());
            *reg.per_ip.entry(ip).or_insert(0) += 1;
            conn
        };
        tracker.spawn(run_connection(inner.clone(), conn, tcp));
    }

    /// Closes every session whose principal `matches`: its tunnels are dropped at once and
    /// the client is disconnected. Returns how many sessions matched. Logins whose policy
    /// answer predates this call are re-authorized before they are admitted.
    pub fn revoke(&self, matches: impl Fn(&Principal) -> bool) -> usize {
        let mut reg = lock(&self.inner.registry);
        reg.generation += 1;
        let mut n = 0;
        for conn in reg.conns.values() {
            if conn.stop.is_cancelled() {
                continue;
            }
            let hit = lock(&conn.principal).as_ref().is_some_and(&matches);
            if hit {
                conn.close("revoked");
                n += 1;
            }
        }
        n
    }

    /// Authenticated sessions that are not being closed.
    pub fn sessions(&self) -> usize {
        lock(&self.inner.registry)
            .conns
            .values()
            .filter(|c| !c.stop.is_cancelled() && lock(&c.principal).is_some())
            .count()
    }

    /// Open TCP connections, authenticated or not.
    pub fn connections(&self) -> usize {
        lock(&self.inner.registry).conns.len()
    }

    /// Open tunnels.
    pub fn tunnels(&self) -> usize {
        self.inner.tunnels.load(Ordering::Relaxed)
    }
}

/// The unit that per-address limits and throttling count: an IPv4 address, or the /64 an
/// IPv6 address belongs to (one host usually owns a whole /64).
pub(crate) fn client_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
    ) || matches!(
        e.raw_os_error(),
        // EMFILE, ENFILE, ENOBUFS, ENOMEM
        Some(24 | 23 | 105 | 12)
    )
}

/// How a connection ended, as far as the protocol engine tells.
enum Ending {
    /// The client left, the socket failed, or the gateway disconnected it.
    Gone,
    Keepalive,
    NoCommonAlgorithm,
    Malformed(String),
}

fn classify(e: &russh::Error) -> Ending {
    use russh::Error as E;
    match e {
        E::IO(_)
        | E::Disconnect
        | E::HUP
        | E::SendError
        | E::RecvError
        | E::Elapsed(_)
        | E::InactivityTimeout
        | E::ConnectionTimeout
        | E::Join(_) => Ending::Gone,
        E::KeepaliveTimeout => Ending::Keepalive,
        E::NoCommonAlgo { .. } => Ending::NoCommonAlgorithm,
        other => Ending::Malformed(other.to_string()),
    }
}

/// Runs one connection from accept to close, then removes it from the registry.
async fn run_connection(inner: Arc<Inner>, conn: Arc<Conn>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now() + inner.limits.auth_timeout;
    let kill = CancellationToken::new();
    let handler = ConnHandler::new(inner.clone(), conn.clone());
    let stream = Killable::new(tcp, &kill);

    let mut auth_timed_out = false;
    let ending = 'run: {
        // Version exchange.
        let session = tokio::select! {
            r = russh::server::run_stream(inner.ssh.clone(), stream, handler) => match r {
                Ok(session) => session,
                Err(e) => break 'run Some(classify(&e)),
            },
            _ = tokio::time::sleep_until(deadline) => {
                auth_timed_out = true;
                break 'run None;
            }
            _ = conn.stop.cancelled() => break 'run None,
        };
        let mut session = std::pin::pin!(session);
        // Key exchange and authentication.
        tokio::select! {
            r = &mut session => break 'run r.err().map(|e| classify(&e)),
            _ = conn.authed.cancelled() => {}
            _ = tokio::time::sleep_until(deadline) => {
                auth_timed_out = true;
                kill.cancel();
                let _ = tokio::time::timeout(inner.limits.close_grace, &mut session).await;
                break 'run None;
            }
            _ = conn.stop.cancelled() => {
                close_session(&inner, &conn, &kill, session.as_mut()).await;
                break 'run None;
            }
        }
        // Authenticated: serve until the client leaves, the session is stopped, or it has
        // had no tunnel for the idle timeout.
        let mut idle_since = Some(Instant::now());
        loop {
            let changed = conn.tunnels_changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if conn.tunnels.load(Ordering::Acquire) > 0 {
                idle_since = None;
            } else if idle_since.is_none() {
                idle_since = Some(Instant::now());
            }
            let idle_deadline = idle_since.map(|t| t + inner.limits.idle_timeout);
            tokio::select! {
                r = &mut session => break 'run r.err().map(|e| classify(&e)),
                _ = conn.stop.cancelled() => {
                    close_session(&inner, &conn, &kill, session.as_mut()).await;
                    break 'run None;
                }
                _ = &mut changed => {}
                _ = sleep_until_opt(idle_deadline) => {
                    if conn.tunnels.load(Ordering::Acquire) == 0 {
                        conn.close("idle");
                    }
                }
            }
        }
    };
    kill.cancel();
    finish_connection(&inner, &conn, ending, auth_timed_out);
    // Tunnels of a session that ended on its own notice through their channels; this also
    // releases one blocked on a stalled target at once.
    conn.stop.cancel();
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Says goodbye to a stopped session, then cuts its socket if it lingers.
async fn close_session(
    inner: &Inner,
    conn: &Conn,
    kill: &CancellationToken,
    mut session: std::pin::Pin<&mut RunningSession<ConnHandler>>,
) {
    let reason = lock(&conn.close_reason).unwrap_or("shutdown");
    let description = match reason {
        "revoked" => "access revoked",
        "idle" => "idle timeout",
        _ => "gateway shutting down",
    };
    let grace = inner.limits.close_grace;
    let handle = session.handle();
    let goodbye = async {
        let _ = handle
            .disconnect(
                russh::Disconnect::ByApplication,
                description.to_string(),
                String::new(),
            )
            .await;
        let _ = (&mut session).await;
    };
    if tokio::time::timeout(grace, goodbye).await.is_err() {
        kill.cancel();
        let _ = tokio::time::timeout(grace, &mut session).await;
    }
}

fn finish_connection(inner: &Inner, conn: &Conn, ending: Option<Ending>, auth_timed_out: bool) {
    let principal = lock(&conn.principal).clone();
    // A failed login counts before the connection leaves the registry, so that an observer
    // who sees the connection gone also sees its failure counted.
    if principal.is_none()
        && (auth_timed_out || conn.rejections.load(Ordering::Relaxed) > 0)
        && lock(&inner.throttle).record_failure(conn.ip, std::time::Instant::now())
    {
        warn!(ip = %conn.ip, "ssh logins from this address throttled after repeated failures");
    }
    {
        let mut reg = lock(&inner.registry);
        reg.conns.remove(&conn.id);
        if let Some(n) = reg.per_ip.get_mut(&conn.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                reg.per_ip.remove(&conn.ip);
            }
        }
    }
    let peer = conn.peer;
    let audit = |event| inner.policy.audit(event);
    match principal {
        Some(principal) => {
            let reason = match (*lock(&conn.close_reason), &ending) {
                (Some(r), _) => r.to_string(),
                (None, _) if conn.stop.is_cancelled() => "shutdown".to_string(),
                (None, Some(Ending::Keepalive)) => "keepalive".to_string(),
                (None, Some(Ending::Malformed(e))) => format!("error: {e}"),
                (None, _) => "client".to_string(),
            };
            info!(%peer, user = %principal.user, %reason, "ssh session closed");
            audit(AuditEvent::SessionClosed {
                peer,
                principal,
                reason,
            });
        }
        None => {
            if auth_timed_out {
                audit(AuditEvent::Refused {
                    peer,
                    what: "auth-timeout".into(),
                });
            }
            match ending {
                Some(Ending::Malformed(e)) => {
                    debug!(%peer, error = %e, "ssh connection failed");
                    audit(AuditEvent::Refused {
                        peer,
                        what: "malformed".into(),
                    });
                }
                Some(Ending::NoCommonAlgorithm) => audit(AuditEvent::Refused {
                    peer,
                    what: "no-common-algorithm".into(),
                }),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_grouped_by_ipv4_host_and_ipv6_slash_64() {
        let g = |s: &str| client_group(s.parse().unwrap()).to_string();
        assert_eq!(g("192.0.2.7"), "192.0.2.7");
        assert_eq!(g("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(g("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(g("2001:db8:1:2::1"), g("2001:db8:1:2:ffff::9"));
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"));
    }
}
