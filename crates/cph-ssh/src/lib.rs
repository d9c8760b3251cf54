//! An SSH gateway that gives keyed access to a set of TCP targets, and nothing else.
//!
//! A [`Gateway`] serves one TCP listener. Clients log in with a public key only; a
//! successful login yields a [`Principal`] chosen by the [`GatewayPolicy`]. The only thing a
//! principal can do is open `direct-tcpip` channels (`ssh -N -L local:host:port`), and each
//! one goes wherever [`GatewayPolicy::resolve`] says `host:port` really is, or nowhere.
//! Shells, commands, subsystems, remote forwarding, agent and X11 forwarding are refused and
//! audited. The crate knows nothing about what the targets are: the policy decides.
//!
//! # Invariants
//!
//! - A login is accepted only after the policy accepted the offered key *and* the SSH layer
//!   verified the client's signature with it. Keys are accepted only for `ssh-ed25519`,
//!   `ecdsa-sha2-nistp{256,384,521}` and `rsa-sha2-{256,512}` with at least 2048-bit moduli.
//! - [`Gateway::revoke`] stops every matching session: its tunnels are dropped at once and the
//!   client is disconnected (politely first, then by closing the socket after
//!   [`Limits::close_grace`]). A login whose policy answer was obtained before a `revoke` is
//!   re-authorized before it is admitted, so a revocation never misses a login in flight.
//! - Every queue and buffer is bounded: connections per gateway and per address, channels per
//!   session, the failure table of the throttle, and per tunnel at most
//!   [`Limits::channel_buffer`] SSH packets queued toward the target, at most 8 more being
//!   written to it (packets already queued go out in one vectored write), and one read buffer
//!   toward the client (which only ever receives what its SSH window allows).
//! - Every wait is bounded: the handshake and authentication by [`Limits::auth_timeout`],
//!   policy calls by [`Limits::policy_timeout`], target connects by
//!   [`Limits::connect_timeout`], a stalled target by [`Limits::target_write_timeout`], dead
//!   peers by keepalives, and sessions without tunnels by [`Limits::idle_timeout`].
//! - Malformed traffic ends only the connection that sent it.
//!
//! # Targets
//!
//! [`GatewayPolicy::resolve`] answers with a [`Target`]: a TCP address the gateway connects to,
//! or an in-process stream ([`local::pair`]) whose other end the policy has handed to a
//! destination in the same process (the service serves it on a phone's ADB endpoint). An
//! in-process target carries the same bytes with the same flow control, without a socket:
//! client packets are handed over as they are (the destination may take them as those very
//! chunks through [`local::LocalStream::into_split`]), and the destination's writes come back
//! as the chunks it wrote, each direction bounded to [`local::DEFAULT_CAPACITY`] bytes.
//!
//! # Flow control
//!
//! Data from the client is handed to each tunnel through a queue of at most
//! [`Limits::channel_buffer`] packets; when a tunnel's target does not keep up, the queue
//! fills and the SSH connection stops reading from its socket, so the client's TCP window
//! (and its SSH channel windows) close. This back-pressure applies to the whole connection:
//! one stalled target slows the other tunnels of the same SSH connection, never those of
//! other connections. A target that accepts nothing for [`Limits::target_write_timeout`] has
//! its tunnel closed, which releases the connection.
//!
//! # Algorithms
//!
//! Key exchange `mlkem768x25519-sha256`, `curve25519-sha256`, DH groups 16 and 14; ciphers
//! `aes128-gcm@openssh.com` and `aes256-gcm@openssh.com` only, in the client's order of
//! preference (OpenSSH picks aes128-gcm). ChaCha20-Poly1305 is not offered: with AES
//! instructions it costs both ends about twice the CPU per byte, and a tunnel's throughput is
//! bounded by that CPU. The cipher code comes from ring (feature `ring`, the default) or AWS-LC
//! (feature `aws-lc`).

mod audit;
mod gateway;
mod handler;
mod hostkey;
pub mod local;
mod policy;
mod stream;
mod throttle;
mod tunnel;

use std::path::PathBuf;
use std::time::Duration;

pub use audit::AuditEvent;
pub use gateway::Gateway;
pub use hostkey::HostKey;
pub use policy::{GatewayPolicy, OfferedKey, PolicyFuture, Principal, Target};

/// Errors of this crate that callers may branch on.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host key file could not be read, created or written.
    #[error("host key file {path}: {source}")]
    HostKeyIo {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The host key file exists but holds no usable unencrypted OpenSSH private key.
    #[error("host key file {path}: {reason}")]
    HostKeyFormat {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The listener failed in a way that accepting again cannot fix.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
}

/// Everything a [`Gateway`] needs besides its policy.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The key the gateway proves its identity with.
    pub host_key: HostKey,
    /// Bounds on resources and time.
    pub limits: Limits,
}

/// Bounds on what one gateway accepts. [`Limits::default`] gives production values.
///
/// Values outside their working range are moved into it when the gateway is built: zero
/// counts and durations that must be positive are raised to the smallest working value, and
/// durations are capped at a year (the keepalive interval at an hour, the close grace at a
/// minute, the rejection delay at ten seconds).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent TCP connections per gateway, authenticated or not (default 1024).
    pub max_connections: usize,
    /// Concurrent TCP connections from one IP address (default 64). Here and for
    /// throttling, all IPv6 addresses of one /64 count as one address.
    pub max_connections_per_ip: usize,
    /// Open channels per SSH connection, tunnels and session channels together (default 64).
    pub max_channels_per_session: usize,
    /// Rejected authentication requests per connection before it is disconnected, not
    /// counting the client's initial `none` probe (default 6; at most 100).
    pub max_auth_attempts: usize,
    /// Time from TCP accept to successful authentication (default 30 s).
    pub auth_timeout: Duration,
    /// Minimum time every rejected authentication request takes, so that rejections do not
    /// reveal why they happened (default 250 ms).
    pub auth_rejection_delay: Duration,
    /// An authenticated session with no tunnel for this long is closed (default 10 min).
    pub idle_timeout: Duration,
    /// A keepalive is sent after this long without hearing from the client (default 30 s).
    pub keepalive_interval: Duration,
    /// Unanswered keepalives after which the client is considered gone (default 3; at most
    /// 100).
    pub keepalive_max: usize,
    /// Bound on each call of [`GatewayPolicy::authorize`] and [`GatewayPolicy::resolve`]
    /// (default 10 s); a call that takes longer refuses.
    pub policy_timeout: Duration,
    /// Bound on connecting to a tunnel's target (default 10 s).
    pub connect_timeout: Duration,
    /// A tunnel whose target accepts none of a packet for this long is closed (default 60 s).
    pub target_write_timeout: Duration,
    /// Time a session being closed (revoked, idle, shutting down) has to say goodbye before
    /// its socket is closed under it (default 2 s).
    pub close_grace: Duration,
    /// Failed logins from one IP address within [`Limits::failure_window`] after which its
    /// connections are refused for [`Limits::block_duration`] (default 10). A failed login is
    /// a connection that ends unauthenticated after at least one rejected attempt, or that
    /// runs out of [`Limits::auth_timeout`].
    pub failure_threshold: u32,
    /// See [`Limits::failure_threshold`] (default 60 s).
    pub failure_window: Duration,
    /// See [`Limits::failure_threshold`] (default 5 min).
    pub block_duration: Duration,
    /// Addresses the throttle remembers at once (default 65 536); when full, the entries
    /// closest to expiry are forgotten first.
    pub max_tracked_ips: usize,
    /// SSH channel window granted to the client for each tunnel, in bytes (default 2 MiB).
    pub window_size: u32,
    /// Largest SSH data packet accepted from the client, in bytes (default 32 KiB; at most
    /// 65 535).
    pub max_packet_size: u32,
    /// Packets from the client queued per tunnel while its target is busy (default 16).
    pub channel_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_channels_per_session: 64,
            max_auth_attempts: 6,
            auth_timeout: Duration::from_secs(30),
            auth_rejection_delay: Duration::from_millis(250),
            idle_timeout: Duration::from_secs(600),
            keepalive_interval: Duration::from_secs(30),
            keepalive_max: 3,
            policy_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            target_write_timeout: Duration::from_secs(60),
            close_grace: Duration::from_secs(2),
            failure_threshold: 10,
            failure_window: Duration::from_secs(60),
            block_duration: Duration::from_secs(300),
            max_tracked_ips: 65_536,
            window_size: 2 * 1024 * 1024,
            max_packet_size: 32 * 1024,
            channel_buffer: 16,
        }
    }
}

impl Limits {
    /// The same limits with every value moved into its working range.
    pub(crate) fn sanitized(&self) -> Limits {
        // Durations are capped at a year so that deadline arithmetic cannot overflow.
        let year = Duration::from_secs(365 * 24 * 3600);
        let within = |d: Duration, min: Duration| d.clamp(min, year);
        let max_packet_size = self.max_packet_size.clamp(4 * 1024, 65_535);
        Limits {
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
            max_channels_per_session: self.max_channels_per_session.max(1),
            max_auth_attempts: self.max_auth_attempts.clamp(1, 100),
            auth_timeout: within(self.auth_timeout, Duration::from_millis(100)),
            auth_rejection_delay: within(self.auth_rejection_delay, Duration::ZERO)
                .min(Duration::from_secs(10)),
            idle_timeout: within(self.idle_timeout, Duration::from_millis(100)),
            keepalive_interval: within(self.keepalive_interval, Duration::from_millis(100))
                .min(Duration::from_secs(3600)),
            keepalive_max: self.keepalive_max.clamp(1, 100),
            policy_timeout: within(self.policy_timeout, Duration::from_millis(10)),
            connect_timeout: within(self.connect_timeout, Duration::from_millis(10)),
            target_write_timeout: within(self.target_write_timeout, Duration::from_millis(100)),
            close_grace: within(self.close_grace, Duration::from_millis(10))
                .min(Duration::from_secs(60)),
            failure_threshold: self.failure_threshold.max(1),
            failure_window: within(self.failure_window, Duration::from_millis(1)),
            block_duration: within(self.block_duration, Duration::ZERO),
            max_tracked_ips: self.max_tracked_ips.max(1),
            window_size: self.window_size.max(max_packet_size),
            max_packet_size,
            channel_buffer: self.channel_buffer.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_moves_values_into_range() {
        let l = Limits {
            max_connections: 0,
            max_packet_size: 1 << 20,
            window_size: 10,
            channel_buffer: 0,
            auth_timeout: Duration::ZERO,
            idle_timeout: Duration::MAX,
            keepalive_max: usize::MAX,
            max_auth_attempts: usize::MAX,
            ..Limits::default()
        }
        .sanitized();
        assert_eq!(l.max_connections, 1);
        assert_eq!(l.max_packet_size, 65_535);
        assert_eq!(l.window_size, 65_535);
        assert_eq!(l.channel_buffer, 1);
        assert!(l.auth_timeout > Duration::ZERO);
        assert!(l.idle_timeout < Duration::from_secs(366 * 24 * 3600));
        assert_eq!(l.keepalive_max, 100);
        assert_eq!(l.max_auth_attempts, 100);
    }

    #[test]
    fn defaults_are_already_in_range() {
        let d = Limits::default();
        let s = d.sanitized();
        assert_eq!(format!("{d:?}"), format!("{s:?}"));
    }
}
