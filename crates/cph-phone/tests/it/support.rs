//! Helpers shared by the integration tests.

use cph_phone::PhoneCore;
use cph_phone::shell::{self, Output};
use std::collections::BTreeMap;

/// A phone over a fresh scratch directory (`/` → `<dir>/root`, `/system` → `<dir>/system`,
/// read-only). Keep the directory alive as long as the phone.
pub fn phone() -> (tempfile::TempDir, PhoneCore) {
    let dir = tempfile::tempdir().unwrap();
    let core = PhoneCore::scratch(dir.path(), BTreeMap::new(), Vec::new()).unwrap();
    (dir, core)
}

/// Runs a script with empty input.
pub fn sh(core: &PhoneCore, script: &str) -> Output {
    shell::run_capture(core, script, b"")
}

/// Runs a script with the given input.
pub fn sh_in(core: &PhoneCore, script: &str, input: &str) -> Output {
    shell::run_capture(core, script, input.as_bytes())
}
