//! VPC v1 routes: VPCs and subnets.

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Ctx, Q};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;
use cph_service::ServiceError;
use cph_service::vpc::{NewSubnet, NewVpc, SubnetView};
use cph_store::network::Vpc;
use cph_wire as w;

/// Parses a JSON body of the VPC and Nova APIs: a malformed document or a value of the wrong
/// JSON type is a 400 with `code`, the code those APIs use for invalid parameters (the CPH field
/// codes of `JsonBody` do not apply to them). An empty body reads as `{}`.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    code: &str,
) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        bytes
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = if path == "." || path.is_empty() {
            format!("Request body is not valid JSON: {inner}")
        } else {
            format!("Parameter {path} is invalid: {inner}")
        };
        ApiError(ServiceError::raw(400, code, msg))
    })
}

/// The VPC API's time format: UTC `yyyy-MM-ddTHH:mm:ss`.
fn vpc_time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn vpc(v: &Vpc) -> w::Vpc {
    w::Vpc {
        id: v.vpc_id.clone(),
        name: v.name.clone(),
        cidr: v.cidr.clone(),
        description: v.description.clone(),
        routes: Vec::new(),
        status: "OK".into(),
        enterprise_project_id: v.enterprise_project_id.clone(),
        tenant_id: v.project_id.clone(),
        created_at: vpc_time(v.created_at),
        updated_at: vpc_time(v.updated_at),
        block_service_endpoint_states: None,
        enable_network_address_usage_metrics: None,
    }
}

fn subnet(v: &SubnetView) -> w::Subnet {
    let s = &v.subnet;
    let dns_list: Vec<String> = [&s.primary_dns, &s.secondary_dns]
        .into_iter()
        .filter(|d| !d.is_empty())
        .cloned()
        .collect();
    w::Subnet {
        id: s.subnet_id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        cidr: s.cidr.clone(),
        gateway_ip: s.gateway_ip.clone(),
        ipv6_enable: false,
        cidr_v6: None,
        gateway_ip_v6: None,
        dhcp_enable: s.dhcp_enable,
        primary_dns: s.primary_dns.clone(),
        secondary_dns: s.secondary_dns.clone(),
        dns_list,
        availability_zone: s.availability_zone.clone(),
        vpc_id: s.vpc_id.clone(),
        status: "ACTIVE".into(),
        neutron_network_id: s.subnet_id.clone(),
        neutron_subnet_id: v.neutron_subnet_id.clone(),
        neutron_subnet_id_v6: None,
        extra_dhcp_opts: Vec::new(),
        scope: Some("center".into()),
        tenant_id: s.project_id.clone(),
        created_at: vpc_time(s.created_at),
        updated_at: vpc_time(s.updated_at),
        enable_network_address_usage_metrics: None,
        available_ip_address_count: Some(i32::try_from(v.available_ips).unwrap_or(i32::MAX)),
    }
}

pub async fn create_vpc(
    State(st): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> ApiResult<Json<w::CreateVpcResponse>> {
    let b: w::CreateVpcRequestBody = parse_body(&body, "VPC.0101")?;
    let req = match b.vpc {
        Some(o) => NewVpc {
            present: true,
            cidr: o.cidr,
            name: o.name,
            description: o.description,
            enterprise_project_id: o.enterprise_project_id,
            tags: o.tags,
            block_service_endpoint_states: o.block_service_endpoint_states,
            enable_network_address_usage_metrics: o.enable_network_address_usage_metrics,
        },
        None => NewVpc::default(),
    };
    let v = st.service.create_vpc(&ctx.caller, &req).await?;
    Ok(Json(w::VpcResponse { vpc: vpc(&v) }))
}

pub async fn list_vpcs(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListVpcsQuery>,
) -> ApiResult<Json<w::ListVpcsResponse>> {
    let vpcs = st
        .service
        .list_vpcs(
            &ctx.caller,
            q.limit.as_deref(),
            q.marker.as_deref(),
            q.id.as_deref(),
            q.enterprise_project_id.as_deref(),
        )
        .await?;
    Ok(Json(w::ListVpcsResponse {
        vpcs: vpcs.iter().map(vpc).collect(),
    }))
}

pub async fn show_vpc(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, vpc_id)): Path<(String, String)>,
) -> ApiResult<Json<w::ShowVpcResponse>> {
    let v = st.service.show_vpc(&ctx.caller, &vpc_id).await?;
    Ok(Json(w::VpcResponse { vpc: vpc(&v) }))
}

pub async fn delete_vpc(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, vpc_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    st.service.delete_vpc(&ctx.caller, &vpc_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_subnet(
    State(st): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> ApiResult<Json<w::CreateSubnetResponse>> {
    let b: w::CreateSubnetRequestBody = parse_body(&body, "VPC.0201")?;
    let req = match b.subnet {
        Some(o) => NewSubnet {
            present: true,
            name: o.name,
            description: o.description,
            cidr: o.cidr,
            vpc_id: o.vpc_id,
            gateway_ip: o.gateway_ip,
            ipv6_enable: o.ipv6_enable,
            dhcp_enable: o.dhcp_enable,
            primary_dns: o.primary_dns,
            secondary_dns: o.secondary_dns,
            dns_list: o.dns_list,
            availability_zone: o.availability_zone,
            extra_dhcp_opts: o.extra_dhcp_opts.map(|v| v.len()).unwrap_or(0),
            tags: o.tags,
            enable_network_address_usage_metrics: o.enable_network_address_usage_metrics,
        },
        None => NewSubnet::default(),
    };
    let s = st.service.create_subnet(&ctx.caller, &req).await?;
    Ok(Json(w::SubnetResponse { subnet: subnet(&s) }))
}

pub async fn list_subnets(
    State(st): State<AppState>,
    ctx: Ctx,
    Q(q): Q<w::ListSubnetsQuery>,
) -> ApiResult<Json<w::ListSubnetsResponse>> {
    let subnets = st
        .service
        .list_subnets(
            &ctx.caller,
            q.limit.as_deref(),
            q.marker.as_deref(),
            q.vpc_id.as_deref(),
        )
        .await?;
    Ok(Json(w::ListSubnetsResponse {
        subnets: subnets.iter().map(subnet).collect(),
    }))
}

pub async fn show_subnet(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, subnet_id)): Path<(String, String)>,
) -> ApiResult<Json<w::ShowSubnetResponse>> {
    let s = st.service.show_subnet(&ctx.caller, &subnet_id).await?;
    Ok(Json(w::SubnetResponse { subnet: subnet(&s) }))
}

pub async fn delete_subnet(
    State(st): State<AppState>,
    ctx: Ctx,
    Path((_project, vpc_id, subnet_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    st.service
        .delete_subnet(&ctx.caller, &vpc_id, &subnet_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpc_times_have_no_zone_suffix() {
        assert_eq!(vpc_time(0), "1970-01-01T00:00:00");
        assert_eq!(vpc_time(1_700_000_000_123), "2023-11-14T22:13:20");
    }
}
