//! Extractors: the authenticated context, JSON bodies and query strings, each rejecting with a
//! documented error.

use crate::error::{ApiError, RequestId};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use cph_service::{Caller, ServiceError};
use serde::de::DeserializeOwned;

/// The authenticated caller and the request id.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub caller: Caller,
    pub request_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let caller = parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError(ServiceError::raw(
                401,
                "APIGW.0301",
                "Incorrect IAM authentication information.",
            ))
        })?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        Ok(Ctx { caller, request_id })
    }
}

/// The request id alone (for routes without authentication).
pub struct ReqId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ReqId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ReqId(
            parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
        ))
    }
}

/// Which documented code a malformed value of a body field gets.
fn field_code(field: &str) -> Option<&'static str> {
    Some(match field {
        "count" => "CPS.0024",
        "server_name" => "CPS.0087",
        "phone_name" => "CPS.0025",
        "phone_ids" | "phone_id" => "CPS.0080",
        "server_ids" | "server_id" => "CPS.0094",
        "phones" => "CPS.0077",
        "image_id" => "CPS.0030",
        "property" | "custom_property" => "CPS.0078",
        "band_width_size" => "CPS.0036",
        "band_width_id" => "CPS.0033",
        "band_width_share_type" => "CPS.0034",
        "band_width_charge_mode" => "CPS.0035",
        "band_width" => "CPS.0031",
        "ports" | "listen_port" | "name" | "internet_accessible" => "CPS.0037",
        "extend_param" => "CPS.0055",
        "charging_mode" => "CPS.0056",
        "period_type" => "CPS.0057",
        "period_num" => "CPS.0058",
        "is_auto_pay" => "CPS.0060",
        "is_auto_renew" => "CPS.0059",
        "public_ip" | "eip" | "ids" => "CPS.0238",
        "nics" | "subnet_id" | "ipv6_enable" => "CPS.0226",
        "tenant_vpc_id" => "CPS.0223",
        "keypair_name" => "CPS.0068",
        "encode_server_ids" => "CPS.0122",
        "tags" | "key" | "value" => "CPS.0303",
        "values" => "CPS.0315",
        "action" => "CPS.0047",
        "matches" => "CPS.0311",
        "command" => "CPS.0117",
        "content" => "CPS.0118",
        "storage_infos" => "CPS.0167",
        "restore_infos" => "CPS.0171",
        "include_files" => "CPS.0168",
        "exclude_files" => "CPS.0169",
        "bucket_name" => "CPS.0134",
        "object_path" => "CPS.0135",
        "package_name" => "CPS.0173",
        "file_paths" => "CPS.0155",
        "traffic_type" => "CPS.0207",
        "server_model_name" => "CPS.0089",
        "phone_model_name" => "CPS.0028",
        "pre_install_app" => "CPS.0148",
        "offset" | "limit" => "CPS.0002",
        "phone_data_volume" | "server_share_data_volume" | "volume_type" | "size" => "CPS.0321",
        "availability_zone" => "CPS.0211",
        "phone_count_per_ip" => "CPS.0238",
        "factory_reset_enabled" => "CPS.0077",
        "image_label" => "CPS.0142",
        "without_any_tag" | "resource_type" => "CPS.0303",
        _ => return None,
    })
}

/// A JSON body. A malformed document or a value of the wrong JSON type is a 400 with the
/// documented code of the offending field (the deepest named field on the error path).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            ApiError(ServiceError::raw(
                413,
                "APIGW.0201",
                "Request entity too large.",
            ))
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a JSON body with the error rules of [`JsonBody`]. An empty body reads as `{}`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let names: Vec<&str> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        // Inside `matches` the generic tag codes do not apply: a match has its own.
        let in_matches = names.contains(&"matches");
        let field = names
            .iter()
            .filter_map(|n| match (in_matches, *n) {
                (true, "key") => Some("CPS.0313"),
                (true, "value") => Some("CPS.0314"),
                _ => field_code(n),
            })
            .next_back();
        let inner = e.into_inner();
        let msg = if path == "." || path.is_empty() {
            format!("Request body is not valid JSON: {inner}")
        } else {
            format!("Parameter: {path} is invalid: {inner}")
        };
        match field {
            Some(code) => ApiError(ServiceError::cps_msg(code, msg)),
            // Not an object at all, or broken JSON: the reference has no dedicated code; use
            // the generic invalid-parameter answer of the API gateway.
            None => ApiError(ServiceError::raw(400, "APIGW.0201", msg)),
        }
    })
}

/// A query string; every field is optional text, validated by the service layer.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_like(q).map(Q).map_err(|e| {
            ApiError(ServiceError::raw(
                400,
                "APIGW.0201",
                format!("Query string is not valid: {e}"),
            ))
        })
    }
}

/// Decodes `a=1&b=x` into a struct of optional strings (last occurrence of a key wins).
fn serde_urlencoded_like<T: DeserializeOwned>(q: &str) -> Result<T, String> {
    let mut map = serde_json::Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|e| e.to_string())
        };
        map.insert(dec(k)?, serde_json::Value::String(dec(v)?));
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
}
