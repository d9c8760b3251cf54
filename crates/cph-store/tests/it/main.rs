//! The storage conformance suite. Every case runs against both backends: a fresh SQLite file
//! and a fresh PostgreSQL database (created on the server named by `CPH_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, and dropped afterwards).

use cph_store::jobs::{NewJob, Outcome};
use cph_store::{Backend, PhoneRow, ServerRow, Store};
use sqlx::{AssertSqlSafe, Connection};
use std::future::Future;

mod audit_cases;
mod cases;
mod connect_cases;
mod data_export_cases;
mod lifecycle_cases;
mod netops_cases;
mod secret_cases;
mod tag_cases;

fn pg_admin_url() -> String {
    std::env::var("CPH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A store on a fresh database of `backend`, and a guard that removes it.
pub struct Fresh {
    pub store: Store,
    cleanup: Option<(String, String)>,
    _dir: Option<std::path::PathBuf>,
}

impl Fresh {
    pub async fn new(backend: Backend) -> Fresh {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("cph-store-test-{tag}"));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("t.db").display());
                Fresh {
                    store: Store::open(&url).await.unwrap(),
                    cleanup: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = pg_admin_url();
                let name = format!("cph_store_{tag}");
                let mut c = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {admin} is required for the storage suite: {e}")
                    });
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
                let url = format!("{base}/{name}");
                Fresh {
                    store: Store::open(&url).await.unwrap(),
                    cleanup: Some((admin, name)),
                    _dir: None,
                }
            }
        }
    }

    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.cleanup {
            let mut c = sqlx::AnyConnection::connect(&admin).await.unwrap();
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await
            .unwrap();
        }
        if let Some(d) = self._dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Runs `case` on both backends.
pub async fn both<F, Fut>(case: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let f = Fresh::new(backend).await;
        case(f.store.clone()).await;
        f.finish().await;
    }
}

pub fn server(project: &str, id: &str, created_at: i64) -> ServerRow {
    ServerRow {
        server_id: id.into(),
        project_id: project.into(),
        server_name: format!("srv-{id}"),
        server_model_name: "physical.rx1.xlarge".into(),
        phone_model_name: "rx1.cp.c15.d46.e1v1".into(),
        image_id: "img".into(),
        keypair_name: String::new(),
        status: 5,
        vpc_id: "vpc".into(),
        subnet_id: "subnet".into(),
        server_ip: "172.16.0.2".into(),
        host_id: "h".into(),
        order_id: "CS1".into(),
        product_id: "P1".into(),
        charging_mode: 0,
        availability_zone: "az".into(),
        network_version: "v2".into(),
        enterprise_project_id: "0".into(),
        band_width_id: String::new(),
        phone_count_per_ip: 1,
        ports: "[]".into(),
        phone_data_volume: "{}".into(),
        share_data_volume: "{}".into(),
        expires_at: created_at + 1000,
        auto_renew: false,
        created_at,
        updated_at: created_at,
    }
}

pub fn phone(project: &str, server_id: &str, id: &str, slot: i64, created_at: i64) -> PhoneRow {
    PhoneRow {
        phone_id: id.into(),
        project_id: project.into(),
        server_id: server_id.into(),
        phone_name: format!("phone-{slot}"),
        phone_model_name: "rx1.cp.c15.d46.e1v1".into(),
        image_id: "img".into(),
        status: 2,
        phone_type: 0,
        imei: "490154203237518".into(),
        traffic_type: "direct".into(),
        volume_mode: 0,
        phone_ip: format!("10.10.0.{}", slot + 2),
        slot,
        properties: "{}".into(),
        custom_properties: "{}".into(),
        created_at,
        updated_at: created_at,
        availability_zone: String::new(),
        order_id: String::new(),
        product_id: String::new(),
        host_id: String::new(),
    }
}

pub fn job(project: &str, request: &str, id: &str, lock: &str) -> NewJob {
    NewJob {
        job_id: id.into(),
        project_id: project.into(),
        request_id: request.into(),
        kind: "phone.restart".into(),
        phone_id: Some(lock.trim_start_matches("phone:").into()),
        server_id: None,
        encode_server_id: None,
        lock_key: lock.into(),
        payload: "{}".into(),
    }
}

pub fn ok() -> Outcome {
    Outcome {
        status: 2,
        error_code: None,
        error_msg: None,
        execute_msg: Some("done".into()),
    }
}
