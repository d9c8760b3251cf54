//! Cloud phone servers: list/show, create (v2), change (v2), restart, change model, rename.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::bandwidths::Bandwidth;
use crate::common::ServerJobsResponse;

// ---------------------------------------------------------------------------
// Shared response models
// ---------------------------------------------------------------------------

/// IP addresses of a cloud phone server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Address {
    /// Private IP (deprecated, same as `server_ip`).
    pub intranet_ip: String,
    /// Public IP (deprecated, same as `public_ip`).
    pub access_ip: String,
    /// Private IP.
    pub server_ip: String,
    /// Public IP.
    pub public_ip: String,
}

/// Order/product metadata of a cloud phone server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServerMetadata {
    pub product_id: String,
    pub order_id: String,
    /// Charging mode: 0 yearly/monthly, 1 pay-per-use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charging_mode: Option<i32>,
}

/// Cloud phone server as listed by ListCloudPhoneServers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Server {
    pub server_name: String,
    pub availability_zone: String,
    pub server_id: String,
    pub server_model_name: String,
    pub phone_model_name: String,
    pub keypair_name: String,
    /// Server status: 0, 1, 3, 4 creating; 2 abnormal; 5 normal; 8 frozen; 10 shut down;
    /// 11 shutting down; 12 shutdown failed; 13 starting.
    pub status: i32,
    pub vpc_id: String,
    pub cidr: String,
    pub vpc_cidr: String,
    pub subnet_id: String,
    pub subnet_cidr: String,
    pub addresses: Vec<Address>,
    pub resource_project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ServerMetadata>,
    /// `v1` system-defined network, `v2` custom network.
    pub network_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_time: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub update_time: String,
}

/// Disk of a cloud phone server (ShowCloudPhoneServerDetail `volumes`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Volume {
    pub volume_name: String,
    pub volume_id: String,
    /// Size in GB.
    pub volume_size: i32,
    pub volume_type: String,
    pub create_time: String,
    pub update_time: String,
}

/// Shared storage of a cloud phone server (ShowCloudPhoneServerDetail `share_volume_info`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ShareVolumeInfo {
    pub volume_type: String,
    /// Size in GB.
    pub size: i32,
    /// Shared storage version: 0 = 1.0, 1 = 2.0.
    pub version: i32,
}

// ---------------------------------------------------------------------------
// ListCloudPhoneServers
// ---------------------------------------------------------------------------

/// Query parameters of ListCloudPhoneServers (`GET /v1/{project_id}/cloud-phone/servers`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCloudPhoneServersQuery {
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
    /// Fuzzy match on the server name.
    pub server_name: Option<String>,
    pub server_id: Option<String>,
    /// `v1` or `v2`.
    pub network_version: Option<String>,
    pub phone_model_name: Option<String>,
    /// Creation time lower bound (timestamp).
    pub create_since: Option<String>,
    /// Creation time upper bound (timestamp).
    pub create_until: Option<String>,
    /// Server status code (see `Server::status`).
    pub status: Option<String>,
}

/// Response body of ListCloudPhoneServers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListCloudPhoneServersResponse {
    pub request_id: String,
    /// Total number of servers matching the filter.
    pub count: i32,
    pub servers: Vec<Server>,
}

// ---------------------------------------------------------------------------
// ShowCloudPhoneServerDetail
// ---------------------------------------------------------------------------

/// Response body of ShowCloudPhoneServerDetail (`GET /v1/{project_id}/cloud-phone/servers/{server_id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ShowCloudPhoneServerDetailResponse {
    pub request_id: String,
    pub server_name: String,
    pub availability_zone: String,
    pub server_id: String,
    pub server_model_name: String,
    pub phone_model_name: String,
    pub keypair_name: String,
    /// Server status (see `Server::status`).
    pub status: i32,
    pub vpc_id: String,
    pub cidr: String,
    pub vpc_cidr: String,
    pub subnet_id: String,
    pub subnet_cidr: String,
    pub resource_project_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ServerMetadata>,
    pub addresses: Vec<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_widths: Option<Vec<Bandwidth>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_volume_info: Option<ShareVolumeInfo>,
    /// `v1` system-defined network, `v2` custom network.
    pub network_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    /// Security groups of the extension NIC; empty for system-defined networks.
    pub security_groups: Vec<String>,
    pub create_time: String,
    pub update_time: String,
}

// ---------------------------------------------------------------------------
// Request models shared by CreateNet2CloudPhoneServer and ChangeCloudPhoneServer
// ---------------------------------------------------------------------------

/// Application port forwarded by the cloud phone service (request; SDK `Port`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct Port {
    /// Port name (at most 16 bytes; `adb` and `vnc` are reserved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port number, 10000..=50000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<i64>,
    /// `"true"` (case-insensitive) maps the port to the public network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_accessible: Option<String>,
}

/// IPv6 shared bandwidth of a NIC (request; SDK `NicIpv6Bandwidth`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct NicIpv6Bandwidth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_id: Option<String>,
}

/// Tenant NIC of a server to create (request; SDK `Nic`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct Nic {
    /// Subnet of `tenant_vpc_id` (UUID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_enable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_bandwidth: Option<NicIpv6Bandwidth>,
}

/// EIP to allocate (request; SDK `CreateNet2CloudPhoneServerRequestBodyPublicIpEip`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct EipParam {
    /// EIP type: `5_telcom`, `5_union`, `5_bgp`, `5_sbgp`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// Public IP settings (request; SDK `CreateNet2CloudPhoneServerRequestBodyPublicIp` /
/// `ChangeCloudPhoneServerRequestBodyPublicIp`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PublicIpParam {
    /// Existing EIP IDs (currently at most one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eip: Option<EipParam>,
    /// Number of EIPs (default 1, 0 for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// Disk settings (request; SDK `...RequestBodyPhoneDataVolume` / `...RequestBodyServerShareDataVolume`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct VolumeParam {
    /// `SSD` or `GPSSD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    /// Size in GB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

/// Bandwidth settings (request; SDK `...RequestBodyBandWidth`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct BandWidthParam {
    /// Shared bandwidth ID (for shared bandwidth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_id: Option<String>,
    /// Size in Mbit/s (for dedicated bandwidth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_size: Option<i64>,
    /// 0 charged by bandwidth, 1 charged by traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_charge_mode: Option<i64>,
    /// 0 dedicated (per), 1 shared (whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_share_type: Option<i64>,
}

// ---------------------------------------------------------------------------
// CreateNet2CloudPhoneServer
// ---------------------------------------------------------------------------

/// Billing parameters of CreateNet2CloudPhoneServer (request; SDK
/// `CreateNet2CloudPhoneServerRequestBodyExtendParam`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CreateServerExtendParam {
    /// 0 yearly/monthly, 1 pay-per-use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charging_mode: Option<i64>,
    /// 2 month, 3 year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_num: Option<i64>,
    /// 1 pay automatically, 0 not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auto_pay: Option<i64>,
    /// 1 renew automatically, 0 not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auto_renew: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
}

/// Request body of CreateNet2CloudPhoneServer (`POST /v2/{project_id}/cloud-phone/servers`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CreateNet2CloudPhoneServerRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Number of servers to create (at most 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypair_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_param: Option<CreateServerExtendParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nics: Option<Vec<Nic>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<PublicIpParam>,
    /// Phones sharing one VIP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_count_per_ip: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_data_volume: Option<VolumeParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_share_data_volume: Option<VolumeParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width: Option<BandWidthParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Phone properties as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Response body of CreateNet2CloudPhoneServer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateNet2CloudPhoneServerResponse {
    pub request_id: String,
    pub order_id: String,
    pub product_id: String,
    pub server_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

// ---------------------------------------------------------------------------
// ChangeCloudPhoneServer
// ---------------------------------------------------------------------------

/// Extension parameters of ChangeCloudPhoneServer (request; SDK
/// `ChangeCloudPhoneServerRequestBodyExtendParam`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ChangeServerExtendParam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
}

/// Request body of ChangeCloudPhoneServer (`POST /v2/{project_id}/cloud-phone/servers/{server_id}/change`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ChangeCloudPhoneServerRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypair_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Port>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_param: Option<ChangeServerExtendParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_vpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nics: Option<Vec<Nic>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<PublicIpParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_count_per_ip: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_data_volume: Option<VolumeParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_share_data_volume: Option<VolumeParam>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width: Option<BandWidthParam>,
    /// Phone properties as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Response body of ChangeCloudPhoneServer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ChangeCloudPhoneServerResponse {
    pub request_id: String,
    pub server_id: String,
    pub job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

// ---------------------------------------------------------------------------
// RestartCloudPhoneServer
// ---------------------------------------------------------------------------

/// Request body of RestartCloudPhoneServer (`POST /v1/{project_id}/cloud-phone/servers/batch-restart`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RestartCloudPhoneServerRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Response body of RestartCloudPhoneServer.
pub type RestartCloudPhoneServerResponse = ServerJobsResponse;

// ---------------------------------------------------------------------------
// ChangeCloudPhoneServerModel
// ---------------------------------------------------------------------------

/// Extension parameters of ChangeCloudPhoneServerModel (request; SDK
/// `ChangeCloudPhoneServerModelRequestBodyExtendParam`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ChangeServerModelExtendParam {
    /// 1 pay automatically, 0 not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auto_pay: Option<i64>,
}

/// Request body of ChangeCloudPhoneServerModel (`POST /v1/{project_id}/cloud-phone/servers/change-server-model`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ChangeCloudPhoneServerModelRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_param: Option<ChangeServerModelExtendParam>,
}

/// Response body of ChangeCloudPhoneServerModel.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ChangeCloudPhoneServerModelResponse {
    pub request_id: String,
    pub order_id: String,
    pub product_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

// ---------------------------------------------------------------------------
// UpdateServerName
// ---------------------------------------------------------------------------

/// Request body of UpdateServerName (`PUT /v1/{project_id}/cloud-phone/servers/{server_id}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UpdateServerNameRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// Response body of UpdateServerName.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateServerNameResponse {
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}
