//! Virtual-hosted-style addressing: `bucket.<domain>` in the `Host` header names the bucket.

use std::borrow::Cow;

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

use crate::ObjError;

/// The host parser of an endpoint with a base domain. `Host: <bucket>.<domain>[:port]` is a
/// virtual-hosted request on `<bucket>`; any other host (the domain itself, an IP address,
/// another name) is a path-style request. Names compare without case and without the port.
#[derive(Debug, Clone)]
pub(crate) struct VirtualHosts {
    domain: String,
}

impl VirtualHosts {
    /// A parser for `domain` (a DNS name without port, e.g. `s3.example.com` or `localhost`).
    pub(crate) fn new(domain: &str) -> Result<Self, ObjError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            && domain.parse::<std::net::IpAddr>().is_err();
        if !valid {
            return Err(ObjError::InvalidArgument(format!(
                "the virtual-host domain {domain:?} is not a DNS name (no port, no IP address)"
            )));
        }
        Ok(Self { domain })
    }

    /// The bucket a `Host` header value names, if it is `<bucket>.<domain>`.
    pub(crate) fn bucket_of(&self, host: &str) -> Option<String> {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let bucket = name.strip_suffix(self.domain.as_str())?.strip_suffix('.')?;
        (!bucket.is_empty()).then(|| bucket.to_owned())
    }
}

impl S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let vh = VirtualHost::new(Cow::Borrowed(self.domain.as_str()));
        Ok(match self.bucket_of(host) {
            Some(bucket) => vh.with_bucket(bucket),
            None => vh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_subdomains_of_the_domain_only() {
        let v = VirtualHosts::new("LocalHost").unwrap();
        assert_eq!(
            v.bucket_of("my-bucket.localhost:9000").as_deref(),
            Some("my-bucket")
        );
        assert_eq!(
            v.bucket_of("My-Bucket.LOCALHOST").as_deref(),
            Some("my-bucket")
        );
        assert_eq!(v.bucket_of("a.b.localhost:1").as_deref(), Some("a.b"));
        assert_eq!(v.bucket_of("localhost:9000"), None);
        assert_eq!(v.bucket_of("127.0.0.1:9000"), None);
        assert_eq!(v.bucket_of("notlocalhost:9000"), None);
        assert_eq!(v.bucket_of("other.example.com"), None);
        assert_eq!(v.bucket_of(".localhost"), None);
    }

    #[test]
    fn the_domain_is_a_dns_name() {
        assert!(VirtualHosts::new("s3.example.com").is_ok());
        assert!(VirtualHosts::new("localhost").is_ok());
        for bad in [
            "",
            "host:9000",
            "127.0.0.1",
            "a..b",
            "a b",
            "under_score.com",
        ] {
            assert!(VirtualHosts::new(bad).is_err(), "{bad}");
        }
    }
}
