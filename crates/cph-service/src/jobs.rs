//! Job queries and the job kinds the engine executes.

use crate::validate::pagination;
use crate::{Caller, Result, Service, ServiceError};
use cph_store::JobRow;

/// Job kinds. The string is stored in `jobs.kind`.
pub mod kind {
    pub const PHONE_CREATE: &str = "phone.create";
    pub const PHONE_RESTART: &str = "phone.restart";
    pub const PHONE_RESET: &str = "phone.reset";
    pub const PHONE_STOP: &str = "phone.stop";
    pub const PHONE_PROPERTY: &str = "phone.property";
    pub const PHONE_TRAFFIC: &str = "phone.traffic";
    /// ADB commands, data export/import: executed once the phone runtime supports them.
    pub const PHONE_COMMAND: &str = "phone.command";
    pub const SERVER_CREATE: &str = "server.create";
    pub const SERVER_RESTART: &str = "server.restart";
    pub const SERVER_CHANGE: &str = "server.change";
    pub const SERVER_CHANGE_MODEL: &str = "server.change_model";
    pub const SERVER_KEYPAIR: &str = "server.keypair";
    /// Share files and apps: executed once object storage is available.
    pub const SERVER_SHARE: &str = "server.share";
    pub const ENCODE_RESTART: &str = "encode.restart";
}

/// Maximum request ids in one ListJobs call.
pub const MAX_REQUEST_IDS: usize = 20;

impl Service {
    /// ListJobs: jobs of one request (`request_id`) or several (`request_ids`, comma-separated, ≤20).
    pub async fn list_jobs(
        &self,
        caller: &Caller,
        request_id: Option<&str>,
        request_ids: Option<&str>,
        offset: Option<&str>,
        limit: Option<&str>,
    ) -> Result<(Vec<JobRow>, i64)> {
        let (offset, limit) = pagination(offset, limit, 100)?;
        let mut ids: Vec<String> = Vec::new();
        if let Some(r) = request_id.map(str::trim).filter(|r| !r.is_empty()) {
            ids.push(r.to_string());
        }
        if let Some(list) = request_ids {
            for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                ids.push(r.to_string());
            }
        }
        let ids = crate::validate::dedup(&ids);
        if ids.is_empty() {
            return Err(ServiceError::cps("CPS.0049"));
        }
        if ids.len() > MAX_REQUEST_IDS {
            return Err(ServiceError::cps("CPS.0161"));
        }
        if ids.iter().any(|r| !crate::validate::is_valid_id(r, 64)) {
            return Err(ServiceError::cps("CPS.0264"));
        }
        let mut c = self.store().read().await?;
        let (jobs, total) =
            cph_store::jobs::list_by_requests(&mut c, &caller.project_id, &ids, offset, limit)
                .await?;
        if total == 0 {
            return Err(ServiceError::cps("CPS.0050"));
        }
        Ok((jobs, total))
    }

    /// ShowJob.
    pub async fn show_job(&self, caller: &Caller, job_id: &str) -> Result<JobRow> {
        if job_id.trim().is_empty() {
            return Err(ServiceError::cps("CPS.0048"));
        }
        let mut c = self.store().read().await?;
        cph_store::jobs::get(&mut c, &caller.project_id, job_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0011"))
    }
}
