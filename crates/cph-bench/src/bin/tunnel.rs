//! `tunnel`: benchmarks of keyed access through the SSH gateway (`cph-ssh`), each against a
//! baseline measured in the same run on the same machine.
//!
//! What the service would run is this process (and, in the tunnels benchmark, a child process of
//! it): virtual phones hosted as the host agent hosts them (each with its ADB endpoint on a
//! loopback port) and one [`cph_ssh::Gateway`] on a loopback port, whose policy accepts one key made with `ssh-keygen` for user `root` and resolves
//! `10.0.0.2:5555` (and `10.0.0.3:5555`, … when there are more phones) to the phones' endpoints,
//! as the service's policy resolves a phone's private address. The clients are the stock ones:
//! OpenSSH's `ssh -N -L` and the stock `adb` with its own server port, home directory and vendor
//! key, so the user's adb server and keys are never touched.
//!
//! 1. **Push through the tunnel** (`--only push`): `adb push` of a random file (`--size`, 1 GiB
//!    by default) to `/data/local/tmp/big.bin` on one phone, directly (`adb connect` to the
//!    endpoint: the baseline), through `ssh -L` to our gateway with OpenSSH's default cipher
//!    (the target: at least half the direct throughput), and, for comparison, through `ssh -L`
//!    to the stock OpenSSH server (`--sshd`, skipped when it is missing or cannot start) with
//!    the same cipher, forwarding to the endpoint's TCP port. All routes go through one adb
//!    server, interleaved (the order rotates every round), median of `--rounds`; the tunnel
//!    against direct is also given per round (the two pushes of a round run back to back, so
//!    their ratio is spared the machine's drift between rounds) and their median. Our gateway
//!    reaches the phone in-process, as the service's gateway reaches the phones it hosts; the
//!    cipher the client negotiated is read from its own debug log. Every step starts after an
//!    untimed `sync` and ends when `adb push` exits; the phone does not `fsync`. After each
//!    step the phone's `sha256sum` of the file must match the source's. CPU per GiB is charged
//!    to this process (the phone's endpoint, plus our gateway on its route), sshd and its
//!    per-connection processes, the ssh client, the adb client and the adb server; our
//!    gateway's share is this process's CPU on its route less its CPU on the direct path.
//! 2. **Concurrent tunnels** (`--only tunnels`): `--tunnels` (200) tunnels held open at once,
//!    opened by ssh clients of `--tunnels-per-client` (50) connections each through one `-L`
//!    forward (one TCP connection through a `-L` is one `direct-tcpip` channel: one tunnel), each
//!    phone taking the connections of one client (a phone's endpoint admits 64). Each connection
//!    carries a whole ADB handshake (CNXN, AUTH with an RSA signature, the device's CNXN, whose
//!    banner must name the phone's model), made by one child process of this binary; all must
//!    succeed and the gateway must count them all in `tunnels()`. Here the phones are hosted by
//!    another child process of this binary, so this process holds the gateway and nothing else
//!    that grows with the connections: its resident set (after settling) is read with no ssh
//!    session, with the sessions up and no tunnel (the baseline), and with every tunnel open;
//!    nothing is closed between the readings, so no freed memory is reused across them. The
//!    phones' process is read too, for scale (what each ADB connection costs an endpoint).
//!
//! The machine's 1-minute load average is reported at the start and the end: other work shows in
//! a figure and its baseline, not always equally. Output: progress on stderr, then a Markdown
//! table and one JSON line on stdout. Children (adb server, ssh clients, the phones and the
//! connections of the tunnels benchmark) are killed when the run ends or fails; the work directory is removed.
//!
//! Run: `cargo run --release -p cph-bench --bin tunnel -- --help`.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use cph_adb::AdbPrivateKey;
use cph_adb::client::{AdbClient, ClientConfig};
use cph_bench::files::{self, free_bytes, sync_disk, temp_dir, write_private, write_random};
use cph_bench::hosted::{PHONE_MODEL, create_phone, instant_durations, phone_spec};
use cph_bench::proc::{cpu_times, loadavg, own_cpu, rss_of_kib, status_kib, tree_cpu};
use cph_bench::report::{Row, mb, median_by, print_table, ratio};
use cph_bench::tools::{StockAdb, free_port, run_tool};
use cph_bench::units::{GIB, human_whole, parse_size};
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::VirtualHostAgent;
use cph_ssh::{
    AuditEvent, Gateway, GatewayConfig, GatewayPolicy, HostKey, Limits, OfferedKey, PolicyFuture,
    Principal, Target,
};
use futures::StreamExt;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// Longest a short command (`adb connect`, `rm`, `ssh-keygen`, …) may take.
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);
/// Where the pushed file goes on the phone.
const PHONE_PATH: &str = "/data/local/tmp/big.bin";
/// The user every login must name.
const SSH_USER: &str = "root";
/// The port a phone's ADB daemon listens on, as clients ask for it.
const PHONE_ADB_PORT: u16 = 5555;
/// Longest an ssh client may take to log in and open its forwards.
const SSH_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the gateway may take to shut down.
const GATEWAY_STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Time given to the process to settle before its resident set is read.
const SETTLE: Duration = Duration::from_secs(1);
/// ADB handshakes the connection holder makes at once.
const HOLD_PARALLELISM: usize = 16;
/// Most ssh clients of the tunnels benchmark (the gateway admits 64 connections per address).
const MAX_SSH_CLIENTS: usize = 60;
/// Longest first line a child mode may print.
const MAX_CHILD_LINE: u64 = 4096;
/// Bytes of an ssh client's log quoted in an error.
const LOG_TAIL: usize = 2000;
/// Disk left free beyond what the push benchmark writes.
const DISK_SLACK: u64 = 512 << 20;
/// Which benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    Push,
    Tunnels,
}

/// The type of the client key made with `ssh-keygen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyType {
    Ed25519,
    /// RSA, 3072 bits.
    Rsa,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmarks of keyed access through the SSH gateway against same-run baselines")]
struct Args {
    #[command(subcommand)]
    internal: Option<Internal>,
    /// Run only this benchmark (default: both).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Size of the pushed file (e.g. 1GiB, 64MiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    /// Rounds of direct/tunnelled pushes; the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    rounds: u64,
    /// Concurrent tunnels of the tunnels benchmark.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=3000))]
    tunnels: u64,
    /// Tunnels per ssh client (the gateway allows 64 channels per session).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60))]
    tunnels_per_client: u64,
    /// Type of the client key.
    #[arg(long, value_enum, default_value = "ed25519")]
    key_type: KeyType,
    /// The stock adb client.
    #[arg(long, default_value = "/usr/bin/adb")]
    adb: PathBuf,
    /// The stock OpenSSH client.
    #[arg(long, default_value = "/usr/bin/ssh")]
    ssh: PathBuf,
    /// The stock ssh-keygen.
    #[arg(long, default_value = "/usr/bin/ssh-keygen")]
    ssh_keygen: PathBuf,
    /// The stock OpenSSH server, run as the gateway of a comparison route (skipped when it
    /// is missing or cannot start, e.g. without root).
    #[arg(long, default_value = "/usr/sbin/sshd")]
    sshd: PathBuf,
    /// Longest one long step may take: one push, one hash, opening all tunnels.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    step_timeout_secs: u64,
    /// Directory the work directory goes in (the disk under test); default: the system's
    /// temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Modes this binary runs in as its own child process.
#[derive(Subcommand, Debug)]
enum Internal {
    /// Opens ADB connections, prints `ready <n>` once all are up, and holds them until its
    /// standard input closes (or `--max-secs` pass).
    #[command(hide = true)]
    Hold {
        /// A PEM file with the ADB key.
        #[arg(long)]
        key: PathBuf,
        /// `address=count`: connections to make to that address.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// Timeout of each connection's handshake, seconds.
        #[arg(long, default_value_t = 30)]
        handshake_secs: u64,
        /// Longest the connections are held.
        #[arg(long, default_value_t = 3600)]
        max_secs: u64,
    },
    /// Hosts running phones, prints `endpoints <address> …`, and keeps them until its standard
    /// input closes (or `--max-secs` pass).
    #[command(hide = true)]
    Phones {
        /// A PEM file with the ADB key the phones accept.
        #[arg(long)]
        key: PathBuf,
        /// Phones to host.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=120))]
        count: u64,
        /// The hosting directory.
        #[arg(long)]
        dir: PathBuf,
        /// Longest the phones are kept.
        #[arg(long, default_value_t = 3600)]
        max_secs: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    match args.internal {
        Some(Internal::Hold {
            ref key,
            ref targets,
            handshake_secs,
            max_secs,
        }) => runtime.block_on(hold(
            key,
            targets,
            Duration::from_secs(handshake_secs),
            Duration::from_secs(max_secs),
        )),
        Some(Internal::Phones {
            ref key,
            count,
            ref dir,
            max_secs,
        }) => runtime.block_on(host_phones(
            key,
            count as usize,
            dir,
            Duration::from_secs(max_secs),
        )),
        None => runtime.block_on(run(args)),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    for (what, bin) in [
        ("adb", &args.adb),
        ("ssh", &args.ssh),
        ("ssh-keygen", &args.ssh_keygen),
    ] {
        anyhow::ensure!(bin.is_file(), "no {what} at {}", bin.display());
    }
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let wants = |b: Only| args.only.is_none_or(|o| o == b);
    let mut json = serde_json::Map::new();
    json.insert("bench".into(), "tunnel".into());
    json.insert("loadavg_start".into(), loadavg().into());
    eprintln!(
        "[load] 1-minute load average at the start: {:.2}",
        loadavg()
    );
    let mut rows = Vec::new();
    // The memory benchmark runs first: its figures are differences of resident sizes, which heap
    // freed by the transfers (and reused by the tunnels) would make look smaller.
    if wants(Only::Tunnels) {
        let (r, j) = bench_tunnels(&args, &base)
            .await
            .context("concurrent tunnels benchmark")?;
        rows.extend(r);
        json.insert("tunnels".into(), j);
    }
    if wants(Only::Push) {
        let (r, j) = bench_push(&args, &base)
            .await
            .context("push through the tunnel benchmark")?;
        rows.extend(r);
        json.insert("push".into(), j);
    }
    json.insert("loadavg_end".into(), loadavg().into());
    eprintln!(
        "[load] 1-minute load average: {:.2} at the start, {:.2} at the end ({} cores)",
        json["loadavg_start"].as_f64().unwrap_or_default(),
        json["loadavg_end"].as_f64().unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_table(&rows);
    println!();
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}

/// This process's resident set after letting it settle, in KiB.
async fn settled_rss_kib() -> anyhow::Result<u64> {
    tokio::time::sleep(SETTLE).await;
    status_kib("self", "VmRSS")
}

// ---------------------------------------------------------------------------------------------
// Phones
// ---------------------------------------------------------------------------------------------

/// Creates `n` running phones; returns their endpoints. Fails unless every one is up.
async fn create_phones(
    agent: &VirtualHostAgent,
    n: usize,
) -> anyhow::Result<Vec<(String, SocketAddr)>> {
    let catalog = cph_catalog::Catalog::builtin();
    let mut phones = Vec::with_capacity(n);
    for slot in 0..n {
        let id = cph_domain::ids::hex_id();
        let spec = phone_spec(&catalog, &id, slot);
        phones.push((id, create_phone(agent, spec).await?));
    }
    Ok(phones)
}

/// The private address the policy gives the `i`-th phone (`10.0.0.2`, `10.0.0.3`, …).
fn phone_host(i: usize) -> String {
    format!("10.0.{}.{}", (i + 2) / 256, (i + 2) % 256)
}

// ---------------------------------------------------------------------------------------------
// The gateway and its policy
// ---------------------------------------------------------------------------------------------

/// What the gateway reported through [`GatewayPolicy::audit`].
#[derive(Debug, Default)]
struct AuditCounts {
    logins_accepted: AtomicU64,
    logins_refused: AtomicU64,
    tunnels_opened: AtomicU64,
    tunnels_refused: AtomicU64,
    tunnels_closed: AtomicU64,
    other_refused: AtomicU64,
    /// Bytes the closed tunnels carried from the clients to the phones.
    bytes_up: AtomicU64,
    /// Bytes the closed tunnels carried from the phones to the clients.
    bytes_down: AtomicU64,
}

impl AuditCounts {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "logins_accepted": Self::get(&self.logins_accepted),
            "logins_refused": Self::get(&self.logins_refused),
            "tunnels_opened": Self::get(&self.tunnels_opened),
            "tunnels_refused": Self::get(&self.tunnels_refused),
            "tunnels_closed": Self::get(&self.tunnels_closed),
            "other_refused": Self::get(&self.other_refused),
            "bytes_up": Self::get(&self.bytes_up),
            "bytes_down": Self::get(&self.bytes_down),
        })
    }
}

/// Accepts one key for [`SSH_USER`]; resolves `<phone host>:5555` to that phone's endpoint:
/// in-process when the phone is hosted by this process (as the service does), else its TCP
/// address.
struct BenchPolicy {
    /// `SHA256:…` of the only key accepted.
    fingerprint: String,
    /// Private address → endpoint.
    phones: HashMap<String, SocketAddr>,
    /// The agent hosting the phones in this process, and private address → phone id.
    local: Option<(Arc<VirtualHostAgent>, HashMap<String, String>)>,
    counts: Arc<AuditCounts>,
}

impl GatewayPolicy for BenchPolicy {
    fn authorize<'a>(
        &'a self,
        _peer: SocketAddr,
        user: &'a str,
        key: &'a OfferedKey,
    ) -> PolicyFuture<'a, Result<Principal, String>> {
        Box::pin(async move {
            if user != SSH_USER {
                return Err("unknown user".into());
            }
            if key.fingerprint != self.fingerprint {
                return Err("unknown key".into());
            }
            Ok(Principal {
                user: user.into(),
                key_fingerprint: key.fingerprint.clone(),
                tag: "bench".into(),
            })
        })
    }

    fn resolve<'a>(
        &'a self,
        _who: &'a Principal,
        host: &'a str,
        port: u16,
    ) -> PolicyFuture<'a, Result<Target, String>> {
        Box::pin(async move {
            if port != PHONE_ADB_PORT {
                return Err("no such port".into());
            }
            if let Some((agent, ids)) = &self.local
                && let Some(id) = ids.get(host)
            {
                let (local, stream) = cph_ssh::local::pair(cph_ssh::local::DEFAULT_CAPACITY);
                let (rx, tx) = stream.into_split();
                let conn = cph_runtime::InProcessConnection::new(rx, tx);
                if cph_runtime::HostAgent::attach_adb(agent.as_ref(), id, conn) {
                    return Ok(Target::Local(local));
                }
            }
            self.phones
                .get(host)
                .copied()
                .map(Target::Tcp)
                .ok_or_else(|| "no such phone".into())
        })
    }

    fn audit(&self, event: AuditEvent) {
        let c = &self.counts;
        let bump = |a: &AtomicU64| {
            a.fetch_add(1, Ordering::Relaxed);
        };
        match event {
            // OpenSSH's opening `none` request is refused by design: not a refused login.
            AuditEvent::Login {
                accepted, method, ..
            } if accepted || method != "none" => bump(if accepted {
                &c.logins_accepted
            } else {
                &c.logins_refused
            }),
            AuditEvent::Tunnel { accepted, .. } => bump(if accepted {
                &c.tunnels_opened
            } else {
                &c.tunnels_refused
            }),
            AuditEvent::TunnelClosed {
                bytes_up,
                bytes_down,
                ..
            } => {
                bump(&c.tunnels_closed);
                c.bytes_up.fetch_add(bytes_up, Ordering::Relaxed);
                c.bytes_down.fetch_add(bytes_down, Ordering::Relaxed);
            }
            AuditEvent::Refused { .. } => bump(&c.other_refused),
            _ => {}
        }
    }
}

/// A gateway serving a loopback port; stopped (and awaited, bounded) by [`RunningGateway::stop`]
/// or, less politely, when dropped.
struct RunningGateway {
    gateway: Gateway,
    port: u16,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), cph_ssh::SshError>>>,
}

impl RunningGateway {
    async fn start(policy: BenchPolicy) -> anyhow::Result<RunningGateway> {
        let gateway = Gateway::new(
            GatewayConfig {
                host_key: HostKey::generate(),
                limits: Limits::default(),
            },
            Arc::new(policy),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the gateway's port")?;
        let port = listener.local_addr()?.port();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let gateway = gateway.clone();
            let cancel = cancel.clone();
            async move { gateway.serve(listener, cancel).await }
        });
        Ok(RunningGateway {
            gateway,
            port,
            cancel,
            task: Some(task),
        })
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(GATEWAY_STOP_TIMEOUT, task)
                .await
                .context("the gateway did not stop in time")?
                .context("the gateway's task failed")?
                .context("the gateway failed")?;
        }
        Ok(())
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A client key made with the stock `ssh-keygen`, and its fingerprint.
struct ClientKey {
    path: PathBuf,
    fingerprint: String,
}

impl ClientKey {
    async fn generate(args: &Args, dir: &Path) -> anyhow::Result<ClientKey> {
        let path = dir.join("id_bench");
        let mut keygen = tokio::process::Command::new(&args.ssh_keygen);
        keygen.args(["-q", "-N", "", "-C", "cph-bench"]);
        match args.key_type {
            KeyType::Ed25519 => keygen.args(["-t", "ed25519"]),
            KeyType::Rsa => keygen.args(["-t", "rsa", "-b", "3072"]),
        };
        keygen.arg("-f").arg(&path);
        run_tool(&mut keygen, "ssh-keygen", SHORT_TIMEOUT).await?;
        let mut show = tokio::process::Command::new(&args.ssh_keygen);
        show.args(["-l", "-E", "sha256", "-f"])
            .arg(path.with_extension("pub"));
        let out = run_tool(&mut show, "ssh-keygen -l", SHORT_TIMEOUT).await?;
        let text = String::from_utf8_lossy(&out);
        let fingerprint = parse_fingerprint(&text)
            .with_context(|| format!("ssh-keygen -l printed {:?}", text.trim()))?;
        Ok(ClientKey { path, fingerprint })
    }
}

/// The `SHA256:…` field of an `ssh-keygen -l -E sha256` line.
fn parse_fingerprint(line: &str) -> Option<String> {
    line.split_whitespace()
        .nth(1)
        .filter(|f| f.starts_with("SHA256:") && f.len() > "SHA256:".len())
        .map(str::to_string)
}

/// The cipher an `ssh -v` log says the client negotiated for its own traffic.
fn negotiated_cipher(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let rest = l.split_once("kex: client->server cipher: ")?.1;
        rest.split_whitespace().next().map(str::to_string)
    })
}

/// A stock `ssh -N` client with `-L` forwards to phones, killed when dropped.
struct SshClient {
    child: tokio::process::Child,
    /// Local ports, one per forward, in the order asked.
    locals: Vec<u16>,
    log: PathBuf,
}

impl SshClient {
    /// Starts `ssh -N` with one `-L 127.0.0.1:<free port>:<host>:5555` per host in `hosts`
    /// (`<host>:<port>` when `hosts` names a port)
    /// and waits until the first forward accepts connections (ssh opens its forwards only
    /// after logging in). `verbose` logs at debug level (which names the negotiated cipher).
    async fn start(
        args: &Args,
        key: &ClientKey,
        home: &Path,
        gateway_port: u16,
        cipher: Option<&str>,
        hosts: &[String],
        verbose: bool,
    ) -> anyhow::Result<SshClient> {
        anyhow::ensure!(!hosts.is_empty(), "an ssh client needs a forward");
        let log = home.join(format!("ssh-{}.log", free_port()?));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut c = tokio::process::Command::new(&args.ssh);
        c.env_clear()
            .env("HOME", home)
            .env("PATH", "/usr/bin:/bin")
            .args(["-F", "/dev/null", "-N"])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes"])
            .args(["-o", "ExitOnForwardFailure=yes"])
            .args([
                "-o",
                if verbose {
                    "LogLevel=DEBUG1"
                } else {
                    "LogLevel=ERROR"
                },
            ])
            .arg("-i")
            .arg(&key.path)
            .args(["-p", &gateway_port.to_string()]);
        if let Some(cipher) = cipher {
            c.args(["-c", cipher]);
        }
        let mut locals = Vec::with_capacity(hosts.len());
        for h in hosts {
            let p = free_port()?;
            locals.push(p);
            let to = if h.contains(':') {
                h.clone()
            } else {
                format!("{h}:{PHONE_ADB_PORT}")
            };
            c.args(["-L", &format!("127.0.0.1:{p}:{to}")]);
        }
        c.arg(format!("{SSH_USER}@127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let child = c.spawn().context("starting ssh")?;
        let mut me = SshClient { child, locals, log };
        let deadline = Instant::now() + SSH_READY_TIMEOUT;
        loop {
            if let Some(st) = me.child.try_wait()? {
                anyhow::bail!(
                    "ssh exited ({st}) before its forwards were up: {}",
                    me.log_tail()
                );
            }
            let probe = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(("127.0.0.1", me.locals[0])),
            )
            .await;
            if let Ok(Ok(s)) = probe {
                drop(s);
                return Ok(me);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "ssh's forwards not up after {SSH_READY_TIMEOUT:?}: {}",
                me.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> Option<String> {
        self.child.id().map(|p| p.to_string())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].trim().to_string()
    }

    /// The cipher the client negotiated (needs a verbose client).
    fn cipher(&self) -> Option<String> {
        negotiated_cipher(&std::fs::read_to_string(&self.log).ok()?)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(SHORT_TIMEOUT, self.child.wait()).await;
    }
}

/// The stock OpenSSH server as a gateway: key logins of the bench key for [`SSH_USER`], local
/// forwarding only, on a free loopback port, in the foreground (killed when dropped).
struct Sshd {
    child: tokio::process::Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    async fn start(args: &Args, key: &ClientKey, dir: &Path) -> anyhow::Result<Sshd> {
        anyhow::ensure!(args.sshd.exists(), "{} not found", args.sshd.display());
        std::fs::create_dir_all(dir)?;
        // Its privilege separation directory (created by the package's service, not by sshd).
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let host_key = dir.join("host_ed25519");
        let mut keygen = tokio::process::Command::new(&args.ssh_keygen);
        keygen
            .args(["-q", "-N", "", "-t", "ed25519", "-f"])
            .arg(&host_key);
        run_tool(&mut keygen, "ssh-keygen (sshd host key)", SHORT_TIMEOUT).await?;
        let authorized = dir.join("authorized_keys");
        std::fs::copy(key.path.with_extension("pub"), &authorized)
            .context("writing sshd's authorized_keys")?;
        let port = free_port()?;
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 AllowUsers {SSH_USER}\nAllowTcpForwarding local\nX11Forwarding no\n\
                 PermitTTY no\nAllowAgentForwarding no\n",
                host_key.display(),
                dir.join("sshd.pid").display(),
                authorized.display(),
            ),
        )?;
        let log = dir.join("sshd.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = tokio::process::Command::new(&args.sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", args.sshd.display()))?;
        let mut me = Sshd { child, port, log };
        let deadline = Instant::now() + SSH_READY_TIMEOUT;
        loop {
            if let Some(st) = me.child.try_wait()? {
                let text = std::fs::read_to_string(&me.log).unwrap_or_default();
                anyhow::bail!("sshd exited ({st}): {}", text.trim());
            }
            if let Ok(Ok(s)) = tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            {
                drop(s);
                return Ok(me);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "sshd not up after {SSH_READY_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> Option<String> {
        self.child.id().map(|p| p.to_string())
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(SHORT_TIMEOUT, self.child.wait()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Push through the tunnel
// ---------------------------------------------------------------------------------------------

/// Wall time and CPU of one timed push.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    secs: f64,
    /// CPU of this process: the phone's endpoint, and the gateway on a tunnel path.
    this: f64,
    /// CPU of the ssh client (0 on the direct path).
    ssh: f64,
    /// CPU of the adb client, once reaped.
    adb_client: f64,
    /// CPU of the adb server.
    adb_server: f64,
    /// CPU of the stock sshd and its per-connection processes (0 unless it is the gateway).
    sshd: f64,
}

impl Step {
    fn cpu(&self) -> f64 {
        self.this + self.ssh + self.adb_client + self.adb_server + self.sshd
    }
}

/// One way to the phone: directly, or through one ssh client.
struct Route {
    /// Short name for the JSON line.
    key: &'static str,
    /// What the table calls it.
    label: String,
    serial: String,
    ssh_pid: Option<String>,
    /// The stock sshd serving the route, if it is the gateway.
    sshd_pid: Option<String>,
    steps: Vec<Step>,
}

impl Route {
    fn median(&self, f: impl Fn(&Step) -> f64) -> f64 {
        median_by(&self.steps, f)
    }
}

/// Times one `adb push` and charges the CPU spent meanwhile to each process.
async fn timed_push(
    adb: &StockAdb,
    route: &Route,
    server_pid: Option<&str>,
    src: &str,
) -> anyhow::Result<Step> {
    let ssh_pid = route.ssh_pid.as_deref();
    let sshd_pid = route.sshd_pid.as_deref();
    let (me0, ssh0, sv0) = (cpu_times("self")?, own_cpu(ssh_pid), own_cpu(server_pid));
    let sshd0 = tree_cpu(sshd_pid);
    let t = Instant::now();
    adb.run(&["-s", &route.serial, "push", src, PHONE_PATH])
        .await?;
    let secs = t.elapsed().as_secs_f64();
    let (me1, ssh1, sv1) = (cpu_times("self")?, own_cpu(ssh_pid), own_cpu(server_pid));
    let sshd1 = tree_cpu(sshd_pid);
    Ok(Step {
        secs,
        this: me1.own - me0.own,
        ssh: ssh1 - ssh0,
        adb_client: me1.children - me0.children,
        adb_server: sv1 - sv0,
        sshd: sshd1 - sshd0,
    })
}

async fn bench_push(args: &Args, base: &Path) -> anyhow::Result<(Vec<Row>, serde_json::Value)> {
    let step_timeout = Duration::from_secs(args.step_timeout_secs);
    let free = free_bytes(base)?;
    let need = 2 * args.size + DISK_SLACK;
    anyhow::ensure!(
        free >= need,
        "{} needs {} free (the file and its copy on the phone), {} is",
        base.display(),
        human_whole(need),
        human_whole(free)
    );
    let tmp = temp_dir(base, "tunnel-push")?;
    let bytes = args.size;
    let gib = bytes as f64 / GIB as f64;
    let src = tmp.path().join("src.bin");
    eprintln!("[push] writing {} of random data…", human_whole(bytes));
    let src_hash = {
        let src = src.clone();
        let seed = files::seed();
        hex::encode(tokio::task::spawn_blocking(move || write_random(&src, bytes, seed)).await??)
    };
    let src_arg = src.to_string_lossy().into_owned();

    let adb_key = AdbPrivateKey::generate().context("generating the adb key")?;
    let pem = adb_key.to_pem().context("encoding the adb key")?;
    let hosting = PhoneHosting::new(tmp.path().join("host"), vec![adb_key.public_key()]);
    let agent = VirtualHostAgent::hosted("bench-tunnel-push", instant_durations(), hosting);
    let (phone_id, endpoint) = create_phones(&agent, 1).await?.remove(0);
    let host = phone_host(0);
    eprintln!("[push] phone {host}:{PHONE_ADB_PORT} listens on {endpoint}");

    let ssh_key = ClientKey::generate(args, tmp.path()).await?;
    let counts = Arc::new(AuditCounts::default());
    let gateway = RunningGateway::start(BenchPolicy {
        fingerprint: ssh_key.fingerprint.clone(),
        phones: HashMap::from([(host.clone(), endpoint)]),
        // The phone is hosted by this process, as the service hosts its phones by default: the
        // gateway reaches it in-process, as the service's gateway does.
        local: Some((agent.clone(), HashMap::from([(host.clone(), phone_id)]))),
        counts: counts.clone(),
    })
    .await?;
    let ssh_home = tmp.path().join("ssh-home");
    std::fs::create_dir_all(&ssh_home)?;
    let hosts = [host];
    let ssh_default = SshClient::start(args, &ssh_key, &ssh_home, gateway.port, None, &hosts, true)
        .await
        .context("ssh with the default cipher")?;
    let default_cipher = ssh_default
        .cipher()
        .unwrap_or_else(|| "unknown (not in ssh's log)".into());
    eprintln!(
        "[push] gateway on 127.0.0.1:{}; the ssh client negotiated {default_cipher}",
        gateway.port
    );
    // The same tunnel through the stock OpenSSH server, with the cipher our client negotiated.
    let sshd = match Sshd::start(args, &ssh_key, &tmp.path().join("sshd")).await {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("[push] no stock sshd route: {e:#}");
            None
        }
    };
    let ssh_sshd = match &sshd {
        Some(d) => Some(
            SshClient::start(
                args,
                &ssh_key,
                &ssh_home,
                d.port,
                Some(&default_cipher),
                &[endpoint.to_string()],
                true,
            )
            .await
            .context("ssh through the stock sshd")?,
        ),
        None => None,
    };

    let adb = StockAdb::new(&args.adb, tmp.path().join("adb-home"), &pem, step_timeout)?;
    let direct = endpoint.to_string();
    let mut routes = vec![
        Route {
            key: "direct",
            label: "direct".into(),
            serial: direct.clone(),
            ssh_pid: None,
            sshd_pid: None,
            steps: Vec::new(),
        },
        Route {
            key: "ssh_default",
            label: format!("ssh -L, default cipher ({default_cipher})"),
            serial: format!("127.0.0.1:{}", ssh_default.locals[0]),
            ssh_pid: ssh_default.pid(),
            sshd_pid: None,
            steps: Vec::new(),
        },
    ];
    if let (Some(d), Some(c)) = (&sshd, &ssh_sshd) {
        routes.push(Route {
            key: "stock_sshd",
            label: format!("ssh -L through stock sshd ({default_cipher})"),
            serial: format!("127.0.0.1:{}", c.locals[0]),
            ssh_pid: c.pid(),
            sshd_pid: d.pid(),
            steps: Vec::new(),
        });
    }
    for r in &routes {
        adb.connect(&r.serial)
            .await
            .with_context(|| format!("adb connect {} ({})", r.serial, r.label))?;
    }
    let server_pid = adb.server_pid();
    if server_pid.is_none() {
        eprintln!("[push] adb server process not found: its CPU is not accounted");
    }
    let mut rounds_json = Vec::new();
    for round in 0..args.rounds as usize {
        let mut line = Vec::new();
        for k in 0..routes.len() {
            let i = (k + round) % routes.len();
            adb.run(&["-s", &direct, "shell", "rm", "-f", PHONE_PATH])
                .await?;
            sync_disk(step_timeout).await?;
            let step = timed_push(&adb, &routes[i], server_pid.as_deref(), &src_arg)
                .await
                .with_context(|| format!("push {}", routes[i].label))?;
            // The phone's own hash of what it stored, outside the timing.
            let said = adb
                .run(&["-s", &direct, "shell", "sha256sum", PHONE_PATH])
                .await?;
            let got = said.split_whitespace().next().unwrap_or_default();
            anyhow::ensure!(
                got == src_hash,
                "round {}: the file pushed {} hashes {got:?} on the phone, the source {src_hash}",
                round + 1,
                routes[i].label
            );
            eprintln!(
                "[push] round {} {:<52} {:6.0} MB/s  CPU s/GiB: this process {:.2}, sshd {:.2}, ssh {:.2}, adb client {:.2}, adb server {:.2} (sha256 matches)",
                round + 1,
                routes[i].label,
                mb(bytes as f64) / step.secs,
                step.this / gib,
                step.sshd / gib,
                step.ssh / gib,
                step.adb_client / gib,
                step.adb_server / gib
            );
            line.push(serde_json::json!({
                "route": routes[i].key,
                "secs": step.secs,
                "mb_per_s": mb(bytes as f64) / step.secs,
            }));
            routes[i].steps.push(step);
        }
        rounds_json.push(serde_json::Value::Array(line));
    }
    let _ = adb
        .run(&["-s", &direct, "shell", "rm", "-f", PHONE_PATH])
        .await;
    for r in &routes {
        let _ = adb.run(&["disconnect", &r.serial]).await;
    }
    drop(adb);
    // Every tunnel's byte count is audited before the gateway stops counting it.
    let closed = wait_for(SHORT_TIMEOUT, || gateway.gateway.tunnels() == 0).await;
    ssh_default.stop().await;
    if let Some(c) = ssh_sshd {
        c.stop().await;
    }
    if let Some(d) = sshd {
        d.stop().await;
    }
    gateway.stop().await?;
    drop(agent);
    anyhow::ensure!(closed, "tunnels still open after adb disconnected");
    let audit = counts.json();
    let carried = AuditCounts::get(&counts.bytes_up);
    let pushed_through = args.rounds * bytes;
    anyhow::ensure!(
        carried >= pushed_through,
        "the gateway reports {carried} bytes carried to the phone, the pushes sent {pushed_through}"
    );

    let mbps = |r: &Route| r.median(|s| mb(bytes as f64) / s.secs);
    let per_gib = |r: &Route, f: fn(&Step) -> f64| r.median(|s| f(s) / gib);
    let base_mbps = mbps(&routes[0]);
    let base_cpu = per_gib(&routes[0], Step::cpu);
    let base_this = per_gib(&routes[0], |s| s.this);
    let mut rows = Vec::new();
    let mut json_routes = serde_json::Map::new();
    for (i, r) in routes.iter().enumerate() {
        let v = mbps(r);
        let cpu = per_gib(r, Step::cpu);
        let this = per_gib(r, |s| s.this);
        let (ssh, client, server, sshd) = (
            per_gib(r, |s| s.ssh),
            per_gib(r, |s| s.adb_client),
            per_gib(r, |s| s.adb_server),
            per_gib(r, |s| s.sshd),
        );
        let stock = r.key == "stock_sshd";
        // Our gateway runs in this process beside the endpoint; the stock one apart from it.
        let gateway_cpu = if stock { sshd } else { this - base_this };
        json_routes.insert(
            r.key.into(),
            serde_json::json!({
                "label": r.label,
                "median_mb_per_s": v,
                "cpu_s_per_gib": {
                    "total": cpu, "this_process": this, "ssh_client": ssh,
                    "adb_client": client, "adb_server": server, "stock_sshd": sshd,
                    "gateway": (i > 0).then_some(gateway_cpu),
                },
            }),
        );
        if i > 0 {
            let is_default = r.key == "ssh_default";
            rows.push(Row {
                name: format!(
                    "adb push {} via {} (median of {})",
                    human_whole(bytes),
                    r.label,
                    args.rounds
                ),
                figure: format!("{v:.0} MB/s"),
                baseline: format!("direct {base_mbps:.0} MB/s"),
                ratio: ratio(v, base_mbps),
                target: if is_default {
                    "≥ 0.50 of direct".into()
                } else {
                    "– (comparison: the same tunnel through OpenSSH's server)".into()
                },
                met: is_default.then_some(v >= 0.5 * base_mbps),
            });
            if is_default {
                // Each round's two pushes ran back to back, so their ratio is spared the
                // drift of the machine between rounds.
                let mut paired: Vec<f64> = r
                    .steps
                    .iter()
                    .zip(&routes[0].steps)
                    .map(|(t, d)| d.secs / t.secs)
                    .collect();
                paired.sort_by(f64::total_cmp);
                let per_round = paired
                    .iter()
                    .map(|x| format!("{x:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let m = median_by(&paired, |x| *x);
                rows.push(Row {
                    name: format!("the same, ratio per round (median of {})", args.rounds),
                    figure: format!("{m:.2} (rounds: {per_round})"),
                    baseline: "the round's direct push".into(),
                    ratio: format!("{m:.2}"),
                    target: "≥ 0.50 of direct".into(),
                    met: Some(m >= 0.5),
                });
            }
        }
        let this_label = if i == 0 || stock {
            "this process (endpoint)"
        } else {
            "this process (endpoint + gateway)"
        };
        let sshd_part = if stock {
            format!(", sshd {sshd:.2}")
        } else {
            String::new()
        };
        rows.push(Row {
            name: format!("CPU per GiB, push {} (median)", r.label),
            figure: format!(
                "{cpu:.2} s ({this_label} {this:.2}{sshd_part}, ssh client {ssh:.2}, adb client {client:.2}, adb server {server:.2})"
            ),
            baseline: if i == 0 {
                "–".into()
            } else {
                format!("direct {base_cpu:.2} s")
            },
            ratio: if i == 0 {
                "–".into()
            } else {
                ratio(cpu, base_cpu)
            },
            target: "–".into(),
            met: None,
        });
        if i > 0 {
            rows.push(Row {
                name: if stock {
                    format!("gateway CPU per GiB via {} (sshd's processes)", r.label)
                } else {
                    format!(
                        "gateway CPU per GiB via {} (this process, less direct)",
                        r.label
                    )
                },
                figure: format!("{gateway_cpu:.2} s"),
                baseline: format!("endpoint alone {base_this:.2} s"),
                ratio: ratio(gateway_cpu, base_this),
                target: "–".into(),
                met: None,
            });
        }
    }
    if let Some(stock) = routes.get(2) {
        let (ours, theirs) = (mbps(&routes[1]), mbps(stock));
        rows.push(Row {
            name: "our gateway against stock sshd, same client and cipher".into(),
            figure: format!("{ours:.0} MB/s"),
            baseline: format!("sshd {theirs:.0} MB/s"),
            ratio: ratio(ours, theirs),
            target: "–".into(),
            met: None,
        });
    }
    let json = serde_json::json!({
        "size_bytes": bytes,
        "rounds": args.rounds,
        "key_type": format!("{:?}", args.key_type).to_lowercase(),
        "default_cipher": default_cipher,
        "routes": json_routes,
        "per_round": rounds_json,
        "tunnel_over_direct": {
            "default": mbps(&routes[1]) / base_mbps,
            "stock_sshd": routes.get(2).map(|r| mbps(r) / base_mbps),
        },
        "gateway_audit": audit,
    });
    Ok((rows, json))
}

// ---------------------------------------------------------------------------------------------
// 2. Concurrent tunnels
// ---------------------------------------------------------------------------------------------

/// A child process of this binary that prints one line once it is ready, then holds what it
/// made until its standard input closes. Killed when dropped.
struct Resident {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Resident {
    /// Starts this binary with `args` and waits (within `timeout`) for its first line, which
    /// must start with `word`; returns the rest of that line.
    async fn start(
        args: &[std::ffi::OsString],
        word: &str,
        timeout: Duration,
    ) -> anyhow::Result<(Resident, String)> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut child = tokio::process::Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting `{word}`"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the child has no stdout")?;
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stdout.take(MAX_CHILD_LINE));
        tokio::time::timeout(timeout, reader.read_line(&mut line))
            .await
            .with_context(|| format!("`{word}` did not report within {timeout:?}"))?
            .with_context(|| format!("reading what `{word}` reported"))?;
        let rest = line
            .trim_end()
            .strip_prefix(word)
            .and_then(|r| r.strip_prefix(' '))
            .with_context(|| format!("`{word}` said {:?}", line.trim_end()))?
            .to_string();
        Ok((Resident { child, stdin }, rest))
    }

    fn pid(&self) -> Option<String> {
        self.child.id().map(|p| p.to_string())
    }

    /// Closes the child's input, so that it lets go of what it holds and exits.
    async fn release(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let st = tokio::time::timeout(SHORT_TIMEOUT, self.child.wait())
            .await
            .context("the child did not exit")??;
        anyhow::ensure!(st.success(), "the child failed: {st}");
        Ok(())
    }
}

/// Waits until standard input closes (the parent released us or went away), at most `max`.
async fn until_stdin_closes(max: Duration) {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(max, async {
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Prints the ready line of a child mode.
fn report(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The `hold` mode: opens the connections, reports `ready <n>`, holds them until stdin closes.
async fn hold(
    key: &Path,
    targets: &[String],
    handshake: Duration,
    max: Duration,
) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let key = AdbPrivateKey::from_pem(&pem).context("the ADB key")?;
    let mut plan = Vec::new();
    for t in targets {
        let (addr, n) = t
            .rsplit_once('=')
            .with_context(|| format!("{t:?} is not address=count"))?;
        let addr: SocketAddr = addr.parse().with_context(|| format!("address {addr:?}"))?;
        let n: usize = n.parse().with_context(|| format!("count {n:?}"))?;
        anyhow::ensure!(n <= 10_000, "{n} connections to one address is too many");
        plan.extend(std::iter::repeat_n(addr, n));
    }
    let config = ClientConfig {
        connect_timeout: handshake,
        auth_timeout: handshake,
        io_timeout: handshake,
        ..ClientConfig::default()
    };
    let results: Vec<anyhow::Result<AdbClient>> = futures::stream::iter(plan)
        .map(|addr| {
            let (key, config) = (&key, config.clone());
            async move {
                let c = tokio::time::timeout(handshake, AdbClient::connect(addr, key, config))
                    .await
                    .with_context(|| format!("ADB handshake with {addr} timed out"))?
                    .with_context(|| format!("ADB handshake with {addr}"))?;
                let model = c.identity().model;
                anyhow::ensure!(
                    c.state() == "device" && model == PHONE_MODEL,
                    "{addr} answered as {:?} {model:?}",
                    c.state()
                );
                Ok(c)
            }
        })
        .buffer_unordered(HOLD_PARALLELISM)
        .collect()
        .await;
    let clients = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    report(&format!("ready {}", clients.len()))?;
    until_stdin_closes(max).await;
    drop(clients);
    Ok(())
}

/// The `phones` mode: hosts `count` running phones in `dir` that accept the ADB key in `key`,
/// reports `endpoints <addr> …`, and keeps them until stdin closes.
async fn host_phones(key: &Path, count: usize, dir: &Path, max: Duration) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let key = AdbPrivateKey::from_pem(&pem).context("the ADB key")?;
    let hosting = PhoneHosting::new(dir.to_path_buf(), vec![key.public_key()]);
    let agent = VirtualHostAgent::hosted("bench-tunnel-phones", instant_durations(), hosting);
    let addrs = create_phones(&agent, count).await?;
    let list: Vec<String> = addrs.iter().map(|(_, a)| a.to_string()).collect();
    report(&format!("endpoints {}", list.join(" ")))?;
    until_stdin_closes(max).await;
    drop(agent);
    Ok(())
}

/// How the `n` tunnels are spread: connections per ssh client.
fn spread(n: usize, per_client: usize) -> Vec<usize> {
    let per_client = per_client.max(1);
    let mut v = vec![per_client; n / per_client];
    if !n.is_multiple_of(per_client) {
        v.push(n % per_client);
    }
    v
}

/// Waits until `ok()` holds, checking every 50 ms, for at most `timeout`.
async fn wait_for(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn bench_tunnels(args: &Args, base: &Path) -> anyhow::Result<(Vec<Row>, serde_json::Value)> {
    let step_timeout = Duration::from_secs(args.step_timeout_secs);
    let hold_max = (step_timeout * 4).as_secs().to_string();
    let n = args.tunnels as usize;
    let per_client = spread(n, args.tunnels_per_client as usize);
    let clients = per_client.len();
    anyhow::ensure!(
        clients <= MAX_SSH_CLIENTS,
        "{n} tunnels of {} per client need {clients} ssh clients; at most {MAX_SSH_CLIENTS} fit the gateway's per-address limit",
        args.tunnels_per_client
    );
    let tmp = temp_dir(base, "tunnel-many")?;
    let adb_key = AdbPrivateKey::generate().context("generating the adb key")?;
    let key_file = tmp.path().join("bench.adb_key");
    write_private(
        &key_file,
        adb_key.to_pem().context("encoding the adb key")?.as_bytes(),
    )?;
    // The phones live in a child process, so that this process's memory is the gateway's; one
    // phone per ssh client takes its tunnels (a phone's endpoint admits 64 connections).
    let (phones, listed) = Resident::start(
        &[
            "phones".into(),
            "--key".into(),
            key_file.clone().into(),
            "--count".into(),
            clients.to_string().into(),
            "--dir".into(),
            tmp.path().join("host").into(),
            "--max-secs".into(),
            hold_max.clone().into(),
        ],
        "endpoints",
        step_timeout,
    )
    .await
    .context("hosting the phones")?;
    let endpoints = listed
        .split_whitespace()
        .map(|a| a.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("the phones reported {listed:?}"))?;
    anyhow::ensure!(
        endpoints.len() == clients,
        "{} phones reported for {clients} asked",
        endpoints.len()
    );
    let hosts: Vec<String> = (0..clients).map(phone_host).collect();

    let ssh_key = ClientKey::generate(args, tmp.path()).await?;
    let counts = Arc::new(AuditCounts::default());
    let gateway = RunningGateway::start(BenchPolicy {
        fingerprint: ssh_key.fingerprint.clone(),
        phones: hosts
            .iter()
            .cloned()
            .zip(endpoints.iter().copied())
            .collect(),
        local: None,
        counts: counts.clone(),
    })
    .await?;
    let gw = gateway.gateway.clone();
    let ssh_home = tmp.path().join("ssh-home");
    std::fs::create_dir_all(&ssh_home)?;

    let rss_idle = settled_rss_kib().await?;
    let mut sshs = Vec::with_capacity(clients);
    for h in &hosts {
        sshs.push(
            SshClient::start(
                args,
                &ssh_key,
                &ssh_home,
                gateway.port,
                None,
                std::slice::from_ref(h),
                false,
            )
            .await?,
        );
    }
    // The readiness probes opened (and closed) one tunnel each.
    anyhow::ensure!(
        wait_for(SHORT_TIMEOUT, || gw.tunnels() == 0
            && gw.sessions() == clients)
        .await,
        "after starting {clients} ssh clients the gateway has {} sessions and {} tunnels",
        gw.sessions(),
        gw.tunnels()
    );
    let rss_sessions = settled_rss_kib().await?;
    let phones_before = rss_of_kib(phones.pid().as_deref());
    eprintln!(
        "[tunnels] {clients} ssh sessions up; RSS {:.1} MB → {:.1} MB",
        mb(rss_idle as f64 * 1024.0),
        mb(rss_sessions as f64 * 1024.0)
    );

    let mut hold_args: Vec<std::ffi::OsString> = vec![
        "hold".into(),
        "--key".into(),
        key_file.clone().into(),
        "--max-secs".into(),
        hold_max.into(),
    ];
    for (s, k) in sshs.iter().zip(&per_client) {
        hold_args.push("--target".into());
        hold_args.push(format!("127.0.0.1:{}={k}", s.locals[0]).into());
    }
    let t = Instant::now();
    let (holder, said) = Resident::start(&hold_args, "ready", step_timeout)
        .await
        .context("ADB connections through the tunnels")?;
    let open_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        said == n.to_string(),
        "{said} ADB connections up, {n} asked"
    );
    anyhow::ensure!(
        wait_for(SHORT_TIMEOUT, || gw.tunnels() == n).await,
        "{n} ADB connections through the tunnels are up, the gateway counts {} tunnels",
        gw.tunnels()
    );
    let rss_tunnels = settled_rss_kib().await?;
    let phones_after = rss_of_kib(phones.pid().as_deref());
    let open_tunnels = gw.tunnels();
    let open_sessions = gw.sessions();
    let threads = status_kib("self", "Threads").unwrap_or(0);
    eprintln!(
        "[tunnels] {n} ADB handshakes through {clients} ssh clients done in {open_secs:.1}s; gateway: {open_sessions} sessions, {open_tunnels} tunnels; RSS {:.1} MB; {threads} threads",
        mb(rss_tunnels as f64 * 1024.0)
    );
    anyhow::ensure!(
        open_tunnels == n && open_sessions == clients,
        "after settling the gateway counts {open_tunnels} tunnels and {open_sessions} sessions"
    );

    holder.release().await.context("closing the tunnels")?;
    let closed = wait_for(SHORT_TIMEOUT, || gw.tunnels() == 0).await;
    for s in sshs {
        s.stop().await;
    }
    gateway.stop().await?;
    phones.release().await.context("stopping the phones")?;
    anyhow::ensure!(closed, "tunnels still open after their clients left");
    anyhow::ensure!(
        AuditCounts::get(&counts.tunnels_refused) == 0,
        "the gateway refused {} tunnels",
        AuditCounts::get(&counts.tunnels_refused)
    );

    let delta = |a: u64, b: u64| b as f64 - a as f64;
    let per_tunnel = delta(rss_sessions, rss_tunnels) / n as f64;
    let per_session = delta(rss_idle, rss_sessions) / clients as f64;
    let per_endpoint_conn = delta(phones_before, phones_after) / n as f64;
    let plural = if clients == 1 { "" } else { "s" };
    let layout = if per_client.windows(2).all(|w| w[0] == w[1]) {
        format!(
            "{clients} ssh client{plural} × {}",
            per_client.first().copied().unwrap_or(0)
        )
    } else {
        let each: Vec<String> = per_client.iter().map(ToString::to_string).collect();
        format!("{clients} ssh client{plural}: {}", each.join(" + "))
    };
    let rows = vec![
        Row {
            name: format!("{n} concurrent tunnels ({layout} connections), each an ADB handshake"),
            figure: format!("{n}/{n} up in {open_secs:.1} s; gateway tunnels() = {open_tunnels}"),
            baseline: "–".into(),
            ratio: "–".into(),
            target: "all succeed".into(),
            met: Some(open_tunnels == n),
        },
        Row {
            name: format!("gateway RSS per open tunnel ({n} tunnels)"),
            figure: format!(
                "{per_tunnel:.1} KiB/tunnel (process {:.1} MB)",
                mb(rss_tunnels as f64 * 1024.0)
            ),
            baseline: format!(
                "before the tunnels {:.1} MB ({clients} sessions)",
                mb(rss_sessions as f64 * 1024.0)
            ),
            ratio: ratio(rss_tunnels as f64, rss_sessions as f64),
            target: "–".into(),
            met: None,
        },
        Row {
            name: format!("gateway RSS per ssh session ({clients} sessions, no tunnel)"),
            figure: format!("{per_session:.1} KiB/session"),
            baseline: format!("no session {:.1} MB", mb(rss_idle as f64 * 1024.0)),
            ratio: ratio(rss_sessions as f64, rss_idle as f64),
            target: "–".into(),
            met: None,
        },
        Row {
            name: format!("for scale: phones' process RSS per ADB connection ({clients} phones)"),
            figure: format!("{per_endpoint_conn:.1} KiB/connection"),
            baseline: format!(
                "before the connections {:.1} MB",
                mb(phones_before as f64 * 1024.0)
            ),
            ratio: ratio(phones_after as f64, phones_before as f64),
            target: "–".into(),
            met: None,
        },
    ];
    let json = serde_json::json!({
        "tunnels": n,
        "ssh_clients": clients,
        "per_client": per_client,
        "payload": "ADB handshake (CNXN, AUTH signature, device CNXN) per connection",
        "open_tunnels": open_tunnels,
        "open_sessions": open_sessions,
        "open_secs": open_secs,
        "rss_kib": { "idle": rss_idle, "sessions": rss_sessions, "tunnels": rss_tunnels },
        "gateway_kib_per_tunnel": per_tunnel,
        "gateway_kib_per_session": per_session,
        "phones_rss_kib": { "before": phones_before, "after": phones_after },
        "phones_kib_per_connection": per_endpoint_conn,
        "threads": threads,
        "gateway_audit": counts.json(),
    });
    Ok((rows, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BenchPolicy {
        BenchPolicy {
            fingerprint: "SHA256:abc".into(),
            phones: HashMap::from([(phone_host(0), "127.0.0.1:20001".parse().unwrap())]),
            local: None,
            counts: Arc::new(AuditCounts::default()),
        }
    }

    fn offered(fingerprint: &str) -> OfferedKey {
        OfferedKey {
            algorithm: "ssh-ed25519".into(),
            blob: Vec::new(),
            fingerprint: fingerprint.into(),
        }
    }

    #[test]
    fn tunnels_are_spread_over_clients_of_at_most_the_asked_size() {
        assert_eq!(spread(200, 50), vec![50, 50, 50, 50]);
        assert_eq!(spread(120, 50), vec![50, 50, 20]);
        assert_eq!(spread(7, 60), vec![7]);
        assert_eq!(spread(3, 0), vec![1, 1, 1]);
    }

    #[test]
    fn phones_get_consecutive_private_addresses() {
        assert_eq!(phone_host(0), "10.0.0.2");
        assert_eq!(phone_host(1), "10.0.0.3");
        assert_eq!(phone_host(254), "10.0.1.0");
    }

    #[test]
    fn fingerprints_and_ciphers_are_read_from_openssh_output() {
        assert_eq!(
            parse_fingerprint("256 SHA256:q3n0ZtR8b4Wr1s cph-bench (ED25519)\n").as_deref(),
            Some("SHA256:q3n0ZtR8b4Wr1s")
        );
        assert_eq!(parse_fingerprint("256 MD5:aa:bb x (ED25519)"), None);
        assert_eq!(parse_fingerprint(""), None);
        let log = "debug1: kex: algorithm: curve25519-sha256\n\
                   debug1: kex: server->client cipher: aes128-gcm@openssh.com MAC: <implicit> compression: none\n\
                   debug1: kex: client->server cipher: chacha20-poly1305@openssh.com MAC: <implicit> compression: none\n";
        assert_eq!(
            negotiated_cipher(log).as_deref(),
            Some("chacha20-poly1305@openssh.com")
        );
        assert_eq!(negotiated_cipher("debug1: Authenticated\n"), None);
    }

    #[tokio::test]
    async fn policy_admits_only_root_with_the_key() {
        let p = policy();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let ok = p.authorize(peer, "root", &offered("SHA256:abc")).await;
        assert_eq!(ok.map(|pr| pr.user).as_deref(), Ok("root"));
        assert!(
            p.authorize(peer, "admin", &offered("SHA256:abc"))
                .await
                .is_err()
        );
        assert!(
            p.authorize(peer, "root", &offered("SHA256:abd"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn policy_resolves_only_known_phones_on_the_adb_port() {
        let p = policy();
        let who = Principal {
            user: "root".into(),
            key_fingerprint: "SHA256:abc".into(),
            tag: "bench".into(),
        };
        let to = p.resolve(&who, "10.0.0.2", 5555).await;
        assert!(
            matches!(to, Ok(Target::Tcp(a)) if a == "127.0.0.1:20001".parse().unwrap()),
            "{to:?}"
        );
        assert!(p.resolve(&who, "10.0.0.2", 22).await.is_err());
        assert!(p.resolve(&who, "10.0.0.3", 5555).await.is_err());
        assert!(p.resolve(&who, "localhost", 5555).await.is_err());
    }

    #[test]
    fn audit_events_are_counted() {
        let p = policy();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let principal = Principal {
            user: "root".into(),
            key_fingerprint: "SHA256:abc".into(),
            tag: "bench".into(),
        };
        p.audit(AuditEvent::Tunnel {
            peer,
            principal: principal.clone(),
            host: "10.0.0.9".into(),
            port: 5555,
            accepted: false,
            reason: Some("no such phone".into()),
        });
        p.audit(AuditEvent::TunnelClosed {
            peer,
            principal,
            host: "10.0.0.2".into(),
            port: 5555,
            bytes_up: 10,
            bytes_down: 3,
        });
        for method in ["none", "publickey"] {
            p.audit(AuditEvent::Login {
                peer,
                user: "root".into(),
                key_fingerprint: None,
                method: method.into(),
                accepted: false,
                reason: Some("refused".into()),
            });
        }
        let c = &p.counts;
        assert_eq!(AuditCounts::get(&c.logins_refused), 1);
        assert_eq!(AuditCounts::get(&c.tunnels_refused), 1);
        assert_eq!(AuditCounts::get(&c.tunnels_closed), 1);
        assert_eq!(AuditCounts::get(&c.bytes_up), 10);
        assert_eq!(AuditCounts::get(&c.bytes_down), 3);
    }
}
