//! Tar archives applied to phones and taken from them, through the phone's ADB connection.
//!
//! Everything happens through [`cph_adb::client::AdbClient`] (sync `push`/`pull`/`stat`/`list`
//! and a few shell commands), so the same code drives virtual phones and real Android.
//!
//! - [`apply_tar`] unpacks a tar onto a phone: the archive's tree lands under the phone's root
//!   (entry `data/local/tmp/x` becomes `/data/local/tmp/x`). Regular files stream from the
//!   archive straight into `push`; nothing is held in memory whole.
//! - [`StagedTar`] is an archive spooled to (or already lying in) a host file and validated
//!   completely; it can then be applied to any number of phones. This is how the service applies
//!   archives from object storage: fetched once per host into a local spool, validated once,
//!   fanned out to that host's phones, so an archive is refused as a whole before anything is
//!   written.
//! - [`export_tar`] walks a phone's files selected by `include`/`exclude` globs and writes them
//!   as a tar whose paths are relative to the phone's root (`data/...`), so that applying it
//!   restores byte-identical files with their modes and modification times.
//!
//! # What an archive may hold
//!
//! Regular files, directories, symbolic links and hard links, in ustar, GNU (long names) or PAX
//! form. Refused, naming the entry, as soon as it is read: paths with a `..` component or a
//! leading `/`; entries outside [`ApplyOptions::allowed_roots`]; symbolic links whose target,
//! resolved lexically from the link's directory, leaves the phone's root or the allowed roots;
//! hard links to anything but a regular file earlier in the same archive; entries at or below a
//! symbolic link the archive created; device files, FIFOs, sparse files and unknown types;
//! names that are not UTF-8, hold a NUL byte, exceed [`MAX_NAME_LEN`] bytes or make a device
//! path longer than the sync protocol carries; more than [`ApplyOptions::max_entries`] entries;
//! more than [`ApplyOptions::max_bytes`] bytes in total (checked against each header's declared
//! size before any of its bytes is written). GNU long-name and PAX extension records are read
//! only up to fixed limits, and a PAX `size` record that disagrees with the header is refused,
//! so a hostile archive can neither exhaust memory nor desynchronise the reader.
//!
//! Ownership, extended attributes, the set-id/sticky bits and the times of symbolic links are
//! not applied; permission bits (`0o777`) and the modification times of files and directories
//! are. adbd widens the mode of a pushed file (owner bits copied to group and others), so files
//! whose mode push cannot give, and all directories, get their modes with batched `chmod` once
//! every entry is written.
//!
//! Checks are lexical, on the archive's own entries: links that already exist on the phone are
//! the phone's, and a path through one is resolved by the phone (inside its sandbox).
//!
//! # Bounds
//!
//! Memory: one entry's extension records (≤ [`MAX_PAX_HEADER`] or [`MAX_LONG_NAME_RECORD`]),
//! the names remembered for hard links, links and final fix-ups (at most
//! [`ApplyOptions::max_entries`] paths of at most 1024 bytes; the link and file sets are also
//! capped by [`MAX_TRACKED_NAME_BYTES`]), and fixed transfer buffers. Every wait on the phone
//! is bounded by the client's timeouts; reads of the archive source are not timed out here.

mod apply;
mod export;
mod path;
mod reader;
mod spool;

pub use apply::{ApplyReport, StagedTar, apply_tar};
pub use export::{ExportLimits, ExportReport, export_tar};

use cph_adb::client::ClientError;
use std::path::PathBuf;

/// Longest entry name, link target or export pattern accepted, in bytes.
pub const MAX_NAME_LEN: usize = 4096;
/// Longest GNU long-name/long-link record read (a name of [`MAX_NAME_LEN`] bytes plus NULs).
pub const MAX_LONG_NAME_RECORD: u64 = MAX_NAME_LEN as u64 + 512;
/// Longest PAX extended header (local or global) read, in bytes.
pub const MAX_PAX_HEADER: u64 = 64 * 1024;
/// Default for [`ApplyOptions::max_entries`] and [`ExportLimits::max_entries`].
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default for [`ApplyOptions::max_bytes`] and [`ExportLimits::max_bytes`]: 6 GiB, the largest
/// archive PushFile accepts.
pub const DEFAULT_MAX_BYTES: u64 = 6 << 30;
/// Default for [`ExportLimits::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Most bytes of names one application or export remembers (paths of files for hard links,
/// links, directories whose mode is set at the end, walked roots). Beyond it the archive is
/// refused with [`ArchiveError::TooManyEntries`].
pub const MAX_TRACKED_NAME_BYTES: usize = 64 << 20;

/// Where an archive is kept while it is validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Staging {
    /// Stream straight through: each entry is checked when it is read and written at once. A
    /// hostile entry fails the operation, but entries before it have already been written.
    #[default]
    None,
    /// Spool the archive into a temporary file in this host directory while validating all of
    /// it, then apply it from there; the file is removed afterwards. A refused archive writes
    /// nothing on the phone. Needs disk space for the archive.
    TempFile(PathBuf),
}

/// What an archive may contain and how it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Top-level trees entries must lie in, as archive paths (`"data"`, `"cache"`, or deeper
    /// such as `"data/local/tmp"`); `None` allows the whole phone. Directory entries that are
    /// ancestors of an allowed root are accepted and left alone.
    pub allowed_roots: Option<Vec<String>>,
    /// Most entries (files, directories, links, PAX global headers).
    pub max_entries: usize,
    /// Most bytes of entry data in total, by the headers' declared sizes.
    pub max_bytes: u64,
    /// How [`apply_tar`] stages the archive.
    pub staging: Staging,
    /// Device directory the archive's tree lands in (`/apps/com.example` puts entry `a.apk`
    /// at `/apps/com.example/a.apk`); `None` is the device root. With a target directory,
    /// symbolic links must be relative (an absolute target would name a path outside it).
    pub target_dir: Option<String>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions::push_file()
    }
}

impl ApplyOptions {
    /// PushFile: the archive's tree lands anywhere under the phone's root; default limits;
    /// streamed through.
    pub fn push_file() -> Self {
        ApplyOptions {
            allowed_roots: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            staging: Staging::None,
            target_dir: None,
        }
    }

    /// Phone data (imports of exported data, shared files): only the `data/` and `cache/`
    /// trees; default limits; streamed through.
    pub fn phone_data() -> Self {
        ApplyOptions {
            allowed_roots: Some(vec!["data".into(), "cache".into()]),
            ..ApplyOptions::push_file()
        }
    }

    /// The device path an archive path lands at.
    pub(crate) fn device_path(&self, archive_path: &str) -> String {
        match self.target_dir.as_deref().map(|d| d.trim_end_matches('/')) {
            Some(dir) if !dir.is_empty() => format!("{dir}/{archive_path}"),
            _ => format!("/{archive_path}"),
        }
    }

    /// The same options with another staging mode.
    pub fn with_staging(mut self, staging: Staging) -> Self {
        self.staging = staging;
        self
    }
}

/// Why an archive entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a path component is '..'")]
    ParentDir,
    #[error("the path is absolute")]
    Absolute,
    #[error("the path lies outside the allowed trees {0}")]
    OutsideRoots(String),
    #[error("the path names the archive's root")]
    Root,
    #[error("the name is not UTF-8")]
    NotUtf8,
    #[error("the name contains a NUL byte")]
    Nul,
    #[error("the name is longer than {0} bytes")]
    NameTooLong(usize),
    #[error("the link target {target:?} {why}")]
    LinkEscapes { target: String, why: String },
    #[error("the hard link target {0:?} is not a regular file earlier in the archive")]
    HardLinkTarget(String),
    #[error("the path is at or below the symbolic link {0:?} of this archive")]
    ThroughLink(String),
    #[error("{0} entries are not allowed")]
    Type(&'static str),
    #[error("unsupported entry type {0:?}")]
    UnknownType(char),
}

/// Why an operation failed. Callers branch on [`ArchiveError::is_archive_fault`]: the archive
/// (or the export request) is at fault, or the phone or host is.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry is hostile or unsupported; nothing after it was applied.
    #[error("archive entry {entry:?} refused: {reason}")]
    Refused { entry: String, reason: Refusal },
    /// More entries than allowed; `entry` is the first one past the limit.
    #[error("archive entry {entry:?} is past the limit of {limit} entries")]
    TooManyEntries { entry: String, limit: usize },
    /// The names an application must remember (files for hard links, links, directories)
    /// exceed [`MAX_TRACKED_NAME_BYTES`].
    #[error("the archive's names exceed {limit} bytes in total")]
    NamesTooLarge { limit: usize },
    /// The declared sizes add up to more than allowed; `entry` is the one that crossed the line.
    #[error("archive entry {entry:?} ({size} bytes) takes the archive past {limit} bytes")]
    TooLarge {
        entry: String,
        size: u64,
        limit: u64,
    },
    /// The bytes are not a well-formed tar (bad checksum, truncated, inconsistent extensions).
    #[error("malformed archive: {0}")]
    Malformed(String),
    /// An include or exclude pattern of an export is not acceptable.
    #[error("invalid pattern {pattern:?}: {why}")]
    Pattern { pattern: String, why: String },
    /// An export found more than its limits allow.
    #[error("export limit exceeded: {0}")]
    ExportLimit(String),
    /// A file changed size on the phone while it was exported.
    #[error("{path} changed while it was exported ({expected} bytes expected, {actual} read)")]
    FileChanged {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// A transfer or command through ADB failed.
    #[error("{what}: {source}")]
    Device {
        what: String,
        #[source]
        source: ClientError,
    },
    /// A command on the phone ran and failed.
    #[error("{what} failed on the phone (exit {exit:?}): {output}")]
    Command {
        what: String,
        exit: Option<i32>,
        output: String,
    },
    /// A staged archive file changed after it was validated.
    #[error("the staged archive {0} changed after validation")]
    StagedChanged(PathBuf),
    /// Reading the archive or writing the spool or the output failed on the host.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl ArchiveError {
    /// True when the archive or the request is at fault (hostile, malformed, too large, bad
    /// pattern), as opposed to the phone, the connection or the host.
    pub fn is_archive_fault(&self) -> bool {
        matches!(
            self,
            ArchiveError::Refused { .. }
                | ArchiveError::TooManyEntries { .. }
                | ArchiveError::NamesTooLarge { .. }
                | ArchiveError::TooLarge { .. }
                | ArchiveError::Malformed(_)
                | ArchiveError::Pattern { .. }
                | ArchiveError::ExportLimit(_)
        )
    }

    /// The archive entry an error names, if any.
    pub fn entry(&self) -> Option<&str> {
        match self {
            ArchiveError::Refused { entry, .. }
            | ArchiveError::TooLarge { entry, .. }
            | ArchiveError::TooManyEntries { entry, .. } => Some(entry),
            _ => None,
        }
    }

    pub(crate) fn refused(entry: &[u8], reason: Refusal) -> Self {
        ArchiveError::Refused {
            entry: shown_name(entry),
            reason,
        }
    }

    pub(crate) fn device(what: impl Into<String>, source: ClientError) -> Self {
        ArchiveError::Device {
            what: what.into(),
            source,
        }
    }
}

/// A name as shown in errors: lossy UTF-8, at most 512 bytes.
pub(crate) fn shown_name(name: &[u8]) -> String {
    const SHOWN: usize = 512;
    let s = String::from_utf8_lossy(&name[..name.len().min(SHOWN)]).into_owned();
    if name.len() > SHOWN { s + "…" } else { s }
}
