//! ADB commands: PushFile, InstallApk, UninstallApk, RunShellCommand (all `POST .../phones/commands`,
//! told apart by `command`) and RunSyncCommand (`POST .../phones/sync-commands`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::PhoneJobsResponse;

/// Merged request body of `POST /v1/{project_id}/cloud-phone/phones/commands` covering PushFile,
/// InstallApk, UninstallApk and RunShellCommand; the operation is chosen by `command`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PhoneCommandBody {
    /// `push`, `install`, `install-multiple`, `uninstall` or `shell`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Command argument: OBS tar/apk URL(s) (`obs://bucket/path`), package name or shell command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Target phones; takes precedence over `server_ids` when both are given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    /// Target servers (all their phones); used when `phone_ids` is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Request body of PushFile (`command` = `push`, `content` = `obs://bucket/path/file.tar`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PushFileRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Request body of InstallApk (`command` = `install` or `install-multiple`, `content` = options and
/// OBS apk URL(s) separated by spaces).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct InstallApkRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Request body of UninstallApk (`command` = `uninstall`, `content` = package name).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct UninstallApkRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Request body of RunShellCommand (`command` = `shell`, `content` = the shell command).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RunShellCommandRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Request body of RunSyncCommand (`POST /v1/{project_id}/cloud-phone/phones/sync-commands`,
/// `command` = `shell`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct RunSyncCommandRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_ids: Option<Vec<String>>,
}

/// Response body of PushFile.
pub type PushFileResponse = PhoneJobsResponse;
/// Response body of InstallApk.
pub type InstallApkResponse = PhoneJobsResponse;
/// Response body of UninstallApk.
pub type UninstallApkResponse = PhoneJobsResponse;
/// Response body of RunShellCommand.
pub type RunShellCommandResponse = PhoneJobsResponse;

/// Per-phone result of RunSyncCommand.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RunSyncCommandJob {
    pub phone_id: String,
    pub job_id: String,
    /// Task status: 1 running, 2 succeeded, -1 failed.
    pub status: i32,
    pub error_code: String,
    pub error_msg: String,
    /// Command output (at most 1024 bytes).
    pub execute_msg: String,
}

/// Response body of RunSyncCommand.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RunSyncCommandResponse {
    pub request_id: String,
    pub jobs: Vec<RunSyncCommandJob>,
}
