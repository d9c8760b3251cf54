//! Phones. Every read joins the owning server for the fields a phone view shows.

use crate::rows::PhoneRow;
use crate::servers::placeholders;
use crate::{AnyConnection, Result, StoreError, like_escape};
use sqlx::{AssertSqlSafe, Row};

const SELECT: &str = "SELECT p.phone_id, p.project_id, p.server_id, p.phone_name, p.phone_model_name, p.image_id, \
    p.status, p.phone_type, p.imei, p.traffic_type, p.volume_mode, p.phone_ip, p.slot, p.properties, \
    p.custom_properties, p.created_at, p.updated_at, s.availability_zone, s.order_id, s.product_id, s.host_id \
    FROM phones p JOIN servers s ON s.server_id = p.server_id";

/// The columns of `SELECT`, unqualified, in the order `decode_page` reads them.
const AGG_COLS: &str = "phone_id, project_id, server_id, phone_name, phone_model_name, image_id, status, phone_type, \
    imei, traffic_type, volume_mode, phone_ip, slot, properties, custom_properties, created_at, updated_at, \
    availability_zone, order_id, product_id, host_id";

/// Wraps a `SELECT` query so that its rows come back as one JSON text (see `decode_page`).
fn aggregated(c: &AnyConnection, page: &str) -> String {
    if c.backend_name().eq_ignore_ascii_case("postgresql") {
        format!(
            "SELECT COALESCE(json_agg(json_build_array({AGG_COLS}))::text, '[]') FROM ({page}) AS page"
        )
    } else {
        format!("SELECT json_group_array(json_array({AGG_COLS})) FROM ({page}) AS page")
    }
}

/// Decodes a JSON array of phone rows (arrays in `AGG_COLS` order).
fn decode_page(text: &str) -> Result<Vec<PhoneRow>> {
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("phone page: {e}")))?;
    let bad = |what: &str| StoreError::Corrupt(format!("phone page: bad {what}"));
    rows.into_iter()
        .map(|r| {
            if r.len() != 21 {
                return Err(bad("row width"));
            }
            let s = |k: usize| {
                r[k].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("text column"))
            };
            let i = |k: usize| r[k].as_i64().ok_or_else(|| bad("integer column"));
            let i32c =
                |k: usize| i(k).and_then(|v| i32::try_from(v).map_err(|_| bad("integer range")));
            Ok(PhoneRow {
                phone_id: s(0)?,
                project_id: s(1)?,
                server_id: s(2)?,
                phone_name: s(3)?,
                phone_model_name: s(4)?,
                image_id: s(5)?,
                status: i32c(6)?,
                phone_type: i32c(7)?,
                imei: s(8)?,
                traffic_type: s(9)?,
                volume_mode: i32c(10)?,
                phone_ip: s(11)?,
                slot: i(12)?,
                properties: s(13)?,
                custom_properties: s(14)?,
                created_at: i(15)?,
                updated_at: i(16)?,
                availability_zone: s(17)?,
                order_id: s(18)?,
                product_id: s(19)?,
                host_id: s(20)?,
            })
        })
        .collect()
}

/// Inserts phones in multi-row statements.
pub async fn insert_many(c: &mut AnyConnection, phones: &[PhoneRow]) -> Result<()> {
    let mut per_project: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for p in phones {
        *per_project.entry(p.project_id.as_str()).or_default() += 1;
    }
    for (project, n) in per_project {
        bump_count(c, project, n).await?;
    }
    for chunk in phones.chunks(crate::IN_CHUNK / 17) {
        let sql = format!(
            "INSERT INTO phones (phone_id, project_id, server_id, phone_name, phone_model_name, image_id, status, \
             phone_type, imei, traffic_type, volume_mode, phone_ip, slot, properties, custom_properties, created_at, updated_at) VALUES {}",
            crate::values_placeholders(chunk.len(), 17)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in chunk {
            q = q
                .bind(p.phone_id.clone())
                .bind(p.project_id.clone())
                .bind(p.server_id.clone())
                .bind(p.phone_name.clone())
                .bind(p.phone_model_name.clone())
                .bind(p.image_id.clone())
                .bind(i64::from(p.status))
                .bind(i64::from(p.phone_type))
                .bind(p.imei.clone())
                .bind(p.traffic_type.clone())
                .bind(i64::from(p.volume_mode))
                .bind(p.phone_ip.clone())
                .bind(p.slot)
                .bind(p.properties.clone())
                .bind(p.custom_properties.clone())
                .bind(p.created_at)
                .bind(p.updated_at);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

pub async fn get(
    c: &mut AnyConnection,
    project_id: &str,
    phone_id: &str,
) -> Result<Option<PhoneRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE p.project_id = $1 AND p.phone_id = $2"
    )))
    .bind(project_id)
    .bind(phone_id)
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(PhoneRow::from_row).transpose()
}

pub async fn get_any(c: &mut AnyConnection, phone_id: &str) -> Result<Option<PhoneRow>> {
    let row = sqlx::query(AssertSqlSafe(format!("{SELECT} WHERE p.phone_id = $1")))
        .bind(phone_id)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(PhoneRow::from_row).transpose()
}

/// Phones of a project among `ids` (unknown or foreign ids are absent from the result).
pub async fn get_many(
    c: &mut AnyConnection,
    project_id: &str,
    ids: &[String],
) -> Result<Vec<PhoneRow>> {
    // Look up by primary key only and check the project here: with the project in the WHERE
    // clause a planner may prefer the (project_id, …) indexes and scan the whole project.
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(1, chunk.len());
        let sql = aggregated(c, &format!("{SELECT} WHERE p.phone_id IN ({ph})"));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id.clone());
        }
        let text: String = q.fetch_one(&mut *c).await?.try_get(0)?;
        out.extend(
            decode_page(&text)?
                .into_iter()
                .filter(|p| p.project_id == project_id),
        );
    }
    Ok(out)
}

/// All phones of one server, in slot order.
pub async fn of_server(c: &mut AnyConnection, server_id: &str) -> Result<Vec<PhoneRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE p.server_id = $1 ORDER BY p.slot"
    )))
    .bind(server_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(PhoneRow::from_row).collect()
}

#[derive(Debug, Default, Clone)]
pub struct PhoneFilter {
    pub phone_name_like: Option<String>,
    pub server_id: Option<String>,
    pub status: Option<i32>,
    pub phone_type: Option<i32>,
}

/// A page of a project's phones, newest first, and the total that match.
pub async fn list(
    c: &mut AnyConnection,
    project_id: &str,
    f: &PhoneFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<PhoneRow>, i64)> {
    let mut cond = String::from("p.project_id = $1");
    let mut sargs: Vec<String> = vec![project_id.to_string()];
    let mut iargs: Vec<i64> = Vec::new();
    if let Some(n) = &f.phone_name_like {
        sargs.push(format!("%{}%", like_escape(n)));
        cond.push_str(&format!(
            " AND p.phone_name LIKE ${} ESCAPE '\\'",
            sargs.len()
        ));
    }
    if let Some(id) = &f.server_id {
        sargs.push(id.clone());
        cond.push_str(&format!(" AND p.server_id = ${}", sargs.len()));
    }
    let base = sargs.len();
    if let Some(st) = f.status {
        iargs.push(i64::from(st));
        cond.push_str(&format!(" AND p.status = ${}", base + iargs.len()));
    }
    if let Some(t) = f.phone_type {
        iargs.push(i64::from(t));
        cond.push_str(&format!(" AND p.phone_type = ${}", base + iargs.len()));
    }
    let unfiltered = sargs.len() == 1 && iargs.is_empty();
    let total: i64 = if unfiltered {
        count_of_project(c, project_id).await?
    } else {
        let count_sql = format!("SELECT COUNT(*) FROM phones p WHERE {cond}");
        let mut q = sqlx::query(AssertSqlSafe(count_sql));
        for a in &sargs {
            q = q.bind(a.clone());
        }
        for a in &iargs {
            q = q.bind(*a);
        }
        q.fetch_one(&mut *c).await?.try_get(0)?
    };
    let n = sargs.len() + iargs.len();
    // The page comes back as ONE row holding a JSON array of rows: per-row overhead of the
    // driver (a channel hop and value copies per row on SQLite) dominated the cost of a page.
    let page = format!(
        "{SELECT} WHERE {cond} ORDER BY p.created_at DESC, p.server_id, p.slot LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let sql = aggregated(c, &page);
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in &sargs {
        q = q.bind(a.clone());
    }
    for a in &iargs {
        q = q.bind(*a);
    }
    let text: String = q
        .bind(limit)
        .bind(offset)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    let mut phones = decode_page(&text)?;
    // Aggregation need not keep the subquery's order: restore it.
    phones.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.server_id.cmp(&b.server_id))
            .then_with(|| a.slot.cmp(&b.slot))
    });
    Ok((phones, total))
}

pub async fn set_status(
    c: &mut AnyConnection,
    phone_id: &str,
    status: i32,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE phones SET status = $1, updated_at = $2 WHERE phone_id = $3")
        .bind(i64::from(status))
        .bind(now)
        .bind(phone_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Sets the status of every phone of a server.
pub async fn set_status_of_server(
    c: &mut AnyConnection,
    server_id: &str,
    status: i32,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE phones SET status = $1, updated_at = $2 WHERE server_id = $3")
        .bind(i64::from(status))
        .bind(now)
        .bind(server_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn rename(c: &mut AnyConnection, phone_id: &str, name: &str, now: i64) -> Result<()> {
    let r = sqlx::query("UPDATE phones SET phone_name = $1, updated_at = $2 WHERE phone_id = $3")
        .bind(name)
        .bind(now)
        .bind(phone_id)
        .execute(&mut *c)
        .await?;
    if r.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// True when another phone of the same server already has `name`.
pub async fn name_taken(
    c: &mut AnyConnection,
    server_id: &str,
    name: &str,
    except_phone: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) FROM phones WHERE server_id = $1 AND phone_name = $2 AND phone_id <> $3",
    )
    .bind(server_id)
    .bind(name)
    .bind(except_phone)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    Ok(n > 0)
}

pub async fn set_properties(
    c: &mut AnyConnection,
    phone_id: &str,
    properties: &str,
    custom_properties: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE phones SET properties = $1, custom_properties = $2, updated_at = $3 WHERE phone_id = $4")
        .bind(properties)
        .bind(custom_properties)
        .bind(now)
        .bind(phone_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn set_image(
    c: &mut AnyConnection,
    phone_id: &str,
    image_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE phones SET image_id = $1, updated_at = $2 WHERE phone_id = $3")
        .bind(image_id)
        .bind(now)
        .bind(phone_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub async fn set_traffic_type(
    c: &mut AnyConnection,
    phone_id: &str,
    traffic_type: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE phones SET traffic_type = $1, updated_at = $2 WHERE phone_id = $3")
        .bind(traffic_type)
        .bind(now)
        .bind(phone_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Replaces the phones of a server (server change: phones are recreated).
pub async fn delete_of_server(c: &mut AnyConnection, server_id: &str) -> Result<u64> {
    let rows = sqlx::query(
        "SELECT project_id, COUNT(*) AS n FROM phones WHERE server_id = $1 GROUP BY project_id",
    )
    .bind(server_id)
    .fetch_all(&mut *c)
    .await?;
    for r in &rows {
        let project: String = r.try_get("project_id")?;
        let n: i64 = r.try_get("n")?;
        bump_count(c, &project, -n).await?;
    }
    Ok(sqlx::query("DELETE FROM phones WHERE server_id = $1")
        .bind(server_id)
        .execute(&mut *c)
        .await?
        .rows_affected())
}

/// Adds `delta` to a project's phone count.
async fn bump_count(c: &mut AnyConnection, project_id: &str, delta: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_phone_counts (project_id, phones) VALUES ($1, $2) \
         ON CONFLICT (project_id) DO UPDATE SET phones = project_phone_counts.phones + excluded.phones",
    )
    .bind(project_id)
    .bind(delta)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// How many phones a project has (kept by inserts and deletes).
pub async fn count_of_project(c: &mut AnyConnection, project_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT phones FROM project_phone_counts WHERE project_id = $1")
        .bind(project_id)
        .fetch_optional(&mut *c)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<i64, _>(0)?,
        None => 0,
    })
}

/// Phones left in a transitional status (crash recovery looks at these).
pub async fn in_transition(c: &mut AnyConnection, limit: i64) -> Result<Vec<PhoneRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE p.status IN (1, 3, 4, 7) ORDER BY p.phone_id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(PhoneRow::from_row).collect()
}

/// Number of phones in the whole store.
pub async fn count_all(c: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) FROM phones")
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?)
}

/// A page of all phones (every project) after `after_phone_id`, in id order, for reconciliation.
pub async fn page_all(
    c: &mut AnyConnection,
    after_phone_id: &str,
    limit: i64,
) -> Result<Vec<PhoneRow>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{SELECT} WHERE p.phone_id > $1 ORDER BY p.phone_id LIMIT $2"
    )))
    .bind(after_phone_id)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(PhoneRow::from_row).collect()
}

/// Marks phones left in a transitional status with no unfinished job on them (or on their
/// server) as abnormal. Returns how many were marked.
pub async fn settle_orphans(c: &mut AnyConnection, now: i64) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE phones SET status = -7, updated_at = $1 WHERE status IN (1, 3, 4, 7) AND NOT EXISTS ( \
           SELECT 1 FROM jobs j WHERE j.state <> 'done' \
             AND (j.lock_key = 'phone:' || phones.phone_id OR j.lock_key = 'server:' || phones.server_id))",
    )
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected())
}

/// Sets the status of many phones at once.
pub async fn set_status_many(
    c: &mut AnyConnection,
    phone_ids: &[String],
    status: i32,
    now: i64,
) -> Result<()> {
    for chunk in phone_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(3, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE phones SET status = $1, updated_at = $2 WHERE phone_id IN ({ph})"
        )))
        .bind(i64::from(status))
        .bind(now);
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}
