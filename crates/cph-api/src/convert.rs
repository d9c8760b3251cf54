//! Domain views → wire types.

use cph_domain::clock::format_utc;
use cph_service::BatchItem;
use cph_store::{JobRow, PhoneRow};
use cph_wire as w;

pub fn phone(p: &PhoneRow) -> w::Phone {
    w::Phone {
        phone_name: p.phone_name.clone(),
        server_id: p.server_id.clone(),
        phone_id: p.phone_id.clone(),
        phone_model_name: p.phone_model_name.clone(),
        image_id: p.image_id.clone(),
        image_version: None,
        vnc_enable: Some("false".into()),
        status: p.status,
        r#type: p.phone_type,
        imei: Some(p.imei.clone()),
        traffic_type: Some(p.traffic_type.clone()),
        volume_mode: Some(p.volume_mode),
        availability_zone: Some(p.availability_zone.clone()),
        metadata: Some(w::PhoneMetadata {
            order_id: p.order_id.clone(),
            product_id: p.product_id.clone(),
        }),
        has_encrypt: Some(false),
        create_time: format_utc(p.created_at),
        update_time: format_utc(p.updated_at),
    }
}

pub fn phone_jobs(request_id: &str, items: Vec<BatchItem>) -> w::PhoneJobsResponse {
    w::PhoneJobsResponse {
        request_id: request_id.to_string(),
        jobs: items
            .into_iter()
            .map(|i| {
                let (error_code, error_msg) = match i.error {
                    Some((c, m)) => (Some(c), Some(m)),
                    None => (None, None),
                };
                w::PhoneJob {
                    phone_id: i.target_id,
                    job_id: i.job_id,
                    error_code,
                    error_msg,
                }
            })
            .collect(),
    }
}

pub fn server_jobs(request_id: &str, items: Vec<BatchItem>) -> w::ServerJobsResponse {
    w::ServerJobsResponse {
        request_id: request_id.to_string(),
        jobs: items
            .into_iter()
            .map(|i| {
                let (error_code, error_msg) = match i.error {
                    Some((c, m)) => (Some(c), Some(m)),
                    None => (None, None),
                };
                w::ServerJob {
                    server_id: i.target_id,
                    job_id: i.job_id,
                    error_code,
                    error_msg,
                }
            })
            .collect(),
    }
}

pub fn job(j: &JobRow) -> w::Job {
    w::Job {
        phone_id: j.phone_id.clone(),
        server_id: j.server_id.clone(),
        node_id: j.node_id.clone(),
        job_id: j.job_id.clone(),
        begin_time: j.begin_time.map(format_utc),
        end_time: j.end_time.map(format_utc),
        status: j.status,
        error_code: j.error_code.clone(),
        error_msg: j.error_msg.clone(),
        execute_msg: j.execute_msg.clone(),
    }
}

/// Re-shapes a value between two types with the same JSON fields (catalog → wire).
pub fn reshape<A: serde::Serialize, B: serde::de::DeserializeOwned>(a: &A) -> anyhow::Result<B> {
    Ok(serde_json::from_value(serde_json::to_value(a)?)?)
}

pub fn bandwidth(b: &cph_store::network::Bandwidth) -> w::Bandwidth {
    w::Bandwidth {
        band_width_name: b.name.clone(),
        band_width_id: b.band_width_id.clone(),
        band_width_size: i32::try_from(b.size).unwrap_or(i32::MAX),
        band_width_charge_mode: Some(b.charge_mode as i32),
        band_width_share_type: b.share_type as i32,
        create_time: format_utc(b.created_at),
        update_time: format_utc(b.updated_at),
    }
}
