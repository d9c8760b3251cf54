//! Reads a tar stream entry by entry and checks every entry before its data is touched.
//!
//! Physical entries come from astral-tokio-tar's raw iterator (header parsing, checksums,
//! positioning); GNU long names/links and PAX headers are composed here, each read only up to a
//! fixed limit, so that no hostile extension record can make us buffer much.

use crate::path::{Roots, check_symlink_target, normalize};
use crate::{
    ApplyOptions, ArchiveError, MAX_LONG_NAME_RECORD, MAX_PAX_HEADER, MAX_TRACKED_NAME_BYTES,
    Refusal, shown_name,
};
use astral_tar::{Archive, Entry, EntryType};
use futures::StreamExt;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// What an accepted member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir {
        /// An allowed root, an ancestor of one, or a top-level directory of the phone: created
        /// if missing, never re-moded.
        protected: bool,
    },
    /// The target exactly as the archive gives it (already checked).
    Symlink(String),
    /// The archive path of the file this links to (an earlier regular file of the archive).
    HardLink(String),
}

/// One accepted member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// Normalised archive path (`data/x`).
    pub path: String,
    pub kind: Kind,
    /// Permission bits (`0o777` at most).
    pub mode: u32,
    pub mtime: u32,
    /// Declared data size (only regular files carry data that is applied).
    pub size: u64,
}

/// The extension records that describe the next member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    mtime: Option<u64>,
    sparse: bool,
}

/// The entry a member's data is read from.
pub(crate) type TarEntry<R> = Entry<Archive<EofFlag<R>>>;

/// Passes a reader through and records when it reports its end.
pub(crate) struct EofFlag<R> {
    inner: R,
    ended: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for EofFlag<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() == before && buf.remaining() > 0 {
            self.ended.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

/// Validating reader over a tar stream.
pub(crate) struct TarReader<'a, R: AsyncRead + Unpin + 'a> {
    archive: Archive<EofFlag<R>>,
    /// Set once the source reported its end.
    source_ended: Arc<AtomicBool>,
    raw: Option<RawIter<'a, R>>,
    roots: Roots,
    /// Symbolic links must be relative (the archive lands in a target directory).
    relative_links: bool,
    max_entries: usize,
    max_bytes: u64,
    seen: usize,
    bytes: u64,
    files: HashSet<String>,
    links: HashSet<String>,
    tracked: usize,
    done: bool,
}

/// The raw iterator of astral-tokio-tar (its type is not nameable, so it is boxed).
type RawIter<'a, R> =
    Pin<Box<dyn futures::Stream<Item = std::io::Result<TarEntry<R>>> + Send + 'a>>;

fn malformed(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Malformed(e.to_string())
}

impl<'a, R: AsyncRead + Unpin + Send + 'a> TarReader<'a, R> {
    pub(crate) fn new(reader: R, opts: &ApplyOptions) -> Result<Self, ArchiveError> {
        let source_ended = Arc::new(AtomicBool::new(false));
        let mut archive = Archive::new(EofFlag {
            inner: reader,
            ended: source_ended.clone(),
        });
        let raw = archive.entries_raw().map_err(malformed)?;
        Ok(TarReader {
            archive,
            source_ended,
            raw: Some(Box::pin(raw)),
            roots: Roots::new(opts.allowed_roots.as_deref()),
            relative_links: opts.target_dir.is_some(),
            max_entries: opts.max_entries,
            max_bytes: opts.max_bytes,
            seen: 0,
            bytes: 0,
            files: HashSet::new(),
            links: HashSet::new(),
            tracked: 0,
            done: false,
        })
    }

    /// The reader back, once the archive's end was reached (or at any point after an error).
    pub(crate) fn into_inner(mut self) -> Option<R> {
        self.raw = None;
        self.archive.into_inner().ok().map(|r| r.inner)
    }

    /// Whether the source has reported its end (an error reading an entry's data after that
    /// means the archive is truncated).
    pub(crate) fn source_ended(&self) -> bool {
        self.source_ended.load(Ordering::Relaxed)
    }

    /// The next member with its entry (positioned at its data), or `None` at the end of the
    /// archive. The entry's data must be consumed (or dropped) before the next call.
    pub(crate) async fn next(&mut self) -> Result<Option<(Member, TarEntry<R>)>, ArchiveError> {
        if self.done {
            return Ok(None);
        }
        let mut pending = Pending::default();
        loop {
            let Some(raw) = self.raw.as_mut() else {
                return Ok(None);
            };
            let Some(entry) = raw.next().await else {
                self.done = true;
                if pending.long_name.is_some()
                    || pending.long_link.is_some()
                    || pending.pax.is_some()
                {
                    return Err(malformed("an extension header is not followed by an entry"));
                }
                return Ok(None);
            };
            let mut entry = entry.map_err(malformed)?;
            let header = entry.header();
            let et = header.entry_type();
            let size = header.raw_entry_size().map_err(malformed)?;
            match et {
                EntryType::GNULongName | EntryType::GNULongLink => {
                    let slot = if et == EntryType::GNULongName {
                        &mut pending.long_name
                    } else {
                        &mut pending.long_link
                    };
                    if slot.is_some() {
                        return Err(malformed("two GNU long-name records for one entry"));
                    }
                    if size > MAX_LONG_NAME_RECORD {
                        let name = header.path_bytes().into_owned();
                        return Err(ArchiveError::refused(
                            &name,
                            Refusal::NameTooLong(crate::MAX_NAME_LEN),
                        ));
                    }
                    let mut data = read_bounded(&mut entry, size).await?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    *slot = Some(data);
                    continue;
                }
                EntryType::XHeader | EntryType::XGlobalHeader => {
                    if size > MAX_PAX_HEADER {
                        return Err(malformed(format!(
                            "a PAX header of {size} bytes exceeds {MAX_PAX_HEADER}"
                        )));
                    }
                    let header_name = header.path_bytes().into_owned();
                    let data = read_bounded(&mut entry, size).await?;
                    let pax = parse_pax(&data)?;
                    if et == EntryType::XGlobalHeader {
                        self.count_entry(&header_name)?;
                        if pax.path.is_some()
                            || pax.linkpath.is_some()
                            || pax.size.is_some()
                            || pax.sparse
                        {
                            return Err(malformed(
                                "a PAX global header sets path, linkpath, size or sparse data",
                            ));
                        }
                        continue;
                    }
                    if pending.pax.is_some() {
                        return Err(malformed("two PAX headers for one entry"));
                    }
                    pending.pax = Some(pax);
                    continue;
                }
                _ => {}
            }
            let pax = pending.pax.take().unwrap_or_default();
            let name: Vec<u8> = match (pending.long_name.take(), &pax.path) {
                (Some(long), _) => long,
                (None, Some(p)) => p.clone(),
                (None, None) => header.path_bytes().into_owned(),
            };
            self.count_entry(&name)?;
            let refuse = |reason| ArchiveError::refused(&name, reason);
            if let Some(pax_size) = pax.size
                && pax_size != size
            {
                return Err(malformed(format!(
                    "the PAX size of {:?} ({pax_size}) disagrees with its header ({size})",
                    shown_name(&name)
                )));
            }
            if pax.sparse {
                return Err(refuse(Refusal::Type("sparse file")));
            }
            if size > self.max_bytes - self.bytes {
                return Err(ArchiveError::TooLarge {
                    entry: shown_name(&name),
                    size,
                    limit: self.max_bytes,
                });
            }
            self.bytes += size;
            let link_target = pending
                .long_link
                .take()
                .or(pax.linkpath.clone())
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
            enum Raw {
                File,
                Dir,
                Sym,
                Hard,
            }
            let raw_kind = match et {
                EntryType::Regular | EntryType::Continuous if name.ends_with(b"/") => Raw::Dir,
                EntryType::Regular | EntryType::Continuous => Raw::File,
                EntryType::Directory => Raw::Dir,
                EntryType::Symlink => Raw::Sym,
                EntryType::Link => Raw::Hard,
                EntryType::Char | EntryType::Block => {
                    return Err(refuse(Refusal::Type("device file")));
                }
                EntryType::Fifo => return Err(refuse(Refusal::Type("FIFO"))),
                EntryType::GNUSparse => return Err(refuse(Refusal::Type("sparse file"))),
                other => return Err(refuse(Refusal::UnknownType(other.as_byte() as char))),
            };
            let path = match normalize(&name).map_err(&refuse)? {
                Some(p) => p,
                // `./`: the archive's root directory; nothing to do.
                None if matches!(raw_kind, Raw::Dir) => continue,
                None => return Err(refuse(Refusal::Root)),
            };
            let is_dir = matches!(raw_kind, Raw::Dir);
            let allowed =
                self.roots.allows(&path) || (is_dir && self.roots.is_ancestor_of_root(&path));
            if !allowed {
                return Err(refuse(Refusal::OutsideRoots(self.roots.describe())));
            }
            if let Some(link) = self.through_link(&path) {
                return Err(refuse(Refusal::ThroughLink(link)));
            }
            let kind = match raw_kind {
                Raw::File => {
                    self.track_file(&path)?;
                    Kind::File
                }
                Raw::Dir => Kind::Dir {
                    protected: self.roots.is_protected_dir(&path),
                },
                Raw::Sym => {
                    let target =
                        link_target.ok_or_else(|| malformed("a symbolic link without target"))?;
                    let target =
                        check_symlink_target(&path, &target, &self.roots, self.relative_links)
                            .map_err(&refuse)?;
                    self.track(&path)?;
                    // The path is no longer a regular file a hard link could name.
                    self.files.remove(&path);
                    self.links.insert(path.clone());
                    Kind::Symlink(target)
                }
                Raw::Hard => {
                    let target =
                        link_target.ok_or_else(|| malformed("a hard link without target"))?;
                    let shown = shown_name(&target);
                    let escapes = |why: Refusal| Refusal::LinkEscapes {
                        target: shown.clone(),
                        why: why.to_string(),
                    };
                    let t = match normalize(&target) {
                        Ok(Some(t)) => t,
                        Ok(None) => return Err(refuse(Refusal::HardLinkTarget(shown))),
                        Err(e) => return Err(refuse(escapes(e))),
                    };
                    if !self.roots.allows(&t) {
                        return Err(refuse(escapes(Refusal::OutsideRoots(
                            self.roots.describe(),
                        ))));
                    }
                    if !self.files.contains(&t) {
                        return Err(refuse(Refusal::HardLinkTarget(shown)));
                    }
                    self.track_file(&path)?;
                    Kind::HardLink(t)
                }
            };
            let mode = header.mode().map_err(malformed)? & 0o777;
            let mtime = match pax.mtime {
                Some(m) => m,
                None => header.mtime().map_err(malformed)?,
            };
            let member = Member {
                path,
                kind,
                mode,
                mtime: u32::try_from(mtime).unwrap_or(u32::MAX),
                size,
            };
            return Ok(Some((member, entry)));
        }
    }

    fn count_entry(&mut self, name: &[u8]) -> Result<(), ArchiveError> {
        self.seen += 1;
        if self.seen > self.max_entries {
            return Err(ArchiveError::TooManyEntries {
                entry: shown_name(name),
                limit: self.max_entries,
            });
        }
        Ok(())
    }

    fn track(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.tracked += path.len();
        if self.tracked > MAX_TRACKED_NAME_BYTES {
            return Err(ArchiveError::NamesTooLarge {
                limit: MAX_TRACKED_NAME_BYTES,
            });
        }
        Ok(())
    }

    fn track_file(&mut self, path: &str) -> Result<(), ArchiveError> {
        if !self.files.contains(path) {
            self.track(path)?;
            self.files.insert(path.to_string());
        }
        Ok(())
    }

    /// The symbolic link of this archive that `path` is, or lies below.
    fn through_link(&self, path: &str) -> Option<String> {
        if self.links.is_empty() {
            return None;
        }
        let mut end = path.len();
        loop {
            let prefix = &path[..end];
            if self.links.contains(prefix) {
                return Some(prefix.to_string());
            }
            end = prefix.rfind('/')?;
        }
    }
}

/// Reads an extension record of `size` bytes (already checked against its limit).
async fn read_bounded<R: AsyncRead + Unpin>(
    entry: &mut R,
    size: u64,
) -> Result<Vec<u8>, ArchiveError> {
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    (&mut *entry)
        .take(size)
        .read_to_end(&mut data)
        .await
        .map_err(malformed)?;
    if data.len() as u64 != size {
        return Err(malformed("the archive ends inside an extension header"));
    }
    Ok(data)
}

/// Parses PAX records (`"<len> <key>=<value>\n"`), keeping the keys that matter here. The last
/// record of a key wins; an empty value unsets it.
fn parse_pax(mut data: &[u8]) -> Result<Pax, ArchiveError> {
    let bad = |why: &str| malformed(format!("bad PAX header: {why}"));
    let mut pax = Pax::default();
    while !data.is_empty() {
        if data.iter().all(|b| *b == 0) {
            break;
        }
        let sp = data
            .iter()
            .take(20)
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("record without length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("record length is not a number"))?;
        if len <= sp + 2 || len > data.len() {
            return Err(bad("record length out of range"));
        }
        let record = &data[sp + 1..len];
        let Some(kv) = record.strip_suffix(b"\n") else {
            return Err(bad("record does not end with a newline"));
        };
        let eq = kv
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| bad("record without '='"))?;
        let (key, value) = (&kv[..eq], &kv[eq + 1..]);
        let set = (!value.is_empty()).then(|| value.to_vec());
        match key {
            b"path" => pax.path = set,
            b"linkpath" => pax.linkpath = set,
            b"size" => pax.size = parse_decimal(value).map_err(|_| bad("size"))?,
            b"mtime" => {
                // Seconds, possibly with a fraction or a sign; before the epoch counts as 0.
                let whole = value.split(|b| *b == b'.').next().unwrap_or_default();
                pax.mtime = if whole.starts_with(b"-") {
                    Some(0)
                } else {
                    parse_decimal(whole).map_err(|_| bad("mtime"))?
                };
            }
            k if k.starts_with(b"GNU.sparse.") => pax.sparse = true,
            _ => {}
        }
        data = &data[len..];
    }
    Ok(pax)
}

fn parse_decimal(v: &[u8]) -> Result<Option<u64>, ()> {
    if v.is_empty() {
        return Ok(None);
    }
    std::str::from_utf8(v)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or(())
}

/// The marker inside the I/O error an [`Exact`] reader raises when its input ends early.
#[derive(Debug, thiserror::Error)]
#[error("input ended after {read} of {expected} bytes")]
pub(crate) struct EndedEarly {
    pub read: u64,
    pub expected: u64,
}

/// Reads exactly `expected` bytes from `inner`: end of input after that, an error before.
pub(crate) struct Exact<R> {
    inner: R,
    expected: u64,
    remaining: u64,
}

impl<R> Exact<R> {
    pub(crate) fn new(inner: R, expected: u64) -> Self {
        Exact {
            inner,
            expected,
            remaining: expected,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Exact<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.remaining == 0 || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let dst = buf.initialize_unfilled_to(want);
        let mut limited = ReadBuf::new(dst);
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        if n == 0 {
            let read = self.expected - self.remaining;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                EndedEarly {
                    read,
                    expected: self.expected,
                },
            )));
        }
        buf.advance(n);
        self.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Whether an I/O error is an [`Exact`] reader's early end.
pub(crate) fn ended_early(e: &std::io::Error) -> Option<&EndedEarly> {
    e.get_ref().and_then(|i| i.downcast_ref::<EndedEarly>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PAX record with its correct length prefix.
    fn record(kv: &str) -> String {
        let body = kv.len() + 2; // space and newline
        let mut len = body + body.to_string().len();
        if len.to_string().len() != body.to_string().len() {
            len += 1;
        }
        format!("{len} {kv}\n")
    }

    #[test]
    fn pax_records_parse_strictly() {
        let data = record("path=data/xy") + &record("size=42") + &record("mtime=1700000000");
        let pax = parse_pax(data.as_bytes()).unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"data/xy"[..]));
        assert_eq!(pax.size, Some(42));
        assert_eq!(pax.mtime, Some(1_700_000_000));
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"9 path=xy").is_err());
        assert!(parse_pax(b"x path=x\n").is_err());
        assert!(parse_pax(record("size=12x").as_bytes()).is_err());
        assert!(
            parse_pax(record("GNU.sparse.major=1").as_bytes())
                .unwrap()
                .sparse
        );
        let frac = parse_pax(record("mtime=1700000000.5").as_bytes()).unwrap();
        assert_eq!(frac.mtime, Some(1_700_000_000));
        let unset = parse_pax((record("path=x") + &record("path=")).as_bytes()).unwrap();
        assert_eq!(unset.path, None);
    }

    #[tokio::test]
    async fn exact_reader_refuses_short_input() {
        let mut out = Vec::new();
        let mut r = Exact::new(&b"abc"[..], 5);
        let e = r.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(ended_early(&e).map(|x| x.read), Some(3));
        let mut out = Vec::new();
        Exact::new(&b"abcdef"[..], 4)
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, b"abcd");
    }
}
