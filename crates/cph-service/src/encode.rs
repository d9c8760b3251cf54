//! Encode servers: ListEncodeServers and RestartEncodeServer.
//!
//! Every server has one encode server (created with it). Status codes (reference 5.6.1):
//! 1 running, 2 abnormal, 3 restarting, 4 frozen, 5 shut down, 0/100/1014 creating. A restart is
//! an `encode.restart` job: the encode server is restarting (3) while the job runs and running
//! (1) after it succeeded, abnormal (2) after it failed.

use crate::servers::server_operable;
use crate::validate::{dedup, is_valid_id, pagination};
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use cph_domain::ids;
use cph_store::jobs::NewJob;
use cph_store::network::{EncodeServer, EncodeServerFilter};
use std::collections::{HashMap, HashSet};

/// Being created (the reference also reports 100 and 1014 as creating).
pub const CREATING: i64 = 0;
pub const RUNNING: i64 = 1;
pub const ABNORMAL: i64 = 2;
pub const RESTARTING: i64 = 3;
pub const FROZEN: i64 = 4;
pub const SHUT_DOWN: i64 = 5;
/// Status codes the reference lists (for the `status` filter).
pub const STATUSES: [i64; 8] = [
    CREATING, RUNNING, ABNORMAL, RESTARTING, FROZEN, SHUT_DOWN, 100, 1014,
];
/// Most encode servers in one restart request.
pub const MAX_RESTART: usize = 100;

fn is_creating(status: i64) -> bool {
    matches!(status, 0 | 100 | 1014)
}

/// Parses an optional integer filter that must take one of `allowed`.
fn int_filter(raw: Option<&str>, allowed: &[i64], code: &str) -> Result<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(v) if allowed.contains(&v) => Ok(Some(v)),
            _ => Err(ServiceError::cps(code)),
        },
    }
}

impl Service {
    /// ListEncodeServers, filtered by `type`, `status` and `server_id`; returns the page and the
    /// number of matches.
    pub async fn list_encode_servers(
        &self,
        caller: &Caller,
        offset: Option<&str>,
        limit: Option<&str>,
        encode_type: Option<&str>,
        status: Option<&str>,
        server_id: Option<&str>,
    ) -> Result<(Vec<EncodeServer>, i64)> {
        let (offset, limit) = pagination(offset, limit, 100)?;
        let encode_type = int_filter(encode_type, &[0, 1], "CPS.0116")?;
        let status = int_filter(status, &STATUSES, "CPS.0010")?;
        let server_id = match server_id.filter(|s| !s.is_empty()) {
            Some(s) if !is_valid_id(s, 64) => return Err(ServiceError::cps("CPS.0016")),
            other => other.map(str::to_string),
        };
        let f = EncodeServerFilter {
            encode_type,
            status,
            server_id,
        };
        let mut c = self.store().read().await?;
        Ok(
            cph_store::network::list_encode_servers(&mut c, &caller.project_id, &f, offset, limit)
                .await?,
        )
    }

    /// RestartEncodeServer: one `encode.restart` job per encode server; unknown or unavailable
    /// encode servers fail as items.
    pub async fn restart_encode_servers(
        &self,
        caller: &Caller,
        request_id: &str,
        ids_in: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let wanted = ids_in.filter(|v| !v.is_empty()).ok_or_else(|| {
            ServiceError::cps_msg(
                "CPS.0122",
                "Parameter: Encode server id list is invalid: it is empty.",
            )
        })?;
        if wanted.len() > MAX_RESTART {
            return Err(ServiceError::cps_msg(
                "CPS.0122",
                format!("Parameter: Encode server id list is invalid: at most {MAX_RESTART} ids."),
            ));
        }
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        let mut found: HashMap<String, EncodeServer> = HashMap::new();
        for id in dedup(&wanted) {
            if !is_valid_id(&id, 64) {
                continue;
            }
            if let Some(e) =
                cph_store::network::get_encode_server(&mut tx, &caller.project_id, &id).await?
            {
                found.insert(id, e);
            }
        }
        let server_ids: Vec<String> = dedup(
            &found
                .values()
                .map(|e| e.server_id.clone())
                .collect::<Vec<_>>(),
        );
        let servers: HashMap<String, cph_store::ServerRow> =
            cph_store::servers::get_many(&mut tx, &caller.project_id, &server_ids)
                .await?
                .into_iter()
                .map(|s| (s.server_id.clone(), s))
                .collect();
        let mut out = Vec::with_capacity(wanted.len());
        let mut jobs = Vec::new();
        let mut seen = HashSet::new();
        for id in wanted {
            if !is_valid_id(&id, 64) {
                out.push(BatchItem::failed(&id, &ServiceError::cps("CPS.0121")));
                continue;
            }
            let Some(e) = found.get(&id) else {
                out.push(BatchItem::failed(&id, &ServiceError::cps("CPS.0123")));
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            let check = match servers.get(&e.server_id) {
                None => Err(ServiceError::cps("CPS.0123")),
                Some(s) => {
                    server_operable(s).map_err(|err| match err.code_and_message().0.as_str() {
                        "CPS.0099" => ServiceError::cps("CPS.0124"),
                        "CPS.0317" => ServiceError::cps("CPS.0195"),
                        _ => err,
                    })
                }
            }
            .and_then(|()| {
                if is_creating(e.status) {
                    Err(ServiceError::cps("CPS.0124"))
                } else if e.status == FROZEN {
                    Err(ServiceError::cps("CPS.0195"))
                } else {
                    Ok(())
                }
            });
            if let Err(err) = check {
                out.push(BatchItem::failed(&id, &err));
                continue;
            }
            let job_id = ids::hex_id();
            jobs.push(NewJob {
                job_id: job_id.clone(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: crate::jobs::kind::ENCODE_RESTART.into(),
                phone_id: None,
                server_id: Some(e.server_id.clone()),
                encode_server_id: Some(id.clone()),
                lock_key: format!("encode:{id}"),
                payload: "{}".into(),
            });
            out.push(BatchItem::job(&id, &job_id));
        }
        if !jobs.is_empty() {
            cph_store::jobs::insert(&mut tx, &jobs, now).await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            self.wake_jobs();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(int_filter(None, &STATUSES, "CPS.0010").unwrap(), None);
        assert_eq!(int_filter(Some(""), &STATUSES, "CPS.0010").unwrap(), None);
        assert_eq!(
            int_filter(Some("1014"), &STATUSES, "CPS.0010").unwrap(),
            Some(1014)
        );
        assert_eq!(
            int_filter(Some("3"), &STATUSES, "CPS.0010").unwrap(),
            Some(3)
        );
        for bad in ["6", "-1", "x", "1.0"] {
            let e = int_filter(Some(bad), &STATUSES, "CPS.0010").unwrap_err();
            assert_eq!(e.code_and_message().0, "CPS.0010");
        }
        assert_eq!(int_filter(Some("1"), &[0, 1], "CPS.0116").unwrap(), Some(1));
        assert_eq!(
            int_filter(Some("2"), &[0, 1], "CPS.0116")
                .unwrap_err()
                .code_and_message()
                .0,
            "CPS.0116"
        );
    }

    #[test]
    fn creating_codes() {
        assert!(is_creating(0) && is_creating(100) && is_creating(1014));
        assert!(!is_creating(RUNNING) && !is_creating(ABNORMAL) && !is_creating(SHUT_DOWN));
    }
}
