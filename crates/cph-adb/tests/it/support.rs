//! Test doubles: a device that runs commands with the host's `sh` inside a temporary directory
//! and serves that directory through `sync:`, keys, and a minimal raw ADB client.

use bytes::Bytes;
use cph_adb::packet::{self, Packet};
use cph_adb::{
    AdbPrivateKey, AdbPublicKey, Device, DeviceIdentity, ExecIo, ExecRequest, FileStat, Invocation,
    SyncFileWriter, SyncFs,
};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "cph-adb-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One generated key pair per test process (key generation is slow in debug builds).
pub fn host_key() -> &'static AdbPrivateKey {
    static K: OnceLock<AdbPrivateKey> = OnceLock::new();
    K.get_or_init(|| AdbPrivateKey::generate().unwrap())
}

/// A second key that devices in the tests never allow.
pub fn other_key() -> &'static AdbPrivateKey {
    static K: OnceLock<AdbPrivateKey> = OnceLock::new();
    K.get_or_init(|| AdbPrivateKey::generate().unwrap())
}

/// A [`SyncFs`] over a host directory: device path `/a/b` is `<root>/a/b`.
pub struct DirFs {
    pub root: PathBuf,
}

impl DirFs {
    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        let mut out = self.root.clone();
        for c in Path::new(path).components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::RootDir | Component::CurDir => {}
                _ => return Err(io::Error::from(io::ErrorKind::PermissionDenied)),
            }
        }
        Ok(out)
    }
}

pub fn file_stat(m: &std::fs::Metadata) -> FileStat {
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

struct DirFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<std::fs::File>,
}

impl Write for DirFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SyncFileWriter for DirFile {
    fn finish(mut self: Box<Self>, mtime: i64) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            let t = std::time::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64);
            f.set_modified(t)?;
        }
        std::fs::rename(&self.tmp, &self.dest)
    }
}

impl Drop for DirFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl SyncFs for DirFs {
    fn stat(&self, path: &str) -> io::Result<FileStat> {
        Ok(file_stat(&std::fs::metadata(self.resolve(path)?)?))
    }
    fn lstat(&self, path: &str) -> io::Result<FileStat> {
        Ok(file_stat(&std::fs::symlink_metadata(self.resolve(path)?)?))
    }
    fn list(&self, path: &str) -> io::Result<Vec<(String, FileStat)>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(self.resolve(path)?)? {
            let e = e?;
            if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                v.push((e.file_name().to_string_lossy().into_owned(), file_stat(&m)));
            }
        }
        Ok(v)
    }
    fn open_read(&self, path: &str) -> io::Result<Box<dyn io::Read + Send>> {
        let p = self.resolve(path)?;
        if p.is_dir() {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        Ok(Box::new(std::fs::File::open(p)?))
    }
    fn create_file(&self, path: &str, mode: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        use std::os::unix::fs::OpenOptionsExt;
        let dest = self.resolve(path)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let tmp = dest.with_file_name(format!(
            ".{}.tmp{}",
            dest.file_name().unwrap_or_default().to_string_lossy(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .open(&tmp)?;
        Ok(Box::new(DirFile {
            tmp,
            dest,
            file: Some(file),
        }))
    }
    fn symlink(&self, target: &str, path: &str) -> io::Result<()> {
        let p = self.resolve(path)?;
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(target, p)
    }
}

/// A device whose commands run as `sh -c <line>` in its root directory, except the package
/// manager's streamed install, which it emulates (reading exactly `-S` bytes from stdin).
pub struct TestDevice {
    pub keys: Mutex<Arc<Vec<AdbPublicKey>>>,
    pub root: PathBuf,
    pub reboots: Mutex<Vec<String>>,
    /// Bytes received by each streamed install, with the size announced by `-S`.
    pub installs: Arc<Mutex<Vec<(u64, u64)>>>,
    pub requests: Mutex<Vec<ExecRequest>>,
    /// Ports listening inside the device (`tcp:`): each connection's device end is sent to the
    /// port's channel.
    pub ports: Mutex<HashMap<u16, tokio::sync::mpsc::Sender<tokio::io::DuplexStream>>>,
}

impl TestDevice {
    pub fn new(root: &Path, keys: Vec<AdbPublicKey>) -> Arc<TestDevice> {
        Arc::new(TestDevice {
            keys: Mutex::new(Arc::new(keys)),
            root: root.to_path_buf(),
            reboots: Mutex::new(Vec::new()),
            installs: Arc::new(Mutex::new(Vec::new())),
            requests: Mutex::new(Vec::new()),
            ports: Mutex::new(HashMap::new()),
        })
    }

    /// Listens on the device's `port`; connections arrive on the returned channel.
    pub fn listen(&self, port: u16) -> tokio::sync::mpsc::Receiver<tokio::io::DuplexStream> {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        self.ports.lock().unwrap().insert(port, tx);
        rx
    }
}

fn install_size(args: &[String]) -> Option<u64> {
    let i = args.iter().position(|a| a == "-S")?;
    args.get(i + 1)?.parse().ok()
}

async fn streamed_install(
    installs: Arc<Mutex<Vec<(u64, u64)>>>,
    announced: u64,
    mut io: ExecIo,
) -> i32 {
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while got < announced {
        let want = (announced - got).min(buf.len() as u64) as usize;
        match io.stdin.read(&mut buf[..want]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    installs.lock().unwrap().push((announced, got));
    if got == announced {
        let _ = io.stdout.write_all(b"Success\n").await;
        0
    } else {
        let _ = io
            .stdout
            .write_all(b"Failure [INSTALL_FAILED_INVALID_APK]\n")
            .await;
        1
    }
}

async fn run_sh(root: PathBuf, line: String, io: ExecIo) -> i32 {
    let ExecIo {
        mut stdin,
        mut stdout,
        mut stderr,
    } = io;
    let mut cmd = tokio::process::Command::new("sh");
    if !line.is_empty() {
        cmd.arg("-c").arg(&line);
    }
    let child = cmd
        .current_dir(&root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let _ = stderr.write_all(format!("error: {e}\n").as_bytes()).await;
            return 126;
        }
    };
    let mut cin = child.stdin.take().unwrap();
    let mut cout = child.stdout.take().unwrap();
    let mut cerr = child.stderr.take().unwrap();
    let feed = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stdin, &mut cin).await;
    });
    let out = async { tokio::io::copy(&mut cout, &mut stdout).await };
    let err = async { tokio::io::copy(&mut cerr, &mut stderr).await };
    let (_, _, status) = tokio::join!(out, err, child.wait());
    feed.abort();
    match status {
        Ok(s) => s.code().unwrap_or(255),
        Err(_) => 255,
    }
}

impl Device for TestDevice {
    fn identity(&self) -> DeviceIdentity {
        DeviceIdentity {
            product_name: "cphprod".into(),
            model: "CphModel".into(),
            device: "cphdev".into(),
        }
    }

    fn allowed_keys(&self) -> Arc<Vec<AdbPublicKey>> {
        self.keys.lock().unwrap().clone()
    }

    fn exec(&self, request: ExecRequest, io: ExecIo) -> BoxFuture<'static, i32> {
        self.requests.lock().unwrap().push(request.clone());
        let root = self.root.clone();
        let me = self.installs.clone();
        Box::pin(async move {
            match request.invocation {
                Invocation::Cmd(args) => {
                    if args.first().map(String::as_str) == Some("package")
                        && args.get(1).map(String::as_str) == Some("install")
                        && let Some(n) = install_size(&args)
                    {
                        return streamed_install(me, n, io).await;
                    }
                    let mut out = io.stdout;
                    let _ = out.write_all(b"abb: unsupported\n").await;
                    1
                }
                Invocation::Command(line) => {
                    let words: Vec<String> = line
                        .split_whitespace()
                        .map(|w| w.trim_matches('\'').to_owned())
                        .collect();
                    if words.len() >= 3
                        && words[0] == "cmd"
                        && words[1] == "package"
                        && words[2] == "install"
                        && let Some(n) = install_size(&words)
                    {
                        return streamed_install(me, n, io).await;
                    }
                    run_sh(root, line, io).await
                }
            }
        })
    }

    fn fs(&self) -> Arc<dyn SyncFs> {
        Arc::new(DirFs {
            root: self.root.clone(),
        })
    }

    fn reboot(&self, target: &str) -> BoxFuture<'static, ()> {
        self.reboots.lock().unwrap().push(target.to_owned());
        Box::pin(async {})
    }

    fn connect_tcp(&self, port: u16) -> BoxFuture<'static, io::Result<cph_adb::DeviceSocket>> {
        let listener = self.ports.lock().unwrap().get(&port).cloned();
        Box::pin(async move {
            let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
            let listener = listener.ok_or_else(refused)?;
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            listener.send(theirs).await.map_err(|_| refused())?;
            Ok(Box::new(ours) as cph_adb::DeviceSocket)
        })
    }
}

/// A raw client speaking packets, for protocol-level tests.
pub struct RawClient<S> {
    pub io: S,
    pub checksum: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    pub fn new(io: S) -> Self {
        RawClient { io, checksum: true }
    }

    pub async fn send(&mut self, command: u32, arg0: u32, arg1: u32, payload: &[u8]) {
        Packet::new(command, arg0, arg1, Bytes::copy_from_slice(payload))
            .write_to(&mut self.io, self.checksum)
            .await
            .unwrap();
        self.io.flush().await.unwrap();
    }

    /// The next packet, with its raw `data_check` field.
    pub async fn recv(&mut self) -> Option<(Packet, u32)> {
        let mut h = [0u8; packet::HEADER_LEN];
        tokio::time::timeout(Duration::from_secs(10), self.io.read_exact(&mut h))
            .await
            .expect("timed out waiting for a packet")
            .ok()?;
        let (command, arg0, arg1, len, magic) = packet::parse_header(&h);
        assert_eq!(magic, command ^ 0xffff_ffff);
        let check = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
        let mut payload = vec![0u8; len as usize];
        self.io.read_exact(&mut payload).await.ok()?;
        Some((Packet::new(command, arg0, arg1, payload), check))
    }

    pub async fn expect(&mut self, command: u32) -> Packet {
        let (p, _) = self.recv().await.expect("connection closed");
        assert_eq!(
            packet::command_name(p.command),
            packet::command_name(command),
            "unexpected packet {p:?}"
        );
        p
    }

    /// Connects and authenticates with `key` at protocol `version`; returns the banner.
    pub async fn handshake(&mut self, version: u32, key: &AdbPrivateKey) -> String {
        self.send(packet::A_CNXN, version, packet::MAX_PAYLOAD, b"host::\0")
            .await;
        let auth = self.expect(packet::A_AUTH).await;
        assert_eq!(auth.arg0, packet::AUTH_TOKEN);
        assert_eq!(auth.payload.len(), packet::TOKEN_SIZE);
        let sig = key.sign_token(&auth.payload).unwrap();
        self.send(packet::A_AUTH, packet::AUTH_SIGNATURE, 0, &sig)
            .await;
        let cnxn = self.expect(packet::A_CNXN).await;
        String::from_utf8(cnxn.payload.to_vec()).unwrap()
    }

    /// Opens a stream; returns the device's id, or `None` if refused.
    pub async fn open(&mut self, local: u32, service: &str) -> Option<u32> {
        let mut name = service.as_bytes().to_vec();
        name.push(0);
        self.send(packet::A_OPEN, local, 0, &name).await;
        let (p, _) = self.recv().await?;
        match p.command {
            packet::A_OKAY => {
                assert_eq!(p.arg1, local);
                Some(p.arg0)
            }
            packet::A_CLSE => {
                assert_eq!((p.arg0, p.arg1), (0, local));
                None
            }
            other => panic!("unexpected {}", packet::command_name(other)),
        }
    }

    /// Reads a stream's data until the device closes it, acknowledging every WRTE; answers the
    /// CLSE with a CLSE. Returns the data.
    pub async fn read_to_close(&mut self, local: u32, remote: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let (p, _) = self.recv().await.expect("closed");
            match p.command {
                packet::A_WRTE if p.arg1 == local => {
                    out.extend_from_slice(&p.payload);
                    self.send(packet::A_OKAY, local, remote, b"").await;
                }
                packet::A_CLSE if p.arg1 == local => {
                    self.send(packet::A_CLSE, local, remote, b"").await;
                    return out;
                }
                _ => {}
            }
        }
    }
}

/// Binds a listener on 127.0.0.1 outside the ports the adb server probes (5555–5585).
pub async fn listener() -> tokio::net::TcpListener {
    loop {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        if !(5554..=5586).contains(&port) {
            return l;
        }
    }
}
