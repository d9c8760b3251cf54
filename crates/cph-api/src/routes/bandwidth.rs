//! Bandwidth routes: ShowBandwidthDetail and UpdateBandwidth.

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::Json;
use axum::extract::{Path, State};
use cph_wire as w;

pub async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ShowBandwidthDetailQuery>,
) -> ApiResult<Json<w::ShowBandwidthDetailResponse>> {
    let bws = st
        .service
        .list_bandwidths(&ctx.caller, q.offset.as_deref(), q.limit.as_deref())
        .await?;
    Ok(Json(w::ShowBandwidthDetailResponse {
        request_id: ctx.request_id,
        band_widths: bws
            .into_iter()
            .map(|b| crate::convert::bandwidth(&b))
            .collect(),
    }))
}

pub async fn update(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, band_width_id)): Path<(String, String)>,
    JsonBody(b): JsonBody<w::UpdateBandwidthRequestBody>,
) -> ApiResult<Json<w::UpdateBandwidthResponse>> {
    st.service
        .update_bandwidth(&ctx.caller, &band_width_id, b.band_width_size)
        .await?;
    Ok(Json(w::UpdateBandwidthResponse {
        request_id: ctx.request_id,
        error_msg: None,
        error_code: None,
    }))
}
