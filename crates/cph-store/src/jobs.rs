//! The job table: API-visible job records and the durable work queue in one.
//!
//! Lifecycle: `queued` → `running` (leased to one worker until `lease_until`) → `done`.
//! Claiming never hands out two running jobs with the same `lock_key` (one target, one job at a
//! time) and takes jobs of one key in `seq` order. A lease that expires (its worker died) puts the
//! job back in the queue; after `max_attempts` claims it fails instead.

use crate::rows::JobRow;
use crate::servers::placeholders;
use crate::{AnyConnection, Backend, Result};
use sqlx::{AssertSqlSafe, Row};

pub(crate) const COLS: &str = "job_id, project_id, request_id, kind, phone_id, server_id, encode_server_id, node_id, lock_key, \
    payload, state, status, lease_owner, lease_until, attempts, error_code, error_msg, execute_msg, seq, created_at, \
    begin_time, end_time";

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job_id: String,
    pub project_id: String,
    pub request_id: String,
    pub kind: String,
    pub phone_id: Option<String>,
    pub server_id: Option<String>,
    pub encode_server_id: Option<String>,
    pub lock_key: String,
    pub payload: String,
}

/// Enqueues jobs (status 1, state `queued`) in one go; `seq` follows the slice order.
pub async fn insert(c: &mut AnyConnection, jobs: &[NewJob], now: i64) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let n = jobs.len() as i64;
    let last: i64 = sqlx::query(
        "UPDATE counters SET value = value + $1 WHERE name = 'job_seq' RETURNING value",
    )
    .bind(n)
    .fetch_one(&mut *c)
    .await?
    .try_get(0)?;
    let first = last - n + 1;
    let mut k = 0i64;
    for chunk in jobs.chunks(crate::IN_CHUNK / 15) {
        let sql = format!(
            "INSERT INTO jobs (job_id, project_id, request_id, kind, phone_id, server_id, encode_server_id, lock_key, \
             payload, state, status, attempts, seq, created_at, begin_time) VALUES {}",
            crate::values_placeholders(chunk.len(), 15)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for j in chunk {
            q = q
                .bind(j.job_id.clone())
                .bind(j.project_id.clone())
                .bind(j.request_id.clone())
                .bind(j.kind.clone())
                .bind(j.phone_id.clone())
                .bind(j.server_id.clone())
                .bind(j.encode_server_id.clone())
                .bind(j.lock_key.clone())
                .bind(j.payload.clone())
                .bind("queued")
                .bind(1i64)
                .bind(0i64)
                .bind(first + k)
                .bind(now)
                .bind(now);
            k += 1;
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}

pub async fn get(c: &mut AnyConnection, project_id: &str, job_id: &str) -> Result<Option<JobRow>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM jobs WHERE project_id = $1 AND job_id = $2"
    )))
    .bind(project_id)
    .bind(job_id)
    .fetch_optional(&mut *c)
    .await?;
    row.as_ref().map(JobRow::from_row).transpose()
}

/// Jobs of a project created by any of `request_ids`, in creation order, and their total.
pub async fn list_by_requests(
    c: &mut AnyConnection,
    project_id: &str,
    request_ids: &[String],
    offset: i64,
    limit: i64,
) -> Result<(Vec<JobRow>, i64)> {
    if request_ids.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let ph = placeholders(2, request_ids.len());
    let mut q = sqlx::query(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM jobs WHERE project_id = $1 AND request_id IN ({ph})"
    )))
    .bind(project_id);
    for r in request_ids {
        q = q.bind(r.clone());
    }
    let total: i64 = q.fetch_one(&mut *c).await?.try_get(0)?;
    let n = request_ids.len() + 1;
    let mut q = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM jobs WHERE project_id = $1 AND request_id IN ({ph}) ORDER BY seq LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    )))
    .bind(project_id);
    for r in request_ids {
        q = q.bind(r.clone());
    }
    let rows = q.bind(limit).bind(offset).fetch_all(&mut *c).await?;
    let jobs = rows
        .iter()
        .map(JobRow::from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok((jobs, total))
}

/// Leases up to `limit` runnable jobs to `owner` until `lease_until`.
///
/// Must run in a write transaction. On PostgreSQL claimers are serialised with a transaction-scoped
/// advisory lock, so two replicas never pick two jobs of one `lock_key`.
pub async fn claim(
    c: &mut AnyConnection,
    backend: Backend,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<JobRow>> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7283452)")
            .execute(&mut *c)
            .await?;
    }
    let rows = sqlx::query(AssertSqlSafe(format!(
        "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE job_id IN ( \
           SELECT j.job_id FROM jobs j WHERE j.state = 'queued' \
             AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.lock_key = j.lock_key AND r.state = 'running') \
             AND NOT EXISTS (SELECT 1 FROM jobs q WHERE q.lock_key = j.lock_key AND q.state = 'queued' AND q.seq < j.seq) \
           ORDER BY j.seq LIMIT $3) \
         RETURNING {COLS}"
    )))
    .bind(owner)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    let _ = now;
    let mut jobs = rows
        .iter()
        .map(JobRow::from_row)
        .collect::<Result<Vec<_>>>()?;
    jobs.sort_by_key(|j| j.seq);
    Ok(jobs)
}

/// Extends the leases `owner` holds on `job_ids`.
pub async fn renew(
    c: &mut AnyConnection,
    owner: &str,
    job_ids: &[String],
    lease_until: i64,
) -> Result<u64> {
    let mut n = 0;
    for chunk in job_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(3, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE jobs SET lease_until = $1 WHERE lease_owner = $2 AND state = 'running' AND job_id IN ({ph})"
        )))
        .bind(lease_until)
        .bind(owner);
        for id in chunk {
            q = q.bind(id.clone());
        }
        n += q.execute(&mut *c).await?.rows_affected();
    }
    Ok(n)
}

/// The terminal outcome of a job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: i32,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    pub execute_msg: Option<String>,
}

/// Marks a job done if `owner` still holds it. Returns false when the lease was lost.
pub async fn finish(
    c: &mut AnyConnection,
    job_id: &str,
    owner: &str,
    o: &Outcome,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET state = 'done', status = $1, error_code = $2, error_msg = $3, execute_msg = $4, \
         end_time = $5, lease_owner = NULL, lease_until = NULL \
         WHERE job_id = $6 AND state = 'running' AND lease_owner = $7",
    )
    .bind(i64::from(o.status))
    .bind(o.error_code.clone())
    .bind(o.error_msg.clone())
    .bind(o.execute_msg.clone())
    .bind(now)
    .bind(job_id)
    .bind(owner)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts running jobs whose lease ended before `now` back in the queue (their worker is gone).
/// Jobs already claimed `max_attempts` times are returned instead, still running, for the caller
/// to fail through its normal completion path.
pub async fn requeue_expired(
    c: &mut AnyConnection,
    now: i64,
    max_attempts: i64,
) -> Result<(u64, Vec<JobRow>)> {
    let requeued = sqlx::query(
        "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL \
         WHERE state = 'running' AND lease_until < $1 AND attempts < $2",
    )
    .bind(now)
    .bind(max_attempts)
    .execute(&mut *c)
    .await?
    .rows_affected();
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM jobs WHERE state = 'running' AND lease_until < $1 AND attempts >= $2 LIMIT 1000"
    )))
    .bind(now)
    .bind(max_attempts)
    .fetch_all(&mut *c)
    .await?;
    let exhausted = rows
        .iter()
        .map(JobRow::from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok((requeued, exhausted))
}

/// Takes over an expired job for `owner` so it can be finished (used for exhausted jobs).
pub async fn take_over(
    c: &mut AnyConnection,
    job_id: &str,
    owner: &str,
    lease_until: i64,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2 WHERE job_id = $3 AND state = 'running' AND lease_until < $4",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(job_id)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts every running job back in the queue. Only for a single-process store (SQLite) at start-up,
/// when no other worker can hold a lease.
pub async fn requeue_all_running(c: &mut AnyConnection) -> Result<u64> {
    Ok(sqlx::query("UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running'")
        .execute(&mut *c)
        .await?
        .rows_affected())
}

/// Counts of jobs by state.
pub async fn counts(c: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
        .collect()
}

/// The earliest lease expiry among running jobs, if any.
pub async fn next_lease_expiry(c: &mut AnyConnection) -> Result<Option<i64>> {
    Ok(
        sqlx::query("SELECT MIN(lease_until) FROM jobs WHERE state = 'running'")
            .fetch_one(&mut *c)
            .await?
            .try_get::<Option<i64>, _>(0)?,
    )
}

/// (finished, total) jobs of one request.
pub async fn progress(
    c: &mut AnyConnection,
    project_id: &str,
    request_id: &str,
) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0) AS done, COUNT(*) AS total \
         FROM jobs WHERE project_id = $1 AND request_id = $2",
    )
    .bind(project_id)
    .bind(request_id)
    .fetch_one(&mut *c)
    .await?;
    Ok((
        row.try_get::<i64, _>("done")?,
        row.try_get::<i64, _>("total")?,
    ))
}

/// Marks many jobs done with one outcome, each only if `owner` still holds it. Returns the ids
/// that were finished (the others lost their lease).
pub async fn finish_many(
    c: &mut AnyConnection,
    job_ids: &[String],
    owner: &str,
    o: &Outcome,
    now: i64,
) -> Result<Vec<String>> {
    let mut done = Vec::with_capacity(job_ids.len());
    for chunk in job_ids.chunks(crate::IN_CHUNK) {
        let ph = placeholders(7, chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'done', status = $1, error_code = $2, error_msg = $3, execute_msg = $4, \
             end_time = $5, lease_owner = NULL, lease_until = NULL \
             WHERE state = 'running' AND lease_owner = $6 AND job_id IN ({ph}) RETURNING job_id"
        )))
        .bind(i64::from(o.status))
        .bind(o.error_code.clone())
        .bind(o.error_msg.clone())
        .bind(o.execute_msg.clone())
        .bind(now)
        .bind(owner);
        for id in chunk {
            q = q.bind(id.clone());
        }
        for r in q.fetch_all(&mut *c).await? {
            done.push(r.try_get::<String, _>(0)?);
        }
    }
    Ok(done)
}
