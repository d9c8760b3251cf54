//! IAM: password tokens and the project list.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Q};
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cph_service::ServiceError;
use cph_store::iam::User;
use cph_wire as w;

fn iso(ts: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// `POST /v3/auth/tokens`: password authentication scoped to a project; the token is returned
/// in `X-Subject-Token`.
pub async fn create_token(
    State(st): State<AppState>,
    JsonBody(b): JsonBody<w::KeystoneCreateUserTokenByPasswordRequestBody>,
) -> ApiResult<Response> {
    let bad = || {
        ApiError(ServiceError::raw(
            400,
            "IAM.0001",
            "The request body is invalid.",
        ))
    };
    let auth = b.auth.ok_or_else(bad)?;
    let identity = auth.identity.ok_or_else(bad)?;
    if !identity
        .methods
        .unwrap_or_default()
        .iter()
        .any(|m| m == "password")
    {
        return Err(bad());
    }
    let user = identity.password.and_then(|p| p.user).ok_or_else(bad)?;
    let name = user.name.ok_or_else(bad)?;
    let password = user.password.ok_or_else(bad)?;
    let domain = user.domain.and_then(|d| d.name).ok_or_else(bad)?;
    let project = auth.scope.and_then(|s| s.project).ok_or_else(bad)?;
    let t = st
        .service
        .issue_token(
            &domain,
            &name,
            &password,
            project.id.as_deref(),
            project.name.as_deref(),
        )
        .await?;
    let body = w::KeystoneCreateUserTokenByPasswordResponse {
        token: w::TokenResult {
            catalog: Vec::new(),
            domain: None,
            expires_at: iso(t.expires_at),
            issued_at: iso(t.issued_at),
            methods: vec!["password".into()],
            project: Some(w::TokenProjectResult {
                name: t.project.name.clone(),
                id: t.project.project_id.clone(),
                domain: w::TokenProjectDomainResult {
                    name: t.domain.name.clone(),
                    id: t.domain.domain_id.clone(),
                },
            }),
            roles: Vec::new(),
            user: w::TokenUserResult {
                name: t.user.name.clone(),
                id: t.user.user_id.clone(),
                password_expires_at: None,
                domain: w::TokenUserDomainResult {
                    name: t.domain.name.clone(),
                    id: t.domain.domain_id.clone(),
                },
            },
        },
    };
    let mut resp = (axum::http::StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&t.token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    Ok(resp)
}

/// `GET /v3/projects[?name=]`: the caller's domain's projects.
pub async fn list_projects(
    State(st): State<AppState>,
    Extension(user): Extension<User>,
    Q(q): Q<w::KeystoneListProjectsQuery>,
) -> ApiResult<Json<w::KeystoneListProjectsResponse>> {
    let projects = st.service.projects_of(&user, q.name.as_deref()).await?;
    Ok(Json(w::KeystoneListProjectsResponse {
        links: w::Links {
            self_: "/v3/projects".into(),
            previous: None,
            next: None,
        },
        projects: projects
            .into_iter()
            .map(|p| w::ProjectResult {
                is_domain: false,
                description: p.description,
                links: w::Links {
                    self_: format!("/v3/projects/{}", p.project_id),
                    previous: None,
                    next: None,
                },
                enabled: true,
                id: p.project_id,
                parent_id: p.domain_id.clone(),
                domain_id: p.domain_id,
                name: p.name,
            })
            .collect(),
    }))
}
