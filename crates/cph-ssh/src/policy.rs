//! What the gateway asks its owner: who may log in, where a tunnel goes, and where audit
//! events go.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::AuditEvent;

/// The future returned by the asynchronous methods of [`GatewayPolicy`].
pub type PolicyFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a tunnel goes.
#[derive(Debug)]
pub enum Target {
    /// A TCP address the gateway connects to (bounded by [`crate::Limits::connect_timeout`]).
    Tcp(SocketAddr),
    /// A destination in the gateway's own process, already connected (see [`crate::local`]).
    Local(crate::local::LocalTarget),
}

impl From<SocketAddr> for Target {
    fn from(addr: SocketAddr) -> Target {
        Target::Tcp(addr)
    }
}

/// A public key offered by a client.
///
/// The gateway hands one to [`GatewayPolicy::authorize`] only for key types it accepts
/// (`ssh-ed25519`, `ecdsa-sha2-nistp{256,384,521}`, `rsa-sha2-{256,512}` of at least 2048
/// bits); when it does, the client has not yet proven that it holds the private key; the
/// login is accepted only after it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedKey {
    /// The signature algorithm the client named, e.g. `ssh-ed25519` or `rsa-sha2-512`.
    pub algorithm: String,
    /// The public key in SSH wire encoding (the base64-decoded middle field of an
    /// `authorized_keys` line).
    pub blob: Vec<u8>,
    /// The key's fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64.
    pub fingerprint: String,
}

/// Who a session authenticated as. The gateway never interprets it; [`GatewayPolicy::resolve`]
/// receives it back and [`crate::Gateway::revoke`] matches on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The user name the client logged in with.
    pub user: String,
    /// The fingerprint of the key it logged in with (`SHA256:…`).
    pub key_fingerprint: String,
    /// An opaque tag chosen by the policy, e.g. the key pair's identity.
    pub tag: String,
}

/// The owner's decisions. One instance serves every connection of a gateway, concurrently.
///
/// Each asynchronous call is bounded by [`crate::Limits::policy_timeout`]; a call that takes
/// longer counts as a refusal.
pub trait GatewayPolicy: Send + Sync + 'static {
    /// Whether `user` may log in now with `key`; `Err(reason)` refuses (the reason is
    /// audited, never sent to the client).
    ///
    /// Called when the client offers the key, before it proves possession; the login is
    /// accepted only once the signature checks out. It may be called again for the same
    /// login if [`crate::Gateway::revoke`] ran in between.
    fn authorize<'a>(
        &'a self,
        peer: SocketAddr,
        user: &'a str,
        key: &'a OfferedKey,
    ) -> PolicyFuture<'a, Result<Principal, String>>;

    /// Where a `direct-tcpip` channel to `host:port` requested by `who` really goes;
    /// `Err(reason)` refuses the channel.
    fn resolve<'a>(
        &'a self,
        who: &'a Principal,
        host: &'a str,
        port: u16,
    ) -> PolicyFuture<'a, Result<Target, String>>;

    /// Records one event. Must not block: an implementation queues the event (and drops
    /// events it cannot queue rather than wait).
    fn audit(&self, event: AuditEvent);
}
