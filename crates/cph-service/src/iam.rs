//! Identity and access: bootstrap, AK/SK and token authentication, grants, administration.

use crate::{Caller, Result, Service, ServiceError};
use cph_domain::ids;
use cph_store::StoreError;
use cph_store::iam::{
    self as store, AccessKey, AccessKeyInfo, Domain, Grant, Project, SealReport, User,
};
use cph_store::secrets::Secret;

/// What `cph serve` prints and writes to `bootstrap.json`. `Debug` hides the password and the
/// secret key.
#[derive(Clone, PartialEq)]
pub struct BootstrapInfo {
    pub domain_id: String,
    pub domain_name: String,
    pub user_id: String,
    pub user_name: String,
    /// Only known when this call created the user.
    pub password: Option<String>,
    pub access_key: String,
    /// Only known when this call created (or was given) the key.
    pub secret_key: Option<String>,
    pub project_id: String,
    pub project_name: String,
    pub default_vpc_id: String,
    pub default_subnet_id: String,
}

impl std::fmt::Debug for BootstrapInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapInfo")
            .field("domain_id", &self.domain_id)
            .field("domain_name", &self.domain_name)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("project_id", &self.project_id)
            .field("project_name", &self.project_name)
            .field("default_vpc_id", &self.default_vpc_id)
            .field("default_subnet_id", &self.default_subnet_id)
            .finish()
    }
}

/// Fixed credentials to bootstrap with (`CPH_BOOTSTRAP_ACCESS_KEY` / `_SECRET_KEY`). `Debug`
/// hides the secret key.
#[derive(Clone, Default)]
pub struct BootstrapRequest {
    pub domain_name: String,
    pub user_name: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for BootstrapRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapRequest")
            .field("domain_name", &self.domain_name)
            .field("user_name", &self.user_name)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The start-up check's verdict: sealed secret keys exist and none decrypts with the master key.
#[derive(Debug, thiserror::Error)]
#[error(
    "wrong master key: none of the {sealed_keys} stored secret keys decrypts with it (they were sealed with another master key)"
)]
pub struct WrongMasterKey {
    pub sealed_keys: u64,
}

/// A token issued by password authentication.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: i64,
    pub issued_at: i64,
    pub user: User,
    pub domain: Domain,
    pub project: Project,
}

fn denied(action: &str) -> ServiceError {
    ServiceError::cps_msg(
        "CPS.0001",
        format!("Policy doesn't allow {action} to be performed."),
    )
}

/// True when grant pattern `pattern` covers `action`. Patterns compare segment by segment
/// (`:`-separated); a `*` segment matches any one segment, and a lone `*` matches everything.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let p: Vec<&str> = pattern.split(':').collect();
    let a: Vec<&str> = action.split(':').collect();
    p.len() == a.len()
        && p.iter()
            .zip(&a)
            .all(|(p, a)| *p == "*" || p.eq_ignore_ascii_case(a))
}

impl Service {
    /// Creates the administrator's domain, user, project, key and default network on first start;
    /// afterwards returns what exists (and adds the fixed key if one is requested and missing).
    pub async fn bootstrap(&self, req: &BootstrapRequest) -> Result<BootstrapInfo> {
        let now = self.now_ms();
        let region = self.config().region.clone();
        let mut tx = self.store().write().await?;
        let mut password = None;
        let secret_out;
        let domain = match store::domain_by_name(&mut tx, &req.domain_name).await? {
            Some(d) => d,
            None => {
                let d = Domain {
                    domain_id: ids::hex_id(),
                    name: req.domain_name.clone(),
                    created_at: now,
                };
                store::insert_domain(&mut tx, &d).await?;
                d
            }
        };
        let user = match store::user_by_name(&mut tx, &domain.domain_id, &req.user_name).await? {
            Some(u) => u,
            None => {
                let pw = cph_auth::secret::generate_secret_key();
                let u = User {
                    user_id: ids::hex_id(),
                    domain_id: domain.domain_id.clone(),
                    name: req.user_name.clone(),
                    password_hash: Some(cph_auth::secret::hash_password(&pw)),
                    created_at: now,
                };
                store::insert_user(&mut tx, &u).await?;
                password = Some(pw);
                u
            }
        };
        store::insert_grant(
            &mut tx,
            &Grant {
                user_id: user.user_id.clone(),
                project_id: "*".into(),
                action: "*".into(),
            },
            now,
        )
        .await?;
        let project = match store::project_by_name(&mut tx, &region).await? {
            Some(p) => p,
            None => {
                let p = Project {
                    project_id: ids::hex_id(),
                    domain_id: domain.domain_id.clone(),
                    name: region.clone(),
                    description: "default project".into(),
                    created_at: now,
                };
                store::insert_project(&mut tx, &p).await?;
                p
            }
        };
        let (vpc_id, subnet_id) = self
            .ensure_default_network(&mut tx, &project.project_id, now)
            .await?;
        let master = &self.config().master_key;
        let keys = store::access_keys_of(&mut tx, &user.user_id).await?;
        let access_key = match (&req.access_key, &req.secret_key) {
            (Some(ak), Some(sk)) => {
                match store::access_key_by_id(&mut tx, master, ak).await? {
                    Some(existing)
                        if existing.user_id == user.user_id && existing.secret_key.matches(sk) => {}
                    Some(_) => {
                        return Err(ServiceError::Internal(anyhow::anyhow!(
                            "access key {ak} already exists with another secret or owner"
                        )));
                    }
                    None => {
                        store::insert_access_key(
                            &mut tx,
                            master,
                            &AccessKey {
                                access_key: ak.clone(),
                                user_id: user.user_id.clone(),
                                secret_key: Secret::new(sk.as_str()),
                                description: "bootstrap".into(),
                                active: true,
                                created_at: now,
                            },
                        )
                        .await?;
                    }
                }
                secret_out = Some(sk.clone());
                ak.clone()
            }
            _ => match keys.iter().find(|k| k.active) {
                Some(k) => {
                    let key = store::access_key_by_id(&mut tx, master, &k.access_key)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    secret_out = Some(key.secret_key.expose().to_string());
                    k.access_key.clone()
                }
                None => {
                    let k = AccessKey {
                        access_key: cph_auth::secret::generate_access_key(),
                        user_id: user.user_id.clone(),
                        secret_key: Secret::new(cph_auth::secret::generate_secret_key()),
                        description: "bootstrap".into(),
                        active: true,
                        created_at: now,
                    };
                    store::insert_access_key(&mut tx, master, &k).await?;
                    secret_out = Some(k.secret_key.expose().to_string());
                    k.access_key
                }
            },
        };
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(BootstrapInfo {
            domain_id: domain.domain_id,
            domain_name: domain.name,
            user_id: user.user_id,
            user_name: user.name,
            password,
            access_key,
            secret_key: secret_out,
            project_id: project.project_id,
            project_name: project.name,
            default_vpc_id: vpc_id,
            default_subnet_id: subnet_id,
        })
    }

    /// The active key `ak` (its secret decrypted) and its user, for signature verification.
    /// Read from the store on every call, so a revoked key stops working at once on every
    /// replica. A key whose stored secret does not decrypt is logged and treated as unknown.
    pub async fn access_key(&self, ak: &str) -> Result<Option<(AccessKey, User)>> {
        let cache = &self.inner.auth_cache;
        let version = self.store().data_version();
        if let Some(v) = version
            && let Some(hit) = cache.key(ak, v)
        {
            return Ok(Some(hit));
        }
        let mut c = self.store().read().await?;
        let key = match store::access_key_by_id(&mut c, &self.config().master_key, ak).await {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(None),
            Err(StoreError::Undecryptable(ak)) => {
                tracing::error!(
                    access_key = %ak,
                    "the stored secret key does not decrypt with the master key; refusing the key"
                );
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if !key.active {
            return Ok(None);
        }
        let Some(user) = store::user_by_id(&mut c, &key.user_id).await? else {
            return Ok(None);
        };
        if let Some(v) = version
            && self.store().data_version() == Some(v)
        {
            cache.put_key(ak, v, &key, &user);
        }
        Ok(Some((key, user)))
    }

    /// Start-up: seals the secret keys still stored in clear (earlier versions stored them so)
    /// and checks that the master key opens the sealed ones, in one transaction. Fails when
    /// sealed keys exist and none of them opens: the master key is not the one they were sealed
    /// with. Keys that alone do not open are logged (by access key) and refused at sign-in.
    pub async fn seal_stored_secrets(&self) -> Result<SealReport> {
        let report = store::seal_stored_secrets(self.store(), &self.config().master_key).await?;
        if report.wrong_master_key() {
            return Err(ServiceError::Internal(anyhow::Error::new(WrongMasterKey {
                sealed_keys: report.undecryptable,
            })));
        }
        if report.undecryptable > 0 {
            tracing::error!(
                count = report.undecryptable,
                access_keys = ?report.undecryptable_keys,
                "stored secret keys that do not decrypt with the master key; these access keys are refused"
            );
        }
        if report.sealed > 0 {
            tracing::info!(
                count = report.sealed,
                "secret keys stored in clear were encrypted"
            );
        }
        Ok(report)
    }

    /// Resolves `user` acting in `project_id`: the project must exist in the user's domain
    /// (a project the caller cannot see reads as 403 `APIGW.0302`, as the API gateway answers),
    /// and, when `action` is given, the user must hold it there (403 `CPS.0001`). One query.
    pub async fn caller_for(
        &self,
        user: &User,
        project_id: &str,
        action: Option<&str>,
    ) -> Result<Caller> {
        let cache = &self.inner.auth_cache;
        let version = self.store().data_version();
        let cached = version.and_then(|v| cache.grants(&user.user_id, project_id, v));
        let found = match cached {
            Some(found) => found,
            None => {
                let mut c = self.store().read().await?;
                let found = store::project_with_grants(&mut c, &user.user_id, project_id).await?;
                if let Some(v) = version
                    && self.store().data_version() == Some(v)
                {
                    cache.put_grants(&user.user_id, project_id, v, found.clone());
                }
                found
            }
        };
        match found {
            Some((p, grants)) if p.domain_id == user.domain_id => {
                if let Some(action) = action
                    && !grants.iter().any(|g| action_matches(g, action))
                {
                    return Err(denied(action));
                }
                Ok(Caller {
                    user_id: user.user_id.clone(),
                    user_name: user.name.clone(),
                    domain_id: user.domain_id.clone(),
                    project_id: p.project_id,
                })
            }
            _ => Err(ServiceError::raw(
                403,
                "APIGW.0302",
                "The IAM user is not authorized to access the project.",
            )),
        }
    }

    /// Checks that `caller` holds `action` in its project (403 `CPS.0001` otherwise).
    pub async fn authorize(&self, caller: &Caller, action: &str) -> Result<()> {
        let mut c = self.store().read().await?;
        let grants = store::grants_for(&mut c, &caller.user_id, &caller.project_id).await?;
        if grants.iter().any(|g| action_matches(g, action)) {
            Ok(())
        } else {
            Err(denied(action))
        }
    }

    /// Verifies a bearer token and returns its user.
    pub async fn user_for_token(&self, token: &str) -> Result<(User, String)> {
        let claims =
            cph_auth::token::verify(&self.config().token_key, token, self.inner.clock.now())
                .map_err(|e| {
                    ServiceError::raw(401, "APIGW.0307", format!("The token must be updated: {e}"))
                })?;
        let cache = &self.inner.auth_cache;
        let version = self.store().data_version();
        if let Some(v) = version
            && let Some(user) = cache.user(&claims.user_id, v)
        {
            return Ok((user, claims.project_id));
        }
        let mut c = self.store().read().await?;
        let user = store::user_by_id(&mut c, &claims.user_id)
            .await?
            .ok_or_else(|| ServiceError::raw(401, "APIGW.0307", "The token must be updated."))?;
        if let Some(v) = version
            && self.store().data_version() == Some(v)
        {
            cache.put_user(v, &user);
        }
        Ok((user, claims.project_id))
    }

    /// Password authentication scoped to a project (by id, or by name).
    pub async fn issue_token(
        &self,
        domain_name: &str,
        user_name: &str,
        password: &str,
        project_id: Option<&str>,
        project_name: Option<&str>,
    ) -> Result<IssuedToken> {
        let unauthorized =
            || ServiceError::raw(401, "IAM.0001", "The username or password is wrong.");
        let mut c = self.store().read().await?;
        let domain = store::domain_by_name(&mut c, domain_name)
            .await?
            .ok_or_else(unauthorized)?;
        let user = store::user_by_name(&mut c, &domain.domain_id, user_name)
            .await?
            .ok_or_else(unauthorized)?;
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| cph_auth::secret::verify_password(password, h));
        if !ok {
            return Err(unauthorized());
        }
        let project = match (project_id, project_name) {
            (Some(id), _) => store::project_by_id(&mut c, id).await?,
            (None, Some(name)) => store::project_by_name(&mut c, name).await?,
            (None, None) => None,
        };
        let project = project
            .filter(|p| p.domain_id == domain.domain_id)
            .ok_or_else(|| ServiceError::raw(400, "IAM.0004", "The project scope is invalid."))?;
        let now = self.inner.clock.now();
        let issued_at = now.timestamp();
        let expires_at = issued_at + self.config().token_ttl.as_secs() as i64;
        let claims = cph_auth::token::TokenClaims {
            user_id: user.user_id.clone(),
            domain_id: domain.domain_id.clone(),
            project_id: project.project_id.clone(),
            expires_at,
            issued_at,
        };
        let token = cph_auth::token::issue(&self.config().token_key, &claims);
        Ok(IssuedToken {
            token,
            expires_at,
            issued_at,
            user,
            domain,
            project,
        })
    }

    /// Projects visible to `user` (its domain's), optionally filtered by name.
    pub async fn projects_of(&self, user: &User, name: Option<&str>) -> Result<Vec<Project>> {
        let mut c = self.store().read().await?;
        let all = store::projects(&mut c, Some(&user.domain_id)).await?;
        Ok(all
            .into_iter()
            .filter(|p| name.is_none_or(|n| p.name == n))
            .collect())
    }

    // ---- administration (`cph admin`) ----

    pub async fn admin_create_domain(&self, name: &str) -> Result<Domain> {
        if !crate::validate::is_valid_name(name, 64) {
            return Err(ServiceError::raw(400, "IAM.0011", "invalid domain name"));
        }
        let mut tx = self.store().write().await?;
        if store::domain_by_name(&mut tx, name).await?.is_some() {
            return Err(ServiceError::raw(
                409,
                "IAM.0009",
                format!("domain {name} already exists"),
            ));
        }
        let d = Domain {
            domain_id: ids::hex_id(),
            name: name.into(),
            created_at: self.now_ms(),
        };
        store::insert_domain(&mut tx, &d).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(d)
    }

    pub async fn admin_create_project(&self, domain_name: &str, name: &str) -> Result<Project> {
        if !crate::validate::is_valid_name(name, 64) {
            return Err(ServiceError::raw(400, "IAM.0011", "invalid project name"));
        }
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        let d = store::domain_by_name(&mut tx, domain_name)
            .await?
            .ok_or_else(|| {
                ServiceError::raw(404, "IAM.0010", format!("domain {domain_name} not found"))
            })?;
        if store::project_by_name(&mut tx, name).await?.is_some() {
            return Err(ServiceError::raw(
                409,
                "IAM.0009",
                format!("project {name} already exists"),
            ));
        }
        let p = Project {
            project_id: ids::hex_id(),
            domain_id: d.domain_id,
            name: name.into(),
            description: String::new(),
            created_at: now,
        };
        store::insert_project(&mut tx, &p).await?;
        self.ensure_default_network(&mut tx, &p.project_id, now)
            .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(p)
    }

    pub async fn admin_create_user(
        &self,
        domain_name: &str,
        name: &str,
        password: Option<&str>,
    ) -> Result<User> {
        if !crate::validate::is_valid_name(name, 64) {
            return Err(ServiceError::raw(400, "IAM.0011", "invalid user name"));
        }
        let mut tx = self.store().write().await?;
        let d = store::domain_by_name(&mut tx, domain_name)
            .await?
            .ok_or_else(|| {
                ServiceError::raw(404, "IAM.0010", format!("domain {domain_name} not found"))
            })?;
        if store::user_by_name(&mut tx, &d.domain_id, name)
            .await?
            .is_some()
        {
            return Err(ServiceError::raw(
                409,
                "IAM.0009",
                format!("user {name} already exists"),
            ));
        }
        let u = User {
            user_id: ids::hex_id(),
            domain_id: d.domain_id,
            name: name.into(),
            password_hash: password.map(cph_auth::secret::hash_password),
            created_at: self.now_ms(),
        };
        store::insert_user(&mut tx, &u).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(u)
    }

    async fn admin_user(
        &self,
        c: &mut cph_store::AnyConnection,
        domain_name: &str,
        user: &str,
    ) -> Result<User> {
        let d = store::domain_by_name(c, domain_name)
            .await?
            .ok_or_else(|| {
                ServiceError::raw(404, "IAM.0010", format!("domain {domain_name} not found"))
            })?;
        store::user_by_name(c, &d.domain_id, user)
            .await?
            .ok_or_else(|| ServiceError::raw(404, "IAM.0010", format!("user {user} not found")))
    }

    /// Issues a new AK/SK pair for a user. The secret is shown once.
    pub async fn admin_create_access_key(
        &self,
        domain_name: &str,
        user: &str,
    ) -> Result<AccessKey> {
        let mut tx = self.store().write().await?;
        let u = self.admin_user(&mut tx, domain_name, user).await?;
        let k = AccessKey {
            access_key: cph_auth::secret::generate_access_key(),
            user_id: u.user_id,
            secret_key: Secret::new(cph_auth::secret::generate_secret_key()),
            description: String::new(),
            active: true,
            created_at: self.now_ms(),
        };
        store::insert_access_key(&mut tx, &self.config().master_key, &k).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(k)
    }

    /// A user's access keys, without their secrets.
    pub async fn admin_list_access_keys(
        &self,
        domain_name: &str,
        user: &str,
    ) -> Result<Vec<AccessKeyInfo>> {
        let mut c = self.store().read().await?;
        let u = self.admin_user(&mut c, domain_name, user).await?;
        Ok(store::access_keys_of(&mut c, &u.user_id).await?)
    }

    pub async fn admin_revoke_access_key(&self, ak: &str) -> Result<()> {
        let mut tx = self.store().write().await?;
        if !store::revoke_access_key(&mut tx, ak, self.now_ms()).await? {
            return Err(ServiceError::raw(
                404,
                "IAM.0010",
                format!("active access key {ak} not found"),
            ));
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// Grants `action` (a pattern) to a user on one project (by name) or, with `None`, on all.
    pub async fn admin_grant(
        &self,
        domain_name: &str,
        user: &str,
        project: Option<&str>,
        action: &str,
    ) -> Result<()> {
        let mut tx = self.store().write().await?;
        let u = self.admin_user(&mut tx, domain_name, user).await?;
        let project_id = match project {
            None => "*".to_string(),
            Some(name) => {
                store::project_by_name(&mut tx, name)
                    .await?
                    .filter(|p| p.domain_id == u.domain_id)
                    .ok_or_else(|| {
                        ServiceError::raw(
                            404,
                            "IAM.0010",
                            format!("project {name} not found in the user's domain"),
                        )
                    })?
                    .project_id
            }
        };
        store::insert_grant(
            &mut tx,
            &Grant {
                user_id: u.user_id,
                project_id,
                action: action.to_string(),
            },
            self.now_ms(),
        )
        .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    pub async fn admin_grants(&self, domain_name: &str, user: &str) -> Result<Vec<Grant>> {
        let mut c = self.store().read().await?;
        let u = self.admin_user(&mut c, domain_name, user).await?;
        Ok(store::grants_of(&mut c, &u.user_id).await?)
    }

    pub async fn admin_domains(&self) -> Result<Vec<Domain>> {
        let mut c = self.store().read().await?;
        Ok(store::domains(&mut c).await?)
    }

    pub async fn admin_projects(&self, domain_name: Option<&str>) -> Result<Vec<Project>> {
        let mut c = self.store().read().await?;
        let domain_id = match domain_name {
            Some(n) => Some(
                store::domain_by_name(&mut c, n)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::raw(404, "IAM.0010", format!("domain {n} not found"))
                    })?
                    .domain_id,
            ),
            None => None,
        };
        Ok(store::projects(&mut c, domain_id.as_deref()).await?)
    }

    pub async fn admin_users(&self, domain_name: Option<&str>) -> Result<Vec<User>> {
        let mut c = self.store().read().await?;
        let domain_id = match domain_name {
            Some(n) => Some(
                store::domain_by_name(&mut c, n)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::raw(404, "IAM.0010", format!("domain {n} not found"))
                    })?
                    .domain_id,
            ),
            None => None,
        };
        Ok(store::users(&mut c, domain_id.as_deref()).await?)
    }

    /// Sets how many hosts of `server_model_name` the pool offers.
    pub async fn admin_set_capacity(&self, server_model_name: &str, capacity: i64) -> Result<()> {
        if self.catalog().server_model(server_model_name).is_none() {
            return Err(ServiceError::raw(
                400,
                "CPS.0089",
                format!("unknown server model {server_model_name}"),
            ));
        }
        if capacity < 0 {
            return Err(ServiceError::raw(400, "IAM.0011", "capacity must be >= 0"));
        }
        let mut tx = self.store().write().await?;
        cph_store::servers::set_capacity(&mut tx, server_model_name, capacity, self.now_ms())
            .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// (server model, capacity, hosts in use) for every configured model.
    pub async fn admin_capacities(&self) -> Result<Vec<(String, i64, i64)>> {
        let mut c = self.store().read().await?;
        Ok(cph_store::servers::capacities(&mut c).await?)
    }
}

impl Service {
    /// Sets a user's password (used when the bootstrap password has been lost).
    pub async fn admin_set_password(
        &self,
        domain_name: &str,
        user: &str,
        password: &str,
    ) -> Result<()> {
        let mut tx = self.store().write().await?;
        let u = self.admin_user(&mut tx, domain_name, user).await?;
        store::set_password(
            &mut tx,
            &u.user_id,
            &cph_auth::secret::hash_password(password),
        )
        .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }
}

/// Most entries of each map of the [`AuthCache`]; a full map starts over.
const AUTH_CACHE_ENTRIES: usize = 4096;

/// Access keys, token users and grants read for recent requests, each with the store's data version it was
/// read at (and confirmed unchanged after the read); an entry is served only while that version
/// is still current, so any commit retires every entry (another process's commit once the store
/// notices it, see `Store::data_version`). Unknown access keys are never cached.
#[derive(Default)]
pub(crate) struct AuthCache {
    keys: std::sync::Mutex<std::collections::HashMap<String, (u64, AccessKey, User)>>,
    /// Users of tokens, by user id.
    users: std::sync::Mutex<std::collections::HashMap<String, (u64, User)>>,
    #[allow(clippy::type_complexity)]
    grants: std::sync::Mutex<
        std::collections::HashMap<(String, String), (u64, Option<(Project, Vec<String>)>)>,
    >,
}

impl AuthCache {
    fn user(&self, user_id: &str, version: u64) -> Option<User> {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        map.get(user_id)
            .filter(|(v, _)| *v == version)
            .map(|(_, u)| u.clone())
    }

    fn put_user(&self, version: u64, user: &User) {
        let mut map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= AUTH_CACHE_ENTRIES && !map.contains_key(&user.user_id) {
            map.clear();
        }
        map.insert(user.user_id.clone(), (version, user.clone()));
    }

    fn key(&self, ak: &str, version: u64) -> Option<(AccessKey, User)> {
        let map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        map.get(ak)
            .filter(|(v, _, _)| *v == version)
            .map(|(_, k, u)| (k.clone(), u.clone()))
    }

    fn put_key(&self, ak: &str, version: u64, key: &AccessKey, user: &User) {
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= AUTH_CACHE_ENTRIES && !map.contains_key(ak) {
            map.clear();
        }
        map.insert(ak.to_string(), (version, key.clone(), user.clone()));
    }

    fn grants(
        &self,
        user_id: &str,
        project_id: &str,
        version: u64,
    ) -> Option<Option<(Project, Vec<String>)>> {
        let map = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(user_id.to_string(), project_id.to_string()))
            .filter(|(v, _)| *v == version)
            .map(|(_, g)| g.clone())
    }

    fn put_grants(
        &self,
        user_id: &str,
        project_id: &str,
        version: u64,
        found: Option<(Project, Vec<String>)>,
    ) {
        let mut map = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let k = (user_id.to_string(), project_id.to_string());
        if map.len() >= AUTH_CACHE_ENTRIES && !map.contains_key(&k) {
            map.clear();
        }
        map.insert(k, (version, found));
    }
}

#[cfg(test)]
mod tests {
    use super::action_matches;

    #[test]
    fn patterns() {
        assert!(action_matches("*", "cph:servers:create"));
        assert!(action_matches("cph:*:*", "cph:servers:create"));
        assert!(action_matches("cph:servers:*", "cph:servers:create"));
        assert!(action_matches("cph:servers:create", "cph:servers:create"));
        assert!(!action_matches("cph:servers:list", "cph:servers:create"));
        assert!(!action_matches("cph:phones:*", "cph:servers:create"));
        assert!(!action_matches("cph:*", "cph:servers:create"));
    }
}
