//! `phones`: benchmarks of hosted virtual phones, each against a baseline measured in the same
//! run on the same machine.
//!
//! 1. **File transfer**: `adb push` and `adb pull` of a random file (1 GiB by default) with the
//!    stock `adb` client into one phone hosted in this process, against `cp` of the same file on
//!    the same disk. Every measurement starts after an untimed `sync` (so no earlier dirty data is
//!    written back while it runs) and ends when the tool exits, with its data in the page cache:
//!    the phone does not `fsync` a pushed file, so `cp` is not followed by `sync` either. The
//!    pulled file must hash like the source before anything is reported. The CPU each step costs
//!    is reported too, split between this process (the phone's endpoint), the tool (`cp` or the
//!    adb client) and the adb server, per GiB moved. Each round also pushes to and pulls from a
//!    device that keeps no files ([`cph_bench::sink`]): the ceiling of the stock client and
//!    server on this machine, which no device implementation can exceed.
//! 2. **RunSyncCommand**: `getprop ro.product.model` on 100 phones per call through the real HTTP
//!    API (`server_ids`: `phone_ids` allows at most 15 phones per call), calls made one after the
//!    other; p50/p99 latency against the same call running `true` on the same phones, interleaved
//!    with it, which is the cost of the API, the job engine and one ADB shell round trip per phone
//!    with no work on the phone. Every job must succeed with the phone's model as its output.
//! 3. **Idle phones**: 1,000 running phones in one hosted agent: resident memory per phone and
//!    idle CPU, against the same process holding the empty agent.
//!
//! Run: `cargo run --release -p cph-bench --bin phones -- --help`.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use cph_adb::AdbPrivateKey;
use cph_adb::client::{AdbClient, ClientConfig};
use cph_bench::files::{
    self, remove_file_if_present, sha256_of, sync_disk, temp_dir, write_random,
};
use cph_bench::hosted::{PHONE_MODEL, create_phone, instant_durations, phone_spec};
use cph_bench::proc::{cpu_percent_over, cpu_times, own_cpu, status_kib};
use cph_bench::report::{Row, mb, median_by, percentile, print_table, ratio};
use cph_bench::sink::{SinkDevice, received_total};
use cph_bench::tools::{StockAdb, run_tool};
use cph_bench::{client, seed};
use cph_domain::{Clock, SystemClock};
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::VirtualHostAgent;
use cph_runtime::{HostAgent, PhoneSpec};
use cph_service::{Service, ServiceConfig};
use futures::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the pushed file goes on the phone.
const PHONE_PATH: &str = "/data/local/tmp/big.bin";
/// Longest any single `adb` invocation may take.
const ADB_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest one RunSyncCommand call may take before the run is abandoned (the API bounds its
/// own wait at 30 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Phones created at once in the idle benchmark.
const CREATE_PARALLELISM: usize = 64;
/// Longer than tokio's keep-alive of idle blocking threads (10 s).
const BLOCKING_THREAD_RETIREMENT: Duration = Duration::from_secs(11);
/// Idle phones asked over ADB, after the measurement, whether they are what they were made.
const IDLE_PROBES: usize = 10;

/// Which benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    Transfer,
    Sync,
    Idle,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmarks of hosted virtual phones against same-run baselines")]
struct Args {
    /// Run only this benchmark (default: all three).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Size of the transferred file, MiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    transfer_mib: u64,
    /// Rounds of cp/push/pull; the median of each is reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    transfer_runs: u64,
    /// The stock adb client.
    #[arg(long, default_value = "/usr/bin/adb")]
    adb: PathBuf,
    /// RunSyncCommand calls of each kind (getprop and the `true` baseline, interleaved).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    sync_calls: u64,
    /// Phones one RunSyncCommand call covers.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=6_000))]
    sync_phones: u64,
    /// Running phones of the idle benchmark.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=15_000))]
    idle_phones: u64,
    /// Length of each idle CPU interval, seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    idle_seconds: u64,
    /// Directory the temporary files go in (the disk under test); default: the system's.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let wants = |b: Only| args.only.is_none_or(|o| o == b);
    // The idle benchmark runs first: its memory figure is a difference of resident sizes, which
    // heap freed by an earlier benchmark (and reused by the phones) would make look smaller.
    let mut idle = Vec::new();
    let mut sync = Vec::new();
    let mut transfer = Vec::new();
    if wants(Only::Idle) {
        idle = bench_idle(&args, &base).await.context("idle benchmark")?;
    }
    if wants(Only::Sync) {
        sync = bench_sync(&args, &base)
            .await
            .context("RunSyncCommand benchmark")?;
    }
    if wants(Only::Transfer) {
        transfer = bench_transfer(&args, &base)
            .await
            .context("file transfer benchmark")?;
    }
    let rows: Vec<Row> = transfer.into_iter().chain(sync).chain(idle).collect();
    print_table(&rows);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. File transfer
// ---------------------------------------------------------------------------------------------

/// Wall time and CPU of one timed step.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    secs: f64,
    /// CPU of this process (the phone's endpoint).
    endpoint: f64,
    /// CPU of the tool run for the step (`cp` or the adb client), once reaped.
    tool: f64,
    /// CPU of the adb server (0 for `cp`).
    server: f64,
}

impl Step {
    fn cpu(&self) -> f64 {
        self.endpoint + self.tool + self.server
    }
}

/// Times `run` and charges the CPU spent meanwhile to this process, its reaped children and
/// the adb server.
async fn measure<F>(server_pid: Option<&str>, run: F) -> anyhow::Result<Step>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let (me0, sv0) = (cpu_times("self")?, own_cpu(server_pid));
    let t = Instant::now();
    run.await?;
    let secs = t.elapsed().as_secs_f64();
    let (me1, sv1) = (cpu_times("self")?, own_cpu(server_pid));
    Ok(Step {
        secs,
        endpoint: me1.own - me0.own,
        tool: me1.children - me0.children,
        server: sv1 - sv0,
    })
}

async fn bench_transfer(args: &Args, base: &Path) -> anyhow::Result<Vec<Row>> {
    let tmp = temp_dir(base, "transfer")?;
    let bytes = args.transfer_mib << 20;
    let gib = bytes as f64 / f64::from(1u32 << 30);
    let src = tmp.path().join("src.bin");
    eprintln!(
        "[transfer] writing {} MiB of random data…",
        args.transfer_mib
    );
    let src_hash = {
        let src = src.clone();
        let seed = files::seed();
        tokio::task::spawn_blocking(move || write_random(&src, bytes, seed)).await??
    };

    let key = AdbPrivateKey::generate().context("generating the control key")?;
    let pem = key.to_pem().context("encoding the control key")?;
    let hosting = PhoneHosting::new(tmp.path().join("host"), vec![key.public_key()]);
    let agent = VirtualHostAgent::hosted("bench-transfer", instant_durations(), hosting);
    let catalog = cph_catalog::Catalog::builtin();
    let phone_id = cph_domain::ids::hex_id();
    let addr = create_phone(&agent, phone_spec(&catalog, &phone_id, 0)).await?;
    let serial = addr.to_string();
    eprintln!("[transfer] phone {phone_id} listens on {serial}");

    // The sink device: the same protocol code with no file system behind it (the ceiling of
    // the stock client and server; see `cph_bench::sink`).
    let sink_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the sink device")?;
    let sink_serial = sink_listener.local_addr()?.to_string();
    let sink_stop = tokio_util::sync::CancellationToken::new();
    let sink_task = tokio::spawn(cph_adb::device::serve(
        sink_listener,
        Arc::new(SinkDevice::new(vec![key.public_key()], bytes)),
        cph_adb::device::EndpointConfig::default(),
        sink_stop.clone(),
    ));

    let adb = StockAdb::new(&args.adb, tmp.path().join("adb-home"), &pem, ADB_TIMEOUT)?;
    adb.connect(&serial).await?;
    adb.connect(&sink_serial).await?;
    let server_pid = adb.server_pid();
    if server_pid.is_none() {
        eprintln!("[transfer] adb server process not found: its CPU is not accounted");
    }
    let sv = server_pid.as_deref();
    let cp_dst = tmp.path().join("cp.bin");
    let pulled = tmp.path().join("pulled.bin");
    let src_arg = src.to_string_lossy().into_owned();
    let dst_arg = pulled.to_string_lossy().into_owned();
    let (mut cps, mut pushes, mut pulls) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sink_pushes, mut sink_pulls) = (Vec::new(), Vec::new());
    for run in 1..=args.transfer_runs {
        remove_file_if_present(&cp_dst)?;
        sync_disk(ADB_TIMEOUT).await?;
        let mut cmd = tokio::process::Command::new("cp");
        cmd.arg(&src).arg(&cp_dst);
        let cp = measure(None, async {
            run_tool(&mut cmd, "cp", ADB_TIMEOUT).await.map(drop)
        })
        .await?;
        remove_file_if_present(&cp_dst)?;

        adb.run(&["-s", &serial, "shell", "rm", "-f", PHONE_PATH])
            .await?;
        sync_disk(ADB_TIMEOUT).await?;
        let push = measure(sv, async {
            adb.run(&["-s", &serial, "push", &src_arg, PHONE_PATH])
                .await
                .map(drop)
        })
        .await?;

        remove_file_if_present(&pulled)?;
        sync_disk(ADB_TIMEOUT).await?;
        let pull = measure(sv, async {
            adb.run(&["-s", &serial, "pull", PHONE_PATH, &dst_arg])
                .await
                .map(drop)
        })
        .await?;

        let got = {
            let p = pulled.clone();
            tokio::task::spawn_blocking(move || sha256_of(&p)).await??
        };
        anyhow::ensure!(
            got == src_hash,
            "run {run}: the pulled file differs from the source (sha256 {} vs {})",
            hex::encode(got),
            hex::encode(src_hash)
        );
        remove_file_if_present(&pulled)?;

        let before = received_total();
        sync_disk(ADB_TIMEOUT).await?;
        let sink_push = measure(sv, async {
            adb.run(&["-s", &sink_serial, "push", &src_arg, PHONE_PATH])
                .await
                .map(drop)
        })
        .await?;
        anyhow::ensure!(
            received_total() - before == bytes,
            "run {run}: the sink device received {} bytes of {bytes}",
            received_total() - before
        );
        sync_disk(ADB_TIMEOUT).await?;
        let sink_pull = measure(sv, async {
            adb.run(&["-s", &sink_serial, "pull", PHONE_PATH, &dst_arg])
                .await
                .map(drop)
        })
        .await?;
        let pulled_len = std::fs::metadata(&pulled)
            .with_context(|| format!("reading {}", pulled.display()))?
            .len();
        anyhow::ensure!(
            pulled_len == bytes,
            "run {run}: {pulled_len} bytes pulled from the sink device, {bytes} expected"
        );
        remove_file_if_present(&pulled)?;

        let rate = |s: &Step| mb(bytes as f64) / s.secs;
        let cpu = |s: &Step| {
            format!(
                "CPU s/GiB: endpoint {:.2}, tool {:.2}, adb server {:.2}",
                s.endpoint / gib,
                s.tool / gib,
                s.server / gib
            )
        };
        eprintln!(
            "[transfer] run {run} (pulled file sha256 matches):\n  cp   {:5.0} MB/s  {}\n  push {:5.0} MB/s  {}\n  pull {:5.0} MB/s  {}\n  push to the sink device   {:5.0} MB/s  {}\n  pull from the sink device {:5.0} MB/s  {}",
            rate(&cp),
            cpu(&cp),
            rate(&push),
            cpu(&push),
            rate(&pull),
            cpu(&pull),
            rate(&sink_push),
            cpu(&sink_push),
            rate(&sink_pull),
            cpu(&sink_pull),
        );
        cps.push(cp);
        pushes.push(push);
        pulls.push(pull);
        sink_pushes.push(sink_push);
        sink_pulls.push(sink_pull);
    }
    let _ = adb.run(&["disconnect", &serial]).await;
    let _ = adb.run(&["disconnect", &sink_serial]).await;
    drop(adb);
    drop(agent);
    sink_stop.cancel();
    let _ = sink_task.await;

    let mbps = |v: &[Step]| median_by(v, |s| mb(bytes as f64) / s.secs);
    let cpu_per_gib = |v: &[Step], f: fn(&Step) -> f64| median_by(v, |s| f(s) / gib);
    let cp = mbps(&cps);
    let cp_cpu = cpu_per_gib(&cps, Step::cpu);
    let mut rows = Vec::new();
    for (name, steps) in [("push", &pushes), ("pull", &pulls)] {
        let v = mbps(steps);
        rows.push(Row {
            name: format!(
                "adb {name} {} MiB (median of {})",
                args.transfer_mib, args.transfer_runs
            ),
            figure: format!("{v:.0} MB/s"),
            baseline: format!("cp {cp:.0} MB/s"),
            ratio: ratio(v, cp),
            target: "≥ 0.60 of cp".into(),
            met: Some(v >= 0.6 * cp),
        });
        let total = cpu_per_gib(steps, Step::cpu);
        rows.push(Row {
            name: format!("CPU per GiB of adb {name} (median)"),
            figure: format!(
                "{total:.2} s (endpoint {:.2}, adb client {:.2}, adb server {:.2})",
                cpu_per_gib(steps, |s| s.endpoint),
                cpu_per_gib(steps, |s| s.tool),
                cpu_per_gib(steps, |s| s.server)
            ),
            baseline: format!("cp {cp_cpu:.2} s"),
            ratio: ratio(total, cp_cpu),
            target: "–".into(),
            met: None,
        });
    }
    for (name, steps) in [("push to", &sink_pushes), ("pull from", &sink_pulls)] {
        let v = mbps(steps);
        rows.push(Row {
            name: format!(
                "ceiling: adb {name} a device that keeps no files (median of {})",
                args.transfer_runs
            ),
            figure: format!(
                "{v:.0} MB/s ({:.2} CPU s/GiB: endpoint {:.2}, adb client {:.2}, adb server {:.2})",
                cpu_per_gib(steps, Step::cpu),
                cpu_per_gib(steps, |s| s.endpoint),
                cpu_per_gib(steps, |s| s.tool),
                cpu_per_gib(steps, |s| s.server)
            ),
            baseline: format!("cp {cp:.0} MB/s"),
            ratio: ratio(v, cp),
            target: "–".into(),
            met: None,
        });
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// 2. RunSyncCommand
// ---------------------------------------------------------------------------------------------

/// Latencies (seconds) of the calls of one kind.
#[derive(Default)]
struct Latencies(Vec<f64>);

impl Latencies {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// One RunSyncCommand call; checks that every expected phone answered with status 2 and
/// `want(phone_id)` as its output. Returns the call's latency in seconds.
async fn sync_call(
    addr: SocketAddr,
    path: &str,
    token: &str,
    body: &[u8],
    expected: &HashMap<String, String>,
    want_output: bool,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let (status, resp) = tokio::time::timeout(
        CALL_TIMEOUT,
        client::one(addr, "POST", path, token, Some(body)),
    )
    .await
    .context("RunSyncCommand timed out")??;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        status == 200,
        "RunSyncCommand answered {status}: {}",
        String::from_utf8_lossy(&resp)
    );
    let v: serde_json::Value = serde_json::from_slice(&resp).context("RunSyncCommand body")?;
    let jobs = v["jobs"].as_array().context("no jobs in the answer")?;
    anyhow::ensure!(
        jobs.len() == expected.len(),
        "{} jobs for {} phones",
        jobs.len(),
        expected.len()
    );
    let mut seen = std::collections::HashSet::new();
    for j in jobs {
        let phone = j["phone_id"].as_str().unwrap_or_default();
        let Some(model) = expected.get(phone) else {
            anyhow::bail!("a job for an unexpected phone: {j}");
        };
        anyhow::ensure!(seen.insert(phone.to_string()), "two jobs for phone {phone}");
        anyhow::ensure!(j["status"] == 2, "job not succeeded: {j}");
        let out = j["execute_msg"].as_str().unwrap_or_default().trim_end();
        let want = if want_output { model.as_str() } else { "" };
        anyhow::ensure!(
            out == want,
            "phone {phone} answered {out:?}, expected {want:?}"
        );
    }
    Ok(secs)
}

async fn bench_sync(args: &Args, base: &Path) -> anyhow::Result<Vec<Row>> {
    let tmp = temp_dir(base, "sync")?;
    let n = args.sync_phones as usize;
    let store = cph_store::Store::open(&format!(
        "sqlite://{}",
        tmp.path().join("bench.db").display()
    ))
    .await?;
    let key = AdbPrivateKey::generate().context("generating the control key")?;
    let hosting = PhoneHosting::new(tmp.path().join("host"), vec![key.public_key()]);
    let agent = VirtualHostAgent::hosted("bench-sync", instant_durations(), hosting);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let service = Service::new(
        store.clone(),
        cph_catalog::Catalog::builtin(),
        clock.clone(),
        ServiceConfig {
            token_key: b"bench-token-key-bench-token-key!".to_vec(),
            adb_key: Some(key),
            sync_commands_per_minute: 0,
            ..ServiceConfig::default()
        },
        agent.clone(),
    );
    let boot = service
        .bootstrap(&cph_service::iam::BootstrapRequest {
            domain_name: "bench".into(),
            user_name: "admin".into(),
            access_key: None,
            secret_key: None,
        })
        .await?;
    // Phones are seeded as running rows; recovery adopts them, which brings their endpoints up.
    let server_ids = seed::phones(&service, &boot.project_id, n).await?;
    let t = Instant::now();
    service.recover().await?;
    let mut expected = HashMap::new();
    {
        let mut c = store.read().await?;
        for sid in &server_ids {
            for p in cph_store::phones::of_server(&mut c, sid).await? {
                anyhow::ensure!(
                    agent.adb_endpoint(&p.phone_id).is_some(),
                    "phone {} has no endpoint after recovery",
                    p.phone_id
                );
                expected.insert(p.phone_id, p.phone_model_name);
            }
        }
    }
    anyhow::ensure!(
        expected.len() == n,
        "{} phones seeded, {n} wanted",
        expected.len()
    );
    eprintln!(
        "[sync] {n} phones on {} servers up in {:.1}s",
        server_ids.len(),
        t.elapsed().as_secs_f64()
    );
    let engine = service.start_engine();
    let token = service
        .issue_token(
            "bench",
            "admin",
            boot.password.as_deref().unwrap_or_default(),
            Some(&boot.project_id),
            None,
        )
        .await?
        .token;
    let app = cph_api::router(cph_api::AppState {
        service: service.clone(),
        clock,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let path = format!("/v1/{}/cloud-phone/phones/sync-commands", boot.project_id);
    let body = |content: &str| {
        serde_json::json!({"command": "shell", "content": content, "server_ids": server_ids})
            .to_string()
            .into_bytes()
    };
    let getprop = body("getprop ro.product.model");
    let trivial = body("true");

    let result = async {
        // The first call opens one ADB connection per phone (TCP, CNXN, RSA AUTH).
        let first = sync_call(addr, &path, &token, &trivial, &expected, false).await?;
        eprintln!(
            "[sync] first call (opens {n} ADB connections): {:.1} ms",
            first * 1000.0
        );
        let (mut prop, mut base) = (Latencies::default(), Latencies::default());
        for _ in 0..args.sync_calls {
            base.0
                .push(sync_call(addr, &path, &token, &trivial, &expected, false).await?);
            prop.0
                .push(sync_call(addr, &path, &token, &getprop, &expected, true).await?);
        }
        anyhow::Ok((first, prop, base))
    }
    .await;
    server.abort();
    engine.shutdown().await;
    store.close().await;
    let (first, prop, base) = result?;

    let (ps, bs) = (prop.sorted(), base.sorted());
    let ms = |s: f64| s * 1000.0;
    let (p50, p99) = (percentile(&ps, 0.50), percentile(&ps, 0.99));
    let (b50, b99) = (percentile(&bs, 0.50), percentile(&bs, 0.99));
    eprintln!(
        "[sync] getprop: p50 {:.1} ms p99 {:.1} ms max {:.1} ms; true: p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        ms(p50),
        ms(p99),
        ms(ps.last().copied().unwrap_or_default()),
        ms(b50),
        ms(b99),
        ms(bs.last().copied().unwrap_or_default())
    );
    let name = |what: &str| {
        format!(
            "RunSyncCommand getprop, {n} phones/call ({} servers), {} calls: {what}",
            server_ids.len(),
            args.sync_calls
        )
    };
    Ok(vec![
        Row {
            name: name("p50"),
            figure: format!("{:.1} ms", ms(p50)),
            baseline: format!("`true` {:.1} ms", ms(b50)),
            ratio: ratio(p50, b50),
            target: "–".into(),
            met: None,
        },
        Row {
            name: name("p99"),
            figure: format!("{:.1} ms", ms(p99)),
            baseline: format!("`true` {:.1} ms", ms(b99)),
            ratio: ratio(p99, b99),
            target: "p99 < 1 s".into(),
            met: Some(p99 < 1.0),
        },
        Row {
            name: format!("RunSyncCommand first call ({n} new ADB connections)"),
            figure: format!("{:.1} ms", ms(first)),
            baseline: format!("later `true` p50 {:.1} ms", ms(b50)),
            ratio: ratio(first, b50),
            target: "–".into(),
            met: None,
        },
    ])
}

// ---------------------------------------------------------------------------------------------
// 3. Idle phones
// ---------------------------------------------------------------------------------------------

async fn bench_idle(args: &Args, base: &Path) -> anyhow::Result<Vec<Row>> {
    let tmp = temp_dir(base, "idle")?;
    let n = args.idle_phones as usize;
    let interval = Duration::from_secs(args.idle_seconds);
    let key = AdbPrivateKey::generate().context("generating the control key")?;
    let hosting = PhoneHosting::new(tmp.path().join("host"), vec![key.public_key()]);
    let agent = VirtualHostAgent::hosted("bench-idle", instant_durations(), hosting);
    let catalog = cph_catalog::Catalog::builtin();

    // Baseline: the empty agent.
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("[idle] baseline: empty agent for {}s…", args.idle_seconds);
    let cpu_empty = cpu_percent_over(interval).await?;
    let rss_empty = status_kib("self", "VmRSS")?;

    eprintln!("[idle] creating {n} running phones…");
    let t = Instant::now();
    let specs: Vec<PhoneSpec> = (0..n)
        .map(|i| phone_spec(&catalog, &cph_domain::ids::hex_id(), i % 60))
        .collect();
    let ids: Vec<String> = specs.iter().map(|s| s.phone_id.clone()).collect();
    let results: Vec<anyhow::Result<SocketAddr>> = futures::stream::iter(specs)
        .map(|s| create_phone(&agent, s))
        .buffer_unordered(CREATE_PARALLELISM)
        .collect()
        .await;
    let created = t.elapsed().as_secs_f64();
    let mut ports = std::collections::HashSet::new();
    for r in results {
        anyhow::ensure!(ports.insert(r?.port()), "two phones share a port");
    }
    for id in &ids {
        anyhow::ensure!(
            agent.power(id) == Some(cph_runtime::PhonePower::Running),
            "phone {id} is not running"
        );
    }
    let rss_created = status_kib("self", "VmRSS")?;
    eprintln!(
        "[idle] {n} phones running after {created:.1}s; RSS {:.1} MB",
        mb(rss_created as f64 * 1024.0)
    );
    // Let the blocking threads that built the phones retire (tokio keeps an idle blocking
    // thread for 10 s) before measuring, so their exits do not count as idle CPU.
    tokio::time::sleep(BLOCKING_THREAD_RETIREMENT).await;
    eprintln!("[idle] {n} idle phones for {}s…", args.idle_seconds);
    let cpu_phones = cpu_percent_over(interval).await?;
    let rss_phones = status_kib("self", "VmRSS")?;
    let threads = status_kib("self", "Threads").unwrap_or(0);
    // After measuring: a sample of the phones must answer over ADB as what they were made.
    let sample: Vec<&String> = ids.iter().step_by(n.div_ceil(IDLE_PROBES).max(1)).collect();
    for id in &sample {
        let addr = agent
            .adb_endpoint(id)
            .with_context(|| format!("phone {id} lost its endpoint"))?;
        let c = AdbClient::connect(addr, &key, ClientConfig::default())
            .await
            .with_context(|| format!("connecting to phone {id}"))?;
        let out = c
            .shell("getprop ro.product.model")
            .await
            .with_context(|| format!("getprop on phone {id}"))?;
        let model = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            model.trim_end() == PHONE_MODEL,
            "phone {id} answered {model:?}"
        );
    }
    eprintln!("[idle] {} sampled phones answered over ADB", sample.len());
    drop(agent);

    let per_phone = mb((rss_phones.saturating_sub(rss_empty)) as f64 * 1024.0) / n as f64;
    eprintln!(
        "[idle] RSS empty {:.1} MB, with phones {:.1} MB ({per_phone:.3} MB/phone, {threads} threads); CPU empty {cpu_empty:.2}%, with phones {cpu_phones:.2}%",
        mb(rss_empty as f64 * 1024.0),
        mb(rss_phones as f64 * 1024.0)
    );
    Ok(vec![
        Row {
            name: format!("idle RSS per phone ({n} phones)"),
            figure: format!(
                "{per_phone:.3} MB/phone (process {:.1} MB)",
                mb(rss_phones as f64 * 1024.0)
            ),
            baseline: format!("empty agent {:.1} MB", mb(rss_empty as f64 * 1024.0)),
            ratio: ratio(rss_phones as f64, rss_empty as f64),
            target: "≤ 2 MB/phone".into(),
            met: Some(per_phone <= 2.0),
        },
        Row {
            name: format!("idle CPU, {n} phones over {}s", args.idle_seconds),
            figure: format!("{cpu_phones:.2}% of a core"),
            baseline: format!("empty agent {cpu_empty:.2}%"),
            ratio: ratio(cpu_phones, cpu_empty),
            target: "< 2% of a core".into(),
            met: Some(cpu_phones < 2.0),
        },
    ])
}
