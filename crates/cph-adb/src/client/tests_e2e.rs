//! End-to-end tests: the client against this crate's device endpoint on 127.0.0.1, with a
//! test device whose commands are a few fakes and whose file system is a temporary directory.

use super::tests::{TempDir, key, other_key, test_config};
use super::*;
use crate::{
    AdbPublicKey, Device, ExecIo, ExecRequest, FileStat, Invocation, SyncFileWriter, SyncFs,
};
use futures::future::BoxFuture;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(30);

/// A `SyncFs` rooted in a local directory.
struct DirFs {
    root: PathBuf,
}

impl DirFs {
    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return Err(io::Error::from_raw_os_error(13));
        }
        Ok(self.root.join(rel))
    }
}

fn to_stat(m: &std::fs::Metadata) -> FileStat {
    FileStat {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        nlink: m.nlink() as u32,
        uid: m.uid(),
        gid: m.gid(),
        size: m.size(),
        atime: m.atime(),
        mtime: m.mtime(),
        ctime: m.ctime(),
    }
}

struct DirFileWriter {
    file: std::fs::File,
    tmp: PathBuf,
    path: PathBuf,
}

impl Write for DirFileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl SyncFileWriter for DirFileWriter {
    fn finish(self: Box<Self>, _mtime: i64) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

impl SyncFs for DirFs {
    fn stat(&self, path: &str) -> io::Result<FileStat> {
        Ok(to_stat(&std::fs::metadata(self.resolve(path)?)?))
    }
    fn lstat(&self, path: &str) -> io::Result<FileStat> {
        Ok(to_stat(&std::fs::symlink_metadata(self.resolve(path)?)?))
    }
    fn list(&self, path: &str) -> io::Result<Vec<(String, FileStat)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.resolve(path)?)? {
            let e = e?;
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                to_stat(&e.metadata()?),
            ));
        }
        Ok(out)
    }
    fn open_read(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(self.resolve(path)?)?))
    }
    fn create_file(&self, path: &str, _mode: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        let path = self.resolve(path)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("partial");
        let file = std::fs::File::create(&tmp)?;
        Ok(Box::new(DirFileWriter { file, tmp, path }))
    }
    fn symlink(&self, target: &str, path: &str) -> io::Result<()> {
        std::os::unix::fs::symlink(target, self.resolve(path)?)
    }
}

/// The test device: records every command and understands a few.
struct TestDevice {
    fs: Arc<DirFs>,
    keys: Arc<Vec<AdbPublicKey>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl TestDevice {
    fn new(root: PathBuf) -> Arc<TestDevice> {
        Arc::new(TestDevice {
            fs: Arc::new(DirFs { root }),
            keys: Arc::new(vec![key().public_key()]),
            log: Arc::new(Mutex::new(Vec::new())),
        })
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Reads all of stdin (bounded) and returns it.
async fn read_stdin(io: &mut ExecIo, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = (&mut io.stdin)
        .take(limit as u64)
        .read_to_end(&mut buf)
        .await;
    buf
}

/// Reads exactly `n` bytes of stdin.
async fn read_exact_stdin(io: &mut ExecIo, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    io.stdin.read_exact(&mut buf).await.unwrap();
    buf
}

fn size_arg(words: &[String]) -> Option<usize> {
    let i = words.iter().position(|w| w == "-S")?;
    words.get(i + 1)?.parse().ok()
}

impl Device for TestDevice {
    fn identity(&self) -> crate::DeviceIdentity {
        crate::DeviceIdentity {
            product_name: "testphone".into(),
            model: "Test Phone".into(),
            device: "tp1".into(),
        }
    }

    fn allowed_keys(&self) -> Arc<Vec<AdbPublicKey>> {
        self.keys.clone()
    }

    fn exec(&self, request: ExecRequest, mut io: ExecIo) -> BoxFuture<'static, i32> {
        let log = self.log.clone();
        let root = self.fs.root.clone();
        Box::pin(async move {
            let words: Vec<String> = match &request.invocation {
                Invocation::Command(line) => {
                    log.lock().unwrap().push(line.clone());
                    // A rough split is enough for the fake commands below.
                    line.split(' ')
                        .map(|w| w.trim_matches('\'').to_string())
                        .collect()
                }
                Invocation::Cmd(args) => {
                    log.lock().unwrap().push(format!("abb:{}", args.join(" ")));
                    let mut w = vec!["cmd".to_string()];
                    w.extend(args.iter().cloned());
                    w
                }
            };
            let w: Vec<&str> = words.iter().map(String::as_str).collect();
            match w.as_slice() {
                ["streams"] => {
                    io.stdout.write_all(b"to stdout\n").await.unwrap();
                    io.stderr.write_all(b"to stderr\n").await.unwrap();
                    io.stdout.flush().await.unwrap();
                    io.stderr.flush().await.unwrap();
                    3
                }
                ["cat"] => {
                    let data = read_stdin(&mut io, 16 << 20).await;
                    io.stdout.write_all(&data).await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["big", n] => {
                    let n: usize = n.parse().unwrap();
                    io.stdout.write_all(&vec![b'y'; n]).await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["cmd", "package", "install", ..] => {
                    let n = size_arg(&words).unwrap_or(0);
                    let apk = read_exact_stdin(&mut io, n).await;
                    let reply: &[u8] = if apk.starts_with(b"PK") {
                        b"Success\n"
                    } else {
                        b"Failure [INSTALL_FAILED_INVALID_APK]\n"
                    };
                    io.stdout.write_all(reply).await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["pm", "install", .., path] => {
                    let local = root.join(path.trim_start_matches('/'));
                    let ok = std::fs::read(local).is_ok_and(|b| b.starts_with(b"PK"));
                    let reply: &[u8] = if ok {
                        b"Success\n"
                    } else {
                        b"Failure [INSTALL_FAILED_INVALID_APK]\n"
                    };
                    io.stdout.write_all(reply).await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["cmd", "package", "install-create", ..] => {
                    io.stdout
                        .write_all(b"Success: created install session [42]\n")
                        .await
                        .unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["cmd", "package", "install-write", "-S", n, "42", _name, "-"] => {
                    let apk = read_exact_stdin(&mut io, n.parse().unwrap()).await;
                    let reply = if apk.starts_with(b"PK") {
                        format!("Success: streamed {} bytes\n", apk.len())
                    } else {
                        "Failure [INSTALL_FAILED_INVALID_APK]\n".to_string()
                    };
                    io.stdout.write_all(reply.as_bytes()).await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["cmd", "package", "install-commit" | "install-abandon", "42"] => {
                    io.stdout.write_all(b"Success\n").await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                ["mkdir", "-p", path] => {
                    std::fs::create_dir_all(root.join(path.trim_start_matches('/'))).unwrap();
                    0
                }
                ["rm", "-f", path] => {
                    let _ = std::fs::remove_file(root.join(path.trim_start_matches('/')));
                    0
                }
                ["cmd", "package", "uninstall", .., pkg] | ["pm", "uninstall", .., pkg] => {
                    let reply: &[u8] = if *pkg == "com.example" {
                        b"Success\n"
                    } else {
                        b"Failure [DELETE_FAILED_INTERNAL_ERROR]\n"
                    };
                    io.stdout.write_all(reply).await.unwrap();
                    io.stdout.flush().await.unwrap();
                    0
                }
                _ => {
                    io.stderr.write_all(b"sh: not found\n").await.unwrap();
                    io.stderr.flush().await.unwrap();
                    127
                }
            }
        })
    }

    fn fs(&self) -> Arc<dyn SyncFs> {
        self.fs.clone()
    }

    fn reboot(&self, target: &str) -> BoxFuture<'static, ()> {
        self.log.lock().unwrap().push(format!("reboot:{target}"));
        Box::pin(async {})
    }
}

/// A device endpoint on 127.0.0.1 serving a [`TestDevice`] over a temporary directory.
struct Running {
    addr: std::net::SocketAddr,
    device: Arc<TestDevice>,
    dir: TempDir,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Running {
    let dir = TempDir::new("e2e");
    std::fs::create_dir_all(dir.path().join("fs")).unwrap();
    let device = TestDevice::new(dir.path().join("fs"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::device::serve(
        listener,
        device.clone(),
        crate::device::EndpointConfig::default(),
        shutdown.clone(),
    ));
    Running {
        addr,
        device,
        dir,
        shutdown,
    }
}

impl Running {
    async fn client(&self) -> AdbClient {
        timeout(T, AdbClient::connect(self.addr, key(), test_config()))
            .await
            .unwrap()
            .unwrap()
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

#[tokio::test]
async fn e2e_authenticates_and_describes_the_device() {
    let dev = start().await;
    let client = dev.client().await;
    assert_eq!(client.state(), "device");
    assert_eq!(client.identity().product_name, "testphone");
    assert_eq!(client.identity().model, "Test Phone");
    assert_eq!(client.identity().device, "tp1");
    for f in [
        "shell_v2",
        "cmd",
        "stat_v2",
        "ls_v2",
        "sendrecv_v2",
        "abb_exec",
    ] {
        assert!(client.has_feature(f), "{f} in {:?}", client.features());
    }
    assert_eq!(client.max_payload(), crate::packet::MAX_PAYLOAD as usize);

    // A key the device does not know: refused quickly, without looping.
    let config = ClientConfig {
        auth_timeout: Duration::from_millis(800),
        ..test_config()
    };
    let started = tokio::time::Instant::now();
    let refused = AdbClient::connect(dev.addr, other_key(), config).await;
    assert!(
        matches!(refused, Err(ClientError::Unauthorized)),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // Nothing listening.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let result = AdbClient::connect(addr, key(), test_config()).await;
    assert!(
        matches!(result, Err(ClientError::Connect { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn e2e_shell_v2_separates_streams_and_reports_exit_codes() {
    let dev = start().await;
    let client = dev.client().await;
    let out = timeout(T, client.shell("streams")).await.unwrap().unwrap();
    assert_eq!(out.stdout, b"to stdout\n");
    assert_eq!(out.stderr, b"to stderr\n");
    assert_eq!(out.exit_code, Some(3));
    assert!(!out.truncated);

    let out = client.shell("no-such-command").await.unwrap();
    assert_eq!(out.exit_code, Some(127));
    assert_eq!(out.stderr, b"sh: not found\n");

    let input = random_bytes(300_000);
    let out = timeout(T, client.shell_with_stdin("cat", &input[..]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert!(
        out.stdout == input,
        "cat returned {} bytes",
        out.stdout.len()
    );

    // Several commands at once on one connection.
    let runs = (0..8).map(|_| client.shell("streams"));
    for out in futures::future::join_all(runs).await {
        assert_eq!(out.unwrap().exit_code, Some(3));
    }

    // Output over the cap is truncated but the exit code still arrives.
    let small = ClientConfig {
        max_output: 1000,
        ..test_config()
    };
    let capped = AdbClient::connect(dev.addr, key(), small).await.unwrap();
    let out = capped.shell("big 5000").await.unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(out.exit_code, Some(0));
    let result = capped.exec::<tokio::io::Empty>("big 5000", None).await;
    assert!(
        matches!(result, Err(ClientError::OutputTooLarge(1000))),
        "{result:?}"
    );
    let mut sink = Vec::new();
    let n = capped
        .exec_to::<tokio::io::Empty, _>("big 3000000", None, &mut sink)
        .await
        .unwrap();
    assert_eq!(n, 3_000_000);
    assert_eq!(sink.len(), 3_000_000);
}

#[tokio::test]
async fn e2e_push_and_pull_5_mib_byte_identical() {
    let dev = start().await;
    let client = dev.client().await;
    let local = dev.dir.path().join("local.bin");
    let content = random_bytes(5 * 1024 * 1024);
    std::fs::write(&local, &content).unwrap();

    // With the v2 requests the device announces, then with the original ones.
    let v1 = client.clone().with_features_for_test(&["shell_v2", "cmd"]);
    for (client, dir) in [(&client, "v2"), (&v1, "v1")] {
        let remote = format!("/sdcard/{dir}/file.bin");
        assert_eq!(client.stat(&remote).await.unwrap(), None);
        let sent = timeout(T, client.push_file(&local, &remote))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sent, content.len() as u64);
        let on_device = dev.dir.path().join(format!("fs/sdcard/{dir}/file.bin"));
        assert!(std::fs::read(&on_device).unwrap() == content);

        let st = client.stat(&remote).await.unwrap().unwrap();
        assert_eq!(st.size, content.len() as u64);
        assert_eq!(st.mode & 0o170000, 0o100000);
        let entries = client.list(&format!("/sdcard/{dir}")).await.unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].name, "file.bin");
        assert_eq!(entries[0].stat.size, content.len() as u64);

        let back = dev.dir.path().join(format!("back-{dir}.bin"));
        let got = timeout(T, client.pull_file(&remote, &back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, content.len() as u64);
        assert!(std::fs::read(&back).unwrap() == content);

        let missing = dev.dir.path().join("missing.bin");
        let result = client.pull_file("/sdcard/none", &missing).await;
        assert!(matches!(result, Err(ClientError::Sync(_))), "{result:?}");
        assert!(!missing.exists());
    }
    // Without `fixed_push_mkdir` the parent directory is created first.
    assert_eq!(dev.device.log(), ["mkdir -p /sdcard/v1"]);
}

#[tokio::test]
async fn e2e_install_uses_abb_exec_cmd_or_push() {
    let dev = start().await;
    let client = dev.client().await;
    let apk = dev.dir.path().join("app.apk");
    let mut content = b"PK\x03\x04".to_vec();
    content.extend(random_bytes(200_000));
    std::fs::write(&apk, &content).unwrap();
    let bad = dev.dir.path().join("bad.apk");
    std::fs::write(&bad, b"not a zip").unwrap();
    let size = content.len();

    assert_eq!(client.install(&apk, &["-r"]).await.unwrap(), "Success");
    let result = client.install(&bad, &[]).await;
    assert!(
        matches!(&result, Err(ClientError::Command(r)) if r.starts_with("Failure [INSTALL_FAILED")),
        "{result:?}"
    );
    let cmd_only = client.clone().with_features_for_test(&["shell_v2", "cmd"]);
    assert_eq!(cmd_only.install(&apk, &[]).await.unwrap(), "Success");
    let no_cmd = client.clone().with_features_for_test(&[
        "shell_v2",
        "stat_v2",
        "ls_v2",
        "fixed_push_mkdir",
    ]);
    assert_eq!(no_cmd.install(&apk, &["-r"]).await.unwrap(), "Success");
    let result = no_cmd.install(&bad, &[]).await;
    assert!(matches!(result, Err(ClientError::Command(_))), "{result:?}");
    // The pushed copies were removed.
    assert!(!dev.dir.path().join("fs/data/local/tmp/app.apk").exists());
    assert!(!dev.dir.path().join("fs/data/local/tmp/bad.apk").exists());

    let log = dev.device.log();
    let expected = [
        format!("abb:package install -r -S {size}"),
        "abb:package install -S 9".to_string(),
        format!("cmd package install -S {size}"),
        "pm install -r /data/local/tmp/app.apk".to_string(),
        "rm -f /data/local/tmp/app.apk".to_string(),
        "pm install /data/local/tmp/bad.apk".to_string(),
        "rm -f /data/local/tmp/bad.apk".to_string(),
    ];
    assert_eq!(log, expected);
}

#[tokio::test]
async fn e2e_install_multiple_uninstall_root_reboot() {
    let dev = start().await;
    let client = dev
        .client()
        .await
        .with_features_for_test(&["shell_v2", "cmd"]);
    let base = dev.dir.path().join("base.apk");
    let split = dev.dir.path().join("split.apk");
    std::fs::write(&base, b"PK base").unwrap();
    std::fs::write(&split, b"PK split!").unwrap();
    let reply = client
        .install_multiple(&[&base, &split], &["-r"])
        .await
        .unwrap();
    assert_eq!(reply, "Success");
    let bad = dev.dir.path().join("bad.apk");
    std::fs::write(&bad, b"nope").unwrap();
    let result = client.install_multiple(&[&base, &bad], &[]).await;
    assert!(matches!(result, Err(ClientError::Command(_))), "{result:?}");
    assert_eq!(
        dev.device.log(),
        [
            "cmd package install-create -r -S 16",
            "cmd package install-write -S 7 42 0_base.apk -",
            "cmd package install-write -S 9 42 1_split.apk -",
            "cmd package install-commit 42",
            "cmd package install-create -S 11",
            "cmd package install-write -S 7 42 0_base.apk -",
            "cmd package install-write -S 4 42 1_bad.apk -",
            "cmd package install-abandon 42",
        ]
    );

    assert_eq!(
        client.uninstall("com.example", false).await.unwrap(),
        "Success"
    );
    let result = client.uninstall("com.other app", true).await;
    assert!(matches!(result, Err(ClientError::Command(_))), "{result:?}");
    let log = dev.device.log();
    assert_eq!(log[log.len() - 2], "cmd package uninstall com.example");
    assert_eq!(
        log[log.len() - 1],
        "cmd package uninstall -k 'com.other app'"
    );

    assert_eq!(
        client.root().await.unwrap(),
        crate::device::ROOT_REPLY.trim_end()
    );
    timeout(T, client.reboot("")).await.unwrap().unwrap();
    assert_eq!(dev.device.log().last().unwrap(), "reboot:");
}
