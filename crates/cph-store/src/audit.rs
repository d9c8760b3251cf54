//! The access audit trail: SSH logins, tunnels and refusals at servers' gateways.
//!
//! Rows are appended in batches and never updated; [`prune_before`] removes old ones. Pages are
//! ordered by time, newest first, with the event id breaking ties (event ids are time-ordered).

use crate::rows::{i, s};
use crate::{AnyConnection, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Most rows one [`list`] call returns.
pub const MAX_PAGE: i64 = 1000;
/// Rows per insert statement (11 bind parameters each; SQLite binds slowly past ~256).
const ROWS_PER_INSERT: usize = 20;

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Time-ordered unique id.
    pub event_id: String,
    /// When it happened (ms since the epoch).
    pub at_ms: i64,
    /// The project of the server, empty when the server could not be told.
    pub project_id: String,
    pub server_id: String,
    /// The phone a tunnel reached, if any.
    pub phone_id: String,
    /// `ssh_login`, `ssh_tunnel`, `ssh_tunnel_closed`, `ssh_refused`, …
    pub kind: String,
    /// The client's address (`ip:port`).
    pub peer: String,
    /// The SSH user name offered.
    pub user_name: String,
    /// The offered key's fingerprint (`SHA256:…`), empty when none was offered.
    pub key_fingerprint: String,
    pub accepted: bool,
    /// What was asked for and why it was refused, if it was.
    pub detail: String,
}

/// Which rows [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter<'a> {
    pub project_id: Option<&'a str>,
    pub server_id: Option<&'a str>,
    /// Only rows at or after this time.
    pub since_ms: Option<i64>,
    /// Only refused (`Some(false)`) or accepted (`Some(true)`) events.
    pub accepted: Option<bool>,
}

fn row(r: &AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        event_id: s(r, "event_id")?,
        at_ms: i(r, "at_ms")?,
        project_id: s(r, "project_id")?,
        server_id: s(r, "server_id")?,
        phone_id: s(r, "phone_id")?,
        kind: s(r, "kind")?,
        peer: s(r, "peer")?,
        user_name: s(r, "user_name")?,
        key_fingerprint: s(r, "key_fingerprint")?,
        accepted: i(r, "accepted")? != 0,
        detail: s(r, "detail")?,
    })
}

/// Appends events.
pub async fn insert_many(c: &mut AnyConnection, rows: &[AuditRow]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values = (0..chunk.len())
            .map(|k| {
                let b = k * 11;
                format!(
                    "(${},${},${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10,
                    b + 11
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "INSERT INTO access_audit (event_id, at_ms, project_id, server_id, phone_id, kind, peer, user_name, key_fingerprint, accepted, detail) VALUES {values}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.event_id.clone())
                .bind(r.at_ms)
                .bind(r.project_id.clone())
                .bind(r.server_id.clone())
                .bind(r.phone_id.clone())
                .bind(r.kind.clone())
                .bind(r.peer.clone())
                .bind(r.user_name.clone())
                .bind(r.key_fingerprint.clone())
                .bind(i64::from(r.accepted))
                .bind(r.detail.clone());
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

/// The newest events matching `filter`, at most `limit` (capped at [`MAX_PAGE`]).
pub async fn list(
    c: &mut AnyConnection,
    filter: &AuditFilter<'_>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let mut conds = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.project_id.is_some() {
        conds.push(format!("project_id = {}", next()));
    }
    if filter.server_id.is_some() {
        conds.push(format!("server_id = {}", next()));
    }
    if filter.since_ms.is_some() {
        conds.push(format!("at_ms >= {}", next()));
    }
    if filter.accepted.is_some() {
        conds.push(format!("accepted = {}", next()));
    }
    let limit_param = next();
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!(
        "SELECT event_id, at_ms, project_id, server_id, phone_id, kind, peer, user_name, key_fingerprint, accepted, detail FROM access_audit {where_} ORDER BY at_ms DESC, event_id DESC LIMIT {limit_param}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(p) = filter.project_id {
        q = q.bind(p.to_string());
    }
    if let Some(sv) = filter.server_id {
        q = q.bind(sv.to_string());
    }
    if let Some(t) = filter.since_ms {
        q = q.bind(t);
    }
    if let Some(a) = filter.accepted {
        q = q.bind(i64::from(a));
    }
    let rows = q.bind(limit.clamp(1, MAX_PAGE)).fetch_all(&mut *c).await?;
    rows.iter().map(row).collect()
}

/// Removes events older than `at_ms`; returns how many.
pub async fn prune_before(c: &mut AnyConnection, at_ms: i64) -> Result<u64> {
    let r = sqlx::query("DELETE FROM access_audit WHERE at_ms < $1")
        .bind(at_ms)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected())
}

/// How many events are kept.
pub async fn count(c: &mut AnyConnection) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM access_audit")
        .fetch_one(&mut *c)
        .await?;
    Ok(r.try_get::<i64, _>("n")?)
}
