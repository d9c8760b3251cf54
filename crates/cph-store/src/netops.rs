//! Queries of the VPC, subnet and key pair operations beyond the records of [`crate::network`]:
//! marker pagination, name look-ups, usage counts, per-VPC write serialisation and a server's
//! key pair.

use crate::network::{Keypair, SUBNET_COLS, Subnet, VPC_COLS, Vpc, keypair, subnet, vpc};
use crate::{AnyConnection, Result};
use sqlx::{AssertSqlSafe, Row};

/// Position after which a marker page starts: `(created_at, id)` of the marker resource.
pub type After<'a> = Option<(i64, &'a str)>;

/// VPCs of a project in creation order, optionally only the one with `id`, only those of an
/// enterprise project, and only those after `after`.
pub async fn vpcs_page(
    c: &mut AnyConnection,
    project_id: &str,
    id: Option<&str>,
    enterprise_project_id: Option<&str>,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<Vpc>> {
    let (after_t, after_id) = after.unwrap_or((i64::MIN, ""));
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VPC_COLS} FROM vpcs WHERE project_id = $1 AND ($2 = '' OR vpc_id = $2) \
         AND ($3 = '' OR enterprise_project_id = $3) \
         AND (created_at > $4 OR (created_at = $4 AND vpc_id > $5)) \
         ORDER BY created_at, vpc_id LIMIT $6"
    )))
    .bind(project_id)
    .bind(id.unwrap_or_default())
    .bind(enterprise_project_id.unwrap_or_default())
    .bind(after_t)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(vpc).collect()
}

/// Whether a VPC of the project already has `name`.
pub async fn vpc_name_taken(c: &mut AnyConnection, project_id: &str, name: &str) -> Result<bool> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM vpcs WHERE project_id = $1 AND name = $2")
        .bind(project_id)
        .bind(name)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    Ok(n > 0)
}

/// Locks a VPC's row until the transaction ends and tells whether it exists. A no-op `UPDATE`
/// is the row lock both backends understand: on PostgreSQL it serialises concurrent subnet
/// changes in one VPC (overlap checks, delete-if-empty); SQLite serialises writes anyway.
pub async fn lock_vpc(c: &mut AnyConnection, project_id: &str, vpc_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE vpcs SET updated_at = updated_at WHERE project_id = $1 AND vpc_id = $2",
    )
    .bind(project_id)
    .bind(vpc_id)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Subnets of a project in creation order, optionally of one VPC, after `after`.
pub async fn subnets_page(
    c: &mut AnyConnection,
    project_id: &str,
    vpc_id: Option<&str>,
    after: After<'_>,
    limit: i64,
) -> Result<Vec<Subnet>> {
    let (after_t, after_id) = after.unwrap_or((i64::MIN, ""));
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SUBNET_COLS} FROM subnets WHERE project_id = $1 AND ($2 = '' OR vpc_id = $2) \
         AND (created_at > $3 OR (created_at = $3 AND subnet_id > $4)) \
         ORDER BY created_at, subnet_id LIMIT $5"
    )))
    .bind(project_id)
    .bind(vpc_id.unwrap_or_default())
    .bind(after_t)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(subnet).collect()
}

/// Every subnet of one VPC.
pub async fn subnets_of_vpc(c: &mut AnyConnection, vpc_id: &str) -> Result<Vec<Subnet>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SUBNET_COLS} FROM subnets WHERE vpc_id = $1 ORDER BY created_at, subnet_id"
    )))
    .bind(vpc_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(subnet).collect()
}

/// Servers placed in a subnet.
pub async fn servers_in_subnet(c: &mut AnyConnection, subnet_id: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM servers WHERE subnet_id = $1")
            .bind(subnet_id)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?,
    )
}

/// Removes every tag of one resource.
pub async fn delete_tags_of(
    c: &mut AnyConnection,
    resource_type: &str,
    resource_id: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM tags WHERE resource_type = $1 AND resource_id = $2")
        .bind(resource_type)
        .bind(resource_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Key pairs of a project in name order, those after `after_name` (exclusive) when given.
pub async fn keypairs_page(
    c: &mut AnyConnection,
    project_id: &str,
    after_name: Option<&str>,
    limit: i64,
) -> Result<Vec<Keypair>> {
    let rows = sqlx::query(
        "SELECT project_id, name, key_type, public_key, fingerprint, user_id, created_at FROM keypairs \
         WHERE project_id = $1 AND ($2 = 0 OR name > $3) ORDER BY name LIMIT $4",
    )
    .bind(project_id)
    .bind(i64::from(after_name.is_some()))
    .bind(after_name.unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(keypair).collect()
}

/// Records the key pair a server's keyed access uses.
pub async fn set_server_keypair(
    c: &mut AnyConnection,
    server_id: &str,
    keypair_name: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE servers SET keypair_name = $1, updated_at = $2 WHERE server_id = $3")
        .bind(keypair_name)
        .bind(now)
        .bind(server_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}
