//! The HTTP surface: the `s3s` service behind a small request pre-processing layer, and the
//! listener loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backend::{Access, Auth, Backend};
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
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl S3Server {
    /// Opens the store of `config` (creating its root) for the endpoint.
    pub fn new(config: &S3Config, credentials: Arc<dyn Credentials>) -> Result<Self, ObjError> {
        Ok(Self::with_store(
            ObjectStore::with_config(config)?,
            credentials,
        ))
    }

    /// Serves an already open store (share it with the control plane's jobs).
    #[must_use]
    pub fn with_store(store: ObjectStore, credentials: Arc<dyn Credentials>) -> Self {
        Self { store, credentials }
    }

    /// The store, for reading and writing objects without HTTP.
    #[must_use]
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The HTTP surface. It answers every path (path-style addressing), so it needs its own
    /// listener.
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
        Router::new()
            .fallback_service(service)
            .layer(middleware::from_fn(prepare))
    }
}

/// The HTTP surface of a store under `config.root`, with requests signed by `credentials`.
/// Use [`S3Server`] to share the store with other code.
pub fn router(config: S3Config, credentials: Arc<dyn Credentials>) -> Result<Router, ObjError> {
    Ok(S3Server::new(&config, credentials)?.router())
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish for at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let graceful = shutdown.clone();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { graceful.cancelled().await });
    tokio::select! {
        result = server => result,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("S3 endpoint stopped with requests still in flight");
            Ok(())
        }
    }
}

/// Adapts requests of real clients before signature verification:
///
/// - `HEAD /?apiversion` (and `HEAD /<bucket>?apiversion`), the OBS SDK's unauthenticated
///   signature negotiation, is answered `200` with no `x-obs-api` header, so the SDK signs the
///   AWS way;
/// - a SigV4 header signature without `x-amz-date` (the OBS SDK sends only `Date`) gets
///   `x-amz-date` from `Date`; the SDK does not sign `x-amz-date`, so the canonical request is
///   unchanged;
/// - a SigV2 header signature must carry a `Date` (or `x-amz-date`) within 15 minutes of the
///   server's clock, which bounds the replay of a captured request.
async fn prepare(mut req: Request, next: Next) -> Response {
    if req.method() == Method::HEAD && is_apiversion_probe(&req) {
        return StatusCode::OK.into_response();
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
    next.run(req).await
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
