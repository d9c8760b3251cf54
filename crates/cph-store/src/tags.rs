//! Resource tags (one value per key per resource).

use crate::rows::s;
use crate::{AnyConnection, Result};
use sqlx::{AssertSqlSafe, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub resource_id: String,
    pub key: String,
    pub value: String,
}

/// Tags of one resource, sorted by key.
pub async fn of_resource(
    c: &mut AnyConnection,
    resource_type: &str,
    resource_id: &str,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT tag_key, tag_value FROM tags WHERE resource_type = $1 AND resource_id = $2 ORDER BY tag_key",
    )
    .bind(resource_type)
    .bind(resource_id)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((s(r, "tag_key")?, s(r, "tag_value")?)))
        .collect()
}

/// Every tag of a project's resources of one type.
pub async fn of_project(
    c: &mut AnyConnection,
    project_id: &str,
    resource_type: &str,
) -> Result<Vec<TagRow>> {
    let rows = sqlx::query(
        "SELECT resource_id, tag_key, tag_value FROM tags WHERE project_id = $1 AND resource_type = $2 ORDER BY tag_key, tag_value, resource_id",
    )
    .bind(project_id)
    .bind(resource_type)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TagRow {
                resource_id: s(r, "resource_id")?,
                key: s(r, "tag_key")?,
                value: s(r, "tag_value")?,
            })
        })
        .collect()
}

/// Sets (inserts or overwrites) one tag.
pub async fn upsert(
    c: &mut AnyConnection,
    project_id: &str,
    resource_type: &str,
    resource_id: &str,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tags (project_id, resource_type, resource_id, tag_key, tag_value) VALUES ($1,$2,$3,$4,$5) \
         ON CONFLICT (resource_type, resource_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
    )
    .bind(project_id)
    .bind(resource_type)
    .bind(resource_id)
    .bind(key)
    .bind(value)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Deletes one tag; with `value` set, only if the stored value matches.
pub async fn delete(
    c: &mut AnyConnection,
    resource_type: &str,
    resource_id: &str,
    key: &str,
    value: Option<&str>,
) -> Result<bool> {
    let r = match value {
        Some(v) => sqlx::query("DELETE FROM tags WHERE resource_type = $1 AND resource_id = $2 AND tag_key = $3 AND tag_value = $4")
            .bind(resource_type)
            .bind(resource_id)
            .bind(key)
            .bind(v)
            .execute(&mut *c)
            .await?,
        None => sqlx::query("DELETE FROM tags WHERE resource_type = $1 AND resource_id = $2 AND tag_key = $3")
            .bind(resource_type)
            .bind(resource_id)
            .bind(key)
            .execute(&mut *c)
            .await?,
    };
    Ok(r.rows_affected() > 0)
}

pub async fn count_of_resource(
    c: &mut AnyConnection,
    resource_type: &str,
    resource_id: &str,
) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM tags WHERE resource_type = $1 AND resource_id = $2")
            .bind(resource_type)
            .bind(resource_id)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?,
    )
}

/// Locks the row of a project's server until the transaction ends and tells whether the server
/// exists in that project. A no-op `UPDATE` is the one row lock both backends understand: on
/// PostgreSQL it serialises concurrent tag writes on one server (so the per-resource tag limit
/// holds across replicas); SQLite write transactions are serialised anyway.
pub async fn lock_server(c: &mut AnyConnection, project_id: &str, server_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE servers SET updated_at = updated_at WHERE project_id = $1 AND server_id = $2",
    )
    .bind(project_id)
    .bind(server_id)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Whether a project holds the server (a server of another project reads as absent).
pub async fn server_exists(
    c: &mut AnyConnection,
    project_id: &str,
    server_id: &str,
) -> Result<bool> {
    let n: i64 =
        sqlx::query("SELECT COUNT(*) FROM servers WHERE project_id = $1 AND server_id = $2")
            .bind(project_id)
            .bind(server_id)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
    Ok(n > 0)
}

/// The distinct `(key, value)` pairs on a project's servers, sorted by key then value. Tags of
/// resources that are no longer servers of the project are left out.
pub async fn pairs_of_project_servers(
    c: &mut AnyConnection,
    project_id: &str,
    resource_type: &str,
) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT DISTINCT t.tag_key, t.tag_value FROM tags t \
         JOIN servers s ON s.server_id = t.resource_id AND s.project_id = t.project_id \
         WHERE t.project_id = $1 AND t.resource_type = $2 ORDER BY t.tag_key, t.tag_value",
    )
    .bind(project_id)
    .bind(resource_type)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| Ok((s(r, "tag_key")?, s(r, "tag_value")?)))
        .collect()
}

/// Tags of several resources of one type, sorted by resource then key.
pub async fn of_resources(
    c: &mut AnyConnection,
    resource_type: &str,
    resource_ids: &[String],
) -> Result<Vec<TagRow>> {
    let mut out = Vec::new();
    for chunk in resource_ids.chunks(crate::IN_CHUNK) {
        let ph = crate::servers::placeholders(2, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT resource_id, tag_key, tag_value FROM tags WHERE resource_type = $1 \
             AND resource_id IN ({ph}) ORDER BY resource_id, tag_key"
        )))
        .bind(resource_type);
        for id in chunk {
            q = q.bind(id.clone());
        }
        for r in q.fetch_all(&mut *c).await? {
            out.push(TagRow {
                resource_id: s(&r, "resource_id")?,
                key: s(&r, "tag_key")?,
                value: s(&r, "tag_value")?,
            });
        }
    }
    Ok(out)
}

/// Conditions of [`find_servers`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceFilter {
    /// Exact server name.
    pub resource_name: Option<String>,
    /// Only servers without any tag (the tag conditions are then not applied).
    pub without_any_tag: bool,
    /// Each entry: the server has the key, with one of the values (any value when empty).
    /// Entries are AND-ed.
    pub tags: Vec<(String, Vec<String>)>,
}

/// A project's servers (id, name) that match `f`, newest first, and how many match in all.
/// With `page` = `None` only the total is computed.
pub async fn find_servers(
    c: &mut AnyConnection,
    project_id: &str,
    resource_type: &str,
    f: &InstanceFilter,
    page: Option<(i64, i64)>,
) -> Result<(Vec<(String, String)>, i64)> {
    let mut args: Vec<String> = vec![project_id.to_string()];
    let mut cond = String::from("s.project_id = $1");
    if let Some(name) = &f.resource_name {
        args.push(name.clone());
        cond.push_str(&format!(" AND s.server_name = ${}", args.len()));
    }
    if f.without_any_tag {
        args.push(resource_type.to_string());
        cond.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.resource_type = ${} AND t.resource_id = s.server_id)",
            args.len()
        ));
    } else if !f.tags.is_empty() {
        args.push(resource_type.to_string());
        let rt = args.len();
        for (key, values) in &f.tags {
            args.push(key.clone());
            let mut sub = format!(
                " AND EXISTS (SELECT 1 FROM tags t WHERE t.resource_type = ${rt} AND t.resource_id = s.server_id AND t.tag_key = ${}",
                args.len()
            );
            if !values.is_empty() {
                let ph = crate::servers::placeholders(args.len() + 1, values.len());
                args.extend(values.iter().cloned());
                sub.push_str(&format!(" AND t.tag_value IN ({ph})"));
            }
            sub.push(')');
            cond.push_str(&sub);
        }
    }
    let mut q = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM servers s WHERE {cond}"
    )));
    for a in &args {
        q = q.bind(a.clone());
    }
    let total: i64 = q.fetch_one(&mut *c).await?.try_get(0)?;
    let Some((offset, limit)) = page else {
        return Ok((Vec::new(), total));
    };
    let n = args.len();
    let mut q = sqlx::query(AssertSqlSafe(format!(
        "SELECT s.server_id, s.server_name FROM servers s WHERE {cond} \
         ORDER BY s.created_at DESC, s.server_id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    )));
    for a in &args {
        q = q.bind(a.clone());
    }
    let rows = q.bind(limit).bind(offset).fetch_all(&mut *c).await?;
    let out = rows
        .iter()
        .map(|r| Ok((s(r, "server_id")?, s(r, "server_name")?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((out, total))
}
