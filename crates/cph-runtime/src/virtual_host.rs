//! In-process virtual hosts: phones whose lifecycle takes real (configurable) time.
//!
//! State is kept in memory per phone: a few dozen bytes each, so one process holds a hundred
//! thousand phones. A process restart loses it; the control plane re-creates the phones it
//! expects to run from its own records (level-triggered reconciliation).

use crate::{
    AgentCommand, CommandEnvelope, CommandResult, HostAgent, Inventory, PhonePower, PhoneState,
};
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
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

#[derive(Debug, Clone)]
struct Phone {
    power: PhonePower,
    image_id: String,
    boot_count: u64,
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
}

impl VirtualHostAgent {
    pub fn new(id: impl Into<String>, durations: Durations) -> Self {
        VirtualHostAgent {
            id: id.into(),
            durations,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_power(&self, phone_id: &str, power: PhonePower) -> bool {
        match self.lock().phones.get_mut(phone_id) {
            Some(p) => {
                p.power = power;
                true
            }
            None => false,
        }
    }

    fn unknown(phone_id: &str) -> CommandResult {
        CommandResult::Failed {
            code: "CPS.0004".into(),
            message: format!("phone {phone_id} does not exist on this host"),
        }
    }

    async fn boot(&self, phone_id: &str, image_id: &str, create: bool) -> CommandResult {
        {
            let mut st = self.lock();
            match st.phones.get_mut(phone_id) {
                Some(p) => {
                    p.power = PhonePower::Booting;
                    p.image_id = image_id.to_string();
                }
                None if create => {
                    st.phones.insert(
                        phone_id.to_string(),
                        Phone {
                            power: PhonePower::Booting,
                            image_id: image_id.to_string(),
                            boot_count: 0,
                        },
                    );
                }
                None => return Self::unknown(phone_id),
            }
        }
        tokio::time::sleep(self.durations.boot).await;
        let mut st = self.lock();
        match st.phones.get_mut(phone_id) {
            Some(p) => {
                p.power = PhonePower::Running;
                p.boot_count += 1;
                CommandResult::Ok { message: None }
            }
            None => Self::unknown(phone_id),
        }
    }

    async fn run(&self, cmd: AgentCommand) -> CommandResult {
        match cmd {
            AgentCommand::CreatePhone { spec } => {
                self.boot(&spec.phone_id, &spec.image_id, true).await
            }
            AgentCommand::AdoptPhone { spec, running } => {
                let mut st = self.lock();
                let p = st
                    .phones
                    .entry(spec.phone_id.clone())
                    .or_insert_with(|| Phone {
                        power: PhonePower::Stopped,
                        image_id: spec.image_id.clone(),
                        boot_count: 0,
                    });
                p.power = if running {
                    PhonePower::Running
                } else {
                    PhonePower::Stopped
                };
                p.image_id = spec.image_id;
                CommandResult::Ok { message: None }
            }
            AgentCommand::RestartPhone { spec } => {
                // A restart of a phone this host lost (e.g. after a host restart) recreates it.
                let known = self.lock().phones.contains_key(&spec.phone_id);
                if known && self.set_power(&spec.phone_id, PhonePower::Stopping) {
                    tokio::time::sleep(self.durations.stop).await;
                }
                self.boot(&spec.phone_id, &spec.image_id, true).await
            }
            AgentCommand::StopPhone { phone_id } => {
                if !self.set_power(&phone_id, PhonePower::Stopping) {
                    // Nothing runs under that id here: it is as stopped as it gets.
                    return CommandResult::Ok { message: None };
                }
                tokio::time::sleep(self.durations.stop).await;
                self.set_power(&phone_id, PhonePower::Stopped);
                CommandResult::Ok { message: None }
            }
            AgentCommand::ResetPhone { spec } => {
                if self.set_power(&spec.phone_id, PhonePower::Stopping) {
                    tokio::time::sleep(self.durations.stop).await;
                }
                tokio::time::sleep(self.durations.reset).await;
                self.boot(&spec.phone_id, &spec.image_id, true).await
            }
            AgentCommand::SetProperties { phone_id, .. } => {
                if self.lock().phones.contains_key(&phone_id) {
                    CommandResult::Ok { message: None }
                } else {
                    Self::unknown(&phone_id)
                }
            }
            AgentCommand::DeletePhone { phone_id } => {
                self.lock().phones.remove(&phone_id);
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
