//! Shared wire models: the error body, job entries and paging info.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Error response body of every CPH operation (HTTP status 4xx/5xx).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Error code, e.g. `CPS.0002`.
    pub error_code: String,
    /// Human-readable error description.
    pub error_msg: String,
    pub request_id: String,
}

/// Per-phone entry of an asynchronous batch phone operation (restart, reset, stop, commands…).
///
/// On success `job_id` is set; on a per-phone failure `error_code`/`error_msg` are set instead.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneJob {
    pub phone_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// Per-server entry of an asynchronous batch server operation (restart, share files/apps, keypair…).
///
/// On success `job_id` is set; on a per-server failure `error_code`/`error_msg` are set instead.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServerJob {
    pub server_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// Response body `{request_id, jobs: [PhoneJob]}` shared by the asynchronous phone operations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PhoneJobsResponse {
    pub request_id: String,
    pub jobs: Vec<PhoneJob>,
}

/// Response body `{request_id, jobs: [ServerJob]}` shared by the asynchronous server operations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServerJobsResponse {
    pub request_id: String,
    pub jobs: Vec<ServerJob>,
}

/// Task record of ListJobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Set for phone tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<String>,
    /// Set for server tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// Deprecated alias of `server_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    pub job_id: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_time: Option<String>,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Task status: 1 running, 2 succeeded, -1 failed.
    pub status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    /// Output of the task (at most 1024 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_msg: Option<String>,
}

/// Marker-based paging info (`page_info`) of the list operations that page by marker.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PageInfo {
    /// Marker of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}
