//! The virtual phone: an Android-like device that stock ADB clients drive.
//!
//! A phone is a sandboxed file tree (`fs`), a property store (`props`), a package manager that
//! reads real APKs (`apk`, `pm`), Android service state (`android`: activities, settings,
//! input, logcat), a socket table for `nc -l` (`net`) and a POSIX-style shell with toybox-like commands (`shell`, `commands`).
//! [`phone::VirtualPhone`] serves all of it through an ADB endpoint (`cph-adb`).
//! No host program ever runs and no path leaves the phone's sandbox.

pub mod android;
pub mod apk;
pub mod commands;
pub mod fs;
pub mod image;
pub mod net;
pub mod phone;
pub mod pm;
pub mod props;
pub mod shell;

use std::sync::Arc;

/// Hooks a phone's commands use to act on the phone as a whole (e.g. `reboot`).
pub trait PhoneControl: Send + Sync {
    /// Asks the phone to reboot (`reboot [target]` in the shell, `reboot:` over ADB).
    fn request_reboot(&self, target: &str);
}

/// Everything a running phone's commands work on.
pub struct PhoneCore {
    /// The file tree.
    pub fs: fs::PhoneFs,
    /// System properties (`getprop`/`setprop`).
    pub props: props::Props,
    /// Installed packages.
    pub pm: pm::PackageManager,
    /// Activities, settings, input events, log buffer.
    pub android: android::AndroidState,
    /// Lifecycle hooks.
    pub control: Arc<dyn PhoneControl>,
    /// Listening sockets (`nc -l`) and connections to them.
    pub net: net::PhoneNet,
}

/// A [`PhoneControl`] that ignores requests (for tests and tools).
pub struct NoControl;

impl PhoneControl for NoControl {
    fn request_reboot(&self, _target: &str) {}
}

impl PhoneCore {
    /// A phone core over a scratch directory: `/` is `<dir>/root` (writable) and `/system` is
    /// `<dir>/system` (read-only), with the given base properties and system packages and no
    /// lifecycle hooks. Used by tests and tools; real phones are built by the runtime.
    pub fn scratch(
        dir: &std::path::Path,
        base_props: std::collections::BTreeMap<String, String>,
        system_packages: Vec<pm::SystemPackage>,
    ) -> std::io::Result<PhoneCore> {
        let root = dir.join("root");
        let system = dir.join("system");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&system)?;
        let fs = fs::PhoneFs::new(vec![
            fs::Mount {
                device_path: "/".into(),
                host_dir: root,
                read_only: false,
            },
            fs::Mount {
                device_path: "/system".into(),
                host_dir: system,
                read_only: true,
            },
        ])?;
        Ok(PhoneCore {
            fs,
            props: props::Props::new(base_props),
            pm: pm::PackageManager::new(system_packages),
            android: android::AndroidState::new(),
            control: Arc::new(NoControl),
            net: net::PhoneNet::new(),
        })
    }
}
