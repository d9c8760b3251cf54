//! The sandboxed file tree: resolution, escapes, read-only mounts, atomic writes.

use cph_adb::SyncFs;
use cph_phone::fs::{Mount, PhoneFs, WriteMode};
use std::io::{Read, Write};
use std::path::PathBuf;

struct Tree {
    _dir: tempfile::TempDir,
    /// Host directory of `/`.
    root: PathBuf,
    /// Host directory of `/system`.
    system: PathBuf,
    /// A host directory outside every mount, with a file in it.
    outside: PathBuf,
    fs: PhoneFs,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let system = dir.path().join("system");
    let outside = dir.path().join("outside");
    for d in [&root, &system, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(outside.join("secret"), b"host secret").unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), b"sandbox passwd").unwrap();
    std::fs::write(system.join("build.prop"), b"ro.x=1\n").unwrap();
    let fs = PhoneFs::new(vec![
        Mount {
            device_path: "/".into(),
            host_dir: root.clone(),
            read_only: false,
        },
        Mount {
            device_path: "/system".into(),
            host_dir: system.clone(),
            read_only: true,
        },
    ])
    .unwrap();
    Tree {
        _dir: dir,
        root,
        system,
        outside,
        fs,
    }
}

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

fn read(fs: &PhoneFs, p: &str) -> Vec<u8> {
    fs.read(p, 1 << 20).unwrap()
}

#[test]
fn root_must_be_mounted_and_host_dirs_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        PhoneFs::new(vec![Mount {
            device_path: "/data".into(),
            host_dir: dir.path().to_path_buf(),
            read_only: false,
        }])
        .is_err()
    );
    assert!(
        PhoneFs::new(vec![Mount {
            device_path: "/".into(),
            host_dir: dir.path().join("missing"),
            read_only: false,
        }])
        .is_err()
    );
}

#[test]
fn normalize_is_lexical_and_stays_at_root() {
    assert_eq!(PhoneFs::normalize("/", "../../etc/passwd"), "/etc/passwd");
    assert_eq!(
        PhoneFs::normalize("/data/local", "tmp/./x/../y"),
        "/data/local/tmp/y"
    );
    assert_eq!(PhoneFs::normalize("/a", "/b//c/"), "/b/c");
    assert_eq!(PhoneFs::normalize("/a/b", ".."), "/a");
    assert_eq!(PhoneFs::normalize("/", ".."), "/");
}

#[test]
fn dot_dot_never_leaves_the_root() {
    let t = tree();
    assert_eq!(read(&t.fs, "/../../etc/passwd"), b"sandbox passwd");
    assert_eq!(
        read(&t.fs, "/etc/../../../../etc/passwd"),
        b"sandbox passwd"
    );
    assert_eq!(
        errno(t.fs.stat("/../outside/secret").unwrap_err()),
        libc::ENOENT
    );
}

#[test]
fn absolute_symlinks_resolve_inside_the_sandbox() {
    let t = tree();
    t.fs.symlink("/../..", "/up").unwrap();
    assert_eq!(read(&t.fs, "/up/etc/passwd"), b"sandbox passwd");
    // A link planted on the host pointing at the host's /etc resolves to <root>/etc.
    std::os::unix::fs::symlink("/etc", t.root.join("hostlink")).unwrap();
    assert_eq!(read(&t.fs, "/hostlink/passwd"), b"sandbox passwd");
    assert_eq!(
        t.fs.host_path("/hostlink/passwd").unwrap(),
        t.root.join("etc/passwd")
    );
    // A link to the host path of a directory outside the mounts finds nothing.
    std::os::unix::fs::symlink(&t.outside, t.root.join("out")).unwrap();
    assert_eq!(errno(t.fs.stat("/out/secret").unwrap_err()), libc::ENOENT);
    // Relative links with many `..` stop at the root too.
    std::os::unix::fs::symlink("../../../../../../outside/secret", t.root.join("etc/rel")).unwrap();
    assert_eq!(errno(t.fs.stat("/etc/rel").unwrap_err()), libc::ENOENT);
}

#[test]
fn symlink_chains_and_relative_targets() {
    let t = tree();
    t.fs.mkdir_all("/data/local/tmp").unwrap();
    t.fs.write("/data/local/tmp/f", b"hello").unwrap();
    t.fs.symlink("tmp/f", "/data/local/l1").unwrap();
    t.fs.symlink("/data/local/l1", "/l2").unwrap();
    t.fs.symlink("l2", "/l3").unwrap();
    assert_eq!(read(&t.fs, "/l3"), b"hello");
    assert_eq!(t.fs.canonicalize("/l3").unwrap(), "/data/local/tmp/f");
    assert_eq!(t.fs.read_link("/l3").unwrap(), "l2");
    assert!(cph_phone::fs::is_symlink_mode(
        t.fs.lstat("/l3").unwrap().mode
    ));
    assert!(cph_phone::fs::is_file_mode(t.fs.stat("/l3").unwrap().mode));
    // `..` after a link is resolved physically (from the link's target).
    t.fs.symlink("/data/local/tmp", "/tmplink").unwrap();
    assert_eq!(read(&t.fs, "/tmplink/../tmp/f"), b"hello");
}

#[test]
fn symlink_loops_give_eloop() {
    let t = tree();
    t.fs.symlink("/b", "/a").unwrap();
    t.fs.symlink("/a", "/b").unwrap();
    assert_eq!(errno(t.fs.stat("/a").unwrap_err()), libc::ELOOP);
    t.fs.symlink("self", "/self").unwrap();
    assert_eq!(errno(t.fs.read("/self", 10).unwrap_err()), libc::ELOOP);
    // A chain longer than 40 hops is refused even without a cycle.
    t.fs.write("/end", b"x").unwrap();
    t.fs.symlink("/end", "/c0").unwrap();
    for i in 1..=41 {
        t.fs.symlink(&format!("/c{}", i - 1), &format!("/c{i}"))
            .unwrap();
    }
    assert_eq!(read(&t.fs, "/c39"), b"x");
    assert_eq!(errno(t.fs.stat("/c41").unwrap_err()), libc::ELOOP);
}

#[test]
fn errors_carry_errno_values() {
    let t = tree();
    t.fs.write("/file", b"x").unwrap();
    t.fs.mkdir("/dir").unwrap();
    t.fs.write("/dir/inner", b"y").unwrap();
    assert_eq!(errno(t.fs.stat("/nope").unwrap_err()), libc::ENOENT);
    assert_eq!(errno(t.fs.stat("/file/x").unwrap_err()), libc::ENOTDIR);
    assert_eq!(errno(t.fs.stat("/file/").unwrap_err()), libc::ENOTDIR);
    assert_eq!(errno(t.fs.open_read("/dir").unwrap_err()), libc::EISDIR);
    assert_eq!(errno(t.fs.mkdir("/dir").unwrap_err()), libc::EEXIST);
    assert_eq!(errno(t.fs.remove_dir("/dir").unwrap_err()), libc::ENOTEMPTY);
    assert_eq!(errno(t.fs.remove_file("/dir").unwrap_err()), libc::EISDIR);
    assert_eq!(errno(t.fs.remove_dir("/file").unwrap_err()), libc::ENOTDIR);
    assert_eq!(
        errno(t.fs.symlink("/x", "/file").unwrap_err()),
        libc::EEXIST
    );
    assert_eq!(errno(t.fs.read_link("/file").unwrap_err()), libc::EINVAL);
    assert_eq!(errno(t.fs.read("/file", 0).unwrap_err()), libc::EFBIG);
    assert_eq!(errno(t.fs.remove_dir("/system").unwrap_err()), libc::EBUSY);
}

#[test]
fn system_is_read_only() {
    let t = tree();
    assert_eq!(read(&t.fs, "/system/build.prop"), b"ro.x=1\n");
    assert_eq!(
        errno(t.fs.write("/system/x", b"1").unwrap_err()),
        libc::EROFS
    );
    assert_eq!(
        errno(t.fs.append("/system/build.prop", b"1").unwrap_err()),
        libc::EROFS
    );
    assert_eq!(errno(t.fs.mkdir("/system/d").unwrap_err()), libc::EROFS);
    assert_eq!(
        errno(t.fs.remove_file("/system/build.prop").unwrap_err()),
        libc::EROFS
    );
    assert_eq!(
        errno(t.fs.chmod("/system/build.prop", 0o777).unwrap_err()),
        libc::EROFS
    );
    assert_eq!(
        errno(t.fs.symlink("/x", "/system/l").unwrap_err()),
        libc::EROFS
    );
    assert_eq!(
        errno(t.fs.remove_all("/system/build.prop").unwrap_err()),
        libc::EROFS
    );
    assert_eq!(
        errno(
            t.fs.open_write("/system/build.prop", WriteMode::Truncate)
                .unwrap_err()
        ),
        libc::EROFS
    );
    // A link on the writable mount that points into /system does not make it writable.
    t.fs.symlink("/system", "/sys").unwrap();
    assert_eq!(errno(t.fs.write("/sys/y", b"1").unwrap_err()), libc::EROFS);
    assert!(!t.system.join("y").exists());
    assert!(t.fs.is_read_only("/sys/build.prop").unwrap());
}

#[test]
fn rename_across_mounts_is_exdev() {
    let t = tree();
    t.fs.write("/a", b"1").unwrap();
    t.fs.mkdir("/data").unwrap();
    let dir = tempfile::tempdir().unwrap();
    t.fs.set_mounts(vec![
        Mount {
            device_path: "/".into(),
            host_dir: t.root.clone(),
            read_only: false,
        },
        Mount {
            device_path: "/data".into(),
            host_dir: dir.path().to_path_buf(),
            read_only: false,
        },
    ])
    .unwrap();
    assert_eq!(
        errno(t.fs.rename("/a", "/data/a").unwrap_err()),
        libc::EXDEV
    );
    t.fs.rename("/a", "/b").unwrap();
    assert_eq!(read(&t.fs, "/b"), b"1");
}

#[test]
fn set_mounts_remaps_system() {
    let t = tree();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("build.prop"), b"ro.x=2\n").unwrap();
    t.fs.set_mounts(vec![
        Mount {
            device_path: "/".into(),
            host_dir: t.root.clone(),
            read_only: false,
        },
        Mount {
            device_path: "/system".into(),
            host_dir: other.path().to_path_buf(),
            read_only: true,
        },
    ])
    .unwrap();
    assert_eq!(read(&t.fs, "/system/build.prop"), b"ro.x=2\n");
    assert_eq!(t.fs.mounts().len(), 2);
}

#[test]
fn mount_points_are_listed_in_their_parent() {
    let t = tree();
    let names: Vec<String> =
        t.fs.read_dir("/")
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    assert_eq!(names, vec!["etc".to_string(), "system".to_string()]);
    let st = t.fs.stat("/system").unwrap();
    assert!(cph_phone::fs::is_dir_mode(st.mode));
}

#[test]
fn create_is_atomic() {
    let t = tree();
    t.fs.write("/f", b"old").unwrap();
    let mut w = t.fs.create("/f", 0o600).unwrap();
    w.write_all(b"new contents").unwrap();
    // Not visible until finished.
    assert_eq!(read(&t.fs, "/f"), b"old");
    w.finish(1_600_000_000).unwrap();
    assert_eq!(read(&t.fs, "/f"), b"new contents");
    let st = t.fs.stat("/f").unwrap();
    assert_eq!(st.mode & 0o7777, 0o600);
    assert_eq!(st.mtime, 1_600_000_000);
    // Dropping an unfinished writer leaves nothing behind.
    let mut w = t.fs.create("/g", 0o644).unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    assert!(!t.fs.exists("/g"));
    let leftovers: Vec<_> = std::fs::read_dir(&t.root).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "only etc and f remain");
}

#[test]
fn create_replaces_a_final_link_instead_of_following_it() {
    let t = tree();
    std::os::unix::fs::symlink(t.outside.join("secret"), t.root.join("evil")).unwrap();
    t.fs.write("/evil", b"replaced").unwrap();
    assert_eq!(
        std::fs::read(t.outside.join("secret")).unwrap(),
        b"host secret"
    );
    assert_eq!(read(&t.fs, "/evil"), b"replaced");
}

#[test]
fn open_write_follows_links_inside_only() {
    let t = tree();
    // The host target of this link is the host's /tmp-ish dir; inside it means <root>/…
    std::os::unix::fs::symlink(t.outside.join("secret"), t.root.join("w")).unwrap();
    assert_eq!(
        errno(t.fs.open_write("/w", WriteMode::Append).unwrap_err()),
        libc::ENOENT
    );
    assert_eq!(
        std::fs::read(t.outside.join("secret")).unwrap(),
        b"host secret"
    );
    t.fs.symlink("/etc/passwd", "/pw").unwrap();
    t.fs.append("/pw", b"+").unwrap();
    assert_eq!(read(&t.fs, "/etc/passwd"), b"sandbox passwd+");
}

#[test]
fn remove_all_never_follows_links_out() {
    let t = tree();
    t.fs.mkdir_all("/d/e/f").unwrap();
    t.fs.write("/d/e/f/x", b"1").unwrap();
    std::os::unix::fs::symlink(&t.outside, t.root.join("d/e/host")).unwrap();
    t.fs.symlink("/etc", "/d/etc").unwrap();
    t.fs.remove_all("/d").unwrap();
    assert!(!t.fs.exists("/d"));
    assert!(t.outside.join("secret").exists());
    assert_eq!(read(&t.fs, "/etc/passwd"), b"sandbox passwd");
    assert_eq!(errno(t.fs.remove_all("/d").unwrap_err()), libc::ENOENT);
}

#[test]
fn write_from_streams_and_counts() {
    let t = tree();
    let data = vec![42u8; 300_000];
    let n = t.fs.write_from("/big", &mut &data[..], 0o644).unwrap();
    assert_eq!(n, 300_000);
    let mut r = t.fs.open_read("/big").unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    assert_eq!(t.fs.copy("/big", "/big2").unwrap(), 300_000);
    assert_eq!(t.fs.stat("/big2").unwrap().size, 300_000);
}

#[test]
fn chmod_mtime_hard_links_and_usage() {
    let t = tree();
    t.fs.write("/f", b"abc").unwrap();
    t.fs.chmod("/f", 0o751).unwrap();
    assert_eq!(t.fs.stat("/f").unwrap().mode & 0o7777, 0o751);
    t.fs.set_mtime("/f", 1234).unwrap();
    assert_eq!(t.fs.stat("/f").unwrap().mtime, 1234);
    t.fs.hard_link("/f", "/h").unwrap();
    assert_eq!(t.fs.stat("/h").unwrap().ino, t.fs.stat("/f").unwrap().ino);
    let u = t.fs.usage("/").unwrap();
    assert!(u.total > 0 && u.used <= u.total);
    assert!(t.fs.host_path("/f").unwrap().starts_with(&t.root));
    assert_eq!(t.fs.host_path("/system/x").unwrap(), t.system.join("x"));
}

#[test]
fn sync_fs_creates_parents_and_replaces_links() {
    let t = tree();
    let sfs: &dyn SyncFs = &t.fs;
    let mut w = sfs.create_file("/sdcard/Download/a.txt", 0o100644).unwrap();
    w.write_all(b"pushed").unwrap();
    w.finish(1_700_000_000).unwrap();
    assert_eq!(read(&t.fs, "/sdcard/Download/a.txt"), b"pushed");
    let st = sfs.stat("/sdcard/Download/a.txt").unwrap();
    assert_eq!(st.mode, 0o100644);
    assert_eq!(st.uid, 0);
    sfs.symlink("/etc", "/x/l").unwrap();
    sfs.symlink("/system", "/x/l").unwrap();
    assert_eq!(t.fs.read_link("/x/l").unwrap(), "/system");
    let names: Vec<String> = sfs
        .list("/sdcard")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["Download".to_string()]);
}

#[test]
fn paths_are_bounded() {
    let t = tree();
    let long = format!("/{}", "a".repeat(300));
    assert_eq!(errno(t.fs.stat(&long).unwrap_err()), libc::ENAMETOOLONG);
    let very_long = "/a".repeat(3000);
    assert_eq!(
        errno(t.fs.stat(&very_long).unwrap_err()),
        libc::ENAMETOOLONG
    );
    assert_eq!(errno(t.fs.stat("/a\0b").unwrap_err()), libc::EINVAL);
}
