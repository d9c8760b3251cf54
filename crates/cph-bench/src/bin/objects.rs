//! `objects`: benchmarks of the embedded object storage and of PushFile fan-out, each against a
//! baseline measured in the same run on the same disk.
//!
//! Both run the real service: `cph serve` (`--cph`, by default the `cph` next to this binary,
//! built with `cargo build --release -p cph`) as a child process with a fresh data directory
//! under `--work-dir`, its API and its S3 endpoint on free loopback ports, phones booting at
//! once. API requests are signed with the bootstrap AK/SK (SDK-HMAC-SHA256, as the official SDK
//! signs); objects move with boto3 (`--python`, default `.venv-test/bin/python` as
//! `scripts/test.sh` creates it, or `CPH_TEST_PYTHON`) in path style with the same AK/SK and the
//! service's region. Each benchmark starts its own service, so memory figures belong to it. The
//! service is killed if the benchmark fails at any point (the child is killed on drop); every
//! wait is bounded (`--step-timeout-secs` for the long steps).
//!
//! Memory of the service is its peak resident set, `VmHWM` of `/proc/<pid>/status`, reset
//! through `/proc/<pid>/clear_refs` when a measurement starts (so it covers exactly that
//! measurement), and `VmRSS` sampled every 100 ms. The service has no helper processes: its
//! phones are hosted in-process, so its own figures are the whole service's.
//!
//! 1. **Object transfer**: boto3 `upload_file` and `download_file` of a random file (1 GiB by
//!    default) through the embedded endpoint, against `cp` of the same file on the same disk.
//!    boto3 uses its transfer manager defaults (multipart above 8 MiB: 8 MiB parts, 10
//!    threads; ranged GETs on the way down); the report names the part count. Each step starts
//!    after an untimed `sync` and is timed inside the Python process around the one call (the
//!    interpreter's start and boto3's import are not counted); the object is deleted before each
//!    upload, so every upload writes a new object. The downloaded file must hash like the source.
//!    The median of `--transfer-runs` rounds is reported.
//! 2. **PushFile fan-out**: a tar of `--tar-size` (2 GiB by default; a few random files of at
//!    most 256 MiB and many random files of 1–64 KiB in directories of 100, 10 % of the bytes,
//!    all under `/data/local/tmp/cph-bench`) is uploaded with boto3 (untimed), then one PushFile
//!    call (`POST /v1/{project_id}/cloud-phone/phones/commands`, `command: push`) sends it to
//!    the phones of one bought server of 60 phones (`server_ids`, or the first `--phones` of
//!    them by `phone_ids`). The time runs from the call until ListJobs reports every job
//!    terminal (polled every 200 ms); every job must succeed. Aggregate throughput is phones ×
//!    tar bytes / seconds. The baseline is `--phones` sequential `tar -x` of the same tar file
//!    into fresh directories on the same disk, in the same run: the sum of their times.
//!    Both start after an untimed `sync`; neither waits for its data to reach the disk.
//!    - *Fetched once*: the service reads the object store in-process (no request reaches the
//!      S3 endpoint), and each fetch writes a new file in the service's spool directory
//!      (`<data>/spool`). The benchmark watches that directory with inotify during the fan-out
//!      and counts the spool files created: one means the object was fetched once.
//!    - *Memory*: peak resident memory of the service during the fan-out (target < 150 MB).
//!    - *Files*: every phone's unpacked tree is checked (each file present with its size) before
//!      it is deleted; `--verify-phones` phones, spread over the server, keep their tree until
//!      the timing ends and then have every file hashed against the tar's.
//!
//! # Disk
//!
//! Sixty unpacked copies of a 2 GiB tar (120 GiB) do not fit on a usual disk, so the run keeps
//! its peak disk use under `--disk-budget` (40 GiB by default, and never more than the free space
//! less 2 GiB): each phone's unpacked tree is deleted as soon as its job is terminal (renamed
//! aside for the phones verified later), each baseline directory right after its `tar -x`
//! (outside the timing), and the service runs at most `--concurrency` jobs at a time (its
//! `--job-concurrency`; by default the most that fit the budget: (budget / tar) − 4 −
//! verified phones, since the tar file, the stored object, the spool file, the verified trees
//! and one tree being deleted are on disk too). With `--transfers-per-host N` (passed to the
//! service, which then unpacks at most N trees at a time while the other jobs wait for a slot)
//! the plan counts N + 1 trees however many jobs run, so all the jobs may be submitted at once.
//! Free space is checked with `statvfs` before
//! anything is written; a run that cannot fit is refused with what it needs. Deleted trees
//! whose pages were not yet written back are never written, for the phones as for `tar -x`.
//! The phones' trees are deleted while other jobs still run, so the fan-out's figure carries
//! the cost of those deletions; the baseline's happen outside its timing.
//!
//! Run: `cargo run --release -p cph-bench --bin objects -- --help`; a quick run:
//! `--tar-size 256MiB --phones 8 --object-size 256MiB --transfer-runs 1`.

use anyhow::Context;
use clap::{Parser, ValueEnum};
use cph_bench::files::{
    XorShift, free_bytes, remove_dir_if_present, remove_file_if_present, seed, sha256_of,
    sync_disk, temp_dir, write_random,
};
use cph_bench::proc::{RssSampler, cpu_times, loadavg, status_kib};
use cph_bench::report::{Row, mb, median, median_by, print_table, ratio};
use cph_bench::tools::{last_lines, run_tool};
use cph_bench::units::{GIB, KIB, MIB, human, parse_size};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the tar's tree lands on each phone (and in each baseline directory).
const TOP_DIR: &str = "data/local/tmp/cph-bench";
/// Largest file of the tar.
const LARGE_FILE_MAX: u64 = 256 * MIB;
/// Share of the tar's bytes in small files, percent.
const SMALL_SHARE_PERCENT: u64 = 10;
/// Sizes of the small files (uniform in this range).
const SMALL_FILE_MIN: u64 = KIB;
const SMALL_FILE_MAX: u64 = 64 * KIB;
/// Most small files in the tar (the service accepts up to 100,000 entries).
const SMALL_FILES_MAX: u64 = 20_000;
/// Small files per directory.
const FILES_PER_DIR: u64 = 100;
/// Phones of the bought server (the issue's "60 phones of one server").
const SERVER_PHONES: usize = 60;
/// Preferred phone model: 60 phones per `physical.rx1.xlarge`, no data volume to configure.
const PHONE_MODEL: &str = "rx1.cp.c60.d10.e1v1";
/// Free space left to everyone else on the disk.
const FREE_RESERVE: u64 = 2 * GIB;
/// Longest one API call may take.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest API response read.
const MAX_RESPONSE: usize = 8 << 20;
/// Longest the service may take to start, and the purchase to bring its phones up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const PURCHASE_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest a short tool run (`sync`, a bucket creation, a deletion) may take.
const SHORT_TIMEOUT: Duration = Duration::from_secs(300);
/// How often job status and memory are looked at.
const POLL: Duration = Duration::from_millis(200);
const RSS_SAMPLE: Duration = Duration::from_millis(100);
/// Grace period of the service after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Bucket and key names.
const OBJECT_KEY: &str = "bench/object.bin";
const TAR_KEY: &str = "bench/fanout.tar";

/// The boto3 side: one operation per process, credentials from the environment (never on the
/// command line), one JSON line on stdout. Times are taken around the one boto3 call.
const BOTO3_SCRIPT: &str = r#"
import json, os, sys, time
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.client import Config

env = os.environ
region = env["CPH_S3_REGION"]
s3 = boto3.client(
    "s3",
    endpoint_url=env["CPH_S3_ENDPOINT"],
    region_name=region,
    aws_access_key_id=env["CPH_S3_ACCESS_KEY"],
    aws_secret_access_key=env["CPH_S3_SECRET_KEY"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
op, bucket = sys.argv[1], sys.argv[2]
cfg = TransferConfig()
out = {
    "multipart_threshold": cfg.multipart_threshold,
    "multipart_chunksize": cfg.multipart_chunksize,
    "max_concurrency": cfg.max_concurrency,
}
if op == "mkbucket":
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
elif op == "upload":
    path, key = sys.argv[3], sys.argv[4]
    t = time.perf_counter()
    s3.upload_file(path, bucket, key, Config=cfg)
    out["secs"] = time.perf_counter() - t
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    out["parts"] = int(etag.rsplit("-", 1)[1]) if "-" in etag else 1
elif op == "download":
    key, path = sys.argv[3], sys.argv[4]
    t = time.perf_counter()
    s3.download_file(bucket, key, path, Config=cfg)
    out["secs"] = time.perf_counter() - t
elif op == "delete":
    s3.delete_object(Bucket=bucket, Key=sys.argv[3])
else:
    sys.exit("unknown operation " + op)
print(json.dumps(out))
"#;

/// Which benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    Transfer,
    Push,
}

#[derive(Parser, Debug)]
#[command(about = "Object storage and PushFile fan-out benchmarks against same-run baselines")]
struct Args {
    /// Run only this benchmark (default: both).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// The `cph` binary (default: `cph` next to this executable).
    #[arg(long)]
    cph: Option<PathBuf>,
    /// A Python with boto3.
    #[arg(long, env = "CPH_TEST_PYTHON", default_value = ".venv-test/bin/python")]
    python: PathBuf,
    /// The stock tar of the baseline.
    #[arg(long, default_value = "tar")]
    tar: PathBuf,
    /// Directory the run's files and the service's data go in (the disk under test); default:
    /// the system's temporary directory.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Size of the transferred object (e.g. 1GiB, 256MiB).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    object_size: u64,
    /// Rounds of cp/upload/download; the median of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    transfer_runs: u64,
    /// Size of the pushed tar's content (the tar adds its headers).
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    tar_size: u64,
    /// Phones of the server the tar is pushed to.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=60))]
    phones: u64,
    /// Jobs the service runs at a time (default: the most that fit --disk-budget).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60))]
    concurrency: Option<u64>,
    /// The service's `--transfers-per-host` (default: the service's own default, and the disk
    /// plan counts one tree per job).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    transfers_per_host: Option<u64>,
    /// Phones whose unpacked files are all hashed after the timing.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    verify_phones: u64,
    /// Most disk the run may use at a time.
    #[arg(long, default_value = "40GiB", value_parser = parse_size)]
    disk_budget: u64,
    /// Longest any long step may take: one boto3 transfer, one tar -x, the whole fan-out.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    step_timeout_secs: u64,
}

// ---------------------------------------------------------------------------------------------
// Sizes and the disk plan
// ---------------------------------------------------------------------------------------------

/// What the requested benchmarks put on disk.
#[derive(Debug, Clone, Copy)]
struct DiskNeeds {
    /// Bytes of the transferred object, when the transfer benchmark runs.
    object: Option<u64>,
    /// The fan-out, when it runs.
    push: Option<PushNeeds>,
}

#[derive(Debug, Clone, Copy)]
struct PushNeeds {
    /// Bytes of the tar file.
    tar: u64,
    phones: usize,
    verify: usize,
    concurrency: Option<usize>,
    /// The service's transfers per host, when the run sets it.
    transfers: Option<usize>,
}

/// How the run fits on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiskPlan {
    /// Bytes the run may use at a time.
    budget: u64,
    /// Peak of each benchmark (they run one after the other, each cleaning up).
    transfer_peak: u64,
    push_peak: u64,
    /// Jobs the service runs at a time in the fan-out.
    concurrency: usize,
}

/// Why a run does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PlanError {
    #[error(
        "the transfer benchmark needs {} of disk at its peak (source, stored object, download); the run may use {}",
        human(*need), human(*budget)
    )]
    Transfer { need: u64, budget: u64 },
    #[error(
        "the fan-out needs at least {} of disk (tar, stored object, spool, verified trees and one job's tree); the run may use {}",
        human(*need), human(*budget)
    )]
    FanOut { need: u64, budget: u64 },
    #[error(
        "--concurrency {asked} needs {} of disk; the run may use {} (at most {fits} jobs at a time fit)",
        human(*need), human(*budget)
    )]
    Concurrency {
        asked: usize,
        fits: usize,
        need: u64,
        budget: u64,
    },
}

/// Plans the run on a disk with `free` bytes available, using at most `limit` of them.
///
/// The transfer holds the source, the stored object (its parts, then the assembled object) and
/// the download: 3 copies. The fan-out holds the tar file, the stored object (3 copies while it
/// is uploaded), the spool file, the trees kept for verification, one tree per running job and
/// one being deleted.
fn plan_disk(free: u64, limit: u64, needs: DiskNeeds) -> Result<DiskPlan, PlanError> {
    let budget = limit.min(free.saturating_sub(FREE_RESERVE));
    let transfer_peak = needs.object.map_or(0, |o| o.saturating_mul(3));
    if transfer_peak > budget {
        return Err(PlanError::Transfer {
            need: transfer_peak,
            budget,
        });
    }
    let Some(p) = needs.push else {
        return Ok(DiskPlan {
            budget,
            transfer_peak,
            push_peak: 0,
            concurrency: 0,
        });
    };
    let tar = p.tar.max(1);
    let fixed = 4 + p.verify as u64;
    // Trees on disk with k jobs running: one per job, or with the service's transfer slots, one
    // per slot and one of a job that just ended.
    let trees = |k: usize| p.transfers.map_or(k, |t| k.min(t + 1));
    let peak_for = |k: usize| tar.saturating_mul(fixed + trees(k) as u64);
    let fit_trees = (budget / tar).saturating_sub(fixed) as usize;
    let fits = match p.transfers {
        Some(t) if fit_trees > t => p.phones,
        _ => fit_trees,
    };
    if fits == 0 {
        return Err(PlanError::FanOut {
            need: peak_for(1),
            budget,
        });
    }
    let concurrency = match p.concurrency {
        Some(asked) if asked.min(p.phones) > fits => {
            return Err(PlanError::Concurrency {
                asked,
                fits,
                need: peak_for(asked.min(p.phones)),
                budget,
            });
        }
        Some(asked) => asked.min(p.phones),
        None => fits.min(p.phones),
    }
    .max(1);
    Ok(DiskPlan {
        budget,
        transfer_peak,
        push_peak: peak_for(concurrency),
        concurrency,
    })
}

// ---------------------------------------------------------------------------------------------
// The tar
// ---------------------------------------------------------------------------------------------

/// A file of the tar and what it must read back as.
#[derive(Debug, Clone)]
struct TarFile {
    /// Path inside the archive (and under a phone's root).
    path: String,
    size: u64,
    sha256: [u8; 32],
}

/// The tar's layout: directories first, then files.
#[derive(Debug, Clone)]
struct TarLayout {
    dirs: Vec<String>,
    files: Vec<TarFile>,
}

impl TarLayout {
    /// A layout of `content` bytes under `top`: [`SMALL_SHARE_PERCENT`] of them in small files of
    /// 1–64 KiB (at most [`SMALL_FILES_MAX`]), the rest in files of at most [`LARGE_FILE_MAX`].
    fn new(top: &str, content: u64, seed: u64) -> TarLayout {
        let mut rng = XorShift::new(seed);
        let mut dirs = vec![format!("{top}/"), format!("{top}/large/")];
        let mut files = Vec::new();
        let mut small_left = content * SMALL_SHARE_PERCENT / 100;
        let mut n = 0u64;
        while small_left > 0 && n < SMALL_FILES_MAX {
            if n.is_multiple_of(FILES_PER_DIR) {
                if n == 0 {
                    dirs.push(format!("{top}/small/"));
                }
                dirs.push(format!("{top}/small/d{:04}/", n / FILES_PER_DIR));
            }
            let span = SMALL_FILE_MAX - SMALL_FILE_MIN + 1;
            let size = (SMALL_FILE_MIN + rng.next_u64() % span).min(small_left);
            files.push(TarFile {
                path: format!("{top}/small/d{:04}/f{n:05}.bin", n / FILES_PER_DIR),
                size,
                sha256: [0; 32],
            });
            small_left -= size;
            n += 1;
        }
        let small: u64 = files.iter().map(|f| f.size).sum();
        let mut large_left = content - small;
        let mut i = 0;
        while large_left > 0 {
            let size = large_left.min(LARGE_FILE_MAX);
            files.push(TarFile {
                path: format!("{top}/large/f{i:03}.bin"),
                size,
                sha256: [0; 32],
            });
            large_left -= size;
            i += 1;
        }
        TarLayout { dirs, files }
    }

    /// Bytes of the archive: a 512-byte header per entry, file data padded to 512 bytes, two
    /// zero blocks at the end.
    fn tar_bytes(&self) -> u64 {
        let data: u64 = self.files.iter().map(|f| f.size.div_ceil(512) * 512).sum();
        512 * (self.dirs.len() + self.files.len()) as u64 + data + 1024
    }

    fn content_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A POSIX ustar header. `name` must fit the 100-byte name field.
fn ustar_header(
    name: &str,
    size: u64,
    mode: u32,
    dir: bool,
    mtime: u64,
) -> anyhow::Result<[u8; 512]> {
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 100,
        "tar entry name {name:?} does not fit a ustar header"
    );
    anyhow::ensure!(size < 1 << 33, "tar entry {name} is too large for ustar");
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(
        &mut h,
        136,
        format!("{:011o}\0", mtime.min(0o77_777_777_777)).as_bytes(),
    );
    h[156] = if dir { b'5' } else { b'0' };
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    // The checksum is computed with its own field as spaces.
    put(&mut h, 148, b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Writes `layout` as a ustar archive of pseudo-random file contents and fills in each file's
/// SHA-256. Returns the archive's size.
fn write_tar(path: &Path, layout: &mut TarLayout, seed: u64) -> anyhow::Result<u64> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(MIB as usize, f);
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rng = XorShift::new(seed ^ 0xA5A5_5A5A_DEAD_BEEF);
    let mut written = 0u64;
    for d in &layout.dirs {
        out.write_all(&ustar_header(d, 0, 0o755, true, mtime)?)?;
        written += 512;
    }
    let mut buf = vec![0u8; MIB as usize];
    for file in &mut layout.files {
        out.write_all(&ustar_header(&file.path, file.size, 0o644, false, mtime)?)?;
        let mut hasher = Sha256::new();
        let mut left = file.size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            rng.fill(&mut buf[..n]);
            out.write_all(&buf[..n])?;
            hasher.update(&buf[..n]);
            left -= n as u64;
        }
        let pad = (512 - file.size % 512) % 512;
        out.write_all(&vec![0u8; pad as usize])?;
        file.sha256 = hasher.finalize().into();
        written += 512 + file.size + pad;
    }
    out.write_all(&[0u8; 1024])?;
    written += 1024;
    out.flush()?;
    Ok(written)
}

/// Checks the tar's files under `root`: each present with its size, and, when `hash`, with its
/// content.
fn check_tree(root: &Path, files: &[TarFile], hash: bool) -> anyhow::Result<()> {
    for f in files {
        let p = root.join(&f.path);
        let meta = std::fs::metadata(&p).with_context(|| format!("{} is missing", p.display()))?;
        anyhow::ensure!(
            meta.len() == f.size,
            "{} has {} bytes, the tar {}",
            p.display(),
            meta.len(),
            f.size
        );
        if hash {
            let got = sha256_of(&p)?;
            anyhow::ensure!(
                got == f.sha256,
                "{} differs from the tar (sha256 {} vs {})",
                p.display(),
                hex::encode(got),
                hex::encode(f.sha256)
            );
        }
    }
    Ok(())
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a blocking task panicked")?
}

// ---------------------------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------------------------

/// What `bootstrap.json` says (the secret key is never printed).
struct Bootstrap {
    api: SocketAddr,
    s3_endpoint: String,
    region: String,
    access_key: String,
    secret_key: String,
    project_id: String,
    vpc_id: String,
    subnet_id: String,
}

impl Bootstrap {
    fn parse(bytes: &[u8]) -> anyhow::Result<Bootstrap> {
        let v: serde_json::Value = serde_json::from_slice(bytes).context("bootstrap.json")?;
        let field = |k: &str| -> anyhow::Result<String> {
            v[k].as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .with_context(|| format!("bootstrap.json has no {k}"))
        };
        let api = field("api_endpoint")?;
        let api = api
            .strip_prefix("http://")
            .unwrap_or(&api)
            .parse()
            .with_context(|| format!("api_endpoint {api:?} is not http://ip:port"))?;
        Ok(Bootstrap {
            api,
            s3_endpoint: field("s3_endpoint")?,
            region: field("region")?,
            access_key: field("access_key")?,
            secret_key: field("secret_key")?,
            project_id: field("project_id")?,
            vpc_id: field("default_vpc_id")?,
            subnet_id: field("default_subnet_id")?,
        })
    }
}

/// The last 20 lines of a log file.
fn log_tail(path: &Path) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), 20)
}

/// `cph serve` as a child process; killed when dropped.
struct ServiceProcess {
    child: tokio::process::Child,
    pid: String,
    data: PathBuf,
    log: PathBuf,
    boot: Bootstrap,
}

impl ServiceProcess {
    async fn start(
        bin: &Path,
        data: PathBuf,
        job_concurrency: usize,
        job_timeout: Duration,
        transfers_per_host: Option<u64>,
    ) -> anyhow::Result<ServiceProcess> {
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let log = data.with_extension("log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0"])
            .args(["--phone-boot-ms", "0", "--phone-stop-ms", "0"])
            .args(["--phone-reset-ms", "0", "--log", "warn"])
            .args(["--sync-commands-per-minute", "0"])
            .arg("--job-concurrency")
            .arg(job_concurrency.to_string())
            .arg("--job-timeout-secs")
            .arg(job_timeout.as_secs().to_string())
            .args(
                transfers_per_host
                    .map(|t| vec!["--transfers-per-host".to_string(), t.to_string()])
                    .unwrap_or_default(),
            )
            // No configuration of the user's leaks in (CPH_* variables, a config file).
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            // Stdout repeats the credentials: not kept.
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child
            .id()
            .context("the service exited at once")?
            .to_string();
        // bootstrap.json is written (by rename) once both listeners are bound. On any error
        // below, dropping `child` kills the service.
        let path = data.join("bootstrap.json");
        let deadline = Instant::now() + START_TIMEOUT;
        let boot = loop {
            if let Some(st) = child.try_wait()? {
                anyhow::bail!(
                    "the service exited ({st}) while starting:\n{}",
                    log_tail(&log)
                );
            }
            if let Ok(bytes) = std::fs::read(&path) {
                break Bootstrap::parse(&bytes)?;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the service did not start within {START_TIMEOUT:?}:\n{}",
                log_tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Ok(ServiceProcess {
            child,
            pid,
            data,
            log,
            boot,
        })
    }

    /// The last lines of the service's log.
    fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    fn api(&self) -> Api {
        Api {
            addr: self.boot.api,
            access_key: self.boot.access_key.clone(),
            secret_key: self.boot.secret_key.clone(),
            project_id: self.boot.project_id.clone(),
        }
    }

    fn kib(&self, key: &str) -> anyhow::Result<u64> {
        status_kib(&self.pid, key)
    }

    /// Resets the peak resident set (`VmHWM`) to the current one. False if the kernel refused.
    fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), b"5").is_ok()
    }

    fn cpu(&self) -> anyhow::Result<f64> {
        Ok(cpu_times(&self.pid)?.own)
    }

    /// Where a phone's files live (the hosting layout of `cph serve`).
    fn phone_root(&self, phone_id: &str) -> PathBuf {
        self.data
            .join("phones")
            .join("phones")
            .join(phone_id)
            .join("root")
    }

    /// SIGTERM, then SIGKILL if the service has not exited within [`STOP_TIMEOUT`].
    async fn stop(mut self) -> anyhow::Result<()> {
        if let Ok(pid) = self.pid.parse::<libc::pid_t>() {
            // SAFETY: kill sends a signal to our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(st) => {
                st?;
            }
            Err(_) => {
                eprintln!("[service] no exit {STOP_TIMEOUT:?} after SIGTERM; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }

    /// Runs the boto3 script with this service's endpoint and credentials.
    async fn boto3(
        &self,
        python: &Path,
        home: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let mut cmd = tokio::process::Command::new(python);
        cmd.arg("-c")
            .arg(BOTO3_SCRIPT)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", home)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CPH_S3_ENDPOINT", &self.boot.s3_endpoint)
            .env("CPH_S3_REGION", &self.boot.region)
            .env("CPH_S3_ACCESS_KEY", &self.boot.access_key)
            .env("CPH_S3_SECRET_KEY", &self.boot.secret_key);
        let what = format!("boto3 {}", args.first().copied().unwrap_or_default());
        let out = run_tool(&mut cmd, &what, timeout).await?;
        let line = String::from_utf8_lossy(&out);
        serde_json::from_str(line.trim()).with_context(|| format!("{what} printed {line:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// Signed API requests
// ---------------------------------------------------------------------------------------------

/// Why an HTTP response could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum HttpError {
    #[error("the response has no complete head")]
    NoHead,
    #[error("malformed status line {0:?}")]
    StatusLine(String),
    #[error("malformed chunked body")]
    Chunked,
    #[error("the body is shorter than its Content-Length ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
}

/// Splits a complete `Connection: close` response into its status and body (plain,
/// `Content-Length` or chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(HttpError::NoHead)?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| HttpError::StatusLine(status_line.to_string()))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        if k.eq_ignore_ascii_case("content-length") {
            length = v.trim().parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    if chunked {
        return Ok((status, dechunk(rest)?));
    }
    match length {
        Some(want) if rest.len() < want => Err(HttpError::Truncated {
            got: rest.len(),
            want,
        }),
        Some(want) => Ok((status, rest[..want].to_vec())),
        None => Ok((status, rest.to_vec())),
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(HttpError::Chunked)?;
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| HttpError::Chunked)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Chunked)?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err(HttpError::Chunked);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The CPH API, signed with an AK/SK as the official SDK signs.
struct Api {
    addr: SocketAddr,
    access_key: String,
    secret_key: String,
    project_id: String,
}

impl Api {
    /// One request on a fresh connection; fails unless the answer is 2xx JSON.
    async fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let host = self.addr.to_string();
        let headers = [
            ("Host", host.as_str()),
            ("Content-Type", "application/json"),
            ("X-Project-Id", self.project_id.as_str()),
        ];
        let signed = cph_auth::sign_request(
            &cph_auth::SignedRequest {
                method,
                path,
                query: Some(query),
                headers: &headers,
                body: &body,
            },
            &self.access_key,
            &self.secret_key,
            chrono::Utc::now(),
        );
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in headers
            .iter()
            .map(|(k, v)| (*k, *v))
            .chain(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let exchange = async {
            let mut s = tokio::net::TcpStream::connect(self.addr).await?;
            s.write_all(head.as_bytes()).await?;
            s.write_all(&body).await?;
            let mut raw = Vec::new();
            (&mut s)
                .take(MAX_RESPONSE as u64 + 1)
                .read_to_end(&mut raw)
                .await?;
            anyhow::Ok(raw)
        };
        let raw = tokio::time::timeout(API_TIMEOUT, exchange)
            .await
            .with_context(|| format!("{method} {path} timed out"))?
            .with_context(|| format!("{method} {path}"))?;
        anyhow::ensure!(
            raw.len() <= MAX_RESPONSE,
            "{method} {path}: response larger than {MAX_RESPONSE} bytes"
        );
        let (status, resp) = parse_response(&raw).with_context(|| format!("{method} {path}"))?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {}",
            String::from_utf8_lossy(&resp)
        );
        serde_json::from_slice(&resp).with_context(|| format!("{method} {path}: body is not JSON"))
    }

    fn path(&self, rest: &str) -> String {
        format!("/{}", rest.replace("{project_id}", &self.project_id))
    }

    /// Every job of `request_id`.
    async fn jobs_of(&self, request_id: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let path = self.path("v1/{project_id}/cloud-phone/jobs");
        let mut out = Vec::new();
        // Bounded: a request of this benchmark has at most 60 jobs; 100 per page.
        for page in 0..100 {
            let q = format!("limit=100&offset={}&request_id={request_id}", page * 100);
            let v = self.call("GET", &path, &q, None).await?;
            let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
            let n = jobs.len();
            out.extend(jobs);
            if n < 100 {
                return Ok(out);
            }
        }
        anyhow::bail!("request {request_id} has more than 10,000 jobs")
    }

    /// Polls until every job of `request_id` has succeeded.
    async fn wait_succeeded(&self, request_id: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let jobs = self.jobs_of(request_id).await?;
            if let Some(bad) = jobs.iter().find(|j| j["status"] == -1) {
                anyhow::bail!("a job of request {request_id} failed: {bad}");
            }
            if !jobs.is_empty() && jobs.iter().all(|j| j["status"] == 2) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the jobs of request {request_id} did not end within {timeout:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Buys one server of [`SERVER_PHONES`] phones and waits until they all run. Returns the
    /// server id and its phone ids, sorted.
    async fn buy_server(&self, boot: &Bootstrap) -> anyhow::Result<(String, Vec<String>)> {
        let models = self
            .call(
                "GET",
                &self.path("v1/{project_id}/cloud-phone/phone-models"),
                "",
                None,
            )
            .await?;
        let models = models["phone_models"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let fits = |m: &&serde_json::Value| {
            m["phone_capacity"] == SERVER_PHONES
                && m["status"] == 1
                && m["phone_model_version"].as_i64().unwrap_or(0) == 0
        };
        let model = models
            .iter()
            .filter(fits)
            .find(|m| m["phone_model_name"] == PHONE_MODEL)
            .or_else(|| models.iter().find(fits))
            .with_context(|| {
                format!("the catalog has no phone model of {SERVER_PHONES} phones per server")
            })?;
        let images = self
            .call(
                "GET",
                &self.path("v1/{project_id}/cloud-phone/phone-images"),
                "",
                None,
            )
            .await?;
        let image = images["phone_images"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["image_label"] == model["image_label"]))
            .with_context(|| format!("no image for phone model {}", model["phone_model_name"]))?;
        let body = serde_json::json!({
            "server_name": "cph-bench-objects",
            "server_model_name": model["server_model_name"],
            "phone_model_name": model["phone_model_name"],
            "image_id": image["image_id"],
            "count": 1,
            "tenant_vpc_id": boot.vpc_id,
            "nics": [{"subnet_id": boot.subnet_id}],
            "public_ip": {"eip": {"type": "5_bgp"}},
            "band_width": {"band_width_share_type": 0, "band_width_charge_mode": 1, "band_width_size": 300},
            "extend_param": {"charging_mode": 0, "period_type": 2, "period_num": 1},
        });
        let r = self
            .call(
                "POST",
                &self.path("v2/{project_id}/cloud-phone/servers"),
                "",
                Some(&body),
            )
            .await
            .context("buying a server")?;
        let request_id = r["request_id"].as_str().context("no request_id")?;
        let server_id = r["server_ids"][0]
            .as_str()
            .context("no server_ids in the purchase answer")?
            .to_string();
        self.wait_succeeded(request_id, PURCHASE_TIMEOUT)
            .await
            .context("creating the server")?;
        let deadline = Instant::now() + PURCHASE_TIMEOUT;
        let path = self.path("v1/{project_id}/cloud-phone/phones");
        loop {
            let v = self
                .call(
                    "GET",
                    &path,
                    &format!("limit=200&server_id={server_id}"),
                    None,
                )
                .await?;
            let phones = v["phones"].as_array().cloned().unwrap_or_default();
            if phones.len() == SERVER_PHONES && phones.iter().all(|p| p["status"] == 2) {
                let mut ids: Vec<String> = phones
                    .iter()
                    .filter_map(|p| p["phone_id"].as_str().map(str::to_string))
                    .collect();
                ids.sort();
                anyhow::ensure!(ids.len() == SERVER_PHONES, "phones without an id: {v}");
                return Ok((server_id, ids));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the phones of server {server_id} were not all running after {PURCHASE_TIMEOUT:?} ({} listed)",
                phones.len()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The spool directory, watched
// ---------------------------------------------------------------------------------------------

/// Counts files created in and removed from one directory (inotify).
struct DirWatch {
    fd: std::fs::File,
    created: Vec<String>,
    removed: usize,
    overflowed: bool,
}

impl DirWatch {
    fn new(dir: &Path) -> anyhow::Result<DirWatch> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: plain system calls; the descriptor is owned by the File right away.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_DELETE | libc::IN_MOVED_FROM;
        // SAFETY: `fd` is a live inotify descriptor and `c` a valid C string.
        if unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) } < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("watching {}", dir.display()));
        }
        Ok(DirWatch {
            fd: file,
            created: Vec::new(),
            removed: 0,
            overflowed: false,
        })
    }

    /// Reads the events queued so far.
    fn drain(&mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.fd.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e).context("reading inotify events"),
            };
            self.parse(&buf[..n]);
        }
    }

    /// `struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }`, repeated.
    fn parse(&mut self, mut b: &[u8]) {
        while b.len() >= 16 {
            let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            let (mask, len) = (word(4), word(12) as usize);
            let Some(name) = b.get(16..16 + len) else {
                return;
            };
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_string();
            if mask & libc::IN_Q_OVERFLOW != 0 {
                self.overflowed = true;
            } else if mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
                // Bounded: names are kept only to report them.
                if self.created.len() < 1000 {
                    self.created.push(name);
                }
            } else if mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
                self.removed += 1;
            }
            b = &b[16 + len..];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(args))
}

/// Everything a benchmark needs to know besides its own arguments.
struct Env {
    cph: PathBuf,
    python: PathBuf,
    base: PathBuf,
    step_timeout: Duration,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let wants = |b: Only| args.only.is_none_or(|o| o == b);
    let cph = match &args.cph {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("cph"),
    };
    anyhow::ensure!(
        cph.is_file(),
        "no cph binary at {} (build it with `cargo build --release -p cph`, or pass --cph)",
        cph.display()
    );
    let python = args.python.clone();
    let mut check = tokio::process::Command::new(&python);
    check.args(["-c", "import boto3"]);
    run_tool(&mut check, "import boto3", SHORT_TIMEOUT)
        .await
        .with_context(|| {
            format!(
                "{} cannot import boto3 (run scripts/test.sh to create .venv-test, or pass --python / CPH_TEST_PYTHON)",
                python.display()
            )
        })?;
    let base = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;

    // The tar's layout is known before anything is written, so the plan uses its exact size.
    let tar_seed = seed();
    let layout = TarLayout::new(TOP_DIR, args.tar_size, tar_seed);
    let free = free_bytes(&base)?;
    let plan = plan_disk(
        free,
        args.disk_budget,
        DiskNeeds {
            object: wants(Only::Transfer).then_some(args.object_size),
            push: wants(Only::Push).then_some(PushNeeds {
                tar: layout.tar_bytes(),
                phones: args.phones as usize,
                verify: args.verify_phones.min(args.phones) as usize,
                concurrency: args.concurrency.map(|c| c as usize),
                transfers: args.transfers_per_host.map(|t| t as usize),
            }),
        },
    )
    .with_context(|| {
        format!(
            "refusing to run: {} is free on the disk of {}",
            human(free),
            base.display()
        )
    })?;
    eprintln!(
        "[plan] {} free in {}; the run may use {}: transfer peak {}, fan-out peak {} ({} jobs at a time)",
        human(free),
        base.display(),
        human(plan.budget),
        human(plan.transfer_peak),
        human(plan.push_peak),
        plan.concurrency
    );
    let env = Env {
        cph,
        python,
        base,
        step_timeout: Duration::from_secs(args.step_timeout_secs),
    };

    let mut rows = Vec::new();
    let mut json = serde_json::Map::new();
    json.insert("bench".into(), "objects".into());
    // Others' work on the machine shows in both a figure and its baseline, not always equally.
    json.insert("loadavg_start".into(), loadavg().into());
    json.insert(
        "disk".into(),
        serde_json::json!({
            "free_bytes": free,
            "budget_bytes": plan.budget,
            "transfer_peak_bytes": plan.transfer_peak,
            "push_peak_bytes": plan.push_peak,
        }),
    );
    if wants(Only::Transfer) {
        let (r, j) = bench_transfer(&args, &env)
            .await
            .context("object transfer benchmark")?;
        rows.extend(r);
        json.insert("transfer".into(), j);
    }
    if wants(Only::Push) {
        let (r, j) = bench_push(&args, &env, layout, tar_seed, plan.concurrency)
            .await
            .context("PushFile fan-out benchmark")?;
        rows.extend(r);
        json.insert("push".into(), j);
    }
    json.insert("loadavg_end".into(), loadavg().into());
    eprintln!(
        "[load] 1-minute load average: {:.2} at the start, {:.2} at the end",
        json["loadavg_start"].as_f64().unwrap_or_default(),
        json["loadavg_end"].as_f64().unwrap_or_default()
    );
    print_table(&rows);
    println!();
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}

fn bucket_name() -> String {
    format!("cph-bench-{}", &cph_domain::ids::hex_id()[..12])
}

// ---------------------------------------------------------------------------------------------
// 1. Object transfer
// ---------------------------------------------------------------------------------------------

/// One timed step: wall seconds and CPU (the tool's, once reaped, and the service's).
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    secs: f64,
    tool_cpu: f64,
    service_cpu: f64,
}

async fn bench_transfer(args: &Args, env: &Env) -> anyhow::Result<(Vec<Row>, serde_json::Value)> {
    let tmp = temp_dir(&env.base, "transfer")?;
    let bytes = args.object_size;
    let src = tmp.path().join("object.bin");
    eprintln!("[transfer] writing {} of random data…", human(bytes));
    let src_hash = {
        let (src, s) = (src.clone(), seed());
        blocking(move || write_random(&src, bytes, s)).await?
    };
    let svc = ServiceProcess::start(
        &env.cph,
        tmp.path().join("data"),
        10_000,
        env.step_timeout,
        None,
    )
    .await?;
    let sampler = RssSampler::start(&svc.pid, RSS_SAMPLE);
    let bucket = bucket_name();
    let home = tmp.path().to_path_buf();
    svc.boto3(&env.python, &home, &["mkbucket", &bucket], SHORT_TIMEOUT)
        .await?;
    let peak_reset = svc.reset_peak();
    sampler.take_max_kib();

    let cp_dst = tmp.path().join("copy.bin");
    let dl = tmp.path().join("download.bin");
    let (src_s, dl_s) = (
        src.to_string_lossy().into_owned(),
        dl.to_string_lossy().into_owned(),
    );
    let (mut cps, mut ups, mut downs) = (Vec::new(), Vec::new(), Vec::new());
    let mut parts = 0u64;
    let mut transfer_config = serde_json::Value::Null;
    for run in 1..=args.transfer_runs {
        remove_file_if_present(&cp_dst)?;
        sync_disk(SHORT_TIMEOUT).await?;
        let c0 = cpu_times("self")?;
        let t = Instant::now();
        run_tool(
            tokio::process::Command::new("cp").arg(&src).arg(&cp_dst),
            "cp",
            env.step_timeout,
        )
        .await?;
        let cp = Step {
            secs: t.elapsed().as_secs_f64(),
            tool_cpu: cpu_times("self")?.children - c0.children,
            service_cpu: 0.0,
        };
        remove_file_if_present(&cp_dst)?;

        svc.boto3(
            &env.python,
            &home,
            &["delete", &bucket, OBJECT_KEY],
            SHORT_TIMEOUT,
        )
        .await?;
        sync_disk(SHORT_TIMEOUT).await?;
        let (c0, s0) = (cpu_times("self")?, svc.cpu()?);
        let out = svc
            .boto3(
                &env.python,
                &home,
                &["upload", &bucket, &src_s, OBJECT_KEY],
                env.step_timeout,
            )
            .await?;
        let up = Step {
            secs: out["secs"].as_f64().context("upload time missing")?,
            tool_cpu: cpu_times("self")?.children - c0.children,
            service_cpu: svc.cpu()? - s0,
        };
        parts = out["parts"].as_u64().unwrap_or(0);
        transfer_config = out;

        remove_file_if_present(&dl)?;
        sync_disk(SHORT_TIMEOUT).await?;
        let (c0, s0) = (cpu_times("self")?, svc.cpu()?);
        let out = svc
            .boto3(
                &env.python,
                &home,
                &["download", &bucket, OBJECT_KEY, &dl_s],
                env.step_timeout,
            )
            .await?;
        let down = Step {
            secs: out["secs"].as_f64().context("download time missing")?,
            tool_cpu: cpu_times("self")?.children - c0.children,
            service_cpu: svc.cpu()? - s0,
        };
        let got = {
            let dl = dl.clone();
            blocking(move || sha256_of(&dl)).await?
        };
        anyhow::ensure!(
            got == src_hash,
            "run {run}: the downloaded object differs from the source (sha256 {} vs {})",
            hex::encode(got),
            hex::encode(src_hash)
        );
        remove_file_if_present(&dl)?;
        let rate = |s: &Step| mb(bytes as f64) / s.secs;
        eprintln!(
            "[transfer] run {run} (download hash matches): cp {:.0} MB/s, upload {:.0} MB/s ({parts} parts), download {:.0} MB/s",
            rate(&cp),
            rate(&up),
            rate(&down)
        );
        cps.push(cp);
        ups.push(up);
        downs.push(down);
    }
    let hwm = svc.kib("VmHWM")?;
    let sampled = sampler.take_max_kib();
    drop(sampler);
    svc.stop().await?;

    let gib = bytes as f64 / GIB as f64;
    let mbps = |v: &[Step]| median_by(v, |s| mb(bytes as f64) / s.secs);
    let cpu = |v: &[Step], f: fn(&Step) -> f64| median_by(v, |s| f(s) / gib);
    let cp = mbps(&cps);
    let chunk = transfer_config["multipart_chunksize"].as_u64().unwrap_or(0);
    let threads = transfer_config["max_concurrency"].as_u64().unwrap_or(0);
    let mut rows = Vec::new();
    let mut json = serde_json::json!({
        "object_bytes": bytes,
        "runs": args.transfer_runs,
        "cp_mbps": cp,
        "cp_cpu_s_per_gib": cpu(&cps, |s| s.tool_cpu),
        "multipart_parts": parts,
        "multipart_chunk_bytes": chunk,
        "transfer_threads": threads,
        "service_peak_rss_mb": mb(hwm as f64 * 1024.0),
        "service_peak_rss_whole_life": !peak_reset,
        "service_sampled_max_rss_mb": mb(sampled as f64 * 1024.0),
    });
    for (name, steps) in [("upload", &ups), ("download", &downs)] {
        let v = mbps(steps);
        let how = if name == "upload" {
            format!("{parts} parts of {}, {threads} threads", human(chunk))
        } else {
            format!("ranged GETs of {}, {threads} threads", human(chunk))
        };
        rows.push(Row {
            name: format!(
                "boto3 {name}_file {} ({how}), median of {}",
                human(bytes),
                args.transfer_runs
            ),
            figure: format!("{v:.0} MB/s"),
            baseline: format!("cp {cp:.0} MB/s"),
            ratio: ratio(v, cp),
            target: "report".into(),
            met: None,
        });
        let (py, sv) = (cpu(steps, |s| s.tool_cpu), cpu(steps, |s| s.service_cpu));
        rows.push(Row {
            name: format!("CPU per GiB of boto3 {name} (median)"),
            figure: format!("{:.2} s (service {sv:.2}, boto3 {py:.2})", sv + py),
            baseline: format!("cp {:.2} s", cpu(&cps, |s| s.tool_cpu)),
            ratio: ratio(sv + py, cpu(&cps, |s| s.tool_cpu)),
            target: "–".into(),
            met: None,
        });
        json[format!("{name}_mbps")] = v.into();
        json[format!("{name}_ratio_to_cp")] = (v / cp).into();
        json[format!("{name}_service_cpu_s_per_gib")] = sv.into();
        json[format!("{name}_boto3_cpu_s_per_gib")] = py.into();
    }
    rows.push(Row {
        name: "service peak RSS during the transfers".into(),
        figure: format!(
            "{:.1} MB (VmHWM{}; sampled max {:.1} MB)",
            mb(hwm as f64 * 1024.0),
            if peak_reset { "" } else { " since start" },
            mb(sampled as f64 * 1024.0)
        ),
        baseline: "–".into(),
        ratio: "–".into(),
        target: "–".into(),
        met: None,
    });
    Ok((rows, json))
}

// ---------------------------------------------------------------------------------------------
// 2. PushFile fan-out
// ---------------------------------------------------------------------------------------------

/// What happened to one phone's job.
struct JobEnd {
    phone_id: String,
    secs: f64,
}

async fn bench_push(
    args: &Args,
    env: &Env,
    mut layout: TarLayout,
    tar_seed: u64,
    concurrency: usize,
) -> anyhow::Result<(Vec<Row>, serde_json::Value)> {
    let tmp = temp_dir(&env.base, "push")?;
    let n = args.phones as usize;
    let tar = tmp.path().join("fanout.tar");
    eprintln!(
        "[push] writing a tar of {} files in {} directories ({} of content)…",
        layout.files.len(),
        layout.dirs.len(),
        human(layout.content_bytes())
    );
    let (tar_bytes, layout_back) = {
        let tar = tar.clone();
        blocking(move || {
            let b = write_tar(&tar, &mut layout, tar_seed)?;
            Ok((b, layout))
        })
        .await?
    };
    let files = Arc::new(layout_back.files);
    anyhow::ensure!(
        tar_bytes == std::fs::metadata(&tar)?.len(),
        "the tar file does not have the size written"
    );

    // Baseline: n sequential `tar -x` into fresh directories; each removed outside the timing.
    // The first extraction is checked file by file (the tar is what the phones must hold).
    let tar_s = tar.to_string_lossy().into_owned();
    let mut tar_secs = Vec::with_capacity(n);
    let mut tar_cpu = 0.0;
    sync_disk(SHORT_TIMEOUT).await?;
    for i in 0..n {
        let dir = tmp.path().join(format!("baseline-{i:02}"));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let c0 = cpu_times("self")?;
        let t = Instant::now();
        run_tool(
            tokio::process::Command::new(&args.tar)
                .args(["-x", "-f", &tar_s, "-C"])
                .arg(&dir),
            "tar -x",
            env.step_timeout,
        )
        .await?;
        tar_secs.push(t.elapsed().as_secs_f64());
        tar_cpu += cpu_times("self")?.children - c0.children;
        let (d, f) = (dir.clone(), files.clone());
        blocking(move || {
            if i == 0 {
                check_tree(&d, &f, true)?;
            }
            remove_dir_if_present(&d)
        })
        .await?;
    }
    let tar_total: f64 = tar_secs.iter().sum();
    let baseline_mbps = mb((n as u64 * tar_bytes) as f64) / tar_total;
    eprintln!(
        "[push] baseline: {n} × tar -x of {} in {tar_total:.1} s ({baseline_mbps:.0} MB/s; first extraction hash-checked)",
        human(tar_bytes)
    );

    // The service, one server of 60 phones, the tar uploaded.
    let svc = ServiceProcess::start(
        &env.cph,
        tmp.path().join("data"),
        concurrency,
        env.step_timeout,
        args.transfers_per_host,
    )
    .await?;
    let sampler = RssSampler::start(&svc.pid, RSS_SAMPLE);
    let api = svc.api();
    let t = Instant::now();
    let (server_id, phone_ids) = api.buy_server(&svc.boot).await?;
    eprintln!(
        "[push] server {server_id}: {} phones running after {:.1} s",
        phone_ids.len(),
        t.elapsed().as_secs_f64()
    );
    let targets: Vec<String> = phone_ids[..n].to_vec();
    for id in &targets {
        let root = svc.phone_root(id);
        anyhow::ensure!(
            root.is_dir(),
            "phone {id} has no tree at {} (has the hosting layout changed?)",
            root.display()
        );
    }
    let bucket = bucket_name();
    let home = tmp.path().to_path_buf();
    svc.boto3(&env.python, &home, &["mkbucket", &bucket], SHORT_TIMEOUT)
        .await?;
    svc.boto3(
        &env.python,
        &home,
        &["upload", &bucket, &tar_s, TAR_KEY],
        env.step_timeout,
    )
    .await?;
    let hwm_before = svc.kib("VmHWM")?;
    eprintln!(
        "[push] tar uploaded; service peak RSS so far {:.1} MB",
        mb(hwm_before as f64 * 1024.0)
    );

    // Every tree verified later is renamed aside; the others are deleted.
    let verify_every = n
        .div_ceil(args.verify_phones.min(args.phones) as usize)
        .max(1);
    let verified: HashSet<String> = targets.iter().step_by(verify_every).cloned().collect();
    let aside = tmp.path().join("verify");
    std::fs::create_dir(&aside)?;
    let spool = svc.data.join("spool");
    std::fs::create_dir_all(&spool)?;
    let mut watch = DirWatch::new(&spool)?;

    let body = if n == SERVER_PHONES {
        serde_json::json!({"command": "push", "content": format!("obs://{bucket}/{TAR_KEY}"), "server_ids": [server_id]})
    } else {
        serde_json::json!({"command": "push", "content": format!("obs://{bucket}/{TAR_KEY}"), "phone_ids": targets})
    };
    let push_path = api.path("v1/{project_id}/cloud-phone/phones/commands");
    sync_disk(SHORT_TIMEOUT).await?;
    let peak_reset = svc.reset_peak();
    sampler.take_max_kib();
    let cpu0 = svc.cpu()?;
    let started = Instant::now();
    let accepted = api.call("POST", &push_path, "", Some(&body)).await?;
    let request_id = accepted["request_id"]
        .as_str()
        .context("PushFile answered no request_id")?
        .to_string();
    let jobs = accepted["jobs"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        jobs.len() == n,
        "PushFile made {} jobs for {n} phones: {accepted}",
        jobs.len()
    );
    if let Some(bad) = jobs.iter().find(|j| j["job_id"].as_str().is_none()) {
        anyhow::bail!("PushFile refused a phone: {bad}");
    }

    let deadline = started + env.step_timeout;
    let mut ended: HashMap<String, JobEnd> = HashMap::new();
    let mut failures = Vec::new();
    let mut cleanups = tokio::task::JoinSet::new();
    let mut first_msg = String::new();
    while ended.len() < n {
        watch.drain()?;
        for j in api.jobs_of(&request_id).await? {
            let status = j["status"].as_i64().unwrap_or(0);
            let (Some(job_id), Some(phone)) = (j["job_id"].as_str(), j["phone_id"].as_str()) else {
                continue;
            };
            if !(status == 2 || status == -1) || ended.contains_key(job_id) {
                continue;
            }
            let secs = started.elapsed().as_secs_f64();
            if status == -1 {
                failures.push(j.to_string());
            } else if first_msg.is_empty() {
                first_msg = j["execute_msg"].as_str().unwrap_or_default().to_string();
            }
            let root = svc.phone_root(phone);
            let tree = root.join(TOP_DIR);
            let keep = verified.contains(phone).then(|| aside.join(phone));
            let (f, ok) = (files.clone(), status == 2);
            cleanups.spawn_blocking(move || -> anyhow::Result<()> {
                if ok {
                    check_tree(&root, &f, false)?;
                }
                match keep {
                    Some(to) if ok => std::fs::rename(&tree, &to)
                        .with_context(|| format!("moving {} aside", tree.display())),
                    _ => remove_dir_if_present(&tree),
                }
            });
            ended.insert(
                job_id.to_string(),
                JobEnd {
                    phone_id: phone.to_string(),
                    secs,
                },
            );
        }
        if ended.len() == n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {n} PushFile jobs ended within {:?}",
            ended.len(),
            env.step_timeout
        );
        tokio::time::sleep(POLL).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let service_cpu = svc.cpu()? - cpu0;
    let hwm = svc.kib("VmHWM")?;
    let sampled = sampler.take_max_kib();
    let threads = svc.kib("Threads").unwrap_or(0);
    // What the service keeps once every job has ended (freed heap the allocator holds on to).
    let rss_after = svc.kib("VmRSS")?;
    while let Some(r) = cleanups.join_next().await {
        r.context("a cleanup task panicked")??;
    }
    anyhow::ensure!(
        failures.is_empty(),
        "{} PushFile jobs failed, e.g. {}\nservice log:\n{}",
        failures.len(),
        failures[0],
        svc.log_tail()
    );
    // The spool file is removed when the last job ends; give the event a moment to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    watch.drain()?;
    let fetches = watch.created.len();
    let mut times: Vec<f64> = ended.values().map(|e| e.secs).collect();
    times.sort_by(f64::total_cmp);
    let last_phone = ended
        .values()
        .max_by(|a, b| a.secs.total_cmp(&b.secs))
        .map(|e| e.phone_id.clone())
        .unwrap_or_default();
    eprintln!(
        "[push] {n} jobs succeeded in {wall:.1} s (first ended at {:.1} s, median {:.1} s, last {:.1} s on phone {last_phone}); job output: {first_msg:?}",
        times.first().copied().unwrap_or_default(),
        median(&times),
        times.last().copied().unwrap_or_default()
    );
    eprintln!(
        "[push] spool files created: {fetches} {:?}, removed: {}{}",
        watch.created,
        watch.removed,
        if watch.overflowed {
            " (event queue overflowed)"
        } else {
            ""
        }
    );

    // The trees kept aside, hashed file by file.
    for id in &verified {
        let (root, f) = (aside.join(id), files.clone());
        blocking(move || {
            // The tree was moved from <root>/data/local/tmp/cph-bench: rebuild that prefix.
            let stripped: Vec<TarFile> = f
                .iter()
                .map(|t| TarFile {
                    path: t
                        .path
                        .strip_prefix(&format!("{TOP_DIR}/"))
                        .unwrap_or(&t.path)
                        .to_string(),
                    size: t.size,
                    sha256: t.sha256,
                })
                .collect();
            check_tree(&root, &stripped, true)?;
            remove_dir_if_present(&root)
        })
        .await
        .with_context(|| format!("verifying phone {id}"))?;
    }
    eprintln!(
        "[push] every phone's files present with their sizes; {} phones' files hashed: all match",
        verified.len()
    );
    drop(sampler);
    svc.stop().await?;

    let total = (n as u64 * tar_bytes) as f64;
    let fan_mbps = mb(total) / wall;
    let gib = total / GIB as f64;
    let hwm_mb = mb(hwm as f64 * 1024.0);
    let rows = vec![
        Row {
            name: format!(
                "PushFile {} tar → {n} phones of one server ({concurrency} jobs at a time{}): aggregate unpack",
                human(tar_bytes),
                args.transfers_per_host
                    .map(|t| format!(", {t} transfers per host"))
                    .unwrap_or_default()
            ),
            figure: format!("{fan_mbps:.0} MB/s ({wall:.1} s)"),
            baseline: format!("{n} × tar -x {baseline_mbps:.0} MB/s ({tar_total:.1} s)"),
            ratio: ratio(fan_mbps, baseline_mbps),
            target: "≥ 0.50 of tar -x".into(),
            met: Some(fan_mbps >= 0.5 * baseline_mbps),
        },
        Row {
            name: "service peak RSS during the fan-out".into(),
            figure: format!(
                "{hwm_mb:.1} MB (VmHWM{}; sampled max {:.1} MB, {threads} threads; {:.1} MB once the jobs ended)",
                if peak_reset { "" } else { " since start" },
                mb(sampled as f64 * 1024.0),
                mb(rss_after as f64 * 1024.0)
            ),
            baseline: format!(
                "before the fan-out (start, purchase, upload) {:.1} MB",
                mb(hwm_before as f64 * 1024.0)
            ),
            ratio: "–".into(),
            target: "< 150 MB".into(),
            met: Some(hwm_mb < 150.0),
        },
        Row {
            name: "object fetches for the fan-out (spool files created)".into(),
            figure: format!("{fetches}"),
            baseline: "–".into(),
            ratio: "–".into(),
            target: "1".into(),
            met: Some(fetches == 1 && !watch.overflowed),
        },
        Row {
            name: "CPU per GiB unpacked".into(),
            figure: format!(
                "service {:.2} s ({:.0}% of a core over the fan-out)",
                service_cpu / gib,
                100.0 * service_cpu / wall
            ),
            baseline: format!("tar -x {:.2} s", tar_cpu / gib),
            ratio: ratio(service_cpu, tar_cpu),
            target: "–".into(),
            met: None,
        },
    ];
    let json = serde_json::json!({
        "tar_bytes": tar_bytes,
        "tar_files": files.len(),
        "phones": n,
        "job_concurrency": concurrency,
        "transfers_per_host": args.transfers_per_host,
        "wall_s": wall,
        "aggregate_mbps": fan_mbps,
        "job_end_s": {"first": times.first(), "median": median(&times), "last": times.last()},
        "baseline_tar_x_total_s": tar_total,
        "baseline_mbps": baseline_mbps,
        "ratio_to_baseline": fan_mbps / baseline_mbps,
        "service_peak_rss_mb": hwm_mb,
        "service_peak_rss_whole_life": !peak_reset,
        "service_sampled_max_rss_mb": mb(sampled as f64 * 1024.0),
        "service_peak_rss_before_mb": mb(hwm_before as f64 * 1024.0),
        "service_threads": threads,
        "service_rss_after_mb": mb(rss_after as f64 * 1024.0),
        "spool_files_created": fetches,
        "spool_files_removed": watch.removed,
        "service_cpu_s_per_gib": service_cpu / gib,
        "tar_cpu_s_per_gib": tar_cpu / gib,
        "phones_hash_verified": verified.len(),
    });
    Ok((rows, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_fits_jobs_to_the_budget() {
        let push = |concurrency| {
            Some(PushNeeds {
                tar: 2 * GIB,
                phones: 60,
                verify: 3,
                concurrency,
                transfers: None,
            })
        };
        let p = plan_disk(
            80 * GIB,
            40 * GIB,
            DiskNeeds {
                object: Some(GIB),
                push: push(None),
            },
        )
        .unwrap();
        // 40 GiB / 2 GiB = 20 copies, 7 of them fixed.
        assert_eq!(p.concurrency, 13);
        assert_eq!(p.push_peak, 40 * GIB);
        assert_eq!(p.transfer_peak, 3 * GIB);
        // Free space below the limit wins, less the reserve.
        let p = plan_disk(
            20 * GIB,
            40 * GIB,
            DiskNeeds {
                object: None,
                push: push(None),
            },
        )
        .unwrap();
        assert_eq!((p.budget, p.concurrency), (18 * GIB, 2));
        assert!(matches!(
            plan_disk(
                10 * GIB,
                40 * GIB,
                DiskNeeds {
                    object: None,
                    push: push(None)
                }
            ),
            Err(PlanError::FanOut { .. })
        ));
        assert!(matches!(
            plan_disk(
                80 * GIB,
                40 * GIB,
                DiskNeeds {
                    object: None,
                    push: push(Some(20))
                }
            ),
            Err(PlanError::Concurrency {
                asked: 20,
                fits: 13,
                ..
            })
        ));
        assert!(matches!(
            plan_disk(
                4 * GIB,
                40 * GIB,
                DiskNeeds {
                    object: Some(GIB),
                    push: None
                }
            ),
            Err(PlanError::Transfer { .. })
        ));
        // Fewer phones than fit: one job per phone.
        let few = DiskNeeds {
            object: None,
            push: Some(PushNeeds {
                tar: 256 * MIB,
                phones: 8,
                verify: 3,
                concurrency: None,
                transfers: None,
            }),
        };
        assert_eq!(plan_disk(80 * GIB, 40 * GIB, few).unwrap().concurrency, 8);
        // With the service's transfer slots every job may run: 7 fixed copies and 9 trees.
        let capped = |concurrency| DiskNeeds {
            object: None,
            push: Some(PushNeeds {
                tar: 2 * GIB,
                phones: 60,
                verify: 3,
                concurrency,
                transfers: Some(8),
            }),
        };
        let p = plan_disk(80 * GIB, 40 * GIB, capped(None)).unwrap();
        assert_eq!((p.concurrency, p.push_peak), (60, 32 * GIB));
        assert_eq!(
            plan_disk(80 * GIB, 40 * GIB, capped(Some(60)))
                .unwrap()
                .concurrency,
            60
        );
        // Slots that do not fit the budget leave the plan as without them.
        assert!(matches!(
            plan_disk(30 * GIB, 40 * GIB, capped(Some(60))),
            Err(PlanError::Concurrency { fits: 7, .. })
        ));
    }

    #[test]
    fn the_layout_mixes_small_and_large_files_of_the_requested_size() {
        let l = TarLayout::new(TOP_DIR, 300 * MIB, 7);
        assert_eq!(l.content_bytes(), 300 * MIB);
        let large: Vec<&TarFile> = l
            .files
            .iter()
            .filter(|f| f.path.contains("/large/"))
            .collect();
        let small = l.files.len() - large.len();
        assert_eq!(large.len(), 2);
        assert!(large.iter().all(|f| f.size <= LARGE_FILE_MAX));
        assert!(small > 100, "{small} small files");
        assert!(l.files.iter().all(|f| f.size > 0 && f.path.len() <= 100));
        assert!(l.tar_bytes() > l.content_bytes());
    }

    /// The archive is read back by the stock tar: every file with its content.
    #[test]
    fn stock_tar_extracts_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = TarLayout::new("data/local/tmp/t", 3 * MIB + 77, 11);
        let tar = dir.path().join("t.tar");
        let n = write_tar(&tar, &mut l, 11).unwrap();
        assert_eq!(n, l.tar_bytes());
        assert_eq!(std::fs::metadata(&tar).unwrap().len(), n);
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let st = std::process::Command::new("tar")
            .args(["-x", "-f"])
            .arg(&tar)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        check_tree(&out, &l.files, true).unwrap();
        let listed = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&tar)
            .output()
            .unwrap();
        let names = String::from_utf8(listed.stdout).unwrap();
        assert_eq!(names.lines().count(), l.dirs.len() + l.files.len());
        // A changed byte is noticed.
        let victim = out.join(&l.files[0].path);
        let mut bytes = std::fs::read(&victim).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&victim, bytes).unwrap();
        assert!(check_tree(&out, &l.files, true).is_err());
        assert!(check_tree(&out, &l.files, false).is_ok());
    }

    #[test]
    fn responses_parse_plain_and_chunked() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r), Ok((200, b"{}".to_vec())));
        let r = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Ok((400, b"abcde".to_vec())));
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}";
        assert_eq!(
            parse_response(r),
            Err(HttpError::Truncated { got: 2, want: 9 })
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\n"),
            Err(HttpError::NoHead)
        );
        assert!(matches!(
            parse_response(b"SSH-2.0 x\r\n\r\n"),
            Err(HttpError::StatusLine(_))
        ));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse_response(r), Err(HttpError::Chunked));
    }

    #[test]
    fn inotify_counts_created_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DirWatch::new(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.tar"), b"x").unwrap();
        std::fs::write(dir.path().join("b.tar"), b"y").unwrap();
        std::fs::remove_file(dir.path().join("a.tar")).unwrap();
        w.drain().unwrap();
        assert_eq!(w.created, vec!["a.tar".to_string(), "b.tar".to_string()]);
        assert_eq!(w.removed, 1);
        assert!(!w.overflowed);
    }

    #[test]
    fn bootstrap_needs_every_field() {
        let full = serde_json::json!({
            "api_endpoint": "http://127.0.0.1:8080", "s3_endpoint": "http://127.0.0.1:9000",
            "region": "local-1", "access_key": "AK", "secret_key": "SK", "project_id": "p",
            "default_vpc_id": "v", "default_subnet_id": "s",
        });
        let b = Bootstrap::parse(full.to_string().as_bytes()).unwrap();
        assert_eq!(b.api, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        let mut partial = full.clone();
        partial["secret_key"] = "".into();
        assert!(Bootstrap::parse(partial.to_string().as_bytes()).is_err());
    }
}
