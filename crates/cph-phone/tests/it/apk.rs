//! APK parsing on files in the phone's tree and on the image's packages.

use cph_phone::apk::{self, ApkError};
use std::io::Cursor;

#[test]
fn parses_an_apk_read_from_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let core = crate::android::boot(dir.path());
    let bytes = apk::build_test_apk("org.example.reader", (1i64 << 32) | 5, "1.5", None);
    core.fs.mkdir_all("/data/local/tmp").unwrap();
    core.fs.write("/data/local/tmp/r.apk", &bytes).unwrap();
    let info = apk::parse(core.fs.open_read("/data/local/tmp/r.apk").unwrap()).unwrap();
    assert_eq!(info.package, "org.example.reader");
    assert_eq!(info.version_code, (1i64 << 32) | 5);
    assert_eq!(info.version_name.as_deref(), Some("1.5"));
    // The image's framework package parses too.
    let f = core
        .fs
        .open_read("/system/framework/framework-res.apk")
        .unwrap();
    assert_eq!(apk::parse(f).unwrap().package, "android");
}

#[test]
fn every_prefix_of_an_apk_fails_cleanly() {
    let bytes = apk::build_test_apk("org.example.cut", 1, "1", Some("config.en"));
    for cut in 0..bytes.len() {
        match apk::parse(Cursor::new(&bytes[..cut])) {
            Ok(_) => panic!("a truncated APK ({cut} bytes) parsed"),
            Err(ApkError::NotAnApk(_) | ApkError::Malformed(_) | ApkError::Io(_)) => {}
            Err(e) => panic!("unexpected error at {cut}: {e:?}"),
        }
    }
    assert_eq!(
        apk::parse(Cursor::new(&bytes[..]))
            .unwrap()
            .split
            .as_deref(),
        Some("config.en")
    );
}
