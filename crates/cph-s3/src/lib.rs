//! The embedded S3-compatible object storage endpoint.
//!
//! Users upload files with boto3, the aws cli or Huawei's OBS SDK (`esdk-obs-python`, path
//! style, signature `v2` or `v4`); the control plane reads the same objects without HTTP
//! through [`ObjectStore`]. Requests are signed with the same AK/SK as the CPH API: the server
//! supplies them through [`Credentials`].
//!
//! - [`router`] builds the HTTP surface (an [`axum::Router`] that owns the whole path space,
//!   so it runs on its own listener) and [`serve`] runs it until a cancellation token fires.
//! - [`ObjectStore`] is the storage engine: buckets and objects as files under
//!   [`S3Config::root`], streamed in and out, published by atomic renames.
//!
//! Tenancy: a bucket belongs to the project of the principal that created it; every operation
//! on a bucket of another project answers `AccessDenied`. Bucket names are global.
//!
//! Signatures (SigV2 and SigV4, header and presigned forms, aws-chunked payloads) are
//! verified by `s3s`; SigV4 signatures are compared in constant time there, and SigV2
//! signatures are verified in constant time here before `s3s` compares them. This crate adds
//! what clients need around it: OBS SDK v4 requests carry only `Date` (copied into
//! `x-amz-date` before verification), SigV2 header requests must carry a date within 15
//! minutes of the server's clock, and the OBS SDK's `HEAD /?apiversion` probe is answered
//! `200` without `x-obs-api` (so the SDK keeps AWS-compatible signing).

mod backend;
mod error;
mod format;
mod http;
pub mod names;
mod sigv2;
mod store;
mod vhost;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use futures::future::BoxFuture;

pub use crate::error::{BodyError, ObjError};
pub use crate::format::{ObjectAttrs, ObjectMeta};
pub use crate::http::{S3Server, SHUTDOWN_GRACE, ServeLimits, router, serve, serve_with};
pub use crate::names::ObsUrl;
pub use crate::store::{
    BucketInfo, ListPage, ListRequest, ListedObject, MAX_LIST_KEYS, MAX_PART_NUMBER, ObjectReader,
    ObjectStore, PartInfo, PartsPage, PutChecks, UploadInfo, UploadsPage, UploadsRequest,
};

/// Configuration of the endpoint and its store.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Directory holding all buckets and objects (created if missing).
    pub root: PathBuf,
    /// Region reported as bucket location; a `CreateBucket` location constraint must name it.
    pub region: String,
    /// Largest object (and largest part) accepted, in bytes.
    pub max_object_bytes: u64,
    /// Most buckets one project may own.
    pub max_buckets_per_project: usize,
    /// Smallest size of a multipart part other than the last (S3: 5 MiB).
    pub min_part_bytes: u64,
    /// Base domain of virtual-hosted-style requests: `Host: <bucket>.<domain>[:port]` names
    /// the bucket (any other host is path style). `None`: path style only.
    pub virtual_host_domain: Option<String>,
}

impl S3Config {
    /// Defaults: region `cn-north-4`, objects up to 8 GiB, 100 buckets per project, 5 MiB
    /// minimum part size.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            region: "cn-north-4".to_owned(),
            max_object_bytes: 8 << 30,
            max_buckets_per_project: 100,
            min_part_bytes: 5 << 20,
            virtual_host_domain: None,
        }
    }
}

/// The identity an access key stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The secret key that signs the principal's requests.
    pub secret_key: String,
    /// The project the principal acts in; it owns the buckets the principal creates.
    pub project_id: String,
    /// The user (recorded as a bucket's creator).
    pub user_id: String,
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("secret_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// Resolves access keys to principals (the server implements it from its IAM store).
pub trait Credentials: Send + Sync + 'static {
    /// The principal of `access_key`, or `None` for an unknown (or disabled) key.
    fn lookup(&self, access_key: &str) -> BoxFuture<'_, Option<Principal>>;
}

/// A fixed set of access keys, for embedding and tests.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials {
    keys: HashMap<String, Principal>,
}

impl StaticCredentials {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an access key.
    pub fn insert(&mut self, access_key: impl Into<String>, principal: Principal) {
        self.keys.insert(access_key.into(), principal);
    }
}

impl Credentials for StaticCredentials {
    fn lookup(&self, access_key: &str) -> BoxFuture<'_, Option<Principal>> {
        let found = self.keys.get(access_key).cloned();
        Box::pin(async move { found })
    }
}
