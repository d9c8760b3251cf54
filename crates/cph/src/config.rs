//! Configuration: a TOML file, `CPH_*` environment variables and command-line flags.
//! Flags override the environment, which overrides the file, which overrides the defaults.

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
    pub expiry_interval_secs: Option<u64>,
    pub catalog_file: Option<PathBuf>,
    pub log: Option<String>,
    pub phone_bind_ip: Option<String>,
    pub phone_ports: Option<String>,
    pub sync_commands_per_minute: Option<u32>,
    pub s3_listen: Option<String>,
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
    /// RunSyncCommand calls allowed per user and minute (0: no limit). Default 6.
    #[arg(long, env = "CPH_SYNC_COMMANDS_PER_MINUTE")]
    pub sync_commands_per_minute: Option<u32>,
    /// Address of the embedded S3-compatible object storage endpoint. Default 127.0.0.1:9000
    /// (port 0 picks a free port).
    #[arg(long, env = "CPH_S3_LISTEN")]
    pub s3_listen: Option<String>,
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
    pub expiry_interval_secs: u64,
    pub catalog_file: Option<PathBuf>,
    pub log: String,
    pub phone_bind_ip: std::net::IpAddr,
    pub phone_ports: std::ops::RangeInclusive<u16>,
    pub sync_commands_per_minute: u32,
    pub s3_listen: String,
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
        expiry_interval_secs: a
            .expiry_interval_secs
            .or(f.expiry_interval_secs)
            .unwrap_or(30),
        catalog_file: a.catalog_file.clone().or(f.catalog_file),
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
        sync_commands_per_minute: a
            .sync_commands_per_minute
            .or(f.sync_commands_per_minute)
            .unwrap_or(6),
        s3_listen: a
            .s3_listen
            .clone()
            .or(f.s3_listen)
            .unwrap_or_else(|| "127.0.0.1:9000".into()),
    })
}

/// `first-last` (inclusive), first ≤ last, no port 0.
fn parse_port_range(s: &str) -> anyhow::Result<std::ops::RangeInclusive<u16>> {
    let bad = || anyhow::anyhow!("phone_ports must look like 20000-39999, got {s:?}");
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
        assert!(r.database_url.starts_with("sqlite://"));
        std::fs::write(&path, "nonsense = 1\n").unwrap();
        assert!(resolve(&a).is_err());
    }
}
