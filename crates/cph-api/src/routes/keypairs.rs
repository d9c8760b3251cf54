//! Key pair routes: the Nova `os-keypairs` registry and UpdateKeypair.

use crate::AppState;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cph_service::keypairs::{NewKeypair, ServerKeypairInput, numeric_id};
use cph_store::network::Keypair;
use cph_wire as w;

/// Nova's time format: UTC `YYYY-MM-DDTHH:MM:SS.ffffff`.
fn nova_time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    body: bytes::Bytes,
) -> ApiResult<Json<w::NovaCreateKeypairResponse>> {
    let b: w::NovaCreateKeypairRequestBody = super::vpc::parse_body(&body, "400")?;
    let req = match b.keypair {
        Some(k) => NewKeypair {
            present: true,
            name: k.name,
            public_key: k.public_key,
            key_type: k.r#type,
            user_id: k.user_id,
        },
        None => NewKeypair::default(),
    };
    let c = st.service.create_keypair(&ctx.caller, &req).await?;
    let k = c.keypair;
    Ok(Json(w::NovaCreateKeypairResponse {
        keypair: w::NovaKeypair {
            fingerprint: k.fingerprint,
            name: k.name,
            public_key: k.public_key,
            private_key: c.private_key,
            user_id: k.user_id,
            r#type: Some(k.key_type),
        },
    }))
}

pub async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::NovaListKeypairsQuery>,
) -> ApiResult<Json<w::NovaListKeypairsResponse>> {
    let ks = st
        .service
        .list_keypairs(&ctx.caller, q.limit.as_deref(), q.marker.as_deref())
        .await?;
    Ok(Json(w::NovaListKeypairsResponse {
        keypairs: ks
            .into_iter()
            .map(|k| w::NovaListKeypairsResult {
                keypair: w::NovaSimpleKeypair {
                    fingerprint: k.fingerprint,
                    name: k.name,
                    public_key: k.public_key,
                    r#type: Some(k.key_type),
                },
            })
            .collect(),
    }))
}

fn detail(k: Keypair) -> w::NovaKeypairDetail {
    w::NovaKeypairDetail {
        id: numeric_id(&k),
        created_at: nova_time(k.created_at),
        public_key: k.public_key,
        name: k.name,
        fingerprint: k.fingerprint,
        deleted: false,
        deleted_at: None,
        updated_at: None,
        user_id: k.user_id,
        r#type: Some(k.key_type),
    }
}

pub async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, name)): Path<(String, String)>,
) -> ApiResult<Json<w::NovaShowKeypairResponse>> {
    let k = st.service.show_keypair(&ctx.caller, &name).await?;
    Ok(Json(w::NovaShowKeypairResponse { keypair: detail(k) }))
}

pub async fn delete(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    st.service.delete_keypair(&ctx.caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update_server_keypairs(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::UpdateKeypairRequestBody>,
) -> ApiResult<Json<w::UpdateKeypairResponse>> {
    let servers = b.servers.map(|v| {
        v.into_iter()
            .map(|s| ServerKeypairInput {
                server_id: s.server_id,
                keypair_name: s.keypair_name,
            })
            .collect()
    });
    let items = st
        .service
        .update_server_keypairs(&ctx.caller, &ctx.request_id, servers)
        .await?;
    Ok(Json(convert::server_jobs(&ctx.request_id, items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_times_have_microseconds() {
        assert_eq!(nova_time(1_700_000_000_123), "2023-11-14T22:13:20.123000");
    }
}
