//! Phone routes.

use crate::AppState;
use crate::cache::{Page, PageCache};
use crate::convert;
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cph_domain::clock::format_utc;
use cph_service::ServiceError;
use cph_service::phones::PhoneItem;
use cph_wire as w;
use std::sync::Arc;

pub async fn list(
    State(st): State<AppState>,
    Extension(cache): Extension<Arc<PageCache>>,
    ctx: Ctx,
    Q(q): Q<w::ListCloudPhonesQuery>,
) -> ApiResult<Response> {
    let query = cph_service::phones::PhoneListQuery {
        offset: q.offset.as_deref(),
        limit: q.limit.as_deref(),
        phone_name: q.phone_name.as_deref(),
        server_id: q.server_id.as_deref(),
        status: q.status.as_deref(),
        phone_type: q.r#type.as_deref(),
    };
    // Same project and same raw parameters: a cached page was validated when it was rendered.
    let key = format!("{}\u{0}{query:?}", ctx.caller.project_id);
    let before = st.service.store().data_version();
    let page = match before.and_then(|v| cache.get(&key, v)) {
        Some(page) => page,
        None => {
            let (phones, count) = st.service.list_phones(&ctx.caller, &query).await?;
            let rendered: Vec<w::Phone> = phones.iter().map(convert::phone).collect();
            let phones_json: Arc<str> = serde_json::to_string(&rendered)
                .map_err(|e| ApiError(ServiceError::Internal(e.into())))?
                .into();
            let page = Page {
                version: before.unwrap_or(0),
                count,
                phones_json,
            };
            if let Some(v) = before
                && st.service.store().data_version() == Some(v)
            {
                cache.put(key, page.clone());
            }
            page
        }
    };
    // The body of ListCloudPhonesResponse, with this request's id.
    let body = format!(
        "{{\"phones\":{},\"request_id\":{},\"count\":{}}}",
        page.phones_json,
        serde_json::Value::String(ctx.request_id),
        page.count
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, phone_id)): Path<(String, String)>,
) -> ApiResult<Json<w::ShowCloudPhoneDetailResponse>> {
    let detail = st.service.show_phone(&ctx.caller, &phone_id).await?;
    let p = &detail.phone;
    let image_version = st
        .service
        .catalog()
        .phone_image(&p.image_id)
        .map(|i| i.image_name.clone())
        .unwrap_or_default();
    let custom: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&p.custom_properties).unwrap_or_default();
    Ok(Json(w::ShowCloudPhoneDetailResponse {
        request_id: ctx.request_id,
        phone_name: p.phone_name.clone(),
        server_id: p.server_id.clone(),
        phone_id: p.phone_id.clone(),
        image_id: p.image_id.clone(),
        image_version,
        vnc_enable: Some("false".into()),
        phone_model_name: p.phone_model_name.clone(),
        status: p.status,
        access_infos: detail
            .adb_endpoint
            .map(|addr| adb_access_info(&p.phone_ip, addr))
            .into_iter()
            .chain(
                detail
                    .ssh_endpoint
                    .map(|addr| ssh_access_info(&p.phone_ip, addr)),
            )
            .chain(
                detail
                    .ports
                    .iter()
                    .map(|port| port_access_info(&p.phone_ip, port)),
            )
            .collect(),
        property: p.properties.clone(),
        custom_property: Some(custom),
        metadata: Some(w::PhoneMetadata {
            order_id: p.order_id.clone(),
            product_id: p.product_id.clone(),
        }),
        phone_data_volume: detail.data_volume.as_ref().map(|v| w::PhoneDataVolume {
            volume_type: v.volume_type.clone(),
            volume_size: i32::try_from(v.size).unwrap_or(i32::MAX),
        }),
        imei: Some(p.imei.clone()),
        r#type: Some(p.phone_type),
        traffic_type: Some(p.traffic_type.clone()),
        volume_mode: Some(p.volume_mode),
        availability_zone: Some(p.availability_zone.clone()),
        has_encrypt: Some(false),
        create_time: format_utc(p.created_at),
        update_time: format_utc(p.updated_at),
    }))
}

pub async fn rename(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, phone_id)): Path<(String, String)>,
    JsonBody(b): JsonBody<w::UpdatePhoneNameRequestBody>,
) -> ApiResult<Json<w::UpdatePhoneNameResponse>> {
    st.service
        .rename_phone(&ctx.caller, &phone_id, b.phone_name.as_deref())
        .await?;
    Ok(Json(w::UpdatePhoneNameResponse {
        request_id: ctx.request_id,
    }))
}

pub async fn restart(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::RestartCloudPhoneRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let items = b.phones.map(|v| {
        v.into_iter()
            .map(|p| PhoneItem {
                phone_id: p.phone_id,
                property: p.property,
                custom_property: None,
            })
            .collect()
    });
    let r = st
        .service
        .restart_phones(&ctx.caller, &ctx.request_id, b.image_id.as_deref(), items)
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

pub async fn reset(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::ResetCloudPhoneRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let items = b.phones.map(|v| {
        v.into_iter()
            .map(|p| PhoneItem {
                phone_id: p.phone_id,
                property: p.property,
                custom_property: None,
            })
            .collect()
    });
    let r = st
        .service
        .reset_phones(&ctx.caller, &ctx.request_id, b.image_id.as_deref(), items)
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

pub async fn stop(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::StopCloudPhoneRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let r = st
        .service
        .stop_phones(&ctx.caller, &ctx.request_id, b.phone_ids)
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

pub async fn update_property(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::UpdateCloudPhonePropertyRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let items = b.phones.map(|v| {
        v.into_iter()
            .map(|p| PhoneItem {
                phone_id: p.phone_id,
                property: p.property,
                custom_property: p.custom_property,
            })
            .collect()
    });
    let r = st
        .service
        .update_phone_properties(&ctx.caller, &ctx.request_id, items)
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

pub async fn import_traffic(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::ImportTrafficRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let r = st
        .service
        .import_traffic(
            &ctx.caller,
            &ctx.request_id,
            b.traffic_type.as_deref(),
            b.phone_ids,
        )
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

/// The `ssh` entry of a phone's access information: the SSH gateway of its server
/// (`server_ip:access_port`), through which a tunnel reaches the phone's ADB daemon at
/// `phone_ip:listen_port` (`ssh -N -L 5555:<phone_ip>:5555 -p <access_port> root@<server_ip>`).
fn ssh_access_info(phone_ip: &str, addr: std::net::SocketAddr) -> w::PhoneAccessInfo {
    w::PhoneAccessInfo {
        r#type: "ssh".into(),
        ..adb_access_info(phone_ip, addr)
    }
}

/// The entry of an application port bought with the phone's server: `type` is the port's name,
/// `listen_port` the port inside the phone, `server_ip:access_port` the host address that
/// reaches it; `public_ip`/`access_ip` carry that address only when the port was bought
/// internet-accessible.
fn port_access_info(phone_ip: &str, port: &cph_service::phones::PortAccess) -> w::PhoneAccessInfo {
    let ip = port.addr.ip().to_string();
    let public = if port.public {
        ip.clone()
    } else {
        String::new()
    };
    w::PhoneAccessInfo {
        r#type: port.name.clone(),
        device_ip: phone_ip.to_string(),
        phone_ip: phone_ip.to_string(),
        listen_port: i32::from(port.listen_port),
        access_ip: public.clone(),
        public_ip: public,
        intranet_ip: ip.clone(),
        server_ip: ip,
        access_port: i32::from(port.addr.port()),
        phone_ipv6: None,
        server_ipv6: None,
    }
}

/// The `adb` entry of a phone's access information: its ADB endpoint on its host. The phone
/// itself listens on 5555 (`listen_port`); `access_port` on the host's address reaches it.
fn adb_access_info(phone_ip: &str, addr: std::net::SocketAddr) -> w::PhoneAccessInfo {
    let ip = addr.ip().to_string();
    w::PhoneAccessInfo {
        r#type: "adb".into(),
        device_ip: phone_ip.to_string(),
        phone_ip: phone_ip.to_string(),
        listen_port: 5555,
        access_ip: ip.clone(),
        public_ip: ip.clone(),
        intranet_ip: ip.clone(),
        server_ip: ip,
        access_port: i32::from(addr.port()),
        phone_ipv6: None,
        server_ipv6: None,
    }
}
