//! IAM actions documented in section 6.1 ("权限及授权项说明").

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

const ACTIONS_JSON: &str = include_str!("../data/actions.json");

/// An IAM action and the API it authorises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDef {
    /// Action name, e.g. `cph:servers:create`.
    pub action: String,
    /// HTTP method of the API.
    pub method: String,
    /// Path template of the API, e.g. `/v2/{project_id}/cloud-phone/servers`.
    pub path: String,
    /// The "权限" column.
    pub permission_zh: String,
    /// Title of the table the action is listed in.
    pub category_zh: String,
    /// Can be granted within an IAM project.
    pub iam_project: bool,
    /// Can be granted within an enterprise project.
    pub enterprise_project: bool,
}

#[derive(Deserialize)]
struct ActionsFile {
    actions: Vec<ActionDef>,
}

static ACTIONS: LazyLock<Vec<ActionDef>> = LazyLock::new(|| {
    serde_json::from_str::<ActionsFile>(ACTIONS_JSON)
        .expect("embedded actions.json is valid")
        .actions
});

/// The documented actions, in the order of the reference.
pub fn actions() -> &'static [ActionDef] {
    &ACTIONS
}

/// The documented action with the given name.
pub fn action(name: &str) -> Option<&'static ActionDef> {
    ACTIONS.iter().find(|a| a.action == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_actions() {
        let got: Vec<(&str, &str, &str)> = actions()
            .iter()
            .map(|a| (a.action.as_str(), a.method.as_str(), a.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "cph:servers:create",
                    "POST",
                    "/v2/{project_id}/cloud-phone/servers"
                ),
                (
                    "cph:servers:list",
                    "GET",
                    "/v1/{project_id}/cloud-phone/servers"
                ),
                (
                    "cph:phones:list",
                    "GET",
                    "/v1/{project_id}/cloud-phone/phones"
                ),
            ]
        );
        let a = action("cph:servers:create").unwrap();
        assert!(a.iam_project && !a.enterprise_project);
        assert!(action("cph:servers:delete").is_none());
    }
}
