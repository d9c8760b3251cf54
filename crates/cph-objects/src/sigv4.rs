//! AWS Signature Version 4 for S3 requests signed in the `Authorization` header.
//!
//! Pure functions: the canonical request, the string to sign, the derived signing key and the
//! header value. S3 specifics: the canonical URI is the request path encoded once (no double
//! encoding, no `.`/`..` normalisation), and the payload hash is either the hex SHA-256 of the
//! body or the literal [`UNSIGNED_PAYLOAD`] for streamed bodies.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The payload hash of a body that is streamed rather than hashed in advance.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Everything a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `PUT`, …
    pub method: &'a str,
    /// The request path exactly as sent (already URI-encoded), e.g. `/bucket/a%20b`.
    pub path: &'a str,
    /// Query parameters, not encoded; order does not matter.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign: lowercase names; values are trimmed and inner runs of spaces collapsed.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
}

/// Who signs, where and when.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The access key id.
    pub access_key: &'a str,
    /// The secret key.
    pub secret_key: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of `x-amz-date`.
    pub amz_date: &'a str,
    /// The region of the credential scope.
    pub region: &'a str,
    /// The service of the credential scope (`s3`).
    pub service: &'a str,
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("amz_date", &self.amz_date)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish()
    }
}

impl Scope<'_> {
    fn date(&self) -> &str {
        self.amz_date.get(..8).unwrap_or(self.amz_date)
    }

    fn credential_scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }
}

/// URI-encodes `s` as SigV4 wants: every byte except `A-Z a-z 0-9 - . _ ~` becomes `%XX`
/// (uppercase hex); `/` is kept when `keep_slash` (object key paths).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The canonical query string: parameters encoded, sorted by name then value, `name=value`
/// joined by `&` (a parameter without a value is `name=`).
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The names of the signed headers, sorted and joined by `;`.
pub fn signed_headers(headers: &[(&str, &str)]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

/// The canonical request.
pub fn canonical_request(r: &Request<'_>) -> String {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), canonical_header_value(v)))
        .collect();
    headers.sort();
    let mut canonical_headers = String::new();
    let mut i = 0;
    while i < headers.len() {
        // Repeated headers: one line, values joined by commas in the order given.
        let name = &headers[i].0;
        let mut values = vec![headers[i].1.as_str()];
        let mut j = i + 1;
        while j < headers.len() && headers[j].0 == *name {
            values.push(headers[j].1.as_str());
            j += 1;
        }
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
        i = j;
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        r.path,
        canonical_query(r.query),
        canonical_headers,
        signed_headers(r.headers),
        r.payload_hash
    )
}

/// The string to sign for a canonical request.
pub fn string_to_sign(scope: &Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        scope.amz_date,
        scope.credential_scope(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key derived from the secret key for the scope's date, region and service.
pub fn signing_key(scope: &Scope<'_>) -> [u8; 32] {
    let k_secret = format!("AWS4{}", scope.secret_key);
    let k_date = hmac(k_secret.as_bytes(), scope.date().as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of a request.
pub fn signature(scope: &Scope<'_>, r: &Request<'_>) -> String {
    let sts = string_to_sign(scope, &canonical_request(r));
    hex::encode(hmac(&signing_key(scope), sts.as_bytes()))
}

/// The `Authorization` header value of a request.
pub fn authorization(scope: &Scope<'_>, r: &Request<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={}/{},SignedHeaders={},Signature={}",
        scope.access_key,
        scope.credential_scope(),
        signed_headers(r.headers),
        signature(scope, r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // AWS's published S3 example "GET Object" (Authenticating Requests: Using the Authorization
    // Header, Signature Version 4), with its canonical request, string to sign and signature.
    const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn s3_scope() -> Scope<'static> {
        Scope {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: S3_SECRET,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
            service: "s3",
        }
    }

    #[test]
    fn aws_s3_get_object_example() {
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let r = Request {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let creq = canonical_request(&r);
        assert_eq!(
            creq,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(&s3_scope(), &creq),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            authorization(&s3_scope(), &r),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    // AWS's published example of a derived signing key (Signature Version 4 documentation,
    // "Examples of how to derive a signing key").
    #[test]
    fn aws_signing_key_example() {
        let scope = Scope {
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            amz_date: "20120215T000000Z",
            region: "us-east-1",
            service: "iam",
        };
        assert_eq!(
            hex::encode(signing_key(&scope)),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    // The aws-sig-v4-test-suite case "get-vanilla-query-order-key-case": parameters sorted by
    // name, then value.
    #[test]
    fn aws_suite_query_order() {
        let headers = [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ];
        let r = Request {
            method: "GET",
            path: "/",
            query: &[("Param2", "value2"), ("Param1", "value1")],
            headers: &headers,
            payload_hash: EMPTY_SHA256,
        };
        let scope = Scope {
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            amz_date: "20150830T123600Z",
            region: "us-east-1",
            service: "service",
        };
        assert_eq!(
            signature(&scope, &r),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn uri_encoding_is_strict_and_keeps_slashes_only_in_paths() {
        assert_eq!(
            uri_encode("a b/c+d=é~_.-", true),
            "a%20b/c%2Bd%3D%C3%A9~_.-"
        );
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(
            canonical_query(&[("uploadId", "x/y+z"), ("partNumber", "2")]),
            "partNumber=2&uploadId=x%2Fy%2Bz"
        );
        assert_eq!(canonical_query(&[("uploads", "")]), "uploads=");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let headers = [("X-Amz-Meta-A", "  one   two  "), ("host", "h")];
        let r = Request {
            method: "PUT",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let creq = canonical_request(&r);
        assert!(
            creq.contains("\nhost:h\nx-amz-meta-a:one two\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD")
        );
    }

    #[test]
    fn debug_of_a_scope_hides_the_secret() {
        let s = format!("{:?}", s3_scope());
        assert!(!s.contains(S3_SECRET) && s.contains("<redacted>"));
    }
}
