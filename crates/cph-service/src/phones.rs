//! Phone operations: queries, rename, and the batch lifecycle operations that become jobs.

use crate::jobs::kind;
use crate::validate::{dedup, is_valid_id, pagination};
use crate::{BatchItem, Caller, Result, Service, ServiceError};
use cph_domain::{PhoneStatus, ids};
use cph_store::PhoneRow;
use cph_store::jobs::NewJob;
use cph_store::phones::PhoneFilter;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most items one batch request may name.
pub const MAX_BATCH: usize = 10_000;

/// A phone with what its detail view shows besides the row.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneDetail {
    pub phone: PhoneRow,
    /// The phone's data volume, when its server was bought with one.
    pub data_volume: Option<crate::servers::Volume>,
    /// Where the phone's ADB endpoint accepts connections now.
    pub adb_endpoint: Option<std::net::SocketAddr>,
    /// Where the SSH gateway of the phone's server listens, when the server has a key pair
    /// (the tunnel reaches the phone at `phone_ip:5555`).
    pub ssh_endpoint: Option<std::net::SocketAddr>,
    /// The application ports bought with the phone's server that its host reaches now.
    pub ports: Vec<PortAccess>,
}

/// An application port of the phone's server and the host address that reaches it on the phone.
#[derive(Debug, Clone, PartialEq)]
pub struct PortAccess {
    pub name: String,
    /// The port inside the phone.
    pub listen_port: u16,
    /// `internet_accessible` was `"true"` at purchase.
    pub public: bool,
    /// Where the host accepts connections for it.
    pub addr: std::net::SocketAddr,
}

/// The application ports stored with a server (`ServerRow::ports`, JSON); unreadable or
/// out-of-range entries are left out.
pub(crate) fn server_ports(json: &str) -> Vec<(crate::servers::Port, u16)> {
    serde_json::from_str::<Vec<crate::servers::Port>>(json)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let n = u16::try_from(p.listen_port).ok()?;
            Some((p, n))
        })
        .collect()
}

/// ListCloudPhones query parameters, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhoneListQuery<'a> {
    pub offset: Option<&'a str>,
    pub limit: Option<&'a str>,
    pub phone_name: Option<&'a str>,
    pub server_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub phone_type: Option<&'a str>,
}

/// One phone of a batch-restart or batch-reset request.
#[derive(Debug, Clone, Default)]
pub struct PhoneItem {
    pub phone_id: Option<String>,
    /// A JSON object as a string (appendix A.1 keys).
    pub property: Option<String>,
    pub custom_property: Option<BTreeMap<String, String>>,
}

/// Parses and checks a `property` string: a JSON object whose keys are appendix A.1 properties
/// with valid values. `CPS.0078` when not a JSON object, `CPS.0163` for an unknown key,
/// `CPS.0164` for an invalid value.
pub fn parse_properties(raw: &str) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_str(raw).map_err(|_| ServiceError::cps("CPS.0078"))?;
    let Value::Object(map) = v else {
        return Err(ServiceError::cps("CPS.0078"));
    };
    for (k, v) in &map {
        let def = cph_catalog::phone_property(k).ok_or_else(|| {
            ServiceError::cps_msg(
                "CPS.0163",
                format!("Parameter: property {k} not supported."),
            )
        })?;
        def.validate(v).map_err(|why| {
            ServiceError::cps_msg(
                "CPS.0164",
                format!("Parameter: Invalid property {k}: {why}"),
            )
        })?;
    }
    Ok(map)
}

/// True when applying `props` needs the phone to restart.
pub fn properties_need_restart(props: &Map<String, Value>) -> bool {
    props
        .keys()
        .any(|k| cph_catalog::phone_property(k).is_some_and(|d| d.needs_restart))
}

/// Merges `update` into the stored JSON object `stored`.
pub(crate) fn merge_properties(stored: &str, update: &Map<String, Value>) -> String {
    let mut base: Map<String, Value> = serde_json::from_str(stored).unwrap_or_default();
    for (k, v) in update {
        base.insert(k.clone(), v.clone());
    }
    Value::Object(base).to_string()
}

impl Service {
    /// ListCloudPhones.
    pub async fn list_phones(
        &self,
        caller: &Caller,
        q: &PhoneListQuery<'_>,
    ) -> Result<(Vec<PhoneRow>, i64)> {
        let PhoneListQuery {
            offset,
            limit,
            phone_name,
            server_id,
            status,
            phone_type,
        } = *q;
        let (offset, limit) = pagination(offset, limit, 200)?;
        let status = match status {
            None => None,
            Some(s) => {
                let code: i32 = s
                    .trim()
                    .parse()
                    .map_err(|_| ServiceError::cps("CPS.0010"))?;
                // 0 is documented as a second "creating" code; we store 1.
                let code = if code == 0 { 1 } else { code };
                Some(
                    PhoneStatus::from_code(code)
                        .ok_or_else(|| ServiceError::cps("CPS.0010"))?
                        .code(),
                )
            }
        };
        let phone_type = match phone_type {
            None => None,
            Some(t) => match t.trim().parse::<i32>() {
                Ok(v @ (0 | 1)) => Some(v),
                _ => return Err(ServiceError::cps("CPS.0116")),
            },
        };
        let f = PhoneFilter {
            phone_name_like: phone_name.filter(|s| !s.is_empty()).map(str::to_string),
            server_id: server_id.filter(|s| !s.is_empty()).map(str::to_string),
            status,
            phone_type,
        };
        let mut c = self.store().read().await?;
        Ok(cph_store::phones::list(&mut c, &caller.project_id, &f, offset, limit).await?)
    }

    /// ShowCloudPhoneDetail: `CPS.0004` for a malformed id, `CPS.0005` when absent.
    pub async fn show_phone(&self, caller: &Caller, phone_id: &str) -> Result<PhoneDetail> {
        if !is_valid_id(phone_id, 64) {
            return Err(ServiceError::cps("CPS.0004"));
        }
        let mut c = self.store().read().await?;
        let phone = cph_store::phones::get(&mut c, &caller.project_id, phone_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0005"))?;
        let server = cph_store::servers::get_any(&mut c, &phone.server_id).await?;
        drop(c);
        // Each phone of a server bought with a phone data volume has one of that type and size.
        let data_volume = server.as_ref().and_then(|s| {
            serde_json::from_str::<crate::servers::Volume>(&s.phone_data_volume).ok()
        });
        let adb_endpoint = self.inner.agent.adb_endpoint(&phone.phone_id);
        let mapped = self.inner.agent.port_endpoints(&phone.phone_id);
        let ports = server
            .as_ref()
            .map(|s| server_ports(&s.ports))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(p, n)| {
                let addr = mapped.iter().find(|(l, _)| *l == n)?.1;
                Some(PortAccess {
                    name: p.name,
                    listen_port: n,
                    public: p.internet_accessible == "true",
                    addr,
                })
            })
            .collect();
        let ssh_endpoint = match &server {
            Some(s) if !s.keypair_name.is_empty() => self
                .ensure_gateway(&s.server_id, &s.project_id)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(server_id = %s.server_id, error = %e, "starting the ssh gateway failed");
                    None
                }),
            _ => None,
        };
        Ok(PhoneDetail {
            phone,
            data_volume,
            adb_endpoint,
            ssh_endpoint,
            ports,
        })
    }

    /// The ports inside a phone its host makes reachable: the application ports of its server
    /// (only for agents whose phones run endpoints).
    pub(crate) async fn phone_ports(&self, p: &PhoneRow) -> Vec<u16> {
        if !self.inner.agent.runs_endpoints() {
            return Vec::new();
        }
        let lookup = async {
            let mut c = self.store().read().await?;
            Ok::<_, anyhow::Error>(cph_store::servers::get_any(&mut c, &p.server_id).await?)
        };
        match lookup.await {
            Ok(Some(s)) => server_ports(&s.ports).into_iter().map(|(_, n)| n).collect(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(phone_id = %p.phone_id, error = %e, "server ports lookup failed");
                Vec::new()
            }
        }
    }

    /// UpdatePhoneName: 1–60 characters of letters, digits, `_`, `-`; unique within the server.
    pub async fn rename_phone(
        &self,
        caller: &Caller,
        phone_id: &str,
        name: Option<&str>,
    ) -> Result<()> {
        let name = name.ok_or_else(|| ServiceError::cps("CPS.0025"))?;
        if !crate::validate::is_valid_name(name, 60) {
            return Err(ServiceError::cps("CPS.0025"));
        }
        if !is_valid_id(phone_id, 64) {
            return Err(ServiceError::cps("CPS.0004"));
        }
        let now = self.now_ms();
        let mut tx = self.store().write().await?;
        let phone = cph_store::phones::get(&mut tx, &caller.project_id, phone_id)
            .await?
            .ok_or_else(|| ServiceError::cps("CPS.0005"))?;
        if cph_store::phones::name_taken(&mut tx, &phone.server_id, name, phone_id).await? {
            return Err(ServiceError::cps("CPS.0026"));
        }
        cph_store::phones::rename(&mut tx, phone_id, name, now).await?;
        tx.commit().await.map_err(cph_store::StoreError::from)?;
        Ok(())
    }

    /// Looks up the phones a batch names, in one query. Items keep their order.
    async fn batch_phones(
        &self,
        caller: &Caller,
        ids: &[String],
    ) -> Result<BTreeMap<String, PhoneRow>> {
        let wanted: Vec<String> = dedup(ids)
            .into_iter()
            .filter(|i| is_valid_id(i, 64))
            .collect();
        let mut c = self.store().read().await?;
        let rows = cph_store::phones::get_many(&mut c, &caller.project_id, &wanted).await?;
        Ok(rows.into_iter().map(|p| (p.phone_id.clone(), p)).collect())
    }

    /// Common shape of the phone batch operations: check each item, enqueue a job for every
    /// valid one in one transaction, and report per item.
    async fn phone_batch(
        &self,
        caller: &Caller,
        request_id: &str,
        job_kind: &str,
        items: Vec<(Option<String>, Value)>,
        check: impl Fn(&PhoneRow) -> Result<()>,
    ) -> Result<Vec<BatchItem>> {
        if items.len() > MAX_BATCH {
            return Err(ServiceError::cps("CPS.0190"));
        }
        let ids: Vec<String> = items.iter().filter_map(|(id, _)| id.clone()).collect();
        let phones = self.batch_phones(caller, &ids).await?;
        let mut out = Vec::with_capacity(items.len());
        let mut jobs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (id, payload) in items {
            let id = id.unwrap_or_default();
            let Some(phone) = phones.get(&id) else {
                out.push(BatchItem::failed(
                    &id,
                    &ServiceError::cps_msg("CPS.0004", "Parameter: phone_id is invalid."),
                ));
                continue;
            };
            if !seen.insert(id.clone()) {
                out.push(BatchItem::failed(&id, &ServiceError::cps("CPS.0023")));
                continue;
            }
            if let Err(e) = check(phone) {
                out.push(BatchItem::failed(&id, &e));
                continue;
            }
            let job_id = ids::hex_id();
            jobs.push(NewJob {
                job_id: job_id.clone(),
                project_id: caller.project_id.clone(),
                request_id: request_id.to_string(),
                kind: job_kind.to_string(),
                phone_id: Some(id.clone()),
                server_id: Some(phone.server_id.clone()),
                encode_server_id: None,
                lock_key: format!("phone:{id}"),
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

    fn check_image(&self, image_id: Option<&str>, phone_model_name: &str) -> Result<()> {
        if let Some(img) = image_id {
            let image = self
                .catalog()
                .phone_image(img)
                .ok_or_else(|| ServiceError::cps("CPS.0030"))?;
            let model = self
                .catalog()
                .phone_model(phone_model_name)
                .ok_or_else(|| ServiceError::cps("CPS.0028"))?;
            if image.image_label != model.image_label {
                return Err(ServiceError::cps("CPS.0222"));
            }
        }
        Ok(())
    }

    /// Checks the shared part of restart and reset requests: a non-empty phone list (`CPS.0077`)
    /// and a known image (`CPS.0030`); parses each item's properties, collecting per-item errors.
    #[allow(clippy::type_complexity)]
    fn prepare_image_items(
        &self,
        image_id: Option<&str>,
        items: Option<Vec<PhoneItem>>,
    ) -> Result<(Vec<(Option<String>, Value)>, BTreeMap<usize, ServiceError>)> {
        let items = items
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0077"))?;
        if let Some(img) = image_id
            && self.catalog().phone_image(img).is_none()
        {
            return Err(ServiceError::cps("CPS.0030"));
        }
        let mut prepared = Vec::with_capacity(items.len());
        let mut errors: BTreeMap<usize, ServiceError> = BTreeMap::new();
        for (n, it) in items.iter().enumerate() {
            let props = match it.property.as_deref().filter(|p| !p.is_empty()) {
                Some(p) => parse_properties(p).map_err(|e| errors.insert(n, e)).ok(),
                None => None,
            };
            prepared.push((
                it.phone_id.clone(),
                serde_json::json!({"image_id": image_id, "property": props}),
            ));
        }
        Ok((prepared, errors))
    }

    /// RestartCloudPhone: restarts running phones and starts stopped ones, optionally on a new
    /// image and with new properties.
    pub async fn restart_phones(
        &self,
        caller: &Caller,
        request_id: &str,
        image_id: Option<&str>,
        items: Option<Vec<PhoneItem>>,
    ) -> Result<Vec<BatchItem>> {
        let image_id = image_id.filter(|s| !s.is_empty());
        let (prepared, errors) = self.prepare_image_items(image_id, items)?;
        self.phone_batch_with_errors(
            caller,
            request_id,
            kind::PHONE_RESTART,
            prepared,
            errors,
            |p| {
                lifecycle_precondition(p, &[])?;
                self.check_image(image_id, &p.phone_model_name)
            },
        )
        .await
    }

    /// ResetCloudPhone: back to the image's factory state, optionally on a new image.
    pub async fn reset_phones(
        &self,
        caller: &Caller,
        request_id: &str,
        image_id: Option<&str>,
        items: Option<Vec<PhoneItem>>,
    ) -> Result<Vec<BatchItem>> {
        let image_id = image_id.filter(|s| !s.is_empty());
        let (prepared, errors) = self.prepare_image_items(image_id, items)?;
        self.phone_batch_with_errors(
            caller,
            request_id,
            kind::PHONE_RESET,
            prepared,
            errors,
            |p| {
                let st = PhoneStatus::from_code(p.status);
                if !matches!(st, Some(PhoneStatus::Running | PhoneStatus::Stopped))
                    && !is_failed(st)
                {
                    lifecycle_precondition(p, &[])?;
                    return Err(ServiceError::cps("CPS.0165"));
                }
                self.check_image(image_id, &p.phone_model_name)
            },
        )
        .await
    }

    /// StopCloudPhone.
    pub async fn stop_phones(
        &self,
        caller: &Caller,
        request_id: &str,
        phone_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let ids = phone_ids
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0009"))?;
        let items = ids.into_iter().map(|id| (Some(id), Value::Null)).collect();
        self.phone_batch(caller, request_id, kind::PHONE_STOP, items, |p| {
            lifecycle_precondition(p, &[])?;
            match PhoneStatus::from_code(p.status) {
                Some(PhoneStatus::Stopped) => Err(ServiceError::cps("CPS.0141")),
                _ => Ok(()),
            }
        })
        .await
    }

    /// UpdateCloudPhoneProperty.
    pub async fn update_phone_properties(
        &self,
        caller: &Caller,
        request_id: &str,
        items: Option<Vec<PhoneItem>>,
    ) -> Result<Vec<BatchItem>> {
        let items = items
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0077"))?;
        let mut prepared = Vec::with_capacity(items.len());
        let mut errors: BTreeMap<usize, ServiceError> = BTreeMap::new();
        for (n, it) in items.iter().enumerate() {
            let props = match it.property.as_deref() {
                Some(p) if !p.is_empty() => match parse_properties(p) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        errors.insert(n, e);
                        None
                    }
                },
                _ => {
                    errors.insert(n, ServiceError::cps("CPS.0078"));
                    None
                }
            };
            prepared.push((
                it.phone_id.clone(),
                serde_json::json!({"property": props, "custom_property": it.custom_property}),
            ));
        }
        self.phone_batch_with_errors(
            caller,
            request_id,
            kind::PHONE_PROPERTY,
            prepared,
            errors,
            |p| lifecycle_precondition(p, &[]),
        )
        .await
    }

    /// ImportTraffic: route phones' traffic (`direct` or `routing`), at most 100 phones.
    pub async fn import_traffic(
        &self,
        caller: &Caller,
        request_id: &str,
        traffic_type: Option<&str>,
        phone_ids: Option<Vec<String>>,
    ) -> Result<Vec<BatchItem>> {
        let tt = traffic_type.ok_or_else(|| ServiceError::cps("CPS.0207"))?;
        if tt != "direct" && tt != "routing" {
            return Err(ServiceError::cps("CPS.0207"));
        }
        let ids = phone_ids
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ServiceError::cps("CPS.0009"))?;
        if ids.len() > 100 {
            return Err(ServiceError::cps("CPS.0209"));
        }
        let items = ids
            .into_iter()
            .map(|id| (Some(id), serde_json::json!({"traffic_type": tt})))
            .collect();
        self.phone_batch(caller, request_id, kind::PHONE_TRAFFIC, items, |p| {
            lifecycle_precondition(p, &[])
        })
        .await
    }

    /// Like `phone_batch`, with per-item errors found while parsing (by item index).
    async fn phone_batch_with_errors(
        &self,
        caller: &Caller,
        request_id: &str,
        job_kind: &str,
        items: Vec<(Option<String>, Value)>,
        errors: BTreeMap<usize, ServiceError>,
        check: impl Fn(&PhoneRow) -> Result<()>,
    ) -> Result<Vec<BatchItem>> {
        if errors.is_empty() {
            return self
                .phone_batch(caller, request_id, job_kind, items, check)
                .await;
        }
        // Run the batch on the valid items, then splice the parse failures back in place.
        let mut valid = Vec::new();
        let mut order = Vec::new();
        for (n, it) in items.into_iter().enumerate() {
            if let Some(e) = errors.get(&n) {
                order.push(Err(BatchItem::failed(
                    it.0.as_deref().unwrap_or_default(),
                    e,
                )));
            } else {
                order.push(Ok(valid.len()));
                valid.push(it);
            }
        }
        let done = self
            .phone_batch(caller, request_id, job_kind, valid, check)
            .await?;
        Ok(order
            .into_iter()
            .map(|o| match o {
                Ok(k) => done[k].clone(),
                Err(item) => item,
            })
            .collect())
    }
}

fn is_failed(st: Option<PhoneStatus>) -> bool {
    matches!(
        st,
        Some(
            PhoneStatus::ResetFailed
                | PhoneStatus::RestartFailed
                | PhoneStatus::Abnormal
                | PhoneStatus::StopFailed
        )
    )
}

/// Phones being created or frozen accept no lifecycle operation.
fn lifecycle_precondition(p: &PhoneRow, _extra: &[PhoneStatus]) -> Result<()> {
    match PhoneStatus::from_code(p.status) {
        Some(PhoneStatus::Creating) => Err(ServiceError::cps("CPS.0213")),
        Some(PhoneStatus::Frozen) => Err(ServiceError::cps("CPS.0053")),
        Some(PhoneStatus::CreateFailed) => Err(ServiceError::cps("CPS.0022")),
        _ => Ok(()),
    }
}
