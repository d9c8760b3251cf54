//! Networking and billing records: VPCs, subnets, address allocations, EIPs, bandwidths,
//! key pairs, orders and encode servers.

use crate::rows::{i, s};
use crate::servers::placeholders;
use crate::{AnyConnection, Result};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct Vpc {
    pub vpc_id: String,
    pub project_id: String,
    pub name: String,
    pub cidr: String,
    pub description: String,
    pub enterprise_project_id: String,
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) fn vpc(r: &AnyRow) -> Result<Vpc> {
    Ok(Vpc {
        vpc_id: s(r, "vpc_id")?,
        project_id: s(r, "project_id")?,
        name: s(r, "name")?,
        cidr: s(r, "cidr")?,
        description: s(r, "description")?,
        enterprise_project_id: s(r, "enterprise_project_id")?,
        is_default: i(r, "is_default")? != 0,
        created_at: i(r, "created_at")?,
        updated_at: i(r, "updated_at")?,
    })
}

pub(crate) const VPC_COLS: &str = "vpc_id, project_id, name, cidr, description, enterprise_project_id, is_default, created_at, updated_at";

pub async fn insert_vpc(c: &mut AnyConnection, v: &Vpc) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO vpcs ({VPC_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
    )))
    .bind(&v.vpc_id)
    .bind(&v.project_id)
    .bind(&v.name)
    .bind(&v.cidr)
    .bind(&v.description)
    .bind(&v.enterprise_project_id)
    .bind(i64::from(v.is_default))
    .bind(v.created_at)
    .bind(v.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_vpc(c: &mut AnyConnection, project_id: &str, vpc_id: &str) -> Result<Option<Vpc>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VPC_COLS} FROM vpcs WHERE project_id = $1 AND vpc_id = $2"
    )))
    .bind(project_id)
    .bind(vpc_id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(vpc).transpose()
}

pub async fn list_vpcs(c: &mut AnyConnection, project_id: &str, limit: i64) -> Result<Vec<Vpc>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VPC_COLS} FROM vpcs WHERE project_id = $1 ORDER BY created_at, vpc_id LIMIT $2"
    )))
    .bind(project_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(vpc).collect()
}

pub async fn delete_vpc(c: &mut AnyConnection, project_id: &str, vpc_id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM vpcs WHERE project_id = $1 AND vpc_id = $2")
        .bind(project_id)
        .bind(vpc_id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    pub subnet_id: String,
    pub project_id: String,
    pub vpc_id: String,
    pub name: String,
    pub cidr: String,
    pub gateway_ip: String,
    pub description: String,
    pub availability_zone: String,
    pub dhcp_enable: bool,
    pub primary_dns: String,
    pub secondary_dns: String,
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const SUBNET_COLS: &str = "subnet_id, project_id, vpc_id, name, cidr, gateway_ip, description, availability_zone, \
    dhcp_enable, primary_dns, secondary_dns, is_default, created_at, updated_at";

pub(crate) fn subnet(r: &AnyRow) -> Result<Subnet> {
    Ok(Subnet {
        subnet_id: s(r, "subnet_id")?,
        project_id: s(r, "project_id")?,
        vpc_id: s(r, "vpc_id")?,
        name: s(r, "name")?,
        cidr: s(r, "cidr")?,
        gateway_ip: s(r, "gateway_ip")?,
        description: s(r, "description")?,
        availability_zone: s(r, "availability_zone")?,
        dhcp_enable: i(r, "dhcp_enable")? != 0,
        primary_dns: s(r, "primary_dns")?,
        secondary_dns: s(r, "secondary_dns")?,
        is_default: i(r, "is_default")? != 0,
        created_at: i(r, "created_at")?,
        updated_at: i(r, "updated_at")?,
    })
}

pub async fn insert_subnet(c: &mut AnyConnection, v: &Subnet) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO subnets ({SUBNET_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)"
    )))
    .bind(&v.subnet_id)
    .bind(&v.project_id)
    .bind(&v.vpc_id)
    .bind(&v.name)
    .bind(&v.cidr)
    .bind(&v.gateway_ip)
    .bind(&v.description)
    .bind(&v.availability_zone)
    .bind(i64::from(v.dhcp_enable))
    .bind(&v.primary_dns)
    .bind(&v.secondary_dns)
    .bind(i64::from(v.is_default))
    .bind(v.created_at)
    .bind(v.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_subnet(
    c: &mut AnyConnection,
    project_id: &str,
    subnet_id: &str,
) -> Result<Option<Subnet>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SUBNET_COLS} FROM subnets WHERE project_id = $1 AND subnet_id = $2"
    )))
    .bind(project_id)
    .bind(subnet_id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(subnet).transpose()
}

pub async fn list_subnets(
    c: &mut AnyConnection,
    project_id: &str,
    vpc_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Subnet>> {
    let rows = match vpc_id {
        Some(v) => {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {SUBNET_COLS} FROM subnets WHERE project_id = $1 AND vpc_id = $2 ORDER BY created_at, subnet_id LIMIT $3"
            )))
            .bind(project_id)
            .bind(v)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        }
        None => {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {SUBNET_COLS} FROM subnets WHERE project_id = $1 ORDER BY created_at, subnet_id LIMIT $2"
            )))
            .bind(project_id)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        }
    };
    rows.iter().map(subnet).collect()
}

pub async fn delete_subnet(
    c: &mut AnyConnection,
    project_id: &str,
    subnet_id: &str,
) -> Result<bool> {
    let r = sqlx::query("DELETE FROM subnets WHERE project_id = $1 AND subnet_id = $2")
        .bind(project_id)
        .bind(subnet_id)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn count_subnets_of_vpc(c: &mut AnyConnection, vpc_id: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM subnets WHERE vpc_id = $1")
            .bind(vpc_id)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?,
    )
}

/// Addresses already taken in a subnet (or the public pool, `subnet_id = "public"`).
pub async fn allocated_ips(c: &mut AnyConnection, subnet_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT ip FROM ip_allocations WHERE subnet_id = $1")
        .bind(subnet_id)
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(|r| s(r, "ip")).collect()
}

pub async fn count_allocations(c: &mut AnyConnection, subnet_id: &str) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
            .bind(subnet_id)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?,
    )
}

/// Records allocations `(ip, owner_type, owner_id)` in a subnet.
pub async fn allocate_ips(
    c: &mut AnyConnection,
    subnet_id: &str,
    project_id: &str,
    ips: &[(String, &str, String)],
    now: i64,
) -> Result<()> {
    for chunk in ips.chunks(crate::IN_CHUNK / 6) {
        let sql = format!(
            "INSERT INTO ip_allocations (subnet_id, ip, owner_type, owner_id, project_id, created_at) VALUES {}",
            crate::values_placeholders(chunk.len(), 6)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (ip, ty, owner) in chunk {
            q = q
                .bind(subnet_id.to_string())
                .bind(ip.clone())
                .bind(ty.to_string())
                .bind(owner.clone())
                .bind(project_id.to_string())
                .bind(now);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// Frees every address held by the given owners.
pub async fn release_ips(c: &mut AnyConnection, owner_ids: &[String]) -> Result<()> {
    for chunk in owner_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(1, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM ip_allocations WHERE owner_id IN ({ph})"
        )));
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keypair {
    pub project_id: String,
    pub name: String,
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub user_id: String,
    pub created_at: i64,
}

pub(crate) fn keypair(r: &AnyRow) -> Result<Keypair> {
    Ok(Keypair {
        project_id: s(r, "project_id")?,
        name: s(r, "name")?,
        key_type: s(r, "key_type")?,
        public_key: s(r, "public_key")?,
        fingerprint: s(r, "fingerprint")?,
        user_id: s(r, "user_id")?,
        created_at: i(r, "created_at")?,
    })
}

pub async fn insert_keypair(c: &mut AnyConnection, k: &Keypair) -> Result<()> {
    sqlx::query(
        "INSERT INTO keypairs (project_id, name, key_type, public_key, fingerprint, user_id, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)",
    )
    .bind(&k.project_id)
    .bind(&k.name)
    .bind(&k.key_type)
    .bind(&k.public_key)
    .bind(&k.fingerprint)
    .bind(&k.user_id)
    .bind(k.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_keypair(
    c: &mut AnyConnection,
    project_id: &str,
    name: &str,
) -> Result<Option<Keypair>> {
    let r = sqlx::query(
        "SELECT project_id, name, key_type, public_key, fingerprint, user_id, created_at FROM keypairs WHERE project_id = $1 AND name = $2",
    )
    .bind(project_id)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(keypair).transpose()
}

pub async fn list_keypairs(
    c: &mut AnyConnection,
    project_id: &str,
    limit: i64,
) -> Result<Vec<Keypair>> {
    let rows = sqlx::query(
        "SELECT project_id, name, key_type, public_key, fingerprint, user_id, created_at FROM keypairs WHERE project_id = $1 ORDER BY name LIMIT $2",
    )
    .bind(project_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(keypair).collect()
}

pub async fn delete_keypair(c: &mut AnyConnection, project_id: &str, name: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM keypairs WHERE project_id = $1 AND name = $2")
        .bind(project_id)
        .bind(name)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub order_id: String,
    pub product_id: String,
    pub project_id: String,
    pub kind: String,
    pub charging_mode: i64,
    pub period_type: i64,
    pub period_num: i64,
    pub auto_pay: bool,
    pub auto_renew: bool,
    pub detail: String,
    pub created_at: i64,
}

pub async fn insert_order(c: &mut AnyConnection, o: &Order) -> Result<()> {
    sqlx::query(
        "INSERT INTO orders (order_id, product_id, project_id, kind, charging_mode, period_type, period_num, auto_pay, \
         auto_renew, detail, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
    )
    .bind(&o.order_id)
    .bind(&o.product_id)
    .bind(&o.project_id)
    .bind(&o.kind)
    .bind(o.charging_mode)
    .bind(o.period_type)
    .bind(o.period_num)
    .bind(i64::from(o.auto_pay))
    .bind(i64::from(o.auto_renew))
    .bind(&o.detail)
    .bind(o.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bandwidth {
    pub band_width_id: String,
    pub project_id: String,
    pub name: String,
    pub size: i64,
    pub charge_mode: i64,
    pub share_type: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

fn bandwidth(r: &AnyRow) -> Result<Bandwidth> {
    Ok(Bandwidth {
        band_width_id: s(r, "band_width_id")?,
        project_id: s(r, "project_id")?,
        name: s(r, "name")?,
        size: i(r, "size")?,
        charge_mode: i(r, "charge_mode")?,
        share_type: i(r, "share_type")?,
        created_at: i(r, "created_at")?,
        updated_at: i(r, "updated_at")?,
    })
}

const BW_COLS: &str =
    "band_width_id, project_id, name, size, charge_mode, share_type, created_at, updated_at";

pub async fn insert_bandwidth(c: &mut AnyConnection, b: &Bandwidth) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO bandwidths ({BW_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
    )))
    .bind(&b.band_width_id)
    .bind(&b.project_id)
    .bind(&b.name)
    .bind(b.size)
    .bind(b.charge_mode)
    .bind(b.share_type)
    .bind(b.created_at)
    .bind(b.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_bandwidth(
    c: &mut AnyConnection,
    project_id: &str,
    id: &str,
) -> Result<Option<Bandwidth>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BW_COLS} FROM bandwidths WHERE project_id = $1 AND band_width_id = $2"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(bandwidth).transpose()
}

pub async fn list_bandwidths(
    c: &mut AnyConnection,
    project_id: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<Bandwidth>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BW_COLS} FROM bandwidths WHERE project_id = $1 ORDER BY created_at DESC, band_width_id LIMIT $2 OFFSET $3"
    )))
    .bind(project_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(bandwidth).collect()
}

pub async fn set_bandwidth_size(
    c: &mut AnyConnection,
    id: &str,
    size: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE bandwidths SET size = $1, updated_at = $2 WHERE band_width_id = $3")
        .bind(size)
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eip {
    pub eip_id: String,
    pub project_id: String,
    pub public_ip: String,
    pub eip_type: String,
    pub server_id: String,
    pub band_width_id: String,
    pub created_at: i64,
}

fn eip(r: &AnyRow) -> Result<Eip> {
    Ok(Eip {
        eip_id: s(r, "eip_id")?,
        project_id: s(r, "project_id")?,
        public_ip: s(r, "public_ip")?,
        eip_type: s(r, "eip_type")?,
        server_id: s(r, "server_id")?,
        band_width_id: s(r, "band_width_id")?,
        created_at: i(r, "created_at")?,
    })
}

pub async fn insert_eip(c: &mut AnyConnection, e: &Eip) -> Result<()> {
    sqlx::query(
        "INSERT INTO eips (eip_id, project_id, public_ip, eip_type, server_id, band_width_id, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)",
    )
    .bind(&e.eip_id)
    .bind(&e.project_id)
    .bind(&e.public_ip)
    .bind(&e.eip_type)
    .bind(&e.server_id)
    .bind(&e.band_width_id)
    .bind(e.created_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn get_eip(c: &mut AnyConnection, project_id: &str, eip_id: &str) -> Result<Option<Eip>> {
    let r = sqlx::query(
        "SELECT eip_id, project_id, public_ip, eip_type, server_id, band_width_id, created_at FROM eips WHERE project_id = $1 AND eip_id = $2",
    )
    .bind(project_id)
    .bind(eip_id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(eip).transpose()
}

pub async fn eips_of_server(c: &mut AnyConnection, server_id: &str) -> Result<Vec<Eip>> {
    let rows = sqlx::query(
        "SELECT eip_id, project_id, public_ip, eip_type, server_id, band_width_id, created_at FROM eips WHERE server_id = $1 ORDER BY public_ip",
    )
    .bind(server_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(eip).collect()
}

pub async fn all_public_ips(c: &mut AnyConnection) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT public_ip FROM eips")
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(|r| s(r, "public_ip")).collect()
}

pub async fn bind_eip(
    c: &mut AnyConnection,
    eip_id: &str,
    server_id: &str,
    band_width_id: &str,
) -> Result<()> {
    sqlx::query("UPDATE eips SET server_id = $1, band_width_id = $2 WHERE eip_id = $3")
        .bind(server_id)
        .bind(band_width_id)
        .bind(eip_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct EncodeServer {
    pub encode_server_id: String,
    pub project_id: String,
    pub server_id: String,
    pub name: String,
    pub ip: String,
    pub encode_type: i64,
    pub status: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Joined from the server.
    pub keypair_name: String,
}

const ES_SELECT: &str = "SELECT e.encode_server_id, e.project_id, e.server_id, e.name, e.ip, e.encode_type, e.status, \
    e.created_at, e.updated_at, s.keypair_name FROM encode_servers e JOIN servers s ON s.server_id = e.server_id";

fn encode_server(r: &AnyRow) -> Result<EncodeServer> {
    Ok(EncodeServer {
        encode_server_id: s(r, "encode_server_id")?,
        project_id: s(r, "project_id")?,
        server_id: s(r, "server_id")?,
        name: s(r, "name")?,
        ip: s(r, "ip")?,
        encode_type: i(r, "encode_type")?,
        status: i(r, "status")?,
        created_at: i(r, "created_at")?,
        updated_at: i(r, "updated_at")?,
        keypair_name: s(r, "keypair_name")?,
    })
}

pub async fn insert_encode_server(c: &mut AnyConnection, e: &EncodeServer) -> Result<()> {
    sqlx::query(
        "INSERT INTO encode_servers (encode_server_id, project_id, server_id, name, ip, encode_type, status, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
    )
    .bind(&e.encode_server_id)
    .bind(&e.project_id)
    .bind(&e.server_id)
    .bind(&e.name)
    .bind(&e.ip)
    .bind(e.encode_type)
    .bind(e.status)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct EncodeServerFilter {
    pub encode_type: Option<i64>,
    pub status: Option<i64>,
    pub server_id: Option<String>,
}

pub async fn list_encode_servers(
    c: &mut AnyConnection,
    project_id: &str,
    f: &EncodeServerFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<EncodeServer>, i64)> {
    // Bind order: project, type, status, server, limit, offset; absent filters match all.
    let cond = "e.project_id = $1 AND ($2 < 0 OR e.encode_type = $2) AND ($3 < -100 OR e.status = $3) AND ($4 = '' OR e.server_id = $4)";
    let total: i64 = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM encode_servers e WHERE {cond}"
    )))
    .bind(project_id)
    .bind(f.encode_type.unwrap_or(-1))
    .bind(f.status.unwrap_or(-1000))
    .bind(f.server_id.clone().unwrap_or_default())
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{ES_SELECT} WHERE {cond} ORDER BY e.created_at DESC, e.encode_server_id LIMIT $5 OFFSET $6"
    )))
    .bind(project_id)
    .bind(f.encode_type.unwrap_or(-1))
    .bind(f.status.unwrap_or(-1000))
    .bind(f.server_id.clone().unwrap_or_default())
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *c)
    .await?;
    Ok((
        rows.iter().map(encode_server).collect::<Result<Vec<_>>>()?,
        total,
    ))
}

pub async fn get_encode_server(
    c: &mut AnyConnection,
    project_id: &str,
    id: &str,
) -> Result<Option<EncodeServer>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "{ES_SELECT} WHERE e.project_id = $1 AND e.encode_server_id = $2"
    )))
    .bind(project_id)
    .bind(id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(encode_server).transpose()
}

pub async fn encode_servers_of_server(
    c: &mut AnyConnection,
    server_id: &str,
) -> Result<Vec<EncodeServer>> {
    let rows = sqlx::query(AssertSqlSafe(format!("{ES_SELECT} WHERE e.server_id = $1")))
        .bind(server_id)
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(encode_server).collect()
}

pub async fn set_encode_server_status(
    c: &mut AnyConnection,
    id: &str,
    status: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE encode_servers SET status = $1, updated_at = $2 WHERE encode_server_id = $3",
    )
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await?;
    Ok(())
}
