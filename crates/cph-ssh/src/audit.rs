//! Audit events: every login attempt, tunnel request, refusal and closing.

use std::net::SocketAddr;

use crate::Principal;

/// One thing that happened on a gateway, handed to [`crate::GatewayPolicy::audit`].
///
/// Events never carry secrets: no passwords, no key material other than fingerprints, no
/// command lines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// An authentication request was decided.
    Login {
        /// The client's address.
        peer: SocketAddr,
        /// The user name it asked for.
        user: String,
        /// The fingerprint of the offered key, for the `publickey` method.
        key_fingerprint: Option<String>,
        /// The SSH authentication method: `publickey`, `password`, `keyboard-interactive`,
        /// `none`.
        method: String,
        /// Whether the login succeeded.
        accepted: bool,
        /// Why it was refused.
        reason: Option<String>,
    },
    /// A `direct-tcpip` channel was requested and decided.
    Tunnel {
        /// The client's address.
        peer: SocketAddr,
        /// Who asked.
        principal: Principal,
        /// The host the client asked for, as it asked.
        host: String,
        /// The port the client asked for.
        port: u32,
        /// Whether the tunnel was opened.
        accepted: bool,
        /// Why it was refused.
        reason: Option<String>,
    },
    /// An opened tunnel ended.
    TunnelClosed {
        /// The client's address.
        peer: SocketAddr,
        /// Who had opened it.
        principal: Principal,
        /// The host the client had asked for.
        host: String,
        /// The port the client had asked for.
        port: u32,
        /// Bytes carried from the client to the target.
        bytes_up: u64,
        /// Bytes carried from the target to the client.
        bytes_down: u64,
    },
    /// Something other than a login or a tunnel was refused. `what` is one of `throttled`,
    /// `connection-limit`, `per-ip-limit`, `auth-timeout`, `malformed`,
    /// `no-common-algorithm`, `channel-limit`, `pty-req`, `env`, `shell`, `exec`,
    /// `subsystem`, `x11-req`, `auth-agent-req`, `x11`, `forwarded-tcpip`,
    /// `direct-streamlocal`, `tcpip-forward`, `streamlocal-forward`.
    Refused {
        /// The client's address.
        peer: SocketAddr,
        /// What was refused.
        what: String,
    },
    /// An authenticated session ended.
    SessionClosed {
        /// The client's address.
        peer: SocketAddr,
        /// Who it was.
        principal: Principal,
        /// `client` (the client left or the connection failed), `revoked`, `idle`,
        /// `shutdown`, `keepalive`, or `error: …`.
        reason: String,
    },
}
