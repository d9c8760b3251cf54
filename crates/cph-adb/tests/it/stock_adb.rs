//! Interoperability with the stock `adb` client (Debian's adb 29.0.6 at /usr/bin/adb).
//!
//! Each test runs its own adb server (own `HOME`, own server port, killed at the end) and a
//! device endpoint on 127.0.0.1 outside the ports the server probes by itself.

use crate::support::{TempDir, TestDevice, host_key, listener, other_key};
use cph_adb::device::{self, Endpoint, EndpointConfig};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

const ADB: &str = "/usr/bin/adb";

fn adb_available() -> bool {
    if Path::new(ADB).exists() {
        true
    } else {
        eprintln!("SKIPPED: {ADB} is not installed (apt-get install adb)");
        false
    }
}

/// A private adb server: its own home (and so its own `~/.android/adbkey`), port and
/// vendor key.
pub struct AdbServer {
    home: TempDir,
    port: u16,
    vendor_key: PathBuf,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl AdbServer {
    pub fn new(vendor_key_pem: &str) -> AdbServer {
        let home = TempDir::new("adbhome");
        let vendor_key = home.path().join("vendor.adb_key");
        std::fs::write(&vendor_key, vendor_key_pem).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        AdbServer {
            home,
            port,
            vendor_key,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(ADB);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home.path())
            .env("TMPDIR", self.home.path())
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .env("ADB_VENDOR_KEYS", &self.vendor_key)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Runs `adb <args>` with `stdin` piped in (or no stdin), with a timeout.
    pub async fn run_with_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        let mut c = self.command(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c.spawn().unwrap();
        if let Some(data) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(data).await.unwrap();
            drop(w);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("adb {args:?} timed out"))
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> Out {
        self.run_with_input(args, None).await
    }
}

impl Drop for AdbServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(ADB)
            .arg("kill-server")
            .env("HOME", self.home.path())
            .env("TMPDIR", self.home.path())
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Waits until `adb devices` lists `serial` in `state`.
async fn wait_state(adb: &AdbServer, serial: &str, state: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        let out = adb.run(&["devices", "-l"]).await;
        if out
            .stdout
            .lines()
            .any(|l| l.starts_with(serial) && l.split_whitespace().nth(1) == Some(state))
        {
            return out.stdout;
        }
        last = out.stdout;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{serial} never became {state}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_adb_end_to_end() {
    if !adb_available() {
        return;
    }
    let root = TempDir::new("stockroot");
    let device = TestDevice::new(root.path(), vec![host_key().public_key()]);
    let l = listener().await;
    let serial = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(device::serve(
        l,
        device.clone(),
        EndpointConfig::default(),
        shutdown.clone(),
    ));
    let adb = AdbServer::new(&host_key().to_pem().unwrap());

    let out = adb.run(&["connect", &serial]).await;
    assert!(
        out.stdout.contains("connected to"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let devices = wait_state(&adb, &serial, "device").await;
    assert!(
        devices.contains("product:cphprod model:CphModel device:cphdev"),
        "{devices}"
    );
    let s = ["-s", serial.as_str()];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = s.to_vec();
        v.extend_from_slice(extra);
        v
    };

    // Shell protocol: separate streams and the exit code.
    let out = adb
        .run(&with(&["shell", "echo out; echo err >&2; exit 3"]))
        .await;
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert_eq!(out.code, 3);

    // Piped stdin.
    let out = adb
        .run_with_input(&with(&["shell", "cat"]), Some(b"hello from stdin\n"))
        .await;
    assert_eq!(out.stdout, "hello from stdin\n");
    assert_eq!(out.code, 0);

    // Push and pull a 1 MiB random file; push creates missing parent directories.
    let local = TempDir::new("stocklocal");
    let data = random_bytes(1024 * 1024, 1);
    let src = local.path().join("random.bin");
    std::fs::write(&src, &data).unwrap();
    let out = adb
        .run(&[
            "-s",
            &serial,
            "push",
            src.to_str().unwrap(),
            "/sdcard/new/dir/random.bin",
        ])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        std::fs::read(root.path().join("sdcard/new/dir/random.bin")).unwrap(),
        data
    );
    let dst = local.path().join("back.bin");
    let out = adb
        .run(&[
            "-s",
            &serial,
            "pull",
            "/sdcard/new/dir/random.bin",
            dst.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    // Pulling a missing file fails cleanly.
    let out = adb
        .run(&[
            "-s",
            &serial,
            "pull",
            "/sdcard/missing",
            local.path().join("m").to_str().unwrap(),
        ])
        .await;
    assert_ne!(out.code, 0);

    // ls
    let out = adb.run(&with(&["ls", "/sdcard/new/dir"])).await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("random.bin"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("{:08x}", 1024 * 1024)),
        "{}",
        out.stdout
    );

    // Streamed install (abb_exec with adb 29): exactly the APK's bytes reach the device.
    let apk = local.path().join("app.apk");
    let apk_data = random_bytes(123_457, 2);
    std::fs::write(&apk, &apk_data).unwrap();
    let out = adb
        .run(&["-s", &serial, "install", apk.to_str().unwrap()])
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Success"), "{}", out.stdout);
    assert!(
        device
            .installs
            .lock()
            .unwrap()
            .contains(&(123_457, 123_457))
    );

    // The same through `exec:cmd package install -S N`: the client closes the stream right
    // after its last byte, and every byte still reaches the command before end-of-file.
    let out = adb
        .run_with_input(
            &with(&["exec-in", "cmd package install -S 200000"]),
            Some(&random_bytes(200_000, 3)),
        )
        .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let mut seen = false;
    for _ in 0..50 {
        if device
            .installs
            .lock()
            .unwrap()
            .contains(&(200_000, 200_000))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "{:?}", device.installs.lock().unwrap());

    // root / remount replies are harmless.
    let out = adb.run(&with(&["root"])).await;
    assert!(
        out.stdout.contains("already running as root"),
        "{}",
        out.stdout
    );

    // Reboot reaches the device.
    let out = adb.run(&with(&["reboot"])).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let mut rebooted = false;
    for _ in 0..50 {
        if device.reboots.lock().unwrap().as_slice() == [String::new()] {
            rebooted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rebooted);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_adb_with_unknown_key_is_unauthorized_without_reconnecting() {
    if !adb_available() {
        return;
    }
    let root = TempDir::new("stockroot2");
    // The device allows only a key the adb server does not have.
    let device = TestDevice::new(root.path(), vec![other_key().public_key()]);
    let l = listener().await;
    let serial = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let endpoint = Endpoint::new(device, EndpointConfig::default());
    let accepted = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let acc = accepted.clone();
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                r = l.accept() => {
                    let (sock, addr) = r.unwrap();
                    acc.fetch_add(1, Ordering::SeqCst);
                    let ep = endpoint.clone();
                    let t = token.clone();
                    conns.spawn(async move { ep.serve_connection(sock, Some(addr.ip()), t).await });
                }
            }
        }
        while conns.join_next().await.is_some() {}
    });
    let adb = AdbServer::new(&host_key().to_pem().unwrap());
    let out = adb.run(&["connect", &serial]).await;
    assert!(
        !out.stdout.contains("connected to") || out.stdout.contains("failed to authenticate"),
        "{}",
        out.stdout
    );
    wait_state(&adb, &serial, "unauthorized").await;
    let out = adb.run(&["-s", &serial, "shell", "echo hi"]).await;
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("unauthorized"), "{}", out.stderr);
    tokio::time::sleep(Duration::from_secs(3)).await;
    wait_state(&adb, &serial, "unauthorized").await;
    let n = accepted.load(Ordering::SeqCst);
    assert!(n <= 2, "the adb server reconnected {n} times");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

/// `adb push`/`adb pull` throughput against `cp` on the same disk. Run with
/// `cargo test --release -p cph-adb --test it throughput -- --ignored --nocapture`;
/// `CPH_ADB_BENCH_MIB` sets the file size (default 1024).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: moves a large file several times"]
async fn stock_adb_push_pull_throughput() {
    if !adb_available() {
        return;
    }
    let mib: usize = std::env::var("CPH_ADB_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let root = TempDir::new("benchroot");
    let local = TempDir::new("benchlocal");
    let src = local.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&src).unwrap();
        let block = random_bytes(1024 * 1024, 9);
        for _ in 0..mib {
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    }
    let t = std::time::Instant::now();
    let st = std::process::Command::new("cp")
        .arg(&src)
        .arg(local.path().join("copy.bin"))
        .status()
        .unwrap();
    assert!(st.success());
    let cp = t.elapsed();
    std::fs::remove_file(local.path().join("copy.bin")).unwrap();

    let device = TestDevice::new(root.path(), vec![host_key().public_key()]);
    let l = listener().await;
    let serial = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(device::serve(
        l,
        device,
        EndpointConfig::default(),
        shutdown.clone(),
    ));
    let adb = AdbServer::new(&host_key().to_pem().unwrap());
    adb.run(&["connect", &serial]).await;
    wait_state(&adb, &serial, "device").await;

    let t = std::time::Instant::now();
    let out = adb
        .run(&["-s", &serial, "push", src.to_str().unwrap(), "/big.bin"])
        .await;
    let push = t.elapsed();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let back = local.path().join("back.bin");
    let t = std::time::Instant::now();
    let out = adb
        .run(&["-s", &serial, "pull", "/big.bin", back.to_str().unwrap()])
        .await;
    let pull = t.elapsed();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        std::fs::metadata(&back).unwrap().len(),
        (mib * 1024 * 1024) as u64
    );
    let rate = |d: Duration| mib as f64 / d.as_secs_f64();
    eprintln!(
        "{mib} MiB: cp {:.0} MiB/s, push {:.0} MiB/s ({:.0}%), pull {:.0} MiB/s ({:.0}%)",
        rate(cp),
        rate(push),
        100.0 * rate(push) / rate(cp),
        rate(pull),
        100.0 * rate(pull) / rate(cp)
    );
    shutdown.cancel();
    let _ = server.await;
}
