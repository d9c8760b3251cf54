//! Catalog: server models, phone models and phone images.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::PageInfo;

// ---------------------------------------------------------------------------
// ListCloudPhoneServerModels
// ---------------------------------------------------------------------------

/// OS disk of a server model (SDK `ServerModelExtendSpecOsVolume`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OsVolume {
    /// Size in GB.
    pub size: i32,
    pub volume_type: String,
}

/// Hardware description of a server model (SDK `ServerModelExtendSpec`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServerModelExtendSpec {
    pub cpu: String,
    pub memory: String,
    pub disk: String,
    pub network_interface: String,
    pub gpu: String,
    pub bms_flavor: String,
    pub gpu_count: i32,
    pub numa_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_volume: Option<OsVolume>,
}

/// Cloud phone server model (flavor) of ListCloudPhoneServerModels.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServerModel {
    pub server_model_name: String,
    /// Server hardware type, e.g. `Hi1616`.
    pub server_type: String,
    /// CPU cores.
    pub cpu: i32,
    /// Memory in GB.
    pub memory: i32,
    pub extend_spec: ServerModelExtendSpec,
    /// Maximum number of attachable disks; 0 = local disks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_max_num: Option<i32>,
    /// Product type: 0 cloud phone, 1 cloud game.
    pub product_type: i32,
    /// Free disk quota in GB.
    pub free_size: i32,
}

/// Query parameters of ListCloudPhoneServerModels (`GET /v1/{project_id}/cloud-phone/server-models`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCloudPhoneServerModelsQuery {
    /// Product type: 0 cloud phone, 1 cloud game.
    pub product_type: Option<String>,
    /// Paging marker (`page_info.next_marker` of the previous page).
    pub marker: Option<String>,
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
}

/// Response body of ListCloudPhoneServerModels.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListCloudPhoneServerModelsResponse {
    pub request_id: String,
    pub server_models: Vec<ServerModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_info: Option<PageInfo>,
}

// ---------------------------------------------------------------------------
// ListCloudPhoneModels
// ---------------------------------------------------------------------------

/// Cloud phone model (flavor) of ListCloudPhoneModels.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneModel {
    pub server_model_name: String,
    pub phone_model_name: String,
    /// 1 available, 0 offline (cannot be bought).
    pub status: i32,
    /// CPU cores.
    pub cpu: i32,
    /// Memory in MB.
    pub memory: i32,
    /// System storage in GB.
    pub disk: i32,
    /// Resolution, e.g. `720x1280`.
    pub resolution: String,
    /// Extended description as a JSON string (at most 512 bytes).
    pub extend_spec: String,
    pub spec_code: String,
    /// Number of phones per server of this model.
    pub phone_capacity: i32,
    /// Image label: `qemu_phone`, `cloud_phone`, `cloud_phone_1620`, `cloud_game`, `cloud_game_1620`.
    pub image_label: String,
    /// Product type: 0 cloud phone, 1 cloud game.
    pub product_type: i32,
    /// Model version: 0 = 1.0, 1 = 2.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_model_version: Option<i32>,
    /// Dots per inch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpi: Option<i32>,
    /// Render frame rate (a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<String>,
    /// 0 shared physical disk, 1 dedicated physical disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<i32>,
    /// Render frame rate.
    pub render_fps: i32,
    /// Stream frame rate.
    pub stream_fps: i32,
}

/// Query parameters of ListCloudPhoneModels (`GET /v1/{project_id}/cloud-phone/phone-models`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCloudPhoneModelsQuery {
    /// 0 offline, 1 available; absent = all.
    pub status: Option<String>,
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
}

/// Response body of ListCloudPhoneModels.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListCloudPhoneModelsResponse {
    pub request_id: String,
    pub phone_models: Vec<PhoneModel>,
}

// ---------------------------------------------------------------------------
// ListCloudPhoneImages
// ---------------------------------------------------------------------------

/// Phone image of ListCloudPhoneImages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneImage {
    pub image_name: String,
    pub os_type: String,
    /// 1 public image, 2 private image.
    pub is_public: i32,
    pub os_name: String,
    /// Server family the image fits: `cloud_phone`, `cloud_phone_1620`, `cloud_game`,
    /// `cloud_game_1620`, `qemu_phone`.
    pub image_label: String,
    pub image_id: String,
    /// Whether the image supports file-level encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_support_encrypt: Option<bool>,
    /// Shared image state: 0 pending, 1 accepted, 2 rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_status: Option<i32>,
}

/// Query parameters of ListCloudPhoneImages (`GET /v1/{project_id}/cloud-phone/phone-images`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCloudPhoneImagesQuery {
    /// `public`, `private`, `share` or `all`.
    pub image_type: Option<String>,
    /// Paging marker (`page_info.next_marker` of the previous page).
    pub marker: Option<String>,
    /// Page size, 1..=500 (default 500).
    pub limit: Option<String>,
}

/// Response body of ListCloudPhoneImages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListCloudPhoneImagesResponse {
    pub request_id: String,
    pub phone_images: Vec<PhoneImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_info: Option<PageInfo>,
}
