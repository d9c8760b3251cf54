//! The object store: buckets, objects and multipart uploads as files under one root directory.
//!
//! Layout:
//!
//! ```text
//! <root>/.tmp/                                  temporary files, renamed into place on success
//! <root>/<bucket>/.cph-bucket.json              owner project, creator, creation time
//! <root>/<bucket>/objects/<hex key path>.o      object data + metadata trailer (see `format`)
//! <root>/<bucket>/uploads/<upload id>/upload.json, part-NNNNN
//! ```
//!
//! Every write streams into a file under `.tmp` and is published with one `rename`, so readers
//! see either the old or the new object, never a partial one. Publishing takes a shared lock
//! that bucket creation and deletion take exclusively, so nothing lands in a bucket that is
//! being deleted. Nothing holds a whole object in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use crate::S3Config;
use crate::error::{BodyError, ObjError, not_found_as};
use crate::format::{self, ObjectAttrs, ObjectMeta};
use crate::names::{self, decode_key, file_component, is_dir_component, key_to_rel_path};

const BUCKET_META: &str = ".cph-bucket.json";
const OBJECTS_DIR: &str = "objects";
const UPLOADS_DIR: &str = "uploads";
const UPLOAD_META: &str = "upload.json";
const TMP_DIR: &str = ".tmp";
/// Temporary files older than this are left over from a stopped process and are removed.
const STALE_TMP_AGE: Duration = Duration::from_secs(24 * 3600);
/// Buffer of streaming writes and of copies.
const IO_BUF: usize = 256 * 1024;
/// Largest part number of a multipart upload (the S3 limit).
pub const MAX_PART_NUMBER: i32 = 10_000;
/// Largest page of a listing (the S3 limit).
pub const MAX_LIST_KEYS: usize = 1000;
/// Publishing a file is retried this often when a concurrent delete removes its directory.
const RENAME_ATTEMPTS: usize = 4;

/// A bucket as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// The bucket name.
    pub name: String,
    /// The project that owns the bucket.
    pub project_id: String,
    /// When the bucket was created.
    pub created: SystemTime,
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Only keys starting with this prefix.
    pub prefix: String,
    /// Keys whose part after the prefix contains the delimiter are rolled up into one common
    /// prefix (ending with the delimiter). Empty means none.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) after this one.
    pub start_after: Option<String>,
    /// At most this many keys and common prefixes (capped at [`MAX_LIST_KEYS`]).
    pub max_keys: usize,
}

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct ListedObject {
    /// The object key.
    pub key: String,
    /// Its metadata.
    pub meta: ObjectMeta,
}

/// One page of a listing, in key order.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The objects.
    pub objects: Vec<ListedObject>,
    /// The common prefixes (when a delimiter was given).
    pub common_prefixes: Vec<String>,
    /// Whether more keys follow.
    pub is_truncated: bool,
    /// When truncated, the `start_after` of the next page (the last key or common prefix).
    pub next_start_after: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    /// The upload id.
    pub upload_id: String,
    /// The key the object will have.
    pub key: String,
    /// When the upload was created.
    pub initiated: SystemTime,
}

/// What a listing of multipart uploads asks for.
#[derive(Debug, Clone, Default)]
pub struct UploadsRequest {
    /// Only uploads of keys starting with this prefix.
    pub prefix: String,
    /// Keys whose part after the prefix contains the delimiter are rolled up into one common
    /// prefix (ending with the delimiter). Empty means none.
    pub delimiter: Option<String>,
    /// Only uploads of keys after this one (and, with `upload_id_marker`, uploads of this key
    /// with a greater upload id).
    pub key_marker: Option<String>,
    /// With `key_marker`: the last upload id of the previous page.
    pub upload_id_marker: Option<String>,
    /// At most this many uploads and common prefixes (capped at [`MAX_LIST_KEYS`]).
    pub max_uploads: usize,
}

/// One page of [`ObjectStore::list_uploads_page`].
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    /// The uploads, by key and then upload id.
    pub uploads: Vec<UploadInfo>,
    /// The common prefixes (when a delimiter was given).
    pub common_prefixes: Vec<String>,
    /// Whether more uploads follow.
    pub is_truncated: bool,
    /// When truncated, the key marker of the next page (the last key or common prefix).
    pub next_key_marker: Option<String>,
    /// When truncated after an upload, the upload-id marker of the next page.
    pub next_upload_id_marker: Option<String>,
}

/// An uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The part number (1..=10000).
    pub part_number: i32,
    /// MD5 of the part in hex.
    pub etag: String,
    /// Length in bytes.
    pub size: u64,
    /// When the part was uploaded.
    pub last_modified: SystemTime,
}

/// One page of [`ObjectStore::list_parts`].
#[derive(Debug, Clone, Default)]
pub struct PartsPage {
    /// The parts in ascending order.
    pub parts: Vec<PartInfo>,
    /// Whether more parts follow.
    pub is_truncated: bool,
    /// When truncated, the part-number marker of the next page.
    pub next_marker: Option<i32>,
}

/// Checks a write may make against its body.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutChecks {
    /// The declared length (`Content-Length`): the body must have exactly this many bytes.
    pub expected_len: Option<u64>,
    /// The declared MD5 (`Content-MD5`): the body must have this digest.
    pub content_md5: Option<[u8; 16]>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BucketMeta {
    project_id: String,
    user_id: String,
    created_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct UploadMeta {
    key: String,
    project_id: String,
    user_id: String,
    initiated_ms: u64,
    #[serde(default)]
    attrs: ObjectAttrs,
}

/// Limits the store enforces.
#[derive(Debug, Clone)]
struct Limits {
    max_object_bytes: u64,
    max_buckets_per_project: usize,
    min_part_bytes: u64,
}

struct Inner {
    root: PathBuf,
    tmp: PathBuf,
    region: String,
    limits: Limits,
    /// Shared by publishing renames, exclusive for bucket creation and deletion.
    publish: tokio::sync::RwLock<()>,
}

/// Buckets and objects of all projects, stored under one directory. Cheap to clone; clones
/// share state, and one store should serve a root directory (the HTTP endpoint and the control
/// plane's jobs use clones of the same store).
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

/// A bucket that exists and belongs to the caller's project.
struct OwnedBucket {
    dir: PathBuf,
    meta: BucketMeta,
}

impl OwnedBucket {
    fn objects(&self) -> PathBuf {
        self.dir.join(OBJECTS_DIR)
    }
    fn uploads(&self) -> PathBuf {
        self.dir.join(UPLOADS_DIR)
    }
}

/// A temporary file that is removed unless it was published.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    fn new(tmp_dir: &Path, what: &str) -> Self {
        let name = format!("{what}-{}-{}", std::process::id(), random_hex(16));
        Self {
            path: tmp_dir.join(name),
            armed: true,
        }
    }
}

impl TempFile {
    /// Renames the file to `dest`; from then on it is no longer removed.
    fn rename_to(&mut self, dest: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// An upload id: 32 hex digits, the first 12 the start time in milliseconds, so the ids of
/// one key sort in the order their uploads were started.
fn new_upload_id(initiated: SystemTime) -> String {
    let ms = format::to_millis(initiated) & 0xffff_ffff_ffff;
    format!("{ms:012x}{}", random_hex(10))
}

/// Runs blocking file-system work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ObjError> + Send + 'static,
) -> Result<T, ObjError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ObjError::Io(std::io::Error::other(format!("blocking task failed: {e}"))))?
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, max: u64) -> Result<T, std::io::Error> {
    let file = File::open(path)?;
    let mut buf = Vec::new();
    file.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "{} is too large",
            path.display()
        )));
    }
    serde_json::from_slice(&buf).map_err(std::io::Error::other)
}

fn write_json_sync(path: &Path, value: &impl Serialize) -> Result<(), ObjError> {
    let bytes = serde_json::to_vec(value).map_err(|e| ObjError::Corrupt(e.to_string()))?;
    let mut f = File::create(path)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(())
}

fn part_file_name(part_number: i32) -> String {
    format!("part-{part_number:05}")
}

fn parse_part_file_name(name: &str) -> Option<i32> {
    let n = name.strip_prefix("part-")?;
    if n.len() != 5 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| (1..=MAX_PART_NUMBER).contains(n))
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// ETag values are compared without quotes or a weak marker.
pub(crate) fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

/// Publishes `tmp` at `dest`, creating parent directories; retried when a concurrent delete
/// removes an emptied parent directory in between.
fn publish_sync(tmp: &mut TempFile, dest: &Path) -> Result<(), ObjError> {
    let parent = dest
        .parent()
        .ok_or_else(|| ObjError::Corrupt("destination without parent".into()))?;
    let mut last = None;
    for _ in 0..RENAME_ATTEMPTS {
        std::fs::create_dir_all(parent)?;
        match tmp.rename_to(dest) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(|| ObjError::Corrupt("rename failed".into()), ObjError::Io))
}

impl ObjectStore {
    /// Opens (creating if needed) a store under `root` with the default limits of
    /// [`S3Config::new`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ObjError> {
        Self::with_config(&S3Config::new(root))
    }

    /// Opens (creating if needed) a store with the root and limits of `config`. Temporary
    /// files left by a stopped process (older than a day) are removed.
    pub fn with_config(config: &S3Config) -> Result<Self, ObjError> {
        let root = config.root.clone();
        let tmp = root.join(TMP_DIR);
        std::fs::create_dir_all(&tmp)?;
        let store = Self {
            inner: Arc::new(Inner {
                root,
                tmp,
                region: config.region.clone(),
                limits: Limits {
                    max_object_bytes: config.max_object_bytes,
                    max_buckets_per_project: config.max_buckets_per_project,
                    min_part_bytes: config.min_part_bytes,
                },
                publish: tokio::sync::RwLock::new(()),
            }),
        };
        store.remove_stale_tmp();
        Ok(store)
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The region buckets report as their location.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// The largest object (and part) the store accepts, in bytes.
    #[must_use]
    pub fn max_object_bytes(&self) -> u64 {
        self.inner.limits.max_object_bytes
    }

    fn remove_stale_tmp(&self) {
        let Ok(entries) = std::fs::read_dir(&self.inner.tmp) else {
            return;
        };
        let cutoff = SystemTime::now()
            .checked_sub(STALE_TMP_AGE)
            .unwrap_or(UNIX_EPOCH);
        for entry in entries.flatten() {
            let Ok(md) = entry.metadata() else { continue };
            if md.modified().is_ok_and(|m| m < cutoff) {
                let path = entry.path();
                let result = if md.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                if let Err(e) = result {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove stale temporary file");
                }
            }
        }
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, ObjError> {
        names::validate_bucket_name(bucket)?;
        Ok(self.inner.root.join(bucket))
    }

    /// Reads a bucket's metadata; `Ok(None)` when it does not exist.
    async fn read_bucket(&self, bucket: &str) -> Result<Option<(PathBuf, BucketMeta)>, ObjError> {
        let dir = self.bucket_dir(bucket)?;
        let path = dir.join(BUCKET_META);
        let meta = blocking(move || match read_json::<BucketMeta>(&path, 64 * 1024) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ObjError::Corrupt(format!("{}: {e}", path.display()))),
        })
        .await?;
        Ok(meta.map(|m| (dir, m)))
    }

    /// The bucket, when it exists and belongs to `project_id`.
    async fn owned(&self, project_id: &str, bucket: &str) -> Result<OwnedBucket, ObjError> {
        match self.read_bucket(bucket).await? {
            None => Err(ObjError::NoSuchBucket),
            Some((_, meta)) if meta.project_id != project_id => Err(ObjError::AccessDenied),
            Some((dir, meta)) => Ok(OwnedBucket { dir, meta }),
        }
    }

    // ---- buckets --------------------------------------------------------------------------

    /// Creates a bucket owned by `project_id`. Names are global: a name taken by another
    /// project gives [`ObjError::BucketAlreadyExists`], one of the same project
    /// [`ObjError::BucketAlreadyOwnedByYou`].
    pub async fn create_bucket(
        &self,
        project_id: &str,
        user_id: &str,
        bucket: &str,
    ) -> Result<(), ObjError> {
        let dir = self.bucket_dir(bucket)?;
        let _guard = self.inner.publish.write().await;
        if let Some((_, meta)) = self.read_bucket(bucket).await? {
            return Err(if meta.project_id == project_id {
                ObjError::BucketAlreadyOwnedByYou
            } else {
                ObjError::BucketAlreadyExists
            });
        }
        let max = self.inner.limits.max_buckets_per_project;
        if self.list_buckets(project_id).await?.len() >= max {
            return Err(ObjError::TooManyBuckets(max));
        }
        let meta = BucketMeta {
            project_id: project_id.to_owned(),
            user_id: user_id.to_owned(),
            created_ms: format::to_millis(SystemTime::now()),
        };
        let staging = self.inner.tmp.join(format!("bucket-{}", random_hex(16)));
        blocking(move || {
            let result = (|| {
                std::fs::create_dir(&staging)?;
                std::fs::create_dir(staging.join(OBJECTS_DIR))?;
                std::fs::create_dir(staging.join(UPLOADS_DIR))?;
                write_json_sync(&staging.join(BUCKET_META), &meta)?;
                // A rename onto an existing (non-empty) bucket directory fails: creation is atomic.
                match std::fs::rename(&staging, &dir) {
                    Ok(()) => Ok(()),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::DirectoryNotEmpty
                            || e.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        Err(ObjError::BucketAlreadyExists)
                    }
                    Err(e) => Err(e.into()),
                }
            })();
            if result.is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
            result
        })
        .await
    }

    /// Deletes an empty bucket (multipart uploads in progress are discarded with it).
    pub async fn delete_bucket(&self, project_id: &str, bucket: &str) -> Result<(), ObjError> {
        let trash = self.inner.tmp.join(format!("trash-{}", random_hex(16)));
        {
            let _guard = self.inner.publish.write().await;
            let b = self.owned(project_id, bucket).await?;
            let trash = trash.clone();
            blocking(move || {
                match std::fs::read_dir(b.objects()) {
                    Ok(mut entries) => {
                        if entries.next().is_some() {
                            return Err(ObjError::BucketNotEmpty);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
                std::fs::rename(&b.dir, &trash)?;
                Ok(())
            })
            .await?;
        }
        // The name is free now; the files (parts of abandoned uploads) go without the lock.
        blocking(move || {
            if let Err(e) = std::fs::remove_dir_all(&trash) {
                tracing::warn!(path = %trash.display(), error = %e, "cannot remove a deleted bucket's files");
            }
            Ok(())
        })
        .await
    }

    /// The bucket, when it exists and belongs to `project_id`.
    pub async fn head_bucket(
        &self,
        project_id: &str,
        bucket: &str,
    ) -> Result<BucketInfo, ObjError> {
        let b = self.owned(project_id, bucket).await?;
        Ok(BucketInfo {
            name: bucket.to_owned(),
            project_id: b.meta.project_id,
            created: UNIX_EPOCH + Duration::from_millis(b.meta.created_ms),
        })
    }

    /// The buckets of `project_id`, by name.
    pub async fn list_buckets(&self, project_id: &str) -> Result<Vec<BucketInfo>, ObjError> {
        let root = self.inner.root.clone();
        let project_id = project_id.to_owned();
        blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&root)? {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if names::validate_bucket_name(&name).is_err() {
                    continue;
                }
                let meta = match read_json::<BucketMeta>(&entry.path().join(BUCKET_META), 64 * 1024)
                {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        tracing::warn!(bucket = %name, error = %e, "unreadable bucket metadata");
                        continue;
                    }
                };
                if meta.project_id == project_id {
                    out.push(BucketInfo {
                        name,
                        project_id: meta.project_id,
                        created: UNIX_EPOCH + Duration::from_millis(meta.created_ms),
                    });
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    // ---- objects --------------------------------------------------------------------------

    async fn open_object(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, File), ObjError> {
        names::validate_key(key)?;
        let b = self.owned(project_id, bucket).await?;
        let path = b.objects().join(key_to_rel_path(key));
        blocking(move || {
            let mut file = File::open(&path).map_err(|e| not_found_as(e, ObjError::NoSuchKey))?;
            let meta = format::read_meta(&mut file)?;
            Ok((meta, file))
        })
        .await
    }

    /// The metadata of an object.
    pub async fn head(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectMeta, ObjError> {
        Ok(self.open_object(project_id, bucket, key).await?.0)
    }

    /// An object's metadata and a reader of all its bytes.
    ///
    /// A missing bucket gives [`ObjError::NoSuchBucket`], a missing key [`ObjError::NoSuchKey`],
    /// a bucket of another project [`ObjError::AccessDenied`].
    pub async fn get(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, ObjectReader), ObjError> {
        self.get_range(project_id, bucket, key, None).await
    }

    /// An object's metadata and a reader of the bytes in `range` (all of them for `None`).
    /// The range must lie within the object.
    pub async fn get_range(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<(ObjectMeta, ObjectReader), ObjError> {
        let (meta, mut file) = self.open_object(project_id, bucket, key).await?;
        let range = range.unwrap_or(0..meta.size);
        if range.start > range.end || range.end > meta.size {
            return Err(ObjError::InvalidArgument("range outside the object".into()));
        }
        file.seek(SeekFrom::Start(range.start))?;
        let len = range.end - range.start;
        let reader = ObjectReader {
            inner: tokio::fs::File::from_std(file).take(len),
            remaining: len,
        };
        Ok((meta, reader))
    }

    /// Streams `body` into a new object (replacing any object with that key) and returns its
    /// metadata. The body goes to a temporary file chunk by chunk and is published with one
    /// rename only when complete and checked.
    pub async fn put_stream<S, E>(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        checks: PutChecks,
        body: S,
    ) -> Result<ObjectMeta, ObjError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        names::validate_key(key)?;
        check_attrs(&attrs)?;
        let b = self.owned(project_id, bucket).await?;
        let (tmp, written) = self.write_stream(body, checks).await?;
        let meta = ObjectMeta {
            size: written.size,
            etag: hex::encode(written.md5),
            last_modified: format::now_millis(),
            attrs,
            parts_count: None,
        };
        let tmp = finish_file(tmp, written.file, &meta).await?;
        self.publish_object(project_id, bucket, &b, key, tmp)
            .await?;
        Ok(meta)
    }

    /// Like [`ObjectStore::put_stream`], reading the body from an [`AsyncRead`].
    pub async fn put_reader<R>(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
        reader: R,
    ) -> Result<ObjectMeta, ObjError>
    where
        R: AsyncRead + Send,
    {
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024);
        self.put_stream(project_id, bucket, key, attrs, PutChecks::default(), stream)
            .await
    }

    /// Streams a body into a temporary file, enforcing the size limit and the checks.
    async fn write_stream<S, E>(
        &self,
        body: S,
        checks: PutChecks,
    ) -> Result<(TempFile, Written), ObjError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        let max = self.inner.limits.max_object_bytes;
        if checks.expected_len.is_some_and(|l| l > max) {
            return Err(ObjError::EntityTooLarge(max));
        }
        let tmp = TempFile::new(&self.inner.tmp, "put");
        let file = tokio::fs::File::create(&tmp.path).await?;
        let mut out = tokio::io::BufWriter::with_capacity(IO_BUF, file);
        let mut md5 = Md5::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ObjError::Body(e.into()))?;
            size = size.saturating_add(chunk.len() as u64);
            if size > max {
                return Err(ObjError::EntityTooLarge(max));
            }
            if checks.expected_len.is_some_and(|l| size > l) {
                return Err(ObjError::BadDigest(
                    "the body is longer than its Content-Length",
                ));
            }
            md5.update(&chunk);
            out.write_all(&chunk).await?;
        }
        if checks.expected_len.is_some_and(|l| size != l) {
            return Err(ObjError::BadDigest(
                "the body is shorter than its Content-Length",
            ));
        }
        let md5: [u8; 16] = md5.finalize().into();
        if checks.content_md5.is_some_and(|want| want != md5) {
            return Err(ObjError::BadDigest(
                "the Content-MD5 does not match the body",
            ));
        }
        out.flush().await?;
        let file = out.into_inner();
        Ok((tmp, Written { file, size, md5 }))
    }

    /// Publishes a finished object file at `key` of the bucket.
    async fn publish_object(
        &self,
        project_id: &str,
        bucket: &str,
        b: &OwnedBucket,
        key: &str,
        mut tmp: TempFile,
    ) -> Result<(), ObjError> {
        let _guard = self.inner.publish.read().await;
        // The bucket may have been deleted (or recreated by another project) meanwhile.
        let now = self.owned(project_id, bucket).await?;
        if now.meta.created_ms != b.meta.created_ms {
            return Err(ObjError::NoSuchBucket);
        }
        let dest = b.objects().join(key_to_rel_path(key));
        blocking(move || publish_sync(&mut tmp, &dest)).await
    }

    /// Deletes an object; deleting a missing key succeeds (S3 semantics).
    pub async fn delete(&self, project_id: &str, bucket: &str, key: &str) -> Result<(), ObjError> {
        names::validate_key(key)?;
        let b = self.owned(project_id, bucket).await?;
        let objects = b.objects();
        let path = objects.join(key_to_rel_path(key));
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            // Remove directories the key emptied (a concurrent write into one retries).
            let mut dir = path.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == objects || !d.starts_with(&objects) || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
            Ok(())
        })
        .await
    }

    /// Copies an object within the caller's project. `attrs` replaces the source's attributes
    /// when given (S3 `x-amz-metadata-directive: REPLACE`); copying an object onto itself needs
    /// new attributes.
    pub async fn copy(
        &self,
        project_id: &str,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        attrs: Option<ObjectAttrs>,
    ) -> Result<ObjectMeta, ObjError> {
        names::validate_key(dst_key)?;
        if src_bucket == dst_bucket && src_key == dst_key && attrs.is_none() {
            return Err(ObjError::InvalidRequest(
                "this copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata"
                    .into(),
            ));
        }
        if let Some(a) = &attrs {
            check_attrs(a)?;
        }
        let dst = self.owned(project_id, dst_bucket).await?;
        let (src_meta, src_file) = self.open_object(project_id, src_bucket, src_key).await?;
        let tmp = TempFile::new(&self.inner.tmp, "copy");
        let size = src_meta.size;
        let attrs = attrs.unwrap_or(src_meta.attrs);
        let (tmp, meta) = blocking(move || {
            let mut out = File::create(&tmp.path)?;
            let mut reader = (&src_file).take(size);
            reader.get_mut().seek(SeekFrom::Start(0))?;
            let mut md5 = Md5::new();
            let mut buf = vec![0u8; IO_BUF];
            let mut copied = 0u64;
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                md5.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                copied += n as u64;
            }
            if copied != size {
                return Err(ObjError::Corrupt(
                    "source object shorter than recorded".into(),
                ));
            }
            let meta = ObjectMeta {
                size,
                etag: hex::encode(md5.finalize()),
                last_modified: format::now_millis(),
                attrs,
                parts_count: None,
            };
            out.write_all(&format::encode_trailer(&meta)?)?;
            out.sync_data()?;
            Ok((tmp, meta))
        })
        .await?;
        self.publish_object(project_id, dst_bucket, &dst, dst_key, tmp)
            .await?;
        Ok(meta)
    }

    /// One page of the bucket's keys in S3 order.
    pub async fn list(
        &self,
        project_id: &str,
        bucket: &str,
        req: &ListRequest,
    ) -> Result<ListPage, ObjError> {
        let b = self.owned(project_id, bucket).await?;
        let objects = b.objects();
        let req = req.clone();
        blocking(move || list_sync(&objects, &req)).await
    }

    // ---- multipart uploads ----------------------------------------------------------------

    /// Starts a multipart upload of `key` and returns its id.
    pub async fn create_upload(
        &self,
        project_id: &str,
        user_id: &str,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<String, ObjError> {
        names::validate_key(key)?;
        check_attrs(&attrs)?;
        let b = self.owned(project_id, bucket).await?;
        let initiated = SystemTime::now();
        let upload_id = new_upload_id(initiated);
        let meta = UploadMeta {
            key: key.to_owned(),
            project_id: project_id.to_owned(),
            user_id: user_id.to_owned(),
            initiated_ms: format::to_millis(initiated),
            attrs,
        };
        let staging = self.inner.tmp.join(format!("upload-{upload_id}"));
        let dest = b.uploads().join(&upload_id);
        let _guard = self.inner.publish.read().await;
        self.owned(project_id, bucket).await?;
        blocking(move || {
            let result = (|| {
                std::fs::create_dir(&staging)?;
                write_json_sync(&staging.join(UPLOAD_META), &meta)?;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::rename(&staging, &dest)?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
            result
        })
        .await?;
        Ok(upload_id)
    }

    /// The directory and metadata of an upload of `key` in the bucket.
    async fn upload(
        &self,
        b: &OwnedBucket,
        key: &str,
        upload_id: &str,
    ) -> Result<(PathBuf, UploadMeta), ObjError> {
        if !valid_upload_id(upload_id) {
            return Err(ObjError::NoSuchUpload);
        }
        let dir = b.uploads().join(upload_id);
        let path = dir.join(UPLOAD_META);
        let meta = blocking(move || {
            read_json::<UploadMeta>(&path, 256 * 1024)
                .map_err(|e| not_found_as(e, ObjError::NoSuchUpload))
        })
        .await?;
        if meta.key != key || meta.project_id != b.meta.project_id {
            return Err(ObjError::NoSuchUpload);
        }
        Ok((dir, meta))
    }

    /// Streams one part of a multipart upload (replacing an earlier part with that number).
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part<S, E>(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i32,
        checks: PutChecks,
        body: S,
    ) -> Result<PartInfo, ObjError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<BodyError>,
    {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(ObjError::InvalidArgument(format!(
                "part number must be an integer between 1 and {MAX_PART_NUMBER}"
            )));
        }
        names::validate_key(key)?;
        let b = self.owned(project_id, bucket).await?;
        let (dir, _) = self.upload(&b, key, upload_id).await?;
        let (tmp, written) = self.write_stream(body, checks).await?;
        let meta = ObjectMeta {
            size: written.size,
            etag: hex::encode(written.md5),
            last_modified: format::now_millis(),
            attrs: ObjectAttrs::default(),
            parts_count: None,
        };
        let mut tmp = finish_file(tmp, written.file, &meta).await?;
        let _guard = self.inner.publish.read().await;
        // The upload may have been completed or aborted meanwhile.
        self.upload(&b, key, upload_id).await?;
        let dest = dir.join(part_file_name(part_number));
        blocking(move || {
            tmp.rename_to(&dest)
                .map_err(|e| not_found_as(e, ObjError::NoSuchUpload))
        })
        .await?;
        Ok(PartInfo {
            part_number,
            etag: meta.etag,
            size: meta.size,
            last_modified: meta.last_modified,
        })
    }

    /// The uploaded parts with numbers above `marker`, at most `max_parts` (≤ 1000).
    #[allow(clippy::too_many_arguments)]
    pub async fn list_parts(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: Option<i32>,
        max_parts: usize,
    ) -> Result<PartsPage, ObjError> {
        let b = self.owned(project_id, bucket).await?;
        let (dir, _) = self.upload(&b, key, upload_id).await?;
        let marker = marker.unwrap_or(0);
        let max_parts = max_parts.min(MAX_LIST_KEYS);
        blocking(move || {
            let mut numbers = Vec::new();
            for entry in
                std::fs::read_dir(&dir).map_err(|e| not_found_as(e, ObjError::NoSuchUpload))?
            {
                let entry = entry?;
                if let Some(n) = entry.file_name().to_str().and_then(parse_part_file_name)
                    && n > marker
                {
                    numbers.push(n);
                }
            }
            numbers.sort_unstable();
            let is_truncated = numbers.len() > max_parts;
            numbers.truncate(max_parts);
            let mut parts = Vec::with_capacity(numbers.len());
            for n in numbers {
                let mut file = match File::open(dir.join(part_file_name(n))) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                let meta = format::read_meta(&mut file)?;
                parts.push(PartInfo {
                    part_number: n,
                    etag: meta.etag,
                    size: meta.size,
                    last_modified: meta.last_modified,
                });
            }
            let next_marker = if is_truncated {
                parts.last().map(|p| p.part_number)
            } else {
                None
            };
            Ok(PartsPage {
                parts,
                is_truncated,
                next_marker,
            })
        })
        .await
    }

    /// Assembles the object from the listed parts (ascending numbers, ETags as returned by
    /// UploadPart) and ends the upload. The parts are concatenated file to file, never through
    /// memory; the ETag is the S3 multipart form `md5(part md5s)-N`.
    pub async fn complete_upload(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<ObjectMeta, ObjError> {
        let b = self.owned(project_id, bucket).await?;
        let (dir, upload) = self.upload(&b, key, upload_id).await?;
        if parts.is_empty() {
            return Err(ObjError::InvalidRequest(
                "you must specify at least one part".into(),
            ));
        }
        if parts.len() > MAX_PART_NUMBER as usize {
            return Err(ObjError::InvalidRequest("too many parts".into()));
        }
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ObjError::InvalidPartOrder);
        }
        let parts: Vec<(i32, String)> = parts
            .iter()
            .map(|(n, e)| (*n, bare_etag(e).to_owned()))
            .collect();
        let limits = self.inner.limits.clone();
        let tmp = TempFile::new(&self.inner.tmp, "complete");
        let attrs = upload.attrs;
        let part_dir = dir.clone();
        let (tmp, meta) = blocking(move || {
            // Check every part before copying anything.
            let mut files = Vec::with_capacity(parts.len());
            let mut total: u64 = 0;
            let mut md5_of_md5s = Md5::new();
            let last = parts.len() - 1;
            for (i, (n, etag)) in parts.iter().enumerate() {
                if !(1..=MAX_PART_NUMBER).contains(n) {
                    return Err(ObjError::InvalidPart(*n));
                }
                let mut file = match File::open(part_dir.join(part_file_name(*n))) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(ObjError::InvalidPart(*n));
                    }
                    Err(e) => return Err(e.into()),
                };
                let meta = format::read_meta(&mut file)?;
                if meta.etag != *etag {
                    return Err(ObjError::InvalidPart(*n));
                }
                if i != last && meta.size < limits.min_part_bytes {
                    return Err(ObjError::EntityTooSmall(*n));
                }
                total = total.saturating_add(meta.size);
                if total > limits.max_object_bytes {
                    return Err(ObjError::EntityTooLarge(limits.max_object_bytes));
                }
                let digest = hex::decode(&meta.etag)
                    .map_err(|_| ObjError::Corrupt("part ETag is not hex".into()))?;
                md5_of_md5s.update(&digest);
                files.push((file, meta.size));
            }
            let mut out = File::create(&tmp.path)?;
            for (file, size) in &files {
                let mut src = file;
                src.seek(SeekFrom::Start(0))?;
                // File-to-file copy: the kernel moves the bytes (copy_file_range where possible).
                let copied = std::io::copy(&mut src.take(*size), &mut out)?;
                if copied != *size {
                    return Err(ObjError::Corrupt("part file shorter than recorded".into()));
                }
            }
            let count = u32::try_from(files.len()).unwrap_or(u32::MAX);
            let meta = ObjectMeta {
                size: total,
                etag: format!("{}-{count}", hex::encode(md5_of_md5s.finalize())),
                last_modified: format::now_millis(),
                attrs,
                parts_count: Some(count),
            };
            out.write_all(&format::encode_trailer(&meta)?)?;
            out.sync_data()?;
            Ok((tmp, meta))
        })
        .await?;
        // Claim the upload so a concurrent completion or abort cannot also use it.
        let claimed = self.inner.tmp.join(format!("done-{}", random_hex(16)));
        {
            let _guard = self.inner.publish.read().await;
            let now = self.owned(project_id, bucket).await?;
            if now.meta.created_ms != b.meta.created_ms {
                return Err(ObjError::NoSuchBucket);
            }
            let claim_from = dir.clone();
            let claim_to = claimed.clone();
            blocking(move || {
                std::fs::rename(&claim_from, &claim_to)
                    .map_err(|e| not_found_as(e, ObjError::NoSuchUpload))
            })
            .await?;
            let dest = b.objects().join(key_to_rel_path(key));
            let mut tmp = tmp;
            let (back_from, back_to) = (claimed.clone(), dir.clone());
            blocking(move || {
                let published = publish_sync(&mut tmp, &dest);
                if published.is_err() {
                    // Give the upload back so the client can retry the completion.
                    let _ = std::fs::rename(&back_from, &back_to);
                }
                published
            })
            .await?;
        }
        blocking(move || {
            if let Err(e) = std::fs::remove_dir_all(&claimed) {
                tracing::warn!(path = %claimed.display(), error = %e, "cannot remove a completed upload's parts");
            }
            Ok(())
        })
        .await?;
        Ok(meta)
    }

    /// Discards a multipart upload and its parts.
    pub async fn abort_upload(
        &self,
        project_id: &str,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), ObjError> {
        let b = self.owned(project_id, bucket).await?;
        let (dir, _) = self.upload(&b, key, upload_id).await?;
        let trash = self.inner.tmp.join(format!("abort-{}", random_hex(16)));
        blocking(move || {
            std::fs::rename(&dir, &trash).map_err(|e| not_found_as(e, ObjError::NoSuchUpload))?;
            std::fs::remove_dir_all(&trash)?;
            Ok(())
        })
        .await
    }

    /// The multipart uploads in progress in the bucket (at most 1000, by key then time).
    pub async fn list_uploads(
        &self,
        project_id: &str,
        bucket: &str,
    ) -> Result<Vec<UploadInfo>, ObjError> {
        let req = UploadsRequest {
            max_uploads: MAX_LIST_KEYS,
            ..UploadsRequest::default()
        };
        Ok(self
            .list_uploads_page(project_id, bucket, &req)
            .await?
            .uploads)
    }

    /// One page of the multipart uploads in progress in the bucket, ordered by key, then by
    /// upload id (which, for uploads of one key, is the order they were started in).
    ///
    /// Every upload of the bucket is looked at, but at most `max_uploads + 1` entries are
    /// held at a time.
    pub async fn list_uploads_page(
        &self,
        project_id: &str,
        bucket: &str,
        req: &UploadsRequest,
    ) -> Result<UploadsPage, ObjError> {
        let b = self.owned(project_id, bucket).await?;
        let uploads = b.uploads();
        let req = req.clone();
        blocking(move || list_uploads_sync(&uploads, &req)).await
    }
}

/// The selection of [`ObjectStore::list_uploads_page`].
fn list_uploads_sync(uploads: &Path, req: &UploadsRequest) -> Result<UploadsPage, ObjError> {
    let max = req.max_uploads.min(MAX_LIST_KEYS);
    if max == 0 {
        return Ok(UploadsPage::default());
    }
    let delimiter = req.delimiter.as_deref().filter(|d| !d.is_empty());
    let key_marker = req.key_marker.as_deref().filter(|m| !m.is_empty());
    // The upload-id marker only counts together with a key marker.
    let id_marker = key_marker.and(req.upload_id_marker.as_deref().filter(|m| !m.is_empty()));
    // (key, upload id, initiated) for uploads; (common prefix, "", 0) for common prefixes.
    let mut best: std::collections::BTreeSet<(String, String, u64)> =
        std::collections::BTreeSet::new();
    let entries = match std::fs::read_dir(uploads) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(UploadsPage::default());
        }
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !valid_upload_id(&id) {
            continue;
        }
        let meta = match read_json::<UploadMeta>(&entry.path().join(UPLOAD_META), 256 * 1024) {
            Ok(m) => m,
            // Completed or aborted meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(upload_id = %id, error = %e, "skipping an unreadable upload in a listing");
                continue;
            }
        };
        let key = meta.key;
        if !key.starts_with(req.prefix.as_str()) {
            continue;
        }
        let item = match delimiter.and_then(|d| {
            key[req.prefix.len()..]
                .find(d)
                .map(|i| key[..req.prefix.len() + i + d.len()].to_owned())
        }) {
            Some(cp) => {
                // A common prefix equal to the marker was the end of an earlier page.
                if key_marker.is_some_and(|m| cp.as_str() <= m) {
                    continue;
                }
                (cp, String::new(), 0)
            }
            None => {
                let after = match key_marker {
                    None => true,
                    Some(m) => {
                        key.as_str() > m || (key == m && id_marker.is_some_and(|i| id.as_str() > i))
                    }
                };
                if !after {
                    continue;
                }
                (key, id, meta.initiated_ms)
            }
        };
        best.insert(item);
        if best.len() > max + 1 {
            best.pop_last();
        }
    }
    let is_truncated = best.len() > max;
    if is_truncated {
        best.pop_last();
    }
    let mut page = UploadsPage {
        is_truncated,
        ..UploadsPage::default()
    };
    if is_truncated && let Some((name, id, _)) = best.last() {
        page.next_key_marker = Some(name.clone());
        page.next_upload_id_marker = (!id.is_empty()).then(|| id.clone());
    }
    for (name, id, initiated_ms) in best {
        if id.is_empty() {
            page.common_prefixes.push(name);
        } else {
            page.uploads.push(UploadInfo {
                upload_id: id,
                key: name,
                initiated: UNIX_EPOCH + Duration::from_millis(initiated_ms),
            });
        }
    }
    Ok(page)
}

/// User metadata is limited to 2 KiB (the S3 limit).
fn check_attrs(attrs: &ObjectAttrs) -> Result<(), ObjError> {
    if attrs.metadata_len() > 2048 {
        return Err(ObjError::InvalidArgument(
            "user metadata must not exceed 2 KiB".into(),
        ));
    }
    Ok(())
}

struct Written {
    file: tokio::fs::File,
    size: u64,
    md5: [u8; 16],
}

/// Appends the trailer to a written temporary file and makes it durable.
async fn finish_file(
    tmp: TempFile,
    mut file: tokio::fs::File,
    meta: &ObjectMeta,
) -> Result<TempFile, ObjError> {
    file.write_all(&format::encode_trailer(meta)?).await?;
    file.flush().await?;
    file.sync_data().await?;
    Ok(tmp)
}

/// Reads the bytes of one object (or a range of it). Holds the file open, so the bytes stay
/// those of the version that was opened even if the object is replaced or deleted meanwhile.
#[derive(Debug)]
pub struct ObjectReader {
    inner: tokio::io::Take<tokio::fs::File>,
    remaining: u64,
}

impl ObjectReader {
    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let had_room = buf.remaining() > 0;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &result {
            let n = (buf.filled().len() - before) as u64;
            if n == 0 && had_room && this.remaining > 0 {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "object file ended early",
                )));
            }
            this.remaining -= n.min(this.remaining);
        }
        result
    }
}

// ---- listing ---------------------------------------------------------------------------------

enum Item {
    Object(ListedObject),
    Prefix(String),
}

struct Walk<'a> {
    prefix: &'a str,
    prefix_hex: String,
    delimiter: Option<&'a str>,
    after: Option<&'a str>,
    after_hex: Option<String>,
    /// Hex of the last common prefix emitted: keys under it are skipped.
    skip_hex: Option<String>,
    limit: usize,
    items: Vec<Item>,
}

fn list_sync(objects: &Path, req: &ListRequest) -> Result<ListPage, ObjError> {
    let max_keys = req.max_keys.min(MAX_LIST_KEYS);
    if max_keys == 0 {
        return Ok(ListPage::default());
    }
    let delimiter = req.delimiter.as_deref().filter(|d| !d.is_empty());
    let after = req.start_after.as_deref().filter(|a| !a.is_empty());
    // A start-after that is itself a common prefix (a previous page ended with it) skips
    // everything under it.
    let skip_hex = match (delimiter, after) {
        (Some(d), Some(a)) if a.starts_with(req.prefix.as_str()) => {
            let rest = &a[req.prefix.len()..];
            rest.find(d)
                .filter(|i| i + d.len() == rest.len())
                .map(|_| hex::encode(a))
        }
        _ => None,
    };
    let mut walk = Walk {
        prefix: &req.prefix,
        prefix_hex: hex::encode(&req.prefix),
        delimiter,
        after,
        after_hex: after.map(hex::encode),
        skip_hex,
        limit: max_keys + 1,
        items: Vec::new(),
    };
    match walk.dir(objects, "") {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut items = walk.items;
    let is_truncated = items.len() > max_keys;
    items.truncate(max_keys);
    let next_start_after = if is_truncated {
        items.last().map(|i| match i {
            Item::Object(o) => o.key.clone(),
            Item::Prefix(p) => p.clone(),
        })
    } else {
        None
    };
    let mut page = ListPage {
        is_truncated,
        next_start_after,
        ..ListPage::default()
    };
    for item in items {
        match item {
            Item::Object(o) => page.objects.push(o),
            Item::Prefix(p) => page.common_prefixes.push(p),
        }
    }
    Ok(page)
}

impl Walk<'_> {
    /// Walks one directory in key order; returns `true` once the page is full.
    fn dir(&mut self, dir: &Path, hex_so_far: &str) -> std::io::Result<bool> {
        let mut entries: Vec<(String, bool)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let ft = entry.file_type()?;
            if ft.is_dir() && is_dir_component(&name) {
                entries.push((name, true));
            } else if ft.is_file()
                && let Some(hex) = file_component(&name)
            {
                entries.push((hex.to_owned(), false));
            }
        }
        // Hex order is key order; a file sorts before a directory with the same digits.
        entries.sort();
        for (part, is_dir) in entries {
            let full = format!("{hex_so_far}{part}");
            if let Some(s) = &self.skip_hex
                && full.starts_with(s.as_str())
            {
                continue;
            }
            if is_dir {
                if !(full.starts_with(&self.prefix_hex) || self.prefix_hex.starts_with(&full)) {
                    continue;
                }
                if let Some(a) = &self.after_hex {
                    let n = full.len().min(a.len());
                    if full[..n] < a[..n] {
                        continue;
                    }
                }
                if self.dir(&dir.join(&part), &full)? {
                    return Ok(true);
                }
            } else {
                if !full.starts_with(&self.prefix_hex) {
                    continue;
                }
                if self
                    .after_hex
                    .as_ref()
                    .is_some_and(|a| full.as_str() <= a.as_str())
                {
                    continue;
                }
                let Some(key) = decode_key(&full) else {
                    continue;
                };
                if self.offer(key, &dir.join(format!("{part}{}", names::OBJECT_SUFFIX))) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Adds a key (or its common prefix); returns `true` once the page is full.
    fn offer(&mut self, key: String, path: &Path) -> bool {
        if let Some(d) = self.delimiter
            && let Some(i) = key[self.prefix.len()..].find(d)
        {
            let cp = key[..self.prefix.len() + i + d.len()].to_owned();
            self.skip_hex = Some(hex::encode(&cp));
            if Some(cp.as_str()) == self.after {
                return false;
            }
            self.items.push(Item::Prefix(cp));
            return self.items.len() >= self.limit;
        }
        let meta = File::open(path)
            .map_err(ObjError::from)
            .and_then(|mut f| format::read_meta(&mut f));
        match meta {
            Ok(meta) => self.items.push(Item::Object(ListedObject { key, meta })),
            Err(ObjError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "skipping an unreadable object in a listing");
                return false;
            }
        }
        self.items.len() >= self.limit
    }
}

/// Parses a `Content-MD5` header value (base64 of 16 bytes).
pub(crate) fn parse_content_md5(value: &str) -> Result<[u8; 16], ObjError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| ObjError::InvalidArgument("Content-MD5 is not base64".into()))?;
    <[u8; 16]>::try_from(bytes.as_slice())
        .map_err(|_| ObjError::InvalidArgument("Content-MD5 is not 16 bytes".into()))
}
