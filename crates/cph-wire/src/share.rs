//! Shared storage files and shared apps of cloud phone servers.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::ServerJobsResponse;

/// Merged request body of `POST /v1/{project_id}/cloud-phone/phones/share-files` covering
/// PushShareFiles (`bucket_name` + `object_path`) and DeleteShareFiles (`file_paths`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ShareFilesBody {
    /// OBS bucket (push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// OBS object key of a tar file (push).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
    /// Absolute paths in shared storage to delete (delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<Vec<String>>,
}

/// Request body of PushShareFiles (`POST /v1/{project_id}/cloud-phone/phones/share-files`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PushShareFilesRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// OBS object key of a tar file, unpacked into /data or /cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Response body of PushShareFiles.
pub type PushShareFilesResponse = ServerJobsResponse;

/// Request body of DeleteShareFiles (`POST /v1/{project_id}/cloud-phone/phones/share-files`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct DeleteShareFilesRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
    /// Absolute paths to delete (start with `/`, no `..`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<Vec<String>>,
}

/// Response body of DeleteShareFiles.
pub type DeleteShareFilesResponse = ServerJobsResponse;

/// Query parameters of ListShareFiles (`GET /v1/{project_id}/cloud-phone/servers/share-files`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListShareFilesQuery {
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=50 (default 50).
    pub limit: Option<String>,
    /// Server IDs joined by commas (one string).
    pub server_ids: Option<String>,
    /// Directory to list, e.g. `/data/data` (starts with `/`, no `../` or `//`).
    pub path: Option<String>,
}

/// Response body of ListShareFiles.
pub type ListShareFilesResponse = ServerJobsResponse;

/// Request body of PushShareApps (`POST /v1/{project_id}/cloud-phone/phones/share-apps`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PushShareAppsRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// 1 pre-install the app, 0 do not (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_install_app: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// OBS object key of a tar file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_path: Option<String>,
    /// 1..=20 server IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Response body of PushShareApps.
pub type PushShareAppsResponse = ServerJobsResponse;

/// Request body of DeleteShareApps (`DELETE /v1/{project_id}/cloud-phone/phones/share-apps`, JSON body).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct DeleteShareAppsRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Response body of DeleteShareApps.
pub type DeleteShareAppsResponse = ServerJobsResponse;
