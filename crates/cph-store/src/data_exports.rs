//! Registered data exports: the objects BatchExportCloudPhoneData wrote, per project, bucket
//! and object path. BatchImportCloudPhoneData restores only from these.

use crate::rows::{i, s};
use crate::{AnyConnection, IN_CHUNK, Result};
use sqlx::AssertSqlSafe;
use std::collections::{BTreeMap, HashSet};

/// One registered export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataExportRow {
    pub project_id: String,
    pub bucket_name: String,
    pub object_path: String,
    /// The phone whose data the object holds.
    pub phone_id: String,
    /// The export job that wrote it.
    pub job_id: String,
    /// When that job succeeded (ms since the epoch).
    pub exported_at: i64,
}

/// Registers an export; a later export to the same project, bucket and path replaces the row.
pub async fn register(c: &mut AnyConnection, row: &DataExportRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO data_exports (project_id, bucket_name, object_path, phone_id, job_id, exported_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (project_id, bucket_name, object_path) DO UPDATE SET
             phone_id = excluded.phone_id, job_id = excluded.job_id, exported_at = excluded.exported_at",
    )
    .bind(&row.project_id)
    .bind(&row.bucket_name)
    .bind(&row.object_path)
    .bind(&row.phone_id)
    .bind(&row.job_id)
    .bind(row.exported_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The registered export of one object of a project.
pub async fn get(
    c: &mut AnyConnection,
    project_id: &str,
    bucket_name: &str,
    object_path: &str,
) -> Result<Option<DataExportRow>> {
    let r = sqlx::query(
        "SELECT project_id, bucket_name, object_path, phone_id, job_id, exported_at FROM data_exports
         WHERE project_id = $1 AND bucket_name = $2 AND object_path = $3",
    )
    .bind(project_id)
    .bind(bucket_name)
    .bind(object_path)
    .fetch_optional(&mut *c)
    .await?;
    r.map(|r| {
        Ok(DataExportRow {
            project_id: s(&r, "project_id")?,
            bucket_name: s(&r, "bucket_name")?,
            object_path: s(&r, "object_path")?,
            phone_id: s(&r, "phone_id")?,
            job_id: s(&r, "job_id")?,
            exported_at: i(&r, "exported_at")?,
        })
    })
    .transpose()
}

/// Which of `objects` (bucket, object path) are registered for the project.
pub async fn registered(
    c: &mut AnyConnection,
    project_id: &str,
    objects: &[(String, String)],
) -> Result<HashSet<(String, String)>> {
    let mut by_bucket: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (b, p) in objects {
        by_bucket.entry(b.as_str()).or_default().push(p.as_str());
    }
    let mut out = HashSet::new();
    for (bucket, mut paths) in by_bucket {
        paths.sort_unstable();
        paths.dedup();
        for chunk in paths.chunks(IN_CHUNK - 2) {
            let marks = (0..chunk.len())
                .map(|k| format!("${}", k + 3))
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "SELECT object_path FROM data_exports
                 WHERE project_id = $1 AND bucket_name = $2 AND object_path IN ({marks})"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql))
                .bind(project_id)
                .bind(bucket);
            for p in chunk {
                q = q.bind(*p);
            }
            for r in q.fetch_all(&mut *c).await? {
                out.insert((bucket.to_string(), s(&r, "object_path")?));
            }
        }
    }
    Ok(out)
}
