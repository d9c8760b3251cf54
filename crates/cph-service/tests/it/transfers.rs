//! Transfers to phones hold one of their host's `transfers_per_host` slots: a fan-out never has
//! more transfers running than slots, the jobs waiting for a slot do not spend their
//! `job_timeout` meanwhile, and a wait has its own bound (`CPS.0042`).
//!
//! The phones are hosted (real ADB endpoints, the control plane's key) and the pushed tar is in
//! the embedded object store, as in `cph serve`.

use crate::World;
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::VirtualHostAgent;
use cph_runtime::{CommandEnvelope, CommandResult, HostAgent, Inventory};
use cph_service::commands::Command;
use cph_service::{ServiceConfig, TransferStats};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HOST: &str = "it-host";
const BUCKET: &str = "it-transfers";
const KEY: &str = "files.tar";

/// The hosted agent, except that chosen phones answer at a listener that accepts connections
/// and keeps them silent for a while before closing them: a transfer to such a phone holds its
/// slot that long and then fails to connect (`CPS.0101`).
struct Stalling {
    inner: Arc<VirtualHostAgent>,
    stalled: Mutex<HashMap<String, SocketAddr>>,
}

impl HostAgent for Stalling {
    fn agent_id(&self) -> &str {
        self.inner.agent_id()
    }

    fn execute(&self, envelope: CommandEnvelope) -> BoxFuture<'_, CommandResult> {
        self.inner.execute(envelope)
    }

    fn inventory(&self) -> BoxFuture<'_, Inventory> {
        self.inner.inventory()
    }

    fn adb_endpoint(&self, phone_id: &str) -> Option<SocketAddr> {
        let stalled = self.stalled.lock().unwrap().get(phone_id).copied();
        stalled.or_else(|| self.inner.adb_endpoint(phone_id))
    }

    fn runs_endpoints(&self) -> bool {
        self.inner.runs_endpoints()
    }
}

/// A listener whose connections stay silent for `hold`, then close.
async fn silent_endpoint(hold: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(socket);
            });
        }
    });
    addr
}

/// A ustar archive of regular files.
fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"14500000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A world with hosted phones on one server, a tar of `tar_bytes` in the embedded store, and
/// the service's transfer settings.
struct Hosted {
    w: World,
    agent: Arc<Stalling>,
    phones: Vec<String>,
}

async fn hosted(
    transfers_per_host: usize,
    job_timeout: Duration,
    transfer_wait: Duration,
    tar_bytes: usize,
) -> Hosted {
    let dir = World::temp_dir();
    let key = cph_adb::AdbPrivateKey::generate().unwrap();
    let mut hosting = PhoneHosting::new(dir.join("phones"), vec![key.public_key()]);
    hosting.ports = 47000..=48999;
    let inner = VirtualHostAgent::hosted(HOST, World::durations(), hosting);
    let agent = Arc::new(Stalling {
        inner: inner.clone(),
        stalled: Mutex::new(HashMap::new()),
    });
    let config = ServiceConfig {
        token_key: vec![7; 32],
        adb_key: Some(key),
        transfers_per_host,
        job_timeout,
        transfer_wait,
        ..ServiceConfig::default()
    };
    let w = World::with(dir.clone(), config, inner, agent.clone()).await;
    let server_id = w.buy_running(2, 1, false).await;
    let phones = w
        .phones(&server_id)
        .await
        .into_iter()
        .map(|p| p.phone_id)
        .collect();

    let store = cph_s3::ObjectStore::open(dir.join("objects")).unwrap();
    store
        .create_bucket(&w.caller.domain_id, &w.caller.user_id, BUCKET)
        .await
        .unwrap();
    let per_file = tar_bytes / 4;
    let files: Vec<(String, Vec<u8>)> = (0..4u8)
        .map(|i| {
            let data = (0..per_file)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
                .collect();
            (format!("data/local/tmp/it/f{i}.bin"), data)
        })
        .collect();
    let named: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let tar = tar_of(&named);
    store
        .put_reader(
            &w.caller.domain_id,
            BUCKET,
            KEY,
            Default::default(),
            std::io::Cursor::new(tar),
        )
        .await
        .unwrap();
    let backends = cph_objects::Backends::new(Some(store), &[]).unwrap();
    w.service.attach_object_store(backends, dir.join("spool"));
    Hosted { w, agent, phones }
}

impl Hosted {
    /// Pushes the tar to `phones`, runs the engine until every job ended, and returns each
    /// phone's `(error_code, execute_msg)` (no code: the job succeeded).
    async fn push(&self, phones: &[String]) -> HashMap<String, (Option<String>, String)> {
        let items = self
            .w
            .service
            .run_phone_command(
                &self.w.caller,
                &cph_domain::ids::hex_id(),
                Command::Push,
                Some(&format!("obs://{BUCKET}/{KEY}")),
                Some(phones.to_vec()),
                None,
            )
            .await
            .unwrap();
        assert_eq!(items.len(), phones.len());
        self.w.run_jobs_until(|_| true).await;
        let mut c = self.w.service.store().read().await.unwrap();
        let mut out = HashMap::new();
        for item in items {
            let job_id = item.job_id.expect("a job per phone");
            let job = cph_store::jobs::get(&mut c, &self.w.caller.project_id, &job_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(job.state, "done", "{job:?}");
            let succeeded = job.status == cph_domain::JobStatus::Succeeded.code();
            assert_eq!(succeeded, job.error_code.is_none(), "{job:?}");
            out.insert(
                item.target_id,
                (
                    job.error_code,
                    job.execute_msg.or(job.error_msg).unwrap_or_default(),
                ),
            );
        }
        out
    }

    fn stats(&self) -> TransferStats {
        self.w
            .service
            .transfer_stats()
            .get(HOST)
            .copied()
            .unwrap_or_default()
    }

    async fn stall(&self, phone_id: &str, hold: Duration) {
        let addr = silent_endpoint(hold).await;
        self.agent
            .stalled
            .lock()
            .unwrap()
            .insert(phone_id.to_string(), addr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fan_out_runs_at_most_the_hosts_slots_at_once() {
    let h = hosted(2, Duration::from_secs(60), Duration::from_secs(60), 8 << 20).await;
    let targets = &h.phones[..6];
    let out = h.push(targets).await;
    for (phone, (code, msg)) in &out {
        assert_eq!(code, &None, "{phone}: {msg}");
        assert!(msg.starts_with("unpacked 4 files"), "{phone}: {msg}");
    }
    let s = h.stats();
    assert_eq!(s.slots, 2);
    assert_eq!(
        s.peak_in_flight, 2,
        "never more than 2 transfers at once, and 2 while 6 jobs ran: {s:?}"
    );
    assert!(s.waited >= 4, "4 of the 6 jobs waited for a slot: {s:?}");
    assert_eq!((s.in_flight, s.waiting), (0, 0), "{s:?}");
    h.w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_slot_does_not_count_against_the_job_timeout() {
    // One slot, a 2 s job timeout, two phones whose transfers hold the slot for 1.5 s each
    // and then fail to connect, and a real phone. Whatever the order, the job served last
    // waits at least 1.5 s and spends at least 3 s in all: without its wait it is within
    // 2 s, with it every order times one job out (CPS.0054).
    let h = hosted(1, Duration::from_secs(2), Duration::from_secs(60), 1 << 20).await;
    let (slow_a, slow_b, real) = (&h.phones[0], &h.phones[1], &h.phones[2]);
    h.stall(slow_a, Duration::from_millis(1500)).await;
    h.stall(slow_b, Duration::from_millis(1500)).await;
    let started = std::time::Instant::now();
    let out = h
        .push(&[slow_a.clone(), slow_b.clone(), real.clone()])
        .await;
    for slow in [slow_a, slow_b] {
        let (code, msg) = &out[slow];
        assert_eq!(code.as_deref(), Some("CPS.0101"), "{slow}: {msg}");
    }
    let (code, msg) = &out[real];
    assert_eq!(code, &None, "{msg}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    let s = h.stats();
    assert_eq!((s.peak_in_flight, s.waited), (1, 2), "{s:?}");
    h.w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_longer_than_transfer_wait_fails_as_system_busy() {
    let h = hosted(
        1,
        Duration::from_secs(60),
        Duration::from_millis(500),
        1 << 20,
    )
    .await;
    let targets = h.phones[..3].to_vec();
    for p in &targets {
        h.stall(p, Duration::from_millis(1500)).await;
    }
    let out = h.push(&targets).await;
    let mut codes: Vec<&str> = out
        .values()
        .map(|(c, _)| c.as_deref().unwrap_or("success"))
        .collect();
    codes.sort();
    // The first transfer holds the one slot for 1.5 s; the others give up after 0.5 s.
    assert_eq!(codes, ["CPS.0042", "CPS.0042", "CPS.0101"], "{out:?}");
    let busy = out
        .values()
        .find(|(c, _)| c.as_deref() == Some("CPS.0042"))
        .unwrap();
    assert!(busy.1.starts_with("System busy"), "{}", busy.1);
    let s = h.stats();
    assert_eq!((s.in_flight, s.waiting, s.waited), (0, 0, 2), "{s:?}");
    h.w.finish().await;
}
