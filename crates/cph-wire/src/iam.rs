//! IAM (Keystone v3 subset): `POST /v3/auth/tokens` (password auth) and `GET /v3/projects`,
//! shaped like huaweicloudsdkiam v3 `KeystoneCreateUserTokenByPassword` / `KeystoneListProjects`.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Response header carrying the issued token of `POST /v3/auth/tokens`.
pub const X_SUBJECT_TOKEN_HEADER: &str = "X-Subject-Token";

/// Request header carrying a token on later calls.
pub const X_AUTH_TOKEN_HEADER: &str = "X-Auth-Token";

// ---------------------------------------------------------------------------
// POST /v3/auth/tokens — request
// ---------------------------------------------------------------------------

/// Query parameters of KeystoneCreateUserTokenByPassword.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeystoneCreateTokenQuery {
    /// Any value: omit `catalog` from the response.
    pub nocatalog: Option<String>,
}

/// Domain of the authenticating user (request; SDK `PwdPasswordUserDomain`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PwdPasswordUserDomain {
    /// Account (domain) name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// User credentials (request; SDK `PwdPasswordUser`). `Debug` does not print the password.
#[derive(Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PwdPasswordUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<PwdPasswordUserDomain>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl fmt::Debug for PwdPasswordUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PwdPasswordUser")
            .field("domain", &self.domain)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `password` method payload (request; SDK `PwdPassword`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PwdPassword {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<PwdPasswordUser>,
}

/// Identity section (request; SDK `PwdIdentity`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PwdIdentity {
    /// Authentication methods; `["password"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<PwdPassword>,
}

/// Domain scope (request; SDK `AuthScopeDomain`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct AuthScopeDomain {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Project scope, by `id` or by `name` (request; SDK `AuthScopeProject`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct AuthScopeProject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Project name, e.g. the region name `cn-north-4`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Token scope (request; SDK `AuthScope`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct AuthScope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<AuthScopeDomain>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<AuthScopeProject>,
}

/// `auth` object (request; SDK `PwdAuth`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct PwdAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<PwdIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<AuthScope>,
}

/// Request body of KeystoneCreateUserTokenByPassword (`POST /v3/auth/tokens`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct KeystoneCreateUserTokenByPasswordRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<PwdAuth>,
}

// ---------------------------------------------------------------------------
// POST /v3/auth/tokens — response
// ---------------------------------------------------------------------------

/// Endpoint of a catalog entry (SDK `TokenCatalogEndpoint`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenCatalogEndpoint {
    pub url: String,
    pub region: String,
    pub region_id: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    pub id: String,
}

/// Service catalog entry of a token (SDK `TokenCatalog`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenCatalog {
    /// Service type, e.g. `cph`.
    #[serde(rename = "type")]
    pub r#type: String,
    pub id: String,
    pub name: String,
    pub endpoints: Vec<TokenCatalogEndpoint>,
}

/// Domain (account) of a domain-scoped token (SDK `TokenDomainResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenDomainResult {
    pub name: String,
    pub id: String,
}

/// Domain of the token's project (SDK `TokenProjectDomainResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenProjectDomainResult {
    pub name: String,
    pub id: String,
}

/// Project of a project-scoped token (SDK `TokenProjectResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenProjectResult {
    pub name: String,
    pub id: String,
    pub domain: TokenProjectDomainResult,
}

/// Role granted in the token scope (SDK `TokenRole`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenRole {
    pub name: String,
    pub id: String,
}

/// Domain of the token's user (SDK `TokenUserDomainResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenUserDomainResult {
    pub name: String,
    pub id: String,
}

/// User of a token (SDK `TokenUserResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenUserResult {
    pub name: String,
    pub id: String,
    /// Password expiry (UTC, ISO 8601); empty string when the password does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_expires_at: Option<String>,
    pub domain: TokenUserDomainResult,
}

/// The `token` object of the token response (SDK `TokenResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenResult {
    /// Service catalog; empty with `nocatalog`.
    pub catalog: Vec<TokenCatalog>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<TokenDomainResult>,
    /// Expiry, UTC ISO 8601 with microseconds, e.g. `2019-02-13T06:52:13.855000Z`.
    pub expires_at: String,
    /// Issue time, same format as `expires_at`.
    pub issued_at: String,
    /// `["password"]`.
    pub methods: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<TokenProjectResult>,
    pub roles: Vec<TokenRole>,
    pub user: TokenUserResult,
}

/// Response body of KeystoneCreateUserTokenByPassword (HTTP 201; the token itself is in the
/// `X-Subject-Token` header).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeystoneCreateUserTokenByPasswordResponse {
    pub token: TokenResult,
}

// ---------------------------------------------------------------------------
// GET /v3/projects
// ---------------------------------------------------------------------------

/// Query parameters of KeystoneListProjects (`GET /v3/projects`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeystoneListProjectsQuery {
    pub domain_id: Option<String>,
    /// Exact project name (the SDK looks up `name={region_id}`).
    pub name: Option<String>,
    pub parent_id: Option<String>,
    /// `true` / `false`.
    pub enabled: Option<String>,
    /// `true` / `false`.
    pub is_domain: Option<String>,
    /// Page number, >= 1.
    pub page: Option<String>,
    /// Page size, 1..=5000.
    pub per_page: Option<String>,
}

/// Resource links (SDK `Links`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Links {
    /// URL of this resource or page.
    #[serde(rename = "self")]
    pub self_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Project of KeystoneListProjects (SDK `ProjectResult`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ProjectResult {
    /// Always `false` for a project.
    pub is_domain: bool,
    pub description: String,
    pub links: Links,
    pub enabled: bool,
    pub id: String,
    /// Parent project, or the domain ID for a top-level (region) project.
    pub parent_id: String,
    pub domain_id: String,
    pub name: String,
}

/// Response body of KeystoneListProjects.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeystoneListProjectsResponse {
    pub links: Links,
    pub projects: Vec<ProjectResult>,
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Inner object of a Keystone-style error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeystoneError {
    /// HTTP status code as a number, e.g. 401.
    pub code: i32,
    /// HTTP reason phrase, e.g. `Unauthorized`.
    pub title: String,
    pub message: String,
}

/// Keystone-style error body `{"error": {"code", "title", "message"}}` of the IAM operations.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct KeystoneErrorBody {
    pub error: KeystoneError,
}
