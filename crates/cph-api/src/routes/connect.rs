//! BatchShowPhoneConnectInfos.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody};
use axum::Json;
use axum::extract::State;
use cph_wire as w;

pub async fn batch_show(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::ConnectionRequestBody>,
) -> ApiResult<Json<w::BatchShowPhoneConnectInfosResponse>> {
    let items = st
        .service
        .phone_connect_infos(&ctx.caller, b.phone_ids, b.client_type.as_deref())
        .await?;
    let mut connect_infos = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        match item {
            Ok(g) => connect_infos.push(w::ConnectInfo {
                phone_id: g.phone_id,
                access_info: w::ConnectInfoAccessInfo {
                    intranet_ip: g.access_ip.clone(),
                    access_ip: g.access_ip,
                    access_ipv6: None,
                    access_port: i32::from(g.access_port),
                    session_id: g.session_id,
                    timestamp: g.timestamp,
                    ticket: g.ticket,
                },
            }),
            Err((phone_id, error_code, error_msg)) => errors.push(w::ConnectErrorInfo {
                phone_id,
                error_code,
                error_msg,
            }),
        }
    }
    Ok(Json(w::BatchShowPhoneConnectInfosResponse {
        request_id: ctx.request_id,
        connect_infos,
        errors,
    }))
}
