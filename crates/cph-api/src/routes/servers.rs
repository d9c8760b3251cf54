//! Server routes.

use crate::AppState;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::Json;
use axum::extract::{Path, State};
use cph_domain::clock::format_utc;
use cph_service::servers::{BandwidthInput, BuyServers, PortInput, ServerView, VolumeInput};
use cph_wire as w;

fn addresses(v: &ServerView) -> Vec<w::Address> {
    let public = v
        .eips
        .first()
        .map(|e| e.public_ip.clone())
        .unwrap_or_default();
    vec![w::Address {
        intranet_ip: v.server.server_ip.clone(),
        access_ip: public.clone(),
        server_ip: v.server.server_ip.clone(),
        public_ip: public,
    }]
}

fn server(v: &ServerView) -> w::Server {
    let s = &v.server;
    w::Server {
        server_name: s.server_name.clone(),
        availability_zone: s.availability_zone.clone(),
        server_id: s.server_id.clone(),
        server_model_name: s.server_model_name.clone(),
        phone_model_name: s.phone_model_name.clone(),
        keypair_name: s.keypair_name.clone(),
        status: s.status,
        vpc_id: s.vpc_id.clone(),
        cidr: v.vpc_cidr.clone(),
        vpc_cidr: v.vpc_cidr.clone(),
        subnet_id: s.subnet_id.clone(),
        subnet_cidr: v.subnet_cidr.clone(),
        addresses: addresses(v),
        resource_project_id: s.project_id.clone(),
        metadata: Some(w::ServerMetadata {
            product_id: s.product_id.clone(),
            order_id: s.order_id.clone(),
            charging_mode: Some(s.charging_mode as i32),
        }),
        network_version: s.network_version.clone(),
        enterprise_project_id: Some(s.enterprise_project_id.clone()),
        create_time: format_utc(s.created_at),
        update_time: format_utc(s.updated_at),
    }
}

pub async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListCloudPhoneServersQuery>,
) -> ApiResult<Json<w::ListCloudPhoneServersResponse>> {
    let (servers, count) = st
        .service
        .list_servers(
            &ctx.caller,
            q.offset.as_deref(),
            q.limit.as_deref(),
            q.server_name.as_deref(),
            q.server_id.as_deref(),
            q.network_version.as_deref(),
        )
        .await?;
    Ok(Json(w::ListCloudPhoneServersResponse {
        request_id: ctx.request_id,
        count: count as i32,
        servers: servers.iter().map(server).collect(),
    }))
}

pub async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, server_id)): Path<(String, String)>,
) -> ApiResult<Json<w::ShowCloudPhoneServerDetailResponse>> {
    let v = st.service.show_server(&ctx.caller, &server_id).await?;
    let base = server(&v);
    let share: Option<cph_service::servers::Volume> =
        serde_json::from_str(&v.server.share_data_volume).ok();
    let phone_vol: Option<cph_service::servers::Volume> =
        serde_json::from_str(&v.server.phone_data_volume).ok();
    let volumes = phone_vol.map(|pv| {
        v.phones
            .iter()
            .map(|p| w::Volume {
                volume_name: format!("volume-{}", p.phone_name),
                volume_id: format!("{}-data", p.phone_id),
                volume_size: pv.size as i32,
                volume_type: pv.volume_type.clone(),
                create_time: format_utc(p.created_at),
                update_time: format_utc(p.updated_at),
            })
            .collect()
    });
    Ok(Json(w::ShowCloudPhoneServerDetailResponse {
        request_id: ctx.request_id,
        server_name: base.server_name,
        availability_zone: base.availability_zone,
        server_id: base.server_id,
        server_model_name: base.server_model_name,
        phone_model_name: base.phone_model_name,
        keypair_name: base.keypair_name,
        status: base.status,
        vpc_id: base.vpc_id,
        cidr: base.cidr,
        vpc_cidr: base.vpc_cidr,
        subnet_id: base.subnet_id,
        subnet_cidr: base.subnet_cidr,
        resource_project_id: base.resource_project_id,
        metadata: base.metadata,
        addresses: base.addresses,
        band_widths: v.bandwidth.as_ref().map(|b| vec![convert::bandwidth(b)]),
        volumes,
        share_volume_info: share.map(|s| w::ShareVolumeInfo {
            volume_type: s.volume_type,
            size: s.size as i32,
            version: 1,
        }),
        network_version: base.network_version,
        enterprise_project_id: base.enterprise_project_id,
        security_groups: Vec::new(),
        create_time: base.create_time,
        update_time: base.update_time,
    }))
}

pub async fn rename(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, server_id)): Path<(String, String)>,
    JsonBody(b): JsonBody<w::UpdateServerNameRequestBody>,
) -> ApiResult<Json<w::UpdateServerNameResponse>> {
    st.service
        .rename_server(&ctx.caller, &server_id, b.server_name.as_deref())
        .await?;
    Ok(Json(w::UpdateServerNameResponse {
        request_id: ctx.request_id,
        error_msg: None,
        error_code: None,
    }))
}

pub async fn restart(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::RestartCloudPhoneServerRequestBody>,
) -> ApiResult<Json<w::ServerJobsResponse>> {
    let r = st
        .service
        .restart_servers(&ctx.caller, &ctx.request_id, b.server_ids)
        .await?;
    Ok(Json(convert::server_jobs(&ctx.request_id, r)))
}

pub async fn buy(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::CreateNet2CloudPhoneServerRequestBody>,
) -> ApiResult<Json<w::CreateNet2CloudPhoneServerResponse>> {
    let ext = b.extend_param.as_ref();
    let pip = b.public_ip.as_ref();
    let req = BuyServers {
        server_name: b.server_name,
        server_model_name: b.server_model_name,
        phone_model_name: b.phone_model_name,
        image_id: b.image_id,
        count: b.count,
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
        charging_mode: ext.and_then(|e| e.charging_mode),
        period_type: ext.and_then(|e| e.period_type),
        period_num: ext.and_then(|e| e.period_num),
        is_auto_pay: ext.and_then(|e| e.is_auto_pay),
        is_auto_renew: ext.and_then(|e| e.is_auto_renew),
        enterprise_project_id: ext.and_then(|e| e.enterprise_project_id.clone()),
        extend_param_present: ext.is_some(),
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
        phone_data_volume: b.phone_data_volume.map(|v| VolumeInput {
            volume_type: v.volume_type,
            size: v.size,
        }),
        server_share_data_volume: b.server_share_data_volume.map(|v| VolumeInput {
            volume_type: v.volume_type,
            size: v.size,
        }),
        band_width: b.band_width.map(|bw| BandwidthInput {
            band_width_id: bw.band_width_id,
            band_width_size: bw.band_width_size,
            band_width_charge_mode: bw.band_width_charge_mode,
            band_width_share_type: bw.band_width_share_type,
        }),
        availability_zone: b.availability_zone,
    };
    let p = st
        .service
        .buy_servers(&ctx.caller, &ctx.request_id, &req)
        .await?;
    Ok(Json(w::CreateNet2CloudPhoneServerResponse {
        request_id: ctx.request_id,
        order_id: p.order_id,
        product_id: p.product_id,
        server_ids: p.server_ids,
        error_msg: None,
        error_code: None,
    }))
}
