//! Server models, phone models, phone images.

use crate::AppState;
use crate::convert::reshape;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, Q};
use axum::Json;
use axum::extract::State;
use cph_wire as w;

fn reshape_all<A: serde::Serialize, B: serde::de::DeserializeOwned>(
    items: &[A],
) -> ApiResult<Vec<B>> {
    items
        .iter()
        .map(|i| reshape(i).map_err(|e| ApiError(cph_service::ServiceError::Internal(e))))
        .collect()
}

pub async fn list_server_models(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListCloudPhoneServerModelsQuery>,
) -> ApiResult<Json<w::ListCloudPhoneServerModelsResponse>> {
    let (models, next) = st
        .service
        .list_server_models(
            q.product_type.as_deref(),
            q.marker.as_deref(),
            q.limit.as_deref(),
        )
        .await?;
    Ok(Json(w::ListCloudPhoneServerModelsResponse {
        request_id: ctx.request_id,
        server_models: reshape_all(&models)?,
        page_info: Some(w::PageInfo { next_marker: next }),
    }))
}

pub async fn list_phone_models(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListCloudPhoneModelsQuery>,
) -> ApiResult<Json<w::ListCloudPhoneModelsResponse>> {
    let models = st
        .service
        .list_phone_models(q.status.as_deref(), q.offset.as_deref(), q.limit.as_deref())
        .await?;
    Ok(Json(w::ListCloudPhoneModelsResponse {
        request_id: ctx.request_id,
        phone_models: reshape_all(&models)?,
    }))
}

pub async fn list_phone_images(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListCloudPhoneImagesQuery>,
) -> ApiResult<Json<w::ListCloudPhoneImagesResponse>> {
    let (images, next) = st
        .service
        .list_phone_images(
            q.image_type.as_deref(),
            q.marker.as_deref(),
            q.limit.as_deref(),
        )
        .await?;
    Ok(Json(w::ListCloudPhoneImagesResponse {
        request_id: ctx.request_id,
        phone_images: reshape_all(&images)?,
        page_info: Some(w::PageInfo { next_marker: next }),
    }))
}
