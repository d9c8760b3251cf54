//! The one place where errors become the CPH error body.
//!
//! Handlers and middleware return [`ServiceError`]s (or axum rejections); they turn into a bare
//! response carrying an [`ErrorInfo`] extension. [`finalize`], the outermost layer, renders every
//! error response as `{error_code, error_msg, request_id}` with the request's id, and stamps
//! `X-Request-Id` on every response.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cph_service::ServiceError;

/// A documented error awaiting rendering.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// The id of the current request (32 lowercase hex), set by [`finalize`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Wrapper so handlers can return `Result<_, ApiError>` with `?` on service calls.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

pub fn error_response(status: u16, code: &str, message: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r.extensions_mut().insert(ErrorInfo {
        code: code.to_string(),
        message: message.to_string(),
    });
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            ServiceError::Api {
                status,
                code,
                message,
            } => error_response(status, &code, &message),
            ServiceError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                error_response(500, "CPS.0003", "Service internal error.")
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Outermost middleware: assigns the request id and renders error bodies.
pub async fn finalize(mut req: Request, next: Next) -> Response {
    let id = cph_domain::ids::hex_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    let status = resp.status();
    let info = resp.extensions_mut().remove::<ErrorInfo>();
    let info = match info {
        Some(i) => Some(i),
        None if status.is_client_error() || status.is_server_error() => {
            // A framework rejection or a route/method that does not exist.
            let (code, message) = match status {
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => (
                    "APIGW.0101",
                    "The API does not exist or has not been published in the environment.",
                ),
                StatusCode::PAYLOAD_TOO_LARGE => ("APIGW.0201", "Request entity too large."),
                s if s.is_server_error() => ("CPS.0003", "Service internal error."),
                _ => ("APIGW.0201", "Request is not valid."),
            };
            let status = if status == StatusCode::METHOD_NOT_ALLOWED {
                StatusCode::NOT_FOUND
            } else {
                status
            };
            *resp.status_mut() = status;
            Some(ErrorInfo {
                code: code.into(),
                message: message.into(),
            })
        }
        None => None,
    };
    if let Some(info) = info {
        let body = cph_wire::ErrorBody {
            error_code: info.code,
            error_msg: info.message,
            request_id: id.clone(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let status = resp.status();
        resp = Response::new(Body::from(bytes));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
