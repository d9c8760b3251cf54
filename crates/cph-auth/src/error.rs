//! The one error type of this crate.

/// Why a request, a token or an `Authorization` header was rejected.
///
/// The variants are distinct because the HTTP layer maps them to different API errors
/// (for example a stale `X-Sdk-Date` is `APIGW.0303`, a bad signature `APIGW.0301`). The
/// messages are meant for logs; they never contain secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request has no `Authorization` header, or it is empty.
    #[error("missing Authorization header")]
    MissingAuthorization,
    /// The `Authorization` header does not have the
    /// `SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..` layout, or appears twice.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// The `Authorization` header names a scheme other than `SDK-HMAC-SHA256`.
    #[error("unsupported signing algorithm")]
    UnsupportedAlgorithm,
    /// The request has no `X-Sdk-Date` header.
    #[error("missing X-Sdk-Date header")]
    MissingDate,
    /// `X-Sdk-Date` is not `YYYYMMDDTHHMMSSZ`, or appears twice.
    #[error("malformed X-Sdk-Date header")]
    MalformedDate,
    /// `X-Sdk-Date` is further from the server clock than the allowed skew.
    #[error("X-Sdk-Date is outside the allowed clock skew")]
    ClockSkew,
    /// A header listed in `SignedHeaders` is absent from the request (lower-case name).
    #[error("signed header {0} is missing from the request")]
    MissingSignedHeader(String),
    /// A header listed in `SignedHeaders` appears more than once (lower-case name).
    #[error("signed header {0} appears more than once")]
    DuplicateHeader(String),
    /// The recomputed signature differs from the one sent, or the body does not match its
    /// declared `X-Sdk-Content-Sha256`.
    #[error("signature mismatch")]
    SignatureMismatch,
    /// A bearer token is not `<payload>.<tag>` in base64url, or its payload is not valid claims.
    #[error("malformed token")]
    MalformedToken,
    /// A bearer token's tag does not match its payload (tampered, or issued with another key).
    #[error("invalid token")]
    InvalidToken,
    /// A bearer token is authentic but past its `expires_at`.
    #[error("token expired")]
    Expired,
}
