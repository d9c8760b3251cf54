//! Servers: purchase, queries, rename, restart, model and phone changes, key pair changes.

use crate::jobs::kind;
use crate::validate::{dedup, is_valid_id, is_valid_name, pagination};
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use cph_domain::{PhoneStatus, ServerStatus, ids};
use cph_store::jobs::NewJob;
use cph_store::network::Eip;
use cph_store::servers::ServerFilter;
use cph_store::{PhoneRow, ServerRow};
use serde::{Deserialize, Serialize};

/// An application port a server forwards to its phones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    pub listen_port: i64,
    pub internet_accessible: String,
}

/// A disk: `volume_type` (SSD or GPSSD) and size in GB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub volume_type: String,
    pub size: i64,
}

/// The purchase request, as received (every field optional; the rules live in [`Service::buy_servers`]).
#[derive(Debug, Clone, Default)]
pub struct BuyServers {
    pub server_name: Option<String>,
    pub server_model_name: Option<String>,
    pub phone_model_name: Option<String>,
    pub image_id: Option<String>,
    pub count: Option<i64>,
    pub keypair_name: Option<String>,
    pub ports: Option<Vec<PortInput>>,
    pub charging_mode: Option<i64>,
    pub period_type: Option<i64>,
    pub period_num: Option<i64>,
    pub is_auto_pay: Option<i64>,
    pub is_auto_renew: Option<i64>,
    pub enterprise_project_id: Option<String>,
    pub extend_param_present: bool,
    pub tenant_vpc_id: Option<String>,
    /// Subnet ids of `nics`.
    pub nics: Option<Vec<Option<String>>>,
    pub public_ip_present: bool,
    pub public_ip_ids: Option<Vec<String>>,
    pub public_ip_eip_type: Option<String>,
    pub public_ip_eip_present: bool,
    pub public_ip_count: Option<i64>,
    pub phone_count_per_ip: Option<i64>,
    pub phone_data_volume: Option<VolumeInput>,
    pub server_share_data_volume: Option<VolumeInput>,
    pub band_width: Option<BandwidthInput>,
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PortInput {
    pub name: Option<String>,
    pub listen_port: Option<i64>,
    pub internet_accessible: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VolumeInput {
    pub volume_type: Option<String>,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct BandwidthInput {
    pub band_width_id: Option<String>,
    pub band_width_size: Option<i64>,
    pub band_width_charge_mode: Option<i64>,
    pub band_width_share_type: Option<i64>,
}

/// The result of a purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    pub order_id: String,
    pub product_id: String,
    pub server_ids: Vec<String>,
}

/// A server with what its views show besides the row.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerView {
    pub server: ServerRow,
    pub subnet_cidr: String,
    pub vpc_cidr: String,
    pub eips: Vec<Eip>,
    pub phones: Vec<PhoneRow>,
    /// The server's bandwidth (only loaded for the detail view).
    pub bandwidth: Option<cph_store::network::Bandwidth>,
}

const EIP_TYPES: &[&str] = &["5_telcom", "5_union", "5_bgp", "5_sbgp"];

fn check_volume(v: &VolumeInput) -> Result<Volume> {
    let vt = v.volume_type.clone().unwrap_or_default();
    if vt != "SSD" && vt != "GPSSD" {
        return Err(ServiceError::cps_msg(
            "CPS.0321",
            "Parameter: volume_type must be SSD or GPSSD.",
        ));
    }
    let size = v.size.filter(|s| (0..=32768).contains(s)).ok_or_else(|| {
        ServiceError::cps_msg(
            "CPS.0321",
            "Parameter: volume size must be within [0, 32768] GB.",
        )
    })?;
    Ok(Volume {
        volume_type: vt,
        size,
    })
}

/// Validates the application ports of a purchase (`CPS.0037`–`CPS.0041`, `CPS.0093`, `CPS.0145`).
pub fn check_ports(ports: &[PortInput]) -> Result<Vec<Port>> {
    if ports.len() > 10 {
        return Err(ServiceError::cps("CPS.0145"));
    }
    let mut names = std::collections::HashSet::new();
    let mut numbers = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(ports.len());
    for p in ports {
        let name = p
            .name
            .clone()
            .ok_or_else(|| ServiceError::cps("CPS.0038"))?;
        if name.is_empty()
            || name.len() > 16
            || name.eq_ignore_ascii_case("adb")
            || name.eq_ignore_ascii_case("vnc")
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ServiceError::cps("CPS.0038"));
        }
        let port = p.listen_port.ok_or_else(|| ServiceError::cps("CPS.0040"))?;
        if !(10000..=50000).contains(&port) {
            return Err(ServiceError::cps("CPS.0040"));
        }
        let ia = p
            .internet_accessible
            .clone()
            .ok_or_else(|| ServiceError::cps("CPS.0093"))?;
        if !names.insert(name.clone()) {
            return Err(ServiceError::cps("CPS.0039"));
        }
        if !numbers.insert(port) {
            return Err(ServiceError::cps("CPS.0041"));
        }
        out.push(Port {
            name,
            listen_port: port,
            internet_accessible: ia,
        });
    }
    Ok(out)
}

/// What the network part of a purchase-shaped body asks for (validated by [`check_network`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NetworkPlan {
    pub vpc_id: String,
    pub subnet_id: String,
    pub per_ip: i64,
    /// An existing EIP to bind (at most one).
    pub eip_ids: Vec<String>,
    pub eip_type: String,
    /// EIPs to allocate when none is given by id.
    pub eip_count: i64,
    pub phone_volume: Option<Volume>,
    pub share_volume: Option<Volume>,
    pub share_type: i64,
    pub charge_mode: i64,
    /// A shared bandwidth to use; `None` creates a dedicated one of `bw_size`.
    pub bw_id: Option<String>,
    pub bw_size: i64,
}

/// The stored-state half of [`check_network`]: the VPC and subnet exist in the caller's project
/// and belong together (`CPS.0223`, `CPS.0224`, `CPS.0228`), the key pair exists (`CPS.0067`) and a
/// given bandwidth exists with the requested share type (`CPS.0033`, `CPS.0034`).
pub(crate) async fn check_stored_network(
    c: &mut cph_store::AnyConnection,
    project_id: &str,
    ids: (&str, &str),
    keypair_name: &str,
    bandwidth: (Option<&str>, i64),
) -> Result<(cph_store::network::Vpc, cph_store::network::Subnet)> {
    let (vpc_id, subnet_id) = ids;
    let vpc = cph_store::network::get_vpc(c, project_id, vpc_id)
        .await?
        .ok_or_else(|| ServiceError::cps("CPS.0223"))?;
    let subnet = cph_store::network::get_subnet(c, project_id, subnet_id)
        .await?
        .ok_or_else(|| ServiceError::cps("CPS.0224"))?;
    if subnet.vpc_id != vpc.vpc_id {
        return Err(ServiceError::cps("CPS.0228"));
    }
    if !keypair_name.is_empty()
        && cph_store::network::get_keypair(c, project_id, keypair_name)
            .await?
            .is_none()
    {
        return Err(ServiceError::cps("CPS.0067"));
    }
    if let (Some(id), share_type) = bandwidth {
        let b = cph_store::network::get_bandwidth(c, project_id, id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0033"))?;
        if b.share_type != share_type {
            return Err(ServiceError::cps("CPS.0034"));
        }
    }
    Ok((vpc, subnet))
}

/// Validates VPC, NIC, public IP, volume and bandwidth fields of a purchase-shaped body for
/// `count` servers whose phone model holds `capacity` phones (`CPS.0223`, `CPS.0224`,
/// `CPS.0226`, `CPS.0238`, `CPS.0239`, `CPS.0251`–`CPS.0253`, `CPS.0321`, `CPS.0031`–`CPS.0036`).
/// Reads no stored state.
pub(crate) fn check_network(req: &BuyServers, capacity: i64, count: i64) -> Result<NetworkPlan> {
    let vpc_id = req
        .tenant_vpc_id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ServiceError::cps("CPS.0223"))?;
    let nics = req
        .nics
        .clone()
        .filter(|n| n.len() == 1)
        .ok_or_else(|| ServiceError::cps("CPS.0226"))?;
    let subnet_id = nics[0]
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ServiceError::cps("CPS.0224"))?;
    if !req.public_ip_present {
        return Err(ServiceError::cps("CPS.0238"));
    }
    let per_ip = req.phone_count_per_ip.unwrap_or(capacity);
    if per_ip < 1 || per_ip > capacity {
        return Err(ServiceError::cps_msg(
            "CPS.0238",
            "Parameter: phone_count_per_ip is invalid.",
        ));
    }
    let phone_ip_count = (capacity + per_ip - 1) / per_ip;
    let eip_ids = req.public_ip_ids.clone().unwrap_or_default();
    if eip_ids.len() > 1 {
        return Err(ServiceError::cps("CPS.0253"));
    }
    if !eip_ids.is_empty() && count > 1 {
        return Err(ServiceError::cps("CPS.0251"));
    }
    if !eip_ids.is_empty() && phone_ip_count > 1 {
        return Err(ServiceError::cps("CPS.0252"));
    }
    let eip_type = match (&req.public_ip_eip_type, req.public_ip_eip_present) {
        (Some(t), _) if EIP_TYPES.contains(&t.as_str()) => t.clone(),
        (None, false) => "5_bgp".to_string(),
        _ => return Err(ServiceError::cps("CPS.0239")),
    };
    let eip_count = if eip_ids.is_empty() {
        req.public_ip_count.unwrap_or(1)
    } else {
        0
    };
    if eip_count < 0 || eip_count > phone_ip_count {
        return Err(ServiceError::cps("CPS.0238"));
    }
    let phone_volume = req
        .phone_data_volume
        .as_ref()
        .map(check_volume)
        .transpose()?;
    let share_volume = req
        .server_share_data_volume
        .as_ref()
        .map(check_volume)
        .transpose()?;
    let bw = req
        .band_width
        .clone()
        .ok_or_else(|| ServiceError::cps("CPS.0031"))?;
    let share_type = bw
        .band_width_share_type
        .ok_or_else(|| ServiceError::cps("CPS.0034"))?;
    if share_type != 0 && share_type != 1 {
        return Err(ServiceError::cps("CPS.0034"));
    }
    let charge_mode = bw
        .band_width_charge_mode
        .ok_or_else(|| ServiceError::cps("CPS.0035"))?;
    if charge_mode != 0 && charge_mode != 1 {
        return Err(ServiceError::cps("CPS.0035"));
    }
    let bw_id = bw.band_width_id.clone().filter(|s| !s.is_empty());
    let bw_size = match (&bw_id, bw.band_width_size) {
        (Some(_), _) => 0,
        (None, Some(s)) if (1..=2000).contains(&s) => s,
        (None, _) => return Err(ServiceError::cps("CPS.0036")),
    };
    if share_type == 1 && bw_id.is_none() {
        // A shared ("whole") bandwidth is bought separately and referenced by id.
        return Err(ServiceError::cps("CPS.0032"));
    }
    Ok(NetworkPlan {
        vpc_id,
        subnet_id,
        per_ip,
        eip_ids,
        eip_type,
        eip_count,
        phone_volume,
        share_volume,
        share_type,
        charge_mode,
        bw_id,
        bw_size,
    })
}

/// Milliseconds in a charging period.
pub(crate) fn period_ms(period_type: i64, period_num: i64) -> i64 {
    const DAY: i64 = 24 * 3600 * 1000;
    match period_type {
        2 => period_num * 30 * DAY,
        _ => period_num * 365 * DAY,
    }
}

/// Order ids look like `CS` + date + 7 random characters, product ids like `00301-<n>-0--0`.
pub(crate) fn new_order_ids(now_ms: i64) -> (String, String) {
    let date = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("%y%m%d%H%M");
    let tail: String = ids::hex_id()[..7].to_uppercase();
    let n: u32 = rand::random::<u32>() % 100_000;
    (format!("CS{date}{tail}"), format!("00301-{n:05}-0--0"))
}

/// A fresh IMEI with a valid Luhn digit.
pub fn new_imei() -> String {
    let mut digits = String::from("86");
    for _ in 0..12 {
        digits.push(char::from(b'0' + (rand::random::<u8>() % 10)));
    }
    cph_domain::ids::imei_from_digits(&digits).unwrap_or_default()
}

/// The phone's address on its server's internal bridge.
pub fn phone_ip(slot: i64) -> String {
    format!("10.10.{}.{}", slot / 250, slot % 250 + 2)
}

impl Service {
    /// CreateNet2CloudPhoneServer: checks the whole request, then records the order, servers,
    /// phones, addresses, bandwidth and encode servers and enqueues one creation job per server,
    /// all in one transaction.
    pub async fn buy_servers(
        &self,
        caller: &Caller,
        request_id: &str,
        req: &BuyServers,
    ) -> Result<Purchase> {
        // ---- validation, no writes ----
        let name = req
            .server_name
            .clone()
            .ok_or_else(|| ServiceError::cps("CPS.0087"))?;
        if !is_valid_name(&name, 60) {
            return Err(ServiceError::cps("CPS.0087"));
        }
        let smn = req
            .server_model_name
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0088"))?;
        let server_model = self
            .catalog()
            .server_model(&smn)
            .ok_or_else(|| ServiceError::cps("CPS.0089"))?
            .clone();
        let pmn = req
            .phone_model_name
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0027"))?;
        let phone_model = self
            .catalog()
            .phone_model(&pmn)
            .ok_or_else(|| ServiceError::cps("CPS.0028"))?
            .clone();
        if phone_model.server_model_name != server_model.server_model_name {
            return Err(ServiceError::cps("CPS.0157"));
        }
        let image_id = req
            .image_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0029"))?;
        let image = self
            .catalog()
            .phone_image(&image_id)
            .ok_or_else(|| ServiceError::cps("CPS.0030"))?
            .clone();
        if image.image_label != phone_model.image_label {
            return Err(ServiceError::cps("CPS.0222"));
        }
        let count = req.count.ok_or_else(|| ServiceError::cps("CPS.0024"))?;
        if !(1..=10).contains(&count) {
            return Err(ServiceError::cps("CPS.0024"));
        }
        let ports = check_ports(req.ports.as_deref().unwrap_or_default())?;
        if !req.extend_param_present {
            return Err(ServiceError::cps("CPS.0055"));
        }
        if req.charging_mode != Some(0) {
            return Err(ServiceError::cps("CPS.0056"));
        }
        let period_type = req
            .period_type
            .ok_or_else(|| ServiceError::cps("CPS.0057"))?;
        if period_type != 2 && period_type != 3 {
            return Err(ServiceError::cps("CPS.0057"));
        }
        let period_num = req
            .period_num
            .ok_or_else(|| ServiceError::cps("CPS.0058"))?;
        let period_ok = if period_type == 2 {
            (1..=9).contains(&period_num)
        } else {
            (1..=10).contains(&period_num)
        };
        if !period_ok {
            return Err(ServiceError::cps("CPS.0058"));
        }
        let auto_pay = req.is_auto_pay.unwrap_or(0);
        if auto_pay != 0 && auto_pay != 1 {
            return Err(ServiceError::cps("CPS.0060"));
        }
        let auto_renew = req.is_auto_renew.unwrap_or(0);
        if auto_renew != 0 && auto_renew != 1 {
            return Err(ServiceError::cps("CPS.0059"));
        }
        let enterprise_project_id = req
            .enterprise_project_id
            .clone()
            .unwrap_or_else(|| "0".into());
        if enterprise_project_id.len() > 64 {
            return Err(ServiceError::cps("CPS.0316"));
        }
        let capacity = i64::from(phone_model.phone_capacity.max(1));
        let NetworkPlan {
            vpc_id,
            subnet_id,
            per_ip,
            eip_ids,
            eip_type,
            eip_count,
            phone_volume,
            share_volume,
            share_type,
            charge_mode,
            bw_id,
            bw_size,
        } = check_network(req, capacity, count)?;
        let az = req
            .availability_zone
            .clone()
            .unwrap_or_else(|| self.config().availability_zone.clone());
        if az != self.config().availability_zone {
            return Err(ServiceError::cps("CPS.0211"));
        }
        let keypair_name = req.keypair_name.clone().unwrap_or_default();
        if keypair_name.len() > 64 {
            return Err(ServiceError::cps("CPS.0067"));
        }

        // ---- checks against stored state and all writes, in one transaction ----
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        let (vpc, subnet) = check_stored_network(
            &mut tx,
            &caller.project_id,
            (&vpc_id, &subnet_id),
            &keypair_name,
            (bw_id.as_deref(), share_type),
        )
        .await?;
        let mut existing_eip = None;
        if let Some(id) = eip_ids.first() {
            let e = cph_store::network::get_eip(&mut tx, &caller.project_id, id)
                .await?
                .ok_or_else(|| ServiceError::cps("CPS.0253"))?;
            if !e.server_id.is_empty() {
                return Err(ServiceError::cps("CPS.0253"));
            }
            existing_eip = Some(e);
        }
        if self.store().backend() == cph_store::Backend::Postgres {
            cph_store::servers::lock_capacity(&mut tx, &smn).await?;
        }
        let cap = cph_store::servers::capacity(&mut tx, &smn)
            .await?
            .unwrap_or(self.config().default_host_capacity);
        let used = cph_store::servers::hosts_in_use(&mut tx, &smn).await?;
        if used + count > cap {
            return Err(ServiceError::cps("CPS.0066"));
        }
        let (order_id, product_id) = new_order_ids(now);
        cph_store::network::insert_order(
            &mut tx,
            &cph_store::network::Order {
                order_id: order_id.clone(),
                product_id: product_id.clone(),
                project_id: caller.project_id.clone(),
                kind: "server".into(),
                charging_mode: 0,
                period_type,
                period_num,
                auto_pay: auto_pay == 1,
                auto_renew: auto_renew == 1,
                detail: serde_json::json!({"server_model_name": smn, "phone_model_name": pmn, "count": count}).to_string(),
                created_at: now,
            },
        )
        .await?;
        let server_ids: Vec<String> = (0..count).map(|_| ids::hex_id()).collect();
        let owners: Vec<(&'static str, String)> =
            server_ids.iter().map(|id| ("server", id.clone())).collect();
        let server_ips = self
            .allocate_subnet_ips(&mut tx, &subnet, &owners, now)
            .await?;
        let ports_json = serde_json::to_string(&ports).map_err(anyhow::Error::from)?;
        let vol_json = |v: &Option<Volume>| {
            v.as_ref()
                .map(|v| serde_json::to_string(v).unwrap_or_default())
                .unwrap_or_else(|| "{}".into())
        };
        let mut jobs = Vec::with_capacity(server_ids.len());
        for (n, server_id) in server_ids.iter().enumerate() {
            let band_width_id = match &bw_id {
                Some(id) => id.clone(),
                None => {
                    self.create_bandwidth(
                        &mut tx,
                        &caller.project_id,
                        crate::network::BandwidthSpec {
                            name: &format!("bandwidth-{}", &server_id[..8]),
                            size: bw_size,
                            charge_mode,
                            share_type,
                        },
                        now,
                    )
                    .await?
                    .band_width_id
                }
            };
            let server_name = if count > 1 {
                format!("{name}-{:04}", n + 1)
            } else {
                name.clone()
            };
            let server = ServerRow {
                server_id: server_id.clone(),
                project_id: caller.project_id.clone(),
                server_name,
                server_model_name: smn.clone(),
                phone_model_name: pmn.clone(),
                image_id: image_id.clone(),
                keypair_name: keypair_name.clone(),
                status: ServerStatus::Creating.code(),
                vpc_id: vpc.vpc_id.clone(),
                subnet_id: subnet.subnet_id.clone(),
                server_ip: server_ips[n].clone(),
                host_id: format!("vhost-{server_id}"),
                order_id: order_id.clone(),
                product_id: product_id.clone(),
                charging_mode: 0,
                availability_zone: az.clone(),
                network_version: "v2".into(),
                enterprise_project_id: enterprise_project_id.clone(),
                band_width_id: band_width_id.clone(),
                phone_count_per_ip: per_ip,
                ports: ports_json.clone(),
                phone_data_volume: vol_json(&phone_volume),
                share_data_volume: vol_json(&share_volume),
                expires_at: now + period_ms(period_type, period_num),
                auto_renew: auto_renew == 1,
                created_at: now,
                updated_at: now,
            };
            cph_store::servers::insert(&mut tx, &server).await?;
            match &existing_eip {
                Some(e) => {
                    cph_store::network::bind_eip(&mut tx, &e.eip_id, server_id, &band_width_id)
                        .await?
                }
                None => {
                    self.allocate_eips(
                        &mut tx,
                        &crate::network::EipTarget {
                            project_id: &caller.project_id,
                            server_id,
                            band_width_id: &band_width_id,
                            eip_type: &eip_type,
                        },
                        eip_count as usize,
                        now,
                    )
                    .await?;
                }
            }
            let phones: Vec<PhoneRow> = (0..capacity)
                .map(|slot| PhoneRow {
                    phone_id: ids::hex_id(),
                    project_id: caller.project_id.clone(),
                    server_id: server_id.clone(),
                    phone_name: format!("{}-{:04}", &server_id[..8], slot + 1),
                    phone_model_name: pmn.clone(),
                    image_id: image_id.clone(),
                    status: PhoneStatus::Creating.code(),
                    phone_type: 0,
                    imei: new_imei(),
                    traffic_type: "direct".into(),
                    volume_mode: phone_model.volume_mode,
                    phone_ip: phone_ip(slot),
                    slot,
                    properties: "{}".into(),
                    custom_properties: "{}".into(),
                    created_at: now,
                    updated_at: now,
                    availability_zone: az.clone(),
                    order_id: order_id.clone(),
                    product_id: product_id.clone(),
                    host_id: String::new(),
                })
                .collect();
            cph_store::phones::insert_many(&mut tx, &phones).await?;
            cph_store::network::insert_encode_server(
                &mut tx,
                &cph_store::network::EncodeServer {
                    encode_server_id: ids::hex_id(),
                    project_id: caller.project_id.clone(),
                    server_id: server_id.clone(),
                    name: format!("encode-{}", &server_id[..8]),
                    ip: server_ips[n].clone(),
                    encode_type: 1,
                    // Created with its server: running once the server's creation job succeeds.
                    status: crate::encode::CREATING,
                    created_at: now,
                    updated_at: now,
                    keypair_name: String::new(),
                },
            )
            .await?;
            jobs.push(NewJob {
                job_id: ids::hex_id(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: kind::SERVER_CREATE.into(),
                phone_id: None,
                server_id: Some(server_id.clone()),
                encode_server_id: None,
                lock_key: format!("server:{server_id}"),
                payload: "{}".into(),
            });
        }
        cph_store::jobs::insert(&mut tx, &jobs, now).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        self.wake_jobs();
        Ok(Purchase {
            order_id,
            product_id,
            server_ids,
        })
    }

    /// ListCloudPhoneServers.
    pub async fn list_servers(
        &self,
        caller: &Caller,
        offset: Option<&str>,
        limit: Option<&str>,
        server_name: Option<&str>,
        server_id: Option<&str>,
        network_version: Option<&str>,
    ) -> Result<(Vec<ServerView>, i64)> {
        let (offset, limit) = pagination(offset, limit, 100)?;
        if let Some(v) = network_version
            && v != "v1"
            && v != "v2"
        {
            return Err(ServiceError::cps("CPS.0240"));
        }
        let f = ServerFilter {
            server_name_like: server_name.filter(|s| !s.is_empty()).map(str::to_string),
            server_id: server_id.filter(|s| !s.is_empty()).map(str::to_string),
            network_version: network_version.map(str::to_string),
        };
        let mut c = self.store().read().await?;
        let (rows, total) =
            cph_store::servers::list(&mut c, &caller.project_id, &f, offset, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for s in rows {
            out.push(self.server_view(&mut c, s, false).await?);
        }
        Ok((out, total))
    }

    async fn server_view(
        &self,
        c: &mut cph_store::AnyConnection,
        s: ServerRow,
        with_phones: bool,
    ) -> Result<ServerView> {
        let subnet = cph_store::network::get_subnet(c, &s.project_id, &s.subnet_id).await?;
        let vpc = cph_store::network::get_vpc(c, &s.project_id, &s.vpc_id).await?;
        let eips = cph_store::network::eips_of_server(c, &s.server_id).await?;
        let (phones, bandwidth) = if with_phones {
            (
                cph_store::phones::of_server(c, &s.server_id).await?,
                cph_store::network::get_bandwidth(c, &s.project_id, &s.band_width_id).await?,
            )
        } else {
            (Vec::new(), None)
        };
        Ok(ServerView {
            bandwidth,
            subnet_cidr: subnet.map(|x| x.cidr).unwrap_or_default(),
            vpc_cidr: vpc.map(|x| x.cidr).unwrap_or_default(),
            eips,
            phones,
            server: s,
        })
    }

    /// ShowCloudPhoneServerDetail (with its phones).
    pub async fn show_server(&self, caller: &Caller, server_id: &str) -> Result<ServerView> {
        if !is_valid_id(server_id, 64) {
            return Err(ServiceError::cps("CPS.0016"));
        }
        let mut c = self.store().read().await?;
        let s = cph_store::servers::get(&mut c, &caller.project_id, server_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0015"))?;
        self.server_view(&mut c, s, true).await
    }

    /// UpdateServerName.
    pub async fn rename_server(
        &self,
        caller: &Caller,
        server_id: &str,
        name: Option<&str>,
    ) -> Result<()> {
        let name = name.ok_or_else(|| ServiceError::cps("CPS.0087"))?;
        if !is_valid_name(name, 60) {
            return Err(ServiceError::cps("CPS.0087"));
        }
        if !is_valid_id(server_id, 64) {
            return Err(ServiceError::cps("CPS.0016"));
        }
        let mut tx = self.store().write().await?;
        match cph_store::servers::rename(
            &mut tx,
            &caller.project_id,
            server_id,
            name,
            self.now_ms(),
        )
        .await
        {
            Err(cph_store::StoreError::NotFound) => return Err(ServiceError::cps("CPS.0015")),
            r => r?,
        }
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// Common shape of the server batch operations.
    pub(crate) async fn server_batch(
        &self,
        caller: &Caller,
        request_id: &str,
        job_kind: &str,
        server_ids: Vec<String>,
        payload: serde_json::Value,
        check: impl Fn(&ServerRow) -> Result<()>,
    ) -> Result<Vec<BatchItem>> {
        let wanted: Vec<String> = dedup(&server_ids)
            .into_iter()
            .filter(|i| is_valid_id(i, 64))
            .collect();
        let rows = {
            let mut c = self.store().read().await?;
            cph_store::servers::get_many(&mut c, &caller.project_id, &wanted).await?
        };
        let rows: std::collections::HashMap<String, ServerRow> =
            rows.into_iter().map(|s| (s.server_id.clone(), s)).collect();
        let mut out = Vec::new();
        let mut jobs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in server_ids {
            let Some(s) = rows.get(&id) else {
                out.push(BatchItem::failed(&id, &ServiceError::cps("CPS.0097")));
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Err(e) = check(s) {
                out.push(BatchItem::failed(&id, &e));
                continue;
            }
            let job_id = ids::hex_id();
            jobs.push(NewJob {
                job_id: job_id.clone(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: job_kind.to_string(),
                phone_id: None,
                server_id: Some(id.clone()),
                encode_server_id: None,
                lock_key: format!("server:{id}"),
                payload: payload.to_string(),
            });
            out.push(BatchItem::job(&id, &job_id));
        }
        if !jobs.is_empty() {
            let mut tx = self.store().write().await?;
            cph_store::jobs::insert(&mut tx, &jobs, self.now_ms()).await?;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            self.wake_jobs();
        }
        Ok(out)
    }

    /// RestartCloudPhoneServer: every phone of the server goes down and comes back.
    pub async fn restart_servers(
        &self,
        caller: &Caller,
        request_id: &str,
        server_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let ids = server_ids
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0095"))?;
        if ids.len() > 100 {
            return Err(ServiceError::cps("CPS.0096"));
        }
        self.server_batch(
            caller,
            request_id,
            kind::SERVER_RESTART,
            ids,
            serde_json::Value::Null,
            server_operable,
        )
        .await
    }
}

/// A server that is being created, frozen or changing accepts no operation.
pub(crate) fn server_operable(s: &ServerRow) -> Result<()> {
    match ServerStatus::from_code(s.status) {
        Some(ServerStatus::Creating) => Err(ServiceError::cps("CPS.0099")),
        Some(ServerStatus::Frozen) => Err(ServiceError::cps("CPS.0317")),
        _ => Ok(()),
    }
}
