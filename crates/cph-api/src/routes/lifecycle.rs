//! Server lifecycle routes: ChangeCloudPhoneServerModel and ChangeCloudPhoneServer.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody};
use axum::Json;
use axum::extract::{Path, State};
use cph_service::lifecycle::{ChangeServer, ChangeServerModel};
use cph_service::servers::{BandwidthInput, BuyServers, PortInput, VolumeInput};
use cph_wire as w;

pub async fn change_model(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::ChangeCloudPhoneServerModelRequestBody>,
) -> ApiResult<Json<w::ChangeCloudPhoneServerModelResponse>> {
    let req = ChangeServerModel {
        server_id: b.server_id,
        server_model_name: b.server_model_name,
        phone_model_name: b.phone_model_name,
        is_auto_pay: b.extend_param.and_then(|e| e.is_auto_pay),
    };
    let r = st
        .service
        .change_server_model(&ctx.caller, &ctx.request_id, &req)
        .await?;
    Ok(Json(w::ChangeCloudPhoneServerModelResponse {
        request_id: ctx.request_id,
        order_id: r.order_id,
        product_id: r.product_id,
        error_msg: None,
        error_code: None,
    }))
}

pub async fn change(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, server_id)): Path<(String, String)>,
    JsonBody(b): JsonBody<w::ChangeCloudPhoneServerRequestBody>,
) -> ApiResult<Json<w::ChangeCloudPhoneServerResponse>> {
    let pip = b.public_ip.as_ref();
    let volume = |v: w::VolumeParam| VolumeInput {
        volume_type: v.volume_type,
        size: v.size,
    };
    let body = BuyServers {
        phone_model_name: b.phone_model_name,
        image_id: b.image_id,
        keypair_name: b.keypair_name,
        ports: b.ports.map(|ps| {
            ps.into_iter()
                .map(|p| PortInput {
                    name: p.name,
                    listen_port: p.listen_port,
                    internet_accessible: p.internet_accessible,
                })
                .collect()
        }),
        enterprise_project_id: b
            .extend_param
            .as_ref()
            .and_then(|e| e.enterprise_project_id.clone()),
        extend_param_present: b.extend_param.is_some(),
        tenant_vpc_id: b.tenant_vpc_id,
        nics: b.nics.map(|n| n.into_iter().map(|n| n.subnet_id).collect()),
        public_ip_present: pip.is_some(),
        public_ip_ids: pip.and_then(|p| p.ids.clone()),
        public_ip_eip_type: pip
            .and_then(|p| p.eip.as_ref())
            .and_then(|e| e.r#type.clone()),
        public_ip_eip_present: pip.and_then(|p| p.eip.as_ref()).is_some(),
        public_ip_count: pip.and_then(|p| p.count),
        phone_count_per_ip: b.phone_count_per_ip,
        phone_data_volume: b.phone_data_volume.map(volume),
        server_share_data_volume: b.server_share_data_volume.map(volume),
        band_width: b.band_width.map(|bw| BandwidthInput {
            band_width_id: bw.band_width_id,
            band_width_size: bw.band_width_size,
            band_width_charge_mode: bw.band_width_charge_mode,
            band_width_share_type: bw.band_width_share_type,
        }),
        availability_zone: b.availability_zone,
        ..BuyServers::default()
    };
    let req = ChangeServer {
        body,
        property: b.property,
    };
    let r = st
        .service
        .change_server(&ctx.caller, &ctx.request_id, &server_id, &req)
        .await?;
    Ok(Json(w::ChangeCloudPhoneServerResponse {
        request_id: ctx.request_id,
        server_id: r.server_id,
        job_id: r.job_id,
        error_msg: None,
        error_code: None,
    }))
}
