//! Shared storage and shared apps of servers: PushShareFiles and DeleteShareFiles (both
//! `POST .../phones/share-files`, told apart by the body), ListShareFiles, PushShareApps and
//! DeleteShareApps. Each request is checked in full, then every named server gets one
//! `server.share` job; a server that is unknown, not ready or bought without shared storage is
//! reported in its own item.

use crate::commands::{check_bucket, check_object_path, is_package_name};
use crate::jobs::kind;
use crate::servers::server_operable;
use crate::validate::pagination;
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use cph_store::ServerRow;
use serde_json::{Value, json};

/// Most servers one share-files request may name.
pub const MAX_SHARE_SERVERS: usize = 100;
/// Most servers one push-share-apps request may name (documented range 1–20).
pub const MAX_SHARE_APP_SERVERS: usize = 20;
/// Longest package name of a shared app.
pub const MAX_PACKAGE_NAME: usize = 128;

/// A PushShareApps request, as received.
#[derive(Debug, Clone, Default)]
pub struct PushShareApps {
    pub package_name: Option<String>,
    /// 1 pre-installs the app on the phones, 0 (default) does not.
    pub pre_install_app: Option<i64>,
    pub bucket_name: Option<String>,
    pub object_path: Option<String>,
    pub server_ids: Option<Vec<String>>,
}

/// Which of the two operations of `POST .../phones/share-files` a body asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareFilesOp {
    Push,
    Delete,
}

impl ShareFilesOp {
    /// `file_paths` makes it a delete, otherwise a push. A body with both `file_paths` and
    /// `bucket_name`/`object_path` is ambiguous (`CPS.0155`).
    pub fn of_body(has_file_paths: bool, has_bucket_or_object: bool) -> Result<ShareFilesOp> {
        match (has_file_paths, has_bucket_or_object) {
            (true, true) => Err(ServiceError::cps_msg(
                "CPS.0155",
                "The file_paths is invalid: a request either pushes a file (bucket_name, object_path) or deletes files (file_paths), not both.",
            )),
            (true, false) => Ok(ShareFilesOp::Delete),
            (false, _) => Ok(ShareFilesOp::Push),
        }
    }

    /// The SDK operation (for authorization).
    pub fn operation(self) -> &'static str {
        match self {
            ShareFilesOp::Push => "PushShareFiles",
            ShareFilesOp::Delete => "DeleteShareFiles",
        }
    }
}

/// A path of shared storage to delete: starts with `/`, at most 4096 bytes, letters, digits,
/// `.`, `/`, `-`, space, `_` and `=` only, and no `..`.
pub fn is_share_file_path(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 4096
        && p.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'-' | b' ' | b'_' | b'=')
        })
        && !p.contains("..")
}

/// Checks `file_paths` of DeleteShareFiles (`CPS.0155`).
pub fn check_file_paths(paths: Option<&[String]>) -> Result<Vec<String>> {
    let paths = paths
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ServiceError::cps_msg("CPS.0155", "The file_paths is empty."))?;
    if let Some(bad) = paths.iter().find(|p| !is_share_file_path(p)) {
        return Err(ServiceError::cps_msg(
            "CPS.0155",
            format!(
                "The file_paths is invalid: {bad:?} must be an absolute path of at most 4096 bytes of letters, digits, . / - _ = and spaces, without '..'."
            ),
        ));
    }
    Ok(paths.to_vec())
}

/// The directory of ListShareFiles: letters, digits, `.`, `+`, `-`, `_`, `/` and `=`; starts
/// with `/` and is not only `/`; no `../` or `//`.
pub fn is_list_path(p: &str) -> bool {
    p.starts_with('/')
        && p.bytes().any(|c| c != b'/')
        && p.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-' | b'_' | b'/' | b'=')
        })
        && !p.contains("../")
        && !p.contains("//")
        && !p.ends_with("/..")
}

/// Checks `path` of ListShareFiles (`CPS.0199`).
pub fn check_list_path(p: Option<&str>) -> Result<String> {
    match p {
        Some(p) if is_list_path(p) => Ok(p.to_string()),
        Some(p) => Err(ServiceError::cps_msg(
            "CPS.0199",
            format!(
                "The path is invalid: {p:?} must start with '/', name a directory and use only letters, digits and . + - _ / =, without '../' or '//'."
            ),
        )),
        None => Err(ServiceError::cps_msg(
            "CPS.0199",
            "The path is invalid: it is missing.",
        )),
    }
}

/// Checks the `package_name` of a shared app (`CPS.0173`).
pub fn check_package_name(p: Option<&str>) -> Result<String> {
    match p {
        Some(p) if is_package_name(p, MAX_PACKAGE_NAME) => Ok(p.to_string()),
        Some(p) => Err(ServiceError::cps_msg(
            "CPS.0173",
            format!(
                "Parameter: package_name {p:?} is invalid: at most {MAX_PACKAGE_NAME} letters, digits, '_' and '.', with a '.', not starting with a digit or '_' and not ending with '.'."
            ),
        )),
        None => Err(ServiceError::cps_msg(
            "CPS.0173",
            "Parameter: package_name is missing.",
        )),
    }
}

/// Checks `pre_install_app`: absent (0), 0 or 1 (`CPS.0148`).
pub fn check_pre_install(v: Option<i64>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(v @ (0 | 1)) => Ok(v),
        Some(v) => Err(ServiceError::cps_msg(
            "CPS.0148",
            format!("Parameter: pre_install_app {v} is invalid; use 0 or 1."),
        )),
    }
}

/// Checks a `server_ids` list: not empty (`CPS.0095`), at most `max` (`CPS.0096`).
pub fn check_server_ids(ids: Option<Vec<String>>, max: usize) -> Result<Vec<String>> {
    let ids = ids
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ServiceError::cps("CPS.0095"))?;
    if ids.len() > max {
        return Err(ServiceError::cps_msg(
            "CPS.0096",
            format!("The number of servers exceeds the limit of {max}."),
        ));
    }
    Ok(ids)
}

/// Splits the comma-separated `server_ids` of ListShareFiles.
pub fn split_server_ids(raw: Option<&str>) -> Option<Vec<String>> {
    raw.map(|r| {
        r.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// True for a server bought with shared storage: its `share_data_volume` (stored JSON) names a
/// volume type.
pub fn has_share_storage(share_data_volume: &str) -> bool {
    serde_json::from_str::<Value>(share_data_volume)
        .ok()
        .and_then(|v| {
            v.get("volume_type")
                .and_then(Value::as_str)
                .map(|t| !t.is_empty())
        })
        .unwrap_or(false)
}

/// `unsupported` (`CPS.0137` for files, `CPS.0147` for apps) unless the server has shared storage.
fn share_support(server_id: &str, share_data_volume: &str, unsupported: &str) -> Result<()> {
    if has_share_storage(share_data_volume) {
        return Ok(());
    }
    let base = cph_catalog::error(unsupported)
        .map(|d| d.message.as_str())
        .unwrap_or("Server does not support shared storage.");
    Err(ServiceError::cps_msg(
        unsupported,
        format!(
            "{base} Server {server_id} was bought without shared storage (server_share_data_volume)."
        ),
    ))
}

/// A server that can take shared files or apps now.
fn share_target(s: &ServerRow, unsupported: &str) -> Result<()> {
    server_operable(s)?;
    share_support(&s.server_id, &s.share_data_volume, unsupported)
}

impl Service {
    async fn share_jobs(
        &self,
        caller: &Caller,
        request_id: &str,
        server_ids: Vec<String>,
        payload: Value,
        unsupported: &'static str,
    ) -> Result<Vec<BatchItem>> {
        self.server_batch(
            caller,
            request_id,
            kind::SERVER_SHARE,
            server_ids,
            payload,
            |s| share_target(s, unsupported),
        )
        .await
    }

    /// PushShareFiles: unpacks a tar file of object storage into the servers' shared storage.
    pub async fn push_share_files(
        &self,
        caller: &Caller,
        request_id: &str,
        bucket_name: Option<&str>,
        object_path: Option<&str>,
        server_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let bucket = check_bucket(bucket_name)?;
        let object = check_object_path(object_path, true)?;
        let ids = check_server_ids(server_ids, MAX_SHARE_SERVERS)?;
        let payload = json!({
            "operation": "push_share_files",
            "object": {"bucket_name": bucket, "object_path": object},
        });
        self.share_jobs(caller, request_id, ids, payload, "CPS.0137")
            .await
    }

    /// DeleteShareFiles: removes paths from the servers' shared storage.
    pub async fn delete_share_files(
        &self,
        caller: &Caller,
        request_id: &str,
        file_paths: Option<&[String]>,
        server_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let paths = check_file_paths(file_paths)?;
        let ids = check_server_ids(server_ids, MAX_SHARE_SERVERS)?;
        let payload = json!({"operation": "delete_share_files", "file_paths": paths});
        self.share_jobs(caller, request_id, ids, payload, "CPS.0137")
            .await
    }

    /// ListShareFiles: one job per server listing a directory of its shared storage.
    pub async fn list_share_files(
        &self,
        caller: &Caller,
        request_id: &str,
        server_ids: Option<&str>,
        path: Option<&str>,
        offset: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Vec<BatchItem>> {
        let (offset, limit) = pagination(offset, limit, 100)?;
        let ids = check_server_ids(split_server_ids(server_ids), MAX_SHARE_SERVERS)?;
        let path = check_list_path(path)?;
        let payload = json!({
            "operation": "list_share_files",
            "path": path,
            "offset": offset,
            "limit": limit,
        });
        self.share_jobs(caller, request_id, ids, payload, "CPS.0137")
            .await
    }

    /// PushShareApps: unpacks an app's tar file into the servers' shared app storage.
    pub async fn push_share_apps(
        &self,
        caller: &Caller,
        request_id: &str,
        req: PushShareApps,
    ) -> Result<Vec<BatchItem>> {
        let package = check_package_name(req.package_name.as_deref())?;
        let pre_install = check_pre_install(req.pre_install_app)?;
        let bucket = check_bucket(req.bucket_name.as_deref())?;
        let object = check_object_path(req.object_path.as_deref(), true)?;
        let ids = check_server_ids(req.server_ids, MAX_SHARE_APP_SERVERS)?;
        let payload = json!({
            "operation": "push_share_apps",
            "package_name": package,
            "pre_install_app": pre_install,
            "object": {"bucket_name": bucket, "object_path": object},
        });
        self.share_jobs(caller, request_id, ids, payload, "CPS.0147")
            .await
    }

    /// DeleteShareApps: removes a shared app from the servers.
    pub async fn delete_share_apps(
        &self,
        caller: &Caller,
        request_id: &str,
        package_name: Option<&str>,
        server_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let package = check_package_name(package_name)?;
        let ids = check_server_ids(server_ids, MAX_SHARE_SERVERS)?;
        let payload = json!({"operation": "delete_share_apps", "package_name": package});
        self.share_jobs(caller, request_id, ids, payload, "CPS.0147")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(ServiceError::Api { code, .. }) => code,
            Err(e) => panic!("unexpected {e}"),
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn share_files_op_of_body() {
        assert_eq!(
            ShareFilesOp::of_body(true, false).unwrap(),
            ShareFilesOp::Delete
        );
        assert_eq!(
            ShareFilesOp::of_body(false, true).unwrap(),
            ShareFilesOp::Push
        );
        assert_eq!(
            ShareFilesOp::of_body(false, false).unwrap(),
            ShareFilesOp::Push
        );
        assert_eq!(code_of(ShareFilesOp::of_body(true, true)), "CPS.0155");
        assert_eq!(ShareFilesOp::Push.operation(), "PushShareFiles");
        assert_eq!(ShareFilesOp::Delete.operation(), "DeleteShareFiles");
    }

    #[test]
    fn delete_paths() {
        assert_eq!(
            check_file_paths(Some(&v(&["/data/app", "/data/data/test.apk"]))).unwrap(),
            v(&["/data/app", "/data/data/test.apk"])
        );
        assert!(check_file_paths(Some(&v(&["/data/my file=1_a-b.txt"]))).is_ok());
        assert_eq!(code_of(check_file_paths(None)), "CPS.0155");
        assert_eq!(code_of(check_file_paths(Some(&[]))), "CPS.0155");
        for bad in [
            "data/app",
            "/data/../etc",
            "/data/..",
            "/data/a+b",
            "/data/数据",
            "/data/a*",
            "",
        ] {
            assert_eq!(
                code_of(check_file_paths(Some(&v(&["/data/ok", bad])))),
                "CPS.0155",
                "{bad}"
            );
        }
        let long = format!("/{}", "a".repeat(4095));
        assert!(check_file_paths(Some(std::slice::from_ref(&long))).is_ok());
        assert_eq!(
            code_of(check_file_paths(Some(&[format!("{long}a")]))),
            "CPS.0155"
        );
    }

    #[test]
    fn list_paths() {
        for ok in ["/data/data", "/data", "/cache/a+b=c_d-e.f", "/data/data/"] {
            assert!(check_list_path(Some(ok)).is_ok(), "{ok}");
        }
        assert_eq!(code_of(check_list_path(None)), "CPS.0199");
        for bad in [
            "",
            "/",
            "//",
            "data",
            "/data//x",
            "/data/../x",
            "/data/..",
            "/data/a b",
            "/data/*",
            "/数据",
        ] {
            assert_eq!(code_of(check_list_path(Some(bad))), "CPS.0199", "{bad}");
        }
    }

    #[test]
    fn package_and_flags() {
        assert_eq!(
            check_package_name(Some("com.miniteck.miniworld")).unwrap(),
            "com.miniteck.miniworld"
        );
        assert_eq!(code_of(check_package_name(None)), "CPS.0173");
        assert_eq!(code_of(check_package_name(Some("nodot"))), "CPS.0173");
        assert_eq!(code_of(check_package_name(Some("9a.b"))), "CPS.0173");
        assert_eq!(
            code_of(check_package_name(Some(&format!("a.{}", "b".repeat(127))))),
            "CPS.0173"
        );
        assert_eq!(check_pre_install(None).unwrap(), 0);
        assert_eq!(check_pre_install(Some(1)).unwrap(), 1);
        assert_eq!(check_pre_install(Some(0)).unwrap(), 0);
        assert_eq!(code_of(check_pre_install(Some(2))), "CPS.0148");
        assert_eq!(code_of(check_pre_install(Some(-1))), "CPS.0148");
    }

    #[test]
    fn server_id_lists() {
        assert_eq!(code_of(check_server_ids(None, 20)), "CPS.0095");
        assert_eq!(code_of(check_server_ids(Some(vec![]), 20)), "CPS.0095");
        let twenty: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
        assert!(check_server_ids(Some(twenty.clone()), 20).is_ok());
        let mut more = twenty;
        more.push("x".into());
        assert_eq!(code_of(check_server_ids(Some(more), 20)), "CPS.0096");
        assert_eq!(
            split_server_ids(Some("a, b,,c")).unwrap(),
            v(&["a", "b", "c"])
        );
        assert_eq!(split_server_ids(Some(",")).unwrap(), Vec::<String>::new());
        assert_eq!(split_server_ids(None), None);
    }

    #[test]
    fn share_storage_of_servers() {
        assert!(!has_share_storage("{}"));
        assert!(!has_share_storage(""));
        assert!(!has_share_storage(r#"{"volume_type":""}"#));
        assert!(has_share_storage(r#"{"volume_type":"SSD","size":200}"#));
        assert_eq!(code_of(share_support("s1", "{}", "CPS.0137")), "CPS.0137");
        assert_eq!(code_of(share_support("s1", "{}", "CPS.0147")), "CPS.0147");
        assert!(share_support("s1", r#"{"volume_type":"GPSSD","size":64}"#, "CPS.0137").is_ok());
    }
}
