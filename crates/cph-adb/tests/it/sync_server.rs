//! The sync server driven directly as a byte stream (no transport), split at arbitrary points.

use crate::support::{DirFs, TempDir};
use bytes::{BufMut, Bytes, BytesMut};
use cph_adb::sync::{
    self, DataHeader, DentV1, DentV2, ListItem, RecvV2, SendV2, StatV1, StatV2, SyncError,
};
use cph_adb::{FileStat, SyncFileWriter, SyncFs};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Wraps a [`DirFs`] and records the calls the server makes.
pub struct RecordingFs {
    pub inner: DirFs,
    pub calls: Mutex<Vec<String>>,
}

impl RecordingFs {
    pub fn new(dir: &TempDir) -> Arc<RecordingFs> {
        Arc::new(RecordingFs {
            inner: DirFs {
                root: dir.path().to_path_buf(),
            },
            calls: Mutex::new(Vec::new()),
        })
    }
    fn log(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
}

impl SyncFs for RecordingFs {
    fn stat(&self, path: &str) -> io::Result<FileStat> {
        self.log(format!("stat {path}"));
        self.inner.stat(path)
    }
    fn lstat(&self, path: &str) -> io::Result<FileStat> {
        self.log(format!("lstat {path}"));
        self.inner.lstat(path)
    }
    fn list(&self, path: &str) -> io::Result<Vec<(String, FileStat)>> {
        self.log(format!("list {path}"));
        self.inner.list(path)
    }
    fn open_read(&self, path: &str) -> io::Result<Box<dyn io::Read + Send>> {
        self.log(format!("open {path}"));
        self.inner.open_read(path)
    }
    fn create_file(&self, path: &str, mode: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        self.log(format!("create {path} {mode:o}"));
        self.inner.create_file(path, mode)
    }
    fn symlink(&self, target: &str, path: &str) -> io::Result<()> {
        self.log(format!("symlink {target} {path}"));
        self.inner.symlink(target, path)
    }
}

pub fn req(id: u32, path: &str) -> Vec<u8> {
    sync::encode_request(id, path.as_bytes()).unwrap().to_vec()
}

pub fn data_msgs(out: &mut Vec<u8>, data: &[u8], chunk: usize) {
    for c in data.chunks(chunk) {
        out.extend_from_slice(&sync::encode_data_header(c.len() as u32));
        out.extend_from_slice(c);
    }
}

/// Runs a session over `input` split into `step`-byte chunks; returns the result and output.
pub async fn run(
    fs: Arc<dyn SyncFs>,
    input: &[u8],
    step: usize,
) -> (Result<(), SyncError>, Vec<u8>) {
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(4);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(4);
    let server = tokio::spawn(sync::serve(fs, in_rx, out_tx, 256 * 1024));
    let input = Bytes::copy_from_slice(input);
    let feeder = tokio::spawn(async move {
        let mut off = 0;
        while off < input.len() {
            let end = (off + step.max(1)).min(input.len());
            if in_tx.send(input.slice(off..end)).await.is_err() {
                return;
            }
            off = end;
        }
    });
    let mut out = Vec::new();
    let collect = async {
        while let Some(b) = out_rx.recv().await {
            out.extend_from_slice(&b);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("sync session did not end");
    let r = server.await.unwrap();
    feeder.abort();
    (r, out)
}

#[tokio::test]
async fn push_with_split_messages_then_stat() {
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    for step in [1usize, 5, 8, 13, 4096, 65_536 + 9, 1 << 20] {
        let dir = TempDir::new("sync-push");
        let fs = RecordingFs::new(&dir);
        let mut input = req(sync::ID_SEND_V1, "/sdcard/a,b/file.bin,33188");
        data_msgs(&mut input, &payload, 65_528);
        input.extend_from_slice(&sync::encode_done(1_700_000_000));
        input.extend(req(sync::ID_LSTAT_V1, "/sdcard/a,b/file.bin"));
        input.extend(req(sync::ID_QUIT, ""));
        let (r, out) = run(fs.clone(), &input, step).await;
        r.unwrap();
        let (_, n) = sync::decode_status(&out).unwrap().unwrap();
        let (st, m) = StatV1::decode(&out[n..]).unwrap().unwrap();
        assert_eq!(n + m, out.len());
        assert_eq!(st.size, 200_000);
        assert_eq!(st.mode & 0o170_000, 0o100_000);
        assert_eq!(st.mtime, 1_700_000_000);
        assert_eq!(
            std::fs::read(dir.path().join("sdcard/a,b/file.bin")).unwrap(),
            payload
        );
        // 0644 (decimal 33188) becomes 0666: group and other copy the user bits.
        assert_eq!(
            fs.calls.lock().unwrap()[0],
            "create /sdcard/a,b/file.bin 666"
        );
    }
}

#[tokio::test]
async fn send_modes_are_parsed_like_strtoul() {
    for (spec, expected) in [
        ("0777", "777"),
        ("0x1a4", "666"),
        ("256", "444"),
        ("0640", "666"),
    ] {
        let dir = TempDir::new("sync-mode");
        let fs = RecordingFs::new(&dir);
        let mut input = req(sync::ID_SEND_V1, &format!("/f,{spec}"));
        data_msgs(&mut input, b"x", 100);
        input.extend_from_slice(&sync::encode_done(0));
        let (r, out) = run(fs.clone(), &input, 1000).await;
        r.unwrap();
        assert_eq!(out, sync::encode_okay());
        assert_eq!(fs.calls.lock().unwrap()[0], format!("create /f {expected}"));
    }
}

#[tokio::test]
async fn symlinks_and_stat_v2() {
    let dir = TempDir::new("sync-link");
    let fs = RecordingFs::new(&dir);
    std::fs::write(dir.path().join("target.txt"), b"12345").unwrap();
    let mut input = req(sync::ID_SEND_V1, &format!("/link,{}", 0o120_777));
    data_msgs(&mut input, b"target.txt", 100);
    input.extend_from_slice(&sync::encode_done(0));
    input.extend(req(sync::ID_LSTAT_V2, "/link"));
    input.extend(req(sync::ID_STAT_V2, "/link"));
    input.extend(req(sync::ID_STAT_V2, "/missing"));
    let (r, out) = run(fs.clone(), &input, 7).await;
    r.unwrap();
    let (_, mut n) = sync::decode_status(&out).unwrap().unwrap();
    let (l, k) = StatV2::decode(&out[n..]).unwrap().unwrap();
    n += k;
    assert_eq!(l.id, sync::ID_LSTAT_V2);
    assert_eq!(l.stat.mode & 0o170_000, 0o120_000);
    let (s, k) = StatV2::decode(&out[n..]).unwrap().unwrap();
    n += k;
    assert_eq!(s.id, sync::ID_STAT_V2);
    assert_eq!((s.error, s.stat.size), (0, 5));
    let (m, k) = StatV2::decode(&out[n..]).unwrap().unwrap();
    assert_eq!(n + k, out.len());
    assert_eq!(m.error, 2);
    assert_eq!(m.stat, FileStat::default());
    assert_eq!(
        std::fs::read_link(dir.path().join("link")).unwrap(),
        std::path::Path::new("target.txt")
    );
}

#[tokio::test]
async fn failed_send_reports_and_discards_until_done() {
    let dir = TempDir::new("sync-fail");
    // A file where a parent directory should be: creation fails.
    std::fs::write(dir.path().join("blocker"), b"").unwrap();
    let fs = RecordingFs::new(&dir);
    let mut input = req(sync::ID_SEND_V1, "/blocker/x,420");
    data_msgs(&mut input, &[1u8; 100_000], 65_536);
    input.extend_from_slice(&sync::encode_done(0));
    // Nothing after the failed SEND is served.
    input.extend(req(sync::ID_LSTAT_V1, "/blocker"));
    let (r, out) = run(fs.clone(), &input, 3000).await;
    assert!(r.is_err());
    let msg = match sync::decode_status(&out) {
        Err(SyncError::Remote(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(msg.starts_with("couldn't create file"), "{msg}");
    let (_, n) = sync::decode_fail(&out).unwrap().unwrap();
    assert_eq!(n, out.len());
    assert!(
        !fs.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("lstat"))
    );
}

#[tokio::test]
async fn protocol_errors_fail_and_end_the_session() {
    let dir = TempDir::new("sync-err");
    let fs = RecordingFs::new(&dir);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut v = Vec::new();
                v.extend_from_slice(&sync::SyncHeader::new(sync::ID_LSTAT_V1, 1025).encode());
                v.extend(vec![b'a'; 1025]);
                v
            },
            "path too long",
        ),
        (req(0x4b4e_554a, "/x"), "unknown command"),
        (
            {
                let mut v = req(sync::ID_SEND_V1, "/big,420");
                v.extend_from_slice(&sync::encode_data_header(65_537));
                v
            },
            "oversize data message",
        ),
        (req(sync::ID_SEND_V1, "/no-comma"), "missing , in ID_SEND"),
        (
            {
                let mut v = req(sync::ID_SEND_V2, "/c");
                v.extend_from_slice(
                    &SendV2 {
                        mode: 0o100_644,
                        flags: sync::FLAG_ZSTD,
                    }
                    .encode(),
                );
                v
            },
            "unsupported SND2 flags",
        ),
        (
            {
                let mut v = req(sync::ID_RECV_V2, "/c");
                v.extend_from_slice(&RecvV2 { flags: 2 }.encode());
                v
            },
            "unsupported RCV2 flags",
        ),
        (
            {
                let mut v = req(sync::ID_SEND_V1, "/d,420");
                v.extend(req(sync::ID_LIST_V1, "/"));
                v
            },
            "invalid data message",
        ),
    ];
    for (input, expected) in cases {
        let mut input = input;
        input.extend(req(sync::ID_LSTAT_V1, "/after"));
        let (r, out) = run(fs.clone(), &input, 5).await;
        assert!(r.is_err(), "{expected}");
        match sync::decode_fail(&out) {
            Ok(Some((m, n))) => {
                assert!(m.starts_with(expected), "{m} / {expected}");
                assert_eq!(n, out.len(), "nothing after the FAIL");
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
    assert!(
        !fs.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.contains("/after"))
    );
    assert!(!dir.path().join("big").exists() && !dir.path().join("d").exists());
}

#[tokio::test]
async fn listings_end_with_full_size_done() {
    let dir = TempDir::new("sync-list");
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/one"), b"1").unwrap();
    std::fs::write(dir.path().join("d/two"), b"22").unwrap();
    let fs = RecordingFs::new(&dir);
    let mut input = req(sync::ID_LIST_V1, "/d");
    input.extend(req(sync::ID_LIST_V2, "/d"));
    input.extend(req(sync::ID_LIST_V2, "/nonexistent"));
    let (r, out) = run(fs, &input, 11).await;
    r.unwrap();
    let mut n = 0;
    let mut v1 = Vec::new();
    loop {
        let (item, k) = DentV1::decode(&out[n..]).unwrap().unwrap();
        n += k;
        match item {
            ListItem::Entry(e) => v1.push((e.name, e.size)),
            ListItem::Done => {
                assert_eq!(&out[n - 20..n], &DentV1::encode_done());
                break;
            }
        }
    }
    v1.sort();
    assert_eq!(v1, [("one".to_string(), 1), ("two".to_string(), 2)]);
    let mut v2 = Vec::new();
    loop {
        let (item, k) = DentV2::decode(&out[n..]).unwrap().unwrap();
        n += k;
        match item {
            ListItem::Entry(e) => v2.push((e.name, e.stat.size, e.error)),
            ListItem::Done => {
                assert_eq!(&out[n - 76..n], &DentV2::encode_done()[..]);
                break;
            }
        }
    }
    v2.sort();
    assert_eq!(v2, [("one".to_string(), 1, 0), ("two".to_string(), 2, 0)]);
    // An unreadable directory is an empty listing.
    assert_eq!(&out[n..], &DentV2::encode_done()[..]);
}

fn read_data(out: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut n = 0;
    let mut data = Vec::new();
    let mut max_chunk = 0;
    loop {
        let (h, k) = sync::decode_data_header(&out[n..]).unwrap().unwrap();
        n += k;
        match h {
            DataHeader::Data(len) => {
                max_chunk = max_chunk.max(len as usize);
                data.extend_from_slice(&out[n..n + len as usize]);
                n += len as usize;
            }
            DataHeader::Done(arg) => {
                assert_eq!(arg, 0);
                return (data, n, max_chunk);
            }
        }
    }
}

#[tokio::test]
async fn pull_streams_data_chunks() {
    let dir = TempDir::new("sync-pull");
    let content: Vec<u8> = (0..300_001u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.path().join("big"), &content).unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let fs = RecordingFs::new(&dir);
    let mut input = req(sync::ID_RECV_V1, "/big");
    input.extend(req(sync::ID_RECV_V2, "/empty"));
    input.extend_from_slice(&RecvV2 { flags: 0 }.encode());
    input.extend(req(sync::ID_RECV_V1, "/missing"));
    let (r, out) = run(fs, &input, 64).await;
    assert!(r.is_err(), "a failed open ends the session");
    let (data, n, max_chunk) = read_data(&out);
    assert_eq!(data, content);
    assert_eq!(max_chunk, sync::SYNC_DATA_MAX);
    let (data, m, _) = read_data(&out[n..]);
    assert!(data.is_empty());
    match sync::decode_fail(&out[n + m..]) {
        Ok(Some((msg, _))) => assert_eq!(msg, "open failed: No such file or directory"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn send_v2_and_dry_run() {
    let dir = TempDir::new("sync-snd2");
    let fs = RecordingFs::new(&dir);
    let mut input = req(sync::ID_SEND_V2, "/v2.txt");
    input.extend_from_slice(
        &SendV2 {
            mode: 0o100_600,
            flags: 0,
        }
        .encode(),
    );
    data_msgs(&mut input, b"hello v2", 3);
    input.extend_from_slice(&sync::encode_done(5));
    input.extend(req(sync::ID_SEND_V2, "/dry.txt"));
    input.extend_from_slice(
        &SendV2 {
            mode: 0o100_600,
            flags: sync::FLAG_DRY_RUN,
        }
        .encode(),
    );
    data_msgs(&mut input, b"not written", 100);
    input.extend_from_slice(&sync::encode_done(5));
    let (r, out) = run(fs.clone(), &input, 9).await;
    r.unwrap();
    let mut expected = BytesMut::new();
    expected.put_slice(&sync::encode_okay());
    expected.put_slice(&sync::encode_okay());
    assert_eq!(out, expected.to_vec());
    assert_eq!(
        std::fs::read(dir.path().join("v2.txt")).unwrap(),
        b"hello v2"
    );
    assert!(!dir.path().join("dry.txt").exists());
    assert_eq!(fs.calls.lock().unwrap().as_slice(), ["create /v2.txt 666"]);
}

#[tokio::test]
async fn paths_pass_through_unchanged() {
    let dir = TempDir::new("sync-paths");
    let fs = RecordingFs::new(&dir);
    let long = format!("/{}", "p".repeat(1023));
    let mut input = req(sync::ID_LSTAT_V1, "/../../etc/passwd");
    input.extend(req(sync::ID_STAT_V2, "relative/../x"));
    input.extend(req(sync::ID_LSTAT_V2, &long));
    input.extend(req(sync::ID_LIST_V2, "/with space/and,comma"));
    let (r, _) = run(fs.clone(), &input, 17).await;
    r.unwrap();
    assert_eq!(
        fs.calls.lock().unwrap().as_slice(),
        [
            "lstat /../../etc/passwd".to_string(),
            "stat relative/../x".to_string(),
            format!("lstat {long}"),
            "list /with space/and,comma".to_string(),
        ]
    );
}

#[tokio::test]
async fn stat_v1_of_missing_file_is_all_zero() {
    let dir = TempDir::new("sync-stat");
    let fs = RecordingFs::new(&dir);
    let (r, out) = run(fs, &req(sync::ID_LSTAT_V1, "/nope"), 100).await;
    r.unwrap();
    let mut expected = [0u8; 16];
    expected[..4].copy_from_slice(b"STAT");
    assert_eq!(out, expected);
}

/// A file writer that keeps what it is given and where that memory was.
struct SpanWriter {
    spans: Arc<Mutex<Vec<(usize, usize)>>>,
    data: Arc<Mutex<Vec<u8>>>,
}

impl io::Write for SpanWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut n = 0;
        for b in bufs {
            self.spans
                .lock()
                .unwrap()
                .push((b.as_ptr() as usize, b.len()));
            self.data.lock().unwrap().extend_from_slice(b);
            n += b.len();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SyncFileWriter for SpanWriter {
    fn finish(self: Box<Self>, _mtime: i64) -> io::Result<()> {
        Ok(())
    }
}

struct SpanFs {
    spans: Arc<Mutex<Vec<(usize, usize)>>>,
    data: Arc<Mutex<Vec<u8>>>,
}

impl SyncFs for SpanFs {
    fn stat(&self, _: &str) -> io::Result<FileStat> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn lstat(&self, _: &str) -> io::Result<FileStat> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn list(&self, _: &str) -> io::Result<Vec<(String, FileStat)>> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn open_read(&self, _: &str) -> io::Result<Box<dyn io::Read + Send>> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn create_file(&self, _: &str, _: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        Ok(Box::new(SpanWriter {
            spans: self.spans.clone(),
            data: self.data.clone(),
        }))
    }
    fn symlink(&self, _: &str, _: &str) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

#[tokio::test]
async fn pushed_data_reaches_the_file_as_the_received_chunks_themselves() {
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 256) as u8).collect();
    let mut input = req(sync::ID_SEND_V1, "/data/local/tmp/f,33188");
    data_msgs(&mut input, &payload, 65_536);
    input.extend_from_slice(&sync::encode_done(0));
    input.extend(req(sync::ID_QUIT, ""));
    let input = Bytes::from(input);
    let spans = Arc::new(Mutex::new(Vec::new()));
    let data = Arc::new(Mutex::new(Vec::new()));
    let fs: Arc<dyn SyncFs> = Arc::new(SpanFs {
        spans: spans.clone(),
        data: data.clone(),
    });
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(4);
    let server = tokio::spawn(sync::serve(fs, in_rx, out_tx, 256 * 1024));
    // Chunks that cut every DATA message into several pieces.
    let mut off = 0;
    while off < input.len() {
        let end = (off + 10_000).min(input.len());
        in_tx.send(input.slice(off..end)).await.unwrap();
        off = end;
    }
    drop(in_tx);
    let mut out = Vec::new();
    while let Some(b) = out_rx.recv().await {
        out.extend_from_slice(&b);
    }
    server.await.unwrap().unwrap();
    assert_eq!(out, sync::encode_okay());
    assert_eq!(*data.lock().unwrap(), payload);
    let base = input.as_ptr() as usize;
    let spans = spans.lock().unwrap();
    assert!(
        spans.len() > payload.len() / 10_000,
        "{} writes",
        spans.len()
    );
    for &(at, len) in spans.iter() {
        assert!(
            at >= base && at + len <= base + input.len(),
            "file data was copied before it was written"
        );
    }
}
