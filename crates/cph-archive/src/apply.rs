//! Applying a tar to a phone: streamed through, or staged in a validated host file first.

use crate::reader::{Exact, Kind, Member, TarReader, ended_early};
use crate::spool::{Tee, TempSpool};
use crate::{ApplyOptions, ArchiveError, Staging};
use cph_adb::client::{AdbClient, ClientError, quote};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tokio::io::{AsyncRead, BufReader, BufWriter};

/// File type bits of a regular file.
const S_IFREG: u32 = 0o100_000;
/// Longest shell command line built for a batch of paths.
const MAX_BATCH_COMMAND: usize = 16 * 1024;
/// Most output of a failed command kept in an error.
const MAX_ERROR_OUTPUT: usize = 1024;
/// Read buffer for staged files (the tar reader reads 512-byte headers).
const FILE_BUFFER: usize = 256 * 1024;

/// What an application did (or, for [`StagedTar::summary`], will do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Regular files written.
    pub files: u64,
    /// Directory entries applied (created if missing).
    pub dirs: u64,
    /// Symbolic and hard links created.
    pub links: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Unpacks the tar `tar` onto the phone behind `client`: entry `data/x` becomes `/data/x`.
///
/// With [`Staging::None`] the archive streams through once: each entry is checked when read
/// and written at once, so a hostile entry fails the operation (naming it) after the entries
/// before it were written. With [`Staging::TempFile`] the archive is first spooled into a
/// temporary host file while all of it is validated, and only then applied ([`StagedTar`]);
/// a refused archive writes nothing. The service uses the staged form, spooling an archive
/// once per host and applying it to each of that host's phones.
///
/// Regular files are piped from the archive into `push` (mode and mtime kept, never buffered
/// whole); directories are created with batched `mkdir -p`, and their modes and mtimes are
/// set after all entries (so that writing into them does not change them again); links are
/// made with `ln`. Reads of `tar` are not timed out here: wrap a network source in a timeout.
pub async fn apply_tar<R>(
    client: &AdbClient,
    tar: R,
    opts: ApplyOptions,
) -> Result<ApplyReport, ArchiveError>
where
    R: AsyncRead + Unpin + Send,
{
    match &opts.staging {
        Staging::None => apply_stream(client, tar, &opts).await,
        Staging::TempFile(dir) => {
            let staged = StagedTar::spool(tar, dir, opts.clone()).await?;
            staged.apply(client).await
        }
    }
}

/// A tar in a host file, validated completely, ready to be applied to any number of phones.
///
/// Validation reads the whole archive with the same checks as [`apply_tar`] (entries, names,
/// links, limits, well-formedness); [`StagedTar::apply`] reads it again and checks it again as
/// it goes, and refuses a file whose size or modification time changed since validation.
#[derive(Debug)]
pub struct StagedTar {
    path: PathBuf,
    opts: ApplyOptions,
    summary: ApplyReport,
    fingerprint: (u64, Option<SystemTime>),
    /// Set when the file is our own temporary spool (removed on drop).
    _spool: Option<TempSpool>,
}

impl StagedTar {
    /// Validates the archive already stored at `path` (e.g. fetched from object storage). The
    /// file is left in place when this is dropped.
    pub async fn validate(
        path: impl Into<PathBuf>,
        opts: ApplyOptions,
    ) -> Result<StagedTar, ArchiveError> {
        let path = path.into();
        let file = tokio::fs::File::open(&path).await?;
        let fingerprint = fingerprint(&file).await?;
        let summary = validate_stream(BufReader::with_capacity(FILE_BUFFER, file), &opts).await?;
        Ok(StagedTar {
            path,
            opts,
            summary,
            fingerprint,
            _spool: None,
        })
    }

    /// Copies `tar` into a new temporary file in `dir` while validating it. The file holds
    /// exactly what validation read (bounded by the archive limits) and is removed when the
    /// returned value is dropped, or at once if validation fails.
    pub async fn spool<R>(tar: R, dir: &Path, opts: ApplyOptions) -> Result<StagedTar, ArchiveError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let (spool, file) = TempSpool::create(dir).await?;
        let tee = Tee::new(tar, BufWriter::with_capacity(FILE_BUFFER, file));
        let mut reader = TarReader::new(tee, &opts)?;
        let summary = drain(&mut reader).await?;
        let tee = reader
            .into_inner()
            .ok_or_else(|| ArchiveError::Malformed("the archive reader is still in use".into()))?;
        let (writer, _) = tee.finish().await?;
        let file = writer.into_inner();
        file.sync_data().await?;
        let fingerprint = fingerprint(&file).await?;
        Ok(StagedTar {
            path: spool.path().to_path_buf(),
            opts,
            summary,
            fingerprint,
            _spool: Some(spool),
        })
    }

    /// What applying the archive will write.
    pub fn summary(&self) -> &ApplyReport {
        &self.summary
    }

    /// The host file holding the archive.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies the archive to the phone behind `client`. Several applications (to different
    /// phones) may run at once.
    pub async fn apply(&self, client: &AdbClient) -> Result<ApplyReport, ArchiveError> {
        let file = tokio::fs::File::open(&self.path).await?;
        if fingerprint(&file).await? != self.fingerprint {
            return Err(ArchiveError::StagedChanged(self.path.clone()));
        }
        apply_stream(
            client,
            BufReader::with_capacity(FILE_BUFFER, file),
            &self.opts,
        )
        .await
    }
}

async fn fingerprint(file: &tokio::fs::File) -> std::io::Result<(u64, Option<SystemTime>)> {
    let meta = file.metadata().await?;
    Ok((meta.len(), meta.modified().ok()))
}

/// Reads and checks the whole archive without writing anything.
async fn validate_stream<R>(tar: R, opts: &ApplyOptions) -> Result<ApplyReport, ArchiveError>
where
    R: AsyncRead + Unpin + Send,
{
    let mut reader = TarReader::new(tar, opts)?;
    drain(&mut reader).await
}

async fn drain<'a, R>(reader: &mut TarReader<'a, R>) -> Result<ApplyReport, ArchiveError>
where
    R: AsyncRead + Unpin + Send + 'a,
{
    let mut report = ApplyReport::default();
    while let Some((member, entry)) = reader.next().await? {
        match member.kind {
            Kind::File => {
                let mut data = Exact::new(entry, member.size);
                let n = tokio::io::copy(&mut data, &mut tokio::io::sink())
                    .await
                    .map_err(|e| reader_error(&member, e, reader.source_ended()))?;
                report.files += 1;
                report.bytes += n;
            }
            Kind::Dir { .. } => report.dirs += 1,
            Kind::Symlink(_) | Kind::HardLink(_) => report.links += 1,
        }
    }
    Ok(report)
}

/// An error reading a member's data: the archive is truncated, or reading the source failed.
fn reader_error(member: &Member, e: std::io::Error, source_ended: bool) -> ArchiveError {
    match ended_early(&e) {
        Some(short) => ArchiveError::Malformed(format!(
            "the archive ends inside {:?} ({} of {} bytes)",
            member.path, short.read, short.expected
        )),
        None if source_ended || e.kind() == std::io::ErrorKind::UnexpectedEof => {
            ArchiveError::Malformed(format!("the archive ends inside {:?}: {e}", member.path))
        }
        None => ArchiveError::Io(e),
    }
}

/// The permission bits adbd gives a pushed file asked to have `mode`: it copies the owner's
/// bits to the group and the group's to others (`0o600` becomes `0o666`).
fn adbd_mode(mode: u32) -> u32 {
    let mut perm = mode & 0o777;
    perm |= (perm >> 3) & 0o070;
    perm |= (perm >> 3) & 0o007;
    perm
}

async fn apply_stream<R>(
    client: &AdbClient,
    tar: R,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ArchiveError>
where
    R: AsyncRead + Unpin + Send,
{
    let mut reader = TarReader::new(tar, opts)?;
    let mut applier = Applier::new(client);
    while let Some((member, entry)) = reader.next().await? {
        let dev = opts.device_path(&member.path);
        match &member.kind {
            Kind::File => {
                let data = Exact::new(entry, member.size);
                let n = client
                    .push(data, &dev, S_IFREG | member.mode, member.mtime)
                    .await
                    .map_err(|e| match e {
                        // Local errors of a push come from the reader: the archive.
                        ClientError::Io(io) => reader_error(&member, io, reader.source_ended()),
                        other => ArchiveError::device(format!("push {dev}"), other),
                    })?;
                applier.report.files += 1;
                applier.report.bytes += n;
                // Push cannot give every mode (see `adbd_mode`); fix the others at the end.
                if adbd_mode(member.mode) != member.mode {
                    applier.fixups.insert(dev, (Some(member.mode), None));
                } else {
                    applier.fixups.remove(&dev);
                }
            }
            Kind::Dir { protected } => {
                drop(entry);
                applier.mkdir(dev.clone()).await?;
                if !protected {
                    applier
                        .fixups
                        .insert(dev, (Some(member.mode), Some(member.mtime)));
                }
                applier.report.dirs += 1;
            }
            Kind::Symlink(target) => {
                drop(entry);
                // Never chmod, touch or mkdir through a link that replaced a file or directory.
                applier.fixups.remove(&dev);
                applier.flush_mkdirs().await?;
                let cmd = format!(
                    "{}ln -sfn {} {}",
                    mkdir_parent(&dev),
                    quote(target),
                    quote(&dev)
                );
                applier.run(&format!("link {dev}"), &cmd).await?;
                applier.report.links += 1;
            }
            Kind::HardLink(target) => {
                drop(entry);
                applier.flush_mkdirs().await?;
                let cmd = format!(
                    "{}ln -fn {} {}",
                    mkdir_parent(&dev),
                    quote(&opts.device_path(target.as_str())),
                    quote(&dev)
                );
                applier.run(&format!("link {dev}"), &cmd).await?;
                applier.report.links += 1;
            }
        }
    }
    applier.finish().await
}

/// `mkdir -p '<parent>' && ` for a device path with a parent below `/`, else nothing.
fn mkdir_parent(dev: &str) -> String {
    match dev.rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() => format!("mkdir -p {} && ", quote(parent)),
        _ => String::new(),
    }
}

/// Shell work on one phone: batched directory creation, links, final directory fix-ups.
struct Applier<'c> {
    client: &'c AdbClient,
    mkdirs: Vec<String>,
    mkdirs_len: usize,
    /// Modes and mtimes set at the end, by device path: directories (written into after
    /// their entry) and files whose mode push cannot give. The last entry of a path wins.
    fixups: BTreeMap<String, (Option<u32>, Option<u32>)>,
    report: ApplyReport,
}

impl<'c> Applier<'c> {
    fn new(client: &'c AdbClient) -> Self {
        Applier {
            client,
            mkdirs: Vec::new(),
            mkdirs_len: 0,
            fixups: BTreeMap::new(),
            report: ApplyReport::default(),
        }
    }

    async fn mkdir(&mut self, dev: String) -> Result<(), ArchiveError> {
        self.mkdirs_len += dev.len() + 3;
        self.mkdirs.push(dev);
        if self.mkdirs_len >= MAX_BATCH_COMMAND {
            self.flush_mkdirs().await?;
        }
        Ok(())
    }

    async fn flush_mkdirs(&mut self) -> Result<(), ArchiveError> {
        if self.mkdirs.is_empty() {
            return Ok(());
        }
        let paths = std::mem::take(&mut self.mkdirs);
        self.mkdirs_len = 0;
        let mut cmd = String::from("mkdir -p");
        for p in &paths {
            cmd.push(' ');
            cmd.push_str(&quote(p));
        }
        let what = format!("create {} directories ({}, …)", paths.len(), paths[0]);
        self.run(&what, &cmd).await
    }

    /// Creates pending directories, then sets the recorded mtimes and modes.
    async fn finish(mut self) -> Result<ApplyReport, ArchiveError> {
        self.flush_mkdirs().await?;
        let fixups = std::mem::take(&mut self.fixups);
        let mut by_mtime: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        let mut by_mode: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for (p, (mode, mtime)) in &fixups {
            if let Some(mtime) = mtime {
                by_mtime.entry(*mtime).or_default().push(p);
            }
            if let Some(mode) = mode {
                by_mode.entry(*mode).or_default().push(p);
            }
        }
        for (mtime, paths) in &by_mtime {
            self.batched(
                &format!("touch -c -d @{mtime}"),
                paths,
                "set directory times",
            )
            .await?;
        }
        for (mode, paths) in &by_mode {
            self.batched(&format!("chmod {mode:o}"), paths, "set modes")
                .await?;
        }
        Ok(self.report)
    }

    async fn batched(&self, prefix: &str, paths: &[&str], what: &str) -> Result<(), ArchiveError> {
        let mut cmd = String::from(prefix);
        let mut count = 0;
        for p in paths {
            let q = quote(p);
            if count > 0 && cmd.len() + q.len() + 1 > MAX_BATCH_COMMAND {
                self.run(what, &cmd).await?;
                cmd = String::from(prefix);
                count = 0;
            }
            cmd.push(' ');
            cmd.push_str(&q);
            count += 1;
        }
        if count > 0 {
            self.run(what, &cmd).await?;
        }
        Ok(())
    }

    /// Runs `cmd` and fails unless it exits 0 (without the shell protocol, unless it printed
    /// nothing).
    async fn run(&self, what: &str, cmd: &str) -> Result<(), ArchiveError> {
        let out = self
            .client
            .shell(cmd)
            .await
            .map_err(|e| ArchiveError::device(what, e))?;
        let quiet = out.stdout.is_empty() && out.stderr.is_empty();
        match out.exit_code {
            Some(0) => Ok(()),
            None if quiet => Ok(()),
            exit => {
                let mut text = out.stderr_text();
                if text.trim().is_empty() {
                    text = out.stdout_text();
                }
                text.truncate(text.floor_char_boundary(MAX_ERROR_OUTPUT));
                Err(ArchiveError::Command {
                    what: what.to_string(),
                    exit,
                    output: text.trim().to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::adbd_mode;

    #[test]
    fn adbd_widens_owner_bits() {
        assert_eq!(adbd_mode(0o600), 0o666);
        assert_eq!(adbd_mode(0o644), 0o666);
        assert_eq!(adbd_mode(0o755), 0o777);
        assert_eq!(adbd_mode(0o666), 0o666);
        assert_eq!(adbd_mode(0o777), 0o777);
        assert_eq!(adbd_mode(0o400), 0o444);
    }
}
