//! In-process virtual hosts: phones whose lifecycle takes real (configurable) time.
//!
//! Lifecycle state is kept in memory per phone. A hosted agent ([`VirtualHostAgent::hosted`])
//! also gives each running phone its file tree and an ADB endpoint (see [`crate::hosting`]):
//! a stopped phone's endpoint refuses connections, a restart drops them and opens it again, a
//! reset restores the phone's tree to the image first. A process restart loses the in-memory
//! state; the control plane re-creates the phones it expects to run from its own records
//! (level-triggered reconciliation) and the phones find their files where they left them.

use crate::PhoneSpec;
use crate::hosting::{Host, LivePhone, PhoneHosting};
use crate::{
    AgentCommand, CommandEnvelope, CommandResult, HostAgent, Inventory, PhonePower, PhoneState,
};
use cph_adb::device::InProcessConnection;
use cph_phone::PhoneControl;
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long lifecycle steps take.
#[derive(Debug, Clone, Copy)]
pub struct Durations {
    pub boot: Duration,
    pub stop: Duration,
    pub reset: Duration,
}

impl Default for Durations {
    fn default() -> Self {
        Durations {
            boot: Duration::from_secs(1),
            stop: Duration::from_millis(500),
            reset: Duration::from_secs(1),
        }
    }
}

struct Phone {
    power: PhonePower,
    image_id: String,
    boot_count: u64,
    /// Bumped by every lifecycle change, so a reboot requested from inside the phone does not
    /// undo a later stop or restart.
    epoch: u64,
    /// The running phone (hosted agents only).
    live: Option<LivePhone>,
}

impl Phone {
    fn new(power: PhonePower, image_id: &str) -> Self {
        Phone {
            power,
            image_id: image_id.to_string(),
            boot_count: 0,
            epoch: 0,
            live: None,
        }
    }
}

/// How many completed command ids each agent remembers for idempotency.
const REMEMBERED_COMMANDS: usize = 100_000;

#[derive(Default)]
struct State {
    phones: HashMap<String, Phone>,
    done: HashMap<String, CommandResult>,
    done_order: VecDeque<String>,
}

/// The embedded agent: every virtual host of this process.
pub struct VirtualHostAgent {
    id: String,
    durations: Durations,
    state: Mutex<State>,
    /// Files and endpoints of the phones; `None` runs the lifecycle only (no file trees, no ADB
    /// endpoints), which is what control-plane benchmarks with 100,000 phones use.
    host: Option<Arc<Host>>,
    me: Weak<VirtualHostAgent>,
}

/// Reboots requested from inside a phone (`adb reboot`, `reboot` in its shell).
struct RebootHook {
    agent: Weak<VirtualHostAgent>,
    phone_id: String,
}

impl PhoneControl for RebootHook {
    fn request_reboot(&self, _target: &str) {
        if let Some(agent) = self.agent.upgrade() {
            let id = self.phone_id.clone();
            tokio::spawn(async move { agent.reboot_from_inside(&id).await });
        }
    }
}

impl VirtualHostAgent {
    /// An agent that runs phone lifecycles only.
    pub fn new(id: impl Into<String>, durations: Durations) -> Self {
        VirtualHostAgent {
            id: id.into(),
            durations,
            state: Mutex::new(State::default()),
            host: None,
            me: Weak::new(),
        }
    }

    /// An agent whose phones are real: file trees under `hosting.dir` and ADB endpoints.
    pub fn hosted(id: impl Into<String>, durations: Durations, hosting: PhoneHosting) -> Arc<Self> {
        let id = id.into();
        Arc::new_cyclic(|me| VirtualHostAgent {
            id,
            durations,
            state: Mutex::new(State::default()),
            host: Some(Arc::new(Host::new(hosting))),
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves a phone to `power`, closing its endpoint; returns the new epoch, or `None` if the
    /// phone is unknown.
    fn transition(&self, phone_id: &str, power: PhonePower) -> Option<u64> {
        let old = {
            let mut st = self.lock();
            let p = st.phones.get_mut(phone_id)?;
            p.power = power;
            p.epoch += 1;
            (p.epoch, p.live.take())
        };
        if let Some(live) = &old.1 {
            live.shut_down();
        }
        Some(old.0)
    }

    fn unknown(phone_id: &str) -> CommandResult {
        CommandResult::Failed {
            code: "CPS.0004".into(),
            message: format!("phone {phone_id} does not exist on this host"),
        }
    }

    /// Opens the phone's endpoint (hosted agents); lifecycle-only agents have nothing to open.
    async fn go_live(&self, spec: &PhoneSpec) -> Result<Option<LivePhone>, CommandResult> {
        let Some(host) = &self.host else {
            return Ok(None);
        };
        let hook = Arc::new(RebootHook {
            agent: self.me.clone(),
            phone_id: spec.phone_id.clone(),
        });
        match host.start(spec, hook).await {
            Ok(live) => Ok(Some(live)),
            Err(e) => {
                tracing::error!(phone_id = %spec.phone_id, error = %e, "phone failed to start");
                Err(CommandResult::Failed {
                    code: "CPS.0003".into(),
                    message: format!("The phone failed to start: {e}"),
                })
            }
        }
    }

    async fn boot(&self, spec: &PhoneSpec, create: bool) -> CommandResult {
        let phone_id = spec.phone_id.as_str();
        let epoch = {
            let mut st = self.lock();
            if !st.phones.contains_key(phone_id) {
                if !create {
                    return Self::unknown(phone_id);
                }
                st.phones.insert(
                    phone_id.to_string(),
                    Phone::new(PhonePower::Booting, &spec.image_id),
                );
            }
            let Some(p) = st.phones.get_mut(phone_id) else {
                return Self::unknown(phone_id);
            };
            p.power = PhonePower::Booting;
            p.image_id = spec.image_id.clone();
            p.epoch += 1;
            let old = p.live.take();
            drop(st);
            if let Some(l) = old {
                l.shut_down();
            }
            self.lock()
                .phones
                .get(phone_id)
                .map(|p| p.epoch)
                .unwrap_or(0)
        };
        tokio::time::sleep(self.durations.boot).await;
        let live = match self.go_live(spec).await {
            Ok(l) => l,
            Err(failed) => {
                if let Some(p) = self.lock().phones.get_mut(phone_id)
                    && p.epoch == epoch
                {
                    p.power = PhonePower::Stopped;
                }
                return failed;
            }
        };
        let mut st = self.lock();
        match st.phones.get_mut(phone_id) {
            Some(p) => {
                p.power = PhonePower::Running;
                p.boot_count += 1;
                p.live = live;
                CommandResult::Ok { message: None }
            }
            None => Self::unknown(phone_id),
        }
    }

    /// A reboot asked for by the phone itself: the endpoint goes away for a stop and a boot,
    /// then comes back; the control plane's view of the phone does not change.
    async fn reboot_from_inside(&self, phone_id: &str) {
        let (epoch, spec) = {
            let mut st = self.lock();
            let Some(p) = st.phones.get_mut(phone_id) else {
                return;
            };
            let Some(live) = p.live.take() else { return };
            p.epoch += 1;
            let spec = live.spec.clone();
            live.shut_down();
            (p.epoch, spec)
        };
        tokio::time::sleep(self.durations.stop + self.durations.boot).await;
        if self.lock().phones.get(phone_id).map(|p| p.epoch) != Some(epoch) {
            return; // a lifecycle command took over meanwhile
        }
        if let Ok(live) = self.go_live(&spec).await {
            let mut st = self.lock();
            if let Some(p) = st.phones.get_mut(phone_id)
                && p.epoch == epoch
            {
                p.live = live;
                p.boot_count += 1;
            }
        }
    }

    async fn run(&self, cmd: AgentCommand) -> CommandResult {
        match cmd {
            AgentCommand::CreatePhone { spec } => self.boot(&spec, true).await,
            AgentCommand::AdoptPhone { spec, running } => {
                let live = if running {
                    match self.go_live(&spec).await {
                        Ok(l) => l,
                        Err(failed) => return failed,
                    }
                } else {
                    None
                };
                let mut st = self.lock();
                let p = st
                    .phones
                    .entry(spec.phone_id.clone())
                    .or_insert_with(|| Phone::new(PhonePower::Stopped, &spec.image_id));
                p.power = if running {
                    PhonePower::Running
                } else {
                    PhonePower::Stopped
                };
                p.image_id = spec.image_id;
                p.epoch += 1;
                p.live = live;
                CommandResult::Ok { message: None }
            }
            AgentCommand::RestartPhone { spec } => {
                // A restart of a phone this host lost (e.g. after a host restart) recreates it.
                if self
                    .transition(&spec.phone_id, PhonePower::Stopping)
                    .is_some()
                {
                    tokio::time::sleep(self.durations.stop).await;
                }
                self.boot(&spec, true).await
            }
            AgentCommand::StopPhone { phone_id } => {
                if self.transition(&phone_id, PhonePower::Stopping).is_none() {
                    // Nothing runs under that id here: it is as stopped as it gets.
                    return CommandResult::Ok { message: None };
                }
                tokio::time::sleep(self.durations.stop).await;
                if let Some(p) = self.lock().phones.get_mut(&phone_id) {
                    p.power = PhonePower::Stopped;
                }
                CommandResult::Ok { message: None }
            }
            AgentCommand::ResetPhone { spec } => {
                if self
                    .transition(&spec.phone_id, PhonePower::Stopping)
                    .is_some()
                {
                    tokio::time::sleep(self.durations.stop).await;
                }
                tokio::time::sleep(self.durations.reset).await;
                if let Some(host) = &self.host {
                    let host = host.clone();
                    let id = spec.phone_id.clone();
                    let wiped = tokio::task::spawn_blocking(move || host.wipe(&id)).await;
                    if let Err(e) = wiped
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                    {
                        return CommandResult::Failed {
                            code: "CPS.0003".into(),
                            message: format!("The phone's data could not be reset: {e}"),
                        };
                    }
                }
                self.boot(&spec, true).await
            }
            AgentCommand::SetProperties {
                phone_id,
                properties,
            } => {
                let st = self.lock();
                let Some(p) = st.phones.get(&phone_id) else {
                    return Self::unknown(&phone_id);
                };
                if let Some(live) = &p.live {
                    live.apply_api_properties(&properties);
                }
                CommandResult::Ok { message: None }
            }
            AgentCommand::SetAdbKeys { phone_id, adb_keys } => {
                let mut st = self.lock();
                let Some(p) = st.phones.get_mut(&phone_id) else {
                    return Self::unknown(&phone_id);
                };
                if let (Some(live), Some(host)) = (&mut p.live, &self.host) {
                    live.spec.adb_keys = adb_keys;
                    live.device.set_allowed_keys(host.allowed_keys(&live.spec));
                }
                CommandResult::Ok { message: None }
            }
            AgentCommand::DeletePhone { phone_id } => {
                let removed = self.lock().phones.remove(&phone_id);
                if let Some(live) = removed.and_then(|p| p.live) {
                    live.shut_down();
                }
                if let Some(host) = &self.host {
                    let host = host.clone();
                    let id = phone_id.clone();
                    let r = tokio::task::spawn_blocking(move || host.delete(&id)).await;
                    if let Ok(Err(e)) = r {
                        tracing::warn!(phone_id = %phone_id, error = %e, "phone files not removed");
                    }
                }
                CommandResult::Ok { message: None }
            }
            AgentCommand::RestartEncodeServer { .. } => {
                tokio::time::sleep(self.durations.boot).await;
                CommandResult::Ok { message: None }
            }
        }
    }

    /// Power state of one phone, for tests and diagnostics.
    pub fn power(&self, phone_id: &str) -> Option<PhonePower> {
        self.lock().phones.get(phone_id).map(|p| p.power)
    }
}

impl HostAgent for VirtualHostAgent {
    fn agent_id(&self) -> &str {
        &self.id
    }

    fn execute(&self, env: CommandEnvelope) -> BoxFuture<'_, CommandResult> {
        Box::pin(async move {
            if let Some(r) = self.lock().done.get(&env.command_id) {
                return r.clone();
            }
            let result = self.run(env.command).await;
            let mut st = self.lock();
            st.done.insert(env.command_id.clone(), result.clone());
            st.done_order.push_back(env.command_id);
            while st.done_order.len() > REMEMBERED_COMMANDS {
                if let Some(old) = st.done_order.pop_front() {
                    st.done.remove(&old);
                }
            }
            result
        })
    }

    fn runs_endpoints(&self) -> bool {
        self.host.is_some()
    }

    fn share_endpoint<'a>(
        &'a self,
        server_id: &'a str,
    ) -> BoxFuture<'a, Result<SocketAddr, String>> {
        Box::pin(async move {
            match &self.host {
                Some(host) => host
                    .share_endpoint(server_id)
                    .await
                    .map_err(|e| e.to_string()),
                None => Err("this host keeps no shared storage".to_string()),
            }
        })
    }

    fn port_endpoints(&self, phone_id: &str) -> Vec<(u16, SocketAddr)> {
        self.lock()
            .phones
            .get(phone_id)
            .and_then(|p| p.live.as_ref().map(|l| l.ports.clone()))
            .unwrap_or_default()
    }

    fn adb_endpoint(&self, phone_id: &str) -> Option<SocketAddr> {
        self.lock()
            .phones
            .get(phone_id)
            .and_then(|p| p.live.as_ref().map(|l| l.addr))
    }

    fn attach_adb(&self, phone_id: &str, conn: InProcessConnection) -> bool {
        self.lock()
            .phones
            .get(phone_id)
            .and_then(|p| p.live.as_ref())
            .is_some_and(|l| l.attach_adb(conn))
    }

    fn inventory(&self) -> BoxFuture<'_, Inventory> {
        Box::pin(async move {
            let st = self.lock();
            Inventory {
                host_id: self.id.clone(),
                phones: st
                    .phones
                    .iter()
                    .map(|(id, p)| PhoneState {
                        phone_id: id.clone(),
                        power: p.power,
                        image_id: p.image_id.clone(),
                        boot_count: p.boot_count,
                        adb_port: p.live.as_ref().map(|l| l.addr.port()),
                        ports: p
                            .live
                            .as_ref()
                            .map(|l| {
                                l.ports
                                    .iter()
                                    .map(|(listen, addr)| crate::PortMapping {
                                        listen_port: *listen,
                                        access_port: addr.port(),
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhoneSpec;

    fn spec(id: &str) -> PhoneSpec {
        PhoneSpec {
            phone_id: id.into(),
            server_id: "s".into(),
            phone_model_name: "m".into(),
            image_id: "img".into(),
            imei: "490154203237518".into(),
            phone_ip: "10.0.0.2".into(),
            properties: Default::default(),
            profile: Default::default(),
            adb_keys: Vec::new(),
            ports: Vec::new(),
        }
    }

    fn fast() -> Durations {
        Durations {
            boot: Duration::from_millis(5),
            stop: Duration::from_millis(5),
            reset: Duration::from_millis(5),
        }
    }

    #[tokio::test]
    async fn lifecycle_and_idempotency() {
        let a = VirtualHostAgent::new("h", fast());
        let r = a
            .execute(CommandEnvelope {
                command_id: "j1".into(),
                command: AgentCommand::CreatePhone { spec: spec("p1") },
            })
            .await;
        assert_eq!(r, CommandResult::Ok { message: None });
        assert_eq!(a.power("p1"), Some(PhonePower::Running));
        a.execute(CommandEnvelope {
            command_id: "j2".into(),
            command: AgentCommand::StopPhone {
                phone_id: "p1".into(),
            },
        })
        .await;
        assert_eq!(a.power("p1"), Some(PhonePower::Stopped));
        // Replaying j1 returns the remembered result and does not boot the phone again.
        a.execute(CommandEnvelope {
            command_id: "j1".into(),
            command: AgentCommand::CreatePhone { spec: spec("p1") },
        })
        .await;
        assert_eq!(a.power("p1"), Some(PhonePower::Stopped));
        let inv = a.inventory().await;
        assert_eq!(inv.phones.len(), 1);
        assert_eq!(inv.phones[0].boot_count, 1);
        let r = a
            .execute(CommandEnvelope {
                command_id: "j3".into(),
                command: AgentCommand::SetProperties {
                    phone_id: "nope".into(),
                    properties: Default::default(),
                },
            })
            .await;
        assert!(matches!(r, CommandResult::Failed { .. }));
    }
}
