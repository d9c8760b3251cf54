//! Key pairs: the CPH open-access operation UpdateKeypair and the Nova key pair API
//! (`/v2.1/{project_id}/os-keypairs`, shaped like huaweicloudsdkecs v2 `Nova*Keypair*`).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::ServerJobsResponse;

// ---------------------------------------------------------------------------
// UpdateKeypair (CPH)
// ---------------------------------------------------------------------------

/// Server and its new key pair (request; SDK `ServerKeypair`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ServerKeypair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypair_name: Option<String>,
}

/// Request body of UpdateKeypair (`PUT /v1/{project_id}/cloud-phone/servers/open-access`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UpdateKeypairRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<ServerKeypair>>,
}

/// Response body of UpdateKeypair.
pub type UpdateKeypairResponse = ServerJobsResponse;

// ---------------------------------------------------------------------------
// Nova key pairs
// ---------------------------------------------------------------------------

/// Request header selecting the Nova micro-version (optional, e.g. `compute 2.10`).
pub const OPENSTACK_API_VERSION_HEADER: &str = "OpenStack-API-Version";

/// Key pair to create or import (request; SDK `NovaCreateKeypairOption`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct NovaCreateKeypairOption {
    /// Public key to import; absent = generate a new key pair (private key returned once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `ssh` or `x509` (micro-version >= 2.2).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owner user ID (micro-version >= 2.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Request body of NovaCreateKeypair (`POST /v2.1/{project_id}/os-keypairs`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct NovaCreateKeypairRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypair: Option<NovaCreateKeypairOption>,
}

/// Created key pair (SDK `NovaKeypair`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaKeypair {
    /// Fingerprint, e.g. `SHA256:...` or colon-separated MD5.
    pub fingerprint: String,
    pub name: String,
    /// Public key in OpenSSH format.
    pub public_key: String,
    /// Generated private key (PEM); only when no `public_key` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    pub user_id: String,
    /// `ssh` or `x509`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// Response body of NovaCreateKeypair.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaCreateKeypairResponse {
    pub keypair: NovaKeypair,
}

/// Query parameters of NovaListKeypairs (`GET /v2.1/{project_id}/os-keypairs`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NovaListKeypairsQuery {
    /// Page size.
    pub limit: Option<String>,
    /// Name of the last key pair of the previous page.
    pub marker: Option<String>,
}

/// Key pair summary of NovaListKeypairs (SDK `NovaSimpleKeypair`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaSimpleKeypair {
    pub fingerprint: String,
    pub name: String,
    pub public_key: String,
    /// `ssh` or `x509`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// List entry `{"keypair": {...}}` of NovaListKeypairs (SDK `NovaListKeypairsResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaListKeypairsResult {
    pub keypair: NovaSimpleKeypair,
}

/// Response body of NovaListKeypairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaListKeypairsResponse {
    pub keypairs: Vec<NovaListKeypairsResult>,
}

/// Key pair details of NovaShowKeypair (SDK `NovaKeypairDetail`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaKeypairDetail {
    pub public_key: String,
    pub name: String,
    pub fingerprint: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SS.ffffff`.
    pub created_at: String,
    /// Always `false` for a visible key pair.
    pub deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// Numeric key pair ID.
    pub id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    pub user_id: String,
    /// `ssh` or `x509`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// Response body of NovaShowKeypair (`GET /v2.1/{project_id}/os-keypairs/{keypair_name}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NovaShowKeypairResponse {
    pub keypair: NovaKeypairDetail,
}
