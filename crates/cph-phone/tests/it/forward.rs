//! ADB's `tcp:<port>` service (`adb forward`) reaching sockets inside the phone, driven by the
//! ADB client over the phone's endpoint.

use crate::support::phone;
use cph_adb::client::{AdbClient, AdbStream, ClientConfig, ClientError};
use cph_adb::device::{self, EndpointConfig};
use cph_adb::{AdbPrivateKey, DeviceIdentity};
use cph_phone::PhoneCore;
use cph_phone::phone::VirtualPhone;
use cph_phone::shell::{Cancel, pipe};
use std::io::{BufReader, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(20);

fn key() -> &'static AdbPrivateKey {
    static K: OnceLock<AdbPrivateKey> = OnceLock::new();
    K.get_or_init(|| AdbPrivateKey::generate().unwrap())
}

struct Harness {
    core: Arc<PhoneCore>,
    client: AdbClient,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Harness {
    let (dir, core) = phone();
    let core = Arc::new(core);
    let identity = DeviceIdentity {
        product_name: "p".into(),
        model: "m".into(),
        device: "d".into(),
    };
    let device: Arc<dyn cph_adb::Device> = Arc::new(VirtualPhone::new(
        core.clone(),
        identity,
        vec![key().public_key()],
    ));
    let (ours, theirs) = tokio::io::duplex(4 * 1024 * 1024);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        device::serve_connection(theirs, device, &EndpointConfig::default(), token).await;
    });
    let client = timeout(
        T,
        AdbClient::connect_stream(ours, key(), ClientConfig::default()),
    )
    .await
    .unwrap()
    .unwrap();
    Harness {
        core,
        client,
        shutdown,
        _dir: dir,
    }
}

async fn wait_listening(core: &PhoneCore, port: u16) {
    let end = tokio::time::Instant::now() + T;
    while !core.net.is_listening(port) {
        assert!(
            tokio::time::Instant::now() < end,
            "nothing listens on {port}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn read_all(stream: &AdbStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = timeout(T, stream.read()).await.unwrap().unwrap() {
        out.extend_from_slice(&chunk);
    }
    out
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adb_tcp_reaches_nc_in_the_phone_both_ways() {
    let h = start().await;
    // Nothing listens yet: the stream is refused.
    let r = timeout(T, h.client.open("tcp:20100")).await.unwrap();
    assert!(matches!(r, Err(ClientError::ServiceRefused(_))), "{r:?}");

    // `nc -l -p 20100` with its stdin and stdout in the test's hands.
    let (mut stdin_w, mut stdin_r) = pipe::pipe();
    let (mut stdout_w, stdout_r) = pipe::pipe();
    let core = h.core.clone();
    let nc = std::thread::spawn(move || {
        let mut err = Vec::new();
        let status = cph_phone::shell::run_script_with(
            &core,
            "nc -l -p 20100",
            &mut stdin_r,
            &mut stdout_w,
            &mut err,
            &Cancel::new(),
        );
        (status, String::from_utf8_lossy(&err).into_owned())
    });
    let output = std::thread::spawn(move || {
        let mut all = String::new();
        BufReader::new(stdout_r).read_to_string(&mut all).unwrap();
        all
    });
    wait_listening(&h.core, 20100).await;
    let stream = timeout(T, h.client.open("tcp:20100"))
        .await
        .unwrap()
        .unwrap();
    // nc takes its one connection: the port no longer listens.
    assert!(!h.core.net.is_listening(20100));
    timeout(T, stream.write(b"hello from host\n"))
        .await
        .unwrap()
        .unwrap();
    stdin_w.write_all(b"reply from phone\n").unwrap();
    let chunk = timeout(T, stream.read()).await.unwrap().unwrap();
    assert_eq!(chunk.as_deref(), Some(&b"reply from phone\n"[..]));

    // The client closes; with its input ended too, nc is done, and what the client sent was
    // its output.
    stream.close().await;
    drop(stdin_w);
    let done = tokio::task::spawn_blocking(move || (nc.join().unwrap(), output.join().unwrap()));
    let ((status, err), out) = timeout(T, done).await.unwrap().unwrap();
    assert_eq!(out, "hello from host\n");
    assert_eq!(status, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_either_side_closes_the_other() {
    let h = start().await;
    // The client closes: the phone reads what was sent, then end of file, and its writes fail.
    let listener = h.core.clone();
    let phone_side = std::thread::spawn(move || {
        let l = listener.net.listen(20101).unwrap();
        let mut conn = l.accept(&Cancel::new()).unwrap();
        let mut got = Vec::new();
        conn.reader.read_to_end(&mut got).unwrap();
        let mut write_failed = false;
        for _ in 0..1000 {
            if conn.writer.write_all(b"anyone?").is_err() {
                write_failed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (got, write_failed)
    });
    wait_listening(&h.core, 20101).await;
    let stream = timeout(T, h.client.open("tcp:20101"))
        .await
        .unwrap()
        .unwrap();
    timeout(T, stream.write(b"last words"))
        .await
        .unwrap()
        .unwrap();
    stream.close().await;
    let (got, write_failed) = timeout(T, tokio::task::spawn_blocking(move || phone_side.join()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, b"last words");
    assert!(write_failed, "the phone's side stayed open");

    // The phone closes: what it sent arrives, then the stream closes.
    let listener = h.core.clone();
    let phone_side = std::thread::spawn(move || {
        let l = listener.net.listen(20102).unwrap();
        let mut conn = l.accept(&Cancel::new()).unwrap();
        conn.writer.write_all(b"goodbye").unwrap();
        drop(conn);
    });
    wait_listening(&h.core, 20102).await;
    let stream = timeout(T, h.client.open("tcp:20102"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_all(&stream).await, b"goodbye");
    assert!(stream.is_closed_by_device());
    phone_side.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_cross_both_ways_byte_identical() {
    const SIZE: usize = 6 * 1024 * 1024;
    let h = start().await;
    let up = pattern(SIZE, 0x3c);
    let down = pattern(SIZE, 0xc3);
    let listener = h.core.clone();
    let to_send = down.clone();
    let phone_side = std::thread::spawn(move || {
        let l = listener.net.listen(20103).unwrap();
        let conn = l.accept(&Cancel::new()).unwrap();
        let cph_phone::net::Conn {
            mut reader,
            mut writer,
        } = conn;
        let sender = std::thread::spawn(move || {
            for piece in to_send.chunks(50_000) {
                writer.write_all(piece).unwrap();
            }
            writer
        });
        let mut got = vec![0u8; SIZE];
        reader.read_exact(&mut got).unwrap();
        let writer = sender.join().unwrap();
        drop(writer);
        got
    });
    wait_listening(&h.core, 20103).await;
    let stream = Arc::new(
        timeout(T, h.client.open("tcp:20103"))
            .await
            .unwrap()
            .unwrap(),
    );
    let sending = {
        let (stream, up) = (stream.clone(), up.clone());
        tokio::spawn(async move {
            for piece in up.chunks(70_000) {
                stream.write(piece).await?;
            }
            Ok::<_, ClientError>(())
        })
    };
    let received = read_all(&stream).await;
    assert_eq!(received.len(), SIZE);
    assert!(received == down, "phone → client data differs");
    timeout(T, sending).await.unwrap().unwrap().unwrap();
    let got = timeout(T, tokio::task::spawn_blocking(move || phone_side.join()))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(got == up, "client → phone data differs");
}
