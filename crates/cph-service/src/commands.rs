//! ADB commands on phones (PushFile, InstallApk, UninstallApk, RunShellCommand on
//! `POST .../phones/commands`, RunSyncCommand on `POST .../phones/sync-commands`) and the export
//! and import of phone data (BatchExportCloudPhoneData, BatchImportCloudPhoneData).
//!
//! Every request is checked in full first (the syntax of `content`, OBS names, data paths); then
//! each target phone gets its own `phone.command` job whose payload says what to do. A phone
//! that is unknown, repeated or not running is reported in its own item.
//!
//! Where the reference (v18) and the newer documentation shipped with the official SDK describe
//! the same field differently, the rule that accepts what either documents as valid is used
//! (shell commands: 2048 bytes and the SDK's wider character set). Rules only the SDK documents
//! (at most 15 phones per synchronous command, `~` and trailing `*` in data paths, the
//! `/data/misc` rule of exports) are enforced as written there.

use crate::jobs::kind;
use crate::phones::MAX_BATCH;
use crate::validate::{dedup, is_valid_id};
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use cph_domain::{JobStatus, PhoneStatus, ids};
use cph_store::PhoneRow;
use cph_store::jobs::NewJob;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Most phones one synchronous command may name in `phone_ids`.
pub const MAX_SYNC_PHONES: usize = 15;
/// Most servers one command may name in `server_ids`.
pub const MAX_COMMAND_SERVERS: usize = 100;
/// Most APKs of one `install-multiple`.
pub const MAX_MULTIPLE_APKS: usize = 50;
/// Most phones of one export or import request.
pub const MAX_DATA_PHONES: usize = 100;
/// How long RunSyncCommand waits for its jobs (the reference bounds the call at 30 s).
pub const SYNC_WAIT: Duration = Duration::from_secs(30);
/// How long a synchronous command may run on one phone (reference: 2 s).
pub const SYNC_PHONE_TIMEOUT_MS: u64 = 2000;
/// Largest tar file PushFile may push (6 GB).
pub const MAX_PUSH_BYTES: u64 = 6 << 30;
/// Largest APK InstallApk may install (2 GB).
pub const MAX_APK_BYTES: u64 = 2 << 30;

/// The commands of `POST .../phones/commands`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Push,
    Install,
    InstallMultiple,
    Uninstall,
    Shell,
}

impl Command {
    /// Parses `command`; anything else is `CPS.0117`.
    pub fn parse(raw: Option<&str>) -> Result<Command> {
        match raw {
            Some("push") => Ok(Command::Push),
            Some("install") => Ok(Command::Install),
            Some("install-multiple") => Ok(Command::InstallMultiple),
            Some("uninstall") => Ok(Command::Uninstall),
            Some("shell") => Ok(Command::Shell),
            Some(other) => Err(ServiceError::cps_msg(
                "CPS.0117",
                format!(
                    "Parameter: command {other:?} is invalid; use push, install, install-multiple, uninstall or shell."
                ),
            )),
            None => Err(ServiceError::cps_msg(
                "CPS.0117",
                "Parameter: command is missing.",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Push => "push",
            Command::Install => "install",
            Command::InstallMultiple => "install-multiple",
            Command::Uninstall => "uninstall",
            Command::Shell => "shell",
        }
    }

    /// The SDK operation the command belongs to (for authorization).
    pub fn operation(self) -> &'static str {
        match self {
            Command::Push => "PushFile",
            Command::Install | Command::InstallMultiple => "InstallApk",
            Command::Uninstall => "UninstallApk",
            Command::Shell => "RunShellCommand",
        }
    }
}

/// An object in object storage, `obs://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObsObject {
    pub bucket: String,
    pub key: String,
}

impl ObsObject {
    fn to_json(&self) -> Value {
        json!({"bucket_name": self.bucket, "object_path": self.key})
    }
}

/// An OBS bucket name: 3–63 characters of lowercase letters, digits, `-` and `.`, starting and
/// ending with a letter or digit, without `..`, `.-` or `-.`, and not shaped like an IPv4 address.
pub fn is_bucket_name(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !s.contains("..")
        && !s.contains(".-")
        && !s.contains("-.")
        && s.parse::<std::net::Ipv4Addr>().is_err()
}

/// An OBS object path as the data and share operations take it: 1–1024 characters of letters,
/// digits, `.`, `/`, `-`, `_`, `+`, `#` and `=`.
pub fn is_object_path(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 1024
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'-' | b'_' | b'+' | b'#' | b'=')
        })
        && !s.ends_with('/')
}

/// True when `name` ends with `.ext` (any case) and has something before it.
fn has_extension(name: &str, ext: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or_default();
    file.len() > ext.len() + 1
        && file.is_char_boundary(file.len() - ext.len() - 1)
        && file[file.len() - ext.len() - 1..].eq_ignore_ascii_case(&format!(".{ext}"))
}

/// Parses `obs://bucket/key`. `None` when it is not such a URL.
pub fn parse_obs_url(s: &str) -> Option<ObsObject> {
    let rest = s.strip_prefix("obs://")?;
    let (bucket, key) = rest.split_once('/')?;
    if !is_bucket_name(bucket) || key.is_empty() || key.ends_with('/') || key.contains("//") {
        return None;
    }
    Some(ObsObject {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// A package name: 1–`max` bytes of letters, digits, `_` and `.`, not starting with a digit or
/// `_`, not ending with `.`, with at least one `.` and no empty part.
pub fn is_package_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        && !b[0].is_ascii_digit()
        && b[0] != b'_'
        && b[0] != b'.'
        && !s.ends_with('.')
        && s.contains('.')
        && !s.contains("..")
}

fn content_error(why: impl std::fmt::Display) -> ServiceError {
    ServiceError::cps_msg("CPS.0118", format!("Parameter: content is invalid: {why}."))
}

/// The characters `content` of push, install and uninstall may hold (words separated by spaces).
fn is_plain_content_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b':' | b'-' | b' ')
}

/// The characters of a shell command.
fn is_shell_char(c: u8) -> bool {
    is_plain_content_char(c) || matches!(c, b'?' | b'=' | b'&' | b'|')
}

/// Options `adb install` / `install-multiple` accept here.
const INSTALL_OPTIONS: &[&str] = &["-l", "-r", "-t", "-s", "-d", "-g"];
/// Options only `install-multiple` accepts (partial install).
const INSTALL_MULTIPLE_OPTIONS: &[&str] = &["-p"];
/// Options of `uninstall` (`-k` keeps the data and cache directories).
const UNINSTALL_OPTIONS: &[&str] = &["-k"];

/// Checks `content` for `command` and returns what the job needs to run it (the job payload).
///
/// - `push`: one `obs://bucket/path.tar`, at most 1024 bytes.
/// - `install`: options, then one `obs://bucket/path.apk`; at most 1024 bytes.
/// - `install-multiple`: options, then 1–50 APK URLs separated by spaces; at most 8100 bytes.
/// - `uninstall`: options, then a package name; at most 1024 bytes.
/// - `shell`: a command of at most 2048 bytes.
///
/// `CPS.0118` for a malformed content, `CPS.0119` for an install file that is not an `.apk`.
pub fn check_content(command: Command, content: Option<&str>) -> Result<Value> {
    let content = content.ok_or_else(|| content_error("it is missing"))?;
    if content.trim().is_empty() {
        return Err(content_error("it is empty"));
    }
    let max = match command {
        Command::InstallMultiple => 8100,
        Command::Shell => 2048,
        _ => 1024,
    };
    if content.len() > max {
        return Err(content_error(format_args!("it exceeds {max} bytes")));
    }
    let allowed = if command == Command::Shell {
        is_shell_char
    } else {
        is_plain_content_char
    };
    if let Some(bad) = content
        .chars()
        .find(|c| !c.is_ascii() || !allowed(*c as u8))
    {
        return Err(content_error(format_args!(
            "character {bad:?} is not allowed"
        )));
    }
    let words: Vec<&str> = content.split(' ').filter(|w| !w.is_empty()).collect();
    let base = json!({"command": command.as_str(), "content": content});
    let mut payload = match base {
        Value::Object(m) => m,
        _ => unreachable!("json! object"),
    };
    match command {
        Command::Push => {
            if words.len() != 1 {
                return Err(content_error(
                    "push takes exactly one obs://bucket/path.tar file",
                ));
            }
            let obj = parse_obs_url(words[0])
                .ok_or_else(|| content_error("the file must be given as obs://bucket/path.tar"))?;
            if !has_extension(&obj.key, "tar") {
                return Err(content_error("only .tar files can be pushed"));
            }
            payload.insert("object".into(), obj.to_json());
            payload.insert("max_object_bytes".into(), json!(MAX_PUSH_BYTES));
        }
        Command::Install | Command::InstallMultiple => {
            let mut options = Vec::new();
            let mut objects = Vec::new();
            for w in &words {
                if w.starts_with('-') {
                    if !objects.is_empty() {
                        return Err(content_error("options must come before the files"));
                    }
                    let known = INSTALL_OPTIONS.contains(w)
                        || (command == Command::InstallMultiple
                            && INSTALL_MULTIPLE_OPTIONS.contains(w));
                    if !known {
                        return Err(content_error(format_args!("option {w} is not supported")));
                    }
                    options.push(w.to_string());
                    continue;
                }
                let obj = parse_obs_url(w).ok_or_else(|| {
                    content_error(format_args!(
                        "{w} is not an option or an obs://bucket/path.apk file"
                    ))
                })?;
                if !has_extension(&obj.key, "apk") {
                    return Err(ServiceError::cps_msg(
                        "CPS.0119",
                        format!("Parameter: filename doesn't end .apk: {w}."),
                    ));
                }
                objects.push(obj);
            }
            match (command, objects.len()) {
                (_, 0) => return Err(content_error("no obs://bucket/path.apk file is given")),
                (Command::Install, n) if n > 1 => {
                    return Err(content_error(
                        "install takes one apk; use install-multiple for split apks",
                    ));
                }
                (Command::InstallMultiple, n) if n > MAX_MULTIPLE_APKS => {
                    return Err(content_error(format_args!(
                        "install-multiple takes at most {MAX_MULTIPLE_APKS} apks"
                    )));
                }
                _ => {}
            }
            payload.insert("options".into(), json!(options));
            payload.insert(
                "objects".into(),
                Value::Array(objects.iter().map(ObsObject::to_json).collect()),
            );
            payload.insert("max_object_bytes".into(), json!(MAX_APK_BYTES));
        }
        Command::Uninstall => {
            let Some((package, opts)) = words.split_last() else {
                return Err(content_error("no package name is given"));
            };
            for o in opts {
                if !UNINSTALL_OPTIONS.contains(o) {
                    return Err(content_error(format_args!(
                        "{o} is not a supported uninstall option"
                    )));
                }
            }
            if !is_package_name(package, 1024) {
                return Err(content_error(format_args!(
                    "{package} is not a valid package name"
                )));
            }
            payload.insert("options".into(), json!(opts));
            payload.insert("package_name".into(), json!(package));
        }
        Command::Shell => {}
    }
    Ok(Value::Object(payload))
}

/// RunSyncCommand's `content`: at most 1024 bytes of letters, digits, spaces and `_ . / : -`
/// (`CPS.0118`).
pub fn check_sync_content(content: Option<&str>) -> Result<()> {
    let content = content.ok_or_else(|| content_error("it is missing"))?;
    if content.trim().is_empty() {
        return Err(content_error("it is empty"));
    }
    if content.len() > 1024 {
        return Err(content_error("it exceeds 1024 bytes"));
    }
    if let Some(bad) = content
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || " _./:-".contains(*c)))
    {
        return Err(content_error(format_args!(
            "character {bad:?} is not allowed in a synchronous command"
        )));
    }
    Ok(())
}

/// Checks a data path of an export (`include_files`, `exclude_files`): absolute, at most 4096
/// bytes, `/data` or `/cache` or below them, letters, digits and `. / - _ + # * ~ =` only, `*`
/// only at the end, no `.` or `..` part. Returns why not.
pub fn check_data_path(p: &str) -> std::result::Result<(), String> {
    if p.is_empty() {
        return Err("a path is empty".into());
    }
    if p.len() > 4096 {
        return Err(format!("{p} exceeds 4096 bytes"));
    }
    if let Some(bad) = p.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(c, '.' | '/' | '-' | '_' | '+' | '#' | '*' | '~' | '='))
    }) {
        return Err(format!("{p}: character {bad:?} is not allowed"));
    }
    let under = |root: &str| p == root || p.starts_with(&format!("{root}/"));
    if !under("/data") && !under("/cache") {
        return Err(format!("{p} is not /data, /cache or a path below them"));
    }
    if p.trim_end_matches('*').contains('*') {
        return Err(format!("{p}: '*' is only allowed at the end of a path"));
    }
    // One trailing slash ("/data/app/") is fine; empty, "." and ".." parts are not.
    let trimmed = p.strip_suffix('/').unwrap_or(p);
    if trimmed
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!("{p} has an empty, '.' or '..' part"));
    }
    Ok(())
}

/// True when the glob `pattern` (whose `*`s are all at its end and match within one path part)
/// names `path`.
fn glob_names(pattern: &str, path: &str) -> bool {
    let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
    match pattern.find('*') {
        None => pattern == path,
        Some(i) => path
            .strip_prefix(&pattern[..i])
            .is_some_and(|rest| !rest.contains('/')),
    }
}

/// Checks the `include_files` of one export (`CPS.0168`), including the `/data/misc` rule: it
/// may only be named exactly (not through a sub-path or a wildcard), and then `/data/system` and
/// `/data/system_de` must be named exactly too.
pub fn check_include_files(files: Option<&[String]>) -> Result<()> {
    let files = files
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ServiceError::cps_msg("CPS.0168", "Parameter: include_files is empty."))?;
    let bad = |why: String| {
        ServiceError::cps_msg(
            "CPS.0168",
            format!("Parameter: include_files is invalid: {why}."),
        )
    };
    let norm = |p: &str| p.strip_suffix('/').unwrap_or(p).to_string();
    for p in files {
        check_data_path(p).map_err(&bad)?;
        let n = norm(p);
        if n.starts_with("/data/misc/") {
            return Err(bad(format!(
                "{p}: /data/misc can only be exported as a whole, by its exact path"
            )));
        }
        if n.contains('*') && glob_names(&n, "/data/misc") {
            return Err(bad(format!(
                "{p}: /data/misc can not be named through a wildcard"
            )));
        }
    }
    let exact: HashSet<String> = files.iter().map(|p| norm(p)).collect();
    if exact.contains("/data/misc")
        && !(exact.contains("/data/system") && exact.contains("/data/system_de"))
    {
        return Err(bad(
            "exporting /data/misc needs /data/system and /data/system_de named exactly too".into(),
        ));
    }
    Ok(())
}

/// Checks the `exclude_files` of one export (`CPS.0169`); absent or empty is fine.
pub fn check_exclude_files(files: Option<&[String]>) -> Result<()> {
    for p in files.unwrap_or_default() {
        check_data_path(p).map_err(|why| {
            ServiceError::cps_msg(
                "CPS.0169",
                format!("Parameter: exclude_files is invalid: {why}."),
            )
        })?;
    }
    Ok(())
}

/// Checks `bucket_name` (`CPS.0134`).
pub fn check_bucket(b: Option<&str>) -> Result<String> {
    match b {
        Some(b) if is_bucket_name(b) => Ok(b.to_string()),
        Some(b) => Err(ServiceError::cps_msg(
            "CPS.0134",
            format!(
                "Parameter: bucket_name {b:?} is invalid: 3-63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit."
            ),
        )),
        None => Err(ServiceError::cps_msg(
            "CPS.0134",
            "Parameter: bucket_name is missing.",
        )),
    }
}

/// Checks `object_path` (`CPS.0135`); with `tar` the object must be a `.tar` file.
pub fn check_object_path(p: Option<&str>, tar: bool) -> Result<String> {
    let p =
        p.ok_or_else(|| ServiceError::cps_msg("CPS.0135", "Parameter: object_path is missing."))?;
    if !is_object_path(p) {
        return Err(ServiceError::cps_msg(
            "CPS.0135",
            format!(
                "Parameter: object_path {p:?} is invalid: 1-1024 letters, digits and . / - _ + # =."
            ),
        ));
    }
    if tar && !has_extension(p, "tar") {
        return Err(ServiceError::cps_msg(
            "CPS.0135",
            format!("Parameter: object_path {p:?} is invalid: only .tar files are supported."),
        ));
    }
    Ok(p.to_string())
}

/// One phone of an export request, as received.
#[derive(Debug, Clone, Default)]
pub struct ExportItem {
    pub phone_id: Option<String>,
    pub include_files: Option<Vec<String>>,
    pub exclude_files: Option<Vec<String>>,
    pub bucket_name: Option<String>,
    pub object_path: Option<String>,
}

/// One phone of an import request, as received.
#[derive(Debug, Clone, Default)]
pub struct ImportItem {
    pub phone_id: Option<String>,
    pub bucket_name: Option<String>,
    pub object_path: Option<String>,
}

/// Checks an export request and returns each item's phone id and job payload.
pub fn check_export(items: Option<&[ExportItem]>) -> Result<Vec<(Option<String>, Value)>> {
    let items = items
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ServiceError::cps_msg("CPS.0167", "Parameter: storage_infos is empty."))?;
    if items.len() > MAX_DATA_PHONES {
        return Err(ServiceError::cps_msg(
            "CPS.0170",
            format!("Parameter: storage_infos exceeds the limit of {MAX_DATA_PHONES} phones."),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        if it.phone_id.as_deref().is_none_or(str::is_empty) {
            return Err(ServiceError::cps_msg(
                "CPS.0167",
                "Parameter: storage_infos is invalid: phone_id is missing.",
            ));
        }
        check_include_files(it.include_files.as_deref())?;
        check_exclude_files(it.exclude_files.as_deref())?;
        let bucket = check_bucket(it.bucket_name.as_deref())?;
        let object = check_object_path(it.object_path.as_deref(), false)?;
        out.push((
            it.phone_id.clone(),
            json!({
                "command": "export",
                "include_files": it.include_files.clone().unwrap_or_default(),
                "exclude_files": it.exclude_files.clone().unwrap_or_default(),
                "object": {"bucket_name": bucket, "object_path": object},
            }),
        ));
    }
    Ok(out)
}

/// Checks an import request and returns each item's phone id and job payload.
pub fn check_import(items: Option<&[ImportItem]>) -> Result<Vec<(Option<String>, Value)>> {
    let items = items
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ServiceError::cps_msg("CPS.0171", "Parameter: restore_infos is empty."))?;
    if items.len() > MAX_DATA_PHONES {
        return Err(ServiceError::cps_msg(
            "CPS.0171",
            format!("Parameter: restore_infos exceeds the limit of {MAX_DATA_PHONES} phones."),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        if it.phone_id.as_deref().is_none_or(str::is_empty) {
            return Err(ServiceError::cps_msg(
                "CPS.0171",
                "Parameter: restore_infos is invalid: phone_id is missing.",
            ));
        }
        let bucket = check_bucket(it.bucket_name.as_deref())?;
        let object = check_object_path(it.object_path.as_deref(), false)?;
        out.push((
            it.phone_id.clone(),
            json!({
                "command": "import",
                "object": {"bucket_name": bucket, "object_path": object},
            }),
        ));
    }
    Ok(out)
}

/// The message of a job the phone runtime cannot execute yet.
pub(crate) fn not_executable_msg(job_kind: &str, payload: &Value) -> String {
    let what = payload
        .get("command")
        .or_else(|| payload.get("operation"))
        .and_then(Value::as_str)
        .unwrap_or(job_kind);
    format!(
        "This api is not supported: the phone runtime of this host cannot execute '{what}' yet; nothing was done."
    )
}

/// A phone's precondition for commands and data operations: it must be running.
fn require_running(p: &PhoneRow) -> Result<()> {
    match PhoneStatus::from_code(p.status) {
        Some(PhoneStatus::Running) => Ok(()),
        Some(PhoneStatus::Frozen) => Err(ServiceError::cps("CPS.0053")),
        _ => Err(ServiceError::cps("CPS.0141")),
    }
}

/// The result of RunSyncCommand for one phone.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub phone_id: String,
    pub job_id: String,
    pub status: i32,
    pub error_code: String,
    pub error_msg: String,
    pub execute_msg: String,
}

/// The phones a command names: `phone_ids` when present and not empty, else every phone of
/// `server_ids`.
enum Targets {
    Phones(Vec<String>),
    Servers(Vec<String>),
}

fn targets(phone_ids: Option<Vec<String>>, server_ids: Option<Vec<String>>) -> Result<Targets> {
    match (
        phone_ids.filter(|v| !v.is_empty()),
        server_ids.filter(|v| !v.is_empty()),
    ) {
        (Some(p), _) => Ok(Targets::Phones(p)),
        (None, Some(s)) => Ok(Targets::Servers(s)),
        (None, None) => Err(ServiceError::cps_msg(
            "CPS.0009",
            "Parameter: phone_ids and server_ids are both empty.",
        )),
    }
}

impl Service {
    /// Resolves the targets of a command to one entry per phone: its id and either the phone or
    /// the error that keeps it out. More than `max_phones` phone ids is the error `too_many`;
    /// unknown servers fail the whole request (`CPS.0097`).
    async fn resolve_targets(
        &self,
        caller: &Caller,
        t: Targets,
        max_phones: usize,
        too_many: &str,
    ) -> Result<Vec<(String, std::result::Result<PhoneRow, ServiceError>)>> {
        match t {
            Targets::Phones(ids) => {
                if ids.len() > max_phones {
                    return Err(ServiceError::cps_msg(
                        too_many,
                        format!("Parameter: phone_ids exceeds the limit of {max_phones} phones."),
                    ));
                }
                let wanted: Vec<String> = dedup(&ids)
                    .into_iter()
                    .filter(|i| is_valid_id(i, 64))
                    .collect();
                let rows = {
                    let mut c = self.store().read().await?;
                    cph_store::phones::get_many(&mut c, &caller.project_id, &wanted).await?
                };
                let rows: HashMap<String, PhoneRow> =
                    rows.into_iter().map(|p| (p.phone_id.clone(), p)).collect();
                let mut seen = HashSet::new();
                Ok(ids
                    .into_iter()
                    .map(|id| {
                        let r = match rows.get(&id) {
                            None => Err(ServiceError::cps_msg(
                                "CPS.0004",
                                format!("Invalid phone id: {id} is not a phone of this project."),
                            )),
                            Some(_) if !seen.insert(id.clone()) => {
                                Err(ServiceError::cps("CPS.0023"))
                            }
                            Some(p) => Ok(p.clone()),
                        };
                        (id, r)
                    })
                    .collect())
            }
            Targets::Servers(ids) => {
                if ids.len() > MAX_COMMAND_SERVERS {
                    return Err(ServiceError::cps_msg(
                        "CPS.0096",
                        format!(
                            "The number of servers exceeds the limit of {MAX_COMMAND_SERVERS}."
                        ),
                    ));
                }
                let ids = dedup(&ids);
                let mut c = self.store().read().await?;
                let found: HashSet<String> =
                    cph_store::servers::get_many(&mut c, &caller.project_id, &ids)
                        .await?
                        .into_iter()
                        .map(|s| s.server_id)
                        .collect();
                if let Some(missing) = ids.iter().find(|i| !found.contains(*i)) {
                    return Err(ServiceError::cps_msg(
                        "CPS.0097",
                        format!("Parameter: server_id {missing} is invalid or not found."),
                    ));
                }
                let mut out = Vec::new();
                for sid in &ids {
                    for p in cph_store::phones::of_server(&mut c, sid).await? {
                        out.push((p.phone_id.clone(), Ok(p)));
                    }
                }
                if out.len() > MAX_BATCH {
                    return Err(ServiceError::cps_msg(
                        "CPS.0190",
                        format!("The number of phones exceeds the limit of {MAX_BATCH}."),
                    ));
                }
                Ok(out)
            }
        }
    }

    /// Enqueues one `phone.command` job per phone that passes `require_running`, in one
    /// transaction; reports per item.
    async fn enqueue_phone_commands(
        &self,
        caller: &Caller,
        request_id: &str,
        items: Vec<(String, std::result::Result<PhoneRow, ServiceError>, Value)>,
    ) -> Result<Vec<BatchItem>> {
        let mut out = Vec::with_capacity(items.len());
        let mut jobs = Vec::new();
        for (id, phone, payload) in items {
            let phone = match phone.and_then(|p| require_running(&p).map(|()| p)) {
                Ok(p) => p,
                Err(e) => {
                    out.push(BatchItem::failed(&id, &e));
                    continue;
                }
            };
            let job_id = ids::hex_id();
            jobs.push(NewJob {
                job_id: job_id.clone(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: kind::PHONE_COMMAND.to_string(),
                phone_id: Some(id.clone()),
                server_id: Some(phone.server_id.clone()),
                encode_server_id: None,
                lock_key: format!("phone:{id}"),
                payload: payload.to_string(),
            });
            out.push(BatchItem::job(&id, &job_id));
        }
        if !jobs.is_empty() {
            let mut tx = self.store().write().await?;
            cph_store::jobs::insert(&mut tx, &jobs, self.now_ms()).await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            self.wake_jobs();
        }
        Ok(out)
    }

    /// PushFile, InstallApk, UninstallApk and RunShellCommand: checks the command and its
    /// content, then enqueues one job per target phone.
    pub async fn run_phone_command(
        &self,
        caller: &Caller,
        request_id: &str,
        command: Command,
        content: Option<&str>,
        phone_ids: Option<Vec<String>>,
        server_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let payload = check_content(command, content)?;
        let t = targets(phone_ids, server_ids)?;
        let resolved = self
            .resolve_targets(caller, t, MAX_BATCH, "CPS.0190")
            .await?;
        let items = resolved
            .into_iter()
            .map(|(id, p)| (id, p, payload.clone()))
            .collect();
        self.enqueue_phone_commands(caller, request_id, items).await
    }

    /// RunSyncCommand: a shell command on the phones of at most 15 `phone_ids` (or of
    /// `server_ids`), answered with each phone's job outcome. Waits (at most [`SYNC_WAIT`]) for
    /// the jobs; a job still running then is reported with status 1.
    pub async fn run_sync_command(
        &self,
        caller: &Caller,
        request_id: &str,
        command: Option<&str>,
        content: Option<&str>,
        phone_ids: Option<Vec<String>>,
        server_ids: Option<Vec<String>>,
    ) -> Result<Vec<SyncResult>> {
        if command != Some("shell") {
            return Err(ServiceError::cps_msg(
                "CPS.0117",
                "Parameter: command is invalid; synchronous commands only support shell.",
            ));
        }
        check_sync_content(content)?;
        let mut payload = check_content(Command::Shell, content)?;
        payload["sync"] = Value::Bool(true);
        payload["timeout_ms"] = json!(SYNC_PHONE_TIMEOUT_MS);
        let t = targets(phone_ids, server_ids)?;
        let resolved = self
            .resolve_targets(caller, t, MAX_SYNC_PHONES, "CPS.0209")
            .await?;
        let items = resolved
            .into_iter()
            .map(|(id, p)| (id, p, payload.clone()))
            .collect();
        self.admit_sync_command(&caller.user_id)?;
        let batch = self
            .enqueue_phone_commands(caller, request_id, items)
            .await?;
        let job_ids: HashSet<String> = batch.iter().filter_map(|b| b.job_id.clone()).collect();
        let done = self.wait_request_jobs(caller, request_id, &job_ids).await?;
        Ok(batch
            .into_iter()
            .map(|b| match (b.job_id, b.error) {
                (Some(job_id), _) => match done.get(&job_id) {
                    Some(j) => SyncResult {
                        phone_id: b.target_id,
                        job_id,
                        status: j.status,
                        error_code: j.error_code.clone().unwrap_or_default(),
                        error_msg: j.error_msg.clone().unwrap_or_default(),
                        execute_msg: j.execute_msg.clone().unwrap_or_default(),
                    },
                    None => SyncResult {
                        phone_id: b.target_id,
                        job_id,
                        status: JobStatus::Running.code(),
                        error_code: String::new(),
                        error_msg: String::new(),
                        execute_msg: String::new(),
                    },
                },
                (None, err) => {
                    let (code, msg) = err.unwrap_or_default();
                    SyncResult {
                        phone_id: b.target_id,
                        job_id: String::new(),
                        status: JobStatus::Failed.code(),
                        error_code: code,
                        error_msg: msg,
                        execute_msg: String::new(),
                    }
                }
            })
            .collect())
    }

    /// Polls the jobs of a request until those in `job_ids` have ended or [`SYNC_WAIT`] passed;
    /// returns the ended ones by id.
    async fn wait_request_jobs(
        &self,
        caller: &Caller,
        request_id: &str,
        job_ids: &HashSet<String>,
    ) -> Result<HashMap<String, cph_store::JobRow>> {
        let mut ended = HashMap::new();
        if job_ids.is_empty() {
            return Ok(ended);
        }
        let deadline = tokio::time::Instant::now() + SYNC_WAIT;
        let mut pause = Duration::from_millis(5);
        loop {
            let (rows, _) = {
                let mut c = self.store().read().await?;
                cph_store::jobs::list_by_requests(
                    &mut c,
                    &caller.project_id,
                    &[request_id.to_string()],
                    0,
                    (job_ids.len() as i64).max(1),
                )
                .await?
            };
            for j in rows {
                if job_ids.contains(&j.job_id) && j.status != JobStatus::Running.code() {
                    ended.insert(j.job_id.clone(), j);
                }
            }
            if ended.len() == job_ids.len() || tokio::time::Instant::now() >= deadline {
                return Ok(ended);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// BatchExportCloudPhoneData: one job per phone exporting its data to object storage.
    pub async fn export_phone_data(
        &self,
        caller: &Caller,
        request_id: &str,
        items: Option<Vec<ExportItem>>,
    ) -> Result<Vec<BatchItem>> {
        let checked = check_export(items.as_deref())?;
        self.phone_data_jobs(caller, request_id, checked).await
    }

    /// BatchImportCloudPhoneData: one job per phone restoring its data from object storage.
    /// Every `object_path` must be registered for its bucket by an export of this project that
    /// succeeded; one that is not refuses the whole request (`CPS.0172`) before anything is
    /// written.
    pub async fn import_phone_data(
        &self,
        caller: &Caller,
        request_id: &str,
        items: Option<Vec<ImportItem>>,
    ) -> Result<Vec<BatchItem>> {
        let checked = check_import(items.as_deref())?;
        let objects: Vec<(String, String)> = checked
            .iter()
            .map(|(_, payload)| {
                let o = &payload["object"];
                (
                    o["bucket_name"].as_str().unwrap_or_default().to_string(),
                    o["object_path"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let registered = {
            let mut c = self.store().read().await?;
            cph_store::data_exports::registered(&mut c, &caller.project_id, &objects).await?
        };
        if let Some((bucket, path)) = objects.iter().find(|o| !registered.contains(*o)) {
            return Err(ServiceError::cps_msg(
                "CPS.0172",
                format!(
                    "Parameter: object_path is unregistered: obs://{bucket}/{path} was not written by a data export of this project."
                ),
            ));
        }
        self.phone_data_jobs(caller, request_id, checked).await
    }

    async fn phone_data_jobs(
        &self,
        caller: &Caller,
        request_id: &str,
        checked: Vec<(Option<String>, Value)>,
    ) -> Result<Vec<BatchItem>> {
        let ids: Vec<String> = checked
            .iter()
            .map(|(id, _)| id.clone().unwrap_or_default())
            .collect();
        let resolved = self
            .resolve_targets(caller, Targets::Phones(ids), MAX_DATA_PHONES, "CPS.0190")
            .await?;
        let items = resolved
            .into_iter()
            .zip(checked)
            .map(|((id, p), (_, payload))| (id, p, payload))
            .collect();
        self.enqueue_phone_commands(caller, request_id, items).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Value>) -> String {
        match r {
            Err(ServiceError::Api { code, .. }) => code,
            Err(e) => panic!("unexpected {e}"),
            Ok(v) => panic!("accepted: {v}"),
        }
    }

    fn code_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(ServiceError::Api { code, .. }) => code,
            Err(e) => panic!("unexpected {e}"),
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn command_names() {
        assert_eq!(Command::parse(Some("push")).unwrap(), Command::Push);
        assert_eq!(Command::parse(Some("install")).unwrap(), Command::Install);
        assert_eq!(
            Command::parse(Some("install-multiple")).unwrap(),
            Command::InstallMultiple
        );
        assert_eq!(
            Command::parse(Some("uninstall")).unwrap(),
            Command::Uninstall
        );
        assert_eq!(Command::parse(Some("shell")).unwrap(), Command::Shell);
        for bad in [Some("reboot"), Some("PUSH"), Some(""), Some("shell "), None] {
            assert_eq!(code_of(Command::parse(bad)), "CPS.0117", "{bad:?}");
        }
        assert_eq!(Command::InstallMultiple.operation(), "InstallApk");
        assert_eq!(Command::Push.operation(), "PushFile");
        assert_eq!(Command::Uninstall.operation(), "UninstallApk");
        assert_eq!(Command::Shell.operation(), "RunShellCommand");
    }

    #[test]
    fn bucket_names() {
        for ok in [
            "abc",
            "push-bucket",
            "my.bucket-1",
            &"a".repeat(63),
            "b1.2c",
        ] {
            assert!(is_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Bucket",
            "bucket_a",
            "-bucket",
            "bucket-",
            ".bucket",
            "a..b",
            "a.-b",
            "a-.b",
            "192.168.1.1",
            "buck et",
        ] {
            assert!(!is_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn object_paths() {
        assert!(is_object_path("my_apps/test.tar"));
        assert!(is_object_path("a+b#c=d/e-f_g.tar"));
        assert!(is_object_path(&"a".repeat(1024)));
        assert!(!is_object_path(&"a".repeat(1025)));
        assert!(!is_object_path(""));
        assert!(!is_object_path("dir/"));
        assert!(!is_object_path("a b.tar"));
        assert!(!is_object_path("a*b.tar"));
        assert!(!is_object_path("数据.tar"));
        assert_eq!(
            check_object_path(Some("x/y.tar"), true).unwrap(),
            "x/y.tar".to_string()
        );
        assert_eq!(
            check_object_path(Some("x/Y.TAR"), true).unwrap(),
            "x/Y.TAR".to_string()
        );
        assert_eq!(
            code_of(check_object_path(Some("x/y.zip"), true)),
            "CPS.0135"
        );
        assert_eq!(code_of(check_object_path(Some(".tar"), true)), "CPS.0135");
        assert_eq!(code_of(check_object_path(None, false)), "CPS.0135");
        assert!(check_object_path(Some("x/y.zip"), false).is_ok());
        assert_eq!(code_of(check_bucket(None)), "CPS.0134");
        assert_eq!(code_of(check_bucket(Some("Bad"))), "CPS.0134");
        assert!(check_bucket(Some("good-bucket")).is_ok());
    }

    #[test]
    fn obs_urls() {
        assert_eq!(
            parse_obs_url("obs://push-bucket/my_apps/test.tar"),
            Some(ObsObject {
                bucket: "push-bucket".into(),
                key: "my_apps/test.tar".into()
            })
        );
        for bad in [
            "push-bucket/test.tar",
            "s3://bucket/test.tar",
            "obs://bucket",
            "obs://bucket/",
            "obs://Bucket/a.tar",
            "obs://bu/a.tar",
            "obs://bucket/a//b.tar",
            "obs:///a.tar",
        ] {
            assert_eq!(parse_obs_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn package_names() {
        assert!(is_package_name("com.miniteck.miniworld", 128));
        assert!(is_package_name("Com.A_b.c1", 128));
        assert!(is_package_name(&format!("a.{}", "b".repeat(126)), 128));
        assert!(!is_package_name(&format!("a.{}", "b".repeat(127)), 128));
        for bad in [
            "", "nodot", "1com.x", "_com.x", ".com.x", "com.x.", "com..x", "com.x-y", "com.x/y",
            "com.x y",
        ] {
            assert!(!is_package_name(bad, 128), "{bad}");
        }
    }

    #[test]
    fn push_content() {
        let p = check_content(Command::Push, Some("obs://push-bucket/my_apps/test.tar")).unwrap();
        assert_eq!(p["command"], "push");
        assert_eq!(p["object"]["bucket_name"], "push-bucket");
        assert_eq!(p["object"]["object_path"], "my_apps/test.tar");
        assert_eq!(p["max_object_bytes"], 6u64 * 1024 * 1024 * 1024);
        assert_eq!(code(check_content(Command::Push, None)), "CPS.0118");
        assert_eq!(code(check_content(Command::Push, Some(""))), "CPS.0118");
        assert_eq!(code(check_content(Command::Push, Some("   "))), "CPS.0118");
        // Not a tar, not an obs URL, two files, a disallowed character, too long.
        for bad in [
            "obs://push-bucket/test.zip",
            "push-bucket/test.tar",
            "obs://push-bucket/a.tar obs://push-bucket/b.tar",
            "obs://push-bucket/a+b.tar",
            "obs://push-bucket/数据.tar",
        ] {
            assert_eq!(
                code(check_content(Command::Push, Some(bad))),
                "CPS.0118",
                "{bad}"
            );
        }
        let long = format!("obs://push-bucket/{}.tar", "a".repeat(1024 - 22));
        assert_eq!(long.len(), 1024);
        assert!(check_content(Command::Push, Some(&long)).is_ok());
        let long = format!("obs://push-bucket/{}.tar", "a".repeat(1025 - 22));
        assert_eq!(code(check_content(Command::Push, Some(&long))), "CPS.0118");
    }

    #[test]
    fn install_content() {
        let p = check_content(
            Command::Install,
            Some("-t -r obs://push-bucket/my_apps/test.apk"),
        )
        .unwrap();
        assert_eq!(p["options"], json!(["-t", "-r"]));
        assert_eq!(p["objects"][0]["object_path"], "my_apps/test.apk");
        assert_eq!(p["max_object_bytes"], 2u64 * 1024 * 1024 * 1024);
        assert!(check_content(Command::Install, Some("obs://b-1/a.apk")).is_ok());
        assert!(check_content(Command::Install, Some("-g -d obs://b-1/A.APK")).is_ok());
        // Not an apk.
        assert_eq!(
            code(check_content(Command::Install, Some("-r obs://b-1/a.tar"))),
            "CPS.0119"
        );
        assert_eq!(
            code(check_content(Command::Install, Some("obs://b-1/apk"))),
            "CPS.0119"
        );
        for bad in [
            "-r",                              // no file
            "-x obs://b-1/a.apk",              // unknown option
            "obs://b-1/a.apk -r",              // option after the file
            "obs://b-1/a.apk obs://b-1/b.apk", // two files for install
            "b-1/a.apk",                       // not an obs URL
            "-p obs://b-1/a.apk",              // install-multiple only
            "-r\tobs://b-1/a.apk",             // tab
            "-r obs://b-1/a.apk;rm",           // disallowed character
        ] {
            assert_eq!(
                code(check_content(Command::Install, Some(bad))),
                "CPS.0118",
                "{bad}"
            );
        }
        let long = format!("obs://b-1/{}.apk", "a".repeat(1025 - 14));
        assert_eq!(long.len(), 1025);
        assert_eq!(
            code(check_content(Command::Install, Some(&long))),
            "CPS.0118"
        );
    }

    #[test]
    fn install_multiple_content() {
        let p = check_content(
            Command::InstallMultiple,
            Some("-t -r obs://push-bucket/my_apps/test_part1.apk obs://push-bucket/my_apps/test_part_2.apk obs://push-bucket/my_apps/test_part3.apk"),
        )
        .unwrap();
        assert_eq!(p["objects"].as_array().unwrap().len(), 3);
        assert!(check_content(Command::InstallMultiple, Some("-p obs://b-1/a.apk")).is_ok());
        let fifty: Vec<String> = (0..50).map(|i| format!("obs://b-1/p{i}.apk")).collect();
        assert!(check_content(Command::InstallMultiple, Some(&fifty.join(" "))).is_ok());
        let fifty_one: Vec<String> = (0..51).map(|i| format!("obs://b-1/p{i}.apk")).collect();
        assert_eq!(
            code(check_content(
                Command::InstallMultiple,
                Some(&fifty_one.join(" "))
            )),
            "CPS.0118"
        );
        assert_eq!(
            code(check_content(
                Command::InstallMultiple,
                Some("obs://b-1/a.apk obs://b-1/b.obb")
            )),
            "CPS.0119"
        );
        // 8100 bytes is the limit.
        let part = format!("obs://b-1/{}.apk", "a".repeat(800));
        let mut many = vec![part.clone(); 10].join(" ");
        assert!(many.len() > 8100);
        assert_eq!(
            code(check_content(Command::InstallMultiple, Some(&many))),
            "CPS.0118"
        );
        many.truncate(0);
        let nine = vec![part; 9].join(" ");
        assert!(nine.len() <= 8100);
        assert!(check_content(Command::InstallMultiple, Some(&nine)).is_ok());
    }

    #[test]
    fn uninstall_content() {
        let p = check_content(Command::Uninstall, Some("com.myapp.test")).unwrap();
        assert_eq!(p["package_name"], "com.myapp.test");
        let p = check_content(Command::Uninstall, Some("-k com.myapp.test")).unwrap();
        assert_eq!(p["options"], json!(["-k"]));
        for bad in [
            "myapp",
            "-x com.myapp.test",
            "com.myapp.test -k",
            "com.a com.b",
            "obs://b-1/a.apk",
            "com.myapp.test&&reboot",
        ] {
            assert_eq!(
                code(check_content(Command::Uninstall, Some(bad))),
                "CPS.0118",
                "{bad}"
            );
        }
    }

    #[test]
    fn shell_content() {
        assert!(check_content(Command::Shell, Some("ls -l /system")).is_ok());
        assert!(
            check_content(
                Command::Shell,
                Some("getprop ro.serialno | grep 1 && echo a=b?")
            )
            .is_ok()
        );
        let p = check_content(Command::Shell, Some("pm list packages")).unwrap();
        assert_eq!(p["content"], "pm list packages");
        for bad in [
            "echo hi > /data/x",
            "echo $HOME",
            "echo 'a'",
            "ls; reboot",
            "ls *",
            "echo \"x\"",
            "ls\n",
            "ls `id`",
            "echo 中文",
        ] {
            assert_eq!(
                code(check_content(Command::Shell, Some(bad))),
                "CPS.0118",
                "{bad}"
            );
        }
        assert!(check_content(Command::Shell, Some(&"a".repeat(2048))).is_ok());
        assert_eq!(
            code(check_content(Command::Shell, Some(&"a".repeat(2049)))),
            "CPS.0118"
        );
    }

    #[test]
    fn data_paths() {
        for ok in [
            "/data",
            "/cache",
            "/data/app",
            "/data/app/",
            "/data/app/com.xx.xx-*",
            "/data/local/tmp/a+b#c=d~e_f",
            "/cache/*",
            "/data/media/0/**",
        ] {
            assert!(check_data_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "data/app",
            "/system/app",
            "/datax",
            "/data*",
            "/cache2/x",
            "/data/*/x",
            "/data/a*b",
            "/data/../system",
            "/data/./app",
            "/data//app",
            "/data/a b",
            "/data/数据",
            "/data/a?b",
        ] {
            assert!(check_data_path(bad).is_err(), "{bad}");
        }
        let long = format!("/data/{}", "a".repeat(4090));
        assert_eq!(long.len(), 4096);
        assert!(check_data_path(&long).is_ok());
        assert!(check_data_path(&format!("{long}a")).is_err());
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn include_and_exclude_files() {
        assert!(
            check_include_files(Some(&v(&["/data/app", "/data/local", "/data/media"]))).is_ok()
        );
        assert_eq!(code_of(check_include_files(None)), "CPS.0168");
        assert_eq!(code_of(check_include_files(Some(&[]))), "CPS.0168");
        assert_eq!(
            code_of(check_include_files(Some(&v(&["/system"])))),
            "CPS.0168"
        );
        // /data/misc only by its exact path, and with /data/system and /data/system_de.
        assert!(
            check_include_files(Some(&v(&["/data/misc", "/data/system", "/data/system_de"])))
                .is_ok()
        );
        assert_eq!(
            code_of(check_include_files(Some(&v(&[
                "/data/misc",
                "/data/system"
            ])))),
            "CPS.0168"
        );
        for bad in ["/data/misc/wifi", "/data/mi*", "/data/*"] {
            assert_eq!(
                code_of(check_include_files(Some(&v(&[
                    bad,
                    "/data/system",
                    "/data/system_de"
                ])))),
                "CPS.0168",
                "{bad}"
            );
        }
        assert!(check_include_files(Some(&v(&["/data/app/*"]))).is_ok());
        assert!(check_exclude_files(None).is_ok());
        assert!(check_exclude_files(Some(&v(&["/data/app/com.xx.xx-*"]))).is_ok());
        assert_eq!(
            code_of(check_exclude_files(Some(&v(&["/etc/hosts"])))),
            "CPS.0169"
        );
        assert_eq!(
            code_of(check_exclude_files(Some(&v(&["/data/a*b"])))),
            "CPS.0169"
        );
    }

    fn export_item() -> ExportItem {
        ExportItem {
            phone_id: Some("p1".into()),
            include_files: Some(v(&["/data/app"])),
            exclude_files: Some(v(&["/data/app/com.xx.xx-*"])),
            bucket_name: Some("mybucket".into()),
            object_path: Some("myimage/v1/x.tar".into()),
        }
    }

    #[test]
    fn export_requests() {
        let ok = check_export(Some(&[export_item()])).unwrap();
        assert_eq!(ok[0].0.as_deref(), Some("p1"));
        assert_eq!(ok[0].1["command"], "export");
        assert_eq!(ok[0].1["object"]["bucket_name"], "mybucket");
        assert_eq!(code_of(check_export(None)), "CPS.0167");
        assert_eq!(code_of(check_export(Some(&[]))), "CPS.0167");
        let many = vec![export_item(); MAX_DATA_PHONES + 1];
        assert_eq!(code_of(check_export(Some(&many))), "CPS.0170");
        assert!(check_export(Some(&vec![export_item(); MAX_DATA_PHONES])).is_ok());
        let mut it = export_item();
        it.phone_id = None;
        assert_eq!(code_of(check_export(Some(&[it]))), "CPS.0167");
        let mut it = export_item();
        it.include_files = None;
        assert_eq!(code_of(check_export(Some(&[it]))), "CPS.0168");
        let mut it = export_item();
        it.exclude_files = Some(v(&["relative"]));
        assert_eq!(code_of(check_export(Some(&[it]))), "CPS.0169");
        let mut it = export_item();
        it.bucket_name = Some("BAD".into());
        assert_eq!(code_of(check_export(Some(&[it]))), "CPS.0134");
        let mut it = export_item();
        it.object_path = Some("a b".into());
        assert_eq!(code_of(check_export(Some(&[it]))), "CPS.0135");
    }

    #[test]
    fn import_requests() {
        let item = ImportItem {
            phone_id: Some("p1".into()),
            bucket_name: Some("mybucket".into()),
            object_path: Some("myimage/v1/x.tar".into()),
        };
        let ok = check_import(Some(std::slice::from_ref(&item))).unwrap();
        assert_eq!(ok[0].1["command"], "import");
        assert_eq!(code_of(check_import(None)), "CPS.0171");
        assert_eq!(code_of(check_import(Some(&[]))), "CPS.0171");
        assert_eq!(
            code_of(check_import(Some(&vec![item.clone(); MAX_DATA_PHONES + 1]))),
            "CPS.0171"
        );
        let mut it = item.clone();
        it.phone_id = Some(String::new());
        assert_eq!(code_of(check_import(Some(&[it]))), "CPS.0171");
        let mut it = item.clone();
        it.bucket_name = None;
        assert_eq!(code_of(check_import(Some(&[it]))), "CPS.0134");
        let mut it = item;
        it.object_path = Some("x".repeat(1025));
        assert_eq!(code_of(check_import(Some(&[it]))), "CPS.0135");
    }

    #[test]
    fn target_choice() {
        // phone_ids win when both are given; an empty list counts as absent.
        match targets(Some(v(&["a"])), Some(v(&["s"]))).unwrap() {
            Targets::Phones(p) => assert_eq!(p, v(&["a"])),
            Targets::Servers(_) => panic!("servers chosen"),
        }
        match targets(Some(vec![]), Some(v(&["s"]))).unwrap() {
            Targets::Servers(s) => assert_eq!(s, v(&["s"])),
            Targets::Phones(_) => panic!("phones chosen"),
        }
        assert!(matches!(
            targets(None, None),
            Err(ServiceError::Api { ref code, .. }) if code == "CPS.0009"
        ));
        assert!(matches!(
            targets(Some(vec![]), Some(vec![])),
            Err(ServiceError::Api { ref code, .. }) if code == "CPS.0009"
        ));
    }

    #[test]
    fn unsupported_message_names_the_command() {
        let m = not_executable_msg("phone.command", &json!({"command": "install"}));
        assert!(m.starts_with("This api is not supported"));
        assert!(m.contains("'install'"));
        let m = not_executable_msg("server.share", &json!({"operation": "push_share_apps"}));
        assert!(m.contains("'push_share_apps'"));
        let m = not_executable_msg("phone.command", &Value::Null);
        assert!(m.contains("'phone.command'"));
    }
}
