//! Object storage for the data operations: `obs://bucket/key` resolved to the embedded store
//! or to an external S3-compatible endpoint (AWS S3, Huawei OBS, MinIO, Ceph RGW, another
//! `cph serve`), and a streaming S3 client for the external ones.
//!
//! - [`Backends`] holds the embedded [`cph_s3::ObjectStore`] and the configured external
//!   endpoints ([`EndpointConfig`]); [`Backends::resolve`] picks the backend of a bucket for
//!   an account, and [`Target`] runs `head`, `get`, `head_bucket` and `put_reader` on it. The
//!   resolution order and the tenancy rule are documented in [`backends`].
//! - [`S3Client`] talks to one endpoint: SigV4, path or virtual-hosted style, HTTP or HTTPS.
//!
//! Invariants:
//! - Nothing holds a whole object in memory: reads are [`tokio::io::AsyncRead`] streams with
//!   bounded buffers, uploads stream from a reader (multipart above a threshold).
//! - Every network wait has a timeout; errors distinguish a missing bucket, a missing key, a
//!   refused account or credential, an unreachable endpoint and anything else
//!   ([`ObjectsError`], [`S3Error`]).
//! - Secret keys live in [`Secret`], whose `Debug` is redacted; no error or log line carries
//!   a credential.

pub mod backends;
mod body;
mod client;
mod config;
mod error;
mod sigv4;

pub use crate::backends::{Backends, EndpointSummary, ObjectReader, Target};
pub use crate::body::BodyReader;
pub use crate::client::{ObjectInfo, S3Client};
pub use crate::config::{
    Access, ClientConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REQUESTS,
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, DEFAULT_QUEUE_TIMEOUT, DEFAULT_READ_TIMEOUT,
    DEFAULT_REGION, EndpointConfig, MAX_PARTS, MIN_PART_SIZE, Secret,
};
pub use crate::error::{ConfigError, ObjectsError, S3Error};
