//! Configuration: a TOML file, `CPH_*` environment variables and command-line flags.
//! Flags override the environment, which overrides the file, which overrides the defaults.
//!
//! External object storage (S3-compatible or Huawei OBS endpoints that `obs://bucket/key`
//! resolves to besides the embedded store) is configured in the file as `[[objects.external]]`
//! entries (see [`cph_objects::EndpointConfig`]: `endpoint`, `region`, `access_key`,
//! `secret_key`, `virtual_hosted`, `buckets`, `default`, `domains`, `ca_file`,
//! `connect_timeout_secs`, `read_timeout_secs`, `max_requests`). One default endpoint can also be given with
//! `--objects-default-endpoint`/`CPH_OBJECTS_DEFAULT_ENDPOINT` and its companions
//! (`_REGION`, `_ACCESS_KEY`, `_VIRTUAL_HOSTED`, `_DOMAINS`); its secret key is read from
//! `CPH_OBJECTS_DEFAULT_SECRET_KEY` only, never from a flag, so it does not show in process
//! listings. That endpoint replaces the file's default (a file entry keeps serving the buckets
//! it names). An endpoint serves only the accounts (domain ids) listed in its `domains`, or
//! every account with `"*"`; none by default.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Settings read from the TOML file (every key optional). See README "Configuration".
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub region: Option<String>,
    pub availability_zone: Option<String>,
    pub public_ip_pool: Option<String>,
    pub default_host_capacity: Option<i64>,
    pub phone_boot_ms: Option<u64>,
    pub phone_stop_ms: Option<u64>,
    pub phone_reset_ms: Option<u64>,
    pub job_lease_secs: Option<u64>,
    pub job_max_attempts: Option<i64>,
    pub job_concurrency: Option<usize>,
    pub job_timeout_secs: Option<u64>,
    pub transfers_per_host: Option<usize>,
    pub expiry_interval_secs: Option<u64>,
    pub catalog_file: Option<PathBuf>,
    pub master_key_file: Option<PathBuf>,
    pub log: Option<String>,
    pub phone_bind_ip: Option<String>,
    pub phone_ports: Option<String>,
    pub app_ports: Option<String>,
    pub sync_commands_per_minute: Option<u32>,
    pub s3_listen: Option<String>,
    pub s3_domain: Option<String>,
    pub ssh_bind_ip: Option<String>,
    pub ssh_ports: Option<String>,
    pub connect_listen: Option<String>,
    pub connect_ticket_ttl_secs: Option<u64>,
    pub connect_public_url: Option<String>,
    pub connect_max_sessions: Option<usize>,
    pub connect_idle_timeout_secs: Option<u64>,
    pub keypair_algorithm: Option<String>,
    pub objects: Option<ObjectsSection>,
}

/// The `[objects]` section of the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsSection {
    /// External endpoints, `[[objects.external]]`.
    #[serde(default)]
    pub external: Vec<cph_objects::EndpointConfig>,
}

/// Flags (and their environment variables) shared by `serve` and `admin`.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct CommonArgs {
    /// TOML configuration file.
    #[arg(long, env = "CPH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, keys, bootstrap.json). Default ./cph-data.
    #[arg(long, env = "CPH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB. Default: SQLite in the data directory.
    #[arg(long, env = "CPH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File holding the master key that encrypts secret keys at rest (32 bytes, or 64 hex
    /// digits); it must exist. Default: secrets.key in the data directory, created on first
    /// start. Replicas sharing a PostgreSQL store must all use the same key.
    #[arg(long, env = "CPH_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

/// Flags of `serve`.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// API listen address. Default 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, env = "CPH_LISTEN")]
    pub listen: Option<String>,
    /// Region name; also the name of the bootstrap project.
    #[arg(long, env = "CPH_REGION")]
    pub region: Option<String>,
    #[arg(long, env = "CPH_AVAILABILITY_ZONE")]
    pub availability_zone: Option<String>,
    /// CIDR of public addresses handed out as EIPs.
    #[arg(long, env = "CPH_PUBLIC_IP_POOL")]
    pub public_ip_pool: Option<String>,
    /// Hosts per server model when none is configured with `cph admin capacity set`.
    #[arg(long, env = "CPH_DEFAULT_HOST_CAPACITY")]
    pub default_host_capacity: Option<i64>,
    /// Virtual phone boot time in milliseconds.
    #[arg(long, env = "CPH_PHONE_BOOT_MS")]
    pub phone_boot_ms: Option<u64>,
    #[arg(long, env = "CPH_PHONE_STOP_MS")]
    pub phone_stop_ms: Option<u64>,
    #[arg(long, env = "CPH_PHONE_RESET_MS")]
    pub phone_reset_ms: Option<u64>,
    #[arg(long, env = "CPH_JOB_LEASE_SECS")]
    pub job_lease_secs: Option<u64>,
    #[arg(long, env = "CPH_JOB_MAX_ATTEMPTS")]
    pub job_max_attempts: Option<i64>,
    #[arg(long, env = "CPH_JOB_CONCURRENCY")]
    pub job_concurrency: Option<usize>,
    #[arg(long, env = "CPH_JOB_TIMEOUT_SECS")]
    pub job_timeout_secs: Option<u64>,
    /// Object transfers (InstallApk, PushFile, data import/export) applied to phones at once
    /// per host, 1-1024; other jobs wait for a slot. Default 8.
    #[arg(long, env = "CPH_TRANSFERS_PER_HOST")]
    pub transfers_per_host: Option<usize>,
    /// Seconds between passes that renew or freeze servers whose charging period ended.
    #[arg(long, env = "CPH_EXPIRY_INTERVAL_SECS")]
    pub expiry_interval_secs: Option<u64>,
    /// A catalog file (server_models, phone_models, phone_images) replacing the built-in one.
    #[arg(long, env = "CPH_CATALOG_FILE")]
    pub catalog_file: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "cph=debug".
    #[arg(long, env = "CPH_LOG")]
    pub log: Option<String>,
    /// Address the phones' ADB endpoints listen on. Default 127.0.0.1.
    #[arg(long, env = "CPH_PHONE_BIND_IP")]
    pub phone_bind_ip: Option<String>,
    /// Host ports for the phones' ADB endpoints, `first-last`. Default 20000-39999.
    #[arg(long, env = "CPH_PHONE_PORTS")]
    pub phone_ports: Option<String>,
    /// Host ports that reach the application ports bought with servers (one per port of each
    /// running phone, bound on phone_bind_ip), `first-last`. Default 41000-48999.
    #[arg(long, env = "CPH_APP_PORTS")]
    pub app_ports: Option<String>,
    /// RunSyncCommand calls allowed per user and minute (0: no limit). Default 6.
    #[arg(long, env = "CPH_SYNC_COMMANDS_PER_MINUTE")]
    pub sync_commands_per_minute: Option<u32>,
    /// Address of the embedded S3-compatible object storage endpoint. Default 127.0.0.1:9000
    /// (port 0 picks a free port).
    #[arg(long, env = "CPH_S3_LISTEN")]
    pub s3_listen: Option<String>,
    /// Base domain of virtual-hosted-style requests to the S3 endpoint: `Host:
    /// <bucket>.<domain>[:port]` names the bucket (e.g. `s3.example.com`, or `localhost`).
    /// Default: path style only.
    #[arg(long, env = "CPH_S3_DOMAIN")]
    pub s3_domain: Option<String>,
    /// Address the servers' SSH gateways listen on (and that phones' `ssh` access info
    /// shows). Default 127.0.0.1.
    #[arg(long, env = "CPH_SSH_BIND_IP")]
    pub ssh_bind_ip: Option<String>,
    /// Ports for the servers' SSH gateways, one per server, `first-last`. Default 40000-40999.
    #[arg(long, env = "CPH_SSH_PORTS")]
    pub ssh_ports: Option<String>,
    /// Address of the connect relay (the WebSocket ADB endpoint that BatchShowPhoneConnectInfos
    /// tickets open). Default 127.0.0.1:0 (port 0 picks a free port).
    #[arg(long, env = "CPH_CONNECT_LISTEN")]
    pub connect_listen: Option<String>,
    /// Lifetime of connect tickets in seconds (1-3600). Default 300.
    #[arg(long, env = "CPH_CONNECT_TICKET_TTL_SECS")]
    pub connect_ticket_ttl_secs: Option<u64>,
    /// Base URL clients reach the connect relay at, `ws://host[:port]` or
    /// `wss://host[:port]` (e.g. behind NAT, a load balancer or a TLS proxy); advertised by
    /// BatchShowPhoneConnectInfos and the encode servers' `cph_h5_server` access info. Default:
    /// the relay's bound address (loopback, with a warning, when bound to 0.0.0.0 or ::).
    #[arg(long, env = "CPH_CONNECT_PUBLIC_URL")]
    pub connect_public_url: Option<String>,
    /// Relay sessions open at once (1-100000); more are refused with HTTP 503. Default 1000.
    #[arg(long, env = "CPH_CONNECT_MAX_SESSIONS")]
    pub connect_max_sessions: Option<usize>,
    /// Seconds without bytes either way after which a relay session is closed (1-86400).
    /// Default 600.
    #[arg(long, env = "CPH_CONNECT_IDLE_TIMEOUT_SECS")]
    pub connect_idle_timeout_secs: Option<u64>,
    /// Algorithm of the key pairs NovaCreateKeypair generates: rsa (2048 bits; opens the SSH
    /// gateway and the phones' ADB endpoints) or ed25519 (the SSH gateway only). Default rsa.
    #[arg(long, env = "CPH_KEYPAIR_ALGORITHM")]
    pub keypair_algorithm: Option<String>,
    /// Default external object storage endpoint (S3-compatible or Huawei OBS), e.g.
    /// https://obs.cn-north-4.myhuaweicloud.com: it serves the buckets that are neither
    /// configured by name nor in the embedded store. Its secret key is read from
    /// CPH_OBJECTS_DEFAULT_SECRET_KEY.
    #[arg(long, env = "CPH_OBJECTS_DEFAULT_ENDPOINT")]
    pub objects_default_endpoint: Option<String>,
    /// Signature region of the default endpoint. Default us-east-1.
    #[arg(long, env = "CPH_OBJECTS_DEFAULT_REGION")]
    pub objects_default_region: Option<String>,
    /// Access key of the default endpoint.
    #[arg(long, env = "CPH_OBJECTS_DEFAULT_ACCESS_KEY")]
    pub objects_default_access_key: Option<String>,
    /// Virtual-hosted style requests to the default endpoint (Huawei OBS public endpoints need
    /// it). Default false (path style).
    #[arg(long, env = "CPH_OBJECTS_DEFAULT_VIRTUAL_HOSTED")]
    pub objects_default_virtual_hosted: Option<bool>,
    /// Accounts (domain ids, comma-separated, or *) that may use the default endpoint.
    /// Default: none.
    #[arg(long, env = "CPH_OBJECTS_DEFAULT_DOMAINS")]
    pub objects_default_domains: Option<String>,
}

/// Everything resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: String,
    pub region: String,
    pub availability_zone: String,
    pub public_ip_pool: String,
    pub default_host_capacity: i64,
    pub phone_boot_ms: u64,
    pub phone_stop_ms: u64,
    pub phone_reset_ms: u64,
    pub job_lease_secs: u64,
    pub job_max_attempts: i64,
    pub job_concurrency: usize,
    pub job_timeout_secs: u64,
    pub transfers_per_host: usize,
    pub expiry_interval_secs: u64,
    pub catalog_file: Option<PathBuf>,
    /// The configured master key file (`None`: `secrets.key` in the data directory).
    pub master_key_file: Option<PathBuf>,
    pub log: String,
    pub phone_bind_ip: std::net::IpAddr,
    pub phone_ports: std::ops::RangeInclusive<u16>,
    pub app_ports: std::ops::RangeInclusive<u16>,
    pub sync_commands_per_minute: u32,
    pub s3_listen: String,
    pub s3_domain: Option<String>,
    pub ssh_bind_ip: std::net::IpAddr,
    pub ssh_ports: std::ops::RangeInclusive<u16>,
    pub connect_listen: String,
    pub connect_ticket_ttl_secs: u64,
    /// The relay's advertised URL (`None`: derived from the bound address).
    pub connect_public_url: Option<cph_service::connect::RelayUrl>,
    pub connect_max_sessions: usize,
    pub connect_idle_timeout_secs: u64,
    pub keypair_algorithm: cph_service::keypairs::KeypairAlgorithm,
    /// External object storage endpoints (secret keys are redacted in `Debug`).
    pub objects_external: Vec<cph_objects::EndpointConfig>,
}

pub fn load_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    match path {
        None => Ok(FileConfig::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", p.display()))
        }
    }
}

fn default_db(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("cph.db").display())
}

pub fn resolve_common(c: &CommonArgs) -> anyhow::Result<(PathBuf, String, FileConfig)> {
    let file = load_file(c.config.as_deref())?;
    let data_dir = c
        .data_dir
        .clone()
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("./cph-data"));
    let database_url = c
        .database_url
        .clone()
        .filter(|s| !s.is_empty())
        .or(file.database_url.clone().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| default_db(&data_dir));
    Ok((data_dir, database_url, file))
}

pub fn resolve(a: &ServeArgs) -> anyhow::Result<Resolved> {
    let (data_dir, database_url, f) = resolve_common(&a.common)?;
    let objects_external = objects_external(
        a,
        f.objects.clone().unwrap_or_default().external,
        std::env::var("CPH_OBJECTS_DEFAULT_SECRET_KEY").ok(),
    )?;
    Ok(Resolved {
        data_dir,
        database_url,
        listen: a
            .listen
            .clone()
            .or(f.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into()),
        region: a
            .region
            .clone()
            .or(f.region)
            .unwrap_or_else(|| "local-1".into()),
        availability_zone: a
            .availability_zone
            .clone()
            .or(f.availability_zone)
            .unwrap_or_else(|| "local-1a".into()),
        public_ip_pool: a
            .public_ip_pool
            .clone()
            .or(f.public_ip_pool)
            .unwrap_or_else(|| "127.1.0.0/16".into()),
        default_host_capacity: a
            .default_host_capacity
            .or(f.default_host_capacity)
            .unwrap_or(100),
        phone_boot_ms: a.phone_boot_ms.or(f.phone_boot_ms).unwrap_or(1000),
        phone_stop_ms: a.phone_stop_ms.or(f.phone_stop_ms).unwrap_or(500),
        phone_reset_ms: a.phone_reset_ms.or(f.phone_reset_ms).unwrap_or(1000),
        job_lease_secs: a.job_lease_secs.or(f.job_lease_secs).unwrap_or(30),
        job_max_attempts: a.job_max_attempts.or(f.job_max_attempts).unwrap_or(3),
        job_concurrency: a.job_concurrency.or(f.job_concurrency).unwrap_or(10_000),
        job_timeout_secs: a.job_timeout_secs.or(f.job_timeout_secs).unwrap_or(600),
        transfers_per_host: match a.transfers_per_host.or(f.transfers_per_host) {
            None => 8,
            Some(n @ 1..=1024) => n,
            Some(_) => anyhow::bail!("transfers_per_host must be between 1 and 1024"),
        },
        expiry_interval_secs: a
            .expiry_interval_secs
            .or(f.expiry_interval_secs)
            .unwrap_or(30),
        catalog_file: a.catalog_file.clone().or(f.catalog_file),
        master_key_file: a.common.master_key_file.clone().or(f.master_key_file),
        log: a.log.clone().or(f.log).unwrap_or_else(|| "info".into()),
        phone_bind_ip: a
            .phone_bind_ip
            .clone()
            .or(f.phone_bind_ip)
            .unwrap_or_else(|| "127.0.0.1".into())
            .parse()
            .map_err(|_| anyhow::anyhow!("phone_bind_ip must be an IP address"))?,
        phone_ports: parse_port_range(
            &a.phone_ports
                .clone()
                .or(f.phone_ports)
                .unwrap_or_else(|| "20000-39999".into()),
        )?,
        app_ports: parse_port_range(
            &a.app_ports
                .clone()
                .or(f.app_ports)
                .unwrap_or_else(|| "41000-48999".into()),
        )?,
        sync_commands_per_minute: a
            .sync_commands_per_minute
            .or(f.sync_commands_per_minute)
            .unwrap_or(6),
        s3_listen: a
            .s3_listen
            .clone()
            .or(f.s3_listen)
            .unwrap_or_else(|| "127.0.0.1:9000".into()),
        s3_domain: a
            .s3_domain
            .clone()
            .or(f.s3_domain)
            .filter(|d| !d.trim().is_empty()),
        ssh_bind_ip: a
            .ssh_bind_ip
            .clone()
            .or(f.ssh_bind_ip)
            .unwrap_or_else(|| "127.0.0.1".into())
            .parse()
            .map_err(|_| anyhow::anyhow!("ssh_bind_ip must be an IP address"))?,
        ssh_ports: parse_port_range(
            &a.ssh_ports
                .clone()
                .or(f.ssh_ports)
                .unwrap_or_else(|| "40000-40999".into()),
        )?,
        connect_listen: a
            .connect_listen
            .clone()
            .or(f.connect_listen)
            .unwrap_or_else(|| "127.0.0.1:0".into()),
        connect_ticket_ttl_secs: match a
            .connect_ticket_ttl_secs
            .or(f.connect_ticket_ttl_secs)
            .unwrap_or(300)
        {
            t @ 1..=3600 => t,
            _ => anyhow::bail!("connect_ticket_ttl_secs must be between 1 and 3600"),
        },
        connect_public_url: match a
            .connect_public_url
            .clone()
            .or(f.connect_public_url)
            .filter(|u| !u.trim().is_empty())
        {
            None => None,
            Some(u) => Some(u.parse().map_err(|e| {
                anyhow::anyhow!("connect_public_url {u:?} is not a relay base URL: {e}")
            })?),
        },
        connect_max_sessions: match a
            .connect_max_sessions
            .or(f.connect_max_sessions)
            .unwrap_or(1000)
        {
            n @ 1..=cph_service::connect::MAX_SESSIONS_LIMIT => n,
            _ => anyhow::bail!(
                "connect_max_sessions must be between 1 and {}",
                cph_service::connect::MAX_SESSIONS_LIMIT
            ),
        },
        connect_idle_timeout_secs: match a
            .connect_idle_timeout_secs
            .or(f.connect_idle_timeout_secs)
            .unwrap_or(600)
        {
            t if (1..=cph_service::connect::MAX_IDLE_TIMEOUT.as_secs()).contains(&t) => t,
            _ => anyhow::bail!(
                "connect_idle_timeout_secs must be between 1 and {}",
                cph_service::connect::MAX_IDLE_TIMEOUT.as_secs()
            ),
        },
        keypair_algorithm: a
            .keypair_algorithm
            .clone()
            .or(f.keypair_algorithm)
            .unwrap_or_else(|| "rsa".into())
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
        objects_external,
    })
}

/// The external endpoints: the file's, and the default endpoint of the flags (environment),
/// which replaces the file's default.
fn objects_external(
    a: &ServeArgs,
    mut file: Vec<cph_objects::EndpointConfig>,
    secret_key: Option<String>,
) -> anyhow::Result<Vec<cph_objects::EndpointConfig>> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let Some(endpoint) = nonempty(&a.objects_default_endpoint) else {
        let stray = [
            ("REGION", nonempty(&a.objects_default_region).is_some()),
            (
                "ACCESS_KEY",
                nonempty(&a.objects_default_access_key).is_some(),
            ),
            ("SECRET_KEY", nonempty(&secret_key).is_some()),
            ("VIRTUAL_HOSTED", a.objects_default_virtual_hosted.is_some()),
            ("DOMAINS", nonempty(&a.objects_default_domains).is_some()),
        ];
        if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
            anyhow::bail!(
                "CPH_OBJECTS_DEFAULT_{name} is set but CPH_OBJECTS_DEFAULT_ENDPOINT is not"
            );
        }
        return Ok(file);
    };
    let access_key = nonempty(&a.objects_default_access_key).ok_or_else(|| {
        anyhow::anyhow!("CPH_OBJECTS_DEFAULT_ENDPOINT needs CPH_OBJECTS_DEFAULT_ACCESS_KEY")
    })?;
    let secret_key = nonempty(&secret_key).ok_or_else(|| {
        anyhow::anyhow!("CPH_OBJECTS_DEFAULT_ENDPOINT needs CPH_OBJECTS_DEFAULT_SECRET_KEY")
    })?;
    for e in &mut file {
        e.default = false;
    }
    // A file entry that was only the default has nothing left to serve.
    file.retain(|e| !e.buckets.is_empty());
    file.push(cph_objects::EndpointConfig {
        endpoint: endpoint.trim().to_string(),
        region: nonempty(&a.objects_default_region),
        access_key,
        secret_key: cph_objects::Secret::new(secret_key),
        virtual_hosted: a.objects_default_virtual_hosted.unwrap_or(false),
        buckets: Vec::new(),
        default: true,
        domains: a
            .objects_default_domains
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect(),
        ca_file: None,
        connect_timeout_secs: None,
        read_timeout_secs: None,
        max_requests: None,
    });
    Ok(file)
}

/// `first-last` (inclusive), first ≤ last, no port 0.
fn parse_port_range(s: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let bad = || anyhow::anyhow!("a port range must look like 20000-39999, got {s:?}");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file() {
        let dir = std::env::temp_dir().join(format!("cph-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cph.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nregion = \"r-file\"\nphone_boot_ms = 7\n",
        )
        .unwrap();
        let mut a = ServeArgs::default();
        a.common.config = Some(path.clone());
        a.region = Some("r-flag".into());
        let r = resolve(&a).unwrap();
        assert_eq!(r.listen, "127.0.0.1:1");
        assert_eq!(r.region, "r-flag");
        assert_eq!(r.phone_boot_ms, 7);
        assert_eq!(r.transfers_per_host, 8);
        assert!(r.database_url.starts_with("sqlite://"));
        assert_eq!(
            r.keypair_algorithm,
            cph_service::keypairs::KeypairAlgorithm::Rsa
        );
        std::fs::write(&path, "transfers_per_host = 3\n").unwrap();
        assert_eq!(resolve(&a).unwrap().transfers_per_host, 3);
        a.transfers_per_host = Some(12);
        assert_eq!(resolve(&a).unwrap().transfers_per_host, 12);
        a.transfers_per_host = Some(0);
        assert!(resolve(&a).is_err());
        a.transfers_per_host = None;
        std::fs::write(&path, "nonsense = 1\n").unwrap();
        assert!(resolve(&a).is_err());
    }

    #[test]
    fn connect_relay_settings_are_layered_and_validated() {
        let dir = std::env::temp_dir().join(format!("cph-cfg-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cph.toml");
        let mut a = ServeArgs::default();
        // Defaults: no public URL, 1000 sessions, 10 minutes idle.
        let r = resolve(&a).unwrap();
        assert_eq!(r.connect_public_url, None);
        assert_eq!(r.connect_max_sessions, 1000);
        assert_eq!(r.connect_idle_timeout_secs, 600);
        std::fs::write(
            &path,
            "connect_public_url = \"wss://relay.example.com\"\nconnect_max_sessions = 5\n\
             connect_idle_timeout_secs = 30\n",
        )
        .unwrap();
        a.common.config = Some(path.clone());
        let r = resolve(&a).unwrap();
        let url = r.connect_public_url.unwrap();
        assert_eq!(
            (url.secure, url.host.as_str(), url.port),
            (true, "relay.example.com", 443)
        );
        assert_eq!(r.connect_max_sessions, 5);
        assert_eq!(r.connect_idle_timeout_secs, 30);
        // Flags (and their environment variables) override the file.
        a.connect_public_url = Some("ws://203.0.113.5:7000".into());
        a.connect_max_sessions = Some(100_000);
        a.connect_idle_timeout_secs = Some(86_400);
        let r = resolve(&a).unwrap();
        assert_eq!(
            r.connect_public_url.map(|u| u.to_string()).as_deref(),
            Some("ws://203.0.113.5:7000")
        );
        assert_eq!(r.connect_max_sessions, 100_000);
        assert_eq!(r.connect_idle_timeout_secs, 86_400);
        // Out of bounds or malformed values refuse to start, naming the setting.
        let refused = |a: &ServeArgs| resolve(a).unwrap_err().to_string();
        for (n, ok) in [(0, false), (1, true), (100_001, false)] {
            let mut b = a.clone();
            b.connect_max_sessions = Some(n);
            assert_eq!(resolve(&b).is_ok(), ok, "{n}");
            if !ok {
                assert!(refused(&b).contains("connect_max_sessions"));
            }
        }
        for (t, ok) in [(0, false), (1, true), (86_401, false)] {
            let mut b = a.clone();
            b.connect_idle_timeout_secs = Some(t);
            assert_eq!(resolve(&b).is_ok(), ok, "{t}");
            if !ok {
                assert!(refused(&b).contains("connect_idle_timeout_secs"));
            }
        }
        for bad in [
            "http://relay.example.com",
            "ws://",
            "ws://relay.example.com/?x=1",
            "ws://relay.example.com#f",
            "ws://relay.example.com/prefix",
            "ws://0.0.0.0:7000",
        ] {
            let mut b = a.clone();
            b.connect_public_url = Some(bad.into());
            let e = refused(&b);
            assert!(e.contains("connect_public_url") && e.contains(bad), "{e}");
        }
        std::fs::write(&path, "connect_public_url = \"wss://\"\n").unwrap();
        a = ServeArgs::default();
        a.common.config = Some(path);
        assert!(refused(&a).contains("has no host"));
    }

    #[test]
    fn keypair_algorithm_from_the_file_and_flags() {
        use cph_service::keypairs::KeypairAlgorithm;
        let dir = std::env::temp_dir().join(format!("cph-cfg-kp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cph.toml");
        std::fs::write(&path, "keypair_algorithm = \"ed25519\"\n").unwrap();
        let mut a = ServeArgs::default();
        a.common.config = Some(path.clone());
        assert_eq!(
            resolve(&a).unwrap().keypair_algorithm,
            KeypairAlgorithm::Ed25519
        );
        a.keypair_algorithm = Some("rsa".into());
        assert_eq!(
            resolve(&a).unwrap().keypair_algorithm,
            KeypairAlgorithm::Rsa
        );
        a.keypair_algorithm = Some("dsa".into());
        assert!(resolve(&a).is_err());
    }

    #[test]
    fn external_object_storage_from_the_file_and_the_environment() {
        let dir = std::env::temp_dir().join(format!("cph-cfg-objects-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cph.toml");
        std::fs::write(
            &path,
            r#"
[[objects.external]]
endpoint = "https://obs.cn-north-4.myhuaweicloud.com"
region = "cn-north-4"
access_key = "AK1"
secret_key = "file-secret"
virtual_hosted = true
buckets = ["my-bucket"]
default = true
domains = ["*"]
"#,
        )
        .unwrap();
        let mut a = ServeArgs::default();
        a.common.config = Some(path.clone());
        let r = resolve(&a).unwrap();
        assert_eq!(r.objects_external.len(), 1);
        let e = &r.objects_external[0];
        assert!(e.default && e.virtual_hosted && e.buckets == ["my-bucket"]);
        assert_eq!(e.secret_key.expose(), "file-secret");
        assert!(!format!("{r:?}").contains("file-secret"));

        // The environment's default endpoint takes over the default role.
        a.objects_default_endpoint = Some("http://10.0.0.5:9000".into());
        a.objects_default_access_key = Some("AK2".into());
        a.objects_default_domains = Some("d1, d2".into());
        let all =
            objects_external(&a, r.objects_external.clone(), Some("env-secret".into())).unwrap();
        assert_eq!(all.len(), 2);
        assert!(!all[0].default && all[0].buckets == ["my-bucket"]);
        assert!(all[1].default && all[1].buckets.is_empty());
        assert_eq!(all[1].domains, ["d1", "d2"]);
        assert_eq!(all[1].secret_key.expose(), "env-secret");
        assert!(!all[1].virtual_hosted && all[1].region.is_none());
        // A default endpoint without its secret, or settings without an endpoint, are refused.
        assert!(objects_external(&a, Vec::new(), None).is_err());
        a.objects_default_endpoint = None;
        assert!(objects_external(&a, Vec::new(), None).is_err());
        std::fs::write(
            &path,
            "[objects]\nexternal = [{ endpoint = \"http://h\", oops = 1 }]\n",
        )
        .unwrap();
        a = ServeArgs::default();
        a.common.config = Some(path);
        assert!(resolve(&a).is_err());
    }
}
