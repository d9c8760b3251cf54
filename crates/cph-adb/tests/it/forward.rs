//! The `tcp:<port>` service (what `adb forward` opens on the device), driven by the crate's
//! own client and, for the exact refusal packets, by a raw client.

use crate::support::{RawClient, TempDir, TestDevice, host_key};
use cph_adb::client::{AdbClient, AdbStream, ClientConfig, ClientError};
use cph_adb::device::{self, EndpointConfig};
use cph_adb::packet::A_VERSION;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(20);

struct Harness {
    client: AdbClient,
    device: Arc<TestDevice>,
    shutdown: CancellationToken,
    _dir: TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Harness {
    let dir = TempDir::new("forward");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(4 * 1024 * 1024);
    let shutdown = CancellationToken::new();
    let d: Arc<dyn cph_adb::Device> = device.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        device::serve_connection(theirs, d, &EndpointConfig::default(), token).await;
    });
    let client = timeout(
        T,
        AdbClient::connect_stream(ours, host_key(), ClientConfig::default()),
    )
    .await
    .unwrap()
    .unwrap();
    Harness {
        client,
        device,
        shutdown,
        _dir: dir,
    }
}

async fn accept(rx: &mut Receiver<DuplexStream>) -> DuplexStream {
    timeout(T, rx.recv()).await.unwrap().expect("no connection")
}

/// Everything the device sends until it closes the stream.
async fn read_all(stream: &AdbStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = timeout(T, stream.read()).await.unwrap().unwrap() {
        out.extend_from_slice(&chunk);
    }
    out
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

#[tokio::test]
async fn tcp_stream_carries_data_both_ways_and_closes_when_the_device_side_closes() {
    let h = start().await;
    let mut port = h.device.listen(8080);
    let stream = timeout(T, h.client.open("tcp:8080"))
        .await
        .unwrap()
        .unwrap();
    let mut conn = accept(&mut port).await;

    timeout(T, stream.write(b"ping from host"))
        .await
        .unwrap()
        .unwrap();
    let mut got = [0u8; 14];
    timeout(T, conn.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"ping from host");

    conn.write_all(b"pong from device").await.unwrap();
    let chunk = timeout(T, stream.read()).await.unwrap().unwrap();
    assert_eq!(chunk.as_deref(), Some(&b"pong from device"[..]));

    // The device side sends its last bytes and closes: they arrive, then the stream closes.
    conn.write_all(b"bye").await.unwrap();
    drop(conn);
    assert_eq!(read_all(&stream).await, b"bye");
    assert!(stream.is_closed_by_device());
    assert!(matches!(
        stream.write(b"late").await,
        Err(ClientError::Closed)
    ));

    // `tcp:localhost:<port>` is the same service.
    let stream = timeout(T, h.client.open("tcp:localhost:8080"))
        .await
        .unwrap()
        .unwrap();
    let mut conn = accept(&mut port).await;
    conn.write_all(b"again").await.unwrap();
    drop(conn);
    assert_eq!(read_all(&stream).await, b"again");
}

#[tokio::test]
async fn closing_the_stream_delivers_what_was_sent_then_closes_the_device_side() {
    let h = start().await;
    let mut port = h.device.listen(8080);
    let stream = timeout(T, h.client.open("tcp:8080"))
        .await
        .unwrap()
        .unwrap();
    let mut conn = accept(&mut port).await;
    timeout(T, stream.write(b"last words"))
        .await
        .unwrap()
        .unwrap();
    stream.close().await;
    let mut got = Vec::new();
    timeout(T, conn.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"last words");
    // The device side's writes now fail: the connection is closed both ways.
    let write = timeout(T, async {
        loop {
            if conn.write_all(b"anyone?").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(write.is_ok(), "the device side was not closed");
    // The connection to the device is still good for new streams.
    let again = timeout(T, h.client.open("tcp:8080"))
        .await
        .unwrap()
        .unwrap();
    accept(&mut port).await;
    again.close().await;
}

#[tokio::test]
async fn ports_nobody_listens_on_other_hosts_and_reverse_are_refused() {
    let h = start().await;
    let _port = h.device.listen(8080);
    for service in [
        "tcp:8081",
        "tcp:0",
        "tcp:70000",
        "tcp:127.0.0.1:8080",
        "tcp:10.1.2.3:8080",
        "tcp:example.com:8080",
        "reverse:forward:tcp:9000;tcp:8080",
        "reverse:list-forward",
        "reverse:killforward-all",
    ] {
        let r = timeout(T, h.client.open(service)).await.unwrap();
        assert!(
            matches!(&r, Err(ClientError::ServiceRefused(s)) if s == service),
            "{service}: {r:?}"
        );
    }
    // Nothing was asked of the device for the refused hosts: only port 8080 listens, and it
    // still has its connection to give.
    assert!(timeout(T, h.client.open("tcp:8080")).await.unwrap().is_ok());

    // On the wire: `CLSE(0, id)`, as adbd answers an OPEN whose connect fails.
    let dir = TempDir::new("forward-raw");
    let dev = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(1024 * 1024);
    let shutdown = CancellationToken::new();
    let d: Arc<dyn cph_adb::Device> = dev.clone();
    let token = shutdown.clone();
    tokio::spawn(async move {
        device::serve_connection(theirs, d, &EndpointConfig::default(), token).await;
    });
    let mut raw = RawClient::new(ours);
    raw.checksum = false;
    raw.handshake(A_VERSION, host_key()).await;
    assert_eq!(raw.open(7, "tcp:9999").await, None);
    assert_eq!(raw.open(8, "reverse:list-forward").await, None);
    let mut rx = dev.listen(9999);
    let remote = raw
        .open(9, "tcp:9999")
        .await
        .expect("accepted once listening");
    let conn = accept(&mut rx).await;
    drop(conn);
    assert_eq!(raw.read_to_close(9, remote).await, b"");
    shutdown.cancel();
}

#[tokio::test]
async fn large_transfers_are_byte_identical_and_flow_controlled() {
    const SIZE: usize = 8 * 1024 * 1024;
    let h = start().await;
    let mut port = h.device.listen(8080);
    let stream = Arc::new(
        timeout(T, h.client.open("tcp:8080"))
            .await
            .unwrap()
            .unwrap(),
    );
    let conn = accept(&mut port).await;
    let (mut dev_rd, mut dev_wr) = tokio::io::split(conn);

    // While the device side reads nothing, the client can only get a bounded amount ahead.
    let up = pattern(SIZE, 0x5a);
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stream, up, written) = (stream.clone(), up.clone(), written.clone());
        tokio::spawn(async move {
            for piece in up.chunks(64 * 1024) {
                stream.write(piece).await?;
                written.fetch_add(piece.len(), Ordering::SeqCst);
            }
            Ok::<_, ClientError>(())
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ahead = written.load(Ordering::SeqCst);
    assert!(ahead > 0, "nothing was accepted");
    assert!(
        ahead <= 4 * 1024 * 1024,
        "{ahead} bytes accepted while nothing was read"
    );

    // Both directions at once, several MiB each.
    let down = pattern(SIZE, 0xa5);
    let device_send = {
        let down = down.clone();
        tokio::spawn(async move {
            for piece in down.chunks(100_000) {
                dev_wr.write_all(piece).await.unwrap();
            }
            dev_wr
        })
    };
    let device_recv = tokio::spawn(async move {
        let mut got = vec![0u8; SIZE];
        dev_rd.read_exact(&mut got).await.unwrap();
        (got, dev_rd)
    });
    let mut received = Vec::with_capacity(SIZE);
    while received.len() < SIZE {
        let chunk = timeout(T, stream.read())
            .await
            .unwrap()
            .unwrap()
            .expect("closed early");
        assert!(chunk.len() <= h.client.max_payload());
        received.extend_from_slice(&chunk);
    }
    assert!(received == down, "device → client data differs");
    timeout(T, writer).await.unwrap().unwrap().unwrap();
    let (got, dev_rd) = timeout(T, device_recv).await.unwrap().unwrap();
    assert!(got == up, "client → device data differs");

    // Closing the device side ends the stream.
    let dev_wr = timeout(T, device_send).await.unwrap().unwrap();
    drop(dev_rd.unsplit(dev_wr));
    assert_eq!(read_all(&stream).await, b"");
}
