//! Networks: default VPC and subnet per project, address allocation, EIPs and bandwidths.

use crate::{Result, Service, ServiceError};
use cph_domain::ids;
use cph_store::AnyConnection;
use cph_store::network::{self as store, Bandwidth, Eip, Subnet, Vpc};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// CIDR of every project's default VPC and subnet.
pub const DEFAULT_VPC_CIDR: &str = "172.16.0.0/12";
pub const DEFAULT_SUBNET_CIDR: &str = "172.16.0.0/16";

/// Pseudo-subnet under which public addresses are allocated.
pub const PUBLIC_POOL: &str = "public";

/// Where new EIPs go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EipTarget<'a> {
    pub project_id: &'a str,
    pub server_id: &'a str,
    pub band_width_id: &'a str,
    pub eip_type: &'a str,
}

/// A bandwidth to create.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BandwidthSpec<'a> {
    pub name: &'a str,
    pub size: i64,
    pub charge_mode: i64,
    pub share_type: i64,
}

impl Service {
    /// Creates the project's default VPC and subnet unless they exist; returns their ids.
    pub(crate) async fn ensure_default_network(
        &self,
        c: &mut AnyConnection,
        project_id: &str,
        now: i64,
    ) -> Result<(String, String)> {
        let vpcs = store::list_vpcs(c, project_id, 1000).await?;
        if let Some(v) = vpcs.iter().find(|v| v.is_default) {
            let subnets = store::list_subnets(c, project_id, Some(&v.vpc_id), 1000).await?;
            if let Some(s) = subnets.iter().find(|s| s.is_default) {
                return Ok((v.vpc_id.clone(), s.subnet_id.clone()));
            }
        }
        let vpc = Vpc {
            vpc_id: ids::uuid_id(),
            project_id: project_id.into(),
            name: "vpc-default".into(),
            cidr: DEFAULT_VPC_CIDR.into(),
            description: "default VPC".into(),
            enterprise_project_id: "0".into(),
            is_default: true,
            created_at: now,
            updated_at: now,
        };
        store::insert_vpc(c, &vpc).await?;
        let subnet = Subnet {
            subnet_id: ids::uuid_id(),
            project_id: project_id.into(),
            vpc_id: vpc.vpc_id.clone(),
            name: "subnet-default".into(),
            cidr: DEFAULT_SUBNET_CIDR.into(),
            gateway_ip: "172.16.0.1".into(),
            description: "default subnet".into(),
            availability_zone: self.config().availability_zone.clone(),
            dhcp_enable: true,
            primary_dns: String::new(),
            secondary_dns: String::new(),
            is_default: true,
            created_at: now,
            updated_at: now,
        };
        store::insert_subnet(c, &subnet).await?;
        Ok((vpc.vpc_id, subnet.subnet_id))
    }

    /// Picks `n` free addresses of `subnet` (skipping network, gateway and broadcast) and records
    /// them for `owners` (one owner per address). `CPS.0241` when the subnet is full.
    pub(crate) async fn allocate_subnet_ips(
        &self,
        c: &mut AnyConnection,
        subnet: &Subnet,
        owners: &[(&'static str, String)],
        now: i64,
    ) -> Result<Vec<String>> {
        let net: ipnet::Ipv4Net = subnet.cidr.parse().map_err(|_| {
            ServiceError::Internal(anyhow::anyhow!(
                "subnet {} has a bad cidr",
                subnet.subnet_id
            ))
        })?;
        let gateway: Option<Ipv4Addr> = subnet.gateway_ip.parse().ok();
        let taken: HashSet<String> = store::allocated_ips(c, &subnet.subnet_id)
            .await?
            .into_iter()
            .collect();
        let picked = pick_free(net, &taken, gateway, owners.len())
            .ok_or_else(|| ServiceError::cps("CPS.0241"))?;
        let rows: Vec<(String, &str, String)> = picked
            .iter()
            .zip(owners)
            .map(|(ip, (ty, id))| (ip.clone(), *ty, id.clone()))
            .collect();
        store::allocate_ips(c, &subnet.subnet_id, &subnet.project_id, &rows, now).await?;
        Ok(picked)
    }

    /// Allocates `n` public addresses from the configured pool as EIPs of `server_id`.
    pub(crate) async fn allocate_eips(
        &self,
        c: &mut AnyConnection,
        to: &EipTarget<'_>,
        n: usize,
        now: i64,
    ) -> Result<Vec<Eip>> {
        let EipTarget {
            project_id,
            server_id,
            band_width_id,
            eip_type,
        } = *to;
        if n == 0 {
            return Ok(Vec::new());
        }
        let taken: HashSet<String> = store::all_public_ips(c).await?.into_iter().collect();
        let picked = pick_free(self.config().public_ip_pool, &taken, None, n)
            .ok_or_else(|| ServiceError::cps("CPS.0241"))?;
        let mut out = Vec::with_capacity(n);
        for ip in picked {
            let e = Eip {
                eip_id: ids::uuid_id(),
                project_id: project_id.into(),
                public_ip: ip,
                eip_type: eip_type.into(),
                server_id: server_id.into(),
                band_width_id: band_width_id.into(),
                created_at: now,
            };
            store::insert_eip(c, &e).await?;
            out.push(e);
        }
        Ok(out)
    }

    /// A new bandwidth object.
    pub(crate) async fn create_bandwidth(
        &self,
        c: &mut AnyConnection,
        project_id: &str,
        spec: BandwidthSpec<'_>,
        now: i64,
    ) -> Result<Bandwidth> {
        let BandwidthSpec {
            name,
            size,
            charge_mode,
            share_type,
        } = spec;
        let b = Bandwidth {
            band_width_id: ids::uuid_id(),
            project_id: project_id.into(),
            name: name.into(),
            size,
            charge_mode,
            share_type,
            created_at: now,
            updated_at: now,
        };
        store::insert_bandwidth(c, &b).await?;
        Ok(b)
    }
}

/// The first `n` usable addresses of `net` not in `taken` (nor the gateway).
fn pick_free(
    net: ipnet::Ipv4Net,
    taken: &HashSet<String>,
    gateway: Option<Ipv4Addr>,
    n: usize,
) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Some(out);
    }
    for ip in net.hosts() {
        if Some(ip) == gateway {
            continue;
        }
        // Keep the first few addresses of a subnet for infrastructure, as clouds do.
        let o = ip.octets();
        if net.prefix_len() <= 24 && o[3] == 1 && u32::from(ip) - u32::from(net.network()) < 2 {
            continue;
        }
        let s = ip.to_string();
        if !taken.contains(&s) {
            out.push(s);
            if out.len() == n {
                return Some(out);
            }
        }
    }
    None
}

/// Bandwidth sizes UpdateBandwidth accepts: steps of 1 up to 300 Mbit/s, 50 up to 1000, 500 above.
pub fn bandwidth_size_ok(size: i64) -> bool {
    match size {
        1..=300 => true,
        301..=1000 => size % 50 == 0,
        1001..=100_000 => size % 500 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_skip_gateway_and_taken() {
        let net: ipnet::Ipv4Net = "10.0.0.0/29".parse().unwrap();
        let taken: HashSet<String> = ["10.0.0.3".to_string()].into_iter().collect();
        let got = pick_free(net, &taken, Some("10.0.0.1".parse().unwrap()), 3).unwrap();
        assert_eq!(got, vec!["10.0.0.2", "10.0.0.4", "10.0.0.5"]);
        assert!(pick_free(net, &taken, None, 10).is_none());
    }

    #[test]
    fn bandwidth_steps() {
        assert!(bandwidth_size_ok(1));
        assert!(bandwidth_size_ok(299));
        assert!(bandwidth_size_ok(350));
        assert!(!bandwidth_size_ok(351));
        assert!(bandwidth_size_ok(1500));
        assert!(!bandwidth_size_ok(1200));
        assert!(!bandwidth_size_ok(0));
    }
}
