//! Job queries.

use crate::AppState;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{Ctx, Q};
use axum::Json;
use axum::extract::{Path, State};
use cph_domain::clock::format_utc;
use cph_wire as w;

pub async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListJobsQuery>,
) -> ApiResult<Json<w::ListJobsResponse>> {
    let (jobs, _total) = st
        .service
        .list_jobs(
            &ctx.caller,
            q.request_id.as_deref(),
            q.request_ids.as_deref(),
            q.offset.as_deref(),
            q.limit.as_deref(),
        )
        .await?;
    Ok(Json(w::ListJobsResponse {
        request_id: ctx.request_id,
        jobs: jobs.iter().map(convert::job).collect(),
    }))
}

pub async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, job_id)): Path<(String, String)>,
) -> ApiResult<Json<w::ShowJobResponse>> {
    let j = st.service.show_job(&ctx.caller, &job_id).await?;
    Ok(Json(w::ShowJobResponse {
        request_id: ctx.request_id,
        job_id: j.job_id,
        begin_time: j.begin_time.map(format_utc),
        end_time: j.end_time.map(format_utc),
        status: j.status,
        phone_id: j.phone_id,
        server_id: j.server_id,
        error_code: j.error_code,
        error_msg: j.error_msg,
        execute_msg: j.execute_msg,
    }))
}
