//! System properties (`getprop`/`setprop`), with Android's rules.
//!
//! Values come from three sources, later ones overriding earlier ones:
//! 1. **base** properties, given by the runtime when the phone is built: the image's
//!    `build.prop` values ([`crate::image::build_props`]) plus the phone's identity (serial,
//!    IMEI, address);
//! 2. **API** properties pushed by the control plane ([`Props::apply_api`]), the equivalent of
//!    the properties CPH applies at boot. They come from the cloud API, not from the phone, so
//!    they may override `ro.*` values (that is how a phone's model or fingerprint is changed);
//! 3. **runtime** values set on the phone ([`Props::set`], `setprop`), which follow the rules
//!    of Android's property service: names must be legal, `ro.*` properties are write-once
//!    (a set on an existing one fails), values are at most [`PROP_VALUE_MAX`]` - 1` bytes
//!    except for `ro.*`.
//!
//! `persist.*` properties set at runtime survive restarts: they are stored in
//! [`PERSISTENT_PROPERTIES_PATH`] in the phone's file tree (the same protobuf layout Android
//! uses, `PersistentProperties { repeated Record { name = 1; value = 2 } }`), so a reset that
//! wipes `/data` forgets them.

use crate::fs::PhoneFs;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::RwLock;

/// Where runtime `persist.*` properties are stored.
pub const PERSISTENT_PROPERTIES_PATH: &str = "/data/property/persistent_properties";
/// Android's `PROP_VALUE_MAX`: values (other than `ro.*`) hold at most this minus one bytes.
pub const PROP_VALUE_MAX: usize = 92;
/// Longest property name accepted.
pub const MAX_NAME_LEN: usize = 256;
/// Longest `ro.*` value accepted (Android has no fixed limit; this bounds memory).
pub const MAX_LONG_VALUE_LEN: usize = 8192;
/// Most properties a phone holds.
pub const MAX_PROPERTIES: usize = 10_000;
/// Largest persistent property file read.
const MAX_PERSIST_FILE: u64 = 1024 * 1024;

/// Why a property could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropError {
    /// The name has characters or a shape Android rejects.
    #[error("Invalid property name '{0}'.")]
    InvalidName(String),
    /// The value is too long for a non-`ro.*` property.
    #[error("Value is too long. {len} bytes, max {max} bytes.")]
    ValueTooLong { len: usize, max: usize },
    /// A `ro.*` property that already has a value.
    #[error("Read-only property '{0}' was already set")]
    ReadOnly(String),
    /// The store is full.
    #[error("too many properties")]
    Full,
}

#[derive(Default)]
struct Inner {
    values: BTreeMap<String, String>,
    /// `persist.*` names set at runtime (saved to the file).
    persisted: BTreeSet<String>,
    /// Whether the persistent file was read.
    loaded: bool,
}

/// A phone's property store (thread-safe).
pub struct Props {
    inner: RwLock<Inner>,
}

/// Whether `name` is a legal property name (`IsLegalPropertyName` in Android's init):
/// non-empty, no leading, trailing or doubled dots, and only ASCII letters, digits and
/// `. _ - @ :`.
pub fn is_legal_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return false;
    }
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
}

impl Props {
    /// A store holding the base properties (image and identity). Illegal names are dropped.
    pub fn new(base: BTreeMap<String, String>) -> Props {
        let values = base
            .into_iter()
            .filter(|(k, v)| is_legal_name(k) && v.len() <= MAX_LONG_VALUE_LEN)
            .take(MAX_PROPERTIES)
            .collect();
        Props {
            inner: RwLock::new(Inner {
                values,
                ..Default::default()
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        self.read().values.get(key).cloned()
    }

    /// The value of `key` parsed as an integer.
    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }

    /// Sets a property as `setprop` does (see the module docs for the rules). Setting a
    /// `persist.*` property marks it for [`Props::save_persistent`]; the caller saves.
    pub fn set(&self, key: &str, value: &str) -> Result<(), PropError> {
        if !is_legal_name(key) {
            return Err(PropError::InvalidName(key.to_string()));
        }
        let read_only = key.starts_with("ro.");
        let max = if read_only {
            MAX_LONG_VALUE_LEN
        } else {
            PROP_VALUE_MAX - 1
        };
        if value.len() > max {
            return Err(PropError::ValueTooLong {
                len: value.len(),
                max,
            });
        }
        let mut inner = self.write();
        if read_only && inner.values.contains_key(key) {
            return Err(PropError::ReadOnly(key.to_string()));
        }
        if !inner.values.contains_key(key) && inner.values.len() >= MAX_PROPERTIES {
            return Err(PropError::Full);
        }
        inner.values.insert(key.to_string(), value.to_string());
        if key.starts_with("persist.") {
            inner.persisted.insert(key.to_string());
        }
        Ok(())
    }

    /// Applies properties pushed by the control plane. They override any value, `ro.*`
    /// included, because they describe the phone from outside (like CPH's boot-time
    /// properties). Illegal names and over-long values are skipped; an empty value removes
    /// the property. Returns how many were applied.
    pub fn apply_api(&self, props: &BTreeMap<String, String>) -> usize {
        let mut inner = self.write();
        let mut applied = 0;
        for (k, v) in props {
            if !is_legal_name(k) || v.len() > MAX_LONG_VALUE_LEN {
                continue;
            }
            if v.is_empty() {
                inner.values.remove(k);
            } else {
                if !inner.values.contains_key(k) && inner.values.len() >= MAX_PROPERTIES {
                    continue;
                }
                inner.values.insert(k.clone(), v.clone());
            }
            applied += 1;
        }
        applied
    }

    /// Every property, sorted by name.
    pub fn list(&self) -> Vec<(String, String)> {
        self.read()
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The `getprop` listing: `[key]: [value]` lines, sorted.
    pub fn getprop_listing(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.read().values.iter() {
            out.push_str(&format!("[{k}]: [{v}]\n"));
        }
        out
    }

    /// Reads the runtime `persist.*` properties saved in the phone's tree (once; later calls
    /// do nothing). A missing file is an empty set; a corrupt one is ignored with a warning.
    pub fn load_persistent(&self, fs: &PhoneFs) -> io::Result<()> {
        if self.read().loaded {
            return Ok(());
        }
        let data = match fs.read(PERSISTENT_PROPERTIES_PATH, MAX_PERSIST_FILE) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                tracing::warn!("persistent properties file is too large; ignored");
                None
            }
            Err(e) => return Err(e),
        };
        let mut inner = self.write();
        if inner.loaded {
            return Ok(());
        }
        inner.loaded = true;
        let Some(data) = data else { return Ok(()) };
        match decode_persistent(&data) {
            Some(records) => {
                for (k, v) in records {
                    if k.starts_with("persist.")
                        && is_legal_name(&k)
                        && v.len() < PROP_VALUE_MAX
                        && inner.values.len() < MAX_PROPERTIES
                    {
                        inner.values.insert(k.clone(), v);
                        inner.persisted.insert(k);
                    }
                }
            }
            None => tracing::warn!("persistent properties file is corrupt; ignored"),
        }
        Ok(())
    }

    /// Writes the runtime `persist.*` properties to the phone's tree (atomically).
    pub fn save_persistent(&self, fs: &PhoneFs) -> io::Result<()> {
        let records: Vec<(String, String)> = {
            let inner = self.read();
            inner
                .persisted
                .iter()
                .filter_map(|k| inner.values.get(k).map(|v| (k.clone(), v.clone())))
                .collect()
        };
        fs.mkdir_all("/data/property")?;
        fs.write(PERSISTENT_PROPERTIES_PATH, &encode_persistent(&records))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Encodes `PersistentProperties` as protobuf.
fn encode_persistent(records: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let mut rec = Vec::new();
        put_bytes_field(&mut rec, 1, k.as_bytes());
        put_bytes_field(&mut rec, 2, v.as_bytes());
        put_bytes_field(&mut out, 1, &rec);
    }
    out
}

/// Iterates the length-delimited fields of a protobuf message; `None` on malformed input
/// or a wire type other than varint / length-delimited.
fn fields(b: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = get_varint(b, &mut at)?;
        match key & 7 {
            0 => {
                get_varint(b, &mut at)?;
            }
            2 => {
                let len = usize::try_from(get_varint(b, &mut at)?).ok()?;
                let end = at.checked_add(len)?;
                out.push((key >> 3, b.get(at..end)?));
                at = end;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn decode_persistent(b: &[u8]) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (field, rec) in fields(b)? {
        if field != 1 {
            continue;
        }
        let (mut name, mut value) = (None, None);
        for (f, data) in fields(rec)? {
            match f {
                1 => name = Some(String::from_utf8(data.to_vec()).ok()?),
                2 => value = Some(String::from_utf8(data.to_vec()).ok()?),
                _ => {}
            }
        }
        if let Some(n) = name {
            out.push((n, value.unwrap_or_default()));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("ro.product.model".to_string(), "Model A".to_string()),
            ("ro.build.version.sdk".to_string(), "34".to_string()),
            ("persist.sys.timezone".to_string(), "UTC".to_string()),
        ])
    }

    #[test]
    fn ro_properties_are_write_once() {
        let p = Props::new(base());
        assert_eq!(
            p.set("ro.product.model", "X"),
            Err(PropError::ReadOnly("ro.product.model".into()))
        );
        assert_eq!(p.get("ro.product.model").as_deref(), Some("Model A"));
        p.set("ro.new.thing", "first").unwrap();
        assert!(p.set("ro.new.thing", "second").is_err());
        assert_eq!(p.get("ro.new.thing").as_deref(), Some("first"));
    }

    #[test]
    fn value_and_name_limits() {
        let p = Props::new(base());
        let v91 = "a".repeat(91);
        p.set("debug.x", &v91).unwrap();
        assert_eq!(
            p.set("debug.x", &"a".repeat(92)),
            Err(PropError::ValueTooLong { len: 92, max: 91 })
        );
        p.set("ro.long.value", &"b".repeat(500)).unwrap();
        for bad in ["", ".a", "a.", "a..b", "a b", "a/b", "ä"] {
            assert!(
                matches!(p.set(bad, "1"), Err(PropError::InvalidName(_))),
                "{bad}"
            );
        }
        p.set("vendor.x-y_z@1:2", "ok").unwrap();
    }

    #[test]
    fn api_properties_override_read_only_ones() {
        let p = Props::new(base());
        let n = p.apply_api(&BTreeMap::from([
            ("ro.product.model".to_string(), "Cloud".to_string()),
            ("bad name".to_string(), "x".to_string()),
        ]));
        assert_eq!(n, 1);
        assert_eq!(p.get("ro.product.model").as_deref(), Some("Cloud"));
    }

    #[test]
    fn listing_is_sorted_and_bracketed() {
        let p = Props::new(base());
        assert_eq!(
            p.getprop_listing(),
            "[persist.sys.timezone]: [UTC]\n[ro.build.version.sdk]: [34]\n[ro.product.model]: [Model A]\n"
        );
    }

    #[test]
    fn protobuf_round_trip_and_corruption() {
        let recs = vec![
            ("persist.a".to_string(), "1".to_string()),
            ("persist.b".to_string(), "".to_string()),
        ];
        let enc = encode_persistent(&recs);
        assert_eq!(decode_persistent(&enc), Some(recs));
        for cut in 0..enc.len() {
            // Truncations either decode to a prefix or are refused; never panic.
            let _ = decode_persistent(&enc[..cut]);
        }
        assert_eq!(decode_persistent(&[0x0b]), None);
    }
}
