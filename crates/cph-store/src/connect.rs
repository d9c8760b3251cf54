//! Phone connections: the shared ticket-signing key and the session ids tickets used.

use crate::{AnyConnection, Result};
use sqlx::Row;

/// The (sealed) key stored under `name`; `candidate` is stored (and returned) when there is none
/// yet. Concurrent callers (also on other replicas) all get the first key stored.
pub async fn key_get_or_insert(
    c: &mut AnyConnection,
    name: &str,
    candidate: &str,
    now_ms: i64,
) -> Result<String> {
    sqlx::query(
        "INSERT INTO service_keys (name, sealed_key, created_at_ms) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .bind(now_ms)
    .execute(&mut *c)
    .await?;
    let row = sqlx::query("SELECT sealed_key FROM service_keys WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *c)
        .await?;
    Ok(row.try_get::<String, _>(0)?)
}

/// Records that `session_id` was used; false when it had been used already. Forgets sessions
/// that expired before `now_ms`, so the table holds only live tickets' sessions.
pub async fn claim_session(
    c: &mut AnyConnection,
    session_id: &str,
    expires_at_ms: i64,
    now_ms: i64,
) -> Result<bool> {
    sqlx::query("DELETE FROM connect_sessions WHERE expires_at_ms < $1")
        .bind(now_ms)
        .execute(&mut *c)
        .await?;
    let r = sqlx::query(
        "INSERT INTO connect_sessions (session_id, expires_at_ms) VALUES ($1, $2)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(session_id)
    .bind(expires_at_ms)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}
