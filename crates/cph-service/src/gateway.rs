//! Keyed access to phones: one SSH gateway per server.
//!
//! A server's gateway listens on its own port (kept across restarts in
//! `<state_dir>/ports/<server_id>`) and admits exactly one credential: the public key of the
//! server's current key pair, for the configured user (`root` by default). It opens only
//! `direct-tcpip` tunnels to `<phone_ip>:5555` of that server's phones, which lead to the
//! phones' ADB endpoints. So, with the key pair's private key:
//!
//! ```text
//! ssh -i key -p <access_port> -N -L 5555:<phone_ip>:5555 root@<server_ip>
//! adb connect 127.0.0.1:5555
//! ```
//!
//! Rules:
//! - The key is compared with the stored key pair in constant time; a server without a key
//!   pair admits nobody.
//! - Every tunnel re-checks that the session's key is still the server's key, and when an
//!   UpdateKeypair job has been recorded, sessions of any other key are closed
//!   ([`Service::revoke_stale_sessions`]).
//! - Every login, tunnel and refusal is queued (bounded; overflow is dropped and counted) to
//!   the access audit trail, written in batches and pruned after the retention period.
//! - Gateways are started for every server at start-up and by a periodic reconciliation (so
//!   servers bought later, also on other replicas, get theirs within seconds), and on demand
//!   when a phone's access information is shown.

use crate::{Service, keypairs};
use cph_runtime::InProcessConnection;
use cph_ssh::{AuditEvent, GatewayPolicy, OfferedKey, PolicyFuture, Principal, Target};
use cph_store::audit::AuditRow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The port of a phone's ADB daemon inside the tunnel (`listen_port` of the access info).
pub const PHONE_ADB_PORT: u16 = 5555;
/// Audit events waiting to be written; more are dropped (and counted).
const AUDIT_QUEUE: usize = 10_000;
/// Audit events written per transaction.
const AUDIT_BATCH: usize = 500;
/// Servers read per page while reconciling.
const RECONCILE_PAGE: i64 = 500;

/// How the gateways are run.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Address the gateways listen on and that access information shows.
    pub bind_ip: IpAddr,
    /// Ports handed to gateways, one per server.
    pub ports: RangeInclusive<u16>,
    /// Directory of the host key (`ssh_host_ed25519_key`) and the remembered ports.
    pub state_dir: PathBuf,
    /// The only user name accepted.
    pub user: String,
    /// Limits of each gateway.
    pub limits: cph_ssh::Limits,
    /// How long audit events are kept.
    pub audit_retention: Duration,
    /// How often servers are checked for a missing gateway.
    pub reconcile_every: Duration,
}

impl GatewaySettings {
    /// Defaults for a state directory: loopback, ports 40000–40999, user `root`, 90 days of
    /// audit events.
    pub fn new(state_dir: PathBuf) -> Self {
        GatewaySettings {
            bind_ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            ports: 40000..=40999,
            state_dir,
            user: "root".into(),
            limits: cph_ssh::Limits::default(),
            audit_retention: Duration::from_secs(90 * 86_400),
            reconcile_every: Duration::from_secs(10),
        }
    }
}

/// Why the gateways could not be started.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("ssh host key: {0}")]
    HostKey(#[from] cph_ssh::SshError),
    #[error("gateway state: {0}")]
    Files(#[from] std::io::Error),
    #[error("no free port for a gateway in {0:?}")]
    NoPort(RangeInclusive<u16>),
    #[error("store: {0}")]
    Store(#[from] cph_store::StoreError),
}

struct Running {
    addr: SocketAddr,
    gateway: cph_ssh::Gateway,
    cancel: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The gateways of this process.
pub(crate) struct Gateways {
    settings: GatewaySettings,
    host_key: cph_ssh::HostKey,
    running: Mutex<HashMap<String, Running>>,
    /// Held while a gateway is being started (one start at a time).
    starting: tokio::sync::Mutex<()>,
    audit: mpsc::Sender<AuditRow>,
    dropped: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

impl Drop for Gateways {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `SHA256:<unpadded base64>` of a public key blob, as `ssh-keygen -l` prints it.
pub fn sha256_fingerprint(blob: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob))
    )
}

/// The decisions of one server's gateway.
struct ServerPolicy {
    service: Weak<crate::Inner>,
    server_id: String,
    project_id: String,
    user: String,
    audit: mpsc::Sender<AuditRow>,
    dropped: Arc<AtomicU64>,
    now: Arc<dyn cph_domain::Clock>,
}

impl ServerPolicy {
    fn service(&self) -> Result<Service, String> {
        self.service
            .upgrade()
            .map(|inner| Service { inner })
            .ok_or_else(|| "the service is shutting down".to_string())
    }

    /// The server's current key pair: (name, public key blob).
    async fn current_key(&self, svc: &Service) -> Result<(String, Vec<u8>), String> {
        let mut c = svc.store().read().await.map_err(|e| e.to_string())?;
        let server = cph_store::servers::get_any(&mut c, &self.server_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the server no longer exists")?;
        if server.keypair_name.is_empty() {
            return Err("the server has no key pair".into());
        }
        let kp = cph_store::network::get_keypair(&mut c, &server.project_id, &server.keypair_name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("key pair {} no longer exists", server.keypair_name))?;
        let key = keypairs::parse_public_key(&kp.public_key)?;
        Ok((server.keypair_name, key.blob))
    }
}

impl GatewayPolicy for ServerPolicy {
    fn authorize<'a>(
        &'a self,
        _peer: SocketAddr,
        user: &'a str,
        key: &'a OfferedKey,
    ) -> PolicyFuture<'a, Result<Principal, String>> {
        Box::pin(async move {
            if user != self.user {
                return Err(format!("unknown user {user:?}"));
            }
            let svc = self.service()?;
            let (name, blob) = self.current_key(&svc).await?;
            let same = blob.len() == key.blob.len() && bool::from(blob.ct_eq(&key.blob));
            if !same {
                return Err(format!("not the key of key pair {name}"));
            }
            Ok(Principal {
                user: user.to_string(),
                key_fingerprint: key.fingerprint.clone(),
                tag: name,
            })
        })
    }

    fn resolve<'a>(
        &'a self,
        who: &'a Principal,
        host: &'a str,
        port: u16,
    ) -> PolicyFuture<'a, Result<Target, String>> {
        Box::pin(async move {
            if port != PHONE_ADB_PORT {
                return Err(format!("only port {PHONE_ADB_PORT} of the server's phones"));
            }
            let svc = self.service()?;
            let (_, blob) = self.current_key(&svc).await?;
            if sha256_fingerprint(&blob) != who.key_fingerprint {
                return Err("the server's key pair has changed".into());
            }
            let phones = {
                let mut c = svc.store().read().await.map_err(|e| e.to_string())?;
                cph_store::phones::of_server(&mut c, &self.server_id)
                    .await
                    .map_err(|e| e.to_string())?
            };
            let phone = phones
                .iter()
                .find(|p| p.phone_ip == host)
                .ok_or_else(|| format!("{host} is not a phone of this server"))?;
            // A phone hosted in this process is reached without a socket (the client's
            // packets reach its endpoint as they were decrypted, without a copy); any other
            // through its endpoint's address.
            let (local, stream) = cph_ssh::local::pair(cph_ssh::local::DEFAULT_CAPACITY);
            let (rx, tx) = stream.into_split();
            if svc
                .inner
                .agent
                .attach_adb(&phone.phone_id, InProcessConnection::new(rx, tx))
            {
                return Ok(Target::Local(local));
            }
            svc.inner
                .agent
                .adb_endpoint(&phone.phone_id)
                .map(Target::Tcp)
                .ok_or_else(|| format!("phone {} is not running", phone.phone_id))
        })
    }

    fn audit(&self, event: AuditEvent) {
        let Some(row) = audit_row(self, event) else {
            return;
        };
        if self.audit.try_send(row).is_err()
            && self
                .dropped
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1000)
        {
            tracing::warn!(server_id = %self.server_id, "access audit queue full; events dropped");
        }
    }
}

fn audit_row(p: &ServerPolicy, event: AuditEvent) -> Option<AuditRow> {
    let base = |kind: &str, peer: SocketAddr| AuditRow {
        event_id: uuid::Uuid::now_v7().simple().to_string(),
        at_ms: p.now.now_ms(),
        project_id: p.project_id.clone(),
        server_id: p.server_id.clone(),
        phone_id: String::new(),
        kind: kind.to_string(),
        peer: peer.to_string(),
        user_name: String::new(),
        key_fingerprint: String::new(),
        accepted: false,
        detail: String::new(),
    };
    Some(match event {
        AuditEvent::Login {
            peer,
            user,
            key_fingerprint,
            method,
            accepted,
            reason,
        } => AuditRow {
            user_name: user,
            key_fingerprint: key_fingerprint.unwrap_or_default(),
            accepted,
            detail: match reason {
                Some(r) => format!("{method}: {r}"),
                None => method,
            },
            ..base("ssh_login", peer)
        },
        AuditEvent::Tunnel {
            peer,
            principal,
            host,
            port,
            accepted,
            reason,
        } => AuditRow {
            user_name: principal.user,
            key_fingerprint: principal.key_fingerprint,
            accepted,
            detail: match reason {
                Some(r) => format!("{host}:{port}: {r}"),
                None => format!("{host}:{port}"),
            },
            ..base("ssh_tunnel", peer)
        },
        AuditEvent::TunnelClosed {
            peer,
            principal,
            host,
            port,
            bytes_up,
            bytes_down,
        } => AuditRow {
            user_name: principal.user,
            key_fingerprint: principal.key_fingerprint,
            accepted: true,
            detail: format!("{host}:{port}: {bytes_up} bytes up, {bytes_down} bytes down"),
            ..base("ssh_tunnel_closed", peer)
        },
        AuditEvent::Refused { peer, what } => AuditRow {
            detail: what,
            ..base("ssh_refused", peer)
        },
        AuditEvent::SessionClosed {
            peer,
            principal,
            reason,
        } => AuditRow {
            user_name: principal.user,
            key_fingerprint: principal.key_fingerprint,
            accepted: true,
            detail: reason,
            ..base("ssh_session_closed", peer)
        },
        _ => return None,
    })
}

impl Service {
    /// Starts keyed access: loads (or creates) the host key, starts the audit writer, a
    /// gateway for every server, and the reconciliation that starts gateways for new servers.
    pub async fn attach_gateways(&self, settings: GatewaySettings) -> Result<(), GatewayError> {
        std::fs::create_dir_all(settings.state_dir.join("ports"))?;
        let host_key =
            cph_ssh::HostKey::load_or_generate(&settings.state_dir.join("ssh_host_ed25519_key"))?;
        tracing::info!(fingerprint = %host_key.fingerprint_sha256(), "ssh gateway host key");
        let (tx, rx) = mpsc::channel(AUDIT_QUEUE);
        let shutdown = CancellationToken::new();
        let g = Gateways {
            settings,
            host_key,
            running: Mutex::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            audit: tx,
            dropped: Arc::new(AtomicU64::new(0)),
            shutdown: shutdown.clone(),
        };
        if self.inner.gateways.set(g).is_err() {
            return Ok(());
        }
        tokio::spawn(audit_writer(
            Arc::downgrade(&self.inner),
            rx,
            shutdown.clone(),
        ));
        self.reconcile_gateways().await?;
        let weak = Arc::downgrade(&self.inner);
        let every = self.gateways().map(|g| g.settings.reconcile_every);
        if let Some(every) = every {
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = (Service { inner }).reconcile_gateways().await {
                        tracing::warn!(error = %e, "starting ssh gateways failed");
                    }
                }
            });
        }
        Ok(())
    }

    fn gateways(&self) -> Option<&Gateways> {
        self.inner.gateways.get()
    }

    /// Stops every gateway (their sessions close).
    pub fn stop_gateways(&self) {
        if let Some(g) = self.gateways() {
            g.shutdown.cancel();
            lock(&g.running).clear();
        }
    }

    /// Where the server's SSH gateway listens, if it runs.
    pub fn ssh_endpoint(&self, server_id: &str) -> Option<SocketAddr> {
        let g = self.gateways()?;
        lock(&g.running)
            .get(server_id)
            .filter(|r| !r.cancel.is_cancelled())
            .map(|r| r.addr)
    }

    /// Queues an event for the access audit trail (dropped, and counted, when the queue is
    /// full or the audit writer does not run).
    pub(crate) fn record_audit(&self, row: AuditRow) {
        let Some(g) = self.gateways() else { return };
        if g.audit.try_send(row).is_err()
            && g.dropped
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1000)
        {
            tracing::warn!("access audit queue full; events dropped");
        }
    }

    /// The user name the gateways accept.
    pub fn ssh_user(&self) -> Option<&str> {
        self.gateways().map(|g| g.settings.user.as_str())
    }

    /// Starts a gateway for every server that has none.
    async fn reconcile_gateways(&self) -> Result<(), GatewayError> {
        let mut after = String::new();
        loop {
            let page = {
                let mut c = self.store().read().await?;
                cph_store::servers::ids_after(&mut c, &after, RECONCILE_PAGE).await?
            };
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.0.clone();
            for (server_id, project_id) in page {
                if self.ssh_endpoint(&server_id).is_none() {
                    self.ensure_gateway(&server_id, &project_id).await?;
                }
            }
        }
    }

    /// The server's gateway, started if it is not running.
    pub(crate) async fn ensure_gateway(
        &self,
        server_id: &str,
        project_id: &str,
    ) -> Result<Option<SocketAddr>, GatewayError> {
        let Some(g) = self.gateways() else {
            return Ok(None);
        };
        if let Some(addr) = self.ssh_endpoint(server_id) {
            return Ok(Some(addr));
        }
        let _one = g.starting.lock().await;
        if let Some(addr) = self.ssh_endpoint(server_id) {
            return Ok(Some(addr));
        }
        let listener = bind(g, server_id).await?;
        let addr = listener.local_addr()?;
        let policy = ServerPolicy {
            service: Arc::downgrade(&self.inner),
            server_id: server_id.to_string(),
            project_id: project_id.to_string(),
            user: g.settings.user.clone(),
            audit: g.audit.clone(),
            dropped: g.dropped.clone(),
            now: self.inner.clock.clone(),
        };
        let gateway = cph_ssh::Gateway::new(
            cph_ssh::GatewayConfig {
                host_key: g.host_key.clone(),
                limits: g.settings.limits.clone(),
            },
            Arc::new(policy),
        );
        let cancel = g.shutdown.child_token();
        let serving = gateway.clone();
        let stop = cancel.clone();
        let sid = server_id.to_string();
        tokio::spawn(async move {
            if let Err(e) = serving.serve(listener, stop).await {
                tracing::error!(server_id = %sid, error = %e, "ssh gateway stopped");
            }
        });
        tracing::info!(server_id, %addr, "ssh gateway listening");
        lock(&g.running).insert(
            server_id.to_string(),
            Running {
                addr,
                gateway,
                cancel,
            },
        );
        Ok(Some(addr))
    }

    /// Closes the sessions of a server's gateway that were opened with a key other than the
    /// server's current key pair (after UpdateKeypair).
    pub(crate) async fn revoke_stale_sessions(&self, server_id: &str) {
        let Some(g) = self.gateways() else { return };
        let Some(gateway) = lock(&g.running).get(server_id).map(|r| r.gateway.clone()) else {
            return;
        };
        let current = async {
            let mut c = self.store().read().await.ok()?;
            let s = cph_store::servers::get_any(&mut c, server_id)
                .await
                .ok()??;
            let kp = cph_store::network::get_keypair(&mut c, &s.project_id, &s.keypair_name)
                .await
                .ok()??;
            keypairs::parse_public_key(&kp.public_key)
                .ok()
                .map(|k| sha256_fingerprint(&k.blob))
        }
        .await;
        let closed = gateway.revoke(|p| Some(&p.key_fingerprint) != current.as_ref());
        if closed > 0 {
            tracing::info!(
                server_id,
                closed,
                "closed ssh sessions of a replaced key pair"
            );
        }
    }
}

/// Binds the server's gateway: its remembered port if free, else the next free one.
async fn bind(g: &Gateways, server_id: &str) -> Result<tokio::net::TcpListener, GatewayError> {
    let safe: String = server_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    let file = g.settings.state_dir.join("ports").join(&safe);
    let ip = g.settings.bind_ip;
    let range = g.settings.ports.clone();
    if let Some(port) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .filter(|p| range.contains(p))
        && let Ok(l) = tokio::net::TcpListener::bind((ip, port)).await
    {
        return Ok(l);
    }
    let taken: std::collections::HashSet<u16> =
        lock(&g.running).values().map(|r| r.addr.port()).collect();
    for port in range.clone() {
        if taken.contains(&port) {
            continue;
        }
        if let Ok(l) = tokio::net::TcpListener::bind((ip, port)).await {
            std::fs::write(&file, port.to_string())?;
            return Ok(l);
        }
    }
    Err(GatewayError::NoPort(range))
}

/// Writes queued audit events in batches; prunes old ones hourly.
async fn audit_writer(
    service: Weak<crate::Inner>,
    mut rx: mpsc::Receiver<AuditRow>,
    shutdown: CancellationToken,
) {
    let mut last_prune = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < AUDIT_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let Some(inner) = service.upgrade() else {
            return;
        };
        let svc = Service { inner };
        let r = async {
            let mut tx = svc.store().write().await?;
            cph_store::audit::insert_many(&mut tx, &batch).await?;
            if last_prune.elapsed() >= Duration::from_secs(3600)
                && let Some(g) = svc.gateways()
            {
                let cutoff = svc.now_ms() - g.settings.audit_retention.as_millis() as i64;
                cph_store::audit::prune_before(&mut tx, cutoff).await?;
                last_prune = std::time::Instant::now();
            }
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            Ok::<_, cph_store::StoreError>(())
        }
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, events = batch.len(), "writing access audit events failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_look_like_ssh_keygen() {
        // What `ssh-keygen -lf` prints for this key.
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let k = keypairs::parse_public_key(line).unwrap();
        assert_eq!(
            sha256_fingerprint(&k.blob),
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
        );
    }
}
