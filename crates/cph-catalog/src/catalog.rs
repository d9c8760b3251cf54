//! Server models, phone models and phone images.
//!
//! The built-in catalog comes from appendices A.2/A.3 and the examples of
//! sections 5.1.3, 5.3.3 and 5.3.4 (`data/server_models.json`,
//! `data/phone_models.json`, `data/phone_images.json`).  An operator can
//! replace it with a file holding the same three arrays.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

const SERVER_MODELS_JSON: &str = include_str!("../data/server_models.json");
const PHONE_MODELS_JSON: &str = include_str!("../data/phone_models.json");
const PHONE_IMAGES_JSON: &str = include_str!("../data/phone_images.json");

/// Operating-system disk of a server model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsVolume {
    /// Size in GB.
    pub size: i32,
    pub volume_type: String,
}

/// Hardware description of a server model (`extend_spec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerModelExtendSpec {
    pub cpu: String,
    pub memory: String,
    pub disk: String,
    pub network_interface: String,
    pub gpu: String,
    pub bms_flavor: String,
    pub gpu_count: i32,
    pub numa_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_volume: Option<OsVolume>,
}

/// A cloud phone server model, serialised as on the wire (`ServerModel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerModel {
    pub server_model_name: String,
    /// Server hardware type, e.g. `Hi1616`.
    pub server_type: String,
    /// CPU cores.
    pub cpu: i32,
    /// Memory in GB.
    pub memory: i32,
    pub extend_spec: ServerModelExtendSpec,
    /// Maximum number of attachable disks; 0 means local disks.
    pub disk_max_num: i32,
    /// 0 cloud phone, 1 cloud game.
    pub product_type: i32,
    /// Free disk quota in GB.
    pub free_size: i32,
    /// Generation the model belongs to (`rx1` for `physical.rx1.xlarge`); a
    /// server can only change to a model of the same family.  Derived from
    /// the name when a catalog file leaves it out.
    #[serde(default, skip_serializing)]
    pub family: String,
    /// Description text of appendix A.3, when known.
    #[serde(default, skip_serializing)]
    pub spec_zh: String,
}

/// A cloud phone model, serialised as on the wire (`PhoneModel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneModel {
    pub server_model_name: String,
    pub phone_model_name: String,
    /// 1 available, 0 offline (cannot be bought).
    pub status: i32,
    /// CPU cores.
    pub cpu: i32,
    /// Memory in MB.
    pub memory: i32,
    /// System storage in GB.
    pub disk: i32,
    /// Resolution, e.g. `720x1280`.
    pub resolution: String,
    /// Extended description, a JSON document in a string.
    pub extend_spec: String,
    pub spec_code: String,
    /// Number of phones on one server of this model.
    pub phone_capacity: i32,
    /// Label an image must carry to run on this model.
    pub image_label: String,
    /// 0 cloud phone, 1 cloud game.
    pub product_type: i32,
    /// 0 spec 1.0, 1 spec 2.0.
    pub phone_model_version: i32,
    /// Dots per inch.
    pub dpi: i32,
    /// Render frame rate, as a string.
    pub fps: String,
    /// 0 shared physical disk, 1 dedicated physical disk.
    pub volume_mode: i32,
    pub render_fps: i32,
    pub stream_fps: i32,
}

/// A phone image, serialised as on the wire (`PhoneImage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneImage {
    pub image_name: String,
    pub os_type: String,
    /// 1 public, 2 private.
    pub is_public: i32,
    pub os_name: String,
    /// Phone models whose `image_label` equals this can run the image.
    pub image_label: String,
    /// 32 lowercase hexadecimal digits.
    pub image_id: String,
    pub is_support_encrypt: bool,
    /// Shared image state: 0 pending, 1 accepted, 2 rejected.
    pub receive_status: i32,
    /// Android release, e.g. `11`.
    #[serde(default, skip_serializing)]
    pub android_version: String,
    /// Android SDK level, e.g. 30.
    #[serde(default, skip_serializing)]
    pub sdk: u32,
}

/// Why a catalog file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{kind} name must not be empty")]
    EmptyName { kind: &'static str },
    #[error("duplicate {kind} {name:?}")]
    Duplicate { kind: &'static str, name: String },
    #[error("phone model {phone_model:?} refers to unknown server model {server_model:?}")]
    UnknownServerModel {
        phone_model: String,
        server_model: String,
    },
    #[error("no image carries label {image_label:?} used by phone model {phone_model:?}")]
    UnknownImageLabel {
        phone_model: String,
        image_label: String,
    },
    #[error("image id {0:?} is not 32 lowercase hexadecimal digits")]
    InvalidImageId(String),
}

/// Server models, phone models and phone images offered by the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub server_models: Vec<ServerModel>,
    pub phone_models: Vec<PhoneModel>,
    pub phone_images: Vec<PhoneImage>,
}

#[derive(Deserialize)]
struct ServerModelsFile {
    server_models: Vec<ServerModel>,
}

#[derive(Deserialize)]
struct PhoneModelsFile {
    phone_models: Vec<PhoneModel>,
}

#[derive(Deserialize)]
struct PhoneImagesFile {
    phone_images: Vec<PhoneImage>,
}

static BUILTIN: LazyLock<Catalog> = LazyLock::new(|| {
    let server_models = serde_json::from_str::<ServerModelsFile>(SERVER_MODELS_JSON)
        .expect("embedded server_models.json is valid")
        .server_models;
    let phone_models = serde_json::from_str::<PhoneModelsFile>(PHONE_MODELS_JSON)
        .expect("embedded phone_models.json is valid")
        .phone_models;
    let phone_images = serde_json::from_str::<PhoneImagesFile>(PHONE_IMAGES_JSON)
        .expect("embedded phone_images.json is valid")
        .phone_images;
    Catalog {
        server_models,
        phone_models,
        phone_images,
    }
    .checked()
    .expect("embedded catalog is consistent")
});

/// The family of a server model name: its second dot-separated part
/// (`physical.kg1.4xlarge.cp` -> `kg1`), or the whole name if it has none.
pub fn family_of(server_model_name: &str) -> &str {
    let mut parts = server_model_name.split('.');
    match (parts.next(), parts.next()) {
        (Some(_), Some(family)) if !family.is_empty() => family,
        _ => server_model_name,
    }
}

fn is_image_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Catalog {
    /// The catalog embedded in the crate.
    pub fn builtin() -> Catalog {
        BUILTIN.clone()
    }

    /// Reads an operator-supplied catalog: a JSON object with the arrays
    /// `server_models`, `phone_models` and `phone_images` (other members are
    /// ignored).  Names must be unique, image ids 32 lowercase hex digits,
    /// every phone model must run on a listed server model and have at least
    /// one image with its `image_label`.
    pub fn from_json_str(s: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = serde_json::from_str(s)?;
        catalog.checked()
    }

    fn checked(mut self) -> Result<Catalog, CatalogError> {
        for sm in &mut self.server_models {
            if sm.family.is_empty() {
                sm.family = family_of(&sm.server_model_name).to_string();
            }
        }
        let mut seen = HashSet::new();
        for sm in &self.server_models {
            if sm.server_model_name.is_empty() {
                return Err(CatalogError::EmptyName {
                    kind: "server model",
                });
            }
            if !seen.insert(sm.server_model_name.as_str()) {
                return Err(CatalogError::Duplicate {
                    kind: "server model",
                    name: sm.server_model_name.clone(),
                });
            }
        }
        let mut seen = HashSet::new();
        for im in &self.phone_images {
            if !is_image_id(&im.image_id) {
                return Err(CatalogError::InvalidImageId(im.image_id.clone()));
            }
            if !seen.insert(im.image_id.as_str()) {
                return Err(CatalogError::Duplicate {
                    kind: "phone image",
                    name: im.image_id.clone(),
                });
            }
        }
        let labels: HashSet<&str> = self
            .phone_images
            .iter()
            .map(|im| im.image_label.as_str())
            .collect();
        let mut seen = HashSet::new();
        for pm in &self.phone_models {
            if pm.phone_model_name.is_empty() {
                return Err(CatalogError::EmptyName {
                    kind: "phone model",
                });
            }
            if !seen.insert(pm.phone_model_name.as_str()) {
                return Err(CatalogError::Duplicate {
                    kind: "phone model",
                    name: pm.phone_model_name.clone(),
                });
            }
            if self.server_model(&pm.server_model_name).is_none() {
                return Err(CatalogError::UnknownServerModel {
                    phone_model: pm.phone_model_name.clone(),
                    server_model: pm.server_model_name.clone(),
                });
            }
            if !labels.contains(pm.image_label.as_str()) {
                return Err(CatalogError::UnknownImageLabel {
                    phone_model: pm.phone_model_name.clone(),
                    image_label: pm.image_label.clone(),
                });
            }
        }
        Ok(self)
    }

    /// The server model with the given name.
    pub fn server_model(&self, name: &str) -> Option<&ServerModel> {
        self.server_models
            .iter()
            .find(|m| m.server_model_name == name)
    }

    /// The phone model with the given name.
    pub fn phone_model(&self, name: &str) -> Option<&PhoneModel> {
        self.phone_models
            .iter()
            .find(|m| m.phone_model_name == name)
    }

    /// The phone image with the given id.
    pub fn phone_image(&self, id: &str) -> Option<&PhoneImage> {
        self.phone_images.iter().find(|i| i.image_id == id)
    }

    /// The phone models that run on the given server model.
    pub fn phone_models_of(&self, server_model: &str) -> Vec<&PhoneModel> {
        self.phone_models
            .iter()
            .filter(|m| m.server_model_name == server_model)
            .collect()
    }

    /// The images carrying the given label.
    pub fn phone_images_with_label(&self, image_label: &str) -> Vec<&PhoneImage> {
        self.phone_images
            .iter()
            .filter(|i| i.image_label == image_label)
            .collect()
    }

    /// Whether the image exists and its label fits the phone model.
    pub fn image_fits(&self, image_id: &str, phone_model: &str) -> bool {
        match (self.phone_image(image_id), self.phone_model(phone_model)) {
            (Some(image), Some(model)) => image.image_label == model.image_label,
            _ => false,
        }
    }

    /// Whether a server of model `from` may change to model `to`: both exist,
    /// differ, and belong to the same family (generation).
    pub fn can_change_server_model(&self, from: &str, to: &str) -> bool {
        match (self.server_model(from), self.server_model(to)) {
            (Some(a), Some(b)) => {
                a.server_model_name != b.server_model_name && a.family == b.family
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn builtin_json() -> Value {
        serde_json::to_value(Catalog::builtin()).unwrap()
    }

    #[test]
    fn builtin_is_consistent() {
        let c = Catalog::builtin();
        assert_eq!(c.server_models.len(), 6);
        assert!(c.phone_models.len() >= 14);
        for pm in &c.phone_models {
            let sm = c.server_model(&pm.server_model_name).expect("server model");
            assert_eq!(sm.product_type, pm.product_type, "{}", pm.phone_model_name);
            assert!(
                !c.phone_images_with_label(&pm.image_label).is_empty(),
                "{}",
                pm.phone_model_name
            );
            assert_eq!(pm.fps, pm.render_fps.to_string());
            assert_eq!(pm.spec_code, pm.phone_model_name);
            assert!(serde_json::from_str::<Value>(&pm.extend_spec).is_ok());
        }
        for sm in &c.server_models {
            assert!(!c.phone_models_of(&sm.server_model_name).is_empty());
            assert_eq!(sm.family, family_of(&sm.server_model_name));
        }
        for im in &c.phone_images {
            assert!(is_image_id(&im.image_id));
            assert!(im.sdk >= 24 && !im.android_version.is_empty());
        }
        // A round trip through the wire shape is accepted again.
        let again = Catalog::from_json_str(&builtin_json().to_string()).unwrap();
        assert_eq!(again.server_models.len(), c.server_models.len());
        assert_eq!(
            again
                .server_model("physical.kg1.4xlarge.cg")
                .unwrap()
                .family,
            "kg1"
        );
    }

    #[test]
    fn appendix_values() {
        let c = Catalog::builtin();
        let sm = c.server_model("physical.rx1.xlarge").unwrap();
        assert_eq!(
            (sm.cpu, sm.memory, sm.server_type.as_str()),
            (64, 256, "Hi1616")
        );
        assert_eq!(sm.extend_spec.disk, "2*1.2T SAS + 800G SSD");
        assert_eq!(
            sm.extend_spec.bms_flavor,
            "physical.rg1.xlarge.cph.ondemand"
        );
        assert_eq!(sm.family, "rx1");
        let sm = c.server_model("physical.rx3.32xlarge.4").unwrap();
        assert_eq!((sm.cpu, sm.memory), (128, 512));

        let pm = c.phone_model("rc2.pro_max").unwrap();
        assert_eq!(pm.phone_capacity, 20);
        assert_eq!((pm.cpu, pm.memory), (20, 32 * 1024));
        assert_eq!((pm.resolution.as_str(), pm.render_fps), ("1080x1920", 30));
        assert_eq!(pm.server_model_name, "physical.rx2.32xlarge.4");

        let pm = c.phone_model("rx1.cp.c60.d32.e1v1.qemu").unwrap();
        assert_eq!((pm.cpu, pm.memory, pm.disk), (2, 3072, 32));
        assert_eq!(pm.image_label, "qemu_phone");

        let im = c.phone_image("20032120200330a20b000eae5b8c01e6").unwrap();
        assert_eq!(
            (im.os_name.as_str(), im.image_label.as_str()),
            ("AOSP7.1.1", "cloud_phone")
        );
        assert!(c.image_fits("20032120200330a20b000eae5b8c01e6", "rx1.cp.c60.d10.e1v1"));
        assert!(!c.image_fits(
            "20032120200330a20b000eae5b8c01e6",
            "rx1.cp.c60.d32.e1v1.qemu"
        ));
        // The 5.1.4 request example: a kg1 server with this image.
        assert!(c.image_fits("20060220200717f201120a2300000e91", "kg1.cp.c20.d64SSD.e1v1"));
    }

    #[test]
    fn change_server_model_stays_in_family() {
        let c = Catalog::builtin();
        assert!(!c.can_change_server_model("physical.rx1.xlarge", "physical.rx2.32xlarge.4"));
        assert!(!c.can_change_server_model("physical.rx1.xlarge", "physical.rx1.xlarge"));
        assert!(c.can_change_server_model("physical.rx1.xlarge", "physical.rx1.xlarge.cg"));
        assert!(c.can_change_server_model("physical.kg1.4xlarge.cg", "physical.kg1.4xlarge.cp"));
        assert!(!c.can_change_server_model("physical.kg1.4xlarge.cp", "physical.rx3.32xlarge.4"));
        assert!(!c.can_change_server_model("physical.rx1.xlarge", "physical.nope"));
    }

    #[test]
    fn wire_shape_hides_internal_fields() {
        let v = builtin_json();
        let sm = &v["server_models"][0];
        assert!(sm.get("family").is_none() && sm.get("spec_zh").is_none());
        assert!(sm["extend_spec"].get("os_volume").is_some());
        let im = &v["phone_images"][0];
        assert!(im.get("sdk").is_none() && im.get("android_version").is_none());
        assert!(im.get("is_support_encrypt").is_some());
        let pm = &v["phone_models"][0];
        for f in [
            "server_model_name",
            "phone_model_name",
            "status",
            "cpu",
            "memory",
            "disk",
            "resolution",
            "extend_spec",
            "spec_code",
            "phone_capacity",
            "image_label",
            "product_type",
            "phone_model_version",
            "dpi",
            "fps",
            "volume_mode",
            "render_fps",
            "stream_fps",
        ] {
            assert!(pm.get(f).is_some(), "{f}");
        }
    }

    #[test]
    fn rejects_unknown_server_model() {
        let mut v = builtin_json();
        v["phone_models"][0]["server_model_name"] = json!("physical.zz9.huge");
        match Catalog::from_json_str(&v.to_string()) {
            Err(CatalogError::UnknownServerModel { server_model, .. }) => {
                assert_eq!(server_model, "physical.zz9.huge")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_image_label() {
        let mut v = builtin_json();
        v["phone_models"][0]["image_label"] = json!("no_such_label");
        assert!(matches!(
            Catalog::from_json_str(&v.to_string()),
            Err(CatalogError::UnknownImageLabel { .. })
        ));
    }

    #[test]
    fn rejects_duplicates_bad_ids_and_bad_shape() {
        let mut v = builtin_json();
        let first = v["server_models"][0].clone();
        v["server_models"].as_array_mut().unwrap().push(first);
        assert!(matches!(
            Catalog::from_json_str(&v.to_string()),
            Err(CatalogError::Duplicate { .. })
        ));

        let mut v = builtin_json();
        v["phone_images"][0]["image_id"] = json!("ABC");
        assert!(matches!(
            Catalog::from_json_str(&v.to_string()),
            Err(CatalogError::InvalidImageId(_))
        ));

        assert!(matches!(
            Catalog::from_json_str(r#"{"server_models": []}"#),
            Err(CatalogError::Json(_))
        ));
        let empty = Catalog::from_json_str(
            r#"{"server_models": [], "phone_models": [], "phone_images": [], "note": 1}"#,
        )
        .unwrap();
        assert!(empty.server_models.is_empty());
    }

    #[test]
    fn family_names() {
        assert_eq!(family_of("physical.rx1.xlarge"), "rx1");
        assert_eq!(family_of("physical.kg1.4xlarge.cp"), "kg1");
        assert_eq!(family_of("custom"), "custom");
    }
}
