//! Server lifecycle beyond purchase: server and model changes, charging periods (renewal and
//! freezing), and the job bookkeeping a change needs.

use crate::network::Order;
use crate::rows::{JobRow, ServerRow, i, s};
use crate::servers::placeholders;
use crate::{AnyConnection, Result};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

fn order(r: &AnyRow) -> Result<Order> {
    Ok(Order {
        order_id: s(r, "order_id")?,
        product_id: s(r, "product_id")?,
        project_id: s(r, "project_id")?,
        kind: s(r, "kind")?,
        charging_mode: i(r, "charging_mode")?,
        period_type: i(r, "period_type")?,
        period_num: i(r, "period_num")?,
        auto_pay: i(r, "auto_pay")? != 0,
        auto_renew: i(r, "auto_renew")? != 0,
        detail: s(r, "detail")?,
        created_at: i(r, "created_at")?,
    })
}

const ORDER_COLS: &str = "order_id, product_id, project_id, kind, charging_mode, period_type, period_num, \
    auto_pay, auto_renew, detail, created_at";

/// One order by id.
pub async fn get_order(c: &mut AnyConnection, order_id: &str) -> Result<Option<Order>> {
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ORDER_COLS} FROM orders WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(&mut *c)
    .await?;
    r.as_ref().map(order).transpose()
}

/// Orders among `ids` (unknown ids are absent from the result).
pub async fn get_orders(c: &mut AnyConnection, ids: &[String]) -> Result<Vec<Order>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(1, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ORDER_COLS} FROM orders WHERE order_id IN ({ph})"
        )));
        for id in chunk {
            q = q.bind(id.clone());
        }
        for r in q.fetch_all(&mut *c).await? {
            out.push(order(&r)?);
        }
    }
    Ok(out)
}

/// Unfinished (queued or running) jobs on any of `lock_keys`, in queue order.
pub async fn unfinished_jobs_on(
    c: &mut AnyConnection,
    lock_keys: &[String],
) -> Result<Vec<JobRow>> {
    let mut out = Vec::new();
    for chunk in lock_keys.chunks(crate::IN_CHUNK) {
        let ph = placeholders(1, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM jobs WHERE state <> 'done' AND lock_key IN ({ph}) ORDER BY seq",
            crate::jobs::COLS
        )));
        for k in chunk {
            q = q.bind(k.clone());
        }
        for r in q.fetch_all(&mut *c).await? {
            out.push(JobRow::from_row(&r)?);
        }
    }
    out.sort_by_key(|j| j.seq);
    Ok(out)
}

/// Unfinished (queued or running) jobs of one kind, in queue order.
pub async fn unfinished_jobs_of_kind(c: &mut AnyConnection, kind: &str) -> Result<Vec<JobRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM jobs WHERE state <> 'done' AND kind = $1 ORDER BY seq",
        crate::jobs::COLS
    )))
    .bind(kind)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(JobRow::from_row).collect()
}

/// Ends queued (not yet claimed) jobs as failed with `error_code`/`error_msg`. Jobs already
/// claimed are left alone. Returns how many were ended.
pub async fn fail_queued(
    c: &mut AnyConnection,
    job_ids: &[String],
    error_code: &str,
    error_msg: &str,
    now: i64,
) -> Result<u64> {
    let mut n = 0;
    for chunk in job_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(4, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'done', status = -1, error_code = $1, error_msg = $2, end_time = $3 \
             WHERE state = 'queued' AND job_id IN ({ph})"
        )))
        .bind(error_code)
        .bind(error_msg)
        .bind(now);
        for id in chunk {
            q = q.bind(id.clone());
        }
        n += q.execute(&mut *c).await?.rows_affected();
    }
    Ok(n)
}

/// Locks a server's row until the transaction ends (PostgreSQL), so two changes of one server
/// on different replicas are serialised. SQLite serialises write transactions anyway.
pub async fn lock_server(c: &mut AnyConnection, server_id: &str) -> Result<()> {
    sqlx::query("SELECT server_id FROM servers WHERE server_id = $1 FOR UPDATE")
        .bind(server_id)
        .fetch_optional(&mut *c)
        .await?;
    Ok(())
}

/// Moves a server to another VPC/subnet address (its encode server follows the address).
pub async fn set_server_network(
    c: &mut AnyConnection,
    server_id: &str,
    vpc_id: &str,
    subnet_id: &str,
    server_ip: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET vpc_id = $1, subnet_id = $2, server_ip = $3, updated_at = $4 WHERE server_id = $5",
    )
    .bind(vpc_id)
    .bind(subnet_id)
    .bind(server_ip)
    .bind(now)
    .bind(server_id)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE encode_servers SET ip = $1, updated_at = $2 WHERE server_id = $3")
        .bind(server_ip)
        .bind(now)
        .bind(server_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Sets the enterprise project of a server.
pub async fn set_enterprise_project(
    c: &mut AnyConnection,
    server_id: &str,
    enterprise_project_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE servers SET enterprise_project_id = $1, updated_at = $2 WHERE server_id = $3",
    )
    .bind(enterprise_project_id)
    .bind(now)
    .bind(server_id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Releases EIPs from their server; they stay the project's, free to be bound again.
pub async fn unbind_eips(c: &mut AnyConnection, eip_ids: &[String]) -> Result<()> {
    for chunk in eip_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(1, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE eips SET server_id = '', band_width_id = '' WHERE eip_id IN ({ph})"
        )));
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// Sets size and charge mode of a bandwidth.
pub async fn set_bandwidth(
    c: &mut AnyConnection,
    band_width_id: &str,
    size: i64,
    charge_mode: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE bandwidths SET size = $1, charge_mode = $2, updated_at = $3 WHERE band_width_id = $4",
    )
    .bind(size)
    .bind(charge_mode)
    .bind(now)
    .bind(band_width_id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Sets phone model and image of every phone of a server.
pub async fn set_phones_model(
    c: &mut AnyConnection,
    server_id: &str,
    phone_model_name: &str,
    image_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE phones SET phone_model_name = $1, image_id = $2, updated_at = $3 WHERE server_id = $4",
    )
    .bind(phone_model_name)
    .bind(image_id)
    .bind(now)
    .bind(server_id)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Servers whose charging period ended at or before `now` and that are neither frozen (8) nor
/// being created or changed (1) nor holding an unfinished server job, oldest expiry first.
pub async fn due_for_expiry(c: &mut AnyConnection, now: i64, limit: i64) -> Result<Vec<ServerRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM servers WHERE expires_at <= $1 AND status NOT IN (1, 8) \
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.lock_key = 'server:' || servers.server_id \
             AND j.state <> 'done') \
         ORDER BY expires_at, server_id LIMIT $2",
        crate::servers::COLS
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(ServerRow::from_row).collect()
}

/// Sets the end of a server's charging period.
pub async fn set_expiry(
    c: &mut AnyConnection,
    server_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE servers SET expires_at = $1, updated_at = $2 WHERE server_id = $3")
        .bind(expires_at)
        .bind(now)
        .bind(server_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Freezes servers (status 8) and all their phones (status 6). Returns (servers, phones) changed.
pub async fn freeze(c: &mut AnyConnection, server_ids: &[String], now: i64) -> Result<(u64, u64)> {
    let (mut ns, mut np) = (0, 0);
    for chunk in server_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(2, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE servers SET status = 8, updated_at = $1 WHERE status <> 8 AND server_id IN ({ph})"
        )))
        .bind(now);
        for id in chunk {
            q = q.bind(id.clone());
        }
        ns += q.execute(&mut *c).await?.rows_affected();
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE phones SET status = 6, updated_at = $1 WHERE status <> 6 AND server_id IN ({ph})"
        )))
        .bind(now);
        for id in chunk {
            q = q.bind(id.clone());
        }
        np += q.execute(&mut *c).await?.rows_affected();
    }
    Ok((ns, np))
}
