//! Wire-format tests: the request/response examples of the API reference round-trip through the
//! types with unchanged JSON types; request bodies reject wrongly typed values and ignore
//! unknown fields; the OpenAPI derives produce the expected names.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cph_wire::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Example round trips
// ---------------------------------------------------------------------------

/// Values whose JSON type in the reference example differs from the SDK model. The SDK type is
/// authoritative: the test converts the example value to the SDK type before parsing and then
/// expects that type in the output.
const SDK_TYPE_FIXES: &[(&str, &str)] = &[
    // Reference example has `"imei": 869287243397729`; the SDK declares `imei: str`.
    ("ShowCloudPhoneDetail.response.json", "/imei"),
];

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/examples")
}

fn load_example(file: &str) -> Value {
    let text = std::fs::read_to_string(examples_dir().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    for (f, pointer) in SDK_TYPE_FIXES {
        if *f == file {
            let slot = value.pointer_mut(pointer).expect("fix pointer");
            assert!(slot.is_number(), "{file}{pointer}: fix no longer needed");
            *slot = Value::String(slot.to_string());
        }
    }
    value
}

/// Checks that every key/value of `example` is present in `out` with the same JSON type and
/// value. A `null` in the example may be absent or `null` in the output.
fn assert_subset(example: &Value, out: &Value, path: &str, errors: &mut Vec<String>) {
    match (example, out) {
        (Value::Object(e), Value::Object(o)) => {
            for (k, v) in e {
                let p = format!("{path}/{k}");
                match o.get(k) {
                    None if v.is_null() => {}
                    None => errors.push(format!("{p}: missing in output")),
                    Some(ov) => assert_subset(v, ov, &p, errors),
                }
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            if e.len() != o.len() {
                errors.push(format!("{path}: array length {} != {}", e.len(), o.len()));
                return;
            }
            for (i, (ev, ov)) in e.iter().zip(o).enumerate() {
                assert_subset(ev, ov, &format!("{path}/{i}"), errors);
            }
        }
        (Value::Null, Value::Null) => {}
        (Value::String(e), Value::String(o)) if e == o => {}
        (Value::Bool(e), Value::Bool(o)) if e == o => {}
        (Value::Number(e), Value::Number(o))
            if e.as_i64() == o.as_i64() && e.as_f64() == o.as_f64() => {}
        _ => errors.push(format!("{path}: example {example} became {out}")),
    }
}

/// Parses the example file into `T` (from text, as the HTTP layer does), re-serializes it and
/// compares.
fn check<T: DeserializeOwned + Serialize>(file: &str) -> Result<(), String> {
    let example = load_example(file);
    let text = serde_json::to_string(&example).unwrap();
    let parsed: T = serde_json::from_str(&text)
        .map_err(|e| format!("{file} as {}: {e}", std::any::type_name::<T>()))?;
    let out = serde_json::to_value(&parsed).unwrap();
    let mut errors = Vec::new();
    assert_subset(&example, &out, "", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{file} as {}: {}",
            std::any::type_name::<T>(),
            errors.join("; ")
        ))
    }
}

type Check = fn(&str) -> Result<(), String>;

/// Every example file with the types it must round-trip through.
const CASES: &[(&str, &[Check])] = &[
    // Servers
    (
        "ListCloudPhoneServers.response.json",
        &[check::<ListCloudPhoneServersResponse>],
    ),
    (
        "ShowCloudPhoneServerDetail.response.json",
        &[check::<ShowCloudPhoneServerDetailResponse>],
    ),
    (
        "CreateNet2CloudPhoneServer.request.json",
        &[check::<CreateNet2CloudPhoneServerRequestBody>],
    ),
    (
        "CreateNet2CloudPhoneServer.response.json",
        &[check::<CreateNet2CloudPhoneServerResponse>],
    ),
    (
        "RestartCloudPhoneServer.request.json",
        &[check::<RestartCloudPhoneServerRequestBody>],
    ),
    (
        "RestartCloudPhoneServer.response.json",
        &[check::<RestartCloudPhoneServerResponse>],
    ),
    (
        "ChangeCloudPhoneServer.request.json",
        &[check::<ChangeCloudPhoneServerRequestBody>],
    ),
    (
        "ChangeCloudPhoneServer.response.json",
        &[check::<ChangeCloudPhoneServerResponse>],
    ),
    (
        "ChangeCloudPhoneServerModel.request.json",
        &[check::<ChangeCloudPhoneServerModelRequestBody>],
    ),
    (
        "ChangeCloudPhoneServerModel.response.json",
        &[check::<ChangeCloudPhoneServerModelResponse>],
    ),
    (
        "UpdateServerName.request.json",
        &[check::<UpdateServerNameRequestBody>],
    ),
    (
        "UpdateServerName.response.json",
        &[check::<UpdateServerNameResponse>],
    ),
    (
        "UpdateKeypair.request.json",
        &[check::<UpdateKeypairRequestBody>],
    ),
    (
        "UpdateKeypair.response.json",
        &[check::<UpdateKeypairResponse>],
    ),
    // Shared storage and apps
    (
        "PushShareFiles.request.json",
        &[check::<PushShareFilesRequestBody>, check::<ShareFilesBody>],
    ),
    (
        "PushShareFiles.response.json",
        &[check::<PushShareFilesResponse>],
    ),
    (
        "DeleteShareFiles.request.json",
        &[
            check::<DeleteShareFilesRequestBody>,
            check::<ShareFilesBody>,
        ],
    ),
    (
        "DeleteShareFiles.response.json",
        &[check::<DeleteShareFilesResponse>],
    ),
    (
        "ListShareFiles.response.json",
        &[check::<ListShareFilesResponse>],
    ),
    (
        "PushShareApps.request.json",
        &[check::<PushShareAppsRequestBody>],
    ),
    (
        "PushShareApps.response.json",
        &[check::<PushShareAppsResponse>],
    ),
    (
        "DeleteShareApps.request.json",
        &[check::<DeleteShareAppsRequestBody>],
    ),
    (
        "DeleteShareApps.response.json",
        &[check::<DeleteShareAppsResponse>],
    ),
    // Bandwidths
    (
        "ShowBandwidthDetail.response.json",
        &[check::<ShowBandwidthDetailResponse>],
    ),
    (
        "UpdateBandwidth.request.json",
        &[check::<UpdateBandwidthRequestBody>],
    ),
    (
        "UpdateBandwidth.response.json",
        &[check::<UpdateBandwidthResponse>],
    ),
    // Phones
    (
        "ListCloudPhones.response.json",
        &[check::<ListCloudPhonesResponse>],
    ),
    (
        "ShowCloudPhoneDetail.response.json",
        &[check::<ShowCloudPhoneDetailResponse>],
    ),
    (
        "ResetCloudPhone.request.json",
        &[check::<ResetCloudPhoneRequestBody>],
    ),
    (
        "ResetCloudPhone.response.json",
        &[check::<ResetCloudPhoneResponse>],
    ),
    (
        "RestartCloudPhone.request.json",
        &[check::<RestartCloudPhoneRequestBody>],
    ),
    (
        "RestartCloudPhone.response.json",
        &[check::<RestartCloudPhoneResponse>],
    ),
    (
        "StopCloudPhone.request.json",
        &[check::<StopCloudPhoneRequestBody>],
    ),
    (
        "StopCloudPhone.response.json",
        &[check::<StopCloudPhoneResponse>],
    ),
    (
        "UpdatePhoneName.request.json",
        &[check::<UpdatePhoneNameRequestBody>],
    ),
    (
        "UpdatePhoneName.response.json",
        &[check::<UpdatePhoneNameResponse>],
    ),
    (
        "UpdateCloudPhoneProperty.request.json",
        &[check::<UpdateCloudPhonePropertyRequestBody>],
    ),
    (
        "UpdateCloudPhoneProperty.response.json",
        &[check::<UpdateCloudPhonePropertyResponse>],
    ),
    (
        "BatchExportCloudPhoneData.request.json",
        &[check::<BatchExportCloudPhoneDataRequestBody>],
    ),
    (
        "BatchExportCloudPhoneData.response.json",
        &[check::<BatchExportCloudPhoneDataResponse>],
    ),
    (
        "BatchImportCloudPhoneData.request.json",
        &[check::<BatchImportCloudPhoneDataRequestBody>],
    ),
    (
        "BatchImportCloudPhoneData.response.json",
        &[check::<BatchImportCloudPhoneDataResponse>],
    ),
    (
        "ImportTraffic.request.json",
        &[check::<ImportTrafficRequestBody>],
    ),
    (
        "ImportTraffic.response.json",
        &[check::<ImportTrafficResponse>],
    ),
    // Catalog
    (
        "ListCloudPhoneServerModels.response.json",
        &[check::<ListCloudPhoneServerModelsResponse>],
    ),
    (
        "ListCloudPhoneModels.response.json",
        &[check::<ListCloudPhoneModelsResponse>],
    ),
    (
        "ListCloudPhoneImages.response.json",
        &[check::<ListCloudPhoneImagesResponse>],
    ),
    // Jobs
    ("ShowJob.response.json", &[check::<ShowJobResponse>]),
    ("ListJobs.response.json", &[check::<ListJobsResponse>]),
    // Encode servers
    (
        "ListEncodeServers.response.json",
        &[check::<ListEncodeServersResponse>],
    ),
    (
        "RestartEncodeServer.request.json",
        &[check::<RestartEncodeServerRequestBody>],
    ),
    (
        "RestartEncodeServer.response.json",
        &[check::<RestartEncodeServerResponse>],
    ),
    // ADB commands
    (
        "PushFile.request.json",
        &[check::<PushFileRequestBody>, check::<PhoneCommandBody>],
    ),
    ("PushFile.response.json", &[check::<PushFileResponse>]),
    (
        "InstallApk.request.json",
        &[check::<InstallApkRequestBody>, check::<PhoneCommandBody>],
    ),
    (
        "InstallApk.request.2.json",
        &[check::<InstallApkRequestBody>, check::<PhoneCommandBody>],
    ),
    ("InstallApk.response.json", &[check::<InstallApkResponse>]),
    (
        "UninstallApk.request.json",
        &[check::<UninstallApkRequestBody>, check::<PhoneCommandBody>],
    ),
    (
        "UninstallApk.response.json",
        &[check::<UninstallApkResponse>],
    ),
    (
        "RunShellCommand.request.json",
        &[
            check::<RunShellCommandRequestBody>,
            check::<PhoneCommandBody>,
        ],
    ),
    (
        "RunShellCommand.response.json",
        &[check::<RunShellCommandResponse>],
    ),
    (
        "RunSyncCommand.request.json",
        &[check::<RunSyncCommandRequestBody>],
    ),
    (
        "RunSyncCommand.response.json",
        &[check::<RunSyncCommandResponse>],
    ),
    // Tags
    (
        "ListProjectTags.response.json",
        &[check::<ListProjectTagsResponse>],
    ),
    (
        "ListResourceTags.response.json",
        &[check::<ListResourceTagsResponse>],
    ),
    (
        "ListResourceInstances.request.json",
        &[check::<ListResourceInstancesRequestBody>],
    ),
    (
        "ListResourceInstances.request.2.json",
        &[check::<ListResourceInstancesRequestBody>],
    ),
    (
        "ListResourceInstances.response.json",
        &[check::<ListResourceInstancesResponse>],
    ),
    (
        "BatchCreateTags.request.json",
        &[check::<BatchCreateTagsRequestBody>, check::<TagsActionBody>],
    ),
    (
        "BatchDeleteTags.request.json",
        &[check::<BatchDeleteTagsRequestBody>, check::<TagsActionBody>],
    ),
    // Common
    ("ErrorBody.response.json", &[check::<ErrorBody>]),
];

#[test]
fn reference_examples_round_trip() {
    let mut errors = Vec::new();
    for (file, checks) in CASES {
        for c in *checks {
            if let Err(e) = c(file) {
                errors.push(e);
            }
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn every_example_file_is_checked() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = CASES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, listed);
    // Every documented operation with a response body has a response example.
    let with_response: BTreeSet<&str> = CASES
        .iter()
        .filter(|(f, _)| f.contains(".response"))
        .map(|(f, _)| f.split('.').next().unwrap())
        .collect();
    assert_eq!(with_response.len(), 40 + 1, "{with_response:?}");
}

#[test]
fn sdk_type_fix_yields_string() {
    let v = load_example("ShowCloudPhoneDetail.response.json");
    let parsed: ShowCloudPhoneDetailResponse = serde_json::from_value(v).unwrap();
    let out = serde_json::to_value(&parsed).unwrap();
    assert_eq!(out["imei"], json!("869287243397729"));
    // The raw reference value (a number) is rejected: it would not match the SDK type.
    let raw = json!({"request_id": "r", "imei": 869287243397729u64});
    assert!(serde_json::from_value::<ShowCloudPhoneDetailResponse>(raw).is_err());
}

// ---------------------------------------------------------------------------
// Request bodies: wrong JSON types are rejected, unknown fields ignored
// ---------------------------------------------------------------------------

fn rejects<T: DeserializeOwned>(body: &str) -> Result<(), String> {
    match serde_json::from_str::<T>(body) {
        Ok(_) => Err(format!(
            "{} accepted wrongly typed {body}",
            std::any::type_name::<T>()
        )),
        Err(_) => Ok(()),
    }
}

fn ignores_unknown<T: DeserializeOwned + Serialize>(body: &str) -> Result<(), String> {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v.as_object_mut()
        .unwrap()
        .insert("x_unknown_field".into(), json!({"nested": [1, "two"]}));
    let parsed: T = serde_json::from_value(v).map_err(|e| {
        format!(
            "{} rejected an unknown field: {e}",
            std::any::type_name::<T>()
        )
    })?;
    let out = serde_json::to_value(&parsed).unwrap();
    if out.get("x_unknown_field").is_some() {
        return Err(format!(
            "{} kept the unknown field",
            std::any::type_name::<T>()
        ));
    }
    // Serializing omits unset fields: the valid body comes back unchanged.
    let expected: Value = serde_json::from_str(body).unwrap();
    if out != expected {
        return Err(format!(
            "{}: {body} re-serialized as {out}",
            std::any::type_name::<T>()
        ));
    }
    Ok(())
}

type BodyCheck = fn(&str) -> Result<(), String>;

/// (valid body, wrongly typed body) per request body type.
const BODY_CASES: &[(BodyCheck, BodyCheck, &str, &str)] = &[
    (
        ignores_unknown::<CreateNet2CloudPhoneServerRequestBody>,
        rejects::<CreateNet2CloudPhoneServerRequestBody>,
        r#"{"server_name":"s","count":2}"#,
        r#"{"server_name":"s","count":"2"}"#,
    ),
    (
        ignores_unknown::<CreateNet2CloudPhoneServerRequestBody>,
        rejects::<CreateNet2CloudPhoneServerRequestBody>,
        r#"{"count":2}"#,
        r#"{"count":2.5}"#,
    ),
    (
        ignores_unknown::<CreateNet2CloudPhoneServerRequestBody>,
        rejects::<CreateNet2CloudPhoneServerRequestBody>,
        r#"{"nics":[{"subnet_id":"x","ipv6_enable":true}]}"#,
        r#"{"nics":[{"subnet_id":"x","ipv6_enable":"true"}]}"#,
    ),
    (
        ignores_unknown::<CreateNet2CloudPhoneServerRequestBody>,
        rejects::<CreateNet2CloudPhoneServerRequestBody>,
        r#"{"property":"{\"a\":\"b\"}"}"#,
        r#"{"property":{"a":"b"}}"#,
    ),
    (
        ignores_unknown::<ChangeCloudPhoneServerRequestBody>,
        rejects::<ChangeCloudPhoneServerRequestBody>,
        r#"{"phone_count_per_ip":2}"#,
        r#"{"phone_count_per_ip":"2"}"#,
    ),
    (
        ignores_unknown::<RestartCloudPhoneServerRequestBody>,
        rejects::<RestartCloudPhoneServerRequestBody>,
        r#"{"server_ids":["a"]}"#,
        r#"{"server_ids":"a"}"#,
    ),
    (
        ignores_unknown::<ChangeCloudPhoneServerModelRequestBody>,
        rejects::<ChangeCloudPhoneServerModelRequestBody>,
        r#"{"server_id":"a","extend_param":{"is_auto_pay":1}}"#,
        r#"{"server_id":"a","extend_param":{"is_auto_pay":"1"}}"#,
    ),
    (
        ignores_unknown::<UpdateServerNameRequestBody>,
        rejects::<UpdateServerNameRequestBody>,
        r#"{"server_name":"n"}"#,
        r#"{"server_name":1}"#,
    ),
    (
        ignores_unknown::<UpdateKeypairRequestBody>,
        rejects::<UpdateKeypairRequestBody>,
        r#"{"servers":[{"server_id":"s","keypair_name":"k"}]}"#,
        r#"{"servers":[{"server_id":1,"keypair_name":"k"}]}"#,
    ),
    (
        ignores_unknown::<UpdateBandwidthRequestBody>,
        rejects::<UpdateBandwidthRequestBody>,
        r#"{"band_width_size":350}"#,
        r#"{"band_width_size":"350"}"#,
    ),
    (
        ignores_unknown::<ResetCloudPhoneRequestBody>,
        rejects::<ResetCloudPhoneRequestBody>,
        r#"{"phones":[{"phone_id":"p","factory_reset_enabled":true}]}"#,
        r#"{"phones":[{"phone_id":"p","factory_reset_enabled":"true"}]}"#,
    ),
    (
        ignores_unknown::<RestartCloudPhoneRequestBody>,
        rejects::<RestartCloudPhoneRequestBody>,
        r#"{"phones":[{"phone_id":"p"}]}"#,
        r#"{"phones":[{"phone_id":1}]}"#,
    ),
    (
        ignores_unknown::<StopCloudPhoneRequestBody>,
        rejects::<StopCloudPhoneRequestBody>,
        r#"{"phone_ids":["p"]}"#,
        r#"{"phone_ids":[1]}"#,
    ),
    (
        ignores_unknown::<UpdatePhoneNameRequestBody>,
        rejects::<UpdatePhoneNameRequestBody>,
        r#"{"phone_name":"n"}"#,
        r#"{"phone_name":["n"]}"#,
    ),
    (
        ignores_unknown::<UpdateCloudPhonePropertyRequestBody>,
        rejects::<UpdateCloudPhonePropertyRequestBody>,
        r#"{"phones":[{"phone_id":"p","property":"{}","custom_property":{"k":"v"}}]}"#,
        r#"{"phones":[{"phone_id":"p","property":"{}","custom_property":{"k":1}}]}"#,
    ),
    (
        ignores_unknown::<UpdateCloudPhonePropertyRequestBody>,
        rejects::<UpdateCloudPhonePropertyRequestBody>,
        r#"{"phones":[{"phone_id":"p","property":"{}"}]}"#,
        r#"{"phones":[{"phone_id":"p","property":{}}]}"#,
    ),
    (
        ignores_unknown::<BatchExportCloudPhoneDataRequestBody>,
        rejects::<BatchExportCloudPhoneDataRequestBody>,
        r#"{"storage_infos":[{"phone_id":"p","include_files":["/data"]}]}"#,
        r#"{"storage_infos":[{"phone_id":"p","include_files":"/data"}]}"#,
    ),
    (
        ignores_unknown::<BatchImportCloudPhoneDataRequestBody>,
        rejects::<BatchImportCloudPhoneDataRequestBody>,
        r#"{"restore_infos":[{"phone_id":"p"}]}"#,
        r#"{"restore_infos":{"phone_id":"p"}}"#,
    ),
    (
        ignores_unknown::<ImportTrafficRequestBody>,
        rejects::<ImportTrafficRequestBody>,
        r#"{"traffic_type":"direct"}"#,
        r#"{"traffic_type":1}"#,
    ),
    (
        ignores_unknown::<ConnectionRequestBody>,
        rejects::<ConnectionRequestBody>,
        r#"{"phone_ids":["p"],"client_type":"ANDROID"}"#,
        r#"{"phone_ids":"p","client_type":"ANDROID"}"#,
    ),
    (
        ignores_unknown::<PhoneCommandBody>,
        rejects::<PhoneCommandBody>,
        r#"{"command":"shell","content":"ls","server_ids":["s"]}"#,
        r#"{"command":"shell","content":["ls"]}"#,
    ),
    (
        ignores_unknown::<PushFileRequestBody>,
        rejects::<PushFileRequestBody>,
        r#"{"command":"push","phone_ids":["p"]}"#,
        r#"{"command":"push","phone_ids":"p"}"#,
    ),
    (
        ignores_unknown::<InstallApkRequestBody>,
        rejects::<InstallApkRequestBody>,
        r#"{"command":"install"}"#,
        r#"{"command":1}"#,
    ),
    (
        ignores_unknown::<UninstallApkRequestBody>,
        rejects::<UninstallApkRequestBody>,
        r#"{"content":"com.a"}"#,
        r#"{"content":true}"#,
    ),
    (
        ignores_unknown::<RunShellCommandRequestBody>,
        rejects::<RunShellCommandRequestBody>,
        r#"{"server_ids":["s"]}"#,
        r#"{"server_ids":[["s"]]}"#,
    ),
    (
        ignores_unknown::<RunSyncCommandRequestBody>,
        rejects::<RunSyncCommandRequestBody>,
        r#"{"command":"shell"}"#,
        r#"{"command":{"c":"shell"}}"#,
    ),
    (
        ignores_unknown::<ShareFilesBody>,
        rejects::<ShareFilesBody>,
        r#"{"file_paths":["/a"],"server_ids":["s"]}"#,
        r#"{"file_paths":"/a","server_ids":["s"]}"#,
    ),
    (
        ignores_unknown::<PushShareFilesRequestBody>,
        rejects::<PushShareFilesRequestBody>,
        r#"{"bucket_name":"b"}"#,
        r#"{"bucket_name":7}"#,
    ),
    (
        ignores_unknown::<DeleteShareFilesRequestBody>,
        rejects::<DeleteShareFilesRequestBody>,
        r#"{"file_paths":["/a"]}"#,
        r#"{"file_paths":[null, 1]}"#,
    ),
    (
        ignores_unknown::<PushShareAppsRequestBody>,
        rejects::<PushShareAppsRequestBody>,
        r#"{"package_name":"com.a","pre_install_app":1}"#,
        r#"{"package_name":"com.a","pre_install_app":"1"}"#,
    ),
    (
        ignores_unknown::<DeleteShareAppsRequestBody>,
        rejects::<DeleteShareAppsRequestBody>,
        r#"{"package_name":"com.a"}"#,
        r#"{"package_name":false}"#,
    ),
    (
        ignores_unknown::<ListResourceInstancesRequestBody>,
        rejects::<ListResourceInstancesRequestBody>,
        r#"{"action":"filter","offset":"100","limit":"10"}"#,
        r#"{"action":"filter","offset":100}"#,
    ),
    (
        ignores_unknown::<ListResourceInstancesRequestBody>,
        rejects::<ListResourceInstancesRequestBody>,
        r#"{"action":"count","without_any_tag":true}"#,
        r#"{"action":"count","without_any_tag":"true"}"#,
    ),
    (
        ignores_unknown::<TagsActionBody>,
        rejects::<TagsActionBody>,
        r#"{"action":"create","tags":[{"key":"k","value":"v"}]}"#,
        r#"{"action":"create","tags":[{"key":1,"value":"v"}]}"#,
    ),
    (
        ignores_unknown::<BatchCreateTagsRequestBody>,
        rejects::<BatchCreateTagsRequestBody>,
        r#"{"action":"create"}"#,
        r#"{"action":"create","tags":{"key":"k"}}"#,
    ),
    (
        ignores_unknown::<BatchDeleteTagsRequestBody>,
        rejects::<BatchDeleteTagsRequestBody>,
        r#"{"action":"delete"}"#,
        r#"{"action":"delete","tags":[{"key":"k","value":2}]}"#,
    ),
    (
        ignores_unknown::<RestartEncodeServerRequestBody>,
        rejects::<RestartEncodeServerRequestBody>,
        r#"{"encode_server_ids":["e"]}"#,
        r#"{"encode_server_ids":"e"}"#,
    ),
    (
        ignores_unknown::<KeystoneCreateUserTokenByPasswordRequestBody>,
        rejects::<KeystoneCreateUserTokenByPasswordRequestBody>,
        r#"{"auth":{"identity":{"methods":["password"]}}}"#,
        r#"{"auth":{"identity":{"methods":"password"}}}"#,
    ),
    (
        ignores_unknown::<NovaCreateKeypairRequestBody>,
        rejects::<NovaCreateKeypairRequestBody>,
        r#"{"keypair":{"name":"k","type":"ssh"}}"#,
        r#"{"keypair":{"name":1}}"#,
    ),
    (
        ignores_unknown::<CreateVpcRequestBody>,
        rejects::<CreateVpcRequestBody>,
        r#"{"vpc":{"name":"v","enable_network_address_usage_metrics":true}}"#,
        r#"{"vpc":{"name":"v","enable_network_address_usage_metrics":"true"}}"#,
    ),
    (
        ignores_unknown::<CreateSubnetRequestBody>,
        rejects::<CreateSubnetRequestBody>,
        r#"{"subnet":{"name":"s","dhcp_enable":false,"dnsList":["1.1.1.1"]}}"#,
        r#"{"subnet":{"name":"s","dhcp_enable":"false"}}"#,
    ),
];

#[test]
fn request_bodies_reject_wrong_types_and_ignore_unknown_fields() {
    let mut errors = Vec::new();
    for (ok_check, bad_check, ok, bad) in BODY_CASES {
        if let Err(e) = ok_check(ok) {
            errors.push(e);
        }
        if let Err(e) = bad_check(bad) {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
}

#[test]
fn request_bodies_accept_empty_object_and_nested_unknown_fields() {
    let b: CreateNet2CloudPhoneServerRequestBody =
        serde_json::from_str(r#"{"band_width":{"band_width_size":300,"zz":1},"extra":null}"#)
            .unwrap();
    assert_eq!(b.band_width.unwrap().band_width_size, Some(300));
    let e: PhoneCommandBody = serde_json::from_str("{}").unwrap();
    assert!(e.command.is_none() && e.phone_ids.is_none());
    assert_eq!(serde_json::to_string(&e).unwrap(), "{}");
}

// ---------------------------------------------------------------------------
// Query parameter structs
// ---------------------------------------------------------------------------

#[test]
fn query_structs_take_strings() {
    let q: ListCloudPhonesQuery =
        serde_json::from_value(json!({"offset": "0", "limit": "abc", "type": "0", "x": "y"}))
            .unwrap();
    assert_eq!(q.limit.as_deref(), Some("abc"));
    assert_eq!(q.r#type.as_deref(), Some("0"));
    let q: ListShareFilesQuery =
        serde_json::from_value(json!({"server_ids": "a,b", "path": "/data"})).unwrap();
    assert_eq!(q.server_ids.as_deref(), Some("a,b"));
    let q: ListEncodeServersQuery = serde_json::from_value(json!({"type": "1"})).unwrap();
    assert_eq!(q.r#type.as_deref(), Some("1"));
    let q: ListCloudPhoneServersQuery = serde_json::from_value(json!({})).unwrap();
    assert!(q.offset.is_none());
}

#[test]
fn into_params_names() {
    use utoipa::IntoParams;
    use utoipa::openapi::path::ParameterIn;
    let names = |p: Vec<utoipa::openapi::path::Parameter>| -> Vec<String> {
        p.into_iter().map(|p| p.name).collect()
    };
    let p = names(ListCloudPhonesQuery::into_params(|| {
        Some(ParameterIn::Query)
    }));
    assert_eq!(
        p,
        [
            "offset",
            "limit",
            "phone_name",
            "server_id",
            "status",
            "type"
        ]
    );
    let p = names(ListCloudPhoneServersQuery::into_params(|| None));
    assert_eq!(p.len(), 9);
    assert!(names(ListEncodeServersQuery::into_params(|| None)).contains(&"type".to_string()));
}

// ---------------------------------------------------------------------------
// Response serialization details
// ---------------------------------------------------------------------------

#[test]
fn responses_emit_sdk_json_types() {
    let phone = Phone {
        phone_id: "p".into(),
        status: -7,
        has_encrypt: Some(false),
        ..Default::default()
    };
    let v = serde_json::to_value(ListCloudPhonesResponse {
        phones: vec![phone],
        request_id: "r".into(),
        count: 1,
    })
    .unwrap();
    assert_eq!(v["count"], json!(1));
    assert_eq!(v["phones"][0]["status"], json!(-7));
    assert_eq!(v["phones"][0]["type"], json!(0));
    assert_eq!(v["phones"][0]["has_encrypt"], json!(false));
    assert!(v["phones"][0].get("imei").is_none());
    assert!(v["phones"][0].get("metadata").is_none());

    let job = serde_json::to_value(PhoneJob {
        phone_id: "p".into(),
        error_code: Some("CPS.0004".into()),
        error_msg: Some("Parameter: phone_id is invalid.".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        job,
        json!({"phone_id": "p", "error_code": "CPS.0004", "error_msg": "Parameter: phone_id is invalid."})
    );

    let detail = ShowCloudPhoneDetailResponse {
        custom_property: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    let v = serde_json::to_value(detail).unwrap();
    assert_eq!(v["custom_property"], json!({"k": "v"}));
    assert!(v["property"].is_string());
}

// ---------------------------------------------------------------------------
// IAM, VPC and Nova samples (hand-written in the shape the SDK models describe)
// ---------------------------------------------------------------------------

fn round_trip<T: DeserializeOwned + Serialize>(sample: Value) {
    let parsed: T = serde_json::from_value(sample.clone())
        .unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()));
    let out = serde_json::to_value(&parsed).unwrap();
    let mut errors = Vec::new();
    assert_subset(&sample, &out, "", &mut errors);
    assert!(
        errors.is_empty(),
        "{}: {errors:?}",
        std::any::type_name::<T>()
    );
}

#[test]
fn iam_samples() {
    round_trip::<KeystoneCreateUserTokenByPasswordRequestBody>(json!({
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "alice", "password": "secret", "domain": {"name": "acme"}}}
            },
            "scope": {"project": {"name": "region-1"}}
        }
    }));
    round_trip::<KeystoneCreateUserTokenByPasswordResponse>(json!({
        "token": {
            "expires_at": "2030-01-02T03:04:05.000000Z",
            "issued_at": "2030-01-01T03:04:05.000000Z",
            "methods": ["password"],
            "catalog": [],
            "roles": [{"id": "0", "name": "op_fine_grained"}],
            "user": {
                "id": "u1", "name": "alice", "password_expires_at": "",
                "domain": {"id": "d1", "name": "acme"}
            },
            "project": {"id": "p1", "name": "region-1", "domain": {"id": "d1", "name": "acme"}}
        }
    }));
    round_trip::<KeystoneListProjectsResponse>(json!({
        "links": {"self": "http://iam.local/v3/projects?name=region-1", "previous": null, "next": null},
        "projects": [{
            "id": "p1", "name": "region-1", "domain_id": "d1", "enabled": true,
            "description": "", "parent_id": "d1", "is_domain": false,
            "links": {"self": "http://iam.local/v3/projects/p1"}
        }]
    }));
    round_trip::<KeystoneErrorBody>(json!({
        "error": {"code": 401, "title": "Unauthorized", "message": "The username or password is wrong."}
    }));
    let body: KeystoneCreateUserTokenByPasswordRequestBody = serde_json::from_value(json!({
        "auth": {"identity": {"password": {"user": {"password": "hunter2"}}}}
    }))
    .unwrap();
    assert!(!format!("{body:?}").contains("hunter2"));
}

#[test]
fn vpc_samples() {
    let vpc = json!({
        "id": "0c8f6a1d-6c70-4e4f-9c0a-9f0b1d7a9e01", "name": "vpc-1", "cidr": "192.168.0.0/16",
        "description": "", "routes": [], "status": "OK", "enterprise_project_id": "0",
        "tenant_id": "p1", "created_at": "2030-01-01T00:00:00", "updated_at": "2030-01-01T00:00:00"
    });
    round_trip::<CreateVpcResponse>(json!({"vpc": vpc.clone()}));
    round_trip::<ListVpcsResponse>(json!({"vpcs": [vpc]}));
    round_trip::<CreateVpcRequestBody>(
        json!({"vpc": {"name": "vpc-1", "cidr": "192.168.0.0/16", "description": "d"}}),
    );
    let subnet = json!({
        "id": "5b2c4e2a-3f0e-4d57-8f2e-0e5a3a5b6c01", "name": "subnet-1", "description": "",
        "cidr": "192.168.0.0/24", "gateway_ip": "192.168.0.1", "ipv6_enable": false,
        "dhcp_enable": true, "primary_dns": "100.125.1.250", "secondary_dns": "",
        "dnsList": ["100.125.1.250"], "availability_zone": "az1",
        "vpc_id": "0c8f6a1d-6c70-4e4f-9c0a-9f0b1d7a9e01", "status": "ACTIVE",
        "neutron_network_id": "5b2c4e2a-3f0e-4d57-8f2e-0e5a3a5b6c01",
        "neutron_subnet_id": "7d1e0b9c-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "extra_dhcp_opts": [{"opt_name": "ntp", "opt_value": "10.0.0.1"}],
        "tenant_id": "p1", "created_at": "2030-01-01T00:00:00", "updated_at": "2030-01-01T00:00:00",
        "available_ip_address_count": 250
    });
    round_trip::<ShowSubnetResponse>(json!({"subnet": subnet.clone()}));
    round_trip::<ListSubnetsResponse>(json!({"subnets": [subnet]}));
    round_trip::<CreateSubnetRequestBody>(json!({"subnet": {
        "name": "subnet-1", "cidr": "192.168.0.0/24", "gateway_ip": "192.168.0.1",
        "vpc_id": "v", "dnsList": ["100.125.1.250"], "extra_dhcp_opts": [{"opt_name": "ntp"}]
    }}));
}

#[test]
fn nova_samples() {
    round_trip::<NovaCreateKeypairResponse>(json!({"keypair": {
        "fingerprint": "SHA256:abc", "name": "k1", "public_key": "ssh-ed25519 AAAA k1",
        "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n...", "user_id": "u1", "type": "ssh"
    }}));
    round_trip::<NovaListKeypairsResponse>(json!({"keypairs": [{"keypair": {
        "fingerprint": "SHA256:abc", "name": "k1", "public_key": "ssh-ed25519 AAAA k1", "type": "ssh"
    }}]}));
    round_trip::<NovaShowKeypairResponse>(json!({"keypair": {
        "public_key": "ssh-ed25519 AAAA k1", "name": "k1", "fingerprint": "SHA256:abc",
        "created_at": "2030-01-01T00:00:00.000000", "deleted": false, "deleted_at": null,
        "id": 42, "updated_at": null, "user_id": "u1", "type": "ssh"
    }}));
}

// ---------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------

#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ErrorBody,
    PhoneJobsResponse,
    ServerJobsResponse,
    ListCloudPhoneServersResponse,
    ShowCloudPhoneServerDetailResponse,
    CreateNet2CloudPhoneServerRequestBody,
    CreateNet2CloudPhoneServerResponse,
    ChangeCloudPhoneServerRequestBody,
    ChangeCloudPhoneServerResponse,
    RestartCloudPhoneServerRequestBody,
    ChangeCloudPhoneServerModelRequestBody,
    ChangeCloudPhoneServerModelResponse,
    UpdateServerNameRequestBody,
    UpdateServerNameResponse,
    UpdateKeypairRequestBody,
    ShareFilesBody,
    PushShareFilesRequestBody,
    DeleteShareFilesRequestBody,
    PushShareAppsRequestBody,
    DeleteShareAppsRequestBody,
    ShowBandwidthDetailResponse,
    UpdateBandwidthRequestBody,
    UpdateBandwidthResponse,
    ListCloudPhonesResponse,
    ShowCloudPhoneDetailResponse,
    ResetCloudPhoneRequestBody,
    RestartCloudPhoneRequestBody,
    StopCloudPhoneRequestBody,
    UpdatePhoneNameRequestBody,
    UpdatePhoneNameResponse,
    UpdateCloudPhonePropertyRequestBody,
    BatchExportCloudPhoneDataRequestBody,
    BatchImportCloudPhoneDataRequestBody,
    ImportTrafficRequestBody,
    ConnectionRequestBody,
    BatchShowPhoneConnectInfosResponse,
    ListCloudPhoneServerModelsResponse,
    ListCloudPhoneModelsResponse,
    ListCloudPhoneImagesResponse,
    ShowJobResponse,
    ListJobsResponse,
    ListEncodeServersResponse,
    RestartEncodeServerRequestBody,
    RestartEncodeServerResponse,
    PhoneCommandBody,
    PushFileRequestBody,
    InstallApkRequestBody,
    UninstallApkRequestBody,
    RunShellCommandRequestBody,
    RunSyncCommandRequestBody,
    RunSyncCommandResponse,
    ListProjectTagsResponse,
    ListResourceTagsResponse,
    ListResourceInstancesRequestBody,
    ListResourceInstancesResponse,
    TagsActionBody,
    BatchCreateTagsRequestBody,
    BatchDeleteTagsRequestBody,
    KeystoneCreateUserTokenByPasswordRequestBody,
    KeystoneCreateUserTokenByPasswordResponse,
    KeystoneListProjectsResponse,
    KeystoneErrorBody,
    CreateVpcRequestBody,
    VpcResponse,
    ListVpcsResponse,
    CreateSubnetRequestBody,
    SubnetResponse,
    ListSubnetsResponse,
    NovaCreateKeypairRequestBody,
    NovaCreateKeypairResponse,
    NovaListKeypairsResponse,
    NovaShowKeypairResponse,
)))]
struct AllSchemas;

#[test]
fn openapi_schemas_use_wire_names() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(AllSchemas::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> BTreeSet<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name} missing"))
            .keys()
            .cloned()
            .collect()
    };
    // Nested models are collected automatically.
    assert!(props("Phone").contains("type"));
    assert!(props("Phone").contains("has_encrypt"));
    assert!(props("PhoneAccessInfo").contains("type"));
    assert!(props("Links").contains("self"));
    assert!(props("Subnet").contains("dnsList"));
    assert!(props("EipParam").contains("type"));
    assert!(props("PhoneCommandBody").contains("server_ids"));
    assert!(
        !serde_json::to_string(schemas)
            .unwrap()
            .contains("\"r#type\"")
    );
    // Request fields are optional; plain response fields are required.
    assert!(schemas["UpdateBandwidthRequestBody"]["required"].is_null());
    let required: Vec<&str> = schemas["PhoneJobsResponse"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["request_id", "jobs"]);
}
