//! Embedded schema migrations, applied in order at start-up inside one transaction each.

use crate::{Result, Store};
use sqlx::{AssertSqlSafe, Row};

/// (version, SQL). Append only; never edit a released migration.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_initial.sql")),
    (2, include_str!("../migrations/0002_phone_counts.sql")),
    (3, include_str!("../migrations/0003_access_audit.sql")),
    (4, include_str!("../migrations/0004_connect.sql")),
    (5, include_str!("../migrations/0005_data_exports.sql")),
];

pub(crate) async fn run(store: &Store) -> Result<()> {
    let mut tx = store.write().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for (version, sql) in MIGRATIONS {
        let mut tx = store.write().await?;
        if store.backend() == crate::Backend::Postgres {
            // Several replicas may start at once: one applies, the others wait and skip.
            sqlx::query("SELECT pg_advisory_xact_lock(7283451)")
                .execute(&mut *tx)
                .await?;
        }
        let done: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if done > 0 {
            continue;
        }
        for stmt in split_statements(sql) {
            sqlx::query(AssertSqlSafe(stmt)).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(chrono_free_now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Splits a migration into statements on `;` at line ends, dropping `--` comments.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let line = match line.find("--") {
            Some(i) => &line[..i],
            None => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn chrono_free_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
