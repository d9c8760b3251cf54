//! A device that costs as little as an ADB endpoint can: the ceiling of the stock adb client
//! and server on this machine.
//!
//! [`SinkDevice`] speaks the same protocol code as a virtual phone (`cph_adb::device`), but its
//! `sync:` file system keeps nothing: a pushed file is counted and dropped, and every pulled
//! file is the same in-memory block repeated up to the file's size (no disk is read). A stock
//! `adb push`/`pull` against it therefore measures what the adb client and server (and the
//! protocol code every endpoint needs) can do on this machine with no file system work on the
//! device side: a throughput no device implementation can beat with these clients.

use cph_adb::{
    AdbPublicKey, Device, DeviceIdentity, ExecIo, ExecRequest, FileStat, SyncFileWriter, SyncFs,
};
use futures::future::BoxFuture;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Size of the block pulled files repeat.
const BLOCK: usize = 1 << 20;

/// The discarding device. See the module documentation.
pub struct SinkDevice {
    keys: Arc<Vec<AdbPublicKey>>,
    fs: Arc<SinkFs>,
}

impl SinkDevice {
    /// A device that admits `keys` and whose every file (for `pull`) is `file_size` bytes.
    pub fn new(keys: Vec<AdbPublicKey>, file_size: u64) -> SinkDevice {
        let block: Vec<u8> = (0..BLOCK).map(|i| (i * 7 + 3) as u8).collect();
        SinkDevice {
            keys: Arc::new(keys),
            fs: Arc::new(SinkFs {
                file_size,
                block: Arc::new(block),
            }),
        }
    }
}

impl Device for SinkDevice {
    fn identity(&self) -> DeviceIdentity {
        DeviceIdentity {
            product_name: "sink".into(),
            model: "sink".into(),
            device: "sink".into(),
        }
    }

    fn allowed_keys(&self) -> Arc<Vec<AdbPublicKey>> {
        self.keys.clone()
    }

    fn exec(&self, _request: ExecRequest, _io: ExecIo) -> BoxFuture<'static, i32> {
        // `adb push` runs no command; anything else is "not found".
        Box::pin(async { 127 })
    }

    fn fs(&self) -> Arc<dyn SyncFs> {
        self.fs.clone()
    }

    fn reboot(&self, _target: &str) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

struct SinkFs {
    file_size: u64,
    block: Arc<Vec<u8>>,
}

impl SinkFs {
    fn file(&self, path: &str) -> FileStat {
        let dir = path == "/" || path.ends_with('/') || !path.contains(".bin");
        FileStat {
            mode: if dir { 0o040755 } else { 0o100644 },
            nlink: 1,
            size: if dir { 4096 } else { self.file_size },
            ..FileStat::default()
        }
    }
}

impl SyncFs for SinkFs {
    fn stat(&self, path: &str) -> io::Result<FileStat> {
        Ok(self.file(path))
    }

    fn lstat(&self, path: &str) -> io::Result<FileStat> {
        Ok(self.file(path))
    }

    fn list(&self, _path: &str) -> io::Result<Vec<(String, FileStat)>> {
        Ok(Vec::new())
    }

    fn open_read(&self, _path: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(Repeat {
            block: self.block.clone(),
            left: self.file_size,
            at: 0,
        }))
    }

    fn create_file(&self, _path: &str, _mode: u32) -> io::Result<Box<dyn SyncFileWriter>> {
        Ok(Box::new(Discard { fs_bytes: 0 }))
    }

    fn symlink(&self, _target: &str, _path: &str) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(EROFS))
    }
}

/// `EROFS`: the sink keeps no links.
const EROFS: i32 = 30;

/// A pulled file: the block repeated up to the file's size.
struct Repeat {
    block: Arc<Vec<u8>>,
    left: u64,
    at: usize,
}

impl Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(self.block.len() - self.at)
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at = (self.at + n) % self.block.len();
        self.left -= n as u64;
        Ok(n)
    }
}

/// A pushed file: counted, then dropped.
struct Discard {
    fs_bytes: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs_bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n: usize = bufs.iter().map(|b| b.len()).sum();
        self.fs_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SyncFileWriter for Discard {
    fn finish(self: Box<Self>, _mtime: i64) -> io::Result<()> {
        RECEIVED.fetch_add(self.fs_bytes, Ordering::Relaxed);
        Ok(())
    }
}

/// Bytes of pushed files finished by any sink device of this process.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// Bytes of pushed files every sink device of this process has received in full.
pub fn received_total() -> u64 {
    RECEIVED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulled_files_have_the_stat_size_and_repeat_the_block() {
        let dev = SinkDevice::new(Vec::new(), 3 * BLOCK as u64 + 5);
        let fs = dev.fs();
        assert_eq!(
            fs.stat("/data/local/tmp/big.bin").unwrap().size,
            3 * BLOCK as u64 + 5
        );
        assert_eq!(
            fs.stat("/data/local/tmp").unwrap().mode & 0o170000,
            0o040000
        );
        let mut all = Vec::new();
        fs.open_read("/x.bin")
            .unwrap()
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all.len(), 3 * BLOCK + 5);
        assert_eq!(&all[BLOCK..BLOCK + 5], &all[..5]);
    }

    #[test]
    fn pushed_bytes_are_counted_when_finished() {
        let dev = SinkDevice::new(Vec::new(), 0);
        let before = received_total();
        let mut w = dev.fs().create_file("/x.bin", 0o644).unwrap();
        w.write_all(&[1u8; 1000]).unwrap();
        w.finish(0).unwrap();
        assert!(received_total() >= before + 1000);
    }
}
