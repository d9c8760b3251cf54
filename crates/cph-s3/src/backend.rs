//! The S3 operations (`s3s::S3`) over [`ObjectStore`], and authentication and tenancy hooks.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{self, ETag, ETagCondition, StreamingBlob, Timestamp};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use subtle::ConstantTimeEq;
use tokio_util::io::ReaderStream;

use crate::store::{
    self, ListRequest, MAX_LIST_KEYS, ObjectReader, ObjectStore, PutChecks, UploadsRequest,
};
use crate::{Credentials, ObjError, ObjectAttrs, ObjectMeta};

/// The authenticated caller, put into the request's extensions by [`Access`].
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    project_id: String,
    user_id: String,
}

/// Supplies secret keys to the signature checks of `s3s`.
pub(crate) struct Auth {
    pub(crate) credentials: Arc<dyn Credentials>,
}

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.credentials.lookup(access_key).await {
            Some(p) => Ok(SecretKey::from(p.secret_key)),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// Requires a verified signature and records the caller's project for the operations.
pub(crate) struct Access {
    pub(crate) credentials: Arc<dyn Credentials>,
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed."));
        };
        let access_key = creds.access_key.clone();
        let verified_with = creds.secret_key.expose().as_bytes().to_vec();
        let Some(p) = self.credentials.lookup(&access_key).await else {
            return Err(s3_error!(InvalidAccessKeyId));
        };
        // The key may have been rotated between verification and this lookup.
        if !bool::from(verified_with.ct_eq(p.secret_key.as_bytes())) {
            return Err(s3_error!(AccessDenied));
        }
        cx.extensions_mut().insert(Caller {
            project_id: p.project_id,
            user_id: p.user_id,
        });
        Ok(())
    }
}

fn caller<T>(req: &S3Request<T>) -> S3Result<Caller> {
    req.extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| s3_error!(AccessDenied))
}

/// Maps a store error to the S3 error a client sees.
fn s3_err(e: ObjError) -> S3Error {
    let code = match &e {
        ObjError::NoSuchBucket => S3ErrorCode::NoSuchBucket,
        ObjError::NoSuchKey => S3ErrorCode::NoSuchKey,
        ObjError::AccessDenied => S3ErrorCode::AccessDenied,
        ObjError::InvalidBucketName(_) => S3ErrorCode::InvalidBucketName,
        ObjError::InvalidKey(_) => S3ErrorCode::KeyTooLongError,
        ObjError::BucketAlreadyExists => S3ErrorCode::BucketAlreadyExists,
        ObjError::BucketAlreadyOwnedByYou => S3ErrorCode::BucketAlreadyOwnedByYou,
        ObjError::BucketNotEmpty => S3ErrorCode::BucketNotEmpty,
        ObjError::TooManyBuckets(_) => S3ErrorCode::TooManyBuckets,
        ObjError::EntityTooLarge(_) => S3ErrorCode::EntityTooLarge,
        ObjError::EntityTooSmall(_) => S3ErrorCode::EntityTooSmall,
        ObjError::BadDigest(_) => S3ErrorCode::BadDigest,
        ObjError::NoSuchUpload => S3ErrorCode::NoSuchUpload,
        ObjError::InvalidPart(_) => S3ErrorCode::InvalidPart,
        ObjError::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
        ObjError::InvalidArgument(_) => S3ErrorCode::InvalidArgument,
        ObjError::InvalidRequest(_) => S3ErrorCode::InvalidRequest,
        ObjError::Body(err) => return body_err(err.as_ref()),
        ObjError::Corrupt(_) | ObjError::Io(_) => {
            tracing::error!(error = %e, "object store failure");
            return S3Error::with_message(
                S3ErrorCode::InternalError,
                "We encountered an internal error. Please try again.",
            );
        }
    };
    S3Error::with_message(code, e.to_string())
}

/// A failed request body: a payload hash or chunk signature that did not verify, or a body
/// that ended early.
fn body_err(err: &(dyn std::error::Error + Send + Sync + 'static)) -> S3Error {
    let text = format!("{err}");
    if text.contains("Sha256Mismatch") {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(http_status(400));
        return e;
    }
    if text.contains("Signature") {
        return S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "A chunk signature does not match.",
        );
    }
    S3Error::with_message(
        S3ErrorCode::IncompleteBody,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
}

fn http_status(code: u16) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::BAD_REQUEST)
}

fn ts(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

fn etag(meta_etag: &str) -> ETag {
    ETag::Strong(meta_etag.to_owned())
}

fn metadata_out(meta: &ObjectMeta) -> Option<dto::Metadata> {
    (!meta.attrs.metadata.is_empty()).then(|| meta.attrs.metadata.clone().into_iter().collect())
}

fn to_offset(t: &Timestamp) -> time::OffsetDateTime {
    t.clone().into()
}

/// Whole seconds: HTTP dates have no fractions.
fn secs(t: SystemTime) -> i64 {
    time::OffsetDateTime::from(t).unix_timestamp()
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and `If-Modified-Since` (RFC
/// 9110 order) against an object.
fn check_conditions(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let modified = secs(meta.last_modified);
    match if_match {
        Some(ETagCondition::Any) => {}
        Some(ETagCondition::ETag(e)) => {
            if e.value() != meta.etag {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ));
            }
        }
        None => {
            if let Some(t) = if_unmodified_since
                && modified > to_offset(t).unix_timestamp()
            {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ));
            }
        }
    }
    match if_none_match {
        Some(ETagCondition::Any) => return Err(s3_error!(NotModified)),
        Some(ETagCondition::ETag(e)) => {
            if e.value() == meta.etag {
                return Err(s3_error!(NotModified));
            }
        }
        None => {
            if let Some(t) = if_modified_since
                && modified <= to_offset(t).unix_timestamp()
            {
                return Err(s3_error!(NotModified));
            }
        }
    }
    Ok(())
}

fn attrs_of(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<dto::Metadata>,
) -> ObjectAttrs {
    ObjectAttrs {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        metadata: metadata.unwrap_or_default().into_iter().collect(),
    }
}

fn put_checks(content_length: Option<i64>, content_md5: Option<&str>) -> S3Result<PutChecks> {
    let content_md5 = match content_md5 {
        Some(v) => Some(store::parse_content_md5(v).map_err(|_| {
            s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid.")
        })?),
        None => None,
    };
    Ok(PutChecks {
        expected_len: content_length.and_then(|l| u64::try_from(l).ok()),
        content_md5,
    })
}

fn empty_body() -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::empty::<Result<Bytes, std::io::Error>>())
}

/// Percent-encodes a key for `encoding-type=url` listings (everything but unreserved
/// characters and `/`).
fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn wants_url_encoding(e: Option<&dto::EncodingType>) -> S3Result<bool> {
    match e {
        None => Ok(false),
        Some(e) if e.as_str().eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(MAX_LIST_KEYS),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok(usize::try_from(n)
            .unwrap_or(MAX_LIST_KEYS)
            .min(MAX_LIST_KEYS)),
    }
}

/// The body of a GET: the file's bytes with their exact length, so the response carries a
/// `Content-Length` rather than chunked encoding.
struct FileBody {
    inner: ReaderStream<ObjectReader>,
    remaining: u64,
}

impl FileBody {
    fn new(reader: ObjectReader) -> Self {
        let remaining = reader.remaining();
        Self {
            inner: ReaderStream::with_capacity(reader, 64 * 1024),
            remaining,
        }
    }
}

impl Stream for FileBody {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.remaining = this.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl ByteStream for FileBody {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(usize::try_from(self.remaining).unwrap_or(usize::MAX))
    }
}

/// The S3 operations.
pub(crate) struct Backend {
    pub(crate) store: ObjectStore,
}

#[async_trait::async_trait]
impl S3 for Backend {
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        if let Some(lc) = input
            .create_bucket_configuration
            .as_ref()
            .and_then(|cfg| cfg.location_constraint.as_ref())
            && !lc.as_str().is_empty()
            && lc.as_str() != self.store.region()
        {
            return Err(s3_error!(
                InvalidLocationConstraint,
                "The specified location-constraint is not valid; this endpoint serves region {}",
                self.store.region()
            ));
        }
        self.store
            .create_bucket(&c.project_id, &c.user_id, &input.bucket)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{}", input.bucket)),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let c = caller(&req)?;
        self.store
            .delete_bucket(&c.project_id, &req.input.bucket)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let c = caller(&req)?;
        self.store
            .head_bucket(&c.project_id, &req.input.bucket)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(self.store.region().to_owned()),
            ..Default::default()
        }))
    }

    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let c = caller(&req)?;
        let prefix = req.input.prefix.unwrap_or_default();
        let buckets = self
            .store
            .list_buckets(&c.project_id)
            .await
            .map_err(s3_err)?;
        let buckets = buckets
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix))
            .map(|b| dto::Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created)),
                bucket_region: Some(self.store.region().to_owned()),
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(dto::Owner {
                id: Some(c.project_id),
                display_name: Some(c.user_id),
            }),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        let c = caller(&req)?;
        self.store
            .head_bucket(&c.project_id, &req.input.bucket)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::GetBucketLocationOutput {
            location_constraint: Some(dto::BucketLocationConstraint::from(
                self.store.region().to_owned(),
            )),
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let checks = put_checks(input.content_length, input.content_md5.as_deref())?;
        let attrs = attrs_of(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.metadata,
        );
        let body = input.body.unwrap_or_else(empty_body);
        let meta = self
            .store
            .put_stream(
                &c.project_id,
                &input.bucket,
                &input.key,
                attrs,
                checks,
                body,
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: Some(etag(&meta.etag)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let meta = self
            .store
            .head(&c.project_id, &input.bucket, &input.key)
            .await
            .map_err(s3_err)?;
        check_conditions(
            &meta,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        )?;
        let range =
            match &input.range {
                None => None,
                Some(r) => Some(r.check(meta.size).map_err(|_| {
                    s3_error!(InvalidRange, "The requested range is not satisfiable")
                })?),
            };
        let (meta, reader) = self
            .store
            .get_range(&c.project_id, &input.bucket, &input.key, range.clone())
            .await
            .map_err(s3_err)?;
        let len = reader.remaining();
        let content_range = range.map(|r| {
            format!(
                "bytes {}-{}/{}",
                r.start,
                r.end.saturating_sub(1),
                meta.size
            )
        });
        Ok(S3Response::new(dto::GetObjectOutput {
            body: Some(StreamingBlob::new(FileBody::new(reader))),
            accept_ranges: Some("bytes".to_owned()),
            content_length: Some(i64::try_from(len).unwrap_or(i64::MAX)),
            content_range,
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(meta.last_modified)),
            metadata: metadata_out(&meta),
            parts_count: meta.parts_count.and_then(|n| i32::try_from(n).ok()),
            content_type: input.response_content_type.or(meta.attrs.content_type),
            content_encoding: input
                .response_content_encoding
                .or(meta.attrs.content_encoding),
            content_disposition: input
                .response_content_disposition
                .or(meta.attrs.content_disposition),
            content_language: input
                .response_content_language
                .or(meta.attrs.content_language),
            cache_control: input.response_cache_control.or(meta.attrs.cache_control),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let meta = self
            .store
            .head(&c.project_id, &input.bucket, &input.key)
            .await
            .map_err(s3_err)?;
        check_conditions(
            &meta,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        )?;
        Ok(S3Response::new(dto::HeadObjectOutput {
            accept_ranges: Some("bytes".to_owned()),
            content_length: Some(i64::try_from(meta.size).unwrap_or(i64::MAX)),
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(meta.last_modified)),
            metadata: metadata_out(&meta),
            parts_count: meta.parts_count.and_then(|n| i32::try_from(n).ok()),
            content_type: meta.attrs.content_type,
            content_encoding: meta.attrs.content_encoding,
            content_disposition: meta.attrs.content_disposition,
            content_language: meta.attrs.content_language,
            cache_control: meta.attrs.cache_control,
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let c = caller(&req)?;
        self.store
            .delete(&c.project_id, &req.input.bucket, &req.input.key)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        if input.delete.objects.len() > MAX_LIST_KEYS {
            return Err(s3_error!(
                MalformedXML,
                "A delete request may name at most 1000 keys"
            ));
        }
        // Fail as a whole for a missing bucket or one of another project.
        self.store
            .head_bucket(&c.project_id, &input.bucket)
            .await
            .map_err(s3_err)?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for obj in input.delete.objects {
            match self
                .store
                .delete(&c.project_id, &input.bucket, &obj.key)
                .await
            {
                Ok(()) => {
                    if !quiet {
                        deleted.push(dto::DeletedObject {
                            key: Some(obj.key),
                            ..Default::default()
                        });
                    }
                }
                Err(e) => {
                    let e = s3_err(e);
                    errors.push(dto::Error {
                        code: Some(e.code().as_str().to_owned()),
                        key: Some(obj.key),
                        message: e.message().map(str::to_owned),
                        version_id: None,
                    });
                }
            }
        }
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let (src_bucket, src_key) = match &input.copy_source {
            dto::CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => {
                if version_id.as_deref().is_some_and(|v| v != "null") {
                    return Err(s3_error!(
                        NotImplemented,
                        "Object versions are not supported"
                    ));
                }
                (bucket.to_string(), key.to_string())
            }
            _ => {
                return Err(s3_error!(
                    NotImplemented,
                    "Only bucket/key copy sources are supported"
                ));
            }
        };
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str().eq_ignore_ascii_case("REPLACE"));
        let src_meta = self
            .store
            .head(&c.project_id, &src_bucket, &src_key)
            .await
            .map_err(s3_err)?;
        check_conditions(
            &src_meta,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
        )
        .map_err(|e| {
            // A failed copy condition is always 412, even for the "not modified" forms.
            if *e.code() == S3ErrorCode::NotModified {
                s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                )
            } else {
                e
            }
        })?;
        let attrs = replace.then(|| {
            attrs_of(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            )
        });
        let meta = self
            .store
            .copy(
                &c.project_id,
                &src_bucket,
                &src_key,
                &input.bucket,
                &input.key,
                attrs,
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: Some(etag(&meta.etag)),
                last_modified: Some(ts(meta.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let url = wants_url_encoding(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        let list = ListRequest {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone(),
            start_after: input.marker.clone(),
            max_keys: max,
        };
        let page = self
            .store
            .list(&c.project_id, &input.bucket, &list)
            .await
            .map_err(s3_err)?;
        let enc = |s: String| if url { url_encode(&s) } else { s };
        Ok(S3Response::new(dto::ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc(list.prefix)),
            marker: Some(enc(input.marker.unwrap_or_default())),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            next_marker: page.next_start_after.map(enc),
            delimiter: input.delimiter.map(enc),
            encoding_type: input.encoding_type,
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|o| object_entry(enc(o.key), &o.meta))
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| dto::CommonPrefix {
                        prefix: Some(enc(p)),
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let c = caller(&req)?;
        let input = req.input;
        let url = wants_url_encoding(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        // The continuation token is the hex of the last key or common prefix of the last page.
        let start_after = match &input.continuation_token {
            Some(token) => Some(
                hex::decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The continuation token provided is incorrect"
                        )
                    })?,
            ),
            None => input.start_after.clone(),
        };
        let list = ListRequest {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone(),
            start_after,
            max_keys: max,
        };
        let page = self
            .store
            .list(&c.project_id, &input.bucket, &list)
            .await
            .map_err(s3_err)?;
        let enc = |s: String| if url { url_encode(&s) } else { s };
        let owner = input.fetch_owner.unwrap_or(false).then(|| dto::Owner {
            id: Some(c.project_id.clone()),
            display_name: None,
        });
        let key_count = page.objects.len() + page.common_prefixes.len();
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc(list.prefix)),
            max_keys: Some(i32::try_from(max).unwrap_or(1000)),
            key_count: Some(i32::try_from(key_count).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next_start_after.map(hex::encode),
            is_truncated: Some(page.is_truncated),
            delimiter: input.delimiter.map(enc),
            encoding_type: input.encoding_type,
            start_after: input.start_after.map(enc),
            contents: Some(
                page.objects
                    .into_iter()
                    .map(|o| {
                        let mut entry = object_entry(enc(o.key), &o.meta);
                        entry.owner = owner.clone();
                        entry
                    })
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| dto::CommonPrefix {
                        prefix: Some(enc(p)),
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let attrs = attrs_of(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.metadata,
        );
        let upload_id = self
            .store
            .create_upload(&c.project_id, &c.user_id, &input.bucket, &input.key, attrs)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let checks = put_checks(input.content_length, input.content_md5.as_deref())?;
        let body = input.body.unwrap_or_else(empty_body);
        let part = self
            .store
            .upload_part(
                &c.project_id,
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number,
                checks,
                body,
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            ..Default::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let max = max_keys(input.max_parts)?;
        let page = self
            .store
            .list_parts(
                &c.project_id,
                &input.bucket,
                &input.key,
                &input.upload_id,
                input.part_number_marker,
                max,
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: page.next_marker,
            is_truncated: Some(page.is_truncated),
            parts: Some(
                page.parts
                    .into_iter()
                    .map(|p| dto::Part {
                        e_tag: Some(etag(&p.etag)),
                        last_modified: Some(ts(p.last_modified)),
                        part_number: Some(p.part_number),
                        size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let url = wants_url_encoding(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_uploads)?;
        let list = UploadsRequest {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone(),
            key_marker: input.key_marker.clone(),
            upload_id_marker: input.upload_id_marker.clone(),
            max_uploads: max,
        };
        let page = self
            .store
            .list_uploads_page(&c.project_id, &input.bucket, &list)
            .await
            .map_err(s3_err)?;
        let enc = |s: String| if url { url_encode(&s) } else { s };
        let owner = dto::Owner {
            id: Some(c.project_id.clone()),
            display_name: None,
        };
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(enc(list.prefix)),
            delimiter: input.delimiter.map(enc),
            encoding_type: input.encoding_type,
            key_marker: Some(enc(input.key_marker.unwrap_or_default())),
            upload_id_marker: Some(input.upload_id_marker.unwrap_or_default()),
            max_uploads: Some(i32::try_from(max).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            next_key_marker: page.next_key_marker.map(enc),
            next_upload_id_marker: page.next_upload_id_marker,
            uploads: Some(
                page.uploads
                    .into_iter()
                    .map(|u| dto::MultipartUpload {
                        key: Some(enc(u.key)),
                        upload_id: Some(u.upload_id),
                        initiated: Some(ts(u.initiated)),
                        initiator: Some(dto::Initiator {
                            id: Some(c.project_id.clone()),
                            display_name: None,
                        }),
                        owner: Some(owner.clone()),
                        storage_class: Some(dto::StorageClass::from_static(
                            dto::StorageClass::STANDARD,
                        )),
                        ..Default::default()
                    })
                    .collect(),
            ),
            common_prefixes: Some(
                page.common_prefixes
                    .into_iter()
                    .map(|p| dto::CommonPrefix {
                        prefix: Some(enc(p)),
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        let listed = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        let mut parts = Vec::with_capacity(listed.len());
        for p in listed {
            let (Some(n), Some(e)) = (p.part_number, p.e_tag) else {
                return Err(s3_error!(
                    MalformedXML,
                    "Every part needs a PartNumber and an ETag"
                ));
            };
            parts.push((n, e.value().to_owned()));
        }
        let meta = self
            .store
            .complete_upload(
                &c.project_id,
                &input.bucket,
                &input.key,
                &input.upload_id,
                &parts,
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(etag(&meta.etag)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let c = caller(&req)?;
        let input = req.input;
        self.store
            .abort_upload(&c.project_id, &input.bucket, &input.key, &input.upload_id)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }
}

fn object_entry(key: String, meta: &ObjectMeta) -> dto::Object {
    dto::Object {
        key: Some(key),
        e_tag: Some(etag(&meta.etag)),
        last_modified: Some(ts(meta.last_modified)),
        size: Some(i64::try_from(meta.size).unwrap_or(i64::MAX)),
        storage_class: Some(dto::ObjectStorageClass::from_static(
            dto::ObjectStorageClass::STANDARD,
        )),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        assert_eq!(url_encode("a b/c+d%e~_.-"), "a%20b/c%2Bd%25e~_.-");
        assert_eq!(url_encode("ü"), "%C3%BC");
    }

    #[test]
    fn store_errors_keep_their_s3_codes() {
        for (e, code) in [
            (ObjError::NoSuchBucket, "NoSuchBucket"),
            (ObjError::NoSuchKey, "NoSuchKey"),
            (ObjError::AccessDenied, "AccessDenied"),
            (ObjError::BucketAlreadyExists, "BucketAlreadyExists"),
            (ObjError::BucketAlreadyOwnedByYou, "BucketAlreadyOwnedByYou"),
            (ObjError::InvalidPart(2), "InvalidPart"),
            (ObjError::EntityTooLarge(1), "EntityTooLarge"),
            (ObjError::Io(std::io::Error::other("disk")), "InternalError"),
        ] {
            assert_eq!(e.s3_code(), code);
            assert_eq!(s3_err(e).code().as_str(), code);
        }
    }

    #[test]
    fn conditions_follow_rfc_9110() {
        let meta = ObjectMeta {
            size: 1,
            etag: "abc".into(),
            last_modified: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000),
            attrs: ObjectAttrs::default(),
            parts_count: None,
        };
        let same = ETagCondition::ETag(ETag::Strong("abc".into()));
        let other = ETagCondition::ETag(ETag::Strong("xyz".into()));
        assert!(check_conditions(&meta, Some(&same), None, None, None).is_ok());
        let e = check_conditions(&meta, Some(&other), None, None, None).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::PreconditionFailed);
        let e = check_conditions(&meta, None, None, Some(&same), None).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::NotModified);
        assert!(check_conditions(&meta, None, None, Some(&other), None).is_ok());
        let later = ts(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2000));
        let e = check_conditions(&meta, None, None, None, Some(&later)).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::NotModified);
        let earlier = ts(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10));
        let e = check_conditions(&meta, None, Some(&earlier), None, None).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::PreconditionFailed);
    }
}
