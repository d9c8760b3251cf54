//! Archive paths: normalisation, allowed roots, link targets and export globs.
//!
//! An archive path is relative to the phone's root, `/`-separated, with no empty, `.` or `..`
//! components (`data/local/tmp/x`); its device path is `/` followed by it.

use crate::{MAX_NAME_LEN, Refusal};
use cph_adb::sync::MAX_PATH_LEN;

/// Normalises an entry name: drops empty and `.` components (`./data//x/` → `data/x`), refuses
/// `..`, a leading `/`, NUL, non-UTF-8 and names too long. `Ok(None)` for the archive's root
/// (`./`).
pub(crate) fn normalize(raw: &[u8]) -> Result<Option<String>, Refusal> {
    if raw.len() > MAX_NAME_LEN {
        return Err(Refusal::NameTooLong(MAX_NAME_LEN));
    }
    if raw.contains(&0) {
        return Err(Refusal::Nul);
    }
    let s = std::str::from_utf8(raw).map_err(|_| Refusal::NotUtf8)?;
    if s.starts_with('/') {
        return Err(Refusal::Absolute);
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(Refusal::ParentDir),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let joined = parts.join("/");
    // The device path (`/` + name) must fit in one sync request.
    if joined.len() + 1 > MAX_PATH_LEN {
        return Err(Refusal::NameTooLong(MAX_PATH_LEN - 1));
    }
    Ok(Some(joined))
}

/// `path` equals `root` or lies below it.
pub(crate) fn is_under(path: &str, root: &str) -> bool {
    root.is_empty()
        || path == root
        || (path.len() > root.len()
            && path.starts_with(root)
            && path.as_bytes()[root.len()] == b'/')
}

/// The allowed roots, normalised. `None` allows everything.
#[derive(Debug, Clone)]
pub(crate) struct Roots(Option<Vec<String>>);

impl Roots {
    pub(crate) fn new(roots: Option<&[String]>) -> Roots {
        Roots(roots.map(|roots| {
            roots
                .iter()
                .map(|r| {
                    r.split('/')
                        .filter(|p| !p.is_empty() && *p != ".")
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .collect()
        }))
    }

    /// `path` lies in an allowed tree.
    pub(crate) fn allows(&self, path: &str) -> bool {
        match &self.0 {
            None => true,
            Some(roots) => roots.iter().any(|r| is_under(path, r)),
        }
    }

    /// `path` is a proper ancestor of an allowed root (a directory entry there is left alone).
    pub(crate) fn is_ancestor_of_root(&self, path: &str) -> bool {
        match &self.0 {
            None => false,
            Some(roots) => roots.iter().any(|r| r != path && is_under(r, path)),
        }
    }

    /// `path` is an allowed root itself (or a top-level directory of the phone when everything
    /// is allowed): such directories are created if missing but never re-moded.
    pub(crate) fn is_protected_dir(&self, path: &str) -> bool {
        !path.contains('/')
            || self.is_ancestor_of_root(path)
            || self
                .0
                .as_ref()
                .is_some_and(|roots| roots.iter().any(|r| r == path))
    }

    pub(crate) fn describe(&self) -> String {
        match &self.0 {
            None => "(all)".into(),
            Some(roots) => format!("{roots:?}"),
        }
    }
}

/// Checks the target of symbolic link `link` (an archive path): resolved lexically from the
/// link's directory (or from `/` when absolute), it must stay inside the phone's root and the
/// allowed trees. With `relative_only` (an archive unpacked into a directory) an absolute target
/// is refused.
pub(crate) fn check_symlink_target(
    link: &str,
    target: &[u8],
    roots: &Roots,
    relative_only: bool,
) -> Result<String, Refusal> {
    if target.len() > MAX_NAME_LEN {
        return Err(Refusal::NameTooLong(MAX_NAME_LEN));
    }
    if target.contains(&0) {
        return Err(Refusal::Nul);
    }
    let t = std::str::from_utf8(target).map_err(|_| Refusal::NotUtf8)?;
    let escapes = |why: &str| Refusal::LinkEscapes {
        target: t.to_string(),
        why: why.to_string(),
    };
    if t.is_empty() {
        return Err(escapes("is empty"));
    }
    if relative_only && t.starts_with('/') {
        return Err(escapes(
            "is absolute, and this archive is unpacked into a directory",
        ));
    }
    let mut resolved: Vec<&str> = if t.starts_with('/') {
        Vec::new()
    } else {
        let mut parent: Vec<&str> = link.split('/').collect();
        parent.pop();
        parent
    };
    for part in t.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if resolved.pop().is_none() {
                    return Err(escapes("leaves the phone's root"));
                }
            }
            p => resolved.push(p),
        }
    }
    let resolved = resolved.join("/");
    if !roots.allows(&resolved) {
        return Err(escapes(&format!(
            "points outside the allowed trees {}",
            roots.describe()
        )));
    }
    Ok(t.to_string())
}

/// An export pattern, checked: absolute, at most [`MAX_NAME_LEN`] bytes, no empty, `.` or `..`
/// component, `*` only at the end (matching within one path component). One trailing `/` is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// The pattern without trailing `/` and without its trailing `*`s.
    prefix: String,
    glob: bool,
}

impl Pattern {
    pub(crate) fn parse(raw: &str) -> Result<Pattern, String> {
        if raw.len() > MAX_NAME_LEN {
            return Err(format!("longer than {MAX_NAME_LEN} bytes"));
        }
        if raw.contains('\0') {
            return Err("contains a NUL byte".into());
        }
        if !raw.starts_with('/') {
            return Err("is not an absolute path".into());
        }
        let p = raw.strip_suffix('/').unwrap_or(raw);
        let prefix = p.trim_end_matches('*');
        let glob = prefix.len() != p.len();
        if prefix.contains('*') {
            return Err("'*' is only allowed at the end".into());
        }
        if p.is_empty() {
            return Err("names the whole phone".into());
        }
        // Every component must be a proper name, except the last one of a glob, which is only
        // the start of names (and may be empty: `/data/*`).
        let parts: Vec<&str> = prefix[1..].split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let glob_part = glob && i + 1 == parts.len();
            if !glob_part && (part.is_empty() || *part == "." || *part == "..") {
                return Err("has an empty, '.' or '..' component".into());
            }
        }
        Ok(Pattern {
            prefix: prefix.to_string(),
            glob,
        })
    }

    /// The pattern names the device path `path` (itself, not through an ancestor).
    pub(crate) fn names(&self, path: &str) -> bool {
        if self.glob {
            path.strip_prefix(&self.prefix)
                .is_some_and(|rest| !rest.contains('/'))
        } else {
            path == self.prefix
        }
    }

    /// For a glob, the directory to list and the prefix names must start with; for a plain
    /// pattern, the path itself.
    pub(crate) fn target(&self) -> PatternTarget<'_> {
        if !self.glob {
            return PatternTarget::Path(&self.prefix);
        }
        let (dir, name) = self
            .prefix
            .rsplit_once('/')
            .unwrap_or(("", self.prefix.as_str()));
        PatternTarget::Glob {
            dir: if dir.is_empty() { "/" } else { dir },
            name_prefix: name,
        }
    }
}

/// What an include pattern selects.
pub(crate) enum PatternTarget<'a> {
    Path(&'a str),
    Glob { dir: &'a str, name_prefix: &'a str },
}

/// `path` or one of its ancestors is named by one of `patterns`.
pub(crate) fn excluded(patterns: &[Pattern], path: &str) -> bool {
    if patterns.is_empty() {
        return false;
    }
    let mut p = path;
    loop {
        if patterns.iter().any(|pat| pat.names(p)) {
            return true;
        }
        match p.rfind('/') {
            Some(0) | None => return false,
            Some(i) => p = &p[..i],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_dots_and_refuses_escapes() {
        assert_eq!(normalize(b"./data//x/").unwrap().as_deref(), Some("data/x"));
        assert_eq!(normalize(b"./").unwrap(), None);
        assert_eq!(normalize(b"data/../x"), Err(Refusal::ParentDir));
        assert_eq!(normalize(b"/etc/x"), Err(Refusal::Absolute));
        assert_eq!(normalize(b"data/\xff"), Err(Refusal::NotUtf8));
        assert_eq!(normalize(b"data/a\0b"), Err(Refusal::Nul));
        assert_eq!(
            normalize(&[b'a'; MAX_NAME_LEN + 1]),
            Err(Refusal::NameTooLong(MAX_NAME_LEN))
        );
        assert!(matches!(
            normalize(&[b'a'; 2000]),
            Err(Refusal::NameTooLong(_))
        ));
    }

    #[test]
    fn roots_allow_their_trees_only() {
        let roots = Roots::new(Some(&["data".to_string(), "/cache/".to_string()]));
        assert!(roots.allows("data"));
        assert!(roots.allows("data/x"));
        assert!(roots.allows("cache/y"));
        assert!(!roots.allows("database"));
        assert!(!roots.allows("system/x"));
        let deep = Roots::new(Some(&["data/local/tmp".to_string()]));
        assert!(deep.is_ancestor_of_root("data"));
        assert!(deep.is_ancestor_of_root("data/local"));
        assert!(!deep.is_ancestor_of_root("data/local/tmp"));
        assert!(deep.is_protected_dir("data/local/tmp"));
        assert!(!deep.is_protected_dir("data/local/tmp/x"));
        assert!(Roots::new(None).allows("anything/at/all"));
    }

    #[test]
    fn symlink_targets_resolve_lexically() {
        let all = Roots::new(None);
        let data = Roots::new(Some(&["data".to_string()]));
        assert!(check_symlink_target("data/l", b"x", &data, false).is_ok());
        assert!(check_symlink_target("data/a/l", b"../b", &data, false).is_ok());
        assert!(check_symlink_target("data/l", b"/data/x", &data, false).is_ok());
        assert!(check_symlink_target("data/l", b"../etc", &data, false).is_err());
        assert!(check_symlink_target("data/l", b"/etc/passwd", &data, false).is_err());
        assert!(check_symlink_target("data/l", b"/etc/passwd", &all, false).is_ok());
        assert!(check_symlink_target("data/l", b"/../../etc", &all, false).is_err());
        assert!(check_symlink_target("data/l", b"../../etc", &all, false).is_err());
        assert!(check_symlink_target("data/l", b"", &all, false).is_err());
        assert!(check_symlink_target("data/l", b"/data/x", &data, true).is_err());
        assert!(check_symlink_target("data/a/l", b"../b", &data, true).is_ok());
    }

    #[test]
    fn patterns_match_within_one_component() {
        let p = Pattern::parse("/data/app/com.xx.xx-*").unwrap();
        assert!(p.names("/data/app/com.xx.xx-1"));
        assert!(p.names("/data/app/com.xx.xx-"));
        assert!(!p.names("/data/app/com.xx.xx-1/base.apk"));
        assert!(!p.names("/data/app/com.yy"));
        let plain = Pattern::parse("/data/app/").unwrap();
        assert!(plain.names("/data/app"));
        assert!(!plain.names("/data/app/x"));
        let all = Pattern::parse("/data/*").unwrap();
        assert!(all.names("/data/x"));
        assert!(!all.names("/data"));
        assert!(matches!(
            all.target(),
            PatternTarget::Glob {
                dir: "/data",
                name_prefix: ""
            }
        ));
        assert!(Pattern::parse("data/x").is_err());
        assert!(Pattern::parse("/data/*/x").is_err());
        assert!(Pattern::parse("/data/../x").is_err());
        assert!(Pattern::parse("/data//x").is_err());
        assert!(Pattern::parse("/").is_err());
        assert!(Pattern::parse("/*").is_ok());
    }

    #[test]
    fn exclusion_covers_descendants() {
        let ex = vec![Pattern::parse("/data/app/com.xx-*").unwrap()];
        assert!(excluded(&ex, "/data/app/com.xx-1"));
        assert!(excluded(&ex, "/data/app/com.xx-1/lib/a.so"));
        assert!(!excluded(&ex, "/data/app/com.yy/a"));
        assert!(!excluded(&ex, "/data/app"));
    }
}
