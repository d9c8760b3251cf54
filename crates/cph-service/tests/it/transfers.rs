//! Transfers to phones hold one of their host's `transfers_per_host` slots: a fan-out never has
//! more transfers running than slots, the jobs waiting for a slot do not spend their
//! `job_timeout` meanwhile, and a wait has its own bound (`CPS.0042`). Shared storage takes the
//! same slots: a push into a server's share volume, and each phone's install of a pre-installed
//! shared app. A tar shared by a fan-out is validated once for all its jobs.
//!
//! The phones are hosted (real ADB endpoints, the control plane's key) and the pushed tar is in
//! the embedded object store, as in `cph serve`.

use crate::World;
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::VirtualHostAgent;
use cph_runtime::{CommandEnvelope, CommandResult, HostAgent, Inventory};
use cph_service::commands::Command;
use cph_service::servers::VolumeInput;
use cph_service::share::PushShareApps;
use cph_service::{BatchItem, ServiceConfig, TransferStats};
use cph_store::JobRow;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HOST: &str = "it-host";
const BUCKET: &str = "it-transfers";
const KEY: &str = "files.tar";

/// The hosted agent, except that chosen phones (and share volumes) answer at a listener that
/// accepts connections and keeps them silent for a while before closing them: a transfer to
/// such a phone holds its slot that long and then fails to connect (`CPS.0101`).
struct Stalling {
    inner: Arc<VirtualHostAgent>,
    stalled: Mutex<HashMap<String, SocketAddr>>,
    stalled_shares: Mutex<HashMap<String, SocketAddr>>,
    /// Connections the silent listeners hold now and at most.
    open: Arc<Gauge>,
}

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
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

    fn share_endpoint<'a>(
        &'a self,
        server_id: &'a str,
    ) -> BoxFuture<'a, Result<SocketAddr, String>> {
        let stalled = self.stalled_shares.lock().unwrap().get(server_id).copied();
        match stalled {
            Some(addr) => Box::pin(async move { Ok(addr) }),
            None => self.inner.share_endpoint(server_id),
        }
    }
}

/// A listener whose connections stay silent for `hold`, then close; `open` counts them.
async fn silent_endpoint(hold: Duration, open: Arc<Gauge>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let now = open.now.fetch_add(1, Ordering::SeqCst) + 1;
            open.peak.fetch_max(now, Ordering::SeqCst);
            let open = open.clone();
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(socket);
                open.now.fetch_sub(1, Ordering::SeqCst);
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
    store: cph_s3::ObjectStore,
    servers: Vec<String>,
    /// The phones of the first server.
    phones: Vec<String>,
}

async fn hosted(
    transfers_per_host: usize,
    job_timeout: Duration,
    transfer_wait: Duration,
    tar_bytes: usize,
) -> Hosted {
    hosted_servers(
        transfers_per_host,
        job_timeout,
        transfer_wait,
        tar_bytes,
        1,
        false,
    )
    .await
}

/// As [`hosted`], with `servers` servers, bought with shared storage if `share`.
async fn hosted_servers(
    transfers_per_host: usize,
    job_timeout: Duration,
    transfer_wait: Duration,
    tar_bytes: usize,
    count: i64,
    share: bool,
) -> Hosted {
    let dir = World::temp_dir();
    let key = cph_adb::AdbPrivateKey::generate().unwrap();
    let mut hosting = PhoneHosting::new(dir.join("phones"), vec![key.public_key()]);
    hosting.ports = 47000..=48999;
    let inner = VirtualHostAgent::hosted(HOST, World::durations(), hosting);
    let agent = Arc::new(Stalling {
        inner: inner.clone(),
        stalled: Mutex::new(HashMap::new()),
        stalled_shares: Mutex::new(HashMap::new()),
        open: Arc::default(),
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
    let mut purchase = w.purchase(2, 1, false);
    purchase.count = Some(count);
    if share {
        purchase.server_share_data_volume = Some(VolumeInput {
            volume_type: Some("SSD".into()),
            size: Some(200),
        });
    }
    let bought = w
        .service
        .buy_servers(&w.caller, &cph_domain::ids::hex_id(), &purchase)
        .await
        .unwrap();
    w.run_jobs_until(|s| s.status == 5).await;
    let servers = bought.server_ids;
    assert_eq!(servers.len() as i64, count);
    let phones = w
        .phones(&servers[0])
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
    let backends = cph_objects::Backends::new(Some(store.clone()), &[]).unwrap();
    w.service.attach_object_store(backends, dir.join("spool"));
    Hosted {
        w,
        agent,
        store,
        servers,
        phones,
    }
}

impl Hosted {
    /// Pushes the tar to `phones`, runs the engine until every job ended, and returns each
    /// phone's `(error_code, execute_msg)` (no code: the job succeeded).
    async fn push(&self, phones: &[String]) -> HashMap<String, (Option<String>, String)> {
        self.push_object(KEY, phones)
            .await
            .into_iter()
            .map(|(phone, job)| {
                (
                    phone,
                    (
                        job.error_code,
                        job.execute_msg.or(job.error_msg).unwrap_or_default(),
                    ),
                )
            })
            .collect()
    }

    /// Pushes the tar at `key` to `phones`; each phone's ended job.
    async fn push_object(&self, key: &str, phones: &[String]) -> HashMap<String, JobRow> {
        let items = self
            .w
            .service
            .run_phone_command(
                &self.w.caller,
                &cph_domain::ids::hex_id(),
                Command::Push,
                Some(&format!("obs://{BUCKET}/{key}")),
                Some(phones.to_vec()),
                None,
            )
            .await
            .unwrap();
        assert_eq!(items.len(), phones.len());
        self.ended(items).await
    }

    /// Runs the engine until every job ended; the job of each item, by target.
    async fn ended(&self, items: Vec<BatchItem>) -> HashMap<String, JobRow> {
        self.w.run_jobs_until(|_| true).await;
        let mut c = self.w.service.store().read().await.unwrap();
        let mut out = HashMap::new();
        for item in items {
            let job_id = item.job_id.expect("a job per target");
            let job = cph_store::jobs::get(&mut c, &self.w.caller.project_id, &job_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(job.state, "done", "{job:?}");
            let succeeded = job.status == cph_domain::JobStatus::Succeeded.code();
            assert_eq!(succeeded, job.error_code.is_none(), "{job:?}");
            out.insert(item.target_id, job);
        }
        out
    }

    /// Stores `tar` at `key` of the bucket.
    async fn put(&self, key: &str, tar: Vec<u8>) {
        self.store
            .put_reader(
                &self.w.caller.domain_id,
                BUCKET,
                key,
                Default::default(),
                std::io::Cursor::new(tar),
            )
            .await
            .unwrap();
    }

    /// PushShareFiles of the tar at `key` to `servers`; each server's ended job.
    async fn share_files(&self, key: &str, servers: &[String]) -> HashMap<String, JobRow> {
        let items = self
            .w
            .service
            .push_share_files(
                &self.w.caller,
                &cph_domain::ids::hex_id(),
                Some(BUCKET),
                Some(key),
                Some(servers.to_vec()),
            )
            .await
            .unwrap();
        assert_eq!(items.len(), servers.len());
        self.ended(items).await
    }

    /// PushShareApps of the app tar at `key` to the first server, pre-installing it; its job.
    async fn share_app(&self, package: &str, key: &str) -> JobRow {
        let items = self
            .w
            .service
            .push_share_apps(
                &self.w.caller,
                &cph_domain::ids::hex_id(),
                PushShareApps {
                    package_name: Some(package.into()),
                    pre_install_app: Some(1),
                    bucket_name: Some(BUCKET.into()),
                    object_path: Some(key.into()),
                    server_ids: Some(vec![self.servers[0].clone()]),
                },
            )
            .await
            .unwrap();
        assert_eq!(items.len(), 1);
        self.ended(items).await.into_values().next().unwrap()
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
        let addr = silent_endpoint(hold, self.agent.open.clone()).await;
        self.agent
            .stalled
            .lock()
            .unwrap()
            .insert(phone_id.to_string(), addr);
    }

    /// Makes the share volume of `server_id` a silent listener.
    async fn stall_share(&self, server_id: &str, hold: Duration) {
        let addr = silent_endpoint(hold, self.agent.open.clone()).await;
        self.agent
            .stalled_shares
            .lock()
            .unwrap()
            .insert(server_id.to_string(), addr);
    }

    /// Most connections the silent listeners held at once.
    fn peak_stalled(&self) -> usize {
        self.agent.open.peak.load(Ordering::SeqCst)
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
    assert_eq!(
        s.validations, 1,
        "one spool, validated once for 6 jobs: {s:?}"
    );
    h.w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_tar_fails_every_job_of_a_fan_out_after_one_validation() {
    let h = hosted(2, Duration::from_secs(60), Duration::from_secs(60), 1 << 20).await;
    // The bad entry comes last, after 8 MiB the validation reads first.
    let big = vec![5u8; 8 << 20];
    h.put(
        "bad.tar",
        tar_of(&[
            ("data/local/tmp/big.bin", big),
            ("data/../escape", b"x".to_vec()),
        ]),
    )
    .await;
    let targets = &h.phones[..6];
    let out = h.push_object("bad.tar", targets).await;
    assert_eq!(out.len(), 6);
    for (phone, job) in &out {
        assert_eq!(
            job.error_code.as_deref(),
            Some("CPS.0260"),
            "{phone}: {job:?}"
        );
        let msg = job.error_msg.as_deref().unwrap_or_default();
        assert!(msg.contains("the archive was refused"), "{phone}: {msg}");
        let detail = job.execute_msg.as_deref().unwrap_or_default();
        assert!(detail.contains("\"data/../escape\""), "{phone}: {detail}");
    }
    let s = h.stats();
    assert_eq!(s.validations, 1, "{s:?}");
    h.w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn share_pushes_run_at_most_the_hosts_slots_at_once() {
    // Three servers whose share volumes keep each connection silent for 0.6 s: with one slot
    // they are written one after the other.
    let h = hosted_servers(
        1,
        Duration::from_secs(60),
        Duration::from_secs(60),
        1 << 20,
        3,
        true,
    )
    .await;
    for s in &h.servers {
        h.stall_share(s, Duration::from_millis(600)).await;
    }
    let started = std::time::Instant::now();
    let out = h.share_files(KEY, &h.servers).await;
    assert_eq!(out.len(), 3);
    for (server, job) in &out {
        // The volume never answers: the push fails to connect, after holding its slot.
        assert_eq!(
            job.error_code.as_deref(),
            Some("CPS.0101"),
            "{server}: {job:?}"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(1800));
    assert_eq!(h.peak_stalled(), 1, "one share volume written at a time");
    let s = h.stats();
    assert_eq!((s.peak_in_flight, s.waited), (1, 2), "{s:?}");
    assert_eq!(s.validations, 1, "one tar for three servers: {s:?}");
    h.w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_push_reaches_the_volume_in_a_slot() {
    let h = hosted_servers(
        1,
        Duration::from_secs(60),
        Duration::from_secs(60),
        1 << 20,
        1,
        true,
    )
    .await;
    let out = h.share_files(KEY, &h.servers).await;
    let job = &out[&h.servers[0]];
    assert_eq!(job.error_code, None, "{job:?}");
    let msg = job.execute_msg.as_deref().unwrap_or_default();
    assert!(msg.starts_with("unpacked 4 files"), "{msg}");
    let s = h.stats();
    assert_eq!(
        (s.peak_in_flight, s.in_flight, s.validations),
        (1, 0, 1),
        "{s:?}"
    );
    h.w.finish().await;
}

/// The tar of a shared app: one (not installable) APK.
fn app_tar() -> Vec<u8> {
    tar_of(&[("base.apk", b"not really an apk".to_vec())])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_install_runs_at_most_the_hosts_slots_at_once() {
    // Every phone of the server keeps its connection silent for 0.3 s; the pre-install would
    // reach 8 of them at once, the two slots let it reach two.
    let h = hosted_servers(
        2,
        Duration::from_secs(60),
        Duration::from_secs(60),
        1 << 20,
        1,
        true,
    )
    .await;
    h.put("app.tar", app_tar()).await;
    for p in &h.phones {
        h.stall(p, Duration::from_millis(300)).await;
    }
    let started = std::time::Instant::now();
    let job = h.share_app("com.example.shared", "app.tar").await;
    // Stored, but no phone answered.
    assert_eq!(job.error_code.as_deref(), Some("CPS.0260"), "{job:?}");
    let msg = job.error_msg.as_deref().unwrap_or_default();
    assert!(
        msg.contains(&format!(
            "not pre-installed on {n} of {n} phones",
            n = h.phones.len()
        )),
        "{msg}"
    );
    // 20 phones, two at a time, 0.3 s each.
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(h.peak_stalled(), 2, "never more than 2 phones at once");
    let s = h.stats();
    assert_eq!(s.peak_in_flight, 2, "{s:?}");
    assert!(s.waited > 0, "installs waited for slots: {s:?}");
    assert_eq!((s.in_flight, s.waiting), (0, 0), "{s:?}");
    h.w.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pre_install_waiting_longer_than_transfer_wait_fails_as_system_busy() {
    let h = hosted_servers(
        1,
        Duration::from_secs(60),
        Duration::from_millis(500),
        1 << 20,
        1,
        true,
    )
    .await;
    h.put("app.tar", app_tar()).await;
    for p in &h.phones {
        h.stall(p, Duration::from_millis(1500)).await;
    }
    let job = h.share_app("com.example.busy", "app.tar").await;
    // The first phone holds the one slot for 1.5 s; the next one gives up after 0.5 s and
    // no further install starts.
    assert_eq!(job.error_code.as_deref(), Some("CPS.0042"), "{job:?}");
    let msg = job.error_msg.as_deref().unwrap_or_default();
    assert!(msg.starts_with("System busy"), "{msg}");
    let detail = job.execute_msg.as_deref().unwrap_or_default();
    assert!(
        detail.contains(&format!("pre-installed on 0 of {} phones", h.phones.len())),
        "{detail}"
    );
    assert!(detail.contains("not attempted"), "{detail}");
    assert_eq!(h.peak_stalled(), 1);
    let s = h.stats();
    assert_eq!((s.in_flight, s.waiting, s.waited), (0, 0, 1), "{s:?}");
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
