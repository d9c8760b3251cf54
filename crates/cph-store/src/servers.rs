//! Servers, their encode servers, and host-pool accounting.

use crate::rows::{ServerRow, i, s};
use crate::{AnyConnection, Result, StoreError, like_escape};
use sqlx::{AssertSqlSafe, Row};

pub(crate) const COLS: &str = "server_id, project_id, server_name, server_model_name, phone_model_name, image_id, \
    keypair_name, status, vpc_id, subnet_id, server_ip, host_id, order_id, product_id, charging_mode, \
    availability_zone, network_version, enterprise_project_id, band_width_id, phone_count_per_ip, ports, \
    phone_data_volume, share_data_volume, expires_at, auto_renew, created_at, updated_at";

pub async fn insert(c: &mut AnyConnection, s: &ServerRow) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO servers ({COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27)"
    )))
    .bind(&s.server_id)
    .bind(&s.project_id)
    .bind(&s.server_name)
    .bind(&s.server_model_name)
    .bind(&s.phone_model_name)
    .bind(&s.image_id)
    .bind(&s.keypair_name)
    .bind(i64::from(s.status))
    .bind(&s.vpc_id)
    .bind(&s.subnet_id)
    .bind(&s.server_ip)
    .bind(&s.host_id)
    .bind(&s.order_id)
    .bind(&s.product_id)
    .bind(s.charging_mode)
    .bind(&s.availability_zone)
    .bind(&s.network_version)
    .bind(&s.enterprise_project_id)
    .bind(&s.band_width_id)
    .bind(s.phone_count_per_ip)
    .bind(&s.ports)
    .bind(&s.phone_data_volume)
    .bind(&s.share_data_volume)
    .bind(s.expires_at)
    .bind(i64::from(s.auto_renew))
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// One server of a project.
pub async fn get(
    c: &mut AnyConnection,
    project_id: &str,
    server_id: &str,
) -> Result<Option<ServerRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM servers WHERE project_id = $1 AND server_id = $2"
    )))
    .bind(project_id)
    .bind(server_id)
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(ServerRow::from_row).transpose()
}

/// One server by id, whatever its project (internal use: job execution).
pub async fn get_any(c: &mut AnyConnection, server_id: &str) -> Result<Option<ServerRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM servers WHERE server_id = $1"
    )))
    .bind(server_id)
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(ServerRow::from_row).transpose()
}

#[derive(Debug, Default, Clone)]
pub struct ServerFilter {
    pub server_name_like: Option<String>,
    pub server_id: Option<String>,
    pub network_version: Option<String>,
}

/// A page of a project's servers, newest first, and the total that match.
pub async fn list(
    c: &mut AnyConnection,
    project_id: &str,
    f: &ServerFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ServerRow>, i64)> {
    let mut cond = String::from("project_id = $1");
    let mut args: Vec<String> = vec![project_id.to_string()];
    if let Some(n) = &f.server_name_like {
        args.push(format!("%{}%", like_escape(n)));
        cond.push_str(&format!(
            " AND server_name LIKE ${} ESCAPE '\\'",
            args.len()
        ));
    }
    if let Some(id) = &f.server_id {
        args.push(id.clone());
        cond.push_str(&format!(" AND server_id = ${}", args.len()));
    }
    if let Some(v) = &f.network_version {
        args.push(v.clone());
        cond.push_str(&format!(" AND network_version = ${}", args.len()));
    }
    let mut q = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM servers WHERE {cond}"
    )));
    for a in &args {
        q = q.bind(a.clone());
    }
    let total: i64 = q.fetch_one(&mut *c).await?.try_get(0)?;
    let n = args.len();
    let mut q = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM servers WHERE {cond} ORDER BY created_at DESC, server_id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    )));
    for a in &args {
        q = q.bind(a.clone());
    }
    let rows = q.bind(limit).bind(offset).fetch_all(&mut *c).await?;
    let servers = rows
        .iter()
        .map(ServerRow::from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok((servers, total))
}

/// Servers of a project among `ids` (unknown or foreign ids are simply absent).
pub async fn get_many(
    c: &mut AnyConnection,
    project_id: &str,
    ids: &[String],
) -> Result<Vec<ServerRow>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(2, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLS} FROM servers WHERE project_id = $1 AND server_id IN ({ph})"
        )))
        .bind(project_id);
        for id in chunk {
            q = q.bind(id.clone());
        }
        for r in q.fetch_all(&mut *c).await? {
            out.push(ServerRow::from_row(&r)?);
        }
    }
    Ok(out)
}

pub async fn set_status(
    c: &mut AnyConnection,
    server_id: &str,
    status: i32,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE servers SET status = $1, updated_at = $2 WHERE server_id = $3")
        .bind(i64::from(status))
        .bind(now)
        .bind(server_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn rename(
    c: &mut AnyConnection,
    project_id: &str,
    server_id: &str,
    name: &str,
    now: i64,
) -> Result<()> {
    let r = sqlx::query("UPDATE servers SET server_name = $1, updated_at = $2 WHERE project_id = $3 AND server_id = $4")
        .bind(name)
        .bind(now)
        .bind(project_id)
        .bind(server_id)
        .execute(&mut *c)
        .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Updates the mutable descriptive fields of a server after a model/phone change.
pub async fn update_spec(c: &mut AnyConnection, s: &ServerRow) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET server_model_name = $1, phone_model_name = $2, image_id = $3, keypair_name = $4, \
         order_id = $5, product_id = $6, phone_data_volume = $7, share_data_volume = $8, band_width_id = $9, \
         phone_count_per_ip = $10, ports = $11, expires_at = $12, auto_renew = $13, status = $14, updated_at = $15 \
         WHERE server_id = $16",
    )
    .bind(&s.server_model_name)
    .bind(&s.phone_model_name)
    .bind(&s.image_id)
    .bind(&s.keypair_name)
    .bind(&s.order_id)
    .bind(&s.product_id)
    .bind(&s.phone_data_volume)
    .bind(&s.share_data_volume)
    .bind(&s.band_width_id)
    .bind(s.phone_count_per_ip)
    .bind(&s.ports)
    .bind(s.expires_at)
    .bind(i64::from(s.auto_renew))
    .bind(i64::from(s.status))
    .bind(s.updated_at)
    .bind(&s.server_id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Servers whose charging period ended before `now` and that are neither frozen nor set to renew.
pub async fn expired(c: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<ServerRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM servers WHERE expires_at < $1 AND status <> 8 ORDER BY expires_at LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(ServerRow::from_row).collect()
}

/// Host-pool capacity of a server model (0 when unset).
pub async fn capacity(c: &mut AnyConnection, server_model_name: &str) -> Result<Option<i64>> {
    let row = sqlx::query("SELECT capacity FROM host_capacity WHERE server_model_name = $1")
        .bind(server_model_name)
        .fetch_optional(&mut *c)
        .await?;
    row.map(|r| i(&r, "capacity")).transpose()
}

pub async fn set_capacity(
    c: &mut AnyConnection,
    server_model_name: &str,
    capacity: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO host_capacity (server_model_name, capacity, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (server_model_name) DO UPDATE SET capacity = excluded.capacity, updated_at = excluded.updated_at",
    )
    .bind(server_model_name)
    .bind(capacity)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Every configured capacity with the number of hosts in use.
pub async fn capacities(c: &mut AnyConnection) -> Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT h.server_model_name, h.capacity, \
           (SELECT COUNT(*) FROM servers s WHERE s.server_model_name = h.server_model_name) AS used \
         FROM host_capacity h ORDER BY h.server_model_name",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((s(r, "server_model_name")?, i(r, "capacity")?, i(r, "used")?)))
        .collect()
}

/// Hosts of a server model in use (one per server).
pub async fn hosts_in_use(c: &mut AnyConnection, server_model_name: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM servers WHERE server_model_name = $1")
            .bind(server_model_name)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?,
    )
}

/// `$start, $start+1, …` for `n` values.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Locks the capacity row of a server model until the transaction ends (PostgreSQL), so
/// concurrent purchases on several replicas cannot both take the last host.
pub async fn lock_capacity(c: &mut AnyConnection, server_model_name: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(7283453)")
        .execute(&mut *c)
        .await?;
    let _ = server_model_name;
    Ok(())
}

/// Server ids and their projects, in id order after `after` (exclusive), at most `limit`: a
/// walk over every server of every project.
pub async fn ids_after(
    c: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT server_id, project_id FROM servers WHERE server_id > $1 ORDER BY server_id LIMIT $2",
    )
    .bind(after)
    .bind(limit.max(1))
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("server_id")?, r.try_get("project_id")?)))
        .collect()
}
