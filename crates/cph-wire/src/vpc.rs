//! VPC v1: VPCs and subnets (`/v1/{project_id}/vpcs`, `/v1/{project_id}/subnets`), shaped like the
//! VPC v1 API of huaweicloudsdkvpc v2 (CreateVpc, ListVpcs, ShowVpc, DeleteVpc, CreateSubnet,
//! ListSubnets, ShowSubnet, DeleteSubnet). Timestamps are UTC `yyyy-MM-ddTHH:mm:ss`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

// ---------------------------------------------------------------------------
// VPCs
// ---------------------------------------------------------------------------

/// Route of a VPC (SDK `Route`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Route {
    /// Destination CIDR; only `0.0.0.0/0`.
    pub destination: String,
    /// Next-hop IPv4 address.
    pub nexthop: String,
}

/// Virtual private cloud (SDK `Vpc`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Vpc {
    /// UUID.
    pub id: String,
    pub name: String,
    /// Address range available to subnets.
    pub cidr: String,
    pub description: String,
    pub routes: Vec<Route>,
    /// `CREATING` or `OK`.
    pub status: String,
    /// `"0"` = default enterprise project.
    pub enterprise_project_id: String,
    /// Project ID.
    pub tenant_id: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_service_endpoint_states: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// VPC to create (request; SDK `CreateVpcOption`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CreateVpcOption {
    /// Within 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, mask at most /28.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    /// Tags as `key*value` strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_service_endpoint_states: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// Request body of CreateVpc (`POST /v1/{project_id}/vpcs`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CreateVpcRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc: Option<CreateVpcOption>,
}

/// Response body of CreateVpc and ShowVpc (`{"vpc": {...}}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VpcResponse {
    pub vpc: Vpc,
}

/// Response body of CreateVpc.
pub type CreateVpcResponse = VpcResponse;
/// Response body of ShowVpc (`GET /v1/{project_id}/vpcs/{vpc_id}`).
pub type ShowVpcResponse = VpcResponse;

/// Query parameters of ListVpcs (`GET /v1/{project_id}/vpcs`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListVpcsQuery {
    /// Page size.
    pub limit: Option<String>,
    /// ID of the last VPC of the previous page.
    pub marker: Option<String>,
    /// Filter by VPC ID.
    pub id: Option<String>,
    pub enterprise_project_id: Option<String>,
}

/// Response body of ListVpcs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListVpcsResponse {
    pub vpcs: Vec<Vpc>,
}

// ---------------------------------------------------------------------------
// Subnets
// ---------------------------------------------------------------------------

/// Extra DHCP option of a subnet (request and response; SDK `ExtraDhcpOption`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ExtraDhcpOption {
    /// `ntp` or `addresstime`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_name: Option<String>,
    /// NTP addresses (comma-separated) or lease time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_value: Option<String>,
}

/// Subnet (SDK `Subnet`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Subnet {
    /// UUID (equal to `neutron_network_id`).
    pub id: String,
    pub name: String,
    pub description: String,
    pub cidr: String,
    pub gateway_ip: String,
    pub ipv6_enable: bool,
    /// Only for IPv6-enabled subnets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_v6: Option<String>,
    /// Only for IPv6-enabled subnets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_ip_v6: Option<String>,
    pub dhcp_enable: bool,
    pub primary_dns: String,
    pub secondary_dns: String,
    #[serde(rename = "dnsList")]
    pub dns_list: Vec<String>,
    pub availability_zone: String,
    pub vpc_id: String,
    /// `ACTIVE`, `UNKNOWN` or `ERROR`.
    pub status: String,
    pub neutron_network_id: String,
    pub neutron_subnet_id: String,
    /// Only for IPv6-enabled subnets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neutron_subnet_id_v6: Option<String>,
    pub extra_dhcp_opts: Vec<ExtraDhcpOption>,
    /// `center` or an AZ ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Project ID.
    pub tenant_id: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_network_address_usage_metrics: Option<bool>,
    /// Remaining free IPv4 addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_ip_address_count: Option<i32>,
}

/// Subnet to create (request; SDK `CreateSubnetOption`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CreateSubnetOption {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Within the VPC CIDR, mask at most /28.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// An address of `cidr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_enable: Option<bool>,
    /// Default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_enable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_dns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary_dns: Option<String>,
    #[serde(rename = "dnsList", skip_serializing_if = "Option::is_none")]
    pub dns_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_dhcp_opts: Option<Vec<ExtraDhcpOption>>,
    /// Tags as `key*value` strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// Request body of CreateSubnet (`POST /v1/{project_id}/subnets`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
pub struct CreateSubnetRequestBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<CreateSubnetOption>,
}

/// Response body of CreateSubnet and ShowSubnet (`{"subnet": {...}}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct SubnetResponse {
    pub subnet: Subnet,
}

/// Response body of CreateSubnet.
pub type CreateSubnetResponse = SubnetResponse;
/// Response body of ShowSubnet (`GET /v1/{project_id}/subnets/{subnet_id}`).
pub type ShowSubnetResponse = SubnetResponse;

/// Query parameters of ListSubnets (`GET /v1/{project_id}/subnets`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListSubnetsQuery {
    /// Page size.
    pub limit: Option<String>,
    /// ID of the last subnet of the previous page.
    pub marker: Option<String>,
    /// Filter by VPC.
    pub vpc_id: Option<String>,
}

/// Response body of ListSubnets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ListSubnetsResponse {
    pub subnets: Vec<Subnet>,
}
