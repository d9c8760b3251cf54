//! Server lifecycle beyond purchase: ChangeCloudPhoneServerModel (a server moves to another
//! model of its generation), ChangeCloudPhoneServer (a server is switched: its phones are
//! recreated on a new phone model and image), and charging periods (expired servers renew or
//! freeze).
//!
//! Crash safety of a server change: the store is rewritten when the change is *accepted*, in
//! the transaction that enqueues its job: the old phone rows go, the new ones are inserted in
//! status "creating" and the server enters "creating". From then on the job is the only thing
//! that ends those statuses, and it always does: it either records its outcome with its finish
//! effects (phones running or create-failed, server running or abnormal) in one transaction, or
//! its lease lapses and it runs again (host commands carry the job id, so a re-run is
//! harmless), or it runs out of attempts and fails through the same finish effects. While the
//! job is unfinished, `settle_orphans` leaves the phones alone because an unfinished job holds
//! their server's lock key. So no phone is ever left in a transitional status after a crash.
//! Rewriting at finish time instead would need the new ids before the job ran and would leave
//! the old phones visible in a "creating" limbo if the job never finished.

use crate::engine::failed;
use crate::jobs::kind;
use crate::phones::parse_properties;
use crate::servers::{
    BuyServers, NetworkPlan, check_network, check_ports, new_imei, new_order_ids, period_ms,
    phone_ip,
};
use crate::validate::is_valid_id;
use crate::{Caller, Result, Service, ServiceError};
use cph_catalog::Catalog;
use cph_domain::{JobStatus, PhoneStatus, ServerStatus, ids};
use cph_runtime::AgentCommand;
use cph_store::jobs::{NewJob, Outcome};
use cph_store::{AnyConnection, JobRow, PhoneRow, ServerRow};
use serde_json::{Value, json};

/// The ChangeCloudPhoneServerModel request, as received.
#[derive(Debug, Clone, Default)]
pub struct ChangeServerModel {
    pub server_id: Option<String>,
    pub server_model_name: Option<String>,
    pub phone_model_name: Option<String>,
    pub is_auto_pay: Option<i64>,
}

/// An accepted model change: the new order and the job that carries it out.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChange {
    pub order_id: String,
    pub product_id: String,
    pub job_id: String,
}

/// The ChangeCloudPhoneServer request, as received. Its body mirrors the purchase body, so the
/// shared fields travel in a [`BuyServers`] (`server_name`, `server_model_name`, `count` and the
/// billing fields are not part of a change and are ignored).
#[derive(Debug, Clone, Default)]
pub struct ChangeServer {
    pub body: BuyServers,
    /// Phone properties (a JSON object as a string) for the new phones.
    pub property: Option<String>,
}

/// An accepted server change.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerChange {
    pub server_id: String,
    pub job_id: String,
}

/// What one expiry pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    pub renewed: u64,
    pub frozen_servers: u64,
    pub frozen_phones: u64,
}

/// Servers handled per transaction by the expiry pass.
const EXPIRY_BATCH: i64 = 500;

/// Job kinds a server change stops (they would act on phones that are about to disappear).
const STOPPED_BY_CHANGE: &[&str] = &[kind::PHONE_RESTART, kind::PHONE_RESET, kind::SERVER_RESTART];

/// Frozen servers refuse with `CPS.0317`; any other status but running with `CPS.1102`.
fn check_changeable(s: &ServerRow) -> Result<()> {
    match ServerStatus::from_code(s.status) {
        Some(ServerStatus::Running) => Ok(()),
        Some(ServerStatus::Frozen) => Err(ServiceError::cps("CPS.0317")),
        _ => Err(ServiceError::cps_msg(
            "CPS.1102",
            "Server status is not allow to change server: the server must be running.",
        )),
    }
}

/// The server's order must be a paid yearly/monthly order.
async fn period_order(
    c: &mut AnyConnection,
    s: &ServerRow,
) -> Result<Option<cph_store::network::Order>> {
    if s.charging_mode != 0 {
        return Ok(None);
    }
    Ok(cph_store::lifecycle::get_order(c, &s.order_id)
        .await?
        .filter(|o| o.charging_mode == 0 && o.period_num > 0))
}

impl Service {
    /// ChangeCloudPhoneServerModel: checks the request (`CPS.0016`, `CPS.0088`, `CPS.0246`,
    /// `CPS.0027`, `CPS.0028`, `CPS.0157`, `CPS.0257`, `CPS.0060`) and the server (`CPS.0015`,
    /// `CPS.0245` not a period order or no other model in its generation, `CPS.0317` frozen,
    /// `CPS.1102` not running or already changing, `CPS.0250` same model, `CPS.0247` other
    /// generation, `CPS.0257` another number of phones, `CPS.0222` no image for the new phone
    /// model, `CPS.0066` no host of the new model left), then records a new order and enqueues
    /// a `server.change_model` job in one transaction. The job restarts every phone on the new
    /// model; its success moves server and phones to the new model and order.
    pub async fn change_server_model(
        &self,
        caller: &Caller,
        request_id: &str,
        req: &ChangeServerModel,
    ) -> Result<ModelChange> {
        let server_id = req.server_id.clone().unwrap_or_default();
        if !is_valid_id(&server_id, 64) {
            return Err(ServiceError::cps("CPS.0016"));
        }
        let smn = req
            .server_model_name
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0088"))?;
        if smn.len() > 64 {
            return Err(ServiceError::cps("CPS.0089"));
        }
        let target = self
            .catalog()
            .server_model(&smn)
            .ok_or_else(|| ServiceError::cps("CPS.0246"))?
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
        if phone_model.server_model_name != target.server_model_name {
            return Err(ServiceError::cps("CPS.0157"));
        }
        if phone_model.status != 1 {
            return Err(ServiceError::cps("CPS.0257"));
        }
        let auto_pay = req.is_auto_pay.unwrap_or(0);
        if auto_pay != 0 && auto_pay != 1 {
            return Err(ServiceError::cps("CPS.0060"));
        }

        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        self.lock_server(&mut tx, &server_id).await?;
        let server = cph_store::servers::get(&mut tx, &caller.project_id, &server_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0015"))?;
        let order = period_order(&mut tx, &server).await?.ok_or_else(|| {
            ServiceError::cps_msg(
                "CPS.0245",
                "Server does not allow to change model: only servers of a paid yearly/monthly order can.",
            )
        })?;
        check_changeable(&server)?;
        if server.server_model_name == smn {
            return Err(ServiceError::cps("CPS.0250"));
        }
        let current = self.catalog().server_model(&server.server_model_name);
        let has_sibling = current.is_some_and(|cur| {
            self.catalog()
                .server_models
                .iter()
                .any(|m| m.family == cur.family && m.server_model_name != cur.server_model_name)
        });
        if !has_sibling {
            return Err(ServiceError::cps("CPS.0245"));
        }
        if !self
            .catalog()
            .can_change_server_model(&server.server_model_name, &smn)
        {
            return Err(ServiceError::cps_msg(
                "CPS.0247",
                "Server model is not supported: only models of the same generation are allowed.",
            ));
        }
        let phones = cph_store::phones::of_server(&mut tx, &server.server_id).await?;
        let current_capacity = self
            .catalog()
            .phone_model(&server.phone_model_name)
            .map(|m| i64::from(m.phone_capacity))
            .unwrap_or(phones.len() as i64);
        if i64::from(phone_model.phone_capacity) != current_capacity {
            return Err(ServiceError::cps_msg(
                "CPS.0257",
                format!(
                    "Phone model is not supported: the new phone model must run as many phones as the current one ({current_capacity})."
                ),
            ));
        }
        let image_id = image_for_model(self.catalog(), &server.image_id, &pmn)
            .ok_or_else(|| ServiceError::cps("CPS.0222"))?;
        let pending =
            cph_store::lifecycle::unfinished_jobs_on(&mut tx, &[format!("server:{server_id}")])
                .await?;
        if pending
            .iter()
            .any(|j| j.kind == kind::SERVER_CHANGE || j.kind == kind::SERVER_CHANGE_MODEL)
        {
            return Err(ServiceError::cps_msg(
                "CPS.1102",
                "Server status is not allow to change server: a change of this server is in progress.",
            ));
        }
        if self.store().backend() == cph_store::Backend::Postgres {
            cph_store::servers::lock_capacity(&mut tx, &smn).await?;
        }
        let cap = cph_store::servers::capacity(&mut tx, &smn)
            .await?
            .unwrap_or(self.config().default_host_capacity);
        let used = cph_store::servers::hosts_in_use(&mut tx, &smn).await?;
        let incoming =
            cph_store::lifecycle::unfinished_jobs_of_kind(&mut tx, kind::SERVER_CHANGE_MODEL)
                .await?
                .iter()
                .filter(|j| {
                    serde_json::from_str::<Value>(&j.payload)
                        .ok()
                        .and_then(|p| p.get("server_model_name")?.as_str().map(|s| s == smn))
                        .unwrap_or(false)
                })
                .count() as i64;
        if used + incoming + 1 > cap {
            return Err(ServiceError::cps("CPS.0066"));
        }

        let (order_id, product_id) = new_order_ids(now);
        cph_store::network::insert_order(
            &mut tx,
            &cph_store::network::Order {
                order_id: order_id.clone(),
                product_id: product_id.clone(),
                project_id: caller.project_id.clone(),
                kind: "server_change_model".into(),
                charging_mode: 0,
                period_type: order.period_type,
                period_num: order.period_num,
                auto_pay: auto_pay == 1,
                auto_renew: server.auto_renew,
                detail: json!({
                    "server_id": server_id,
                    "from_server_model_name": server.server_model_name,
                    "server_model_name": smn,
                    "phone_model_name": pmn,
                    "previous_order_id": server.order_id,
                })
                .to_string(),
                created_at: now,
            },
        )
        .await?;
        let job_id = ids::hex_id();
        let job = NewJob {
            job_id: job_id.clone(),
            project_id: caller.project_id.clone(),
            request_id: request_id.to_string(),
            kind: kind::SERVER_CHANGE_MODEL.into(),
            phone_id: None,
            server_id: Some(server_id.clone()),
            encode_server_id: None,
            lock_key: format!("server:{server_id}"),
            payload: json!({
                "server_model_name": smn,
                "phone_model_name": pmn,
                "image_id": image_id,
                "order_id": order_id,
                "product_id": product_id,
            })
            .to_string(),
        };
        cph_store::jobs::insert(&mut tx, &[job], now).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        self.wake_jobs();
        Ok(ModelChange {
            order_id,
            product_id,
            job_id,
        })
    }

    /// Serialises changes of one server across replicas (PostgreSQL; SQLite write
    /// transactions are serial already).
    async fn lock_server(&self, c: &mut AnyConnection, server_id: &str) -> Result<()> {
        if self.store().backend() == cph_store::Backend::Postgres {
            cph_store::lifecycle::lock_server(c, server_id).await?;
        }
        Ok(())
    }

    /// ChangeCloudPhoneServer: switches a server to a new phone model and image (and the
    /// network, key pair, ports, volumes and bandwidth the body names); its phones are
    /// recreated and user data is not kept. Name, id, availability zone and billing stay.
    ///
    /// Request checks: `CPS.0016`, `CPS.0027`/`CPS.0028`/`CPS.0257` (phone model),
    /// `CPS.0029`/`CPS.0030`/`CPS.0222` (image), `CPS.0067` (key pair), the port rules,
    /// `CPS.0316`, the purchase's network, volume and bandwidth rules, `CPS.0078`/`CPS.0163`/
    /// `CPS.0164` (property), `CPS.0211` (availability zone). Server checks: `CPS.0015`,
    /// `CPS.0317` frozen, `CPS.1102` not running or jobs in flight, `CPS.1103` not a paid
    /// period order, `CPS.0157` phone model of another server model, then VPC, subnet,
    /// bandwidth and EIP as in a purchase. Queued restarts and resets of the server and its
    /// phones end with `CPS.1105`.
    ///
    /// Everything is written in one transaction with the `server.change` job; see the module
    /// documentation for why the phone rows are replaced here rather than when the job ends.
    pub async fn change_server(
        &self,
        caller: &Caller,
        request_id: &str,
        server_id: &str,
        req: &ChangeServer,
    ) -> Result<ServerChange> {
        // ---- validation, no writes ----
        if !is_valid_id(server_id, 64) {
            return Err(ServiceError::cps("CPS.0016"));
        }
        let b = &req.body;
        let pmn = b
            .phone_model_name
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0027"))?;
        let phone_model = self
            .catalog()
            .phone_model(&pmn)
            .ok_or_else(|| ServiceError::cps("CPS.0028"))?
            .clone();
        if phone_model.status != 1 {
            return Err(ServiceError::cps("CPS.0257"));
        }
        let image_id = b
            .image_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0029"))?;
        let image = self
            .catalog()
            .phone_image(&image_id)
            .ok_or_else(|| ServiceError::cps("CPS.0030"))?;
        if image.image_label != phone_model.image_label {
            return Err(ServiceError::cps("CPS.0222"));
        }
        let keypair_name = b.keypair_name.clone().unwrap_or_default();
        if keypair_name.len() > 64 {
            return Err(ServiceError::cps("CPS.0067"));
        }
        let ports = check_ports(b.ports.as_deref().unwrap_or_default())?;
        let enterprise_project_id = b
            .enterprise_project_id
            .clone()
            .filter(|s| !s.is_empty())
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
        } = check_network(b, capacity, 1)?;
        let properties = match req.property.as_deref() {
            None => serde_json::Map::new(),
            Some(p) if p.is_empty() || p.len() > 8192 => {
                return Err(ServiceError::cps_msg(
                    "CPS.0078",
                    "Parameter: Property is invalid: it must hold 1 to 8192 characters.",
                ));
            }
            Some(p) => parse_properties(p)?,
        };
        if let Some(az) = &b.availability_zone
            && az != &self.config().availability_zone
        {
            return Err(ServiceError::cps("CPS.0211"));
        }

        // ---- checks against stored state and all writes, in one transaction ----
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        self.lock_server(&mut tx, server_id).await?;
        let server = cph_store::servers::get(&mut tx, &caller.project_id, server_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0015"))?;
        check_changeable(&server)?;
        if period_order(&mut tx, &server).await?.is_none() {
            return Err(ServiceError::cps("CPS.1103"));
        }
        if phone_model.server_model_name != server.server_model_name {
            return Err(ServiceError::cps_msg(
                "CPS.0157",
                format!(
                    "The phone model is invalid: it does not run on server model {}.",
                    server.server_model_name
                ),
            ));
        }
        if let Some(az) = &b.availability_zone
            && az != &server.availability_zone
        {
            return Err(ServiceError::cps("CPS.0211"));
        }
        let (vpc, subnet) = crate::servers::check_stored_network(
            &mut tx,
            &caller.project_id,
            (&vpc_id, &subnet_id),
            &keypair_name,
            (bw_id.as_deref(), share_type),
        )
        .await?;
        let mut given_eip = None;
        if let Some(id) = eip_ids.first() {
            let e = cph_store::network::get_eip(&mut tx, &caller.project_id, id)
                .await?
                .ok_or_else(|| ServiceError::cps("CPS.0253"))?;
            if !e.server_id.is_empty() && e.server_id != server.server_id {
                return Err(ServiceError::cps("CPS.0253"));
            }
            given_eip = Some(e);
        }
        let old_phones = cph_store::phones::of_server(&mut tx, &server.server_id).await?;
        let mut lock_keys = vec![format!("server:{}", server.server_id)];
        lock_keys.extend(old_phones.iter().map(|p| format!("phone:{}", p.phone_id)));
        let pending = cph_store::lifecycle::unfinished_jobs_on(&mut tx, &lock_keys).await?;
        let mut to_stop = Vec::new();
        for j in &pending {
            if j.state == "queued" && STOPPED_BY_CHANGE.contains(&j.kind.as_str()) {
                to_stop.push(j.job_id.clone());
            } else {
                return Err(ServiceError::cps_msg(
                    "CPS.1102",
                    "Server status is not allow to change server: jobs on the server or its phones are in progress.",
                ));
            }
        }

        // ---- writes ----
        cph_store::lifecycle::fail_queued(
            &mut tx,
            &to_stop,
            "CPS.1105",
            "Stop restarting during server changing.",
            now,
        )
        .await?;
        let mut server_ip = server.server_ip.clone();
        if subnet.subnet_id != server.subnet_id {
            cph_store::network::release_ips(&mut tx, std::slice::from_ref(&server.server_id))
                .await?;
            let owners = [("server", server.server_id.clone())];
            server_ip = self
                .allocate_subnet_ips(&mut tx, &subnet, &owners, now)
                .await?
                .remove(0);
        }
        cph_store::lifecycle::set_server_network(
            &mut tx,
            &server.server_id,
            &vpc.vpc_id,
            &subnet.subnet_id,
            &server_ip,
            now,
        )
        .await?;
        let band_width_id = match &bw_id {
            Some(id) => id.clone(),
            None => {
                let current = if server.band_width_id.is_empty() {
                    None
                } else {
                    cph_store::network::get_bandwidth(
                        &mut tx,
                        &caller.project_id,
                        &server.band_width_id,
                    )
                    .await?
                };
                match current {
                    // The server's own dedicated bandwidth is resized in place.
                    Some(cur) if cur.share_type == 0 => {
                        cph_store::lifecycle::set_bandwidth(
                            &mut tx,
                            &cur.band_width_id,
                            bw_size,
                            charge_mode,
                            now,
                        )
                        .await?;
                        cur.band_width_id
                    }
                    _ => {
                        self.create_bandwidth(
                            &mut tx,
                            &caller.project_id,
                            crate::network::BandwidthSpec {
                                name: &format!(
                                    "bandwidth-{}",
                                    &server.server_id[..8.min(server.server_id.len())]
                                ),
                                size: bw_size,
                                charge_mode,
                                share_type,
                            },
                            now,
                        )
                        .await?
                        .band_width_id
                    }
                }
            }
        };
        let current_eips = cph_store::network::eips_of_server(&mut tx, &server.server_id).await?;
        let (keep, allocate): (Vec<String>, usize) = match &given_eip {
            Some(e) => (vec![e.eip_id.clone()], 0),
            None => {
                let keep: Vec<String> = current_eips
                    .iter()
                    .filter(|e| e.eip_type == eip_type)
                    .take(eip_count as usize)
                    .map(|e| e.eip_id.clone())
                    .collect();
                let missing = eip_count as usize - keep.len();
                (keep, missing)
            }
        };
        let release: Vec<String> = current_eips
            .iter()
            .filter(|e| !keep.contains(&e.eip_id))
            .map(|e| e.eip_id.clone())
            .collect();
        cph_store::lifecycle::unbind_eips(&mut tx, &release).await?;
        for id in &keep {
            cph_store::network::bind_eip(&mut tx, id, &server.server_id, &band_width_id).await?;
        }
        self.allocate_eips(
            &mut tx,
            &crate::network::EipTarget {
                project_id: &caller.project_id,
                server_id: &server.server_id,
                band_width_id: &band_width_id,
                eip_type: &eip_type,
            },
            allocate,
            now,
        )
        .await?;
        let vol_json = |v: &Option<crate::servers::Volume>| {
            v.as_ref()
                .map(|v| serde_json::to_string(v).unwrap_or_default())
                .unwrap_or_else(|| "{}".into())
        };
        let changed = ServerRow {
            phone_model_name: pmn.clone(),
            image_id: image_id.clone(),
            keypair_name,
            band_width_id,
            phone_count_per_ip: per_ip,
            ports: serde_json::to_string(&ports).map_err(anyhow::Error::from)?,
            phone_data_volume: vol_json(&phone_volume),
            share_data_volume: vol_json(&share_volume),
            status: ServerStatus::Creating.code(),
            updated_at: now,
            ..server.clone()
        };
        cph_store::servers::update_spec(&mut tx, &changed).await?;
        cph_store::lifecycle::set_enterprise_project(
            &mut tx,
            &server.server_id,
            &enterprise_project_id,
            now,
        )
        .await?;
        cph_store::phones::delete_of_server(&mut tx, &server.server_id).await?;
        let props = Value::Object(properties).to_string();
        let phones: Vec<PhoneRow> = (0..capacity)
            .map(|slot| PhoneRow {
                phone_id: ids::hex_id(),
                project_id: caller.project_id.clone(),
                server_id: server.server_id.clone(),
                phone_name: format!(
                    "{}-{:04}",
                    &server.server_id[..8.min(server.server_id.len())],
                    slot + 1
                ),
                phone_model_name: pmn.clone(),
                image_id: image_id.clone(),
                status: PhoneStatus::Creating.code(),
                phone_type: 0,
                imei: new_imei(),
                traffic_type: "direct".into(),
                volume_mode: phone_model.volume_mode,
                phone_ip: phone_ip(slot),
                slot,
                properties: props.clone(),
                custom_properties: "{}".into(),
                created_at: now,
                updated_at: now,
                availability_zone: server.availability_zone.clone(),
                order_id: server.order_id.clone(),
                product_id: server.product_id.clone(),
                host_id: String::new(),
            })
            .collect();
        cph_store::phones::insert_many(&mut tx, &phones).await?;
        let job_id = ids::hex_id();
        let old_ids: Vec<&str> = old_phones.iter().map(|p| p.phone_id.as_str()).collect();
        cph_store::jobs::insert(
            &mut tx,
            &[NewJob {
                job_id: job_id.clone(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: kind::SERVER_CHANGE.into(),
                phone_id: None,
                server_id: Some(server.server_id.clone()),
                encode_server_id: None,
                lock_key: format!("server:{}", server.server_id),
                payload: json!({ "old_phone_ids": old_ids }).to_string(),
            }],
            now,
        )
        .await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        self.wake_jobs();
        Ok(ServerChange {
            server_id: server.server_id,
            job_id,
        })
    }

    /// One pass over servers whose charging period has ended: a server set to renew
    /// automatically gets as many further periods of its order as bring its end past now; any
    /// other server is frozen (status 8) with all its phones (status 6). Each batch of servers
    /// is handled in one transaction. Servers being created or changed (status 1) or with an
    /// unfinished job on the server are left for a later pass.
    pub async fn expire_once(&self) -> Result<ExpiryReport> {
        let now = self.now_ms();
        let mut report = ExpiryReport::default();
        // Every handled server leaves the due set, so the loop ends; the bound is a safeguard.
        for _ in 0..10_000 {
            let mut tx = self.store().write().await?;
            let due = cph_store::lifecycle::due_for_expiry(&mut tx, now, EXPIRY_BATCH).await?;
            if due.is_empty() {
                break;
            }
            let order_ids: Vec<String> = due.iter().map(|s| s.order_id.clone()).collect();
            let orders: std::collections::HashMap<String, cph_store::network::Order> =
                cph_store::lifecycle::get_orders(&mut tx, &order_ids)
                    .await?
                    .into_iter()
                    .map(|o| (o.order_id.clone(), o))
                    .collect();
            let mut freeze = Vec::new();
            for s in &due {
                let period = orders
                    .get(&s.order_id)
                    .map(|o| period_ms(o.period_type, o.period_num))
                    .unwrap_or(0);
                if s.auto_renew && period > 0 {
                    let periods = (now - s.expires_at) / period + 1;
                    cph_store::lifecycle::set_expiry(
                        &mut tx,
                        &s.server_id,
                        s.expires_at + periods * period,
                        now,
                    )
                    .await?;
                    report.renewed += 1;
                } else {
                    freeze.push(s.server_id.clone());
                }
            }
            let (ns, np) = cph_store::lifecycle::freeze(&mut tx, &freeze, now).await?;
            report.frozen_servers += ns;
            report.frozen_phones += np;
            tx.commit().await.map_err(cph_store::StoreError::from)?;
            self.power_off_frozen(&freeze, now).await?;
            if (due.len() as i64) < EXPIRY_BATCH {
                break;
            }
        }
        if report != ExpiryReport::default() {
            tracing::info!(
                renewed = report.renewed,
                frozen_servers = report.frozen_servers,
                frozen_phones = report.frozen_phones,
                "charging periods ended"
            );
        }
        Ok(report)
    }

    /// Powers off the phones of servers that were just frozen. The freeze is already recorded; a
    /// host that misses a stop still holds the phone as stopped after its next reconciliation
    /// (frozen phones are adopted powered off), so failures are logged, not retried.
    async fn power_off_frozen(&self, server_ids: &[String], now: i64) -> Result<()> {
        for sid in server_ids {
            let phones = {
                let mut c = self.store().read().await?;
                cph_store::phones::of_server(&mut c, sid).await?
            };
            let stops = phones.iter().map(|p| {
                let env = cph_runtime::CommandEnvelope {
                    command_id: format!("freeze-{}-{now}", p.phone_id),
                    command: cph_runtime::AgentCommand::StopPhone {
                        phone_id: p.phone_id.clone(),
                    },
                };
                async move { (p, self.inner.agent.execute(env).await) }
            });
            for (p, r) in futures::future::join_all(stops).await {
                if let cph_runtime::CommandResult::Failed { code, message } = r {
                    tracing::warn!(phone_id = %p.phone_id, %code, %message, "could not power off a frozen phone");
                }
            }
        }
        Ok(())
    }

    /// Runs a `server.change` job: removes the old phones from the host and creates the new
    /// ones (whose rows the change wrote when it was accepted).
    pub(crate) async fn execute_server_change(
        &self,
        job: &JobRow,
    ) -> Result<std::result::Result<(), Outcome>> {
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let old: Vec<String> = payload
            .get("old_phone_ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let deletions = old.iter().map(|id| {
            let suffix = format!("-delete-{id}");
            let cmd = AgentCommand::DeletePhone {
                phone_id: id.clone(),
            };
            async move { self.agent_call(job, &suffix, cmd).await }
        });
        let deleted = futures::future::join_all(deletions).await;
        if let Some(r) = summarize(&deleted, "old phones could not be removed") {
            return Ok(Err(r));
        }
        let server_id = job.server_id.clone().unwrap_or_default();
        let phones = {
            let mut c = self.store().read().await?;
            cph_store::phones::of_server(&mut c, &server_id).await?
        };
        if phones.is_empty() {
            return Ok(Err(failed(
                "CPS.0022",
                "The server has no phones to create.",
            )));
        }
        let creations = phones.iter().map(|p| async move {
            let suffix = format!("-{}", p.phone_id);
            let cmd = AgentCommand::CreatePhone {
                spec: self.spec_of(p, None, None).await,
            };
            self.agent_call(job, &suffix, cmd).await
        });
        let created = futures::future::join_all(creations).await;
        Ok(match summarize(&created, "phones failed to start") {
            Some(o) => Err(o),
            None => Ok(()),
        })
    }

    /// Runs a `server.change_model` job: restarts every phone of the server on the new phone
    /// model and image.
    pub(crate) async fn execute_server_change_model(
        &self,
        job: &JobRow,
    ) -> Result<std::result::Result<(), Outcome>> {
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let field = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(pmn), Some(image)) = (field("phone_model_name"), field("image_id")) else {
            return Ok(Err(failed("CPS.0003", "Service internal error.")));
        };
        let server_id = job.server_id.clone().unwrap_or_default();
        let phones = {
            let mut c = self.store().read().await?;
            cph_store::phones::of_server(&mut c, &server_id).await?
        };
        let (pmn, image) = (&pmn, &image);
        let calls = phones.iter().map(|p| async move {
            let mut row = p.clone();
            row.phone_model_name = pmn.clone();
            let spec = self.spec_of(&row, Some(image), None).await;
            let suffix = format!("-{}", p.phone_id);
            self.agent_call(job, &suffix, AgentCommand::RestartPhone { spec })
                .await
        });
        let results = futures::future::join_all(calls).await;
        Ok(match summarize(&results, "phones failed to restart") {
            Some(o) => Err(o),
            None => Ok(()),
        })
    }
}

/// The image phones of model `phone_model` run after a model change: the current one when its
/// label fits, otherwise the image of the new model's label with the same OS.
fn image_for_model(catalog: &Catalog, current_image: &str, phone_model: &str) -> Option<String> {
    if catalog.image_fits(current_image, phone_model) {
        return Some(current_image.to_string());
    }
    let cur = catalog.phone_image(current_image)?;
    let label = &catalog.phone_model(phone_model)?.image_label;
    catalog
        .phone_images_with_label(label)
        .into_iter()
        .find(|i| i.os_name == cur.os_name && i.os_type == cur.os_type)
        .map(|i| i.image_id.clone())
}

/// The first failure of a fan-out, with how many of all failed; `None` when all succeeded.
fn summarize(results: &[std::result::Result<(), Outcome>], what: &str) -> Option<Outcome> {
    let failures: Vec<&Outcome> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let first = failures.first()?;
    Some(Outcome {
        execute_msg: Some(format!("{} of {} {what}", failures.len(), results.len())),
        ..(*first).clone()
    })
}

/// Start effects of a model change: the phones restart.
pub(crate) async fn start_change_model(c: &mut AnyConnection, j: &JobRow, now: i64) -> Result<()> {
    if let Some(sid) = &j.server_id {
        cph_store::phones::set_status_of_server(c, sid, PhoneStatus::Restarting.code(), now)
            .await?;
    }
    Ok(())
}

/// Finish effects of a server change: phones and server leave "creating" for good.
pub(crate) async fn finish_change(
    c: &mut AnyConnection,
    j: &JobRow,
    o: &Outcome,
    now: i64,
) -> Result<()> {
    let server_id = j.server_id.as_deref().unwrap_or_default();
    let (s, p) = if o.status == JobStatus::Succeeded.code() {
        (ServerStatus::Running, PhoneStatus::Running)
    } else {
        (ServerStatus::Abnormal, PhoneStatus::CreateFailed)
    };
    cph_store::servers::set_status(c, server_id, s.code(), now).await?;
    cph_store::phones::set_status_of_server(c, server_id, p.code(), now).await?;
    Ok(())
}

/// Finish effects of a model change: on success server and phones move to the new model, image
/// and order; on failure the server keeps its model and the phones are marked restart-failed.
pub(crate) async fn finish_change_model(
    c: &mut AnyConnection,
    j: &JobRow,
    o: &Outcome,
    now: i64,
) -> Result<()> {
    let server_id = j.server_id.as_deref().unwrap_or_default();
    if o.status != JobStatus::Succeeded.code() {
        cph_store::phones::set_status_of_server(
            c,
            server_id,
            PhoneStatus::RestartFailed.code(),
            now,
        )
        .await?;
        return Ok(());
    }
    let payload: Value = serde_json::from_str(&j.payload).unwrap_or(Value::Null);
    let field = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if let Some(s) = cph_store::servers::get_any(c, server_id).await? {
        let changed = ServerRow {
            server_model_name: field("server_model_name"),
            phone_model_name: field("phone_model_name"),
            image_id: field("image_id"),
            order_id: field("order_id"),
            product_id: field("product_id"),
            updated_at: now,
            ..s
        };
        cph_store::servers::update_spec(c, &changed).await?;
        cph_store::lifecycle::set_phones_model(
            c,
            server_id,
            &changed.phone_model_name,
            &changed.image_id,
            now,
        )
        .await?;
    }
    cph_store::phones::set_status_of_server(c, server_id, PhoneStatus::Running.code(), now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: ServerStatus) -> ServerRow {
        ServerRow {
            server_id: "s".into(),
            project_id: "p".into(),
            server_name: "n".into(),
            server_model_name: "physical.rx1.xlarge".into(),
            phone_model_name: "rx1.cp.c60.d10.e1v1".into(),
            image_id: String::new(),
            keypair_name: String::new(),
            status: status.code(),
            vpc_id: String::new(),
            subnet_id: String::new(),
            server_ip: String::new(),
            host_id: String::new(),
            order_id: String::new(),
            product_id: String::new(),
            charging_mode: 0,
            availability_zone: String::new(),
            network_version: "v2".into(),
            enterprise_project_id: "0".into(),
            band_width_id: String::new(),
            phone_count_per_ip: 1,
            ports: "[]".into(),
            phone_data_volume: "{}".into(),
            share_data_volume: "{}".into(),
            expires_at: 0,
            auto_renew: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn code(r: Result<()>) -> Option<String> {
        r.err().map(|e| e.code_and_message().0)
    }

    #[test]
    fn only_running_servers_change() {
        assert_eq!(code(check_changeable(&server(ServerStatus::Running))), None);
        assert_eq!(
            code(check_changeable(&server(ServerStatus::Frozen))).as_deref(),
            Some("CPS.0317")
        );
        for st in [
            ServerStatus::Creating,
            ServerStatus::Abnormal,
            ServerStatus::Off,
            ServerStatus::Starting,
        ] {
            assert_eq!(
                code(check_changeable(&server(st))).as_deref(),
                Some("CPS.1102")
            );
        }
    }

    #[test]
    fn model_change_keeps_the_os_of_the_image() {
        let c = Catalog::builtin();
        let phone_711 = "20032120200330a20b000eae5b8c01e6";
        let game_711 = "20032420200401a60b0003a99684b8ea";
        // The label fits: the image stays.
        assert_eq!(
            image_for_model(&c, phone_711, "rc1.se").as_deref(),
            Some(phone_711)
        );
        // Another label: the image of that label with the same OS.
        assert_eq!(
            image_for_model(&c, phone_711, "rx1.cg.c60.d10.e1v1").as_deref(),
            Some(game_711)
        );
        // No image of the new label runs that OS (Android 7.0 exists only for qemu phones).
        assert_eq!(
            image_for_model(
                &c,
                "be4d231e44d2a4ccf612660a473fe1e3",
                "rx1.cg.c60.d10.e1v1"
            ),
            None
        );
    }

    #[test]
    fn a_fan_out_reports_its_first_failure_and_the_count() {
        let ok: std::result::Result<(), Outcome> = Ok(());
        assert!(summarize(&[ok.clone(), ok.clone()], "x").is_none());
        let bad = Err(failed("CPS.0004", "gone"));
        let o = summarize(&[ok, bad.clone(), bad], "phones failed").unwrap();
        assert_eq!(o.status, JobStatus::Failed.code());
        assert_eq!(o.error_code.as_deref(), Some("CPS.0004"));
        assert_eq!(o.execute_msg.as_deref(), Some("2 of 3 phones failed"));
    }
}
