//! The package manager through `pm` / `cmd package`.

use crate::android::{boot, sh};
use cph_phone::apk::build_test_apk;
use cph_phone::shell::run_capture;

fn push(core: &cph_phone::PhoneCore, path: &str, data: &[u8]) {
    core.fs.mkdir_all("/data/local/tmp").unwrap();
    core.fs.write(path, data).unwrap();
}

#[test]
fn install_replace_downgrade_and_uninstall() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    push(
        &core,
        "/data/local/tmp/v2.apk",
        &build_test_apk("com.example.app", 2, "2.0", None),
    );
    push(
        &core,
        "/data/local/tmp/v1.apk",
        &build_test_apk("com.example.app", 1, "1.0", None),
    );
    push(
        &core,
        "/data/local/tmp/v3.apk",
        &build_test_apk("com.example.app", 3, "3.0", None),
    );

    let r = sh(
        &core,
        "pm install -i com.android.vending /data/local/tmp/v2.apk",
    );
    assert_eq!((r.status, r.out().as_str()), (0, "Success\n"));
    assert!(core.fs.exists("/data/app/com.example.app-1/base.apk"));
    assert!(core.fs.is_dir("/data/data/com.example.app"));
    assert!(core.fs.is_dir("/data/user/0/com.example.app"));
    assert_eq!(
        sh(&core, "pm path com.example.app").out(),
        "package:/data/app/com.example.app-1/base.apk\n"
    );

    // Apps get uids after the system packages'; core system packages run as system.
    let first_app_uid = 10_000 + core.pm.system_packages().len();
    assert_eq!(
        sh(&core, "pm list packages -U com.example.app").out(),
        format!("package:com.example.app uid:{first_app_uid}\n")
    );
    assert!(
        sh(&core, "pm list packages -U com.android.settings")
            .out()
            .contains("package:com.android.settings uid:1000\n")
    );
    // Replacing is the default; -R forbids it.
    let r = sh(&core, "pm install -R /data/local/tmp/v2.apk");
    assert_eq!(
        r.out(),
        "Failure [INSTALL_FAILED_ALREADY_EXISTS: Attempt to re-install com.example.app without first uninstalling.]\n"
    );
    assert_eq!(r.status, 1);
    // Downgrade needs -d.
    let r = sh(&core, "pm install -r /data/local/tmp/v1.apk");
    assert!(
        r.out()
            .starts_with("Failure [INSTALL_FAILED_VERSION_DOWNGRADE"),
        "{}",
        r.out()
    );
    assert_eq!(
        sh(&core, "pm install -r -d /data/local/tmp/v1.apk").out(),
        "Success\n"
    );
    assert_eq!(
        sh(&core, "pm install /data/local/tmp/v3.apk").out(),
        "Success\n"
    );
    // Each install gets a new directory; the old one is gone.
    assert!(core.fs.exists("/data/app/com.example.app-3/base.apk"));
    assert!(!core.fs.exists("/data/app/com.example.app-1"));
    let dump = sh(&core, "dumpsys package com.example.app").out();
    assert!(
        dump.contains("    versionCode=3 minSdk=21 targetSdk=34\n"),
        "{dump}"
    );
    assert!(dump.contains("    versionName=3.0\n"), "{dump}");
    assert!(
        dump.contains("    codePath=/data/app/com.example.app-3\n"),
        "{dump}"
    );
    assert!(
        dump.contains("    installerPackageName=com.android.vending\n"),
        "{dump}"
    );
    assert!(dump.contains("firstInstallTime="), "{dump}");

    assert_eq!(
        sh(&core, "pm list packages -3").out(),
        "package:com.example.app\n"
    );
    assert_eq!(
        sh(&core, "pm list packages -f -3 example").out(),
        "package:/data/app/com.example.app-3/base.apk=com.example.app\n"
    );
    assert!(
        sh(&core, "pm list packages -s")
            .out()
            .contains("package:com.android.settings\n")
    );
    assert!(
        !sh(&core, "pm list packages -s")
            .out()
            .contains("com.example.app")
    );

    // Data survives `-k`, not a plain uninstall.
    core.fs.write("/data/data/com.example.app/f", b"x").unwrap();
    assert_eq!(
        sh(&core, "pm uninstall -k com.example.app").out(),
        "Success\n"
    );
    assert!(core.fs.exists("/data/data/com.example.app/f"));
    assert!(!core.fs.exists("/data/app/com.example.app-3"));
    assert_eq!(sh(&core, "pm path com.example.app").status, 1);
    assert_eq!(
        sh(&core, "pm install /data/local/tmp/v3.apk").out(),
        "Success\n"
    );
    assert_eq!(
        // As stock adb sends it: shell-quoted words.
        sh(&core, "cmd package 'uninstall' 'com.example.app'").out(),
        "Success\n"
    );
    assert!(!core.fs.exists("/data/data/com.example.app"));
    assert_eq!(
        sh(&core, "pm uninstall com.example.app").out(),
        "Failure [DELETE_FAILED_INTERNAL_ERROR]\n"
    );
}

#[test]
fn rejects_bad_apks() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    push(&core, "/data/local/tmp/junk.apk", b"this is not a zip");
    let r = sh(&core, "pm install /data/local/tmp/junk.apk");
    assert!(
        r.out().starts_with("Failure [INSTALL_FAILED_INVALID_APK: "),
        "{}",
        r.out()
    );
    assert_eq!(r.status, 1);
    let r = sh(&core, "pm install /data/local/tmp/missing.apk");
    assert!(r.out().starts_with("Failure ["), "{}", r.out());
    // Nothing was left behind.
    let apps: Vec<String> = core
        .fs
        .read_dir("/data/app")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(apps.is_empty(), "{apps:?}");
    // minSdk above the device.
    let m = cph_phone::apk::XmlElement::new("manifest")
        .plain("package", "com.future.app")
        .child(cph_phone::apk::XmlElement::new("uses-sdk").android(
            cph_phone::apk::attr::MIN_SDK_VERSION,
            "minSdkVersion",
            cph_phone::apk::XmlValue::Int(99),
        ));
    let apk = cph_phone::apk::build_apk(&cph_phone::apk::encode_xml(&m, true), &[]);
    push(&core, "/data/local/tmp/future.apk", &apk);
    let r = sh(&core, "pm install /data/local/tmp/future.apk");
    assert_eq!(
        r.out(),
        "Failure [INSTALL_FAILED_OLDER_SDK: Requires newer sdk version #99 (current version is #34)]\n"
    );
}

#[test]
fn streamed_install_reads_exactly_the_announced_size() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    let apk = build_test_apk("com.example.stream", 7, "7", None);
    // What `adb install` sends over abb_exec / exec: cmd package install -S <size>.
    let r = run_capture(
        &core,
        &format!("cmd package install -r -g -S {}", apk.len()),
        &apk,
    );
    assert_eq!(
        (r.status, r.out().as_str()),
        (0, "Success\n"),
        "{}",
        r.err()
    );
    let info = core
        .pm
        .get(&core.fs, "com.example.stream")
        .unwrap()
        .unwrap();
    assert_eq!(info.version_code, 7);
    // Through a pipe, and push-then-install as older adb clients do.
    core.fs.mkdir_all("/data/local/tmp").unwrap();
    let apk8 = build_test_apk("com.example.stream", 8, "8", None);
    core.fs.write("/data/local/tmp/s.apk", &apk8).unwrap();
    let r = sh(
        &core,
        &format!("cat /data/local/tmp/s.apk | pm install -S {}", apk8.len()),
    );
    assert_eq!(r.out(), "Success\n", "{}", r.err());
    let r = sh(
        &core,
        "pm 'install' '/data/local/tmp/s.apk' && rm '/data/local/tmp/s.apk'",
    );
    assert_eq!((r.status, r.out().as_str()), (0, "Success\n"));
    assert!(!core.fs.exists("/data/local/tmp/s.apk"));
    // A stream shorter than announced fails and installs nothing.
    let apk2 = build_test_apk("com.example.short", 1, "1", None);
    let r = run_capture(
        &core,
        &format!("cmd package install -S {}", apk2.len() + 10),
        &apk2,
    );
    assert!(
        r.out().starts_with("Failure [INSTALL_FAILED_"),
        "{}",
        r.out()
    );
    assert!(
        core.pm
            .get(&core.fs, "com.example.short")
            .unwrap()
            .is_none()
    );
}

#[test]
fn install_multiple_sessions_with_splits() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    let base = build_test_apk("com.example.split", 5, "5", None);
    let split = build_test_apk("com.example.split", 5, "5", Some("config.arm64_v8a"));
    let other = build_test_apk("com.other.app", 5, "5", Some("config.xxhdpi"));

    let r = sh(
        &core,
        &format!("cmd package install-create -S {}", base.len() + split.len()),
    );
    let out = r.out();
    assert!(
        out.starts_with("Success: created install session ["),
        "{out}"
    );
    let id: String = out
        .rsplit('[')
        .next()
        .unwrap()
        .trim_end()
        .trim_end_matches(']')
        .to_string();
    let r = run_capture(
        &core,
        &format!(
            "cmd package install-write -S {} {id} base.apk -",
            base.len()
        ),
        &base,
    );
    assert!(r.out().starts_with("Success"), "{}", r.out());
    let r = run_capture(
        &core,
        &format!(
            "cmd package install-write -S {} {id} split.apk -",
            split.len()
        ),
        &split,
    );
    assert!(r.out().starts_with("Success"), "{}", r.out());
    assert_eq!(
        sh(&core, &format!("cmd package install-commit {id}")).out(),
        "Success\n"
    );
    assert_eq!(
        sh(&core, "pm path com.example.split").out(),
        "package:/data/app/com.example.split-1/base.apk\npackage:/data/app/com.example.split-1/split_config.arm64_v8a.apk\n"
    );
    // The session is closed.
    assert!(
        sh(&core, &format!("pm install-commit {id}"))
            .out()
            .starts_with("Failure")
    );

    // Splits of another package are refused.
    let id2 = {
        let o = sh(&core, "pm install-create").out();
        o.rsplit('[')
            .next()
            .unwrap()
            .trim_end()
            .trim_end_matches(']')
            .to_string()
    };
    run_capture(
        &core,
        &format!("pm install-write -S {} {id2} base.apk", base.len()),
        &base,
    );
    run_capture(
        &core,
        &format!("pm install-write -S {} {id2} o.apk", other.len()),
        &other,
    );
    let r = sh(&core, &format!("pm install-commit {id2}"));
    assert!(
        r.out()
            .starts_with("Failure [INSTALL_FAILED_INVALID_APK: Inconsistent package"),
        "{}",
        r.out()
    );

    // Abandon removes the staged files.
    let id3 = {
        let o = sh(&core, "pm install-create").out();
        o.rsplit('[')
            .next()
            .unwrap()
            .trim_end()
            .trim_end_matches(']')
            .to_string()
    };
    run_capture(&core, &format!("pm install-write {id3} base.apk -"), &base);
    assert!(core.fs.exists(&format!("/data/app/vmdl{id3}.tmp/base.apk")));
    assert_eq!(
        sh(&core, &format!("pm install-abandon {id3}")).out(),
        "Success\n"
    );
    assert!(!core.fs.exists(&format!("/data/app/vmdl{id3}.tmp")));
    // Path traversal in a split name is refused.
    let id4 = {
        let o = sh(&core, "pm install-create").out();
        o.rsplit('[')
            .next()
            .unwrap()
            .trim_end()
            .trim_end_matches(']')
            .to_string()
    };
    let r = run_capture(
        &core,
        &format!("pm install-write {id4} ../../evil.apk -"),
        &base,
    );
    assert!(r.out().starts_with("Failure"), "{}", r.out());
}

#[test]
fn sessions_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    for _ in 0..cph_phone::pm::MAX_SESSIONS {
        assert!(sh(&core, "pm install-create").out().starts_with("Success"));
    }
    assert!(sh(&core, "pm install-create").out().starts_with("Failure"));
}

#[test]
fn system_packages_update_and_revert() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    assert_eq!(
        sh(&core, "pm path com.android.settings").out(),
        "package:/system/priv-app/Settings/Settings.apk\n"
    );
    assert_eq!(
        sh(&core, "pm uninstall com.android.settings").out(),
        "Failure [DELETE_FAILED_INTERNAL_ERROR]\n"
    );
    push(
        &core,
        "/data/local/tmp/s.apk",
        &build_test_apk("com.android.settings", 100, "upd", None),
    );
    assert_eq!(
        sh(&core, "pm install /data/local/tmp/s.apk").out(),
        "Success\n"
    );
    let dump = sh(&core, "dumpsys package com.android.settings").out();
    assert!(dump.contains("versionCode=100 "), "{dump}");
    assert!(dump.contains("UPDATED_SYSTEM_APP"), "{dump}");
    assert!(
        sh(&core, "pm list packages -s")
            .out()
            .contains("package:com.android.settings\n")
    );
    // Uninstalling removes the update only.
    assert_eq!(
        sh(&core, "pm uninstall com.android.settings").out(),
        "Success\n"
    );
    assert!(
        sh(&core, "dumpsys package com.android.settings")
            .out()
            .contains("versionCode=34 ")
    );
    // --user hides a system package.
    assert_eq!(
        sh(&core, "pm uninstall --user 0 com.android.gallery3d").out(),
        "Success\n"
    );
    assert!(!sh(&core, "pm list packages").out().contains("gallery3d"));
}

#[test]
fn state_survives_restart_and_not_a_wipe() {
    let dir = tempfile::tempdir().unwrap();
    {
        let core = boot(dir.path());
        push(
            &core,
            "/data/local/tmp/a.apk",
            &build_test_apk("com.example.keep", 9, "9", None),
        );
        assert_eq!(
            sh(&core, "pm install /data/local/tmp/a.apk").out(),
            "Success\n"
        );
        assert_eq!(
            sh(&core, "pm disable-user com.example.keep").out(),
            "Package com.example.keep new state: disabled-user\n"
        );
        // A session left open by a crash.
        assert!(sh(&core, "pm install-create").out().starts_with("Success"));
    }
    let core = boot(dir.path());
    assert_eq!(
        sh(&core, "pm list packages -3").out(),
        "package:com.example.keep\n"
    );
    assert_eq!(
        sh(&core, "pm list packages -d -3").out(),
        "package:com.example.keep\n"
    );
    assert_eq!(sh(&core, "pm list packages -e -3").out(), "");
    let stale: Vec<String> = core
        .fs
        .read_dir("/data/app")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("vmdl"))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
    drop(core);
    std::fs::remove_dir_all(dir.path().join("root/data")).unwrap();
    let core = boot(dir.path());
    assert_eq!(sh(&core, "pm list packages -3").out(), "");
    assert!(
        sh(&core, "pm list packages")
            .out()
            .contains("package:com.android.settings\n")
    );
}
