//! APK files: the zip container and its binary XML (AXML) `AndroidManifest.xml`.
//!
//! [`parse`] reads what the package manager needs from an APK (package name, version, SDK
//! levels, split name, permissions, activities) while streaming the zip from a seekable
//! reader: only the manifest is ever held in memory, and it is refused above
//! [`MAX_MANIFEST_BYTES`] whatever the zip claims, so a zip bomb cannot inflate it.
//!
//! The AXML format is the one `aapt`/`aapt2` write: a `RES_XML_TYPE` chunk holding a string
//! pool (UTF-8 or UTF-16), a resource map (attribute name index → `android:` attribute
//! resource id) and start/end element chunks with typed attribute values. Attributes of the
//! `android:` namespace are matched by resource id first (as Android does, which defeats
//! renamed attribute strings) and by name second.
//!
//! [`build_test_apk`] goes the other way: it encodes a minimal but valid APK (a zip with a
//! binary manifest), used for an image's preinstalled packages and in tests.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::rc::Rc;

/// Largest `AndroidManifest.xml` (uncompressed) that [`parse`] accepts.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Most zip entries an APK may have (real APKs have at most a few tens of thousands).
pub const MAX_ZIP_ENTRIES: usize = 500_000;
/// Deepest element nesting accepted in a manifest.
const MAX_DEPTH: usize = 256;
/// Most characters decoded from the string pool for one manifest (all strings together).
const MAX_DECODED_CHARS: usize = 16 * 1024 * 1024;
/// Name of the manifest entry.
const MANIFEST_ENTRY: &str = "AndroidManifest.xml";
/// Most characters of text (names) one parse result may hold.
const MAX_RESULT_CHARS: usize = 4 * 1024 * 1024;
/// URI of the `android:` namespace.
pub const ANDROID_NS: &str = "http://schemas.android.com/apk/res/android";

// Chunk types (ResourceTypes.h).
const RES_STRING_POOL_TYPE: u16 = 0x0001;
const RES_XML_TYPE: u16 = 0x0003;
const RES_XML_START_NAMESPACE_TYPE: u16 = 0x0100;
const RES_XML_END_NAMESPACE_TYPE: u16 = 0x0101;
const RES_XML_START_ELEMENT_TYPE: u16 = 0x0102;
const RES_XML_END_ELEMENT_TYPE: u16 = 0x0103;
const RES_XML_RESOURCE_MAP_TYPE: u16 = 0x0180;
/// String pool flag: strings are UTF-8 (else UTF-16).
const UTF8_FLAG: u32 = 0x100;
/// "No string" index.
const NO_INDEX: u32 = 0xffff_ffff;

// Res_value data types.
const TYPE_REFERENCE: u8 = 0x01;
const TYPE_STRING: u8 = 0x03;
const TYPE_FIRST_INT: u8 = 0x10;
const TYPE_INT_DEC: u8 = 0x10;
const TYPE_INT_BOOLEAN: u8 = 0x12;
const TYPE_LAST_INT: u8 = 0x1f;

/// Resource ids of the `android:` attributes read here (`android.R.attr`).
pub mod attr {
    pub const LABEL: u32 = 0x0101_0001;
    pub const NAME: u32 = 0x0101_0003;
    pub const DEBUGGABLE: u32 = 0x0101_000f;
    pub const MIN_SDK_VERSION: u32 = 0x0101_020c;
    pub const VERSION_CODE: u32 = 0x0101_021b;
    pub const VERSION_NAME: u32 = 0x0101_021c;
    pub const TARGET_SDK_VERSION: u32 = 0x0101_0270;
    pub const TEST_ONLY: u32 = 0x0101_0272;
    pub const VERSION_CODE_MAJOR: u32 = 0x0101_0576;
}

/// The SDK level Android gives a pre-release codename in `minSdkVersion`/`targetSdkVersion`.
const SDK_CUR_DEVELOPMENT: u32 = 10_000;

/// Why an APK could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApkError {
    /// Not a zip, or a zip without `AndroidManifest.xml` (or with an unreadable one).
    #[error("not an APK: {0}")]
    NotAnApk(String),
    /// The manifest exceeds [`MAX_MANIFEST_BYTES`].
    #[error("AndroidManifest.xml is larger than {MAX_MANIFEST_BYTES} bytes")]
    ManifestTooLarge,
    /// The manifest is not valid binary XML, or lacks what every manifest has.
    #[error("malformed AndroidManifest.xml: {0}")]
    Malformed(String),
    /// The `package` attribute is missing or not a valid package name.
    #[error("invalid package name {0:?}")]
    BadPackageName(String),
    /// Reading the file failed.
    #[error("reading the APK failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What [`parse`] reads from an APK's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApkInfo {
    /// `package`.
    pub package: String,
    /// `versionCode` + (`versionCodeMajor` << 32); 0 if absent.
    pub version_code: i64,
    /// `android:versionName`, if given as a string.
    pub version_name: Option<String>,
    /// `<uses-sdk android:minSdkVersion>`; 1 when absent (Android's default); a pre-release
    /// codename counts as 10000.
    pub min_sdk: u32,
    /// `<uses-sdk android:targetSdkVersion>`; `min_sdk` when absent.
    pub target_sdk: u32,
    /// `split` of a split APK; `None` for a base APK.
    pub split: Option<String>,
    /// `<application android:label>` when it is a raw string (not a resource reference).
    pub label: Option<String>,
    /// `<uses-permission>` (and `-sdk-23`) names, in manifest order, without duplicates.
    pub permissions: Vec<String>,
    /// The first activity (or alias) with a MAIN/LAUNCHER intent filter, fully qualified.
    pub launchable_activity: Option<String>,
    /// Every `<activity>` and `<activity-alias>`, fully qualified, in manifest order.
    pub activities: Vec<String>,
    /// `<application android:debuggable="true">`.
    pub debuggable: bool,
    /// `<application android:testOnly="true">` (installs need `-t`).
    pub test_only: bool,
}

/// Reads an APK from a seekable reader (a file, or a `Cursor` over bytes).
///
/// Only the central directory and the manifest are read; the manifest is bounded by
/// [`MAX_MANIFEST_BYTES`] of actual decompressed output, whatever sizes the zip declares.
pub fn parse<R: Read + Seek>(reader: R) -> Result<ApkInfo, ApkError> {
    let manifest = read_manifest(reader)?;
    parse_manifest(&manifest)
}

/// Reads the APK at a host path (see [`parse`]).
pub fn parse_file(path: &std::path::Path) -> Result<ApkInfo, ApkError> {
    let file = std::fs::File::open(path)?;
    parse(std::io::BufReader::new(file))
}

/// Extracts the raw (binary) `AndroidManifest.xml` from an APK.
pub fn read_manifest<R: Read + Seek>(reader: R) -> Result<Vec<u8>, ApkError> {
    let mut zip = match zip::ZipArchive::new(reader) {
        Ok(z) => z,
        Err(zip::result::ZipError::Io(e)) => return Err(ApkError::Io(e)),
        Err(e) => return Err(ApkError::NotAnApk(format!("not a zip file ({e})"))),
    };
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(ApkError::NotAnApk(format!(
            "too many zip entries ({})",
            zip.len()
        )));
    }
    let entry = match zip.by_name(MANIFEST_ENTRY) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ApkError::NotAnApk(
                "no AndroidManifest.xml in the archive".into(),
            ));
        }
        Err(zip::result::ZipError::Io(e)) => return Err(ApkError::Io(e)),
        Err(e) => {
            return Err(ApkError::NotAnApk(format!(
                "unreadable AndroidManifest.xml ({e})"
            )));
        }
    };
    if entry.encrypted() {
        return Err(ApkError::NotAnApk(
            "AndroidManifest.xml is encrypted".into(),
        ));
    }
    if entry.size() > MAX_MANIFEST_BYTES {
        return Err(ApkError::ManifestTooLarge);
    }
    let mut out = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(64 * 1024));
    let mut limited = entry.take(MAX_MANIFEST_BYTES + 1);
    if let Err(e) = limited.read_to_end(&mut out) {
        // Corrupt compressed data or a CRC mismatch surface as I/O errors of kind
        // InvalidData/Other from the decoder: the file is not a usable APK.
        return Err(match e.kind() {
            std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::Other
            | std::io::ErrorKind::UnexpectedEof => {
                ApkError::NotAnApk(format!("corrupt AndroidManifest.xml entry ({e})"))
            }
            _ => ApkError::Io(e),
        });
    }
    if out.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ApkError::ManifestTooLarge);
    }
    Ok(out)
}

/// Parses a binary `AndroidManifest.xml`.
pub fn parse_manifest(bytes: &[u8]) -> Result<ApkInfo, ApkError> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ApkError::ManifestTooLarge);
    }
    let doc = Document::parse(bytes)?;
    doc.extract()
}

/// Checks a package name the way Android does for installable packages: at least two
/// dot-separated segments, each starting with an ASCII letter and continuing with letters,
/// digits or `_` (`android`, the framework, is the one single-segment name allowed).
pub fn is_valid_package_name(name: &str) -> bool {
    if name == "android" {
        return true;
    }
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut segments = 0;
    for seg in name.split('.') {
        let mut chars = seg.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() => {}
            _ => return false,
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        segments += 1;
    }
    segments >= 2
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn malformed(msg: &str) -> ApkError {
    ApkError::Malformed(msg.to_string())
}

/// A string pool, decoded lazily with a budget so overlapping offsets cannot blow up memory.
struct StringPool<'a> {
    /// The whole chunk.
    chunk: &'a [u8],
    /// Offset of each string relative to `strings_start`.
    offsets: Vec<u32>,
    strings_start: usize,
    utf8: bool,
    cache: std::cell::RefCell<HashMap<u32, Rc<str>>>,
    budget: std::cell::Cell<usize>,
}

impl<'a> StringPool<'a> {
    fn parse(chunk: &'a [u8], header_size: usize) -> Result<StringPool<'a>, ApkError> {
        let bad = || malformed("bad string pool");
        let count = u32_at(chunk, 8).ok_or_else(bad)? as usize;
        let flags = u32_at(chunk, 16).ok_or_else(bad)?;
        let strings_start = u32_at(chunk, 20).ok_or_else(bad)? as usize;
        if header_size < 28 {
            return Err(bad());
        }
        let table_end = count
            .checked_mul(4)
            .and_then(|n| n.checked_add(header_size))
            .ok_or_else(bad)?;
        if table_end > chunk.len() || (count > 0 && strings_start > chunk.len()) {
            return Err(bad());
        }
        let offsets = (0..count)
            .map(|i| u32_at(chunk, header_size + 4 * i).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StringPool {
            chunk,
            offsets,
            strings_start,
            utf8: flags & UTF8_FLAG != 0,
            cache: Default::default(),
            budget: std::cell::Cell::new(MAX_DECODED_CHARS),
        })
    }

    /// The string at `idx`; `None` for [`NO_INDEX`] and out-of-range indexes.
    fn get(&self, idx: u32) -> Result<Option<Rc<str>>, ApkError> {
        if idx == NO_INDEX {
            return Ok(None);
        }
        let Some(&rel) = self.offsets.get(idx as usize) else {
            return Ok(None);
        };
        if let Some(s) = self.cache.borrow().get(&idx) {
            return Ok(Some(s.clone()));
        }
        let start = self
            .strings_start
            .checked_add(rel as usize)
            .ok_or_else(|| malformed("string offset overflow"))?;
        let s: Rc<str> = if self.utf8 {
            self.decode_utf8(start)?
        } else {
            self.decode_utf16(start)?
        }
        .into();
        let used = s.len();
        let left = self.budget.get();
        if used > left {
            return Err(malformed("string pool decodes to too much text"));
        }
        self.budget.set(left - used);
        self.cache.borrow_mut().insert(idx, s.clone());
        Ok(Some(s))
    }

    fn decode_utf8(&self, mut at: usize) -> Result<String, ApkError> {
        let bad = || malformed("string out of bounds");
        let c = self.chunk;
        // Length in UTF-16 units (ignored), then in bytes; each 1 or 2 bytes.
        for pass in 0..2 {
            let b0 = *c.get(at).ok_or_else(bad)? as usize;
            let len = if b0 & 0x80 != 0 {
                let b1 = *c.get(at + 1).ok_or_else(bad)? as usize;
                at += 2;
                ((b0 & 0x7f) << 8) | b1
            } else {
                at += 1;
                b0
            };
            if pass == 1 {
                let bytes = c
                    .get(at..at.checked_add(len).ok_or_else(bad)?)
                    .ok_or_else(bad)?;
                return Ok(String::from_utf8_lossy(bytes).into_owned());
            }
        }
        Err(bad())
    }

    fn decode_utf16(&self, at: usize) -> Result<String, ApkError> {
        let bad = || malformed("string out of bounds");
        let c = self.chunk;
        let u0 = u16_at(c, at).ok_or_else(bad)? as usize;
        let (len, data) = if u0 & 0x8000 != 0 {
            let u1 = u16_at(c, at + 2).ok_or_else(bad)? as usize;
            (((u0 & 0x7fff) << 16) | u1, at + 4)
        } else {
            (u0, at + 2)
        };
        let end = len
            .checked_mul(2)
            .and_then(|n| n.checked_add(data))
            .ok_or_else(bad)?;
        let bytes = c.get(data..end).ok_or_else(bad)?;
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        Ok(String::from_utf16_lossy(&units))
    }
}

/// One attribute, by string indexes and its typed value.
#[derive(Debug, Clone, Copy)]
struct RawAttr {
    ns: u32,
    name: u32,
    raw: u32,
    typ: u8,
    data: u32,
}

/// One element: its name, parent and attributes.
#[derive(Debug)]
struct RawElement {
    ns: u32,
    name: u32,
    parent: Option<usize>,
    attrs: Vec<RawAttr>,
}

/// A decoded manifest: elements in document order.
struct Document<'a> {
    pool: StringPool<'a>,
    res_map: Vec<u32>,
    elements: Vec<RawElement>,
    /// Child element indexes of each element.
    children: Vec<Vec<usize>>,
}

impl<'a> Document<'a> {
    fn parse(b: &'a [u8]) -> Result<Document<'a>, ApkError> {
        let typ = u16_at(b, 0).ok_or_else(|| malformed("empty file"))?;
        let header = u16_at(b, 2).ok_or_else(|| malformed("truncated header"))? as usize;
        let size = u32_at(b, 4).ok_or_else(|| malformed("truncated header"))? as usize;
        if typ != RES_XML_TYPE {
            return Err(malformed("not a binary XML file"));
        }
        if header < 8 || header > b.len() {
            return Err(malformed("bad XML header"));
        }
        // Tolerate a declared size beyond the data (some packers do that), not below it.
        let end = size.min(b.len());
        if end < header {
            return Err(malformed("bad XML size"));
        }
        let mut pool: Option<StringPool<'a>> = None;
        let mut res_map = Vec::new();
        let mut elements: Vec<RawElement> = Vec::new();
        let mut children: Vec<Vec<usize>> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut off = header;
        while off + 8 <= end {
            let ctype = u16_at(b, off).ok_or_else(|| malformed("truncated chunk"))?;
            let chdr = u16_at(b, off + 2).ok_or_else(|| malformed("truncated chunk"))? as usize;
            let csize = u32_at(b, off + 4).ok_or_else(|| malformed("truncated chunk"))? as usize;
            if csize < 8 || chdr < 8 || chdr > csize || csize > end - off {
                return Err(malformed("bad chunk size"));
            }
            let chunk = &b[off..off + csize];
            match ctype {
                // Only the first string pool counts, as in Android.
                RES_STRING_POOL_TYPE if pool.is_none() => {
                    pool = Some(StringPool::parse(chunk, chdr)?);
                }
                RES_XML_RESOURCE_MAP_TYPE => {
                    res_map = chunk[chdr..]
                        .chunks_exact(4)
                        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]))
                        .collect();
                }
                RES_XML_START_ELEMENT_TYPE => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(malformed("elements nested too deeply"));
                    }
                    let el = parse_start_element(chunk, chdr, stack.last().copied())?;
                    if el.parent.is_none() && !elements.is_empty() {
                        return Err(malformed("more than one root element"));
                    }
                    if let Some(p) = el.parent {
                        children[p].push(elements.len());
                    }
                    stack.push(elements.len());
                    elements.push(el);
                    children.push(Vec::new());
                }
                RES_XML_END_ELEMENT_TYPE => {
                    let Some(_) = stack.pop() else {
                        return Err(malformed("unbalanced end element"));
                    };
                }
                RES_XML_START_NAMESPACE_TYPE | RES_XML_END_NAMESPACE_TYPE => {}
                _ => {} // CDATA, last-chunk markers, unknown: skipped
            }
            off += csize;
        }
        let pool = pool.ok_or_else(|| malformed("no string pool"))?;
        if elements.is_empty() {
            return Err(malformed("no elements"));
        }
        Ok(Document {
            pool,
            res_map,
            elements,
            children,
        })
    }

    fn str(&self, idx: u32) -> Result<Option<Rc<str>>, ApkError> {
        self.pool.get(idx)
    }

    /// Whether element `i` is `<name>` (no namespace).
    fn is(&self, i: usize, name: &str) -> Result<bool, ApkError> {
        let el = &self.elements[i];
        if el.ns != NO_INDEX && self.str(el.ns)?.is_some_and(|s| !s.is_empty()) {
            return Ok(false);
        }
        Ok(self.str(el.name)?.is_some_and(|s| &*s == name))
    }

    /// Whether `a` is the `android:` attribute with this resource id and name.
    fn is_android_attr(&self, a: &RawAttr, res_id: u32, name: &str) -> Result<bool, ApkError> {
        if let Some(&id) = self.res_map.get(a.name as usize)
            && id != 0
        {
            return Ok(id == res_id);
        }
        let ns_ok = self.str(a.ns)?.is_some_and(|s| &*s == ANDROID_NS);
        Ok(ns_ok && self.str(a.name)?.is_some_and(|s| &*s == name))
    }

    fn android_attr(&self, i: usize, res_id: u32, name: &str) -> Result<Option<RawAttr>, ApkError> {
        for a in &self.elements[i].attrs {
            if self.is_android_attr(a, res_id, name)? {
                return Ok(Some(*a));
            }
        }
        Ok(None)
    }

    /// An attribute without namespace (`package`, `split`).
    fn plain_attr(&self, i: usize, name: &str) -> Result<Option<RawAttr>, ApkError> {
        for a in &self.elements[i].attrs {
            if a.ns != NO_INDEX {
                continue;
            }
            if self.res_map.get(a.name as usize).is_some_and(|&id| id != 0) {
                continue;
            }
            if self.str(a.name)?.is_some_and(|s| &*s == name) {
                return Ok(Some(*a));
            }
        }
        Ok(None)
    }

    /// The value as a string: the typed string, else the raw value text.
    fn attr_string(&self, a: &RawAttr) -> Result<Option<String>, ApkError> {
        if a.typ == TYPE_STRING {
            return Ok(self.str(a.data)?.map(|s| s.to_string()));
        }
        Ok(self.str(a.raw)?.map(|s| s.to_string()))
    }

    /// The value as an integer: typed ints as unsigned 32-bit, strings parsed (dec or 0x hex).
    fn attr_int(&self, a: &RawAttr) -> Result<Option<u32>, ApkError> {
        if (TYPE_FIRST_INT..=TYPE_LAST_INT).contains(&a.typ) {
            return Ok(Some(a.data));
        }
        let Some(s) = self.attr_string(a)? else {
            return Ok(None);
        };
        let s = s.trim();
        Ok(
            if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                u32::from_str_radix(hex, 16).ok()
            } else {
                s.parse::<i64>().ok().map(|v| v as u32)
            },
        )
    }

    fn attr_bool(&self, a: &RawAttr) -> Result<bool, ApkError> {
        if a.typ == TYPE_INT_BOOLEAN || a.typ == TYPE_INT_DEC {
            return Ok(a.data != 0);
        }
        Ok(self
            .attr_string(a)?
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("true")))
    }

    /// An SDK level: an int, or a codename (a pre-release, counted as 10000).
    fn attr_sdk(&self, a: &RawAttr) -> Result<Option<u32>, ApkError> {
        if let Some(v) = self.attr_int(a)? {
            return Ok(Some(v));
        }
        if a.typ == TYPE_REFERENCE {
            return Ok(None);
        }
        Ok(self
            .attr_string(a)?
            .filter(|s| !s.trim().is_empty())
            .map(|_| SDK_CUR_DEVELOPMENT))
    }

    fn children(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        self.children[parent].iter().copied()
    }

    fn extract(&self) -> Result<ApkInfo, ApkError> {
        let root = 0;
        if !self.is(root, "manifest")? {
            return Err(malformed("the root element is not <manifest>"));
        }
        let package = match self.plain_attr(root, "package")? {
            Some(a) => self.attr_string(&a)?.unwrap_or_default(),
            None => String::new(),
        };
        if !is_valid_package_name(&package) {
            return Err(ApkError::BadPackageName(package));
        }
        let mut version_code: i64 = 0;
        if let Some(a) = self.android_attr(root, attr::VERSION_CODE, "versionCode")? {
            version_code = i64::from(self.attr_int(&a)?.unwrap_or(0));
        }
        if let Some(a) = self.android_attr(root, attr::VERSION_CODE_MAJOR, "versionCodeMajor")? {
            let major = i64::from(self.attr_int(&a)?.unwrap_or(0));
            version_code |= major << 32;
        }
        let version_name = match self.android_attr(root, attr::VERSION_NAME, "versionName")? {
            Some(a) if a.typ != TYPE_REFERENCE => self.attr_string(&a)?,
            _ => None,
        };
        let split = match self.plain_attr(root, "split")? {
            Some(a) => self.attr_string(&a)?.filter(|s| !s.is_empty()),
            None => None,
        };

        let mut min_sdk = None;
        let mut target_sdk = None;
        let mut permissions: Vec<String> = Vec::new();
        let mut label = None;
        let mut debuggable = false;
        let mut test_only = false;
        let mut activities = Vec::new();
        let mut launchable = None;
        // Everything copied into the result counts against one budget, so a manifest that
        // repeats a long string in many elements cannot make the result huge.
        let mut out_budget = MAX_RESULT_CHARS;
        let mut spend = |s: &str| -> Result<(), ApkError> {
            out_budget = out_budget
                .checked_sub(s.len())
                .ok_or_else(|| malformed("manifest declares too much text"))?;
            Ok(())
        };
        for child in self.children(root).collect::<Vec<_>>() {
            if self.is(child, "uses-sdk")? {
                if let Some(a) = self.android_attr(child, attr::MIN_SDK_VERSION, "minSdkVersion")? {
                    min_sdk = self.attr_sdk(&a)?;
                }
                if let Some(a) =
                    self.android_attr(child, attr::TARGET_SDK_VERSION, "targetSdkVersion")?
                {
                    target_sdk = self.attr_sdk(&a)?;
                }
            } else if self.is(child, "uses-permission")?
                || self.is(child, "uses-permission-sdk-23")?
                || self.is(child, "uses-permission-sdk-m")?
            {
                if let Some(a) = self.android_attr(child, attr::NAME, "name")?
                    && let Some(name) = self.attr_string(&a)?
                    && !permissions.contains(&name)
                {
                    spend(&name)?;
                    permissions.push(name);
                }
            } else if self.is(child, "application")? {
                if let Some(a) = self.android_attr(child, attr::LABEL, "label")?
                    && a.typ == TYPE_STRING
                {
                    label = self.attr_string(&a)?;
                }
                if let Some(a) = self.android_attr(child, attr::DEBUGGABLE, "debuggable")? {
                    debuggable = self.attr_bool(&a)?;
                }
                if let Some(a) = self.android_attr(child, attr::TEST_ONLY, "testOnly")? {
                    test_only = self.attr_bool(&a)?;
                }
                for comp in self.children(child).collect::<Vec<_>>() {
                    if !(self.is(comp, "activity")? || self.is(comp, "activity-alias")?) {
                        continue;
                    }
                    let Some(a) = self.android_attr(comp, attr::NAME, "name")? else {
                        continue;
                    };
                    let Some(name) = self.attr_string(&a)? else {
                        continue;
                    };
                    let name = qualify(&package, &name);
                    spend(&name)?;
                    if launchable.is_none() && self.is_launcher(comp)? {
                        launchable = Some(name.clone());
                    }
                    activities.push(name);
                }
            }
        }
        let min_sdk = min_sdk.unwrap_or(1);
        Ok(ApkInfo {
            package,
            version_code,
            version_name,
            min_sdk,
            target_sdk: target_sdk.unwrap_or(min_sdk),
            split,
            label,
            permissions,
            launchable_activity: launchable,
            activities,
            debuggable,
            test_only,
        })
    }

    /// Whether the component has an intent filter with action MAIN and category LAUNCHER.
    fn is_launcher(&self, comp: usize) -> Result<bool, ApkError> {
        for filter in self.children(comp).collect::<Vec<_>>() {
            if !self.is(filter, "intent-filter")? {
                continue;
            }
            let (mut main, mut launcher) = (false, false);
            for item in self.children(filter).collect::<Vec<_>>() {
                let value = match self.android_attr(item, attr::NAME, "name")? {
                    Some(a) => self.attr_string(&a)?,
                    None => None,
                };
                let Some(value) = value else { continue };
                if self.is(item, "action")? && value == "android.intent.action.MAIN" {
                    main = true;
                }
                if self.is(item, "category")? && value == "android.intent.category.LAUNCHER" {
                    launcher = true;
                }
            }
            if main && launcher {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Resolves a component name relative to its package (`.Main` or `Main` → `pkg.Main`).
pub fn qualify(package: &str, name: &str) -> String {
    if let Some(rest) = name.strip_prefix('.') {
        format!("{package}.{rest}")
    } else if !name.contains('.') {
        format!("{package}.{name}")
    } else {
        name.to_string()
    }
}

fn parse_start_element(
    chunk: &[u8],
    header: usize,
    parent: Option<usize>,
) -> Result<RawElement, ApkError> {
    let bad = || malformed("bad start element");
    let ext = header;
    let ns = u32_at(chunk, ext).ok_or_else(bad)?;
    let name = u32_at(chunk, ext + 4).ok_or_else(bad)?;
    let attr_start = u16_at(chunk, ext + 8).ok_or_else(bad)? as usize;
    let attr_size = u16_at(chunk, ext + 10).ok_or_else(bad)? as usize;
    let count = u16_at(chunk, ext + 12).ok_or_else(bad)? as usize;
    if count > 0 && attr_size < 20 {
        return Err(bad());
    }
    let mut attrs = Vec::with_capacity(count);
    for i in 0..count {
        let at = ext + attr_start + i * attr_size;
        if at + 20 > chunk.len() {
            return Err(bad());
        }
        attrs.push(RawAttr {
            ns: u32_at(chunk, at).ok_or_else(bad)?,
            name: u32_at(chunk, at + 4).ok_or_else(bad)?,
            raw: u32_at(chunk, at + 8).ok_or_else(bad)?,
            typ: chunk[at + 15],
            data: u32_at(chunk, at + 16).ok_or_else(bad)?,
        });
    }
    Ok(RawElement {
        ns,
        name,
        parent,
        attrs,
    })
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// A typed attribute value for [`XmlElement`].
#[derive(Debug, Clone, PartialEq)]
pub enum XmlValue {
    /// A string (`TYPE_STRING`).
    Str(String),
    /// A decimal integer (`TYPE_INT_DEC`).
    Int(u32),
    /// A boolean (`TYPE_INT_BOOLEAN`).
    Bool(bool),
    /// A resource reference (`TYPE_REFERENCE`), e.g. `@string/app_name`.
    Ref(u32),
}

/// An attribute: `android:` ones carry their resource id.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlAttr {
    /// `Some(id)` for an `android:` attribute (namespaced, in the resource map).
    pub android_id: Option<u32>,
    pub name: String,
    pub value: XmlValue,
}

/// An element tree to encode as binary XML.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XmlElement {
    pub name: String,
    pub attrs: Vec<XmlAttr>,
    pub children: Vec<XmlElement>,
}

impl XmlElement {
    /// An element without attributes or children.
    pub fn new(name: &str) -> XmlElement {
        XmlElement {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Adds an `android:` attribute.
    pub fn android(mut self, id: u32, name: &str, value: XmlValue) -> XmlElement {
        self.attrs.push(XmlAttr {
            android_id: Some(id),
            name: name.to_string(),
            value,
        });
        self
    }

    /// Adds an attribute without namespace.
    pub fn plain(mut self, name: &str, value: &str) -> XmlElement {
        self.attrs.push(XmlAttr {
            android_id: None,
            name: name.to_string(),
            value: XmlValue::Str(value.to_string()),
        });
        self
    }

    /// Adds a child element.
    pub fn child(mut self, child: XmlElement) -> XmlElement {
        self.children.push(child);
        self
    }
}

/// Builds the binary XML form of `root`, with the `android:` namespace declared on it.
/// `utf8` chooses the string pool encoding (aapt2 writes UTF-8 or UTF-16 pools; both are read).
pub fn encode_xml(root: &XmlElement, utf8: bool) -> Vec<u8> {
    // Strings: android attribute names first (their index is their resource map slot).
    let mut strings: Vec<String> = Vec::new();
    let mut res_ids: Vec<u32> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    fn collect_attr_names(e: &XmlElement, out: &mut Vec<(String, u32)>) {
        for a in &e.attrs {
            if let Some(id) = a.android_id
                && !out.iter().any(|(n, _)| n == &a.name)
            {
                out.push((a.name.clone(), id));
            }
        }
        for c in &e.children {
            collect_attr_names(c, out);
        }
    }
    let mut android_names = Vec::new();
    collect_attr_names(root, &mut android_names);
    for (name, id) in android_names {
        index.insert(name.clone(), strings.len() as u32);
        strings.push(name);
        res_ids.push(id);
    }
    // Android attribute names live in the resource-mapped slots; other strings (which may
    // repeat those names as values) get their own slots after them.
    let mut other: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: &str, strings: &mut Vec<String>| -> u32 {
        if let Some(&i) = other.get(s) {
            return i;
        }
        let i = strings.len() as u32;
        strings.push(s.to_string());
        other.insert(s.to_string(), i);
        i
    };
    let ns_prefix = intern("android", &mut strings);
    let ns_uri = intern(ANDROID_NS, &mut strings);

    let mut body: Vec<u8> = Vec::new();
    put_chunk(&mut body, RES_XML_START_NAMESPACE_TYPE, 16, |c| {
        c.extend_from_slice(&1u32.to_le_bytes());
        c.extend_from_slice(&NO_INDEX.to_le_bytes());
        c.extend_from_slice(&ns_prefix.to_le_bytes());
        c.extend_from_slice(&ns_uri.to_le_bytes());
    });
    let mut line = 1u32;
    encode_element(
        root,
        &mut body,
        &mut strings,
        &index,
        &mut intern,
        ns_uri,
        &mut line,
    );
    put_chunk(&mut body, RES_XML_END_NAMESPACE_TYPE, 16, |c| {
        c.extend_from_slice(&line.to_le_bytes());
        c.extend_from_slice(&NO_INDEX.to_le_bytes());
        c.extend_from_slice(&ns_prefix.to_le_bytes());
        c.extend_from_slice(&ns_uri.to_le_bytes());
    });

    let pool = encode_pool(&strings, utf8);
    let mut map = Vec::new();
    put_chunk(&mut map, RES_XML_RESOURCE_MAP_TYPE, 8, |c| {
        for id in &res_ids {
            c.extend_from_slice(&id.to_le_bytes());
        }
    });
    let mut out = Vec::new();
    let total = 8 + pool.len() + map.len() + body.len();
    out.extend_from_slice(&RES_XML_TYPE.to_le_bytes());
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&pool);
    out.extend_from_slice(&map);
    out.extend_from_slice(&body);
    out
}

/// Appends a chunk: header (type, header size, total size) and then what `fill` writes.
fn put_chunk(out: &mut Vec<u8>, typ: u16, header_size: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&typ.to_le_bytes());
    out.extend_from_slice(&header_size.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    fill(out);
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    let size = (out.len() - start) as u32;
    out[start + 4..start + 8].copy_from_slice(&size.to_le_bytes());
}

#[allow(clippy::too_many_arguments)]
fn encode_element(
    e: &XmlElement,
    out: &mut Vec<u8>,
    strings: &mut Vec<String>,
    android_index: &HashMap<String, u32>,
    intern: &mut impl FnMut(&str, &mut Vec<String>) -> u32,
    ns_uri: u32,
    line: &mut u32,
) {
    *line += 1;
    let name = intern(&e.name, strings);
    let mut attrs: Vec<(u32, u32, u32, u8, u32)> = Vec::new();
    for a in &e.attrs {
        let (ns, aname) = match a.android_id {
            Some(_) => (ns_uri, android_index[&a.name]),
            None => (NO_INDEX, intern(&a.name, strings)),
        };
        let (raw, typ, data) = match &a.value {
            XmlValue::Str(s) => {
                let i = intern(s, strings);
                (i, TYPE_STRING, i)
            }
            XmlValue::Int(v) => (NO_INDEX, TYPE_INT_DEC, *v),
            XmlValue::Bool(b) => (NO_INDEX, TYPE_INT_BOOLEAN, if *b { 0xffff_ffff } else { 0 }),
            XmlValue::Ref(r) => (NO_INDEX, TYPE_REFERENCE, *r),
        };
        attrs.push((ns, aname, raw, typ, data));
    }
    let this_line = *line;
    put_chunk(out, RES_XML_START_ELEMENT_TYPE, 16, |c| {
        c.extend_from_slice(&this_line.to_le_bytes());
        c.extend_from_slice(&NO_INDEX.to_le_bytes());
        c.extend_from_slice(&NO_INDEX.to_le_bytes()); // element namespace
        c.extend_from_slice(&name.to_le_bytes());
        c.extend_from_slice(&20u16.to_le_bytes()); // attributeStart
        c.extend_from_slice(&20u16.to_le_bytes()); // attributeSize
        c.extend_from_slice(&(attrs.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0u8; 6]); // id, class, style indexes
        for (ns, aname, raw, typ, data) in &attrs {
            c.extend_from_slice(&ns.to_le_bytes());
            c.extend_from_slice(&aname.to_le_bytes());
            c.extend_from_slice(&raw.to_le_bytes());
            c.extend_from_slice(&8u16.to_le_bytes());
            c.push(0);
            c.push(*typ);
            c.extend_from_slice(&data.to_le_bytes());
        }
    });
    for child in &e.children {
        encode_element(child, out, strings, android_index, intern, ns_uri, line);
    }
    *line += 1;
    let end_line = *line;
    put_chunk(out, RES_XML_END_ELEMENT_TYPE, 16, |c| {
        c.extend_from_slice(&end_line.to_le_bytes());
        c.extend_from_slice(&NO_INDEX.to_le_bytes());
        c.extend_from_slice(&NO_INDEX.to_le_bytes());
        c.extend_from_slice(&name.to_le_bytes());
    });
}

fn encode_pool(strings: &[String], utf8: bool) -> Vec<u8> {
    let mut data: Vec<u8> = Vec::new();
    let mut offsets = Vec::with_capacity(strings.len());
    for s in strings {
        offsets.push(data.len() as u32);
        if utf8 {
            let units = s.encode_utf16().count();
            put_len8(&mut data, units);
            put_len8(&mut data, s.len());
            data.extend_from_slice(s.as_bytes());
            data.push(0);
        } else {
            let units: Vec<u16> = s.encode_utf16().collect();
            if units.len() > 0x7fff {
                data.extend_from_slice(&((((units.len() >> 16) as u16) | 0x8000).to_le_bytes()));
                data.extend_from_slice(&((units.len() & 0xffff) as u16).to_le_bytes());
            } else {
                data.extend_from_slice(&(units.len() as u16).to_le_bytes());
            }
            for u in units {
                data.extend_from_slice(&u.to_le_bytes());
            }
            data.extend_from_slice(&0u16.to_le_bytes());
        }
    }
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    let header = 28u32;
    let strings_start = header + 4 * strings.len() as u32;
    let mut out = Vec::new();
    put_chunk(&mut out, RES_STRING_POOL_TYPE, header as u16, |c| {
        c.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        c.extend_from_slice(&0u32.to_le_bytes()); // styles
        c.extend_from_slice(&(if utf8 { UTF8_FLAG } else { 0 }).to_le_bytes());
        c.extend_from_slice(&strings_start.to_le_bytes());
        c.extend_from_slice(&0u32.to_le_bytes()); // stylesStart
        for o in &offsets {
            c.extend_from_slice(&o.to_le_bytes());
        }
        c.extend_from_slice(&data);
    });
    out
}

/// UTF-8 pool length prefix: one byte below 0x80, else two with the high bit set.
/// Lengths are capped at 0x7fff (the format's limit).
fn put_len8(out: &mut Vec<u8>, len: usize) {
    let len = len.min(0x7fff);
    if len > 0x7f {
        out.push(0x80 | (len >> 8) as u8);
        out.push((len & 0xff) as u8);
    } else {
        out.push(len as u8);
    }
}

/// The manifest of a minimal app: `package`, version, optional `split`, `uses-sdk`
/// (min 21, target 34), and for a base APK an application labelled with the package name
/// and one launchable `.MainActivity`.
pub fn test_manifest(
    package: &str,
    version_code: i64,
    version_name: &str,
    split: Option<&str>,
) -> XmlElement {
    let mut manifest = XmlElement::new("manifest")
        .android(
            attr::VERSION_CODE,
            "versionCode",
            XmlValue::Int(version_code as u32),
        )
        .android(
            attr::VERSION_NAME,
            "versionName",
            XmlValue::Str(version_name.to_string()),
        );
    let major = (version_code >> 32) as u32;
    if major != 0 {
        manifest = manifest.android(
            attr::VERSION_CODE_MAJOR,
            "versionCodeMajor",
            XmlValue::Int(major),
        );
    }
    manifest = manifest.plain("package", package);
    if let Some(s) = split {
        manifest = manifest.plain("split", s);
    }
    manifest = manifest.child(
        XmlElement::new("uses-sdk")
            .android(attr::MIN_SDK_VERSION, "minSdkVersion", XmlValue::Int(21))
            .android(
                attr::TARGET_SDK_VERSION,
                "targetSdkVersion",
                XmlValue::Int(34),
            ),
    );
    let application = if split.is_some() {
        XmlElement::new("application")
    } else {
        XmlElement::new("application")
            .android(attr::LABEL, "label", XmlValue::Str(package.to_string()))
            .child(
                XmlElement::new("activity")
                    .android(attr::NAME, "name", XmlValue::Str(".MainActivity".into()))
                    .child(
                        XmlElement::new("intent-filter")
                            .child(XmlElement::new("action").android(
                                attr::NAME,
                                "name",
                                XmlValue::Str("android.intent.action.MAIN".into()),
                            ))
                            .child(XmlElement::new("category").android(
                                attr::NAME,
                                "name",
                                XmlValue::Str("android.intent.category.LAUNCHER".into()),
                            )),
                    ),
            )
    };
    manifest.child(application)
}

/// Packs a binary manifest (and optional extra entries) into an APK-shaped zip.
pub fn build_apk(manifest_axml: &[u8], extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    // Writing to memory cannot fail short of allocation failure; errors would only come from
    // invalid names, which are fixed here.
    let _ = zw.start_file(MANIFEST_ENTRY, opts);
    let _ = zw.write_all(manifest_axml);
    for (name, data) in extra {
        let _ = zw.start_file(*name, opts);
        let _ = zw.write_all(data);
    }
    match zw.finish() {
        Ok(c) => c.into_inner(),
        Err(_) => Vec::new(),
    }
}

/// A minimal valid APK: a zip holding a binary `AndroidManifest.xml` (see [`test_manifest`])
/// and a placeholder `classes.dex`.
pub fn build_test_apk(
    package: &str,
    version_code: i64,
    version_name: &str,
    split: Option<&str>,
) -> Vec<u8> {
    let axml = encode_xml(
        &test_manifest(package, version_code, version_name, split),
        false,
    );
    build_apk(&axml, &[("classes.dex", b"dex\n035\0")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn round_trips_a_base_apk() {
        let apk = build_test_apk("com.example.app", 42, "1.2.3", None);
        let info = parse(Cursor::new(apk)).unwrap();
        assert_eq!(info.package, "com.example.app");
        assert_eq!(info.version_code, 42);
        assert_eq!(info.version_name.as_deref(), Some("1.2.3"));
        assert_eq!(info.min_sdk, 21);
        assert_eq!(info.target_sdk, 34);
        assert_eq!(info.split, None);
        assert_eq!(info.label.as_deref(), Some("com.example.app"));
        assert_eq!(
            info.launchable_activity.as_deref(),
            Some("com.example.app.MainActivity")
        );
        assert_eq!(info.activities, vec!["com.example.app.MainActivity"]);
    }

    #[test]
    fn round_trips_a_split_and_a_major_version() {
        let apk = build_test_apk(
            "com.example.app",
            (3i64 << 32) | 7,
            "9",
            Some("config.arm64_v8a"),
        );
        let info = parse(Cursor::new(apk)).unwrap();
        assert_eq!(info.version_code, (3i64 << 32) | 7);
        assert_eq!(info.split.as_deref(), Some("config.arm64_v8a"));
        assert_eq!(info.launchable_activity, None);
    }

    #[test]
    fn reads_utf8_pools_permissions_and_flags() {
        let m = XmlElement::new("manifest")
            .plain("package", "org.ünï.code")
            .android(
                attr::VERSION_CODE,
                "versionCode",
                XmlValue::Str("0x10".into()),
            )
            .child(XmlElement::new("uses-sdk").android(
                attr::MIN_SDK_VERSION,
                "minSdkVersion",
                XmlValue::Str("VanillaIceCream".into()),
            ))
            .child(XmlElement::new("uses-permission").android(
                attr::NAME,
                "name",
                XmlValue::Str("android.permission.INTERNET".into()),
            ))
            .child(XmlElement::new("uses-permission-sdk-23").android(
                attr::NAME,
                "name",
                XmlValue::Str("android.permission.CAMERA".into()),
            ))
            .child(XmlElement::new("uses-permission").android(
                attr::NAME,
                "name",
                XmlValue::Str("android.permission.INTERNET".into()),
            ))
            .child(
                XmlElement::new("application")
                    .android(attr::LABEL, "label", XmlValue::Ref(0x7f08_0000))
                    .android(attr::DEBUGGABLE, "debuggable", XmlValue::Bool(true))
                    .android(attr::TEST_ONLY, "testOnly", XmlValue::Bool(true))
                    .child(XmlElement::new("activity").android(
                        attr::NAME,
                        "name",
                        XmlValue::Str("Plain".into()),
                    )),
            );
        // Non-ASCII package names are rejected, as Android does.
        let err = parse_manifest(&encode_xml(&m, true)).unwrap_err();
        assert!(matches!(err, ApkError::BadPackageName(_)), "{err:?}");

        let mut m = m;
        m.attrs[0] = XmlAttr {
            android_id: None,
            name: "package".into(),
            value: XmlValue::Str("org.uni.code".into()),
        };
        for utf8 in [true, false] {
            let info = parse_manifest(&encode_xml(&m, utf8)).unwrap();
            assert_eq!(info.package, "org.uni.code");
            assert_eq!(info.version_code, 16);
            assert_eq!(info.min_sdk, 10_000);
            assert_eq!(info.target_sdk, 10_000);
            assert_eq!(
                info.permissions,
                vec!["android.permission.INTERNET", "android.permission.CAMERA"]
            );
            assert_eq!(info.label, None);
            assert!(info.debuggable && info.test_only);
            assert_eq!(info.activities, vec!["org.uni.code.Plain"]);
            assert_eq!(info.launchable_activity, None);
        }
    }

    #[test]
    fn matches_android_attributes_by_resource_id_even_when_renamed() {
        // An obfuscator renamed the attribute strings; the resource map still says what they are.
        let m = XmlElement::new("manifest")
            .plain("package", "com.obf.app")
            .android(attr::VERSION_CODE, "a", XmlValue::Int(5))
            .android(attr::VERSION_NAME, "b", XmlValue::Str("five".into()));
        let info = parse_manifest(&encode_xml(&m, false)).unwrap();
        assert_eq!(info.version_code, 5);
        assert_eq!(info.version_name.as_deref(), Some("five"));
    }

    #[test]
    fn long_strings_use_two_byte_lengths() {
        let long = "x".repeat(40_000);
        let m = XmlElement::new("manifest")
            .plain("package", "com.long.app")
            .android(
                attr::VERSION_NAME,
                "versionName",
                XmlValue::Str(long.clone()),
            );
        let info = parse_manifest(&encode_xml(&m, false)).unwrap();
        assert_eq!(info.version_name.as_deref(), Some(long.as_str()));
        let short = "y".repeat(300);
        let m = XmlElement::new("manifest")
            .plain("package", "com.long.app")
            .android(
                attr::VERSION_NAME,
                "versionName",
                XmlValue::Str(short.clone()),
            );
        let info = parse_manifest(&encode_xml(&m, true)).unwrap();
        assert_eq!(info.version_name.as_deref(), Some(short.as_str()));
    }

    #[test]
    fn rejects_non_apks() {
        assert!(matches!(
            parse(Cursor::new(b"hello world".to_vec())),
            Err(ApkError::NotAnApk(_))
        ));
        assert!(matches!(
            parse(Cursor::new(Vec::new())),
            Err(ApkError::NotAnApk(_))
        ));
        let no_manifest = {
            let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
            zw.start_file("classes.dex", zip::write::SimpleFileOptions::default())
                .unwrap();
            zw.write_all(b"dex").unwrap();
            zw.finish().unwrap().into_inner()
        };
        assert!(matches!(
            parse(Cursor::new(no_manifest)),
            Err(ApkError::NotAnApk(_))
        ));
        // A zip whose manifest is text XML, not binary.
        let text = build_apk(b"<manifest package=\"a.b\"/>", &[]);
        assert!(matches!(
            parse(Cursor::new(text)),
            Err(ApkError::Malformed(_))
        ));
        // Missing package.
        let m = XmlElement::new("manifest");
        assert!(matches!(
            parse_manifest(&encode_xml(&m, false)),
            Err(ApkError::BadPackageName(_))
        ));
        // Root is not <manifest>.
        let m = XmlElement::new("application").plain("package", "a.b");
        assert!(matches!(
            parse_manifest(&encode_xml(&m, false)),
            Err(ApkError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_a_manifest_bomb() {
        // 64 MiB of zeros deflate to a few tens of KiB; the reader must stop at the limit.
        let zeros = vec![0u8; 64 * 1024 * 1024];
        let apk = build_apk(&zeros, &[]);
        assert!(apk.len() < 1024 * 1024);
        assert!(matches!(
            parse(Cursor::new(apk)),
            Err(ApkError::ManifestTooLarge)
        ));
    }

    #[test]
    fn package_names() {
        for ok in ["com.example", "a.b", "org.x_y.Z9", "android"] {
            assert!(is_valid_package_name(ok), "{ok}");
        }
        for bad in [
            "",
            "single",
            "com..x",
            "com.9x",
            "com.ex-ample",
            "../../etc",
            "com/x.y",
            ".a.b",
        ] {
            assert!(!is_valid_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn truncated_and_mutated_input_never_panics() {
        let apk = build_test_apk("com.example.fuzz", 1, "1", None);
        let axml = encode_xml(&test_manifest("com.example.fuzz", 1, "1", None), true);
        for cut in 0..axml.len() {
            let _ = parse_manifest(&axml[..cut]);
        }
        for cut in (0..apk.len()).step_by(7) {
            let _ = parse(Cursor::new(apk[..cut].to_vec()));
        }
        // Deterministic pseudo-random byte flips (xorshift).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut m = axml.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            let _ = parse_manifest(&m);
        }
        for _ in 0..2_000 {
            let mut a = apk.clone();
            let i = (next() as usize) % a.len();
            a[i] = next() as u8;
            let _ = parse(Cursor::new(a));
        }
        for len in [0usize, 1, 7, 8, 100, 4096] {
            let garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse_manifest(&garbage);
            let _ = parse(Cursor::new(garbage));
        }
    }

    #[test]
    fn overlapping_strings_cannot_exhaust_memory() {
        // A pool of 2000 entries that all point at one 30 KB string: decoding every entry
        // would materialise 60 MB; the decoder stops at its budget instead.
        let long: Vec<u16> = "z".repeat(30_000).encode_utf16().collect();
        let count = 2000u32;
        let mut chunk = Vec::new();
        chunk.extend_from_slice(&RES_STRING_POOL_TYPE.to_le_bytes());
        chunk.extend_from_slice(&28u16.to_le_bytes());
        chunk.extend_from_slice(&0u32.to_le_bytes());
        chunk.extend_from_slice(&count.to_le_bytes());
        chunk.extend_from_slice(&0u32.to_le_bytes());
        chunk.extend_from_slice(&0u32.to_le_bytes());
        chunk.extend_from_slice(&(28 + 4 * count).to_le_bytes());
        chunk.extend_from_slice(&0u32.to_le_bytes());
        for _ in 0..count {
            chunk.extend_from_slice(&0u32.to_le_bytes());
        }
        chunk.extend_from_slice(&(long.len() as u16).to_le_bytes());
        for u in &long {
            chunk.extend_from_slice(&u.to_le_bytes());
        }
        let pool = StringPool::parse(&chunk, 28).unwrap();
        assert_eq!(pool.get(0).unwrap().unwrap().len(), 30_000);
        let mut failed = false;
        for i in 0..count {
            if pool.get(i).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the decode budget was never reached");
    }

    #[test]
    fn repeated_long_names_are_bounded_in_the_result() {
        let long = "z".repeat(40_000);
        let mut app = XmlElement::new("application");
        for _ in 0..200 {
            app = app.child(XmlElement::new("activity").android(
                attr::NAME,
                "name",
                XmlValue::Str(long.clone()),
            ));
        }
        let m = XmlElement::new("manifest")
            .plain("package", "com.big.app")
            .child(app);
        // 200 × 40 KB = 8 MB of names from a manifest of ~100 KB: refused.
        let err = parse_manifest(&encode_xml(&m, false)).unwrap_err();
        assert!(matches!(err, ApkError::Malformed(_)), "{err:?}");
    }
}
