//! The on-disk format of an object (or multipart part) file.
//!
//! One file holds the bytes of the object followed by a JSON trailer with its metadata and a
//! fixed 12-byte footer (`u32` little-endian trailer length, then the magic `CPHOBJ1\0`). Data
//! and metadata are therefore replaced together by one atomic rename, and an open file always
//! reads as one consistent version.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::ObjError;

const MAGIC: &[u8; 8] = b"CPHOBJ1\0";
const FOOTER_LEN: u64 = 12;
/// Upper bound of a trailer; user metadata is limited to 2 KiB by S3, so this is generous.
const MAX_TRAILER_LEN: u32 = 256 * 1024;

/// Attributes a writer gives an object: the HTTP representation headers and user metadata
/// (`x-amz-meta-*`, keys without the prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// User metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl ObjectAttrs {
    /// Total size of the user metadata, keys and values, in bytes.
    #[must_use]
    pub fn metadata_len(&self) -> usize {
        self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// What is known about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Length of the object's data in bytes.
    pub size: u64,
    /// The ETag without quotes: the MD5 of the data in hex, or `<md5 of part md5s>-<parts>` for
    /// an object assembled by a multipart upload.
    pub etag: String,
    /// When the object was written (millisecond precision).
    pub last_modified: SystemTime,
    /// Content headers and user metadata.
    pub attrs: ObjectAttrs,
    /// Number of parts for an object assembled by a multipart upload.
    pub parts_count: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    size: u64,
    etag: String,
    modified_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parts: Option<u32>,
    #[serde(default)]
    attrs: ObjectAttrs,
}

/// Milliseconds since the epoch, for a time that is not before it.
pub(crate) fn to_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The current time truncated to milliseconds (what the trailer keeps).
pub(crate) fn now_millis() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(to_millis(SystemTime::now()))
}

/// The trailer and footer bytes that follow an object's data.
pub(crate) fn encode_trailer(meta: &ObjectMeta) -> Result<Vec<u8>, ObjError> {
    let trailer = Trailer {
        size: meta.size,
        etag: meta.etag.clone(),
        modified_ms: to_millis(meta.last_modified),
        parts: meta.parts_count,
        attrs: meta.attrs.clone(),
    };
    let mut out = serde_json::to_vec(&trailer)
        .map_err(|e| ObjError::Corrupt(format!("cannot encode object metadata: {e}")))?;
    let len = u32::try_from(out.len())
        .ok()
        .filter(|l| *l <= MAX_TRAILER_LEN)
        .ok_or_else(|| ObjError::InvalidArgument("object metadata is too large".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

/// Reads the metadata of an object file (blocking). The file position is unspecified after.
pub(crate) fn read_meta(file: &mut File) -> Result<ObjectMeta, ObjError> {
    let file_len = file.metadata()?.len();
    let corrupt = |why: &str| ObjError::Corrupt(why.to_owned());
    if file_len < FOOTER_LEN {
        return Err(corrupt("object file shorter than its footer"));
    }
    file.seek(SeekFrom::Start(file_len - FOOTER_LEN))?;
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.read_exact(&mut footer)?;
    if &footer[4..] != MAGIC {
        return Err(corrupt("object file without footer magic"));
    }
    let len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]);
    if len > MAX_TRAILER_LEN || u64::from(len) + FOOTER_LEN > file_len {
        return Err(corrupt("object file with an impossible trailer length"));
    }
    let data_len = file_len - FOOTER_LEN - u64::from(len);
    file.seek(SeekFrom::Start(data_len))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf)?;
    let trailer: Trailer = serde_json::from_slice(&buf)
        .map_err(|e| ObjError::Corrupt(format!("object trailer: {e}")))?;
    if trailer.size != data_len {
        return Err(corrupt(
            "object trailer size disagrees with the file length",
        ));
    }
    Ok(ObjectMeta {
        size: trailer.size,
        etag: trailer.etag,
        last_modified: UNIX_EPOCH + Duration::from_millis(trailer.modified_ms),
        attrs: trailer.attrs,
        parts_count: trailer.parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn trailer_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        let meta = ObjectMeta {
            size: 5,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            last_modified: now_millis(),
            attrs: ObjectAttrs {
                content_type: Some("text/plain".into()),
                metadata: [("a".to_owned(), "b".to_owned())].into(),
                ..ObjectAttrs::default()
            },
            parts_count: None,
        };
        let mut f = File::create(&path).unwrap();
        f.write_all(b"hello").unwrap();
        f.write_all(&encode_trailer(&meta).unwrap()).unwrap();
        drop(f);
        let got = read_meta(&mut File::open(&path).unwrap()).unwrap();
        assert_eq!(got, meta);

        // A truncated file, a file without the magic and a wrong size are all corrupt.
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            read_meta(&mut File::open(&path).unwrap()),
            Err(ObjError::Corrupt(_))
        ));
        std::fs::write(&path, [0u8; 64]).unwrap();
        assert!(matches!(
            read_meta(&mut File::open(&path).unwrap()),
            Err(ObjError::Corrupt(_))
        ));
        let mut bytes = b"hello!".to_vec();
        bytes.extend(encode_trailer(&meta).unwrap());
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            read_meta(&mut File::open(&path).unwrap()),
            Err(ObjError::Corrupt(_))
        ));
    }
}
