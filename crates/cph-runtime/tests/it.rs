//! Hosted virtual phones as ADB clients see them: endpoints follow the lifecycle, files survive
//! restarts and not resets, keys decide who gets in.

use cph_adb::AdbPrivateKey;
use cph_adb::client::{AdbClient, ClientConfig, ClientError};
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::{Durations, VirtualHostAgent};
use cph_runtime::{
    AgentCommand, CommandEnvelope, CommandResult, HostAgent, InProcessConnection, PhoneProfile,
    PhoneSpec,
};
use std::sync::Arc;
use std::time::Duration;

fn fast() -> Durations {
    Durations {
        boot: Duration::from_millis(20),
        stop: Duration::from_millis(10),
        reset: Duration::from_millis(10),
    }
}

fn spec(id: &str, sdk: u32, release: &str) -> PhoneSpec {
    PhoneSpec {
        phone_id: id.into(),
        server_id: "server-1".into(),
        phone_model_name: "rc1.test.model".into(),
        image_id: format!("image-{sdk}"),
        imei: "490154203237518".into(),
        phone_ip: "10.0.0.2".into(),
        properties: [(
            "gsm.operator.alpha".to_string(),
            serde_json::json!("TESTNET"),
        )]
        .into_iter()
        .collect(),
        profile: PhoneProfile {
            product_name: "monbox".into(),
            model: "rc1.test.model".into(),
            device: "HWSTF".into(),
            brand: "cph".into(),
            manufacturer: "cph".into(),
            width: 720,
            height: 1280,
            density: 320,
            android_version: release.into(),
            sdk,
            image_name: "AOSP".into(),
            os_name: format!("AOSP{release}"),
            default_properties: Default::default(),
        },
        adb_keys: Vec::new(),
        ports: Vec::new(),
    }
}

struct Host {
    _dir: tempfile::TempDir,
    agent: Arc<VirtualHostAgent>,
    key: AdbPrivateKey,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let key = AdbPrivateKey::generate().unwrap();
    let hosting = PhoneHosting::new(dir.path().join("phones"), vec![key.public_key()]);
    let agent = VirtualHostAgent::hosted("test", fast(), hosting);
    Host {
        _dir: dir,
        agent,
        key,
    }
}

async fn run(agent: &VirtualHostAgent, id: &str, command: AgentCommand) -> CommandResult {
    agent
        .execute(CommandEnvelope {
            command_id: id.into(),
            command,
        })
        .await
}

fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(10),
        auth_timeout: Duration::from_secs(3),
        ..ClientConfig::default()
    }
}

async fn connect(h: &Host, phone_id: &str) -> AdbClient {
    let addr = h.agent.adb_endpoint(phone_id).expect("endpoint up");
    AdbClient::connect(addr, &h.key, config()).await.unwrap()
}

async fn sh(c: &AdbClient, cmd: &str) -> String {
    let out = c.shell(cmd).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{cmd}: {}", out.stderr_text());
    out.stdout_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_lives_through_its_lifecycle_over_adb() {
    let h = host();
    let s = spec("p1", 30, "11");
    assert!(h.agent.adb_endpoint("p1").is_none());
    let ok = CommandResult::Ok { message: None };
    assert_eq!(
        run(
            &h.agent,
            "c1",
            AgentCommand::CreatePhone { spec: s.clone() }
        )
        .await,
        ok
    );
    assert!(h.agent.runs_endpoints());
    let addr = h.agent.adb_endpoint("p1").unwrap();
    assert!(addr.ip().is_loopback());

    let c = connect(&h, "p1").await;
    let id = c.identity();
    assert_eq!(
        (
            id.product_name.as_str(),
            id.model.as_str(),
            id.device.as_str()
        ),
        ("monbox", "rc1.test.model", "HWSTF")
    );
    assert_eq!(
        sh(&c, "getprop ro.product.model").await.trim(),
        "rc1.test.model"
    );
    assert_eq!(sh(&c, "getprop ro.build.version.sdk").await.trim(), "30");
    assert_eq!(sh(&c, "getprop persist.radio.imei").await.trim(), s.imei);
    // API properties are applied at boot.
    assert_eq!(sh(&c, "getprop gsm.operator.alpha").await.trim(), "TESTNET");
    let data = b"user data that must survive a restart".to_vec();
    c.push(&data[..], "/sdcard/Download/note.txt", 0o644, 0)
        .await
        .unwrap();

    // Stopped: the endpoint refuses connections and the open one is dropped.
    assert_eq!(
        run(
            &h.agent,
            "c2",
            AgentCommand::StopPhone {
                phone_id: "p1".into()
            }
        )
        .await,
        ok
    );
    assert!(h.agent.adb_endpoint("p1").is_none());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(c.shell("true").await.is_err());

    // Restarted: same port, files kept.
    assert_eq!(
        run(
            &h.agent,
            "c3",
            AgentCommand::RestartPhone { spec: s.clone() }
        )
        .await,
        ok
    );
    assert_eq!(h.agent.adb_endpoint("p1"), Some(addr));
    let c = connect(&h, "p1").await;
    let mut back = Vec::new();
    c.pull("/data/media/0/Download/note.txt", &mut back)
        .await
        .unwrap();
    assert_eq!(back, data);

    // Properties set on a running phone show at once.
    let props = [(
        "gsm.operator.alpha".to_string(),
        serde_json::json!("OTHERNET"),
    )]
    .into_iter()
    .collect();
    run(
        &h.agent,
        "c4",
        AgentCommand::SetProperties {
            phone_id: "p1".into(),
            properties: props,
        },
    )
    .await;
    assert_eq!(
        sh(&c, "getprop gsm.operator.alpha").await.trim(),
        "OTHERNET"
    );

    // Reset: user files gone, image packages back, a new image changes the build.
    let mut newer = spec("p1", 28, "9");
    newer.properties.clear();
    assert_eq!(
        run(&h.agent, "c5", AgentCommand::ResetPhone { spec: newer }).await,
        ok
    );
    let c = connect(&h, "p1").await;
    assert!(c.stat("/sdcard/Download/note.txt").await.unwrap().is_none());
    assert_eq!(sh(&c, "getprop ro.build.version.release").await.trim(), "9");
    assert_eq!(sh(&c, "getprop gsm.operator.alpha").await.trim(), "");
    assert!(
        sh(&c, "pm list packages -s")
            .await
            .contains("package:com.android.settings")
    );

    // Deleted: no endpoint, no files.
    assert_eq!(
        run(
            &h.agent,
            "c6",
            AgentCommand::DeletePhone {
                phone_id: "p1".into()
            }
        )
        .await,
        ok
    );
    assert!(h.agent.adb_endpoint("p1").is_none());
    assert!(!h._dir.path().join("phones/phones/p1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_keys_get_in() {
    let h = host();
    let mut s = spec("p2", 30, "11");
    let owner = AdbPrivateKey::generate().unwrap();
    s.adb_keys = vec![owner.public_key().to_line("owner@test").unwrap()];
    run(&h.agent, "c1", AgentCommand::CreatePhone { spec: s }).await;
    let addr = h.agent.adb_endpoint("p2").unwrap();
    // The host's key and the server's key pair are allowed.
    AdbClient::connect(addr, &h.key, config()).await.unwrap();
    let c = AdbClient::connect(addr, &owner, config()).await.unwrap();
    assert_eq!(sh(&c, "echo in").await, "in\n");
    // Anyone else is refused.
    let stranger = AdbPrivateKey::generate().unwrap();
    assert!(matches!(
        AdbClient::connect(addr, &stranger, config()).await,
        Err(ClientError::Unauthorized)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_from_inside_drops_and_restores_the_endpoint() {
    let h = host();
    run(
        &h.agent,
        "c1",
        AgentCommand::CreatePhone {
            spec: spec("p3", 30, "11"),
        },
    )
    .await;
    let c = connect(&h, "p3").await;
    c.reboot("").await.unwrap();
    // The endpoint goes away and comes back on its own.
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(addr) = h.agent.adb_endpoint("p3")
            && let Ok(c) = AdbClient::connect(addr, &h.key, config()).await
            && c.shell("true").await.is_ok()
        {
            back = true;
            break;
        }
    }
    assert!(back, "the phone did not come back after reboot");
}

#[tokio::test]
async fn a_servers_shared_storage_is_seen_read_only_by_its_phones_only() {
    let h = host();
    let mut other = spec("phone-t", 30, "11");
    other.server_id = "server-2".into();
    for (i, s) in [
        spec("phone-s1", 30, "11"),
        spec("phone-s2", 30, "11"),
        other,
    ]
    .into_iter()
    .enumerate()
    {
        let r = run(
            &h.agent,
            &format!("c{i}"),
            AgentCommand::CreatePhone { spec: s },
        )
        .await;
        assert!(matches!(r, CommandResult::Ok { .. }), "{r:?}");
    }

    // The control plane writes the volume through its own endpoint.
    let addr = h.agent.share_endpoint("server-1").await.unwrap();
    assert_eq!(h.agent.share_endpoint("server-1").await.unwrap(), addr);
    let volume = AdbClient::connect(&addr.to_string(), &h.key, config())
        .await
        .unwrap();
    assert_eq!(sh(&volume, "ls /").await, "apps\ncache\ndata\n");
    volume
        .push(&b"shared bytes"[..], "/data/media/song.txt", 0o100644, 1)
        .await
        .unwrap();

    for id in ["phone-s1", "phone-s2"] {
        let c = connect(&h, id).await;
        assert_eq!(
            sh(&c, "cat /mnt/shared/data/media/song.txt").await,
            "shared bytes"
        );
        let denied = c
            .push(&b"x"[..], "/mnt/shared/data/mine.txt", 0o100644, 1)
            .await;
        assert!(denied.is_err(), "a phone wrote into shared storage");
        assert_eq!(
            sh(&c, "rm /mnt/shared/data/media/song.txt 2>&1; echo $?")
                .await
                .lines()
                .last(),
            Some("1")
        );
    }
    let t = connect(&h, "phone-t").await;
    assert_eq!(sh(&t, "ls /mnt/shared/data").await, "");

    // Another key does not get into the volume.
    let stranger = AdbPrivateKey::generate().unwrap();
    let refused = AdbClient::connect(&addr.to_string(), &stranger, config()).await;
    assert!(refused.is_err());
}

/// Connects to a mapped host port and reads until the other side closes (or 5 s pass).
async fn read_all(addr: std::net::SocketAddr) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the mapped port closes")
        .ok();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_ports_reach_nc_in_the_phone() {
    let h = host();
    let mut s = spec("p9", 30, "11");
    s.ports = vec![20000, 20001];
    let ok = CommandResult::Ok { message: None };
    assert_eq!(
        run(
            &h.agent,
            "c1",
            AgentCommand::CreatePhone { spec: s.clone() }
        )
        .await,
        ok
    );
    let mapped = h.agent.port_endpoints("p9");
    assert_eq!(
        mapped.iter().map(|m| m.0).collect::<Vec<_>>(),
        [20000, 20001]
    );
    for (_, addr) in &mapped {
        assert!(addr.ip().is_loopback());
        assert!((41000..=48999).contains(&addr.port()));
    }
    let inv = h.agent.inventory().await;
    assert_eq!(inv.phones[0].ports.len(), 2);
    assert_eq!(inv.phones[0].ports[0].access_port, mapped[0].1.port());

    // Nothing listens on the phone's port: the connection is closed at once.
    assert!(read_all(mapped[1].1).await.is_empty());

    let c = Arc::new(connect(&h, "p9").await);
    let c2 = c.clone();
    let nc = tokio::spawn(async move { c2.shell("echo hello-from-phone | nc -l -p 20000").await });
    let mut got = Vec::new();
    for _ in 0..100 {
        got = read_all(mapped[0].1).await;
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got, b"hello-from-phone\n");
    let out = nc.await.unwrap().unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_text());

    // The mapping follows the phone: same host ports after a restart, gone once deleted.
    assert_eq!(
        run(
            &h.agent,
            "c2",
            AgentCommand::RestartPhone { spec: s.clone() }
        )
        .await,
        ok
    );
    assert_eq!(h.agent.port_endpoints("p9"), mapped);
    assert_eq!(
        run(
            &h.agent,
            "c3",
            AgentCommand::DeletePhone {
                phone_id: "p9".into()
            }
        )
        .await,
        ok
    );
    assert!(h.agent.port_endpoints("p9").is_empty());
    assert!(tokio::net::TcpStream::connect(mapped[0].1).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_connection_reaches_the_phone_and_ends_with_it() {
    let h = host();
    let ok = CommandResult::Ok { message: None };
    let create = AgentCommand::CreatePhone {
        spec: spec("p10", 30, "11"),
    };
    assert_eq!(run(&h.agent, "c1", create).await, ok);

    // The same endpoint as over TCP: handshake, keys, services.
    let (near, far) = tokio::io::duplex(64 * 1024);
    assert!(h.agent.attach_adb("p10", InProcessConnection::from_io(far)));
    let c = AdbClient::connect_stream(near, &h.key, config())
        .await
        .unwrap();
    assert_eq!(
        sh(&c, "getprop ro.product.model").await.trim(),
        "rc1.test.model"
    );
    let (near, far) = tokio::io::duplex(64 * 1024);
    assert!(h.agent.attach_adb("p10", InProcessConnection::from_io(far)));
    let stranger = AdbPrivateKey::generate().unwrap();
    let refused = AdbClient::connect_stream(near, &stranger, config()).await;
    assert!(refused.is_err(), "an unknown key must not get in");

    // Unknown phones take no connection.
    let (_near, far) = tokio::io::duplex(1024);
    assert!(
        !h.agent
            .attach_adb("nope", InProcessConnection::from_io(far))
    );

    // Stopping the phone ends the connection; a stopped phone takes none.
    let stop = AgentCommand::StopPhone {
        phone_id: "p10".into(),
    };
    assert_eq!(run(&h.agent, "c2", stop).await, ok);
    let after = tokio::time::timeout(Duration::from_secs(10), c.shell("true"))
        .await
        .expect("the connection must end with the phone");
    assert!(after.is_err(), "a stopped phone still answered");
    let (_near, far) = tokio::io::duplex(1024);
    assert!(!h.agent.attach_adb("p10", InProcessConnection::from_io(far)));
}
