//! Bandwidths: ShowBandwidthDetail and UpdateBandwidth.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Bandwidth used by cloud phone servers (ShowBandwidthDetail, ShowCloudPhoneServerDetail).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Bandwidth {
    pub band_width_name: String,
    pub band_width_id: String,
    /// Size in Mbit/s.
    pub band_width_size: i32,
    /// 0 charged by bandwidth, 1 charged by traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_charge_mode: Option<i32>,
    /// 0 dedicated (per), 1 shared (whole).
    pub band_width_share_type: i32,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_time: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub update_time: String,
}

/// Query parameters of ShowBandwidthDetail (`GET /v1/{project_id}/cloud-phone/bandwidths`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowBandwidthDetailQuery {
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
}

/// Response body of ShowBandwidthDetail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ShowBandwidthDetailResponse {
    pub request_id: String,
    pub band_widths: Vec<Bandwidth>,
}

/// Request body of UpdateBandwidth (`PUT /v1/{project_id}/cloud-phone/bandwidths/{band_width_id}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UpdateBandwidthRequestBody {
    /// New size in Mbit/s (step 1 up to 300, 50 up to 1000, 500 above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_width_size: Option<i64>,
}

/// Response body of UpdateBandwidth.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateBandwidthResponse {
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}
