//! Request authentication primitives for the CPH API.
//!
//! This crate is pure: it knows nothing about HTTP frameworks, storage or the clock. Callers pass
//! in the request parts, the secret material and the current time.
//!
//! - The crate root implements `SDK-HMAC-SHA256`, the AK/SK request signature the official Huawei
//!   Cloud SDKs send (`Authorization: SDK-HMAC-SHA256 Access=.., SignedHeaders=.., Signature=..`
//!   plus `X-Sdk-Date`). [`verify`] is the server side, [`sign_request`] the client side.
//! - [`token`] issues and checks the stateless bearer tokens accepted in `X-Auth-Token`.
//! - [`secret`] generates access keys and secret keys and hashes passwords.
//!
//! The access key lookup is the caller's job: call [`parse_authorization`] to learn the AK, find
//! its SK, then call [`verify`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod secret;
mod signature;
pub mod token;

pub use error::AuthError;
pub use signature::{
    ALGORITHM, ParsedAuthorization, SignedRequest, UNSIGNED_PAYLOAD, canonical_query,
    canonical_request, canonical_uri, format_sdk_date, parse_authorization, parse_sdk_date, sign,
    sign_request, string_to_sign, verify,
};
