//! `SDK-HMAC-SHA256`: the AK/SK request signature of the Huawei Cloud SDKs.
//!
//! The algorithm, as `huaweicloudsdkcore` 3.1.219 applies it:
//!
//! ```text
//! CanonicalRequest = METHOD "\n" CanonicalURI "\n" CanonicalQuery "\n"
//!                    CanonicalHeaders "\n" SignedHeaders "\n" PayloadHash
//! StringToSign     = "SDK-HMAC-SHA256" "\n" X-Sdk-Date "\n" hex(SHA256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(key = SK, StringToSign))
//! ```
//!
//! - CanonicalURI: the wire path percent-decoded completely, split on `/`, every segment
//!   re-encoded (only `A-Z a-z 0-9 - _ . ~` kept, upper-case hex), joined with `/`, and a `/`
//!   appended unless already there. So `a%2Fb` canonicalises to a real `a/b`.
//! - CanonicalQuery: the raw query split on `&` (empty items skipped), each item split at the
//!   first `=` (no `=` means an empty value), names and values percent-decoded (`+` stays a
//!   literal plus), pairs sorted by decoded (name, value), re-encoded like path segments and
//!   joined with `&`. Repeated names stay repeated.
//! - CanonicalHeaders: one `name:value` line per `SignedHeaders` entry, in the order given, the
//!   value trimmed of surrounding whitespace, each line ending in `\n`.
//! - PayloadHash: the SHA-256 of the empty string for an empty body; otherwise the
//!   `X-Sdk-Content-Sha256` header verbatim if present (the SDK sends `UNSIGNED-PAYLOAD` for
//!   non-JSON bodies); otherwise the hex SHA-256 of the body bytes.
//!
//! There is no key derivation and no scope: the AK is not part of the signed data.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::AuthError;

type HmacSha256 = Hmac<Sha256>;

/// The only signing algorithm accepted: `SDK-HMAC-SHA256`.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// The `X-Sdk-Content-Sha256` value by which a client leaves the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

const HEADER_AUTHORIZATION: &str = "authorization";
const HEADER_SDK_DATE: &str = "x-sdk-date";
const HEADER_CONTENT_SHA256: &str = "x-sdk-content-sha256";

/// `hex(SHA256(""))`, the payload hash of every request without a body.
const EMPTY_PAYLOAD_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Bytes left as they are by the canonical encoding (RFC 3986 unreserved); everything else,
/// including every non-ASCII UTF-8 byte, becomes `%XX` with upper-case hex.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parts of an HTTP request that take part in the signature.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method; compared upper-cased.
    pub method: &'a str,
    /// The path exactly as on the wire (still percent-encoded), without the query. Behind a
    /// router that strips prefixes, pass the original request path.
    pub path: &'a str,
    /// The raw query string (without `?`), `None` or `Some("")` when there is none.
    pub query: Option<&'a str>,
    /// Request headers as received, values as UTF-8 text; names are matched
    /// case-insensitively. `Host` must be included (for HTTP/2, synthesise it from
    /// `:authority`) and must not have been rewritten by a proxy.
    pub headers: &'a [(&'a str, &'a str)],
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// The fields of an `SDK-HMAC-SHA256` `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The `Access=` value: the access key (AK) the caller looks up to find the secret key.
    pub access_key: String,
    /// The `SignedHeaders=` names, in the order sent.
    pub signed_headers: Vec<String>,
    /// The `Signature=` value: 64 hex digits, lower-cased.
    pub signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2;..>, Signature=<64 hex>`.
///
/// The three parameters may come in any order, with any whitespace around the commas. A
/// different first word is [`AuthError::UnsupportedAlgorithm`]; an empty value is
/// [`AuthError::MissingAuthorization`]; anything else off-layout is
/// [`AuthError::MalformedAuthorization`].
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, AuthError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AuthError::MissingAuthorization);
    }
    let (algorithm, params) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm);
    }

    let mut access_key = None;
    let mut signed_headers = None;
    let mut signature = None;
    for param in params.split(',') {
        let (key, val) = param
            .trim()
            .split_once('=')
            .ok_or(AuthError::MalformedAuthorization)?;
        let slot = match key {
            "Access" => &mut access_key,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(AuthError::MalformedAuthorization),
        };
        if slot.replace(val).is_some() {
            return Err(AuthError::MalformedAuthorization);
        }
    }

    let access_key = access_key.ok_or(AuthError::MalformedAuthorization)?;
    if access_key.is_empty() || access_key.contains(char::is_whitespace) {
        return Err(AuthError::MalformedAuthorization);
    }

    let signed_headers = signed_headers.ok_or(AuthError::MalformedAuthorization)?;
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    let valid_name =
        |name: &String| !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !signed_headers.iter().all(valid_name) {
        return Err(AuthError::MalformedAuthorization);
    }

    let signature = signature.ok_or(AuthError::MalformedAuthorization)?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::MalformedAuthorization);
    }

    Ok(ParsedAuthorization {
        access_key: access_key.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// The canonical URI of a wire path: decoded, re-encoded segment by segment, with a trailing `/`.
///
/// `/v1/p/phones/odd%20id%2Fwith~slash` becomes `/v1/p/phones/odd%20id/with~slash/`. Invalid
/// UTF-8 after decoding is replaced by U+FFFD, as the SDK's `unquote` does.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut out = String::with_capacity(decoded.len() + 1);
    for (idx, segment) in decoded.split('/').enumerate() {
        if idx > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(segment, UNRESERVED));
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query of a raw query string: decoded pairs sorted by (name, value), re-encoded.
///
/// `state=b&limit=5&state=a&q=x+y` becomes `limit=5&q=x%2By&state=a&state=b`.
pub fn canonical_query(query: &str) -> String {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            (decode(name), decode(value))
        })
        .collect();
    pairs.sort();

    let mut out = String::with_capacity(query.len());
    for (idx, (name, value)) in pairs.iter().enumerate() {
        if idx > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(name, UNRESERVED));
        out.push('=');
        out.extend(utf8_percent_encode(value, UNRESERVED));
    }
    out
}

/// Builds the canonical request the client signed, for the given `SignedHeaders` list.
///
/// Fails with [`AuthError::MissingSignedHeader`] if a listed header is absent and with
/// [`AuthError::DuplicateHeader`] if it appears more than once.
pub fn canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[String],
) -> Result<String, AuthError> {
    let header_values = signed_header_values(req, signed_headers)?;
    let payload_hash = payload_hash(req)?;
    Ok(assemble_canonical_request(
        req,
        signed_headers,
        &header_values,
        &payload_hash,
    ))
}

/// `SDK-HMAC-SHA256\n<sdk_date>\n<hex(SHA256(canonical_request))>`.
pub fn string_to_sign(canonical_request: &str, sdk_date: &str) -> String {
    let digest = Sha256::digest(canonical_request.as_bytes());
    format!("{ALGORITHM}\n{sdk_date}\n{}", hex::encode(digest))
}

/// Lower-case hex of `HMAC-SHA256(key = secret_key, message = string_to_sign)`.
pub fn sign(secret_key: &str, string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(secret_key, string_to_sign))
}

/// Formats a time as `X-Sdk-Date` (`YYYYMMDDTHHMMSSZ`, UTC).
pub fn format_sdk_date(time: DateTime<Utc>) -> String {
    time.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Parses an `X-Sdk-Date` value; exactly `YYYYMMDDTHHMMSSZ` is accepted.
pub fn parse_sdk_date(value: &str) -> Result<DateTime<Utc>, AuthError> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[9..15].iter().all(u8::is_ascii_digit);
    if !well_formed {
        return Err(AuthError::MalformedDate);
    }
    let num = |range: std::ops::Range<usize>| value[range].parse::<u32>().ok();
    let date = (|| {
        let year = i32::try_from(num(0..4)?).ok()?;
        NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)?.and_hms_opt(
            num(9..11)?,
            num(11..13)?,
            num(13..15)?,
        )
    })();
    date.map(|naive| naive.and_utc())
        .ok_or(AuthError::MalformedDate)
}

/// Verifies an `SDK-HMAC-SHA256` signed request with the secret key of its access key.
///
/// Checks, in order: the `Authorization` header ([`parse_authorization`]); `X-Sdk-Date` present,
/// well-formed and at most `max_skew` away from `now` in either direction; every signed header
/// present exactly once; a declared hex `X-Sdk-Content-Sha256` matching the body; then the
/// signature, compared in constant time.
///
/// For an empty body with an `X-Sdk-Content-Sha256` header, the Python SDK hashes the empty
/// body while the Go SDK uses the header value; both readings are accepted.
pub fn verify(
    req: &SignedRequest<'_>,
    secret_key: &str,
    now: DateTime<Utc>,
    max_skew: TimeDelta,
) -> Result<(), AuthError> {
    let authorization = find_header(req.headers, HEADER_AUTHORIZATION)
        .map_err(|_| AuthError::MalformedAuthorization)?
        .ok_or(AuthError::MissingAuthorization)?;
    let parsed = parse_authorization(authorization)?;

    let sdk_date = find_header(req.headers, HEADER_SDK_DATE)
        .map_err(|_| AuthError::MalformedDate)?
        .ok_or(AuthError::MissingDate)?
        .trim();
    let signed_at = parse_sdk_date(sdk_date)?;
    if (now - signed_at).abs() > max_skew.abs() {
        return Err(AuthError::ClockSkew);
    }

    let header_values = signed_header_values(req, &parsed.signed_headers)?;

    let declared_hash = find_header(req.headers, HEADER_CONTENT_SHA256)?.map(str::trim);
    let mut payload_hashes = vec![payload_hash(req)?];
    if let Some(declared) = declared_hash {
        if req.body.is_empty() {
            // The Go SDK signs the declared value even without a body.
            if declared != EMPTY_PAYLOAD_HASH {
                payload_hashes.push(declared.to_owned());
            }
        } else if declared != UNSIGNED_PAYLOAD {
            let actual = hex::encode(Sha256::digest(req.body));
            if !declared.eq_ignore_ascii_case(&actual) {
                return Err(AuthError::SignatureMismatch);
            }
        }
    }

    let sent = hex::decode(&parsed.signature).map_err(|_| AuthError::MalformedAuthorization)?;
    let mut matched = Choice::from(0);
    for payload_hash in &payload_hashes {
        let canonical =
            assemble_canonical_request(req, &parsed.signed_headers, &header_values, payload_hash);
        let expected = hmac_sha256(secret_key, &string_to_sign(&canonical, sdk_date));
        matched |= expected.as_slice().ct_eq(&sent);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

/// Signs a request as the SDK does and returns the headers to add to it.
///
/// Returns `X-Sdk-Date` (formatted from `now`) and `Authorization`, in that order. If
/// `req.headers` already carries an `X-Sdk-Date`, that value is signed as is and not returned
/// again. Every header of `req.headers` whose name has no `_` is signed, except `Authorization`;
/// include `Host` (exactly as the HTTP client will send it) so that it is signed. For a name given
/// twice, the first value is signed.
pub fn sign_request(
    req: &SignedRequest<'_>,
    access_key: &str,
    secret_key: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let mut added = Vec::with_capacity(2);
    let existing_date = req
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(HEADER_SDK_DATE))
        .map(|(_, value)| value.trim().to_owned());
    let sdk_date = match existing_date {
        Some(date) => date,
        None => {
            let date = format_sdk_date(now);
            added.push(("X-Sdk-Date".to_owned(), date.clone()));
            date
        }
    };

    // First value per lower-cased name, including the date just added.
    let mut headers: Vec<(String, &str)> = Vec::with_capacity(req.headers.len() + 1);
    let all = req
        .headers
        .iter()
        .copied()
        .chain(std::iter::once(("x-sdk-date", sdk_date.as_str())));
    for (name, value) in all {
        let name = name.to_ascii_lowercase();
        if name.contains('_') || name == HEADER_AUTHORIZATION {
            continue;
        }
        if !headers.iter().any(|(seen, _)| *seen == name) {
            headers.push((name, value));
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));

    let signed_headers: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    let header_values: Vec<&str> = headers.iter().map(|(_, value)| *value).collect();
    let payload_hash = if req.body.is_empty() {
        EMPTY_PAYLOAD_HASH.to_owned()
    } else {
        match headers
            .iter()
            .find(|(name, _)| name == HEADER_CONTENT_SHA256)
        {
            Some((_, declared)) => declared.trim().to_owned(),
            None => hex::encode(Sha256::digest(req.body)),
        }
    };

    let canonical = assemble_canonical_request(req, &signed_headers, &header_values, &payload_hash);
    let signature = sign(secret_key, &string_to_sign(&canonical, &sdk_date));
    added.push((
        "Authorization".to_owned(),
        format!(
            "{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={signature}",
            signed_headers.join(";")
        ),
    ));
    added
}

fn hmac_sha256(secret_key: &str, message: &str) -> [u8; 32] {
    let mut mac =
        HmacSha256::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The single value of a header (case-insensitive name), `None` if absent.
fn find_header<'h>(headers: &[(&str, &'h str)], name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut found = None;
    for (key, value) in headers {
        if key.eq_ignore_ascii_case(name) && found.replace(*value).is_some() {
            return Err(AuthError::DuplicateHeader(name.to_ascii_lowercase()));
        }
    }
    Ok(found)
}

fn signed_header_values<'h>(
    req: &SignedRequest<'h>,
    signed_headers: &[String],
) -> Result<Vec<&'h str>, AuthError> {
    signed_headers
        .iter()
        .map(|name| {
            find_header(req.headers, name)?
                .ok_or_else(|| AuthError::MissingSignedHeader(name.to_ascii_lowercase()))
        })
        .collect()
}

/// The payload hash as the Python SDK computes it.
fn payload_hash(req: &SignedRequest<'_>) -> Result<String, AuthError> {
    if req.body.is_empty() {
        return Ok(EMPTY_PAYLOAD_HASH.to_owned());
    }
    Ok(match find_header(req.headers, HEADER_CONTENT_SHA256)? {
        Some(declared) => declared.trim().to_owned(),
        None => hex::encode(Sha256::digest(req.body)),
    })
}

fn assemble_canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[String],
    header_values: &[&str],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(&req.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query.unwrap_or("")));
    out.push('\n');
    for (name, value) in signed_headers.iter().zip(header_values) {
        out.push_str(name);
        out.push(':');
        out.push_str(value.trim());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}
