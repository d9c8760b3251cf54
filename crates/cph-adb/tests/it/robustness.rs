//! Malformed, truncated and oversized input, generated from fixed seeds: the packet reader,
//! the shell-protocol decoder and the sync parser must neither panic nor grow without bound,
//! and connections must end cleanly.

use crate::support::{DirFs, RawClient, TempDir, TestDevice, host_key};
use crate::sync_server::{req, run};
use cph_adb::device::{self, EndpointConfig};
use cph_adb::packet::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_VERSION, A_WRTE, AUTH_SIGNATURE, HEADER_LEN, Packet,
};
use cph_adb::shell_protocol::{self, Decoder};
use cph_adb::sync;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Counts panics anywhere in the process (spawned tasks swallow theirs), so tests can assert
/// that none happened while they ran.
fn panics() -> &'static AtomicUsize {
    static COUNT: OnceLock<AtomicUsize> = OnceLock::new();
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics().fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
    COUNT.get_or_init(|| AtomicUsize::new(0))
}

fn header(command: u32, arg0: u32, arg1: u32, len: u32) -> [u8; HEADER_LEN] {
    let mut h = Packet::new(command, arg0, arg1, Vec::new()).header(false);
    h[12..16].copy_from_slice(&len.to_le_bytes());
    h
}

/// Sends `bytes` on a fresh connection (optionally after authenticating), then half-closes;
/// the device must close its side within a few seconds.
async fn feed_connection(bytes: Vec<u8>, authenticate: bool, config: &EndpointConfig) {
    let dir = TempDir::new("fuzz");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let shutdown = CancellationToken::new();
    let cfg = config.clone();
    let task = tokio::spawn(async move {
        device::serve_connection(theirs, device, &cfg, shutdown).await;
    });
    let mut c = RawClient::new(ours);
    if authenticate {
        c.handshake(A_VERSION, host_key()).await;
    }
    let (mut r, mut w) = tokio::io::split(c.io);
    let reader = tokio::spawn(async move {
        // Drain (acknowledging nothing) until the device closes.
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    let _ = w.write_all(&bytes).await;
    let _ = w.shutdown().await;
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("connection did not end")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("device side not closed")
        .unwrap();
}

/// A random mix of well-formed and broken packets.
fn random_packets(rng: &mut StdRng) -> Vec<u8> {
    const SERVICES: &[&[u8]] = &[
        b"sync:\0",
        b"shell,v2,raw:cat\0",
        b"shell:echo x\0",
        b"exec:cat\0",
        b"abb_exec:package\0install\0-S\x0010\0",
        b"root:\0",
        b"reboot\0",
        b"reboot:\0",
        b"shell,v2,pty,TERM=\xff\xfe:\0",
        b"",
    ];
    let mut out = Vec::new();
    for _ in 0..rng.gen_range(1..40) {
        let command = match rng.gen_range(0..10) {
            0 => A_CNXN,
            1 => A_AUTH,
            2 | 3 => A_OPEN,
            4 => A_OKAY,
            5 => A_CLSE,
            6 => rng.r#gen(),
            _ => A_WRTE,
        };
        let arg0 = if rng.gen_bool(0.7) {
            rng.gen_range(0..4)
        } else {
            rng.r#gen()
        };
        let arg1 = if rng.gen_bool(0.7) {
            rng.gen_range(0..4)
        } else {
            rng.r#gen()
        };
        let payload: Vec<u8> = if command == A_OPEN && rng.gen_bool(0.8) {
            SERVICES[rng.gen_range(0..SERVICES.len())].to_vec()
        } else if command == A_WRTE && rng.gen_bool(0.5) {
            random_sync_stream(rng)
        } else {
            let n = rng.gen_range(0..300);
            let mut v = vec![0u8; n];
            rng.fill_bytes(&mut v);
            v
        };
        let mut h = header(command, arg0, arg1, payload.len() as u32);
        match rng.gen_range(0..20) {
            // Bad magic.
            0 => h[20] ^= 0x55,
            // Oversized length.
            1 => h[12..16].copy_from_slice(&rng.gen_range(1_048_577u32..=u32::MAX).to_le_bytes()),
            _ => {}
        }
        out.extend_from_slice(&h);
        out.extend_from_slice(&payload);
        if rng.gen_bool(0.05) {
            // Truncate mid-packet.
            let cut = rng.gen_range(0..out.len());
            out.truncate(cut);
            break;
        }
    }
    out
}

/// A random sequence of sync messages, some valid, some broken.
fn random_sync_stream(rng: &mut StdRng) -> Vec<u8> {
    let ids = [
        sync::ID_LSTAT_V1,
        sync::ID_STAT_V2,
        sync::ID_LSTAT_V2,
        sync::ID_LIST_V1,
        sync::ID_LIST_V2,
        sync::ID_SEND_V1,
        sync::ID_SEND_V2,
        sync::ID_RECV_V1,
        sync::ID_RECV_V2,
        sync::ID_DATA,
        sync::ID_DONE,
        sync::ID_QUIT,
        0xdead_beef,
    ];
    let mut out = Vec::new();
    for _ in 0..rng.gen_range(1..12) {
        let id = ids[rng.gen_range(0..ids.len())];
        let len: u32 = match rng.gen_range(0..10) {
            0 => rng.r#gen(),
            1 => 1025,
            _ => rng.gen_range(0..40),
        };
        out.extend_from_slice(&sync::SyncHeader::new(id, len).encode());
        let body = (len as usize).min(64);
        let mut v = vec![0u8; body];
        if rng.gen_bool(0.5) {
            rng.fill_bytes(&mut v);
        } else {
            for (i, b) in v.iter_mut().enumerate() {
                *b = b"/tmp/x,0644"[i % 11];
            }
        }
        out.extend_from_slice(&v);
        if id == sync::ID_SEND_V2 && rng.gen_bool(0.7) {
            let flags = if rng.gen_bool(0.5) { 0 } else { rng.r#gen() };
            out.extend_from_slice(
                &sync::SendV2 {
                    mode: rng.r#gen(),
                    flags,
                }
                .encode(),
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn packet_reader_survives_garbage_before_auth() {
    let before = panics().load(Ordering::SeqCst);
    let config = EndpointConfig {
        handshake_timeout: Duration::from_secs(3),
        unauthorized_timeout: Duration::from_secs(3),
        ..EndpointConfig::default()
    };
    let mut rng = StdRng::seed_from_u64(0xadb0);
    for i in 0..60 {
        let bytes = if i % 3 == 0 {
            let mut v = vec![0u8; rng.gen_range(0..2000)];
            rng.fill_bytes(&mut v);
            v
        } else {
            random_packets(&mut rng)
        };
        feed_connection(bytes, false, &config).await;
    }
    assert_eq!(panics().load(Ordering::SeqCst), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn packet_reader_survives_garbage_after_auth() {
    let before = panics().load(Ordering::SeqCst);
    let config = EndpointConfig {
        close_grace: Duration::from_millis(200),
        ..EndpointConfig::default()
    };
    let mut rng = StdRng::seed_from_u64(0xadb1);
    for _ in 0..60 {
        feed_connection(random_packets(&mut rng), true, &config).await;
    }
    assert_eq!(panics().load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn oversized_length_closes_before_any_payload() {
    let dir = TempDir::new("huge");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        device::serve_connection(
            theirs,
            device,
            &EndpointConfig::default(),
            CancellationToken::new(),
        )
        .await;
    });
    let mut c = RawClient::new(ours);
    // Before authentication the limit is 4096 bytes.
    c.io.write_all(&header(A_CNXN, A_VERSION, 4096, 4097))
        .await
        .unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(3), c.io.read(&mut b))
        .await
        .expect("not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    task.await.unwrap();

    // After authentication, a WRTE announcing 4 GiB is refused without waiting for it.
    let dir = TempDir::new("huge2");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        device::serve_connection(
            theirs,
            device,
            &EndpointConfig::default(),
            CancellationToken::new(),
        )
        .await;
    });
    let mut c = RawClient::new(ours);
    c.handshake(A_VERSION, host_key()).await;
    c.io.write_all(&header(A_WRTE, 1, 1, u32::MAX))
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(3), c.io.read(&mut b))
        .await
        .expect("not closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    task.await.unwrap();
}

#[tokio::test]
async fn bad_auth_payloads_are_survived() {
    let dir = TempDir::new("authfuzz");
    let device = TestDevice::new(dir.path(), vec![host_key().public_key()]);
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        device::serve_connection(
            theirs,
            device,
            &EndpointConfig::default(),
            CancellationToken::new(),
        )
        .await;
    });
    let mut c = RawClient::new(ours);
    c.send(A_CNXN, A_VERSION, 0, b"").await;
    c.expect(A_AUTH).await;
    let mut rng = StdRng::seed_from_u64(7);
    for len in [0usize, 1, 255, 256, 257, 512, 4096] {
        let mut sig = vec![0u8; len];
        rng.fill_bytes(&mut sig);
        c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
        c.expect(A_AUTH).await;
    }
    // A peer max payload of 0 is clamped; the connection still works.
    let t = {
        c.send(A_CNXN, A_VERSION, 0, b"host::\0").await;
        c.expect(A_AUTH).await
    };
    let sig = host_key().sign_token(&t.payload).unwrap();
    c.send(A_AUTH, AUTH_SIGNATURE, 0, &sig).await;
    c.expect(A_CNXN).await;
    let remote = c
        .open(1, "shell,v2,raw:head -c 3000 /dev/zero")
        .await
        .unwrap();
    let data = c.read_to_close(1, remote).await;
    assert!(data.len() > 3000);
    drop(c);
    task.await.unwrap();
}

#[test]
fn shell_decoder_fuzz() {
    let mut rng = StdRng::seed_from_u64(0x5e11);
    for _ in 0..500 {
        let max = rng.gen_range(0..5000);
        let mut d = Decoder::new(max);
        let mut failed = false;
        for _ in 0..rng.gen_range(1..50) {
            let mut chunk = vec![0u8; rng.gen_range(0..700)];
            rng.fill_bytes(&mut chunk);
            if rng.gen_bool(0.5) && chunk.len() >= 5 {
                // A plausible header with a small length.
                chunk[0] = rng.gen_range(0..6);
                let len = rng.gen_range(0..600u32).to_le_bytes();
                chunk[1..5].copy_from_slice(&len);
            }
            d.push(&chunk);
            loop {
                match d.next_packet() {
                    Ok(Some(p)) => assert!(p.data.len() <= max),
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            // Never more than one unfinished packet plus the last chunk.
            assert!(d.buffered() <= max + shell_protocol::HEADER_LEN + chunk.len());
            if failed {
                assert!(d.next_packet().is_err());
                assert_eq!(d.buffered(), 0);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_parser_fuzz() {
    let before = panics().load(Ordering::SeqCst);
    let dir = TempDir::new("syncfuzz");
    std::fs::write(dir.path().join("file"), vec![9u8; 200_000]).unwrap();
    let fs: Arc<dyn cph_adb::SyncFs> = Arc::new(DirFs {
        root: dir.path().to_path_buf(),
    });
    let mut rng = StdRng::seed_from_u64(0x5c);
    for i in 0..300 {
        let mut input = random_sync_stream(&mut rng);
        if i % 5 == 0 {
            // Valid prefix, then garbage.
            let mut v = req(sync::ID_RECV_V1, "/file");
            v.extend(req(sync::ID_LIST_V2, "/"));
            v.extend(input);
            input = v;
        }
        if rng.gen_bool(0.3) && !input.is_empty() {
            let cut = rng.gen_range(0..input.len());
            input.truncate(cut);
        }
        let step = rng.gen_range(1..200);
        let (_, out) = run(fs.clone(), &input, step).await;
        // Replies are bounded by what was asked: at most a couple of file copies here.
        assert!(out.len() < 2 * 1024 * 1024, "{}", out.len());
    }
    assert_eq!(panics().load(Ordering::SeqCst), before);
}
