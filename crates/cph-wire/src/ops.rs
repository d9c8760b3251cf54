//! Table of the operations in scope: SDK operation name, HTTP method, path template and the
//! authorization action checked for it.

/// One operation of the API surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo {
    /// SDK operation name, e.g. `ListCloudPhones`.
    pub name: &'static str,
    /// HTTP method in upper case.
    pub method: &'static str,
    /// Path template with `{param}` placeholders, e.g. `/v1/{project_id}/cloud-phone/phones`.
    pub path: &'static str,
    /// Authorization action, e.g. `cph:phones:list`.
    pub action: &'static str,
}

const fn op(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    action: &'static str,
) -> OpInfo {
    OpInfo {
        name,
        method,
        path,
        action,
    }
}

/// All operations in scope. Several operations share one method and path and are told apart by
/// the request body: `phones/commands` (`command`), `phones/share-files` (`file_paths` vs
/// `bucket_name`/`object_path`) and `tags/action` (`action`).
#[rustfmt::skip]
pub const OPERATIONS: &[OpInfo] = &[
    // Servers
    op("ListCloudPhoneServers", "GET", "/v1/{project_id}/cloud-phone/servers", "cph:servers:list"),
    op("ShowCloudPhoneServerDetail", "GET", "/v1/{project_id}/cloud-phone/servers/{server_id}", "cph:servers:get"),
    op("CreateNet2CloudPhoneServer", "POST", "/v2/{project_id}/cloud-phone/servers", "cph:servers:create"),
    op("RestartCloudPhoneServer", "POST", "/v1/{project_id}/cloud-phone/servers/batch-restart", "cph:servers:restart"),
    op("ChangeCloudPhoneServer", "POST", "/v2/{project_id}/cloud-phone/servers/{server_id}/change", "cph:servers:change"),
    op("ChangeCloudPhoneServerModel", "POST", "/v1/{project_id}/cloud-phone/servers/change-server-model", "cph:servers:changeModel"),
    op("UpdateServerName", "PUT", "/v1/{project_id}/cloud-phone/servers/{server_id}", "cph:servers:update"),
    op("UpdateKeypair", "PUT", "/v1/{project_id}/cloud-phone/servers/open-access", "cph:servers:updateKeypair"),
    // Shared storage and apps
    op("PushShareFiles", "POST", "/v1/{project_id}/cloud-phone/phones/share-files", "cph:servers:pushShareFiles"),
    op("DeleteShareFiles", "POST", "/v1/{project_id}/cloud-phone/phones/share-files", "cph:servers:deleteShareFiles"),
    op("ListShareFiles", "GET", "/v1/{project_id}/cloud-phone/servers/share-files", "cph:servers:listShareFiles"),
    op("PushShareApps", "POST", "/v1/{project_id}/cloud-phone/phones/share-apps", "cph:servers:pushShareApps"),
    op("DeleteShareApps", "DELETE", "/v1/{project_id}/cloud-phone/phones/share-apps", "cph:servers:deleteShareApps"),
    // Bandwidths
    op("ShowBandwidthDetail", "GET", "/v1/{project_id}/cloud-phone/bandwidths", "cph:bandwidths:list"),
    op("UpdateBandwidth", "PUT", "/v1/{project_id}/cloud-phone/bandwidths/{band_width_id}", "cph:bandwidths:update"),
    // Phones
    op("ListCloudPhones", "GET", "/v1/{project_id}/cloud-phone/phones", "cph:phones:list"),
    op("ShowCloudPhoneDetail", "GET", "/v1/{project_id}/cloud-phone/phones/{phone_id}", "cph:phones:get"),
    op("ResetCloudPhone", "POST", "/v1/{project_id}/cloud-phone/phones/batch-reset", "cph:phones:reset"),
    op("RestartCloudPhone", "POST", "/v1/{project_id}/cloud-phone/phones/batch-restart", "cph:phones:restart"),
    op("StopCloudPhone", "POST", "/v1/{project_id}/cloud-phone/phones/batch-stop", "cph:phones:stop"),
    op("UpdatePhoneName", "PUT", "/v1/{project_id}/cloud-phone/phones/{phone_id}", "cph:phones:update"),
    op("UpdateCloudPhoneProperty", "POST", "/v1/{project_id}/cloud-phone/phones/batch-update-property", "cph:phones:updateProperty"),
    op("BatchExportCloudPhoneData", "POST", "/v1/{project_id}/cloud-phone/phones/batch-storage", "cph:phones:exportData"),
    op("BatchImportCloudPhoneData", "POST", "/v1/{project_id}/cloud-phone/phones/batch-restore", "cph:phones:importData"),
    op("ImportTraffic", "POST", "/v1/{project_id}/cloud-phone/phones-traffic", "cph:phones:importTraffic"),
    op("BatchShowPhoneConnectInfos", "POST", "/v1/{project_id}/cloud-phone/phones/batch-connection", "cph:phones:getConnectInfo"),
    // Catalog
    op("ListCloudPhoneServerModels", "GET", "/v1/{project_id}/cloud-phone/server-models", "cph:serverModels:list"),
    op("ListCloudPhoneModels", "GET", "/v1/{project_id}/cloud-phone/phone-models", "cph:phoneModels:list"),
    op("ListCloudPhoneImages", "GET", "/v1/{project_id}/cloud-phone/phone-images", "cph:phoneImages:list"),
    // Jobs
    op("ShowJob", "GET", "/v1/{project_id}/cloud-phone/jobs/{job_id}", "cph:jobs:get"),
    op("ListJobs", "GET", "/v1/{project_id}/cloud-phone/jobs", "cph:jobs:list"),
    // Encode servers
    op("ListEncodeServers", "GET", "/v1/{project_id}/cloud-phone/encode-servers", "cph:encodeServers:list"),
    op("RestartEncodeServer", "POST", "/v1/{project_id}/cloud-phone/encode-servers/batch-restart", "cph:encodeServers:restart"),
    // ADB commands
    op("PushFile", "POST", "/v1/{project_id}/cloud-phone/phones/commands", "cph:phones:pushFile"),
    op("InstallApk", "POST", "/v1/{project_id}/cloud-phone/phones/commands", "cph:phones:installApk"),
    op("UninstallApk", "POST", "/v1/{project_id}/cloud-phone/phones/commands", "cph:phones:uninstallApk"),
    op("RunShellCommand", "POST", "/v1/{project_id}/cloud-phone/phones/commands", "cph:phones:runCommand"),
    op("RunSyncCommand", "POST", "/v1/{project_id}/cloud-phone/phones/sync-commands", "cph:phones:runSyncCommand"),
    // Tags
    op("ListProjectTags", "GET", "/v1/{project_id}/{resource_type}/tags", "cph:projectTags:list"),
    op("ListResourceTags", "GET", "/v1/{project_id}/{resource_type}/{resource_id}/tags", "cph:resourceTags:list"),
    op("ListResourceInstances", "POST", "/v1/{project_id}/{resource_type}/resource_instances/action", "cph:resourceInstances:list"),
    op("BatchCreateTags", "POST", "/v1/{project_id}/{resource_type}/{resource_id}/tags/action", "cph:resourceTags:create"),
    op("BatchDeleteTags", "POST", "/v1/{project_id}/{resource_type}/{resource_id}/tags/action", "cph:resourceTags:delete"),
    // IAM
    op("KeystoneCreateUserTokenByPassword", "POST", "/v3/auth/tokens", "iam:tokens:create"),
    op("KeystoneListProjects", "GET", "/v3/projects", "iam:projects:list"),
    // VPC v1
    op("CreateVpc", "POST", "/v1/{project_id}/vpcs", "vpc:vpcs:create"),
    op("ListVpcs", "GET", "/v1/{project_id}/vpcs", "vpc:vpcs:list"),
    op("ShowVpc", "GET", "/v1/{project_id}/vpcs/{vpc_id}", "vpc:vpcs:get"),
    op("DeleteVpc", "DELETE", "/v1/{project_id}/vpcs/{vpc_id}", "vpc:vpcs:delete"),
    op("CreateSubnet", "POST", "/v1/{project_id}/subnets", "vpc:subnets:create"),
    op("ListSubnets", "GET", "/v1/{project_id}/subnets", "vpc:subnets:list"),
    op("ShowSubnet", "GET", "/v1/{project_id}/subnets/{subnet_id}", "vpc:subnets:get"),
    op("DeleteSubnet", "DELETE", "/v1/{project_id}/vpcs/{vpc_id}/subnets/{subnet_id}", "vpc:subnets:delete"),
    // Nova key pairs
    op("NovaCreateKeypair", "POST", "/v2.1/{project_id}/os-keypairs", "ecs:serverKeypairs:create"),
    op("NovaListKeypairs", "GET", "/v2.1/{project_id}/os-keypairs", "ecs:serverKeypairs:list"),
    op("NovaShowKeypair", "GET", "/v2.1/{project_id}/os-keypairs/{keypair_name}", "ecs:serverKeypairs:get"),
    op("NovaDeleteKeypair", "DELETE", "/v2.1/{project_id}/os-keypairs/{keypair_name}", "ecs:serverKeypairs:delete"),
];

/// Looks up an operation by its SDK name.
pub fn by_name(name: &str) -> Option<&'static OpInfo> {
    OPERATIONS.iter().find(|o| o.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_and_actions_are_unique() {
        let names: BTreeSet<_> = OPERATIONS.iter().map(|o| o.name).collect();
        let actions: BTreeSet<_> = OPERATIONS.iter().map(|o| o.action).collect();
        assert_eq!(names.len(), OPERATIONS.len());
        assert_eq!(actions.len(), OPERATIONS.len());
    }

    #[test]
    fn counts_per_area() {
        let cph = OPERATIONS
            .iter()
            .filter(|o| o.action.starts_with("cph:"))
            .count();
        // 42 documented operations plus BatchShowPhoneConnectInfos.
        assert_eq!(cph, 43);
        assert_eq!(OPERATIONS.len(), 43 + 2 + 8 + 4);
    }

    #[test]
    fn well_formed() {
        for o in OPERATIONS {
            assert!(
                ["GET", "POST", "PUT", "DELETE"].contains(&o.method),
                "{o:?}"
            );
            assert!(o.path.starts_with('/'), "{o:?}");
            assert_eq!(o.action.split(':').count(), 3, "{o:?}");
        }
        assert_eq!(
            by_name("ListCloudPhones").unwrap().action,
            "cph:phones:list"
        );
        assert!(by_name("Nope").is_none());
    }
}
