//! Route table. Path templates are exactly those of `cph_wire::ops::OPERATIONS`, which the
//! authorization layer matches on.

mod bandwidth;
mod catalog;
mod commands;
mod connect;
mod encode;
mod iam;
mod jobs;
mod keypairs;
mod lifecycle;
mod phones;
mod servers;
mod share;
mod tags;
mod vpc;

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
        .route(
            "/v1/{project_id}/cloud-phone/servers/change-server-model",
            post(lifecycle::change_model),
        )
        .route(
            "/v2/{project_id}/cloud-phone/servers/{server_id}/change",
            post(lifecycle::change),
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
            "/v1/{project_id}/cloud-phone/phones/batch-connection",
            post(connect::batch_show),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones-traffic",
            post(phones::import_traffic),
        )
        // ADB commands and phone data
        .route(
            "/v1/{project_id}/cloud-phone/phones/commands",
            post(commands::run),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/sync-commands",
            post(commands::run_sync),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/batch-storage",
            post(commands::export_data),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/batch-restore",
            post(commands::import_data),
        )
        // shared storage and apps
        .route(
            "/v1/{project_id}/cloud-phone/phones/share-files",
            post(share::share_files),
        )
        .route(
            "/v1/{project_id}/cloud-phone/servers/share-files",
            get(share::list_share_files),
        )
        .route(
            "/v1/{project_id}/cloud-phone/phones/share-apps",
            post(share::push_share_apps).delete(share::delete_share_apps),
        )
        // key pairs and keyed access
        .route(
            "/v1/{project_id}/cloud-phone/servers/open-access",
            put(keypairs::update_server_keypairs),
        )
        .route(
            "/v2.1/{project_id}/os-keypairs",
            get(keypairs::list).post(keypairs::create),
        )
        .route(
            "/v2.1/{project_id}/os-keypairs/{keypair_name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        // bandwidths
        .route(
            "/v1/{project_id}/cloud-phone/bandwidths",
            get(bandwidth::list),
        )
        .route(
            "/v1/{project_id}/cloud-phone/bandwidths/{band_width_id}",
            put(bandwidth::update),
        )
        // encode servers
        .route(
            "/v1/{project_id}/cloud-phone/encode-servers",
            get(encode::list),
        )
        .route(
            "/v1/{project_id}/cloud-phone/encode-servers/batch-restart",
            post(encode::restart),
        )
        // VPC v1
        .route(
            "/v1/{project_id}/vpcs",
            get(vpc::list_vpcs).post(vpc::create_vpc),
        )
        .route(
            "/v1/{project_id}/vpcs/{vpc_id}",
            get(vpc::show_vpc).delete(vpc::delete_vpc),
        )
        .route(
            "/v1/{project_id}/subnets",
            get(vpc::list_subnets).post(vpc::create_subnet),
        )
        .route(
            "/v1/{project_id}/subnets/{subnet_id}",
            get(vpc::show_subnet),
        )
        .route(
            "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}",
            axum::routing::delete(vpc::delete_subnet),
        )
        // jobs
        .route("/v1/{project_id}/cloud-phone/jobs", get(jobs::list))
        .route(
            "/v1/{project_id}/cloud-phone/jobs/{job_id}",
            get(jobs::show),
        )
        // tags
        .route(
            "/v1/{project_id}/{resource_type}/tags",
            get(tags::list_project_tags),
        )
        .route(
            "/v1/{project_id}/{resource_type}/{resource_id}/tags",
            get(tags::list_resource_tags),
        )
        .route(
            "/v1/{project_id}/{resource_type}/resource_instances/action",
            post(tags::list_resource_instances),
        )
        .route(
            "/v1/{project_id}/{resource_type}/{resource_id}/tags/action",
            post(tags::tags_action),
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
