//! Seeds running servers of 60 phones directly in the store (the bench measures queries, not
//! purchases).

use cph_service::Service;
use cph_store::{PhoneRow, ServerRow};

const SERVER_MODEL: &str = "physical.rx1.xlarge";
const PHONE_MODEL: &str = "rx1.cp.c60.d10.e1v1";
const PER_SERVER: usize = 60;

pub async fn phones(service: &Service, project_id: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let image = service
        .catalog()
        .phone_images
        .iter()
        .find(|i| {
            Some(i.image_label.as_str())
                == service
                    .catalog()
                    .phone_model(PHONE_MODEL)
                    .map(|m| m.image_label.as_str())
        })
        .map(|i| i.image_id.clone())
        .unwrap_or_default();
    let servers = n.div_ceil(PER_SERVER);
    let now = chrono_now_ms();
    let mut ids = Vec::with_capacity(servers);
    let mut made = 0usize;
    for chunk_start in (0..servers).step_by(20) {
        let mut tx = service.store().write().await?;
        for s in chunk_start..(chunk_start + 20).min(servers) {
            let server_id = cph_domain::ids::hex_id();
            let created = now + s as i64;
            cph_store::servers::insert(
                &mut tx,
                &ServerRow {
                    server_id: server_id.clone(),
                    project_id: project_id.into(),
                    server_name: format!("bench-{s:05}"),
                    server_model_name: SERVER_MODEL.into(),
                    phone_model_name: PHONE_MODEL.into(),
                    image_id: image.clone(),
                    keypair_name: String::new(),
                    status: 5,
                    vpc_id: String::new(),
                    subnet_id: String::new(),
                    server_ip: format!("172.16.{}.{}", s / 250, s % 250 + 2),
                    host_id: format!("vhost-{server_id}"),
                    order_id: "CSBENCH".into(),
                    product_id: "00301-00000-0--0".into(),
                    charging_mode: 0,
                    availability_zone: "local-1a".into(),
                    network_version: "v2".into(),
                    enterprise_project_id: "0".into(),
                    band_width_id: String::new(),
                    phone_count_per_ip: 60,
                    ports: "[]".into(),
                    phone_data_volume: "{}".into(),
                    share_data_volume: "{}".into(),
                    expires_at: now + 30 * 86_400_000,
                    auto_renew: false,
                    created_at: created,
                    updated_at: created,
                },
            )
            .await?;
            let k = PER_SERVER.min(n - made);
            let rows: Vec<PhoneRow> = (0..k)
                .map(|slot| PhoneRow {
                    phone_id: cph_domain::ids::hex_id(),
                    project_id: project_id.into(),
                    server_id: server_id.clone(),
                    phone_name: format!("bench-{s:05}-{:04}", slot + 1),
                    phone_model_name: PHONE_MODEL.into(),
                    image_id: image.clone(),
                    status: 2,
                    phone_type: 0,
                    imei: cph_service::servers::new_imei(),
                    traffic_type: "direct".into(),
                    volume_mode: 0,
                    phone_ip: cph_service::servers::phone_ip(slot as i64),
                    slot: slot as i64,
                    properties: "{}".into(),
                    custom_properties: "{}".into(),
                    created_at: created,
                    updated_at: created,
                    availability_zone: String::new(),
                    order_id: String::new(),
                    product_id: String::new(),
                    host_id: String::new(),
                })
                .collect();
            cph_store::phones::insert_many(&mut tx, &rows).await?;
            made += k;
            ids.push(server_id);
        }
        tx.commit().await?;
    }
    Ok(ids)
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
