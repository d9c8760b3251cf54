//! Shared storage and shared app routes.

use crate::AppState;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody, Q};
use axum::Json;
use axum::extract::State;
use cph_service::share::{PushShareApps, ShareFilesOp};
use cph_wire as w;

/// `POST .../phones/share-files`: PushShareFiles or DeleteShareFiles, told apart by the body
/// (`file_paths` means delete); the caller must hold the action of the one it asks for.
pub async fn share_files(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::ShareFilesBody>,
) -> ApiResult<Json<w::ServerJobsResponse>> {
    let op = ShareFilesOp::of_body(
        b.file_paths.is_some(),
        b.bucket_name.is_some() || b.object_path.is_some(),
    )?;
    st.service
        .authorize(&ctx.caller, crate::ops::action_of(op.operation()))
        .await?;
    let r = match op {
        ShareFilesOp::Push => {
            st.service
                .push_share_files(
                    &ctx.caller,
                    &ctx.request_id,
                    b.bucket_name.as_deref(),
                    b.object_path.as_deref(),
                    b.server_ids,
                )
                .await?
        }
        ShareFilesOp::Delete => {
            st.service
                .delete_share_files(
                    &ctx.caller,
                    &ctx.request_id,
                    b.file_paths.as_deref(),
                    b.server_ids,
                )
                .await?
        }
    };
    Ok(Json(convert::server_jobs(&ctx.request_id, r)))
}

pub async fn list_share_files(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListShareFilesQuery>,
) -> ApiResult<Json<w::ListShareFilesResponse>> {
    let r = st
        .service
        .list_share_files(
            &ctx.caller,
            &ctx.request_id,
            q.server_ids.as_deref(),
            q.path.as_deref(),
            q.offset.as_deref(),
            q.limit.as_deref(),
        )
        .await?;
    Ok(Json(convert::server_jobs(&ctx.request_id, r)))
}

pub async fn push_share_apps(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::PushShareAppsRequestBody>,
) -> ApiResult<Json<w::PushShareAppsResponse>> {
    let r = st
        .service
        .push_share_apps(
            &ctx.caller,
            &ctx.request_id,
            PushShareApps {
                package_name: b.package_name,
                pre_install_app: b.pre_install_app,
                bucket_name: b.bucket_name,
                object_path: b.object_path,
                server_ids: b.server_ids,
            },
        )
        .await?;
    Ok(Json(convert::server_jobs(&ctx.request_id, r)))
}

pub async fn delete_share_apps(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::DeleteShareAppsRequestBody>,
) -> ApiResult<Json<w::DeleteShareAppsResponse>> {
    let r = st
        .service
        .delete_share_apps(
            &ctx.caller,
            &ctx.request_id,
            b.package_name.as_deref(),
            b.server_ids,
        )
        .await?;
    Ok(Json(convert::server_jobs(&ctx.request_id, r)))
}
