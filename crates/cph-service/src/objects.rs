//! Data operations that move objects onto phones: InstallApk (`install`, `install-multiple`) and
//! PushFile (`push`).
//!
//! An `obs://bucket/key` resolves through [`cph_objects::Backends`]: a bucket configured by name
//! on an external S3/OBS endpoint, else the embedded object store's bucket of the job's account
//! (buckets belong to an account, so a job may only read buckets of its project's account), else
//! the default external endpoint; external endpoints serve only the accounts they list. Failures
//! map to the reference's codes: a missing (or not permitted) object is `CPS.0104`; a read that
//! the object storage itself fails (an external endpoint that is unreachable or refuses the
//! configured credentials) is `CPS.0003`, and any failure to store an export is `CPS.0103`; both
//! name the endpoint by host and port, never with credentials.
//!
//! The object is spooled to a host-local file (bounded by the operation's documented size
//! limit) once for all the jobs that need the same object version at the same time, checked,
//! and then applied to each phone through ADB: `install` / `install-multiple` with the caller's
//! options, or a tar validated in full (no `..`, absolute paths, escaping links or device files)
//! and unpacked under the phone's root. Spool files are removed when the last job holding them
//! ends.
//!
//! A spooled tar is validated once for all the jobs sharing the spool (per set of validation
//! options, see [`Spooled::validated`]): the first job that holds a transfer slot reads it in
//! full, and the others take its verdict: the validated tar, or the refusal (`CPS.0260`, naming
//! the entry) with the same code and message. A failure to read the spool file itself is not
//! kept; the next job validates again. Applying re-checks each entry as it is read and refuses
//! a spool file that changed since validation.
//!
//! Every transfer to or from a phone (install, push, import, export) holds one of the
//! `transfers_per_host` slots of the phone's host while it runs, so the memory a fan-out takes
//! (ADB packets in flight, chunks queued by the phones, archive buffers) is bounded by the
//! slots, not by the number of phones. Shared storage takes the same slots ([`Transfer`]):
//! unpacking a tar into a server's share volume holds a slot of the server's host, and
//! pre-installing a shared app holds one per phone while that phone installs it. A job spools
//! its object first (shared with the jobs waiting beside it, which keep the spool file alive),
//! then waits for a slot, then validates and applies. The wait does not count against
//! `job_timeout` (see [`crate::engine::JobClock`]); it is bounded by `transfer_wait`, after
//! which the job fails with `CPS.0042` (System busy).

use crate::Service;
use crate::engine::{failed, truncate_utf8};
use cph_store::jobs::Outcome;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where objects are read and spooled.
pub(crate) struct Objects {
    /// The embedded store and the external endpoints.
    pub backends: cph_objects::Backends,
    pub spool_dir: PathBuf,
    /// Spool files being used, by object version.
    pub spools: std::sync::Mutex<HashMap<String, Weak<Spooled>>>,
}

/// The transfer slots of each host (`ServiceConfig::transfers_per_host`).
pub(crate) struct TransferSlots {
    per_host: usize,
    hosts: std::sync::Mutex<HashMap<String, Arc<HostSlots>>>,
}

/// One host's slots and what they are doing.
struct HostSlots {
    slots: Arc<Semaphore>,
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
    peak_in_flight: AtomicUsize,
    waited: AtomicUsize,
    validations: AtomicUsize,
}

/// What the transfer slots of one host are doing (the service reports them per host).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Slots of the host.
    pub slots: usize,
    /// Transfers running now.
    pub in_flight: usize,
    /// Jobs waiting for a slot now.
    pub waiting: usize,
    /// Most transfers that ran at once since the service started.
    pub peak_in_flight: usize,
    /// Transfers that had to wait for a slot since the service started.
    pub waited: usize,
    /// Spooled tars read in full to validate them in this host's slots since the service
    /// started: one per spool and set of options, however many jobs share the spool.
    pub validations: usize,
}

/// What a transfer slot is taken for: a transfer to or from a phone, or to the shared storage
/// of a server. Each names the host whose slots it uses.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transfer<'a> {
    Phone(&'a str),
    ShareOf(&'a str),
}

impl std::fmt::Display for Transfer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transfer::Phone(id) => write!(f, "phone {id}"),
            Transfer::ShareOf(id) => write!(f, "the shared storage of server {id}"),
        }
    }
}

impl TransferSlots {
    pub(crate) fn new(per_host: usize) -> Self {
        TransferSlots {
            per_host: per_host.max(1),
            hosts: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn host(&self, host: &str) -> Arc<HostSlots> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(HostSlots {
                    slots: Arc::new(Semaphore::new(self.per_host)),
                    in_flight: AtomicUsize::new(0),
                    waiting: AtomicUsize::new(0),
                    peak_in_flight: AtomicUsize::new(0),
                    waited: AtomicUsize::new(0),
                    validations: AtomicUsize::new(0),
                })
            })
            .clone()
    }
}

/// A transfer slot of a host, held while the transfer runs.
pub(crate) struct TransferSlot {
    host: Arc<HostSlots>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for TransferSlot {
    fn drop(&mut self) {
        self.host.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a job as waiting for a slot until dropped (also when the job is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn missing(bucket: &str, key: &str) -> Outcome {
    failed(
        "CPS.0104",
        &format!("File doesn't exists in OBS: obs://{bucket}/{key}."),
    )
}

pub(crate) fn sub_job_failed(msg: &str, detail: String) -> Outcome {
    let mut o = failed("CPS.0260", &format!("Sub job execute failed: {msg}"));
    let mut d = detail;
    truncate_utf8(&mut d, crate::adb::MAX_EXECUTE_MSG);
    o.execute_msg = Some(d);
    o
}

fn storage_error(e: impl std::fmt::Display) -> Outcome {
    failed(
        "CPS.0003",
        &format!("Service internal error: object storage: {e}."),
    )
}

/// The outcome of a failed read of `obs://bucket/key`. Another account's bucket, and an
/// external bucket whose endpoint does not list the account, read as absent: their existence is
/// not disclosed. The object storage's own failures name the endpoint (host and port only).
fn read_failure(bucket: &str, key: &str, e: cph_objects::ObjectsError) -> Outcome {
    use cph_objects::ObjectsError as E;
    match e {
        e if e.is_missing() => missing(bucket, key),
        E::Unreachable { .. } | E::AccessDenied { .. } | E::Failed { .. } | E::Protocol { .. } => {
            let mut o = failed(
                "CPS.0003",
                &format!("Service internal error: obs://{bucket}/{key} could not be read: {e}."),
            );
            o.execute_msg = o.error_msg.clone();
            o
        }
        e => storage_error(e),
    }
}

/// The outcome of a failed export to `obs://bucket/...` (`CPS.0103`).
fn upload_failure(bucket: &str, e: cph_objects::ObjectsError) -> Outcome {
    let msg = if e.is_missing() {
        format!("Failed to upload objects to OBS: bucket {bucket} does not exist.")
    } else {
        format!("Failed to upload objects to OBS: {e}.")
    };
    let mut o = failed("CPS.0103", &msg);
    o.execute_msg = o.error_msg.clone();
    o
}

/// Most sets of validation options one spool keeps a verdict for. A job whose options find no
/// room validates the spool for itself (correct, only not shared).
const MAX_VERDICTS: usize = 8;

/// The result of validating a spooled tar in full: the tar ready to apply, or the refusal.
type Verdict = Result<Arc<cph_archive::StagedTar>, Outcome>;

/// A spooled object, shared by every job of this process that needs the same object version at
/// the same time (one fetch serves all the phones of a host); the file is removed when the last
/// job holding it ends.
pub(crate) struct Spooled {
    path: PathBuf,
    filled: tokio::sync::OnceCell<()>,
    /// The verdicts of validating the tar, by the options it was validated under.
    verdicts: std::sync::Mutex<
        Vec<(
            cph_archive::ApplyOptions,
            Arc<tokio::sync::OnceCell<Verdict>>,
        )>,
    >,
}

impl Spooled {
    fn new(path: PathBuf) -> Self {
        Spooled {
            path,
            filled: tokio::sync::OnceCell::new(),
            verdicts: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The spooled tar validated in full under `opts`, or the refusal (`CPS.0260`, naming the
    /// entry). Validation runs once for all the jobs sharing the spool: the first caller reads
    /// the tar while holding `slot` (its read buffer counts among the transfer's), callers
    /// arriving meanwhile wait for it, and later ones take the verdict as it is. A failure to
    /// read the spool file itself is returned but not kept, so the next caller validates again.
    pub(crate) async fn validated(
        &self,
        opts: cph_archive::ApplyOptions,
        slot: &TransferSlot,
    ) -> Result<Arc<cph_archive::StagedTar>, Outcome> {
        let cell = {
            let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
            match verdicts.iter().find(|(o, _)| *o == opts) {
                Some((_, cell)) => cell.clone(),
                None => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    if verdicts.len() < MAX_VERDICTS {
                        verdicts.push((opts.clone(), cell.clone()));
                    }
                    cell
                }
            }
        };
        let verdict = cell
            .get_or_try_init(|| async {
                slot.host.validations.fetch_add(1, Ordering::SeqCst);
                match cph_archive::StagedTar::validate(self.path(), opts).await {
                    Ok(staged) => Ok(Ok(Arc::new(staged))),
                    Err(e) if e.is_archive_fault() => Ok(Err(refused(&e))),
                    Err(e) => Err(refused(&e)),
                }
            })
            .await?;
        verdict.clone()
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A file the job writes itself (an export), removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Service {
    /// Makes objects of the embedded store and the external endpoints of `backends` usable by
    /// data operations. Spool files left by an earlier process are removed.
    pub fn attach_object_store(&self, backends: cph_objects::Backends, spool_dir: PathBuf) {
        if let Ok(entries) = std::fs::read_dir(&spool_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = self.inner.objects.set(Objects {
            backends,
            spool_dir,
            spools: std::sync::Mutex::new(HashMap::new()),
        });
    }

    /// The host whose transfer slots a transfer uses: the host of the phone, or of the server
    /// whose share volume it writes (the host that keeps the volume runs the server's phones).
    /// One host agent serves one host, so its id names the host (the embedded agent is the one
    /// host of this process).
    fn transfer_host(&self, transfer: Transfer<'_>) -> String {
        match transfer {
            Transfer::Phone(_) | Transfer::ShareOf(_) => self.inner.agent.agent_id().to_string(),
        }
    }

    /// Waits for a transfer slot of the host of `transfer`; the job's clock stops meanwhile.
    /// A wait longer than `transfer_wait` fails with `CPS.0042`.
    pub(crate) async fn transfer_slot(
        &self,
        transfer: Transfer<'_>,
    ) -> Result<TransferSlot, Outcome> {
        let name = self.transfer_host(transfer);
        let host = self.inner.transfers.host(&name);
        let permit = match host.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                host.waiting.fetch_add(1, Ordering::SeqCst);
                host.waited.fetch_add(1, Ordering::SeqCst);
                let _waiting = Waiting(&host.waiting);
                let _paused = crate::engine::pause_job_clock();
                let limit = self.config().transfer_wait;
                match tokio::time::timeout(limit, host.slots.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    // The semaphore is never closed.
                    Ok(Err(_)) | Err(_) => {
                        return Err(failed(
                            "CPS.0042",
                            &format!(
                                "System busy: host {name} started no transfer to {transfer} within {} s (at most {} run at once); retry later.",
                                limit.as_secs(),
                                self.inner.transfers.per_host
                            ),
                        ));
                    }
                }
            }
        };
        let now = host.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        host.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Ok(TransferSlot {
            host,
            _permit: permit,
        })
    }

    /// What the transfer slots of each host are doing, by host.
    pub fn transfer_stats(&self) -> BTreeMap<String, TransferStats> {
        let hosts = self
            .inner
            .transfers
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        hosts
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    TransferStats {
                        slots: self.inner.transfers.per_host,
                        in_flight: h.in_flight.load(Ordering::SeqCst),
                        waiting: h.waiting.load(Ordering::SeqCst),
                        peak_in_flight: h.peak_in_flight.load(Ordering::SeqCst),
                        waited: h.waited.load(Ordering::SeqCst),
                        validations: h.validations.load(Ordering::SeqCst),
                    },
                )
            })
            .collect()
    }

    fn objects(&self) -> Result<&Objects, Outcome> {
        self.inner.objects.get().ok_or_else(|| {
            failed(
                "CPS.0323",
                "This api is not supported: no object storage is configured.",
            )
        })
    }

    /// The owner scope of a project's buckets: its account (domain).
    pub(crate) async fn bucket_owner(&self, project_id: &str) -> Result<String, Outcome> {
        let mut c = self.store().read().await.map_err(storage_error)?;
        match cph_store::iam::project_by_id(&mut c, project_id).await {
            Ok(Some(p)) => Ok(p.domain_id),
            Ok(None) => Err(failed("CPS.0001", "No permission to request resources.")),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// A spool file holding `obs://bucket/key` (at most `max` bytes), fetched once for all the
    /// jobs that need the same object version at the same time.
    pub(crate) async fn spool_object(
        &self,
        owner: &str,
        object: &Value,
        max: u64,
        suffix: &str,
    ) -> Result<Arc<Spooled>, Outcome> {
        let objects = self.objects()?;
        let bucket = object["bucket_name"].as_str().unwrap_or("");
        let key = object["object_path"].as_str().unwrap_or("");
        let read_error = |e| read_failure(bucket, key, e);
        let target = objects
            .backends
            .resolve(owner, bucket)
            .await
            .map_err(read_error)?;
        let meta = target.head(key).await.map_err(read_error)?;
        if meta.size > max {
            return Err(failed(
                "CPS.0118",
                &format!(
                    "Parameter: content is invalid: obs://{bucket}/{key} has {} bytes, more than {max}.",
                    meta.size
                ),
            ));
        }
        let version = format!(
            "{owner}\0{}\0{bucket}\0{key}\0{}\0{}\0{suffix}",
            target.location(),
            meta.etag,
            meta.size
        );
        let slot = {
            let mut spools = objects.spools.lock().unwrap_or_else(|e| e.into_inner());
            match spools.get(&version).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    spools.retain(|_, w| w.strong_count() > 0);
                    let s = Arc::new(Spooled::new(
                        objects
                            .spool_dir
                            .join(format!("{}{suffix}", cph_domain::ids::hex_id())),
                    ));
                    spools.insert(version, Arc::downgrade(&s));
                    s
                }
            }
        };
        slot.filled
            .get_or_try_init(|| async {
                tokio::fs::create_dir_all(&objects.spool_dir)
                    .await
                    .map_err(storage_error)?;
                let (got, mut reader) = target.get(key).await.map_err(read_error)?;
                let mut file = tokio::fs::File::create(slot.path())
                    .await
                    .map_err(storage_error)?;
                let copied = tokio::io::copy(&mut (&mut reader).take_max(max + 1), &mut file)
                    .await
                    .map_err(storage_error)?;
                file.flush().await.map_err(storage_error)?;
                if got.etag != meta.etag || copied != got.size {
                    return Err(storage_error(format_args!(
                        "obs://{bucket}/{key} changed while it was read"
                    )));
                }
                Ok(())
            })
            .await?;
        Ok(slot)
    }

    /// Runs an `install`, `install-multiple` or `push` job on a phone.
    pub(crate) async fn execute_object_command(
        &self,
        phone_id: &str,
        project_id: &str,
        payload: &Value,
    ) -> Outcome {
        match self.object_command(phone_id, project_id, payload).await {
            Ok(o) | Err(o) => o,
        }
    }

    async fn object_command(
        &self,
        phone_id: &str,
        project_id: &str,
        payload: &Value,
    ) -> Result<Outcome, Outcome> {
        let command = payload["command"].as_str().unwrap_or("");
        let max = payload["max_object_bytes"].as_u64().unwrap_or(0);
        let owner = self.bucket_owner(project_id).await?;
        let empty = Vec::new();
        let objects = payload
            .get("objects")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        match command {
            "install" | "install-multiple" => {
                let mut spooled = Vec::with_capacity(objects.len());
                for o in objects {
                    spooled.push(self.spool_object(&owner, o, max, ".apk").await?);
                }
                let options: Vec<String> = payload["options"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let args: Vec<&str> = options.iter().map(String::as_str).collect();
                let _slot = self.transfer_slot(Transfer::Phone(phone_id)).await?;
                let client = self.adb_client(phone_id).await?;
                let paths: Vec<&Path> = spooled.iter().map(|s| s.path()).collect();
                let r = if command == "install" && paths.len() == 1 {
                    client.install(paths[0], &args).await
                } else {
                    client.install_multiple(&paths, &args).await
                };
                match r {
                    Ok(reply) => Ok(done(reply.trim_end().to_string())),
                    Err(cph_adb::client::ClientError::Command(reply)) => Err(sub_job_failed(
                        "the app was not installed.",
                        reply.trim_end().to_string(),
                    )),
                    Err(e) => Err(failed(
                        "CPS.0101",
                        &format!("No available device access found: {e}."),
                    )),
                }
            }
            "push" => {
                let Some(o) = objects.first().or_else(|| payload.get("object")) else {
                    return Err(storage_error("the job names no object"));
                };
                let opts = cph_archive::ApplyOptions {
                    max_bytes: max.max(1),
                    ..cph_archive::ApplyOptions::push_file()
                };
                self.apply_archive(phone_id, &owner, o, opts, "unpacked")
                    .await
            }
            "import" => {
                let Some(o) = payload.get("object") else {
                    return Err(storage_error("the job names no object"));
                };
                let max = if max == 0 {
                    DATA_ARCHIVE_MAX_BYTES
                } else {
                    max
                };
                // A restore only touches the phone's data: entries outside /data and /cache
                // refuse the archive.
                let opts = cph_archive::ApplyOptions {
                    max_bytes: max,
                    ..cph_archive::ApplyOptions::phone_data()
                };
                self.apply_archive(phone_id, &owner, o, opts, "restored")
                    .await
            }
            "export" => self.export_data(phone_id, &owner, payload).await,
            other => Err(failed(
                "CPS.0117",
                &format!("Parameter: command is invalid: {other}."),
            )),
        }
    }

    /// Spools the tar `object` of `owner`, waits for a transfer slot of the host of
    /// `transfer`, and takes the spool's verdict under `opts` (validating it in that slot if
    /// no job sharing the spool did yet); a refusal (`CPS.0260`) names the entry. The tar is
    /// ready to apply while the returned [`StagedArchive`] lives (it holds the slot and the
    /// spool file).
    pub(crate) async fn staged_archive(
        &self,
        owner: &str,
        object: &Value,
        opts: cph_archive::ApplyOptions,
        transfer: Transfer<'_>,
    ) -> Result<StagedArchive, Outcome> {
        let spooled = self
            .spool_object(owner, object, opts.max_bytes, ".tar")
            .await?;
        let slot = self.transfer_slot(transfer).await?;
        let tar = spooled.validated(opts, &slot).await?;
        Ok(StagedArchive {
            tar,
            _slot: slot,
            _spooled: spooled,
        })
    }

    /// Spools a tar, waits for a transfer slot of the phone's host, takes the validation
    /// verdict of the spool under `opts` (a refusal writes nothing and names the entry), then
    /// unpacks it onto the phone.
    async fn apply_archive(
        &self,
        phone_id: &str,
        owner: &str,
        object: &Value,
        opts: cph_archive::ApplyOptions,
        done_verb: &str,
    ) -> Result<Outcome, Outcome> {
        let staged = self
            .staged_archive(owner, object, opts, Transfer::Phone(phone_id))
            .await?;
        let client = self.adb_client(phone_id).await?;
        match staged.tar.apply(&client).await {
            Ok(r) => Ok(done(format!(
                "{done_verb} {} files, {} directories, {} links, {} bytes",
                r.files, r.dirs, r.links, r.bytes
            ))),
            Err(e) => Err(sub_job_failed(
                &format!("the archive could not be {done_verb}."),
                e.to_string(),
            )),
        }
    }

    /// BatchExportCloudPhoneData on one phone: the selected files into a tar, spooled, then
    /// streamed to `bucket_name`/`object_path` (the bucket must exist for the job's account,
    /// in the embedded store or on an external endpoint that serves the account).
    async fn export_data(
        &self,
        phone_id: &str,
        owner: &str,
        payload: &Value,
    ) -> Result<Outcome, Outcome> {
        let strings = |k: &str| -> Vec<String> {
            payload[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (include, exclude) = (strings("include_files"), strings("exclude_files"));
        let bucket = payload["object"]["bucket_name"].as_str().unwrap_or("");
        let key = payload["object"]["object_path"].as_str().unwrap_or("");
        let objects = self.objects()?;
        // Fail before any work when the target bucket is not the caller's (or its endpoint
        // cannot be reached).
        let target = objects
            .backends
            .resolve(owner, bucket)
            .await
            .map_err(|e| upload_failure(bucket, e))?;
        target
            .head_bucket()
            .await
            .map_err(|e| upload_failure(bucket, e))?;
        tokio::fs::create_dir_all(&objects.spool_dir)
            .await
            .map_err(storage_error)?;
        let spooled = TempFile(
            objects
                .spool_dir
                .join(format!("{}.export.tar", cph_domain::ids::hex_id())),
        );
        // The slot covers reading the phone; the upload that follows does not touch it.
        let slot = self.transfer_slot(Transfer::Phone(phone_id)).await?;
        let client = self.adb_client(phone_id).await?;
        let file = tokio::fs::File::create(&spooled.0)
            .await
            .map_err(storage_error)?;
        let limits = cph_archive::ExportLimits {
            max_bytes: DATA_ARCHIVE_MAX_BYTES,
            ..cph_archive::ExportLimits::default()
        };
        let report = match cph_archive::export_tar(&client, &include, &exclude, file, limits).await
        {
            Ok(r) => r,
            Err(e) => {
                return Err(sub_job_failed(
                    "the phone's data could not be exported.",
                    e.to_string(),
                ));
            }
        };
        drop(slot);
        let reader = tokio::fs::File::open(&spooled.0)
            .await
            .map_err(storage_error)?;
        let len = reader.metadata().await.map_err(storage_error)?.len();
        match target
            .put_reader(key, reader, len, Some("application/x-tar"))
            .await
        {
            Ok(meta) => Ok(done(format!(
                "exported {} files, {} directories, {} links ({} bytes of file data) to obs://{bucket}/{key} ({} bytes)",
                report.files, report.dirs, report.links, report.bytes, meta.size
            ))),
            Err(e) => Err(upload_failure(bucket, e)),
        }
    }
}

/// A spooled tar validated in full, with the transfer slot it is applied in.
pub(crate) struct StagedArchive {
    pub tar: Arc<cph_archive::StagedTar>,
    _slot: TransferSlot,
    _spooled: Arc<Spooled>,
}

/// The outcome of a tar that failed validation (`CPS.0260`, naming the entry).
fn refused(e: &cph_archive::ArchiveError) -> Outcome {
    sub_job_failed(
        "the archive was refused; nothing was written.",
        e.to_string(),
    )
}

/// Largest archive an export writes or an import reads (the reference's 6 GiB push limit).
pub(crate) const DATA_ARCHIVE_MAX_BYTES: u64 = 6 << 30;

pub(crate) fn done(msg: String) -> Outcome {
    let mut m = msg;
    truncate_utf8(&mut m, crate::adb::MAX_EXECUTE_MSG);
    Outcome {
        status: cph_domain::JobStatus::Succeeded.code(),
        error_code: None,
        error_msg: None,
        execute_msg: Some(m),
    }
}

/// `AsyncRead::take` under a name that does not clash with `std::io::Read::take`.
trait TakeMax: tokio::io::AsyncRead + Sized {
    fn take_max(self, n: u64) -> tokio::io::Take<Self> {
        tokio::io::AsyncReadExt::take(self, n)
    }
}

impl<R: tokio::io::AsyncRead> TakeMax for R {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar archive of regular files.
    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            let mut h = [0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..108].copy_from_slice(b"0000644\0");
            h[108..116].copy_from_slice(b"0000000\0");
            h[116..124].copy_from_slice(b"0000000\0");
            h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
            h[136..148].copy_from_slice(b"14500000000\0");
            h[148..156].copy_from_slice(b"        ");
            h[156] = b'0';
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(512), 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    /// A spool file holding `tar` (removed when the spool is dropped).
    fn spool_of(tar: &[u8]) -> Arc<Spooled> {
        let path =
            std::env::temp_dir().join(format!("cph-objects-{}.tar", cph_domain::ids::hex_id()));
        std::fs::write(&path, tar).unwrap();
        Arc::new(Spooled::new(path))
    }

    fn slot_of(slots: &TransferSlots) -> TransferSlot {
        let host = slots.host("h");
        let permit = host.slots.clone().try_acquire_owned().unwrap();
        host.in_flight.fetch_add(1, Ordering::SeqCst);
        TransferSlot {
            host,
            _permit: permit,
        }
    }

    fn validations(slots: &TransferSlots) -> usize {
        slots.host("h").validations.load(Ordering::SeqCst)
    }

    /// Runs `validated` for `n` jobs at once, each in its own slot.
    async fn validate_at_once(
        spooled: &Arc<Spooled>,
        slots: &Arc<TransferSlots>,
        opts: &cph_archive::ApplyOptions,
        n: usize,
    ) -> Vec<Verdict> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (spooled, slots, opts) = (spooled.clone(), slots.clone(), opts.clone());
                tokio::spawn(async move {
                    let slot = slot_of(&slots);
                    spooled.validated(opts, &slot).await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn jobs_sharing_a_spool_validate_it_once() {
        let data = vec![7u8; 4 << 20];
        let spooled = spool_of(&tar_of(&[("data/a.bin", &data), ("data/b.txt", b"b")]));
        let slots = Arc::new(TransferSlots::new(64));
        let opts = cph_archive::ApplyOptions::phone_data();
        let verdicts = validate_at_once(&spooled, &slots, &opts, 40).await;
        assert_eq!(validations(&slots), 1);
        let first = verdicts[0].as_ref().unwrap().clone();
        assert_eq!(first.summary().files, 2);
        for v in &verdicts {
            assert!(Arc::ptr_eq(v.as_ref().unwrap(), &first));
        }
        // A later job takes the verdict as it is.
        let slot = slot_of(&slots);
        let later = spooled.validated(opts.clone(), &slot).await.unwrap();
        assert!(Arc::ptr_eq(&later, &first));
        assert_eq!(validations(&slots), 1);
        // Other options are another verdict: the push of an app checks under its own.
        let other = cph_archive::ApplyOptions {
            target_dir: Some("/apps/com.example.app".into()),
            ..cph_archive::ApplyOptions::push_file()
        };
        let v = spooled.validated(other.clone(), &slot).await.unwrap();
        assert!(!Arc::ptr_eq(&v, &first));
        spooled.validated(other, &slot).await.unwrap();
        assert_eq!(validations(&slots), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_refusal_is_shared_with_its_code_and_entry() {
        let data = vec![1u8; 2 << 20];
        let spooled = spool_of(&tar_of(&[("data/ok.bin", &data), ("data/../x", b"x")]));
        let slots = Arc::new(TransferSlots::new(64));
        let opts = cph_archive::ApplyOptions::phone_data();
        let verdicts = validate_at_once(&spooled, &slots, &opts, 20).await;
        assert_eq!(validations(&slots), 1);
        for v in &verdicts {
            let o = v.as_ref().unwrap_err();
            assert_eq!(o.error_code.as_deref(), Some("CPS.0260"));
            assert!(
                o.error_msg
                    .as_deref()
                    .unwrap()
                    .contains("the archive was refused"),
                "{o:?}"
            );
            let detail = o.execute_msg.as_deref().unwrap();
            assert!(detail.contains("data/../x"), "{detail}");
        }
        let slot = slot_of(&slots);
        let again = spooled.validated(opts, &slot).await.unwrap_err();
        assert_eq!(
            again.execute_msg,
            verdicts[0].as_ref().unwrap_err().execute_msg
        );
        assert_eq!(validations(&slots), 1);
    }

    #[tokio::test]
    async fn a_spool_that_cannot_be_read_is_validated_again() {
        let spooled = spool_of(&tar_of(&[("data/a", b"a")]));
        let saved = std::fs::read(spooled.path()).unwrap();
        std::fs::remove_file(spooled.path()).unwrap();
        let slots = TransferSlots::new(4);
        let slot = slot_of(&slots);
        let opts = cph_archive::ApplyOptions::phone_data();
        let o = spooled.validated(opts.clone(), &slot).await.unwrap_err();
        assert_eq!(o.error_code.as_deref(), Some("CPS.0260"));
        std::fs::write(spooled.path(), saved).unwrap();
        let staged = spooled.validated(opts, &slot).await.unwrap();
        assert_eq!(staged.summary().files, 1);
        assert_eq!(validations(&slots), 2);
    }

    #[tokio::test]
    async fn options_beyond_the_kept_verdicts_are_validated_each_time() {
        let spooled = spool_of(&tar_of(&[("a.apk", b"a")]));
        let slots = TransferSlots::new(4);
        let slot = slot_of(&slots);
        let opts = |i: usize| cph_archive::ApplyOptions {
            target_dir: Some(format!("/apps/com.example.a{i}")),
            ..cph_archive::ApplyOptions::push_file()
        };
        for i in 0..MAX_VERDICTS + 2 {
            spooled.validated(opts(i), &slot).await.unwrap();
        }
        assert_eq!(validations(&slots), MAX_VERDICTS + 2);
        // The first ones are kept; the ones past the limit are not.
        spooled.validated(opts(0), &slot).await.unwrap();
        spooled.validated(opts(MAX_VERDICTS), &slot).await.unwrap();
        assert_eq!(validations(&slots), MAX_VERDICTS + 3);
    }
}
