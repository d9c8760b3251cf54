//! Bucket names, object keys and the mapping of keys to files.
//!
//! An object key is never used as a path. It is hex-encoded (two lowercase hex digits per byte,
//! which keeps byte order, so a directory walk in name order lists keys in S3 order) and the hex
//! string is cut into directory components of exactly [`DIR_CHUNK`] digits followed by a file
//! component of 1..=[`DIR_CHUNK`] digits with the suffix [`OBJECT_SUFFIX`]. Every component is
//! therefore made of `[0-9a-f]` (plus the suffix) only: no key can name `..`, an absolute path,
//! a NUL byte, or collide with a directory or with the bucket's metadata file.

use std::path::PathBuf;

use crate::error::ObjError;

/// Longest object key, in bytes (the S3 limit).
pub const MAX_KEY_BYTES: usize = 1024;
/// Hex digits per directory component (file names stay well below `NAME_MAX`).
pub const DIR_CHUNK: usize = 200;
/// Suffix of object files, which keeps them apart from directory components.
pub const OBJECT_SUFFIX: &str = ".o";

/// Checks a bucket name against the S3 naming rules: 3–63 characters of lowercase letters,
/// digits, dots and hyphens, starting and ending with a letter or digit, no two adjacent dots,
/// not shaped like an IPv4 address, and none of the reserved prefixes and suffixes.
pub fn validate_bucket_name(name: &str) -> Result<(), ObjError> {
    let bad = |why: &str| Err(ObjError::InvalidBucketName(format!("{name:?}: {why}")));
    if !(3..=63).contains(&name.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("dots must not be adjacent to dots or hyphens");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    if ["xn--", "sthree-"].iter().any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3"].iter().any(|s| name.ends_with(s))
    {
        return bad("uses a reserved prefix or suffix");
    }
    Ok(())
}

/// Checks an object key: 1 to [`MAX_KEY_BYTES`] bytes.
pub fn validate_key(key: &str) -> Result<(), ObjError> {
    if key.is_empty() {
        return Err(ObjError::InvalidKey("the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ObjError::InvalidKey("the key is longer than 1024 bytes"));
    }
    Ok(())
}

/// The relative path of an object's file below the bucket's object directory.
///
/// The key must have passed [`validate_key`].
pub fn key_to_rel_path(key: &str) -> PathBuf {
    let hex = hex::encode(key.as_bytes());
    let mut path = PathBuf::new();
    // Directory components take exactly DIR_CHUNK digits; the file keeps 1..=DIR_CHUNK.
    let dirs = hex.len().saturating_sub(1) / DIR_CHUNK;
    for i in 0..dirs {
        path.push(&hex[i * DIR_CHUNK..(i + 1) * DIR_CHUNK]);
    }
    path.push(format!("{}{OBJECT_SUFFIX}", &hex[dirs * DIR_CHUNK..]));
    path
}

/// The hex digits a file name of the object directory stands for, or `None` for a name that
/// no key maps to.
pub(crate) fn file_component(name: &str) -> Option<&str> {
    let hex = name.strip_suffix(OBJECT_SUFFIX)?;
    (!hex.is_empty() && hex.len() <= DIR_CHUNK && is_lower_hex(hex)).then_some(hex)
}

/// Whether a directory name of the object directory is a key component.
pub(crate) fn is_dir_component(name: &str) -> bool {
    name.len() == DIR_CHUNK && is_lower_hex(name)
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Decodes the hex digits of a whole key path back into the key.
pub(crate) fn decode_key(hex_digits: &str) -> Option<String> {
    let bytes = hex::decode(hex_digits).ok()?;
    String::from_utf8(bytes).ok()
}

/// An object address of the form `obs://bucket/key` (also accepted: `s3://bucket/key`), as
/// API requests name objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObsUrl {
    /// The bucket.
    pub bucket: String,
    /// The object key (may contain `/`).
    pub key: String,
}

impl ObsUrl {
    /// Parses and validates an object address.
    pub fn parse(url: &str) -> Result<Self, ObjError> {
        let rest = url
            .strip_prefix("obs://")
            .or_else(|| url.strip_prefix("s3://"))
            .ok_or_else(|| {
                ObjError::InvalidArgument(format!("{url:?} is not an obs://bucket/key address"))
            })?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| ObjError::InvalidArgument(format!("{url:?} names no object key")))?;
        validate_bucket_name(bucket)?;
        validate_key(key)?;
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl std::fmt::Display for ObsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "obs://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    fn assert_contained(key: &str) {
        validate_key(key).unwrap();
        let path = key_to_rel_path(key);
        assert!(path.is_relative(), "{key:?} → {path:?}");
        let comps: Vec<_> = path.components().collect();
        let last = comps.len() - 1;
        for (i, c) in comps.iter().enumerate() {
            let Component::Normal(name) = c else {
                panic!("{key:?} → non-normal component {c:?}")
            };
            let name = name.to_str().unwrap();
            if i == last {
                assert!(file_component(name).is_some(), "{name}");
            } else {
                assert!(is_dir_component(name), "{name}");
            }
            assert!(name.len() <= DIR_CHUNK + OBJECT_SUFFIX.len());
        }
        // The path round-trips to the key.
        let digits: String = comps
            .iter()
            .map(|c| {
                c.as_os_str()
                    .to_str()
                    .unwrap()
                    .trim_end_matches(OBJECT_SUFFIX)
            })
            .collect();
        assert_eq!(decode_key(&digits).as_deref(), Some(key));
    }

    #[test]
    fn hostile_keys_stay_inside_the_object_directory() {
        let long = "x".repeat(MAX_KEY_BYTES);
        let long_slashes = "../".repeat(MAX_KEY_BYTES / 3);
        for key in [
            "../x",
            "/abs",
            "a/../../b",
            "..",
            ".",
            "/",
            "a\0b",
            "\\..\\windows",
            ".cph-bucket.json",
            "a//b/",
            "ünïcødé/файл",
            long.as_str(),
            long_slashes.as_str(),
        ] {
            assert_contained(key);
        }
    }

    #[test]
    fn key_lengths_at_chunk_boundaries_map_to_distinct_paths() {
        // 100 bytes = exactly one chunk of hex digits: a file, not a directory.
        let k100 = "k".repeat(100);
        let k101 = "k".repeat(101);
        let p100 = key_to_rel_path(&k100);
        let p101 = key_to_rel_path(&k101);
        assert_eq!(p100.components().count(), 1);
        assert_eq!(p101.components().count(), 2);
        // The directory of the longer key has the same digits as the shorter key's file name,
        // but the suffix keeps the two apart.
        let dir = p101.components().next().unwrap().as_os_str().to_owned();
        assert_ne!(dir, p100.as_os_str());
        assert_contained(&k100);
        assert_contained(&k101);
    }

    #[test]
    fn keys_over_the_limit_or_empty_are_rejected() {
        assert!(validate_key("").is_err());
        assert!(validate_key(&"a".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(validate_key(&"a".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn hex_order_is_key_order() {
        let mut keys = vec!["b", "a/", "a", "a0", "a/b", "\u{7f}", "é", "A"];
        let mut hexes: Vec<String> = keys.iter().map(hex::encode).collect();
        keys.sort();
        hexes.sort();
        let decoded: Vec<String> = hexes.iter().map(|h| decode_key(h).unwrap()).collect();
        assert_eq!(decoded, keys);
    }

    #[test]
    fn foreign_names_are_not_components() {
        assert!(file_component(".cph-bucket.json").is_none());
        assert!(file_component(".o").is_none());
        assert!(file_component("AB.o").is_none());
        assert!(file_component("ab.o").is_some());
        assert!(!is_dir_component("ab"));
        assert!(is_dir_component(&"0".repeat(DIR_CHUNK)));
    }

    #[test]
    fn obs_urls_parse_into_bucket_and_key() {
        let u = ObsUrl::parse("obs://my-bucket/dir/app.apk").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("my-bucket", "dir/app.apk")
        );
        assert_eq!(u.to_string(), "obs://my-bucket/dir/app.apk");
        assert_eq!(ObsUrl::parse("s3://abc/k").unwrap().key, "k");
        for bad in [
            "obs://my-bucket",
            "obs://my-bucket/",
            "http://b/k",
            "obs://B/k",
            "obs:///k",
        ] {
            assert!(ObsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in [
            "abc",
            "my-bucket",
            "my.bucket.1",
            "0bucket",
            &"a".repeat(63),
        ] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "my_bucket",
            "-bucket",
            "bucket-",
            ".bucket",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--bucket",
            "bucket-s3alias",
            "..",
            "../etc",
            "a/b",
            "a b",
            "bücket",
            "",
        ] {
            assert!(
                matches!(
                    validate_bucket_name(bad),
                    Err(ObjError::InvalidBucketName(_))
                ),
                "{bad}"
            );
        }
    }
}
