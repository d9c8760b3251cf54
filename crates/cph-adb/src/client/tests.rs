//! Client tests against a scripted device speaking raw packets over an in-memory pipe, and
//! end-to-end tests against this crate's device endpoint.

use super::install::{PackageFront, parse_session_id};
use super::transport::parse_banner;
use super::*;
use crate::keys::AdbPublicKey;
use crate::packet::{
    A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_VERSION, A_VERSION_MIN, A_WRTE, AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE, AUTH_TOKEN, HEADER_LEN, MAX_PAYLOAD, Packet, checksum, parse_header,
};
use crate::shell_protocol::{self as sp};
use bytes::Bytes;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;

/// Every wait in a test is bounded by this.
const T: Duration = Duration::from_secs(10);

/// One key for the whole test binary (2048-bit generation is slow).
pub(super) fn key() -> &'static AdbPrivateKey {
    static KEY: OnceLock<AdbPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| AdbPrivateKey::generate().unwrap())
}

pub(super) fn other_key() -> &'static AdbPrivateKey {
    static KEY: OnceLock<AdbPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| AdbPrivateKey::generate().unwrap())
}

pub(super) fn test_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(5),
        auth_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

/// The device end of an in-memory connection, driven packet by packet by a test.
struct Dev {
    io: DuplexStream,
    checksum: bool,
}

impl Dev {
    /// Reads one packet and its raw header.
    async fn read_raw(&mut self) -> ([u8; HEADER_LEN], Packet) {
        let mut h = [0u8; HEADER_LEN];
        timeout(T, self.io.read_exact(&mut h))
            .await
            .expect("device waited too long for a packet")
            .unwrap();
        let (command, arg0, arg1, len, magic) = parse_header(&h);
        assert_eq!(magic, command ^ 0xffff_ffff);
        assert!(len <= MAX_PAYLOAD);
        let mut payload = vec![0u8; len as usize];
        timeout(T, self.io.read_exact(&mut payload))
            .await
            .unwrap()
            .unwrap();
        (h, Packet::new(command, arg0, arg1, payload))
    }

    async fn read(&mut self) -> Packet {
        self.read_raw().await.1
    }

    /// True if no packet arrives within `ms` milliseconds.
    async fn quiet(&mut self, ms: u64) -> bool {
        let mut b = [0u8; 1];
        match timeout(Duration::from_millis(ms), self.io.read(&mut b)).await {
            Err(_) => true,
            Ok(Ok(0)) => true,
            Ok(_) => false,
        }
    }

    async fn write(&mut self, p: Packet) {
        p.write_to(&mut self.io, self.checksum).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn expect_open(&mut self) -> (u32, String) {
        let p = self.read().await;
        assert_eq!(p.command, A_OPEN, "expected OPEN, got {p:?}");
        let service = String::from_utf8(p.payload.to_vec()).unwrap();
        let service = service
            .strip_suffix('\0')
            .expect("OPEN ends in NUL")
            .to_string();
        (p.arg0, service)
    }

    /// Accepts an OPEN as device stream `remote`; returns the host's id and the service.
    async fn accept(&mut self, remote: u32) -> (u32, String) {
        let (host, service) = self.expect_open().await;
        self.write(Packet::new(A_OKAY, remote, host, Bytes::new()))
            .await;
        (host, service)
    }

    /// Sends one WRTE and waits for the host's OKAY.
    async fn send_data(&mut self, remote: u32, host: u32, data: &[u8]) {
        self.write(Packet::new(A_WRTE, remote, host, data.to_vec()))
            .await;
        let p = self.read().await;
        assert_eq!(
            (p.command, p.arg0, p.arg1),
            (A_OKAY, host, remote),
            "expected OKAY, got {p:?}"
        );
    }

    /// Receives one WRTE from the host and acknowledges it.
    async fn recv_data(&mut self, remote: u32, host: u32) -> Bytes {
        let p = self.read().await;
        assert_eq!((p.command, p.arg0, p.arg1), (A_WRTE, host, remote), "{p:?}");
        self.write(Packet::new(A_OKAY, remote, host, Bytes::new()))
            .await;
        p.payload
    }

    /// Closes the stream and expects the host's echo.
    async fn close(&mut self, remote: u32, host: u32) {
        self.write(Packet::new(A_CLSE, remote, host, Bytes::new()))
            .await;
        let p = self.read().await;
        assert_eq!((p.command, p.arg0, p.arg1), (A_CLSE, host, remote), "{p:?}");
    }
}

fn banner(features: &str) -> String {
    format!(
        "device::ro.product.name=cloudphone;ro.product.model=CloudPhone;ro.product.device=cp1;features={features}"
    )
}

/// A client connected to a scripted device that answers CNXN at once.
async fn pair_with(
    version: u32,
    max_payload: u32,
    features: &str,
    config: ClientConfig,
) -> (AdbClient, Dev) {
    let (a, b) = tokio::io::duplex(8 * 1024 * 1024);
    let mut dev = Dev {
        io: b,
        checksum: version < A_VERSION,
    };
    let banner = banner(features);
    let device = async {
        let p = dev.read().await;
        assert_eq!(p.command, A_CNXN);
        dev.write(Packet::new(
            A_CNXN,
            version,
            max_payload,
            banner.into_bytes(),
        ))
        .await;
    };
    let (client, ()) = tokio::join!(AdbClient::connect_stream(a, key(), config), device);
    (client.unwrap(), dev)
}

async fn pair(features: &str) -> (AdbClient, Dev) {
    pair_with(A_VERSION, MAX_PAYLOAD, features, test_config()).await
}

fn shell_bytes(packets: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, data) in packets {
        out.extend_from_slice(&sp::encode(*id, data));
    }
    out
}

#[test]
fn quote_is_posix_single_quoting() {
    assert_eq!(quote("com.example.app"), "com.example.app");
    assert_eq!(quote("-r"), "-r");
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's"), r"'it'\''s'");
    assert_eq!(quote("$(reboot)"), "'$(reboot)'");
    assert_eq!(quote("a=b"), "'a=b'");
    assert_eq!(quote("x;y"), "'x;y'");
}

#[test]
fn banner_is_parsed() {
    let info = parse_banner(&banner("shell_v2,cmd,,stat_v2"));
    assert_eq!(info.state, "device");
    assert_eq!(info.product_name, "cloudphone");
    assert_eq!(info.model, "CloudPhone");
    assert_eq!(info.device, "cp1");
    assert_eq!(info.features, vec!["shell_v2", "cmd", "stat_v2"]);
    let info = parse_banner("recovery::");
    assert_eq!(info.state, "recovery");
    assert!(info.features.is_empty());
    let info = parse_banner("garbage");
    assert_eq!(info.state, "garbage");
}

#[test]
fn session_ids_and_package_services() {
    assert_eq!(
        parse_session_id("Success: created install session [1234]"),
        Some(1234)
    );
    assert_eq!(parse_session_id("Success [x] [77]"), Some(77));
    assert_eq!(parse_session_id("Failure"), None);
    assert_eq!(parse_session_id("Success [abc]"), None);
    let words: Vec<String> = ["install", "-r", "a b", "-S", "5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        PackageFront::Abb.service(&words).unwrap(),
        "abb_exec:package\0install\0-r\0a b\0-S\x005"
    );
    assert_eq!(
        PackageFront::Cmd.service(&words).unwrap(),
        "exec:cmd package install -r 'a b' -S 5"
    );
    assert_eq!(
        PackageFront::Pm.service(&words).unwrap(),
        "exec:pm install -r 'a b' -S 5"
    );
    assert!(matches!(
        PackageFront::Abb.service(&["a\0b".to_string()]),
        Err(ClientError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn device_without_auth_is_accepted_and_described() {
    let (client, _dev) = pair_with(A_VERSION, 256 * 1024, "shell_v2,cmd", test_config()).await;
    assert_eq!(client.state(), "device");
    assert_eq!(
        client.identity(),
        crate::DeviceIdentity {
            product_name: "cloudphone".into(),
            model: "CloudPhone".into(),
            device: "cp1".into(),
        }
    );
    assert_eq!(
        client.features(),
        ["shell_v2".to_string(), "cmd".to_string()]
    );
    assert!(client.has_feature("cmd"));
    assert!(!client.has_feature("abb_exec"));
    assert_eq!(client.max_payload(), 256 * 1024);
    assert_eq!(client.protocol_version(), A_VERSION);
}

#[tokio::test]
async fn auth_signs_the_token_with_checksummed_packets() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut dev = Dev {
        io: b,
        checksum: false,
    };
    let device = async {
        let (h, cnxn) = dev.read_raw().await;
        assert_eq!(cnxn.command, A_CNXN);
        assert_eq!((cnxn.arg0, cnxn.arg1), (A_VERSION, MAX_PAYLOAD));
        assert!(cnxn.payload.starts_with(b"host::features="));
        // Before negotiation every packet carries the byte sum.
        assert_eq!(parse_header(&h).3 as usize, cnxn.payload.len());
        assert_eq!(h[16..20], checksum(&cnxn.payload).to_le_bytes());
        let token = [0x5au8; 20];
        dev.write(Packet::new(A_AUTH, AUTH_TOKEN, 0, token.to_vec()))
            .await;
        let (h, sig) = dev.read_raw().await;
        assert_eq!((sig.command, sig.arg0), (A_AUTH, AUTH_SIGNATURE));
        assert_eq!(h[16..20], checksum(&sig.payload).to_le_bytes());
        assert!(key().public_key().verify_token(&token, &sig.payload));
        dev.write(Packet::new(
            A_CNXN,
            A_VERSION,
            MAX_PAYLOAD,
            banner("shell_v2"),
        ))
        .await;
    };
    let (client, ()) = tokio::join!(AdbClient::connect_stream(a, key(), test_config()), device);
    let client = client.unwrap();
    assert!(client.has_feature("shell_v2"));
}

#[tokio::test]
async fn refused_key_is_offered_once_then_unauthorized() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut dev = Dev {
        io: b,
        checksum: false,
    };
    let config = ClientConfig {
        auth_timeout: Duration::from_millis(400),
        ..test_config()
    };
    let device = async {
        dev.read().await;
        dev.write(Packet::new(A_AUTH, AUTH_TOKEN, 0, vec![1u8; 20]))
            .await;
        let sig = dev.read().await;
        assert_eq!(sig.arg0, AUTH_SIGNATURE);
        // Refuse: a new token.
        dev.write(Packet::new(A_AUTH, AUTH_TOKEN, 0, vec![2u8; 20]))
            .await;
        let offer = dev.read().await;
        assert_eq!((offer.command, offer.arg0), (A_AUTH, AUTH_RSAPUBLICKEY));
        let line = std::str::from_utf8(&offer.payload).unwrap();
        assert!(line.ends_with('\0'));
        assert_eq!(AdbPublicKey::from_line(line).unwrap(), key().public_key());
        // Then nothing, like a device waiting for its user; the host must not loop.
        assert!(dev.quiet(600).await);
    };
    let started = tokio::time::Instant::now();
    let (client, ()) = tokio::join!(AdbClient::connect_stream(a, key(), config), device);
    assert!(
        matches!(client, Err(ClientError::Unauthorized)),
        "{client:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_third_token_fails_at_once() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut dev = Dev {
        io: b,
        checksum: false,
    };
    let device = async {
        dev.read().await;
        for token in 1u8..=3 {
            dev.write(Packet::new(A_AUTH, AUTH_TOKEN, 0, vec![token; 20]))
                .await;
            dev.read().await;
            if token == 2 {
                // After the public key the host sends nothing more.
                break;
            }
        }
        dev.write(Packet::new(A_AUTH, AUTH_TOKEN, 0, vec![3u8; 20]))
            .await;
    };
    let started = tokio::time::Instant::now();
    let (client, ()) = tokio::join!(AdbClient::connect_stream(a, key(), test_config()), device);
    assert!(
        matches!(client, Err(ClientError::Unauthorized)),
        "{client:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn silent_device_times_out() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let config = ClientConfig {
        auth_timeout: Duration::from_millis(200),
        ..test_config()
    };
    let result = AdbClient::connect_stream(a, key(), config).await;
    assert!(matches!(result, Err(ClientError::Timeout(_))), "{result:?}");
    drop(b);

    // Connected, but the device never answers an OPEN, then never sends output.
    let config = ClientConfig {
        io_timeout: Duration::from_millis(200),
        ..test_config()
    };
    let (client, mut dev) = pair_with(A_VERSION, MAX_PAYLOAD, "shell_v2", config).await;
    let result = client.shell("true").await;
    assert!(matches!(result, Err(ClientError::Timeout(_))), "{result:?}");
    dev.expect_open().await;
    let task = tokio::spawn(async move {
        dev.accept(9).await;
        dev
    });
    let result = client.exec::<tokio::io::Empty>("sleep 100", None).await;
    assert!(matches!(result, Err(ClientError::Timeout(_))), "{result:?}");
    task.await.unwrap();
}

#[tokio::test]
async fn closed_device_fails_connect() {
    let (a, b) = tokio::io::duplex(1 << 20);
    drop(b);
    let result = AdbClient::connect_stream(a, key(), test_config()).await;
    assert!(matches!(result, Err(ClientError::Closed)), "{result:?}");
}

#[tokio::test]
async fn checksums_follow_the_negotiated_version() {
    for (version, with_sum) in [(A_VERSION_MIN, true), (A_VERSION, false)] {
        let (client, mut dev) = pair_with(version, MAX_PAYLOAD, "", test_config()).await;
        assert_eq!(client.protocol_version(), version);
        let task = tokio::spawn(async move {
            let (h, open) = dev.read_raw().await;
            let expected = if with_sum { checksum(&open.payload) } else { 0 };
            assert_eq!(h[16..20], expected.to_le_bytes());
            let host = open.arg0;
            dev.write(Packet::new(A_OKAY, 3, host, Bytes::new())).await;
            dev.write(Packet::new(A_WRTE, 3, host, &b"out"[..])).await;
            let (h, okay) = dev.read_raw().await;
            assert_eq!(okay.command, A_OKAY);
            assert_eq!(h[16..20], [0u8; 4]);
            dev.close(3, host).await;
        });
        let out = client.shell("x").await.unwrap();
        assert_eq!(out.stdout, b"out");
        timeout(T, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn shell_without_shell_v2_merges_output() {
    let (client, mut dev) = pair("cmd").await;
    let task = tokio::spawn(async move {
        let (host, service) = dev.accept(7).await;
        assert_eq!(service, "shell:echo out; echo err >&2");
        dev.send_data(7, host, b"out\n").await;
        dev.send_data(7, host, b"err\n").await;
        dev.close(7, host).await;
    });
    let out = client.shell("echo out; echo err >&2").await.unwrap();
    assert_eq!(out.stdout, b"out\nerr\n");
    assert!(out.stderr.is_empty());
    assert_eq!(out.exit_code, None);
    assert!(!out.truncated);
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn shell_v2_reassembles_packets_split_across_writes() {
    let (client, mut dev) = pair("shell_v2").await;
    let task = tokio::spawn(async move {
        let (host, service) = dev.accept(11).await;
        assert_eq!(service, "shell,v2,raw:cmd");
        // Close-stdin comes right after the OPEN.
        let data = dev.recv_data(11, host).await;
        assert_eq!(&data[..], &sp::encode(sp::ID_CLOSE_STDIN, &[])[..]);
        let bytes = shell_bytes(&[
            (sp::ID_STDOUT, b"hello "),
            (sp::ID_STDERR, b"oops"),
            (sp::ID_STDOUT, b"world"),
            (sp::ID_EXIT, &[3]),
        ]);
        // The device re-chunks: 3 bytes per WRTE, each acknowledged before the next.
        for chunk in bytes.chunks(3) {
            dev.send_data(11, host, chunk).await;
        }
        // The host closes once it has the exit status.
        let p = dev.read().await;
        assert_eq!((p.command, p.arg0, p.arg1), (A_CLSE, host, 11));
    });
    let out = client.shell("cmd").await.unwrap();
    assert_eq!(out.stdout, b"hello world");
    assert_eq!(out.stderr, b"oops");
    assert_eq!(out.exit_code, Some(3));
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn stdin_respects_the_device_max_payload_and_flow_control() {
    let (client, mut dev) = pair_with(A_VERSION, 4096, "shell_v2", test_config()).await;
    let input: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let expected = input.clone();
    let task = tokio::spawn(async move {
        let (host, _) = dev.accept(5).await;
        let mut decoder = sp::Decoder::default();
        let mut stdin = Vec::new();
        'outer: loop {
            let p = dev.read().await;
            assert_eq!(p.command, A_WRTE);
            assert!(p.payload.len() <= 4096, "WRTE of {}", p.payload.len());
            // One WRTE in flight: nothing more until we acknowledge.
            assert!(dev.quiet(30).await, "second WRTE before OKAY");
            dev.write(Packet::new(A_OKAY, 5, host, Bytes::new())).await;
            decoder.push(&p.payload);
            while let Some(packet) = decoder.next_packet().unwrap() {
                match packet.id {
                    sp::ID_STDIN => stdin.extend_from_slice(&packet.data),
                    sp::ID_CLOSE_STDIN => break 'outer,
                    other => panic!("unexpected shell packet {other}"),
                }
            }
        }
        assert_eq!(stdin, expected);
        let reply = shell_bytes(&[(sp::ID_STDOUT, b"20000"), (sp::ID_EXIT, &[0])]);
        dev.send_data(5, host, &reply).await;
        dev.close(5, host).await;
    });
    let out = client.shell_with_stdin("wc -c", &input[..]).await.unwrap();
    assert_eq!(out.stdout, b"20000");
    assert_eq!(out.exit_code, Some(0));
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn output_beyond_the_cap_is_truncated_and_flagged() {
    let config = ClientConfig {
        max_output: 1000,
        ..test_config()
    };
    let (client, mut dev) = pair_with(A_VERSION, MAX_PAYLOAD, "shell_v2", config).await;
    let task = tokio::spawn(async move {
        let (host, _) = dev.accept(2).await;
        dev.recv_data(2, host).await;
        for _ in 0..5 {
            dev.send_data(2, host, &sp::encode(sp::ID_STDOUT, &[b'x'; 700]))
                .await;
        }
        dev.send_data(2, host, &sp::encode(sp::ID_STDERR, b"late"))
            .await;
        dev.send_data(2, host, &sp::encode(sp::ID_EXIT, &[0])).await;
    });
    let out = client.shell("yes").await.unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.stderr.is_empty());
    assert_eq!(out.exit_code, Some(0));
    timeout(T, task).await.unwrap().unwrap();

    // `exec` cannot flag truncation: it fails instead.
    let config = ClientConfig {
        max_output: 10,
        ..test_config()
    };
    let (client, mut dev) = pair_with(A_VERSION, MAX_PAYLOAD, "", config).await;
    let task = tokio::spawn(async move {
        let (host, service) = dev.accept(2).await;
        assert_eq!(service, "exec:cat big");
        dev.send_data(2, host, &[0u8; 11]).await;
        let p = dev.read().await;
        assert_eq!(p.command, A_CLSE);
    });
    let result = client.exec::<tokio::io::Empty>("cat big", None).await;
    assert!(
        matches!(result, Err(ClientError::OutputTooLarge(10))),
        "{result:?}"
    );
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn streams_are_multiplexed() {
    let (client, mut dev) = pair("").await;
    let task = tokio::spawn(async move {
        let (h1, s1) = dev.accept(100).await;
        let (h2, s2) = dev.accept(200).await;
        assert_ne!(h1, h2);
        let (first, second) = if s1 == "shell:one" {
            (h1, h2)
        } else {
            (h2, h1)
        };
        // Answer the second stream first.
        let (r_first, r_second) = if first == h1 { (100, 200) } else { (200, 100) };
        dev.send_data(r_second, second, b"2").await;
        dev.close(r_second, second).await;
        dev.send_data(r_first, first, b"1").await;
        dev.close(r_first, first).await;
        // Stray packets for unknown ids are ignored.
        dev.write(Packet::new(A_OKAY, 55, 9999, Bytes::new())).await;
        dev.write(Packet::new(A_CLSE, 55, 9999, Bytes::new())).await;
        assert!(dev.quiet(50).await);
        let _ = s2;
        dev
    });
    let (a, b) = tokio::join!(client.shell("one"), client.shell("two"));
    assert_eq!(a.unwrap().stdout, b"1");
    assert_eq!(b.unwrap().stdout, b"2");
    let mut dev = timeout(T, task).await.unwrap().unwrap();
    // The connection still works.
    let task = tokio::spawn(async move {
        let (host, _) = dev.accept(300).await;
        dev.close(300, host).await;
    });
    assert!(client.shell("three").await.unwrap().stdout.is_empty());
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn refused_services_and_lost_connections() {
    let (client, mut dev) = pair("").await;
    let task = tokio::spawn(async move {
        let (host, _) = dev.expect_open().await;
        dev.write(Packet::new(A_CLSE, 0, host, Bytes::new())).await;
        let (host, _) = dev.accept(4).await;
        dev.send_data(4, host, b"partial").await;
        drop(dev);
    });
    let refused = client.open("nope:").await;
    assert!(
        matches!(&refused, Err(ClientError::ServiceRefused(s)) if s == "nope:"),
        "{refused:?}"
    );
    let lost = client.shell("x").await;
    assert!(matches!(lost, Err(ClientError::Closed)), "{lost:?}");
    timeout(T, task).await.unwrap().unwrap();
    assert!(client.closed_reason().is_some());
    assert!(matches!(client.shell("y").await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn device_reset_ends_the_connection() {
    let (client, mut dev) = pair("").await;
    let task = tokio::spawn(async move {
        dev.accept(4).await;
        dev.write(Packet::new(A_CNXN, A_VERSION, MAX_PAYLOAD, banner("")))
            .await;
        dev
    });
    let result = client.shell("x").await;
    assert!(matches!(result, Err(ClientError::Closed)), "{result:?}");
    let _dev = timeout(T, task).await.unwrap().unwrap();
    assert!(client.closed_reason().unwrap().contains("reset"));
}

#[tokio::test]
async fn install_picks_the_service_from_the_features() {
    let dir = TempDir::new("install-pick");
    let apk = dir.path().join("app.apk");
    std::fs::write(&apk, vec![7u8; 3000]).unwrap();
    for (features, expected) in [
        ("cmd,abb_exec", "abb_exec:package\0install\0-r\0-S\x003000"),
        ("cmd", "exec:cmd package install -r -S 3000"),
        ("shell_v2,fixed_push_mkdir", "sync:"),
    ] {
        let (client, mut dev) = pair(features).await;
        let task = tokio::spawn(async move {
            let (host, service) = dev.expect_open().await;
            dev.write(Packet::new(A_CLSE, 0, host, Bytes::new())).await;
            service
        });
        let result = client.install(&apk, &["-r"]).await;
        assert!(
            matches!(result, Err(ClientError::ServiceRefused(_))),
            "{result:?}"
        );
        assert_eq!(timeout(T, task).await.unwrap().unwrap(), expected);
    }
}

#[tokio::test]
async fn streamed_install_sends_the_apk_and_checks_the_reply() {
    let dir = TempDir::new("install-stream");
    let apk = dir.path().join("app.apk");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&apk, &content).unwrap();
    for reply in ["Success\n", "Failure [INSTALL_FAILED_INVALID_APK]\n"] {
        let (client, mut dev) = pair_with(A_VERSION, 64 * 1024, "cmd", test_config()).await;
        let expected = content.clone();
        let task = tokio::spawn(async move {
            let (host, service) = dev.accept(8).await;
            assert_eq!(service, "exec:cmd package install -S 300000");
            let mut got = Vec::new();
            while got.len() < expected.len() {
                got.extend_from_slice(&dev.recv_data(8, host).await);
            }
            assert_eq!(got, expected);
            dev.send_data(8, host, reply.as_bytes()).await;
            dev.close(8, host).await;
        });
        let result = client.install(&apk, &[]).await;
        timeout(T, task).await.unwrap().unwrap();
        match reply {
            "Success\n" => assert_eq!(result.unwrap(), "Success"),
            _ => assert!(
                matches!(&result, Err(ClientError::Command(r)) if r.starts_with("Failure [INSTALL")),
                "{result:?}"
            ),
        }
    }
}

/// A directory removed when dropped (tests only).
pub(super) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("cph-adb-client-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(super) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn push_v1_sends_a_decimal_mode_and_streams_data() {
    let (client, mut dev) = pair("").await;
    let task = tokio::spawn(async move {
        let (host, service) = dev.accept(6).await;
        assert_eq!(service, "sync:");
        let mut got = Vec::new();
        let mut expected = Vec::new();
        for (id, arg) in [(&b"SEND"[..], &b"/t,33188"[..]), (b"DATA", b"abc")] {
            expected.extend_from_slice(id);
            expected.extend_from_slice(&(arg.len() as u32).to_le_bytes());
            expected.extend_from_slice(arg);
        }
        expected.extend_from_slice(b"DONE");
        expected.extend_from_slice(&5u32.to_le_bytes());
        while got.len() < expected.len() {
            got.extend_from_slice(&dev.recv_data(6, host).await);
        }
        assert_eq!(got, expected);
        let mut reply = b"OKAY".to_vec();
        reply.extend_from_slice(&0u32.to_le_bytes());
        dev.send_data(6, host, &reply).await;
        let quit = dev.recv_data(6, host).await;
        assert_eq!(&quit[..], b"QUIT\0\0\0\0");
        let p = dev.read().await;
        assert_eq!(p.command, A_CLSE);
    });
    // Bare permission bits get the regular-file type.
    let sent = client.push(&b"abc"[..], "/t", 0o644, 5).await.unwrap();
    assert_eq!(sent, 3);
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_smaller_max_payload_is_announced_and_used() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let mut dev = Dev {
        io: b,
        checksum: false,
    };
    let config = ClientConfig {
        max_payload: 64 * 1024,
        ..test_config()
    };
    let device = async {
        let p = dev.read().await;
        assert_eq!(p.command, A_CNXN);
        assert_eq!(p.arg1, 64 * 1024, "the client announces its own limit");
        dev.write(Packet::new(
            A_CNXN,
            A_VERSION,
            MAX_PAYLOAD,
            banner("shell_v2").into_bytes(),
        ))
        .await;
    };
    let (client, ()) = tokio::join!(AdbClient::connect_stream(a, key(), config), device);
    assert_eq!(client.unwrap().max_payload(), 64 * 1024);
}
