//! The service layer: every rule of the API lives here.
//!
//! Handlers in `cph-api` parse the wire format and call one method of [`Service`]; the service
//! validates the whole request before it writes anything, writes in one transaction (together with
//! the jobs the change needs), and returns domain views that the handler turns back into wire
//! types. Long-running work happens in the job engine ([`engine`]), which talks to host agents
//! through `cph-runtime`.

pub mod adb;
pub mod bandwidth;
pub mod catalog;
pub mod commands;
pub mod connect;
pub mod encode;
pub mod engine;
mod error;
pub mod gateway;
pub mod iam;
pub mod jobs;
pub mod keypairs;
pub mod lifecycle;
pub mod network;
mod objects;
pub mod phones;
pub mod servers;
pub mod share;
pub mod tags;
pub mod validate;
pub mod vpc;

pub use error::{Result, ServiceError};
pub use objects::TransferStats;

use cph_catalog::Catalog;
use cph_domain::Clock;
use cph_runtime::HostAgent;
use cph_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Settings the service layer needs (the binary reads them from file, environment and flags).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub region: String,
    pub availability_zone: String,
    /// Public addresses handed out as EIPs.
    pub public_ip_pool: ipnet::Ipv4Net,
    /// How long a worker's claim on a job lasts without renewal.
    pub job_lease: Duration,
    /// Claims after which an interrupted job fails instead of being retried.
    pub job_max_attempts: i64,
    /// Jobs executed at once by this process.
    pub job_concurrency: usize,
    /// Upper bound on one job's execution. Waits for a transfer slot do not count against it.
    pub job_timeout: Duration,
    /// Object transfers (InstallApk, PushFile, data import and export, shared files and apps)
    /// applied at once per host; the others wait for a slot.
    pub transfers_per_host: usize,
    /// Longest wait for a transfer slot; a job still waiting then fails with `CPS.0042`.
    pub transfer_wait: Duration,
    /// Secret for signing `X-Auth-Token` tokens.
    pub token_key: Vec<u8>,
    /// Token lifetime.
    pub token_ttl: Duration,
    /// Host capacity assumed for a server model that has none configured.
    pub default_host_capacity: i64,
    /// Allowed clock skew of signed requests.
    pub max_clock_skew: Duration,
    /// How often servers whose charging period ended are renewed or frozen.
    pub expiry_interval: Duration,
    /// The control plane's ADB key: every phone accepts it, and commands on phones run with it.
    /// Without it commands on phones fail (`CPS.0323`).
    pub adb_key: Option<cph_adb::AdbPrivateKey>,
    /// RunSyncCommand calls allowed per user and minute (the reference says 6); 0 disables the
    /// limit.
    pub sync_commands_per_minute: u32,
    /// Algorithm of the key pairs NovaCreateKeypair generates.
    pub keypair_algorithm: keypairs::KeypairAlgorithm,
    /// Seals secret keys at rest. The default is a random key, good for this process only.
    pub master_key: cph_store::secrets::MasterKey,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            region: "local-1".into(),
            availability_zone: "local-1a".into(),
            public_ip_pool: "127.1.0.0/16".parse().expect("static net"),
            job_lease: Duration::from_secs(30),
            job_max_attempts: 3,
            job_concurrency: 10_000,
            job_timeout: Duration::from_secs(600),
            transfers_per_host: 8,
            transfer_wait: Duration::from_secs(3600),
            token_key: Vec::new(),
            token_ttl: Duration::from_secs(24 * 3600),
            default_host_capacity: 100,
            max_clock_skew: Duration::from_secs(15 * 60),
            expiry_interval: Duration::from_secs(30),
            adb_key: None,
            sync_commands_per_minute: 6,
            keypair_algorithm: keypairs::KeypairAlgorithm::Rsa,
            master_key: cph_store::secrets::MasterKey::generate()
                .map(|(key, _)| key)
                .expect("the system random number generator failed"),
        }
    }
}

pub(crate) struct Inner {
    pub store: Store,
    pub catalog: Catalog,
    pub clock: Arc<dyn Clock>,
    pub config: ServiceConfig,
    pub agent: Arc<dyn HostAgent>,
    /// Wakes the job dispatcher when jobs are enqueued or locks are released.
    pub job_wakeup: Notify,
    /// Identifies this process as a lease owner.
    pub instance_id: String,
    /// The ADB identity and connections used to run commands on phones.
    pub adb: adb::AdbAccess,
    /// The object store data operations read from (set once by the server).
    pub objects: std::sync::OnceLock<objects::Objects>,
    /// Transfer slots per host.
    pub transfers: objects::TransferSlots,
    /// The SSH gateways of servers (set once by the server).
    pub gateways: std::sync::OnceLock<gateway::Gateways>,
    /// The connect relay's key and limits (set once by the server).
    pub connect: std::sync::OnceLock<connect::Relay>,
    /// Access keys and grants of recent requests, valid while the data version holds.
    pub auth_cache: iam::AuthCache,
}

/// The control plane's service layer. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

impl Service {
    pub fn new(
        store: Store,
        catalog: Catalog,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
        agent: Arc<dyn HostAgent>,
    ) -> Service {
        let adb = adb::AdbAccess::new(config.adb_key.clone());
        let transfers = objects::TransferSlots::new(config.transfers_per_host);
        Service {
            inner: Arc::new(Inner {
                store,
                catalog,
                clock,
                config,
                agent,
                job_wakeup: Notify::new(),
                instance_id: cph_domain::ids::hex_id(),
                adb,
                objects: std::sync::OnceLock::new(),
                transfers,
                gateways: std::sync::OnceLock::new(),
                connect: std::sync::OnceLock::new(),
                auth_cache: iam::AuthCache::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Tells the job engine that new work may be runnable.
    pub(crate) fn wake_jobs(&self) {
        self.inner.job_wakeup.notify_one();
    }
}

/// The outcome of one item of a batch request: a job, or the error that kept it from starting.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// The phone, server or encode server the item names.
    pub target_id: String,
    pub job_id: Option<String>,
    pub error: Option<(String, String)>,
}

impl BatchItem {
    pub(crate) fn job(target_id: &str, job_id: &str) -> Self {
        BatchItem {
            target_id: target_id.to_string(),
            job_id: Some(job_id.to_string()),
            error: None,
        }
    }

    pub(crate) fn failed(target_id: &str, e: &ServiceError) -> Self {
        BatchItem {
            target_id: target_id.to_string(),
            job_id: None,
            error: Some(e.code_and_message()),
        }
    }
}

/// An authenticated caller acting in one project.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user_id: String,
    pub user_name: String,
    pub domain_id: String,
    pub project_id: String,
}
