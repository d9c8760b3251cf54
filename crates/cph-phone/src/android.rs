//! Android services as shell commands: `getprop`, `setprop`, `pm`, `cmd`, `am`, `dumpsys`,
//! `settings`, `wm`, `input` and `logcat`, and the state behind them ([`AndroidState`]):
//! the activity stack, settings, recorded input and broadcasts, battery and the log buffer.
//!
//! Nothing runs for real: activity starts, broadcasts and input events are checked (the
//! package must exist, coordinates must be numbers, …), recorded, and shown by `dumpsys` and
//! `logcat`. Settings are persisted in [`SETTINGS_PATH`] like the package database, so they
//! survive restarts and are gone after a reset that wipes `/data`.
//!
//! Behaviour worth knowing:
//! - `cmd package …` is `pm …`; `cmd settings|activity|window|input …` are `settings`, `am`,
//!   `wm` and `input`. `pm install -S <size>` without a path reads exactly `size` APK bytes
//!   from standard input (the streamed install of `adb install`).
//! - `settings get global enable_adb_incremental_install_default` prints `0` (a default), so
//!   modern `adb install` skips incremental installs.
//! - `logcat` prints the buffer and returns (with or without `-d`); `-c` clears it.
//! - Display size and density come from the properties [`crate::image::DISPLAY_WIDTH_PROP`],
//!   [`crate::image::DISPLAY_HEIGHT_PROP`] and [`crate::image::DISPLAY_DENSITY_PROP`];
//!   `wm size`/`wm density` overrides are stored as Android does, in the settings
//!   `global display_size_forced` and `secure display_density_forced`.

use crate::PhoneCore;
use crate::image::{DISPLAY_DENSITY_PROP, DISPLAY_HEIGHT_PROP, DISPLAY_WIDTH_PROP, HOME_ACTIVITY};
use crate::pm::{EnabledState, InstallOptions, PackageInfo, PmError};
use crate::shell::{CommandFn, Ctx};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::Mutex;

/// The commands this module provides.
pub const COMMANDS: &[(&str, CommandFn)] = &[
    ("getprop", getprop),
    ("setprop", setprop),
    ("pm", pm),
    ("cmd", cmd),
    ("am", am),
    ("dumpsys", dumpsys),
    ("settings", settings),
    ("wm", wm),
    ("input", input),
    ("logcat", logcat),
];

/// Where settings are stored.
pub const SETTINGS_PATH: &str = "/data/system/settings.json";
/// Most lines kept in the log buffer.
pub const MAX_LOG_LINES: usize = 5000;
/// Longest log message kept (longer ones are cut).
const MAX_LOG_MESSAGE: usize = 4096;
/// Most activity starts, broadcasts and input events remembered (each).
const MAX_HISTORY: usize = 100;
/// Most settings per namespace, longest key and value.
const MAX_SETTINGS: usize = 10_000;
const MAX_SETTING_KEY: usize = 256;
const MAX_SETTING_VALUE: usize = 8192;
const MAX_SETTINGS_FILE: u64 = 16 * 1024 * 1024;
/// The SDK level assumed when the properties do not say.
const DEFAULT_SDK: u32 = 34;

/// One line of the log buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Epoch milliseconds.
    pub time_ms: i64,
    pub pid: u32,
    /// `V`, `D`, `I`, `W`, `E` or `F`.
    pub level: char,
    pub tag: String,
    pub message: String,
}

impl LogLine {
    /// `threadtime` format: `MM-DD HH:MM:SS.mmm  PID  TID L TAG     : message`.
    pub fn format(&self) -> String {
        let t = chrono::DateTime::from_timestamp_millis(self.time_ms)
            .map(|d| d.format("%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_default();
        format!(
            "{t} {:5} {:5} {} {:<8}: {}",
            self.pid, self.pid, self.level, self.tag, self.message
        )
    }
}

/// An activity shown or started: package and fully qualified class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub package: String,
    pub class: String,
}

impl Component {
    /// `pkg/.Cls` when the class is inside the package, else `pkg/full.Cls`.
    pub fn short(&self) -> String {
        match self.class.strip_prefix(&format!("{}.", self.package)) {
            Some(rest) => format!("{}/.{rest}", self.package),
            None => format!("{}/{}", self.package, self.class),
        }
    }

    /// `pkg/full.Cls`.
    pub fn full(&self) -> String {
        format!("{}/{}", self.package, self.class)
    }
}

/// A recorded `am start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRecord {
    pub time_ms: i64,
    pub component: Component,
    /// The intent as `am` printed it.
    pub intent: String,
    pub task: u32,
}

/// Battery values shown by `dumpsys battery` (changeable with `dumpsys battery set`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Battery {
    ac: bool,
    usb: bool,
    level: u32,
    status: u32,
}

impl Default for Battery {
    fn default() -> Self {
        Battery {
            ac: true,
            usb: false,
            level: 100,
            status: 2,
        }
    }
}

/// The three settings tables.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    pub system: BTreeMap<String, String>,
    pub secure: BTreeMap<String, String>,
    pub global: BTreeMap<String, String>,
}

impl Settings {
    fn table(&mut self, ns: &str) -> Option<&mut BTreeMap<String, String>> {
        match ns {
            "system" => Some(&mut self.system),
            "secure" => Some(&mut self.secure),
            "global" => Some(&mut self.global),
            _ => None,
        }
    }

    /// The settings of a new phone. `android_id` derives from the serial number.
    fn defaults(core: &PhoneCore) -> Settings {
        let serial = core.props.get("ro.serialno").unwrap_or_default();
        let android_id = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(format!("android_id:{serial}").as_bytes());
            hex::encode(&d[..8])
        };
        let model = core.props.get("ro.product.model").unwrap_or_default();
        let kv = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut global = kv(&[
            ("adb_enabled", "1"),
            ("airplane_mode_on", "0"),
            ("animator_duration_scale", "1.0"),
            ("auto_time", "1"),
            ("auto_time_zone", "1"),
            ("bluetooth_on", "0"),
            ("development_settings_enabled", "1"),
            ("device_provisioned", "1"),
            ("enable_adb_incremental_install_default", "0"),
            ("mobile_data", "1"),
            ("package_verifier_enable", "0"),
            ("stay_on_while_plugged_in", "7"),
            ("transition_animation_scale", "1.0"),
            ("verifier_verify_adb_installs", "0"),
            ("wifi_on", "1"),
            ("window_animation_scale", "1.0"),
        ]);
        global.insert("device_name".into(), model);
        let mut secure = kv(&[
            (
                "default_input_method",
                "com.android.inputmethod.latin/.LatinIME",
            ),
            (
                "enabled_input_methods",
                "com.android.inputmethod.latin/.LatinIME",
            ),
            ("install_non_market_apps", "1"),
            ("location_mode", "3"),
            ("user_setup_complete", "1"),
        ]);
        secure.insert("android_id".into(), android_id);
        let system = kv(&[
            ("accelerometer_rotation", "0"),
            ("font_scale", "1.0"),
            ("screen_brightness", "102"),
            ("screen_brightness_mode", "0"),
            ("screen_off_timeout", "2147483647"),
            ("sound_effects_enabled", "0"),
            ("user_rotation", "0"),
        ]);
        Settings {
            system,
            secure,
            global,
        }
    }
}

#[derive(Default)]
struct Inner {
    settings: Option<Settings>,
    resumed: Option<Component>,
    starts: VecDeque<StartRecord>,
    broadcasts: VecDeque<String>,
    input: VecDeque<String>,
    services: VecDeque<String>,
    stopped: Vec<String>,
    log: VecDeque<LogLine>,
    battery: Battery,
    task_seq: u32,
}

/// Activities, settings, input events, battery and the log buffer of one phone.
pub struct AndroidState {
    inner: Mutex<Inner>,
}

impl Default for AndroidState {
    fn default() -> Self {
        Self::new()
    }
}

impl AndroidState {
    /// Empty state: nothing started, an empty log, settings read on first use.
    pub fn new() -> AndroidState {
        AndroidState {
            inner: Mutex::new(Inner {
                task_seq: 1,

                ..Default::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a line to the log buffer (the oldest lines go first when it is full).
    pub fn log(&self, level: char, tag: &str, message: &str) {
        let mut inner = self.lock();
        let pid = match tag {
            "ActivityTaskManager" | "ActivityManager" | "PackageManager" | "SystemServer" => 1000,
            _ => 1,
        };
        let mut message = message.to_string();
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        if inner.log.len() >= MAX_LOG_LINES {
            inner.log.pop_front();
        }
        inner.log.push_back(LogLine {
            time_ms: chrono::Utc::now().timestamp_millis(),
            pid,
            level,
            tag: tag.chars().take(64).collect(),
            message,
        });
    }

    /// The log buffer, oldest first.
    pub fn log_lines(&self) -> Vec<LogLine> {
        self.lock().log.iter().cloned().collect()
    }

    /// Empties the log buffer (`logcat -c`).
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// The activity in front, if any app was started.
    pub fn resumed(&self) -> Option<Component> {
        self.lock().resumed.clone()
    }

    /// Recorded activity starts, oldest first.
    pub fn starts(&self) -> Vec<StartRecord> {
        self.lock().starts.iter().cloned().collect()
    }

    /// Recorded input events (`input …` command lines), oldest first.
    pub fn input_events(&self) -> Vec<String> {
        self.lock().input.iter().cloned().collect()
    }

    /// Recorded broadcasts (intent descriptions), oldest first.
    pub fn broadcasts(&self) -> Vec<String> {
        self.lock().broadcasts.iter().cloned().collect()
    }

    fn record_start(&self, component: Component, intent: String) -> u32 {
        let mut inner = self.lock();
        let task = match inner
            .starts
            .iter()
            .rev()
            .find(|s| s.component.package == component.package)
        {
            Some(s) => s.task,
            None => {
                inner.task_seq += 1;
                inner.task_seq
            }
        };
        if inner.starts.len() >= MAX_HISTORY {
            inner.starts.pop_front();
        }
        inner.starts.push_back(StartRecord {
            time_ms: chrono::Utc::now().timestamp_millis(),
            component: component.clone(),
            intent,
            task,
        });
        inner.stopped.retain(|p| p != &component.package);
        inner.resumed = Some(component);
        task
    }

    fn go_home(&self) {
        self.lock().resumed = Some(home());
    }

    /// Stops an app: it leaves the front (the launcher shows).
    fn force_stop(&self, package: &str) {
        let mut inner = self.lock();
        if inner.resumed.as_ref().is_some_and(|c| c.package == package) {
            inner.resumed = Some(home());
        }
        if !inner.stopped.iter().any(|p| p == package) && inner.stopped.len() < MAX_HISTORY {
            inner.stopped.push(package.to_string());
        }
    }

    fn push_bounded(list: &mut VecDeque<String>, item: String) {
        if list.len() >= MAX_HISTORY {
            list.pop_front();
        }
        list.push_back(item);
    }

    /// Reads the settings (once) from the phone's tree, or creates the defaults.
    fn with_settings<T>(
        &self,
        core: &PhoneCore,
        f: impl FnOnce(&mut Settings) -> T,
    ) -> io::Result<T> {
        let mut inner = self.lock();
        if inner.settings.is_none() {
            let loaded = match core.fs.read(SETTINGS_PATH, MAX_SETTINGS_FILE) {
                Ok(data) => match serde_json::from_slice::<Settings>(&data) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "settings file is corrupt; using defaults");
                        Settings::defaults(core)
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => Settings::defaults(core),
                Err(e) => return Err(e),
            };
            inner.settings = Some(loaded);
        }
        let settings = inner.settings.get_or_insert_with(Settings::default);
        Ok(f(settings))
    }

    fn save_settings(&self, core: &PhoneCore) -> io::Result<()> {
        let data = {
            let inner = self.lock();
            match &inner.settings {
                Some(s) => serde_json::to_vec_pretty(s).map_err(io::Error::other)?,
                None => return Ok(()),
            }
        };
        core.fs.mkdir_all("/data/system")?;
        core.fs.write(SETTINGS_PATH, &data)
    }

    /// A setting's value (`settings get`).
    pub fn setting(&self, core: &PhoneCore, ns: &str, key: &str) -> io::Result<Option<String>> {
        self.with_settings(core, |s| s.table(ns).and_then(|t| t.get(key).cloned()))
    }

    /// Sets (`Some`) or deletes (`None`) a setting and saves the settings. Returns whether
    /// the key existed before.
    pub fn put_setting(
        &self,
        core: &PhoneCore,
        ns: &str,
        key: &str,
        value: Option<&str>,
    ) -> io::Result<bool> {
        if key.is_empty() || key.len() > MAX_SETTING_KEY {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad key"));
        }
        if value.is_some_and(|v| v.len() > MAX_SETTING_VALUE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "value too long",
            ));
        }
        let existed = self.with_settings(core, |s| {
            let Some(t) = s.table(ns) else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad namespace"));
            };
            match value {
                Some(v) => {
                    if !t.contains_key(key) && t.len() >= MAX_SETTINGS {
                        return Err(io::Error::other("too many settings"));
                    }
                    Ok(t.insert(key.to_string(), v.to_string()).is_some())
                }
                None => Ok(t.remove(key).is_some()),
            }
        })??;
        self.save_settings(core)?;
        Ok(existed)
    }

    fn settings_list(
        &self,
        core: &PhoneCore,
        ns: &str,
    ) -> io::Result<Option<Vec<(String, String)>>> {
        self.with_settings(core, |s| {
            s.table(ns)
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        })
    }
}

fn home() -> Component {
    Component {
        package: HOME_ACTIVITY.0.to_string(),
        class: HOME_ACTIVITY.1.to_string(),
    }
}

/// Loads what a phone keeps across restarts (persistent properties, the package database,
/// settings) and writes the boot lines of the log. Called once when a phone is built.
pub fn load_persistent_state(core: &PhoneCore) -> io::Result<()> {
    core.props.load_persistent(&core.fs)?;
    core.pm.boot(&core.fs).map_err(|e| match e {
        PmError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    })?;
    core.android.with_settings(core, |_| ())?;
    let a = &core.android;
    let release = core
        .props
        .get("ro.build.version.release")
        .unwrap_or_default();
    let fp = core.props.get("ro.build.fingerprint").unwrap_or_default();
    a.log(
        'I',
        "SystemServer",
        &format!("Entered the Android system server! ({release})"),
    );
    a.log('I', "SystemServer", &format!("Build fingerprint: {fp}"));
    a.log('I', "ActivityManager", "System now ready");
    a.log(
        'I',
        "ActivityTaskManager",
        &format!(
            "START u0 {{act=android.intent.action.MAIN cat=[android.intent.category.HOME] cmp={}}}",
            home().short()
        ),
    );
    a.log('I', "boot_progress", "Boot completed");
    a.go_home();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn out(ctx: &mut Ctx<'_>, s: &str) {
    let _ = ctx.stdout.write_all(s.as_bytes());
}

fn outln(ctx: &mut Ctx<'_>, s: &str) {
    let _ = ctx.stdout.write_all(s.as_bytes());
    let _ = ctx.stdout.write_all(b"\n");
}

fn errln(ctx: &mut Ctx<'_>, s: &str) {
    let _ = ctx.stderr.write_all(s.as_bytes());
    let _ = ctx.stderr.write_all(b"\n");
}

fn device_sdk(core: &PhoneCore) -> u32 {
    core.props
        .get_u32("ro.build.version.sdk")
        .unwrap_or(DEFAULT_SDK)
}

fn abs_path(ctx: &Ctx<'_>, p: &str) -> String {
    crate::fs::join(&ctx.cwd, p)
}

/// An argument list with a cursor.
struct Args<'a> {
    v: &'a [String],
    i: usize,
}

impl<'a> Args<'a> {
    fn new(v: &'a [String]) -> Self {
        Args { v, i: 0 }
    }
    fn next(&mut self) -> Option<&'a str> {
        let a = self.v.get(self.i)?;
        self.i += 1;
        Some(a.as_str())
    }
    fn peek(&self) -> Option<&'a str> {
        self.v.get(self.i).map(|s| s.as_str())
    }
    fn rest(&self) -> &'a [String] {
        &self.v[self.i.min(self.v.len())..]
    }
}

// ---------------------------------------------------------------------------------------
// getprop / setprop
// ---------------------------------------------------------------------------------------

/// `getprop [key [default]]`.
pub fn getprop(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let _ = ctx.core.props.load_persistent(&ctx.core.fs);
    let rest: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match rest.as_slice() {
        [] => {
            let listing = ctx.core.props.getprop_listing();
            out(ctx, &listing);
            0
        }
        [key, more @ ..] => {
            let default = more.first().map(|s| s.as_str()).unwrap_or("");
            let v = ctx
                .core
                .props
                .get(key)
                .unwrap_or_else(|| default.to_string());
            outln(ctx, &v);
            0
        }
    }
}

/// `setprop NAME VALUE`, with Android's messages.
pub fn setprop(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if args.len() != 3 {
        outln(
            ctx,
            "usage: setprop NAME VALUE\n\nSets an Android system property.",
        );
        return 1;
    }
    let (name, value) = (&args[1], &args[2]);
    let core = ctx.core;
    let _ = core.props.load_persistent(&core.fs);
    match core.props.set(name, value) {
        Ok(()) => {
            if name.starts_with("persist.")
                && let Err(e) = core.props.save_persistent(&core.fs)
            {
                errln(
                    ctx,
                    &format!(
                        "setprop: could not persist {name}: {}",
                        crate::fs::error_text(&e)
                    ),
                );
                return 1;
            }
            0
        }
        Err(crate::props::PropError::InvalidName(_)) => {
            errln(ctx, &format!("Invalid property name '{name}'."));
            1
        }
        Err(crate::props::PropError::ValueTooLong { len, max }) => {
            errln(
                ctx,
                &format!("Value '{value}' is too long. {len} bytes, max {max} bytes."),
            );
            1
        }
        Err(_) => {
            errln(
                ctx,
                &format!(
                    "Failed to set property '{name}' to '{value}'.\nSee dmesg for error reason."
                ),
            );
            1
        }
    }
}

// ---------------------------------------------------------------------------------------
// pm / cmd package
// ---------------------------------------------------------------------------------------

/// `pm …` (also `cmd package …`).
pub fn pm(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    pm_main(ctx, &args[1.min(args.len())..])
}

fn pm_usage(ctx: &mut Ctx<'_>) {
    outln(
        ctx,
        "Package manager (package) commands:\n  help\n  path [--user USER_ID] PACKAGE\n  dump PACKAGE\n  list packages [-f] [-d] [-e] [-s] [-3] [-i] [-l] [-u] [-U] [--show-versioncode] [--user USER_ID] [FILTER]\n  list features\n  list users\n  resolve-activity [--brief] [-c CATEGORY] [-a ACTION] PACKAGE\n  install [-rtfdgR] [-i PACKAGE] [--user USER_ID] [-p INHERIT_PACKAGE] [--pkg PACKAGE] [-S BYTES] [PATH [SPLIT...]|-]\n      -R: disallow replacement of existing application\n      -t: allow test packages\n      -i: specify package name of installer owning the app\n      -d: allow version code downgrade\n      -p: partial application install (new split on top of existing pkg)\n      -g: grant all runtime permissions\n      -S: size in bytes of package, required for stdin\n  install-create [-rtfdg] [-i PACKAGE] [-p INHERIT_PACKAGE] [-S BYTES]\n  install-write [-S BYTES] SESSION_ID SPLIT_NAME [PATH|-]\n  install-commit SESSION_ID\n  install-abandon SESSION_ID\n  uninstall [-k] [--user USER_ID] PACKAGE\n  clear [--user USER_ID] PACKAGE\n  enable|disable|disable-user [--user USER_ID] PACKAGE\n  grant|revoke [--user USER_ID] PACKAGE PERMISSION",
    );
}

fn pm_main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(sub) = args.first() else {
        pm_usage(ctx);
        return 1;
    };
    let rest = &args[1..];
    match sub.as_str() {
        "help" | "-h" | "--help" => {
            pm_usage(ctx);
            0
        }
        "install" => pm_install(ctx, rest),
        "install-create" => pm_install_create(ctx, rest),
        "install-write" => pm_install_write(ctx, rest),
        "install-commit" => pm_install_commit(ctx, rest),
        "install-abandon" | "install-destroy" => pm_install_abandon(ctx, rest),
        "uninstall" => pm_uninstall(ctx, rest),
        "list" => pm_list(ctx, rest),
        "path" => pm_path(ctx, rest),
        "dump" => pm_dump(ctx, rest),
        "clear" => pm_clear(ctx, rest),
        "enable" => pm_set_enabled(ctx, rest, EnabledState::Enabled),
        "disable" => pm_set_enabled(ctx, rest, EnabledState::Disabled),
        "disable-user" => pm_set_enabled(ctx, rest, EnabledState::DisabledUser),
        "default-state" => pm_set_enabled(ctx, rest, EnabledState::Default),
        "grant" => pm_grant(ctx, rest, true),
        "revoke" => pm_grant(ctx, rest, false),
        "resolve-activity" => pm_resolve_activity(ctx, rest),
        "get-max-users" => {
            outln(ctx, "Maximum supported users: 1");
            0
        }
        "set-installer" => 0,
        other => {
            errln(ctx, &format!("Unknown command: {other}"));
            1
        }
    }
}

/// Parses install options; returns them, the `-S` size and the remaining operands.
fn parse_install_options(
    args: &[String],
) -> Result<(InstallOptions, Option<u64>, Vec<String>), String> {
    let mut o = InstallOptions::default();
    let mut size = None;
    let mut operands = Vec::new();
    let mut a = Args::new(args);
    while let Some(arg) = a.next() {
        let mut value = |name: &str| -> Result<String, String> {
            a.next()
                .map(|s| s.to_string())
                .ok_or_else(|| format!("Error: option {name} requires an argument"))
        };
        match arg {
            "-r"
            | "-f"
            | "-l"
            | "-s"
            | "--force-sdk"
            | "--preload"
            | "--instant"
            | "--instantapp"
            | "--full"
            | "--dont-kill"
            | "--restrict-permissions"
            | "--force-queryable"
            | "--enable-rollback"
            | "--staged"
            | "--non-staged"
            | "--apex"
            | "--bypass-low-target-sdk-block"
            | "--skip-verification"
            | "--skip-enable"
            | "--update-ownership"
            | "--wait"
            | "--no-wait"
            | "--ephemeral"
            | "--allow-downgrade" => {
                if arg == "--allow-downgrade" {
                    o.allow_downgrade = true;
                }
            }
            "-R" => o.no_replace = true,
            "-t" => o.allow_test = true,
            "-d" => o.allow_downgrade = true,
            "-g" => o.grant_all = true,
            "-i" | "--installer" => o.installer = Some(value(arg)?),
            "-p" => o.inherit_from = Some(value(arg)?),
            "--pkg" => o.expect_package = Some(value(arg)?),
            "-S" => {
                let v = value(arg)?;
                size = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("Error: invalid size: {v}"))?,
                );
            }
            "--user"
            | "--install-location"
            | "--install-reason"
            | "--originating-uri"
            | "--referrer"
            | "--abi"
            | "--force-uuid"
            | "--staged-ready-timeout"
            | "--rollback-impact"
            | "--apk" => {
                value(arg)?;
            }
            "--" => {
                operands.extend(a.rest().iter().cloned());
                break;
            }
            s if s.starts_with('-') && s != "-" => {
                return Err(format!("Error: Unknown option: {s}"));
            }
            s => operands.push(s.to_string()),
        }
    }
    o.total_size = size;
    Ok((o, size, operands))
}

/// Prints an install result the way `pm` does (both on standard output).
fn report(ctx: &mut Ctx<'_>, result: Result<String, PmError>) -> i32 {
    match result {
        Ok(package) => {
            ctx.core.android.log(
                'I',
                "PackageManager",
                &format!("Package {package} installed"),
            );
            outln(ctx, "Success");
            0
        }
        Err(e) => {
            outln(ctx, &e.to_string());
            1
        }
    }
}

fn pm_install(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let (opts, size, operands) = match parse_install_options(args) {
        Ok(v) => v,
        Err(e) => {
            errln(ctx, &e);
            return 1;
        }
    };
    let core = ctx.core;
    let sdk = device_sdk(core);
    let stdin_mode = operands.is_empty() || (operands.len() == 1 && operands[0] == "-");
    let result = if stdin_mode {
        if size.is_none() && operands.is_empty() {
            errln(
                ctx,
                "Error: must either specify a package size or an APK file",
            );
            return 1;
        }
        let mut stdin = &mut *ctx.stdin;
        core.pm
            .install_stream(&core.fs, &mut stdin, size, &opts, sdk)
    } else {
        let paths: Vec<String> = operands.iter().map(|p| abs_path(ctx, p)).collect();
        core.pm.install_paths(&core.fs, &paths, &opts, sdk)
    };
    report(ctx, result)
}

fn pm_install_create(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let (opts, _, _) = match parse_install_options(args) {
        Ok(v) => v,
        Err(e) => {
            errln(ctx, &e);
            return 1;
        }
    };
    match ctx.core.pm.create_session(&ctx.core.fs, opts) {
        Ok(id) => {
            outln(ctx, &format!("Success: created install session [{id}]"));
            0
        }
        Err(e) => {
            outln(ctx, &e.to_string());
            1
        }
    }
}

fn parse_session_id(ctx: &mut Ctx<'_>, s: Option<&str>) -> Option<i32> {
    match s.and_then(|s| s.parse::<i32>().ok()) {
        Some(id) => Some(id),
        None => {
            errln(ctx, "Error: a valid session id is required");
            None
        }
    }
}

fn pm_install_write(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut size = None;
    let mut operands = Vec::new();
    let mut a = Args::new(args);
    while let Some(arg) = a.next() {
        match arg {
            "-S" => match a.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(v) => size = Some(v),
                None => {
                    errln(ctx, "Error: -S requires a size");
                    return 1;
                }
            },
            s => operands.push(s.to_string()),
        }
    }
    let Some(id) = parse_session_id(ctx, operands.first().map(|s| s.as_str())) else {
        return 1;
    };
    let Some(name) = operands.get(1).cloned() else {
        errln(ctx, "Error: a split name is required");
        return 1;
    };
    let core = ctx.core;
    let result = match operands.get(2).map(|s| s.as_str()) {
        None | Some("-") => {
            let mut stdin = &mut *ctx.stdin;
            core.pm.write_session(&core.fs, id, &name, &mut stdin, size)
        }
        Some(path) => {
            let path = abs_path(ctx, path);
            match core.fs.open_read(&path) {
                Ok(mut f) => core.pm.write_session(&core.fs, id, &name, &mut f, None),
                Err(e) => {
                    errln(
                        ctx,
                        &format!(
                            "Error: Unable to open file: {path}: {}",
                            crate::fs::error_text(&e)
                        ),
                    );
                    return 1;
                }
            }
        }
    };
    match result {
        Ok(n) => {
            outln(ctx, &format!("Success: streamed {n} bytes"));
            0
        }
        Err(e) => {
            outln(ctx, &e.to_string());
            1
        }
    }
}

fn pm_install_commit(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(id) = parse_session_id(ctx, args.first().map(|s| s.as_str())) else {
        return 1;
    };
    let core = ctx.core;
    let r = core.pm.commit_session(&core.fs, id, device_sdk(core));
    report(ctx, r)
}

fn pm_install_abandon(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(id) = parse_session_id(ctx, args.first().map(|s| s.as_str())) else {
        return 1;
    };
    match ctx.core.pm.abandon_session(&ctx.core.fs, id) {
        Ok(()) => {
            outln(ctx, "Success");
            0
        }
        Err(e) => {
            outln(ctx, &e.to_string());
            1
        }
    }
}

fn pm_uninstall(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut keep = false;
    let mut for_user = false;
    let mut package = None;
    let mut a = Args::new(args);
    while let Some(arg) = a.next() {
        match arg {
            "-k" => keep = true,
            "--user" => {
                for_user = true;
                a.next();
            }
            "--versionCode" => {
                a.next();
            }
            s if s.starts_with('-') => {
                errln(ctx, &format!("Error: Unknown option: {s}"));
                return 1;
            }
            s => package = Some(s.to_string()),
        }
    }
    let Some(package) = package else {
        errln(ctx, "Error: package name not specified");
        return 1;
    };
    let core = ctx.core;
    match core.pm.uninstall(&core.fs, &package, keep, for_user) {
        Ok(()) => {
            core.android.force_stop(&package);
            core.android.log(
                'I',
                "PackageManager",
                &format!("Package {package} uninstalled"),
            );
            outln(ctx, "Success");
            0
        }
        Err(e) => {
            outln(ctx, &e.to_string());
            1
        }
    }
}

/// Options of `pm list packages` that matter here.
#[derive(Default)]
struct ListOptions {
    files: bool,
    disabled: bool,
    enabled: bool,
    system: bool,
    third_party: bool,
    installer: bool,
    uid: bool,
    version: bool,
    filter: Option<String>,
}

fn pm_list(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(what) = args.first() else {
        errln(ctx, "Error: didn't specify type of data to list");
        return 1;
    };
    match what.as_str() {
        "packages" => {}
        "features" => {
            for f in [
                "android.hardware.audio.output",
                "android.hardware.camera",
                "android.hardware.faketouch",
                "android.hardware.location",
                "android.hardware.screen.landscape",
                "android.hardware.screen.portrait",
                "android.hardware.touchscreen",
                "android.hardware.touchscreen.multitouch",
                "android.hardware.wifi",
                "android.software.app_widgets",
                "android.software.home_screen",
                "android.software.input_methods",
                "android.software.webview",
            ] {
                outln(ctx, &format!("feature:{f}"));
            }
            return 0;
        }
        "users" => {
            outln(ctx, "Users:\n\tUserInfo{0:Owner:c13} running");
            return 0;
        }
        "libraries" => {
            outln(ctx, "library:android.test.runner");
            return 0;
        }
        "permission-groups" | "permissions" | "instrumentation" => return 0,
        other => {
            errln(ctx, &format!("Error: unknown list type '{other}'"));
            return 1;
        }
    }
    let mut o = ListOptions::default();
    let mut a = Args::new(&args[1..]);
    while let Some(arg) = a.next() {
        match arg {
            "-f" => o.files = true,
            "-d" => o.disabled = true,
            "-e" => o.enabled = true,
            "-s" => o.system = true,
            "-3" => o.third_party = true,
            "-i" => o.installer = true,
            "-U" => o.uid = true,
            "-l" | "-u" | "-a" => {}
            "--show-versioncode" => o.version = true,
            "--user" | "--uid" => {
                a.next();
            }
            "--apex-only" => return 0,
            s if s.starts_with('-') => {
                errln(ctx, &format!("Error: Unknown option: {s}"));
                return 1;
            }
            s => o.filter = Some(s.to_string()),
        }
    }
    let core = ctx.core;
    let pkgs = match core.pm.list(&core.fs) {
        Ok(p) => p,
        Err(e) => {
            errln(ctx, &format!("Error: {e}"));
            return 1;
        }
    };
    let mut text = String::new();
    for p in pkgs {
        if o.disabled && p.enabled.is_enabled() || o.enabled && !p.enabled.is_enabled() {
            continue;
        }
        if o.system && !p.system || o.third_party && p.system {
            continue;
        }
        if let Some(f) = &o.filter
            && !p.package.contains(f.as_str())
        {
            continue;
        }
        text.push_str("package:");
        if o.files {
            text.push_str(&p.apk_paths[0]);
            text.push('=');
        }
        text.push_str(&p.package);
        if o.version {
            text.push_str(&format!(" versionCode:{}", p.version_code));
        }
        if o.installer {
            text.push_str(&format!(
                "  installer={}",
                p.installer.as_deref().unwrap_or("null")
            ));
        }
        if o.uid {
            text.push_str(&format!(" uid:{}", p.uid));
        }
        text.push('\n');
    }
    out(ctx, &text);
    0
}

/// The package operand of `pm path|dump|clear|…`, skipping `--user N`.
fn package_operand(args: &[String]) -> Option<String> {
    let mut a = Args::new(args);
    let mut found = None;
    while let Some(arg) = a.next() {
        match arg {
            "--user" => {
                a.next();
            }
            s if s.starts_with('-') => {}
            s => {
                if found.is_none() {
                    found = Some(s.to_string());
                }
            }
        }
    }
    found
}

fn lookup(ctx: &mut Ctx<'_>, package: &str) -> Option<PackageInfo> {
    match ctx.core.pm.get(&ctx.core.fs, package) {
        Ok(p) => p,
        Err(e) => {
            errln(ctx, &format!("Error: {e}"));
            None
        }
    }
}

fn pm_path(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(package) = package_operand(args) else {
        errln(ctx, "Error: package name not specified");
        return 1;
    };
    match lookup(ctx, &package) {
        Some(p) => {
            for path in &p.apk_paths {
                outln(ctx, &format!("package:{path}"));
            }
            0
        }
        None => 1,
    }
}

fn pm_dump(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(package) = package_operand(args) else {
        errln(ctx, "Error: package name not specified");
        return 1;
    };
    match lookup(ctx, &package) {
        Some(p) => {
            out(ctx, &format!("Packages:\n{}", crate::pm::dump_package(&p)));
            0
        }
        None => {
            outln(ctx, &format!("Unable to find package: {package}"));
            1
        }
    }
}

fn pm_clear(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(package) = package_operand(args) else {
        errln(ctx, "Error: package name not specified");
        return 1;
    };
    let core = ctx.core;
    match core.pm.clear_data(&core.fs, &package) {
        Ok(()) => {
            core.android.force_stop(&package);
            outln(ctx, "Success");
            0
        }
        Err(_) => {
            outln(ctx, "Failed");
            1
        }
    }
}

fn pm_set_enabled(ctx: &mut Ctx<'_>, args: &[String], state: EnabledState) -> i32 {
    let Some(package) = package_operand(args) else {
        errln(ctx, "Error: no package or component specified");
        return 1;
    };
    // A component (`pkg/cls`) changes the package's state here.
    let package = package.split('/').next().unwrap_or_default().to_string();
    let core = ctx.core;
    match core.pm.set_enabled(&core.fs, &package, state) {
        Ok(()) => {
            if !state.is_enabled() {
                core.android.force_stop(&package);
            }
            outln(
                ctx,
                &format!("Package {package} new state: {}", state.name()),
            );
            0
        }
        Err(PmError::UnknownPackage(p)) => {
            errln(
                ctx,
                &format!(
                    "Exception occurred while executing 'enable':\njava.lang.IllegalArgumentException: Unknown package: {p}"
                ),
            );
            255
        }
        Err(e) => {
            errln(ctx, &format!("Error: {e}"));
            1
        }
    }
}

fn pm_grant(ctx: &mut Ctx<'_>, args: &[String], grant: bool) -> i32 {
    let operands: Vec<&String> = {
        let mut v = Vec::new();
        let mut a = Args::new(args);
        while let Some(arg) = a.next() {
            if arg == "--user" {
                a.next();
            } else if !arg.starts_with('-') {
                v.push(&args[a.i - 1]);
            }
        }
        v
    };
    let [package, permission] = operands.as_slice() else {
        errln(ctx, "Error: package and permission must be specified");
        return 1;
    };
    let core = ctx.core;
    match core.pm.set_permission(&core.fs, package, permission, grant) {
        Ok(()) => 0,
        Err(PmError::UnknownPackage(p)) => {
            let verb = if grant { "grant" } else { "revoke" };
            errln(
                ctx,
                &format!(
                    "Exception occurred while executing '{verb}':\njava.lang.IllegalArgumentException: Unknown package: {p}"
                ),
            );
            255
        }
        Err(e) => {
            errln(ctx, &format!("Error: {e}"));
            1
        }
    }
}

fn pm_resolve_activity(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let brief = args.iter().any(|a| a == "--brief");
    let intent = match parse_intent(
        &args
            .iter()
            .filter(|a| *a != "--brief")
            .cloned()
            .collect::<Vec<_>>(),
    ) {
        Ok(i) => i,
        Err(e) => {
            errln(ctx, &e);
            return 1;
        }
    };
    match resolve(ctx.core, &intent) {
        Resolution::Found(c) => {
            if brief {
                outln(
                    ctx,
                    "priority=0 preferredOrder=0 match=0x108000 specificIndex=-1 isDefault=true",
                );
                outln(ctx, &c.short());
            } else {
                outln(ctx, &format!("Activity Resolver Table:\n  {}", c.short()));
            }
            0
        }
        _ => {
            outln(ctx, "No activity found");
            0
        }
    }
}

// ---------------------------------------------------------------------------------------
// cmd
// ---------------------------------------------------------------------------------------

const SERVICES: &[&str] = &[
    "activity", "battery", "input", "package", "settings", "window",
];

/// `cmd <service> …`: `package`, `settings`, `activity`, `window`, `input`.
pub fn cmd(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(service) = args.get(1) else {
        errln(
            ctx,
            "cmd: No service specified; use -l to list all running services. Use -w to start and wait for a service.",
        );
        return 20;
    };
    let rest = &args[2..];
    let with_name = |name: &str| -> Vec<String> {
        let mut v = vec![name.to_string()];
        v.extend(rest.iter().cloned());
        v
    };
    match service.as_str() {
        "-l" => {
            outln(ctx, "Currently running services:");
            for s in SERVICES {
                outln(ctx, &format!("  {s}"));
            }
            0
        }
        "package" => pm_main(ctx, rest),
        "settings" => settings(ctx, &with_name("settings")),
        "activity" => am(ctx, &with_name("am")),
        "window" => wm(ctx, &with_name("wm")),
        "input" => input(ctx, &with_name("input")),
        "battery" => dumpsys(ctx, &{
            let mut v = vec!["dumpsys".to_string(), "battery".to_string()];
            v.extend(rest.iter().cloned());
            v
        }),
        other => {
            errln(ctx, &format!("cmd: Can't find service: {other}"));
            20
        }
    }
}

// ---------------------------------------------------------------------------------------
// Intents and am
// ---------------------------------------------------------------------------------------

/// The parts of an intent that matter for resolving and printing it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Intent {
    action: Option<String>,
    categories: Vec<String>,
    data: Option<String>,
    mime: Option<String>,
    component: Option<String>,
    package: Option<String>,
    flags: u32,
    extras: bool,
}

impl Intent {
    /// Android's `Intent.toShortString` layout.
    fn describe(&self, with_flags: Option<u32>) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.action {
            parts.push(format!("act={a}"));
        }
        if !self.categories.is_empty() {
            parts.push(format!("cat=[{}]", self.categories.join(",")));
        }
        if let Some(d) = &self.data {
            parts.push(format!("dat={d}"));
        }
        if let Some(t) = &self.mime {
            parts.push(format!("typ={t}"));
        }
        let flags = with_flags.unwrap_or(self.flags);
        if flags != 0 {
            parts.push(format!("flg=0x{flags:x}"));
        }
        if let Some(p) = &self.package {
            parts.push(format!("pkg={p}"));
        }
        if let Some(c) = &self.component {
            parts.push(format!("cmp={c}"));
        }
        if self.extras {
            parts.push("(has extras)".into());
        }
        format!("Intent {{ {} }}", parts.join(" "))
    }
}

/// Options of `am start` that take no value.
const AM_FLAGS: &[&str] = &[
    "-W",
    "-S",
    "-D",
    "-N",
    "--streaming",
    "--track-allocation",
    "--activity-brought-to-front",
    "--activity-clear-top",
    "--activity-clear-when-task-reset",
    "--activity-exclude-from-recents",
    "--activity-launched-from-history",
    "--activity-multiple-task",
    "--activity-no-animation",
    "--activity-no-history",
    "--activity-no-user-action",
    "--activity-previous-is-top",
    "--activity-reorder-to-front",
    "--activity-reset-task-if-needed",
    "--activity-single-top",
    "--activity-clear-task",
    "--activity-task-on-home",
    "--activity-match-external",
    "--grant-read-uri-permission",
    "--grant-write-uri-permission",
    "--grant-persistable-uri-permission",
    "--grant-prefix-uri-permission",
    "--exclude-stopped-packages",
    "--include-stopped-packages",
    "--debug-log-resolution",
    "--receiver-registered-only",
    "--receiver-replace-pending",
    "--receiver-foreground",
    "--receiver-no-abort",
    "--receiver-include-background",
    "--selector",
    "--async",
    "--allow-background-activity-starts",
];
/// Options of `am` that take one value.
const AM_ONE_VALUE: &[&str] = &[
    "-P",
    "--start-profiler",
    "--sampling",
    "-R",
    "--user",
    "--display",
    "--windowingMode",
    "--activityType",
    "--task",
    "--esn",
    "-i",
    "--identifier",
    "--receiver-permission",
    "--attribution-tag",
];
/// Extras that take a key and a value.
const AM_EXTRAS: &[&str] = &[
    "-e", "--es", "--ez", "--ei", "--el", "--ef", "--ed", "--eu", "--ecn", "--eia", "--eial",
    "--ela", "--elal", "--efa", "--efal", "--esa", "--esal", "--edal", "--eda",
];

fn parse_intent(args: &[String]) -> Result<Intent, String> {
    let mut i = Intent::default();
    let mut a = Args::new(args);
    while let Some(arg) = a.next() {
        let mut value = || {
            a.next()
                .map(|s| s.to_string())
                .ok_or_else(|| format!("Error: No argument for option {arg}"))
        };
        match arg {
            "-a" => i.action = Some(value()?),
            "-c" => i.categories.push(value()?),
            "-d" => i.data = Some(value()?),
            "-t" => i.mime = Some(value()?),
            "-n" => i.component = Some(value()?),
            "-p" => i.package = Some(value()?),
            "-f" => {
                let v = value()?;
                let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => v.parse::<i64>().ok().map(|n| n as u32),
                };
                i.flags = parsed.ok_or_else(|| format!("Error: bad flags {v}"))?;
            }
            s if AM_FLAGS.contains(&s) => {}
            s if AM_ONE_VALUE.contains(&s) => {
                value()?;
            }
            s if AM_EXTRAS.contains(&s) => {
                value()?;
                value()?;
                i.extras = true;
            }
            s if s.starts_with('-') => return Err(format!("Error: Unknown option: {s}")),
            s => {
                if s.contains('/') && !s.contains(':') {
                    i.component = Some(s.to_string());
                } else if s.contains(':') {
                    i.data = Some(s.to_string());
                } else {
                    i.package = Some(s.to_string());
                }
            }
        }
    }
    Ok(i)
}

enum Resolution {
    Found(Component),
    /// An explicit component that does not exist.
    NoClass(Component),
    Unresolved,
}

/// Splits `pkg/cls` and qualifies the class.
fn parse_component(s: &str) -> Option<Component> {
    let (pkg, cls) = s.split_once('/')?;
    if pkg.is_empty() || cls.is_empty() {
        return None;
    }
    Some(Component {
        package: pkg.to_string(),
        class: crate::apk::qualify(pkg, cls),
    })
}

fn resolve(core: &PhoneCore, intent: &Intent) -> Resolution {
    let installed = |pkg: &str| -> Option<PackageInfo> {
        core.pm
            .get(&core.fs, pkg)
            .ok()
            .flatten()
            .filter(|p| p.enabled.is_enabled())
    };
    if let Some(c) = &intent.component {
        let Some(comp) = parse_component(c) else {
            return Resolution::Unresolved;
        };
        return match installed(&comp.package) {
            Some(p) => {
                let known = p.activities.is_empty()
                    || p.activities.contains(&comp.class)
                    || (p.system && p.package == HOME_ACTIVITY.0);
                if known {
                    Resolution::Found(comp)
                } else {
                    Resolution::NoClass(comp)
                }
            }
            None => Resolution::NoClass(comp),
        };
    }
    let action = intent
        .action
        .as_deref()
        .unwrap_or("android.intent.action.MAIN");
    if intent
        .categories
        .iter()
        .any(|c| c == "android.intent.category.HOME")
    {
        return Resolution::Found(home());
    }
    if let Some(pkg) = &intent.package {
        if action == "android.intent.action.MAIN"
            && let Some(p) = installed(pkg)
            && let Some(act) = p.launchable_activity
        {
            return Resolution::Found(Component {
                package: p.package,
                class: act,
            });
        }
        return Resolution::Unresolved;
    }
    if action.starts_with("android.settings.") {
        return Resolution::Found(Component {
            package: "com.android.settings".into(),
            class: "com.android.settings.Settings".into(),
        });
    }
    Resolution::Unresolved
}

/// `am …`: `start`, `start-activity`, `startservice`, `force-stop`, `kill`, `broadcast`,
/// `get-current-user`.
pub fn am(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(sub) = args.get(1) else {
        outln(
            ctx,
            "Activity manager (activity) commands:\n  start [-W] [-S] [-n COMPONENT] [-a ACTION] [-c CATEGORY] [-d DATA] [-p PACKAGE] ...\n  startservice INTENT\n  force-stop PACKAGE\n  kill PACKAGE\n  broadcast INTENT\n  get-current-user",
        );
        return 1;
    };
    let rest = &args[2..];
    match sub.as_str() {
        "start" | "start-activity" => am_start(ctx, rest),
        "startservice"
        | "start-service"
        | "start-foreground-service"
        | "startforegroundservice" => {
            let intent = match parse_intent(rest) {
                Ok(i) => i,
                Err(e) => {
                    errln(ctx, &e);
                    return 1;
                }
            };
            let desc = intent.describe(None);
            outln(ctx, &format!("Starting service: {desc}"));
            let mut inner = ctx.core.android.lock();
            AndroidState::push_bounded(&mut inner.services, desc);
            0
        }
        "force-stop" | "kill" | "stop-app" => {
            let Some(pkg) = package_operand(rest) else {
                errln(ctx, "Error: package name not specified");
                return 1;
            };
            ctx.core.android.force_stop(&pkg);
            ctx.core.android.log(
                'I',
                "ActivityManager",
                &format!("Force stopping {pkg} appid=0 user=0: from pid 1"),
            );
            0
        }
        "broadcast" => {
            let intent = match parse_intent(rest) {
                Ok(i) => i,
                Err(e) => {
                    errln(ctx, &e);
                    return 1;
                }
            };
            let desc = intent.describe(Some(intent.flags | 0x40_0000));
            outln(ctx, &format!("Broadcasting: {desc}"));
            outln(ctx, "Broadcast completed: result=0");
            let mut inner = ctx.core.android.lock();
            AndroidState::push_bounded(&mut inner.broadcasts, desc);
            0
        }
        "get-current-user" => {
            outln(ctx, "0");
            0
        }
        "kill-all" | "set-debug-app" | "clear-debug-app" | "set-inactive" | "idle-maintenance" => 0,
        other => {
            errln(ctx, &format!("Error: Unknown command: {other}"));
            1
        }
    }
}

fn am_start(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let wait = args.iter().any(|a| a == "-W");
    let intent = match parse_intent(args) {
        Ok(i) => i,
        Err(e) => {
            errln(ctx, &e);
            return 1;
        }
    };
    let shown = intent.describe(None);
    outln(ctx, &format!("Starting: {shown}"));
    let core = ctx.core;
    match resolve(core, &intent) {
        Resolution::Found(comp) => {
            if core.android.resumed().as_ref() == Some(&comp) {
                outln(
                    ctx,
                    "Warning: Activity not started, intent has been delivered to currently running top-most instance.",
                );
                return 0;
            }
            let launched = intent.describe(Some(intent.flags | 0x1000_0000));
            let task = core.android.record_start(comp.clone(), launched.clone());
            core.android.log(
                'I',
                "ActivityTaskManager",
                &format!(
                    "START u0 {} from uid 2000 t{task}",
                    &launched["Intent ".len()..]
                ),
            );
            if wait {
                outln(
                    ctx,
                    &format!(
                        "Status: ok\nLaunchState: COLD\nActivity: {}\nTotalTime: 250\nWaitTime: 260\nComplete",
                        comp.short()
                    ),
                );
            }
            0
        }
        Resolution::NoClass(comp) => {
            errln(ctx, "Error type 3");
            errln(
                ctx,
                &format!("Error: Activity class {{{}}} does not exist.", comp.full()),
            );
            1
        }
        Resolution::Unresolved => {
            let flagged = intent.describe(Some(intent.flags | 0x1000_0000));
            errln(
                ctx,
                &format!("Error: Activity not started, unable to resolve {flagged}"),
            );
            1
        }
    }
}

// ---------------------------------------------------------------------------------------
// dumpsys
// ---------------------------------------------------------------------------------------

fn record_id(c: &Component) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in c.full().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{:07x}", h & 0x0fff_ffff)
}

/// `dumpsys [-l | SERVICE [args]]`: `activity`, `package`, `battery`, `window`, `input`.
pub fn dumpsys(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(service) = args.get(1) else {
        for s in SERVICES {
            outln(
                ctx,
                &format!(
                    "-------------------------------------------------------------------------------\nDUMP OF SERVICE {s}:"
                ),
            );
            dump_service(ctx, s, &[]);
        }
        return 0;
    };
    if service == "-l" {
        outln(ctx, "Currently running services:");
        for s in SERVICES {
            outln(ctx, &format!("  {s}"));
        }
        return 0;
    }
    if !SERVICES.contains(&service.as_str()) {
        outln(ctx, &format!("Can't find service: {service}"));
        return 0;
    }
    dump_service(ctx, service, &args[2..])
}

fn dump_service(ctx: &mut Ctx<'_>, service: &str, rest: &[String]) -> i32 {
    let core = ctx.core;
    match service {
        "activity" => {
            let text = dump_activity(core);
            out(ctx, &text);
            0
        }
        "window" => {
            let text = dump_window(core);
            out(ctx, &text);
            0
        }
        "package" => {
            let pkgs = match package_operand(rest) {
                Some(p) => match core.pm.get(&core.fs, &p) {
                    Ok(Some(info)) => vec![info],
                    Ok(None) => {
                        outln(ctx, &format!("Unable to find package: {p}"));
                        return 0;
                    }
                    Err(e) => {
                        errln(ctx, &format!("Error: {e}"));
                        return 1;
                    }
                },
                None => core.pm.list(&core.fs).unwrap_or_default(),
            };
            let mut text = String::from("Packages:\n");
            for p in &pkgs {
                text.push_str(&crate::pm::dump_package(p));
                text.push('\n');
            }
            out(ctx, &text);
            0
        }
        "battery" => dump_battery(ctx, rest),
        "input" => {
            let mut text =
                String::from("INPUT MANAGER (dumpsys input)\n\nRecent input commands:\n");
            for e in core.android.input_events() {
                text.push_str(&format!("  {e}\n"));
            }
            out(ctx, &text);
            0
        }
        _ => 0,
    }
}

fn dump_activity(core: &PhoneCore) -> String {
    let resumed = core.android.resumed();
    let starts = core.android.starts();
    let mut t = String::from(
        "ACTIVITY MANAGER ACTIVITIES (dumpsys activity activities)\nDisplay #0 (activities from top to bottom):\n",
    );
    if let Some(c) = &resumed {
        let task = starts
            .iter()
            .rev()
            .find(|s| &s.component == c)
            .map(|s| s.task)
            .unwrap_or(1);
        let rec = format!(
            "ActivityRecord{{{} u0 {} t{task}}}",
            record_id(c),
            c.short()
        );
        t.push_str(&format!(
            "  * Task{{{} #{task} type=standard A=10000:{} U=0 visible=true mode=fullscreen translucent=false sz=1}}\n",
            record_id(c),
            c.package
        ));
        t.push_str(&format!("    mResumedActivity: {rec}\n"));
        t.push_str(&format!("  ResumedActivity: {rec}\n"));
        t.push_str(&format!(" mFocusedApp={rec}\n"));
        t.push_str(&format!(" mTopResumedActivity={rec}\n"));
    }
    t.push_str("\nRecent activity starts (oldest first):\n");
    for s in &starts {
        t.push_str(&format!(
            "  {} t{} {} {}\n",
            crate::pm::format_time(s.time_ms),
            s.task,
            s.component.short(),
            s.intent
        ));
    }
    let broadcasts = core.android.broadcasts();
    if !broadcasts.is_empty() {
        t.push_str("\nRecent broadcasts (oldest first):\n");
        for b in broadcasts {
            t.push_str(&format!("  {b}\n"));
        }
    }
    t
}

fn display(core: &PhoneCore) -> (u32, u32, u32, Option<(u32, u32)>, Option<u32>) {
    let w = core.props.get_u32(DISPLAY_WIDTH_PROP).unwrap_or(1080);
    let h = core.props.get_u32(DISPLAY_HEIGHT_PROP).unwrap_or(1920);
    let d = core.props.get_u32(DISPLAY_DENSITY_PROP).unwrap_or(480);
    let size = core
        .android
        .setting(core, "global", "display_size_forced")
        .ok()
        .flatten()
        .and_then(|v| {
            let (a, b) = v.split_once(',')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        });
    let dens = core
        .android
        .setting(core, "secure", "display_density_forced")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse().ok());
    (w, h, d, size, dens)
}

fn dump_window(core: &PhoneCore) -> String {
    let (w, h, d, size, dens) = display(core);
    let (cw, ch) = size.unwrap_or((w, h));
    let cd = dens.unwrap_or(d);
    let mut t = String::from(
        "WINDOW MANAGER DISPLAY CONTENTS (dumpsys window displays)\n  Display: mDisplayId=0\n",
    );
    t.push_str(&format!(
        "    init={w}x{h} {d}dpi cur={cw}x{ch} app={cw}x{ch} rng={cw}x{cw}-{ch}x{ch}\n"
    ));
    t.push_str(&format!(
        "    mDisplayInfo: density {cd}\n\nWINDOW MANAGER WINDOWS (dumpsys window windows)\n"
    ));
    if let Some(c) = core.android.resumed() {
        t.push_str(&format!(
            "  mCurrentFocus=Window{{{} u0 {}}}\n",
            record_id(&c),
            c.full()
        ));
        t.push_str(&format!(
            "  mFocusedApp=ActivityRecord{{{} u0 {} t1}}\n",
            record_id(&c),
            c.short()
        ));
    } else {
        t.push_str("  mCurrentFocus=null\n  mFocusedApp=null\n");
    }
    t
}

fn dump_battery(ctx: &mut Ctx<'_>, rest: &[String]) -> i32 {
    let core = ctx.core;
    match rest.first().map(|s| s.as_str()) {
        Some("set") => {
            let (Some(key), Some(value)) =
                (rest.get(1), rest.get(2).and_then(|v| v.parse::<u32>().ok()))
            else {
                errln(
                    ctx,
                    "Error: usage: dumpsys battery set [ac|usb|level|status] VALUE",
                );
                return 1;
            };
            let mut inner = core.android.lock();
            match key.as_str() {
                "ac" => inner.battery.ac = value != 0,
                "usb" => inner.battery.usb = value != 0,
                "level" => inner.battery.level = value.min(100),
                "status" => inner.battery.status = value.min(5),
                _ => {
                    drop(inner);
                    errln(ctx, &format!("Unknown set option: {key}"));
                    return 1;
                }
            }
            0
        }
        Some("unplug") => {
            let mut inner = core.android.lock();
            inner.battery.ac = false;
            inner.battery.usb = false;
            0
        }
        Some("reset") => {
            core.android.lock().battery = Battery::default();
            0
        }
        _ => {
            let b = core.android.lock().battery.clone();
            out(
                ctx,
                &format!(
                    "Current Battery Service state:\n  AC powered: {}\n  USB powered: {}\n  Wireless powered: false\n  Max charging current: 0\n  Max charging voltage: 0\n  Charge counter: {}\n  status: {}\n  health: 2\n  present: true\n  level: {}\n  scale: 100\n  voltage: 4200\n  temperature: 250\n  technology: Li-ion\n",
                    b.ac,
                    b.usb,
                    b.level * 50_000,
                    b.status,
                    b.level
                ),
            );
            0
        }
    }
}

// ---------------------------------------------------------------------------------------
// settings, wm
// ---------------------------------------------------------------------------------------

/// `settings [--user N] get|put|delete|list|reset NAMESPACE [KEY [VALUE]]`.
pub fn settings(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut ops: Vec<&str> = Vec::new();
    let mut a = Args::new(&args[1.min(args.len())..]);
    while let Some(arg) = a.next() {
        match arg {
            "--user" => {
                a.next();
            }
            "--lineage" | "--default" => {}
            s => ops.push(s),
        }
    }
    let usage = "usage:  settings [--user <USER_ID> | current] get namespace key\n        settings [--user <USER_ID> | current] put namespace key value\n        settings [--user <USER_ID> | current] delete namespace key\n        settings [--user <USER_ID> | current] list namespace\n\n'namespace' is one of {system, secure, global}, case-insensitive";
    let Some(&verb) = ops.first() else {
        errln(ctx, usage);
        return 1;
    };
    let Some(ns) = ops.get(1).map(|s| s.to_ascii_lowercase()) else {
        errln(ctx, usage);
        return 1;
    };
    if !matches!(ns.as_str(), "system" | "secure" | "global") {
        errln(ctx, &format!("Invalid namespace '{ns}'\n{usage}"));
        return 1;
    }
    let core = ctx.core;
    let result = match (verb, ops.get(2), ops.get(3)) {
        ("get", Some(key), _) => core.android.setting(core, &ns, key).map(|v| {
            outln(ctx, v.as_deref().unwrap_or("null"));
        }),
        ("put", Some(key), Some(value)) => core
            .android
            .put_setting(core, &ns, key, Some(value))
            .map(|_| ()),
        ("delete", Some(key), _) => core.android.put_setting(core, &ns, key, None).map(|had| {
            outln(ctx, &format!("Deleted {} rows", u8::from(had)));
        }),
        ("list", _, _) => core.android.settings_list(core, &ns).map(|l| {
            let mut text = String::new();
            for (k, v) in l.unwrap_or_default() {
                text.push_str(&format!("{k}={v}\n"));
            }
            out(ctx, &text);
        }),
        ("reset", _, _) => Ok(()),
        _ => {
            errln(ctx, usage);
            return 1;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            errln(ctx, &format!("Error: {e}"));
            1
        }
    }
}

/// `wm size [WxH|reset]`, `wm density [DPI|reset]`.
pub fn wm(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let core = ctx.core;
    let ops: Vec<&String> = {
        let mut v = Vec::new();
        let mut a = Args::new(&args[1.min(args.len())..]);
        while let Some(arg) = a.next() {
            if arg == "-d" || arg == "--user" {
                a.next();
            } else {
                v.push(&args[a.i]);
            }
        }
        v
    };
    let (w, h, d, size, dens) = display(core);
    match (
        ops.first().map(|s| s.as_str()),
        ops.get(1).map(|s| s.as_str()),
    ) {
        (Some("size"), None) => {
            outln(ctx, &format!("Physical size: {w}x{h}"));
            if let Some((ow, oh)) = size {
                outln(ctx, &format!("Override size: {ow}x{oh}"));
            }
            0
        }
        (Some("size"), Some("reset")) => set_or_fail(ctx, "global", "display_size_forced", None),
        (Some("size"), Some(v)) => {
            let parsed = v
                .split_once(['x', 'X'])
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .filter(|(a, b)| (1..=16384).contains(a) && (1..=16384).contains(b));
            match parsed {
                Some((ow, oh)) => set_or_fail(
                    ctx,
                    "global",
                    "display_size_forced",
                    Some(&format!("{ow},{oh}")),
                ),
                None => {
                    errln(ctx, &format!("Error: bad size {v}"));
                    1
                }
            }
        }
        (Some("density"), None) => {
            outln(ctx, &format!("Physical density: {d}"));
            if let Some(o) = dens {
                outln(ctx, &format!("Override density: {o}"));
            }
            0
        }
        (Some("density"), Some("reset")) => {
            set_or_fail(ctx, "secure", "display_density_forced", None)
        }
        (Some("density"), Some(v)) => match v.parse::<u32>() {
            Ok(n) if (72..=4096).contains(&n) => set_or_fail(
                ctx,
                "secure",
                "display_density_forced",
                Some(&n.to_string()),
            ),
            _ => {
                errln(ctx, &format!("Error: bad density {v}"));
                1
            }
        },
        _ => {
            errln(
                ctx,
                "Window manager (window) commands:\n  size [reset|WxH]\n  density [reset|DENSITY]",
            );
            1
        }
    }
}

fn set_or_fail(ctx: &mut Ctx<'_>, ns: &str, key: &str, value: Option<&str>) -> i32 {
    match ctx.core.android.put_setting(ctx.core, ns, key, value) {
        Ok(_) => 0,
        Err(e) => {
            errln(ctx, &format!("Error: {e}"));
            1
        }
    }
}

// ---------------------------------------------------------------------------------------
// input
// ---------------------------------------------------------------------------------------

const INPUT_SOURCES: &[&str] = &[
    "keyboard",
    "mouse",
    "joystick",
    "touchnavigation",
    "touchpad",
    "trackball",
    "dpad",
    "stylus",
    "gamepad",
    "touchscreen",
    "rotaryencoder",
];

/// Named key codes (`KEYCODE_*`).
fn keycode(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return (n <= 320).then_some(n);
    }
    let n = name.strip_prefix("KEYCODE_").unwrap_or(name);
    if n.len() == 1 {
        let c = n.as_bytes()[0];
        if c.is_ascii_digit() {
            return Some(7 + u32::from(c - b'0'));
        }
        if c.is_ascii_uppercase() {
            return Some(29 + u32::from(c - b'A'));
        }
    }
    Some(match n {
        "UNKNOWN" => 0,
        "SOFT_LEFT" => 1,
        "SOFT_RIGHT" => 2,
        "HOME" => 3,
        "BACK" => 4,
        "CALL" => 5,
        "ENDCALL" => 6,
        "STAR" => 17,
        "POUND" => 18,
        "DPAD_UP" => 19,
        "DPAD_DOWN" => 20,
        "DPAD_LEFT" => 21,
        "DPAD_RIGHT" => 22,
        "DPAD_CENTER" => 23,
        "VOLUME_UP" => 24,
        "VOLUME_DOWN" => 25,
        "POWER" => 26,
        "CAMERA" => 27,
        "CLEAR" => 28,
        "COMMA" => 55,
        "PERIOD" => 56,
        "TAB" => 61,
        "SPACE" => 62,
        "ENTER" => 66,
        "DEL" => 67,
        "MENU" => 82,
        "NOTIFICATION" => 83,
        "SEARCH" => 84,
        "MEDIA_PLAY_PAUSE" => 85,
        "MEDIA_STOP" => 86,
        "MEDIA_NEXT" => 87,
        "MEDIA_PREVIOUS" => 88,
        "VOLUME_MUTE" => 164,
        "PAGE_UP" => 92,
        "PAGE_DOWN" => 93,
        "ESCAPE" => 111,
        "FORWARD_DEL" => 112,
        "MOVE_HOME" => 122,
        "MOVE_END" => 123,
        "APP_SWITCH" => 187,
        "SLEEP" => 223,
        "WAKEUP" => 224,
        _ => return None,
    })
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok_and(|v| v.is_finite())
}

/// `input [SOURCE] [-d DISPLAY] text|keyevent|tap|swipe|draganddrop|press|roll|motionevent …`.
pub fn input(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut a = Args::new(&args[1.min(args.len())..]);
    if a.peek().is_some_and(|s| INPUT_SOURCES.contains(&s)) {
        a.next();
    }
    if a.peek() == Some("-d") {
        a.next();
        a.next();
    }
    let Some(cmd) = a.next() else {
        errln(
            ctx,
            "Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]\n\nThe commands and default sources are:\n      text <string> (Default: keyboard)\n      keyevent [--longpress|--doubletap] <key code number or name> ... (Default: keyboard)\n      tap <x> <y> (Default: touchscreen)\n      swipe <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)\n      draganddrop <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)\n      press (Default: trackball)\n      roll <dx> <dy> (Default: trackball)\n      motionevent <DOWN|UP|MOVE|CANCEL> <x> <y> (Default: touchscreen)",
        );
        return 1;
    };
    let ops: Vec<&str> = a.rest().iter().map(|s| s.as_str()).collect();
    let bad = |ctx: &mut Ctx<'_>| {
        errln(ctx, &format!("Error: Invalid arguments for command: {cmd}"));
        1
    };
    let core = ctx.core;
    let valid = match cmd {
        "text" => !ops.is_empty(),
        "keyevent" | "keycombination" => {
            let keys: Vec<&str> = ops
                .iter()
                .copied()
                .filter(|k| !matches!(*k, "--longpress" | "--doubletap" | "-t"))
                .collect();
            if keys.is_empty() {
                false
            } else {
                let mut codes = Vec::new();
                for k in &keys {
                    match keycode(k) {
                        Some(c) => codes.push(c),
                        None => {
                            errln(ctx, &format!("Error: Unknown keycode: {k}"));
                            return 1;
                        }
                    }
                }
                for c in codes {
                    if c == 3 || c == 4 && core.android.resumed().is_some_and(|r| r != home()) {
                        core.android.go_home();
                    }
                }
                true
            }
        }
        "tap" => ops.len() == 2 && ops.iter().all(|v| is_number(v)),
        "swipe" | "draganddrop" => {
            (ops.len() == 4 || ops.len() == 5) && ops.iter().all(|v| is_number(v))
        }
        "press" => ops.is_empty(),
        "roll" => ops.len() == 2 && ops.iter().all(|v| is_number(v)),
        "motionevent" => {
            ops.len() == 3
                && matches!(
                    ops[0].to_ascii_uppercase().as_str(),
                    "DOWN" | "UP" | "MOVE" | "CANCEL"
                )
                && is_number(ops[1])
                && is_number(ops[2])
        }
        _ => {
            errln(ctx, &format!("Error: Unknown command: {cmd}"));
            return 1;
        }
    };
    if !valid {
        return bad(ctx);
    }
    let mut line = format!("input {cmd}");
    for o in &ops {
        line.push(' ');
        line.push_str(o);
    }
    let line: String = line.chars().take(1024).collect();
    {
        let mut inner = core.android.lock();
        AndroidState::push_bounded(&mut inner.input, line);
    }
    0
}

// ---------------------------------------------------------------------------------------
// logcat
// ---------------------------------------------------------------------------------------

fn level_rank(c: char) -> u8 {
    match c.to_ascii_uppercase() {
        'V' => 0,
        'D' => 1,
        'I' => 2,
        'W' => 3,
        'E' => 4,
        'F' => 5,
        'S' => 6,
        _ => 0,
    }
}

/// `logcat [-d] [-c] [-t N] [-s] [-v FORMAT] [-b BUFFER] [-g] [TAG:LEVEL …]`. The buffer is
/// printed and the command returns (it never waits for new lines).
pub fn logcat(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut tail: Option<usize> = None;
    let mut silent_default = false;
    let mut specs: Vec<(String, u8)> = Vec::new();
    let mut a = Args::new(&args[1.min(args.len())..]);
    while let Some(arg) = a.next() {
        match arg {
            "-d" | "-D" | "--dividers" => {}
            "-c" | "--clear" => {
                ctx.core.android.clear_log();
                return 0;
            }
            "-g" | "--buffer-size" => {
                outln(
                    ctx,
                    "main: ring buffer is 256 KiB (0 B consumed), max entry is 5120 B, max payload is 4068 B",
                );
                return 0;
            }
            "-s" => silent_default = true,
            "-t" | "-T" | "-m" | "--max-count" => {
                match a.next().and_then(|v| v.parse::<usize>().ok()) {
                    Some(n) => tail = Some(n),
                    None => {
                        errln(ctx, &format!("logcat: {arg} requires a count"));
                        return 1;
                    }
                }
            }
            "-v" | "-b" | "--format" | "--buffer" | "-e" | "--regex" | "--pid" => {
                a.next();
            }
            "-f" | "--file" | "-r" | "-n" => {
                errln(ctx, &format!("logcat: option {arg} is not supported"));
                return 1;
            }
            s if s.starts_with('-') => {}
            spec => {
                let (tag, level) = spec.rsplit_once(':').unwrap_or((spec, "V"));
                specs.push((
                    tag.to_string(),
                    level_rank(level.chars().next().unwrap_or('V')),
                ));
            }
        }
    }
    let default = specs
        .iter()
        .find(|(t, _)| t == "*")
        .map(|(_, l)| *l)
        .unwrap_or(if silent_default { 6 } else { 0 });
    let lines: Vec<LogLine> = ctx
        .core
        .android
        .log_lines()
        .into_iter()
        .filter(|l| {
            let min = specs
                .iter()
                .find(|(t, _)| t == &l.tag)
                .map(|(_, m)| *m)
                .unwrap_or(default);
            level_rank(l.level) >= min && min < 6
        })
        .collect();
    let skip = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    let mut text = String::from("--------- beginning of main\n");
    for l in &lines[skip..] {
        text.push_str(&l.format());
        text.push('\n');
    }
    out(ctx, &text);
    0
}
