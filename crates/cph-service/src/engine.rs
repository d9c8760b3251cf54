//! The job engine: claims queued jobs with a lease, executes them through the host agent, and
//! records their outcome together with its effect on phones and servers.
//!
//! - Claiming and the "start" effects (a phone enters `restarting`, …) happen in one transaction.
//! - Completion is group-committed: outcomes of many jobs are written in one transaction, each
//!   only if this process still holds the job's lease.
//! - Leases of running jobs are renewed; a lease that lapses (its process died) returns the job to
//!   the queue, and a job claimed `job_max_attempts` times fails instead of running again.
//! - Every wait is bounded: a job's execution by `job_timeout` (its [`JobClock`], which stops
//!   while the job waits for a per-host transfer slot; that wait has its own bound), queue
//!   polling by a short tick.

use crate::jobs::kind;
use crate::phones::{merge_properties, properties_need_restart};
use crate::{Result, Service};
use cph_domain::{JobStatus, PhoneStatus, ServerStatus};
use cph_runtime::{AgentCommand, CommandEnvelope, CommandResult, PhoneSpec};
use cph_store::jobs::Outcome;
use cph_store::{AnyConnection, JobRow, PhoneRow};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// Most jobs claimed in one transaction.
const CLAIM_BATCH: i64 = 1000;
/// Most outcomes written in one transaction.
const COMMIT_BATCH: usize = 1000;
/// Idle polling interval of the dispatcher (it is also woken on new work).
const IDLE_TICK: Duration = Duration::from_millis(500);

/// Running engine tasks; dropping it does not stop them, [`EngineHandle::shutdown`] does.
pub struct EngineHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EngineHandle {
    /// Stops claiming new jobs and waits (bounded) for the engine tasks to end. Jobs still
    /// executing keep their lease and are picked up again after it lapses.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

type Done = (JobRow, Outcome);

tokio::task_local! {
    /// The clock of the job the current task executes.
    static JOB_CLOCK: Arc<JobClock>;
}

/// The execution time a job has left. It runs except while the job waits for a transfer slot
/// ([`pause_job_clock`]): that wait is bounded separately (`transfer_wait`), so a job queued
/// behind other transfers of its host does not use up its `job_timeout` before it starts.
pub(crate) struct JobClock {
    state: watch::Sender<ClockState>,
}

#[derive(Clone, Copy)]
struct ClockState {
    deadline: tokio::time::Instant,
    paused_since: Option<tokio::time::Instant>,
}

/// Keeps the job's clock stopped until dropped; the deadline moves by the time it was held.
pub(crate) struct ClockPause {
    clock: Arc<JobClock>,
}

impl Drop for ClockPause {
    fn drop(&mut self) {
        self.clock.state.send_modify(|s| {
            if let Some(since) = s.paused_since.take() {
                s.deadline += since.elapsed();
            }
        });
    }
}

/// Stops the clock of the job the current task executes, if it runs under one, until the
/// returned guard is dropped. A clock already stopped is left to its first guard.
pub(crate) fn pause_job_clock() -> Option<ClockPause> {
    JOB_CLOCK
        .try_with(|clock| {
            let mut paused = false;
            clock.state.send_if_modified(|s| {
                if s.paused_since.is_none() {
                    s.paused_since = Some(tokio::time::Instant::now());
                    paused = true;
                }
                paused
            });
            paused.then(|| ClockPause {
                clock: clock.clone(),
            })
        })
        .ok()
        .flatten()
}

/// Runs `work` with `limit` of job time ([`JobClock`]); `None` when the time ran out first
/// (`work` is then dropped).
pub(crate) async fn within_job_time<F: std::future::Future>(
    limit: Duration,
    work: F,
) -> Option<F::Output> {
    let (state, mut changes) = watch::channel(ClockState {
        deadline: tokio::time::Instant::now() + limit,
        paused_since: None,
    });
    let work = JOB_CLOCK.scope(Arc::new(JobClock { state }), work);
    tokio::pin!(work);
    loop {
        let s = *changes.borrow_and_update();
        // The sender lives in the clock the work holds, so `changed` fails only once the work
        // is done; the work's branch is polled first.
        match s.paused_since {
            Some(_) => tokio::select! {
                biased;
                out = &mut work => return Some(out),
                _ = changes.changed() => {}
            },
            None => tokio::select! {
                biased;
                out = &mut work => return Some(out),
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(s.deadline) => return None,
            },
        }
    }
}

impl Service {
    /// Start-up recovery: on SQLite (one process by construction) jobs left running by a previous
    /// process go back to the queue at once; phones the host agent does not know are adopted in
    /// their recorded power state; phones stuck in a transitional status with no job left are
    /// marked abnormal.
    pub async fn recover(&self) -> Result<()> {
        let now = self.now_ms();
        if self.store().backend() == cph_store::Backend::Sqlite {
            let mut tx = self.store().write().await?;
            let n = cph_store::jobs::requeue_all_running(&mut tx).await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            if n > 0 {
                tracing::info!(jobs = n, "requeued jobs interrupted by the previous run");
            }
        }
        let known: HashSet<String> = self
            .inner
            .agent
            .inventory()
            .await
            .phones
            .into_iter()
            .map(|p| p.phone_id)
            .collect();
        let mut after = String::new();
        let mut adopted = 0usize;
        let mut broken: Vec<String> = Vec::new();
        loop {
            let page = {
                let mut c = self.store().read().await?;
                cph_store::phones::page_all(&mut c, &after, 2000).await?
            };
            let Some(last) = page.last() else { break };
            after = last.phone_id.clone();
            for p in page {
                if known.contains(&p.phone_id) {
                    continue;
                }
                let running = match PhoneStatus::from_code(p.status) {
                    Some(
                        PhoneStatus::Stopped | PhoneStatus::Frozen | PhoneStatus::CreateFailed,
                    ) => false,
                    Some(PhoneStatus::Creating) => continue,
                    _ => true,
                };
                let env = CommandEnvelope {
                    command_id: format!("adopt-{}", cph_domain::ids::hex_id()),
                    command: AgentCommand::AdoptPhone {
                        spec: self.spec_of(&p, None, None).await,
                        running,
                    },
                };
                if let CommandResult::Failed { message, .. } = self.inner.agent.execute(env).await {
                    // The phone should run but cannot: report it abnormal rather than running.
                    tracing::error!(phone_id = %p.phone_id, %message, "phone could not be brought back");
                    broken.push(p.phone_id.clone());
                }
                adopted += 1;
            }
        }
        let mut tx = self.store().write().await?;
        for id in &broken {
            cph_store::phones::set_status(&mut tx, id, PhoneStatus::Abnormal.code(), now).await?;
        }
        let orphans = cph_store::phones::settle_orphans(&mut tx, now).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        tracing::info!(adopted, orphans, "recovered phone state");
        Ok(())
    }

    /// Starts the dispatcher, committer, lease renewer, reaper and the charging-period expirer.
    pub fn start_engine(&self) -> EngineHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel::<Done>(COMMIT_BATCH * 4);
        let inflight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let sem = Arc::new(Semaphore::new(self.config().job_concurrency.max(1)));
        let tasks = vec![
            tokio::spawn(
                self.clone()
                    .dispatcher(stop_rx.clone(), done_tx, inflight.clone(), sem),
            ),
            tokio::spawn(self.clone().committer(done_rx, inflight.clone())),
            tokio::spawn(self.clone().renewer(stop_rx.clone(), inflight)),
            tokio::spawn(self.clone().reaper(stop_rx.clone())),
            tokio::spawn(self.clone().expirer(stop_rx)),
        ];
        EngineHandle {
            stop: stop_tx,
            tasks,
        }
    }

    async fn dispatcher(
        self,
        mut stop: watch::Receiver<bool>,
        done: mpsc::Sender<Done>,
        inflight: Arc<Mutex<HashSet<String>>>,
        sem: Arc<Semaphore>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let free = sem.available_permits() as i64;
            let claimed = if free > 0 {
                match self.claim_and_start(free.min(CLAIM_BATCH)).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "claiming jobs failed");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = self.inner.job_wakeup.notified() => {}
                    _ = tokio::time::sleep(IDLE_TICK) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for job in claimed {
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    return;
                };
                inflight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(job.job_id.clone());
                let svc = self.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let limit = svc.config().job_timeout;
                    let outcome = match within_job_time(limit, svc.execute(&job)).await {
                        Some(o) => o,
                        None => failed(
                            "CPS.0054",
                            &format!(
                                "Handle job timeout: the job did not finish within {} ms.",
                                limit.as_millis()
                            ),
                        ),
                    };
                    let _ = done.send((job, outcome)).await;
                    drop(permit);
                });
            }
        }
    }

    /// Claims up to `limit` jobs and applies their start effects, in one transaction.
    async fn claim_and_start(&self, limit: i64) -> Result<Vec<JobRow>> {
        let now = self.now_ms();
        let lease_until = now + self.config().job_lease.as_millis() as i64;
        let mut tx = self.store().write().await?;
        let jobs = cph_store::jobs::claim(
            &mut tx,
            self.store().backend(),
            &self.inner.instance_id,
            now,
            lease_until,
            limit,
        )
        .await?;
        // The common start effect (a phone enters a transitional status) in one statement per status.
        let mut by_status: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for j in &jobs {
            if let (Some(st), Some(id)) = (start_phone_status(j), &j.phone_id) {
                by_status.entry(st.code()).or_default().push(id.clone());
            }
            start_effects(&mut tx, j, now).await?;
        }
        for (st, ids) in &by_status {
            cph_store::phones::set_status_many(&mut tx, ids, *st, now).await?;
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(jobs)
    }

    async fn committer(self, mut rx: mpsc::Receiver<Done>, inflight: Arc<Mutex<HashSet<String>>>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < COMMIT_BATCH {
                match rx.try_recv() {
                    Ok(d) => batch.push(d),
                    Err(_) => break,
                }
            }
            // Retry a failed commit a few times; after that the leases lapse and the jobs re-run.
            for attempt in 0..5 {
                match self.commit_outcomes(&batch).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, attempt, "recording job outcomes failed");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
            {
                let mut set = inflight.lock().unwrap_or_else(|e| e.into_inner());
                for (j, _) in &batch {
                    set.remove(&j.job_id);
                }
            }
            self.wake_jobs();
        }
    }

    async fn commit_outcomes(&self, batch: &[Done]) -> Result<()> {
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        // Successes whose only effect is a phone status are recorded in bulk.
        let (simple, rest): (Vec<&Done>, Vec<&Done>) = batch
            .iter()
            .partition(|(j, o)| simple_success_status(j, o).is_some());
        if !simple.is_empty() {
            let ids: Vec<String> = simple.iter().map(|(j, _)| j.job_id.clone()).collect();
            let finished: HashSet<String> = cph_store::jobs::finish_many(
                &mut tx,
                &ids,
                &self.inner.instance_id,
                &succeeded(),
                now,
            )
            .await?
            .into_iter()
            .collect();
            let mut by_status: BTreeMap<i32, Vec<String>> = BTreeMap::new();
            for (j, o) in &simple {
                if !finished.contains(&j.job_id) {
                    tracing::warn!(job_id = %j.job_id, "lease lost before completion; outcome dropped");
                    continue;
                }
                if let (Some(st), Some(id)) = (simple_success_status(j, o), &j.phone_id) {
                    by_status.entry(st.code()).or_default().push(id.clone());
                }
            }
            for (st, ids) in &by_status {
                cph_store::phones::set_status_many(&mut tx, ids, *st, now).await?;
            }
        }
        for (job, outcome) in rest {
            if cph_store::jobs::finish(&mut tx, &job.job_id, &self.inner.instance_id, outcome, now)
                .await?
            {
                finish_effects(&mut tx, job, outcome, now).await?;
            } else {
                tracing::warn!(job_id = %job.job_id, "lease lost before completion; outcome dropped");
            }
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        // Keyed access follows what was just recorded: a new server gets its gateway, a new
        // key pair closes the sessions of the old one.
        for (job, outcome) in batch {
            if outcome.status != JobStatus::Succeeded.code() {
                continue;
            }
            let Some(server_id) = job.server_id.as_deref() else {
                continue;
            };
            match job.kind.as_str() {
                kind::SERVER_KEYPAIR => self.revoke_stale_sessions(server_id).await,
                kind::SERVER_CREATE => {
                    if let Err(e) = self.ensure_gateway(server_id, &job.project_id).await {
                        tracing::warn!(server_id, error = %e, "starting the ssh gateway failed");
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn renewer(self, mut stop: watch::Receiver<bool>, inflight: Arc<Mutex<HashSet<String>>>) {
        let every = self.config().job_lease / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let ids: Vec<String> = inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect();
            if ids.is_empty() {
                continue;
            }
            let until = self.now_ms() + self.config().job_lease.as_millis() as i64;
            let r = async {
                let mut tx = self.store().write().await?;
                cph_store::jobs::renew(&mut tx, &self.inner.instance_id, &ids, until).await?;
                tx.commit().await.map_err(cph_store::StoreError::from)?;
                Ok::<(), crate::ServiceError>(())
            }
            .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "renewing job leases failed");
            }
        }
    }

    async fn reaper(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.reap_once().await {
                tracing::error!(error = %e, "reaping expired job leases failed");
            }
        }
    }

    /// Returns lapsed jobs to the queue and fails those out of attempts.
    pub async fn reap_once(&self) -> Result<()> {
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        let (requeued, exhausted) =
            cph_store::jobs::requeue_expired(&mut tx, now, self.config().job_max_attempts).await?;
        let until = now + self.config().job_lease.as_millis() as i64;
        for j in &exhausted {
            if cph_store::jobs::take_over(&mut tx, &j.job_id, &self.inner.instance_id, until, now)
                .await?
            {
                let o = failed("CPS.0054", "Job interrupted too many times.");
                if cph_store::jobs::finish(&mut tx, &j.job_id, &self.inner.instance_id, &o, now)
                    .await?
                {
                    finish_effects(&mut tx, j, &o, now).await?;
                }
            }
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        if requeued > 0 {
            tracing::info!(requeued, "requeued jobs whose lease lapsed");
            self.wake_jobs();
        }
        Ok(())
    }

    async fn expirer(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config().expiry_interval) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.expire_once().await {
                tracing::error!(error = %e, "ending charging periods failed");
            }
        }
    }

    pub(crate) async fn agent_call(
        &self,
        job: &JobRow,
        suffix: &str,
        command: AgentCommand,
    ) -> std::result::Result<(), Outcome> {
        let env = CommandEnvelope {
            command_id: format!("{}{suffix}", job.job_id),
            command,
        };
        match self.inner.agent.execute(env).await {
            CommandResult::Ok { .. } => Ok(()),
            CommandResult::Failed { code, message } => Err(failed(&code, &message)),
        }
    }

    /// Runs one job to its outcome. Reads what it needs; writes nothing (the committer does).
    async fn execute(&self, job: &JobRow) -> Outcome {
        match self.execute_inner(job).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(job_id = %job.job_id, error = %e, "job failed unexpectedly");
                failed("CPS.0003", "Service internal error.")
            }
        }
    }

    async fn execute_inner(&self, job: &JobRow) -> Result<Outcome> {
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let phone = match &job.phone_id {
            Some(id) => {
                let mut c = self.store().read().await?;
                cph_store::phones::get_any(&mut c, id).await?
            }
            None => None,
        };
        let new_image = payload
            .get("image_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let new_props = payload.get("property").and_then(Value::as_object).cloned();
        let r = match job.kind.as_str() {
            kind::PHONE_RESTART
            | kind::PHONE_RESET
            | kind::PHONE_STOP
            | kind::PHONE_PROPERTY
            | kind::PHONE_CREATE => {
                let Some(p) = phone else {
                    return Ok(failed("CPS.0005", "Phone is not found."));
                };
                let spec = self
                    .spec_of(&p, new_image.as_deref(), new_props.as_ref())
                    .await;
                match job.kind.as_str() {
                    kind::PHONE_RESTART => {
                        self.agent_call(job, "", AgentCommand::RestartPhone { spec })
                            .await
                    }
                    kind::PHONE_RESET => {
                        // A reset keeps only the properties given with it.
                        let mut spec = spec;
                        spec.properties = new_props
                            .clone()
                            .map(|m| m.into_iter().collect())
                            .unwrap_or_default();
                        self.agent_call(job, "", AgentCommand::ResetPhone { spec })
                            .await
                    }
                    kind::PHONE_STOP => {
                        self.agent_call(
                            job,
                            "",
                            AgentCommand::StopPhone {
                                phone_id: p.phone_id,
                            },
                        )
                        .await
                    }
                    kind::PHONE_CREATE => {
                        self.agent_call(job, "", AgentCommand::CreatePhone { spec })
                            .await
                    }
                    _ => {
                        let props = new_props.clone().unwrap_or_default();
                        let r = self
                            .agent_call(
                                job,
                                "",
                                AgentCommand::SetProperties {
                                    phone_id: p.phone_id.clone(),
                                    properties: props.clone().into_iter().collect(),
                                },
                            )
                            .await;
                        let running = p.status == PhoneStatus::Running.code();
                        if r.is_ok() && properties_need_restart(&props) && running {
                            self.agent_call(job, "-restart", AgentCommand::RestartPhone { spec })
                                .await
                        } else if r.is_ok() && running && self.drives_phones() {
                            self.apply_properties_via_adb(&p.phone_id, &props).await
                        } else {
                            r
                        }
                    }
                }
            }
            kind::PHONE_TRAFFIC => Ok(()),
            kind::SERVER_CREATE | kind::SERVER_RESTART => {
                let server_id = job.server_id.clone().unwrap_or_default();
                let phones = {
                    let mut c = self.store().read().await?;
                    cph_store::phones::of_server(&mut c, &server_id).await?
                };
                let mut specs = Vec::with_capacity(phones.len());
                for p in &phones {
                    specs.push(self.spec_of(p, None, None).await);
                }
                let calls = phones.iter().zip(specs).map(|(p, spec)| {
                    let cmd = if job.kind == kind::SERVER_CREATE {
                        AgentCommand::CreatePhone { spec }
                    } else {
                        AgentCommand::RestartPhone { spec }
                    };
                    let suffix = format!("-{}", p.phone_id);
                    async move { self.agent_call(job, &suffix, cmd).await }
                });
                let results = futures_join_all(calls).await;
                let failures: Vec<&Outcome> =
                    results.iter().filter_map(|r| r.as_ref().err()).collect();
                match failures.first() {
                    None => Ok(()),
                    Some(f) => Err(Outcome {
                        execute_msg: Some(format!(
                            "{} of {} phones failed",
                            failures.len(),
                            results.len()
                        )),
                        ..(*f).clone()
                    }),
                }
            }
            kind::SERVER_KEYPAIR => {
                // The phones accept the new key pair's key over ADB from now on (and no longer
                // the old one's); the SSH gateway follows once the change is recorded.
                if !self.drives_phones() {
                    Ok(())
                } else {
                    let server_id = job.server_id.clone().unwrap_or_default();
                    let name = payload["keypair_name"].as_str().unwrap_or_default();
                    let keys = self.adb_keys_of_keypair(&job.project_id, name).await?;
                    let phones = {
                        let mut c = self.store().read().await?;
                        cph_store::phones::of_server(&mut c, &server_id).await?
                    };
                    let calls = phones.iter().map(|p| {
                        let cmd = AgentCommand::SetAdbKeys {
                            phone_id: p.phone_id.clone(),
                            adb_keys: keys.clone(),
                        };
                        let suffix = format!("-{}", p.phone_id);
                        async move { self.agent_call(job, &suffix, cmd).await }
                    });
                    let results = futures_join_all(calls).await;
                    match results.into_iter().find_map(|r| r.err()) {
                        None => Ok(()),
                        Some(f) => Err(f),
                    }
                }
            }
            kind::ENCODE_RESTART => {
                self.agent_call(
                    job,
                    "",
                    AgentCommand::RestartEncodeServer {
                        server_id: job.server_id.clone().unwrap_or_default(),
                        encode_server_id: job.encode_server_id.clone().unwrap_or_default(),
                    },
                )
                .await
            }
            kind::PHONE_COMMAND => {
                let Some(p) = phone else {
                    return Ok(failed("CPS.0005", "Phone is not found."));
                };
                return Ok(self
                    .execute_phone_command(&p.phone_id, &job.project_id, &payload)
                    .await);
            }
            kind::SERVER_SHARE => return Ok(self.execute_share(job, &payload).await),
            kind::SERVER_CHANGE => self.execute_server_change(job).await?,
            kind::SERVER_CHANGE_MODEL => self.execute_server_change_model(job).await?,
            other => Err(failed(
                "CPS.0323",
                &format!("This api is not supported: unknown job kind {other}."),
            )),
        };
        Ok(match r {
            Ok(()) => Outcome {
                status: JobStatus::Succeeded.code(),
                error_code: None,
                error_msg: None,
                execute_msg: None,
            },
            Err(o) => o,
        })
    }
}

fn futures_join_all<F: std::future::Future>(
    it: impl IntoIterator<Item = F>,
) -> futures::future::JoinAll<F> {
    futures::future::join_all(it)
}

/// A failed outcome with a documented code.
pub(crate) fn failed(code: &str, msg: &str) -> Outcome {
    let mut m = msg.to_string();
    truncate_utf8(&mut m, 1024);
    Outcome {
        status: JobStatus::Failed.code(),
        error_code: Some(code.to_string()),
        error_msg: Some(m),
        execute_msg: None,
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// The properties of a phone row with `props` merged over them.
pub(crate) fn merged_properties(
    p: &PhoneRow,
    props: Option<&Map<String, Value>>,
) -> BTreeMap<String, Value> {
    let mut properties: BTreeMap<String, Value> =
        serde_json::from_str::<Map<String, Value>>(&p.properties)
            .unwrap_or_default()
            .into_iter()
            .collect();
    if let Some(m) = props {
        for (k, v) in m {
            properties.insert(k.clone(), v.clone());
        }
    }
    properties
}

impl Service {
    /// The runtime's view of a phone, with an optional new image and properties applied: its
    /// identity from the catalog and, when phones are driven over ADB, the keys it accepts.
    pub(crate) async fn spec_of(
        &self,
        p: &PhoneRow,
        image: Option<&str>,
        props: Option<&Map<String, Value>>,
    ) -> PhoneSpec {
        let image_id = image.unwrap_or(&p.image_id).to_string();
        let catalog = self.catalog();
        let properties = merged_properties(p, props);
        let default_properties: BTreeMap<String, String> = cph_catalog::phone_properties()
            .iter()
            .filter_map(|d| {
                let v = d.default.as_ref()?;
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some((d.key.clone(), s))
            })
            .collect();
        // The identity a phone announces: its own property, else the documented default.
        let prop = |key: &str, fallback: &str| -> String {
            match properties.get(key) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => default_properties
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| fallback.to_string()),
            }
        };
        let mut profile = cph_runtime::PhoneProfile {
            product_name: prop("ro.product.name", "cloudphone"),
            model: p.phone_model_name.clone(),
            device: prop("ro.product.device", "cloudphone"),
            brand: prop("ro.product.brand", "cph"),
            manufacturer: prop("ro.product.manufacturer", "cph"),
            ..Default::default()
        };
        if let Some(m) = catalog.phone_model(&p.phone_model_name) {
            let mut wh = m
                .resolution
                .split('x')
                .map(|n| n.trim().parse::<u32>().ok());
            if let (Some(Some(w)), Some(Some(h))) = (wh.next(), wh.next()) {
                profile.width = w;
                profile.height = h;
            }
            profile.density = u32::try_from(m.dpi).unwrap_or(0);
        }
        if let Some(i) = catalog.phone_image(&image_id) {
            profile.android_version = i.android_version.clone();
            profile.sdk = i.sdk;
            profile.image_name = i.image_name.clone();
            profile.os_name = i.os_name.clone();
        }
        PhoneSpec {
            phone_id: p.phone_id.clone(),
            server_id: p.server_id.clone(),
            phone_model_name: p.phone_model_name.clone(),
            image_id,
            imei: p.imei.clone(),
            phone_ip: p.phone_ip.clone(),
            properties,
            profile: cph_runtime::PhoneProfile {
                default_properties,
                ..profile
            },
            adb_keys: self.phone_adb_keys(p).await,
            ports: self.phone_ports(p).await,
        }
    }
}

/// The transitional status a phone job puts its phone in when it starts (written in bulk by the
/// claimer).
fn start_phone_status(j: &JobRow) -> Option<PhoneStatus> {
    match j.kind.as_str() {
        kind::PHONE_RESTART => Some(PhoneStatus::Restarting),
        kind::PHONE_RESET => Some(PhoneStatus::Resetting),
        kind::PHONE_STOP => Some(PhoneStatus::Stopping),
        _ => None,
    }
}

/// A plain success outcome.
fn succeeded() -> Outcome {
    Outcome {
        status: JobStatus::Succeeded.code(),
        error_code: None,
        error_msg: None,
        execute_msg: None,
    }
}

/// For a plain success whose only effect is to set its phone's status (a stop, a create, a
/// restart without a new image or properties), that status. `None` for everything else, which
/// goes through [`finish_effects`].
fn simple_success_status(j: &JobRow, o: &Outcome) -> Option<PhoneStatus> {
    if o.status != JobStatus::Succeeded.code() || o.error_code.is_some() || o.execute_msg.is_some()
    {
        return None;
    }
    j.phone_id.as_ref()?;
    match j.kind.as_str() {
        kind::PHONE_STOP => Some(PhoneStatus::Stopped),
        kind::PHONE_CREATE => Some(PhoneStatus::Running),
        kind::PHONE_RESTART => {
            let payload: Value = serde_json::from_str(&j.payload).unwrap_or(Value::Null);
            let plain = payload.get("image_id").and_then(Value::as_str).is_none()
                && payload.get("property").and_then(Value::as_object).is_none();
            plain.then_some(PhoneStatus::Running)
        }
        _ => None,
    }
}

/// Status changes when a job starts, besides the phone status of [`start_phone_status`].
async fn start_effects(c: &mut AnyConnection, j: &JobRow, now: i64) -> Result<()> {
    if j.kind == kind::SERVER_RESTART
        && let Some(sid) = &j.server_id
    {
        cph_store::phones::set_status_of_server(c, sid, PhoneStatus::Restarting.code(), now)
            .await?;
    }
    if j.kind == kind::SERVER_CHANGE_MODEL {
        crate::lifecycle::start_change_model(c, j, now).await?;
    }
    if j.kind == kind::ENCODE_RESTART
        && let Some(eid) = &j.encode_server_id
    {
        cph_store::network::set_encode_server_status(c, eid, crate::encode::RESTARTING, now)
            .await?;
    }
    Ok(())
}

/// Effects of a job's outcome, written with it.
async fn finish_effects(c: &mut AnyConnection, j: &JobRow, o: &Outcome, now: i64) -> Result<()> {
    let ok = o.status == JobStatus::Succeeded.code();
    let payload: Value = serde_json::from_str(&j.payload).unwrap_or(Value::Null);
    let phone_id = j.phone_id.as_deref().unwrap_or_default();
    let server_id = j.server_id.as_deref().unwrap_or_default();
    match j.kind.as_str() {
        kind::PHONE_CREATE => {
            let st = if ok {
                PhoneStatus::Running
            } else {
                PhoneStatus::CreateFailed
            };
            cph_store::phones::set_status(c, phone_id, st.code(), now).await?;
        }
        kind::PHONE_RESTART | kind::PHONE_RESET => {
            if ok {
                if let Some(img) = payload.get("image_id").and_then(Value::as_str) {
                    cph_store::phones::set_image(c, phone_id, img, now).await?;
                }
                let props = payload.get("property").and_then(Value::as_object);
                if let Some(p) = cph_store::phones::get_any(c, phone_id).await? {
                    let stored = if j.kind == kind::PHONE_RESET {
                        "{}"
                    } else {
                        p.properties.as_str()
                    };
                    if props.is_some() || j.kind == kind::PHONE_RESET {
                        let merged = merge_properties(stored, &props.cloned().unwrap_or_default());
                        cph_store::phones::set_properties(
                            c,
                            phone_id,
                            &merged,
                            &p.custom_properties,
                            now,
                        )
                        .await?;
                    }
                }
                cph_store::phones::set_status(c, phone_id, PhoneStatus::Running.code(), now)
                    .await?;
            } else {
                let st = if j.kind == kind::PHONE_RESET {
                    PhoneStatus::ResetFailed
                } else {
                    PhoneStatus::RestartFailed
                };
                cph_store::phones::set_status(c, phone_id, st.code(), now).await?;
            }
        }
        kind::PHONE_STOP => {
            let st = if ok {
                PhoneStatus::Stopped
            } else {
                PhoneStatus::StopFailed
            };
            cph_store::phones::set_status(c, phone_id, st.code(), now).await?;
        }
        kind::PHONE_PROPERTY => {
            if ok && let Some(p) = cph_store::phones::get_any(c, phone_id).await? {
                let props = payload
                    .get("property")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let merged = merge_properties(&p.properties, &props);
                let custom = match payload.get("custom_property").and_then(Value::as_object) {
                    Some(cp) => merge_properties(&p.custom_properties, cp),
                    None => p.custom_properties.clone(),
                };
                cph_store::phones::set_properties(c, phone_id, &merged, &custom, now).await?;
            }
        }
        kind::PHONE_TRAFFIC => {
            if ok && let Some(tt) = payload.get("traffic_type").and_then(Value::as_str) {
                cph_store::phones::set_traffic_type(c, phone_id, tt, now).await?;
            }
        }
        kind::SERVER_CREATE => {
            let (s, p) = if ok {
                (ServerStatus::Running, PhoneStatus::Running)
            } else {
                (ServerStatus::Abnormal, PhoneStatus::CreateFailed)
            };
            cph_store::servers::set_status(c, server_id, s.code(), now).await?;
            cph_store::phones::set_status_of_server(c, server_id, p.code(), now).await?;
            let e = if ok {
                crate::encode::RUNNING
            } else {
                crate::encode::ABNORMAL
            };
            for es in cph_store::network::encode_servers_of_server(c, server_id).await? {
                cph_store::network::set_encode_server_status(c, &es.encode_server_id, e, now)
                    .await?;
            }
        }
        kind::SERVER_RESTART => {
            let p = if ok {
                PhoneStatus::Running
            } else {
                PhoneStatus::RestartFailed
            };
            cph_store::phones::set_status_of_server(c, server_id, p.code(), now).await?;
        }
        kind::SERVER_CHANGE => crate::lifecycle::finish_change(c, j, o, now).await?,
        kind::SERVER_CHANGE_MODEL => crate::lifecycle::finish_change_model(c, j, o, now).await?,
        // An export that succeeded registers its object: imports restore only from those.
        kind::PHONE_COMMAND if ok && payload["command"] == "export" => {
            let object = &payload["object"];
            if let (Some(bucket), Some(path)) = (
                object["bucket_name"].as_str(),
                object["object_path"].as_str(),
            ) {
                let row = cph_store::data_exports::DataExportRow {
                    project_id: j.project_id.clone(),
                    bucket_name: bucket.to_string(),
                    object_path: path.to_string(),
                    phone_id: phone_id.to_string(),
                    job_id: j.job_id.clone(),
                    exported_at: now,
                };
                cph_store::data_exports::register(c, &row).await?;
            }
        }
        kind::SERVER_KEYPAIR => {
            if ok && let Some(k) = payload.get("keypair_name").and_then(Value::as_str) {
                cph_store::netops::set_server_keypair(c, server_id, k, now).await?;
            }
        }
        kind::ENCODE_RESTART => {
            let st = if ok {
                crate::encode::RUNNING
            } else {
                crate::encode::ABNORMAL
            };
            let eid = j.encode_server_id.as_deref().unwrap_or_default();
            cph_store::network::set_encode_server_status(c, eid, st, now).await?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn time_paused_for_a_slot_does_not_count() {
        // 200 ms of work, 600 ms stopped, 50 ms of work: 250 ms of job time, over the limit
        // only if the stop counted.
        let out = within_job_time(LIMIT, async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let paused = pause_job_clock().expect("a job clock runs");
            tokio::time::sleep(Duration::from_millis(600)).await;
            drop(paused);
            tokio::time::sleep(Duration::from_millis(50)).await;
            7
        })
        .await;
        assert_eq!(out, Some(7));
    }

    #[tokio::test]
    async fn running_time_counts_before_and_after_a_pause() {
        let started = tokio::time::Instant::now();
        let out = within_job_time(LIMIT, async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(pause_job_clock());
            tokio::time::sleep(Duration::from_millis(50)).await;
            let paused = pause_job_clock();
            tokio::time::sleep(Duration::from_millis(400)).await;
            drop(paused);
            // 250 ms used before the pause: the limit is reached 50 ms after it.
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        assert_eq!(out, None);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(650) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn work_past_the_limit_is_cut_off() {
        let started = tokio::time::Instant::now();
        let out = within_job_time(LIMIT, tokio::time::sleep(Duration::from_secs(5))).await;
        assert_eq!(out, None);
        assert!(started.elapsed() < Duration::from_secs(3));
        // Outside a job there is no clock to stop.
        assert!(pause_job_clock().is_none());
    }

    #[tokio::test]
    async fn a_second_pause_leaves_the_clock_to_the_first() {
        let out = within_job_time(LIMIT, async {
            let first = pause_job_clock().expect("a job clock runs");
            assert!(pause_job_clock().is_none());
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop(first);
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        assert_eq!(out, None);
    }
}
