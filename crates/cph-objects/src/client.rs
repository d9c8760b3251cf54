//! A streaming client for S3-compatible endpoints (AWS S3, Huawei OBS, MinIO, Ceph RGW, the
//! embedded endpoint of another `cph serve`).
//!
//! It does what the data operations need and nothing else: HEAD bucket, HEAD object, GET
//! object as an [`AsyncRead`], and PUT object from an [`AsyncRead`] of a known length, as one
//! request up to [`ClientConfig::multipart_threshold`] and as a multipart upload above it.
//!
//! Invariants:
//! - No body is held whole in memory: downloads are read frame by frame from the connection,
//!   uploads are fed through a channel of a few 64 KiB chunks (see [`crate::body`]); only
//!   error documents and multipart XML (bounded) are buffered.
//! - Every wait has a timeout: connecting ([`ClientConfig::connect_timeout`]), each read and
//!   write of a body and the start of each response ([`ClientConfig::read_timeout`]), and a
//!   free request slot ([`ClientConfig::queue_timeout`]).
//! - At most [`ClientConfig::max_requests`] operations run against one endpoint at a time (a
//!   download holds its slot until its reader is dropped), so a batch of jobs does not open a
//!   connection per phone.
//! - Requests are signed with SigV4 in the `Authorization` header (marked sensitive);
//!   streamed bodies are sent as `UNSIGNED-PAYLOAD`. Errors name the endpoint by host and
//!   port, never with credentials.
//! - Addressing is path style (`host/bucket/key`) or virtual-hosted style
//!   (`bucket.host/key`); plain HTTP and HTTPS (rustls with the `ring` provider, the Mozilla
//!   root set plus an optional PEM file of extra CAs).
//! - Host names resolve through the system resolver, except `localhost` and the names under
//!   it, which are the loopback addresses (RFC 6761), so a virtual-hosted endpoint on
//!   `localhost` works wherever the system resolver does not know `<bucket>.localhost`.
//! - A failed multipart upload is aborted (best effort); parts are not retried, since the
//!   body is a stream that cannot be read twice.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::{BodyReader, Pumped, ReqBody, chain, pump, read_small};
use crate::config::{ClientConfig, MAX_PARTS, MIN_PART_SIZE, Secret};
use crate::error::{ConfigError, S3Error};
use crate::sigv4;

/// The system resolver, except that `localhost` and the names under it are the loopback
/// addresses (RFC 6761, section 6.3).
#[derive(Clone)]
struct Resolver(GaiResolver);

impl Resolver {
    fn new() -> Self {
        Self(GaiResolver::new())
    }

    fn is_localhost(host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "localhost" || host.ends_with(".localhost")
    }
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if Self::is_localhost(name.as_str()) {
            let loopback = vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
            ];
            return Box::pin(std::future::ready(Ok(loopback.into_iter())));
        }
        let mut gai = self.0.clone();
        Box::pin(async move {
            let addrs = tower_service::Service::call(&mut gai, name).await?;
            Ok(addrs.collect::<Vec<_>>().into_iter())
        })
    }
}

/// Largest error document or XML result read.
const MAX_XML_RESPONSE: usize = 1 << 20;
/// Longest endpoint message kept in an error.
const MAX_MESSAGE: usize = 300;
/// Time allowed to abort a failed multipart upload.
const ABORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle pooled connections kept per host, and for how long.
const POOL_IDLE_PER_HOST: usize = 8;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a HEAD or GET tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Length in bytes.
    pub size: u64,
    /// The ETag without quotes (empty when the endpoint sends none).
    pub etag: String,
}

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    https: bool,
    /// Lowercase host name or IP literal (IPv6 in brackets).
    host: String,
    /// A port that is not the scheme's default.
    port: Option<u16>,
}

impl Endpoint {
    fn parse(s: &str) -> Result<Endpoint, ConfigError> {
        let bad = |why: &str| ConfigError(format!("endpoint {s:?}: {why}"));
        let uri: http::Uri = s.trim().parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not carry credentials"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("must not have a path or query"));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let port = uri
            .port_u16()
            .filter(|&p| p != if https { 443 } else { 80 });
        Ok(Endpoint { https, host, port })
    }

    fn is_ip(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<std::net::Ipv4Addr>().is_ok()
    }

    /// `host[:port]`, optionally prefixed by a bucket (virtual-hosted style).
    fn authority(&self, bucket: Option<&str>) -> String {
        let mut s = String::new();
        if let Some(b) = bucket {
            s.push_str(b);
            s.push('.');
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push(':');
            s.push_str(&p.to_string());
        }
        s
    }
}

/// Where one request goes: the `Host` header (and URL authority) and the encoded path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    authority: String,
    path: String,
}

/// One request's method, target, query and content type (the parts the signature covers,
/// with the payload hash).
struct Call<'a> {
    method: Method,
    target: &'a Target,
    query: &'a [(&'a str, &'a str)],
    content_type: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn new(method: Method, target: &'a Target) -> Self {
        Call {
            method,
            target,
            query: &[],
            content_type: None,
        }
    }

    fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    fn content_type(mut self, content_type: Option<&'a str>) -> Self {
        self.content_type = content_type;
        self
    }
}

/// A client of one S3-compatible endpoint. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct S3Client {
    http: Client<HttpsConnector<HttpConnector<Resolver>>, ReqBody>,
    endpoint: Endpoint,
    virtual_hosted: bool,
    region: String,
    access_key: String,
    secret_key: Secret,
    host: Arc<str>,
    connect_timeout: Duration,
    read_timeout: Duration,
    multipart_threshold: u64,
    part_size: u64,
    slots: Arc<Semaphore>,
    max_requests: usize,
    queue_timeout: Duration,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("endpoint", &self.endpoint)
            .field("virtual_hosted", &self.virtual_hosted)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// A client for `config.endpoint`. Fails on an unusable endpoint URL, missing
    /// credentials, an unreadable CA file or virtual-hosted style on an IP address.
    pub fn new(config: &ClientConfig) -> Result<S3Client, ConfigError> {
        let endpoint = Endpoint::parse(&config.endpoint)?;
        if config.virtual_hosted && endpoint.is_ip() {
            return Err(ConfigError(format!(
                "endpoint {}: virtual-hosted style needs a host name, not an IP address",
                config.endpoint
            )));
        }
        if config.access_key.is_empty() || config.secret_key.is_empty() {
            return Err(ConfigError(format!(
                "endpoint {}: access_key and secret_key are required",
                config.endpoint
            )));
        }
        if config.region.is_empty() {
            return Err(ConfigError(format!(
                "endpoint {}: region must not be empty",
                config.endpoint
            )));
        }
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = &config.ca_file {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let bad =
                |e: &dyn std::fmt::Display| ConfigError(format!("ca_file {}: {e}", path.display()));
            let mut n = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
                n += 1;
            }
            if n == 0 {
                return Err(bad(&"no certificate in the file"));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut connector = HttpConnector::new_with_resolver(Resolver::new());
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .build(https);
        let host: Arc<str> = endpoint.authority(None).into();
        Ok(S3Client {
            http,
            endpoint,
            virtual_hosted: config.virtual_hosted,
            region: config.region.clone(),
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            host,
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
            multipart_threshold: config.multipart_threshold,
            part_size: config.part_size.max(MIN_PART_SIZE),
            slots: Arc::new(Semaphore::new(config.max_requests.max(1))),
            max_requests: config.max_requests.max(1),
            queue_timeout: config.queue_timeout,
        })
    }

    /// The endpoint's host (and port), as errors and logs name it.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether requests use virtual-hosted style.
    #[must_use]
    pub fn virtual_hosted(&self) -> bool {
        self.virtual_hosted
    }

    /// Succeeds when the bucket exists and the credentials may use it.
    pub async fn head_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let _slot = self.slot().await?;
        self.head_bucket_in_slot(bucket).await
    }

    async fn head_bucket_in_slot(&self, bucket: &str) -> Result<(), S3Error> {
        let t = self.target(bucket, None)?;
        let resp = self
            .send(
                &Call::new(Method::HEAD, &t),
                sigv4::EMPTY_SHA256,
                ReqBody::Empty,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(S3Error::NoSuchBucket {
                host: self.host.to_string(),
            }),
            _ => Err(self.error_of(resp, true).await),
        }
    }

    /// The size and ETag of an object.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo, S3Error> {
        let _slot = self.slot().await?;
        let t = self.target(bucket, Some(key))?;
        let resp = self
            .send(
                &Call::new(Method::HEAD, &t),
                sigv4::EMPTY_SHA256,
                ReqBody::Empty,
            )
            .await?;
        if resp.status().is_success() {
            return self.info(&resp);
        }
        if resp.status() == StatusCode::NOT_FOUND {
            // A HEAD answer has no body to tell a missing key from a missing bucket.
            return Err(match self.head_bucket_in_slot(bucket).await {
                Err(e @ S3Error::NoSuchBucket { .. }) => e,
                _ => S3Error::NoSuchKey {
                    host: self.host.to_string(),
                },
            });
        }
        Err(self.error_of(resp, true).await)
    }

    /// An object's size and ETag and a reader of all its bytes. The reader holds one of the
    /// endpoint's request slots until it is dropped.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, BodyReader), S3Error> {
        let slot = self.slot().await?;
        let t = self.target(bucket, Some(key))?;
        let resp = self
            .send(
                &Call::new(Method::GET, &t),
                sigv4::EMPTY_SHA256,
                ReqBody::Empty,
            )
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(self.error_of(resp, false).await);
        }
        let info = self.info(&resp)?;
        let reader = BodyReader::new(
            resp.into_body(),
            info.size,
            self.read_timeout,
            &self.host,
            slot,
        );
        Ok((info, reader))
    }

    /// Uploads exactly `len` bytes of `reader` as the object `key`, in one request up to the
    /// multipart threshold and as a multipart upload above it. The reader must end after
    /// `len` bytes.
    pub async fn put_object<R>(
        &self,
        bucket: &str,
        key: &str,
        reader: &mut R,
        len: u64,
        content_type: Option<&str>,
    ) -> Result<ObjectInfo, S3Error>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let _slot = self.slot().await?;
        let t = self.target(bucket, Some(key))?;
        if len <= self.multipart_threshold {
            let resp = self
                .send_streamed(
                    &Call::new(Method::PUT, &t).content_type(content_type),
                    reader,
                    len,
                    true,
                )
                .await?;
            if !resp.status().is_success() {
                return Err(self.error_of(resp, false).await);
            }
            let etag = etag_of(&resp);
            return Ok(ObjectInfo { size: len, etag });
        }
        let upload_id = self.create_upload(&t, content_type).await?;
        let result = self.upload_parts(&t, &upload_id, reader, len).await;
        if result.is_err() {
            self.abort_upload(&t, &upload_id).await;
        }
        result.map(|etag| ObjectInfo { size: len, etag })
    }

    /// The part size for a body of `len` bytes: the configured size, raised so that no more
    /// than [`MAX_PARTS`] parts are needed.
    fn part_size_for(&self, len: u64) -> u64 {
        let needed = len.div_ceil(MAX_PARTS);
        self.part_size.max(needed.next_multiple_of(1 << 20))
    }

    async fn create_upload(
        &self,
        t: &Target,
        content_type: Option<&str>,
    ) -> Result<String, S3Error> {
        let resp = self
            .send(
                &Call::new(Method::POST, t)
                    .query(&[("uploads", "")])
                    .content_type(content_type),
                sigv4::EMPTY_SHA256,
                ReqBody::Empty,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp, false).await);
        }
        let body = read_small(
            resp.into_body(),
            MAX_XML_RESPONSE,
            self.read_timeout,
            &self.host,
        )
        .await?;
        #[derive(Deserialize)]
        struct Initiated {
            #[serde(rename = "UploadId")]
            upload_id: String,
        }
        match parse_xml::<Initiated>(&body) {
            Some(d) if !d.upload_id.is_empty() => Ok(d.upload_id),
            _ => Err(self.unusable("CreateMultipartUpload returned no UploadId")),
        }
    }

    async fn upload_parts<R>(
        &self,
        t: &Target,
        upload_id: &str,
        reader: &mut R,
        len: u64,
    ) -> Result<String, S3Error>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let part_size = self.part_size_for(len);
        let parts = len.div_ceil(part_size);
        let mut etags = Vec::with_capacity(usize::try_from(parts).unwrap_or(0));
        let mut offset = 0u64;
        let mut number = 1u64;
        while offset < len {
            let plen = part_size.min(len - offset);
            let last = offset + plen == len;
            let n = number.to_string();
            let resp = self
                .send_streamed(
                    &Call::new(Method::PUT, t)
                        .query(&[("partNumber", &n), ("uploadId", upload_id)]),
                    reader,
                    plen,
                    last,
                )
                .await?;
            if !resp.status().is_success() {
                return Err(self.error_of(resp, false).await);
            }
            let etag = resp
                .headers()
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| self.unusable("UploadPart returned no ETag"))?;
            etags.push((number, etag));
            offset += plen;
            number += 1;
        }
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, etag) in &etags {
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
                xml_escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let hash = hex::encode(Sha256::digest(xml.as_bytes()));
        let resp = self
            .send(
                &Call::new(Method::POST, t)
                    .query(&[("uploadId", upload_id)])
                    .content_type(Some("application/xml")),
                &hash,
                ReqBody::Full(Some(Bytes::from(xml))),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp, false).await);
        }
        // S3 may report a failure of CompleteMultipartUpload in a 200 answer.
        let status = resp.status().as_u16();
        let body = read_small(
            resp.into_body(),
            MAX_XML_RESPONSE,
            self.read_timeout,
            &self.host,
        )
        .await?;
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Completed {
            #[serde(rename = "ETag")]
            etag: String,
            #[serde(rename = "Code")]
            code: String,
            #[serde(rename = "Message")]
            message: String,
        }
        let doc = parse_xml::<Completed>(&body)
            .ok_or_else(|| self.unusable("CompleteMultipartUpload returned no XML"))?;
        if !doc.code.is_empty() {
            return Err(self.classify(status, doc.code, doc.message));
        }
        Ok(doc.etag.trim_matches('"').to_owned())
    }

    async fn abort_upload(&self, t: &Target, upload_id: &str) {
        let r = tokio::time::timeout(ABORT_TIMEOUT, async {
            let resp = self
                .send(
                    &Call::new(Method::DELETE, t).query(&[("uploadId", upload_id)]),
                    sigv4::EMPTY_SHA256,
                    ReqBody::Empty,
                )
                .await?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(self.error_of(resp, false).await)
            }
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(host = %self.host, error = %e, "aborting a failed multipart upload failed");
            }
            Err(_) => {
                tracing::warn!(host = %self.host, "aborting a failed multipart upload timed out");
            }
        }
    }

    // ---- requests ------------------------------------------------------------------------

    /// One of the endpoint's request slots: at most [`ClientConfig::max_requests`] operations
    /// (a download counts until its reader is dropped) run at a time; others wait at most
    /// [`ClientConfig::queue_timeout`].
    async fn slot(&self) -> Result<OwnedSemaphorePermit, S3Error> {
        let busy = || S3Error::Unreachable {
            host: self.host.to_string(),
            reason: format!(
                "all {} request slots stayed busy for {}s",
                self.max_requests,
                self.queue_timeout.as_secs_f32()
            ),
        };
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }

    /// The authority and encoded path of a request on `bucket` (and `key`).
    fn target(&self, bucket: &str, key: Option<&str>) -> Result<Target, S3Error> {
        check_bucket(bucket, self.virtual_hosted)?;
        if let Some(k) = key
            && (k.is_empty() || k.len() > 1024)
        {
            return Err(S3Error::InvalidRequest(
                "an object key has 1 to 1024 bytes".into(),
            ));
        }
        let key_path = key.map(|k| sigv4::uri_encode(k, true));
        Ok(if self.virtual_hosted {
            Target {
                authority: self.endpoint.authority(Some(bucket)),
                path: format!("/{}", key_path.unwrap_or_default()),
            }
        } else {
            let mut path = format!("/{bucket}");
            if let Some(k) = key_path {
                path.push('/');
                path.push_str(&k);
            }
            Target {
                authority: self.endpoint.authority(None),
                path,
            }
        })
    }

    /// A signed request.
    fn request(
        &self,
        call: &Call<'_>,
        payload_hash: &str,
        content_length: u64,
        body: ReqBody,
    ) -> Result<Request<ReqBody>, S3Error> {
        let (t, query) = (call.target, call.query);
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let headers = [
            ("host", t.authority.as_str()),
            ("x-amz-content-sha256", payload_hash),
            ("x-amz-date", amz_date.as_str()),
        ];
        let scope = sigv4::Scope {
            access_key: &self.access_key,
            secret_key: self.secret_key.expose(),
            amz_date: &amz_date,
            region: &self.region,
            service: "s3",
        };
        let signed = sigv4::Request {
            method: call.method.as_str(),
            path: &t.path,
            query,
            headers: &headers,
            payload_hash,
        };
        let mut authorization = HeaderValue::from_str(&sigv4::authorization(&scope, &signed))
            .map_err(|_| S3Error::InvalidRequest("the access key is not a header value".into()))?;
        authorization.set_sensitive(true);
        let mut uri = format!(
            "{}://{}{}",
            if self.endpoint.https { "https" } else { "http" },
            t.authority,
            t.path
        );
        if !query.is_empty() {
            uri.push('?');
            let parts: Vec<String> = query
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        sigv4::uri_encode(k, false)
                    } else {
                        format!(
                            "{}={}",
                            sigv4::uri_encode(k, false),
                            sigv4::uri_encode(v, false)
                        )
                    }
                })
                .collect();
            uri.push_str(&parts.join("&"));
        }
        let mut b = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(HOST, &t.authority)
            .header("x-amz-content-sha256", payload_hash)
            .header("x-amz-date", amz_date)
            .header(AUTHORIZATION, authorization);
        // Requests that may carry a body always say how long it is (some endpoints answer
        // 411 Length Required to a POST without Content-Length).
        if !matches!(body, ReqBody::Empty) || matches!(call.method, Method::POST | Method::PUT) {
            b = b.header(CONTENT_LENGTH, content_length);
        }
        if let Some(ct) = call.content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        b.body(body)
            .map_err(|e| S3Error::InvalidRequest(format!("cannot build the request: {e}")))
    }

    /// Sends a request whose body is empty or in memory; waits for the response head.
    async fn send(
        &self,
        call: &Call<'_>,
        payload_hash: &str,
        body: ReqBody,
    ) -> Result<Response<Incoming>, S3Error> {
        let len = match &body {
            ReqBody::Full(Some(b)) => b.len() as u64,
            _ => 0,
        };
        let req = self.request(call, payload_hash, len, body)?;
        self.response_of(self.http.request(req)).await
    }

    /// Waits for a response head, within the connect and read timeouts.
    async fn response_of(
        &self,
        fut: impl Future<Output = Result<Response<Incoming>, hyper_util::client::legacy::Error>>,
    ) -> Result<Response<Incoming>, S3Error> {
        match tokio::time::timeout(self.connect_timeout + self.read_timeout, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.transport(&e)),
            Err(_) => Err(S3Error::Unreachable {
                host: self.host.to_string(),
                reason: format!(
                    "no response within {}s",
                    (self.connect_timeout + self.read_timeout).as_secs()
                ),
            }),
        }
    }

    /// Sends a request whose body is `len` bytes streamed from `reader`; with `expect_end`
    /// the reader must end right after them.
    async fn send_streamed<R>(
        &self,
        call: &Call<'_>,
        reader: &mut R,
        len: u64,
        expect_end: bool,
    ) -> Result<Response<Incoming>, S3Error>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let (body, tx) = ReqBody::channel(len);
        let req = self.request(call, sigv4::UNSIGNED_PAYLOAD, len, body)?;
        let response = self.http.request(req);
        tokio::pin!(response);
        let early = {
            let pumping = pump(&mut *reader, tx, len, self.read_timeout, &self.host);
            tokio::pin!(pumping);
            tokio::select! {
                biased;
                p = &mut pumping => match p? {
                    Pumped::All => None,
                    Pumped::Closed => Some(()),
                },
                r = &mut response => {
                    // The endpoint answered before taking the whole body: an error answer
                    // (or a broken connection) that says why.
                    let r = r.map_err(|e| self.transport(&e))?;
                    if r.status().is_success() {
                        return Err(self.unusable("the endpoint answered before the whole body was sent"));
                    }
                    return Ok(r);
                }
            }
        };
        if early.is_none() && expect_end {
            let mut probe = [0u8; 1];
            match tokio::time::timeout(self.read_timeout, reader.read(&mut probe)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(_)) => {
                    return Err(S3Error::Body(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the body is longer than the declared {len} bytes"),
                    )));
                }
                Ok(Err(e)) => return Err(S3Error::Body(e)),
                Err(_) => {
                    return Err(S3Error::Body(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "reading the body timed out",
                    )));
                }
            }
        }
        self.response_of(response).await
    }

    // ---- answers -------------------------------------------------------------------------

    fn info(&self, resp: &Response<Incoming>) -> Result<ObjectInfo, S3Error> {
        let size = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| self.unusable("the answer has no Content-Length"))?;
        Ok(ObjectInfo {
            size,
            etag: etag_of(resp),
        })
    }

    fn transport(&self, e: &hyper_util::client::legacy::Error) -> S3Error {
        S3Error::Unreachable {
            host: self.host.to_string(),
            reason: chain(e),
        }
    }

    fn unusable(&self, why: &str) -> S3Error {
        S3Error::Protocol {
            host: self.host.to_string(),
            reason: why.to_owned(),
        }
    }

    /// The error an unsuccessful answer stands for (`head`: the answer has no body).
    async fn error_of(&self, resp: Response<Incoming>, head: bool) -> S3Error {
        let status = resp.status().as_u16();
        if head {
            let code = match resp.status() {
                StatusCode::FORBIDDEN => "Forbidden",
                StatusCode::NOT_FOUND => "NotFound",
                _ => "",
            };
            return self.classify(status, code.to_owned(), String::new());
        }
        let body = match read_small(
            resp.into_body(),
            MAX_XML_RESPONSE,
            self.read_timeout,
            &self.host,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => return e,
        };
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct ErrorDoc {
            #[serde(rename = "Code")]
            code: String,
            #[serde(rename = "Message")]
            message: String,
        }
        let doc = parse_xml::<ErrorDoc>(&body).unwrap_or_default();
        self.classify(status, doc.code, doc.message)
    }

    fn classify(&self, status: u16, code: String, message: String) -> S3Error {
        let host = self.host.to_string();
        match code.as_str() {
            "NoSuchBucket" => S3Error::NoSuchBucket { host },
            "NoSuchKey" => S3Error::NoSuchKey { host },
            "AccessDenied"
            | "SignatureDoesNotMatch"
            | "InvalidAccessKeyId"
            | "AllAccessDisabled"
            | "InvalidToken"
            | "ExpiredToken"
            | "AccountProblem"
            | "Forbidden" => S3Error::AccessDenied { host, code },
            "" if status == 403 => S3Error::AccessDenied {
                host,
                code: "Forbidden".into(),
            },
            "" | "NotFound" if status == 404 => S3Error::NoSuchKey { host },
            _ => S3Error::Failed {
                host,
                status,
                code,
                message: bounded(message, MAX_MESSAGE),
            },
        }
    }
}

/// The ETag of an answer without quotes.
fn etag_of(resp: &Response<Incoming>) -> String {
    resp.headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// Bucket names a request can carry: 3–63 characters of letters, digits, `.`, `-` and `_`
/// (path style also allows the legacy uppercase and `_`); virtual-hosted style needs a DNS
/// name (lowercase letters, digits, `.` and `-`).
fn check_bucket(bucket: &str, virtual_hosted: bool) -> Result<(), S3Error> {
    let ok_len = (3..=63).contains(&bucket.len());
    let ok_chars = bucket.bytes().all(|b| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'.'
            || b == b'-'
            || (!virtual_hosted && (b.is_ascii_uppercase() || b == b'_'))
    });
    let ok_ends = bucket
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && bucket
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_ends && !bucket.contains("..") {
        Ok(())
    } else {
        Err(S3Error::InvalidRequest(format!(
            "{bucket:?} is not a bucket name this endpoint can address"
        )))
    }
}

fn parse_xml<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str(text).ok()
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(crate) fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_under_localhost_are_loopback() {
        use tower_service::Service;
        let mut r = Resolver::new();
        for host in ["localhost", "bucket.localhost", "A.B.LocalHost."] {
            let name: Name = host.parse().unwrap();
            let addrs: Vec<SocketAddr> = r.call(name).await.unwrap().collect();
            assert!(
                !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
                "{host}"
            );
        }
        assert!(!Resolver::is_localhost("notlocalhost"));
        assert!(!Resolver::is_localhost("localhost.example.com"));
    }

    fn client(endpoint: &str, virtual_hosted: bool) -> S3Client {
        let mut c = ClientConfig::new(endpoint, "AK", Secret::new("SK"));
        c.virtual_hosted = virtual_hosted;
        S3Client::new(&c).unwrap()
    }

    #[tokio::test]
    async fn virtual_hosted_urls_put_the_bucket_in_the_host() {
        let c = client("https://obs.cn-north-4.myhuaweicloud.com", true);
        let t = c.target("my-bucket", Some("dir/a b+c.tar")).unwrap();
        assert_eq!(t.authority, "my-bucket.obs.cn-north-4.myhuaweicloud.com");
        assert_eq!(t.path, "/dir/a%20b%2Bc.tar");
        let t = c.target("my-bucket", None).unwrap();
        assert_eq!(t.path, "/");
        let req = c
            .request(
                &Call::new(Method::GET, &c.target("my-bucket", Some("k")).unwrap()),
                sigv4::EMPTY_SHA256,
                0,
                ReqBody::Empty,
            )
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://my-bucket.obs.cn-north-4.myhuaweicloud.com/k"
        );
        assert_eq!(
            req.headers()[HOST],
            "my-bucket.obs.cn-north-4.myhuaweicloud.com"
        );
        let auth = req.headers()[AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature="));
        assert!(req.headers()[AUTHORIZATION].is_sensitive());
        // Names that are not DNS labels cannot be virtual-hosted.
        assert!(c.target("My_Bucket", None).is_err());
    }

    #[tokio::test]
    async fn path_style_urls_keep_the_port_and_put_the_bucket_in_the_path() {
        let c = client("http://127.0.0.1:9000/", false);
        let t = c.target("bkt", Some("a/ü.apk")).unwrap();
        assert_eq!(t.authority, "127.0.0.1:9000");
        assert_eq!(t.path, "/bkt/a/%C3%BC.apk");
        let req = c
            .request(
                &Call::new(Method::POST, &t).query(&[("uploadId", "x y"), ("partNumber", "3")]),
                sigv4::UNSIGNED_PAYLOAD,
                5,
                ReqBody::Full(Some(Bytes::from_static(b"hello"))),
            )
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "http://127.0.0.1:9000/bkt/a/%C3%BC.apk?uploadId=x%20y&partNumber=3"
        );
        let req = c
            .request(
                &Call::new(Method::POST, &t).query(&[("uploads", "")]),
                sigv4::EMPTY_SHA256,
                0,
                ReqBody::Empty,
            )
            .unwrap();
        assert_eq!(req.uri().query(), Some("uploads"));
        // Default ports are left out of the Host header (and so of the signature).
        let c = client("https://s3.example.com:443", false);
        assert_eq!(c.target("bkt", None).unwrap().authority, "s3.example.com");
        assert_eq!(c.host(), "s3.example.com");
    }

    #[test]
    fn unusable_configurations_are_refused() {
        let new = |endpoint: &str, vh: bool| {
            let mut c = ClientConfig::new(endpoint, "AK", Secret::new("SK"));
            c.virtual_hosted = vh;
            S3Client::new(&c)
        };
        assert!(new("ftp://h", false).is_err());
        assert!(new("http://user:pw@h", false).is_err());
        assert!(new("http://h/prefix", false).is_err());
        assert!(new("http://10.0.0.1:9000", true).is_err());
        assert!(S3Client::new(&ClientConfig::new("http://h", "AK", Secret::new(""))).is_err());
    }

    #[tokio::test]
    async fn parts_stay_within_the_part_limit() {
        let c = client("http://h", false);
        assert_eq!(c.part_size_for(100 << 20), 16 << 20);
        let huge = 400u64 << 30;
        let p = c.part_size_for(huge);
        assert!(huge.div_ceil(p) <= MAX_PARTS && p.is_multiple_of(1 << 20));
    }

    #[test]
    fn xml_answers_are_read() {
        #[derive(Deserialize)]
        struct Initiated {
            #[serde(rename = "UploadId")]
            upload_id: String,
        }
        let x = br#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>abc&amp;1</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(parse_xml::<Initiated>(x).unwrap().upload_id, "abc&1");
        assert_eq!(xml_escape("\"e&<"), "&quot;e&amp;&lt;");
        assert_eq!(bounded("éé".into(), 3), "é…");
    }
}
