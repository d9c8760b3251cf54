//! Package management: install (streamed or push + `pm install`), install-multiple through an
//! install session, uninstall.

use super::{AdbClient, ClientError, append_capped, quote, run_with_input};
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Where pushed APKs go on devices without `cmd`.
const PUSH_DIR: &str = "/data/local/tmp";
/// Most APKs in one install-multiple.
const MAX_SPLITS: usize = 64;

/// How package commands reach the device's package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PackageFront {
    /// `abb_exec:package\0<args…>` (Android 10+, feature `abb_exec`).
    Abb,
    /// `exec:cmd package <args…>` (feature `cmd`).
    Cmd,
    /// `exec:pm <args…>` (neither).
    Pm,
}

impl PackageFront {
    /// The service that runs the package manager with `words`.
    pub(super) fn service(self, words: &[String]) -> Result<String, ClientError> {
        if let Some(w) = words.iter().find(|w| w.contains('\0')) {
            return Err(ClientError::InvalidArgument(format!(
                "argument contains a NUL byte: {w:?}"
            )));
        }
        Ok(match self {
            PackageFront::Abb => {
                let mut s = String::from("abb_exec:package");
                for w in words {
                    s.push('\0');
                    s.push_str(w);
                }
                s
            }
            PackageFront::Cmd | PackageFront::Pm => {
                let mut s = String::from(if self == PackageFront::Cmd {
                    "exec:cmd package"
                } else {
                    "exec:pm"
                });
                for w in words {
                    s.push(' ');
                    s.push_str(&quote(w));
                }
                s
            }
        })
    }
}

/// A package-manager reply means success iff it starts with `Success`.
fn check_reply(reply: String) -> Result<String, ClientError> {
    if reply.starts_with("Success") {
        Ok(reply)
    } else {
        Err(ClientError::Command(reply))
    }
}

/// The number inside the last `[...]` of an install-create reply.
pub(super) fn parse_session_id(reply: &str) -> Option<u64> {
    let start = reply.rfind('[')?;
    let end = start + reply[start..].find(']')?;
    reply[start + 1..end].trim().parse().ok()
}

fn file_name(path: &Path) -> Result<String, ClientError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.is_empty() || name.contains('\0') {
        return Err(ClientError::InvalidArgument(format!(
            "not a file name: {}",
            path.display()
        )));
    }
    Ok(name)
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

impl AdbClient {
    /// How package commands are sent to this device.
    pub(super) fn package_front(&self) -> PackageFront {
        if self.has_feature("abb_exec") {
            PackageFront::Abb
        } else if self.has_feature("cmd") {
            PackageFront::Cmd
        } else {
            PackageFront::Pm
        }
    }

    /// Installs the APK at `apk` with `pm install` options `args` (e.g. `["-r", "-g"]`) and
    /// returns the device's reply (`Success`).
    ///
    /// Devices with `cmd` get a streamed install (`abb_exec:package\0install…` with
    /// `abb_exec`, else `exec:cmd package install … -S <size>`). Others get the APK pushed to
    /// `/data/local/tmp`, `pm install`, and the copy removed. A reply not starting with
    /// `Success` (e.g. `Failure [INSTALL_FAILED_…]`) gives [`ClientError::Command`].
    pub async fn install(
        &self,
        apk: impl AsRef<Path>,
        args: &[&str],
    ) -> Result<String, ClientError> {
        let apk = apk.as_ref();
        if !self.has_feature("cmd") {
            return self.install_by_push(apk, args).await;
        }
        let file = tokio::fs::File::open(apk).await?;
        let size = file.metadata().await?.len();
        let mut words = vec!["install".to_string()];
        words.extend(owned(args));
        // `-S` goes last so that it overrides any size in `args`.
        words.extend(["-S".to_string(), size.to_string()]);
        let service = self.package_front().service(&words)?;
        let reply = self.stream_to_service(&service, file, size).await?;
        check_reply(reply)
    }

    async fn install_by_push(&self, apk: &Path, args: &[&str]) -> Result<String, ClientError> {
        let remote = format!("{PUSH_DIR}/{}", file_name(apk)?);
        self.push_file(apk, &remote).await?;
        let mut command = String::from("pm install");
        for a in args {
            command.push(' ');
            command.push_str(&quote(a));
        }
        command.push(' ');
        command.push_str(&quote(&remote));
        let result = self.shell(&command).await;
        let cleanup = self.shell(&format!("rm -f {}", quote(&remote))).await;
        if let Err(e) = cleanup {
            tracing::debug!(error = %e, remote, "could not remove the pushed APK");
        }
        let out = result?;
        let mut reply = out.stdout_text();
        reply.push_str(&out.stderr_text());
        check_reply(reply.trim().to_string())
    }

    /// Installs one app made of several APKs (base and splits) through an install session:
    /// `install-create`, one `install-write` per APK, `install-commit`. The session is
    /// abandoned if a step fails. Returns the commit's reply.
    pub async fn install_multiple<P: AsRef<Path>>(
        &self,
        apks: &[P],
        args: &[&str],
    ) -> Result<String, ClientError> {
        if apks.is_empty() || apks.len() > MAX_SPLITS {
            return Err(ClientError::InvalidArgument(format!(
                "install-multiple takes 1..={MAX_SPLITS} APKs, got {}",
                apks.len()
            )));
        }
        let mut files = Vec::with_capacity(apks.len());
        let mut total = 0u64;
        for (i, apk) in apks.iter().enumerate() {
            let apk = apk.as_ref();
            let size = tokio::fs::metadata(apk).await?.len();
            total += size;
            // Names must be unique within the session.
            files.push((apk.to_path_buf(), format!("{i}_{}", file_name(apk)?), size));
        }
        let front = self.package_front();
        let mut words = vec!["install-create".to_string()];
        words.extend(owned(args));
        words.extend(["-S".to_string(), total.to_string()]);
        let reply = self.package_reply(&front.service(&words)?).await?;
        let session = match parse_session_id(&reply) {
            Some(id) if reply.contains("Success") => id,
            _ => return Err(ClientError::Command(reply)),
        };
        let written = async {
            for (path, name, size) in &files {
                let words: Vec<String> = vec![
                    "install-write".into(),
                    "-S".into(),
                    size.to_string(),
                    session.to_string(),
                    name.clone(),
                    "-".into(),
                ];
                let file = tokio::fs::File::open(path).await?;
                let reply = self
                    .stream_to_service(&front.service(&words)?, file, *size)
                    .await?;
                check_reply(reply)?;
            }
            let words = vec!["install-commit".to_string(), session.to_string()];
            check_reply(self.package_reply(&front.service(&words)?).await?)
        }
        .await;
        if written.is_err() {
            let words = vec!["install-abandon".to_string(), session.to_string()];
            if let Ok(service) = front.service(&words)
                && let Err(e) = self.package_reply(&service).await
            {
                tracing::debug!(error = %e, session, "could not abandon the install session");
            }
        }
        written
    }

    /// Uninstalls `package` (`-k`: keep its data and caches). Returns the reply (`Success`);
    /// anything else gives [`ClientError::Command`].
    pub async fn uninstall(&self, package: &str, keep_data: bool) -> Result<String, ClientError> {
        if package.is_empty() || package.len() > 255 || package.contains('\0') {
            return Err(ClientError::InvalidArgument(format!(
                "package name {package:?}"
            )));
        }
        let mut command = String::from(if self.has_feature("cmd") {
            "cmd package uninstall"
        } else {
            "pm uninstall"
        });
        if keep_data {
            command.push_str(" -k");
        }
        command.push(' ');
        command.push_str(&quote(package));
        let out = self.shell(&command).await?;
        let mut reply = out.stdout_text();
        reply.push_str(&out.stderr_text());
        check_reply(reply.trim().to_string())
    }

    /// Runs a package-manager service without input and returns its reply text.
    async fn package_reply(&self, service: &str) -> Result<String, ClientError> {
        let reply = self.read_service(service).await?;
        Ok(String::from_utf8_lossy(&reply).trim().to_string())
    }

    /// Opens `service`, writes exactly `size` bytes of `input` to it while collecting the
    /// reply (capped), and returns the reply text once the device closes the stream.
    async fn stream_to_service<R>(
        &self,
        service: &str,
        input: R,
        size: u64,
    ) -> Result<String, ClientError>
    where
        R: AsyncRead + Unpin,
    {
        let stream = self.open(service).await?;
        let max = self.config().max_output;
        let mut input = input.take(size);
        let feed = async {
            let mut buf = vec![0u8; self.max_payload().clamp(1, 256 * 1024)];
            let mut sent = 0u64;
            loop {
                let n = input.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                stream.write(&buf[..n]).await?;
                sent += n as u64;
            }
            if sent < size {
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the file shrank while sending: {sent} of {size} bytes"),
                )));
            }
            Ok(())
        };
        let collect = async {
            let mut reply = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = stream.read().await? {
                append_capped(&mut reply, &chunk, max, &mut truncated);
            }
            Ok(reply)
        };
        let result = run_with_input(feed, collect).await;
        stream.close().await;
        Ok(String::from_utf8_lossy(&result?).trim().to_string())
    }
}
