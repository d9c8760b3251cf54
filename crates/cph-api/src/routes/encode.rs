//! Encode server routes: ListEncodeServers and RestartEncodeServer.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::Json;
use axum::extract::State;
use cph_wire as w;

pub async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListEncodeServersQuery>,
) -> ApiResult<Json<w::ListEncodeServersResponse>> {
    let (servers, _total) = st
        .service
        .list_encode_servers(
            &ctx.caller,
            q.offset.as_deref(),
            q.limit.as_deref(),
            q.r#type.as_deref(),
            q.status.as_deref(),
            q.server_id.as_deref(),
        )
        .await?;
    Ok(Json(w::ListEncodeServersResponse {
        request_id: ctx.request_id,
        encode_servers: servers
            .into_iter()
            .map(|e| {
                // Endpoints are published while the encode server runs (status 1).
                let access_infos = if e.status == 1 {
                    st.service
                        .encode_access_endpoints(&e.server_id)
                        .into_iter()
                        .map(|a| {
                            let ip = a.host;
                            w::EncodeServerAccessInfo {
                                listen_port: i32::from(a.listen_port),
                                access_ip: ip.clone(),
                                intranet_ip: ip.clone(),
                                public_ip: ip.clone(),
                                server_ip: ip,
                                access_port: i32::from(a.port),
                                r#type: a.kind.to_string(),
                                server_ipv6: None,
                            }
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                w::EncodeServer {
                    encode_server_name: e.name,
                    encode_server_id: e.encode_server_id,
                    encode_server_ip: e.ip,
                    server_id: e.server_id,
                    keypair_name: e.keypair_name,
                    r#type: e.encode_type as i32,
                    status: e.status as i32,
                    access_infos,
                    encode_server_ipv6: None,
                }
            })
            .collect(),
    }))
}

pub async fn restart(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::RestartEncodeServerRequestBody>,
) -> ApiResult<Json<w::RestartEncodeServerResponse>> {
    let items = st
        .service
        .restart_encode_servers(&ctx.caller, &ctx.request_id, b.encode_server_ids)
        .await?;
    Ok(Json(w::RestartEncodeServerResponse {
        request_id: ctx.request_id,
        jobs: items
            .into_iter()
            .map(|i| {
                let (error_code, error_msg) = match i.error {
                    Some((c, m)) => (Some(c), Some(m)),
                    None => (None, None),
                };
                w::EncodeServerJob {
                    encode_server_id: i.target_id,
                    job_id: i.job_id,
                    error_code,
                    error_msg,
                }
            })
            .collect(),
    }))
}
