//! Configuration of external endpoints.
//!
//! [`EndpointConfig`] is one `[[objects.external]]` entry of the server's TOML file;
//! [`ClientConfig`] is what an [`crate::S3Client`] needs. Secret keys are held in [`Secret`],
//! whose `Debug` never shows them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// A secret string (an S3 secret key). `Debug` prints `<redacted>`; read it with
/// [`Secret::expose`] only where it is used.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Region used in signatures when an endpoint names none.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default time allowed to open a TCP connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed between two reads or writes of a request or response, and for a
/// response to start once its request was sent.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Uploads larger than this use a multipart upload.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 << 20;
/// Default part size of a multipart upload (raised for very large bodies so that no upload
/// needs more than [`MAX_PARTS`] parts).
pub const DEFAULT_PART_SIZE: u64 = 16 << 20;
/// Most parts of one multipart upload (the S3 limit).
pub const MAX_PARTS: u64 = 10_000;
/// Smallest part size S3 accepts (all parts but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Default number of operations that run against one endpoint at a time.
pub const DEFAULT_MAX_REQUESTS: usize = 64;
/// Default time an operation waits for a free request slot.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(300);

/// How to reach and sign for one S3-compatible endpoint.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host[:port]` or `https://host[:port]`, without a path.
    pub endpoint: String,
    /// The region of the signatures' credential scope.
    pub region: String,
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: Secret,
    /// Virtual-hosted style (`bucket.host/key`, what Huawei OBS public endpoints require)
    /// instead of path style (`host/bucket/key`).
    pub virtual_hosted: bool,
    /// Extra trusted CA certificates (PEM), for endpoints with a private CA. The Mozilla root
    /// set is always trusted.
    pub ca_file: Option<PathBuf>,
    /// Time allowed to open a TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads or writes, and for a response to start.
    pub read_timeout: Duration,
    /// Bodies larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// The size of each part (but the last); at least [`MIN_PART_SIZE`].
    pub part_size: u64,
    /// Operations that run against the endpoint at a time; a download counts until its reader
    /// is dropped.
    pub max_requests: usize,
    /// Time an operation waits for a free request slot before it fails.
    pub queue_timeout: Duration,
}

impl ClientConfig {
    /// A configuration with the default region, timeouts and part sizes.
    #[must_use]
    pub fn new(
        endpoint: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: Secret,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            region: DEFAULT_REGION.to_owned(),
            access_key: access_key.into(),
            secret_key,
            virtual_hosted: false,
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            max_requests: DEFAULT_MAX_REQUESTS,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// One external endpoint as configured (a `[[objects.external]]` entry of the server's TOML
/// file): where it is, its credentials, which buckets it serves and which accounts may use it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `https://obs.cn-north-4.myhuaweicloud.com`, `http://10.0.0.5:9000`, …
    pub endpoint: String,
    /// Region of the signatures (default `us-east-1`; Huawei OBS wants its region, e.g.
    /// `cn-north-4`).
    #[serde(default)]
    pub region: Option<String>,
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: Secret,
    /// Virtual-hosted style requests (required by Huawei OBS public endpoints).
    #[serde(default)]
    pub virtual_hosted: bool,
    /// Buckets this endpoint serves, by name.
    #[serde(default)]
    pub buckets: Vec<String>,
    /// Whether this endpoint serves buckets that are neither configured by name nor in the
    /// embedded store (at most one endpoint may be the default).
    #[serde(default)]
    pub default: bool,
    /// Accounts (domain ids) allowed to use this endpoint's buckets; `"*"` allows every
    /// account. Empty (the default): no account.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Extra trusted CA certificates (PEM file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds allowed to open a connection (default 10).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Seconds allowed between two reads or writes, and for a response to start (default 60).
    #[serde(default)]
    pub read_timeout_secs: Option<u64>,
    /// Operations that run against the endpoint at a time (default 64).
    #[serde(default)]
    pub max_requests: Option<usize>,
}

impl EndpointConfig {
    /// The client part of the entry.
    #[must_use]
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(
            self.endpoint.clone(),
            self.access_key.clone(),
            self.secret_key.clone(),
        );
        if let Some(r) = self.region.as_deref().filter(|r| !r.is_empty()) {
            r.clone_into(&mut c.region);
        }
        c.virtual_hosted = self.virtual_hosted;
        c.ca_file.clone_from(&self.ca_file);
        if let Some(s) = self.connect_timeout_secs {
            c.connect_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = self.read_timeout_secs {
            c.read_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = self.max_requests {
            c.max_requests = n.max(1);
        }
        c
    }

    /// The accounts allowed to use the endpoint.
    pub(crate) fn access(&self) -> Result<Access, ConfigError> {
        if self.domains.iter().any(|d| d.trim() == "*") {
            return Ok(Access::Any);
        }
        let mut ids = Vec::with_capacity(self.domains.len());
        for d in &self.domains {
            let d = d.trim();
            if d.is_empty() {
                return Err(ConfigError(format!(
                    "{}: an entry of domains is empty",
                    self.endpoint
                )));
            }
            ids.push(d.to_owned());
        }
        ids.sort();
        ids.dedup();
        Ok(Access::Only(ids))
    }
}

/// Which accounts may use an external endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every account (`domains = ["*"]`).
    Any,
    /// Only these domain ids (sorted); empty means none.
    Only(Vec<String>),
}

impl Access {
    /// Whether the account (domain id) `owner` may use the endpoint.
    #[must_use]
    pub fn allows(&self, owner: &str) -> bool {
        match self {
            Access::Any => true,
            Access::Only(ids) => ids.binary_search_by(|d| d.as_str().cmp(owner)).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> EndpointConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let e = entry(
            r#"
            endpoint = "https://obs.example.com"
            access_key = "AK"
            secret_key = "very-secret-value"
            buckets = ["b1"]
            domains = ["*"]
            "#,
        );
        let shown = format!("{e:?} {:?}", e.client_config());
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert_eq!(e.client_config().secret_key.expose(), "very-secret-value");
    }

    #[test]
    fn domains_default_to_nobody_and_star_means_everybody() {
        let mut e = entry("endpoint = \"http://h\"\naccess_key = \"AK\"\nsecret_key = \"S\"\n");
        assert!(!e.access().unwrap().allows("d1"));
        e.domains = vec!["d2".into(), "d1".into()];
        let a = e.access().unwrap();
        assert!(a.allows("d1") && a.allows("d2") && !a.allows("d3"));
        e.domains = vec!["d2".into(), " * ".into()];
        assert_eq!(e.access().unwrap(), Access::Any);
        e.domains = vec![" ".into()];
        assert!(e.access().is_err());
    }

    #[test]
    fn unknown_keys_are_refused_and_settings_apply() {
        let bad = "endpoint = \"http://h\"\naccess_key = \"AK\"\nsecret_key = \"S\"\nbukets = []\n";
        assert!(toml::from_str::<EndpointConfig>(bad).is_err());
        let c = entry(
            r#"
            endpoint = "https://obs.cn-north-4.myhuaweicloud.com"
            region = "cn-north-4"
            access_key = "AK"
            secret_key = "S"
            virtual_hosted = true
            read_timeout_secs = 5
            "#,
        )
        .client_config();
        assert_eq!(c.region, "cn-north-4");
        assert!(c.virtual_hosted);
        assert_eq!(c.read_timeout, Duration::from_secs(5));
        assert_eq!(c.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }
}
