//! `export_tar` against a virtual phone, and export → wipe → apply round trips.

use crate::support::{Phone, list_tar, noise};
use astral_tar::EntryType;
use cph_adb::client::quote;
use cph_archive::{ApplyOptions, ArchiveError, ExportLimits, Staging, apply_tar, export_tar};
use std::collections::BTreeMap;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// What a tree looks like: per path, mode, mtime, and the content's sha256 (files), the link
/// target (links) or nothing (directories).
async fn snapshot(phone: &Phone, root: &str) -> BTreeMap<String, (u32, i64, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_string()];
    let st = phone.lstat(root).await.unwrap();
    out.insert(root.to_string(), (st.mode, st.mtime, String::new()));
    while let Some(dir) = stack.pop() {
        for e in phone.client.list(&dir).await.unwrap() {
            let path = format!("{dir}/{}", e.name);
            let what = match e.stat.mode & S_IFMT {
                S_IFDIR => {
                    stack.push(path.clone());
                    String::new()
                }
                S_IFLNK => phone.sh(&format!("readlink {}", quote(&path))).await,
                _ => phone.sha256(&path).await,
            };
            // A symbolic link's own time is not restored (links are made with `ln`).
            let mtime = if e.stat.mode & S_IFMT == S_IFLNK {
                0
            } else {
                e.stat.mtime
            };
            out.insert(path, (e.stat.mode, mtime, what));
        }
    }
    out
}

async fn export(phone: &Phone, include: &[&str], exclude: &[&str]) -> Vec<u8> {
    let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
    let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    export_tar(
        &phone.client,
        &include,
        &exclude,
        &mut out,
        ExportLimits::default(),
    )
    .await
    .unwrap();
    out
}

async fn names(bytes: &[u8]) -> Vec<String> {
    list_tar(bytes)
        .await
        .into_iter()
        .map(|(n, _, _)| n)
        .collect()
}

#[tokio::test]
async fn export_wipe_apply_restores_identical_files() {
    let phone = Phone::start().await;
    let t = "/data/local/tmp/t";
    let long_dir = format!("{t}/{}", "d".repeat(180));
    let files: Vec<(String, Vec<u8>, u32, u32)> = vec![
        (format!("{t}/empty.bin"), vec![], 0o600, 1_500_000_001),
        (
            format!("{t}/a/small.txt"),
            noise(100, 1),
            0o644,
            1_500_000_002,
        ),
        (
            format!("{t}/a/b/mid.bin"),
            noise(300_000, 2),
            0o640,
            1_500_000_003,
        ),
        (
            format!("{t}/big.bin"),
            noise(5 << 20, 3),
            0o755,
            1_500_000_004,
        ),
        (format!("{long_dir}/f"), noise(10, 4), 0o400, 1_500_000_005),
    ];
    for (path, data, mode, mtime) in &files {
        phone
            .client
            .push(&data[..], path, *mode, *mtime)
            .await
            .unwrap();
        phone.sh(&format!("chmod {mode:o} {}", quote(path))).await;
    }
    let long_target = format!("a/{}", "x".repeat(150));
    phone
        .sh(&format!(
            "mkdir -p {t}/emptydir && ln -s a/small.txt {t}/link && ln -s {long_target} {t}/longlink \
             && chmod 750 {t}/a/b && chmod 700 {t}/emptydir \
             && touch -d @1400000000 {t}/a/b {t}/emptydir {long_dir} && touch -d @1400000001 {t}/a {t}"
        ))
        .await;
    let before = snapshot(&phone, t).await;
    assert_eq!(before[&format!("{t}/a/b/mid.bin")].0, 0o100640);
    assert_eq!(before[&format!("{t}/a/b")].0, 0o040750);

    let tar = export(&phone, &[t], &[]).await;
    let listed = names(&tar).await;
    assert_eq!(listed[0], "data/local/tmp/t/");
    assert!(listed.contains(&format!("{}/f", &long_dir[1..])));
    let link = list_tar(&tar)
        .await
        .into_iter()
        .find(|(n, _, _)| n.ends_with("/longlink"))
        .unwrap();
    assert_eq!(link.1, EntryType::Symlink);

    phone.sh("rm -rf /data/local/tmp/t").await;
    assert_eq!(phone.lstat(t).await, None);

    let spool = tempfile::tempdir().unwrap();
    let opts = ApplyOptions::phone_data().with_staging(Staging::TempFile(spool.path().into()));
    let report = apply_tar(&phone.client, &tar[..], opts).await.unwrap();
    assert_eq!(report.files, 5);
    assert_eq!(report.links, 2);
    assert_eq!(
        report.bytes,
        files.iter().map(|f| f.1.len() as u64).sum::<u64>()
    );

    let after = snapshot(&phone, t).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn export_reports_what_it_wrote() {
    let phone = Phone::start().await;
    phone
        .client
        .push(&b"12345"[..], "/data/r/a.txt", 0o644, 1)
        .await
        .unwrap();
    phone
        .sh("mkdir -p /data/r/d && ln -s a.txt /data/r/l")
        .await;
    let mut out = Vec::new();
    let include = vec![
        "/data/r".to_string(),
        "/data/nope".to_string(),
        "/cache/none*".to_string(),
    ];
    let report = export_tar(
        &phone.client,
        &include,
        &[],
        &mut out,
        ExportLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (report.files, report.dirs, report.links, report.bytes),
        (1, 2, 1, 5)
    );
    assert_eq!(report.missing, vec!["/data/nope".to_string()]);
    let entries = list_tar(&out).await;
    let file = entries.iter().find(|e| e.0 == "data/r/a.txt").unwrap();
    assert_eq!(file.2, b"12345");
}

#[tokio::test]
async fn globs_match_within_one_component_and_exclude_wins() {
    let phone = Phone::start().await;
    for path in [
        "/data/app/com.xx.xx-1/base.apk",
        "/data/app/com.xx.xx-1/lib/a.so",
        "/data/app/com.xx.xx-2/base.apk",
        "/data/app/com.yy-1/base.apk",
        "/data/local/keep.txt",
        "/data/local/kilo/inner.txt",
        "/data/local/skip.log",
        "/data/media/0/pic.jpg",
        "/cache/c.txt",
        "/cache/d.txt",
    ] {
        phone.client.push(&b"x"[..], path, 0o644, 1).await.unwrap();
    }

    // The reference's example: whole trees, minus one app's directories.
    let tar = export(
        &phone,
        &["/data/app", "/data/local/", "/cache/c*"],
        &["/data/app/com.xx.xx-*", "/data/local/skip.log"],
    )
    .await;
    assert_eq!(
        names(&tar).await,
        [
            "cache/c.txt",
            "data/app/",
            "data/app/com.yy-1/",
            "data/app/com.yy-1/base.apk",
            "data/local/",
            "data/local/keep.txt",
            "data/local/kilo/",
            "data/local/kilo/inner.txt",
        ]
    );

    // A glob names entries of one directory (files and whole directories), not deeper paths.
    let tar = export(&phone, &["/data/local/k*"], &[]).await;
    assert_eq!(
        names(&tar).await,
        [
            "data/local/keep.txt",
            "data/local/kilo/",
            "data/local/kilo/inner.txt"
        ]
    );
    let tar = export(
        &phone,
        &["/data/app/com.xx.xx-*"],
        &["/data/app/com.xx.xx-1/l*"],
    )
    .await;
    assert_eq!(
        names(&tar).await,
        [
            "data/app/com.xx.xx-1/",
            "data/app/com.xx.xx-1/base.apk",
            "data/app/com.xx.xx-2/",
            "data/app/com.xx.xx-2/base.apk",
        ]
    );
    // `*` does not reach into subdirectories: `/data/*.txt`-like prefixes only see /data.
    let tar = export(&phone, &["/data/local/kilo*"], &["/data/local/kilo/*"]).await;
    assert_eq!(names(&tar).await, ["data/local/kilo/"]);

    // Overlapping includes write each path once.
    let tar = export(
        &phone,
        &["/data/local/kilo", "/data/local", "/data/local/k*"],
        &[],
    )
    .await;
    let listed = names(&tar).await;
    let mut unique = listed.clone();
    unique.dedup();
    assert_eq!(listed, unique);
    assert_eq!(listed.len(), 5);

    // Excluding an included path leaves nothing of it.
    let tar = export(&phone, &["/cache"], &["/cache/"]).await;
    assert!(names(&tar).await.is_empty());
}

#[tokio::test]
async fn bad_patterns_and_limits_are_refused() {
    let phone = Phone::start().await;
    for i in 0..20 {
        phone
            .client
            .push(&b"x"[..], &format!("/data/many/{i}"), 0o644, 1)
            .await
            .unwrap();
    }
    phone.sh("mkdir -p /data/deep/1/2/3/4/5").await;

    for bad in [
        "data/x",
        "/data/*/x",
        "/data/../x",
        "/data//x",
        "/",
        "/data/a*b",
    ] {
        let err = export_tar(
            &phone.client,
            &[bad.to_string()],
            &[],
            Vec::new(),
            ExportLimits::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Pattern { .. }), "{bad}: {err}");
    }
    let err = export_tar(
        &phone.client,
        &["/data".to_string()],
        &["relative".to_string()],
        Vec::new(),
        ExportLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ArchiveError::Pattern { .. }), "{err}");
    let err = export_tar(&phone.client, &[], &[], Vec::new(), ExportLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Pattern { .. }), "{err}");

    let phone = &phone;
    let limited = |limits| async move {
        export_tar(
            &phone.client,
            &["/data".to_string()],
            &[],
            Vec::new(),
            limits,
        )
        .await
    };
    let few = ExportLimits {
        max_entries: 10,
        ..ExportLimits::default()
    };
    assert!(matches!(
        limited(few).await,
        Err(ArchiveError::ExportLimit(_))
    ));
    let small = ExportLimits {
        max_bytes: 5,
        ..ExportLimits::default()
    };
    assert!(matches!(
        limited(small).await,
        Err(ArchiveError::ExportLimit(_))
    ));
    let shallow = ExportLimits {
        max_depth: 3,
        ..ExportLimits::default()
    };
    assert!(matches!(
        limited(shallow).await,
        Err(ArchiveError::ExportLimit(_))
    ));
    assert!(limited(ExportLimits::default()).await.is_ok());
}
