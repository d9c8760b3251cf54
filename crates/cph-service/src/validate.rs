//! Input rules shared by several operations.

use crate::{Result, ServiceError};

/// Parses an optional pagination number. Absent → `default`; not an integer or outside
/// `min..=max` → `CPS.0002`.
pub fn page_param(raw: Option<&str>, default: i64, min: i64, max: i64) -> Result<i64> {
    match raw {
        None => Ok(default),
        Some(s) => {
            let v: i64 = s
                .trim()
                .parse()
                .map_err(|_| ServiceError::cps("CPS.0002"))?;
            if v < min || v > max {
                return Err(ServiceError::cps("CPS.0002"));
            }
            Ok(v)
        }
    }
}

/// `offset` and `limit` of a list operation.
pub fn pagination(offset: Option<&str>, limit: Option<&str>, max_limit: i64) -> Result<(i64, i64)> {
    let offset = page_param(offset, 0, 0, i64::from(i32::MAX))?;
    let limit = page_param(limit, max_limit, 1, max_limit)?;
    Ok((offset, limit))
}

/// A resource name: 1..=`max_chars` characters of letters (any script, so Chinese characters
/// are allowed), digits, `_` and `-`.
pub fn is_valid_name(name: &str, max_chars: usize) -> bool {
    let n = name.chars().count();
    n >= 1
        && n <= max_chars
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || is_cjk(c))
}

/// CJK unified ideographs (the reference's 汉字).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

/// An id as the reference shapes them: 1..=`max` bytes of `[0-9a-zA-Z-_]`.
pub fn is_valid_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Removes duplicates, keeping first occurrences in order.
pub fn dedup(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|i| seen.insert(i.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("server-1_a", 60));
        assert!(is_valid_name("手机01", 60));
        assert!(!is_valid_name("a b", 60));
        assert!(!is_valid_name("", 60));
        assert!(!is_valid_name(&"a".repeat(61), 60));
        assert!(is_valid_name(&"啊".repeat(60), 60));
    }

    #[test]
    fn pages() {
        assert_eq!(pagination(None, None, 100).unwrap(), (0, 100));
        assert_eq!(pagination(Some("5"), Some("10"), 100).unwrap(), (5, 10));
        assert!(pagination(Some("-1"), None, 100).is_err());
        assert!(pagination(None, Some("0"), 100).is_err());
        assert!(pagination(None, Some("101"), 100).is_err());
        assert!(pagination(None, Some("x"), 100).is_err());
    }
}
