//! Phone connections: BatchShowPhoneConnectInfos and the connect relay.
//!
//! BatchShowPhoneConnectInfos hands out, per running phone of the caller's project, the
//! address clients reach this process's connect relay at ([`ConnectSettings::public_url`]: the
//! configured public URL, else the bound address), a fresh session id, a timestamp and a ticket. The
//! ticket is `<expires_ms>.<hex HMAC-SHA256>` over the project, phone id, session id, timestamp
//! and expiry, with a key stored once in the store (`service_keys`, sealed with the master key), so every replica signs and
//! verifies with the same key. The key is never logged.
//!
//! The relay (a WebSocket endpoint served by `cph-api`) accepts
//! `GET /v1/connect?phone_id=..&session_id=..&timestamp=..&ticket=..`. Before upgrading it
//! checks the ticket (constant time), its expiry, that the phone still belongs to the ticket's
//! project and runs, and records the session id as used in the store (`connect_sessions`, kept
//! until the ticket expires), so a ticket opens one session on any replica. It then connects to
//! the phone's ADB endpoint and carries raw ADB bytes in binary WebSocket messages both ways.
//! Authentication is delegated: the client's CNXN goes to the phone; the phone's AUTH token is
//! signed with the control plane's ADB key and never reaches the client; the phone's CNXN goes
//! to the client; from then on bytes pass unchanged. Every refusal and session is audited.

use crate::{Caller, Result, Service, ServiceError};
use bytes::{Bytes, BytesMut};
use cph_adb::packet::{self, A_AUTH, A_CNXN, AUTH_SIGNATURE, AUTH_TOKEN, HEADER_LEN, Packet};
use cph_domain::PhoneStatus;
use cph_store::audit::AuditRow;
use futures::{Sink, SinkExt, Stream, StreamExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Most phone ids of one BatchShowPhoneConnectInfos request.
pub const MAX_CONNECT_PHONES: usize = 10;
/// The documented client types.
pub const CLIENT_TYPES: [&str; 5] = ["ANDROID", "WINDOWS", "H5_MOBILE", "H5_PC", "IOS"];
/// Path of the relay's WebSocket endpoint.
pub const RELAY_PATH: &str = "/v1/connect";
/// Longest lifetime a ticket may claim, whatever the configuration.
pub const MAX_TICKET_TTL: Duration = Duration::from_secs(3600);
/// Largest ADB payload accepted during the handshake (CNXN and AUTH are limited to 4096 by
/// the protocol; some slack for odd clients).
const HANDSHAKE_MAX_PAYLOAD: u32 = 64 * 1024;
/// Most bytes a client may send ahead while the handshake is under way.
const HANDSHAKE_BUFFER: usize = 2 * 1024 * 1024;
/// Largest WebSocket message (and frame) accepted from a client: one full ADB packet.
pub const MAX_MESSAGE: usize = packet::MAX_PAYLOAD as usize + HEADER_LEN + 1024;
/// Bytes read from the phone per message sent to the client.
const READ_CHUNK: usize = 64 * 1024;
/// Name of the ticket key in the store.
const KEY_NAME: &str = "connect_ticket_v1";

/// Most sessions `connect_max_sessions` may allow.
pub const MAX_SESSIONS_LIMIT: usize = 100_000;
/// Longest idle timeout `connect_idle_timeout_secs` may set (one day).
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Where clients reach the relay: the base URL advertised in BatchShowPhoneConnectInfos and the
/// encode servers' `cph_h5_server` access info (`access_ip` is the host, `access_port` the
/// port). Parsed from `ws://host[:port][/]` or `wss://host[:port][/]`; the host is an IP address
/// (IPv6 in brackets) or a DNS name, the port defaults to 80 (`ws`) or 443 (`wss`). User info, a
/// path other than `/`, a query or a fragment are refused: clients build
/// `<scheme>://<access_ip>:<access_port>/v1/connect?...` and could not follow them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayUrl {
    /// `wss` (TLS, terminated in front of the relay) rather than `ws`.
    pub secure: bool,
    /// IP address (without brackets) or DNS name.
    pub host: String,
    pub port: u16,
}

/// Why a relay URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayUrlError {
    #[error("it must start with ws:// or wss://")]
    Scheme,
    #[error("it has no host")]
    NoHost,
    #[error("the host {0:?} is neither an IP address nor a DNS name")]
    BadHost(String),
    #[error("the host {0} is an unspecified address; give the address clients reach")]
    Unspecified(String),
    #[error("the port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    #[error("it must not carry user info")]
    UserInfo,
    #[error("it must not have a query or a fragment")]
    QueryOrFragment,
    #[error("it must not have a path (clients append {RELAY_PATH} themselves)")]
    Path,
}

fn dns_name(h: &str) -> bool {
    h.len() <= 253
        && h.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

impl std::str::FromStr for RelayUrl {
    type Err = RelayUrlError;

    fn from_str(s: &str) -> std::result::Result<Self, RelayUrlError> {
        let s = s.trim();
        let (scheme, rest) = s.split_once("://").ok_or(RelayUrlError::Scheme)?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(RelayUrlError::Scheme),
        };
        if rest.contains(['?', '#']) {
            return Err(RelayUrlError::QueryOrFragment);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !path.is_empty() && path != "/" {
            return Err(RelayUrlError::Path);
        }
        if authority.contains('@') {
            return Err(RelayUrlError::UserInfo);
        }
        if authority.is_empty() {
            return Err(RelayUrlError::NoHost);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6
                .split_once(']')
                .ok_or_else(|| RelayUrlError::BadHost(authority.to_string()))?;
            let ip: std::net::Ipv6Addr = ip
                .parse()
                .map_err(|_| RelayUrlError::BadHost(ip.to_string()))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| RelayUrlError::BadHost(authority.to_string()))?,
                ),
            };
            (std::net::IpAddr::V6(ip).to_string(), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(RelayUrlError::NoHost);
            }
            let host = match host.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => ip.to_string(),
                Err(_)
                    if dns_name(host) && !host.bytes().all(|c| c.is_ascii_digit() || c == b'.') =>
                {
                    host.to_ascii_lowercase()
                }
                Err(_) => return Err(RelayUrlError::BadHost(host.to_string())),
            };
            (host, port)
        };
        if host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
        {
            return Err(RelayUrlError::Unspecified(host));
        }
        let port = match port {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|c| c.is_ascii_digit()) => n,
                _ => return Err(RelayUrlError::BadPort(p.to_string())),
            },
        };
        Ok(RelayUrl { secure, host, port })
    }
}

impl std::fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl RelayUrl {
    /// `ws://` URL of a bound address, as it is.
    pub fn from_addr(addr: SocketAddr) -> Self {
        RelayUrl {
            secure: false,
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// The URL to advertise for a relay bound to `bound`: the configured one if any; else the
    /// bound address, except that an unspecified address (`0.0.0.0`, `::`) is advertised as the
    /// loopback address of its family, which comes with a warning to log (clients elsewhere
    /// cannot use it; set a public URL).
    pub fn advertised(configured: Option<RelayUrl>, bound: SocketAddr) -> (Self, Option<String>) {
        if let Some(u) = configured {
            return (u, None);
        }
        if !bound.ip().is_unspecified() {
            return (Self::from_addr(bound), None);
        }
        let loopback = match bound {
            SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        let url = Self::from_addr(SocketAddr::new(loopback, bound.port()));
        let warning = format!(
            "the connect relay listens on the unspecified address {bound} and no \
             connect_public_url is set: clients are given {url}, reachable from this host only"
        );
        (url, Some(warning))
    }
}

/// How the connect relay runs.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// Where clients reach the relay (shown in `access_info`).
    pub public_url: RelayUrl,
    /// Lifetime of a ticket (capped at [`MAX_TICKET_TTL`]).
    pub ticket_ttl: Duration,
    /// Relay sessions open at once; further upgrades are refused with 503.
    pub max_sessions: usize,
    /// Longest time from the upgrade to the phone's CNXN reaching the client.
    pub handshake_timeout: Duration,
    /// A session with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
}

impl ConnectSettings {
    /// Defaults for an advertised URL: 5-minute tickets, 1000 sessions, 10 s handshakes, 10
    /// minutes idle.
    pub fn new(public_url: RelayUrl) -> Self {
        ConnectSettings {
            public_url,
            ticket_ttl: Duration::from_secs(300),
            max_sessions: 1000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// The relay's state in this process.
pub(crate) struct Relay {
    settings: ConnectSettings,
    key: Vec<u8>,
    sessions: Arc<Semaphore>,
    shutdown: CancellationToken,
}

/// What a ticket vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaims<'a> {
    pub project_id: &'a str,
    pub phone_id: &'a str,
    pub session_id: &'a str,
    pub timestamp: &'a str,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is malformed")]
    Malformed,
    #[error("the ticket does not match")]
    Mismatch,
    #[error("the ticket has expired")]
    Expired,
}

type HmacSha256 = Hmac<Sha256>;

fn ticket_mac(key: &[u8], c: &TicketClaims<'_>, expires_ms: i64) -> HmacSha256 {
    // Keys of any length are accepted by HMAC.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("hmac accepts any key length");
    for part in [
        "cph-connect-v1",
        c.project_id,
        c.phone_id,
        c.session_id,
        c.timestamp,
    ] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part.as_bytes());
    }
    m.update(&expires_ms.to_be_bytes());
    m
}

/// `<expires_ms>.<hex HMAC-SHA256>` of the claims.
pub fn sign_ticket(key: &[u8], c: &TicketClaims<'_>, expires_ms: i64) -> String {
    let tag = ticket_mac(key, c, expires_ms).finalize().into_bytes();
    format!("{expires_ms}.{}", hex(&tag))
}

/// Checks a ticket against the claims (in constant time) and its expiry; returns the expiry.
pub fn verify_ticket(
    key: &[u8],
    c: &TicketClaims<'_>,
    ticket: &str,
    now_ms: i64,
) -> std::result::Result<i64, TicketError> {
    let (exp, tag) = ticket.split_once('.').ok_or(TicketError::Malformed)?;
    let expires_ms: i64 = exp.parse().map_err(|_| TicketError::Malformed)?;
    let tag = unhex(tag).ok_or(TicketError::Malformed)?;
    let issued: i64 = c.timestamp.parse().map_err(|_| TicketError::Malformed)?;
    ticket_mac(key, c, expires_ms)
        .verify_slice(&tag)
        .map_err(|_| TicketError::Mismatch)?;
    let max = MAX_TICKET_TTL.as_millis() as i64;
    if now_ms > expires_ms || expires_ms.saturating_sub(issued) > max || issued > now_ms + max {
        return Err(TicketError::Expired);
    }
    Ok(expires_ms)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Access details of one phone (an item of `connect_infos`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectGrant {
    pub phone_id: String,
    pub access_ip: String,
    pub access_port: u16,
    pub session_id: String,
    pub timestamp: String,
    pub ticket: String,
}

/// One item of BatchShowPhoneConnectInfos: a grant or the error for that phone.
pub type ConnectItem = std::result::Result<ConnectGrant, (String, String, String)>;

/// An endpoint an encode server publishes (`access_infos` of ListEncodeServers).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessEndpoint {
    /// `ssh` or `cph_h5_server`.
    pub kind: &'static str,
    pub listen_port: u16,
    /// IP address or DNS name clients use.
    pub host: String,
    pub port: u16,
}

/// Why the relay refused a connection, before any upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRefusal {
    /// HTTP status: 401 (bad, expired or tampered ticket), 403 (reused ticket, phone not
    /// running), 503 (relay full or not running), 502 (phone unreachable).
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

/// The relay's query string.
#[derive(Debug, Clone, Default)]
pub struct ConnectQuery {
    pub phone_id: Option<String>,
    pub session_id: Option<String>,
    pub timestamp: Option<String>,
    pub ticket: Option<String>,
}

/// A verified session whose phone connection is open; [`ConnectSession::run`] carries it.
pub struct ConnectSession {
    service: Service,
    tcp: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
    phone_id: String,
    server_id: String,
    project_id: String,
    peer: SocketAddr,
}

fn refusal(status: u16, code: &'static str, message: impl Into<String>) -> ConnectRefusal {
    ConnectRefusal {
        status,
        code,
        message: message.into(),
    }
}

impl Service {
    /// Starts the connect relay's state: loads (or creates, once for every replica) the ticket
    /// key. The listener itself is served by the binary.
    pub async fn attach_connect_relay(&self, settings: ConnectSettings) -> Result<()> {
        use rand::RngCore;
        let mut candidate = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut candidate);
        // The key is stored sealed with the master key, as AK/SK secrets are.
        let master = &self.config().master_key;
        let sealed = {
            let mut tx = self.store().write().await?;
            let k = cph_store::connect::key_get_or_insert(
                &mut tx,
                KEY_NAME,
                &master.seal(KEY_NAME, &hex(&candidate)),
                self.now_ms(),
            )
            .await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            k
        };
        let key_hex = master.open(KEY_NAME, &sealed).map_err(|_| {
            ServiceError::Internal(anyhow::anyhow!(
                "the stored ticket key does not decrypt with the master key"
            ))
        })?;
        let key_hex = key_hex.expose();
        let key = (0..key_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(key_hex.get(i..i + 2).unwrap_or("zz"), 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|_| {
                ServiceError::Internal(anyhow::anyhow!("the stored ticket key is corrupt"))
            })?;
        let relay = Relay {
            sessions: Arc::new(Semaphore::new(
                settings.max_sessions.clamp(1, MAX_SESSIONS_LIMIT),
            )),
            settings,
            key,
            shutdown: CancellationToken::new(),
        };
        let _ = self.inner.connect.set(relay);
        Ok(())
    }

    fn relay(&self) -> Option<&Relay> {
        self.inner.connect.get()
    }

    /// Where the connect relay is reached, if it runs.
    pub fn connect_endpoint(&self) -> Option<&RelayUrl> {
        self.relay().map(|r| &r.settings.public_url)
    }

    /// Closes every relay session.
    pub fn stop_connect_relay(&self) {
        if let Some(r) = self.relay() {
            r.shutdown.cancel();
        }
    }

    /// BatchShowPhoneConnectInfos. The request fails as a whole without phone ids
    /// (`CPS.0009`), with more than [`MAX_CONNECT_PHONES`] (`CPS.0209`) or with a client type
    /// that is not documented (`CPS.0116`); each phone then gets a grant or an error: a
    /// malformed id `CPS.0004`, a repeated one `CPS.0023`, a phone not in the caller's project
    /// `CPS.0005`, frozen `CPS.0053`, creating `CPS.0213`, otherwise not running `CPS.0141`,
    /// running without a reachable endpoint `CPS.0101`.
    pub async fn phone_connect_infos(
        &self,
        caller: &Caller,
        phone_ids: Option<Vec<String>>,
        client_type: Option<&str>,
    ) -> Result<Vec<ConnectItem>> {
        let ids = phone_ids
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0009"))?;
        if ids.len() > MAX_CONNECT_PHONES {
            return Err(ServiceError::cps_msg(
                "CPS.0209",
                format!(
                    "Parameter: the number of requested phone ids has exceeded the limit of {MAX_CONNECT_PHONES}."
                ),
            ));
        }
        match client_type {
            Some(t) if CLIENT_TYPES.contains(&t) => {}
            _ => {
                return Err(ServiceError::cps_msg(
                    "CPS.0116",
                    format!(
                        "Parameter: client_type is invalid: it must be one of {}.",
                        CLIENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        let Some(relay) = self.relay() else {
            return Err(ServiceError::cps_msg(
                "CPS.0323",
                "This api is not supported: the connect relay is not running.",
            ));
        };
        let valid: Vec<String> = crate::validate::dedup(&ids)
            .into_iter()
            .filter(|i| crate::validate::is_valid_id(i, 64))
            .collect();
        let phones: std::collections::HashMap<String, cph_store::PhoneRow> = {
            let mut c = self.store().read().await?;
            cph_store::phones::get_many(&mut c, &caller.project_id, &valid)
                .await?
                .into_iter()
                .map(|p| (p.phone_id.clone(), p))
                .collect()
        };
        let now = self.now_ms();
        let ttl = relay.settings.ticket_ttl.min(MAX_TICKET_TTL).as_millis() as i64;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let fail = |e: ServiceError| {
                let (code, msg) = e.code_and_message();
                Err((id.clone(), code, msg))
            };
            if !crate::validate::is_valid_id(&id, 64) {
                out.push(fail(ServiceError::cps("CPS.0004")));
                continue;
            }
            if !seen.insert(id.clone()) {
                out.push(fail(ServiceError::cps("CPS.0023")));
                continue;
            }
            let Some(phone) = phones.get(&id) else {
                out.push(fail(ServiceError::cps("CPS.0005")));
                continue;
            };
            match PhoneStatus::from_code(phone.status) {
                Some(PhoneStatus::Running) => {}
                Some(PhoneStatus::Frozen) => {
                    out.push(fail(ServiceError::cps("CPS.0053")));
                    continue;
                }
                Some(PhoneStatus::Creating) => {
                    out.push(fail(ServiceError::cps("CPS.0213")));
                    continue;
                }
                _ => {
                    out.push(fail(ServiceError::cps("CPS.0141")));
                    continue;
                }
            }
            if self.inner.agent.adb_endpoint(&id).is_none() {
                out.push(fail(ServiceError::cps_msg(
                    "CPS.0101",
                    "No available device access found: the phone's ADB endpoint is not up.",
                )));
                continue;
            }
            let session_id = cph_domain::ids::hex_id();
            let timestamp = now.to_string();
            let claims = TicketClaims {
                project_id: &caller.project_id,
                phone_id: &id,
                session_id: &session_id,
                timestamp: &timestamp,
            };
            let ticket = sign_ticket(&relay.key, &claims, now + ttl);
            out.push(Ok(ConnectGrant {
                phone_id: id.clone(),
                access_ip: relay.settings.public_url.host.clone(),
                access_port: relay.settings.public_url.port,
                session_id,
                timestamp,
                ticket,
            }));
        }
        Ok(out)
    }

    /// The endpoints an encode server of `server_id` publishes: the server's SSH gateway when
    /// it runs, and the connect relay.
    pub fn encode_access_endpoints(&self, server_id: &str) -> Vec<AccessEndpoint> {
        let mut out = Vec::new();
        if let Some(addr) = self.ssh_endpoint(server_id) {
            out.push(AccessEndpoint {
                kind: "ssh",
                listen_port: 22,
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        if let Some(url) = self.connect_endpoint() {
            out.push(AccessEndpoint {
                kind: "cph_h5_server",
                listen_port: url.port,
                host: url.host.clone(),
                port: url.port,
            });
        }
        out
    }

    /// Checks a relay request and opens the phone connection it asks for. Every refusal is
    /// audited (`connect_refused`), as is every accepted session (`connect_session`).
    pub async fn open_connect(
        &self,
        q: &ConnectQuery,
        peer: SocketAddr,
    ) -> std::result::Result<ConnectSession, ConnectRefusal> {
        let mut audit = AuditRow {
            event_id: String::new(),
            at_ms: 0,
            project_id: String::new(),
            server_id: String::new(),
            phone_id: String::new(),
            kind: "connect_refused".into(),
            peer: peer.to_string(),
            user_name: String::new(),
            key_fingerprint: String::new(),
            accepted: false,
            detail: String::new(),
        };
        let r = self.open_connect_checked(q, peer, &mut audit).await;
        match &r {
            Ok(_) => {
                audit.kind = "connect_session".into();
                audit.accepted = true;
                audit.detail = format!("session {}", q.session_id.as_deref().unwrap_or(""));
            }
            Err(e) => {
                audit.detail = format!(
                    "session {}: {}",
                    q.session_id
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(64)
                        .collect::<String>(),
                    e.message
                );
            }
        }
        self.connect_audit(audit);
        r
    }

    fn connect_audit(&self, mut row: AuditRow) {
        row.event_id = uuid::Uuid::now_v7().simple().to_string();
        row.at_ms = self.now_ms();
        self.record_audit(row);
    }

    async fn open_connect_checked(
        &self,
        q: &ConnectQuery,
        peer: SocketAddr,
        audit: &mut AuditRow,
    ) -> std::result::Result<ConnectSession, ConnectRefusal> {
        let relay = self
            .relay()
            .ok_or_else(|| refusal(503, "CPS.0003", "The connect relay is not running."))?;
        let invalid = |why: &str| refusal(401, "CPS.0021", format!("Invalid ticket: {why}."));
        let field = |v: &Option<String>, max: usize| {
            v.as_deref()
                .filter(|s| !s.is_empty() && s.len() <= max)
                .map(str::to_string)
        };
        let (Some(phone_id), Some(session_id), Some(timestamp), Some(ticket)) = (
            field(&q.phone_id, 64),
            field(&q.session_id, 64),
            field(&q.timestamp, 20),
            field(&q.ticket, 128),
        ) else {
            return Err(invalid(
                "phone_id, session_id, timestamp and ticket are required",
            ));
        };
        audit.phone_id = phone_id.chars().take(64).collect();
        let phone = {
            let mut c = self
                .store()
                .read()
                .await
                .map_err(|_| refusal(503, "CPS.0003", "Service internal error."))?;
            cph_store::phones::get_any(&mut c, &phone_id)
                .await
                .map_err(|_| refusal(503, "CPS.0003", "Service internal error."))?
        };
        // An unknown phone reads as a ticket that does not match, like any other mismatch.
        let Some(phone) = phone else {
            return Err(invalid("it does not match"));
        };
        audit.project_id = phone.project_id.clone();
        audit.server_id = phone.server_id.clone();
        let claims = TicketClaims {
            project_id: &phone.project_id,
            phone_id: &phone.phone_id,
            session_id: &session_id,
            timestamp: &timestamp,
        };
        let now = self.now_ms();
        let expires = match verify_ticket(&relay.key, &claims, &ticket, now) {
            Ok(e) => e,
            Err(TicketError::Malformed) => return Err(invalid("it is malformed")),
            Err(TicketError::Mismatch) => return Err(invalid("it does not match")),
            Err(TicketError::Expired) => return Err(invalid("it has expired")),
        };
        if PhoneStatus::from_code(phone.status) != Some(PhoneStatus::Running) {
            return Err(refusal(403, "CPS.0141", "Phone is not in running status."));
        }
        let addr = self
            .inner
            .agent
            .adb_endpoint(&phone.phone_id)
            .ok_or_else(|| refusal(403, "CPS.0141", "Phone is not in running status."))?;
        let permit = relay.sessions.clone().try_acquire_owned().map_err(|_| {
            refusal(
                503,
                "CPS.0042",
                "System busy: the connect relay has no free session.",
            )
        })?;
        let claimed = async {
            let mut tx = self.store().write().await?;
            let ok = cph_store::connect::claim_session(&mut tx, &session_id, expires, now).await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            Ok::<_, cph_store::StoreError>(ok)
        }
        .await
        .map_err(|_| refusal(503, "CPS.0003", "Service internal error."))?;
        if !claimed {
            return Err(refusal(
                403,
                "CPS.0021",
                "Invalid ticket: its session has been used already.",
            ));
        }
        let tcp = tokio::time::timeout(
            relay.settings.handshake_timeout,
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| "timed out".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|e| {
            refusal(
                502,
                "CPS.0101",
                format!("No available device access found: {e}."),
            )
        })?;
        let _ = tcp.set_nodelay(true);
        Ok(ConnectSession {
            service: self.clone(),
            tcp,
            _permit: permit,
            phone_id: phone.phone_id,
            server_id: phone.server_id,
            project_id: phone.project_id,
            peer,
        })
    }
}

/// Reads the client's next ADB packet from its byte stream; returns its command and raw bytes.
async fn client_packet<S>(
    rx: &mut S,
    buf: &mut BytesMut,
) -> std::result::Result<(u32, Bytes), String>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    loop {
        if buf.len() >= HEADER_LEN {
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&buf[..HEADER_LEN]);
            let (command, _, _, len, magic) = packet::parse_header(&h);
            if magic != command ^ 0xffff_ffff {
                return Err("the client did not send an ADB packet".into());
            }
            if len > HANDSHAKE_MAX_PAYLOAD {
                return Err(format!(
                    "the client's {} packet is too large",
                    packet::command_name(command)
                ));
            }
            let total = HEADER_LEN + len as usize;
            if buf.len() >= total {
                return Ok((command, buf.split_to(total).freeze()));
            }
        }
        match rx.next().await {
            Some(Ok(b)) => {
                if buf.len() + b.len() > HANDSHAKE_BUFFER {
                    return Err("the client sent too much before the handshake ended".into());
                }
                buf.extend_from_slice(&b);
            }
            Some(Err(e)) => return Err(format!("client: {e}")),
            None => return Err("the client closed the connection".into()),
        }
    }
}

impl ConnectSession {
    /// Carries the session: the ADB handshake (signing the phone's token with the control
    /// plane's key), then bytes both ways until either side closes, the session is idle for
    /// too long or the relay stops. `rx` yields the client's binary messages, `tx` takes the
    /// messages for the client.
    pub async fn run<S, K>(mut self, mut rx: S, mut tx: K)
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
        K: Sink<Bytes> + Unpin + Send,
        K::Error: std::fmt::Display,
    {
        let started = Instant::now();
        let up = AtomicU64::new(0);
        let down = AtomicU64::new(0);
        let outcome = carry(&self.service, &mut self.tcp, &mut rx, &mut tx, &up, &down).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), tx.close()).await;
        let detail = format!(
            "{}; {} bytes up, {} bytes down in {} s",
            match &outcome {
                Ok(why) => why.clone(),
                Err(e) => format!("failed: {e}"),
            },
            up.load(Ordering::Relaxed),
            down.load(Ordering::Relaxed),
            started.elapsed().as_secs()
        );
        self.service.connect_audit(AuditRow {
            event_id: String::new(),
            at_ms: 0,
            project_id: self.project_id.clone(),
            server_id: self.server_id.clone(),
            phone_id: self.phone_id.clone(),
            kind: "connect_closed".into(),
            peer: self.peer.to_string(),
            user_name: String::new(),
            key_fingerprint: String::new(),
            accepted: outcome.is_ok(),
            detail,
        });
    }
}

async fn carry<S, K>(
    service: &Service,
    tcp: &mut tokio::net::TcpStream,
    rx: &mut S,
    tx: &mut K,
    up: &AtomicU64,
    down: &AtomicU64,
) -> std::result::Result<String, String>
where
    S: Stream<Item = std::io::Result<Bytes>> + Unpin + Send,
    K: Sink<Bytes> + Unpin + Send,
    K::Error: std::fmt::Display,
{
    let relay = service
        .relay()
        .ok_or_else(|| "the relay is not running".to_string())?;
    let key = service
        .inner
        .adb
        .key()
        .ok_or_else(|| "the control plane has no ADB key".to_string())?;
    let shutdown = relay.shutdown.clone();
    let settings = relay.settings.clone();
    let (mut phone_r, mut phone_w) = tcp.split();
    let mut pending = BytesMut::new();
    // Handshake: client CNXN → phone; phone AUTH(TOKEN) → signed here; phone CNXN → client.
    let handshake = async {
        let (command, raw) = client_packet(rx, &mut pending).await?;
        if command != A_CNXN {
            return Err(format!(
                "the client's first packet is {}, not CNXN",
                packet::command_name(command)
            ));
        }
        up.fetch_add(raw.len() as u64, Ordering::Relaxed);
        phone_w
            .write_all(&raw)
            .await
            .map_err(|e| format!("phone: {e}"))?;
        let mut signed = false;
        loop {
            let p = Packet::read_from(&mut phone_r, HANDSHAKE_MAX_PAYLOAD)
                .await
                .map_err(|e| format!("phone: {e}"))?;
            match (p.command, p.arg0) {
                (A_AUTH, AUTH_TOKEN) => {
                    if signed {
                        return Err("the phone refused the control plane's key".into());
                    }
                    let sig = key
                        .sign_token(&p.payload)
                        .map_err(|e| format!("signing the phone's token: {e}"))?;
                    Packet::new(A_AUTH, AUTH_SIGNATURE, 0, sig)
                        .write_to(&mut phone_w, true)
                        .await
                        .map_err(|e| format!("phone: {e}"))?;
                    signed = true;
                }
                (A_CNXN, _) => {
                    let mut raw = BytesMut::with_capacity(HEADER_LEN + p.payload.len());
                    raw.extend_from_slice(&p.header(true));
                    raw.extend_from_slice(&p.payload);
                    down.fetch_add(raw.len() as u64, Ordering::Relaxed);
                    tx.send(raw.freeze())
                        .await
                        .map_err(|e| format!("client: {e}"))?;
                    return Ok(());
                }
                (c, _) => {
                    return Err(format!(
                        "the phone answered {} during the handshake",
                        packet::command_name(c)
                    ));
                }
            }
        }
    };
    tokio::select! {
        r = tokio::time::timeout(settings.handshake_timeout, handshake) => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("the handshake timed out".into()),
        },
        _ = shutdown.cancelled() => return Ok("the relay stopped".into()),
    }
    // Bytes the client sent ahead of the phone's CNXN.
    if !pending.is_empty() {
        up.fetch_add(pending.len() as u64, Ordering::Relaxed);
        phone_w
            .write_all(&pending)
            .await
            .map_err(|e| format!("phone: {e}"))?;
    }
    let epoch = Instant::now();
    let last = AtomicI64::new(0);
    let touch = || last.store(epoch.elapsed().as_millis() as i64, Ordering::Relaxed);
    let upstream = async {
        while let Some(m) = rx.next().await {
            let b = m.map_err(|e| format!("client: {e}"))?;
            touch();
            up.fetch_add(b.len() as u64, Ordering::Relaxed);
            phone_w
                .write_all(&b)
                .await
                .map_err(|e| format!("phone: {e}"))?;
        }
        Ok::<_, String>("the client closed the session".to_string())
    };
    let downstream = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = phone_r
                .read(&mut buf)
                .await
                .map_err(|e| format!("phone: {e}"))?;
            if n == 0 {
                return Ok::<_, String>("the phone closed the session".to_string());
            }
            touch();
            down.fetch_add(n as u64, Ordering::Relaxed);
            tx.send(Bytes::copy_from_slice(&buf[..n]))
                .await
                .map_err(|e| format!("client: {e}"))?;
        }
    };
    let idle = async {
        let limit = settings.idle_timeout.min(MAX_IDLE_TIMEOUT).as_millis() as i64;
        loop {
            tokio::time::sleep(Duration::from_millis((limit as u64 / 4).clamp(10, 5000))).await;
            let quiet = epoch.elapsed().as_millis() as i64 - last.load(Ordering::Relaxed);
            if quiet >= limit {
                return "the session was idle too long".to_string();
            }
        }
    };
    tokio::select! {
        r = upstream => r,
        r = downstream => r,
        why = idle => Ok(why),
        _ = shutdown.cancelled() => Ok("the relay stopped".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls_parse_and_refuse_what_clients_cannot_follow() {
        let ok = |s: &str| s.parse::<RelayUrl>().unwrap();
        assert_eq!(
            ok("wss://Relay.Example.com"),
            RelayUrl {
                secure: true,
                host: "relay.example.com".into(),
                port: 443
            }
        );
        assert_eq!(ok("ws://relay.example.com/").port, 80);
        assert_eq!(
            ok(" ws://203.0.113.5:7000 "),
            RelayUrl {
                secure: false,
                host: "203.0.113.5".into(),
                port: 7000
            }
        );
        let v6 = ok("WSS://[2001:db8::1]:8443/");
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 8443));
        assert_eq!(v6.to_string(), "wss://[2001:db8::1]:8443");
        assert_eq!(ok("ws://localhost:80").to_string(), "ws://localhost:80");
        let err = |s: &str| s.parse::<RelayUrl>().unwrap_err();
        assert_eq!(err("http://relay.example.com"), RelayUrlError::Scheme);
        assert_eq!(err("relay.example.com:80"), RelayUrlError::Scheme);
        assert_eq!(err("ws://"), RelayUrlError::NoHost);
        assert_eq!(err("ws://:8080"), RelayUrlError::NoHost);
        assert_eq!(err("ws:///"), RelayUrlError::NoHost);
        assert_eq!(err("ws://h/?a=1"), RelayUrlError::QueryOrFragment);
        assert_eq!(err("ws://h#x"), RelayUrlError::QueryOrFragment);
        assert_eq!(err("ws://h/prefix"), RelayUrlError::Path);
        assert_eq!(err("ws://user:pw@h"), RelayUrlError::UserInfo);
        assert_eq!(err("ws://h:0"), RelayUrlError::BadPort("0".into()));
        assert_eq!(err("ws://h:65536"), RelayUrlError::BadPort("65536".into()));
        assert_eq!(err("ws://h:+80"), RelayUrlError::BadPort("+80".into()));
        assert!(matches!(err("ws://bad_host"), RelayUrlError::BadHost(_)));
        assert!(matches!(err("ws://1.2.3"), RelayUrlError::BadHost(_)));
        assert!(matches!(err("ws://[::1"), RelayUrlError::BadHost(_)));
        assert!(matches!(err("ws://::1:80"), RelayUrlError::BadHost(_)));
        assert!(matches!(
            err("ws://0.0.0.0:80"),
            RelayUrlError::Unspecified(_)
        ));
        assert!(matches!(err("ws://[::]:80"), RelayUrlError::Unspecified(_)));
    }

    #[test]
    fn the_advertised_relay_url_prefers_the_configured_one() {
        let bound: SocketAddr = "10.0.0.7:7000".parse().unwrap();
        let public: RelayUrl = "wss://relay.example.com".parse().unwrap();
        assert_eq!(
            RelayUrl::advertised(Some(public.clone()), bound),
            (public.clone(), None)
        );
        let any: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        assert_eq!(
            RelayUrl::advertised(Some(public.clone()), any),
            (public, None)
        );
        // Without one: the bound address, or loopback (with a warning) for an unspecified one.
        assert_eq!(
            RelayUrl::advertised(None, bound),
            (RelayUrl::from_addr(bound), None)
        );
        let (url, warning) = RelayUrl::advertised(None, any);
        assert_eq!(url.to_string(), "ws://127.0.0.1:7000");
        assert!(warning.is_some_and(|w| w.contains("connect_public_url")));
        let (url, warning) = RelayUrl::advertised(None, "[::]:7001".parse().unwrap());
        assert_eq!(url.to_string(), "ws://[::1]:7001");
        assert!(warning.is_some());
    }

    fn claims<'a>(phone: &'a str, session: &'a str) -> TicketClaims<'a> {
        TicketClaims {
            project_id: "p1",
            phone_id: phone,
            session_id: session,
            timestamp: "1000000",
        }
    }

    #[test]
    fn tickets_verify_only_what_they_sign() {
        let key = b"0123456789abcdef0123456789abcdef";
        let c = claims("phone-a", "s1");
        let t = sign_ticket(key, &c, 1_300_000);
        assert_eq!(verify_ticket(key, &c, &t, 1_000_500), Ok(1_300_000));
        // Up to and including the expiry, not after.
        assert_eq!(verify_ticket(key, &c, &t, 1_300_000), Ok(1_300_000));
        assert_eq!(
            verify_ticket(key, &c, &t, 1_300_001),
            Err(TicketError::Expired)
        );
        // Another phone, session, project, timestamp or key does not match.
        for other in [
            claims("phone-b", "s1"),
            claims("phone-a", "s2"),
            TicketClaims {
                project_id: "p2",
                ..c.clone()
            },
            TicketClaims {
                timestamp: "1000001",
                ..c.clone()
            },
        ] {
            assert_eq!(
                verify_ticket(key, &other, &t, 1_000_500),
                Err(TicketError::Mismatch)
            );
        }
        assert_eq!(
            verify_ticket(b"another key", &c, &t, 1_000_500),
            Err(TicketError::Mismatch)
        );
        // A changed expiry or a flipped bit of the tag does not match.
        let (_, tag) = t.split_once('.').unwrap();
        assert_eq!(
            verify_ticket(key, &c, &format!("9999999999.{tag}"), 1_000_500),
            Err(TicketError::Mismatch)
        );
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify_ticket(key, &c, &String::from_utf8(flipped).unwrap(), 1_000_500),
            Err(TicketError::Mismatch)
        );
        // Garbage is malformed.
        for bad in ["", "x", "12.zz", "abc.00", &t[..t.len() - 2]] {
            assert_eq!(
                verify_ticket(key, &c, bad, 1_000_500),
                Err(TicketError::Malformed),
                "{bad}"
            );
        }
        // A ticket claiming to live longer than the maximum is refused even if signed.
        let long = sign_ticket(key, &c, 1_000_000 + MAX_TICKET_TTL.as_millis() as i64 + 1);
        assert_eq!(
            verify_ticket(key, &c, &long, 1_000_500),
            Err(TicketError::Expired)
        );
    }
}
