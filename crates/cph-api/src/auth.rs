//! Authentication (AK/SK signatures or `X-Auth-Token`) and authorization of API requests.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cph_auth::{AuthError, SignedRequest};
use cph_service::ServiceError;
use cph_store::iam::User;

/// Largest accepted API request body.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

fn gw(status: u16, code: &str, msg: impl Into<String>) -> ApiError {
    ApiError(ServiceError::raw(status, code, msg))
}

fn map_auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::ClockSkew => gw(
            401,
            "APIGW.0303",
            "Incorrect app authentication information: the request has expired (X-Sdk-Date).",
        ),
        AuthError::MissingAuthorization => gw(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: missing Authorization or X-Auth-Token.",
        ),
        other => gw(
            401,
            "APIGW.0301",
            format!(
                "Incorrect IAM authentication information: verify aksk signature fail ({other})."
            ),
        ),
    }
}

/// The project id of an API path: `/v1/{project_id}/…`, `/v2/…`, `/v2.1/…`.
pub fn path_project(path: &str) -> Option<&str> {
    let mut it = path.trim_start_matches('/').split('/');
    let version = it.next()?;
    if !version.starts_with('v') {
        return None;
    }
    it.next().filter(|p| !p.is_empty())
}

/// Authenticates the request, resolves the caller's project and, for routes that serve a single
/// operation, checks the caller may perform it. Multi-operation routes (told apart by body)
/// authorize in their handler.
pub async fn authenticate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match authenticate_inner(&st, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn authenticate_inner(st: &AppState, req: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| gw(413, "APIGW.0201", "Request entity too large."))?;
    let path = parts.uri.path().to_string();
    let project_in_path = path_project(&path).map(str::to_string).ok_or_else(|| {
        gw(
            404,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment.",
        )
    })?;
    let (user, token_project) = authenticate_user(st, &parts, &bytes).await?;
    match token_project {
        Some(tp) if tp != project_in_path => {
            return Err(gw(
                403,
                "APIGW.0302",
                "The token is not scoped to the project in the path.",
            ));
        }
        _ => {}
    }
    // The SDK signs X-Project-Id; when present it must name the path's project.
    if let Some(p) = parts
        .headers
        .get("x-project-id")
        .and_then(|v| v.to_str().ok())
        && p != project_in_path
    {
        return Err(gw(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: X-Project-Id does not match the project in the path.",
        ));
    }
    let action = parts
        .extensions
        .get::<MatchedPath>()
        .and_then(|mp| crate::ops::single_action(parts.method.as_str(), mp.as_str()));
    let caller = st
        .service
        .caller_for(&user, &project_in_path, action)
        .await?;
    parts.extensions.insert(caller);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Authenticates the user of a request by AK/SK signature or token. Returns the user and, for a
/// token, the project it is scoped to.
pub async fn authenticate_user(
    st: &AppState,
    parts: &axum::http::request::Parts,
    bytes: &[u8],
) -> Result<(User, Option<String>), ApiError> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Some(auth) = header("authorization") {
        let parsed = cph_auth::parse_authorization(&auth).map_err(map_auth_error)?;
        let (key, user) = st
            .service
            .access_key(&parsed.access_key)
            .await?
            .ok_or_else(|| {
                gw(
                    401,
                    "APIGW.0301",
                    "Incorrect IAM authentication information: unknown or revoked access key.",
                )
            })?;
        let mut headers: Vec<(String, String)> = Vec::with_capacity(parts.headers.len() + 1);
        for (k, v) in &parts.headers {
            if let Ok(v) = v.to_str() {
                headers.push((k.as_str().to_string(), v.to_string()));
            }
        }
        if parts.headers.get("host").is_none()
            && let Some(a) = parts.uri.authority()
        {
            headers.push(("host".into(), a.to_string()));
        }
        let hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let sreq = SignedRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &hdrs,
            body: bytes,
        };
        let skew = chrono::Duration::from_std(st.service.config().max_clock_skew)
            .unwrap_or(chrono::Duration::minutes(15));
        cph_auth::verify(&sreq, key.secret_key.expose(), st.clock.now(), skew)
            .map_err(map_auth_error)?;
        Ok((user, None))
    } else if let Some(token) = header("x-auth-token") {
        let (user, token_project) = st.service.user_for_token(&token).await?;
        Ok((user, Some(token_project)))
    } else {
        Err(map_auth_error(AuthError::MissingAuthorization))
    }
}

/// For routes outside any project (`GET /v3/projects`): authenticates and stores the [`User`].
pub async fn authenticate_user_only(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return gw(413, "APIGW.0201", "Request entity too large.").into_response(),
    };
    match authenticate_user(&st, &parts, &bytes).await {
        Ok((user, _)) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::path_project;

    #[test]
    fn project_from_path() {
        assert_eq!(path_project("/v1/abc/cloud-phone/phones"), Some("abc"));
        assert_eq!(path_project("/v2.1/abc/os-keypairs"), Some("abc"));
        assert_eq!(path_project("/openapi.json"), None);
        assert_eq!(path_project("/v1/"), None);
    }
}
