//! Errors of the object store.

/// A boxed error of a request body stream.
pub type BodyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an object-store operation failed.
///
/// Every variant except [`ObjError::Io`], [`ObjError::Corrupt`] and [`ObjError::Body`] is a
/// client error with a fixed S3 error code ([`ObjError::s3_code`]).
#[derive(Debug, thiserror::Error)]
pub enum ObjError {
    /// The bucket does not exist.
    #[error("the bucket does not exist")]
    NoSuchBucket,
    /// The object does not exist.
    #[error("the object does not exist")]
    NoSuchKey,
    /// The bucket belongs to another project.
    #[error("access denied")]
    AccessDenied,
    /// The bucket name breaks the S3 naming rules.
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    /// The object key is empty or longer than 1024 bytes.
    #[error("invalid object key: {0}")]
    InvalidKey(&'static str),
    /// The bucket name is taken by another project.
    #[error("the bucket name is already taken")]
    BucketAlreadyExists,
    /// The caller's project already owns the bucket.
    #[error("the bucket already exists and is owned by you")]
    BucketAlreadyOwnedByYou,
    /// The bucket still holds objects.
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    /// The project owns the maximum number of buckets.
    #[error("the project owns the maximum number of buckets ({0})")]
    TooManyBuckets(usize),
    /// The object (or part) is larger than the configured maximum.
    #[error("the object is larger than the maximum of {0} bytes")]
    EntityTooLarge(u64),
    /// A multipart part other than the last is smaller than the minimum part size.
    #[error("part {0} is smaller than the minimum part size")]
    EntityTooSmall(i32),
    /// The body does not match its `Content-MD5`, or is shorter or longer than declared.
    #[error("the body does not match its digest or length: {0}")]
    BadDigest(&'static str),
    /// The multipart upload does not exist (or belongs to another key).
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    /// A part named in CompleteMultipartUpload is missing or has another ETag.
    #[error("part {0} was not uploaded or has another ETag")]
    InvalidPart(i32),
    /// The parts of CompleteMultipartUpload are not in ascending order.
    #[error("the parts are not in ascending order")]
    InvalidPartOrder,
    /// A request argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request is not valid as a whole.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request body stream failed (client disconnect, signature or checksum failure).
    #[error("request body: {0}")]
    Body(#[source] BodyError),
    /// A stored file is not in the expected format.
    #[error("corrupt object store data: {0}")]
    Corrupt(String),
    /// A file-system operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ObjError {
    /// The S3 error code this error is reported with.
    #[must_use]
    pub fn s3_code(&self) -> &'static str {
        match self {
            ObjError::NoSuchBucket => "NoSuchBucket",
            ObjError::NoSuchKey => "NoSuchKey",
            ObjError::AccessDenied => "AccessDenied",
            ObjError::InvalidBucketName(_) => "InvalidBucketName",
            ObjError::InvalidKey(_) => "KeyTooLongError",
            ObjError::BucketAlreadyExists => "BucketAlreadyExists",
            ObjError::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            ObjError::BucketNotEmpty => "BucketNotEmpty",
            ObjError::TooManyBuckets(_) => "TooManyBuckets",
            ObjError::EntityTooLarge(_) => "EntityTooLarge",
            ObjError::EntityTooSmall(_) => "EntityTooSmall",
            ObjError::BadDigest(_) => "BadDigest",
            ObjError::NoSuchUpload => "NoSuchUpload",
            ObjError::InvalidPart(_) => "InvalidPart",
            ObjError::InvalidPartOrder => "InvalidPartOrder",
            ObjError::InvalidArgument(_) => "InvalidArgument",
            ObjError::InvalidRequest(_) => "InvalidRequest",
            ObjError::Body(_) => "IncompleteBody",
            ObjError::Corrupt(_) | ObjError::Io(_) => "InternalError",
        }
    }
}

/// Maps "file not found" to `missing`, keeping other I/O errors.
pub(crate) fn not_found_as(err: std::io::Error, missing: ObjError) -> ObjError {
    if err.kind() == std::io::ErrorKind::NotFound {
        missing
    } else {
        ObjError::Io(err)
    }
}
