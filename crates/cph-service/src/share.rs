//! Shared storage and shared apps of servers: PushShareFiles and DeleteShareFiles (both
//! `POST .../phones/share-files`, told apart by the body), ListShareFiles, PushShareApps and
//! DeleteShareApps. Each request is checked in full, then every named server gets one
//! `server.share` job; a server that is unknown, not ready or bought without shared storage is
//! reported in its own item.

use crate::commands::{check_bucket, check_object_path, is_package_name};
use crate::engine::{failed, truncate_utf8};
use crate::jobs::kind;
use crate::objects::{StagedArchive, Transfer, TransferSlot, done};
use crate::servers::server_operable;
use crate::validate::pagination;
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use cph_adb::client::{AdbClient, quote};
use cph_store::jobs::Outcome;
use cph_store::{JobRow, ServerRow};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeSet;

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

/// Most paths one DeleteShareFiles request may name.
pub const MAX_DELETE_PATHS: usize = 100;

/// A path of shared storage's file trees: strictly below `/data` or `/cache` (what
/// PushShareFiles writes; the trees themselves and the shared apps are not files to delete).
pub fn is_share_tree_path(p: &str) -> bool {
    let p = p.trim_end_matches('/');
    ["/data/", "/cache/"].iter().any(|root| {
        p.strip_prefix(root)
            .is_some_and(|rest| rest.split('/').any(|c| !c.is_empty() && c != "."))
    })
}

/// Checks `file_paths` of DeleteShareFiles (`CPS.0155`).
pub fn check_file_paths(paths: Option<&[String]>) -> Result<Vec<String>> {
    let paths = paths
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ServiceError::cps_msg("CPS.0155", "The file_paths is empty."))?;
    if paths.len() > MAX_DELETE_PATHS {
        return Err(ServiceError::cps_msg(
            "CPS.0155",
            format!("The file_paths is invalid: at most {MAX_DELETE_PATHS} paths per request."),
        ));
    }
    if let Some(bad) = paths.iter().find(|p| !is_share_file_path(p)) {
        return Err(ServiceError::cps_msg(
            "CPS.0155",
            format!(
                "The file_paths is invalid: {bad:?} must be an absolute path of at most 4096 bytes of letters, digits, . / - _ = and spaces, without '..'."
            ),
        ));
    }
    if let Some(bad) = paths.iter().find(|p| !is_share_tree_path(p)) {
        return Err(ServiceError::cps_msg(
            "CPS.0155",
            format!(
                "The file_paths is invalid: {bad:?} is not below /data or /cache, the trees of shared storage."
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

/// Where the phones of a server see its shared storage (read-only).
pub const SHARE_MOUNT: &str = cph_runtime::hosting::SHARE_MOUNT;
/// Largest tar PushShareFiles and PushShareApps accept (PushFile's limit).
pub const MAX_SHARE_ARCHIVE: u64 = crate::objects::DATA_ARCHIVE_MAX_BYTES;
/// Largest job message of ListShareFiles (a JSON document; entries beyond it are left out
/// and `truncated` is set).
pub const MAX_LIST_MSG: usize = 32 * 1024;
/// Phones a shared app is installed on or removed from at the same time.
const APP_PARALLELISM: usize = 8;
/// Largest bookkeeping file of a shared app (the phones it was pre-installed on).
const MAX_PREINSTALLED_FILE: u64 = 1 << 20;
/// Most APK files of one shared app.
const MAX_APP_APKS: usize = 50;

/// The volume directory of a shared app.
fn app_dir(package: &str) -> String {
    format!("/apps/{package}")
}

/// The volume file listing the phones a shared app was pre-installed on, one id per line.
fn preinstalled_file(package: &str) -> String {
    format!("/apps/.preinstalled/{package}")
}

fn file_type(mode: u32) -> &'static str {
    match mode & 0o170_000 {
        0o040_000 => "directory",
        0o120_000 => "link",
        0o100_000 => "file",
        _ => "other",
    }
}

fn volume_failed(what: &str, e: impl std::fmt::Display) -> Outcome {
    crate::objects::sub_job_failed(
        &format!("the shared storage could not {what}."),
        e.to_string(),
    )
}

/// Runs `cmd` in the volume's shell; a non-zero exit is an error with the output.
async fn volume_sh(
    volume: &AdbClient,
    what: &str,
    cmd: &str,
) -> std::result::Result<String, Outcome> {
    let out = volume
        .shell(cmd)
        .await
        .map_err(|e| volume_failed(what, e))?;
    if out.exit_code != Some(0) {
        let mut text = out.stdout_text();
        text.push_str(&out.stderr_text());
        return Err(volume_failed(what, text.trim_end()));
    }
    Ok(out.stdout_text())
}

/// Reads a small file of the volume (`None` if it does not exist).
async fn read_small(
    volume: &AdbClient,
    path: &str,
) -> std::result::Result<Option<String>, Outcome> {
    match volume.stat(path).await {
        Ok(None) => return Ok(None),
        Ok(Some(st)) if st.size > MAX_PREINSTALLED_FILE => {
            return Err(volume_failed("be read", format!("{path} is too large")));
        }
        Ok(Some(_)) => {}
        Err(e) => return Err(volume_failed("be read", e)),
    }
    let mut buf = Vec::new();
    volume
        .pull(path, &mut buf)
        .await
        .map_err(|e| volume_failed("be read", e))?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Ids listed one per line.
fn id_lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Per-phone failures as a job message (`phone: reason` lines), cut to the message limit.
fn failures_msg(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(p, why)| format!("{p}: {why}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Service {
    /// Runs one `server.share` job: the operation named by its payload on the server's shared
    /// storage (and, for shared apps, on the server's phones).
    pub(crate) async fn execute_share(&self, job: &JobRow, payload: &Value) -> Outcome {
        let server_id = job.server_id.clone().unwrap_or_default();
        let r = match payload["operation"].as_str().unwrap_or("") {
            "push_share_files" => self.push_share_files_job(job, &server_id, payload).await,
            "list_share_files" => self.list_share_files_job(&server_id, payload).await,
            "delete_share_files" => self.delete_share_files_job(&server_id, payload).await,
            "push_share_apps" => self.push_share_apps_job(job, &server_id, payload).await,
            "delete_share_apps" => self.delete_share_apps_job(&server_id, payload).await,
            other => Err(failed(
                "CPS.0323",
                &format!("This api is not supported: unknown shared-storage operation {other:?}."),
            )),
        };
        match r {
            Ok(o) | Err(o) => o,
        }
    }

    /// Spools a tar of object storage for the shared storage of `server_id`, waits for a
    /// transfer slot of the server's host and takes the spool's validation verdict. The slot
    /// is held while the returned archive lives.
    async fn staged_share_archive(
        &self,
        job: &JobRow,
        server_id: &str,
        object: &Value,
        opts: cph_archive::ApplyOptions,
    ) -> std::result::Result<StagedArchive, Outcome> {
        let owner = self.bucket_owner(&job.project_id).await?;
        self.staged_archive(&owner, object, opts, Transfer::ShareOf(server_id))
            .await
    }

    async fn push_share_files_job(
        &self,
        job: &JobRow,
        server_id: &str,
        payload: &Value,
    ) -> std::result::Result<Outcome, Outcome> {
        let opts = cph_archive::ApplyOptions {
            max_bytes: MAX_SHARE_ARCHIVE,
            ..cph_archive::ApplyOptions::phone_data()
        };
        let staged = self
            .staged_share_archive(job, server_id, &payload["object"], opts)
            .await?;
        let volume = self.share_client(server_id).await?;
        let r = staged
            .tar
            .apply(&volume)
            .await
            .map_err(|e| volume_failed("take the archive", e))?;
        Ok(done(format!(
            "unpacked {} files, {} directories, {} links, {} bytes into the shared storage (phones see it at {SHARE_MOUNT})",
            r.files, r.dirs, r.links, r.bytes
        )))
    }

    async fn list_share_files_job(
        &self,
        server_id: &str,
        payload: &Value,
    ) -> std::result::Result<Outcome, Outcome> {
        let path = payload["path"].as_str().unwrap_or("/");
        let offset = payload["offset"].as_u64().unwrap_or(0) as usize;
        let limit = payload["limit"].as_u64().unwrap_or(100) as usize;
        let volume = self.share_client(server_id).await?;
        let invalid = |why: &str| {
            failed(
                "CPS.0199",
                &format!("The path is invalid: {path} {why} in the shared storage."),
            )
        };
        match volume.stat(path).await {
            Ok(None) => return Err(invalid("does not exist")),
            Ok(Some(st)) if st.mode & 0o170_000 != 0o040_000 => {
                return Err(invalid("is not a directory"));
            }
            Ok(Some(_)) => {}
            Err(e) => return Err(volume_failed("be listed", e)),
        }
        let mut entries = volume
            .list(path)
            .await
            .map_err(|e| volume_failed("be listed", e))?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let total = entries.len();
        let mut files: Vec<Value> = entries
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| {
                json!({
                    "name": e.name,
                    "type": file_type(e.stat.mode),
                    "size": e.stat.size,
                    "mode": format!("{:04o}", e.stat.mode & 0o7777),
                    "modified": e.stat.mtime,
                })
            })
            .collect();
        let mut truncated = false;
        loop {
            let msg = json!({
                "path": path,
                "total": total,
                "offset": offset,
                "files": files,
                "truncated": truncated,
            })
            .to_string();
            if msg.len() <= MAX_LIST_MSG || files.is_empty() {
                return Ok(Outcome {
                    status: cph_domain::JobStatus::Succeeded.code(),
                    error_code: None,
                    error_msg: None,
                    execute_msg: Some(msg),
                });
            }
            files.truncate(files.len() / 2);
            truncated = true;
        }
    }

    async fn delete_share_files_job(
        &self,
        server_id: &str,
        payload: &Value,
    ) -> std::result::Result<Outcome, Outcome> {
        let paths: Vec<String> = payload["file_paths"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // Checked again: a job is only as trustworthy as its payload.
        if let Some(bad) = paths
            .iter()
            .find(|p| !is_share_file_path(p) || !is_share_tree_path(p))
        {
            return Err(failed(
                "CPS.0155",
                &format!("The file_paths is invalid: {bad:?}."),
            ));
        }
        let volume = self.share_client(server_id).await?;
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for p in &paths {
            match volume.lstat(p).await {
                Ok(Some(_)) => present.push(p.clone()),
                Ok(None) => absent.push(p.clone()),
                Err(e) => return Err(volume_failed("be read", e)),
            }
        }
        if !present.is_empty() {
            let args: Vec<String> = present.iter().map(|p| quote(p)).collect();
            volume_sh(
                &volume,
                "delete the files",
                &format!("rm -rf -- {}", args.join(" ")),
            )
            .await?;
        }
        let mut msg = format!("deleted {} of {} paths", present.len(), paths.len());
        if !absent.is_empty() {
            msg.push_str(&format!("; not found: {}", absent.join(", ")));
        }
        Ok(done(msg))
    }

    /// The running phones of a server, and the others (which cannot take an app now).
    async fn server_phones(
        &self,
        server_id: &str,
    ) -> std::result::Result<(Vec<String>, Vec<String>), Outcome> {
        let phones = {
            let mut c = self
                .store()
                .read()
                .await
                .map_err(|e| failed("CPS.0003", &format!("Service internal error: {e}.")))?;
            cph_store::phones::of_server(&mut c, server_id)
                .await
                .map_err(|e| failed("CPS.0003", &format!("Service internal error: {e}.")))?
        };
        let (running, other): (Vec<_>, Vec<_>) = phones
            .into_iter()
            .partition(|p| p.status == cph_domain::PhoneStatus::Running.code());
        Ok((
            running.into_iter().map(|p| p.phone_id).collect(),
            other.into_iter().map(|p| p.phone_id).collect(),
        ))
    }

    /// Writes the list of phones a shared app is pre-installed on (removes it when empty).
    async fn write_preinstalled(
        &self,
        volume: &AdbClient,
        package: &str,
        phones: &BTreeSet<String>,
    ) -> std::result::Result<(), Outcome> {
        let file = preinstalled_file(package);
        if phones.is_empty() {
            volume_sh(volume, "be updated", &format!("rm -f -- {}", quote(&file))).await?;
            return Ok(());
        }
        let text: String = phones.iter().map(|p| format!("{p}\n")).collect();
        volume
            .push(
                text.as_bytes(),
                &file,
                0o100_644,
                (self.now_ms() / 1000) as u32,
            )
            .await
            .map_err(|e| volume_failed("be updated", e))?;
        Ok(())
    }

    async fn push_share_apps_job(
        &self,
        job: &JobRow,
        server_id: &str,
        payload: &Value,
    ) -> std::result::Result<Outcome, Outcome> {
        let package = payload["package_name"].as_str().unwrap_or("");
        if !is_package_name(package, MAX_PACKAGE_NAME) {
            return Err(failed("CPS.0173", "Parameter: package_name is invalid."));
        }
        let pre_install = payload["pre_install_app"].as_i64() == Some(1);
        let dir = app_dir(package);
        let opts = cph_archive::ApplyOptions {
            max_bytes: MAX_SHARE_ARCHIVE,
            target_dir: Some(dir.clone()),
            ..cph_archive::ApplyOptions::push_file()
        };
        let staged = self
            .staged_share_archive(job, server_id, &payload["object"], opts)
            .await?;
        let volume = self.share_client(server_id).await?;
        // A new push of the app replaces its files.
        volume_sh(
            &volume,
            "take the app",
            &format!("rm -rf -- {}", quote(&dir)),
        )
        .await?;
        let report = staged
            .tar
            .apply(&volume)
            .await
            .map_err(|e| volume_failed("take the app", e))?;
        let listing = volume_sh(
            &volume,
            "be read",
            &format!("cd {} && find . -type f -name '*.apk'", quote(&dir)),
        )
        .await?;
        let mut apks: Vec<String> = listing
            .lines()
            .map(|l| l.trim().trim_start_matches("./").to_string())
            .filter(|l| !l.is_empty())
            .collect();
        apks.sort();
        if apks.is_empty() || apks.len() > MAX_APP_APKS {
            volume_sh(
                &volume,
                "take the app",
                &format!("rm -rf -- {}", quote(&dir)),
            )
            .await?;
            return Err(crate::objects::sub_job_failed(
                "the app archive was refused.",
                format!(
                    "the archive holds {} .apk files; a shared app needs 1 to {MAX_APP_APKS}",
                    apks.len()
                ),
            ));
        }
        // The app is in the volume: its slot goes to the phones' installs (a job never holds
        // more than one slot, so jobs waiting for slots cannot block each other).
        drop(staged);
        let stored = format!(
            "stored {package} ({} files, {} bytes) in the shared apps at {SHARE_MOUNT}{dir}",
            report.files, report.bytes
        );
        if !pre_install {
            return Ok(done(stored));
        }
        // `--pkg` makes the install fail unless the APKs are the named package.
        let mut cmd = format!("pm install -r --pkg {}", quote(package));
        for apk in &apks {
            cmd.push(' ');
            cmd.push_str(&quote(&format!("{SHARE_MOUNT}{dir}/{apk}")));
        }
        let (running, other) = self.server_phones(server_id).await?;
        let (results, busy) = self.pre_install(running, &cmd).await;
        let mut installed = read_small(&volume, &preinstalled_file(package))
            .await?
            .map(|t| id_lines(&t))
            .unwrap_or_default();
        let mut failures: Vec<(String, String)> = Vec::new();
        let mut count = 0;
        for (phone_id, r) in results {
            match r {
                Ok(()) => {
                    count += 1;
                    installed.insert(phone_id);
                }
                Err(why) => failures.push((phone_id, why)),
            }
        }
        failures.extend(
            other
                .into_iter()
                .map(|p| (p, "the phone is not running".to_string())),
        );
        failures.sort();
        self.write_preinstalled(&volume, package, &installed)
            .await?;
        if let Some(mut busy) = busy {
            let mut msg = format!(
                "{stored}; pre-installed on {count} of {} phones\n{}",
                failures.len() + count,
                failures_msg(&failures)
            );
            truncate_utf8(&mut msg, crate::adb::MAX_EXECUTE_MSG);
            busy.execute_msg = Some(msg);
            return Err(busy);
        }
        if failures.is_empty() {
            Ok(done(format!("{stored}; pre-installed on {count} phones")))
        } else {
            Err(crate::objects::sub_job_failed(
                &format!(
                    "{package} was stored but not pre-installed on {} of {} phones.",
                    failures.len(),
                    failures.len() + count
                ),
                failures_msg(&failures),
            ))
        }
    }

    /// Installs a shared app on `phones` (`cmd` on each), at most [`APP_PARALLELISM`] at once,
    /// each while it holds a transfer slot of its host. Slots are taken one after the other
    /// (the job's clock stops while it waits for the next one; the installs that hold theirs
    /// go on meanwhile). When a wait outlasts `transfer_wait`, no further install starts:
    /// the phones left are reported as failed and the `CPS.0042` outcome is returned with the
    /// results of the installs that ran.
    async fn pre_install(
        &self,
        phones: Vec<String>,
        cmd: &str,
    ) -> (
        Vec<(String, std::result::Result<(), String>)>,
        Option<Outcome>,
    ) {
        let mut installs = futures::stream::FuturesUnordered::new();
        let mut results = Vec::new();
        let mut left = phones.into_iter();
        let mut busy = None;
        for phone_id in left.by_ref() {
            while installs.len() >= APP_PARALLELISM {
                if let Some(r) = installs.next().await {
                    results.push(r);
                }
            }
            // The installs that hold their slots go on while this one waits for its own.
            let slot = {
                let wait = self.transfer_slot(Transfer::Phone(&phone_id));
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        biased;
                        Some(r) = installs.next(), if !installs.is_empty() => results.push(r),
                        slot = &mut wait => break slot,
                    }
                }
            };
            match slot {
                Ok(slot) => installs.push(self.install_shared_app(phone_id, cmd, slot)),
                Err(o) => {
                    results.push((phone_id, Err(o.error_msg.clone().unwrap_or_default())));
                    busy = Some(o);
                    break;
                }
            }
        }
        while let Some(r) = installs.next().await {
            results.push(r);
        }
        if busy.is_some() {
            results.extend(left.map(|p| {
                (
                    p,
                    Err("not attempted: the host had no transfer slot free".to_string()),
                )
            }));
        }
        (results, busy)
    }

    /// Runs the `pm install` command of a shared app on one phone, holding `slot` (a transfer
    /// slot of the phone's host) until it ends.
    async fn install_shared_app(
        &self,
        phone_id: String,
        cmd: &str,
        slot: TransferSlot,
    ) -> (String, std::result::Result<(), String>) {
        let r = async {
            let client = self
                .adb_client(&phone_id)
                .await
                .map_err(|o| o.error_msg.unwrap_or_default())?;
            let out = client.shell(cmd).await.map_err(|e| e.to_string())?;
            let text = format!("{}{}", out.stdout_text(), out.stderr_text());
            if out.exit_code == Some(0) && text.contains("Success") {
                Ok(())
            } else {
                Err(text.trim_end().to_string())
            }
        }
        .await;
        drop(slot);
        (phone_id, r)
    }

    /// Uninstalls a shared app from one phone (already gone counts as done).
    async fn uninstall_shared_app(
        &self,
        phone_id: String,
        package: &str,
    ) -> (String, std::result::Result<(), String>) {
        let r = async {
            let client = self
                .adb_client(&phone_id)
                .await
                .map_err(|o| o.error_msg.unwrap_or_default())?;
            match client.uninstall(package, false).await {
                Ok(_) => Ok(()),
                Err(cph_adb::client::ClientError::Command(reply))
                    if reply.contains("DELETE_FAILED_INTERNAL_ERROR")
                        || reply.contains("Unknown package") =>
                {
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        .await;
        (phone_id, r)
    }

    async fn delete_share_apps_job(
        &self,
        server_id: &str,
        payload: &Value,
    ) -> std::result::Result<Outcome, Outcome> {
        let package = payload["package_name"].as_str().unwrap_or("");
        if !is_package_name(package, MAX_PACKAGE_NAME) {
            return Err(failed("CPS.0173", "Parameter: package_name is invalid."));
        }
        let dir = app_dir(package);
        let volume = self.share_client(server_id).await?;
        let stored = volume
            .lstat(&dir)
            .await
            .map_err(|e| volume_failed("be read", e))?
            .is_some();
        let installed = read_small(&volume, &preinstalled_file(package))
            .await?
            .map(|t| id_lines(&t))
            .unwrap_or_default();
        if !stored && installed.is_empty() {
            return Err(failed(
                "CPS.0173",
                &format!(
                    "Parameter: package_name is invalid: {package} is not a shared app of server {server_id}."
                ),
            ));
        }
        // Phones of the server now (a phone may have left it since the pre-install).
        let (running, other) = self.server_phones(server_id).await?;
        let present: BTreeSet<String> = running.iter().chain(other.iter()).cloned().collect();
        let uninstalls: Vec<_> = installed
            .iter()
            .filter(|p| present.contains(*p))
            .map(|phone_id| self.uninstall_shared_app(phone_id.clone(), package))
            .collect();
        let results: Vec<(String, std::result::Result<(), String>)> =
            futures::stream::iter(uninstalls)
                .buffer_unordered(APP_PARALLELISM)
                .collect()
                .await;
        let mut remaining = BTreeSet::new();
        let mut failures = Vec::new();
        let mut removed = 0;
        for (phone_id, r) in results {
            match r {
                Ok(()) => removed += 1,
                Err(why) => {
                    remaining.insert(phone_id.clone());
                    failures.push((phone_id, why));
                }
            }
        }
        self.write_preinstalled(&volume, package, &remaining)
            .await?;
        if !failures.is_empty() {
            failures.sort();
            return Err(crate::objects::sub_job_failed(
                &format!(
                    "{package} could not be uninstalled from {} phones; its files stay in the shared apps.",
                    failures.len()
                ),
                failures_msg(&failures),
            ));
        }
        volume_sh(
            &volume,
            "remove the app",
            &format!("rm -rf -- {}", quote(&dir)),
        )
        .await?;
        Ok(done(format!(
            "removed {package} from the shared apps; uninstalled from {removed} phones"
        )))
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
            "/data",
            "/cache/",
            "/data/./",
            "/apps/com.example.app",
            "/system/build.prop",
            "/database/x",
        ] {
            assert_eq!(
                code_of(check_file_paths(Some(&v(&["/data/ok", bad])))),
                "CPS.0155",
                "{bad}"
            );
        }
        assert!(check_file_paths(Some(&v(&["/cache/x", "/data/a/"]))).is_ok());
        let too_many: Vec<String> = (0..=MAX_DELETE_PATHS)
            .map(|i| format!("/data/{i}"))
            .collect();
        assert_eq!(code_of(check_file_paths(Some(&too_many))), "CPS.0155");
        let long = format!("/data/{}", "a".repeat(4090));
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
