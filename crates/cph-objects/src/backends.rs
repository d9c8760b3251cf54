//! Which backend serves `obs://bucket/key` for an account, and the operations on it.
//!
//! Resolution of `(owner, bucket)`, `owner` being the account (domain) id of the caller:
//!
//! 1. a bucket configured by name on an external endpoint is served by that endpoint, and only
//!    to the accounts the endpoint allows (others get [`ObjectsError::NotPermitted`]); the
//!    embedded store is never consulted for it, so no account can shadow it;
//! 2. otherwise the embedded store, when it holds the bucket for this owner;
//! 3. otherwise the default external endpoint, when one is configured and allows the owner;
//! 4. otherwise the bucket is missing ([`ObjectsError::NoSuchBucket`]).
//!
//! Tenancy: an external endpoint's buckets are the operator's, not an account's. An account
//! may use them only when its domain id is listed in the endpoint's `domains`, or `domains`
//! holds `"*"`; an endpoint with no `domains` is usable by no account. Callers report a
//! refused account like a missing bucket, so nothing tells an account about buckets it may
//! not use.

use std::collections::HashMap;
use std::sync::Arc;

use cph_s3::{ObjError, ObjectAttrs, ObjectStore, PutChecks};
use tokio::io::AsyncRead;

use crate::client::{ObjectInfo, S3Client};
use crate::config::{Access, EndpointConfig};
use crate::error::{ConfigError, ObjectsError};

/// A reader of an object's bytes, from whichever backend holds it.
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

/// An external endpoint with its access rule.
#[derive(Debug)]
struct External {
    client: S3Client,
    access: Access,
}

/// The object storage backends of the server: the embedded store and the configured external
/// endpoints. Cheap to share (`Arc` it); immutable once built.
#[derive(Debug)]
pub struct Backends {
    embedded: Option<ObjectStore>,
    externals: Vec<Arc<External>>,
    by_bucket: HashMap<String, usize>,
    default: Option<usize>,
}

/// Where one bucket resolved to; its operations go to that backend.
#[derive(Debug)]
pub struct Target<'a> {
    backend: Backend<'a>,
    owner: String,
    bucket: String,
}

#[derive(Debug)]
enum Backend<'a> {
    Embedded(&'a ObjectStore),
    External(&'a External),
}

/// What a configured endpoint looks like in logs (no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSummary {
    /// Host and port.
    pub host: String,
    /// Buckets configured by name.
    pub buckets: Vec<String>,
    /// Whether it is the default endpoint.
    pub default: bool,
    /// `"*"` or the number of allowed accounts, for display.
    pub domains: String,
    /// Whether requests use virtual-hosted style.
    pub virtual_hosted: bool,
}

impl Backends {
    /// The backends: the embedded store (if any) and `external` endpoints. Fails when an
    /// endpoint is unusable, a bucket is configured twice or more than one endpoint is the
    /// default.
    pub fn new(
        embedded: Option<ObjectStore>,
        external: &[EndpointConfig],
    ) -> Result<Backends, ConfigError> {
        let mut externals = Vec::with_capacity(external.len());
        let mut by_bucket = HashMap::new();
        let mut default = None;
        for (i, e) in external.iter().enumerate() {
            let client = S3Client::new(&e.client_config())?;
            let access = e.access()?;
            if !e.default && e.buckets.is_empty() {
                return Err(ConfigError(format!(
                    "endpoint {}: name its buckets or make it the default",
                    e.endpoint
                )));
            }
            for b in &e.buckets {
                cph_s3::names::validate_bucket_name(b)
                    .map_err(|err| ConfigError(format!("endpoint {}: {err}", e.endpoint)))?;
                if by_bucket.insert(b.clone(), i).is_some() {
                    return Err(ConfigError(format!(
                        "bucket {b} is configured for more than one endpoint"
                    )));
                }
            }
            if e.default {
                if default.is_some() {
                    return Err(ConfigError(
                        "more than one external endpoint is the default".into(),
                    ));
                }
                default = Some(i);
            }
            externals.push(Arc::new(External { client, access }));
        }
        Ok(Backends {
            embedded,
            externals,
            by_bucket,
            default,
        })
    }

    /// Only the embedded store.
    #[must_use]
    pub fn embedded_only(store: ObjectStore) -> Backends {
        Backends {
            embedded: Some(store),
            externals: Vec::new(),
            by_bucket: HashMap::new(),
            default: None,
        }
    }

    /// The external endpoints, for start-up logs.
    #[must_use]
    pub fn summaries(&self) -> Vec<EndpointSummary> {
        self.externals
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut buckets: Vec<String> = self
                    .by_bucket
                    .iter()
                    .filter(|&(_, &j)| j == i)
                    .map(|(b, _)| b.clone())
                    .collect();
                buckets.sort();
                EndpointSummary {
                    host: e.client.host().to_owned(),
                    buckets,
                    default: self.default == Some(i),
                    domains: match &e.access {
                        Access::Any => "*".to_owned(),
                        Access::Only(ids) => format!("{} account(s)", ids.len()),
                    },
                    virtual_hosted: e.client.virtual_hosted(),
                }
            })
            .collect()
    }

    /// The backend of `bucket` for the account `owner` (see the module documentation).
    pub async fn resolve(&self, owner: &str, bucket: &str) -> Result<Target<'_>, ObjectsError> {
        let target = |backend| Target {
            backend,
            owner: owner.to_owned(),
            bucket: bucket.to_owned(),
        };
        if let Some(&i) = self.by_bucket.get(bucket) {
            let e = &self.externals[i];
            return if e.access.allows(owner) {
                Ok(target(Backend::External(e)))
            } else {
                Err(ObjectsError::NotPermitted)
            };
        }
        if let Some(store) = &self.embedded {
            match store.head_bucket(owner, bucket).await {
                Ok(_) => return Ok(target(Backend::Embedded(store))),
                Err(
                    ObjError::NoSuchBucket
                    | ObjError::AccessDenied
                    | ObjError::InvalidBucketName(_),
                ) => {}
                Err(e) => return Err(ObjectsError::Embedded(e)),
            }
        }
        match self.default.map(|i| &self.externals[i]) {
            Some(e) if e.access.allows(owner) => Ok(target(Backend::External(e))),
            _ => Err(ObjectsError::NoSuchBucket),
        }
    }

    /// The size and ETag of `obs://bucket/key` for `owner`.
    pub async fn head(
        &self,
        owner: &str,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectInfo, ObjectsError> {
        self.resolve(owner, bucket).await?.head(key).await
    }

    /// The size and ETag of `obs://bucket/key` and a reader of all its bytes.
    pub async fn get(
        &self,
        owner: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, ObjectReader), ObjectsError> {
        self.resolve(owner, bucket).await?.get(key).await
    }

    /// Succeeds when `bucket` exists for `owner`.
    pub async fn head_bucket(&self, owner: &str, bucket: &str) -> Result<(), ObjectsError> {
        self.resolve(owner, bucket).await?.head_bucket().await
    }

    /// Stores exactly `len` bytes of `reader` at `obs://bucket/key`.
    pub async fn put_reader<R>(
        &self,
        owner: &str,
        bucket: &str,
        key: &str,
        reader: R,
        len: u64,
        content_type: Option<&str>,
    ) -> Result<ObjectInfo, ObjectsError>
    where
        R: AsyncRead + Send + Unpin,
    {
        self.resolve(owner, bucket)
            .await?
            .put_reader(key, reader, len, content_type)
            .await
    }
}

impl Target<'_> {
    /// `embedded`, or the external endpoint's host and port (for messages; no credentials).
    #[must_use]
    pub fn location(&self) -> &str {
        match &self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::External(e) => e.client.host(),
        }
    }

    /// Whether an external endpoint serves the bucket.
    #[must_use]
    pub fn is_external(&self) -> bool {
        matches!(self.backend, Backend::External(_))
    }

    /// The bucket's name.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Succeeds when the bucket exists (for an external endpoint: and its credentials may
    /// use it).
    pub async fn head_bucket(&self) -> Result<(), ObjectsError> {
        match &self.backend {
            Backend::Embedded(store) => {
                store.head_bucket(&self.owner, &self.bucket).await?;
                Ok(())
            }
            Backend::External(e) => Ok(e.client.head_bucket(&self.bucket).await?),
        }
    }

    /// The size and ETag of `key`.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, ObjectsError> {
        match &self.backend {
            Backend::Embedded(store) => {
                let m = store.head(&self.owner, &self.bucket, key).await?;
                Ok(ObjectInfo {
                    size: m.size,
                    etag: m.etag,
                })
            }
            Backend::External(e) => Ok(e.client.head_object(&self.bucket, key).await?),
        }
    }

    /// The size and ETag of `key` and a reader of all its bytes.
    pub async fn get(&self, key: &str) -> Result<(ObjectInfo, ObjectReader), ObjectsError> {
        match &self.backend {
            Backend::Embedded(store) => {
                let (m, r) = store.get(&self.owner, &self.bucket, key).await?;
                Ok((
                    ObjectInfo {
                        size: m.size,
                        etag: m.etag,
                    },
                    Box::new(r),
                ))
            }
            Backend::External(e) => {
                let (info, r) = e.client.get_object(&self.bucket, key).await?;
                Ok((info, Box::new(r)))
            }
        }
    }

    /// Stores exactly `len` bytes of `reader` at `key`; a reader that ends early or goes on
    /// fails the upload, and the previous object (if any) stays.
    pub async fn put_reader<R>(
        &self,
        key: &str,
        mut reader: R,
        len: u64,
        content_type: Option<&str>,
    ) -> Result<ObjectInfo, ObjectsError>
    where
        R: AsyncRead + Send + Unpin,
    {
        match &self.backend {
            Backend::Embedded(store) => {
                let attrs = ObjectAttrs {
                    content_type: content_type.map(str::to_owned),
                    ..ObjectAttrs::default()
                };
                let checks = PutChecks {
                    expected_len: Some(len),
                    ..PutChecks::default()
                };
                let body = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024);
                let m = store
                    .put_stream(&self.owner, &self.bucket, key, attrs, checks, body)
                    .await?;
                Ok(ObjectInfo {
                    size: m.size,
                    etag: m.etag,
                })
            }
            Backend::External(e) => Ok(e
                .client
                .put_object(&self.bucket, key, &mut reader, len, content_type)
                .await?),
        }
    }
}
