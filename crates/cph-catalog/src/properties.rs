//! Phone properties of appendix A.1 ("云手机属性列表").
//!
//! The `property` member of the batch-restart, batch-reset and
//! batch-update-property requests is a JSON object (sent as a string) whose
//! members are the properties listed here.  Integer properties take a JSON
//! integer, String properties a JSON string.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const PROPERTIES_JSON: &str = include_str!("../data/phone_properties.json");

/// Parameter type stated by the appendix ("参数类型").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// `Integer`: the value is a JSON integer.
    Integer,
    /// `String`: the value is a JSON string.
    String,
}

/// A class of characters named by a constraint ("数字", "大小写字母", "中文", "空格").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CharClass {
    /// ASCII decimal digits `0-9`.
    Digit,
    /// ASCII letters `a-zA-Z`.
    Alpha,
    /// CJK ideographs, U+3400..=U+4DBF and U+4E00..=U+9FFF.
    Han,
    /// The ASCII space.
    Space,
}

impl CharClass {
    fn contains(self, c: char) -> bool {
        match self {
            CharClass::Digit => c.is_ascii_digit(),
            CharClass::Alpha => c.is_ascii_alphabetic(),
            CharClass::Han => matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'),
            CharClass::Space => c == ' ',
        }
    }
}

/// One phone property with the rules the appendix states for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyDef {
    /// Property name, e.g. `com.cph.mainkeys`.
    pub key: String,
    /// JSON type of the value.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// The "说明" column.
    pub description_zh: String,
    /// The "约束" column.
    pub constraint_zh: String,
    /// Default value stated by the description ("默认为..."), typed like the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Marked "已弃用"; only the type is checked.
    #[serde(default)]
    pub deprecated: bool,
    /// Takes effect only after the phone restarts.
    #[serde(default)]
    pub needs_restart: bool,
    /// Only effective on cloud-game phones.
    #[serde(default)]
    pub game_only: bool,
    /// The only accepted values.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<Value>>,
    /// Minimum length in characters (1 for "非空").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_len: Option<usize>,
    /// Maximum length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// Allowed character classes; with `charset_extra` the whole allowed set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<Vec<CharClass>>,
    /// Allowed characters besides `charset`.
    #[serde(default)]
    pub charset_extra: String,
    /// The value must start with one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefixes: Vec<String>,
    /// The same rule as a regular expression (Rust regex syntax), for reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Inclusive numeric lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Inclusive numeric upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// A String property whose value is a decimal integer.
    #[serde(default)]
    pub numeric_string: bool,
    /// Values accepted besides the range (e.g. `"-1"`: no limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_values: Vec<Value>,
    /// Phone models that do not support the property.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported_phone_models: Vec<String>,
}

impl PropertyDef {
    /// Checks a value against the type, enumeration, length, character set,
    /// prefix and range rules of the appendix.  The error says what is wrong.
    pub fn validate(&self, value: &Value) -> Result<(), String> {
        let key = &self.key;
        match self.value_type {
            ValueType::Integer => {
                if !(value.is_i64() || value.is_u64()) {
                    return Err(format!("property {key} must be an integer"));
                }
            }
            ValueType::String => {
                if !value.is_string() {
                    return Err(format!("property {key} must be a string"));
                }
            }
        }
        if self.deprecated {
            return Ok(());
        }
        if self.extra_values.iter().any(|v| same_value(v, value)) {
            return Ok(());
        }
        if let Some(allowed) = &self.enum_values
            && !allowed.iter().any(|v| same_value(v, value))
        {
            let list: Vec<String> = allowed.iter().map(display_value).collect();
            return Err(format!("property {key} must be one of {}", list.join(", ")));
        }
        if let Some(s) = value.as_str() {
            self.check_text(s)?;
        }
        if self.min.is_some() || self.max.is_some() {
            let n = match value {
                Value::String(s) => s
                    .parse::<i64>()
                    .map_err(|_| format!("property {key} must be a decimal integer"))?,
                other => other
                    .as_i64()
                    .ok_or_else(|| format!("property {key} is out of range"))?,
            };
            if self.min.is_some_and(|min| n < min) || self.max.is_some_and(|max| n > max) {
                return Err(format!(
                    "property {key} must be between {} and {}",
                    self.min.map_or_else(|| "-".to_string(), |v| v.to_string()),
                    self.max.map_or_else(|| "-".to_string(), |v| v.to_string()),
                ));
            }
        }
        Ok(())
    }

    fn check_text(&self, s: &str) -> Result<(), String> {
        let key = &self.key;
        let len = s.chars().count();
        if let Some(min) = self.min_len
            && len < min
        {
            return Err(if min == 1 {
                format!("property {key} must not be empty")
            } else {
                format!("property {key} must have at least {min} characters")
            });
        }
        if let Some(max) = self.max_len
            && len > max
        {
            return Err(format!("property {key} must have at most {max} characters"));
        }
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|p| s.starts_with(p.as_str())) {
            return Err(format!(
                "property {key} must start with {}",
                self.prefixes.join(" or ")
            ));
        }
        if let Some(classes) = &self.charset
            && let Some(bad) = s.chars().find(|&c| {
                !classes.iter().any(|k| k.contains(c)) && !self.charset_extra.contains(c)
            })
        {
            return Err(format!(
                "property {key} contains an invalid character {bad:?}"
            ));
        }
        Ok(())
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
struct PropertiesFile {
    properties: Vec<PropertyDef>,
}

static PROPERTIES: LazyLock<Vec<PropertyDef>> = LazyLock::new(|| {
    serde_json::from_str::<PropertiesFile>(PROPERTIES_JSON)
        .expect("embedded phone_properties.json is valid")
        .properties
});

static PROPERTY_INDEX: LazyLock<HashMap<&'static str, &'static PropertyDef>> =
    LazyLock::new(|| PROPERTIES.iter().map(|p| (p.key.as_str(), p)).collect());

/// All properties of appendix A.1, in the order of the appendix.
pub fn phone_properties() -> &'static [PropertyDef] {
    &PROPERTIES
}

/// The property with the given key, if the appendix lists it.
pub fn phone_property(key: &str) -> Option<&'static PropertyDef> {
    PROPERTY_INDEX.get(key).copied()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(key: &str) -> &'static PropertyDef {
        phone_property(key).unwrap_or_else(|| panic!("{key} missing"))
    }

    fn ok(key: &str, v: Value) {
        assert_eq!(p(key).validate(&v), Ok(()), "{key} = {v}");
    }

    fn bad(key: &str, v: Value) {
        assert!(
            p(key).validate(&v).is_err(),
            "{key} = {v} should be rejected"
        );
    }

    #[test]
    fn table_is_complete() {
        assert_eq!(phone_properties().len(), 36);
        let restart: Vec<&str> = phone_properties()
            .iter()
            .filter(|p| p.needs_restart)
            .map(|p| p.key.as_str())
            .collect();
        assert!(restart.contains(&"com.cph.mainkeys"));
        assert!(restart.contains(&"persist.sys.locale"));
        assert!(!p("ro.install.auto").needs_restart);
        assert!(!p("sys.prop.writeimsi").needs_restart);
        assert!(p("ro.product.name").deprecated);
        assert!(p("ro.com.cph.cloud_app_engine").game_only);
        assert!(phone_property("no.such.key").is_none());
    }

    #[test]
    fn defaults_fit_their_own_rules() {
        for prop in phone_properties() {
            if let Some(d) = &prop.default {
                assert_eq!(prop.validate(d), Ok(()), "default of {}", prop.key);
            }
        }
    }

    #[test]
    fn integer_flags() {
        ok("com.cph.mainkeys", json!(0));
        ok("com.cph.mainkeys", json!(1));
        bad("com.cph.mainkeys", json!(2));
        bad("com.cph.mainkeys", json!("1"));
        bad("com.cph.mainkeys", json!(1.0));
        bad("com.cph.mainkeys", json!(true));
        ok("ro.com.cph.non_root", json!(0));
        bad("ro.com.cph.non_root", json!(-1));
        ok("qemu.hw.mainkeys", json!(1)); // deprecated: type only
        bad("qemu.hw.mainkeys", json!("1"));
    }

    #[test]
    fn string_enums() {
        ok("ro.horizontal.screen", json!("1"));
        bad("ro.horizontal.screen", json!(1));
        bad("ro.horizontal.screen", json!("2"));
        ok("ro.com.cph.cloud_app_engine", json!("0"));
        bad("ro.com.cph.cloud_app_engine", json!(""));
    }

    #[test]
    fn digits_and_lengths() {
        ok("sys.prop.writeimsi", json!("460021624617113"));
        bad("sys.prop.writeimsi", json!("4600216246171130")); // 16 > 15
        bad("sys.prop.writeimsi", json!("46002162461711a"));
        bad("sys.prop.writeimsi", json!(460021624617113u64));
        ok("sys.prop.writephonenum", json!("13666666666"));
        ok("sys.prop.writephonenum", json!("12345678901234567890"));
        bad("sys.prop.writephonenum", json!("123456789012345678901"));
        bad("sys.prop.writephonenum", json!("+8613666666666"));
        ok("com.cph.cg.heartbeat_interval", json!("10"));
        bad("com.cph.cg.heartbeat_interval", json!(""));
        bad("com.cph.cg.heartbeat_interval", json!("12345678901"));
    }

    #[test]
    fn character_sets() {
        ok("sys.prop.writewifissid", json!("test_wifi"));
        ok("sys.prop.writewifissid", json!("a-b_c.d/e"));
        bad("sys.prop.writewifissid", json!(""));
        bad("sys.prop.writewifissid", json!("my wifi"));
        bad("sys.prop.writewifissid", json!("x".repeat(65)));
        ok("sys.prop.writewifissid", json!("x".repeat(64)));

        ok("persist.sys.locale", json!("zh-Hans-CN"));
        bad("persist.sys.locale", json!("zh_CN"));
        bad("persist.sys.locale", json!(""));

        ok(
            "com.cph.cam_local_pic_path",
            json!("/sdcard/DCIM/照片 1@#.jpg"),
        );
        bad("com.cph.cam_local_pic_path", json!("/sdcard/a,b.jpg"));
        ok("com.cph.cam_local_pic_path", json!("图".repeat(90)));
        bad("com.cph.cam_local_pic_path", json!("图".repeat(91)));

        ok(
            "gsm.sim.operator.alpha",
            json!("China Mobile (CMCC), 中国移动\\1"),
        );
        bad("gsm.sim.operator.alpha", json!("CMCC!"));
        ok("gsm.sim.operator.iso-country", json!("cn,us"));
        bad("gsm.sim.operator.iso-country", json!("cn1"));
        bad("gsm.sim.operator.iso-country", json!("abcdefghijk"));
        ok("gsm.sim.operator.numeric", json!("46000"));
        bad("gsm.sim.operator.numeric", json!("460-00"));
    }

    #[test]
    fn numeric_ranges() {
        ok("com.cph.bandwidth_limit", json!("1"));
        ok("com.cph.bandwidth_limit", json!("99999999"));
        ok("com.cph.bandwidth_limit", json!("-1"));
        bad("com.cph.bandwidth_limit", json!("0"));
        bad("com.cph.bandwidth_limit", json!("100000000"));
        bad("com.cph.bandwidth_limit", json!("-2"));
        bad("com.cph.bandwidth_limit", json!(1000));
        bad("com.cph.bandwidth_limit", json!("1e3"));
        ok("com.cph.cg.app_port", json!("10000"));
        ok("com.cph.cg.h5_port", json!("11000"));
        bad("com.cph.cg.app_port", json!("9999"));
        bad("com.cph.cg.h5_port", json!("11001"));
        bad("com.cph.cg.app_port", json!(10500));
    }

    #[test]
    fn urls() {
        ok(
            "com.cph.cg.heartbeat_url",
            json!("https://game.example.com:8443/hb"),
        );
        ok("com.cph.cg.sign_check_url", json!("http://10.0.0.1/check"));
        bad("com.cph.cg.sign_check_url", json!("ftp://10.0.0.1/check"));
        bad(
            "com.cph.cg.event_notify_url",
            json!("https://example.com/cb?x=1"),
        );
        let long = format!("https://{}", "a".repeat(249));
        assert_eq!(long.len(), 257);
        bad("com.cph.cg.event_notify_url", json!(long));
        ok("com.cph.cg.event_notify_url", json!(&long[..256]));
    }
}
