//! Storage rows: the shapes the tables hold, decoded by hand from `AnyRow`.

use crate::{Result, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

pub(crate) fn s(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}
pub(crate) fn os(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}
pub(crate) fn i(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}
pub(crate) fn oi(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}
pub(crate) fn i32c(row: &AnyRow, col: &str) -> Result<i32> {
    let v = i(row, col)?;
    i32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col}={v} out of range")))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerRow {
    pub server_id: String,
    pub project_id: String,
    pub server_name: String,
    pub server_model_name: String,
    pub phone_model_name: String,
    pub image_id: String,
    pub keypair_name: String,
    pub status: i32,
    pub vpc_id: String,
    pub subnet_id: String,
    pub server_ip: String,
    pub host_id: String,
    pub order_id: String,
    pub product_id: String,
    pub charging_mode: i64,
    pub availability_zone: String,
    pub network_version: String,
    pub enterprise_project_id: String,
    pub band_width_id: String,
    pub phone_count_per_ip: i64,
    /// JSON array of `{name, listen_port, internet_accessible}`.
    pub ports: String,
    /// JSON object `{volume_type, size}` (empty object when none).
    pub phone_data_volume: String,
    pub share_data_volume: String,
    pub expires_at: i64,
    pub auto_renew: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ServerRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ServerRow {
            server_id: s(r, "server_id")?,
            project_id: s(r, "project_id")?,
            server_name: s(r, "server_name")?,
            server_model_name: s(r, "server_model_name")?,
            phone_model_name: s(r, "phone_model_name")?,
            image_id: s(r, "image_id")?,
            keypair_name: s(r, "keypair_name")?,
            status: i32c(r, "status")?,
            vpc_id: s(r, "vpc_id")?,
            subnet_id: s(r, "subnet_id")?,
            server_ip: s(r, "server_ip")?,
            host_id: s(r, "host_id")?,
            order_id: s(r, "order_id")?,
            product_id: s(r, "product_id")?,
            charging_mode: i(r, "charging_mode")?,
            availability_zone: s(r, "availability_zone")?,
            network_version: s(r, "network_version")?,
            enterprise_project_id: s(r, "enterprise_project_id")?,
            band_width_id: s(r, "band_width_id")?,
            phone_count_per_ip: i(r, "phone_count_per_ip")?,
            ports: s(r, "ports")?,
            phone_data_volume: s(r, "phone_data_volume")?,
            share_data_volume: s(r, "share_data_volume")?,
            expires_at: i(r, "expires_at")?,
            auto_renew: i(r, "auto_renew")? != 0,
            created_at: i(r, "created_at")?,
            updated_at: i(r, "updated_at")?,
        })
    }
}

/// A phone with the server fields every phone view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneRow {
    pub phone_id: String,
    pub project_id: String,
    pub server_id: String,
    pub phone_name: String,
    pub phone_model_name: String,
    pub image_id: String,
    pub status: i32,
    pub phone_type: i32,
    pub imei: String,
    pub traffic_type: String,
    pub volume_mode: i32,
    pub phone_ip: String,
    pub slot: i64,
    /// JSON object of API-set properties (appendix A.1 keys).
    pub properties: String,
    /// JSON object of custom properties.
    pub custom_properties: String,
    pub created_at: i64,
    pub updated_at: i64,
    // Joined from the server.
    pub availability_zone: String,
    pub order_id: String,
    pub product_id: String,
    pub host_id: String,
}

impl PhoneRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(PhoneRow {
            phone_id: s(r, "phone_id")?,
            project_id: s(r, "project_id")?,
            server_id: s(r, "server_id")?,
            phone_name: s(r, "phone_name")?,
            phone_model_name: s(r, "phone_model_name")?,
            image_id: s(r, "image_id")?,
            status: i32c(r, "status")?,
            phone_type: i32c(r, "phone_type")?,
            imei: s(r, "imei")?,
            traffic_type: s(r, "traffic_type")?,
            volume_mode: i32c(r, "volume_mode")?,
            phone_ip: s(r, "phone_ip")?,
            slot: i(r, "slot")?,
            properties: s(r, "properties")?,
            custom_properties: s(r, "custom_properties")?,
            created_at: i(r, "created_at")?,
            updated_at: i(r, "updated_at")?,
            availability_zone: s(r, "availability_zone")?,
            order_id: s(r, "order_id")?,
            product_id: s(r, "product_id")?,
            host_id: s(r, "host_id")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub job_id: String,
    pub project_id: String,
    pub request_id: String,
    pub kind: String,
    pub phone_id: Option<String>,
    pub server_id: Option<String>,
    pub encode_server_id: Option<String>,
    pub node_id: Option<String>,
    pub lock_key: String,
    pub payload: String,
    pub state: String,
    pub status: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub attempts: i64,
    pub error_code: Option<String>,
    pub error_msg: Option<String>,
    pub execute_msg: Option<String>,
    pub seq: i64,
    pub created_at: i64,
    pub begin_time: Option<i64>,
    pub end_time: Option<i64>,
}

impl JobRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(JobRow {
            job_id: s(r, "job_id")?,
            project_id: s(r, "project_id")?,
            request_id: s(r, "request_id")?,
            kind: s(r, "kind")?,
            phone_id: os(r, "phone_id")?,
            server_id: os(r, "server_id")?,
            encode_server_id: os(r, "encode_server_id")?,
            node_id: os(r, "node_id")?,
            lock_key: s(r, "lock_key")?,
            payload: s(r, "payload")?,
            state: s(r, "state")?,
            status: i32c(r, "status")?,
            lease_owner: os(r, "lease_owner")?,
            lease_until: oi(r, "lease_until")?,
            attempts: i(r, "attempts")?,
            error_code: os(r, "error_code")?,
            error_msg: os(r, "error_msg")?,
            execute_msg: os(r, "execute_msg")?,
            seq: i(r, "seq")?,
            created_at: i(r, "created_at")?,
            begin_time: oi(r, "begin_time")?,
            end_time: oi(r, "end_time")?,
        })
    }
}
