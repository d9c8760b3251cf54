//! VPC v1: VPCs and subnets, shaped like Huawei's VPC service (huaweicloudsdkvpc v2 module).
//!
//! Rules:
//! - A VPC CIDR lies inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 with a mask between the
//!   range's own and /28 (the limit the VPC API documents), and is a network address.
//! - A subnet CIDR is a network address with a mask of /16 to /28, inside its VPC's CIDR and
//!   disjoint from the VPC's other subnets; its gateway is a host address of the subnet.
//! - Names: a VPC name is 0–64 characters, a subnet name 1–64, of letters (Chinese included),
//!   digits, `_`, `-` and `.`; VPC names are unique within a project. Descriptions are at most
//!   255 characters without `<` or `>`.
//! - A VPC with subnets cannot be deleted; a subnet holding servers or addresses cannot be
//!   deleted. The default VPC and subnet created at project bootstrap are ordinary objects.
//!
//! Errors use the error body of the rest of the API. Where the CPH table (section 7.2) has a
//! code for the condition, that code is used: `CPS.0197` VPC CIDR, `CPS.0191` subnet CIDR (also
//! outside the VPC), `CPS.0194` overlap, `CPS.0227` gateway, `CPS.0223` missing `vpc_id`,
//! `CPS.0228` subnet of another VPC, `CPS.0236`/`CPS.0229` VPC/subnet not found (404),
//! `CPS.0211` availability zone, `CPS.0319` IPv6, `CPS.0316` enterprise project, `CPS.0002`
//! page size or marker. Conditions the CPH table has no code for take the code Huawei's VPC
//! service documents for them: `VPC.0101` invalid VPC parameter, `VPC.0115` VPC name exists,
//! `VPC.0104` (409) VPC still has subnets, `VPC.0201` invalid subnet parameter, `VPC.0209`
//! (409) subnet still in use.

use crate::validate::is_cjk;
use crate::{Caller, Result, Service, ServiceError};
use cph_domain::ids;
use cph_store::network::{Subnet, Vpc};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Largest page of ListVpcs and ListSubnets (also the default).
pub const MAX_PAGE: i64 = 2000;
/// Most tags on one VPC or subnet.
pub const MAX_TAGS: usize = 10;

/// The private ranges a VPC may use.
const PRIVATE_RANGES: [(Ipv4Addr, u8); 3] = [
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
];
/// Longest mask of a VPC or subnet.
const MAX_PREFIX: u8 = 28;
/// Shortest mask of a subnet.
const MIN_SUBNET_PREFIX: u8 = 16;

/// Tag resource types under which VPC and subnet tags are kept.
const TAG_VPC: &str = "vpc";
const TAG_SUBNET: &str = "subnet";

fn vpc_param(msg: impl Into<String>) -> ServiceError {
    ServiceError::raw(400, "VPC.0101", msg)
}

fn subnet_param(msg: impl Into<String>) -> ServiceError {
    ServiceError::raw(400, "VPC.0201", msg)
}

/// Parses `a.b.c.d/p` strictly: a dotted quad, a mask of 0–32, and no host bits set.
pub fn parse_network(s: &str) -> Option<Ipv4Net> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    let net = Ipv4Net::new(addr, prefix).ok()?;
    (net.network() == addr).then_some(net)
}

/// A VPC CIDR as the VPC API accepts it.
pub fn vpc_cidr(s: &str) -> Option<Ipv4Net> {
    let net = parse_network(s)?;
    PRIVATE_RANGES.iter().find_map(|(base, len)| {
        let range = Ipv4Net::new(*base, *len).ok()?;
        (net.prefix_len() >= *len && net.prefix_len() <= MAX_PREFIX && range.contains(&net))
            .then_some(net)
    })
}

/// Why a subnet CIDR is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubnetCidrError {
    /// Not a network address, or a mask outside /16–/28.
    Malformed,
    /// Not inside the VPC's CIDR.
    OutsideVpc,
}

/// A subnet CIDR inside the VPC CIDR `vpc`.
pub fn subnet_cidr(s: &str, vpc: Ipv4Net) -> std::result::Result<Ipv4Net, SubnetCidrError> {
    let net = parse_network(s).ok_or(SubnetCidrError::Malformed)?;
    if net.prefix_len() < MIN_SUBNET_PREFIX || net.prefix_len() > MAX_PREFIX {
        return Err(SubnetCidrError::Malformed);
    }
    if !vpc.contains(&net) {
        return Err(SubnetCidrError::OutsideVpc);
    }
    Ok(net)
}

/// Whether two networks share an address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// A gateway: an address of the subnet other than its network and broadcast addresses.
pub fn gateway_ok(gateway: Ipv4Addr, net: Ipv4Net) -> bool {
    net.contains(&gateway) && gateway != net.network() && gateway != net.broadcast()
}

/// A VPC or subnet name: up to 64 letters (Chinese included), digits, `_`, `-`, `.`.
pub fn name_ok(name: &str, allow_empty: bool) -> bool {
    let n = name.chars().count();
    (allow_empty || n >= 1)
        && n <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || is_cjk(c))
}

/// A description: at most 255 characters, no `<` or `>`.
pub fn description_ok(d: &str) -> bool {
    d.chars().count() <= 255 && !d.contains(['<', '>'])
}

/// An enterprise project id: `"0"` or a UUID with hyphens.
pub fn enterprise_project_ok(id: &str) -> bool {
    id == "0" || (id.len() == 36 && uuid::Uuid::try_parse(id).is_ok())
}

/// Tags in `key*value` form: at most 10, unique keys of 1–36 and values of 0–43 characters
/// (letters, digits, `_`, `-`, `.` and Chinese characters).
pub fn parse_tags(tags: &[String]) -> Option<Vec<(String, String)>> {
    if tags.len() > MAX_TAGS {
        return None;
    }
    let part_ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || is_cjk(c))
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for t in tags {
        let (k, v) = t.split_once('*')?;
        if k.is_empty() || k.chars().count() > 36 || v.chars().count() > 43 {
            return None;
        }
        if !part_ok(k) || !part_ok(v) || out.iter().any(|(ok, _)| ok == k) {
            return None;
        }
        out.push((k.to_string(), v.to_string()));
    }
    Some(out)
}

/// Free addresses of a subnet as [`Service::allocate_subnet_ips`] hands them out: hosts other
/// than the gateway and the reserved second address, minus those allocated.
pub fn available_ips(net: Ipv4Net, gateway: Option<Ipv4Addr>, allocated: i64) -> i64 {
    let hosts: i64 = match net.prefix_len() {
        32 => 1,
        31 => 2,
        p => (1i64 << (32 - u32::from(p))) - 2,
    };
    let mut reserved = 0;
    if let Some(g) = gateway
        && net.hosts().next().is_some()
        && gateway_ok(g, net)
    {
        reserved += 1;
    }
    // The first host address (x.x.x.1) is kept back by the allocator unless it is the gateway.
    let first = Ipv4Addr::from(u32::from(net.network()) + 1);
    if net.prefix_len() <= 24 && Some(first) != gateway {
        reserved += 1;
    }
    (hosts - reserved - allocated).max(0)
}

/// A VPC to create, as received.
#[derive(Debug, Clone, Default)]
pub struct NewVpc {
    /// False when the body has no `vpc` object.
    pub present: bool,
    pub cidr: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub enterprise_project_id: Option<String>,
    pub tags: Option<Vec<String>>,
    pub block_service_endpoint_states: Option<String>,
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// A subnet to create, as received.
#[derive(Debug, Clone, Default)]
pub struct NewSubnet {
    /// False when the body has no `subnet` object.
    pub present: bool,
    pub name: Option<String>,
    pub description: Option<String>,
    pub cidr: Option<String>,
    pub vpc_id: Option<String>,
    pub gateway_ip: Option<String>,
    pub ipv6_enable: Option<bool>,
    pub dhcp_enable: Option<bool>,
    pub primary_dns: Option<String>,
    pub secondary_dns: Option<String>,
    pub dns_list: Option<Vec<String>>,
    pub availability_zone: Option<String>,
    /// Number of `extra_dhcp_opts` entries given.
    pub extra_dhcp_opts: usize,
    pub tags: Option<Vec<String>>,
    pub enable_network_address_usage_metrics: Option<bool>,
}

/// A subnet with the figures its views show.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetView {
    pub subnet: Subnet,
    /// Free IPv4 addresses.
    pub available_ips: i64,
    /// The id of the subnet object behind the network (stable, derived from the subnet id).
    pub neutron_subnet_id: String,
}

/// A stable UUID-shaped id derived from `seed`.
fn derived_uuid(seed: &str) -> String {
    use md5::{Digest, Md5};
    let mut b: [u8; 16] = Md5::digest(seed.as_bytes()).into();
    b[6] = (b[6] & 0x0f) | 0x30;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).hyphenated().to_string()
}

fn page_limit(limit: Option<&str>) -> Result<i64> {
    crate::validate::page_param(limit, MAX_PAGE, 1, MAX_PAGE)
}

fn ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

impl Service {
    /// CreateVpc.
    pub async fn create_vpc(&self, caller: &Caller, req: &NewVpc) -> Result<Vpc> {
        if !req.present {
            return Err(vpc_param(
                "Param is invalid: the request has no vpc object.",
            ));
        }
        let cidr = req
            .cidr
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ServiceError::cps_msg("CPS.0197", "Parameter: vpc_cidr is missing."))?;
        let net = vpc_cidr(cidr).ok_or_else(|| {
            ServiceError::cps_msg(
                "CPS.0197",
                format!(
                    "Parameter: vpc_cidr {cidr} is invalid: it must be a network address within \
                     10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 with a mask of at most /28."
                ),
            )
        })?;
        let name = req.name.clone().unwrap_or_default();
        if !name_ok(&name, true) {
            return Err(vpc_param(
                "Param is invalid: name must be 0-64 letters, digits, '_', '-' or '.'.",
            ));
        }
        let description = req.description.clone().unwrap_or_default();
        if !description_ok(&description) {
            return Err(vpc_param(
                "Param is invalid: description must be at most 255 characters without '<' or '>'.",
            ));
        }
        let epid = req
            .enterprise_project_id
            .clone()
            .unwrap_or_else(|| "0".into());
        if !enterprise_project_ok(&epid) {
            return Err(ServiceError::cps("CPS.0316"));
        }
        let tags = parse_tags(req.tags.as_deref().unwrap_or_default()).ok_or_else(|| {
            vpc_param("Param is invalid: tags must be at most 10 unique 'key*value' strings.")
        })?;
        match req.block_service_endpoint_states.as_deref() {
            None | Some("off") => {}
            Some("on") => {
                return Err(vpc_param(
                    "Param is invalid: block_service_endpoint_states=on is not supported here.",
                ));
            }
            Some(_) => {
                return Err(vpc_param(
                    "Param is invalid: block_service_endpoint_states must be on or off.",
                ));
            }
        }
        if req.enable_network_address_usage_metrics == Some(true) {
            return Err(vpc_param(
                "Param is invalid: enable_network_address_usage_metrics is not supported here.",
            ));
        }

        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        if !name.is_empty()
            && cph_store::netops::vpc_name_taken(&mut tx, &caller.project_id, &name).await?
        {
            return Err(ServiceError::raw(
                400,
                "VPC.0115",
                format!("The VPC name {name} already exists."),
            ));
        }
        let vpc = Vpc {
            vpc_id: ids::uuid_id(),
            project_id: caller.project_id.clone(),
            name,
            cidr: net.to_string(),
            description,
            enterprise_project_id: epid,
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        cph_store::network::insert_vpc(&mut tx, &vpc).await?;
        for (k, v) in &tags {
            cph_store::tags::upsert(&mut tx, &caller.project_id, TAG_VPC, &vpc.vpc_id, k, v)
                .await?;
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(vpc)
    }

    /// ListVpcs: the project's VPCs in creation order, `limit` per page after `marker`.
    pub async fn list_vpcs(
        &self,
        caller: &Caller,
        limit: Option<&str>,
        marker: Option<&str>,
        id: Option<&str>,
        enterprise_project_id: Option<&str>,
    ) -> Result<Vec<Vpc>> {
        let limit = page_limit(limit)?;
        let epid = enterprise_project_id
            .filter(|e| !e.is_empty() && *e != "all_granted_eps")
            .map(str::to_string);
        if let Some(e) = &epid
            && !enterprise_project_ok(e)
        {
            return Err(ServiceError::cps("CPS.0316"));
        }
        let mut c = self.store().read().await?;
        let after = match marker.filter(|m| !m.is_empty()) {
            Some(m) => {
                let v = cph_store::network::get_vpc(&mut c, &caller.project_id, m)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::cps_msg(
                            "CPS.0002",
                            format!("Parameter: marker {m} names no VPC."),
                        )
                    })?;
                Some((v.created_at, v.vpc_id))
            }
            None => None,
        };
        Ok(cph_store::netops::vpcs_page(
            &mut c,
            &caller.project_id,
            id.filter(|i| !i.is_empty()),
            epid.as_deref(),
            after.as_ref().map(|(t, i)| (*t, i.as_str())),
            limit,
        )
        .await?)
    }

    /// ShowVpc.
    pub async fn show_vpc(&self, caller: &Caller, vpc_id: &str) -> Result<Vpc> {
        let mut c = self.store().read().await?;
        cph_store::network::get_vpc(&mut c, &caller.project_id, vpc_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0236"))
    }

    /// DeleteVpc: only a VPC without subnets.
    pub async fn delete_vpc(&self, caller: &Caller, vpc_id: &str) -> Result<()> {
        let mut tx = self.store().write().await?;
        if !cph_store::netops::lock_vpc(&mut tx, &caller.project_id, vpc_id).await? {
            return Err(ServiceError::cps("CPS.0236"));
        }
        if cph_store::network::count_subnets_of_vpc(&mut tx, vpc_id).await? > 0 {
            return Err(ServiceError::raw(
                409,
                "VPC.0104",
                "The VPC cannot be deleted because it contains subnets; delete them first.",
            ));
        }
        cph_store::network::delete_vpc(&mut tx, &caller.project_id, vpc_id).await?;
        cph_store::netops::delete_tags_of(&mut tx, TAG_VPC, vpc_id).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// CreateSubnet.
    pub async fn create_subnet(&self, caller: &Caller, req: &NewSubnet) -> Result<SubnetView> {
        if !req.present {
            return Err(subnet_param(
                "Incorrect subnet parameters: the request has no subnet object.",
            ));
        }
        let name = req.name.clone().unwrap_or_default();
        if !name_ok(&name, false) {
            return Err(subnet_param(
                "Incorrect subnet parameters: name must be 1-64 letters, digits, '_', '-' or '.'.",
            ));
        }
        let description = req.description.clone().unwrap_or_default();
        if !description_ok(&description) {
            return Err(subnet_param(
                "Incorrect subnet parameters: description must be at most 255 characters without '<' or '>'.",
            ));
        }
        let vpc_id = req
            .vpc_id
            .clone()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ServiceError::cps_msg("CPS.0223", "Parameter: vpc_id is missing."))?;
        let cidr_raw = req.cidr.clone().filter(|c| !c.is_empty()).ok_or_else(|| {
            ServiceError::cps_msg("CPS.0191", "Parameter: subnet_cidr is missing.")
        })?;
        let malformed = || {
            ServiceError::cps_msg(
                "CPS.0191",
                format!(
                    "Parameter: subnet_cidr {cidr_raw} is invalid: it must be a network address with a mask of /16 to /28."
                ),
            )
        };
        // Without the VPC the CIDR can still be checked for shape.
        let shape = parse_network(&cidr_raw)
            .filter(|n| (MIN_SUBNET_PREFIX..=MAX_PREFIX).contains(&n.prefix_len()))
            .ok_or_else(malformed)?;
        let gateway_raw = req.gateway_ip.clone().unwrap_or_default();
        let gateway = ipv4(&gateway_raw).ok_or_else(|| {
            ServiceError::cps_msg(
                "CPS.0227",
                format!("Parameter: gateway_ip '{gateway_raw}' is not an IPv4 address."),
            )
        })?;
        if !gateway_ok(gateway, shape) {
            return Err(ServiceError::cps_msg(
                "CPS.0227",
                format!("Parameter: gateway_ip {gateway} is not a host address of {shape}."),
            ));
        }
        if req.ipv6_enable == Some(true) {
            return Err(ServiceError::cps("CPS.0319"));
        }
        let mut dns: Vec<Ipv4Addr> = Vec::new();
        for (field, v) in [
            ("primary_dns", &req.primary_dns),
            ("secondary_dns", &req.secondary_dns),
        ] {
            match v.as_deref() {
                None | Some("") => {}
                Some(s) => dns.push(ipv4(s).ok_or_else(|| {
                    subnet_param(format!(
                        "Incorrect subnet parameters: {field} '{s}' is not an IPv4 address."
                    ))
                })?),
            }
        }
        if req.secondary_dns.as_deref().is_some_and(|s| !s.is_empty())
            && req.primary_dns.as_deref().is_none_or(str::is_empty)
        {
            return Err(subnet_param(
                "Incorrect subnet parameters: secondary_dns needs primary_dns.",
            ));
        }
        if let Some(list) = &req.dns_list {
            let mut listed = Vec::new();
            for s in list {
                listed.push(ipv4(s).ok_or_else(|| {
                    subnet_param(format!(
                        "Incorrect subnet parameters: dnsList entry '{s}' is not an IPv4 address."
                    ))
                })?);
            }
            if dns.is_empty() {
                dns = listed.clone();
            }
            if listed.iter().any(|a| !dns.contains(a)) || dns.iter().any(|a| !listed.contains(a)) {
                return Err(subnet_param(
                    "Incorrect subnet parameters: dnsList must hold exactly primary_dns and secondary_dns (at most two servers are supported).",
                ));
            }
        }
        if dns.len() > 2 {
            return Err(subnet_param(
                "Incorrect subnet parameters: at most two DNS servers are supported.",
            ));
        }
        let az = match req.availability_zone.as_deref() {
            None | Some("") => self.config().availability_zone.clone(),
            Some(a) if a == self.config().availability_zone => a.to_string(),
            Some(_) => return Err(ServiceError::cps("CPS.0211")),
        };
        if req.extra_dhcp_opts > 0 {
            return Err(subnet_param(
                "Incorrect subnet parameters: extra_dhcp_opts are not supported here.",
            ));
        }
        if req.enable_network_address_usage_metrics == Some(true) {
            return Err(subnet_param(
                "Incorrect subnet parameters: enable_network_address_usage_metrics is not supported here.",
            ));
        }
        let tags = parse_tags(req.tags.as_deref().unwrap_or_default()).ok_or_else(|| {
            subnet_param(
                "Incorrect subnet parameters: tags must be at most 10 unique 'key*value' strings.",
            )
        })?;

        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        if !cph_store::netops::lock_vpc(&mut tx, &caller.project_id, &vpc_id).await? {
            return Err(ServiceError::cps("CPS.0236"));
        }
        let vpc = cph_store::network::get_vpc(&mut tx, &caller.project_id, &vpc_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0236"))?;
        let vpc_net: Ipv4Net = vpc.cidr.parse().map_err(|_| {
            ServiceError::Internal(anyhow::anyhow!("VPC {} has a bad cidr", vpc.vpc_id))
        })?;
        let net = subnet_cidr(&cidr_raw, vpc_net).map_err(|e| match e {
            SubnetCidrError::Malformed => malformed(),
            SubnetCidrError::OutsideVpc => ServiceError::cps_msg(
                "CPS.0191",
                format!(
                    "Parameter: subnet_cidr {net} is not within the VPC's CIDR {vpc_net}.",
                    net = shape
                ),
            ),
        })?;
        for other in cph_store::netops::subnets_of_vpc(&mut tx, &vpc_id).await? {
            if let Ok(o) = other.cidr.parse::<Ipv4Net>()
                && overlaps(o, net)
            {
                return Err(ServiceError::cps_msg(
                    "CPS.0194",
                    format!(
                        "The subnet overlaps with an existing one: {net} overlaps {o} of subnet {}.",
                        other.subnet_id
                    ),
                ));
            }
        }
        let subnet = Subnet {
            subnet_id: ids::uuid_id(),
            project_id: caller.project_id.clone(),
            vpc_id: vpc.vpc_id.clone(),
            name,
            cidr: net.to_string(),
            gateway_ip: gateway.to_string(),
            description,
            availability_zone: az,
            dhcp_enable: req.dhcp_enable.unwrap_or(true),
            primary_dns: dns.first().map(|a| a.to_string()).unwrap_or_default(),
            secondary_dns: dns.get(1).map(|a| a.to_string()).unwrap_or_default(),
            is_default: false,
            created_at: now,
            updated_at: now,
        };
        cph_store::network::insert_subnet(&mut tx, &subnet).await?;
        for (k, v) in &tags {
            cph_store::tags::upsert(
                &mut tx,
                &caller.project_id,
                TAG_SUBNET,
                &subnet.subnet_id,
                k,
                v,
            )
            .await?;
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(self.subnet_view(subnet, 0))
    }

    fn subnet_view(&self, subnet: Subnet, allocated: i64) -> SubnetView {
        let available = subnet
            .cidr
            .parse::<Ipv4Net>()
            .map(|n| available_ips(n, subnet.gateway_ip.parse().ok(), allocated))
            .unwrap_or(0);
        SubnetView {
            neutron_subnet_id: derived_uuid(&format!("subnet:{}", subnet.subnet_id)),
            available_ips: available,
            subnet,
        }
    }

    async fn subnet_views(
        &self,
        c: &mut cph_store::AnyConnection,
        subnets: Vec<Subnet>,
    ) -> Result<Vec<SubnetView>> {
        let mut out = Vec::with_capacity(subnets.len());
        for s in subnets {
            let n = cph_store::network::count_allocations(c, &s.subnet_id).await?;
            out.push(self.subnet_view(s, n));
        }
        Ok(out)
    }

    /// ListSubnets: the project's subnets (of one VPC when `vpc_id` is given).
    pub async fn list_subnets(
        &self,
        caller: &Caller,
        limit: Option<&str>,
        marker: Option<&str>,
        vpc_id: Option<&str>,
    ) -> Result<Vec<SubnetView>> {
        let limit = page_limit(limit)?;
        let mut c = self.store().read().await?;
        let after = match marker.filter(|m| !m.is_empty()) {
            Some(m) => {
                let s = cph_store::network::get_subnet(&mut c, &caller.project_id, m)
                    .await?
                    .ok_or_else(|| {
                        ServiceError::cps_msg(
                            "CPS.0002",
                            format!("Parameter: marker {m} names no subnet."),
                        )
                    })?;
                Some((s.created_at, s.subnet_id))
            }
            None => None,
        };
        let rows = cph_store::netops::subnets_page(
            &mut c,
            &caller.project_id,
            vpc_id.filter(|v| !v.is_empty()),
            after.as_ref().map(|(t, i)| (*t, i.as_str())),
            limit,
        )
        .await?;
        self.subnet_views(&mut c, rows).await
    }

    /// ShowSubnet.
    pub async fn show_subnet(&self, caller: &Caller, subnet_id: &str) -> Result<SubnetView> {
        let mut c = self.store().read().await?;
        let s = cph_store::network::get_subnet(&mut c, &caller.project_id, subnet_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0229"))?;
        let mut v = self.subnet_views(&mut c, vec![s]).await?;
        Ok(v.remove(0))
    }

    /// DeleteSubnet: only a subnet of that VPC that no server or address uses.
    pub async fn delete_subnet(
        &self,
        caller: &Caller,
        vpc_id: &str,
        subnet_id: &str,
    ) -> Result<()> {
        let mut tx = self.store().write().await?;
        if !cph_store::netops::lock_vpc(&mut tx, &caller.project_id, vpc_id).await? {
            return Err(ServiceError::cps("CPS.0236"));
        }
        let s = cph_store::network::get_subnet(&mut tx, &caller.project_id, subnet_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0229"))?;
        if s.vpc_id != vpc_id {
            return Err(ServiceError::cps("CPS.0228"));
        }
        let servers = cph_store::netops::servers_in_subnet(&mut tx, subnet_id).await?;
        let addresses = cph_store::network::count_allocations(&mut tx, subnet_id).await?;
        if servers > 0 || addresses > 0 {
            return Err(ServiceError::raw(
                409,
                "VPC.0209",
                format!(
                    "The subnet cannot be deleted because it is in use ({servers} servers, {addresses} addresses)."
                ),
            ));
        }
        cph_store::network::delete_subnet(&mut tx, &caller.project_id, subnet_id).await?;
        cph_store::netops::delete_tags_of(&mut tx, TAG_SUBNET, subnet_id).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn vpc_cidrs() {
        for ok in [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "172.16.0.0/12",
            "172.31.255.240/28",
            "192.168.0.0/16",
            "192.168.1.0/24",
        ] {
            assert!(vpc_cidr(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/7",
            "10.0.0.0/29",
            "10.0.0.1/16",
            "11.0.0.0/8",
            "172.16.0.0/11",
            "172.32.0.0/16",
            "192.168.0.0/15",
            "8.8.8.0/24",
            "10.0.0.0/+8",
            "10.0.0.0/008",
            "300.0.0.0/8",
            "10.0.0/8",
            " 10.0.0.0/8",
        ] {
            assert!(vpc_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn subnet_cidrs() {
        let vpc = net("192.168.0.0/16");
        assert_eq!(
            subnet_cidr("192.168.0.0/16", vpc),
            Ok(net("192.168.0.0/16"))
        );
        assert_eq!(
            subnet_cidr("192.168.3.0/24", vpc),
            Ok(net("192.168.3.0/24"))
        );
        assert_eq!(
            subnet_cidr("192.168.3.16/28", vpc),
            Ok(net("192.168.3.16/28"))
        );
        assert_eq!(
            subnet_cidr("192.168.3.0/29", vpc),
            Err(SubnetCidrError::Malformed)
        );
        assert_eq!(
            subnet_cidr("192.168.3.1/24", vpc),
            Err(SubnetCidrError::Malformed)
        );
        assert_eq!(
            subnet_cidr("10.0.0.0/15", net("10.0.0.0/8")),
            Err(SubnetCidrError::Malformed)
        );
        assert_eq!(
            subnet_cidr("10.0.0.0/24", vpc),
            Err(SubnetCidrError::OutsideVpc)
        );
        assert_eq!(
            subnet_cidr("192.168.0.0/16", net("192.168.0.0/17")),
            Err(SubnetCidrError::OutsideVpc)
        );
    }

    #[test]
    fn overlap_and_gateway() {
        assert!(overlaps(net("10.0.0.0/16"), net("10.0.5.0/24")));
        assert!(overlaps(net("10.0.5.0/24"), net("10.0.0.0/16")));
        assert!(overlaps(net("10.0.5.0/24"), net("10.0.5.0/24")));
        assert!(!overlaps(net("10.0.5.0/24"), net("10.0.6.0/24")));
        assert!(!overlaps(net("10.0.5.0/25"), net("10.0.5.128/25")));
        let s = net("10.0.5.0/24");
        assert!(gateway_ok("10.0.5.1".parse().unwrap(), s));
        assert!(gateway_ok("10.0.5.254".parse().unwrap(), s));
        assert!(!gateway_ok("10.0.5.0".parse().unwrap(), s));
        assert!(!gateway_ok("10.0.5.255".parse().unwrap(), s));
        assert!(!gateway_ok("10.0.6.1".parse().unwrap(), s));
    }

    #[test]
    fn names_descriptions_tags() {
        assert!(name_ok("", true));
        assert!(!name_ok("", false));
        assert!(name_ok("vpc-01_a.b", false));
        assert!(name_ok("网络1", false));
        assert!(name_ok(&"a".repeat(64), false));
        assert!(!name_ok(&"a".repeat(65), false));
        assert!(!name_ok("a b", false));
        assert!(!name_ok("a/b", false));
        assert!(description_ok(""));
        assert!(description_ok(&"d".repeat(255)));
        assert!(!description_ok(&"d".repeat(256)));
        assert!(!description_ok("a<b"));
        assert!(enterprise_project_ok("0"));
        assert!(enterprise_project_ok(
            "0b5c6a4a-6f3a-4c6a-9b5e-8e6a1f2b3c4d"
        ));
        assert!(!enterprise_project_ok("1"));
        assert_eq!(
            parse_tags(&["k*v".into(), "k2*".into()]),
            Some(vec![("k".into(), "v".into()), ("k2".into(), String::new())])
        );
        assert!(parse_tags(&["kv".into()]).is_none());
        assert!(parse_tags(&["*v".into()]).is_none());
        assert!(parse_tags(&["k*v".into(), "k*w".into()]).is_none());
        assert!(parse_tags(&(0..11).map(|i| format!("k{i}*v")).collect::<Vec<_>>()).is_none());
    }

    #[test]
    fn free_addresses() {
        // /24: 254 hosts, minus gateway .1 → 253.
        assert_eq!(
            available_ips(net("10.0.0.0/24"), Some("10.0.0.1".parse().unwrap()), 0),
            253
        );
        // Gateway elsewhere: .1 is still kept back.
        assert_eq!(
            available_ips(net("10.0.0.0/24"), Some("10.0.0.9".parse().unwrap()), 3),
            249
        );
        // /28 keeps nothing back but the gateway.
        assert_eq!(
            available_ips(net("10.0.0.16/28"), Some("10.0.0.17".parse().unwrap()), 0),
            13
        );
        assert_eq!(
            available_ips(net("10.0.0.16/28"), Some("10.0.0.17".parse().unwrap()), 99),
            0
        );
    }

    #[test]
    fn derived_ids_are_stable_uuids() {
        let a = derived_uuid("x");
        assert_eq!(a, derived_uuid("x"));
        assert_ne!(a, derived_uuid("y"));
        assert!(uuid::Uuid::try_parse(&a).is_ok());
    }
}
