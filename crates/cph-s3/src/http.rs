//! The HTTP surface: the `s3s` service behind a small request pre-processing layer, and the
//! listener loop.
//!
//! The listener loop bounds what clients can hold: at most [`ServeLimits::max_connections`]
//! connections are served at once (each holds a semaphore slot from accept until it ends), a
//! request head must arrive within [`ServeLimits::header_timeout`], and a connection that waits
//! on its client without a byte moving either way for [`ServeLimits::idle_timeout`] is closed
//! (a slow or stalled header, upload body or download reader, or an idle keep-alive
//! connection). Time a handler spends working before it answers (not waiting for request body
//! bytes) is not charged to the client.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use s3s::service::S3ServiceBuilder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::backend::{Access, Auth, Backend};
use crate::sigv2;
use crate::vhost::VirtualHosts;
use crate::{Credentials, ObjError, ObjectStore, S3Config};

/// How long [`serve`] lets requests in flight finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Largest XML request body (CompleteMultipartUpload with 10,000 parts fits).
const XML_MAX_BODY: usize = 4 << 20;
/// Largest clock difference accepted for SigV2 header signatures (as S3).
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The endpoint: a store and the credentials that sign requests to it.
#[derive(Clone)]
pub struct S3Server {
    store: ObjectStore,
    credentials: Arc<dyn Credentials>,
    hosts: Option<Arc<VirtualHosts>>,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("store", &self.store)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl S3Server {
    /// Opens the store of `config` (creating its root) for the endpoint.
    /// Fails on a `virtual_host_domain` that is not a DNS name.
    pub fn new(config: &S3Config, credentials: Arc<dyn Credentials>) -> Result<Self, ObjError> {
        let hosts = match &config.virtual_host_domain {
            Some(d) => Some(Arc::new(VirtualHosts::new(d)?)),
            None => None,
        };
        let mut server = Self::with_store(ObjectStore::with_config(config)?, credentials);
        server.hosts = hosts;
        Ok(server)
    }

    /// Serves an already open store (share it with the control plane's jobs).
    #[must_use]
    /// Requests are path style only.
    pub fn with_store(store: ObjectStore, credentials: Arc<dyn Credentials>) -> Self {
        Self {
            store,
            credentials,
            hosts: None,
        }
    }

    /// The store, for reading and writing objects without HTTP.
    #[must_use]
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The HTTP surface. It answers every path (path-style addressing, and virtual-hosted
    /// style under the configured domain), so it needs its own listener.
    pub fn router(&self) -> Router {
        let mut builder = S3ServiceBuilder::new(Backend {
            store: self.store.clone(),
        });
        builder.set_auth(Auth {
            credentials: self.credentials.clone(),
        });
        builder.set_access(Access {
            credentials: self.credentials.clone(),
        });
        if let Some(hosts) = &self.hosts {
            builder.set_host(VirtualHosts::clone(hosts));
        }
        let mut limits = s3s::config::S3Config::default();
        limits.xml_max_body_size = XML_MAX_BODY;
        // Browser-form uploads (PostObject) are not offered; s3s would buffer their file part.
        limits.post_object_max_file_size = 0;
        limits.form_max_field_size = 64 << 10;
        limits.form_max_fields_size = 1 << 20;
        limits.form_max_parts = 64;
        limits.presigned_url_max_skew_time_secs = 15 * 60;
        builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
            limits,
        ))));
        let service = axum::error_handling::HandleError::new(
            builder.build(),
            |e: s3s::HttpError| async move {
                tracing::error!(error = ?e, "S3 request failed");
                error_response(
                    &Method::GET,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            },
        );
        let gate = Arc::new(Gate {
            credentials: self.credentials.clone(),
            hosts: self.hosts.clone(),
        });
        Router::new()
            .fallback_service(service)
            .layer(middleware::from_fn_with_state(gate, prepare))
    }
}

/// The HTTP surface of a store under `config.root`, with requests signed by `credentials`.
/// Use [`S3Server`] to share the store with other code.
pub fn router(config: S3Config, credentials: Arc<dyn Credentials>) -> Result<Router, ObjError> {
    Ok(S3Server::new(&config, credentials)?.router())
}

/// Limits on the clients of [`serve_with`].
///
/// Every wait on a client is bounded: the request head must arrive within `header_timeout`,
/// and a connection on which neither direction moves a byte for `idle_timeout` while the
/// server waits on the client (between keep-alive requests, mid-body of an upload, or while a
/// download waits for the client to read) is closed, between `idle_timeout` and twice that
/// after its last byte. Time a handler spends working before it answers (not waiting for
/// request body bytes) does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Longest time from the start of a request head to its end.
    pub header_timeout: Duration,
    /// Longest time without progress while the connection waits on the client.
    pub idle_timeout: Duration,
    /// Most connections served at once; further clients wait in the listener's backlog until
    /// a connection closes (at least 1).
    pub max_connections: usize,
}

impl Default for ServeLimits {
    /// 30 s for a request head, 60 s without progress, 1024 connections.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Pause after a failed `accept` (for example EMFILE) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` with [`ServeLimits::default`] until `shutdown` is cancelled,
/// then lets requests in flight finish for at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, ServeLimits::default()).await
}

/// Serves `router` on `listener` (HTTP/1.1 with keep-alive) within `limits` until `shutdown`
/// is cancelled.
///
/// A connection is accepted only once one of `limits.max_connections` slots is free, so
/// excess clients wait in the kernel's backlog (and are refused by the kernel when it is
/// full) rather than holding a task and buffers here. Accept errors are logged and retried.
/// On shutdown the listener is closed, idle connections are closed, and requests in flight
/// may finish for at most [`SHUTDOWN_GRACE`]; then the remaining connections are dropped (as
/// they are when this future is dropped).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let slots = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let semaphore = Arc::new(Semaphore::new(slots as usize));
    // Dropping this future (or returning) drops every connection still open.
    let abort = CancellationToken::new();
    let _abort_on_exit = abort.clone().drop_guard();
    loop {
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "S3 endpoint cannot accept a connection");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits,
            shutdown.clone(),
            abort.clone(),
            permit,
        ));
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots free means all connections done.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, semaphore.acquire_many(slots)).await;
    if drained.is_err() {
        tracing::warn!("S3 endpoint stopped with requests still in flight");
    }
    Ok(())
}

/// Serves one connection until it ends, `abort` is cancelled, or (once `shutdown` is
/// cancelled) its request in flight is answered. `_slot` is released when it returns.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
    abort: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let waits = Arc::new(ClientWaits::default());
    let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout, waits.clone()));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        let waits = waits.clone();
        async move {
            let _handling = Handling::start(&waits);
            let req = req.map(|body| Body::new(WatchedBody { inner: body, waits }));
            router.oneshot(req).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = abort.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "S3 connection ended");
    }
}

/// What a connection waits on, shared between its IO and its request handling.
///
/// The idle clock of [`IdleTimeout`] runs while the connection waits on the client: when no
/// request is being handled, or when the handler waits for request body bytes.
#[derive(Debug, Default)]
struct ClientWaits {
    /// Requests being handled (at most one on HTTP/1.1).
    handling: AtomicUsize,
    /// Whether the handler waits for request body bytes from the client.
    body_pending: AtomicBool,
}

impl ClientWaits {
    fn on_client(&self) -> bool {
        self.handling.load(Ordering::Acquire) == 0 || self.body_pending.load(Ordering::Acquire)
    }
}

/// Marks a request as being handled while it lives.
struct Handling(Arc<ClientWaits>);

impl Handling {
    fn start(waits: &Arc<ClientWaits>) -> Self {
        waits.handling.fetch_add(1, Ordering::AcqRel);
        Self(waits.clone())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request body that records in [`ClientWaits`] whether its reader waits on the client.
struct WatchedBody {
    inner: Incoming,
    waits: Arc<ClientWaits>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.waits
            .body_pending
            .store(polled.is_pending(), Ordering::Release);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.waits.body_pending.store(false, Ordering::Release);
    }
}

/// A stream that fails with [`std::io::ErrorKind::TimedOut`] once neither direction made
/// progress for `timeout` while the connection waits on the client (see [`ClientWaits`]).
///
/// Invariant: `deadline` is the last progress plus `timeout`, and `sleep` never fires before
/// it. While the server is busy the deadline keeps moving forward, so a client stall is
/// detected between `timeout` and twice that after its last byte.
struct IdleTimeout<S> {
    inner: S,
    timeout: Duration,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    waits: Arc<ClientWaits>,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, timeout: Duration, waits: Arc<ClientWaits>) -> Self {
        let deadline = Instant::now() + timeout;
        Self {
            inner,
            timeout,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            waits,
        }
    }

    fn progressed(&mut self) {
        self.deadline = Instant::now() + self.timeout;
    }

    /// Called when the inner stream is not ready: an error once the deadline passed while
    /// waiting on the client, otherwise `Pending` with a wake-up at the deadline.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        loop {
            if self.sleep.deadline() != self.deadline {
                let deadline = self.deadline;
                self.sleep.as_mut().reset(deadline);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.waits.on_client() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no progress from the client",
                )));
            }
            self.progressed();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.stalled(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => self.stalled(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_shutdown(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => self.stalled(cx),
        }
    }
}

/// What [`prepare`] needs to check SigV2 signatures itself.
struct Gate {
    credentials: Arc<dyn Credentials>,
    hosts: Option<Arc<VirtualHosts>>,
}

/// Adapts requests of real clients before signature verification, and logs each request
/// (target `cph_s3::access`, level debug: method, host, path, status):
///
/// - `HEAD /?apiversion` (and `HEAD /<bucket>?apiversion`), the OBS SDK's unauthenticated
///   signature negotiation, is answered `200` with no `x-obs-api` header, so the SDK signs the
///   AWS way;
/// - a SigV4 header signature without `x-amz-date` (the OBS SDK sends only `Date`) gets
///   `x-amz-date` from `Date`; the SDK does not sign `x-amz-date`, so the canonical request is
///   unchanged;
/// - a SigV2 header signature must carry a `Date` (or `x-amz-date`) within 15 minutes of the
///   server's clock, which bounds the replay of a captured request;
/// - a SigV2 signature (header or presigned URL) is verified here in constant time, and a
///   mismatch is refused with `SignatureDoesNotMatch` ([`sigv2`]), so the plain comparison of
///   `s3s` only ever sees signatures that match;
/// - browser-form uploads (`POST` with `multipart/form-data`), which are not offered, are
///   refused before `s3s` reads the form.
async fn prepare(
    axum::extract::State(gate): axum::extract::State<Arc<Gate>>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let path = req.uri().path().to_owned();
    let resp = check(&gate, req, next).await;
    tracing::debug!(
        target: "cph_s3::access",
        method = %method,
        host = %host,
        path = %path,
        status = resp.status().as_u16(),
        "S3 request"
    );
    resp
}

async fn check(gate: &Gate, mut req: Request, next: Next) -> Response {
    if req.method() == Method::HEAD && is_apiversion_probe(&req) {
        return StatusCode::OK.into_response();
    }
    if req.method() == Method::POST && is_form_upload(&req) {
        return error_response(
            req.method(),
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "Browser-based uploads (POST Object) are not supported; use PutObject.",
        );
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(auth) = auth {
        if auth.starts_with("AWS4-HMAC-SHA256") && !req.headers().contains_key("x-amz-date") {
            if let Some(date) = header_date(&req, header::DATE.as_str())
                && let Ok(v) = HeaderValue::from_str(&amz_date(date))
            {
                req.headers_mut().insert("x-amz-date", v);
            }
        } else if auth.starts_with("AWS ") {
            let date = header_date(&req, "x-amz-date")
                .or_else(|| header_date(&req, header::DATE.as_str()));
            let Some(date) = date else {
                return error_response(
                    req.method(),
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "AWS authentication requires a valid Date or x-amz-date header",
                );
            };
            if !within_skew(date, SystemTime::now()) {
                return error_response(
                    req.method(),
                    StatusCode::FORBIDDEN,
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                );
            }
        }
    }
    if let Some((claim, vh_bucket)) = sigv2_claim(gate, &req) {
        // An unknown key is refused by `s3s` before it compares a signature.
        if let Some(principal) = gate.credentials.lookup(&claim.access_key).await
            && !claim.verify(&principal.secret_key)
        {
            // boto3 signs the path-style resource of a bucket as `/bucket/` but sends
            // `/bucket`: a signature that verifies with the slash gets the slash in the path
            // too, so `s3s` computes the same string-to-sign.
            let with_slash = vh_bucket
                .is_none()
                .then(|| bucket_path_with_slash(req.uri()))
                .flatten()
                .filter(|uri| {
                    sigv2::inspect(req.method(), uri, req.headers(), None)
                        .is_some_and(|alt| alt.verify(&principal.secret_key))
                });
            match with_slash {
                Some(uri) => *req.uri_mut() = uri,
                None => {
                    return error_response(
                        req.method(),
                        StatusCode::FORBIDDEN,
                        "SignatureDoesNotMatch",
                        sigv2::MISMATCH_MESSAGE,
                    );
                }
            }
        }
    }
    next.run(req).await
}

/// The SigV2 signature `s3s` would compare for `req`, if any, and the bucket of a
/// virtual-hosted request.
fn sigv2_claim(gate: &Gate, req: &Request) -> Option<(sigv2::Claim, Option<String>)> {
    // The bucket of a virtual-hosted request, found as `s3s` finds it (a `Host` that is not
    // an IP address, through the same parser); a `Host` that is not text fails in `s3s`.
    let vh_bucket = match (&gate.hosts, req.headers().get(header::HOST)) {
        (Some(hosts), Some(h)) => {
            let h = h.to_str().ok()?;
            let is_ip = h.parse::<SocketAddr>().is_ok() || h.parse::<std::net::IpAddr>().is_ok();
            if is_ip { None } else { hosts.bucket_of(h) }
        }
        _ => None,
    };
    let claim = sigv2::inspect(req.method(), req.uri(), req.headers(), vh_bucket.as_deref())?;
    Some((claim, vh_bucket))
}

/// `/bucket` as `/bucket/` (with the query), for a path-style request on a bucket.
fn bucket_path_with_slash(uri: &axum::http::Uri) -> Option<axum::http::Uri> {
    let bucket = uri.path().strip_prefix('/')?;
    if bucket.is_empty() || bucket.contains('/') {
        return None;
    }
    let with_slash = match uri.query() {
        Some(q) => format!("/{bucket}/?{q}"),
        None => format!("/{bucket}/"),
    };
    with_slash.parse().ok()
}

/// A `POST` whose body is an HTML form (`s3s` would parse it as a POST Object upload).
fn is_form_upload(req: &Request) -> bool {
    req.headers().get_all(header::CONTENT_TYPE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.trim_start()
                .get(..19)
                .is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data"))
        })
    })
}

fn is_apiversion_probe(req: &Request) -> bool {
    let path = req.uri().path().trim_start_matches('/');
    let at_root_or_bucket = !path.trim_end_matches('/').contains('/');
    at_root_or_bucket
        && req.uri().query().is_some_and(|q| {
            q.split('&')
                .any(|p| p == "apiversion" || p.starts_with("apiversion="))
        })
}

fn header_date(req: &Request, name: &str) -> Option<SystemTime> {
    let v = req.headers().get(name)?.to_str().ok()?;
    httpdate::parse_http_date(v).ok()
}

fn within_skew(t: SystemTime, now: SystemTime) -> bool {
    match t.duration_since(now) {
        Ok(ahead) => ahead <= MAX_SKEW,
        Err(behind) => behind.duration() <= MAX_SKEW,
    }
}

/// `YYYYMMDDTHHMMSSZ`, the SigV4 date format.
fn amz_date(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An S3 error document (no body for `HEAD`).
fn error_response(method: &Method, status: StatusCode, code: &str, message: &str) -> Response {
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            xml_escape(code),
            xml_escape(message)
        ))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_clock_runs_only_while_waiting_on_the_client() {
        use tokio::io::AsyncReadExt;
        let (_client, server) = tokio::io::duplex(64);
        let waits = Arc::new(ClientWaits::default());
        let mut io = IdleTimeout::new(server, Duration::from_millis(100), waits.clone());
        let mut buf = [0u8; 8];

        // The server is producing a response: a silent client is not charged.
        let handling = Handling::start(&waits);
        let busy = tokio::time::timeout(Duration::from_millis(500), io.read(&mut buf)).await;
        assert!(
            busy.is_err(),
            "timed out while the server was busy: {busy:?}"
        );

        // The handler waits for body bytes: the silent client is cut off.
        waits.body_pending.store(true, Ordering::Release);
        let stalled = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf))
            .await
            .expect("a stalled body was not cut off");
        assert_eq!(stalled.unwrap_err().kind(), std::io::ErrorKind::TimedOut);

        // Between requests the connection waits on the client as well.
        waits.body_pending.store(false, Ordering::Release);
        drop(handling);
        let idle = tokio::time::timeout(Duration::from_secs(10), io.read(&mut buf))
            .await
            .expect("an idle connection was not cut off");
        assert_eq!(idle.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn amz_date_formats_sigv4_dates() {
        let t = httpdate::parse_http_date("Tue, 15 Nov 1994 08:12:31 GMT").unwrap();
        assert_eq!(amz_date(t), "19941115T081231Z");
    }

    #[test]
    fn skew_is_fifteen_minutes_either_way() {
        let now = SystemTime::now();
        assert!(within_skew(now + Duration::from_secs(14 * 60), now));
        assert!(within_skew(now - Duration::from_secs(14 * 60), now));
        assert!(!within_skew(now + Duration::from_secs(16 * 60), now));
        assert!(!within_skew(now - Duration::from_secs(16 * 60), now));
    }

    #[test]
    fn bucket_paths_get_a_trailing_slash() {
        let with = |u: &str| bucket_path_with_slash(&u.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(with("/bkt").as_deref(), Some("/bkt/"));
        assert_eq!(
            with("/bkt?uploads&max-uploads=2").as_deref(),
            Some("/bkt/?uploads&max-uploads=2")
        );
        assert_eq!(with("/"), None);
        assert_eq!(with("/bkt/"), None);
        assert_eq!(with("/bkt/key"), None);
    }

    #[test]
    fn apiversion_probes_are_recognised_at_root_and_bucket_only() {
        let req = |uri: &str| {
            Request::builder()
                .method(Method::HEAD)
                .uri(uri)
                .body(Body::empty())
                .unwrap()
        };
        assert!(is_apiversion_probe(&req("/?apiversion")));
        assert!(is_apiversion_probe(&req("/bucket?apiversion")));
        assert!(is_apiversion_probe(&req("/bucket/?apiversion=")));
        assert!(!is_apiversion_probe(&req("/bucket/key?apiversion")));
        assert!(!is_apiversion_probe(&req("/?apiversions")));
        assert!(!is_apiversion_probe(&req("/")));
    }
}
