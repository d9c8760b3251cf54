//! Cloud phones: list/show, reset, restart, stop, rename, properties, data export/import, traffic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::PhoneJobsResponse;

// ---------------------------------------------------------------------------
// ListCloudPhones
// ---------------------------------------------------------------------------

/// Order/product metadata of a cloud phone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneMetadata {
    pub order_id: String,
    pub product_id: String,
}

/// Cloud phone as listed by ListCloudPhones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Phone {
    pub phone_name: String,
    pub server_id: String,
    pub phone_id: String,
    pub phone_model_name: String,
    pub image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
    /// `"true"` / `"false"` (a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnc_enable: Option<String>,
    /// Phone status: 0, 1 creating; 2 running; 3 resetting; 4 restarting; 6 frozen;
    /// 7 shutting down; 8 shut down; -5 reset failed; -6 restart failed; -7 abnormal;
    /// -8 creation failed; -9 shutdown failed.
    pub status: i32,
    /// Phone type: 0 normal, 1 trial.
    #[serde(rename = "type")]
    pub r#type: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// `direct` (default route) or `routing` (routed to the encode server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<String>,
    /// 0 shared physical disk, 1 dedicated physical disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PhoneMetadata>,
    /// Whether file-level encryption is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_encrypt: Option<bool>,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_time: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub update_time: String,
}

/// Query parameters of ListCloudPhones (`GET /v1/{project_id}/cloud-phone/phones`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCloudPhonesQuery {
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=200 (default 100).
    pub limit: Option<String>,
    /// Fuzzy match on the phone name.
    pub phone_name: Option<String>,
    pub server_id: Option<String>,
    /// Phone status code (see `Phone::status`).
    pub status: Option<String>,
    /// Phone type (0 normal).
    #[serde(rename = "type")]
    pub r#type: Option<String>,
}

/// Response body of ListCloudPhones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListCloudPhonesResponse {
    pub phones: Vec<Phone>,
    pub request_id: String,
    /// Total number of phones matching the filter.
    pub count: i32,
}

// ---------------------------------------------------------------------------
// ShowCloudPhoneDetail
// ---------------------------------------------------------------------------

/// Access endpoint of a cloud phone port (ShowCloudPhoneDetail `access_infos`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneAccessInfo {
    /// Port type / name (at most 16 bytes).
    #[serde(rename = "type")]
    pub r#type: String,
    /// Phone IP (deprecated, same as `phone_ip`).
    pub device_ip: String,
    pub phone_ip: String,
    pub listen_port: i32,
    /// Public IP of the server (deprecated, same as `public_ip`).
    pub access_ip: String,
    /// Public IP of the server; empty string when the port is not public.
    pub public_ip: String,
    /// Private IP of the server (deprecated, same as `server_ip`).
    pub intranet_ip: String,
    pub server_ip: String,
    /// Public port mapped to `listen_port`.
    pub access_port: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ipv6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ipv6: Option<String>,
}

/// Data disk of a cloud phone (ShowCloudPhoneDetail `phone_data_volume`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneDataVolume {
    pub volume_type: String,
    /// Size in GB.
    pub volume_size: i32,
}

/// Response body of ShowCloudPhoneDetail (`GET /v1/{project_id}/cloud-phone/phones/{phone_id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ShowCloudPhoneDetailResponse {
    pub request_id: String,
    pub phone_name: String,
    pub server_id: String,
    pub phone_id: String,
    pub image_id: String,
    pub image_version: String,
    /// Deprecated; `"true"` / `"false"` (a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vnc_enable: Option<String>,
    pub phone_model_name: String,
    /// Phone status (see `Phone::status`).
    pub status: i32,
    pub access_infos: Vec<PhoneAccessInfo>,
    /// Phone properties as a JSON string (at most 2048 bytes).
    pub property: String,
    /// User-defined properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_property: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PhoneMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_data_volume: Option<PhoneDataVolume>,
    /// IMEI (a string; the reference example shows a number, the SDK declares `str`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// Phone type: 0 normal.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<i32>,
    /// `direct` or `routing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<String>,
    /// 0 shared physical disk, 1 dedicated physical disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Whether file-level encryption is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_encrypt: Option<bool>,
    pub create_time: String,
    pub update_time: String,
}

// ---------------------------------------------------------------------------
// ResetCloudPhone / RestartCloudPhone / StopCloudPhone
// ---------------------------------------------------------------------------

/// Phone to reset (request; SDK `ResetPhoneProperty`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ResetPhoneProperty {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// Phone properties as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// Also clear all previously configured properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factory_reset_enabled: Option<bool>,
}

/// Request body of ResetCloudPhone (`POST /v1/{project_id}/cloud-phone/phones/batch-reset`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ResetCloudPhoneRequestBody {
    /// New image (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<ResetPhoneProperty>>,
}

/// Response body of ResetCloudPhone.
pub type ResetCloudPhoneResponse = PhoneJobsResponse;

/// Phone to restart (request; SDK `PhoneProperty`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PhoneProperty {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// Phone properties as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Request body of RestartCloudPhone (`POST /v1/{project_id}/cloud-phone/phones/batch-restart`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RestartCloudPhoneRequestBody {
    /// New image (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneProperty>>,
}

/// Response body of RestartCloudPhone.
pub type RestartCloudPhoneResponse = PhoneJobsResponse;

/// Request body of StopCloudPhone (`POST /v1/{project_id}/cloud-phone/phones/batch-stop`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct StopCloudPhoneRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
}

/// Response body of StopCloudPhone.
pub type StopCloudPhoneResponse = PhoneJobsResponse;

// ---------------------------------------------------------------------------
// UpdatePhoneName
// ---------------------------------------------------------------------------

/// Request body of UpdatePhoneName (`PUT /v1/{project_id}/cloud-phone/phones/{phone_id}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UpdatePhoneNameRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_name: Option<String>,
}

/// Response body of UpdatePhoneName.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdatePhoneNameResponse {
    pub request_id: String,
}

// ---------------------------------------------------------------------------
// UpdateCloudPhoneProperty
// ---------------------------------------------------------------------------

/// Property update of one phone (request; SDK `PropertyToUpdate`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PropertyToUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// Phone properties as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    /// User-defined properties (with `property`, at most 7800 bytes in total).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_property: Option<BTreeMap<String, String>>,
}

/// Request body of UpdateCloudPhoneProperty (`POST /v1/{project_id}/cloud-phone/phones/batch-update-property`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UpdateCloudPhonePropertyRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PropertyToUpdate>>,
}

/// Response body of UpdateCloudPhoneProperty.
pub type UpdateCloudPhonePropertyResponse = PhoneJobsResponse;

// ---------------------------------------------------------------------------
// BatchExportCloudPhoneData / BatchImportCloudPhoneData
// ---------------------------------------------------------------------------

/// Export of one phone's data to OBS (request; SDK `StorageInfo`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct StorageInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// Absolute paths to export (under /data or /cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_files: Option<Vec<String>>,
    /// Paths to leave out (win over `include_files`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_files: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_path: Option<String>,
}

/// Request body of BatchExportCloudPhoneData (`POST /v1/{project_id}/cloud-phone/phones/batch-storage`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct BatchExportCloudPhoneDataRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_infos: Option<Vec<StorageInfo>>,
}

/// Response body of BatchExportCloudPhoneData.
pub type BatchExportCloudPhoneDataResponse = PhoneJobsResponse;

/// Import of one phone's data from OBS (request; SDK `RestoreInfo`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RestoreInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_path: Option<String>,
}

/// Request body of BatchImportCloudPhoneData (`POST /v1/{project_id}/cloud-phone/phones/batch-restore`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct BatchImportCloudPhoneDataRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_infos: Option<Vec<RestoreInfo>>,
}

/// Response body of BatchImportCloudPhoneData.
pub type BatchImportCloudPhoneDataResponse = PhoneJobsResponse;

// ---------------------------------------------------------------------------
// ImportTraffic
// ---------------------------------------------------------------------------

/// Request body of ImportTraffic (`POST /v1/{project_id}/cloud-phone/phones-traffic`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ImportTrafficRequestBody {
    /// `direct` (default route) or `routing` (routed to the encode server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_type: Option<String>,
    /// At most 100 phone IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
}

/// Response body of ImportTraffic.
pub type ImportTrafficResponse = PhoneJobsResponse;
