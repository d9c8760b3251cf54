//! Resource tags (one value per key per resource).

use crate::rows::s;
use crate::{AnyConnection, Result};
use sqlx::Row;

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
