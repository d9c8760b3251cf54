//! Identity: domains, projects, users, access keys and grants.

use crate::rows::{i, os, s};
use crate::secrets::{MasterKey, OpenError, Secret, is_sealed};
use crate::{AnyConnection, Backend, Result, Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub domain_id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub project_id: String,
    pub domain_id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: String,
    pub domain_id: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
}

/// An access key with its secret (decrypted; redacted in `Debug`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKey {
    pub access_key: String,
    pub user_id: String,
    pub secret_key: Secret,
    pub description: String,
    pub active: bool,
    pub created_at: i64,
}

/// An access key without its secret, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeyInfo {
    pub access_key: String,
    pub user_id: String,
    pub description: String,
    pub active: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub user_id: String,
    pub project_id: String,
    pub action: String,
}

pub async fn insert_domain(c: &mut AnyConnection, d: &Domain) -> Result<()> {
    sqlx::query("INSERT INTO domains (domain_id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&d.domain_id)
        .bind(&d.name)
        .bind(d.created_at)
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn domain(r: &sqlx::any::AnyRow) -> Result<Domain> {
    Ok(Domain {
        domain_id: s(r, "domain_id")?,
        name: s(r, "name")?,
        created_at: i(r, "created_at")?,
    })
}

pub async fn domain_by_name(c: &mut AnyConnection, name: &str) -> Result<Option<Domain>> {
    let r = sqlx::query("SELECT domain_id, name, created_at FROM domains WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    r.as_ref().map(domain).transpose()
}

pub async fn domain_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<Domain>> {
    let r = sqlx::query("SELECT domain_id, name, created_at FROM domains WHERE domain_id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    r.as_ref().map(domain).transpose()
}

pub async fn domains(c: &mut AnyConnection) -> Result<Vec<Domain>> {
    let rows = sqlx::query("SELECT domain_id, name, created_at FROM domains ORDER BY name")
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(domain).collect()
}

pub async fn insert_project(c: &mut AnyConnection, p: &Project) -> Result<()> {
    sqlx::query("INSERT INTO projects (project_id, domain_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&p.project_id)
        .bind(&p.domain_id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.created_at)
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn project(r: &sqlx::any::AnyRow) -> Result<Project> {
    Ok(Project {
        project_id: s(r, "project_id")?,
        domain_id: s(r, "domain_id")?,
        name: s(r, "name")?,
        description: s(r, "description")?,
        created_at: i(r, "created_at")?,
    })
}

pub async fn project_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<Project>> {
    let r = sqlx::query("SELECT project_id, domain_id, name, description, created_at FROM projects WHERE project_id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    r.as_ref().map(project).transpose()
}

pub async fn project_by_name(c: &mut AnyConnection, name: &str) -> Result<Option<Project>> {
    let r = sqlx::query(
        "SELECT project_id, domain_id, name, description, created_at FROM projects WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(project).transpose()
}

/// Projects, optionally only those of one domain.
pub async fn projects(c: &mut AnyConnection, domain_id: Option<&str>) -> Result<Vec<Project>> {
    let rows = match domain_id {
        Some(d) => {
            sqlx::query("SELECT project_id, domain_id, name, description, created_at FROM projects WHERE domain_id = $1 ORDER BY name")
                .bind(d)
                .fetch_all(&mut *c)
                .await?
        }
        None => {
            sqlx::query("SELECT project_id, domain_id, name, description, created_at FROM projects ORDER BY name")
                .fetch_all(&mut *c)
                .await?
        }
    };
    rows.iter().map(project).collect()
}

pub async fn insert_user(c: &mut AnyConnection, u: &User) -> Result<()> {
    sqlx::query("INSERT INTO users (user_id, domain_id, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&u.user_id)
        .bind(&u.domain_id)
        .bind(&u.name)
        .bind(u.password_hash.clone())
        .bind(u.created_at)
        .execute(&mut *c)
        .await?;
    Ok(())
}

fn user(r: &sqlx::any::AnyRow) -> Result<User> {
    Ok(User {
        user_id: s(r, "user_id")?,
        domain_id: s(r, "domain_id")?,
        name: s(r, "name")?,
        password_hash: os(r, "password_hash")?,
        created_at: i(r, "created_at")?,
    })
}

pub async fn user_by_id(c: &mut AnyConnection, id: &str) -> Result<Option<User>> {
    let r = sqlx::query(
        "SELECT user_id, domain_id, name, password_hash, created_at FROM users WHERE user_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(user).transpose()
}

pub async fn user_by_name(
    c: &mut AnyConnection,
    domain_id: &str,
    name: &str,
) -> Result<Option<User>> {
    let r = sqlx::query(
        "SELECT user_id, domain_id, name, password_hash, created_at FROM users WHERE domain_id = $1 AND name = $2",
    )
    .bind(domain_id)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(user).transpose()
}

pub async fn users(c: &mut AnyConnection, domain_id: Option<&str>) -> Result<Vec<User>> {
    let rows = match domain_id {
        Some(d) => sqlx::query(
            "SELECT user_id, domain_id, name, password_hash, created_at FROM users WHERE domain_id = $1 ORDER BY name",
        )
        .bind(d)
        .fetch_all(&mut *c)
        .await?,
        None => sqlx::query("SELECT user_id, domain_id, name, password_hash, created_at FROM users ORDER BY name")
            .fetch_all(&mut *c)
            .await?,
    };
    rows.iter().map(user).collect()
}

/// Inserts an access key; its secret is stored sealed under `master`, bound to the key's id.
pub async fn insert_access_key(
    c: &mut AnyConnection,
    master: &MasterKey,
    k: &AccessKey,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO access_keys (access_key, user_id, secret_key, description, active, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.access_key)
    .bind(&k.user_id)
    .bind(master.seal(&k.access_key, k.secret_key.expose()))
    .bind(&k.description)
    .bind(i64::from(k.active))
    .bind(k.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn access_key_info(r: &sqlx::any::AnyRow) -> Result<AccessKeyInfo> {
    Ok(AccessKeyInfo {
        access_key: s(r, "access_key")?,
        user_id: s(r, "user_id")?,
        description: s(r, "description")?,
        active: i(r, "active")? != 0,
        created_at: i(r, "created_at")?,
    })
}

/// The access key `ak` with its secret decrypted. A secret that does not decrypt (another
/// master key, or a value copied from another row) is [`StoreError::Undecryptable`].
pub async fn access_key_by_id(
    c: &mut AnyConnection,
    master: &MasterKey,
    ak: &str,
) -> Result<Option<AccessKey>> {
    let r = sqlx::query(
        "SELECT access_key, user_id, secret_key, description, active, created_at FROM access_keys WHERE access_key = $1",
    )
    .bind(ak)
    .fetch_optional(&mut *c)
    .await?;
    let Some(r) = r else {
        return Ok(None);
    };
    let info = access_key_info(&r)?;
    let stored = Secret::new(s(&r, "secret_key")?);
    let secret_key = if is_sealed(stored.expose()) {
        master
            .open(&info.access_key, stored.expose())
            .map_err(|_| StoreError::Undecryptable(info.access_key.clone()))?
    } else {
        // Only before the start-up pass of `seal_stored_secrets` has run.
        stored
    };
    Ok(Some(AccessKey {
        access_key: info.access_key,
        user_id: info.user_id,
        secret_key,
        description: info.description,
        active: info.active,
        created_at: info.created_at,
    }))
}

/// A user's access keys, without their secrets.
pub async fn access_keys_of(c: &mut AnyConnection, user_id: &str) -> Result<Vec<AccessKeyInfo>> {
    let rows = sqlx::query(
        "SELECT access_key, user_id, description, active, created_at FROM access_keys WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(access_key_info).collect()
}

/// What [`seal_stored_secrets`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Rows that were in clear and are now sealed.
    pub sealed: u64,
    /// Rows already sealed that decrypt with the master key.
    pub verified: u64,
    /// Rows already sealed that do not decrypt with the master key.
    pub undecryptable: u64,
    /// The access keys of (at most 20 of) those rows.
    pub undecryptable_keys: Vec<String>,
}

impl SealReport {
    /// True when sealed rows exist and none of them decrypts: the master key is not the one
    /// they were sealed with.
    pub fn wrong_master_key(&self) -> bool {
        self.undecryptable > 0 && self.verified == 0
    }
}

/// Rows read per statement by [`seal_stored_secrets`].
const SEAL_PAGE: i64 = 500;

/// The start-up pass: seals every secret key still stored in clear and checks that the sealed
/// ones decrypt with `master`, in one transaction (idempotent). On PostgreSQL, replicas starting
/// together take turns (advisory lock), so a replica with another master key sees the rows the
/// first one sealed and reports them undecryptable. When that is the verdict
/// ([`SealReport::wrong_master_key`]) nothing is written.
pub async fn seal_stored_secrets(store: &Store, master: &MasterKey) -> Result<SealReport> {
    let mut tx = store.write().await?;
    let sqlite = store.backend() == Backend::Sqlite;
    if sqlite {
        // Overwrite the clear values in the pages instead of leaving them in free space.
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *tx)
            .await?;
    } else {
        sqlx::query("SELECT pg_advisory_xact_lock(7283452)")
            .execute(&mut *tx)
            .await?;
    }
    let mut report = SealReport::default();
    let mut after = String::new();
    loop {
        let rows = sqlx::query(
            "SELECT access_key, secret_key FROM access_keys WHERE access_key > $1 ORDER BY access_key LIMIT $2",
        )
        .bind(&after)
        .bind(SEAL_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = s(last, "access_key")?;
        for r in &rows {
            let ak = s(r, "access_key")?;
            let stored = Secret::new(s(r, "secret_key")?);
            match master.open(&ak, stored.expose()) {
                Ok(_) => report.verified += 1,
                Err(OpenError::NotSealed) => {
                    let n = sqlx::query(
                        "UPDATE access_keys SET secret_key = $1 WHERE access_key = $2 AND secret_key = $3",
                    )
                    .bind(master.seal(&ak, stored.expose()))
                    .bind(&ak)
                    .bind(stored.expose())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    report.sealed += n;
                }
                Err(OpenError::Malformed | OpenError::Rejected) => {
                    report.undecryptable += 1;
                    if report.undecryptable_keys.len() < 20 {
                        report.undecryptable_keys.push(ak);
                    }
                }
            }
        }
        if (rows.len() as i64) < SEAL_PAGE {
            break;
        }
    }
    if sqlite {
        sqlx::query("PRAGMA secure_delete = OFF")
            .execute(&mut *tx)
            .await?;
    }
    if report.wrong_master_key() {
        // Sealing clear rows with a key that opens none of the others would mix two keys:
        // roll back.
        drop(tx);
        report.sealed = 0;
        return Ok(report);
    }
    tx.commit().await?;
    if sqlite && report.sealed > 0 {
        // Copy the sealed pages into the database file and empty the WAL, which still holds
        // the pages as they were before.
        store.checkpoint_truncate().await?;
    }
    Ok(report)
}

/// Deactivates an access key. Returns false if it did not exist or was already revoked.
pub async fn revoke_access_key(c: &mut AnyConnection, ak: &str, now: i64) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE access_keys SET active = 0, revoked_at = $1 WHERE access_key = $2 AND active = 1",
    )
    .bind(now)
    .bind(ak)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn insert_grant(c: &mut AnyConnection, g: &Grant, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO grants (user_id, project_id, action, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, project_id, action) DO NOTHING",
    )
    .bind(&g.user_id)
    .bind(&g.project_id)
    .bind(&g.action)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn delete_grant(c: &mut AnyConnection, g: &Grant) -> Result<bool> {
    let r =
        sqlx::query("DELETE FROM grants WHERE user_id = $1 AND project_id = $2 AND action = $3")
            .bind(&g.user_id)
            .bind(&g.project_id)
            .bind(&g.action)
            .execute(&mut *c)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// Grants of a user that apply to `project_id` (project-specific and domain-wide `*`).
pub async fn grants_for(
    c: &mut AnyConnection,
    user_id: &str,
    project_id: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT action FROM grants WHERE user_id = $1 AND (project_id = $2 OR project_id = '*')",
    )
    .bind(user_id)
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("action")?))
        .collect()
}

pub async fn grants_of(c: &mut AnyConnection, user_id: &str) -> Result<Vec<Grant>> {
    let rows = sqlx::query("SELECT user_id, project_id, action FROM grants WHERE user_id = $1 ORDER BY project_id, action")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Grant {
                user_id: s(r, "user_id")?,
                project_id: s(r, "project_id")?,
                action: s(r, "action")?,
            })
        })
        .collect()
}

pub async fn set_password(c: &mut AnyConnection, user_id: &str, password_hash: &str) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A project and the grant patterns `user_id` holds on it (project-specific and `*`), in one
/// query.
pub async fn project_with_grants(
    c: &mut AnyConnection,
    user_id: &str,
    project_id: &str,
) -> Result<Option<(Project, Vec<String>)>> {
    let rows = sqlx::query(
        "SELECT p.project_id, p.domain_id, p.name, p.description, p.created_at, g.action \
         FROM projects p LEFT JOIN grants g \
           ON g.user_id = $1 AND (g.project_id = p.project_id OR g.project_id = '*') \
         WHERE p.project_id = $2",
    )
    .bind(user_id)
    .bind(project_id)
    .fetch_all(&mut *c)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let p = project(first)?;
    let grants = rows
        .iter()
        .filter_map(|r| r.try_get::<Option<String>, _>("action").transpose())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Some((p, grants)))
}
