//! The gateway driven by the stock OpenSSH client (`ssh`, `ssh-keygen`).
//!
//! The only stand-in is the policy: it accepts the keys a test lists and maps fake phone
//! addresses (`192.168.0.x:5555`, never contacted) to TCP servers on 127.0.0.1. Tests are
//! reported as ignored when the OpenSSH client is not installed (see `build.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cph_ssh::{
    AuditEvent, Gateway, GatewayConfig, GatewayPolicy, HostKey, Limits, OfferedKey, PolicyFuture,
    Principal, SshError, Target,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bound on any single step of a test; reaching it fails the test (it is never a timing
/// assertion, only a guard against hanging).
const STEP: Duration = Duration::from_secs(30);

const PHONE: &str = "192.168.0.12";
const DIGEST_PHONE: &str = "192.168.0.13";
const UNKNOWN_PHONE: &str = "192.168.0.99";
/// Served in the gateway's process ([`Target::Local`]): an echo, and a digest answer.
const LOCAL_ECHO_PHONE: &str = "192.168.0.21";
const LOCAL_DIGEST_PHONE: &str = "192.168.0.22";

// ---------------------------------------------------------------------------------------
// The test policy

#[derive(Default)]
struct TestPolicy {
    /// fingerprint → tag
    keys: Mutex<HashMap<String, String>>,
    targets: Mutex<HashMap<(String, u16), SocketAddr>>,
    events: Mutex<Vec<AuditEvent>>,
}

impl TestPolicy {
    fn allow(&self, fingerprint: &str, tag: &str) {
        self.keys
            .lock()
            .unwrap()
            .insert(fingerprint.to_string(), tag.to_string());
    }

    fn forbid(&self, fingerprint: &str) {
        self.keys.lock().unwrap().remove(fingerprint);
    }

    fn route(&self, host: &str, port: u16, to: SocketAddr) {
        self.targets
            .lock()
            .unwrap()
            .insert((host.to_string(), port), to);
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits for an audit event matching `pred`.
    async fn event(&self, what: &str, pred: impl Fn(&AuditEvent) -> bool) -> AuditEvent {
        let found = tokio::time::timeout(STEP, async {
            loop {
                if let Some(e) = self.events().into_iter().find(&pred) {
                    return e;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        match found {
            Ok(e) => e,
            Err(_) => panic!("no audit event {what}; got {:#?}", self.events()),
        }
    }

    fn has(&self, pred: impl Fn(&AuditEvent) -> bool) -> bool {
        self.events().iter().any(pred)
    }
}

impl GatewayPolicy for TestPolicy {
    fn authorize<'a>(
        &'a self,
        _peer: SocketAddr,
        user: &'a str,
        key: &'a OfferedKey,
    ) -> PolicyFuture<'a, Result<Principal, String>> {
        Box::pin(async move {
            let tag = self.keys.lock().unwrap().get(&key.fingerprint).cloned();
            match tag {
                Some(tag) => Ok(Principal {
                    user: user.to_string(),
                    key_fingerprint: key.fingerprint.clone(),
                    tag,
                }),
                None => Err("unknown key".into()),
            }
        })
    }

    fn resolve<'a>(
        &'a self,
        _who: &'a Principal,
        host: &'a str,
        port: u16,
    ) -> PolicyFuture<'a, Result<Target, String>> {
        Box::pin(async move {
            let to = self
                .targets
                .lock()
                .unwrap()
                .get(&(host.to_string(), port))
                .copied();
            if to.is_none()
                && port == 5555
                && (host == LOCAL_ECHO_PHONE || host == LOCAL_DIGEST_PHONE)
            {
                let (target, stream) = cph_ssh::local::pair(64 * 1024);
                if host == LOCAL_ECHO_PHONE {
                    tokio::spawn(echo(stream));
                } else {
                    tokio::spawn(digest(stream));
                }
                return Ok(Target::Local(target));
            }
            to.map(Target::Tcp)
                .ok_or_else(|| "not a phone of this server".into())
        })
    }

    fn audit(&self, event: AuditEvent) {
        self.events.lock().unwrap().push(event);
    }
}

// ---------------------------------------------------------------------------------------
// Targets

/// Echoes everything; passes the client's EOF on once everything was echoed.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(echo(s));
        }
    });
    addr
}

/// Echoes everything until EOF, then passes the EOF on.
async fn echo<S: AsyncRead + AsyncWrite + Send + Unpin>(s: S) {
    let (mut r, mut w) = tokio::io::split(s);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// Reads until EOF, then answers with the SHA-256 (hex) of what it read.
async fn digest<S: AsyncRead + AsyncWrite + Send + Unpin>(mut s: S) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return,
        }
    }
    let _ = s.write_all(hex(&h.finalize()).as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Answers like [`digest`], on a TCP port.
async fn digest_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(digest(s));
        }
    });
    addr
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Deterministic bytes that differ per `seed`.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The gateway under test

struct Harness {
    gw: Gateway,
    policy: Arc<TestPolicy>,
    port: u16,
    dir: tempfile::TempDir,
    host_key_path: PathBuf,
    cancel: CancellationToken,
    serve: JoinHandle<Result<(), SshError>>,
}

impl Harness {
    async fn start(limits: Limits) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let host_key_path = dir.path().join("host_ed25519");
        let host_key = HostKey::load_or_generate(&host_key_path).unwrap();
        let policy = Arc::new(TestPolicy::default());
        policy.route(PHONE, 5555, echo_server().await);
        policy.route(DIGEST_PHONE, 5555, digest_server().await);
        let gw = Gateway::new(GatewayConfig { host_key, limits }, policy.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cancel = CancellationToken::new();
        let serve = tokio::spawn({
            let gw = gw.clone();
            let cancel = cancel.clone();
            async move { gw.serve(listener, cancel).await }
        });
        Harness {
            gw,
            policy,
            port,
            dir,
            host_key_path,
            cancel,
            serve,
        }
    }

    /// A new key pair made by `ssh-keygen`; returns the private key path and fingerprint.
    async fn keygen(&self, name: &str, args: &[&str]) -> (PathBuf, String) {
        let path = self.dir.path().join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let fp = keygen_fingerprint(&path.with_extension("pub")).await;
        (path, fp)
    }

    async fn allowed_key(&self, name: &str, tag: &str) -> (PathBuf, String) {
        let (key, fp) = self.keygen(name, &["-t", "ed25519"]).await;
        self.policy.allow(&fp, tag);
        (key, fp)
    }

    /// `ssh` with options that make it non-interactive and independent of the user's
    /// configuration.
    fn ssh(&self, key: &Path) -> Command {
        self.ssh_checking(key, None)
    }

    /// Like [`Harness::ssh`]; with `known_hosts`, the host key must be the one listed there.
    fn ssh_checking(&self, key: &Path, known_hosts: Option<&Path>) -> Command {
        let mut c = Command::new("ssh");
        c.env_remove("SSH_AUTH_SOCK").args(["-F", "/dev/null"]);
        match known_hosts {
            None => c
                .args(["-o", "StrictHostKeyChecking=no"])
                .args(["-o", "UserKnownHostsFile=/dev/null"]),
            Some(file) => c
                .args(["-o", "StrictHostKeyChecking=yes"])
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", file.display())),
        };
        c.args(["-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes"])
            .args(["-o", "LogLevel=ERROR"])
            .args(["-o", "ConnectTimeout=20"])
            .args(["-o", "ExitOnForwardFailure=yes"])
            .arg("-i")
            .arg(key)
            .args(["-p", &self.port.to_string(), "-l", "tester"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs `ssh [options] 127.0.0.1 [command]` to completion.
    async fn run_ssh(&self, key: &Path, options: &[&str]) -> Output {
        self.run_ssh_command(key, options, &[]).await
    }

    async fn run_ssh_command(&self, key: &Path, options: &[&str], command: &[&str]) -> Output {
        let mut c = self.ssh(key);
        c.args(options).arg("127.0.0.1").args(command);
        tokio::time::timeout(STEP, c.output())
            .await
            .expect("ssh ended")
            .unwrap()
    }

    /// `ssh -N -L` forwarding each returned local port to the matching destination, once
    /// the first forward (which must be an accepted destination) has carried a connection
    /// and that tunnel has closed again.
    async fn tunnel(&self, key: &Path, dests: &[&str]) -> (Child, Vec<u16>) {
        let closed = || {
            self.policy
                .events()
                .iter()
                .filter(|e| matches!(e, AuditEvent::TunnelClosed { .. }))
                .count()
        };
        let closed_before = closed();
        let mut c = self.ssh(key);
        let mut ports = Vec::new();
        c.arg("-N");
        for d in dests {
            let p = free_port().await;
            ports.push(p);
            c.args(["-L", &format!("127.0.0.1:{p}:{d}")]);
        }
        c.arg("127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let ready = tokio::time::timeout(STEP, async {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return Err(status);
                }
                if TcpStream::connect(("127.0.0.1", ports[0])).await.is_ok() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("forward became ready");
        if let Err(status) = ready {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err).await;
            }
            panic!("ssh exited with {status}: {err}");
        }
        self.wait_until("probe tunnel closed", |_| closed() > closed_before)
            .await;
        (child, ports)
    }

    async fn wait_until(&self, what: &str, cond: impl Fn(&Gateway) -> bool) {
        let ok = tokio::time::timeout(STEP, async {
            while !cond(&self.gw) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "gateway never reached: {what} ({:?})", self.gw);
    }
}

async fn keygen_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(public)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "ssh-keygen -l: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn connect(port: u16) -> TcpStream {
    tokio::time::timeout(STEP, TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// Reads until EOF or error; returns what was read.
async fn read_to_end(s: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(STEP, s.read_to_end(&mut out))
        .await
        .expect("peer closed in time");
    out
}

/// Sends `data` and reads it back through an echo tunnel, both directions at once.
async fn round_trip(s: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let (mut r, mut w) = s.into_split();
    let len = data.len();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w
    });
    let mut back = vec![0u8; len];
    tokio::time::timeout(STEP, r.read_exact(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    drop(writer.await.unwrap());
    back
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fast_limits() -> Limits {
    Limits {
        auth_rejection_delay: Duration::from_millis(10),
        close_grace: Duration::from_millis(500),
        ..Limits::default()
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_login_tunnel_carries_bytes_both_ways() {
    let h = Harness::start(fast_limits()).await;
    let (key, fp) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;

    let login = h
        .policy
        .event("login accepted", |e| {
            matches!(e, AuditEvent::Login { accepted: true, .. })
        })
        .await;
    let AuditEvent::Login {
        user,
        key_fingerprint,
        method,
        ..
    } = login
    else {
        unreachable!()
    };
    assert_eq!(user, "tester");
    assert_eq!(key_fingerprint.as_deref(), Some(fp.as_str()));
    assert_eq!(method, "publickey");
    assert_eq!(h.gw.sessions(), 1);

    // A small echo, then 8 MiB both ways at once with a hash check.
    let s = connect(ports[0]).await;
    assert_eq!(round_trip(s, b"hello".to_vec()).await, b"hello");
    let data = pattern(8 << 20, 1);
    let s = connect(ports[0]).await;
    let back = round_trip(s, data.clone()).await;
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));

    let closed = h
        .policy
        .event(
            "bulk tunnel closed",
            |e| matches!(e, AuditEvent::TunnelClosed { bytes_up, .. } if *bytes_up == 8 << 20),
        )
        .await;
    let AuditEvent::TunnelClosed {
        principal,
        host,
        port,
        bytes_down,
        ..
    } = closed
    else {
        unreachable!()
    };
    assert_eq!(bytes_down, 8 << 20);
    assert_eq!((host.as_str(), port), (PHONE, 5555));
    assert_eq!(principal.tag, "kp-1");
    assert_eq!(principal.key_fingerprint, fp);
    h.wait_until("no tunnels", |g| g.tunnels() == 0).await;
    assert!(h.policy.has(|e| matches!(
        e,
        AuditEvent::Tunnel { accepted: true, host, .. } if host == PHONE
    )));
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ecdsa_keys_are_accepted() {
    let h = Harness::start(fast_limits()).await;
    for (name, args) in [
        ("id_rsa", &["-t", "rsa", "-b", "3072"][..]),
        ("id_ecdsa", &["-t", "ecdsa", "-b", "256"][..]),
    ] {
        let (key, fp) = h.keygen(name, args).await;
        h.policy.allow(&fp, name);
        let (mut ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;
        let data = pattern(256 * 1024, 7);
        let back = round_trip(connect(ports[0]).await, data.clone()).await;
        assert_eq!(back, data, "{name}");
        assert!(h.policy.has(|e| matches!(
            e,
            AuditEvent::Login { accepted: true, key_fingerprint: Some(f), .. } if *f == fp
        )));
        ssh.kill().await.unwrap();
    }
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_rsa_key_and_unknown_key_are_refused() {
    let h = Harness::start(fast_limits()).await;
    let (unknown, unknown_fp) = h.keygen("id_unknown", &["-t", "ed25519"]).await;
    let out = h.run_ssh(&unknown, &["-N"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    let refused = h
        .policy
        .event("unknown key refused", |e| {
            matches!(e, AuditEvent::Login { accepted: false, method, .. } if method == "publickey")
        })
        .await;
    let AuditEvent::Login {
        key_fingerprint,
        reason,
        ..
    } = refused
    else {
        unreachable!()
    };
    assert_eq!(key_fingerprint, Some(unknown_fp));
    assert_eq!(reason.as_deref(), Some("unknown key"));

    // A 1024-bit RSA key is refused even though the policy would accept it.
    let (short, short_fp) = h.keygen("id_rsa1024", &["-t", "rsa", "-b", "1024"]).await;
    h.policy.allow(&short_fp, "short");
    let out = h.run_ssh(&short, &["-N"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    h.policy
        .event("short key refused", |e| {
            matches!(e, AuditEvent::Login { accepted: false, key_fingerprint: Some(f), reason: Some(r), .. }
                if *f == short_fp && r.contains("2048"))
        })
        .await;
    assert_eq!(h.gw.sessions(), 0);
    assert!(
        !h.policy
            .has(|e| matches!(e, AuditEvent::Login { accepted: true, .. }))
    );
}

struct AnyHostKey;

impl russh::client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_keyboard_interactive_are_refused() {
    let h = Harness::start(fast_limits()).await;
    // OpenSSH sees that only public keys are offered and gives up without a password.
    let (key, _) = h.keygen("id_unused", &["-t", "ed25519"]).await;
    let out = h
        .run_ssh(
            &key,
            &[
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                "-N",
            ],
        )
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied (publickey)"),
        "{}",
        stderr(&out)
    );

    // A client that sends a password and a keyboard-interactive request anyway is refused.
    let config = Arc::new(russh::client::Config::default());
    let mut client = tokio::time::timeout(
        STEP,
        russh::client::connect(config, ("127.0.0.1", h.port), AnyHostKey),
    )
    .await
    .unwrap()
    .unwrap();
    let r = client
        .authenticate_password("tester", "hunter2")
        .await
        .unwrap();
    assert!(!r.success());
    let r = client
        .authenticate_keyboard_interactive_start("tester", None)
        .await
        .unwrap();
    assert!(matches!(
        r,
        russh::client::KeyboardInteractiveAuthResponse::Failure { .. }
    ));
    for method in ["password", "keyboard-interactive"] {
        h.policy
            .event(method, |e| {
                matches!(e, AuditEvent::Login { accepted: false, method: m, user, key_fingerprint: None, .. }
                    if m == method && user == "tester")
            })
            .await;
    }
    // The password itself is never recorded.
    assert!(!format!("{:?}", h.policy.events()).contains("hunter2"));
    assert_eq!(h.gw.sessions(), 0);
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_destination_closes_the_forwarded_connection() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h
        .tunnel(
            &key,
            &[&format!("{PHONE}:5555"), &format!("{UNKNOWN_PHONE}:5555")],
        )
        .await;
    let mut s = connect(ports[1]).await;
    let _ = s.write_all(b"CNXN").await;
    assert!(read_to_end(&mut s).await.is_empty());
    let e = h
        .policy
        .event("tunnel refused", |e| {
            matches!(
                e,
                AuditEvent::Tunnel {
                    accepted: false,
                    ..
                }
            )
        })
        .await;
    let AuditEvent::Tunnel {
        host, port, reason, ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!((host.as_str(), port), (UNKNOWN_PHONE, 5555));
    assert_eq!(reason.as_deref(), Some("not a phone of this server"));
    // The session itself stays usable.
    let back = round_trip(connect(ports[0]).await, b"still here".to_vec()).await;
    assert_eq!(back, b"still here");
    assert_eq!(h.gw.sessions(), 1);
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_shells_and_subsystems_are_refused() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;

    let out = h.run_ssh_command(&key, &[], &["echo", "pwned"]).await;
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pwned"));
    h.policy
        .event(
            "exec refused",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "exec"),
        )
        .await;

    let out = h.run_ssh(&key, &["-T"]).await;
    assert!(!out.status.success());
    h.policy
        .event(
            "shell refused",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "shell"),
        )
        .await;

    let out = h.run_ssh_command(&key, &["-s"], &["sftp"]).await;
    assert!(!out.status.success());
    h.policy
        .event(
            "subsystem refused",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "subsystem"),
        )
        .await;

    let out = h.run_ssh_command(&key, &["-tt", "-A"], &["true"]).await;
    assert!(!out.status.success());
    h.policy
        .event(
            "pty refused",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "pty-req"),
        )
        .await;
    // The command line is never recorded.
    assert!(!format!("{:?}", h.policy.events()).contains("pwned"));
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forwarding_is_refused() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let out = h
        .run_ssh(&key, &["-N", "-R", "127.0.0.1:0:127.0.0.1:9"])
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("remote port forwarding failed"),
        "{}",
        stderr(&out)
    );
    h.policy
        .event(
            "tcpip-forward refused",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "tcpip-forward"),
        )
        .await;
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_closes_open_tunnels_and_the_session() {
    let h = Harness::start(fast_limits()).await;
    let (key, fp) = h.allowed_key("id_ed25519", "kp-1").await;
    let (mut ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;
    let s = connect(ports[0]).await;
    let (mut r, mut w) = s.into_split();
    w.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    tokio::time::timeout(STEP, r.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"ping");
    h.wait_until("one tunnel", |g| g.tunnels() == 1).await;

    assert_eq!(h.gw.revoke(|p| p.tag == "kp-other"), 0);
    assert_eq!(h.gw.sessions(), 1);

    // Rotation: the policy stops accepting the key, then revokes its sessions.
    h.policy.forbid(&fp);
    assert_eq!(h.gw.revoke(|p| p.tag == "kp-1"), 1);
    assert_eq!(h.gw.sessions(), 0);

    // The forwarded connection and the ssh process both end.
    let rest = read_to_end(&mut r).await;
    assert!(rest.is_empty());
    let status = tokio::time::timeout(STEP, ssh.wait())
        .await
        .expect("ssh exits after revoke")
        .unwrap();
    assert!(!status.success());
    h.wait_until("no connections", |g| {
        g.connections() == 0 && g.tunnels() == 0
    })
    .await;
    h.policy
        .event("session closed as revoked", |e| {
            matches!(e, AuditEvent::SessionClosed { reason, principal, .. }
                if reason == "revoked" && principal.tag == "kp-1")
        })
        .await;
    h.policy
        .event("tunnel closed", |e| {
            matches!(
                e,
                AuditEvent::TunnelClosed {
                    bytes_up: 4,
                    bytes_down: 4,
                    ..
                }
            )
        })
        .await;

    // The old key no longer logs in.
    let out = h.run_ssh(&key, &["-N"]).await;
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_throttle_the_address() {
    let h = Harness::start(Limits {
        failure_threshold: 3,
        ..fast_limits()
    })
    .await;
    let (unknown, _) = h.keygen("id_unknown", &["-t", "ed25519"]).await;
    for _ in 0..3 {
        let out = h.run_ssh(&unknown, &["-N"]).await;
        assert!(
            stderr(&out).contains("Permission denied"),
            "{}",
            stderr(&out)
        );
    }
    // Wait until the third failed connection has been accounted.
    h.wait_until("failed connections closed", |g| g.connections() == 0)
        .await;
    assert!(
        !h.policy
            .has(|e| matches!(e, AuditEvent::Refused { what, .. } if what == "throttled"))
    );

    // Now even a good key is turned away at the door.
    let (good, _) = h.allowed_key("id_good", "kp-1").await;
    let out = h.run_ssh(&good, &["-N"]).await;
    assert!(!out.status.success());
    assert!(
        !stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    h.policy
        .event(
            "throttled",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "throttled"),
        )
        .await;
    assert!(
        !h.policy
            .has(|e| matches!(e, AuditEvent::Login { accepted: true, .. }))
    );
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_does_not_break_the_gateway() {
    let h = Harness::start(Limits {
        auth_timeout: Duration::from_secs(2),
        ..fast_limits()
    })
    .await;
    let addr = ("127.0.0.1", h.port);
    // Plain garbage instead of a version line.
    let mut s = connect(h.port).await;
    let _ = s.write_all(&pattern(64 * 1024, 3)).await;
    let _ = read_to_end(&mut s).await;
    // An HTTP request.
    let mut s = connect(h.port).await;
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let _ = read_to_end(&mut s).await;
    // A version line, then a packet claiming 4 GiB.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s
        .write_all(b"SSH-2.0-x\r\n\xff\xff\xff\xff\x00\x00\x00\x00")
        .await;
    let _ = read_to_end(&mut s).await;
    // A version line, then well-framed packets of nonsense.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut junk = b"SSH-2.0-x\r\n".to_vec();
    for i in 0..50u64 {
        junk.extend_from_slice(&[0, 0, 0, 28, 6]);
        junk.extend_from_slice(&pattern(27, i));
    }
    let _ = s.write_all(&junk).await;
    let _ = read_to_end(&mut s).await;
    // A connection that never says anything is closed by the authentication deadline.
    let mut s = connect(h.port).await;
    let banner = read_to_end(&mut s).await;
    assert!(banner.starts_with(b"SSH-2.0-cph"), "{banner:?}");
    h.policy
        .event(
            "auth-timeout",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "auth-timeout"),
        )
        .await;
    h.policy
        .event(
            "malformed",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "malformed"),
        )
        .await;

    // Still serving.
    assert!(!h.serve.is_finished());
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;
    let back = round_trip(connect(ports[0]).await, b"alive".to_vec()).await;
    assert_eq!(back, b"alive");
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_tunnels_all_carry_their_own_bytes() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;

    let mut conns = Vec::new();
    for _ in 0..50 {
        conns.push(connect(ports[0]).await);
    }
    // Each connection first proves its tunnel is up, then all stay open together.
    let mut tasks = Vec::new();
    for (i, s) in conns.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = s.into_split();
            w.write_all(&[i as u8]).await.unwrap();
            let mut b = [0u8; 1];
            r.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], i as u8);
            (r, w)
        }));
    }
    let mut halves = Vec::new();
    for t in tasks {
        halves.push(tokio::time::timeout(STEP, t).await.unwrap().unwrap());
    }
    h.wait_until("fifty tunnels", |g| g.tunnels() == 50).await;

    let mut tasks = Vec::new();
    for (i, (mut r, mut w)) in halves.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let data = pattern(256 * 1024, 100 + i as u64);
            let expected = data.clone();
            let writer = tokio::spawn(async move {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            });
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.unwrap();
            writer.await.unwrap();
            back == expected
        }));
    }
    for t in tasks {
        assert!(tokio::time::timeout(STEP, t).await.unwrap().unwrap());
    }
    h.wait_until("all closed", |g| g.tunnels() == 0).await;
    assert_eq!(h.gw.sessions(), 1);
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_targets_carry_bytes_both_ways_with_half_close() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h
        .tunnel(
            &key,
            &[
                &format!("{LOCAL_ECHO_PHONE}:5555"),
                &format!("{LOCAL_DIGEST_PHONE}:5555"),
            ],
        )
        .await;
    let data = pattern(8 << 20, 3);
    let back = round_trip(connect(ports[0]).await, data.clone()).await;
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));

    let mut s = connect(ports[1]).await;
    let data = pattern(3 << 20, 4);
    s.write_all(&data).await.unwrap();
    s.shutdown().await.unwrap();
    let answer = read_to_end(&mut s).await;
    assert_eq!(
        String::from_utf8(answer).unwrap(),
        hex(&Sha256::digest(&data))
    );
    let closed = h
        .policy
        .event(
            "in-process tunnel closed",
            |e| matches!(e, AuditEvent::TunnelClosed { bytes_up, bytes_down, .. } if *bytes_up == 8 << 20 && *bytes_down == 8 << 20),
        )
        .await;
    assert!(matches!(closed, AuditEvent::TunnelClosed { host, .. } if host == LOCAL_ECHO_PHONE));
    h.wait_until("no tunnels", |g| g.tunnels() == 0).await;
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_keeps_the_other_direction_open() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h.tunnel(&key, &[&format!("{DIGEST_PHONE}:5555")]).await;
    let mut s = connect(ports[0]).await;
    let data = pattern(3 << 20, 9);
    s.write_all(&data).await.unwrap();
    // Only our direction ends; the answer still has to come back.
    s.shutdown().await.unwrap();
    let answer = read_to_end(&mut s).await;
    assert_eq!(
        String::from_utf8(answer).unwrap(),
        hex(&Sha256::digest(&data))
    );
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_and_per_address_limits_hold() {
    let h = Harness::start(Limits {
        max_channels_per_session: 2,
        max_connections_per_ip: 2,
        ..fast_limits()
    })
    .await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let (_ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;
    let a = connect(ports[0]).await;
    let a = {
        let (mut r, mut w) = a.into_split();
        w.write_all(b"a").await.unwrap();
        let mut b = [0u8; 1];
        r.read_exact(&mut b).await.unwrap();
        (r, w)
    };
    let b = connect(ports[0]).await;
    let b = {
        let (mut r, mut w) = b.into_split();
        w.write_all(b"b").await.unwrap();
        let mut x = [0u8; 1];
        r.read_exact(&mut x).await.unwrap();
        (r, w)
    };
    // A third channel exceeds the session's limit.
    let mut c = connect(ports[0]).await;
    let _ = c.write_all(b"c").await;
    assert!(read_to_end(&mut c).await.is_empty());
    h.policy
        .event("channel limit", |e| {
            matches!(e, AuditEvent::Tunnel { accepted: false, reason: Some(r), .. } if r == "too many channels")
        })
        .await;
    drop((a, b));

    // One ssh connection is open from 127.0.0.1; a second fits, a third is turned away
    // before the SSH banner.
    let mut second = connect(h.port).await;
    let mut banner = [0u8; 7];
    second.read_exact(&mut banner).await.unwrap();
    assert_eq!(&banner, b"SSH-2.0");
    let mut third = connect(h.port).await;
    assert!(read_to_end(&mut third).await.is_empty());
    h.policy
        .event(
            "per-ip limit",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "per-ip-limit"),
        )
        .await;
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_and_shutdown_closes_the_rest() {
    let h = Harness::start(Limits {
        idle_timeout: Duration::from_secs(2),
        ..fast_limits()
    })
    .await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    // A session that never opens a tunnel is closed after the idle timeout.
    let out = h.run_ssh(&key, &["-N"]).await;
    assert!(!out.status.success());
    h.policy
        .event(
            "idle close",
            |e| matches!(e, AuditEvent::SessionClosed { reason, .. } if reason == "idle"),
        )
        .await;

    // A session with an open tunnel is not idle; shutting the gateway down ends it.
    let (mut ssh, ports) = h.tunnel(&key, &[&format!("{PHONE}:5555")]).await;
    let s = connect(ports[0]).await;
    let (mut r, mut w) = s.into_split();
    w.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    r.read_exact(&mut b).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.gw.sessions(), 1, "a session with a tunnel is not idle");

    h.cancel.cancel();
    let served = tokio::time::timeout(STEP, h.serve).await.unwrap().unwrap();
    assert!(served.is_ok());
    assert!(read_to_end(&mut r).await.is_empty());
    tokio::time::timeout(STEP, ssh.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.gw.connections(), 0);
    assert_eq!(h.gw.tunnels(), 0);
    assert!(h.policy.has(|e| matches!(
        e,
        AuditEvent::SessionClosed { reason, .. } if reason == "shutdown"
    )));
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_can_pin_the_persistent_host_key() {
    let h = Harness::start(fast_limits()).await;
    let host_key = HostKey::load_or_generate(&h.host_key_path).unwrap();
    // ssh-keygen reads the same key from the file.
    let fp = keygen_fingerprint(&h.host_key_path).await;
    assert_eq!(fp, host_key.fingerprint_sha256());
    let public = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&h.host_key_path)
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&public.stdout).starts_with(&host_key.public_openssh()),
        "{public:?}"
    );

    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    let known = h.dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", h.port, host_key.public_openssh()),
    )
    .unwrap();
    // With the right key pinned the login gets through (and the session idles until
    // killed); with another key pinned, ssh refuses to talk.
    let mut child = h
        .ssh_checking(&key, Some(&known))
        .args(["-N", "127.0.0.1"])
        .spawn()
        .unwrap();
    h.wait_until("pinned login", |g| g.sessions() == 1).await;
    child.kill().await.unwrap();

    let other = h.dir.path().join("known_hosts_other");
    std::fs::write(
        &other,
        format!(
            "[127.0.0.1]:{} {}\n",
            h.port,
            HostKey::generate().public_openssh()
        ),
    )
    .unwrap();
    let out = tokio::time::timeout(
        STEP,
        h.ssh_checking(&key, Some(&other))
            .args(["-N", "127.0.0.1"])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
    // The client gave up before authenticating: only the pinned login got in.
    let logins = h
        .policy
        .events()
        .into_iter()
        .filter(|e| matches!(e, AuditEvent::Login { accepted: true, .. }))
        .count();
    assert_eq!(logins, 1);
}

#[cfg_attr(
    not(has_openssh),
    ignore = "OpenSSH client (ssh, ssh-keygen) not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_aes_gcm_is_offered_and_clients_pick_it() {
    let h = Harness::start(fast_limits()).await;
    let (key, _) = h.allowed_key("id_ed25519", "kp-1").await;
    // A client insisting on ChaCha20-Poly1305 finds no common cipher.
    let out = h
        .run_ssh(&key, &["-N", "-c", "chacha20-poly1305@openssh.com"])
        .await;
    assert!(!out.status.success());
    h.policy
        .event(
            "no common cipher",
            |e| matches!(e, AuditEvent::Refused { what, .. } if what == "no-common-algorithm"),
        )
        .await;
    // The stock client's defaults settle on AES-GCM (and log in).
    let out = h.run_ssh_command(&key, &["-v"], &["true"]).await;
    let log = stderr(&out);
    assert!(log.contains("cipher: aes128-gcm@openssh.com"), "{log}");
}
