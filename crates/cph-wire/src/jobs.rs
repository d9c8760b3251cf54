//! Jobs: ListJobs and ShowJob.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::Job;

/// Query parameters of ListJobs (`GET /v1/{project_id}/cloud-phone/jobs`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// `request_id` returned when the tasks were submitted (this or `request_ids` is required).
    pub request_id: Option<String>,
    /// Up to 20 request IDs, comma-separated; wins over `request_id`.
    pub request_ids: Option<String>,
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
}

/// Response body of ListJobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListJobsResponse {
    pub request_id: String,
    pub jobs: Vec<Job>,
}

/// Response body of ShowJob (`GET /v1/{project_id}/cloud-phone/jobs/{job_id}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ShowJobResponse {
    pub request_id: String,
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
    pub phone_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Output of the task (at most 1024 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_msg: Option<String>,
}
