//! The S3 client and the backends against a real S3 endpoint: the embedded endpoint of
//! `cph-s3`, started in-process on a loopback port, playing the external object storage.

use std::net::SocketAddr;
use std::sync::Arc;

use cph_objects::{
    Backends, ClientConfig, EndpointConfig, ObjectsError, S3Client, S3Error, Secret,
};
use cph_s3::{ObjectStore, Principal, S3Config, S3Server, StaticCredentials};
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

const AK1: &str = "AKEXTERNAL0000000001";
const SK1: &str = "external-secret/one+two=three";
const AK2: &str = "AKEXTERNAL0000000002";
const SK2: &str = "external-secret-two";
const OWNER1: &str = "account-one";
const OWNER2: &str = "account-two";

struct Endpoint {
    addr: SocketAddr,
    store: ObjectStore,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn credentials() -> StaticCredentials {
    let mut creds = StaticCredentials::new();
    for (ak, sk, owner) in [(AK1, SK1, OWNER1), (AK2, SK2, OWNER2)] {
        creds.insert(
            ak,
            Principal {
                secret_key: sk.into(),
                project_id: owner.into(),
                user_id: format!("user-of-{owner}"),
            },
        );
    }
    creds
}

fn s3_config(dir: &tempfile::TempDir) -> S3Config {
    let mut config = S3Config::new(dir.path().join("s3"));
    config.region = "cn-north-4".into();
    config
}

/// The embedded endpoint of `cph-s3` on a loopback port, over plain HTTP.
async fn start() -> Endpoint {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::new(&s3_config(&dir), Arc::new(credentials())).unwrap();
    let store = server.store().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(cph_s3::serve(listener, server.router(), shutdown.clone()));
    Endpoint {
        addr,
        store,
        shutdown,
        _dir: dir,
    }
}

fn config(url: &str, ak: &str, sk: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, ak, Secret::new(sk));
    c.region = "cn-north-4".into();
    c
}

fn client(ep: &Endpoint) -> S3Client {
    S3Client::new(&config(&ep.url(), AK1, SK1)).unwrap()
}

async fn bucket(ep: &Endpoint, owner: &str, name: &str) {
    ep.store
        .create_bucket(owner, &format!("user-of-{owner}"), name)
        .await
        .unwrap();
}

/// `len` deterministic pseudo-random bytes produced on the fly (never held whole).
struct Pattern {
    left: u64,
    state: u64,
}

fn pattern(len: u64, seed: u64) -> Pattern {
    Pattern {
        left: len,
        state: seed | 1,
    }
}

impl AsyncRead for Pattern {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(8192) as usize;
        let mut chunk = vec![0u8; n];
        for b in &mut chunk {
            // xorshift64
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = (self.state >> 24) as u8;
        }
        self.left -= n as u64;
        buf.put_slice(&chunk);
        std::task::Poll::Ready(Ok(()))
    }
}

/// MD5 and length of everything `r` yields, read in bounded chunks.
async fn digest(mut r: impl AsyncRead + Unpin) -> std::io::Result<(String, u64)> {
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((hex::encode(md5.finalize()), total));
        }
        md5.update(&buf[..n]);
        total += n as u64;
    }
}

#[tokio::test]
async fn a_multi_mib_object_streams_up_and_down_intact() {
    let ep = start().await;
    bucket(&ep, OWNER1, "big-objects").await;
    let c = client(&ep);
    let len = (9 << 20) + 12_345;
    let (want, _) = digest(pattern(len, 7)).await.unwrap();
    let put = c
        .put_object(
            "big-objects",
            "dir/a b+c.bin",
            &mut pattern(len, 7),
            len,
            Some("application/octet-stream"),
        )
        .await
        .unwrap();
    assert_eq!(put.size, len);
    assert_eq!(put.etag, want);

    let head = c.head_object("big-objects", "dir/a b+c.bin").await.unwrap();
    assert_eq!((head.size, head.etag.as_str()), (len, want.as_str()));
    let (info, reader) = c.get_object("big-objects", "dir/a b+c.bin").await.unwrap();
    assert_eq!(info, head);
    assert_eq!(digest(reader).await.unwrap(), (want.clone(), len));

    // The endpoint's own store holds the same bytes under the key as given.
    let (meta, stored) = ep
        .store
        .get(OWNER1, "big-objects", "dir/a b+c.bin")
        .await
        .unwrap();
    assert_eq!(
        meta.attrs.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(digest(stored).await.unwrap(), (want, len));
    c.head_bucket("big-objects").await.unwrap();
}

#[tokio::test]
async fn bodies_above_the_threshold_go_up_in_parts() {
    let ep = start().await;
    bucket(&ep, OWNER1, "parts").await;
    let mut cfg = config(&ep.url(), AK1, SK1);
    cfg.multipart_threshold = 6 << 20;
    cfg.part_size = 5 << 20;
    let c = S3Client::new(&cfg).unwrap();
    let len = (12 << 20) + 7;
    let (want, _) = digest(pattern(len, 99)).await.unwrap();
    let put = c
        .put_object("parts", "backup.tar", &mut pattern(len, 99), len, None)
        .await
        .unwrap();
    assert!(put.etag.ends_with("-3"), "three parts: {}", put.etag);
    let (info, reader) = c.get_object("parts", "backup.tar").await.unwrap();
    assert_eq!(info.size, len);
    assert_eq!(info.etag, put.etag);
    assert_eq!(digest(reader).await.unwrap(), (want, len));
    assert!(
        ep.store
            .list_uploads(OWNER1, "parts")
            .await
            .unwrap()
            .is_empty()
    );
    // A body that ends early fails the upload, which is aborted: no upload is left behind
    // and the object stays as it was.
    let short = c
        .put_object("parts", "backup.tar", &mut pattern(len - 1, 5), len, None)
        .await;
    assert!(matches!(short, Err(S3Error::Body(_))), "{short:?}");
    assert!(
        ep.store
            .list_uploads(OWNER1, "parts")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.head_object("parts", "backup.tar").await.unwrap(), info);
}

#[tokio::test]
async fn missing_keys_and_missing_buckets_are_told_apart() {
    let ep = start().await;
    bucket(&ep, OWNER1, "present").await;
    let c = client(&ep);
    assert!(matches!(
        c.head_object("present", "nope").await,
        Err(S3Error::NoSuchKey { .. })
    ));
    assert!(matches!(
        c.get_object("present", "nope").await,
        Err(S3Error::NoSuchKey { .. })
    ));
    assert!(matches!(
        c.head_object("absent-bucket", "k").await,
        Err(S3Error::NoSuchBucket { .. })
    ));
    assert!(matches!(
        c.get_object("absent-bucket", "k").await,
        Err(S3Error::NoSuchBucket { .. })
    ));
    assert!(matches!(
        c.head_bucket("absent-bucket").await,
        Err(S3Error::NoSuchBucket { .. })
    ));
    let r = c
        .put_object("absent-bucket", "k", &mut pattern(10, 1), 10, None)
        .await;
    assert!(matches!(r, Err(S3Error::NoSuchBucket { .. })), "{r:?}");
}

#[tokio::test]
async fn wrong_credentials_and_other_accounts_are_refused() {
    let ep = start().await;
    bucket(&ep, OWNER1, "mine").await;
    client(&ep)
        .put_object("mine", "k", &mut pattern(100, 3), 100, None)
        .await
        .unwrap();
    let wrong = S3Client::new(&config(&ep.url(), AK1, "not-the-secret")).unwrap();
    let e = wrong.get_object("mine", "k").await.unwrap_err();
    assert!(
        matches!(&e, S3Error::AccessDenied { code, .. } if code == "SignatureDoesNotMatch"),
        "{e:?}"
    );
    assert!(matches!(
        wrong.head_bucket("mine").await,
        Err(S3Error::AccessDenied { .. })
    ));
    let r = wrong
        .put_object("mine", "k2", &mut pattern(100, 3), 100, None)
        .await;
    assert!(matches!(r, Err(S3Error::AccessDenied { .. })), "{r:?}");
    let other = S3Client::new(&config(&ep.url(), AK2, SK2)).unwrap();
    assert!(matches!(
        other.get_object("mine", "k").await,
        Err(S3Error::AccessDenied { .. })
    ));
    assert!(!format!("{e} {e:?} {wrong:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_named_by_host_without_credentials() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = S3Client::new(&config(&format!("http://127.0.0.1:{port}"), AK1, SK1)).unwrap();
    let e = c.head_object("bkt", "k").await.unwrap_err();
    match &e {
        S3Error::Unreachable { host, .. } => assert_eq!(host, &format!("127.0.0.1:{port}")),
        other => panic!("{other:?}"),
    }
    let r = c
        .put_object("bkt", "k", &mut pattern(10, 1), 10, None)
        .await;
    assert!(matches!(r, Err(S3Error::Unreachable { .. })), "{r:?}");
    let text = format!("{e} {e:?}");
    assert!(!text.contains(SK1) && !text.contains(AK1), "{text}");
}

#[tokio::test]
async fn a_body_of_the_wrong_length_fails_and_keeps_the_old_object() {
    let ep = start().await;
    bucket(&ep, OWNER1, "lengths").await;
    let c = client(&ep);
    let old = c
        .put_object("lengths", "k", &mut pattern(1000, 5), 1000, None)
        .await
        .unwrap();
    let short = c
        .put_object("lengths", "k", &mut pattern(500, 6), 1000, None)
        .await;
    assert!(matches!(short, Err(S3Error::Body(_))), "{short:?}");
    let long = c
        .put_object("lengths", "k", &mut pattern(2000, 6), 1000, None)
        .await;
    assert!(matches!(long, Err(S3Error::Body(_))), "{long:?}");
    assert_eq!(c.head_object("lengths", "k").await.unwrap(), old);
}

#[tokio::test]
async fn a_reader_dropped_early_leaves_the_client_usable() {
    let ep = start().await;
    bucket(&ep, OWNER1, "partial").await;
    let c = client(&ep);
    let len = 4 << 20;
    c.put_object("partial", "k", &mut pattern(len, 8), len, None)
        .await
        .unwrap();
    let (_, mut r) = c.get_object("partial", "k").await.unwrap();
    let mut buf = vec![0u8; 1000];
    r.read_exact(&mut buf).await.unwrap();
    assert_eq!(r.remaining(), len - 1000);
    drop(r);
    let (_, r) = c.get_object("partial", "k").await.unwrap();
    assert_eq!(digest(r).await.unwrap().1, len);
}

#[tokio::test]
async fn operations_beyond_the_request_limit_wait_for_a_slot() {
    let ep = start().await;
    bucket(&ep, OWNER1, "slots").await;
    let mut cfg = config(&ep.url(), AK1, SK1);
    cfg.max_requests = 1;
    cfg.queue_timeout = std::time::Duration::from_millis(300);
    let c = S3Client::new(&cfg).unwrap();
    c.put_object("slots", "k", &mut pattern(1000, 4), 1000, None)
        .await
        .unwrap();
    // An open download holds the only slot: another operation gives up after the queue
    // timeout, naming the endpoint.
    let (_, reader) = c.get_object("slots", "k").await.unwrap();
    let e = c.head_object("slots", "k").await.unwrap_err();
    assert!(
        matches!(&e, S3Error::Unreachable { host, reason } if *host == ep.addr.to_string() && reason.contains("slots")),
        "{e:?}"
    );
    drop(reader);
    assert_eq!(c.head_object("slots", "k").await.unwrap().size, 1000);
}

fn entry(url: &str, buckets: &[&str], default: bool, domains: &[&str]) -> EndpointConfig {
    let mut text = format!(
        "endpoint = {url:?}\nregion = \"cn-north-4\"\naccess_key = {AK1:?}\nsecret_key = {SK1:?}\n"
    );
    text.push_str(&format!(
        "buckets = {buckets:?}\ndefault = {default}\ndomains = {domains:?}\n"
    ));
    toml::from_str(&text).unwrap()
}

#[tokio::test]
async fn backends_resolve_named_then_embedded_then_default_per_account() {
    let ext = start().await;
    bucket(&ext, OWNER1, "named-ext").await;
    bucket(&ext, OWNER1, "default-ext").await;
    bucket(&ext, OWNER1, "restricted").await;
    let local_dir = tempfile::tempdir().unwrap();
    let local = ObjectStore::with_config(&s3_config(&local_dir)).unwrap();
    local.create_bucket("acct-a", "u", "local-a").await.unwrap();
    // An account's own embedded bucket named like a configured one does not shadow it.
    local
        .create_bucket("acct-a", "u", "named-ext")
        .await
        .unwrap();
    let backends = Backends::new(
        Some(local.clone()),
        &[
            entry(&ext.url(), &["named-ext"], false, &["*"]),
            entry(&ext.url(), &["restricted"], false, &["acct-b"]),
            entry(&ext.url(), &[], true, &["acct-a"]),
        ],
    )
    .unwrap();
    let host = ext.addr.to_string();

    let named = backends.resolve("acct-a", "named-ext").await.unwrap();
    assert_eq!(named.location(), host);
    let data = b"through the named endpoint".to_vec();
    named
        .put_reader("f.txt", &data[..], data.len() as u64, Some("text/plain"))
        .await
        .unwrap();
    let (info, r) = backends.get("acct-z", "named-ext", "f.txt").await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(digest(r).await.unwrap().1, data.len() as u64);
    assert!(ext.store.head(OWNER1, "named-ext", "f.txt").await.is_ok());
    assert!(local.head("acct-a", "named-ext", "f.txt").await.is_err());

    let embedded = backends.resolve("acct-a", "local-a").await.unwrap();
    assert_eq!(embedded.location(), "embedded");
    embedded
        .put_reader("g", &b"local"[..], 5, None)
        .await
        .unwrap();
    assert_eq!(
        backends.head("acct-a", "local-a", "g").await.unwrap().size,
        5
    );
    let short = embedded.put_reader("g", &b"abc"[..], 5, None).await;
    assert!(matches!(short, Err(ObjectsError::Embedded(_))), "{short:?}");
    assert!(matches!(
        backends.head("acct-a", "local-a", "nope").await,
        Err(ObjectsError::NoSuchKey)
    ));

    // Unknown to the embedded store: the default endpoint, for the accounts it lists.
    assert_eq!(
        backends
            .resolve("acct-a", "default-ext")
            .await
            .unwrap()
            .location(),
        host
    );
    assert!(matches!(
        backends.resolve("acct-b", "default-ext").await,
        Err(ObjectsError::NoSuchBucket)
    ));
    // Another account's embedded bucket is not this account's: it resolves elsewhere.
    assert!(matches!(
        backends.resolve("acct-b", "local-a").await,
        Err(ObjectsError::NoSuchBucket)
    ));
    assert_eq!(
        backends
            .resolve("acct-a", "local-a")
            .await
            .unwrap()
            .location(),
        "embedded"
    );
    // A named endpoint refuses accounts it does not list.
    assert!(matches!(
        backends.resolve("acct-a", "restricted").await,
        Err(ObjectsError::NotPermitted)
    ));
    assert!(backends.head_bucket("acct-b", "restricted").await.is_ok());
    // A bucket the default endpoint does not have.
    assert!(matches!(
        backends.head_bucket("acct-a", "nowhere").await,
        Err(ObjectsError::NoSuchBucket)
    ));
}

#[test]
fn conflicting_configurations_are_refused() {
    let url = "http://127.0.0.1:9";
    let e = |b: &[&str], d: bool| entry(url, b, d, &["*"]);
    assert!(Backends::new(None, &[e(&["a-b"], false), e(&["a-b"], false)]).is_err());
    assert!(Backends::new(None, &[e(&[], true), e(&[], true)]).is_err());
    assert!(Backends::new(None, &[e(&[], false)]).is_err());
    assert!(Backends::new(None, &[e(&["Not_A_Bucket"], false)]).is_err());
    let ok = Backends::new(None, &[e(&["b-one", "b-two"], false), e(&[], true)]).unwrap();
    let s = ok.summaries();
    assert_eq!(s[0].buckets, ["b-one", "b-two"]);
    assert!(s[1].default && s[1].host == "127.0.0.1:9");
    assert!(!format!("{ok:?}").contains(SK1));
}

// ---- HTTPS with a private CA -------------------------------------------------------------

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) =
                tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

#[tokio::test]
async fn https_endpoints_with_a_private_ca_need_its_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, cert.pem()).unwrap();

    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let server = S3Server::new(&s3_config(&dir), Arc::new(credentials())).unwrap();
    server
        .store()
        .create_bucket(OWNER1, "u", "secure")
        .await
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
    };
    let task = tokio::spawn(async move { axum::serve(listener, server.router()).await });

    let url = format!("https://{addr}");
    let untrusted = S3Client::new(&config(&url, AK1, SK1)).unwrap();
    let e = untrusted.head_bucket("secure").await.unwrap_err();
    assert!(matches!(e, S3Error::Unreachable { .. }), "{e:?}");

    let mut cfg = config(&url, AK1, SK1);
    cfg.ca_file = Some(ca_file);
    let c = S3Client::new(&cfg).unwrap();
    let len = 3 << 20;
    let put = c
        .put_object("secure", "k", &mut pattern(len, 11), len, None)
        .await
        .unwrap();
    let (info, r) = c.get_object("secure", "k").await.unwrap();
    assert_eq!(info.etag, put.etag);
    assert_eq!(digest(r).await.unwrap(), (put.etag, len));
    task.abort();
}
