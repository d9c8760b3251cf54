//! SigV2 signatures verified in constant time, before `s3s` sees the request.
//!
//! `s3s` verifies SigV2 header and presigned-URL signatures with a plain string comparison,
//! whose running time depends on how many leading characters match. The endpoint therefore
//! recomputes every SigV2 signature that `s3s` would compare, with the same string-to-sign, and
//! refuses a mismatch itself after a constant-time comparison: `s3s` only ever compares
//! signatures that are equal.
//!
//! [`inspect`] mirrors the order of `s3s`'s checks (0.14.1, `ops/signature.rs`): a
//! presigned URL (`Signature` in the query) before an `Authorization: AWS …` header. Whenever
//! `s3s` would fail a request before comparing (an unparsable query or presigned URL, an
//! expired URL, no date, an unknown access key, a bad `Host`), [`inspect`] leaves the request
//! to `s3s` and its error.

use axum::http::{HeaderMap, Method, Uri, header};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// Sub-resources that belong to the string-to-sign (sorted; as `s3s` and S3 define them).
const INCLUDED_QUERY: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Where the signature of a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `Authorization: AWS <access key>:<signature>`.
    Header,
    /// `?AWSAccessKeyId=…&Expires=…&Signature=…`.
    Presigned,
}

/// A SigV2 signature that `s3s` would compare.
#[derive(Debug)]
pub(crate) struct Claim {
    /// The access key that signed it.
    pub access_key: String,
    /// The signature the client sent (base64).
    pub signature: String,
    /// The string the signature must be the HMAC-SHA1 of.
    pub string_to_sign: String,
}

impl Claim {
    /// Whether the claimed signature is that of `secret_key`, compared in constant time.
    pub fn verify(&self, secret_key: &str) -> bool {
        signatures_match(&sign(secret_key, &self.string_to_sign), &self.signature)
    }
}

/// The SigV2 signature `s3s` would compare for this request, or `None` when `s3s` would not
/// compare one (not SigV2, or a request it refuses before comparing). `vh_bucket` is the
/// bucket of a virtual-hosted request (from the same host parser `s3s` uses).
pub(crate) fn inspect(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    vh_bucket: Option<&str>,
) -> Option<Claim> {
    let qs = match uri.query() {
        Some(q) => Some(Query::parse(q)?),
        None => None,
    };
    let hs = Headers::from_map(headers);
    if let Some(qs) = &qs
        && qs.has("Signature")
    {
        let access_key = qs.get_unique("AWSAccessKeyId")?;
        let expires = qs.get_unique("Expires")?;
        let signature = qs.get_unique("Signature")?;
        let expires = expires.parse::<i64>().ok().filter(|&x| x >= 0)?;
        let expires = time::OffsetDateTime::from_unix_timestamp(expires).ok()?;
        if time::OffsetDateTime::now_utc() > expires {
            return None;
        }
        let signature = urlencoding::decode(signature).ok()?;
        return Some(Claim {
            access_key: access_key.to_owned(),
            signature: signature.into_owned(),
            string_to_sign: string_to_sign(
                Mode::Presigned,
                method,
                uri.path(),
                Some(qs),
                &hs,
                vh_bucket,
            ),
        });
    }
    let auth = hs.get_unique(header::AUTHORIZATION.as_str())?;
    let (access_key, signature) = auth.strip_prefix("AWS ")?.split_once(':')?;
    hs.get_unique("date")
        .or_else(|| hs.get_unique("x-amz-date"))?;
    Some(Claim {
        access_key: access_key.to_owned(),
        signature: signature.to_owned(),
        string_to_sign: string_to_sign(
            Mode::Header,
            method,
            uri.path(),
            qs.as_ref(),
            &hs,
            vh_bucket,
        ),
    })
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub(crate) fn sign(secret_key: &str, string_to_sign: &str) -> String {
    use base64::Engine;
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two signatures (the length is not secret).
pub(crate) fn signatures_match(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A query string decoded as `s3s` decodes it, sorted by name (stable).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Option<Self> {
        let mut v = serde_urlencoded::from_str::<Vec<(String, String)>>(query).ok()?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Some(Self(v))
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn get_unique(&self, name: &str) -> Option<&str> {
        let mut it = self.0.iter().filter(|(k, _)| k == name);
        let first = it.next()?;
        it.next().is_none().then_some(first.1.as_str())
    }
}

/// UTF-8 headers sorted by name (stable), as `s3s` orders them.
struct Headers<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Headers<'a> {
    fn from_map(map: &'a HeaderMap) -> Self {
        let mut v: Vec<(&str, &str)> = map
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), std::str::from_utf8(v.as_bytes()).ok()?)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        Self(v)
    }

    fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.0
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn get_unique(&self, name: &str) -> Option<&'a str> {
        let mut it = self.get_all(name);
        let first = it.next()?;
        it.next().is_none().then_some(first)
    }
}

fn string_to_sign(
    mode: Mode,
    method: &Method,
    uri_path: &str,
    qs: Option<&Query>,
    hs: &Headers<'_>,
    vh_bucket: Option<&str>,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(method.as_str());
    s.push('\n');
    s.push_str(hs.get_unique("content-md5").unwrap_or_default());
    s.push('\n');
    s.push_str(hs.get_unique("content-type").unwrap_or_default());
    s.push('\n');
    match mode {
        Mode::Header => {
            // With x-amz-date, the Date line is empty (x-amz-date is signed as an amz header).
            if hs.get_unique("x-amz-date").is_none() {
                s.push_str(hs.get_unique("date").unwrap_or_default());
            }
        }
        Mode::Presigned => {
            s.push_str(qs.and_then(|q| q.get_unique("Expires")).unwrap_or_default());
        }
    }
    s.push('\n');
    let mut last = "";
    for &(name, _) in &hs.0 {
        if !name.starts_with("x-amz-") || name == last {
            continue;
        }
        last = name;
        s.push_str(name);
        s.push(':');
        let values: Vec<&str> = hs.get_all(name).map(str::trim).collect();
        s.push_str(&values.join(","));
        s.push('\n');
    }
    if let Some(bucket) = vh_bucket {
        s.push('/');
        s.push_str(bucket);
    }
    s.push_str(uri_path);
    if let Some(qs) = qs {
        let mut first = true;
        for q in INCLUDED_QUERY {
            if let Some(v) = qs.get_unique(q) {
                s.push(if first { '?' } else { '&' });
                first = false;
                s.push_str(q);
                if !v.is_empty() {
                    s.push('=');
                    s.push_str(v);
                }
            }
        }
    }
    s
}

/// The error text of a refused SigV2 signature.
pub(crate) const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your key and signing method.";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    /// The examples of the S3 SigV2 documentation (with the signatures `s3s` computes for them).
    #[test]
    fn documented_examples() {
        // Method, path, headers, virtual-hosted bucket, string-to-sign, signature.
        type Case = (
            Method,
            &'static str,
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
            &'static str,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                Method::GET,
                "/photos/puppy.jpg",
                &[("date", "Tue, 27 Mar 2007 19:36:42 +0000")],
                Some("awsexamplebucket1"),
                "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
            ),
            (
                Method::PUT,
                "/photos/puppy.jpg",
                &[
                    ("content-type", "image/jpeg"),
                    ("date", "Tue, 27 Mar 2007 21:15:45 +0000"),
                ],
                Some("awsexamplebucket1"),
                "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "iqRzw+ileNPu1fhspnRs8nOjjIA=",
            ),
            (
                Method::GET,
                "/?acl",
                &[("date", "Tue, 27 Mar 2007 19:44:46 +0000")],
                Some("awsexamplebucket1"),
                "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/awsexamplebucket1/?acl",
                "82ZHiFIjc+WbcwFKGUVEQspPn+0=",
            ),
            (
                Method::DELETE,
                "/awsexamplebucket1/photos/puppy.jpg",
                &[
                    ("date", "Tue, 27 Mar 2007 21:20:27 +0000"),
                    ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
                ],
                None,
                "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "Ri1hpB1zpS9pGqR7y8kuNFCl4sE=",
            ),
            (
                Method::PUT,
                "/db-backup.dat.gz",
                &[
                    ("date", "Tue, 27 Mar 2007 21:06:08 +0000"),
                    ("x-amz-acl", "public-read"),
                    ("content-type", "application/x-download"),
                    ("content-md5", "4gJE4saaMU4BqNR0kLY+lw=="),
                    ("x-amz-meta-reviewedby", "joe@example.com"),
                    ("x-amz-meta-reviewedby", "jane@example.com"),
                    ("x-amz-meta-filechecksum", "0x02661779"),
                    ("x-amz-meta-checksumalgorithm", "crc32"),
                    ("content-disposition", "attachment; filename=database.dat"),
                    ("content-encoding", "gzip"),
                    ("content-length", "5913339"),
                ],
                Some("static.example.com"),
                "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\nx-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\nx-amz-meta-reviewedby:joe@example.com,jane@example.com\n/static.example.com/db-backup.dat.gz",
                "jtBQa0Aq+DkULFI8qrpwIjGEx0E=",
            ),
            (
                Method::GET,
                "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
                &[("date", "Wed, 28 Mar 2007 01:49:49 +0000")],
                None,
                "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
                "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
            ),
        ];
        for (method, path, hs, vh, sts, sig) in cases {
            let mut h = headers(hs);
            let auth = format!("AWS AKIAIOSFODNN7EXAMPLE:{sig}");
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
            let uri: Uri = path.parse().unwrap();
            let claim = inspect(method, &uri, &h, *vh).expect("a SigV2 request");
            assert_eq!(claim.access_key, "AKIAIOSFODNN7EXAMPLE");
            assert_eq!(claim.string_to_sign, *sts);
            assert_eq!(sign(SECRET, sts), *sig);
            assert!(claim.verify(SECRET), "{path}");
            assert!(!claim.verify("another secret"), "{path}");
        }
    }

    #[test]
    fn a_wrong_signature_does_not_verify() {
        let mut h = headers(&[("date", "Tue, 27 Mar 2007 19:36:42 +0000")]);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1G="),
        );
        let uri: Uri = "/photos/puppy.jpg".parse().unwrap();
        let claim = inspect(&Method::GET, &uri, &h, Some("awsexamplebucket1")).unwrap();
        assert!(!claim.verify(SECRET));
        assert!(!signatures_match("abc", "abcd"));
        assert!(signatures_match("abc", "abc"));
    }

    #[test]
    fn presigned_urls_sign_their_expiry() {
        let far = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let sts = format!("GET\n\n\n{far}\n/bucket/photos/puppy.jpg");
        let sig = sign(SECRET, &sts);
        let enc = urlencoding::encode(&sig);
        let uri: Uri =
            format!("/bucket/photos/puppy.jpg?AWSAccessKeyId=AK&Expires={far}&Signature={enc}")
                .parse()
                .unwrap();
        let claim = inspect(&Method::GET, &uri, &HeaderMap::new(), None).unwrap();
        assert_eq!(claim.string_to_sign, sts);
        assert_eq!(claim.signature, sig);
        assert!(claim.verify(SECRET));
        // An expired URL is refused by s3s before it compares anything.
        let uri: Uri = format!("/b/k?AWSAccessKeyId=AK&Expires=1000&Signature={enc}")
            .parse()
            .unwrap();
        assert!(inspect(&Method::GET, &uri, &HeaderMap::new(), None).is_none());
    }

    #[test]
    fn other_requests_are_left_alone() {
        let uri: Uri = "/b/k".parse().unwrap();
        // SigV4.
        let h = headers(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AK/20240101/r/s3/aws4_request",
            ),
            ("x-amz-date", "20240101T000000Z"),
        ]);
        assert!(inspect(&Method::GET, &uri, &h, None).is_none());
        // SigV2 without a date: s3s refuses it before comparing.
        let h = headers(&[("authorization", "AWS AK:sig")]);
        assert!(inspect(&Method::GET, &uri, &h, None).is_none());
        // Two Authorization headers: s3s does not take either.
        let h = headers(&[
            ("authorization", "AWS AK:sig"),
            ("authorization", "AWS AK:sig2"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        assert!(inspect(&Method::GET, &uri, &h, None).is_none());
        // Unsigned.
        assert!(inspect(&Method::GET, &uri, &HeaderMap::new(), None).is_none());
    }

    #[test]
    fn sub_resources_are_signed_in_order() {
        let h = headers(&[
            ("authorization", "AWS AK:sig"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        let uri: Uri = "/b/k?uploadId=abc&partNumber=2&foo=bar".parse().unwrap();
        let claim = inspect(&Method::PUT, &uri, &h, None).unwrap();
        assert_eq!(
            claim.string_to_sign,
            "PUT\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/b/k?partNumber=2&uploadId=abc"
        );
        let uri: Uri = "/b?uploads".parse().unwrap();
        let claim = inspect(&Method::GET, &uri, &h, None).unwrap();
        assert!(claim.string_to_sign.ends_with("\n/b?uploads"));
    }
}
