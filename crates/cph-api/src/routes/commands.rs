//! ADB command routes (PushFile, InstallApk, UninstallApk, RunShellCommand, RunSyncCommand) and
//! the export/import of phone data.

use crate::AppState;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{Ctx, JsonBody};
use axum::Json;
use axum::extract::State;
use cph_service::commands::{Command, ExportItem, ImportItem};
use cph_wire as w;

/// `POST .../phones/commands`: one route for four operations, chosen by `command`; the caller
/// must hold the action of the one the body asks for.
pub async fn run(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::PhoneCommandBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let command = Command::parse(b.command.as_deref())?;
    st.service
        .authorize(&ctx.caller, crate::ops::action_of(command.operation()))
        .await?;
    let r = st
        .service
        .run_phone_command(
            &ctx.caller,
            &ctx.request_id,
            command,
            b.content.as_deref(),
            b.phone_ids,
            b.server_ids,
        )
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

pub async fn run_sync(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::RunSyncCommandRequestBody>,
) -> ApiResult<Json<w::RunSyncCommandResponse>> {
    let r = st
        .service
        .run_sync_command(
            &ctx.caller,
            &ctx.request_id,
            b.command.as_deref(),
            b.content.as_deref(),
            b.phone_ids,
            b.server_ids,
        )
        .await?;
    Ok(Json(w::RunSyncCommandResponse {
        request_id: ctx.request_id,
        jobs: r
            .into_iter()
            .map(|j| w::RunSyncCommandJob {
                phone_id: j.phone_id,
                job_id: j.job_id,
                status: j.status,
                error_code: j.error_code,
                error_msg: j.error_msg,
                execute_msg: j.execute_msg,
            })
            .collect(),
    }))
}

pub async fn export_data(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::BatchExportCloudPhoneDataRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let items = b.storage_infos.map(|v| {
        v.into_iter()
            .map(|s| ExportItem {
                phone_id: s.phone_id,
                include_files: s.include_files,
                exclude_files: s.exclude_files,
                bucket_name: s.bucket_name,
                object_path: s.object_path,
            })
            .collect()
    });
    let r = st
        .service
        .export_phone_data(&ctx.caller, &ctx.request_id, items)
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}

pub async fn import_data(
    State(st): State<AppState>,
    ctx: Ctx,
    JsonBody(b): JsonBody<w::BatchImportCloudPhoneDataRequestBody>,
) -> ApiResult<Json<w::PhoneJobsResponse>> {
    let items = b.restore_infos.map(|v| {
        v.into_iter()
            .map(|s| ImportItem {
                phone_id: s.phone_id,
                bucket_name: s.bucket_name,
                object_path: s.object_path,
            })
            .collect()
    });
    let r = st
        .service
        .import_phone_data(&ctx.caller, &ctx.request_id, items)
        .await?;
    Ok(Json(convert::phone_jobs(&ctx.request_id, r)))
}
