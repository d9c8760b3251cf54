//! Hosted virtual phones as ADB clients see them: endpoints follow the lifecycle, files survive
//! restarts and not resets, keys decide who gets in.

use cph_adb::AdbPrivateKey;
use cph_adb::client::{AdbClient, ClientConfig, ClientError};
use cph_runtime::hosting::PhoneHosting;
use cph_runtime::virtual_host::{Durations, VirtualHostAgent};
use cph_runtime::{
    AgentCommand, CommandEnvelope, CommandResult, HostAgent, PhoneProfile, PhoneSpec,
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
