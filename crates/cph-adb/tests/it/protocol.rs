//! Transport-level behaviour, checked packet by packet with a raw client.

use crate::support::{RawClient, TempDir, TestDevice, host_key, listener, other_key};
use cph_adb::device::{self, EndpointConfig, FEATURES, ROOT_REPLY};
use cph_adb::packet::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_VERSION, A_VERSION_MIN, A_WRTE, AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE, AUTH_TOKEN, Packet, checksum,
};
use cph_adb::shell_protocol::{self, Decoder};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct Harness {
    client: RawClient<DuplexStream>,
    device: Arc<TestDevice>,
    task: JoinHandle<()>,
    shutdown: CancellationToken,
    _dir: TempDir,
}

fn start_with(config: EndpointConfig, keys: Vec<cph_adb::AdbPublicKey>) -> Harness {
    let dir = TempDir::new("proto");
    let device = TestDevice::new(dir.path(), keys);
    let (ours, theirs) = tokio::io::duplex(4 * 1024 * 1024);
    let shutdown = CancellationToken::new();
    let d: Arc<dyn cph_adb::Device> = device.clone();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        device::serve_connection(theirs, d, &config, token).await;
    });
    Harness {
        client: RawClient::new(ours),
        device,
        task,
        shutdown,
        _dir: dir,
    }
}

/// The same, as a connection made in this process whose bytes reach the endpoint as chunks
/// of the sizes in `pattern` (repeated), each its own allocation.
fn start_in_process(config: EndpointConfig, pattern: &'static [usize]) -> Harness {
    let dir = TempDir::new("proto-local");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(4 * 1024 * 1024);
    let (r, w) = tokio::io::split(theirs);
    let chunks = futures::stream::unfold((r, 0usize), move |(mut r, i)| async move {
        let want = pattern[i % pattern.len()];
        let mut buf = bytes::BytesMut::with_capacity(want);
        match r.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buf.freeze()), (r, i + 1))),
            Err(e) => Some((Err(e), (r, i + 1))),
        }
    });
    let conn = device::InProcessConnection::new(chunks, w);
    let shutdown = CancellationToken::new();
    let endpoint = device::Endpoint::new(device.clone(), config);
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        endpoint.serve_in_process(conn, token).await;
    });
    Harness {
        client: RawClient::new(ours),
        device,
        task,
        shutdown,
        _dir: dir,
    }
}

fn start(config: EndpointConfig) -> Harness {
    start_with(config, vec![host_key().public_key()])
}

/// Whether the device sends nothing for `ms` milliseconds (and keeps the connection open).
async fn silent_for<S: tokio::io::AsyncRead + Unpin>(io: &mut S, ms: u64) -> bool {
    let mut b = [0u8; 1];
    tokio::time::timeout(Duration::from_millis(ms), io.read(&mut b))
        .await
        .is_err()
}

/// Reads until end of stream (the device closed the connection); fails after `secs`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(io: &mut S, secs: u64) -> bool {
    let mut b = [0u8; 4096];
    let r = tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match io.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.is_ok()
}

#[tokio::test]
async fn old_protocol_gets_checksums_and_banner() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.send(A_CNXN, A_VERSION_MIN, 1024 * 1024, b"host::test\0")
        .await;
    let (auth, check) = c.recv().await.unwrap();
    assert_eq!(auth.command, A_AUTH);
    assert_eq!(auth.arg0, AUTH_TOKEN);
    assert_eq!(auth.payload.len(), 20);
    assert_eq!(check, checksum(&auth.payload));
    let sig = host_key().sign_token(&auth.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    let (cnxn, check) = c.recv().await.unwrap();
    assert_eq!(cnxn.command, A_CNXN);
    assert_eq!(cnxn.arg0, A_VERSION_MIN);
    assert_eq!(cnxn.arg1, 1024 * 1024);
    assert_eq!(check, checksum(&cnxn.payload));
    let banner = String::from_utf8(cnxn.payload.to_vec()).unwrap();
    assert_eq!(
        banner,
        format!(
            "device::ro.product.name=cphprod;ro.product.model=CphModel;ro.product.device=cphdev;features={FEATURES}"
        )
    );
    assert!(!banner.contains("delayed_ack") && !banner.contains("zstd"));
}

#[tokio::test]
async fn current_protocol_skips_checksums() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.send(A_CNXN, 0x0100_0002, 1024 * 1024, b"host::\0").await;
    let (auth, check) = c.recv().await.unwrap();
    assert_eq!(auth.command, A_AUTH);
    assert_eq!(check, 0);
    let sig = host_key().sign_token(&auth.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    let (cnxn, check) = c.recv().await.unwrap();
    assert_eq!(cnxn.arg0, A_VERSION, "version is min(peer, ours)");
    assert_eq!(check, 0);
}

#[tokio::test]
async fn bad_signature_gets_fresh_token_and_public_key_is_not_trusted() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.send(A_CNXN, A_VERSION, 1024 * 1024, b"host::\0").await;
    let first = c.expect(A_AUTH).await;
    let sig = other_key().sign_token(&first.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    let second = c.expect(A_AUTH).await;
    assert_eq!(second.arg0, AUTH_TOKEN);
    assert_ne!(first.payload, second.payload);
    // A signature of the old token is not accepted for the new one.
    let stale = host_key().sign_token(&first.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &stale).await;
    let third = c.expect(A_AUTH).await;
    // The host offers its key: the device stays silent and keeps the connection.
    let line = format!("{}\0", other_key().public_key().to_line("x@y").unwrap());
    c.send(A_AUTH, AUTH_RSAPUBLICKEY, 0, line.as_bytes()).await;
    assert!(silent_for(&mut c.io, 500).await);
    // Streams cannot be opened while unauthorized.
    c.send(cph_adb::packet::A_OPEN, 1, 0, b"shell:echo hi\0")
        .await;
    assert!(silent_for(&mut c.io, 300).await);
    // The right key still works on the same connection.
    let sig = host_key().sign_token(&third.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    c.expect(A_CNXN).await;
}

#[tokio::test]
async fn empty_allow_list_admits_nobody() {
    let mut h = start_with(EndpointConfig::default(), Vec::new());
    let c = &mut h.client;
    c.send(A_CNXN, A_VERSION, 1024 * 1024, b"host::\0").await;
    let t = c.expect(A_AUTH).await;
    let sig = host_key().sign_token(&t.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    assert_eq!(c.expect(A_AUTH).await.arg0, AUTH_TOKEN);
}

#[tokio::test]
async fn unauthenticated_connections_time_out() {
    let config = EndpointConfig {
        handshake_timeout: Duration::from_millis(300),
        unauthorized_timeout: Duration::from_millis(600),
        ..EndpointConfig::default()
    };
    // No CNXN at all.
    let mut h = start(config.clone());
    let t0 = Instant::now();
    assert!(closed_within(&mut h.client.io, 5).await);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    h.task.await.unwrap();

    // CNXN but never a valid signature.
    let mut h = start(config);
    h.client
        .send(A_CNXN, A_VERSION, 1024 * 1024, b"host::\0")
        .await;
    h.client.expect(A_AUTH).await;
    let t0 = Instant::now();
    // Repeating CNXN does not extend the deadline.
    tokio::time::sleep(Duration::from_millis(400)).await;
    h.client
        .send(A_CNXN, A_VERSION, 1024 * 1024, b"host::\0")
        .await;
    h.client.expect(A_AUTH).await;
    assert!(closed_within(&mut h.client.io, 5).await);
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(950), "{elapsed:?}");
    h.task.await.unwrap();
}

#[tokio::test]
async fn repeated_bad_signatures_are_throttled() {
    let config = EndpointConfig {
        auth_failures_before_delay: 2,
        auth_failure_delay: Duration::from_millis(400),
        ..EndpointConfig::default()
    };
    let mut h = start(config);
    let c = &mut h.client;
    c.send(A_CNXN, A_VERSION, 1024 * 1024, b"host::\0").await;
    let mut token = c.expect(A_AUTH).await;
    for i in 0..4 {
        let sig = other_key().sign_token(&token.payload).unwrap();
        let t0 = Instant::now();
        c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
        token = c.expect(A_AUTH).await;
        let slow = t0.elapsed() >= Duration::from_millis(350);
        assert_eq!(slow, i >= 2, "attempt {i}");
    }
}

fn decode_shell(data: &[u8]) -> (Vec<u8>, Vec<u8>, Option<u8>) {
    let mut d = Decoder::default();
    d.push(data);
    let (mut out, mut err, mut exit) = (Vec::new(), Vec::new(), None);
    while let Some(p) = d.next_packet().unwrap() {
        assert!(exit.is_none(), "nothing may follow the exit packet");
        match p.id {
            shell_protocol::ID_STDOUT => out.extend_from_slice(&p.data),
            shell_protocol::ID_STDERR => err.extend_from_slice(&p.data),
            shell_protocol::ID_EXIT => exit = p.exit_code(),
            other => panic!("unexpected id {other}"),
        }
    }
    assert_eq!(d.buffered(), 0);
    (out, err, exit)
}

#[tokio::test]
async fn shell_v2_separates_streams_and_sends_exit_before_close() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let remote = c
        .open(7, "shell,v2,TERM=xterm,raw:echo out; echo err >&2; exit 3")
        .await
        .unwrap();
    c.send(
        A_WRTE,
        7,
        remote,
        &shell_protocol::encode(shell_protocol::ID_CLOSE_STDIN, b""),
    )
    .await;
    let data = c.read_to_close(7, remote).await;
    let (out, err, exit) = decode_shell(&data);
    assert_eq!(out, b"out\n");
    assert_eq!(err, b"err\n");
    assert_eq!(exit, Some(3));
    let req = h.device.requests.lock().unwrap()[0].clone();
    assert_eq!(req.term.as_deref(), Some("xterm"));
    assert!(!req.pty);
}

#[tokio::test]
async fn shell_v2_stdin_packets_reassembled_across_writes() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let remote = c.open(3, "shell,v2,raw:cat").await.unwrap();
    let mut stream = shell_protocol::encode(shell_protocol::ID_STDIN, b"hello ").to_vec();
    stream.extend_from_slice(&shell_protocol::encode(
        shell_protocol::ID_WINDOW_SIZE_CHANGE,
        b"24x80,0x0",
    ));
    stream.extend_from_slice(&shell_protocol::encode(shell_protocol::ID_STDIN, b"world"));
    stream.extend_from_slice(&shell_protocol::encode(shell_protocol::ID_CLOSE_STDIN, b""));
    // One byte per WRTE: packets straddle every boundary. Output may arrive meanwhile.
    let mut data = Vec::new();
    for b in &stream {
        c.send(A_WRTE, 3, remote, std::slice::from_ref(b)).await;
        loop {
            let p = c.recv().await.unwrap().0;
            match p.command {
                A_OKAY => break,
                A_WRTE => {
                    data.extend_from_slice(&p.payload);
                    c.send(A_OKAY, 3, remote, b"").await;
                }
                other => panic!("unexpected {other:08x}"),
            }
        }
    }
    data.extend(c.read_to_close(3, remote).await);
    let (out, _, exit) = decode_shell(&data);
    assert_eq!(out, b"hello world");
    assert_eq!(exit, Some(0));
}

#[tokio::test]
async fn exec_is_raw_and_client_close_is_echoed_once() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let remote = c.open(5, "exec:cat; echo done >&2").await.unwrap();
    c.send(A_WRTE, 5, remote, b"ping").await;
    c.expect(A_OKAY).await;
    let w = c.expect(A_WRTE).await;
    assert_eq!(&w.payload[..], b"ping");
    assert_eq!((w.arg0, w.arg1), (remote, 5));
    c.send(A_OKAY, 5, remote, b"").await;
    c.send(A_CLSE, 5, remote, b"").await;
    let clse = c.expect(A_CLSE).await;
    assert_eq!((clse.arg0, clse.arg1), (remote, 5));
    // A duplicate CLSE and late packets for the closed stream are ignored.
    c.send(A_CLSE, 5, remote, b"").await;
    c.send(A_OKAY, 5, remote, b"").await;
    c.send(A_WRTE, 5, remote, b"late").await;
    assert!(silent_for(&mut c.io, 500).await);
}

#[tokio::test]
async fn unknown_services_ids_and_commands() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    for s in ["tcpip:5555", "usb:", "framebuffer:", "jdwp:1", "nonsense"] {
        assert_eq!(c.open(9, s).await, None, "{s}");
    }
    c.send(A_WRTE, 9, 12345, b"x").await;
    c.send(A_OKAY, 9, 12345, b"").await;
    c.send(A_CLSE, 9, 12345, b"").await;
    c.send(0x1234_5678, 1, 2, b"what").await;
    c.send(cph_adb::packet::A_SYNC, 1, 2, b"").await;
    assert!(silent_for(&mut c.io, 300).await);
    // Trailing NULs are stripped and the connection still works.
    let remote = c.open(10, "root:\0\0").await.unwrap();
    assert_eq!(c.read_to_close(10, remote).await, ROOT_REPLY.as_bytes());
    let remote = c.open(11, "unroot:").await.unwrap();
    let text = String::from_utf8(c.read_to_close(11, remote).await).unwrap();
    assert!(!text.contains("restarting"));
}

#[tokio::test]
async fn second_cnxn_resets_the_session() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let remote = c.open(1, "exec:cat").await.unwrap();
    c.send(A_CNXN, A_VERSION, 1024 * 1024, b"host::\0").await;
    c.expect(A_AUTH).await;
    // The old stream is gone and new streams need authentication again.
    c.send(A_WRTE, 1, remote, b"x").await;
    c.send(cph_adb::packet::A_OPEN, 2, 0, b"root:\0").await;
    assert!(silent_for(&mut c.io, 400).await);
}

#[tokio::test]
async fn outgoing_data_is_chunked_and_flow_controlled() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.send(A_CNXN, A_VERSION, 4096, b"host::\0").await;
    let t = c.expect(A_AUTH).await;
    let sig = host_key().sign_token(&t.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    c.expect(A_CNXN).await;
    let remote = c.open(4, "exec:head -c 100000 /dev/zero").await.unwrap();
    let mut total = 0;
    loop {
        let (p, _) = c.recv().await.unwrap();
        match p.command {
            A_WRTE => {
                assert!(p.payload.len() <= 4096);
                total += p.payload.len();
                // Without our OKAY nothing more may arrive.
                if total == p.payload.len() {
                    assert!(silent_for(&mut c.io, 300).await);
                }
                c.send(A_OKAY, 4, remote, b"").await;
            }
            A_CLSE => break,
            _ => {}
        }
    }
    assert_eq!(total, 100_000);
}

#[tokio::test]
async fn stream_limit_refuses_extra_streams() {
    let mut h = start(EndpointConfig {
        max_streams: 2,
        ..EndpointConfig::default()
    });
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    assert!(c.open(1, "exec:cat").await.is_some());
    assert!(c.open(2, "exec:cat").await.is_some());
    assert_eq!(c.open(3, "exec:cat").await, None);
}

/// The next packet, or `None` when nothing arrives within `ms` milliseconds.
async fn recv_within(c: &mut RawClient<DuplexStream>, ms: u64) -> Option<cph_adb::packet::Packet> {
    tokio::time::timeout(Duration::from_millis(ms), c.recv())
        .await
        .ok()
        .flatten()
        .map(|(p, _)| p)
}

#[tokio::test]
async fn a_write_is_acknowledged_once_its_header_is_in() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let n = 64 * 1024;
    let remote = c.open(1, &format!("exec:head -c {n}")).await.unwrap();
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let p = Packet::new(A_WRTE, 1, remote, data.clone());
    let mut first = p.header(c.checksum).to_vec();
    first.extend_from_slice(&data[..n / 2]);
    c.io.write_all(&first).await.unwrap();
    // Half the payload is still to come: the next write is granted already.
    let okay = recv_within(c, 5000)
        .await
        .expect("no OKAY before the payload ended");
    assert_eq!(
        (okay.command, okay.arg0, okay.arg1),
        (A_OKAY, remote, 1),
        "{okay:?}"
    );
    c.io.write_all(&data[n / 2..]).await.unwrap();
    assert_eq!(c.read_to_close(1, remote).await, data);
}

#[tokio::test]
async fn in_process_chunks_of_any_size_carry_writes_intact() {
    // Chunks that cut headers, tiny ones that force payloads into one buffer, and large ones.
    for pattern in [
        &[1usize, 7, 24, 100, 5000, 32 * 1024, 3][..],
        &[1][..],
        &[32 * 1024][..],
        &[300_000][..],
    ] {
        let mut h = start_in_process(EndpointConfig::default(), pattern);
        let c = &mut h.client;
        c.handshake(A_VERSION, host_key()).await;
        // A push over `sync:`: every WRTE's payload, whatever pieces it arrived in, lands in
        // the file in order.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut wire = cph_adb::sync::encode_request(cph_adb::sync::ID_SEND_V1, b"/f.bin,33188")
            .unwrap()
            .to_vec();
        for part in data.chunks(65_536) {
            wire.extend_from_slice(&cph_adb::sync::encode_data_header(part.len() as u32));
            wire.extend_from_slice(part);
        }
        wire.extend_from_slice(&cph_adb::sync::encode_done(0));
        let remote = c.open(1, "sync:").await.unwrap();
        for w in wire.chunks(100_000) {
            c.send(A_WRTE, 1, remote, w).await;
            c.expect(A_OKAY).await;
        }
        let reply = c.expect(A_WRTE).await;
        assert_eq!(&reply.payload[..], &cph_adb::sync::encode_okay()[..]);
        assert_eq!(
            std::fs::read(h._dir.path().join("f.bin")).unwrap(),
            data,
            "pattern {pattern:?}"
        );
        c.send(A_OKAY, 1, remote, b"").await;
        let r = c.open(2, "root:").await.unwrap();
        assert_eq!(c.read_to_close(2, r).await, ROOT_REPLY.as_bytes());
        h.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), h.task)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn in_process_connections_are_refused_without_a_known_key() {
    let mut h = start_in_process(EndpointConfig::default(), &[5, 4096]);
    let c = &mut h.client;
    c.send(A_CNXN, A_VERSION, 1 << 20, b"host::\0").await;
    let token = c.expect(A_AUTH).await;
    let sig = other_key().sign_token(&token.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    let again = c.expect(A_AUTH).await;
    assert_eq!(
        again.arg0, AUTH_TOKEN,
        "a stranger's signature must not get in"
    );
}

#[tokio::test]
async fn a_full_stream_grants_no_write_ahead() {
    let mut h = start(EndpointConfig {
        max_payload: 4096,
        stream_buffer_limit: 64 * 1024,
        ..EndpointConfig::default()
    });
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    // `sleep` never reads stdin: once its pipe is full the stream's buffer grows.
    let remote = c.open(1, "exec:sleep 30").await.unwrap();
    let chunk = vec![7u8; 4096];
    let mut granted = 0;
    loop {
        c.send(A_WRTE, 1, remote, &chunk).await;
        match recv_within(c, 500).await {
            Some(p) if p.command == A_OKAY => granted += 1,
            Some(p) => panic!("unexpected {p:?}"),
            None => break,
        }
        assert!(granted < 1000, "the stream never filled");
    }
    // A peer that writes without its OKAY is not granted another write by its header.
    let mut header = Packet::new(A_WRTE, 1, remote, chunk.clone())
        .header(c.checksum)
        .to_vec();
    header.extend_from_slice(&chunk[..100]);
    c.io.write_all(&header).await.unwrap();
    assert!(recv_within(c, 300).await.is_none());
}

#[tokio::test]
async fn overrunning_a_stream_closes_only_that_stream() {
    let mut h = start(EndpointConfig {
        max_payload: 4096,
        stream_buffer_limit: 8192,
        ..EndpointConfig::default()
    });
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    // `sleep` never reads stdin: after the pipe fills, only the stream buffer remains.
    let remote = c.open(1, "exec:sleep 30").await.unwrap();
    let chunk = vec![0u8; 4096];
    let mut closed = false;
    for _ in 0..64 {
        c.send(A_WRTE, 1, remote, &chunk).await;
    }
    while let Some((p, _)) = c.recv().await {
        if p.command == A_CLSE {
            assert_eq!((p.arg0, p.arg1), (remote, 1));
            closed = true;
            break;
        }
    }
    assert!(closed);
    let r = c.open(2, "root:").await.unwrap();
    assert_eq!(c.read_to_close(2, r).await, ROOT_REPLY.as_bytes());
}

#[tokio::test]
async fn streamed_install_over_abb_exec_gets_exact_bytes() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let n = 300_000usize;
    let remote = c
        .open(8, &format!("abb_exec:package\0install\0-r\0-S\0{n}"))
        .await
        .unwrap();
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    for chunk in data.chunks(65536) {
        c.send(A_WRTE, 8, remote, chunk).await;
        c.expect(A_OKAY).await;
    }
    let reply = c.read_to_close(8, remote).await;
    assert_eq!(reply, b"Success\n");
    assert_eq!(
        h.device.installs.lock().unwrap().as_slice(),
        &[(n as u64, n as u64)]
    );
}

#[tokio::test]
async fn reboot_calls_the_device_and_closes_the_connection() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    let remote = c.open(1, "reboot:bootloader").await.unwrap();
    let clse = c.expect(A_CLSE).await;
    assert_eq!((clse.arg0, clse.arg1), (remote, 1));
    assert!(closed_within(&mut c.io, 5).await);
    h.task.await.unwrap();
    assert_eq!(
        h.device.reboots.lock().unwrap().as_slice(),
        &["bootloader".to_string()]
    );
}

#[tokio::test]
async fn cancelling_closes_connections_and_running_commands() {
    let mut h = start(EndpointConfig::default());
    let c = &mut h.client;
    c.handshake(A_VERSION, host_key()).await;
    c.open(1, "exec:sleep 100").await.unwrap();
    let t0 = Instant::now();
    h.shutdown.cancel();
    assert!(closed_within(&mut c.io, 3).await);
    tokio::time::timeout(Duration::from_secs(3), &mut h.task)
        .await
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_limits_connections_and_stops_on_cancel() {
    let dir = TempDir::new("serve");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let l = listener().await;
    let addr = l.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let config = EndpointConfig {
        max_connections: 1,
        ..EndpointConfig::default()
    };
    let server = tokio::spawn(device::serve(l, device, config, shutdown.clone()));
    let mut first = RawClient::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    first.handshake(A_VERSION, host_key()).await;
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut second, 3).await,
        "excess connection refused"
    );
    shutdown.cancel();
    assert!(closed_within(&mut first.io, 3).await);
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .unwrap()
        .unwrap();
}
