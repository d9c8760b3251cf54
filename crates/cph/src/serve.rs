//! `cph serve`.

use crate::config::{Resolved, ServeArgs, resolve};
use anyhow::Context;
use cph_domain::{Clock, SystemClock};
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::{Durations, VirtualHostAgent};
use cph_service::iam::BootstrapRequest;
use cph_service::{Service, ServiceConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_DOMAIN: &str = "cph-admin";
pub const ADMIN_USER: &str = "admin";

/// Builds the service from resolved settings (used by `serve` and `admin`).
pub async fn build_service(r: &Resolved) -> anyhow::Result<Service> {
    std::fs::create_dir_all(&r.data_dir)
        .with_context(|| format!("creating {}", r.data_dir.display()))?;
    let store = cph_store::Store::open(&r.database_url)
        .await
        .with_context(|| format!("opening the database {}", redact(&r.database_url)))?;
    let catalog = match &r.catalog_file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            cph_catalog::Catalog::from_json_str(&text)
                .with_context(|| format!("loading catalog {}", p.display()))?
        }
        None => cph_catalog::Catalog::builtin(),
    };
    let adb_key = adb_key(&r.data_dir)?;
    let (master_key, master_key_path, key_created) = master_key(r)?;
    let config = ServiceConfig {
        region: r.region.clone(),
        availability_zone: r.availability_zone.clone(),
        public_ip_pool: r
            .public_ip_pool
            .parse()
            .context("public_ip_pool must be an IPv4 CIDR")?,
        job_lease: Duration::from_secs(r.job_lease_secs.max(3)),
        job_max_attempts: r.job_max_attempts.max(1),
        job_concurrency: r.job_concurrency.max(1),
        job_timeout: Duration::from_secs(r.job_timeout_secs.max(1)),
        transfers_per_host: r.transfers_per_host,
        // A job queued behind its host's transfers may wait this long for a slot.
        transfer_wait: Duration::from_secs(r.job_timeout_secs.max(1)).saturating_mul(6),
        expiry_interval: Duration::from_secs(r.expiry_interval_secs.max(1)),
        token_key: token_key(&r.data_dir)?,
        default_host_capacity: r.default_host_capacity,
        adb_key: Some(adb_key.clone()),
        sync_commands_per_minute: r.sync_commands_per_minute,
        keypair_algorithm: r.keypair_algorithm,
        master_key,
        ..ServiceConfig::default()
    };
    let mut hosting = PhoneHosting::new(r.data_dir.join("phones"), vec![adb_key.public_key()]);
    hosting.bind_ip = r.phone_bind_ip;
    hosting.ports = r.phone_ports.clone();
    hosting.app_ports = r.app_ports.clone();
    let agent = VirtualHostAgent::hosted(
        "local",
        Durations {
            boot: Duration::from_millis(r.phone_boot_ms),
            stop: Duration::from_millis(r.phone_stop_ms),
            reset: Duration::from_millis(r.phone_reset_ms),
        },
        hosting,
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = Service::new(store, catalog, clock, config, agent);
    if let Err(e) = service.seal_stored_secrets().await {
        let wrong_key = matches!(&e, cph_service::ServiceError::Internal(inner)
            if inner.is::<cph_service::iam::WrongMasterKey>());
        let what = if key_created && wrong_key {
            // A key made just now cannot be the one the store was sealed with: do not leave it
            // behind for the next start to trust.
            let _ = std::fs::remove_file(&master_key_path);
            format!(
                "the master key file {} was missing; the store holds secret keys sealed with \
                 another master key (restore the original key file)",
                master_key_path.display()
            )
        } else {
            format!(
                "checking the stored secret keys with the master key file {}",
                master_key_path.display()
            )
        };
        return Err(anyhow::Error::new(e).context(what));
    }
    Ok(service)
}

/// The master key that encrypts secret keys at rest: the configured file (`master_key_file`,
/// which must exist, since replicas share it), else `secrets.key` in the data directory,
/// created with 32 random bytes (mode 0600) on first start.
/// Also says whether the file was created now.
fn master_key(r: &Resolved) -> anyhow::Result<(cph_store::secrets::MasterKey, PathBuf, bool)> {
    use cph_store::secrets::MasterKey;
    let (path, configured) = match &r.master_key_file {
        Some(p) => (p.clone(), true),
        None => (r.data_dir.join("secrets.key"), false),
    };
    let read = |path: &Path| -> anyhow::Result<MasterKey> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the master key file {}", path.display()))?;
        MasterKey::from_file_contents(&bytes)
            .with_context(|| format!("reading the master key file {}", path.display()))
    };
    if configured || path.exists() {
        return Ok((read(&path)?, path, false));
    }
    let (key, raw) = MasterKey::generate().context("generating the master key")?;
    // Written aside and linked into place, so two processes starting at once agree on one key.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_private(&tmp, &raw[..])?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok((key, path, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((read(&path)?, path, false)),
        Err(e) => Err(e).with_context(|| format!("writing the master key file {}", path.display())),
    }
}

/// The control plane's ADB key (`adbkey` in the data directory, PKCS#8 PEM, mode 0600),
/// created on first start. Every phone accepts it; `adbkey.pub` next to it is its public half.
fn adb_key(data_dir: &Path) -> anyhow::Result<cph_adb::AdbPrivateKey> {
    let path = data_dir.join("adbkey");
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return cph_adb::AdbPrivateKey::from_pem(&pem)
            .with_context(|| format!("reading the ADB key {}", path.display()));
    }
    let key = cph_adb::AdbPrivateKey::generate().context("generating the ADB key")?;
    let pem = key.to_pem().context("encoding the ADB key")?;
    write_private(&path, pem.as_bytes())?;
    let public = key
        .public_key()
        .to_line("cph@control-plane")
        .context("encoding the ADB public key")?;
    std::fs::write(data_dir.join("adbkey.pub"), format!("{public}\n"))
        .context("writing adbkey.pub")?;
    Ok(key)
}

/// Hides the password of a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The secret that signs tokens: `CPH_TOKEN_KEY` (hex) or a random key kept in the data dir.
fn token_key(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(hexkey) = std::env::var("CPH_TOKEN_KEY") {
        return hex_decode(&hexkey).context("CPH_TOKEN_KEY must be hex");
    }
    let path = data_dir.join("token.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return hex_decode(text.trim()).context("token.key is corrupt");
    }
    let key: Vec<u8> = (0..32).map(|_| rand_byte()).collect();
    let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, text.as_bytes())?;
    Ok(key)
}

fn rand_byte() -> u8 {
    let id = cph_domain::ids::hex_id();
    u8::from_str_radix(&id[..2], 16).unwrap_or(0)
}

fn hex_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        anyhow::bail!("odd length");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(anyhow::Error::from))
        .collect()
}

/// Writes a file readable only by its owner, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct BootstrapFile {
    api_endpoint: String,
    s3_endpoint: String,
    region: String,
    domain_name: String,
    user_name: String,
    password: String,
    access_key: String,
    secret_key: String,
    project_id: String,
    default_vpc_id: String,
    default_subnet_id: String,
}

pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    let r = resolve(&a)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&r.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let service = build_service(&r).await?;
    let boot = service
        .bootstrap(&BootstrapRequest {
            domain_name: ADMIN_DOMAIN.into(),
            user_name: ADMIN_USER.into(),
            access_key: std::env::var("CPH_BOOTSTRAP_ACCESS_KEY")
                .ok()
                .filter(|s| !s.is_empty()),
            secret_key: std::env::var("CPH_BOOTSTRAP_SECRET_KEY")
                .ok()
                .filter(|s| !s.is_empty()),
        })
        .await?;
    service.recover().await?;
    let engine = service.start_engine();

    let listener = tokio::net::TcpListener::bind(&r.listen)
        .await
        .with_context(|| format!("listening on {}", r.listen))?;
    let addr = listener.local_addr()?;
    let api_endpoint = format!("http://{addr}");

    // The embedded object storage, signed with the same AK/SK as the API.
    let mut s3_config = cph_s3::S3Config::new(r.data_dir.join("objects"));
    s3_config.region = r.region.clone();
    s3_config.virtual_host_domain = r.s3_domain.clone();
    let s3 = cph_s3::S3Server::new(
        &s3_config,
        Arc::new(IamCredentials {
            service: service.clone(),
        }),
    )
    .context("opening the object store")?;
    // `obs://bucket/key` in API requests: the embedded store and the external endpoints.
    let backends = cph_objects::Backends::new(Some(s3.store().clone()), &r.objects_external)
        .context("configuring external object storage")?;
    let external = backends.summaries();
    for e in &external {
        tracing::info!(
            host = %e.host,
            buckets = ?e.buckets,
            default = e.default,
            domains = %e.domains,
            virtual_hosted = e.virtual_hosted,
            "external object storage endpoint"
        );
    }
    service.attach_object_store(backends, r.data_dir.join("spool"));
    // Keyed access: an SSH gateway per server.
    let mut gateways = cph_service::gateway::GatewaySettings::new(r.data_dir.join("ssh"));
    gateways.bind_ip = r.ssh_bind_ip;
    gateways.ports = r.ssh_ports.clone();
    service
        .attach_gateways(gateways)
        .await
        .context("starting the ssh gateways")?;
    // Phone connections: the WebSocket relay that connect tickets open.
    let connect_listener = tokio::net::TcpListener::bind(&r.connect_listen)
        .await
        .with_context(|| format!("listening on {}", r.connect_listen))?;
    let connect_addr = connect_listener.local_addr()?;
    let (connect_url, warning) =
        cph_service::connect::RelayUrl::advertised(r.connect_public_url.clone(), connect_addr);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let mut connect = cph_service::connect::ConnectSettings::new(connect_url.clone());
    connect.ticket_ttl = Duration::from_secs(r.connect_ticket_ttl_secs);
    connect.max_sessions = r.connect_max_sessions;
    connect.idle_timeout = Duration::from_secs(r.connect_idle_timeout_secs);
    service
        .attach_connect_relay(connect)
        .await
        .context("starting the connect relay")?;
    let connect_stop = tokio_util::sync::CancellationToken::new();
    let connect_task = tokio::spawn(cph_api::relay::serve_relay(
        connect_listener,
        service.clone(),
        connect_stop.clone(),
    ));
    let s3_listener = tokio::net::TcpListener::bind(&r.s3_listen)
        .await
        .with_context(|| format!("listening on {}", r.s3_listen))?;
    let s3_endpoint = format!("http://{}", s3_listener.local_addr()?);
    let s3_stop = tokio_util::sync::CancellationToken::new();
    let s3_task = tokio::spawn(cph_s3::serve(s3_listener, s3.router(), s3_stop.clone()));

    // Credentials: keep the password of an earlier run; if it is unknown, set a new one.
    let path = r.data_dir.join("bootstrap.json");
    let previous: BootstrapFile = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let password = match boot.password.clone() {
        Some(p) => p,
        None if !previous.password.is_empty() => previous.password.clone(),
        None => {
            let p = cph_auth::secret::generate_secret_key();
            service
                .admin_set_password(ADMIN_DOMAIN, ADMIN_USER, &p)
                .await?;
            p
        }
    };
    let file = BootstrapFile {
        api_endpoint: api_endpoint.clone(),
        s3_endpoint: s3_endpoint.clone(),
        region: r.region.clone(),
        domain_name: boot.domain_name.clone(),
        user_name: boot.user_name.clone(),
        password,
        access_key: boot.access_key.clone(),
        secret_key: boot.secret_key.clone().unwrap_or_default(),
        project_id: boot.project_id.clone(),
        default_vpc_id: boot.default_vpc_id.clone(),
        default_subnet_id: boot.default_subnet_id.clone(),
    };
    write_private(&path, &serde_json::to_vec_pretty(&file)?)?;
    println!("cph serving the API at {api_endpoint}");
    println!("  object storage (S3): {s3_endpoint}");
    println!(
        "  connect relay: {connect_url}{} (listening on {connect_addr})",
        cph_service::connect::RELAY_PATH
    );
    for e in &external {
        let serves = match (e.default, e.buckets.is_empty()) {
            (true, true) => "default".to_string(),
            (true, false) => format!("{}, default", e.buckets.join(", ")),
            (false, _) => e.buckets.join(", "),
        };
        println!(
            "  external object storage: {} ({serves}; accounts: {})",
            e.host, e.domains
        );
    }
    println!("  region:       {}", file.region);
    println!("  project_id:   {}", file.project_id);
    println!("  access_key:   {}", file.access_key);
    println!("  secret_key:   {}", file.secret_key);
    println!(
        "  domain/user:  {}/{} (password in {})",
        file.domain_name,
        file.user_name,
        path.display()
    );
    println!("  store:        {}", redact(&r.database_url));
    println!(
        "  ssh gateways: {} ports {}-{} (user root, the server's key pair)",
        r.ssh_bind_ip,
        r.ssh_ports.start(),
        r.ssh_ports.end()
    );

    let app = cph_api::router(cph_api::AppState {
        service: service.clone(),
        clock: Arc::new(SystemClock),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down");
    s3_stop.cancel();
    if let Ok(Err(e)) = s3_task.await {
        tracing::warn!(error = %e, "object storage endpoint stopped with an error");
    }
    connect_stop.cancel();
    service.stop_connect_relay();
    if let Ok(Err(e)) = connect_task.await {
        tracing::warn!(error = %e, "connect relay stopped with an error");
    }
    service.stop_gateways();
    engine.shutdown().await;
    service.store().close().await;
    Ok(())
}

/// The object storage's view of IAM: an access key stands for its user, and buckets belong to
/// the user's account (domain), as OBS buckets belong to an account rather than a project.
/// Other accounts' buckets answer `AccessDenied`.
struct IamCredentials {
    service: Service,
}

impl cph_s3::Credentials for IamCredentials {
    fn lookup(
        &self,
        access_key: &str,
    ) -> futures::future::BoxFuture<'_, Option<cph_s3::Principal>> {
        let ak = access_key.to_string();
        Box::pin(async move {
            match self.service.access_key(&ak).await {
                Ok(Some((key, user))) if key.active => Some(cph_s3::Principal {
                    secret_key: key.secret_key.expose().to_string(),
                    project_id: user.domain_id,
                    user_id: user.user_id,
                }),
                Ok(_) => None,
                Err(e) => {
                    tracing::error!(error = %e, "access key lookup for object storage failed");
                    None
                }
            }
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
