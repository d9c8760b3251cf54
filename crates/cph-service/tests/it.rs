//! Service-level integration tests: a real `Service` on a fresh SQLite store, with a manual
//! clock and the in-process virtual host agent.

#[path = "it/change.rs"]
mod change;
#[path = "it/expiry.rs"]
mod expiry;
#[path = "it/transfers.rs"]
mod transfers;

use chrono::{DateTime, Utc};
use cph_domain::ManualClock;
use cph_runtime::virtual_host::{Durations, VirtualHostAgent};
use cph_service::iam::{BootstrapInfo, BootstrapRequest};
use cph_service::servers::{BandwidthInput, BuyServers};
use cph_service::{Caller, Service, ServiceConfig};
use cph_store::{ServerRow, Store};
use std::sync::Arc;
use std::time::Duration;

/// The smallest server of the built-in catalog: 20 phones.
pub const SERVER_MODEL: &str = "physical.kg1.4xlarge.cp";
pub const PHONE_MODEL: &str = "kg1.cp.c20.d64SSD.e1v1";
pub const IMAGE: &str = "20060220200717f201120a2300000e91";

pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// A service on a fresh store, its clock and agent, and the bootstrap project's caller.
pub struct World {
    pub service: Service,
    pub clock: Arc<ManualClock>,
    pub agent: Arc<VirtualHostAgent>,
    pub boot: BootstrapInfo,
    pub caller: Caller,
    dir: std::path::PathBuf,
}

impl World {
    pub async fn new() -> World {
        let dir = World::temp_dir();
        let agent = Arc::new(VirtualHostAgent::new("test", World::durations()));
        World::with(
            dir,
            ServiceConfig {
                token_key: vec![7; 32],
                ..ServiceConfig::default()
            },
            agent.clone(),
            agent,
        )
        .await
    }

    /// A fresh directory for one world's files (removed by [`World::finish`]).
    pub fn temp_dir() -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cph-service-it-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Phones that boot, stop and reset at once.
    pub fn durations() -> Durations {
        Durations {
            boot: Duration::from_millis(1),
            stop: Duration::from_millis(1),
            reset: Duration::from_millis(1),
        }
    }

    /// A world in `dir` whose service runs with `config` through `host` (`agent`, or an agent
    /// wrapping it).
    pub async fn with(
        dir: std::path::PathBuf,
        config: ServiceConfig,
        agent: Arc<VirtualHostAgent>,
        host: Arc<dyn cph_runtime::HostAgent>,
    ) -> World {
        let url = format!("sqlite://{}", dir.join("cph.db").display());
        let store = Store::open(&url).await.unwrap();
        let clock = Arc::new(ManualClock::new(
            DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
        ));
        let service = Service::new(
            store,
            cph_catalog::Catalog::builtin(),
            clock.clone(),
            config,
            host,
        );
        let boot = service
            .bootstrap(&BootstrapRequest {
                domain_name: "it-domain".into(),
                user_name: "it-admin".into(),
                access_key: None,
                secret_key: None,
            })
            .await
            .unwrap();
        let caller = Caller {
            user_id: boot.user_id.clone(),
            user_name: boot.user_name.clone(),
            domain_id: boot.domain_id.clone(),
            project_id: boot.project_id.clone(),
        };
        World {
            service,
            clock,
            agent,
            boot,
            caller,
            dir,
        }
    }

    /// A valid purchase body for one server of the default network.
    pub fn purchase(&self, period_type: i64, period_num: i64, auto_renew: bool) -> BuyServers {
        BuyServers {
            server_name: Some("it-server".into()),
            server_model_name: Some(SERVER_MODEL.into()),
            phone_model_name: Some(PHONE_MODEL.into()),
            image_id: Some(IMAGE.into()),
            count: Some(1),
            charging_mode: Some(0),
            period_type: Some(period_type),
            period_num: Some(period_num),
            is_auto_renew: Some(i64::from(auto_renew)),
            extend_param_present: true,
            tenant_vpc_id: Some(self.boot.default_vpc_id.clone()),
            nics: Some(vec![Some(self.boot.default_subnet_id.clone())]),
            public_ip_present: true,
            band_width: Some(BandwidthInput {
                band_width_size: Some(100),
                band_width_charge_mode: Some(1),
                band_width_share_type: Some(0),
                ..BandwidthInput::default()
            }),
            ..BuyServers::default()
        }
    }

    /// Buys one server and runs the job engine until it and its phones run; returns its id.
    pub async fn buy_running(&self, period_type: i64, period_num: i64, auto_renew: bool) -> String {
        let p = self
            .service
            .buy_servers(
                &self.caller,
                &cph_domain::ids::hex_id(),
                &self.purchase(period_type, period_num, auto_renew),
            )
            .await
            .unwrap();
        let id = p.server_ids[0].clone();
        self.run_jobs_until(|s| s.status == 5).await;
        assert_eq!(self.server(&id).await.status, 5);
        id
    }

    /// Runs the job engine until no job is left unfinished and `done` holds for every server.
    pub async fn run_jobs_until(&self, done: impl Fn(&ServerRow) -> bool) {
        let engine = self.service.start_engine();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (idle, servers) = {
                let mut c = self.service.store().read().await.unwrap();
                let counts = cph_store::jobs::counts(&mut c).await.unwrap();
                let idle = counts.iter().all(|(state, n)| state == "done" || *n == 0);
                let (servers, _) = cph_store::servers::list(
                    &mut c,
                    &self.caller.project_id,
                    &Default::default(),
                    0,
                    1000,
                )
                .await
                .unwrap();
                (idle, servers)
            };
            if idle && servers.iter().all(&done) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "jobs did not finish in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        engine.shutdown().await;
    }

    pub async fn server(&self, id: &str) -> ServerRow {
        let mut c = self.service.store().read().await.unwrap();
        cph_store::servers::get(&mut c, &self.caller.project_id, id)
            .await
            .unwrap()
            .expect("server exists")
    }

    pub async fn phones(&self, server_id: &str) -> Vec<cph_store::PhoneRow> {
        let mut c = self.service.store().read().await.unwrap();
        cph_store::phones::of_server(&mut c, server_id)
            .await
            .unwrap()
    }

    pub async fn finish(self) {
        self.service.store().close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
