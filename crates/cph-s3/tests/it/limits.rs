//! Client limits of the listener: request heads must arrive in time, stalled connections are
//! closed, and only so many connections are served at once. Clients are raw TCP sockets, so
//! every byte the endpoint sees is under the test's control.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cph_s3::{ObjError, ObjectStore, S3Config, S3Server, ServeLimits};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, AK1, PROJECT1, REGION, SK1};

/// Upper bound for anything the endpoint is expected to do; far above the limits used here.
const BOUND: Duration = Duration::from_secs(10);
/// Long enough never to fire during a test.
const LONG: Duration = Duration::from_secs(300);
const BUCKET: &str = "limits-bucket";

struct Endpoint {
    addr: SocketAddr,
    store: ObjectStore,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    async fn connect(&self) -> TcpStream {
        tokio::time::timeout(BOUND, TcpStream::connect(self.addr))
            .await
            .expect("connect timed out")
            .unwrap()
    }

    /// Stops the endpoint; it must end on its own, well within the shutdown grace.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(cph_s3::SHUTDOWN_GRACE + BOUND, self.server)
            .await
            .expect("the endpoint did not stop")
            .unwrap()
            .unwrap();
    }
}

async fn start(limits: ServeLimits) -> Endpoint {
    let dir = tempfile::tempdir().unwrap();
    let mut config = S3Config::new(dir.path().join("s3"));
    config.region = REGION.into();
    let server = S3Server::new(&config, Arc::new(harness::credentials())).unwrap();
    let store = server.store().clone();
    store
        .create_bucket(PROJECT1, "user-one", BUCKET)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(cph_s3::serve_with(
        listener,
        server.router(),
        shutdown.clone(),
        limits,
    ));
    Endpoint {
        addr,
        store,
        shutdown,
        server,
        _dir: dir,
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The head of a SigV4-signed (unsigned payload) path-style request by `AK1`, with
/// `extra` header lines (each ending in CRLF, unsigned) before the blank line.
fn signed_head(method: &str, host: SocketAddr, path: &str, extra: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    let date = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let signed = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{stamp}\n\n{signed}\nUNSIGNED-PAYLOAD"
    );
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{SK1}").as_bytes(), &date);
    for part in [REGION, "s3", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &to_sign));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
         x-amz-date: {stamp}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={AK1}/{scope}, \
         SignedHeaders={signed}, Signature={signature}\r\n{extra}\r\n"
    )
}

/// Reads one response (status and body; `head_only` for answers to `HEAD`), keeping bytes of
/// any later response in `buf`.
async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> (u16, Vec<u8>) {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(conn, buf).await;
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = if head_only {
        0
    } else {
        head.lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no Content-Length in {head}"))
    };
    while buf.len() < end + length {
        read_more(conn, buf).await;
    }
    let body = buf[end..end + length].to_vec();
    buf.drain(..end + length);
    (status, body)
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(BOUND, conn.read(&mut chunk))
        .await
        .expect("no response")
        .unwrap();
    assert!(n > 0, "connection closed mid-response");
    buf.extend_from_slice(&chunk[..n]);
}

/// Reads until the endpoint closes the connection (end of stream or reset), failing if it
/// stays open for [`BOUND`].
async fn expect_closed(conn: &mut TcpStream) {
    let drained = tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 4096];
        loop {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the endpoint kept the connection open");
}

#[tokio::test]
async fn an_unfinished_request_head_is_cut_off() {
    let ep = start(ServeLimits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: LONG,
        max_connections: 16,
    })
    .await;
    let mut conn = ep.connect().await;
    // Bytes keep arriving, but the head never ends.
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    expect_closed(&mut conn).await;
    ep.stop().await;
}

#[tokio::test]
async fn a_stalled_upload_is_cut_off_and_publishes_nothing() {
    let ep = start(ServeLimits {
        header_timeout: LONG,
        idle_timeout: Duration::from_secs(1),
        max_connections: 16,
    })
    .await;
    let mut conn = ep.connect().await;
    let head = signed_head(
        "PUT",
        ep.addr,
        &format!("/{BUCKET}/stalled"),
        "Content-Length: 1000000\r\n",
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(b"0123456789").await.unwrap();
    expect_closed(&mut conn).await;
    match ep.store.head(PROJECT1, BUCKET, "stalled").await {
        Err(ObjError::NoSuchKey) => {}
        other => panic!("the stalled upload left {other:?}"),
    }
    // The partial upload's temporary file goes away with the request.
    let tmp = ep.store.root().join(".tmp");
    let cleaned = tokio::time::timeout(BOUND, async {
        while std::fs::read_dir(&tmp).unwrap().next().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        cleaned.is_ok(),
        "temporary files left after a stalled upload"
    );
    ep.stop().await;
}

#[tokio::test]
async fn signed_requests_share_a_keep_alive_connection_until_it_idles() {
    let ep = start(ServeLimits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        max_connections: 16,
    })
    .await;
    let mut conn = ep.connect().await;
    let mut buf = Vec::new();
    let path = format!("/{BUCKET}/greeting");
    let data = b"hello over one connection";

    let put = signed_head(
        "PUT",
        ep.addr,
        &path,
        &format!("Content-Length: {}\r\n", data.len()),
    );
    conn.write_all(put.as_bytes()).await.unwrap();
    conn.write_all(data).await.unwrap();
    let (status, body) = read_response(&mut conn, &mut buf, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let get = signed_head("GET", ep.addr, &path, "");
    conn.write_all(get.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut conn, &mut buf, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, data);

    // An idle keep-alive connection is closed in the end.
    expect_closed(&mut conn).await;
    ep.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let ep = start(ServeLimits {
        header_timeout: LONG,
        idle_timeout: LONG,
        max_connections: 2,
    })
    .await;
    // The unauthenticated API-version probe answers 200 with no body.
    let probe = b"HEAD /?apiversion HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = ep.connect().await;
    let mut second = ep.connect().await;
    for conn in [&mut first, &mut second] {
        conn.write_all(probe).await.unwrap();
        let (status, _) = read_response(conn, &mut Vec::new(), true).await;
        assert_eq!(status, 200);
    }

    // Both slots are held by idle keep-alive connections: the third is not served.
    let mut third = ep.connect().await;
    third.write_all(probe).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut byte)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");

    drop(first);
    let (status, _) = read_response(&mut third, &mut Vec::new(), true).await;
    assert_eq!(status, 200);

    // Shutdown ends the endpoint with idle connections open, and closes them.
    ep.stop().await;
    expect_closed(&mut second).await;
    expect_closed(&mut third).await;
}
