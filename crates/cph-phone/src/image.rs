//! Phone images: the build properties of an (image, model) pair and the `/system` tree the
//! runtime materialises on the host for an image.
//!
//! An image's `/system` holds `build.prop`, `etc/hosts` and one APK per preinstalled package
//! (`priv-app/<Name>/<Name>.apk`, `app/<Name>/<Name>.apk`, `framework/framework-res.apk`),
//! each a real, parseable APK built with [`crate::apk`]. No executable is ever written: the
//! phone's commands are built in.

use crate::apk::{self, XmlElement, XmlValue, attr};
use crate::pm::SystemPackage;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// Display width in pixels (`wm size`).
pub const DISPLAY_WIDTH_PROP: &str = "ro.cph.display.width";
/// Display height in pixels (`wm size`).
pub const DISPLAY_HEIGHT_PROP: &str = "ro.cph.display.height";
/// Display density in dpi (`wm density`); Android's own property name.
pub const DISPLAY_DENSITY_PROP: &str = "ro.sf.lcd_density";
/// The image id the phone runs.
pub const IMAGE_ID_PROP: &str = "ro.cph.image.id";

/// What the build properties are made from: the image and the phone model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInputs {
    /// Image id (recorded in `ro.cph.image.id`; seeds `ro.build.version.incremental`).
    pub image_id: String,
    /// Image name (`ro.build.display.id` when not empty).
    pub image_name: String,
    /// OS name, e.g. `Android` (recorded in `ro.cph.os.name`).
    pub os_name: String,
    /// Android release, e.g. `14` (`ro.build.version.release`).
    pub android_version: String,
    /// SDK level, e.g. 34 (`ro.build.version.sdk`).
    pub sdk: u32,
    /// `ro.product.name`.
    pub product_name: String,
    /// `ro.product.model`.
    pub model: String,
    /// `ro.product.device`.
    pub device: String,
    /// `ro.product.brand`.
    pub brand: String,
    /// `ro.product.manufacturer`.
    pub manufacturer: String,
    /// Display size in pixels and density in dpi.
    pub width: u32,
    pub height: u32,
    pub density: u32,
}

/// The build id Android used for the first release of an SDK level.
fn build_id(sdk: u32) -> &'static str {
    match sdk {
        0..=28 => "PQ3A.190801.002",
        29 => "QQ3A.200805.001",
        30 => "RQ3A.211001.001",
        31 | 32 => "SQ3A.220705.004",
        33 => "TQ3A.230901.001",
        34 => "UQ1A.240205.004",
        35 => "AP4A.250205.002",
        _ => "BP1A.250505.005",
    }
}

/// A plausible security patch date for an SDK level.
fn security_patch(sdk: u32) -> &'static str {
    match sdk {
        0..=28 => "2019-08-01",
        29 => "2020-08-05",
        30 => "2021-10-01",
        31 | 32 => "2022-07-05",
        33 => "2023-09-01",
        34 => "2024-02-05",
        35 => "2025-02-05",
        _ => "2025-05-05",
    }
}

/// `value` or `fallback` when empty.
fn or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.trim().is_empty() {
        fallback
    } else {
        value
    }
}

/// The build properties of a phone: `ro.build.*`, `ro.product.*`, display size and density,
/// boot-completed flags and a few fixed platform values. A pure function of `inputs`; the
/// runtime adds the phone's own identity (serial, IMEI, address) on top.
pub fn build_props(inputs: &ImageInputs) -> BTreeMap<String, String> {
    let sdk = if inputs.sdk == 0 { 34 } else { inputs.sdk };
    let release = or(&inputs.android_version, "14").to_string();
    let brand = or(&inputs.brand, "cph").to_string();
    let product = or(&inputs.product_name, "cloudphone").to_string();
    let device = or(&inputs.device, "cloudphone").to_string();
    let model = or(&inputs.model, "Cloud Phone").to_string();
    let manufacturer = or(&inputs.manufacturer, &brand).to_string();
    let id = build_id(sdk);
    // A stable 7-digit incremental derived from the image id.
    let incremental = {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in inputs.image_id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}", 1_000_000 + h % 9_000_000)
    };
    let fingerprint =
        format!("{brand}/{product}/{device}:{release}/{id}/{incremental}:userdebug/release-keys");
    let date_utc: i64 = match sdk {
        0..=28 => 1_564_617_600,
        29 => 1_596_585_600,
        30 => 1_633_046_400,
        31 | 32 => 1_656_979_200,
        33 => 1_693_526_400,
        34 => 1_707_091_200,
        35 => 1_738_713_600,
        _ => 1_746_403_200,
    };
    let date = chrono::DateTime::from_timestamp(date_utc, 0)
        .map(|d| d.format("%a %b %e %H:%M:%S UTC %Y").to_string())
        .unwrap_or_default();
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    set("ro.build.version.release", release.clone());
    set("ro.build.version.release_or_codename", release.clone());
    set("ro.build.version.sdk", sdk.to_string());
    set("ro.build.version.codename", "REL".into());
    set("ro.build.version.incremental", incremental.clone());
    set(
        "ro.build.version.security_patch",
        security_patch(sdk).into(),
    );
    set("ro.build.id", id.into());
    set(
        "ro.build.display.id",
        if inputs.image_name.trim().is_empty() {
            format!("{id} release-keys")
        } else {
            inputs.image_name.clone()
        },
    );
    set("ro.build.type", "userdebug".into());
    set("ro.build.tags", "release-keys".into());
    set("ro.build.user", "cph".into());
    set("ro.build.host", "cph-build".into());
    set("ro.build.date.utc", date_utc.to_string());
    set("ro.build.date", date);
    set("ro.build.fingerprint", fingerprint.clone());
    set("ro.system.build.fingerprint", fingerprint.clone());
    set("ro.vendor.build.fingerprint", fingerprint);
    set(
        "ro.build.description",
        format!("{product}-userdebug {release} {id} {incremental} release-keys"),
    );
    set("ro.build.characteristics", "default".into());
    for prefix in ["ro.product", "ro.product.system", "ro.product.vendor"] {
        set(&format!("{prefix}.brand"), brand.clone());
        set(&format!("{prefix}.name"), product.clone());
        set(&format!("{prefix}.device"), device.clone());
        set(&format!("{prefix}.model"), model.clone());
        set(&format!("{prefix}.manufacturer"), manufacturer.clone());
    }
    set("ro.product.board", device.clone());
    set("ro.product.locale", "en-US".into());
    set("ro.product.cpu.abi", "arm64-v8a".into());
    set(
        "ro.product.cpu.abilist",
        "arm64-v8a,armeabi-v7a,armeabi".into(),
    );
    set("ro.product.cpu.abilist64", "arm64-v8a".into());
    set("ro.product.cpu.abilist32", "armeabi-v7a,armeabi".into());
    set("ro.board.platform", "cph".into());
    set("ro.hardware", "cph".into());
    set("ro.debuggable", "1".into());
    set("ro.secure", "1".into());
    set("ro.adb.secure", "1".into());
    set("ro.zygote", "zygote64_32".into());
    set("ro.opengles.version", "196610".into());
    set("ro.cph.os.name", or(&inputs.os_name, "Android").into());
    set(IMAGE_ID_PROP, inputs.image_id.clone());
    let (w, h, d) = (
        if inputs.width == 0 {
            1080
        } else {
            inputs.width
        },
        if inputs.height == 0 {
            1920
        } else {
            inputs.height
        },
        if inputs.density == 0 {
            480
        } else {
            inputs.density
        },
    );
    set(DISPLAY_WIDTH_PROP, w.to_string());
    set(DISPLAY_HEIGHT_PROP, h.to_string());
    set(DISPLAY_DENSITY_PROP, d.to_string());
    set("sys.boot_completed", "1".into());
    set("dev.bootcomplete", "1".into());
    set("init.svc.adbd", "running".into());
    set("service.adb.tcp.port", "5555".into());
    set("persist.sys.timezone", "UTC".into());
    set("persist.sys.locale", "en-US".into());
    set("net.bt.name", "Android".into());
    p
}

/// One preinstalled package: where its APK goes and what it declares.
struct Preinstalled {
    package: &'static str,
    /// Directory under `/system` and file stem, e.g. `("priv-app", "Settings")`.
    dir: &'static str,
    name: &'static str,
    /// Launchable activity (class name relative to the package, with a leading dot).
    launcher: Option<&'static str>,
}

const PREINSTALLED: &[Preinstalled] = &[
    Preinstalled {
        package: "android",
        dir: "framework",
        name: "framework-res",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.settings",
        dir: "priv-app",
        name: "Settings",
        launcher: Some(".Settings"),
    },
    Preinstalled {
        package: "com.android.systemui",
        dir: "priv-app",
        name: "SystemUI",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.launcher3",
        dir: "priv-app",
        name: "Launcher3QuickStep",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.providers.settings",
        dir: "priv-app",
        name: "SettingsProvider",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.providers.media",
        dir: "priv-app",
        name: "MediaProvider",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.providers.downloads",
        dir: "priv-app",
        name: "DownloadProvider",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.shell",
        dir: "priv-app",
        name: "Shell",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.packageinstaller",
        dir: "priv-app",
        name: "PackageInstaller",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.documentsui",
        dir: "priv-app",
        name: "DocumentsUI",
        launcher: Some(".LauncherActivity"),
    },
    Preinstalled {
        package: "com.android.inputmethod.latin",
        dir: "app",
        name: "LatinIME",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.webview",
        dir: "app",
        name: "webview",
        launcher: None,
    },
    Preinstalled {
        package: "com.android.gallery3d",
        dir: "app",
        name: "Gallery2",
        launcher: Some(".app.GalleryActivity"),
    },
    Preinstalled {
        package: "com.android.contacts",
        dir: "priv-app",
        name: "Contacts",
        launcher: Some(".activities.PeopleActivity"),
    },
];

/// The launcher's home activity (what `HOME` shows).
pub const HOME_ACTIVITY: (&str, &str) = ("com.android.launcher3", "com.android.launcher3.Launcher");

/// The packages an image with this Android release and SDK level has, with their APK paths
/// (platform packages carry the SDK level as version code and the release as version name).
pub fn system_packages(android_version: &str, sdk: u32) -> Vec<SystemPackage> {
    PREINSTALLED
        .iter()
        .map(|p| SystemPackage {
            package: p.package.to_string(),
            version_code: i64::from(sdk),
            version_name: android_version.to_string(),
            apk_path: format!("/system/{}/{}", p.dir, apk_file(p)),
            launchable_activity: p.launcher.map(|l| apk::qualify(p.package, l)),
        })
        .collect()
}

fn apk_file(p: &Preinstalled) -> String {
    if p.dir == "framework" {
        format!("{}.apk", p.name)
    } else {
        format!("{}/{}.apk", p.name, p.name)
    }
}

/// The manifest of a preinstalled package.
fn system_manifest(p: &Preinstalled, sdk: u32, release: &str) -> XmlElement {
    let mut app = XmlElement::new("application").android(
        attr::LABEL,
        "label",
        XmlValue::Str(p.name.to_string()),
    );
    let home = p.package == HOME_ACTIVITY.0;
    if let Some(l) = p.launcher {
        app = app.child(activity(l, "android.intent.category.LAUNCHER"));
    }
    if home {
        app = app.child(activity(".Launcher", "android.intent.category.HOME"));
    }
    XmlElement::new("manifest")
        .android(attr::VERSION_CODE, "versionCode", XmlValue::Int(sdk))
        .android(
            attr::VERSION_NAME,
            "versionName",
            XmlValue::Str(release.to_string()),
        )
        .plain("package", p.package)
        .child(
            XmlElement::new("uses-sdk")
                .android(attr::MIN_SDK_VERSION, "minSdkVersion", XmlValue::Int(sdk))
                .android(
                    attr::TARGET_SDK_VERSION,
                    "targetSdkVersion",
                    XmlValue::Int(sdk),
                ),
        )
        .child(app)
}

fn activity(name: &str, category: &str) -> XmlElement {
    XmlElement::new("activity")
        .android(attr::NAME, "name", XmlValue::Str(name.to_string()))
        .child(
            XmlElement::new("intent-filter")
                .child(XmlElement::new("action").android(
                    attr::NAME,
                    "name",
                    XmlValue::Str("android.intent.action.MAIN".into()),
                ))
                .child(XmlElement::new("category").android(
                    attr::NAME,
                    "name",
                    XmlValue::Str(category.to_string()),
                )),
        )
}

/// Writes an image's `/system` tree into `dir` (created if missing; existing files are
/// replaced): `build.prop` from `build_props`, `etc/hosts`, and the APKs of
/// [`system_packages`]. Returns those packages.
pub fn materialize_system(
    dir: &Path,
    android_version: &str,
    sdk: u32,
    build_props: &BTreeMap<String, String>,
) -> io::Result<Vec<SystemPackage>> {
    std::fs::create_dir_all(dir)?;
    let mut prop = String::from("# begin build properties\n");
    for (k, v) in build_props {
        if k.starts_with("ro.") {
            prop.push_str(&format!("{k}={v}\n"));
        }
    }
    prop.push_str("# end build properties\n");
    write_atomic(&dir.join("build.prop"), prop.as_bytes())?;
    std::fs::create_dir_all(dir.join("etc"))?;
    write_atomic(
        &dir.join("etc/hosts"),
        b"127.0.0.1       localhost\n::1             ip6-localhost\n",
    )?;
    for p in PREINSTALLED {
        let rel = format!("{}/{}", p.dir, apk_file(p));
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let axml = apk::encode_xml(&system_manifest(p, sdk, android_version), false);
        let bytes = apk::build_apk(&axml, &[("classes.dex", b"dex\n035\0")]);
        if bytes.is_empty() {
            return Err(io::Error::other(format!("could not build {rel}")));
        }
        write_atomic(&path, &bytes)?;
    }
    Ok(system_packages(android_version, sdk))
}

/// Writes a host file through a temporary sibling and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ImageInputs {
        ImageInputs {
            image_id: "img-1".into(),
            image_name: "CPH Android 14".into(),
            os_name: "Android".into(),
            android_version: "14".into(),
            sdk: 34,
            product_name: "cph_arm64".into(),
            model: "Kirin Cloud".into(),
            device: "cphdev".into(),
            brand: "HUAWEI".into(),
            manufacturer: "HUAWEI".into(),
            width: 720,
            height: 1280,
            density: 320,
        }
    }

    #[test]
    fn build_props_describe_the_image_and_model() {
        let p = build_props(&inputs());
        assert_eq!(p["ro.build.version.release"], "14");
        assert_eq!(p["ro.build.version.sdk"], "34");
        assert_eq!(p["ro.product.model"], "Kirin Cloud");
        assert_eq!(p["ro.product.brand"], "HUAWEI");
        assert_eq!(p[DISPLAY_WIDTH_PROP], "720");
        assert_eq!(p[DISPLAY_HEIGHT_PROP], "1280");
        assert_eq!(p[DISPLAY_DENSITY_PROP], "320");
        assert_eq!(p["sys.boot_completed"], "1");
        let fp = &p["ro.build.fingerprint"];
        assert!(
            fp.starts_with("HUAWEI/cph_arm64/cphdev:14/UQ1A.240205.004/"),
            "{fp}"
        );
        assert!(fp.ends_with(":userdebug/release-keys"));
        // Pure: same inputs, same output; another image id changes the incremental.
        assert_eq!(build_props(&inputs()), p);
        let mut other = inputs();
        other.image_id = "img-2".into();
        assert_ne!(
            build_props(&other)["ro.build.version.incremental"],
            p["ro.build.version.incremental"]
        );
        // Every value is settable as a base property.
        let props = crate::props::Props::new(p.clone());
        assert_eq!(props.list().len(), p.len());
    }

    #[test]
    fn materialized_system_holds_parseable_apks() {
        let dir = tempfile::tempdir().unwrap();
        let props = build_props(&inputs());
        let pkgs = materialize_system(dir.path(), "14", 34, &props).unwrap();
        assert!(pkgs.iter().any(|p| p.package == "com.android.settings"));
        let bp = std::fs::read_to_string(dir.path().join("build.prop")).unwrap();
        assert!(bp.contains("ro.build.version.sdk=34\n"));
        for p in &pkgs {
            let host = dir.path().join(p.apk_path.trim_start_matches("/system/"));
            let info = apk::parse_file(&host).unwrap();
            assert_eq!(info.package, p.package);
            assert_eq!(info.version_code, 34);
            assert_eq!(info.launchable_activity, p.launchable_activity);
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&host).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0, "no executables in /system");
        }
        // Idempotent.
        assert_eq!(
            materialize_system(dir.path(), "14", 34, &props).unwrap(),
            pkgs
        );
    }
}
