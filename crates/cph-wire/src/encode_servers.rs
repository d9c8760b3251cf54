//! Encode servers: ListEncodeServers and RestartEncodeServer.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Access endpoint of an encode server port.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EncodeServerAccessInfo {
    pub listen_port: i32,
    /// Public IP (deprecated, same as `public_ip`).
    pub access_ip: String,
    /// Private IP (deprecated, same as `server_ip`).
    pub intranet_ip: String,
    pub public_ip: String,
    pub server_ip: String,
    /// Public port.
    pub access_port: i32,
    /// Port type: `adb`, `vnc`, `cph_app_server`, `cph_h5_server` or a user-defined name.
    #[serde(rename = "type")]
    pub r#type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ipv6: Option<String>,
}

/// Encode server of ListEncodeServers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EncodeServer {
    pub encode_server_name: String,
    pub encode_server_id: String,
    pub encode_server_ip: String,
    pub server_id: String,
    pub keypair_name: String,
    /// 0 server, 1 container.
    #[serde(rename = "type")]
    pub r#type: i32,
    /// 1 running; 2 abnormal; 3 restarting; 0, 4, 5 creating.
    pub status: i32,
    pub access_infos: Vec<EncodeServerAccessInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_server_ipv6: Option<String>,
}

/// Query parameters of ListEncodeServers (`GET /v1/{project_id}/cloud-phone/encode-servers`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListEncodeServersQuery {
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
    /// 0 server, 1 container.
    #[serde(rename = "type")]
    pub r#type: Option<String>,
    /// 1 running, 2 abnormal, 3 restarting, 4 frozen, 5 shut down, 100/1014/0 creating.
    pub status: Option<String>,
    pub server_id: Option<String>,
}

/// Response body of ListEncodeServers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListEncodeServersResponse {
    pub request_id: String,
    pub encode_servers: Vec<EncodeServer>,
}

/// Request body of RestartEncodeServer (`POST /v1/{project_id}/cloud-phone/encode-servers/batch-restart`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RestartEncodeServerRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_server_ids: Option<Vec<String>>,
}

/// Per-encode-server entry of RestartEncodeServer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EncodeServerJob {
    pub encode_server_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// Response body of RestartEncodeServer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestartEncodeServerResponse {
    pub request_id: String,
    pub jobs: Vec<EncodeServerJob>,
}
