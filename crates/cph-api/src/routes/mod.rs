//! Route table. Path templates are exactly those of `cph_wire::ops::OPERATIONS`, which the
//! authorization layer matches on.

mod catalog;
mod iam;
mod jobs;
mod phones;
mod servers;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use axum::Router;
use axum::routing::{get, post, put};
use cph_service::ServiceError;

/// Routes that require authentication.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        // catalog
        .route(
            "/v1/{project_id}/cloud-phone/server-models",
            get(catalog::list_server_models),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phone-models",
            get(catalog::list_phone_models),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phone-images",
            get(catalog::list_phone_images),
        )
        // servers
        .route("/v1/{project_id}/cloud-phone/servers", get(servers::list))
        .route("/v2/{project_id}/cloud-phone/servers", post(servers::buy))
        .route(
            "/v1/{project_id}/cloud-phone/servers/{server_id}",
            get(servers::show).put(servers::rename),
        )
        .route(
            "/v1/{project_id}/cloud-phone/servers/batch-restart",
            post(servers::restart),
        )
        // phones
        .route("/v1/{project_id}/cloud-phone/phones", get(phones::list))
        .route(
            "/v1/{project_id}/cloud-phone/phones/{phone_id}",
            get(phones::show).put(phones::rename),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/batch-restart",
            post(phones::restart),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/batch-reset",
            post(phones::reset),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/batch-stop",
            post(phones::stop),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/batch-update-property",
            post(phones::update_property),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones-traffic",
            post(phones::import_traffic),
        )
        // jobs
        .route("/v1/{project_id}/cloud-phone/jobs", get(jobs::list))
        .route(
            "/v1/{project_id}/cloud-phone/jobs/{job_id}",
            get(jobs::show),
        )
}

/// Routes without AK/SK or token authentication.
pub fn public_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v3/auth/tokens", post(iam::create_token))
        .route(
            "/v3/projects",
            get(iam::list_projects).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::auth::authenticate_user_only,
            )),
        )
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/health", get(|| async { "ok" }))
}

/// Unknown routes answer in the API's error format.
pub async fn not_found() -> ApiResult<()> {
    Err(ApiError(ServiceError::raw(
        404,
        "APIGW.0101",
        "The API does not exist or has not been published in the environment.",
    )))
}

/// Keeps `put` imported for modules that add PUT routes.
#[allow(dead_code)]
fn _uses() -> axum::routing::MethodRouter<AppState> {
    put(not_found)
}
