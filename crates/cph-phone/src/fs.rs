//! The phone's sandboxed file tree.
//!
//! A phone sees one device tree (`/`, `/system`, `/data`, …) assembled from [`Mount`]s: each
//! mount serves a device path prefix from a host directory; the longest matching prefix wins.
//!
//! Every operation resolves its device path itself, one component at a time, holding an open
//! directory descriptor for each level and using the `*at` system calls relative to it with
//! `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`. The operating system never follows a symbolic link on
//! the phone's behalf: a link's target is a *device* path, which is re-resolved inside the
//! sandbox (absolute targets restart at the device root, `..` at `/` stays at `/`). Because each
//! step works on descriptors rather than host path strings, replacing a directory with a link
//! while an operation runs cannot lead outside the sandbox either.
//!
//! Errors carry OS error numbers (`io::Error::raw_os_error`): `ENOENT`, `ENOTDIR`, `EISDIR`,
//! `EEXIST`, `ELOOP` (more than [`MAX_SYMLINK_HOPS`] links), `EROFS` (a write under a read-only
//! mount), `ENOTEMPTY`, `EXDEV` (rename across mounts), `EBUSY` (removing or renaming a mount
//! point), `ENAMETOOLONG`, `EINVAL`.

use cph_adb::{FileStat, SyncFileWriter, SyncFs};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Most symbolic links followed while resolving one path (`ELOOP` beyond).
pub const MAX_SYMLINK_HOPS: usize = 40;
/// Longest device path accepted (`ENAMETOOLONG` beyond).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest file name accepted (`ENAMETOOLONG` beyond).
pub const MAX_NAME_LEN: usize = 255;
/// Most entries [`PhoneFs::read_dir`] returns for one directory (`EFBIG` beyond).
pub const MAX_DIR_ENTRIES: usize = 1_000_000;
/// Deepest directory nesting [`PhoneFs::remove_all`] descends into (`ELOOP` beyond).
pub const MAX_TREE_DEPTH: usize = 512;

/// A device path prefix served from a host directory.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Absolute device path, e.g. `/` or `/system`.
    pub device_path: String,
    /// Host directory holding the files under `device_path`.
    pub host_dir: PathBuf,
    /// Writes under this mount fail with `EROFS`.
    pub read_only: bool,
}

/// Space figures of a mount, as `df` shows them (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub total: u64,
    pub used: u64,
    pub available: u64,
}

/// How [`PhoneFs::open_write`] opens an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create or truncate (`>`).
    Truncate,
    /// Create or append (`>>`).
    Append,
}

/// One mount with its host directory held open.
struct MountEntry {
    mount: Mount,
    /// Normalised device components (`[]` for `/`).
    comps: Vec<String>,
    root: OwnedFd,
}

struct Table {
    /// Sorted by number of components, longest first.
    entries: Vec<MountEntry>,
}

impl Table {
    fn open(mounts: Vec<Mount>) -> io::Result<Table> {
        let mut entries = Vec::with_capacity(mounts.len());
        for mount in mounts {
            if !mount.device_path.starts_with('/') {
                return Err(invalid("mount device path must be absolute"));
            }
            let comps = split_normalized(&mount.device_path);
            if entries.iter().any(|e: &MountEntry| e.comps == comps) {
                return Err(invalid("duplicate mount device path"));
            }
            let host = CString::new(mount.host_dir.as_os_str().as_bytes())
                .map_err(|_| invalid("host directory contains NUL"))?;
            // The operator chose the host directory: following links here is fine.
            let root = open_raw(
                libc::AT_FDCWD,
                &host,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
            )?;
            entries.push(MountEntry { mount, comps, root });
        }
        if !entries.iter().any(|e| e.comps.is_empty()) {
            return Err(invalid("`/` must be mounted"));
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.comps.len()));
        Ok(Table { entries })
    }

    fn exact(&self, comps: &[String]) -> Option<usize> {
        self.entries.iter().position(|e| e.comps == comps)
    }

    /// The mount serving a device path (longest prefix).
    fn mount_of(&self, comps: &[String]) -> usize {
        self.entries
            .iter()
            .position(|e| comps.starts_with(&e.comps))
            .unwrap_or(self.entries.len() - 1)
    }

    fn root_index(&self) -> usize {
        self.entries.len() - 1
    }
}

/// A directory level reached while resolving: either a mount's root or an opened directory.
enum DirFd {
    Mount(usize),
    Owned(OwnedFd),
}

/// A resolved device path: the directory holding the final component and its name, or (for
/// `/`, a mount root or a path ending in `.`/`..`) just the directory itself.
struct Resolved {
    table: Arc<Table>,
    /// Directories from the device root down, with their device names.
    stack: Vec<(String, DirFd)>,
    /// The final component inside the top of `stack`; `None` when the path is that directory.
    name: Option<String>,
    /// `lstat` of the final component; `None` when it does not exist.
    stat: Option<libc::stat>,
}

impl Resolved {
    fn dir_fd(&self) -> RawFd {
        match self.stack.last() {
            Some((_, DirFd::Owned(fd))) => fd.as_raw_fd(),
            Some((_, DirFd::Mount(i))) => self.table.entries[*i].root.as_raw_fd(),
            None => self.table.entries[self.table.root_index()].root.as_raw_fd(),
        }
    }

    fn device_comps(&self) -> Vec<String> {
        let mut comps: Vec<String> = self.stack.iter().map(|(n, _)| n.clone()).collect();
        if let Some(name) = &self.name {
            comps.push(name.clone());
        }
        comps
    }

    fn device_path(&self) -> String {
        join_comps(&self.device_comps())
    }

    fn mount(&self) -> &MountEntry {
        &self.table.entries[self.table.mount_of(&self.device_comps())]
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.mount().mount.read_only {
            Err(errno(libc::EROFS))
        } else {
            Ok(())
        }
    }

    /// The final component's name, or `EBUSY` for a mount root / `/`, `EINVAL` for `.`.
    fn require_name(&self) -> io::Result<CString> {
        match &self.name {
            Some(n) => cstring(n),
            None if self.table.exact(&self.device_comps()).is_some() => Err(errno(libc::EBUSY)),
            None => Err(errno(libc::EINVAL)),
        }
    }

    fn require_exists(&self) -> io::Result<libc::stat> {
        match (&self.name, self.stat) {
            (None, _) => fstat(self.dir_fd()),
            (Some(_), Some(st)) => Ok(st),
            (Some(_), None) => Err(errno(libc::ENOENT)),
        }
    }

    /// Opens the final component (which must exist) with `flags | O_NOFOLLOW`.
    fn open(&self, flags: libc::c_int) -> io::Result<OwnedFd> {
        match &self.name {
            None => open_raw(self.dir_fd(), c".", flags | libc::O_CLOEXEC, 0),
            Some(n) => open_raw(
                self.dir_fd(),
                &cstring(n)?,
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            ),
        }
    }
}

/// The sandboxed file tree of one phone. Cheap to share (`&PhoneFs` is `Sync`); every method
/// blocks on the disk.
pub struct PhoneFs {
    table: RwLock<Arc<Table>>,
}

impl std::fmt::Debug for PhoneFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneFs")
            .field("mounts", &self.mounts())
            .finish()
    }
}

impl PhoneFs {
    /// A file tree over `mounts`. Each host directory must exist; `/` must be mounted.
    pub fn new(mounts: Vec<Mount>) -> io::Result<PhoneFs> {
        Ok(PhoneFs {
            table: RwLock::new(Arc::new(Table::open(mounts)?)),
        })
    }

    /// Replaces the mount table (e.g. a new image's `/system`). Operations already under way
    /// finish on the old table.
    pub fn set_mounts(&self, mounts: Vec<Mount>) -> io::Result<()> {
        let table = Arc::new(Table::open(mounts)?);
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
        Ok(())
    }

    /// The current mounts, longest device path first.
    pub fn mounts(&self) -> Vec<Mount> {
        self.snapshot()
            .entries
            .iter()
            .map(|e| e.mount.clone())
            .collect()
    }

    fn snapshot(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lexically normalises `path` against the absolute device directory `cwd`: the result is
    /// absolute, without `.`, `..` or repeated slashes (`..` at `/` stays `/`). Symbolic
    /// links are not consulted (this is the shell's logical view, as `cd` uses it).
    pub fn normalize(cwd: &str, path: &str) -> String {
        join_comps(&split_normalized(&join(cwd, path)))
    }

    /// Resolves a device path component by component.
    fn resolve(&self, path: &str, follow_final: bool) -> io::Result<Resolved> {
        check_path(path)?;
        let table = self.snapshot();
        let mut pending: VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        if path.ends_with('/') && !pending.is_empty() {
            // `dir/` must name a directory (and follows a final link).
            pending.push_back(".".into());
        }
        let mut stack: Vec<(String, DirFd)> = Vec::new();
        let mut hops = 0usize;
        while let Some(comp) = pending.pop_front() {
            if comp == "." {
                continue;
            }
            if comp == ".." {
                stack.pop();
                continue;
            }
            if comp.len() > MAX_NAME_LEN {
                return Err(errno(libc::ENAMETOOLONG));
            }
            let is_last = pending.is_empty();
            let mut candidate: Vec<String> = stack.iter().map(|(n, _)| n.clone()).collect();
            candidate.push(comp.clone());
            if let Some(m) = table.exact(&candidate) {
                stack.push((comp, DirFd::Mount(m)));
                continue;
            }
            let dir = current_fd(&table, &stack);
            let cname = cstring(&comp)?;
            let st = match fstatat(dir, &cname) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && is_last => {
                    return Ok(Resolved {
                        table,
                        stack,
                        name: Some(comp),
                        stat: None,
                    });
                }
                Err(e) => return Err(e),
            };
            let kind = st.st_mode & libc::S_IFMT;
            if kind == libc::S_IFLNK && (!is_last || follow_final) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(errno(libc::ELOOP));
                }
                let target = readlinkat(dir, &cname)?;
                let target = String::from_utf8_lossy(&target).into_owned();
                if target.is_empty() {
                    return Err(errno(libc::ENOENT));
                }
                if target.starts_with('/') {
                    stack.clear();
                }
                if target.ends_with('/') {
                    pending.push_front(".".into());
                }
                for c in target.split('/').filter(|c| !c.is_empty()).rev() {
                    pending.push_front(c.to_owned());
                }
                if pending.len() > MAX_PATH_LEN {
                    return Err(errno(libc::ENAMETOOLONG));
                }
                continue;
            }
            if is_last {
                return Ok(Resolved {
                    table,
                    stack,
                    name: Some(comp),
                    stat: Some(st),
                });
            }
            if kind != libc::S_IFDIR {
                return Err(errno(libc::ENOTDIR));
            }
            let fd = open_raw(
                dir,
                &cname,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            )?;
            stack.push((comp, DirFd::Owned(fd)));
        }
        Ok(Resolved {
            table,
            stack,
            name: None,
            stat: None,
        })
    }

    /// The canonical device path of `path` (all links followed, like `realpath`). The final
    /// component need not exist.
    pub fn canonicalize(&self, path: &str) -> io::Result<String> {
        Ok(self.resolve(path, true)?.device_path())
    }

    /// The host path `path` resolves to (links followed inside the sandbox); always under one
    /// mount's host directory. The final component need not exist. For the runtime only: the
    /// answer is a snapshot, and opening it with host calls that follow links gives up the
    /// sandbox's guarantees.
    pub fn host_path(&self, path: &str) -> io::Result<PathBuf> {
        let r = self.resolve(path, true)?;
        let comps = r.device_comps();
        let m = r.mount();
        let mut host = m.mount.host_dir.clone();
        for c in &comps[m.comps.len()..] {
            host.push(c);
        }
        Ok(host)
    }

    /// Metadata of `path`, following links.
    pub fn stat(&self, path: &str) -> io::Result<FileStat> {
        self.resolve(path, true)?.require_exists().map(to_file_stat)
    }

    /// Metadata of `path` itself (a final link is not followed).
    pub fn lstat(&self, path: &str) -> io::Result<FileStat> {
        self.resolve(path, false)?
            .require_exists()
            .map(to_file_stat)
    }

    /// Whether `path` exists (links followed).
    pub fn exists(&self, path: &str) -> bool {
        self.stat(path).is_ok()
    }

    /// Whether `path` is a directory (links followed).
    pub fn is_dir(&self, path: &str) -> bool {
        self.stat(path).is_ok_and(|s| is_dir_mode(s.mode))
    }

    /// The entries of a directory (without `.` and `..`) with their `lstat`, sorted by name.
    /// Mount points directly inside the directory are listed even when the host directory
    /// has no entry for them.
    pub fn read_dir(&self, path: &str) -> io::Result<Vec<(String, FileStat)>> {
        let r = self.resolve(path, true)?;
        let st = r.require_exists()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(errno(libc::ENOTDIR));
        }
        let fd = r.open(libc::O_RDONLY | libc::O_DIRECTORY)?;
        let mut out: Vec<(String, FileStat)> = list_fd(fd)?
            .into_iter()
            .map(|(n, st)| (n, to_file_stat(st)))
            .collect();
        let here = r.device_comps();
        for e in &r.table.entries {
            if e.comps.len() == here.len() + 1 && e.comps.starts_with(&here) {
                let name = e.comps[here.len()].clone();
                let st = to_file_stat(fstat(e.root.as_raw_fd())?);
                match out.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = st,
                    None => out.push((name, st)),
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Opens a regular file for reading (links followed).
    pub fn open_read(&self, path: &str) -> io::Result<File> {
        let r = self.resolve(path, true)?;
        let st = r.require_exists()?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => return Err(errno(libc::EISDIR)),
            libc::S_IFREG => {}
            _ => return Err(errno(libc::EACCES)),
        }
        let fd = r.open(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)?;
        let file = File::from(fd);
        let st = fstat(file.as_raw_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(errno(libc::EACCES));
        }
        Ok(file)
    }

    /// Reads a whole regular file of at most `max` bytes (`EFBIG` when larger).
    pub fn read(&self, path: &str, max: u64) -> io::Result<Vec<u8>> {
        let file = self.open_read(path)?;
        let mut buf = Vec::new();
        file.take(max.saturating_add(1)).read_to_end(&mut buf)?;
        if buf.len() as u64 > max {
            return Err(errno(libc::EFBIG));
        }
        Ok(buf)
    }

    /// Opens (creating with mode 0644 if missing) a regular file for writing in place, as shell
    /// redirections do. Links are followed.
    pub fn open_write(&self, path: &str, mode: WriteMode) -> io::Result<File> {
        let r = self.resolve(path, true)?;
        let name = match (&r.name, r.stat) {
            (None, _) => return Err(errno(libc::EISDIR)),
            (Some(n), _) => cstring(n)?,
        };
        r.check_writable()?;
        if let Some(st) = r.stat
            && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        {
            return Err(errno(libc::EISDIR));
        }
        let extra = match mode {
            WriteMode::Truncate => libc::O_TRUNC,
            WriteMode::Append => libc::O_APPEND,
        };
        let fd = open_raw(
            r.dir_fd(),
            &name,
            libc::O_WRONLY
                | libc::O_CREAT
                | libc::O_NOFOLLOW
                | libc::O_CLOEXEC
                | libc::O_NONBLOCK
                | libc::O_NOCTTY
                | extra,
            0o644,
        )?;
        let file = File::from(fd);
        if fstat(file.as_raw_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(errno(libc::EACCES));
        }
        Ok(file)
    }

    /// Replaces `path` with `data` atomically (mode 0644 for a new file, else the old mode).
    pub fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let mode = self.stat(path).map(|s| s.mode & 0o7777).unwrap_or(0o644);
        let mut w = self.create(path, mode)?;
        w.write_all(data)?;
        w.finish(now_secs())
    }

    /// Appends `data` to `path`, creating it (mode 0644) if missing.
    pub fn append(&self, path: &str, data: &[u8]) -> io::Result<()> {
        self.open_write(path, WriteMode::Append)?.write_all(data)
    }

    /// Starts writing `path` atomically: bytes go to a temporary file in the same directory,
    /// which replaces `path` (links in the final component are replaced, not followed) when
    /// [`SyncFileWriter::finish`] succeeds. The parent directory must exist.
    pub fn create(&self, path: &str, mode: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        Ok(Box::new(self.create_writer(path, mode)?))
    }

    fn create_writer(&self, path: &str, mode: u32) -> io::Result<AtomicWriter> {
        let r = self.resolve(path, false)?;
        let name = r.require_name().map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                errno(libc::EISDIR)
            } else {
                e
            }
        })?;
        r.check_writable()?;
        if let Some(st) = r.stat
            && st.st_mode & libc::S_IFMT == libc::S_IFDIR
        {
            return Err(errno(libc::EISDIR));
        }
        let dir = dup_fd(r.dir_fd())?;
        let mode = mode & 0o7777;
        for _ in 0..8 {
            let tmp = cstring(&format!(".cph-tmp-{:016x}", rand::random::<u64>()))?;
            match open_raw(
                dir.as_raw_fd(),
                &tmp,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode,
            ) {
                Ok(fd) => {
                    let file = File::from(fd);
                    // The umask may have cleared bits the caller asked for.
                    cvt(unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) })?;
                    return Ok(AtomicWriter {
                        dir,
                        tmp,
                        name,
                        file: Some(file),
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(errno(libc::EEXIST))
    }

    /// Streams `reader` into `path` atomically (see [`PhoneFs::create`]); returns the bytes
    /// written.
    pub fn write_from(&self, path: &str, reader: &mut dyn Read, mode: u32) -> io::Result<u64> {
        let mut w = self.create_writer(path, mode)?;
        let n = io::copy(reader, &mut w)?;
        Box::new(w).finish(now_secs())?;
        Ok(n)
    }

    /// Creates a directory (mode 0755). `EEXIST` if anything exists at `path`.
    pub fn mkdir(&self, path: &str) -> io::Result<()> {
        let r = self.resolve(path, false)?;
        if r.name.is_none() || r.stat.is_some() {
            return Err(errno(libc::EEXIST));
        }
        r.check_writable()?;
        let name = r.require_name()?;
        cvt(unsafe { libc::mkdirat(r.dir_fd(), name.as_ptr(), 0o755) })?;
        Ok(())
    }

    /// Creates a directory and any missing parents; succeeds if it already is a directory.
    pub fn mkdir_all(&self, path: &str) -> io::Result<()> {
        check_path(path)?;
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let absolute = path.starts_with('/');
        for i in 1..=comps.len() {
            let prefix = comps[..i].join("/");
            let prefix = if absolute {
                format!("/{prefix}")
            } else {
                prefix
            };
            match self.mkdir(&prefix) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    if !self.is_dir(&prefix) {
                        return Err(errno(if i == comps.len() {
                            libc::EEXIST
                        } else {
                            libc::ENOTDIR
                        }));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Removes a file or symbolic link (never a directory: `EISDIR`).
    pub fn remove_file(&self, path: &str) -> io::Result<()> {
        let r = self.resolve(path, false)?;
        let st = r.require_exists()?;
        let name = r.require_name().map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                errno(libc::EISDIR)
            } else {
                e
            }
        })?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(errno(libc::EISDIR));
        }
        r.check_writable()?;
        cvt(unsafe { libc::unlinkat(r.dir_fd(), name.as_ptr(), 0) })?;
        Ok(())
    }

    /// Removes an empty directory.
    pub fn remove_dir(&self, path: &str) -> io::Result<()> {
        let r = self.resolve(path, false)?;
        let st = r.require_exists()?;
        let name = r.require_name()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(errno(libc::ENOTDIR));
        }
        r.check_writable()?;
        cvt(unsafe { libc::unlinkat(r.dir_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    /// Removes `path` and, if it is a directory, everything under it. Links are removed, never
    /// followed; mount points inside are left alone. `ENOENT` if nothing is there.
    pub fn remove_all(&self, path: &str) -> io::Result<()> {
        let r = self.resolve(path, false)?;
        let st = r.require_exists()?;
        let name = r.require_name()?;
        r.check_writable()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            cvt(unsafe { libc::unlinkat(r.dir_fd(), name.as_ptr(), 0) })?;
            return Ok(());
        }
        let fd = open_raw(
            r.dir_fd(),
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )?;
        remove_contents(&r.table, fd, &mut r.device_comps(), 0)?;
        cvt(unsafe { libc::unlinkat(r.dir_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    /// Renames `from` to `to` (final links are renamed, not followed). `EXDEV` across mounts.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let a = self.resolve(from, false)?;
        a.require_exists()?;
        let an = a.require_name()?;
        let b = self.resolve(to, false)?;
        let bn = b.require_name()?;
        a.check_writable()?;
        b.check_writable()?;
        if !Arc::ptr_eq(&a.table, &b.table)
            || a.table.mount_of(&a.device_comps()) != b.table.mount_of(&b.device_comps())
        {
            return Err(errno(libc::EXDEV));
        }
        cvt(unsafe { libc::renameat(a.dir_fd(), an.as_ptr(), b.dir_fd(), bn.as_ptr()) })?;
        Ok(())
    }

    /// Creates a hard link `path` to the existing non-directory `target` (a final link in
    /// `target` is linked itself). `EXDEV` across mounts, `EPERM` for a directory.
    pub fn hard_link(&self, target: &str, path: &str) -> io::Result<()> {
        let a = self.resolve(target, false)?;
        let st = a.require_exists()?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(errno(libc::EPERM));
        }
        let an = a.require_name()?;
        let b = self.resolve(path, false)?;
        if b.name.is_none() || b.stat.is_some() {
            return Err(errno(libc::EEXIST));
        }
        let bn = b.require_name()?;
        b.check_writable()?;
        if !Arc::ptr_eq(&a.table, &b.table)
            || a.table.mount_of(&a.device_comps()) != b.table.mount_of(&b.device_comps())
        {
            return Err(errno(libc::EXDEV));
        }
        cvt(unsafe { libc::linkat(a.dir_fd(), an.as_ptr(), b.dir_fd(), bn.as_ptr(), 0) })?;
        Ok(())
    }

    /// Copies the regular file `from` (links followed) to `to` atomically, keeping its mode;
    /// returns the bytes copied.
    pub fn copy(&self, from: &str, to: &str) -> io::Result<u64> {
        let mut src = self.open_read(from)?;
        let mode = fstat(src.as_raw_fd())?.st_mode & 0o7777;
        self.write_from(to, &mut src, mode)
    }

    /// Creates a symbolic link at `path` whose target is the device path `target` (absolute,
    /// or relative to the link's directory). `EEXIST` if `path` exists.
    pub fn symlink(&self, target: &str, path: &str) -> io::Result<()> {
        if target.is_empty() {
            return Err(errno(libc::ENOENT));
        }
        check_path(target)?;
        let r = self.resolve(path, false)?;
        if r.name.is_none() || r.stat.is_some() {
            return Err(errno(libc::EEXIST));
        }
        let name = r.require_name()?;
        r.check_writable()?;
        let t = cstring(target)?;
        cvt(unsafe { libc::symlinkat(t.as_ptr(), r.dir_fd(), name.as_ptr()) })?;
        Ok(())
    }

    /// The target of the symbolic link `path` (`EINVAL` if it is not a link).
    pub fn read_link(&self, path: &str) -> io::Result<String> {
        let r = self.resolve(path, false)?;
        let st = r.require_exists()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            return Err(errno(libc::EINVAL));
        }
        let name = r.require_name()?;
        let t = readlinkat(r.dir_fd(), &name)?;
        Ok(String::from_utf8_lossy(&t).into_owned())
    }

    /// Sets the permission bits of `path` (links followed).
    pub fn chmod(&self, path: &str, mode: u32) -> io::Result<()> {
        let r = self.resolve(path, true)?;
        r.require_exists()?;
        r.check_writable()?;
        let fd = r.open(libc::O_PATH)?;
        let mode = (mode & 0o7777) as libc::mode_t;
        let proc_path = proc_fd_path(&fd)?;
        match cvt(unsafe { libc::fchmodat(libc::AT_FDCWD, proc_path.as_ptr(), mode, 0) }) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // No /proc: open the object itself (not possible for unreadable files).
                let fd = r.open(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)?;
                cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the access and modification times of `path` (links followed) to `mtime` seconds.
    pub fn set_mtime(&self, path: &str, mtime: i64) -> io::Result<()> {
        let r = self.resolve(path, true)?;
        r.require_exists()?;
        r.check_writable()?;
        let t = libc::timespec {
            tv_sec: mtime as libc::time_t,
            tv_nsec: 0,
        };
        let times = [t, t];
        match &r.name {
            Some(n) => {
                let name = cstring(n)?;
                cvt(unsafe {
                    libc::utimensat(
                        r.dir_fd(),
                        name.as_ptr(),
                        times.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
            }
            None => {
                let fd = r.open(libc::O_RDONLY | libc::O_DIRECTORY)?;
                cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })?;
            }
        }
        Ok(())
    }

    /// Space of the file system holding `path` (the host's `statvfs`).
    pub fn usage(&self, path: &str) -> io::Result<Usage> {
        let r = self.resolve(path, true)?;
        r.require_exists()?;
        let fd = r.open(libc::O_PATH)?;
        let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
        cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut sv) })?;
        let frsize = sv.f_frsize as u64;
        let total = (sv.f_blocks as u64).saturating_mul(frsize);
        let free = (sv.f_bfree as u64).saturating_mul(frsize);
        let available = (sv.f_bavail as u64).saturating_mul(frsize);
        Ok(Usage {
            total,
            used: total.saturating_sub(free),
            available,
        })
    }

    /// Whether the mount serving `path` is read-only.
    pub fn is_read_only(&self, path: &str) -> io::Result<bool> {
        let r = self.resolve(path, true)?;
        Ok(r.mount().mount.read_only)
    }
}

impl SyncFs for PhoneFs {
    fn stat(&self, path: &str) -> io::Result<FileStat> {
        PhoneFs::stat(self, path)
    }

    fn lstat(&self, path: &str) -> io::Result<FileStat> {
        PhoneFs::lstat(self, path)
    }

    fn list(&self, path: &str) -> io::Result<Vec<(String, FileStat)>> {
        self.read_dir(path)
    }

    fn open_read(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(PhoneFs::open_read(self, path)?))
    }

    fn create_file(&self, path: &str, mode: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        if let Some(parent) = parent_of(path) {
            self.mkdir_all(&parent)?;
        }
        self.create(path, mode)
    }

    fn symlink(&self, target: &str, path: &str) -> io::Result<()> {
        match PhoneFs::symlink(self, target, path) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                if let Some(parent) = parent_of(path) {
                    self.mkdir_all(&parent)?;
                }
                self.remove_file(path)?;
                PhoneFs::symlink(self, target, path)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                if let Some(parent) = parent_of(path) {
                    self.mkdir_all(&parent)?;
                }
                PhoneFs::symlink(self, target, path)
            }
            other => other,
        }
    }
}

/// A file being written atomically (see [`PhoneFs::create`]).
struct AtomicWriter {
    dir: OwnedFd,
    tmp: CString,
    name: CString,
    file: Option<File>,
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(errno(libc::EBADF)),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write_vectored(bufs),
            None => Err(errno(libc::EBADF)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl SyncFileWriter for AtomicWriter {
    fn finish(mut self: Box<Self>, mtime: i64) -> io::Result<()> {
        let file = self.file.take().ok_or_else(|| errno(libc::EBADF))?;
        let t = libc::timespec {
            tv_sec: mtime as libc::time_t,
            tv_nsec: 0,
        };
        let times = [t, t];
        let result =
            cvt(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) }).and_then(|_| {
                cvt(unsafe {
                    libc::renameat(
                        self.dir.as_raw_fd(),
                        self.tmp.as_ptr(),
                        self.dir.as_raw_fd(),
                        self.name.as_ptr(),
                    )
                })
            });
        drop(file);
        if result.is_err() {
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
        result.map(|_| ())
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}

/// Joins `path` to the device directory `cwd` without normalising (so `..` after a link is
/// resolved physically by the file tree). Absolute paths are returned as they are.
pub fn join(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else if path.is_empty() {
        cwd.to_owned()
    } else if cwd.ends_with('/') {
        format!("{cwd}{path}")
    } else {
        format!("{cwd}/{path}")
    }
}

/// The parent of a device path (lexically), `None` for `/`.
pub fn parent_of(path: &str) -> Option<String> {
    let comps = split_normalized(path);
    if comps.is_empty() {
        return None;
    }
    Some(join_comps(&comps[..comps.len() - 1]))
}

/// Whether a `FileStat` mode is a directory.
pub fn is_dir_mode(mode: u32) -> bool {
    mode & 0o170000 == 0o040000
}

/// Whether a `FileStat` mode is a regular file.
pub fn is_file_mode(mode: u32) -> bool {
    mode & 0o170000 == 0o100000
}

/// Whether a `FileStat` mode is a symbolic link.
pub fn is_symlink_mode(mode: u32) -> bool {
    mode & 0o170000 == 0o120000
}

fn split_normalized(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c.to_owned()),
        }
    }
    out
}

fn join_comps(comps: &[String]) -> String {
    if comps.is_empty() {
        "/".to_owned()
    } else {
        let mut s = String::new();
        for c in comps {
            s.push('/');
            s.push_str(c);
        }
        s
    }
}

fn current_fd(table: &Table, stack: &[(String, DirFd)]) -> RawFd {
    match stack.last() {
        Some((_, DirFd::Owned(fd))) => fd.as_raw_fd(),
        Some((_, DirFd::Mount(i))) => table.entries[*i].root.as_raw_fd(),
        None => table.entries[table.root_index()].root.as_raw_fd(),
    }
}

fn check_path(path: &str) -> io::Result<()> {
    if path.is_empty() {
        return Err(errno(libc::ENOENT));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(errno(libc::ENAMETOOLONG));
    }
    if path.contains('\0') {
        return Err(errno(libc::EINVAL));
    }
    Ok(())
}

fn remove_contents(
    table: &Table,
    dir: OwnedFd,
    device: &mut Vec<String>,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_TREE_DEPTH {
        return Err(errno(libc::ELOOP));
    }
    let raw = dir.as_raw_fd();
    for (name, st) in list_fd(dup_fd(raw)?)? {
        device.push(name.clone());
        let is_mount = table.exact(device).is_some();
        let result: io::Result<()> = (|| {
            if is_mount {
                return Ok(());
            }
            let cname = cstring(&name)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                let child = open_raw(
                    raw,
                    &cname,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0,
                )?;
                remove_contents(table, child, device, depth + 1)?;
                cvt(unsafe { libc::unlinkat(raw, cname.as_ptr(), libc::AT_REMOVEDIR) })?;
            } else {
                cvt(unsafe { libc::unlinkat(raw, cname.as_ptr(), 0) })?;
            }
            Ok(())
        })();
        device.pop();
        result?;
    }
    Ok(())
}

/// Lists an open directory (consumes the descriptor) with each entry's `lstat`.
fn list_fd(fd: OwnedFd) -> io::Result<Vec<(String, libc::stat)>> {
    struct Dir(*mut libc::DIR);
    impl Drop for Dir {
        fn drop(&mut self) {
            unsafe { libc::closedir(self.0) };
        }
    }
    let raw = fd.as_raw_fd();
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        return Err(io::Error::last_os_error());
    }
    // The stream owns the descriptor now.
    std::mem::forget(fd);
    let dir = Dir(dirp);
    let mut names = Vec::new();
    loop {
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir(dir.0) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            if e.raw_os_error().unwrap_or(0) != 0 {
                return Err(e);
            }
            break;
        }
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if names.len() >= MAX_DIR_ENTRIES {
            return Err(errno(libc::EFBIG));
        }
        names.push(name.to_owned());
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        match fstatat(raw, &name) {
            Ok(st) => out.push((String::from_utf8_lossy(name.to_bytes()).into_owned(), st)),
            // Removed while listing.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    drop(dir);
    Ok(out)
}

fn to_file_stat(st: libc::stat) -> FileStat {
    FileStat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink as u32,
        uid: 0,
        gid: 0,
        size: st.st_size.max(0) as u64,
        atime: st.st_atime,
        mtime: st.st_mtime,
        ctime: st.st_ctime,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| errno(libc::EINVAL))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open_raw(
    dir: RawFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    loop {
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: `openat` returned a fresh descriptor we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn dup_fd(fd: RawFd) -> io::Result<OwnedFd> {
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` returned a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn fstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; MAX_PATH_LEN + 1];
    let n = unsafe {
        libc::readlinkat(
            dir,
            name.as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n > MAX_PATH_LEN {
        return Err(errno(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

fn proc_fd_path(fd: &impl AsFd) -> io::Result<CString> {
    cstring(&format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// The C library's text for an OS error (`No such file or directory`), without the
/// `(os error N)` suffix Rust adds; other errors as they display.
pub fn error_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) if e.raw_os_error().is_some() => s[..i].to_owned(),
        _ => s,
    }
}
