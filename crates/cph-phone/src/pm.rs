//! The package manager: installs, updates and removes APKs and answers queries about them.
//!
//! System packages come with the image (read-only under `/system`); everything installed on
//! the phone lives under `/data`:
//! - `/data/app/<package>-<n>/base.apk` (+ `split_<name>.apk`), `n` growing with each install;
//! - `/data/data/<package>`, the app's data directory (`/data/user/0` links to `/data/data`);
//! - [`STATE_PATH`], the package database (JSON), so installs survive restarts and a reset
//!   that wipes `/data` returns the phone to its image's packages.
//!
//! The rules are Android's (`PackageManagerShellCommand` and the install flow):
//! - reinstalling an installed package **replaces** it, as `pm install` does since Android 9
//!   (`-r` is accepted and ignored); `-R` forbids it:
//!   `INSTALL_FAILED_ALREADY_EXISTS: Attempt to re-install <pkg> without first uninstalling.`;
//! - a lower version code needs `-d`, else `INSTALL_FAILED_VERSION_DOWNGRADE`;
//! - `android:testOnly` packages need `-t`, else `INSTALL_FAILED_TEST_ONLY`;
//! - `minSdkVersion` above the phone's SDK: `INSTALL_FAILED_OLDER_SDK`;
//! - a file that is not an APK: `INSTALL_FAILED_INVALID_APK`; a broken manifest:
//!   `INSTALL_PARSE_FAILED_MANIFEST_MALFORMED`; a bad package name:
//!   `INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME`;
//! - a system package can be updated (the update goes to `/data/app`); uninstalling it removes
//!   the update only; uninstalling a system package without an update fails with
//!   `DELETE_FAILED_INTERNAL_ERROR` unless `--user` is given (then it is hidden for user 0);
//! - uninstalling an unknown package: `DELETE_FAILED_INTERNAL_ERROR`.
//!
//! Multi-APK installs use sessions (`install-create` / `install-write` / `install-commit` /
//! `install-abandon`); their files are staged in `/data/app/vmdl<id>.tmp`. At most
//! [`MAX_SESSIONS`] are open; sessions live in memory, and stale staging directories are
//! removed when the package database is loaded.

use crate::apk::{self, ApkError, ApkInfo};
use crate::fs::PhoneFs;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The package database in the phone's tree.
pub const STATE_PATH: &str = "/data/system/packages.json";
/// Largest package database read.
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest single APK accepted.
pub const MAX_APK_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Most bytes one session may stage.
pub const MAX_SESSION_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Most APKs one session may stage.
pub const MAX_SESSION_FILES: usize = 64;
/// Most sessions open at once.
pub const MAX_SESSIONS: usize = 16;
/// Sessions idle longer than this are abandoned when a new one is created.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most packages installed in `/data`.
pub const MAX_PACKAGES: usize = 10_000;
/// The install time shown for system packages (2009-01-01, as images built without a
/// clock show).
const SYSTEM_INSTALL_TIME_MS: i64 = 1_230_768_000_000;
/// First uid given to apps.
const FIRST_APP_UID: u32 = 10_000;

/// A package that comes with the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPackage {
    pub package: String,
    pub version_code: i64,
    pub version_name: String,
    /// Device path of its APK, e.g. `/system/priv-app/Settings/Settings.apk`.
    pub apk_path: String,
    /// Its launchable activity (fully qualified), if it has one.
    #[serde(default)]
    pub launchable_activity: Option<String>,
}

/// An app's enabled state (`pm enable` / `pm disable` / `pm disable-user`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EnabledState {
    #[default]
    Default,
    Enabled,
    Disabled,
    DisabledUser,
}

impl EnabledState {
    /// Android's name, as `pm enable`/`disable` print it.
    pub fn name(self) -> &'static str {
        match self {
            EnabledState::Default => "default",
            EnabledState::Enabled => "enabled",
            EnabledState::Disabled => "disabled",
            EnabledState::DisabledUser => "disabled-user",
        }
    }

    /// Android's numeric value (`COMPONENT_ENABLED_STATE_*`).
    pub fn code(self) -> u8 {
        match self {
            EnabledState::Default => 0,
            EnabledState::Enabled => 1,
            EnabledState::Disabled => 2,
            EnabledState::DisabledUser => 3,
        }
    }

    /// Whether the app counts as enabled.
    pub fn is_enabled(self) -> bool {
        matches!(self, EnabledState::Default | EnabledState::Enabled)
    }
}

/// A package installed under `/data` (an app, or an update of a system package).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPackage {
    pub info: ApkInfo,
    /// `/data/app/<package>-<n>`.
    pub code_path: String,
    /// Split names, sorted.
    pub splits: Vec<String>,
    pub installer: Option<String>,
    /// Epoch milliseconds.
    pub first_install_time: i64,
    pub last_update_time: i64,
    /// Runtime permissions were granted at install (`-g`).
    pub granted_all: bool,
}

/// Per-package state that also applies to system packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PackageFlags {
    enabled: EnabledState,
    /// Permissions granted with `pm grant`.
    granted: BTreeSet<String>,
}

/// The persisted package database.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Last `n` used for `/data/app/<package>-<n>`.
    last_dir_seq: u64,
    /// Packages under `/data`, by name.
    packages: BTreeMap<String, InstalledPackage>,
    /// Uids given to packages, by name (kept across updates and uninstalls with `-k`).
    uids: BTreeMap<String, u32>,
    /// System packages uninstalled for user 0 (`pm uninstall --user 0`).
    hidden_system: BTreeSet<String>,
    /// Enabled states and grants.
    flags: BTreeMap<String, PackageFlags>,
}

/// A package as queries see it: a system package, an updated system package or an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    pub package: String,
    pub version_code: i64,
    pub version_name: Option<String>,
    /// Directory holding the APKs.
    pub code_path: String,
    /// Path of the base APK, then the splits' APKs.
    pub apk_paths: Vec<String>,
    pub splits: Vec<String>,
    /// `/data/user/0/<package>`.
    pub data_dir: String,
    /// Comes with the image.
    pub system: bool,
    /// A system package with an update in `/data`.
    pub updated_system: bool,
    pub enabled: EnabledState,
    pub installer: Option<String>,
    pub first_install_time: i64,
    pub last_update_time: i64,
    pub uid: u32,
    pub min_sdk: u32,
    pub target_sdk: u32,
    pub launchable_activity: Option<String>,
    /// Known activities; empty when unknown (system packages).
    pub activities: Vec<String>,
    pub permissions: Vec<String>,
    pub granted: Vec<String>,
    pub debuggable: bool,
}

/// Options of an install (`pm install` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// `-R`: fail if the package is installed.
    pub no_replace: bool,
    /// `-d`: allow a lower version code.
    pub allow_downgrade: bool,
    /// `-t`: allow `testOnly` packages.
    pub allow_test: bool,
    /// `-g`: grant all runtime permissions.
    pub grant_all: bool,
    /// `-i <installer>`.
    pub installer: Option<String>,
    /// `-p <package>`: add or replace splits of an installed package.
    pub inherit_from: Option<String>,
    /// `--pkg <package>`: the package name the APKs must have.
    pub expect_package: Option<String>,
    /// `-S <size>` given to `install-create`: total size announced.
    pub total_size: Option<u64>,
}

/// Why a package operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PmError {
    /// A failure with Android's status code (e.g. `INSTALL_FAILED_VERSION_DOWNGRADE`) and
    /// detail; displays as `Failure [CODE: detail]`.
    #[error("Failure [{code}{}]", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Failed {
        code: &'static str,
        detail: Option<String>,
    },
    /// The package is not installed.
    #[error("Unknown package: {0}")]
    UnknownPackage(String),
    /// No open session has this id.
    #[error("Failure [INSTALL_FAILED_INVALID_SESSION: Session {0} does not exist]")]
    UnknownSession(i32),
    /// The file tree failed.
    #[error("Failure [INSTALL_FAILED_INTERNAL_ERROR: {0}]")]
    Io(#[from] io::Error),
}

impl PmError {
    fn failed(code: &'static str, detail: impl Into<String>) -> PmError {
        PmError::Failed {
            code,
            detail: Some(detail.into()),
        }
    }

    /// Android's status code (`INSTALL_FAILED_…`, `DELETE_FAILED_…`).
    pub fn code(&self) -> &str {
        match self {
            PmError::Failed { code, .. } => code,
            PmError::UnknownPackage(_) => "UNKNOWN_PACKAGE",
            PmError::UnknownSession(_) => "INSTALL_FAILED_INVALID_SESSION",
            PmError::Io(_) => "INSTALL_FAILED_INTERNAL_ERROR",
        }
    }
}

/// An open install session.
struct Session {
    options: InstallOptions,
    /// Staging directory, `/data/app/vmdl<id>.tmp`.
    dir: String,
    /// Staged files: name → size.
    files: BTreeMap<String, u64>,
    bytes: u64,
    touched: Instant,
}

/// The package manager of one phone. State is read from and written to the phone's tree on
/// every operation (under a lock), so it always reflects `/data`.
pub struct PackageManager {
    system: Vec<SystemPackage>,
    lock: Mutex<()>,
    sessions: Mutex<HashMap<i32, Session>>,
    stale_cleaned: Mutex<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether `name` can be a staged file name (`install-write`): a single path component.
fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
}

/// Maps an APK parse error to Android's install failure.
fn parse_failure(path: &str, e: ApkError) -> PmError {
    match e {
        ApkError::NotAnApk(m) => PmError::failed(
            "INSTALL_FAILED_INVALID_APK",
            format!("Failed to parse {path}: {m}"),
        ),
        ApkError::BadPackageName(p) => PmError::failed(
            "INSTALL_PARSE_FAILED_BAD_PACKAGE_NAME",
            format!("Failed to parse {path}: Invalid manifest package: {p:?}"),
        ),
        ApkError::Io(e) => PmError::Io(e),
        e => PmError::failed(
            "INSTALL_PARSE_FAILED_MANIFEST_MALFORMED",
            format!("Failed to parse {path}: {e}"),
        ),
    }
}

/// The uid system packages run as: `system` for the framework's own, `shell` for the shell.
fn system_uid(package: &str) -> Option<u32> {
    match package {
        "android" | "com.android.settings" | "com.android.providers.settings" => Some(1000),
        "com.android.shell" => Some(2000),
        _ => None,
    }
}

impl PackageManager {
    /// A package manager over the image's system packages. State under `/data` is read from
    /// the file tree when an operation needs it.
    pub fn new(system: Vec<SystemPackage>) -> PackageManager {
        PackageManager {
            system,
            lock: Mutex::new(()),
            sessions: Mutex::new(HashMap::new()),
            stale_cleaned: Mutex::new(false),
        }
    }

    /// The image's packages.
    pub fn system_packages(&self) -> &[SystemPackage] {
        &self.system
    }

    fn system_package(&self, name: &str) -> Option<&SystemPackage> {
        self.system.iter().find(|p| p.package == name)
    }

    fn load(&self, fs: &PhoneFs) -> Result<State, PmError> {
        match fs.read(STATE_PATH, MAX_STATE_BYTES) {
            Ok(data) => match serde_json::from_slice(&data) {
                Ok(s) => Ok(s),
                Err(e) => {
                    tracing::warn!(error = %e, "package database is corrupt; starting empty");
                    Ok(State::default())
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e.into()),
        }
    }

    fn save(&self, fs: &PhoneFs, state: &State) -> Result<(), PmError> {
        let data = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
        fs.mkdir_all("/data/system")?;
        fs.write(STATE_PATH, &data)?;
        Ok(())
    }

    /// Prepares the package manager at boot: removes staging directories left by sessions
    /// of a previous run and creates the data directories of system packages.
    pub fn boot(&self, fs: &PhoneFs) -> Result<(), PmError> {
        let _g = lock(&self.lock);
        self.clean_stale(fs);
        let state = self.load(fs)?;
        for p in &self.system {
            if !state.hidden_system.contains(&p.package) {
                let _ = fs.mkdir_all(&format!("/data/data/{}", p.package));
            }
        }
        ensure_user_link(fs);
        Ok(())
    }

    fn clean_stale(&self, fs: &PhoneFs) {
        let mut done = lock(&self.stale_cleaned);
        if *done {
            return;
        }
        *done = true;
        let open: BTreeSet<String> = lock(&self.sessions)
            .values()
            .map(|s| s.dir.clone())
            .collect();
        if let Ok(entries) = fs.read_dir("/data/app") {
            for (name, _) in entries {
                if name.starts_with("vmdl") && name.ends_with(".tmp") {
                    let path = format!("/data/app/{name}");
                    if !open.contains(&path) {
                        let _ = fs.remove_all(&path);
                    }
                }
            }
        }
    }

    /// A package's uid: fixed ones for core system packages, `10000 + index` for the other
    /// system packages, and uids after those for apps (kept in the database).
    fn uid_of(&self, state: &State, package: &str) -> u32 {
        if let Some(u) = system_uid(package) {
            return u;
        }
        if let Some(i) = self.system.iter().position(|p| p.package == package) {
            return FIRST_APP_UID + i as u32;
        }
        state.uids.get(package).copied().unwrap_or(0)
    }

    fn assign_uid(&self, state: &mut State, package: &str) -> u32 {
        if self.system_package(package).is_some() {
            return self.uid_of(state, package);
        }
        if let Some(&u) = state.uids.get(package) {
            return u;
        }
        let floor = FIRST_APP_UID + self.system.len() as u32;
        let next = state
            .uids
            .values()
            .copied()
            .max()
            .map(|m| m + 1)
            .unwrap_or(floor)
            .max(floor);
        state.uids.insert(package.to_string(), next);
        next
    }

    fn view(&self, state: &State, name: &str) -> Option<PackageInfo> {
        let flags = state.flags.get(name).cloned().unwrap_or_default();
        let sys = self.system_package(name);
        let data_dir = format!("/data/user/0/{name}");
        if let Some(p) = state.packages.get(name) {
            let mut apk_paths = vec![format!("{}/base.apk", p.code_path)];
            apk_paths.extend(
                p.splits
                    .iter()
                    .map(|s| format!("{}/split_{s}.apk", p.code_path)),
            );
            let mut granted: Vec<String> = flags.granted.iter().cloned().collect();
            if p.granted_all {
                for perm in &p.info.permissions {
                    if !granted.contains(perm) {
                        granted.push(perm.clone());
                    }
                }
            }
            return Some(PackageInfo {
                package: name.to_string(),
                version_code: p.info.version_code,
                version_name: p.info.version_name.clone(),
                code_path: p.code_path.clone(),
                apk_paths,
                splits: p.splits.clone(),
                data_dir,
                system: sys.is_some(),
                updated_system: sys.is_some(),
                enabled: flags.enabled,
                installer: p.installer.clone(),
                first_install_time: if sys.is_some() {
                    SYSTEM_INSTALL_TIME_MS
                } else {
                    p.first_install_time
                },
                last_update_time: p.last_update_time,
                uid: self.uid_of(state, name),
                min_sdk: p.info.min_sdk,
                target_sdk: p.info.target_sdk,
                launchable_activity: p.info.launchable_activity.clone(),
                activities: p.info.activities.clone(),
                permissions: p.info.permissions.clone(),
                granted,
                debuggable: p.info.debuggable,
            });
        }
        let sys = sys?;
        if state.hidden_system.contains(name) {
            return None;
        }
        let code_path = crate::fs::parent_of(&sys.apk_path).unwrap_or_else(|| "/system".into());
        Some(PackageInfo {
            package: name.to_string(),
            version_code: sys.version_code,
            version_name: Some(sys.version_name.clone()),
            code_path,
            apk_paths: vec![sys.apk_path.clone()],
            splits: Vec::new(),
            data_dir,
            system: true,
            updated_system: false,
            enabled: flags.enabled,
            installer: None,
            first_install_time: SYSTEM_INSTALL_TIME_MS,
            last_update_time: SYSTEM_INSTALL_TIME_MS,
            uid: self.uid_of(state, name),
            min_sdk: 1,
            target_sdk: 0,
            launchable_activity: sys.launchable_activity.clone(),
            activities: sys.launchable_activity.iter().cloned().collect(),
            permissions: Vec::new(),
            granted: flags.granted.iter().cloned().collect(),
            debuggable: false,
        })
    }

    /// Every visible package (system and installed), sorted by name.
    pub fn list(&self, fs: &PhoneFs) -> Result<Vec<PackageInfo>, PmError> {
        let _g = lock(&self.lock);
        let state = self.load(fs)?;
        let names: BTreeSet<&str> = self
            .system
            .iter()
            .map(|p| p.package.as_str())
            .chain(state.packages.keys().map(|k| k.as_str()))
            .collect();
        Ok(names
            .into_iter()
            .filter_map(|n| self.view(&state, n))
            .collect())
    }

    /// One package, if visible.
    pub fn get(&self, fs: &PhoneFs, package: &str) -> Result<Option<PackageInfo>, PmError> {
        let _g = lock(&self.lock);
        let state = self.load(fs)?;
        Ok(self.view(&state, package))
    }

    /// The APK paths of a package (base first), as `pm path` prints them.
    pub fn path(&self, fs: &PhoneFs, package: &str) -> Result<Option<Vec<String>>, PmError> {
        Ok(self.get(fs, package)?.map(|p| p.apk_paths))
    }

    /// Installs APKs that are already on the phone (`pm install <path> [split…]`). The
    /// files are copied into a staging directory first, so the originals may be removed.
    pub fn install_paths(
        &self,
        fs: &PhoneFs,
        paths: &[String],
        options: &InstallOptions,
        device_sdk: u32,
    ) -> Result<String, PmError> {
        let id = self.create_session(fs, options.clone())?;
        let result = (|| {
            for (i, p) in paths.iter().enumerate() {
                let name = if i == 0 {
                    "base.apk".to_string()
                } else {
                    format!("split{i}.apk")
                };
                let mut file = fs.open_read(p).map_err(|e| {
                    PmError::failed(
                        "INSTALL_FAILED_INVALID_URI",
                        format!("Unable to open {p}: {}", crate::fs::error_text(&e)),
                    )
                })?;
                self.write_session(fs, id, &name, &mut file, None)?;
            }
            self.commit_session(fs, id, device_sdk)
        })();
        if result.is_err() {
            let _ = self.abandon_session(fs, id);
        }
        result
    }

    /// Installs one APK streamed from `reader` (`pm install -S <size>`): exactly `size`
    /// bytes are read; a shorter stream fails the install.
    pub fn install_stream(
        &self,
        fs: &PhoneFs,
        reader: &mut dyn Read,
        size: Option<u64>,
        options: &InstallOptions,
        device_sdk: u32,
    ) -> Result<String, PmError> {
        let id = self.create_session(fs, options.clone())?;
        let result = self
            .write_session(fs, id, "base.apk", reader, size)
            .and_then(|_| self.commit_session(fs, id, device_sdk));
        if result.is_err() {
            let _ = self.abandon_session(fs, id);
        }
        result
    }

    /// Opens an install session (`install-create`); returns its id.
    pub fn create_session(&self, fs: &PhoneFs, options: InstallOptions) -> Result<i32, PmError> {
        let mut sessions = lock(&self.sessions);
        let stale: Vec<i32> = sessions
            .iter()
            .filter(|(_, s)| s.touched.elapsed() > SESSION_IDLE_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(s) = sessions.remove(&id) {
                let _ = fs.remove_all(&s.dir);
            }
        }
        if sessions.len() >= MAX_SESSIONS {
            return Err(PmError::failed(
                "INSTALL_FAILED_INTERNAL_ERROR",
                format!("Too many active sessions (max {MAX_SESSIONS})"),
            ));
        }
        if let Some(total) = options.total_size
            && total > MAX_SESSION_BYTES
        {
            return Err(PmError::failed(
                "INSTALL_FAILED_INSUFFICIENT_STORAGE",
                format!("Session size {total} exceeds {MAX_SESSION_BYTES} bytes"),
            ));
        }
        let mut id;
        loop {
            id = (rand::random::<u32>() & 0x7fff_ffff) as i32;
            if id > 0 && !sessions.contains_key(&id) {
                break;
            }
        }
        let dir = format!("/data/app/vmdl{id}.tmp");
        fs.mkdir_all(&dir)?;
        sessions.insert(
            id,
            Session {
                options,
                dir,
                files: BTreeMap::new(),
                bytes: 0,
                touched: Instant::now(),
            },
        );
        Ok(id)
    }

    /// Stages one APK of a session (`install-write`) from `reader`: exactly `size` bytes when
    /// given, else up to the end of the stream. Returns the bytes written.
    pub fn write_session(
        &self,
        fs: &PhoneFs,
        id: i32,
        name: &str,
        reader: &mut dyn Read,
        size: Option<u64>,
    ) -> Result<u64, PmError> {
        if !valid_file_name(name) {
            return Err(PmError::failed(
                "INSTALL_FAILED_INVALID_APK",
                format!("Invalid name: {name}"),
            ));
        }
        let (path, budget) = {
            let mut sessions = lock(&self.sessions);
            let s = sessions.get_mut(&id).ok_or(PmError::UnknownSession(id))?;
            s.touched = Instant::now();
            if !s.files.contains_key(name) && s.files.len() >= MAX_SESSION_FILES {
                return Err(PmError::failed(
                    "INSTALL_FAILED_INVALID_APK",
                    format!("Too many files in session (max {MAX_SESSION_FILES})"),
                ));
            }
            let already = s.files.get(name).copied().unwrap_or(0);
            let left = MAX_SESSION_BYTES.saturating_sub(s.bytes - already);
            (format!("{}/{name}", s.dir), left.min(MAX_APK_BYTES))
        };
        if let Some(n) = size
            && n > budget
        {
            return Err(PmError::failed(
                "INSTALL_FAILED_INSUFFICIENT_STORAGE",
                format!("{name} is {n} bytes; at most {budget} bytes fit"),
            ));
        }
        let limit = size.unwrap_or(budget);
        let mut limited = reader.take(limit.saturating_add(u64::from(size.is_none())));
        let written = fs.write_from(&path, &mut limited, 0o644)?;
        if let Some(n) = size
            && written < n
        {
            let _ = fs.remove_file(&path);
            return Err(PmError::failed(
                "INSTALL_FAILED_INVALID_APK",
                format!("Stream ended after {written} of {n} bytes"),
            ));
        }
        if size.is_none() && written > budget {
            let _ = fs.remove_file(&path);
            return Err(PmError::failed(
                "INSTALL_FAILED_INSUFFICIENT_STORAGE",
                format!("{name} exceeds {budget} bytes"),
            ));
        }
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(&id) {
            Some(s) => {
                let old = s.files.insert(name.to_string(), written).unwrap_or(0);
                s.bytes = s.bytes - old + written;
                s.touched = Instant::now();
                Ok(written)
            }
            None => {
                // Abandoned while we wrote.
                let _ = fs.remove_file(&path);
                Err(PmError::UnknownSession(id))
            }
        }
    }

    /// Drops a session and its staged files (`install-abandon`).
    pub fn abandon_session(&self, fs: &PhoneFs, id: i32) -> Result<(), PmError> {
        let s = lock(&self.sessions)
            .remove(&id)
            .ok_or(PmError::UnknownSession(id))?;
        match fs.remove_all(&s.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Installs a session's APKs (`install-commit`); the session is closed either way.
    /// Returns the package name.
    pub fn commit_session(
        &self,
        fs: &PhoneFs,
        id: i32,
        device_sdk: u32,
    ) -> Result<String, PmError> {
        let session = lock(&self.sessions)
            .remove(&id)
            .ok_or(PmError::UnknownSession(id))?;
        let result = self.commit(fs, &session, device_sdk);
        let _ = fs.remove_all(&session.dir);
        result
    }

    fn commit(&self, fs: &PhoneFs, session: &Session, device_sdk: u32) -> Result<String, PmError> {
        let opts = &session.options;
        // Parse every staged APK.
        let mut base: Option<(String, ApkInfo)> = None;
        let mut splits: BTreeMap<String, (String, ApkInfo)> = BTreeMap::new();
        for name in session.files.keys() {
            let path = format!("{}/{name}", session.dir);
            let file = fs.open_read(&path)?;
            let info = apk::parse(io::BufReader::new(file)).map_err(|e| parse_failure(&path, e))?;
            match info.split.clone() {
                None => {
                    if base.is_some() {
                        return Err(PmError::failed(
                            "INSTALL_FAILED_INVALID_APK",
                            "Split null was defined multiple times",
                        ));
                    }
                    base = Some((path, info));
                }
                Some(split) => {
                    if splits.contains_key(&split) {
                        return Err(PmError::failed(
                            "INSTALL_FAILED_INVALID_APK",
                            format!("Split {split} was defined multiple times"),
                        ));
                    }
                    splits.insert(split, (path, info));
                }
            }
        }
        if base.is_none() && splits.is_empty() {
            return Err(PmError::failed(
                "INSTALL_FAILED_INVALID_APK",
                "No packages staged",
            ));
        }

        let _g = lock(&self.lock);
        let mut state = self.load(fs)?;

        // Inherit the installed base (and splits not replaced) for `-p`.
        let mut inherited: Vec<(String, String)> = Vec::new(); // (source path, split name or "")
        let base_info = match &base {
            Some((_, info)) => info.clone(),
            None => {
                let Some(pkg) = opts.inherit_from.as_deref() else {
                    return Err(PmError::failed(
                        "INSTALL_FAILED_INVALID_APK",
                        "Full install must include a base package",
                    ));
                };
                let Some(existing) = state.packages.get(pkg) else {
                    return Err(PmError::failed(
                        "INSTALL_FAILED_INVALID_APK",
                        format!("Missing existing base package for {pkg}"),
                    ));
                };
                inherited.push((format!("{}/base.apk", existing.code_path), String::new()));
                for s in &existing.splits {
                    if !splits.contains_key(s) {
                        inherited
                            .push((format!("{}/split_{s}.apk", existing.code_path), s.clone()));
                    }
                }
                existing.info.clone()
            }
        };
        let package = base_info.package.clone();
        if let Some(p) = &opts.expect_package
            && p != &package
        {
            return Err(PmError::failed(
                "INSTALL_FAILED_INVALID_APK",
                format!("Package {package} does not match expected {p}"),
            ));
        }
        for (name, (path, info)) in &splits {
            if info.package != package {
                return Err(PmError::failed(
                    "INSTALL_FAILED_INVALID_APK",
                    format!(
                        "Inconsistent package {} in {path}; expected {package}",
                        info.package
                    ),
                ));
            }
            if info.version_code != base_info.version_code {
                return Err(PmError::failed(
                    "INSTALL_FAILED_INVALID_APK",
                    format!(
                        "Inconsistent version {} in {path}; expected {}",
                        info.version_code, base_info.version_code
                    ),
                ));
            }
            if name.is_empty() || !valid_file_name(&format!("split_{name}.apk")) {
                return Err(PmError::failed(
                    "INSTALL_FAILED_INVALID_APK",
                    format!("Invalid split name {name:?}"),
                ));
            }
        }
        if base_info.min_sdk > device_sdk {
            return Err(PmError::failed(
                "INSTALL_FAILED_OLDER_SDK",
                format!(
                    "Requires newer sdk version #{} (current version is #{device_sdk})",
                    base_info.min_sdk
                ),
            ));
        }
        if base_info.test_only && !opts.allow_test {
            return Err(PmError::failed(
                "INSTALL_FAILED_TEST_ONLY",
                "installPackageLI",
            ));
        }
        let existing = self.view(&state, &package);
        let hidden_system =
            self.system_package(&package).is_some() && state.hidden_system.contains(&package);
        if let Some(cur) = &existing {
            if opts.no_replace {
                return Err(PmError::failed(
                    "INSTALL_FAILED_ALREADY_EXISTS",
                    format!("Attempt to re-install {package} without first uninstalling."),
                ));
            }
            if base_info.version_code < cur.version_code && !opts.allow_downgrade {
                return Err(PmError::failed(
                    "INSTALL_FAILED_VERSION_DOWNGRADE",
                    format!(
                        "Downgrade detected: Update version code {} is older than current {}",
                        base_info.version_code, cur.version_code
                    ),
                ));
            }
        } else if state.packages.len() >= MAX_PACKAGES {
            return Err(PmError::failed(
                "INSTALL_FAILED_INSUFFICIENT_STORAGE",
                format!("Too many packages (max {MAX_PACKAGES})"),
            ));
        }

        // Lay out the new code directory.
        state.last_dir_seq += 1;
        let code_path = format!("/data/app/{package}-{}", state.last_dir_seq);
        if fs.exists(&code_path) {
            fs.remove_all(&code_path)?;
        }
        fs.mkdir_all(&code_path)?;
        let placed = (|| -> Result<(), PmError> {
            if let Some((path, _)) = &base {
                fs.rename(path, &format!("{code_path}/base.apk"))?;
            }
            for (src, split) in &inherited {
                let dst = if split.is_empty() {
                    format!("{code_path}/base.apk")
                } else {
                    format!("{code_path}/split_{split}.apk")
                };
                fs.copy(src, &dst)?;
            }
            for (name, (path, _)) in &splits {
                fs.rename(path, &format!("{code_path}/split_{name}.apk"))?;
            }
            Ok(())
        })();
        if let Err(e) = placed {
            let _ = fs.remove_all(&code_path);
            return Err(e);
        }
        let mut split_names: Vec<String> = splits.keys().cloned().collect();
        split_names.extend(
            inherited
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(_, s)| s.clone()),
        );
        split_names.sort();
        split_names.dedup();

        let now = now_ms();
        let old = state.packages.remove(&package);
        let record = InstalledPackage {
            info: base_info,
            code_path: code_path.clone(),
            splits: split_names,
            installer: opts
                .installer
                .clone()
                .or_else(|| old.as_ref().and_then(|o| o.installer.clone())),
            first_install_time: match (&old, &existing) {
                (Some(o), _) => o.first_install_time,
                (None, Some(e)) => e.first_install_time,
                _ => now,
            },
            last_update_time: now,
            granted_all: opts.grant_all || old.as_ref().is_some_and(|o| o.granted_all),
        };
        self.assign_uid(&mut state, &package);
        state.packages.insert(package.clone(), record);
        if hidden_system {
            state.hidden_system.remove(&package);
        }
        if let Err(e) = self.save(fs, &state) {
            let _ = fs.remove_all(&code_path);
            return Err(e);
        }
        if let Some(o) = old
            && o.code_path != code_path
        {
            let _ = fs.remove_all(&o.code_path);
        }
        fs.mkdir_all(&format!("/data/data/{package}"))?;
        ensure_user_link(fs);
        Ok(package)
    }

    /// Uninstalls a package (`pm uninstall [-k] [--user N]`). Removing an updated system
    /// package removes the update; a system package without update can only be removed for
    /// the user (`for_user`), which hides it.
    pub fn uninstall(
        &self,
        fs: &PhoneFs,
        package: &str,
        keep_data: bool,
        for_user: bool,
    ) -> Result<(), PmError> {
        let _g = lock(&self.lock);
        let mut state = self.load(fs)?;
        let delete_failed = || PmError::Failed {
            code: "DELETE_FAILED_INTERNAL_ERROR",
            detail: None,
        };
        let is_system = self.system_package(package).is_some();
        if let Some(p) = state.packages.remove(package) {
            if !is_system {
                state.flags.remove(package);
                if !keep_data {
                    state.uids.remove(package);
                }
            }
            self.save(fs, &state)?;
            let _ = fs.remove_all(&p.code_path);
            if !is_system && !keep_data {
                remove_if_exists(fs, &format!("/data/data/{package}"))?;
            }
            return Ok(());
        }
        if is_system && !state.hidden_system.contains(package) && for_user {
            state.hidden_system.insert(package.to_string());
            self.save(fs, &state)?;
            if !keep_data {
                remove_if_exists(fs, &format!("/data/data/{package}"))?;
            }
            return Ok(());
        }
        Err(delete_failed())
    }

    /// Deletes an app's data (`pm clear`).
    pub fn clear_data(&self, fs: &PhoneFs, package: &str) -> Result<(), PmError> {
        if self.get(fs, package)?.is_none() {
            return Err(PmError::UnknownPackage(package.to_string()));
        }
        let dir = format!("/data/data/{package}");
        remove_if_exists(fs, &dir)?;
        fs.mkdir_all(&dir)?;
        Ok(())
    }

    /// Sets a package's enabled state (`pm enable`/`disable`/`disable-user`).
    pub fn set_enabled(
        &self,
        fs: &PhoneFs,
        package: &str,
        enabled: EnabledState,
    ) -> Result<(), PmError> {
        let _g = lock(&self.lock);
        let mut state = self.load(fs)?;
        if self.view(&state, package).is_none() {
            return Err(PmError::UnknownPackage(package.to_string()));
        }
        state.flags.entry(package.to_string()).or_default().enabled = enabled;
        self.save(fs, &state)
    }

    /// Records a runtime permission grant or revoke (`pm grant`/`revoke`).
    pub fn set_permission(
        &self,
        fs: &PhoneFs,
        package: &str,
        permission: &str,
        granted: bool,
    ) -> Result<(), PmError> {
        let _g = lock(&self.lock);
        let mut state = self.load(fs)?;
        if self.view(&state, package).is_none() {
            return Err(PmError::UnknownPackage(package.to_string()));
        }
        let flags = state.flags.entry(package.to_string()).or_default();
        if granted {
            if flags.granted.len() < 1024 {
                flags.granted.insert(permission.to_string());
            }
        } else {
            flags.granted.remove(permission);
        }
        self.save(fs, &state)
    }

    /// `dumpsys package <pkg>`-style description of one package.
    pub fn dump(&self, fs: &PhoneFs, package: &str) -> Result<Option<String>, PmError> {
        Ok(self.get(fs, package)?.map(|p| dump_package(&p)))
    }
}

fn remove_if_exists(fs: &PhoneFs, path: &str) -> Result<(), PmError> {
    match fs.remove_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Makes `/data/user/0` a link to `/data/data` when it does not exist yet.
fn ensure_user_link(fs: &PhoneFs) {
    if fs.lstat("/data/user/0").is_err() {
        let _ = fs.mkdir_all("/data/user");
        let _ = fs.symlink("/data/data", "/data/user/0");
    }
}

/// Formats epoch milliseconds as `dumpsys` does (`2024-01-31 12:00:00`, UTC).
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The `Package [...]` section of `dumpsys package`.
pub fn dump_package(p: &PackageInfo) -> String {
    let mut flags = vec!["HAS_CODE", "ALLOW_CLEAR_USER_DATA", "ALLOW_BACKUP"];
    if p.system {
        flags.insert(0, "SYSTEM");
    }
    if p.updated_system {
        flags.push("UPDATED_SYSTEM_APP");
    }
    if p.debuggable {
        flags.push("DEBUGGABLE");
    }
    let hash = {
        let mut h: u32 = 0x811c_9dc5;
        for b in p.package.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h & 0x0fff_ffff
    };
    let mut out = String::new();
    out.push_str(&format!("  Package [{}] ({hash:x}):\n", p.package));
    out.push_str(&format!("    userId={}\n", p.uid));
    out.push_str(&format!("    pkg=Package{{{hash:x} {}}}\n", p.package));
    out.push_str(&format!("    codePath={}\n", p.code_path));
    out.push_str(&format!("    resourcePath={}\n", p.code_path));
    out.push_str(&format!("    legacyNativeLibraryDir={}/lib\n", p.code_path));
    out.push_str(&format!(
        "    versionCode={} minSdk={} targetSdk={}\n",
        p.version_code, p.min_sdk, p.target_sdk
    ));
    out.push_str(&format!(
        "    versionName={}\n",
        p.version_name.as_deref().unwrap_or("null")
    ));
    let mut splits = vec!["base".to_string()];
    splits.extend(p.splits.iter().cloned());
    out.push_str(&format!("    splits=[{}]\n", splits.join(", ")));
    out.push_str(&format!("    flags=[ {} ]\n", flags.join(" ")));
    out.push_str(&format!("    dataDir={}\n", p.data_dir));
    out.push_str(&format!(
        "    timeStamp={}\n",
        format_time(p.last_update_time)
    ));
    out.push_str(&format!(
        "    firstInstallTime={}\n",
        format_time(p.first_install_time)
    ));
    out.push_str(&format!(
        "    lastUpdateTime={}\n",
        format_time(p.last_update_time)
    ));
    if let Some(i) = &p.installer {
        out.push_str(&format!("    installerPackageName={i}\n"));
    }
    if !p.permissions.is_empty() {
        out.push_str("    requested permissions:\n");
        for perm in &p.permissions {
            out.push_str(&format!("      {perm}\n"));
        }
    }
    if !p.granted.is_empty() {
        out.push_str("    runtime permissions:\n");
        for perm in &p.granted {
            out.push_str(&format!("      {perm}: granted=true\n"));
        }
    }
    out.push_str(&format!(
        "    User 0: ceDataInode=0 installed=true hidden=false suspended=false stopped=false notLaunched=false enabled={} instant=false virtual=false\n",
        p.enabled.code()
    ));
    out
}
