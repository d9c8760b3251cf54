//! What makes a virtual phone real: its file tree on the host's disk, its Android state and its
//! ADB endpoint.
//!
//! Layout under the hosting directory:
//! - `images/<image_id>/system/`: the image's `/system`, materialised once and shared
//!   read-only by every phone on that image;
//! - `phones/<phone_id>/root/`: everything else of the phone (`/data`, `/sdcard` → `/data/media/0`,
//!   `/cache`, …); a reset recreates it;
//! - `phones/<phone_id>/adb_port`: the host port of its endpoint, kept across restarts of the
//!   phone and of the process;
//! - `phones/<phone_id>/port_<listen_port>`: the host port that reaches the phone's own TCP
//!   port `listen_port` ([`PhoneSpec::ports`]), kept the same way;
//! - `servers/<server_id>/share/`: the server's shared storage (`data/`, `cache/` from
//!   PushShareFiles, `apps/<package>/` from PushShareApps), mounted read-only at
//!   [`SHARE_MOUNT`] in every phone of the server. The control plane writes it through its own
//!   ADB endpoint ([`Host::share_endpoint`]), which sees the volume as `/` and accepts only the
//!   host's keys; `servers/<server_id>/share_adb_port` keeps that endpoint's port.

use crate::{PhoneProfile, PhoneSpec};
use cph_adb::AdbPublicKey;
use cph_adb::device::{EndpointConfig, InProcessConnection};
use cph_phone::phone::VirtualPhone;
use cph_phone::{PhoneControl, PhoneCore};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where every phone of a server sees the server's shared storage (read-only).
pub const SHARE_MOUNT: &str = "/mnt/shared";
/// Top-level directories of a shared-storage volume.
const SHARE_LAYOUT: [&str; 3] = ["data", "cache", "apps"];

/// Where and how phones are hosted.
#[derive(Clone)]
pub struct PhoneHosting {
    /// Directory holding images and phone trees.
    pub dir: PathBuf,
    /// Address the phones' ADB endpoints listen on.
    pub bind_ip: IpAddr,
    /// Host ports handed to phones' endpoints. Keep it clear of 5555–5585, which a local adb
    /// server probes on its own.
    pub ports: RangeInclusive<u16>,
    /// Keys every phone accepts (the control plane's own key).
    pub host_keys: Vec<AdbPublicKey>,
    /// Limits of each endpoint.
    pub endpoint: EndpointConfig,
    /// Host ports that reach phones' own TCP ports ([`PhoneSpec::ports`]), bound on `bind_ip`.
    pub app_ports: RangeInclusive<u16>,
    /// Limits of each mapped port.
    pub app_port_limits: PortLimits,
}

/// Limits of a host port mapped to a phone's port.
#[derive(Debug, Clone, Copy)]
pub struct PortLimits {
    /// Connections open at once; more are closed at once.
    pub max_connections: usize,
    /// A connection with no bytes moving either way for this long is closed.
    pub idle: Duration,
}

impl Default for PortLimits {
    fn default() -> Self {
        PortLimits {
            max_connections: 16,
            idle: Duration::from_secs(300),
        }
    }
}

impl PhoneHosting {
    pub fn new(dir: PathBuf, host_keys: Vec<AdbPublicKey>) -> Self {
        PhoneHosting {
            dir,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ports: 20000..=39999,
            host_keys,
            endpoint: EndpointConfig::default(),
            app_ports: 41000..=48999,
            app_port_limits: PortLimits::default(),
        }
    }
}

/// Why a phone could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum HostingError {
    #[error("phone files: {0}")]
    Files(#[from] io::Error),
    #[error("no free host port in {0:?}")]
    NoPort(RangeInclusive<u16>),
}

/// A phone whose endpoint is up.
pub struct LivePhone {
    pub device: Arc<VirtualPhone>,
    pub addr: SocketAddr,
    /// What the phone was started from.
    pub spec: PhoneSpec,
    /// Host addresses that reach the phone's own ports, as (port inside the phone, address).
    pub ports: Vec<(u16, SocketAddr)>,
    endpoint: Arc<cph_adb::device::Endpoint>,
    cancel: CancellationToken,
}

impl LivePhone {
    /// Serves an in-process connection on the phone's ADB endpoint (see
    /// [`cph_adb::device::Endpoint::attach`]); it ends when the phone stops.
    pub fn attach_adb(&self, conn: InProcessConnection) -> bool {
        self.endpoint.attach(conn, self.cancel.child_token())
    }

    /// Applies properties set through the API to the running phone.
    pub fn apply_api_properties(&self, props: &BTreeMap<String, serde_json::Value>) {
        self.device.core().props.apply_api(&api_props(props));
    }

    /// Closes the endpoint and every connection to it.
    pub fn shut_down(&self) {
        self.cancel.cancel();
    }
}

impl Drop for LivePhone {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Host-side files and endpoints of all phones of one agent.
pub struct Host {
    pub cfg: PhoneHosting,
    /// Ports in use or reserved by phones of this host.
    ports: Mutex<HashMap<String, u16>>,
    /// Image ids whose `/system` was materialised by this process, with their packages.
    images: Mutex<HashMap<String, Arc<Vec<cph_phone::pm::SystemPackage>>>>,
    /// Held while an image's `/system` is written.
    materializing: Mutex<()>,
    /// Endpoints of shared-storage volumes, by server id.
    shares: tokio::sync::Mutex<HashMap<String, LiveShare>>,
}

/// A shared-storage volume whose endpoint is up.
struct LiveShare {
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl Drop for LiveShare {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Host {
    pub fn new(cfg: PhoneHosting) -> Self {
        Host {
            cfg,
            ports: Mutex::new(HashMap::new()),
            images: Mutex::new(HashMap::new()),
            materializing: Mutex::new(()),
            shares: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn server_dir(&self, server_id: &str) -> PathBuf {
        self.cfg.dir.join("servers").join(safe_name(server_id))
    }

    /// The host directory of a server's shared storage, created with its layout if missing.
    fn share_dir(&self, server_id: &str) -> io::Result<PathBuf> {
        let dir = self.server_dir(server_id).join("share");
        for d in SHARE_LAYOUT {
            std::fs::create_dir_all(dir.join(d))?;
        }
        Ok(dir)
    }

    /// Where the server's shared-storage volume accepts ADB connections, starting its endpoint
    /// on first use. The endpoint is a device whose `/` is the volume (`/data`, `/cache`,
    /// `/apps`), with the usual shell and sync services, and accepts only the host's keys.
    pub async fn share_endpoint(&self, server_id: &str) -> Result<SocketAddr, HostingError> {
        let mut shares = self.shares.lock().await;
        if let Some(live) = shares.get(server_id)
            && !live.cancel.is_cancelled()
        {
            return Ok(live.addr);
        }
        let dir = self.share_dir(server_id)?;
        let core = PhoneCore {
            fs: cph_phone::fs::PhoneFs::new(vec![cph_phone::fs::Mount {
                device_path: "/".into(),
                host_dir: dir,
                read_only: false,
            }])?,
            props: cph_phone::props::Props::new(BTreeMap::from([
                ("ro.product.model".to_string(), "shared-storage".to_string()),
                (
                    "ro.serialno".to_string(),
                    server_id.chars().take(16).collect(),
                ),
            ])),
            pm: cph_phone::pm::PackageManager::new(Vec::new()),
            android: cph_phone::android::AndroidState::new(),
            control: Arc::new(cph_phone::NoControl),
            net: cph_phone::net::PhoneNet::new(),
        };
        let identity = cph_adb::DeviceIdentity {
            product_name: "shared-storage".into(),
            model: "shared-storage".into(),
            device: "shared-storage".into(),
        };
        let device: Arc<dyn cph_adb::Device> = Arc::new(VirtualPhone::new(
            Arc::new(core),
            identity,
            self.cfg.host_keys.clone(),
        ));
        let port_file = self.server_dir(server_id).join("share_adb_port");
        let listener = self
            .bind(&format!("share:{server_id}"), &port_file, &self.cfg.ports)
            .await?;
        let addr = listener.local_addr().map_err(HostingError::Files)?;
        let cancel = CancellationToken::new();
        let endpoint = cph_adb::device::Endpoint::new(device, self.cfg.endpoint.clone());
        tokio::spawn(endpoint.serve(listener, cancel.clone()));
        shares.insert(server_id.to_string(), LiveShare { addr, cancel });
        Ok(addr)
    }

    fn phone_dir(&self, phone_id: &str) -> PathBuf {
        self.cfg.dir.join("phones").join(safe_name(phone_id))
    }

    fn image_dir(&self, image_id: &str) -> PathBuf {
        self.cfg
            .dir
            .join("images")
            .join(safe_name(image_id))
            .join("system")
    }

    /// The image's `/system` (materialised on first use) and its packages.
    fn system_of(
        &self,
        spec: &PhoneSpec,
    ) -> io::Result<(PathBuf, Arc<Vec<cph_phone::pm::SystemPackage>>)> {
        let dir = self.image_dir(&spec.image_id);
        if let Some(p) = lock(&self.images).get(&spec.image_id) {
            return Ok((dir, p.clone()));
        }
        // One image is written by one thread at a time; the others wait and reuse it.
        let _writing = lock(&self.materializing);
        if let Some(p) = lock(&self.images).get(&spec.image_id) {
            return Ok((dir, p.clone()));
        }
        let props = cph_phone::image::build_props(&image_inputs(spec));
        let pkgs = cph_phone::image::materialize_system(
            &dir,
            &spec.profile.android_version,
            spec.profile.sdk,
            &props,
        )?;
        let pkgs = Arc::new(pkgs);
        lock(&self.images).insert(spec.image_id.clone(), pkgs.clone());
        Ok((dir, pkgs))
    }

    /// Creates the phone's tree if it does not exist yet (first boot).
    fn ensure_tree(&self, phone_id: &str) -> io::Result<PathBuf> {
        let root = self.phone_dir(phone_id).join("root");
        if !root.join("data").is_dir() {
            create_layout(&root)?;
        }
        // Trees made before shared storage existed get its mount point too.
        std::fs::create_dir_all(root.join(SHARE_MOUNT.trim_start_matches('/')))?;
        Ok(root)
    }

    /// Restores the phone's tree to the image's factory state.
    pub fn wipe(&self, phone_id: &str) -> io::Result<()> {
        let root = self.phone_dir(phone_id).join("root");
        match std::fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        create_layout(&root)
    }

    /// Removes every file of the phone and releases its ports.
    pub fn delete(&self, phone_id: &str) -> io::Result<()> {
        let mapped = format!("{phone_id}/");
        lock(&self.ports).retain(|k, _| k != phone_id && !k.starts_with(&mapped));
        match std::fs::remove_dir_all(self.phone_dir(phone_id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The keys a phone accepts: the host's and the spec's.
    pub fn allowed_keys(&self, spec: &PhoneSpec) -> Vec<AdbPublicKey> {
        let mut keys = self.cfg.host_keys.clone();
        for line in &spec.adb_keys {
            match AdbPublicKey::from_line(line) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    tracing::warn!(phone_id = %spec.phone_id, error = %e, "ignoring an unusable ADB key")
                }
            }
        }
        keys
    }

    /// Builds the phone (files, properties, packages) and opens its endpoint.
    pub async fn start(
        self: &Arc<Self>,
        spec: &PhoneSpec,
        control: Arc<dyn PhoneControl>,
    ) -> Result<LivePhone, HostingError> {
        let host = self.clone();
        let spec2 = spec.clone();
        let core = tokio::task::spawn_blocking(move || host.build_core(&spec2, control))
            .await
            .map_err(|e| io::Error::other(e.to_string()))??;
        let identity = cph_adb::DeviceIdentity {
            product_name: spec.profile.product_name.clone(),
            model: spec.profile.model.clone(),
            device: spec.profile.device.clone(),
        };
        let keys = self.allowed_keys(spec);
        let device = Arc::new(VirtualPhone::new(Arc::new(core), identity, keys));
        let port_file = self.phone_dir(&spec.phone_id).join("adb_port");
        let listener = self
            .bind(&spec.phone_id, &port_file, &self.cfg.ports)
            .await?;
        let addr = listener.local_addr().map_err(HostingError::Files)?;
        let cancel = CancellationToken::new();
        let dev: Arc<dyn cph_adb::Device> = device.clone();
        let endpoint = cph_adb::device::Endpoint::new(dev, self.cfg.endpoint.clone());
        tokio::spawn(endpoint.clone().serve(listener, cancel.clone()));
        let ports = self.map_ports(spec, &device, &cancel).await;
        Ok(LivePhone {
            device,
            addr,
            spec: spec.clone(),
            ports,
            endpoint,
            cancel,
        })
    }

    /// Opens a host port for each of the phone's mapped ports; a port that cannot be bound is
    /// left out (and logged), the phone runs without it.
    async fn map_ports(
        &self,
        spec: &PhoneSpec,
        device: &Arc<VirtualPhone>,
        cancel: &CancellationToken,
    ) -> Vec<(u16, SocketAddr)> {
        let mut wanted = spec.ports.clone();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = Vec::with_capacity(wanted.len());
        for port in wanted {
            let key = format!("{}/{port}", spec.phone_id);
            let file = self.phone_dir(&spec.phone_id).join(format!("port_{port}"));
            let bound = self.bind(&key, &file, &self.cfg.app_ports).await;
            let listener = match bound {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(phone_id = %spec.phone_id, port, error = %e, "phone port not mapped");
                    continue;
                }
            };
            let Ok(addr) = listener.local_addr() else {
                continue;
            };
            tokio::spawn(forward_port(
                listener,
                device.clone(),
                port,
                self.cfg.app_port_limits,
                cancel.clone(),
            ));
            out.push((port, addr));
        }
        out
    }

    fn build_core(
        &self,
        spec: &PhoneSpec,
        control: Arc<dyn PhoneControl>,
    ) -> io::Result<PhoneCore> {
        let (system_dir, system_pkgs) = self.system_of(spec)?;
        let root = self.ensure_tree(&spec.phone_id)?;
        let share = self.share_dir(&spec.server_id)?;
        let fs = cph_phone::fs::PhoneFs::new(vec![
            cph_phone::fs::Mount {
                device_path: SHARE_MOUNT.into(),
                host_dir: share,
                read_only: true,
            },
            cph_phone::fs::Mount {
                device_path: "/".into(),
                host_dir: root,
                read_only: false,
            },
            cph_phone::fs::Mount {
                device_path: "/system".into(),
                host_dir: system_dir,
                read_only: true,
            },
        ])?;
        let mut base = cph_phone::image::build_props(&image_inputs(spec));
        for (k, v) in &spec.profile.default_properties {
            base.insert(k.clone(), v.clone());
        }
        base.insert(
            "ro.serialno".into(),
            spec.phone_id.chars().take(16).collect(),
        );
        base.insert("persist.radio.imei".into(), spec.imei.clone());
        base.insert("ro.ril.oem.imei".into(), spec.imei.clone());
        base.insert("dhcp.eth0.ipaddress".into(), spec.phone_ip.clone());
        let props = cph_phone::props::Props::new(base);
        props.apply_api(&api_props(&spec.properties));
        let pm = cph_phone::pm::PackageManager::new(system_pkgs.as_ref().clone());
        let core = PhoneCore {
            fs,
            props,
            pm,
            android: cph_phone::android::AndroidState::new(),
            control,
            net: cph_phone::net::PhoneNet::new(),
        };
        cph_phone::android::load_persistent_state(&core)?;
        Ok(core)
    }

    /// Binds an endpoint (a phone's, or `share:<server_id>`): its remembered port (in memory
    /// or in `file`) if it is free, else the next free one, which `file` then remembers.
    async fn bind(
        &self,
        phone_id: &str,
        file: &Path,
        range: &RangeInclusive<u16>,
    ) -> Result<tokio::net::TcpListener, HostingError> {
        let remembered = lock(&self.ports).get(phone_id).copied().or_else(|| {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|p| range.contains(p))
        });
        if let Some(port) = remembered
            && let Ok(l) = tokio::net::TcpListener::bind((self.cfg.bind_ip, port)).await
        {
            lock(&self.ports).insert(phone_id.to_string(), port);
            return Ok(l);
        }
        let taken: HashSet<u16> = lock(&self.ports)
            .iter()
            .filter(|(id, _)| id.as_str() != phone_id)
            .map(|(_, p)| *p)
            .collect();
        let (lo, hi) = (*range.start(), *range.end());
        let span = u32::from(hi - lo) + 1;
        // Start at a point derived from the id so phones spread over the range.
        let start = phone_id
            .bytes()
            .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
            % span;
        for i in 0..span {
            let port = lo + ((start + i) % span) as u16;
            if taken.contains(&port) || (5554..=5585).contains(&port) {
                continue;
            }
            if let Ok(l) = tokio::net::TcpListener::bind((self.cfg.bind_ip, port)).await {
                lock(&self.ports).insert(phone_id.to_string(), port);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent).map_err(HostingError::Files)?;
                }
                std::fs::write(file, port.to_string()).map_err(HostingError::Files)?;
                return Ok(l);
            }
        }
        Err(HostingError::NoPort(range.clone()))
    }
}

/// Serves a host port mapped to the phone's `port`: each connection is joined to the phone's
/// listener on that port (`nc -l`), or closed at once when nothing listens there or
/// `limits.max_connections` are open. Ends with the phone (`cancel`).
async fn forward_port(
    listener: tokio::net::TcpListener,
    device: Arc<VirtualPhone>,
    port: u16,
    limits: PortLimits,
    cancel: CancellationToken,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        let sock = match accepted {
            Ok((sock, _)) => sock,
            Err(e) => {
                // e.g. out of descriptors: back off instead of spinning.
                tracing::debug!(port, error = %e, "accepting on a phone port failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropping the socket closes it
        };
        let Ok(conn) = device.core().net.connect(port) else {
            continue; // nothing listens on the phone's port: refused
        };
        let stop = cancel.child_token();
        tokio::spawn(async move {
            splice(sock, conn, limits.idle, stop).await;
            drop(permit);
        });
    }
}

/// Moves bytes between a host socket and an in-phone connection until both directions have
/// ended, no byte moved for `idle`, or `cancel`. The phone's side is blocking (bounded pipes),
/// so one blocking task reads it and another writes it, through small bounded channels.
async fn splice(
    sock: tokio::net::TcpStream,
    conn: cph_phone::net::Conn,
    idle: Duration,
    cancel: CancellationToken,
) {
    use std::io::{Read, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CHUNK: usize = 16 * 1024;
    let closer = conn.closer();
    let cph_phone::net::Conn { reader, writer } = conn;
    let (from_phone_tx, mut from_phone) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let (to_phone, mut to_phone_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if from_phone_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(chunk) = to_phone_rx.blocking_recv() {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
        // Dropping the writer tells the phone the host side is done sending.
    });
    let (mut rd, mut wr) = sock.into_split();
    let mut to_phone = Some(to_phone);
    let mut phone_done = false;
    let mut buf = vec![0u8; CHUNK];
    while !(phone_done && to_phone.is_none()) {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(idle) => break,
            r = rd.read(&mut buf), if to_phone.is_some() => match r {
                Ok(n) if n > 0 => {
                    let Some(tx) = &to_phone else { break };
                    match tokio::time::timeout(idle, tx.send(buf[..n].to_vec())).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => to_phone = None,
                        Err(_) => break,
                    }
                }
                _ => to_phone = None,
            },
            c = from_phone.recv(), if !phone_done => match c {
                Some(c) => match tokio::time::timeout(idle, wr.write_all(&c)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                },
                None => {
                    phone_done = true;
                    let _ = wr.shutdown().await;
                }
            },
        }
    }
    closer.close();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A path component derived from an id: only `[0-9A-Za-z_-]`, so an id never walks the host.
fn safe_name(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

/// API properties as strings (integers are given as JSON numbers).
fn api_props(props: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, String> {
    props
        .iter()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

fn image_inputs(spec: &PhoneSpec) -> cph_phone::image::ImageInputs {
    let p: &PhoneProfile = &spec.profile;
    cph_phone::image::ImageInputs {
        image_id: spec.image_id.clone(),
        image_name: p.image_name.clone(),
        os_name: p.os_name.clone(),
        android_version: p.android_version.clone(),
        sdk: p.sdk,
        product_name: p.product_name.clone(),
        model: p.model.clone(),
        device: p.device.clone(),
        brand: p.brand.clone(),
        manufacturer: p.manufacturer.clone(),
        width: p.width,
        height: p.height,
        density: p.density,
    }
}

/// The directories of a fresh phone (what the image's init would create).
fn create_layout(root: &Path) -> io::Result<()> {
    for d in [
        "data/local/tmp",
        "data/media/0/Download",
        "data/media/0/DCIM",
        "data/media/0/Pictures",
        "data/media/0/Music",
        "data/media/0/Movies",
        "data/media/0/Documents",
        "data/app",
        "data/data",
        "data/user",
        "data/system",
        "data/property",
        "data/misc/adb",
        "cache",
        "mnt/shared",
        "storage/emulated",
        "storage/self",
        "vendor",
        "oem",
        "acct",
        "config",
        "dev",
        "proc",
        "sys",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    // Symbolic links hold device paths; the phone's file system resolves them in its sandbox.
    for (link, target) in [
        ("sdcard", "/storage/self/primary"),
        ("storage/self/primary", "/storage/emulated/0"),
        ("storage/emulated/0", "/data/media/0"),
        ("etc", "/system/etc"),
        ("data/user/0", "/data/data"),
    ] {
        let p = root.join(link);
        if std::fs::symlink_metadata(&p).is_err() {
            std::os::unix::fs::symlink(target, &p)?;
        }
    }
    Ok(())
}
