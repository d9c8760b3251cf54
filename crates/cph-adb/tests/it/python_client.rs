//! Interoperability with the Python client `adb-shell`, the strict one: it speaks protocol
//! version 0x01000000 (so it checks every checksum) and waits for the CLSE echo.
//!
//! The interpreter comes from `CPH_TEST_PYTHON` (it must have `adb-shell` installed); without
//! it, `/tmp/adbvenv/bin/python` is used if present, otherwise the test is skipped.

use crate::support::{TempDir, TestDevice, host_key, listener};
use cph_adb::device::{self, EndpointConfig};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SCRIPT: &str = r#"
import json, os, sys
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.sign_cryptography import CryptographySigner

host, port, keypath, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
dev = AdbDeviceTcp(host, port, default_transport_timeout_s=10.0)
assert dev.connect(rsa_keys=[CryptographySigner(keypath)], auth_timeout_s=10.0)
res = {}
res["shell"] = dev.shell("echo hello; echo err >&2")
data = os.urandom(300000)
up = os.path.join(workdir, "up.bin")
with open(up, "wb") as f:
    f.write(data)
dev.push(up, "/data/local/tmp/up.bin")
down = os.path.join(workdir, "down.bin")
dev.pull("/data/local/tmp/up.bin", down)
with open(down, "rb") as f:
    res["pull_equal"] = f.read() == data
mode, size, mtime = dev.stat("/data/local/tmp/up.bin")
res["stat"] = [mode, size]
res["missing_stat"] = list(dev.stat("/data/local/tmp/missing"))
res["list"] = sorted(e.filename.decode() for e in dev.list("/data/local/tmp"))
res["exec"] = dev.exec_out("echo exec-out")
dev.close()
print(json.dumps(res))
"#;

/// The interpreter to use, or `None` (skip) with the reason printed.
fn interpreter() -> Option<(PathBuf, bool)> {
    if let Some(p) = std::env::var_os("CPH_TEST_PYTHON") {
        return Some((PathBuf::from(p), true));
    }
    let venv = PathBuf::from("/tmp/adbvenv/bin/python");
    if venv.exists() {
        return Some((venv, false));
    }
    eprintln!(
        "SKIPPED: set CPH_TEST_PYTHON to a Python with adb-shell installed \
         (python3 -m venv /tmp/adbvenv && /tmp/adbvenv/bin/pip install adb-shell)"
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adb_shell_python_client() {
    let Some((python, required)) = interpreter() else {
        return;
    };
    let probe = std::process::Command::new(&python)
        .args(["-c", "import adb_shell, cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            !required,
            "CPH_TEST_PYTHON={} cannot import adb_shell and cryptography",
            python.display()
        );
        eprintln!("SKIPPED: {} lacks adb_shell", python.display());
        return;
    }

    let root = TempDir::new("pyroot");
    std::fs::create_dir_all(root.path().join("data/local/tmp")).unwrap();
    let work = TempDir::new("pywork");
    let key = work.path().join("adbkey");
    std::fs::write(&key, host_key().to_pem().unwrap()).unwrap();
    std::fs::write(
        work.path().join("adbkey.pub"),
        host_key().public_key().to_line("test@cph").unwrap(),
    )
    .unwrap();
    let script = work.path().join("client.py");
    std::fs::write(&script, SCRIPT).unwrap();

    let device = TestDevice::new(root.path(), vec![host_key().public_key()]);
    let l = listener().await;
    let port = l.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(device::serve(
        l,
        device,
        EndpointConfig::default(),
        shutdown.clone(),
    ));

    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(&key)
            .arg(work.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python client timed out")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // `shell:` without the shell protocol merges stderr into stdout.
    assert_eq!(v["shell"], "hello\nerr\n");
    assert_eq!(v["pull_equal"], true);
    assert_eq!(v["stat"][0].as_u64().unwrap() & 0o170000, 0o100000);
    assert_eq!(v["stat"][1], 300_000);
    assert_eq!(v["missing_stat"], serde_json::json!([0, 0, 0]));
    assert_eq!(v["list"], serde_json::json!(["up.bin"]));
    assert_eq!(v["exec"], "exec-out\n");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}
