//! A running endpoint on a loopback port with two principals in two projects.

use std::net::SocketAddr;
use std::sync::Arc;

use cph_s3::{ObjectStore, Principal, S3Config, S3Server, StaticCredentials};
use tokio_util::sync::CancellationToken;

pub const REGION: &str = "cn-north-4";
pub const AK1: &str = "AKONE0000000000000001";
pub const SK1: &str = "secret-one/with+special=chars";
pub const AK2: &str = "AKTWO0000000000000002";
pub const SK2: &str = "secret-two";
pub const PROJECT1: &str = "project-one";
pub const PROJECT2: &str = "project-two";

pub struct Endpoint {
    pub addr: SocketAddr,
    pub store: ObjectStore,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub fn credentials() -> StaticCredentials {
    let mut creds = StaticCredentials::new();
    creds.insert(
        AK1,
        Principal {
            secret_key: SK1.into(),
            project_id: PROJECT1.into(),
            user_id: "user-one".into(),
        },
    );
    creds.insert(
        AK2,
        Principal {
            secret_key: SK2.into(),
            project_id: PROJECT2.into(),
            user_id: "user-two".into(),
        },
    );
    creds
}

/// Starts an endpoint; `tweak` adjusts the configuration (limits) first.
pub async fn start(tweak: impl FnOnce(&mut S3Config)) -> Endpoint {
    let dir = tempfile::tempdir().unwrap();
    let mut config = S3Config::new(dir.path().join("s3"));
    config.region = REGION.into();
    tweak(&mut config);
    let server = S3Server::new(&config, Arc::new(credentials())).unwrap();
    let store = server.store().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(cph_s3::serve(listener, server.router(), shutdown.clone()));
    Endpoint {
        addr,
        store,
        shutdown,
        server,
        _dir: dir,
    }
}
