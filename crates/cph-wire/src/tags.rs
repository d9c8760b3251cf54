//! Tags of `cph-server` resources: project tags, resource tags, resource instances, tag actions.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Key/value tag (response side; SDK `Tag`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Key with its values (response side; SDK `Tags`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Tags {
    pub key: String,
    pub values: Vec<String>,
}

/// Key/value tag (request side; SDK `Tag`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct TagParam {
    /// At most 127 characters, not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// At most 255 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Key with its values, used as a filter (request side; SDK `Tags`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct TagsParam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// At most 10 values, OR-ed; empty = any value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// Field match of ListResourceInstances (request; SDK `Match`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct Match {
    /// Only `resource_name` is supported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Exact value to match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Query parameters of ListProjectTags (`GET /v1/{project_id}/{resource_type}/tags`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProjectTagsQuery {
    /// Page size, 1..=100 (default 100).
    pub limit: Option<String>,
    /// Offset, integer >= 0 (default 0).
    pub offset: Option<String>,
}

/// Response body of ListProjectTags.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListProjectTagsResponse {
    pub tags: Vec<Tags>,
    /// Total number of tag keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_count: Option<i32>,
}

/// Response body of ListResourceTags (`GET /v1/{project_id}/{resource_type}/{resource_id}/tags`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListResourceTagsResponse {
    pub tags: Vec<Tag>,
}

/// Request body of ListResourceInstances (`POST /v1/{project_id}/{resource_type}/resource_instances/action`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct ListResourceInstancesRequestBody {
    /// `filter` (paged list) or `count` (total only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Offset as a decimal string (filter only, default `"0"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// Page size as a decimal string, 1..=1000 (filter only, default `"1000"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `true` = only resources without any tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_any_tag: Option<bool>,
    /// At most 10 keys; keys are AND-ed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagsParam>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<Match>>,
}

/// Tagged resource of ListResourceInstances.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    pub resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_detail: Option<String>,
    pub resource_name: String,
    pub tags: Vec<Tag>,
}

/// Response body of ListResourceInstances (`resources` is empty for `action` = `count`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListResourceInstancesResponse {
    pub resources: Vec<Resource>,
    pub total_count: i32,
}

/// Merged request body of `POST /v1/{project_id}/{resource_type}/{resource_id}/tags/action`
/// covering BatchCreateTags (`action` = `create`) and BatchDeleteTags (`action` = `delete`).
/// Both operations answer 204 without a body.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct TagsActionBody {
    /// `create` or `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagParam>>,
}

/// Request body of BatchCreateTags (`action` = `create`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct BatchCreateTagsRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagParam>>,
}

/// Request body of BatchDeleteTags (`action` = `delete`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct BatchDeleteTagsRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagParam>>,
}
