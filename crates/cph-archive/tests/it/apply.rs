//! `apply_tar` and `StagedTar` against a virtual phone.

use crate::support::{Phone, Tar, noise, sha256};
use astral_tar::EntryType;
use cph_archive::{
    ApplyOptions, ApplyReport, ArchiveError, Refusal, StagedTar, Staging, apply_tar,
};

const T: &str = "data/local/tmp/t";

fn staged_in(dir: &tempfile::TempDir) -> Staging {
    Staging::TempFile(dir.path().to_path_buf())
}

#[tokio::test]
async fn nested_tree_with_modes_mtimes_and_links_is_applied() {
    let phone = Phone::start().await;
    let mut tar = Tar::new();
    tar.dir("./", 0o755, 1)
        .dir(&format!("{T}/"), 0o755, 1_500_000_000)
        .dir(&format!("{T}/a/b/"), 0o750, 1_500_000_100)
        .file(&format!("{T}/a/b/c.txt"), 0o600, 1_600_000_000, b"hello c")
        .file(
            &format!("{T}/run.sh"),
            0o755,
            1_600_000_001,
            b"#!/bin/sh\necho hi\n",
        )
        .file(&format!("./{T}//dots.txt"), 0o644, 1_600_000_002, b"")
        .symlink(&format!("{T}/link"), "a/b/c.txt")
        .hardlink(&format!("{T}/hard"), &format!("{T}/run.sh"))
        .dir(&format!("{T}/empty/"), 0o700, 1_500_000_200);
    let long_dir = format!("{T}/{}", "d".repeat(150));
    tar.long_name(format!("{long_dir}/long.txt").as_bytes())
        .file("ignored-short-name", 0o640, 1_600_000_003, b"long");

    let report = apply_tar(&phone.client, &tar.finish()[..], ApplyOptions::push_file())
        .await
        .unwrap();
    assert_eq!(
        report,
        ApplyReport {
            files: 4,
            dirs: 3,
            links: 2,
            bytes: 7 + 18 + 4,
        }
    );

    let c = phone.lstat("/data/local/tmp/t/a/b/c.txt").await.unwrap();
    assert_eq!((c.mode, c.size, c.mtime), (0o100600, 7, 1_600_000_000));
    let run = phone.lstat("/data/local/tmp/t/run.sh").await.unwrap();
    assert_eq!((run.mode, run.mtime), (0o100755, 1_600_000_001));
    assert_eq!(
        phone
            .lstat("/data/local/tmp/t/dots.txt")
            .await
            .unwrap()
            .size,
        0
    );
    let long = phone.lstat(&format!("/{long_dir}/long.txt")).await.unwrap();
    assert_eq!((long.mode, long.size), (0o100640, 4));

    // Directory modes and times are set after their contents were written.
    let b = phone.lstat("/data/local/tmp/t/a/b").await.unwrap();
    assert_eq!((b.mode & 0o7777, b.mtime), (0o750, 1_500_000_100));
    let empty = phone.lstat("/data/local/tmp/t/empty").await.unwrap();
    assert_eq!((empty.mode, empty.mtime), (0o040700, 1_500_000_200));

    let link = phone.lstat("/data/local/tmp/t/link").await.unwrap();
    assert_eq!(link.mode & 0o170000, 0o120000);
    assert_eq!(
        phone.sh("readlink /data/local/tmp/t/link").await.trim(),
        "a/b/c.txt"
    );
    assert_eq!(phone.sh("cat /data/local/tmp/t/link").await, "hello c");
    let hard = phone.lstat("/data/local/tmp/t/hard").await.unwrap();
    assert_eq!(hard.mode & 0o170000, 0o100000);
    assert_eq!(
        phone.sh("cat /data/local/tmp/t/hard").await,
        "#!/bin/sh\necho hi\n"
    );
}

#[tokio::test]
async fn twenty_mib_file_streams_through_a_staged_archive() {
    let phone = Phone::start().await;
    let spool = tempfile::tempdir().unwrap();
    let data = noise(20 << 20, 7);
    let mut tar = Tar::new();
    tar.file(&format!("{T}/big.bin"), 0o644, 1_650_000_000, &data);
    let bytes = tar.finish();
    // The archive arrives in small pieces, as from a network.
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    let feed = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        for chunk in bytes.chunks(100_000) {
            tx.write_all(chunk).await.unwrap();
        }
    });
    let opts = ApplyOptions::phone_data().with_staging(staged_in(&spool));
    let report = apply_tar(&phone.client, rx, opts).await.unwrap();
    feed.await.unwrap();
    assert_eq!((report.files, report.bytes), (1, 20 << 20));
    assert_eq!(
        phone.sha256("/data/local/tmp/t/big.bin").await,
        sha256(&data)
    );
    let st = phone.lstat("/data/local/tmp/t/big.bin").await.unwrap();
    assert_eq!((st.size, st.mtime), (20 << 20, 1_650_000_000));
    // The spool is gone.
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
}

/// A hostile case: the archive, the options it is applied with, the entry that must be named
/// and a check of the error.
struct Case {
    what: &'static str,
    tar: Vec<u8>,
    opts: ApplyOptions,
    entry: String,
    check: fn(&ArchiveError) -> bool,
}

const OK: &str = "data/local/tmp/h/ok.txt";

fn with_ok_first(build: impl FnOnce(&mut Tar)) -> Vec<u8> {
    let mut tar = Tar::new();
    tar.file(OK, 0o644, 1, b"benign");
    build(&mut tar);
    tar.finish()
}

fn refused(e: &ArchiveError, want: fn(&Refusal) -> bool) -> bool {
    matches!(e, ArchiveError::Refused { reason, .. } if want(reason))
}

fn cases() -> Vec<Case> {
    let small = ApplyOptions {
        max_bytes: 1 << 20,
        ..ApplyOptions::push_file()
    };
    let few = ApplyOptions {
        max_entries: 1000,
        ..ApplyOptions::push_file()
    };
    let long = format!("data/{}", "n".repeat(4200));
    vec![
        Case {
            what: "parent directory",
            tar: with_ok_first(|t| {
                t.file("../evil", 0o644, 1, b"x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "../evil".into(),
            check: |e| refused(e, |r| *r == Refusal::ParentDir),
        },
        Case {
            what: "parent directory inside",
            tar: with_ok_first(|t| {
                t.file("data/local/../../etc/x", 0o644, 1, b"x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/../../etc/x".into(),
            check: |e| refused(e, |r| *r == Refusal::ParentDir),
        },
        Case {
            what: "absolute path",
            tar: with_ok_first(|t| {
                t.file("/etc/x", 0o644, 1, b"x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "/etc/x".into(),
            check: |e| refused(e, |r| *r == Refusal::Absolute),
        },
        Case {
            what: "symlink out of the root",
            tar: with_ok_first(|t| {
                t.symlink("data/l", "/../../etc");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/l".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::LinkEscapes { .. })),
        },
        Case {
            what: "relative symlink out of the root",
            tar: with_ok_first(|t| {
                t.symlink("data/l", "../../../x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/l".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::LinkEscapes { .. })),
        },
        Case {
            what: "symlink out of the allowed trees",
            tar: with_ok_first(|t| {
                t.symlink("data/l", "/system/bin/sh");
            }),
            opts: ApplyOptions::phone_data(),
            entry: "data/l".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::LinkEscapes { .. })),
        },
        Case {
            what: "hard link to a parent",
            tar: with_ok_first(|t| {
                t.hardlink("data/local/tmp/h/hl", "../x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/tmp/h/hl".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::LinkEscapes { .. })),
        },
        Case {
            what: "hard link to a file not in the archive",
            tar: with_ok_first(|t| {
                t.hardlink("data/local/tmp/h/hl", "data/system/packages.json");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/tmp/h/hl".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::HardLinkTarget(_))),
        },
        Case {
            what: "fifo",
            tar: with_ok_first(|t| {
                t.raw(
                    EntryType::Fifo,
                    b"data/local/tmp/h/fifo",
                    b"",
                    0o644,
                    1,
                    0,
                    b"",
                );
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/tmp/h/fifo".into(),
            check: |e| refused(e, |r| *r == Refusal::Type("FIFO")),
        },
        Case {
            what: "device",
            tar: with_ok_first(|t| {
                t.raw(
                    EntryType::Char,
                    b"data/local/tmp/h/null",
                    b"",
                    0o666,
                    1,
                    0,
                    b"",
                );
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/tmp/h/null".into(),
            check: |e| refused(e, |r| *r == Refusal::Type("device file")),
        },
        Case {
            what: "block device",
            tar: with_ok_first(|t| {
                t.raw(
                    EntryType::Block,
                    b"data/local/tmp/h/sda",
                    b"",
                    0o666,
                    1,
                    0,
                    b"",
                );
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/tmp/h/sda".into(),
            check: |e| refused(e, |r| *r == Refusal::Type("device file")),
        },
        Case {
            what: "outside the allowed trees",
            tar: with_ok_first(|t| {
                t.file("system/bin/evil", 0o755, 1, b"x");
            }),
            opts: ApplyOptions::phone_data(),
            entry: "system/bin/evil".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::OutsideRoots(_))),
        },
        Case {
            what: "write through a link of the archive",
            tar: with_ok_first(|t| {
                t.symlink("data/local/tmp/h/l", "sub")
                    .file("data/local/tmp/h/l/x", 0o644, 1, b"x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/local/tmp/h/l/x".into(),
            check: |e| refused(e, |r| matches!(r, Refusal::ThroughLink(_))),
        },
        Case {
            what: "NUL in a PAX path",
            tar: with_ok_first(|t| {
                t.pax(&[("path", b"data/a\0b")])
                    .file("data/ab", 0o644, 1, b"x");
            }),
            opts: ApplyOptions::push_file(),
            entry: "data/a\0b".into(),
            check: |e| refused(e, |r| *r == Refusal::Nul),
        },
        Case {
            what: "name over 4096 bytes",
            tar: with_ok_first(|t| {
                t.long_name(long.as_bytes()).file("short", 0o644, 1, b"x");
            }),
            opts: ApplyOptions::push_file(),
            entry: format!("{}…", &long[..512]),
            check: |e| refused(e, |r| matches!(r, Refusal::NameTooLong(4096))),
        },
        Case {
            what: "entry over the byte limit",
            tar: with_ok_first(|t| {
                t.file("data/local/tmp/h/big", 0o644, 1, &vec![7u8; 2 << 20]);
            }),
            opts: small,
            entry: "data/local/tmp/h/big".into(),
            check: |e| matches!(e, ArchiveError::TooLarge { size, limit, .. } if *size == 2 << 20 && *limit == 1 << 20),
        },
        Case {
            what: "10k tiny entries",
            tar: with_ok_first(|t| {
                for i in 0..10_000 {
                    t.file(&format!("data/local/tmp/h/many/{i}"), 0o644, 1, b"");
                }
            }),
            opts: few,
            entry: "data/local/tmp/h/many/999".into(),
            check: |e| matches!(e, ArchiveError::TooManyEntries { limit: 1000, .. }),
        },
    ]
}

#[tokio::test]
async fn hostile_entries_are_refused_and_staging_writes_nothing() {
    let phone = Phone::start().await;
    for case in cases() {
        phone.sh("rm -rf /data/local/tmp/h /data/ab /data/l").await;
        let spool = tempfile::tempdir().unwrap();
        let opts = case.opts.clone().with_staging(staged_in(&spool));
        let err = apply_tar(&phone.client, &case.tar[..], opts)
            .await
            .expect_err(case.what);
        assert!((case.check)(&err), "{}: {err}", case.what);
        assert!(err.is_archive_fault(), "{}: {err}", case.what);
        assert_eq!(
            err.entry(),
            Some(case.entry.as_str()),
            "{}: {err}",
            case.what
        );
        assert_eq!(phone.lstat(&format!("/{OK}")).await, None, "{}", case.what);
        assert_eq!(
            phone.lstat("/data/local/tmp/h").await,
            None,
            "{}",
            case.what
        );
        assert_eq!(
            std::fs::read_dir(spool.path()).unwrap().count(),
            0,
            "{}: spool left behind",
            case.what
        );
    }
}

#[tokio::test]
async fn streamed_application_fails_fast_at_the_hostile_entry() {
    let phone = Phone::start().await;
    for case in cases() {
        phone.sh("rm -rf /data/local/tmp/h /data/ab /data/l").await;
        let err = apply_tar(&phone.client, &case.tar[..], case.opts.clone())
            .await
            .expect_err(case.what);
        assert!((case.check)(&err), "{}: {err}", case.what);
        assert_eq!(
            err.entry(),
            Some(case.entry.as_str()),
            "{}: {err}",
            case.what
        );
        // What came before was applied; the refused entry itself was not.
        assert!(
            phone.lstat(&format!("/{OK}")).await.is_some(),
            "{}",
            case.what
        );
        if case.entry.starts_with("data/local/tmp/h/") && !case.entry.contains("..") {
            assert_eq!(
                phone.lstat(&format!("/{}", case.entry)).await,
                None,
                "{}",
                case.what
            );
        }
    }
}

#[tokio::test]
async fn malformed_archives_are_refused_without_buffering() {
    let phone = Phone::start().await;
    let spool = tempfile::tempdir().unwrap();
    let staged = || ApplyOptions::push_file().with_staging(staged_in(&spool));

    // The PAX size disagrees with the header: readers could disagree on where entries start.
    let mut tar = Tar::new();
    tar.pax(&[("size", b"3")])
        .file("data/x", 0o644, 1, b"abcdef");
    let err = apply_tar(&phone.client, &tar.finish()[..], staged())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Malformed(ref m) if m.contains("PAX size")),
        "{err}"
    );

    // A PAX header claiming a gigabyte is refused from its header alone.
    let mut tar = Tar::new();
    tar.raw(
        EntryType::XHeader,
        b"PaxHeaders/x",
        b"",
        0o644,
        0,
        1 << 30,
        b"",
    );
    let err = apply_tar(&phone.client, &tar.0[..], staged())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Malformed(ref m) if m.contains("PAX header")),
        "{err}"
    );

    // So is an oversized GNU long name.
    let mut tar = Tar::new();
    tar.raw(
        EntryType::GNULongName,
        b"././@LongLink",
        b"",
        0o644,
        0,
        1 << 30,
        b"",
    );
    let err = apply_tar(&phone.client, &tar.0[..], staged())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::Refused {
                reason: Refusal::NameTooLong(_),
                ..
            }
        ),
        "{err}"
    );

    // An extension header with no entry after it.
    let mut tar = Tar::new();
    tar.long_name(b"data/dangling");
    let err = apply_tar(&phone.client, &tar.finish()[..], staged())
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Malformed(_)), "{err}");

    // A bad checksum.
    let mut bytes = Tar::new().file("data/x", 0o644, 1, b"x").finish();
    bytes[0] ^= 1;
    let err = apply_tar(&phone.client, &bytes[..], staged())
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Malformed(_)), "{err}");

    // An archive cut inside a file: streamed, the partial file never appears.
    let data = noise(300_000, 3);
    let mut tar = Tar::new();
    tar.file("data/local/tmp/cut/first", 0o644, 1, b"1").file(
        "data/local/tmp/cut/partial",
        0o644,
        1,
        &data,
    );
    let cut = &tar.0[..tar.0.len() - 100_000];
    let err = apply_tar(&phone.client, cut, ApplyOptions::push_file())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ArchiveError::Malformed(ref m) if m.contains("ends inside")),
        "{err}"
    );
    assert!(phone.lstat("/data/local/tmp/cut/first").await.is_some());
    assert_eq!(phone.lstat("/data/local/tmp/cut/partial").await, None);
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn one_staged_archive_serves_many_phones() {
    let phones = [
        Phone::start().await,
        Phone::start().await,
        Phone::start().await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.tar");
    let payload = noise(1 << 20, 11);
    let mut tar = Tar::new();
    tar.dir("data/", 0o771, 1)
        .dir("data/share/", 0o755, 1_700_000_000)
        .file("data/share/app.bin", 0o644, 1_700_000_001, &payload)
        .symlink("data/share/current", "app.bin")
        .file("cache/share/note.txt", 0o600, 1_700_000_002, b"note");
    std::fs::write(&path, tar.finish()).unwrap();

    let staged = StagedTar::validate(&path, ApplyOptions::phone_data())
        .await
        .unwrap();
    let expected = ApplyReport {
        files: 2,
        dirs: 2,
        links: 1,
        bytes: (1 << 20) + 4,
    };
    assert_eq!(*staged.summary(), expected);
    let reports = futures::future::join_all(phones.iter().map(|p| staged.apply(&p.client))).await;
    for (phone, report) in phones.iter().zip(reports) {
        assert_eq!(report.unwrap(), expected);
        assert_eq!(phone.sha256("/data/share/app.bin").await, sha256(&payload));
        assert_eq!(phone.sh("cat /cache/share/note.txt").await, "note");
        assert_eq!(
            phone.sh("readlink /data/share/current").await.trim(),
            "app.bin"
        );
        // `data/` is an allowed root: created if missing, never re-moded.
        assert_ne!(phone.lstat("/data").await.unwrap().mode & 0o777, 0o771);
        let share = phone.lstat("/data/share").await.unwrap();
        assert_eq!((share.mode & 0o777, share.mtime), (0o755, 1_700_000_000));
    }
    // The caller's file stays; a file changed after validation is refused.
    drop(staged);
    assert!(path.exists());
    let staged = StagedTar::validate(&path, ApplyOptions::phone_data())
        .await
        .unwrap();
    let mut more = Tar(tar.0.clone());
    more.file("data/share/extra", 0o644, 1, b"extra");
    std::fs::write(&path, more.finish()).unwrap();
    let err = staged.apply(&phones[0].client).await.unwrap_err();
    assert!(matches!(err, ArchiveError::StagedChanged(_)), "{err}");
    assert_eq!(phones[0].lstat("/data/share/extra").await, None);

    // A hostile file on disk is refused at validation.
    let mut bad = Tar::new();
    bad.file("data/ok", 0o644, 1, b"")
        .file("etc/passwd", 0o644, 1, b"x");
    std::fs::write(&path, bad.finish()).unwrap();
    let err = StagedTar::validate(&path, ApplyOptions::phone_data())
        .await
        .unwrap_err();
    assert_eq!(err.entry(), Some("etc/passwd"));
}

#[tokio::test]
async fn a_target_directory_holds_the_whole_tree_and_absolute_links_are_refused() {
    let phone = Phone::start().await;
    let opts = ApplyOptions {
        target_dir: Some("/data/local/tmp/app".into()),
        ..ApplyOptions::push_file()
    };
    let mut tar = Tar::new();
    tar.dir("lib/", 0o755, 1_700_000_000)
        .file("base.apk", 0o644, 1_700_000_001, b"apk")
        .file("lib/x.so", 0o644, 1_700_000_002, b"so")
        .symlink("current.apk", "base.apk")
        .hardlink("lib/y.so", "lib/x.so");
    let report = apply_tar(&phone.client, &tar.finish()[..], opts.clone())
        .await
        .unwrap();
    assert_eq!((report.files, report.links), (2, 2));
    assert_eq!(phone.sh("cat /data/local/tmp/app/base.apk").await, "apk");
    assert_eq!(phone.sh("cat /data/local/tmp/app/lib/y.so").await, "so");
    assert_eq!(
        phone
            .sh("readlink /data/local/tmp/app/current.apk")
            .await
            .trim(),
        "base.apk"
    );
    // Nothing landed at the device root.
    assert_eq!(phone.lstat("/base.apk").await, None);
    assert_eq!(phone.lstat("/lib").await, None);

    let mut abs = Tar::new();
    abs.file("ok", 0o644, 1, b"")
        .symlink("escape", "/data/system");
    let err = apply_tar(
        &phone.client,
        &abs.finish()[..],
        opts.with_staging(Staging::TempFile(std::env::temp_dir())),
    )
    .await
    .unwrap_err();
    assert_eq!(err.entry(), Some("escape"));
    assert_eq!(phone.lstat("/data/local/tmp/app/ok").await, None);
}

/// Compile-time check: the futures can be spawned on a multi-threaded runtime.
#[allow(dead_code)]
fn futures_are_send(client: &cph_adb::client::AdbClient) {
    fn send<T: Send>(_: &T) {}
    let apply = apply_tar(client, &b""[..], ApplyOptions::push_file());
    send(&apply);
    let export = cph_archive::export_tar(
        client,
        &[],
        &[],
        Vec::new(),
        cph_archive::ExportLimits::default(),
    );
    send(&export);
    let staged = StagedTar::spool(
        &b""[..],
        std::path::Path::new("/"),
        ApplyOptions::push_file(),
    );
    send(&staged);
}
