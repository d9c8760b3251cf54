//! Errors of the S3 client, of the configuration and of the resolved backends.
//!
//! No error carries a credential: endpoints are named by host (and port) only, and the text an
//! endpoint sends back is reduced to its S3 error code and a bounded message.

use cph_s3::ObjError;

/// Why a request to an S3-compatible endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The bucket does not exist at the endpoint.
    #[error("the bucket does not exist at {host}")]
    NoSuchBucket {
        /// The endpoint's host (and port).
        host: String,
    },
    /// The object does not exist.
    #[error("the object does not exist at {host}")]
    NoSuchKey {
        /// The endpoint's host (and port).
        host: String,
    },
    /// The endpoint refused the request: wrong or unknown credentials, or no permission.
    #[error("{host} refused access ({code})")]
    AccessDenied {
        /// The endpoint's host (and port).
        host: String,
        /// The S3 error code (`AccessDenied`, `SignatureDoesNotMatch`, `InvalidAccessKeyId`,
        /// or `Forbidden` for an answer without a body).
        code: String,
    },
    /// The endpoint could not be reached or stopped answering: DNS, connect, TLS, a closed
    /// connection, or a timeout.
    #[error("{host} is unreachable: {reason}")]
    Unreachable {
        /// The endpoint's host (and port).
        host: String,
        /// What went wrong (no credentials in it).
        reason: String,
    },
    /// The endpoint answered with another error, or with a response this client cannot use.
    #[error("{host} answered HTTP {status} {code}: {message}")]
    Failed {
        /// The endpoint's host (and port).
        host: String,
        /// The HTTP status.
        status: u16,
        /// The S3 error code, when the endpoint sent one.
        code: String,
        /// The endpoint's message (bounded).
        message: String,
    },
    /// The endpoint sent an answer this client cannot use (no `Content-Length`, no upload id,
    /// a response that is too long, …).
    #[error("{host} sent an unusable answer: {reason}")]
    Protocol {
        /// The endpoint's host (and port).
        host: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Reading the local body of an upload failed, or it was shorter or longer than declared.
    #[error("the body to upload: {0}")]
    Body(#[source] std::io::Error),
    /// A bucket name or object key that no request can carry.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("object storage configuration: {0}")]
pub struct ConfigError(pub String);

/// Why an operation on an `obs://bucket/key` failed, whichever backend serves the bucket.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// No backend has the bucket (for this account).
    #[error("the bucket does not exist")]
    NoSuchBucket,
    /// The bucket exists, the object does not.
    #[error("the object does not exist")]
    NoSuchKey,
    /// The bucket is not the account's: another account's bucket of the embedded store, or an
    /// external bucket whose endpoint does not list the account. Callers report it like a
    /// missing bucket, so the existence of others' buckets is not disclosed.
    #[error("the bucket is not available to this account")]
    NotPermitted,
    /// The external endpoint refused the configured credentials (or their access).
    #[error(
        "the object storage endpoint {host} refused the configured credentials ({code}); check the access key, secret key and permissions configured for it"
    )]
    AccessDenied {
        /// The endpoint's host (and port).
        host: String,
        /// The S3 error code.
        code: String,
    },
    /// The external endpoint could not be reached.
    #[error("the object storage endpoint {host} is unreachable: {reason}")]
    Unreachable {
        /// The endpoint's host (and port).
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// The external endpoint answered with another error.
    #[error("the object storage endpoint {host} answered HTTP {status} {code}: {message}")]
    Failed {
        /// The endpoint's host (and port).
        host: String,
        /// The HTTP status.
        status: u16,
        /// The S3 error code.
        code: String,
        /// The endpoint's message.
        message: String,
    },
    /// The external endpoint sent an answer that cannot be used.
    #[error("the object storage endpoint {host} sent an unusable answer: {reason}")]
    Protocol {
        /// The endpoint's host (and port).
        host: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Reading the local body of an upload failed.
    #[error("the body to upload: {0}")]
    Body(#[source] std::io::Error),
    /// The embedded store failed (I/O, a corrupt file, a limit).
    #[error("embedded object storage: {0}")]
    Embedded(#[source] ObjError),
    /// A bucket name or object key that no request can carry.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ObjectsError {
    /// The object (or its bucket) is absent for the caller: report `obs://bucket/key` as
    /// missing.
    #[must_use]
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            ObjectsError::NoSuchBucket | ObjectsError::NoSuchKey | ObjectsError::NotPermitted
        )
    }
}

impl From<S3Error> for ObjectsError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::NoSuchBucket { .. } => ObjectsError::NoSuchBucket,
            S3Error::NoSuchKey { .. } => ObjectsError::NoSuchKey,
            S3Error::AccessDenied { host, code } => ObjectsError::AccessDenied { host, code },
            S3Error::Unreachable { host, reason } => ObjectsError::Unreachable { host, reason },
            S3Error::Failed {
                host,
                status,
                code,
                message,
            } => ObjectsError::Failed {
                host,
                status,
                code,
                message,
            },
            S3Error::Protocol { host, reason } => ObjectsError::Protocol { host, reason },
            S3Error::Body(e) => ObjectsError::Body(e),
            S3Error::InvalidRequest(m) => ObjectsError::InvalidRequest(m),
        }
    }
}

impl From<ObjError> for ObjectsError {
    fn from(e: ObjError) -> Self {
        match e {
            ObjError::NoSuchBucket => ObjectsError::NoSuchBucket,
            ObjError::NoSuchKey => ObjectsError::NoSuchKey,
            ObjError::AccessDenied => ObjectsError::NotPermitted,
            ObjError::InvalidBucketName(m) => ObjectsError::InvalidRequest(m),
            ObjError::InvalidKey(m) => ObjectsError::InvalidRequest(m.to_owned()),
            e => ObjectsError::Embedded(e),
        }
    }
}
