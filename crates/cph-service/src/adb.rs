//! Commands on phones, through ADB.
//!
//! The control plane never touches a phone's files: every command (shell, uninstall, property
//! updates) goes through an ADB client connected to the phone's endpoint with the control
//! plane's own key, the same way for virtual phones and real Android containers. Connections
//! are kept per endpoint and reused while they stay open.

use crate::Service;
use crate::engine::{failed, truncate_utf8};
use base64::Engine;
use cph_adb::client::{AdbClient, ClientConfig, ClientError};
use cph_adb::{AdbPrivateKey, AdbPublicKey};
use cph_store::PhoneRow;
use cph_store::jobs::Outcome;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most connections kept open at once.
const MAX_POOLED: usize = 4096;
/// Longest `execute_msg` (bytes), as the reference documents for command output.
pub const MAX_EXECUTE_MSG: usize = 1024;
/// How long a connection may take to come up (TCP, CNXN, AUTH).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest ADB packet payload of the control plane's connections.
const CONTROL_PLANE_MAX_PAYLOAD: u32 = 256 * 1024;

/// The control plane's ADB identity and open connections.
pub(crate) struct AdbAccess {
    key: Option<AdbPrivateKey>,
    clients: Mutex<HashMap<SocketAddr, AdbClient>>,
    /// Recent RunSyncCommand calls per user, for the per-minute limit.
    sync_calls: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl AdbAccess {
    pub(crate) fn new(key: Option<AdbPrivateKey>) -> Self {
        AdbAccess {
            key,
            clients: Mutex::new(HashMap::new()),
            sync_calls: Mutex::new(HashMap::new()),
        }
    }

    /// The control plane's ADB key, if it has one.
    pub(crate) fn key(&self) -> Option<&AdbPrivateKey> {
        self.key.as_ref()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a command could not reach its phone.
fn unreachable(why: impl std::fmt::Display) -> Outcome {
    failed(
        "CPS.0101",
        &format!("No available device access found: {why}."),
    )
}

fn timed_out(what: &str, limit: Duration) -> Outcome {
    failed(
        "CPS.0054",
        &format!(
            "Handle job timeout: {what} did not finish within {} ms.",
            limit.as_millis()
        ),
    )
}

/// A successful outcome carrying command output.
fn succeeded_with(msg: String) -> Outcome {
    Outcome {
        status: cph_domain::JobStatus::Succeeded.code(),
        error_code: None,
        error_msg: None,
        execute_msg: Some(msg),
    }
}

/// stdout then stderr as text, cut to [`MAX_EXECUTE_MSG`] bytes.
fn output_text(stdout: &[u8], stderr: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(stderr));
    truncate_utf8(&mut s, MAX_EXECUTE_MSG);
    s
}

/// The `adbkey.pub` line of an OpenSSH `ssh-rsa` public key, if it is a 2048-bit RSA key (the
/// only size Android's key format carries).
pub fn adb_key_of_ssh(line: &str) -> Option<String> {
    let mut parts = line.split_whitespace();
    if parts.next()? != "ssh-rsa" {
        return None;
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(parts.next()?)
        .ok()?;
    let mut rest = blob.as_slice();
    let mut field = || -> Option<Vec<u8>> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let v = rest.get(4..4 + len)?.to_vec();
        rest = &rest[4 + len..];
        Some(v)
    };
    if field()? != b"ssh-rsa" {
        return None;
    }
    let e = rsa::BigUint::from_bytes_be(&field()?);
    let n = rsa::BigUint::from_bytes_be(&field()?);
    let key = rsa::RsaPublicKey::new(n, e).ok()?;
    AdbPublicKey::from_rsa(key).to_line("keypair").ok()
}

impl Service {
    /// Whether phones of this deployment have ADB endpoints the control plane can drive.
    pub(crate) fn drives_phones(&self) -> bool {
        self.inner.adb.key.is_some() && self.inner.agent.runs_endpoints()
    }

    /// The ADB keys a phone accepts besides the host's: its server's key pair, when it is RSA.
    pub(crate) async fn phone_adb_keys(&self, p: &PhoneRow) -> Vec<String> {
        if !self.drives_phones() {
            return Vec::new();
        }
        let lookup = async {
            let mut c = self.store().read().await?;
            let Some(server) = cph_store::servers::get_any(&mut c, &p.server_id).await? else {
                return Ok::<_, anyhow::Error>(None);
            };
            if server.keypair_name.is_empty() {
                return Ok(None);
            }
            Ok(
                cph_store::network::get_keypair(&mut c, &server.project_id, &server.keypair_name)
                    .await?,
            )
        };
        match lookup.await {
            Ok(Some(k)) => adb_key_of_ssh(&k.public_key).into_iter().collect(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(phone_id = %p.phone_id, error = %e, "key pair lookup failed");
                Vec::new()
            }
        }
    }

    /// The ADB keys a key pair gives phones: its public key when it is RSA.
    pub(crate) async fn adb_keys_of_keypair(
        &self,
        project_id: &str,
        keypair_name: &str,
    ) -> crate::Result<Vec<String>> {
        let mut c = self.store().read().await?;
        Ok(
            cph_store::network::get_keypair(&mut c, project_id, keypair_name)
                .await?
                .and_then(|k| adb_key_of_ssh(&k.public_key))
                .into_iter()
                .collect(),
        )
    }

    /// A connection to the phone's endpoint (an open one is reused).
    pub(crate) async fn adb_client(&self, phone_id: &str) -> Result<AdbClient, Outcome> {
        if self.inner.adb.key.is_none() {
            return Err(failed(
                "CPS.0323",
                "This api is not supported: the control plane has no ADB key configured.",
            ));
        }
        let Some(addr) = self.inner.agent.adb_endpoint(phone_id) else {
            return Err(unreachable("the phone's ADB endpoint is not up"));
        };
        self.client_at(addr).await
    }

    /// A client of the server's shared-storage volume (see `HostAgent::share_endpoint`).
    pub(crate) async fn share_client(&self, server_id: &str) -> Result<AdbClient, Outcome> {
        let addr = self
            .inner
            .agent
            .share_endpoint(server_id)
            .await
            .map_err(|e| {
                unreachable(format_args!(
                    "the shared storage of server {server_id}: {e}"
                ))
            })?;
        self.client_at(addr).await
    }

    /// A pooled client of the endpoint at `addr`, connected with the control plane's key.
    async fn client_at(&self, addr: std::net::SocketAddr) -> Result<AdbClient, Outcome> {
        let Some(key) = &self.inner.adb.key else {
            return Err(failed(
                "CPS.0323",
                "This api is not supported: the control plane has no ADB key configured.",
            ));
        };
        if let Some(c) = lock(&self.inner.adb.clients).get(&addr)
            && c.closed_reason().is_none()
        {
            return Ok(c.clone());
        }
        let config = ClientConfig {
            connect_timeout: CONNECT_TIMEOUT,
            auth_timeout: CONNECT_TIMEOUT,
            io_timeout: self.config().job_timeout,
            max_output: 64 * 1024,
            // Many transfers run at once (a push to every phone of a server): 256 KiB packets
            // keep about a quarter of the bytes in flight per transfer that 1 MiB would.
            max_payload: CONTROL_PLANE_MAX_PAYLOAD,
            ..ClientConfig::default()
        };
        let client = AdbClient::connect(addr, key, config)
            .await
            .map_err(|e| unreachable(format_args!("{addr}: {e}")))?;
        let mut pool = lock(&self.inner.adb.clients);
        if pool.len() >= MAX_POOLED {
            pool.retain(|_, c| c.closed_reason().is_none());
            if pool.len() >= MAX_POOLED {
                pool.clear();
            }
        }
        pool.insert(addr, client.clone());
        Ok(client)
    }

    /// Runs one `phone.command` job (RunShellCommand, RunSyncCommand, UninstallApk).
    pub(crate) async fn execute_phone_command(
        &self,
        phone_id: &str,
        project_id: &str,
        payload: &serde_json::Value,
    ) -> Outcome {
        let command = payload
            .get("command")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let limit = payload
            .get("timeout_ms")
            .and_then(|v| v.as_u64())
            .map(Duration::from_millis)
            .unwrap_or(self.config().job_timeout);
        if matches!(
            command,
            "install" | "install-multiple" | "push" | "export" | "import"
        ) {
            // Bounded by the job's clock (`job_timeout`), which does not count the wait for a
            // transfer slot of the phone's host.
            return self
                .execute_object_command(phone_id, project_id, payload)
                .await;
        }
        match command {
            "shell" | "uninstall" => {}
            _ => {
                return failed(
                    "CPS.0323",
                    &crate::commands::not_executable_msg("phone.command", payload),
                );
            }
        }
        let started = tokio::time::Instant::now();
        let work = async {
            let client = self.adb_client(phone_id).await?;
            match command {
                "shell" => {
                    let content = payload
                        .get("content")
                        .and_then(|v| v.as_str())
                        .unwrap_or("");
                    let out = client.shell(content).await.map_err(|e| {
                        unreachable(format_args!("the command was interrupted: {e}"))
                    })?;
                    let text = output_text(&out.stdout, &out.stderr);
                    match out.exit_code {
                        Some(0) | None => Ok(succeeded_with(text)),
                        Some(code) => {
                            let mut o = failed(
                                "CPS.0260",
                                &format!(
                                    "Sub job execute failed: the command exited with status {code}."
                                ),
                            );
                            o.execute_msg = Some(text);
                            Ok(o)
                        }
                    }
                }
                _ => {
                    let package = payload
                        .get("package_name")
                        .and_then(|v| v.as_str())
                        .unwrap_or("");
                    let keep = payload
                        .get("options")
                        .and_then(|v| v.as_array())
                        .is_some_and(|o| o.iter().any(|x| x.as_str() == Some("-k")));
                    match client.uninstall(package, keep).await {
                        Ok(reply) => Ok(succeeded_with(reply.trim_end().to_string())),
                        Err(ClientError::Command(reply)) => {
                            let mut o = failed(
                                "CPS.0260",
                                &format!("Sub job execute failed: uninstalling {package} failed."),
                            );
                            let mut r = reply.trim_end().to_string();
                            truncate_utf8(&mut r, MAX_EXECUTE_MSG);
                            o.execute_msg = Some(r);
                            Ok(o)
                        }
                        Err(e) => Err(unreachable(format_args!(
                            "the command was interrupted: {e}"
                        ))),
                    }
                }
            }
        };
        match tokio::time::timeout_at(started + limit, work).await {
            Ok(Ok(o)) | Ok(Err(o)) => o,
            Err(_) => timed_out(&format!("'{command}' on phone {phone_id}"), limit),
        }
    }

    /// Makes properties set through the API live on a running phone: `setprop` for each one
    /// that is not read-only (read-only ones were applied by its host and take effect at boot).
    pub(crate) async fn apply_properties_via_adb(
        &self,
        phone_id: &str,
        props: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), Outcome> {
        let live: Vec<(&String, String)> = props
            .iter()
            .filter(|(k, _)| !k.starts_with("ro."))
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let client = self.adb_client(phone_id).await?;
        let script = live
            .iter()
            .map(|(k, v)| {
                format!(
                    "setprop {} {}",
                    cph_adb::client::quote(k),
                    cph_adb::client::quote(v)
                )
            })
            .collect::<Vec<_>>()
            .join(" && ");
        let limit = Duration::from_secs(30);
        match tokio::time::timeout(limit, client.shell(&script)).await {
            Err(_) => Err(timed_out("setting properties", limit)),
            Ok(Err(e)) => Err(unreachable(format_args!("setting properties: {e}"))),
            Ok(Ok(out)) if matches!(out.exit_code, Some(c) if c != 0) => {
                let mut o = failed(
                    "CPS.0260",
                    "Sub job execute failed: the phone refused a property.",
                );
                o.execute_msg = Some(output_text(&out.stdout, &out.stderr));
                Err(o)
            }
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Counts a RunSyncCommand call of `user_id` against the per-minute limit (`CPS.0042` past
    /// it). A limit of 0 disables the check.
    pub(crate) fn admit_sync_command(&self, user_id: &str) -> crate::Result<()> {
        let limit = self.config().sync_commands_per_minute;
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let window = Duration::from_secs(60);
        let mut calls = lock(&self.inner.adb.sync_calls);
        if calls.len() > 100_000 {
            calls.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = calls.entry(user_id.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            return Err(crate::ServiceError::cps_msg(
                "CPS.0042",
                format!(
                    "System busy: at most {limit} synchronous command calls per minute per user."
                ),
            ));
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_rsa_keys_convert_to_adb_keys() {
        let (line, _pem, _blob) = crate::keypairs::generate_rsa("c").unwrap();
        let adb = adb_key_of_ssh(&line).unwrap();
        assert!(adb.starts_with("QAAAA"));
        assert!(AdbPublicKey::from_line(&adb).is_ok());
        assert_eq!(
            adb_key_of_ssh(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
            ),
            None
        );
        assert_eq!(adb_key_of_ssh("ssh-rsa !!!"), None);
    }

    #[test]
    fn output_is_cut_on_a_char_boundary() {
        let out = "é".repeat(600);
        let t = output_text(out.as_bytes(), b"");
        assert!(t.len() <= MAX_EXECUTE_MSG);
        assert!(t.chars().all(|c| c == 'é'));
    }
}
