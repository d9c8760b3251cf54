//! External tools: running one to a bounded, successful exit, and the stock `adb` client kept
//! apart from the user's adb server and keys.

use crate::files::write_private;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Lines of a failed tool's standard error quoted in the error.
const STDERR_TAIL_LINES: usize = 20;

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `cmd` (no standard input; killed if the wait is abandoned) to a successful exit within
/// `timeout`; returns its stdout. A failure quotes the last lines of its stderr.
pub async fn run_tool(
    cmd: &mut tokio::process::Command,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    let out = tokio::time::timeout(
        timeout,
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("{what} did not finish within {timeout:?}"))?
    .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!(
            "{what} failed ({}):\n{}",
            out.status,
            last_lines(&err, STDERR_TAIL_LINES)
        );
    }
    Ok(out.stdout)
}

/// A free loopback port (free when this returns; the caller binds it soon after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .context("binding a loopback port")?
        .local_addr()?
        .port())
}

/// The pid of the process whose command line holds every one of `words` as an argument.
pub fn pid_with_args(words: &[&str]) -> Option<String> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().into_string().ok()?;
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        words
            .iter()
            .all(|w| args.contains(&w.as_bytes()))
            .then_some(pid)
    })
}

/// The stock `adb` client with its own server port, home directory and vendor key, so it never
/// touches the user's adb server or keys. Dropping it kills its server.
pub struct StockAdb {
    bin: PathBuf,
    home: PathBuf,
    port: u16,
    key: PathBuf,
    timeout: Duration,
}

impl StockAdb {
    /// An adb client whose every invocation may take at most `timeout`; its vendor key is
    /// `key_pem`, written (owner-only) in `home`.
    pub fn new(
        bin: &Path,
        home: PathBuf,
        key_pem: &str,
        timeout: Duration,
    ) -> anyhow::Result<StockAdb> {
        anyhow::ensure!(bin.is_file(), "no adb client at {}", bin.display());
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        let key = home.join("vendor.adb_key");
        write_private(&key, key_pem.as_bytes())?;
        Ok(StockAdb {
            bin: bin.to_path_buf(),
            home,
            port: free_port()?,
            key,
            timeout,
        })
    }

    /// The port of this client's adb server.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `adb <args>` with this client's environment only.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.bin);
        c.args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/bin:/bin")
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .env("ADB_VENDOR_KEYS", &self.key)
            // No probing of emulator ports on this host.
            .env("ADB_LOCAL_TRANSPORT_MAX_PORT", "5553")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs adb to a successful exit within its timeout. Returns stdout + stderr.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::time::timeout(self.timeout, self.command(args).output())
            .await
            .with_context(|| format!("adb {args:?} timed out"))?
            .with_context(|| format!("running adb {args:?}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        anyhow::ensure!(
            out.status.success(),
            "adb {args:?} failed ({}): {}",
            out.status,
            text.trim()
        );
        Ok(text)
    }

    /// Connects to `serial` and waits until adb reports it as `device`.
    pub async fn connect(&self, serial: &str) -> anyhow::Result<()> {
        self.run(&["start-server"]).await?;
        let said = self.run(&["connect", serial]).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self
                .run(&["-s", serial, "get-state"])
                .await
                .unwrap_or_default();
            if state.trim() == "device" {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{serial} is not a device after 30 s (connect said {:?}, state {:?})",
                said.trim(),
                state.trim()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The pid of this client's server (`adb -L tcp:<port> fork-server server …`).
    pub fn server_pid(&self) -> Option<String> {
        pid_with_args(&["fork-server", &format!("tcp:{}", self.port)])
    }
}

impl Drop for StockAdb {
    fn drop(&mut self) {
        let child = std::process::Command::new(&self.bin)
            .arg("kill-server")
            .env_clear()
            .env("HOME", &self.home)
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 5), "a\nb");
        assert_eq!(last_lines("", 3), "");
    }

    #[tokio::test]
    async fn tools_run_to_their_output_or_a_quoted_failure() {
        let mut ok = tokio::process::Command::new("sh");
        ok.args(["-c", "echo out; echo err >&2"]);
        assert_eq!(
            run_tool(&mut ok, "echo", Duration::from_secs(10))
                .await
                .unwrap(),
            b"out\n"
        );
        let mut bad = tokio::process::Command::new("sh");
        bad.args([
            "-c",
            "for i in $(seq 1 30); do echo line$i >&2; done; exit 3",
        ]);
        let e = run_tool(&mut bad, "noisy", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("noisy failed (exit status: 3):\nline11\n"),
            "{e}"
        );
        assert!(e.ends_with("line30"), "{e}");
        let mut slow = tokio::process::Command::new("sleep");
        slow.arg("5");
        let e = run_tool(&mut slow, "sleep", Duration::from_millis(100))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "sleep did not finish within 100ms");
    }

    #[test]
    fn processes_are_found_by_their_arguments() {
        let mut child = std::process::Command::new("sleep")
            .arg("30.5")
            .spawn()
            .unwrap();
        // The new image's arguments show a moment after spawn returns.
        let deadline = Instant::now() + Duration::from_secs(5);
        let found = loop {
            let found = pid_with_args(&["sleep", "30.5"]);
            if found.is_some() || Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, Some(child.id().to_string()));
        assert_eq!(pid_with_args(&["sleep", "no-such-argument-anywhere"]), None);
        assert!(free_port().unwrap() > 0);
    }
}
