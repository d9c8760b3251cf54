//! Phone connection info: BatchShowPhoneConnectInfos (`POST .../phones/batch-connection`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Request body of BatchShowPhoneConnectInfos (SDK `ConnectionRequestBody`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ConnectionRequestBody {
    /// At most 10 phone IDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    /// Client platform: `ANDROID`, `WINDOWS`, `H5_MOBILE`, `H5_PC` or `IOS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_type: Option<String>,
}

/// Access details of one phone session.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConnectInfoAccessInfo {
    /// Public access IP of the phone.
    pub access_ip: String,
    /// Private access IP of the phone.
    pub intranet_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_ipv6: Option<String>,
    pub access_port: i32,
    /// Session ID of this connection.
    pub session_id: String,
    /// Timestamp (a string).
    pub timestamp: String,
    /// Signed ticket authorising the session.
    pub ticket: String,
}

/// Connection info of one phone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConnectInfo {
    pub phone_id: String,
    pub access_info: ConnectInfoAccessInfo,
}

/// Per-phone error of BatchShowPhoneConnectInfos.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ConnectErrorInfo {
    pub phone_id: String,
    pub error_code: String,
    pub error_msg: String,
}

/// Response body of BatchShowPhoneConnectInfos.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BatchShowPhoneConnectInfosResponse {
    pub request_id: String,
    pub connect_infos: Vec<ConnectInfo>,
    pub errors: Vec<ConnectErrorInfo>,
}
