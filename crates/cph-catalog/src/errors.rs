//! Error codes of section 7.2 ("错误码").

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

const ERRORS_JSON: &str = include_str!("../data/errors.json");

/// One documented error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDef {
    /// HTTP status the error is returned with.
    pub status: u16,
    /// Error code, e.g. `CPS.0002`.
    pub code: String,
    /// English message (`error_msg` on the wire).
    pub message: String,
    /// Chinese description.
    pub message_zh: String,
    /// Chinese remedy ("处理措施").
    pub action_zh: String,
}

static ERRORS: LazyLock<Vec<ErrorDef>> =
    LazyLock::new(|| serde_json::from_str(ERRORS_JSON).expect("embedded errors.json is valid"));

static ERROR_INDEX: LazyLock<HashMap<&'static str, &'static ErrorDef>> =
    LazyLock::new(|| ERRORS.iter().map(|e| (e.code.as_str(), e)).collect());

/// All documented error codes, in the order of the reference.
pub fn errors() -> &'static [ErrorDef] {
    &ERRORS
}

/// The error with the given code (`CPS.0002`), if documented.
pub fn error(code: &str) -> Option<&'static ErrorDef> {
    ERROR_INDEX.get(code).copied()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn all_codes_present_and_unique() {
        // Section 7.2 of document version 18 lists 275 codes.
        assert_eq!(errors().len(), 275);
        let codes: HashSet<&str> = errors().iter().map(|e| e.code.as_str()).collect();
        assert_eq!(codes.len(), errors().len());
        for e in errors() {
            assert!(
                e.code.starts_with("CPS.") && e.code.len() == 8,
                "{}",
                e.code
            );
            assert!(matches!(e.status, 400 | 403 | 404 | 500), "{}", e.code);
            assert!(!e.message.is_empty() && !e.message_zh.is_empty() && !e.action_zh.is_empty());
            assert_eq!(e.message.trim(), e.message, "{}", e.code);
            assert!(!e.message.contains("  "), "{}", e.code);
            assert!(!e.message.contains('\n'), "{}", e.code);
        }
    }

    #[test]
    fn status_counts() {
        let count = |s| errors().iter().filter(|e| e.status == s).count();
        assert_eq!(count(400), 256);
        assert_eq!(count(403), 4);
        assert_eq!(count(404), 14);
        assert_eq!(count(500), 1);
    }

    #[test]
    fn spot_checks() {
        let e = error("CPS.0002").unwrap();
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "Parameter: offset or limit is invalid.");
        assert_eq!(e.message_zh, "参数错误：分页参数非法。");
        assert_eq!(e.action_zh, "请填写正确的参数。");

        let e = error("CPS.0001").unwrap();
        assert_eq!(e.status, 403);
        assert_eq!(e.message, "No permission to request resources.");
        assert_eq!(
            e.action_zh,
            "请申请IAM权限，或将Token的作用域设置为project，再重新尝试。"
        );

        let e = error("CPS.0005").unwrap();
        assert_eq!(e.status, 404);
        assert_eq!(e.message, "Phone is not found.");
        assert_eq!(e.message_zh, "您查找的云手机不存在。");

        let e = error("CPS.0003").unwrap();
        assert_eq!(
            (e.status, e.message.as_str()),
            (500, "Service internal error.")
        );

        let e = error("CPS.0306").unwrap();
        assert_eq!(
            e.message,
            "Parameter: Key start with _sys_ is reserved to system user."
        );
        assert_eq!(e.message_zh, "标签键不支持_sys_开头。");

        let e = error("CPS.0321").unwrap();
        assert_eq!(e.message, "Required volumeSize exceeded availVolumeSize.");

        let e = error("CPS.1102").unwrap();
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "Server status is not allow to change server.");
        assert_eq!(e.message_zh, "服务器状态不允许切换服务器。");
        assert_eq!(e.action_zh, "确认服务器状态后再尝试。");
    }

    #[test]
    fn wrapped_identifiers_are_rejoined() {
        let msg = |c| error(c).unwrap().message.as_str();
        assert_eq!(msg("CPS.0027"), "Parameter: phone_model_name is empty.");
        assert_eq!(
            msg("CPS.0034"),
            "Parameter: band_width_share_type is invalid."
        );
        assert_eq!(
            msg("CPS.0070"),
            "Parameter: Property [phone_brand] is invalid."
        );
        assert_eq!(msg("CPS.0093"), "Parameter: internet_accessible is empty.");
        assert_eq!(
            msg("CPS.0127"),
            "Parameter: Property [hide_navigate] is invalid."
        );
        assert_eq!(
            msg("CPS.0051"),
            "The bandwidth share type of WHOLE is exist."
        );
        assert_eq!(
            msg("CPS.0256"),
            "Servers you want can only be requested by using the POST \
             /v2/{project_id}/cloud-phone/servers URI."
        );
        assert_eq!(
            error("CPS.0070").unwrap().message_zh,
            "参数错误：云手机属性“phone_brand”无效。"
        );
        assert_eq!(
            error("CPS.0238").unwrap().action_zh,
            "请检查 public_ip 结构体。"
        );
    }

    #[test]
    fn unknown_code() {
        assert!(error("CPS.9999").is_none());
        assert!(error("").is_none());
    }
}
