//! Real clients against the endpoint: boto3 (SigV4 and SigV2, path and virtual-hosted style), Huawei's
//! esdk-obs-python (signature `v2` and `v4`, path style) and raw HTTP, driven by `clients.py`.
//!
//! The interpreter is `CPH_TEST_PYTHON` when it has boto3 and the OBS SDK; otherwise a
//! virtualenv in `/tmp/s3venv` with the pinned packages below is created once.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::{self, AK1, AK2, REGION, SK1, SK2};

/// The client versions the suite was written against (also in requirements-test.txt).
const PACKAGES: &[&str] = &[
    "boto3==1.44.8",
    "esdk-obs-python==3.26.6",
    "requests==2.34.2",
];
const VENV: &str = "/tmp/s3venv";
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

fn has_clients(python: &Path) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import boto3, obs, requests"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("CPH_TEST_PYTHON").map(PathBuf::from) {
            if has_clients(&p) {
                return p;
            }
            eprintln!("{} lacks boto3 or the OBS SDK; using {VENV}", p.display());
        }
        let python = Path::new(VENV).join("bin/python");
        // One test process at a time installs; the others wait on the lock and reuse it.
        let lock =
            std::fs::File::create(format!("{VENV}.lock")).expect("cannot create the venv lock");
        lock.lock().expect("cannot lock the venv lock");
        if !has_clients(&python) {
            let _ = std::fs::remove_dir_all(VENV);
            let run = |cmd: &mut std::process::Command| {
                let status = cmd.status().expect("cannot run python3");
                assert!(status.success(), "{cmd:?} failed");
            };
            run(std::process::Command::new("python3").args(["-m", "venv", VENV]));
            run(std::process::Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(PACKAGES));
        }
        drop(lock);
        assert!(has_clients(&python), "{VENV} has no working clients");
        python
    })
}

async fn run_suite(suite: &str) {
    let ep = harness::start(|c| {
        if suite == "virtual" {
            c.virtual_host_domain = Some("localhost".into());
        }
    })
    .await;
    let url = if suite == "virtual" {
        format!("http://localhost:{}", ep.addr.port())
    } else {
        ep.url()
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/clients.py");
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let child = tokio::process::Command::new(python)
        .arg(&script)
        .arg(suite)
        .env("S3_ENDPOINT", url)
        .env("S3_REGION", REGION)
        .env("S3_AK1", AK1)
        .env("S3_SK1", SK1)
        .env("S3_AK2", AK2)
        .env("S3_SK2", SK2)
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SUITE_TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("suite {suite} timed out"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "suite {suite} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    print!("{stdout}");
    ep.shutdown.cancel();
    ep.server.await.unwrap().unwrap();
    // Every temporary file of the run was published or removed.
    let tmp: Vec<_> = std::fs::read_dir(ep.store.root().join(".tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_sigv4_and_sigv2_path_style() {
    run_suite("boto3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_sdk_signature_v2() {
    run_suite("obs-v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_sdk_signature_v4() {
    run_suite("obs-v4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_virtual_hosted_style() {
    run_suite("virtual").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http_probe_and_unsigned_requests() {
    run_suite("raw").await;
}
