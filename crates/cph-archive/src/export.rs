//! Taking files from a phone into a tar (BatchExportCloudPhoneData).

use crate::path::{Pattern, PatternTarget, excluded};
use crate::reader::{Exact, ended_early};
use crate::{
    ArchiveError, DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES, MAX_TRACKED_NAME_BYTES,
};
use astral_tar::{Builder, EntryType, Header};
use cph_adb::FileStat;
use cph_adb::client::{AdbClient, ClientError, quote};
use std::collections::HashSet;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
/// Bytes of a pulled file buffered between the phone and the archive.
const PIPE_BUFFER: usize = 256 * 1024;
/// Longest name that fits a tar header's name (or link name) field.
const HEADER_NAME_LEN: usize = 100;

/// Bounds of one export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    /// Most phone entries examined (every entry of every directory listed, excluded or not).
    pub max_entries: usize,
    /// Most bytes of file data written.
    pub max_bytes: u64,
    /// Deepest directory level below an included path that is descended into.
    pub max_depth: usize,
}

impl Default for ExportLimits {
    fn default() -> Self {
        ExportLimits {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Regular files written.
    pub files: u64,
    /// Directories written.
    pub dirs: u64,
    /// Symbolic links written.
    pub links: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Device files, FIFOs and sockets left out.
    pub skipped: u64,
    /// Include patterns without a `*` whose path does not exist on the phone.
    pub missing: Vec<String>,
}

/// Writes the phone's files selected by `include` and not by `exclude` as a tar into `out`.
///
/// Patterns follow BatchExportCloudPhoneData: absolute paths, `*` only at the end and matching
/// within one path component (`/data/app/com.xx-*` names `/data/app/com.xx-1` but not
/// `/data/app/com.xx-1/base.apk`), one trailing `/` ignored. A named directory is exported
/// with everything below it; `exclude` wins over `include` and removes the named paths with
/// everything below them. Symbolic links are exported as links, never followed; device
/// files, FIFOs and sockets are left out. Entry names are relative to the phone's root
/// (`data/local/x`), directories before their contents, siblings by name, so that
/// [`crate::apply_tar`] restores the same tree (file contents, permission bits, mtimes).
///
/// The phone is walked with `list` (one call per directory) and files are streamed with
/// `pull` straight into the archive. A file whose size changes while it is read fails the
/// export ([`ArchiveError::FileChanged`]). The caller must not keep a failed export's output.
pub async fn export_tar<W>(
    client: &AdbClient,
    include: &[String],
    exclude: &[String],
    out: W,
    limits: ExportLimits,
) -> Result<ExportReport, ArchiveError>
where
    W: AsyncWrite + Unpin + Send,
{
    let parse = |raw: &String| {
        Pattern::parse(raw).map_err(|why| ArchiveError::Pattern {
            pattern: crate::shown_name(raw.as_bytes()),
            why,
        })
    };
    if include.is_empty() {
        return Err(ArchiveError::Pattern {
            pattern: String::new(),
            why: "no include pattern".into(),
        });
    }
    let includes = include.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let excludes = exclude.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let mut ex = Exporter {
        client,
        // Not `Builder::new`: that one appends the end marker from a spawned task on drop, even to
        // the output of a failed export.
        builder: Builder::new_non_terminated(out),
        limits,
        examined: 0,
        tracked: 0,
        report: ExportReport::default(),
    };

    // The included paths that exist, sorted so that an ancestor comes before its descendants.
    let mut roots: Vec<(String, FileStat)> = Vec::new();
    for (raw, pattern) in include.iter().zip(&includes) {
        match pattern.target() {
            PatternTarget::Path(p) => match ex.lstat(p).await? {
                Some(st) => {
                    ex.count(p)?;
                    roots.push((p.to_string(), st));
                }
                None => ex.report.missing.push(raw.clone()),
            },
            PatternTarget::Glob { dir, name_prefix } => {
                for (path, st) in ex.list(dir).await? {
                    let name = path.rsplit('/').next().unwrap_or_default();
                    if name.starts_with(name_prefix) {
                        ex.count(&path)?;
                        roots.push((path, st));
                    }
                }
            }
        }
    }
    roots.sort_by(|a, b| a.0.cmp(&b.0));
    roots.dedup_by(|a, b| a.0 == b.0);

    let mut walked: HashSet<String> = HashSet::new();
    for (root, st) in roots {
        if has_ancestor_in(&walked, &root) || excluded(&excludes, &root) {
            continue;
        }
        ex.walk(&root, st, &excludes).await?;
        ex.tracked += root.len();
        walked.insert(root);
    }

    ex.builder.finish().await?;
    let mut out = ex.builder.into_inner().await?;
    out.flush().await?;
    Ok(ex.report)
}

/// `path` or one of its ancestors is in `set`.
fn has_ancestor_in(set: &HashSet<String>, path: &str) -> bool {
    let mut p = path;
    loop {
        if set.contains(p) {
            return true;
        }
        match p.rfind('/') {
            Some(0) | None => return false,
            Some(i) => p = &p[..i],
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

struct Exporter<'c, W: AsyncWrite + Unpin + Send> {
    client: &'c AdbClient,
    builder: Builder<W>,
    limits: ExportLimits,
    examined: usize,
    tracked: usize,
    report: ExportReport,
}

impl<W: AsyncWrite + Unpin + Send> Exporter<'_, W> {
    fn count(&mut self, path: &str) -> Result<(), ArchiveError> {
        self.examined += 1;
        if self.examined > self.limits.max_entries {
            return Err(ArchiveError::ExportLimit(format!(
                "more than {} entries to examine (at {path})",
                self.limits.max_entries
            )));
        }
        Ok(())
    }

    async fn lstat(&self, path: &str) -> Result<Option<FileStat>, ArchiveError> {
        self.client
            .lstat(path)
            .await
            .map_err(|e| ArchiveError::device(format!("lstat {path}"), e))
    }

    /// The entries of directory `dir` as (device path, lstat), sorted by name.
    async fn list(&self, dir: &str) -> Result<Vec<(String, FileStat)>, ArchiveError> {
        let mut entries = self
            .client
            .list(dir)
            .await
            .map_err(|e| ArchiveError::device(format!("list {dir}"), e))?;
        entries.retain(|e| !e.name.is_empty() && !e.name.contains('/'));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries
            .into_iter()
            .map(|e| (join(dir, &e.name), e.stat))
            .collect())
    }

    /// Writes `root` and, for a directory, everything below it that is not excluded.
    async fn walk(
        &mut self,
        root: &str,
        st: FileStat,
        excludes: &[Pattern],
    ) -> Result<(), ArchiveError> {
        // Depth-first with an explicit stack; children are pushed in reverse so that they are
        // written in name order, each directory before its contents.
        let mut stack = vec![(root.to_string(), st, 0usize)];
        while let Some((path, st, depth)) = stack.pop() {
            let is_dir = st.mode & S_IFMT == S_IFDIR;
            self.write_entry(&path, &st).await?;
            if !is_dir {
                continue;
            }
            if depth >= self.limits.max_depth {
                return Err(ArchiveError::ExportLimit(format!(
                    "{path} is more than {} levels deep",
                    self.limits.max_depth
                )));
            }
            let children = self.list(&path).await?;
            for (child, cst) in children.into_iter().rev() {
                self.count(&child)?;
                if excluded(excludes, &child) {
                    continue;
                }
                self.tracked += child.len();
                if self.tracked > MAX_TRACKED_NAME_BYTES {
                    return Err(ArchiveError::ExportLimit(format!(
                        "more than {MAX_TRACKED_NAME_BYTES} bytes of pending names"
                    )));
                }
                stack.push((child, cst, depth + 1));
            }
        }
        Ok(())
    }

    async fn write_entry(&mut self, path: &str, st: &FileStat) -> Result<(), ArchiveError> {
        let name = path.trim_start_matches('/');
        let mtime = u64::try_from(st.mtime).unwrap_or(0);
        let mut header = Header::new_gnu();
        header.set_mode(st.mode & 0o7777);
        header.set_uid(u64::from(st.uid));
        header.set_gid(u64::from(st.gid));
        header.set_mtime(mtime);
        match st.mode & S_IFMT {
            S_IFDIR => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                self.append(&mut header, &format!("{name}/"), None, &[])
                    .await?;
                self.report.dirs += 1;
            }
            S_IFLNK => {
                let target = self.readlink(path).await?;
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.append(&mut header, name, Some(&target), &[]).await?;
                self.report.links += 1;
            }
            S_IFREG => {
                let size = st.size;
                if size > self.limits.max_bytes - self.report.bytes {
                    return Err(ArchiveError::ExportLimit(format!(
                        "{path} ({size} bytes) takes the export past {} bytes",
                        self.limits.max_bytes
                    )));
                }
                header.set_entry_type(EntryType::Regular);
                header.set_size(size);
                self.append_file(&mut header, path, name, size).await?;
                self.report.files += 1;
                self.report.bytes += size;
            }
            _ => self.report.skipped += 1,
        }
        Ok(())
    }

    async fn readlink(&self, path: &str) -> Result<String, ArchiveError> {
        let out = self
            .client
            .shell(&format!("readlink {}", quote(path)))
            .await
            .map_err(|e| ArchiveError::device(format!("readlink {path}"), e))?;
        let mut target = out.stdout_text();
        if target.ends_with('\n') {
            target.pop();
        }
        if out.exit_code.is_some_and(|c| c != 0) || target.is_empty() || out.truncated {
            return Err(ArchiveError::Command {
                what: format!("readlink {path}"),
                exit: out.exit_code,
                output: out.stderr_text().trim().to_string(),
            });
        }
        Ok(target)
    }

    /// Writes a header (with GNU long-name/long-link records when needed) and `data`.
    async fn append(
        &mut self,
        header: &mut Header,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> Result<(), ArchiveError> {
        self.prepare(header, name, link).await?;
        self.builder.append(header, data).await?;
        Ok(())
    }

    async fn prepare(
        &mut self,
        header: &mut Header,
        name: &str,
        link: Option<&str>,
    ) -> Result<(), ArchiveError> {
        if name.len() > HEADER_NAME_LEN {
            self.long_record(EntryType::GNULongName, name).await?;
        }
        set_field(&mut header.as_old_mut().name, name);
        if let Some(link) = link {
            if link.len() > HEADER_NAME_LEN {
                self.long_record(EntryType::GNULongLink, link).await?;
            }
            set_field(&mut header.as_old_mut().linkname, link);
        }
        header.set_cksum();
        Ok(())
    }

    /// A GNU `././@LongLink` record holding `value` and a NUL.
    async fn long_record(&mut self, kind: EntryType, value: &str) -> Result<(), ArchiveError> {
        let mut header = Header::new_gnu();
        set_field(&mut header.as_old_mut().name, "././@LongLink");
        header.set_mode(0o644);
        header.set_entry_type(kind);
        header.set_size(value.len() as u64 + 1);
        header.set_cksum();
        let data = value.as_bytes().chain(&[0u8][..]);
        self.builder.append(&header, data).await?;
        Ok(())
    }

    /// Streams the phone's file into the archive: `pull` writes into a pipe the archive entry
    /// reads exactly `size` bytes from; more or fewer bytes mean the file changed.
    async fn append_file(
        &mut self,
        header: &mut Header,
        path: &str,
        name: &str,
        size: u64,
    ) -> Result<(), ArchiveError> {
        self.prepare(header, name, None).await?;
        let (mut tx, rx) = tokio::io::duplex(PIPE_BUFFER);
        let client = self.client;
        let pull = async move {
            let r = client.pull(path, &mut tx).await;
            drop(tx);
            r
        };
        let builder = &mut self.builder;
        let header = &*header;
        let write = async move {
            let mut data = Exact::new(rx, size);
            builder.append(header, &mut data).await?;
            // Anything beyond `size` is drained so that the pull can finish.
            let extra = tokio::io::copy(&mut data.into_inner(), &mut tokio::io::sink()).await?;
            Ok::<u64, std::io::Error>(extra)
        };
        let (pulled, written) = tokio::join!(pull, write);
        match (pulled, written) {
            (Ok(n), Ok(0)) if n == size => Ok(()),
            (Ok(n), Ok(_)) => Err(changed(path, size, n)),
            (Ok(n), Err(e)) if ended_early(&e).is_some() => Err(changed(path, size, n)),
            (Ok(_), Err(e)) => Err(ArchiveError::Io(e)),
            // The pipe only breaks when writing the archive failed: report that.
            (Err(ClientError::Io(_)), Err(e)) if ended_early(&e).is_none() => {
                Err(ArchiveError::Io(e))
            }
            (Err(e), _) => Err(ArchiveError::device(format!("pull {path}"), e)),
        }
    }
}

fn changed(path: &str, expected: u64, actual: u64) -> ArchiveError {
    ArchiveError::FileChanged {
        path: path.to_string(),
        expected,
        actual,
    }
}

/// Writes `value` into a NUL-padded header field, truncated to the field (a longer value is
/// carried by a GNU long-name record before the header).
fn set_field(field: &mut [u8], value: &str) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value.as_bytes()[..n]);
}
