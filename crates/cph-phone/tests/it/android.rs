//! Android service commands run through the phone's shell.

use cph_phone::PhoneCore;
use cph_phone::shell::{Output, run_capture};
use std::collections::BTreeMap;
use std::path::Path;

/// Build properties of the test image.
pub fn test_props() -> BTreeMap<String, String> {
    let mut p = cph_phone::image::build_props(&cph_phone::image::ImageInputs {
        image_id: "img-test".into(),
        image_name: "Test Image".into(),
        os_name: "Android".into(),
        android_version: "14".into(),
        sdk: 34,
        product_name: "cph_test".into(),
        model: "Test Model".into(),
        device: "cphtest".into(),
        brand: "cph".into(),
        manufacturer: "cph".into(),
        width: 720,
        height: 1280,
        density: 320,
    });
    p.insert("ro.serialno".into(), "SERIAL0001".into());
    p
}

/// A phone over `dir` (a second call on the same directory is the same phone restarted).
pub fn boot(dir: &Path) -> PhoneCore {
    let props = test_props();
    let pkgs = cph_phone::image::materialize_system(&dir.join("system"), "14", 34, &props).unwrap();
    let core = PhoneCore::scratch(dir, props, pkgs).unwrap();
    cph_phone::android::load_persistent_state(&core).unwrap();
    core
}

/// Runs a script and returns its output.
pub fn sh(core: &PhoneCore, script: &str) -> Output {
    run_capture(core, script, b"")
}

#[test]
fn getprop_and_setprop_follow_android_rules() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    assert_eq!(sh(&core, "getprop ro.build.version.sdk").out(), "34\n");
    assert_eq!(
        sh(&core, "getprop no.such.prop fallback").out(),
        "fallback\n"
    );
    assert_eq!(sh(&core, "getprop no.such.prop").out(), "\n");
    let all = sh(&core, "getprop").out();
    assert!(all.contains("[ro.product.model]: [Test Model]\n"), "{all}");
    let keys: Vec<&str> = all
        .lines()
        .map(|l| l.split("]: [").next().unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let r = sh(&core, "setprop ro.product.model Other");
    assert_eq!(r.status, 1);
    assert!(
        r.err()
            .contains("Failed to set property 'ro.product.model'"),
        "{}",
        r.err()
    );
    assert_eq!(sh(&core, "getprop ro.product.model").out(), "Test Model\n");

    let long = "x".repeat(92);
    let r = sh(&core, &format!("setprop debug.long {long}"));
    assert_eq!(r.status, 1);
    assert!(
        r.err().contains("is too long. 92 bytes, max 91 bytes."),
        "{}",
        r.err()
    );
    let r = sh(&core, "setprop bad..name 1");
    assert_eq!(
        (r.status, r.err().as_str()),
        (1, "Invalid property name 'bad..name'.\n")
    );
    assert_eq!(sh(&core, "setprop").status, 1);

    assert_eq!(sh(&core, "setprop debug.volatile 1").status, 0);
    assert_eq!(sh(&core, "setprop persist.test.kept yes").status, 0);
    assert_eq!(sh(&core, "getprop persist.test.kept").out(), "yes\n");
    drop(core);

    // Restart: persist.* survives, the rest does not.
    let core = boot(dir.path());
    assert_eq!(sh(&core, "getprop persist.test.kept").out(), "yes\n");
    assert_eq!(sh(&core, "getprop debug.volatile").out(), "\n");
    drop(core);

    // A reset that wipes /data forgets it.
    std::fs::remove_dir_all(dir.path().join("root/data")).unwrap();
    let core = boot(dir.path());
    assert_eq!(sh(&core, "getprop persist.test.kept").out(), "\n");
}

#[test]
fn settings_are_persisted_and_answer_the_incremental_probe() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    assert_eq!(
        sh(
            &core,
            "settings get global enable_adb_incremental_install_default"
        )
        .out(),
        "0\n"
    );
    // The probe arrives as `cmd settings …` through abb_exec.
    assert_eq!(
        sh(
            &core,
            "cmd settings get global enable_adb_incremental_install_default"
        )
        .out(),
        "0\n"
    );
    assert_eq!(
        sh(&core, "settings get system nothing_here").out(),
        "null\n"
    );
    assert_eq!(
        sh(&core, "settings put system screen_brightness 200").status,
        0
    );
    assert_eq!(
        sh(&core, "settings get system screen_brightness").out(),
        "200\n"
    );
    assert!(
        sh(&core, "settings list system")
            .out()
            .contains("screen_brightness=200\n")
    );
    assert_eq!(
        sh(&core, "settings delete system screen_brightness").out(),
        "Deleted 1 rows\n"
    );
    assert_eq!(
        sh(&core, "settings delete system screen_brightness").out(),
        "Deleted 0 rows\n"
    );
    assert_eq!(sh(&core, "settings put secure my_key v1").status, 0);
    let id = sh(&core, "settings get secure android_id").out();
    assert_eq!(id.trim().len(), 16);
    let r = sh(&core, "settings get bogus key");
    assert_eq!(r.status, 1);
    assert!(r.err().contains("Invalid namespace"));
    drop(core);
    let core = boot(dir.path());
    assert_eq!(sh(&core, "settings get secure my_key").out(), "v1\n");
    assert_eq!(sh(&core, "settings get secure android_id").out(), id);
    assert_eq!(
        sh(&core, "settings get system screen_brightness").out(),
        "null\n"
    );
}

#[test]
fn am_start_records_and_resolves_activities() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    let apk = cph_phone::apk::build_test_apk("com.example.app", 3, "3.0", None);
    core.fs.mkdir_all("/data/local/tmp").unwrap();
    core.fs.write("/data/local/tmp/app.apk", &apk).unwrap();
    assert_eq!(
        sh(&core, "pm install /data/local/tmp/app.apk").out(),
        "Success\n"
    );

    let r = sh(&core, "am start -W -n com.example.app/.MainActivity");
    assert_eq!(r.status, 0, "{}", r.err());
    assert!(
        r.out()
            .starts_with("Starting: Intent { cmp=com.example.app/.MainActivity }\n")
    );
    assert!(r.out().contains("Status: ok\n"));
    assert!(
        r.out()
            .contains("Activity: com.example.app/.MainActivity\n")
    );
    let top = core.android.resumed().unwrap();
    assert_eq!(top.class, "com.example.app.MainActivity");
    let act = sh(&core, "dumpsys activity activities").out();
    assert!(act.contains("mResumedActivity: ActivityRecord{"), "{act}");
    assert!(act.contains("com.example.app/.MainActivity"), "{act}");
    let win = sh(&core, "dumpsys window").out();
    assert!(win.contains("mCurrentFocus=Window{"), "{win}");
    assert!(
        win.contains("com.example.app/com.example.app.MainActivity"),
        "{win}"
    );

    // Started again while on top: delivered to the running instance.
    let r = sh(&core, "am start -n com.example.app/.MainActivity");
    assert!(
        r.out().contains("Warning: Activity not started"),
        "{}",
        r.out()
    );

    // Unknown package or class.
    let r = sh(&core, "am start -n com.nope.app/.Main");
    assert_eq!(r.status, 1);
    assert!(
        r.err()
            .contains("Error: Activity class {com.nope.app/com.nope.app.Main} does not exist.")
    );
    let r = sh(&core, "am start -n com.example.app/.Missing");
    assert!(r.err().contains("does not exist"));
    // Implicit intent nobody handles.
    let r = sh(
        &core,
        "am start -a android.intent.action.VIEW -d https://example.com",
    );
    assert_eq!(r.status, 1);
    assert_eq!(
        r.err(),
        "Error: Activity not started, unable to resolve Intent { act=android.intent.action.VIEW dat=https://example.com flg=0x10000000 }\n"
    );
    // Launching by package uses the launcher activity.
    sh(&core, "am force-stop com.example.app");
    assert_eq!(
        core.android.resumed().unwrap().package,
        "com.android.launcher3"
    );
    let r = sh(
        &core,
        "am start -a android.intent.action.MAIN -c android.intent.category.LAUNCHER com.example.app",
    );
    assert_eq!(r.status, 0, "{}", r.err());
    assert_eq!(core.android.resumed().unwrap().package, "com.example.app");
    let r = sh(
        &core,
        "cmd package resolve-activity --brief com.example.app",
    );
    assert_eq!(
        r.out().lines().last(),
        Some("com.example.app/.MainActivity")
    );

    let r = sh(&core, "am broadcast -a com.example.PING");
    assert_eq!(
        r.out(),
        "Broadcasting: Intent { act=com.example.PING flg=0x400000 }\nBroadcast completed: result=0\n"
    );
    assert_eq!(core.android.broadcasts().len(), 1);
    assert!(sh(&core, "logcat -d").out().contains("START u0 {"));
}

#[test]
fn wm_reports_display_from_properties_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    assert_eq!(sh(&core, "wm size").out(), "Physical size: 720x1280\n");
    assert_eq!(sh(&core, "wm density").out(), "Physical density: 320\n");
    assert_eq!(sh(&core, "wm size 1080x1920").status, 0);
    assert_eq!(sh(&core, "wm density 480").status, 0);
    assert_eq!(
        sh(&core, "wm size").out(),
        "Physical size: 720x1280\nOverride size: 1080x1920\n"
    );
    assert_eq!(
        sh(&core, "cmd window density").out(),
        "Physical density: 320\nOverride density: 480\n"
    );
    assert_eq!(sh(&core, "wm size banana").status, 1);
    assert_eq!(sh(&core, "wm size reset").status, 0);
    assert_eq!(sh(&core, "wm size").out(), "Physical size: 720x1280\n");
}

#[test]
fn input_is_validated_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    assert_eq!(sh(&core, "input tap 100 200").status, 0);
    assert_eq!(sh(&core, "input swipe 1 2 3 4 300").status, 0);
    assert_eq!(sh(&core, "input keyevent KEYCODE_ENTER 4").status, 0);
    assert_eq!(sh(&core, "input text hello").status, 0);
    assert_eq!(sh(&core, "input touchscreen tap 5 5").status, 0);
    assert_eq!(sh(&core, "input tap x 200").status, 1);
    assert_eq!(sh(&core, "input swipe 1 2 3").status, 1);
    assert_eq!(sh(&core, "input keyevent KEYCODE_NOPE").status, 1);
    assert_eq!(sh(&core, "input fly").status, 1);
    assert_eq!(
        core.android.input_events(),
        vec![
            "input tap 100 200",
            "input swipe 1 2 3 4 300",
            "input keyevent KEYCODE_ENTER 4",
            "input text hello",
            "input tap 5 5",
        ]
    );
    assert!(
        sh(&core, "dumpsys input")
            .out()
            .contains("input tap 100 200")
    );
}

#[test]
fn logcat_dumps_filters_and_clears() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    let log = sh(&core, "logcat -d").out();
    assert!(
        log.contains(" I ActivityManager: System now ready\n"),
        "{log}"
    );
    core.android.log('E', "MyTag", "broken");
    let only = sh(&core, "logcat -d -s MyTag").out();
    assert_eq!(only.lines().count(), 2, "{only}");
    assert!(only.contains(" E MyTag   : broken"), "{only}");
    assert_eq!(sh(&core, "logcat -d -t 1").out().lines().count(), 2);
    assert_eq!(sh(&core, "logcat -c").status, 0);
    assert_eq!(
        sh(&core, "logcat -d").out(),
        "--------- beginning of main\n"
    );
    for i in 0..(cph_phone::android::MAX_LOG_LINES + 10) {
        core.android.log('I', "Spam", &format!("line {i}"));
    }
    assert_eq!(
        core.android.log_lines().len(),
        cph_phone::android::MAX_LOG_LINES
    );
}

#[test]
fn dumpsys_battery_and_services() {
    let dir = tempfile::tempdir().unwrap();
    let core = boot(dir.path());
    let b = sh(&core, "dumpsys battery").out();
    assert!(
        b.contains("  level: 100\n") && b.contains("  AC powered: true\n"),
        "{b}"
    );
    assert_eq!(sh(&core, "dumpsys battery set level 42").status, 0);
    assert!(sh(&core, "dumpsys battery").out().contains("  level: 42\n"));
    assert_eq!(sh(&core, "dumpsys battery reset").status, 0);
    assert!(sh(&core, "dumpsys -l").out().contains("  package\n"));
    assert_eq!(
        sh(&core, "dumpsys nothing").out(),
        "Can't find service: nothing\n"
    );
    let r = sh(&core, "cmd nothing");
    assert_eq!(r.status, 20);
}
