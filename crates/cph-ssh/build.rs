//! Detects the OpenSSH client the integration tests drive. Without `ssh` and `ssh-keygen`
//! on the PATH those tests are reported as ignored (with the reason) instead of failing.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_openssh)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut found = true;
    for tool in ["ssh", "ssh-keygen"] {
        let hit = dirs.iter().map(|d| d.join(tool)).find(|p| p.is_file());
        match hit {
            // Rebuild when the tool changes or disappears.
            Some(path) => println!("cargo::rerun-if-changed={}", path.display()),
            None => {
                found = false;
                // Paths that do not exist make the check run again on every build, so the
                // tests start running as soon as the tool is installed.
                for d in &dirs {
                    println!("cargo::rerun-if-changed={}", d.join(tool).display());
                }
            }
        }
    }
    if found {
        println!("cargo::rustc-cfg=has_openssh");
    }
}
